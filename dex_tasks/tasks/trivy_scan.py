"""``trivy-scan [IMAGE] [--report TRIVY_JSON] [--sarif FILE] [--ignore-unfixed]``.

trivy scans once, for JSON; the gate (:mod:`dex_tasks.scan`) is computed from that JSON, never
from trivy's exit code (aquasecurity/trivy-action#281: SARIF mode drops the severity filter).
SARIF for code scanning is converted from the same JSON with ``trivy convert``. ``--report``
evaluates an existing trivy JSON instead of scanning.

The scan is a query (read-only: it also runs under ``--dry-run``); writing the SARIF file is the
one change, so ``--dry-run`` prints the convert command instead of running it.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from dex_tasks import gha, proc, scan
from dex_tasks._untrusted import parse_json
from dex_tasks.errors import UsageError
from dex_tasks.gitops import build_tags
from dex_tasks.scan import SEVERITIES, Finding, Verdict
from dex_tasks.supply import verdicts
from dex_tasks.tasks import Context, TaskResult, _args, table
from dex_tasks.tools import oci, trivy

if TYPE_CHECKING:
    import argparse

    from dex_tasks.gha import Level

MAX_ANNOTATIONS = 20  # GitHub shows only the first 10 per level and step anyway
MAX_SUMMARY_ROWS = 100
MAX_WARNING_ROWS = 50  # blocking findings are always listed in full
# A registry reference with tag and/or digest; anything with spaces or a leading dash is refused
# before trivy sees it.
_IMAGE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@+-]*$")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "image",
        nargs="?",
        metavar="IMAGE",
        help="image reference (default: the configured image at the sha tag)",
    )
    parser.add_argument(
        "--report",
        type=_args.value,
        metavar="TRIVY_JSON",
        help="evaluate an existing trivy JSON report instead of scanning",
    )
    parser.add_argument(
        "--sarif",
        type=_args.value,
        metavar="FILE",
        help="SARIF output (default: scan.sarif, reports/trivy.sarif)",
    )
    parser.add_argument(
        "--ignore-unfixed",
        action="store_true",
        default=None,
        help="pass --ignore-unfixed to trivy: skip unfixed findings (default: scan.ignore-unfixed)",
    )


def run(ctx: Context, args: argparse.Namespace) -> TaskResult:
    cfg = ctx.config.scan
    fail_on = scan.check_severities(cfg.fail_on, "scan.fail-on")
    warn_on = scan.check_severities(cfg.warn_on, "scan.warn-on")
    ignore_unfixed = cfg.ignore_unfixed if args.ignore_unfixed is None else bool(args.ignore_unfixed)
    sarif: Path | None = None
    ignorefile: Path | None = None
    digest: str | None = None
    report_version = ""
    note: str | None = "a report file is not bound to a digest: scan IMAGE@DIGEST to record a verdict"

    if args.report is not None:
        if args.image is not None:
            raise UsageError("give IMAGE or --report, not both")
        if args.ignore_unfixed:
            ctx.warn("--ignore-unfixed is passed to trivy when it scans; it has no effect with --report")
        report = _resolve(ctx, args.report)
        verdict = scan.evaluate_file(report, fail_on=fail_on, warn_on=warn_on)
        image = verdict.artifact
        if args.sarif is not None:
            # An existing report gets SARIF only on request (and then trivy is needed).
            sarif = _convert(ctx, report, _resolve(ctx, args.sarif))
    else:
        image = _check_image(args.image) if args.image is not None else _default_image(ctx)
        target = _resolve(ctx, args.sarif) if args.sarif is not None else ctx.config.root / cfg.sarif
        ignorefile = trivy.find_ignorefile(ctx.config.root)
        proc.require("trivy")  # exit 3 before anything else happens
        # Before the scan: trivy then scans exactly the digest the verdict is recorded for.
        scanned, digest, note = _bind(ctx, image)
        # ignore_cleanup_errors: on Windows a tool's child process that outlived a timeout can still hold a
        # file in here; the cleanup's PermissionError must not replace the task's own error.
        with tempfile.TemporaryDirectory(prefix="dex-trivy-", ignore_cleanup_errors=True) as tmp:
            report = Path(tmp) / "trivy.json"
            with gha.group(f"trivy image {image}"):
                proc.run(
                    trivy.image_argv(
                        scanned,
                        output=report,
                        ignorefile=ignorefile,
                        ignore_unfixed=ignore_unfixed,
                        timeout=cfg.timeout,
                    ),
                    read_only=True,
                    stream=True,
                    timeout=cfg.timeout + 60,
                    cwd=ctx.config.root,
                )
            try:
                verdict = scan.evaluate_file(report, fail_on=fail_on, warn_on=warn_on)
            except UsageError as exc:
                # The file is gone with the temporary directory: say whose report it was.
                raise UsageError(f"trivy's report for {image} cannot be read: {exc}") from None
            report_version = _report_version(report)
            sarif = _convert(ctx, report, target)

    _print(ctx, verdict, image)
    recorded = _record(ctx, verdict, digest, report_version) if digest is not None else None
    if note:
        ctx.out(f"scan verdict not recorded: {note}")
    _annotate(verdict)
    gha.summary(_summary(verdict, image))
    data = {
        "image": image,
        "report": str(_resolve(ctx, args.report)) if args.report is not None else None,
        "sarif": str(sarif) if sarif is not None else None,
        "ignorefile": str(ignorefile) if ignorefile is not None else None,
        "ignore_unfixed": ignore_unfixed,
        "fail_on": list(verdict.fail_on),
        "warn_on": list(verdict.warn_on),
        "counts": dict(verdict.counts),
        "total": verdict.total,
        "targets": verdict.targets,
        "blocking": [f.as_dict() for f in verdict.blocking],
        "warnings": [f.as_dict() for f in verdict.warnings],
        "passed": verdict.passed,
        "digest": digest,
        "verdict": recorded,
        "verdict_note": note,
    }
    if verdict.passed:
        return TaskResult(data=data)
    severities = "/".join(verdict.fail_on)
    return TaskResult(
        exit_code=1,
        message=f"scan gate failed: {len(verdict.blocking)} {severities} finding(s) in {data['image']}",
        data=data,
    )


def _bind(ctx: Context, image: str) -> tuple[str, str | None, str | None]:
    """(what trivy scans, the digest the verdict is for, why no verdict is recorded).

    A verdict is recorded for the configured image only (the one the scan gate reads), by digest:
    ``IMAGE@sha256:...`` as given, or ``IMAGE:TAG`` resolved in the registry first.
    """
    cfg = ctx.config
    name, _, digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    repository, _, tag = name.rpartition(":") if ":" in last else (name, "", "")
    if cfg.registry_check == "off":
        return image, None, "registry-check is off"
    if repository != cfg.image:
        return image, None, f"{repository} is not the configured image ({cfg.image})"
    if digest:
        if not oci.DIGEST_RE.fullmatch(digest):
            raise UsageError(f"invalid digest in {image!r}: expected sha256:<64 hex>")
        return f"{repository}@{digest}", digest, None
    with oci.Client() as client:
        found = client.resolve(repository, tag or "latest")
    if found is None:
        return image, None, f"{image} is not in the registry (push it, then scan it to gate promotions on it)"
    return f"{repository}@{found}", found, None


def _report_version(report: Path) -> str:
    """``Trivy.Version`` of a schema 2 report (trivy 0.56+ writes it; "dev" in source builds), else ""."""
    try:
        data = parse_json(report.read_bytes())
    except (OSError, ValueError):
        return ""
    found = data.get("Trivy") if isinstance(data, dict) else None
    version = found.get("Version") if isinstance(found, dict) else None
    return version if isinstance(version, str) else ""


def _record(ctx: Context, verdict: Verdict, digest: str, report_version: str) -> str | None:
    """Attach the verdict to ``<image>@<digest>`` in the registry; the artifact's digest (None: dry run)."""
    image = ctx.config.image
    result = proc.run(trivy.version_json_argv(), read_only=True, check=False, quiet=True, timeout=60)
    version, db_updated = trivy.parse_version_json(result.stdout) if result.ok else ("", None)
    recorded = verdicts.Verdict(
        digest=digest,
        passed=verdict.passed,
        counts={severity: verdict.counts.get(severity, 0) for severity in SEVERITIES},
        fail_on=verdict.fail_on,
        trivy_version=(version or report_version)[:200],  # the binary that ran; the report as fallback
        db_updated=db_updated,
        scanned_at=dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    state = "passed" if verdict.passed else "failed"
    if ctx.dry_run:
        ctx.out(f"would record the scan verdict ({state}) for {image}@{digest}")
        return None
    with oci.Client() as client:
        artifact = verdicts.record(client, image, digest, recorded)
    ctx.out(f"recorded the scan verdict ({state}) for {image}@{digest} as {artifact}")
    return artifact


def _resolve(ctx: Context, value: str) -> Path:
    path = Path(value)
    return path if path.is_absolute() else ctx.cwd / path


def _check_image(image: str) -> str:
    if not _IMAGE_RE.fullmatch(image):
        raise UsageError(f"invalid image reference {image!r}: expected e.g. ghcr.io/org/app:sha-1a2b3c4d")
    return image


def _default_image(ctx: Context) -> str:
    """The configured image at the sha tag of the commit being built (same rules as image-build)."""

    def git_state() -> build_tags.GitState:
        head = proc.run(("git", "rev-parse", "HEAD"), read_only=True, check=False, cwd=ctx.config.root)
        if head.returncode != 0:
            raise UsageError(
                f"{ctx.config.root}: not a git repository and no GITHUB_SHA: pass IMAGE to trivy-scan"
            )
        return build_tags.GitState(head=head.stdout.strip())

    tags = build_tags.compute(
        os.environ,
        default_branch=ctx.config.default_branch,
        event=build_tags.read_event(os.environ),
        git_state=git_state,
        allow_dirty=True,  # scanning a tag never builds anything, so a dirty tree does not matter
    )
    return _check_image(f"{ctx.config.image}:{tags.sha}")


def _convert(ctx: Context, report: Path, sarif: Path) -> Path | None:
    """Write SARIF from the JSON report with ``trivy convert``; None when dry-run only printed it."""
    if not proc.is_dry_run():
        try:
            sarif.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # e.g. a file where the directory should be: bad input, not a crash
            raise UsageError(f"cannot write SARIF to {sarif}: {exc.strerror}") from None
    result = proc.run(trivy.convert_argv(report, sarif=sarif), timeout=300, cwd=ctx.config.root)
    return None if result.skipped else sarif


def _rows(findings: tuple[Finding, ...]) -> list[list[str]]:

    return [[f.severity, f.id, f.package, f.installed, f.fixed or "(none)", f.target] for f in findings]


_HEADERS = ["severity", "id", "package", "installed", "fixed", "target"]


def _print(ctx: Context, verdict: Verdict, image: str) -> None:

    ctx.out(f"trivy: {image}: {verdict.total} finding(s) in {verdict.targets} target(s)")
    ctx.out(
        table(
            ["severity", "count", "gate"],
            [[s, str(verdict.counts[s]), _role(verdict, s)] for s in SEVERITIES],
        )
    )
    if verdict.blocking:
        ctx.out(f"\nblocking ({'/'.join(verdict.fail_on)}):")
        ctx.out(table(_HEADERS, _rows(verdict.blocking)))
    if verdict.warnings:
        ctx.out(f"\nwarnings ({'/'.join(verdict.warn_on)}):")
        ctx.out(table(_HEADERS, _rows(verdict.warnings[:MAX_WARNING_ROWS])))
        if len(verdict.warnings) > MAX_WARNING_ROWS:
            more = len(verdict.warnings) - MAX_WARNING_ROWS
            ctx.out(f"... and {more} more (all of them in --json and the SARIF)")
    ctx.out("\ngate: " + ("passed" if verdict.passed else "FAILED"))


def _role(verdict: Verdict, severity: str) -> str:

    if severity in verdict.fail_on:
        return "blocks"
    if severity in verdict.warn_on:
        return "warns"
    return "info"


def _message(finding: Finding) -> str:

    fixed = f"fixed in {finding.fixed}" if finding.fixed else "no fix yet"
    where = f"{finding.package} {finding.installed}".strip()
    return f"{finding.id} ({finding.severity}) in {where}, {fixed} [{finding.target}]"


def _annotate(verdict: Verdict) -> None:

    if not gha.active():
        return
    levels: tuple[tuple[Level, tuple[Finding, ...]], ...] = (
        ("error", verdict.blocking),
        ("warning", verdict.warnings),
    )
    for level, findings in levels:
        for finding in findings[:MAX_ANNOTATIONS]:
            gha.annotation(level, _message(finding), title=f"trivy {finding.severity}")
        if len(findings) > MAX_ANNOTATIONS:
            gha.annotation(
                level,
                f"... and {len(findings) - MAX_ANNOTATIONS} more; see the job summary",
                title="trivy",
            )


def _summary(verdict: Verdict, image: str) -> str:

    status = "passed" if verdict.passed else "**FAILED**"
    parts = [
        f"### trivy: `{image}` — gate {status}",
        gha.markdown_table(
            ["severity", "count", "gate"], [[s, verdict.counts[s], _role(verdict, s)] for s in SEVERITIES]
        ),
    ]
    for title, findings in (("Blocking", verdict.blocking), ("Warnings", verdict.warnings)):
        if findings:
            parts.append(f"#### {title}")
            parts.append(gha.markdown_table(_HEADERS, _rows(findings[:MAX_SUMMARY_ROWS])))
            if len(findings) > MAX_SUMMARY_ROWS:
                parts.append(f"... and {len(findings) - MAX_SUMMARY_ROWS} more")
    return "\n\n".join(parts)
