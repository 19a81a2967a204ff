"""lint, lint-fix, test, test-cov and doctor driving the real ruff, mypy and pytest on a sample project."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from dex_tasks.tasks.lint import mypy_findings, ruff_check_findings, ruff_format_findings
from dex_tasks.tasks.test import coverage_percent, junit_failures
from tests.helpers import run_poe

if TYPE_CHECKING:
    from pathlib import Path

    from tests.conftest import CliRunner

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

PYPROJECT = """\
[project]
name = "sample-pkg"
version = "0.1.0"
requires-python = ">=3.11"

[tool.poe]
include_script = "dex_tasks.poe:tasks"

[tool.dex]
image = "ghcr.io/example/sample"

[tool.dex.test]
coverage-fail-under = 50

[tool.ruff]
line-length = 100

[tool.ruff.lint]
select = ["E", "F", "I"]

[tool.mypy]
strict = true

[tool.pytest.ini_options]
addopts = ["-p", "no:cacheprovider"]

[tool.coverage.run]
branch = true
"""

FILES = {
    "sample_pkg/__init__.py": '"""A tiny package for the lint/test integration tests."""\n',
    "sample_pkg/calc.py": (
        '"""Arithmetic that the sample tests cover."""\n\n\n'
        "def add(a: int, b: int) -> int:\n    return a + b\n\n\n"
        "def describe(value: int) -> str:\n"
        '    if value < 0:\n        return "negative"\n    return "non-negative"\n'
    ),
    "tests/__init__.py": "",
    "tests/test_calc.py": (
        "from sample_pkg.calc import add, describe\n\n\n"
        "def test_add() -> None:\n    assert add(2, 3) == 5\n\n\n"
        "def test_describe() -> None:\n"
        '    assert describe(1) == "non-negative"\n'
    ),
}

# Format-clean code with one ruff finding (F401) and one mypy finding (return-value).
PLANTED = '"""Planted findings."""\n\nimport os\n\n\ndef broken() -> int:\n    return "not an int"\n'


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    root = tmp_path / "sample"
    root.mkdir()
    (root / "pyproject.toml").write_text(PYPROJECT, encoding="utf-8")
    for name, text in FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def _plant(sample: Path) -> Path:
    bad = sample / "sample_pkg" / "bad.py"
    bad.write_text(PLANTED, encoding="utf-8")
    return bad


def _set_floor(sample: Path, floor: int) -> None:
    pyproject = sample / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    pyproject.write_text(
        text.replace("coverage-fail-under = 50", f"coverage-fail-under = {floor}"), encoding="utf-8"
    )


# -- lint ----------------------------------------------------------------------------------------


def test_lint_clean_project_passes(sample: Path, run_cli: CliRunner) -> None:
    result = run_cli("lint", "--json", "-C", str(sample))
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["passed"] is True
    assert [t["tool"] for t in data["tools"]] == ["ruff check", "ruff format", "mypy"]
    assert all(t["passed"] and t["findings"] == 0 and not t["skipped"] for t in data["tools"])
    # The summary table goes to the human stream (stderr under --json).
    assert "tool" in result.err
    assert "passed" in result.err
    assert "$ ruff check sample_pkg tests" in result.err


def test_lint_planted_errors_fail_and_name_both(sample: Path, run_cli: CliRunner) -> None:
    _plant(sample)
    result = run_cli("lint", "-C", str(sample))
    assert result.code == 1
    assert "F401" in result.out
    assert "sample_pkg/bad.py:7:12: error: Incompatible return value type" in result.out
    assert "[return-value]" in result.out
    assert "dex-tasks lint: lint failed: ruff check, mypy" in result.err
    summary = result.out.splitlines()[-5:]
    assert summary[0].split() == ["tool", "result", "findings", "seconds"]
    assert summary[2].split()[:4] == ["ruff", "check", "FAILED", "1"]
    assert summary[3].split()[:4] == ["ruff", "format", "passed", "0"]
    assert summary[4].split()[:3] == ["mypy", "FAILED", "1"]


def test_lint_all_three_tools_run_even_when_the_first_fails(sample: Path, run_cli: CliRunner) -> None:
    _plant(sample)
    (sample / "sample_pkg" / "ugly.py").write_text("x=1\n", encoding="utf-8")
    result = run_cli("lint", "--json", "-C", str(sample))
    assert result.code == 1
    tools = {t["tool"]: t for t in json.loads(result.out)["tools"]}
    assert tools["ruff check"]["passed"] is False
    assert tools["ruff format"]["passed"] is False
    assert tools["ruff format"]["findings"] == 1
    assert tools["mypy"]["passed"] is False
    assert tools["mypy"]["findings"] == 1
    assert "lint failed: ruff check, ruff format, mypy" in result.err


def test_lint_in_github_actions_annotates(
    sample: Path, run_cli: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _plant(sample)
    summary = tmp_path / "summary.md"
    summary.touch()
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result = run_cli("lint", "-C", str(sample))
    assert result.code == 1
    # ruff writes its own workflow commands; mypy findings are turned into annotations by the task.
    assert "::error title=ruff (F401)" in result.out
    assert "--output-format=github" in result.err
    annotation = "::error file=sample_pkg/bad.py,line=7,col=12,title=mypy (return-value)::"
    assert annotation + "Incompatible return value type" in result.err
    assert "::group::mypy" in result.err
    text = summary.read_text(encoding="utf-8")
    assert "### dex-tasks lint" in text
    assert "| mypy | FAILED | 1 |" in text


def test_lint_dry_run_prints_the_commands_and_runs_none(sample: Path, run_cli: CliRunner) -> None:
    _plant(sample)
    result = run_cli("lint", "--dry-run", "--json", "-C", str(sample))
    assert result.code == 0, result.err
    echoed = [line for line in result.err.splitlines() if line.startswith("$ ")]
    assert echoed == [
        "$ ruff check sample_pkg tests    # dry-run: not run",
        "$ ruff format --check sample_pkg tests    # dry-run: not run",
        "$ mypy --show-column-numbers --no-pretty --no-color-output sample_pkg tests    # dry-run: not run",
    ]
    data = json.loads(result.out)
    assert data["dry_run"] is True
    assert all(t["skipped"] for t in data["tools"])
    # Neither ruff nor mypy ran: they would have left their caches behind.
    assert not (sample / ".ruff_cache").exists()
    assert not (sample / ".mypy_cache").exists()


def test_lint_explicit_paths_and_mypy_off(sample: Path, run_cli: CliRunner) -> None:
    _plant(sample)
    pyproject = sample / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text(encoding="utf-8").replace(
            "[tool.dex.test]", "[tool.dex.lint]\nmypy = false\n\n[tool.dex.test]"
        ),
        encoding="utf-8",
    )
    result = run_cli("lint", "--json", "-C", str(sample), "sample_pkg/calc.py")
    assert result.code == 0, result.err
    assert [t["tool"] for t in json.loads(result.out)["tools"]] == ["ruff check", "ruff format"]
    assert "$ ruff check sample_pkg/calc.py" in result.err
    assert "mypy: disabled" in result.err


def test_lint_fix_fixes_and_formats(sample: Path, run_cli: CliRunner) -> None:
    messy = sample / "sample_pkg" / "messy.py"
    messy.write_text('"""Fixable."""\n\nimport sys\nimport os\n\nx=os.sep\n', encoding="utf-8")
    before = run_cli("lint", "-C", str(sample))
    assert before.code == 1
    result = run_cli("lint-fix", "-C", str(sample))
    assert result.code == 0, result.out + result.err
    assert messy.read_text(encoding="utf-8") == '"""Fixable."""\n\nimport os\n\nx = os.sep\n'
    assert run_cli("lint", "-C", str(sample)).code == 0


def test_lint_with_fix_flag_is_lint_fix(sample: Path, run_cli: CliRunner) -> None:
    messy = sample / "sample_pkg" / "messy.py"
    messy.write_text('"""Fixable."""\n\nimport os\n\nx=1\n', encoding="utf-8")
    result = run_cli("lint", "--fix", "--json", "-C", str(sample))
    assert result.code == 0, result.err
    assert [t["tool"] for t in json.loads(result.out)["tools"]] == ["ruff check --fix", "ruff format"]
    assert messy.read_text(encoding="utf-8") == '"""Fixable."""\n\nx = 1\n'


def test_lint_fix_reports_what_it_cannot_fix(sample: Path, run_cli: CliRunner) -> None:
    bad = sample / "sample_pkg" / "unfixable.py"
    bad.write_text('"""Undefined name: not fixable."""\n\nx = undefined_name\n', encoding="utf-8")
    result = run_cli("lint-fix", "-C", str(sample))
    assert result.code == 1
    assert "lint-fix failed: ruff check --fix" in result.err


def test_lint_fix_dry_run_changes_nothing(sample: Path, run_cli: CliRunner) -> None:
    messy = sample / "sample_pkg" / "messy.py"
    original = '"""Fixable."""\n\nimport os\n\nx=1\n'
    messy.write_text(original, encoding="utf-8")
    result = run_cli("lint-fix", "--dry-run", "-C", str(sample))
    assert result.code == 0
    assert "$ ruff check --fix sample_pkg tests    # dry-run: not run" in result.err
    assert messy.read_text(encoding="utf-8") == original


# -- test / test-cov -----------------------------------------------------------------------------


def test_test_passes_extra_args_through(sample: Path, run_cli: CliRunner) -> None:
    result = run_cli("test", "-C", str(sample), "-k", "add", "-q")
    assert result.code == 0, result.out
    assert "1 passed, 1 deselected" in result.out
    assert "$ pytest -k add -q" in result.err


def test_test_failing_test_exits_1(sample: Path, run_cli: CliRunner) -> None:
    (sample / "tests" / "test_fail.py").write_text(
        "def test_no() -> None:\n    assert 1 == 2\n", encoding="utf-8"
    )
    result = run_cli("test", "--json", "-C", str(sample))
    assert result.code == 1
    assert json.loads(result.out)["pytest_exit"] == 1
    assert "dex-tasks test: tests failed" in result.err


def test_test_no_tests_collected_exits_1(sample: Path, run_cli: CliRunner) -> None:
    result = run_cli("test", "-C", str(sample), "-k", "nothing_matches_this")
    assert result.code == 1
    assert "dex-tasks test: no tests were collected" in result.err


def test_test_dry_run_runs_nothing(sample: Path, run_cli: CliRunner) -> None:
    result = run_cli("test-cov", "--dry-run", "-C", str(sample))
    assert result.code == 0
    assert "# dry-run: not run" in result.err
    assert not (sample / "coverage.xml").exists()


def test_test_cov_passes_and_writes_reports(sample: Path, run_cli: CliRunner) -> None:
    result = run_cli("test-cov", "--json", "-C", str(sample))
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["passed"] is True
    assert data["coverage"] == 75.0  # 6 statements + 2 branches, 1 line and 1 branch missed
    assert data["fail_under"] == 50
    assert (sample / "coverage.xml").is_file()
    assert (sample / "reports" / "junit.xml").is_file()
    assert "Missing" in result.err  # term-missing report (human output is on stderr under --json)
    assert "--cov=sample_pkg" in result.err


def test_test_cov_under_the_floor_exits_1(sample: Path, run_cli: CliRunner) -> None:
    _set_floor(sample, 99)
    result = run_cli("test-cov", "-C", str(sample))
    assert result.code == 1
    assert "dex-tasks test-cov: coverage 75.00% is under the floor of 99%" in result.err
    assert "tests failed" not in result.err
    assert (sample / "coverage.xml").is_file()


def test_test_cov_failing_tests_and_low_coverage_say_both(sample: Path, run_cli: CliRunner) -> None:
    _set_floor(sample, 99)
    (sample / "tests" / "test_fail.py").write_text(
        "def test_no() -> None:\n    assert 1 == 2\n", encoding="utf-8"
    )
    result = run_cli("test-cov", "-C", str(sample), "-q")
    assert result.code == 1
    assert "tests failed; coverage" in result.err
    assert "under the floor of 99%" in result.err


# -- doctor --------------------------------------------------------------------------------------


def test_doctor_reports_tools_and_token_name_only(
    sample: Path, run_cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = "ghp_" + "Q1w2E3r4" * 4
    monkeypatch.setenv("GH_TOKEN", token)
    result = run_cli("doctor", "--json", "-C", str(sample))
    data = json.loads(result.out)
    assert [t["tool"] for t in data["tools"]] == [
        "uv", "git", "ruff", "mypy", "pytest", "docker", "trivy", "kubectl", "argocd", "semgrep",
    ]  # fmt: skip
    ruff = next(t for t in data["tools"] if t["tool"] == "ruff")
    assert ruff["found"] is True
    assert ruff["version"].startswith("ruff ")
    assert ruff["tasks"] == ["lint", "lint-fix"]
    assert data["github_token"] == {"present": True, "env": "GH_TOKEN"}
    assert data["config"]["path"] == str(sample / "pyproject.toml")
    assert token not in result.out + result.err
    assert "present in $GH_TOKEN" in result.err
    assert result.code == (3 if data["missing_required"] else 0)


def test_doctor_require_makes_a_missing_tool_fatal(
    sample: Path, run_cli: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    empty = tmp_path / "empty-path"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # only the interpreter's own scripts dir is searched now
    result = run_cli("doctor", "--require", "trivy-scan", "--json", "-C", str(sample))
    assert result.code == 3
    data = json.loads(result.out)
    assert "trivy" in data["missing_required"]
    assert "argocd" not in data["missing_required"]  # still optional
    assert "missing required tools:" in result.err
    assert "trivy.dev" in result.err  # the install hint


def test_doctor_unknown_required_task(sample: Path, run_cli: CliRunner) -> None:
    result = run_cli("doctor", "--require", "deploy", "-C", str(sample))
    assert result.code == 2
    assert "unknown task 'deploy'" in result.err


# -- the same through poe ------------------------------------------------------------------------


def test_poe_lint_gives_the_same_result(sample: Path) -> None:
    clean = run_poe(sample, "lint", timeout=300)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    _plant(sample)
    dirty = run_poe(sample, "lint", timeout=300)
    assert dirty.returncode == 1
    assert "F401" in dirty.stdout
    assert "[return-value]" in dirty.stdout
    assert "lint failed: ruff check, mypy" in dirty.stderr


def test_test_cov_floor_passed_through_wins(sample: Path, run_cli: CliRunner) -> None:
    _set_floor(sample, 99)
    result = run_cli("test-cov", "--json", "-C", str(sample), "--cov-fail-under=60")
    assert result.code == 0, result.err
    assert json.loads(result.out)["fail_under"] == 60


# -- output parsing (pure) -----------------------------------------------------------------------


def test_mypy_findings_parsing() -> None:
    output = (
        'pkg/a.py:3:5: error: Name "x" is not defined  [name-defined]\n'
        "pkg/a.py:3:5: note: See https://mypy.rtfd.io\n"
        r"C:\work\pkg\b.py:10:1: error: Missing return statement  [return]" + "\n"
        "pkg/c.py:7: warning: unused 'type: ignore' comment\n"
        "Found 3 errors in 3 files (checked 9 source files)\n"
    )
    assert mypy_findings(output) == [
        {"file": "pkg/a.py", "line": 3, "col": 5, "level": "error",
         "message": 'Name "x" is not defined', "code": "name-defined"},
        {"file": r"C:\work\pkg\b.py", "line": 10, "col": 1, "level": "error",
         "message": "Missing return statement", "code": "return"},
        {"file": "pkg/c.py", "line": 7, "col": None, "level": "warning",
         "message": "unused 'type: ignore' comment", "code": None},
    ]  # fmt: skip


def test_ruff_findings_parsing() -> None:
    assert ruff_check_findings("All checks passed!\n", github=False) == 0
    assert ruff_check_findings("...\nFound 12 errors.\n[*] 3 fixable", github=False) == 12
    assert ruff_check_findings("Found 1 error.\n", github=False) == 1
    assert ruff_check_findings("Found 3 errors (2 fixed, 1 remaining).\n", github=False) == 1
    assert ruff_check_findings("error: unexpected argument\n", github=False) is None
    github = "::error title=ruff (F401),file=a.py,line=1::x\n::warning title=ruff::y\nplain\n"
    assert ruff_check_findings(github, github=True) == 2
    assert (
        ruff_format_findings("2 files would be reformatted, 3 files already formatted\n", github=False) == 2
    )
    assert ruff_format_findings("5 files already formatted\n", github=False) == 0


def test_report_parsing(tmp_path: Path) -> None:
    xml = tmp_path / "coverage.xml"
    xml.write_text(
        '<?xml version="1.0" ?><coverage line-rate="0.8333" branch-rate="0.5" lines-valid="6" '
        'lines-covered="5" branches-valid="2" branches-covered="1"></coverage>',
        encoding="utf-8",
    )
    assert coverage_percent(xml) == 75.0
    assert coverage_percent(tmp_path / "missing.xml") is None
    junit = tmp_path / "junit.xml"
    junit.write_text(
        '<testsuites><testsuite name="pytest" errors="1" failures="2" tests="9"/></testsuites>',
        encoding="utf-8",
    )
    assert junit_failures(junit) == 3
    junit.write_text("not xml", encoding="utf-8")
    assert junit_failures(junit) is None


def test_lint_paths_are_relative_to_where_the_user_is(sample: Path, run_cli: CliRunner) -> None:
    # Regression: paths were handed to the tools as given, but the tools run in the project root,
    # so `lint calc.py` inside sample_pkg/ failed all three tools on a file that exists.
    result = run_cli("lint", "--json", "calc.py", cwd=sample / "sample_pkg")
    assert result.code == 0, result.err
    assert "$ ruff check sample_pkg/calc.py" in result.err


@pytest.mark.parametrize("task", ["lint", "lint-fix"])
def test_lint_missing_path_is_exit_2_and_runs_nothing(sample: Path, run_cli: CliRunner, task: str) -> None:
    result = run_cli(task, "--json", "nope.py", cwd=sample)
    assert result.code == 2, result.err
    assert json.loads(result.out)["error"] == "nope.py: no such file or directory"
    assert "$ ruff" not in result.err


def test_test_cov_from_a_subdirectory_with_a_src_layout(sample: Path, run_cli: CliRunner) -> None:
    # Regression: pytest runs where the user is, but --cov got the root-relative `src/sample_pkg`,
    # which pytest-cov then took for a module name from tests/: 0% and exit 1.
    (sample / "src").mkdir()
    (sample / "sample_pkg").rename(sample / "src" / "sample_pkg")
    pyproject = sample / "pyproject.toml"
    addopts = 'addopts = ["-p", "no:cacheprovider"]'
    text = pyproject.read_text(encoding="utf-8").replace(addopts, addopts + '\npythonpath = ["src"]')
    pyproject.write_text(text, encoding="utf-8")
    from_root = run_cli("test-cov", "--json", cwd=sample)
    assert from_root.code == 0, from_root.err
    result = run_cli("test-cov", "--json", cwd=sample / "tests")
    assert result.code == 0, result.err
    # The same number as from the root: [tool.coverage.run] branch = true is read from there too.
    assert json.loads(result.out)["coverage"] == json.loads(from_root.out)["coverage"] == 75.0
    assert "--cov=../src/sample_pkg" in result.err
