"""``lint`` / ``lint-fix``: ruff check, ruff format and mypy; every tool runs, one summary at the end.

A failing tool never hides the next one's findings (like pre-commit running every hook). In GitHub
Actions ruff prints its own workflow-command annotations (``--output-format=github``) and mypy's
``file:line:col: error: msg  [code]`` lines are turned into annotations here.
"""

from __future__ import annotations

import dataclasses
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING

from dex_tasks import gha, proc
from dex_tasks.errors import UsageError
from dex_tasks.tasks import Context, TaskResult, _args, table

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Sequence

    from dex_tasks.config import Config

# mypy --show-column-numbers --no-pretty: "pkg/mod.py:12:5: error: Message  [code]"
MYPY_LINE_RE = re.compile(
    r"^(?P<file>(?:[A-Za-z]:)?[^:\n]+?):(?P<line>\d+):(?:(?P<col>\d+):)? (?P<level>error|warning|note): "
    r"(?P<message>.*?)(?:  \[(?P<code>[\w-]+)\])?$",
    re.MULTILINE,
)
RUFF_FOUND_RE = re.compile(r"^Found (\d+) errors?\b", re.MULTILINE)
RUFF_REMAINING_RE = re.compile(r"\((\d+) fixed, (\d+) remaining\)")
RUFF_REFORMAT_RE = re.compile(r"^(\d+) files? would be reformatted", re.MULTILINE)


@dataclasses.dataclass(frozen=True, kw_only=True)
class ToolRun:
    """One tool's outcome for the summary table and the --json payload."""

    tool: str
    passed: bool
    findings: int | None  # None: unknown (tool crashed) or not run (dry-run)
    seconds: float
    skipped: bool = False

    @property
    def result(self) -> str:
        if self.skipped:
            return "skipped"
        return "passed" if self.passed else "FAILED"

    def as_json(self) -> dict[str, object]:
        return {
            "tool": self.tool,
            "passed": self.passed,
            "skipped": self.skipped,
            "findings": self.findings,
            "seconds": round(self.seconds, 2),
        }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--fix", action="store_true", help="the same as lint-fix: ruff check --fix, ruff format"
    )
    _add_paths(parser)


def add_fix_arguments(parser: argparse.ArgumentParser) -> None:
    _add_paths(parser)


def _add_paths(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths",
        nargs="*",
        type=_args.text,
        metavar="PATH",
        help="files or directories (default: [tool.dex.lint] paths, else the package and tests/)",
    )


def default_paths(cfg: Config) -> list[str]:
    """``[tool.dex.lint] paths``, else the project's package and ``tests/`` that exist, else ``.``."""
    if cfg.lint.paths:
        return list(cfg.lint.paths)
    paths: list[str] = []
    package = cfg.package_dir()
    if package:
        paths.append(package)
    if (cfg.root / "tests").is_dir():
        paths.append("tests")
    return paths or ["."]


def _paths(ctx: Context, args: argparse.Namespace) -> list[str]:
    """Given paths are relative to where the user is (``ctx.cwd``), but the tools run in the project
    root: rewrite them relative to the root, and refuse a missing one (exit 2) instead of letting
    three tools fail on it."""
    given: list[str] = list(args.paths or [])
    if not given:
        return default_paths(ctx.config)
    root = ctx.config.root.resolve()
    paths: list[str] = []
    for value in given:
        path = Path(value) if Path(value).is_absolute() else ctx.cwd / value
        if not path.exists():
            raise UsageError(f"{value}: no such file or directory")
        resolved = path.resolve()
        try:
            paths.append(resolved.relative_to(root).as_posix() or ".")
        except ValueError:
            paths.append(str(resolved))  # outside the project: the tools get it as it is
    return paths


def _run_tool(
    cfg: Config, tool: str, argv: Sequence[str], findings: Callable[[proc.Result], int | None]
) -> ToolRun:
    """Run one tool in the project root and count its findings (``findings`` reads its result)."""
    started = time.monotonic()
    with gha.group(tool):
        # check=False: a failing tool must not stop the next one; stream so progress is visible.
        result = proc.run(argv, check=False, stream=True, timeout=cfg.lint.timeout, cwd=cfg.root)
    seconds = time.monotonic() - started
    if result.skipped:
        return ToolRun(tool=tool, passed=True, findings=None, seconds=0.0, skipped=True)
    return ToolRun(tool=tool, passed=result.returncode == 0, findings=findings(result), seconds=seconds)


def _count_github(output: str) -> int:
    return sum(1 for line in output.splitlines() if line.startswith(("::error", "::warning")))


def ruff_check_findings(output: str, *, github: bool) -> int | None:
    """Findings left after ``ruff check`` (with or without --fix), from its summary line."""
    if github:
        return _count_github(output)
    if match := RUFF_REMAINING_RE.search(output):
        return int(match.group(2))
    if match := RUFF_FOUND_RE.search(output):
        return int(match.group(1))
    return 0 if "All checks passed" in output else None


