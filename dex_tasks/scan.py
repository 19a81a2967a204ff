"""The trivy gate: read trivy's JSON report (schema 2), count findings per severity, decide.

Pure: a file (or parsed data) in, a :class:`Verdict` out; no processes. The gate is computed
from the report and never from trivy's exit code, because trivy-action's SARIF mode drops the
severity filter and ``--exit-code`` then fires on anything (aquasecurity/trivy-action#281).

Only the findings the verdict shows (blocking and warning severities) are kept as objects; the
rest are counted while the report is walked once, so a report with 100k findings costs little
beyond ``json.load`` itself (see ``bench/trivy_gate.py``).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from dex_tasks._untrusted import parse_json
from dex_tasks.errors import MalformedReportError, UsageError

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping
    from pathlib import Path

SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN")
"""trivy's severities, most severe first (``pkg/types`` in trivy: ``dbTypes.SeverityNames``)."""

SCHEMA_VERSION = 2

MAX_REPORT_BYTES = 256 * 1024 * 1024
"""Reports larger than this are refused before they are read (exit 2). A real report of an image
with 10,000 findings is about 30 MB; decoding holds the text and the objects at once, so a 1 GiB
file (of whitespace, say) would need over 2 GB of memory before the gate could say anything."""


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Finding:
    """One vulnerability (or secret / failed misconfiguration check) of one target."""

    id: str
    severity: str
    package: str
    installed: str
    fixed: str
    target: str
    title: str = ""
    kind: str = "vulnerability"  # vulnerability | secret | misconfiguration

    def as_dict(self) -> dict[str, str]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Verdict:
    """The gate's answer: counts per severity and the findings that block or warn."""

    artifact: str
    counts: Mapping[str, int]
    blocking: tuple[Finding, ...]
    warnings: tuple[Finding, ...]
    targets: int
    fail_on: tuple[str, ...]
    warn_on: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.blocking

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def _bad(source: str, detail: str) -> MalformedReportError:
    return MalformedReportError(f"{source}: not a valid trivy JSON report: {detail}")


# The keys the gate reads from each finding; everything else (descriptions, references, CVSS
# vectors, layers: about 90% of a report) is dropped while the JSON is decoded.
_KEEP = {
    "VulnerabilityID": (
        "VulnerabilityID",
        "PkgName",
        "InstalledVersion",
        "FixedVersion",
        "Severity",
        "Title",
    ),
    "RuleID": ("RuleID", "Category", "Severity", "Title"),
    "AVDID": ("ID", "Type", "Severity", "Title", "Status"),
}


def _slim(obj: dict[str, Any]) -> dict[str, Any]:
    """``json`` object hook: keep only what the gate reads of each finding, as soon as it is decoded.

    Called innermost first, so a finding's CVSS, references and description are released as soon
    as the finding itself is complete; peak memory is then a fraction of ``json.load``'s.
    """
    for marker, keys in _KEEP.items():
        if marker in obj:
            return {key: obj[key] for key in keys if key in obj}
    return obj


