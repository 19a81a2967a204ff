"""``security [--sarif FILE] [PATH...]``: semgrep with the rules bundled in ``dex_tasks/rules``.

Runs offline (no registry, no metrics, no version check). One semgrep run gives the JSON we gate
on and the SARIF for code scanning. Findings whose severity is in ``security.fail-on`` (default
ERROR) fail the task (exit 1); the others are reported. Extra rule sets come only from
``[tool.dex.security] configs`` (e.g. ``p/owasp-top-ten`` when the runner is online).

Writing the SARIF file is the only change: semgrep writes it to a temporary directory and it is
copied into place afterwards (not under ``--dry-run``), so a failed run never leaves half a file.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from dex_tasks import gha, proc, progress, redact
from dex_tasks.errors import CommandFailed, ConfigError, RemoteError, UsageError
from dex_tasks.tasks import Context, TaskResult, _args, table
from dex_tasks.tools import semgrep

if TYPE_CHECKING:
    import argparse

MAX_ANNOTATIONS = 50
_REGISTRY_RE = re.compile(r"^(auto$|[prs]/[\w.-]+|https?://)")
# semgrep exit codes that mean a rule config is bad (4 invalid pattern, 5 unparsable YAML,
# 7 missing config, 8 invalid language); 0 is a finished scan (findings or not, without --error).
_CONFIG_EXITS = frozenset({4, 5, 7, 8})
MAX_SUMMARY_ROWS = 100
# semgrep's newer CRITICAL..LOW rule severities on its classic scale, so `fail-on = ["ERROR"]`
# also blocks a CRITICAL or HIGH finding (as its annotation level already says "error").
_CLASSIC = {"CRITICAL": "ERROR", "HIGH": "ERROR", "MEDIUM": "WARNING", "LOW": "INFO"}
_LEVELS: dict[str, gha.Level] = {"ERROR": "error", "CRITICAL": "error", "HIGH": "error", "WARNING": "warning",
                                 "MEDIUM": "warning"}  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths",
        nargs="*",
        type=_args.text,
        metavar="PATH",
        help="files or directories to scan (default: security.paths or the root)",
    )
    parser.add_argument(
        "--sarif",
        type=_args.value,
        metavar="FILE",
        help="SARIF output (default: security.sarif, reports/semgrep.sarif)",
    )


def run(ctx: Context, args: argparse.Namespace) -> TaskResult:
    cfg = ctx.config.security
    root = ctx.config.root
    targets = _targets(ctx, list(args.paths) or list(cfg.paths))
    sarif = _resolve(ctx.cwd, args.sarif) if args.sarif else root / cfg.sarif
    extra = [_config(root, c) for c in cfg.configs]
    _check_registry(extra)
    configs = [str(p) for p in semgrep.rule_files()] + extra
    excludes = _excludes(root)
    fail_on = {s.upper() for s in cfg.fail_on}

    # ignore_cleanup_errors: on Windows a tool's child process that outlived a timeout can still hold a
    # file in here; the cleanup's PermissionError must not replace the task's own error.
    with tempfile.TemporaryDirectory(prefix="dex-semgrep-", ignore_cleanup_errors=True) as tmp:
        tmp_sarif = Path(tmp) / "semgrep.sarif"
        argv = semgrep.scan_argv(configs=configs, targets=targets, sarif=tmp_sarif, excludes=excludes)
        if _first_semgrep_run():
            why = "its first run in this environment prepares the rules and can take a minute"
            progress.waiting("semgrep", 1, 1, why=why)
        with gha.group("semgrep"):
            result = proc.run(
                argv, read_only=True, check=False, timeout=cfg.timeout, env=semgrep.OFFLINE_ENV, cwd=root
            )
        if result.returncode != 0:
            _failed(argv, result)
        output = semgrep.parse(result.stdout, argv)
        wrote_sarif = False
        if not proc.is_dry_run() and tmp_sarif.is_file():
            try:
                sarif.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(tmp_sarif, sarif)
            except OSError as exc:  # e.g. a file where the directory should be: bad input, not a crash
                raise UsageError(f"cannot write SARIF to {sarif}: {exc.strerror}") from None
            wrote_sarif = True
        elif proc.is_dry_run():
            proc.echo(f"(dry-run) would write {sarif}")

    blocking = [f for f in output.findings if _blocks(f.severity, fail_on)]
    counts: dict[str, int] = {}
    for finding in output.findings:
        counts[finding.severity] = counts.get(finding.severity, 0) + 1

    _report(ctx, output, blocking, root)
    for error in output.errors:
        ctx.warn(f"semgrep: {error}")
    data = {
        "paths": targets,
        "configs": configs,
        "sarif": str(sarif) if wrote_sarif else None,
        "fail_on": sorted(fail_on),
        "counts": counts,
        "findings": [f.as_dict() for f in output.findings],
        "blocking": len(blocking),
        "errors": list(output.errors),
        "scanned": output.scanned,
        "passed": not blocking,
    }
    if not blocking:
        return TaskResult(data=data)
    return TaskResult(
        exit_code=1,
        message=f"{len(blocking)} semgrep finding(s) of severity {'/'.join(sorted(fail_on))}",
        data=data,
    )


def _blocks(severity: str, fail_on: set[str]) -> bool:
    """In ``fail-on`` as written (``CRITICAL`` blocks only CRITICAL) or on the classic scale."""
    return severity in fail_on or _CLASSIC.get(severity) in fail_on


def _failed(argv: tuple[str, ...], result: proc.Result) -> None:
    tail = redact.redact("\n".join((result.stderr or result.stdout).strip().splitlines()[-15:]))
    if result.returncode in _CONFIG_EXITS:
        raise ConfigError(f"semgrep rejected a rule configuration (exit {result.returncode}):\n{tail}")
    raise CommandFailed(
        f"semgrep failed with exit code {result.returncode}: {proc.quote(argv)}\n{tail}",
        argv=argv,
        returncode=result.returncode,
        stderr_tail=tail,
    )


def _resolve(base: Path, value: str) -> Path:
    path = Path(value)
    return path if path.is_absolute() else base / path


def _targets(ctx: Context, paths: list[str]) -> list[str]:
    """Targets relative to the project root when inside it (stable paths in SARIF and annotations)."""
    if not paths:
        return ["."]
    targets = []
    for value in paths:
        path = _resolve(ctx.cwd, value).resolve()
        if not path.exists():
            raise UsageError(f"{value}: no such file or directory")
        try:
            targets.append(path.relative_to(ctx.config.root.resolve()).as_posix() or ".")
        except ValueError:
            targets.append(str(path))
    return targets


def _config(root: Path, value: str) -> str:
    """A local rule file or directory (relative to the project root), or a registry/URL config.

    Registry names (``p/owasp-top-ten``, ``r/...``, ``auto``) and URLs need network, which is why
    none is used by default; anything else must exist locally, so a typo fails here (exit 2) instead
    of turning into a registry lookup that hangs for minutes offline.
    """
    local = _resolve(root, value)
    if local.exists():
        return str(local)
    if _REGISTRY_RE.match(value):
        return value
    raise ConfigError(
        f"[tool.dex.security] configs: {value!r} is neither a file or directory under {root} "
        "nor a registry name (p/..., r/..., auto) or URL"
    )


def _check_registry(configs: list[str]) -> None:
    """Fail fast (exit 4) when a registry config or URL cannot be downloaded.

    Offline, semgrep itself retries for about 100 s in silence and then ends with a traceback
    (exit 1); a TCP connect with a short timeout says the same in a few seconds, in one line.
    """
    remote = [c for c in configs if _REGISTRY_RE.match(c)]
    checked: dict[tuple[str, int], str | None] = {}
    for config in remote:
        endpoint = semgrep.registry_endpoint(config)
        if endpoint not in checked:
            host, port = endpoint
            proc.echo(
                f"security: waiting for {host}:{port} to answer, for {config} "
                f"(up to {semgrep.PROBE_TIMEOUT:g} s)"
            )
            checked[endpoint] = semgrep.unreachable(host, port)
        why = checked[endpoint]
        if why is not None:
            raise RemoteError(
                f"[tool.dex.security] configs: {config!r} is downloaded from {endpoint[0]}:{endpoint[1]}, "
                f"which cannot be reached ({why}); remove it to scan offline with the bundled rules "
                "(the default), or download the rule file and list its path instead"
            )


def _first_semgrep_run() -> bool:
    """semgrep writes ``~/.semgrep/settings.yml`` on its first run (``SEMGREP_SETTINGS_FILE``
    moves it): without it, the run about to start is the slow first one."""
    settings = os.environ.get("SEMGREP_SETTINGS_FILE") or str(Path.home() / ".semgrep" / "settings.yml")
    return not Path(settings).exists()


def _excludes(root: Path) -> list[str]:
    """Skip the bundled rules' own test files when the package is scanned from its source tree."""
    patterns = []
    for path in semgrep.rule_test_files():
        try:
            patterns.append(path.relative_to(root.resolve()).as_posix())
        except ValueError:
            continue  # installed in site-packages: not part of the project
    return patterns