def ruff_format_findings(output: str, *, github: bool) -> int | None:
    """Files ``ruff format --check`` would reformat."""
    if github:
        return _count_github(output)
    if match := RUFF_REFORMAT_RE.search(output):
        return int(match.group(1))
    return 0


def mypy_findings(output: str) -> list[dict[str, str | int | None]]:
    """mypy's error and warning lines as dicts (file, line, col, level, message, code); notes dropped."""
    findings: list[dict[str, str | int | None]] = []
    for match in MYPY_LINE_RE.finditer(output):
        if match.group("level") == "note":
            continue
        findings.append(
            {
                "file": match.group("file").strip(),
                "line": int(match.group("line")),
                "col": int(match.group("col")) if match.group("col") else None,
                "level": match.group("level"),
                "message": match.group("message").strip(),
                "code": match.group("code"),
            }
        )
    return findings


def _mypy_count(result: proc.Result) -> int | None:
    """Annotate mypy's findings and count them; None when mypy itself failed (exit 2: bad config,
    crash) and printed none, so the summary does not claim zero."""
    found = mypy_findings(result.stdout)
    _annotate_mypy(found)
    if result.returncode not in (0, 1):
        return len(found) or None
    return len(found)


def _annotate_mypy(findings: list[dict[str, str | int | None]]) -> None:
    for finding in findings:
        code = finding["code"]
        message = str(finding["message"]) + (f"  [{code}]" if code else "")
        line = finding["line"]
        col = finding["col"]
        gha.annotation(
            "warning" if finding["level"] == "warning" else "error",
            message,
            # mypy on Windows prints src\pkg\mod.py; GitHub matches annotations to posix paths only.
            file=str(finding["file"]).replace("\\", "/"),
            line=line if isinstance(line, int) else None,
            col=col if isinstance(col, int) else None,
            title=f"mypy ({code})" if code else "mypy",
        )


def run(ctx: Context, args: argparse.Namespace) -> TaskResult:
    if args.fix:
        return run_fix(ctx, args)
    cfg = ctx.config
    paths = _paths(ctx, args)
    github = gha.active()
    # Every tool is looked up before any runs: a missing one is exit 3 up front, not after minutes.
    proc.require("ruff")
    if cfg.lint.mypy:
        proc.require("mypy")
    fmt = ["--output-format=github"] if github else []
    runs = [
        _run_tool(
            cfg,
            "ruff check",
            ["ruff", "check", *fmt, *paths],
            lambda r: ruff_check_findings(r.stdout, github=github),
        ),
        _run_tool(
            cfg,
            "ruff format",
            ["ruff", "format", "--check", *fmt, *paths],
            lambda r: ruff_format_findings(r.stdout, github=github),
        ),
    ]
    if cfg.lint.mypy:
        # --no-pretty/--show-column-numbers give one parseable line per finding whatever the project's
        # [tool.mypy] says about pretty output.
        argv = ["mypy", "--show-column-numbers", "--no-pretty", "--no-color-output", *paths]
        runs.append(_run_tool(cfg, "mypy", argv, _mypy_count))
    else:
        ctx.out("mypy: disabled by [tool.dex.lint] mypy = false")

    return _summarize(ctx, "lint", runs)


def run_fix(ctx: Context, args: argparse.Namespace) -> TaskResult:
    cfg = ctx.config
    paths = _paths(ctx, args)
    proc.require("ruff")
    runs = [
        _run_tool(
            cfg,
            "ruff check --fix",
            ["ruff", "check", "--fix", *paths],
            lambda r: ruff_check_findings(r.stdout, github=False),
        ),
        # After `ruff format` nothing is left to reformat: a non-zero exit is a syntax error or bad config.
        _run_tool(
            cfg,
            "ruff format",
            ["ruff", "format", *paths],
            lambda r: 0 if r.returncode == 0 else None,
        ),
    ]
    return _summarize(ctx, "lint-fix", runs)


def _summarize(ctx: Context, task: str, runs: list[ToolRun]) -> TaskResult:
    headers = ["tool", "result", "findings", "seconds"]
    rows = [
        [
            r.tool,
            r.result,
            "-" if r.findings is None else str(r.findings),
            "-" if r.skipped else f"{r.seconds:.1f}",
        ]
        for r in runs
    ]
    ctx.out("")
    ctx.out(table(headers, rows))
    gha.summary(f"### dex-tasks {task}\n\n" + gha.markdown_table(headers, rows))
    failed = [r.tool for r in runs if not r.passed]
    data: dict[str, object] = {"tools": [r.as_json() for r in runs], "passed": not failed}
    if failed:
        return TaskResult(exit_code=1, message=f"{task} failed: {', '.join(failed)}", data=data)
    return TaskResult(data=data)