def load(path: Path) -> dict[str, Any]:
    """Read and decode ``path``; any problem is a :class:`MalformedReportError` naming the file.

    The size is checked with ``stat`` before anything is read (:data:`MAX_REPORT_BYTES`).
    """
    try:
        size = path.stat().st_size
        if size > MAX_REPORT_BYTES:
            raise UsageError(
                f"{path}: the report is {_size(size)}, "
                f"over the {_size(MAX_REPORT_BYTES)} limit for a trivy report"
            )
        # Text mode: only the decoded str is held (json.load on a binary file keeps the bytes too).
        with path.open(encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        raise UsageError(f"{path}: no such report file") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the report: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise _bad(str(path), f"not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except ValueError as exc:  # a path with a NUL byte: "embedded null byte"
        raise UsageError(f"{path!r}: cannot read the report: {exc}") from None
    try:
        data = parse_json(text, object_hook=_slim)
    except ValueError as exc:
        raise _bad(str(path), str(exc)) from None
    if not isinstance(data, dict):
        raise _bad(str(path), f"expected a JSON object, got {type(data).__name__}")
    return data


def _size(size: int) -> str:
    mib = 1024 * 1024
    if size < mib:
        return f"{size} bytes"
    return f"{size // mib} MiB" if size % mib == 0 else f"{size / mib:.1f} MiB"


def _text(item: Mapping[str, Any], key: str, source: str, where: str, *, required: bool = False) -> str:
    value = item.get(key)
    if value is None:
        if required:
            raise _bad(source, f"{where}: missing {key}")
        return ""
    if not isinstance(value, str):
        raise _bad(source, f"{where}.{key}: expected a string, got {type(value).__name__}")
    return value


def _severity(item: Mapping[str, Any], source: str, where: str) -> str:
    # An empty severity is what trivy writes for "not rated"; it renders that as UNKNOWN.
    severity = _text(item, "Severity", source, where) or "UNKNOWN"
    if severity not in SEVERITIES:
        raise _bad(source, f"{where}.Severity: unknown severity {severity!r}")
    return severity


def _list(value: object, source: str, where: str) -> list[Any]:
    """trivy writes ``null`` for an empty list (Go's nil slice), so None means empty."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise _bad(source, f"{where}: expected a list, got {type(value).__name__}")
    return value


def _object(value: object, source: str, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise _bad(source, f"{where}: expected an object, got {type(value).__name__}")
    return value


def iter_findings(data: Mapping[str, Any], source: str = "report") -> Iterator[Finding]:
    """Every finding of a decoded report, validated as it is walked (one pass, no copies)."""
    version = data.get("SchemaVersion")
    if version != SCHEMA_VERSION or isinstance(version, bool):
        raise _bad(source, f"SchemaVersion is {version!r}, expected {SCHEMA_VERSION} (trivy 0.20 or newer)")
    # The fields `trivy convert` decodes into its types.Report (for the SARIF): of another JSON type
    # they are its "json decode error" (exit 1 after the gate); refused here first, naming the field.
    for field, kind, name in (("Metadata", dict, "an object"), ("ArtifactName", str, "a string"),
                              ("ArtifactType", str, "a string")):  # fmt: skip
        value = data.get(field)
        if value is not None and not isinstance(value, kind):
            raise _bad(source, f"{field}: expected {name}, got {type(value).__name__}")
    for r, raw_result in enumerate(_list(data.get("Results"), source, "Results")):
        where = f"Results[{r}]"
        result = _object(raw_result, source, where)
        target = _text(result, "Target", source, where, required=True)
        for v, raw in enumerate(_list(result.get("Vulnerabilities"), source, f"{where}.Vulnerabilities")):
            at = f"{where}.Vulnerabilities[{v}]"
            vuln = _object(raw, source, at)
            yield Finding(
                id=_text(vuln, "VulnerabilityID", source, at, required=True),
                severity=_severity(vuln, source, at),
                package=_text(vuln, "PkgName", source, at, required=True),
                installed=_text(vuln, "InstalledVersion", source, at),
                fixed=_text(vuln, "FixedVersion", source, at),
                target=target,
                title=_text(vuln, "Title", source, at),
            )
        for s, raw in enumerate(_list(result.get("Secrets"), source, f"{where}.Secrets")):
            at = f"{where}.Secrets[{s}]"
            secret = _object(raw, source, at)
            yield Finding(
                id=_text(secret, "RuleID", source, at, required=True),
                severity=_severity(secret, source, at),
                package=_text(secret, "Category", source, at),
                installed="",
                fixed="",
                target=target,
                title=_text(secret, "Title", source, at),
                kind="secret",
            )
        for m, raw in enumerate(_list(result.get("Misconfigurations"), source, f"{where}.Misconfigurations")):
            at = f"{where}.Misconfigurations[{m}]"
            misconf = _object(raw, source, at)
            if _text(misconf, "Status", source, at) not in {"", "FAIL"}:
                continue  # PASS / EXCEPTION entries are listed with --include-non-failures only
            yield Finding(
                id=_text(misconf, "ID", source, at, required=True),
                severity=_severity(misconf, source, at),
                package=_text(misconf, "Type", source, at),
                installed="",
                fixed="",
                target=target,
                title=_text(misconf, "Title", source, at),
                kind="misconfiguration",
            )


def check_severities(values: Iterable[str], what: str) -> tuple[str, ...]:
    result = tuple(v.upper() for v in values)
    for value in result:
        if value not in SEVERITIES:
            raise UsageError(f"{what}: unknown severity {value!r} (expected one of {', '.join(SEVERITIES)})")
    return result


def evaluate(
    data: Mapping[str, Any],
    *,
    fail_on: Iterable[str] = ("CRITICAL",),
    warn_on: Iterable[str] = ("HIGH",),
    source: str = "report",
) -> Verdict:
    """Apply the gate to a decoded report. A severity in both lists blocks."""
    fail = check_severities(fail_on, "fail-on")
    warn = tuple(s for s in check_severities(warn_on, "warn-on") if s not in fail)
    fail_set, warn_set = frozenset(fail), frozenset(warn)
    counts = dict.fromkeys(SEVERITIES, 0)
    blocking: list[Finding] = []
    warnings: list[Finding] = []
    for finding in iter_findings(data, source):
        counts[finding.severity] += 1
        if finding.severity in fail_set:
            blocking.append(finding)
        elif finding.severity in warn_set:
            warnings.append(finding)
    rank = {s: i for i, s in enumerate(SEVERITIES)}
    blocking.sort(key=lambda f: (rank[f.severity], f.target, f.package, f.id))
    warnings.sort(key=lambda f: (rank[f.severity], f.target, f.package, f.id))
    artifact = data.get("ArtifactName")
    return Verdict(
        artifact=artifact if isinstance(artifact, str) else "",
        counts=counts,
        blocking=tuple(blocking),
        warnings=tuple(warnings),
        targets=len(_list(data.get("Results"), source, "Results")),
        fail_on=fail,
        warn_on=warn,
    )


def evaluate_file(
    path: Path, *, fail_on: Iterable[str] = ("CRITICAL",), warn_on: Iterable[str] = ("HIGH",)
) -> Verdict:
    """Load ``path`` and apply the gate; a malformed report raises UsageError (exit 2) naming it."""
    return evaluate(load(path), fail_on=fail_on, warn_on=warn_on, source=str(path))