def _first_sentence(message: str) -> str:
    head, dot, _ = message.partition(". ")
    return head + dot.strip() if dot else message


def _report(ctx: Context, output: semgrep.Output, blocking: list[semgrep.Finding], root: Path) -> None:
    ctx.out(f"semgrep: {output.scanned} file(s) scanned, {len(output.findings)} finding(s)")
    rows = [
        [f.severity, f.rule, f"{f.path}:{f.line}", _first_sentence(f.message)[:100]] for f in output.findings
    ]
    if rows:
        ctx.out(table(["severity", "rule", "location", "why"], rows))
    ctx.out("security: " + ("passed" if not blocking else f"FAILED ({len(blocking)} blocking)"))
    if not gha.active():
        return
    for finding in output.findings[:MAX_ANNOTATIONS]:
        gha.annotation(
            _LEVELS.get(finding.severity, "notice"),
            finding.message,
            file=_repo_path(finding.path, root),
            line=finding.line,
            end_line=finding.end_line,
            col=finding.col,
            title=f"semgrep {finding.rule}",
        )
    status = "passed" if not blocking else "**FAILED**"
    parts = [f"### semgrep: {len(output.findings)} finding(s) — {status}"]
    if output.findings:
        rows = [
            [f.severity, f"`{f.rule}`", f"`{f.path}:{f.line}`", _first_sentence(f.message)]
            for f in output.findings[:MAX_SUMMARY_ROWS]
        ]
        parts.append(gha.markdown_table(["severity", "rule", "location", "why"], rows))
    gha.summary("\n\n".join(parts))


def _repo_path(path: str, root: Path) -> str:
    candidate = Path(path)
    if candidate.is_absolute():
        try:
            return candidate.relative_to(root.resolve()).as_posix()
        except ValueError:
            return path
    return candidate.as_posix()
