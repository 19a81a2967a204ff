"""``test`` / ``test-cov``: pytest with extra arguments passed through; coverage and junit xml for CI.

pytest runs from the project's environment (``proc`` looks beside the running interpreter first),
its output streamed as it comes. ``test-cov`` adds pytest-cov's terminal missing-lines report,
``coverage.xml``, a junit xml and the fail-under floor from ``[tool.dex.test]``; the one-line
result says whether the tests failed, the coverage was under the floor, or both.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING
from xml.etree import ElementTree as ET

from dex_tasks import gha, proc
from dex_tasks.errors import UsageError
from dex_tasks.tasks import Context, TaskResult

if TYPE_CHECKING:
    import argparse

# pytest's documented exit codes (https://docs.pytest.org/en/stable/reference/exit-codes.html).
PYTEST_EXIT = {
    0: "all tests passed",
    1: "tests failed",
    2: "the test run was interrupted (collection errors?)",
    3: "pytest hit an internal error",
    4: "pytest usage error",
    5: "no tests were collected",
}
PYTEST_USAGE_ERROR = 4
PYTEST_NO_TESTS = 5
# pytest-cov: "FAIL Required test coverage of 90% not reached. Total coverage: 71.43%"
COV_FAIL_RE = re.compile(r"FAIL Required test coverage of ([\d.]+)% not reached\. Total coverage: ([\d.]+)%")
COV_TOTAL_RE = re.compile(r"Total coverage: ([\d.]+)%")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.usage = "%(prog)s [--dry-run] [--json] [-C DIR] [PYTEST_ARGS...]"
    parser.description = (parser.description or "") + (
        "\n\nEvery other argument goes to pytest; put `--` before pytest arguments that collide "
        "with dex-tasks' own (--json, --dry-run, -C)."
    )


def _pytest(ctx: Context, extra: list[str]) -> proc.Result:
    return proc.run(
        ["pytest", *extra],
        check=False,
        stream=True,
        timeout=ctx.config.test.timeout,
        cwd=ctx.cwd,
    )


def _outcome(returncode: int) -> str:
    return PYTEST_EXIT.get(returncode, f"pytest exited with code {returncode}")


def run(ctx: Context, args: argparse.Namespace) -> TaskResult:
    extra: list[str] = list(args.passthrough)
    result = _pytest(ctx, extra)
    data: dict[str, object] = {
        "pytest_exit": result.returncode,
        "skipped": result.skipped,
        "passed": result.ok,
    }
    if result.returncode == 0:
        return TaskResult(data=data)
    return _failed(result.returncode, _outcome(result.returncode), data)


def _failed(returncode: int, message: str, data: dict[str, object]) -> TaskResult:
    # A pytest usage error is bad input (exit 2); everything else is a check that said no (exit 1).
    return TaskResult(exit_code=2 if returncode == PYTEST_USAGE_ERROR else 1, message=message, data=data)


def coverage_percent(xml_path: Path) -> float | None:
    """Total coverage from coverage.xml: lines and branches together, as coverage.py reports it."""

    try:
        root = ET.parse(xml_path).getroot()  # noqa: S314 - our own report, not untrusted input
    except (OSError, ET.ParseError):
        return None
    try:
        lines_valid = int(root.get("lines-valid", "0"))
        lines_covered = int(root.get("lines-covered", "0"))
        branches_valid = int(root.get("branches-valid", "0"))
        branches_covered = int(root.get("branches-covered", "0"))
    except ValueError:
        return None
    total = lines_valid + branches_valid
    if total == 0:
        rate = root.get("line-rate")
        return float(rate) * 100 if rate else None
    return (lines_covered + branches_covered) * 100.0 / total


def _cov_target(ctx: Context) -> str:
    """The package (else the project root) as pytest-cov must see it from where pytest runs.

    pytest runs in the user's directory, which may be below the root (``cd tests && dex-tasks
    test-cov``): a root-relative ``src/pkg`` would then be taken for a module name and measure 0%.
    """
    package = ctx.config.package_dir()
    target = ctx.config.root / (package or ".")
    try:
        return Path(os.path.relpath(target, ctx.cwd)).as_posix()
    except ValueError:  # another drive on Windows: no relative path exists
        return str(target)


def _cov_config(ctx: Context) -> list[str]:
    """``--cov-config`` naming the project's coverage settings, found the way coverage.py finds
    them, but from the project root: coverage.py itself looks only in the current directory, so
    from a subdirectory ``[tool.coverage]`` (branch = true, omit, ...) was silently ignored."""
    root = ctx.config.root
    rc = root / ".coveragerc"
    if rc.is_file():
        return [f"--cov-config={rc}"]
    for name in ("setup.cfg", "tox.ini"):
        candidate = root / name
        try:
            text = candidate.read_text(encoding="utf-8", errors="replace") if candidate.is_file() else ""
        except OSError:
            continue
        if "[coverage:" in text:
            return [f"--cov-config={candidate}"]
    if ctx.config.path is not None:
        return [f"--cov-config={ctx.config.path}"]
    return []


def _floor_override(extra: list[str], floor: float) -> float:
    """A ``--cov-fail-under=N`` passed through wins over the config, as it does for pytest-cov."""
    for i, arg in enumerate(extra):
        value = None
        if arg.startswith("--cov-fail-under="):
            value = arg.partition("=")[2]
        elif arg == "--cov-fail-under" and i + 1 < len(extra):
            value = extra[i + 1]
        if value is not None:
            try:
                floor = float(value)
            except ValueError:
                raise UsageError(f"--cov-fail-under: not a number: {value!r}") from None
    return floor


def run_cov(ctx: Context, args: argparse.Namespace) -> TaskResult:
    cfg = ctx.config.test
    xml_path = ctx.config.root / cfg.coverage_xml
    junit_path = ctx.config.root / cfg.junit_xml
    floor = _floor_override(args.passthrough, cfg.coverage_fail_under)
    extra = [
        f"--cov={_cov_target(ctx)}",
        *_cov_config(ctx),
        "--cov-report=term-missing",
        f"--cov-report=xml:{xml_path}",
        f"--junitxml={junit_path}",
        f"--cov-fail-under={floor:g}",
        *args.passthrough,
    ]
    if not ctx.dry_run:
        # Stale reports from an earlier run must not be read as this run's results.
        xml_path.unlink(missing_ok=True)
        junit_path.unlink(missing_ok=True)
    result = _pytest(ctx, extra)
    data: dict[str, object] = {
        "pytest_exit": result.returncode,
        "skipped": result.skipped,
        "coverage": None,
        "fail_under": floor,
        "coverage_xml": str(xml_path),
        "junit_xml": str(junit_path),
    }
    if result.skipped:
        data["passed"] = True
        return TaskResult(data=data)

    percent = coverage_percent(xml_path)
    if percent is None and (match := COV_TOTAL_RE.search(result.stdout)):
        percent = float(match.group(1))
    data["coverage"] = None if percent is None else round(percent, 2)
    under_floor = bool(COV_FAIL_RE.search(result.stdout)) or (percent is not None and percent < floor)

    problems: list[str] = []
    # pytest-cov turns a passing run under the floor into exit 1; that is not a test failure.
    tests_failed = result.returncode != 0 and not (
        result.returncode == 1 and under_floor and _all_passed(result, junit_path)
    )
    if tests_failed:
        problems.append(_outcome(result.returncode))
    if under_floor:
        shown = "unknown" if percent is None else f"{percent:.2f}%"
        problems.append(f"coverage {shown} is under the floor of {floor:g}%")
    elif percent is not None:
        ctx.out(f"coverage {percent:.2f}% (floor {floor:g}%)")
    data["passed"] = not problems
    if percent is not None:
        gha.set_output("coverage", f"{percent:.2f}")
    if problems:
        return _failed(result.returncode if tests_failed else 1, "; ".join(problems), data)
    return TaskResult(data=data)


def junit_failures(junit_path: Path) -> int | None:
    """Failures plus errors recorded in the junit xml, or None when it cannot be read."""

    try:
        root = ET.parse(junit_path).getroot()  # noqa: S314 - our own report, not untrusted input
    except (OSError, ET.ParseError):
        return None
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    try:
        return sum(int(s.get("failures", "0")) + int(s.get("errors", "0")) for s in suites)
    except ValueError:
        return None


def _all_passed(result: proc.Result, junit_path: Path) -> bool:
    """True when every collected test passed (junit xml first, pytest's summary line otherwise)."""
    failures = junit_failures(junit_path)
    if failures is not None:
        return failures == 0
    summary = next((line for line in reversed(result.stdout.splitlines()) if " in " in line), "")
    return " failed" not in summary and " error" not in summary
