"""semgrep: argv for an offline scan with the bundled rules, and parsing of its JSON output.

Offline means: ``--metrics=off``, ``--disable-version-check`` (the version check alone hangs for
about 100 s without network), no ``--config auto`` / ``p/...`` unless the project lists them in
``[tool.dex.security] configs``. One run writes both outputs: JSON on stdout (parsed here) and
SARIF through ``--sarif-output`` (semgrep >= 1.80).
"""

from __future__ import annotations

import dataclasses
import socket
import threading
import urllib.parse
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dex_tasks._untrusted import parse_json
from dex_tasks.errors import CommandFailed

if TYPE_CHECKING:
    from collections.abc import Sequence

RULES_DIR = Path(__file__).resolve().parent.parent / "rules"
OFFLINE_ENV = {"SEMGREP_ENABLE_VERSION_CHECK": "0", "SEMGREP_SEND_METRICS": "off"}
REGISTRY_HOST = "semgrep.dev"  # where `p/...`, `r/...`, `s/...` and `auto` are fetched from
REGISTRY_PORT = 443
PROBE_TIMEOUT = 5.0
"""Seconds to wait for a TCP connection to the registry. Without it, an offline semgrep retries
the download for about 100 s and then ends with a 16-line traceback (exit 1)."""
_RULE_SUFFIXES = (".yml", ".yaml")
_TEST_SUFFIXES = (".test.yml", ".test.yaml")


def rule_files(rules_dir: Path = RULES_DIR) -> tuple[Path, ...]:
    """The bundled rule files; their ``--test`` targets (``python.py``, ``*.test.yml``) are not rules."""
    return tuple(
        sorted(
            p
            for p in rules_dir.iterdir()
            if p.is_file() and p.name.endswith(_RULE_SUFFIXES) and not p.name.endswith(_TEST_SUFFIXES)
        )
    )


def rule_test_files(rules_dir: Path = RULES_DIR) -> tuple[Path, ...]:
    """The planted-vulnerable examples beside the rules, which a project scan must skip."""
    rules = set(rule_files(rules_dir))
    return tuple(
        sorted(
            p for p in rules_dir.iterdir() if p.is_file() and p not in rules and p.suffix in {".py", ".yml"}
        )
    )


def scan_argv(
    *,
    configs: Sequence[str],
    targets: Sequence[str],
    sarif: Path,
    excludes: Sequence[str] = (),
) -> tuple[str, ...]:
    argv = ["semgrep", "scan", "--metrics=off", "--disable-version-check", "--no-rewrite-rule-ids"]
    argv += ["--json", f"--sarif-output={sarif}"]
    for config in configs:
        argv += ["--config", config]
    for pattern in excludes:
        argv.append(f"--exclude={pattern}")
    argv += ["--", *targets]
    return tuple(argv)


def registry_endpoint(config: str) -> tuple[str, int]:
    """Host and port a registry config or URL is downloaded from, or the HTTPS proxy semgrep would
    use for it (semgrep's requests honour ``HTTPS_PROXY``/``NO_PROXY``)."""
    host, port = REGISTRY_HOST, REGISTRY_PORT
    if config.startswith(("http://", "https://")):
        parts = urllib.parse.urlsplit(config)
        host = parts.hostname or host
        port = parts.port or (443 if parts.scheme == "https" else 80)
    proxy = urllib.request.getproxies().get("https" if port == 443 else "http")
    if proxy and not urllib.request.proxy_bypass(host):
        parts = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        if parts.hostname:
            return parts.hostname, parts.port or 80
    return host, port


def unreachable(host: str, port: int, timeout: float = PROBE_TIMEOUT) -> str | None:
    """None when a TCP connection to ``host:port`` opens within ``timeout``, else why not.

    In a daemon thread: the name lookup (``getaddrinfo``) does not honour the socket timeout, and
    an offline resolver can take longer than the whole budget.
    """
    outcome: list[str | None] = []

    def connect() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                outcome.append(None)
        except OSError as exc:
            outcome.append(f"{type(exc).__name__}: {exc.strerror or exc}")

    thread = threading.Thread(target=connect, name="dex-semgrep-probe", daemon=True)
    thread.start()
    thread.join(timeout)
    return outcome[0] if outcome else f"no connection within {timeout:g} s"


def rule_test_argv(rules_dir: Path = RULES_DIR) -> tuple[str, ...]:
    return ("semgrep", "--test", "--metrics=off", "--disable-version-check", str(rules_dir))


@dataclasses.dataclass(frozen=True, kw_only=True)
class Finding:
    rule: str
    severity: str
    path: str
    line: int
    end_line: int
    col: int
    message: str
    cwe: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["cwe"] = list(self.cwe)
        return data


@dataclasses.dataclass(frozen=True, kw_only=True)
class Output:
    findings: tuple[Finding, ...]
    errors: tuple[str, ...]  # semgrep's non-fatal errors (unparsable files, rule timeouts)
    scanned: int


def _as_tuple(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        return tuple(str(v) for v in value)
    return ()


def parse(stdout: str, argv: Sequence[str]) -> Output:
    """Parse ``semgrep --json`` output; anything else is a failed command (exit 1, with the tail)."""
    try:
        data = parse_json(stdout)
        results = data["results"]
        raw_errors = data.get("errors") or []
    except (ValueError, KeyError, TypeError) as exc:
        tail = "\n".join(stdout.strip().splitlines()[-5:])
        raise CommandFailed(
            f"semgrep did not print its JSON result ({type(exc).__name__}: {exc}): {tail[:500]}",
            argv=argv,
            returncode=0,
        ) from None
    findings = []
    for result in results:
        extra = result.get("extra") or {}
        metadata = extra.get("metadata") or {}
        findings.append(
            Finding(
                rule=str(result.get("check_id", "")),
                severity=str(extra.get("severity", "INFO")).upper(),
                path=str(result.get("path", "")),
                line=int((result.get("start") or {}).get("line", 0)),
                end_line=int((result.get("end") or {}).get("line", 0)),
                col=int((result.get("start") or {}).get("col", 0)),
                message=" ".join(str(extra.get("message", "")).split()),
                cwe=_as_tuple(metadata.get("cwe")),
            )
        )
    findings.sort(key=lambda f: (f.path, f.line, f.rule))
    errors = tuple(
        " ".join(str(e.get("message") or e.get("type") or e).split())[:300]
        for e in raw_errors
        if isinstance(e, dict)
    )
    scanned = len((data.get("paths") or {}).get("scanned") or [])
    return Output(findings=tuple(findings), errors=errors, scanned=scanned)
