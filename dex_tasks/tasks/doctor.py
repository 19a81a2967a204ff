"""``doctor``: which tools are installed (and their versions), whether the config loads, the token.

Required by default: what the everyday tasks need (git, uv, ruff, pytest, and mypy unless
``[tool.dex.lint] mypy = false``). docker, trivy, kubectl, argocd and semgrep are reported with the
tasks that need them and only count as required for the tasks named with ``--require``. A missing
required tool is exit 3, like any task that finds its tool missing.
"""

from __future__ import annotations

import dataclasses
import os
from typing import TYPE_CHECKING

from dex_tasks import proc, redact
from dex_tasks.errors import EXIT_TOOL_MISSING, CommandFailed, ToolMissing, UsageError
from dex_tasks.tasks import Context, TaskResult, table

if TYPE_CHECKING:
    import argparse

VERSION_TIMEOUT = 20.0


@dataclasses.dataclass(frozen=True, kw_only=True)
class Tool:
    name: str
    version_argv: tuple[str, ...]
    tasks: tuple[str, ...]
    #: Needed by the everyday tasks, so missing it fails `doctor` without --require.
    core: bool = False
    env: tuple[tuple[str, str], ...] = ()


TOOLS: tuple[Tool, ...] = (
    Tool(name="uv", version_argv=("uv", "--version"), core=True,
         tasks=("lint", "test", "test-cov", "security")),
    Tool(name="git", version_argv=("git", "--version"), core=True,
         tasks=("image-build", "bump-overlay", "promote", "rollback", "history", "status", "preview")),
    Tool(name="ruff", version_argv=("ruff", "--version"), tasks=("lint", "lint-fix"), core=True),
    Tool(name="mypy", version_argv=("mypy", "--version"), tasks=("lint",), core=True),
    Tool(name="pytest", version_argv=("pytest", "--version"), tasks=("test", "test-cov"), core=True),
    Tool(name="docker", version_argv=("docker", "--version"), tasks=("image-build",)),
    Tool(name="trivy", version_argv=("trivy", "--version"), tasks=("trivy-scan",)),
    Tool(name="kubectl", version_argv=("kubectl", "version", "--client"),
         tasks=("status", "rollback", "preview", "verify", "promote")),
    Tool(name="argocd", version_argv=("argocd", "version", "--client"),
         tasks=("status", "rollback", "verify", "promote")),
    # semgrep asks the network for a newer version first and hangs offline without this.
    Tool(name="semgrep", version_argv=("semgrep", "--version"), tasks=("security",),
         env=(("SEMGREP_ENABLE_VERSION_CHECK", "0"), ("SEMGREP_SEND_METRICS", "off"))),
)  # fmt: skip

TOKEN_VARS = redact.GITHUB_TOKEN_VARS
TOKEN_TASKS = ("bump-overlay", "promote", "rollback", "preview")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--require",
        nargs="+",
        metavar="TASK",
        default=[],
        help="also fail (exit 3) when a tool these tasks need is missing, "
        "e.g. --require image-build trivy-scan",
    )


def _version(tool: Tool) -> str:
    try:
        # read_only: a version query changes nothing, so it also runs under --dry-run.
        result = proc.run(
            tool.version_argv,
            read_only=True,
            check=False,
            timeout=VERSION_TIMEOUT,
            quiet=True,
            env=dict(tool.env) or None,
        )
    except (CommandFailed, ToolMissing, OSError) as exc:
        return f"? ({str(exc).splitlines()[0]})"
    text = (result.stdout.strip() or result.stderr.strip()).splitlines()
    if not text:
        return f"? (exit {result.returncode})"
    return text[0].strip()


def _required(tool: Tool, ctx: Context, wanted: set[str]) -> bool:
    if tool.name == "mypy" and not ctx.config.lint.mypy:
        return bool(wanted & set(tool.tasks))
    return tool.core or bool(wanted & set(tool.tasks))


def run(ctx: Context, args: argparse.Namespace) -> TaskResult:
    wanted: set[str] = set()
    for name in args.require:
        if name not in ctx.task_names:
            raise UsageError(
                f"doctor --require: unknown task {name!r}; tasks are {', '.join(ctx.task_names)}"
            )
        wanted.add(name)

    rows: list[list[str]] = []
    tools: list[dict[str, object]] = []
    missing: list[str] = []
    for tool in TOOLS:
        path = proc.which(tool.name)
        required = _required(tool, ctx, wanted)
        version = _version(tool) if path else ""
        if path:
            status = "ok"
        elif required:
            status = "MISSING"
            missing.append(tool.name)
        else:
            status = "missing (optional)"
        rows.append([tool.name, status, version or "-", ", ".join(tool.tasks)])
        tools.append(
            {
                "tool": tool.name,
                "found": path is not None,
                "path": path,
                "version": version or None,
                "required": required,
                "tasks": list(tool.tasks),
            }
        )
    ctx.out(table(["tool", "status", "version", "needed by"], rows))
    ctx.out("")

    cfg = ctx.config
    ctx.out(f"config: ok ({cfg.path or 'no pyproject.toml found: defaults'})")
    token_var = next((name for name in TOKEN_VARS if os.environ.get(name, "").strip()), None)
    if token_var:
        # Only the variable's name: the value is a secret.
        ctx.out(f"GitHub token: present in ${token_var}")
    else:
        names = " or ".join(TOKEN_VARS)
        ctx.out(f"GitHub token: not set (set {names}; needed to open PRs: {', '.join(TOKEN_TASKS)})")

    data: dict[str, object] = {
        "tools": tools,
        "config": {"valid": True, "path": str(cfg.path) if cfg.path else None},
        "github_token": {"present": token_var is not None, "env": token_var},
        "missing_required": missing,
    }
    for name in missing:
        hint = proc.INSTALL_HINTS.get(name)
        if hint:
            ctx.out(f"{name}: {hint}")
    if missing:
        return TaskResult(
            exit_code=EXIT_TOOL_MISSING,
            message=f"missing required tools: {', '.join(missing)}",
            data=data,
        )
    return TaskResult(data=data)
