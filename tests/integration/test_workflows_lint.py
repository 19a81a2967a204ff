"""Every workflow and example passes check-jsonschema's GitHub-workflow schema and zizmor (offline).

Both tools run for real (dev dependencies) and offline: check-jsonschema's vendored schema
(``--builtin-schema vendor.github-workflows``) and zizmor's offline audits. Planted mistakes
prove the checks are not vacuous.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
from typing import TYPE_CHECKING

import pytest

from tests.helpers import REPO_ROOT

if TYPE_CHECKING:
    from pathlib import Path

WORKFLOWS = sorted((REPO_ROOT / ".github" / "workflows").glob("*.yml"))
EXAMPLES = sorted((REPO_ROOT / "examples" / "workflows").glob("*.yml"))
ALL = [*WORKFLOWS, *EXAMPLES]
MEDIUM_OR_ABOVE = {"Medium", "High"}


def _tool(name: str) -> str:
    found = shutil.which(name, path=sysconfig.get_path("scripts")) or shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is a dev dependency but is not installed ({sys.executable})")
    return found


def check_jsonschema(*files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *map(str, files)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def zizmor(*files: Path) -> list[dict[str, object]]:
    done = subprocess.run(
        [_tool("zizmor"), "--offline", "--format", "json", "--min-severity", "medium", *map(str, files)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    # zizmor exits 0 with no findings, 10+ with findings (the highest severity), other codes on errors.
    assert done.returncode == 0 or done.returncode >= 10, done.stderr
    findings: list[dict[str, object]] = json.loads(done.stdout or "[]")
    return findings


def _describe(findings: list[dict[str, object]]) -> str:
    return "\n".join(
        f"{f['ident']} {f['determinations']} {f['locations'][0]['symbolic']['key']}"  # type: ignore[index]
        for f in findings
    )


@pytest.mark.timeout(180)
def test_all_workflows_match_the_github_workflow_schema() -> None:
    assert len(ALL) >= 11
    done = check_jsonschema(*ALL)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.timeout(180)
def test_zizmor_finds_nothing_of_medium_severity_or_above() -> None:
    findings = zizmor(*ALL)
    assert not findings, _describe(findings)


@pytest.mark.timeout(180)
def test_the_checks_catch_planted_mistakes(tmp_path: Path) -> None:
    cd = (REPO_ROOT / ".github" / "workflows" / "dex-cd.yml").read_text(encoding="utf-8")
    # Template injection: an event field interpolated into run:.
    injected = tmp_path / "injected.yml"
    injected.write_text(
        cd.replace(
            'run: uv run dex-tasks bump-overlay dev "$TAG"',
            "run: uv run dex-tasks bump-overlay dev ${{ github.event.head_commit.message }}",
        ),
        encoding="utf-8",
    )
    # An unpinned action.
    unpinned = tmp_path / "unpinned.yml"
    unpinned.write_text(
        cd.replace("astral-sh/setup-uv@e92bafb6253dcd438e0484186d7669ea7a8ca1cc", "astral-sh/setup-uv@v6"),
        encoding="utf-8",
    )
    idents = {finding["ident"] for finding in zizmor(injected, unpinned)}
    assert {"template-injection", "unpinned-uses"} <= idents
    # A typo the schema rejects.
    broken = tmp_path / "broken.yml"
    broken.write_text(cd.replace("    runs-on: ${{", "    runs_on: ${{"), encoding="utf-8")
    assert check_jsonschema(broken).returncode == 1
