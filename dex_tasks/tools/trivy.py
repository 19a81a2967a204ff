"""trivy: argv for ``trivy image`` (JSON report) and ``trivy convert`` (JSON -> SARIF).

The scan runs once, for JSON; SARIF is converted from that JSON with trivy's own ``convert``
subcommand, so the code-scanning upload and the gate see the same findings. ``--severity`` is
every severity and ``--exit-code`` is 0: the gate counts every severity itself and never reads
trivy's exit code (aquasecurity/trivy-action#281), so a non-zero exit always means trivy failed.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from dex_tasks import durations
from dex_tasks._untrusted import parse_json

if TYPE_CHECKING:
    from pathlib import Path

ALL_SEVERITIES = "UNKNOWN,LOW,MEDIUM,HIGH,CRITICAL"  # trivy's default value of --severity
IGNORE_FILES = (".trivyignore.yaml", ".trivyignore")
"""Looked up in the project root, first match wins. trivy itself only reads ``.trivyignore``
from the current directory, and ``.trivyignore.yaml`` only when passed with ``--ignorefile``."""


def find_ignorefile(root: Path) -> Path | None:
    for name in IGNORE_FILES:
        candidate = root / name
        if candidate.is_file():
            return candidate
    return None


def image_argv(
    image: str,
    *,
    output: Path,
    ignorefile: Path | None = None,
    ignore_unfixed: bool = False,
    timeout: int = 900,
) -> tuple[str, ...]:
    argv: list[str] = ["trivy", "image", "--format", "json", "--output", str(output)]
    # Every severity and exit code 0, stated explicitly so a trivy.yaml in the project cannot filter
    # the report or turn findings into a failed command: the gate decides, from the JSON.
    argv += ["--severity", ALL_SEVERITIES, "--exit-code", "0"]
    # Not --quiet: it also silences trivy's FATAL line, the one thing a failed scan must show.
    argv += ["--timeout", f"{timeout}s", "--no-progress"]
    if ignorefile is not None:
        argv += ["--ignorefile", str(ignorefile)]
    if ignore_unfixed:
        argv.append("--ignore-unfixed")
    # "--" ends the options, so an image reference can never be read as a flag.
    argv += ["--", image]
    return tuple(argv)


def convert_argv(report: Path, *, sarif: Path) -> tuple[str, ...]:
    return ("trivy", "convert", "--format", "sarif", "--output", str(sarif), "--", str(report))


def version_argv() -> tuple[str, ...]:
    return ("trivy", "--version")


def version_json_argv() -> tuple[str, ...]:
    """``trivy version --format json``: ``{"Version": ..., "VulnerabilityDB": {"UpdatedAt": ...}}``.

    ``VulnerabilityDB`` is absent before the first DB download (trivy's ``pkg/version``).
    """
    return ("trivy", "version", "--format", "json")


_FRACTION_RE = re.compile(r"(\.\d{6})\d+")


def iso_instant(value: object) -> str | None:
    """trivy's Go time (``2024-12-10T06:17:39.436492262Z``) as ISO 8601 Python reads; None if not one.

    Go prints up to 9 fractional digits; ``datetime.fromisoformat`` takes at most 6.
    """
    if not isinstance(value, str) or not value or len(value) > 64:
        return None
    text = _FRACTION_RE.sub(r"\1", value)
    moment = durations.instant(text, naive_is_utc=False)  # an edge year: none, not an OverflowError
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment is not None else None


def parse_version_json(text: str) -> tuple[str, str | None]:
    """(trivy's version, its vulnerability DB's UpdatedAt as ISO 8601 or None); ("", None) if unreadable."""
    try:
        data = parse_json(text)
    except ValueError:
        return "", None
    if not isinstance(data, dict):
        return "", None
    version = data.get("Version")
    db = data.get("VulnerabilityDB")
    updated = iso_instant(db.get("UpdatedAt")) if isinstance(db, dict) else None
    return (version if isinstance(version, str) else ""), updated
