"""The trivy gate (dex_tasks.scan) on trivy's own golden reports and on hand-made edge cases."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dex_tasks import scan
from dex_tasks.errors import EXIT_USAGE, UsageError
from tests.helpers import REPO_ROOT

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "trivy"


def _counts(**given: int) -> dict[str, int]:
    return {s: given.get(s, 0) for s in scan.SEVERITIES}


@pytest.mark.parametrize(
    ("name", "passed", "counts", "blocking"),
    [
        ("alpine-39-high-critical.json", False, _counts(CRITICAL=2), ["CVE-2019-14697", "CVE-2019-14697"]),
        ("alpine-310.json", True, _counts(MEDIUM=4), []),
        ("debian-buster.json", False, _counts(CRITICAL=1, LOW=1), ["CVE-2019-18224"]),
        ("centos-7-ignore-unfixed.json", True, _counts(MEDIUM=1, LOW=1), []),
        ("distroless-base.json", True, _counts(MEDIUM=2, LOW=2), []),
    ],
)
def test_gate_on_every_fixture(name: str, passed: bool, counts: dict[str, int], blocking: list[str]) -> None:
    verdict = scan.evaluate_file(FIXTURES / name)
    assert verdict.passed is passed
    assert dict(verdict.counts) == counts
    assert [f.id for f in verdict.blocking] == sorted(blocking)
    assert verdict.warnings == ()
    assert verdict.targets == 1
    assert verdict.artifact.startswith("testdata/fixtures/images/")


def test_fixture_list_is_complete() -> None:
    # Every fixture in tests/fixtures/trivy (real trivy reports) is covered by the table above.
    assert {p.name for p in FIXTURES.glob("*.json")} == {
        "alpine-39-high-critical.json", "alpine-310.json", "debian-buster.json",
        "centos-7-ignore-unfixed.json", "distroless-base.json",
    }  # fmt: skip


def test_blocking_finding_details() -> None:
    verdict = scan.evaluate_file(FIXTURES / "debian-buster.json")
    (finding,) = verdict.blocking
    assert finding.as_dict() == {
        "id": "CVE-2019-18224",
        "severity": "CRITICAL",
        "package": "libidn2-0",
        "installed": "2.0.5-1",
        "fixed": "2.0.5-1+deb10u1",
        "target": "testdata/fixtures/images/debian-buster.tar.gz (debian 10.1)",
        "title": finding.title,
        "kind": "vulnerability",
    }


def test_custom_fail_on_and_warn_on() -> None:
    data = scan.load(FIXTURES / "alpine-310.json")
    verdict = scan.evaluate(data, fail_on=["MEDIUM"], warn_on=["LOW"])
    assert not verdict.passed
    assert len(verdict.blocking) == 4
    warned = scan.evaluate(
        scan.load(FIXTURES / "debian-buster.json"), fail_on=["HIGH"], warn_on=["CRITICAL", "LOW"]
    )
    assert warned.passed
    assert [(f.severity, f.id) for f in warned.warnings] == [
        ("CRITICAL", "CVE-2019-18224"),
        ("LOW", "CVE-2019-18276"),
    ]


def test_severity_in_both_lists_blocks() -> None:
    verdict = scan.evaluate(
        scan.load(FIXTURES / "debian-buster.json"), fail_on=["CRITICAL"], warn_on=["CRITICAL"]
    )
    assert len(verdict.blocking) == 1
    assert verdict.warnings == ()
    assert verdict.warn_on == ()


def test_empty_fail_on_never_blocks() -> None:
    verdict = scan.evaluate(
        scan.load(FIXTURES / "alpine-39-high-critical.json"), fail_on=[], warn_on=["CRITICAL"]
    )
    assert verdict.passed
    assert len(verdict.warnings) == 2


def _report(results: object, **extra: Any) -> dict[str, Any]:
    return {"SchemaVersion": 2, "ArtifactName": "app:sha-1a2b3c4d", "Results": results, **extra}


def _vuln(vid: str, severity: str, pkg: str = "openssl", fixed: str = "") -> dict[str, Any]:
    return {"VulnerabilityID": vid, "PkgName": pkg, "InstalledVersion": "1.0", "FixedVersion": fixed,
            "Severity": severity}  # fmt: skip


def test_no_results_passes() -> None:
    # trivy omits Results entirely for an image with nothing to report
    data = {"SchemaVersion": 2, "ArtifactName": "scratch:1"}
    verdict = scan.evaluate(data)
    assert verdict.passed
    assert verdict.total == 0
    assert verdict.targets == 0
    assert scan.evaluate(_report(None)).passed


def test_null_vulnerabilities_and_several_targets() -> None:
    data = _report([
        {"Target": "app (alpine 3.19)", "Class": "os-pkgs", "Vulnerabilities": None},
        {"Target": "usr/lib/python3/site-packages", "Class": "lang-pkgs"},
        {"Target": "app/requirements.txt", "Vulnerabilities": [_vuln("CVE-1", "HIGH", "requests", "2.32.0")]},
        {"Target": "usr/local/bin/tool", "Vulnerabilities": [_vuln("CVE-2", "CRITICAL", "stdlib")]},
    ])  # fmt: skip
    verdict = scan.evaluate(data)
    assert verdict.targets == 4
    assert dict(verdict.counts) == _counts(HIGH=1, CRITICAL=1)
    assert [(f.id, f.target) for f in verdict.blocking] == [("CVE-2", "usr/local/bin/tool")]
    assert [(f.id, f.fixed) for f in verdict.warnings] == [("CVE-1", "2.32.0")]


def test_unknown_severity_is_counted_and_can_block() -> None:
    data = _report([{"Target": "t", "Vulnerabilities": [_vuln("GHSA-x", "UNKNOWN"), _vuln("CVE-3", "")]}])
    verdict = scan.evaluate(data)
    assert verdict.passed
    assert verdict.counts["UNKNOWN"] == 2
    assert not scan.evaluate(data, fail_on=["UNKNOWN"]).passed


def test_secrets_and_failed_misconfigurations_count(tmp_path: Path) -> None:
    data = _report([{
        "Target": "/app/.env",
        "Secrets": [{"RuleID": "github-pat", "Category": "GitHub", "Severity": "CRITICAL", "Title": "PAT"}],
        "Misconfigurations": [
            {"ID": "DS002", "AVDID": "AVD-DS-0002", "Type": "docker", "Severity": "HIGH", "Status": "FAIL"},
            {"ID": "DS001", "AVDID": "AVD-DS-0001", "Type": "docker", "Severity": "HIGH", "Status": "PASS"},
        ],
    }])  # fmt: skip
    path = tmp_path / "report.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    verdict = scan.evaluate_file(path)  # through the slimming decoder
    assert [(f.kind, f.id) for f in verdict.blocking] == [("secret", "github-pat")]
    assert [(f.kind, f.id) for f in verdict.warnings] == [("misconfiguration", "DS002")]


@pytest.mark.parametrize(
    ("content", "detail"),
    [
        ("{not json", "invalid JSON"),
        ("[]", "expected a JSON object"),
        (json.dumps({"SchemaVersion": 1, "Results": []}), "SchemaVersion is 1"),
        (json.dumps({"Results": []}), "SchemaVersion is None"),
        (json.dumps(_report({"Target": "x"})), "Results: expected a list"),
        (json.dumps(_report(["x"])), "Results[0]: expected an object"),
        (json.dumps(_report([{"Vulnerabilities": []}])), "Results[0]: missing Target"),
        (json.dumps(_report([{"Target": "t", "Vulnerabilities": {}}])), "Vulnerabilities: expected a list"),
        (json.dumps(_report([{"Target": "t", "Vulnerabilities": [{"PkgName": "a", "Severity": "LOW"}]}])),
         "missing VulnerabilityID"),
        (json.dumps(_report([{"Target": "t", "Vulnerabilities": [_vuln("CVE-1", "SEVERE")]}])),
         "unknown severity 'SEVERE'"),
        (json.dumps(_report([{"Target": "t", "Vulnerabilities": [{**_vuln("CVE-1", "LOW"), "PkgName": 3}]}])),
         "PkgName: expected a string"),
    ],
)  # fmt: skip
def test_malformed_report_is_a_usage_error_naming_the_file(tmp_path: Path, content: str, detail: str) -> None:
    path = tmp_path / "report.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(UsageError) as info:
        scan.evaluate_file(path)
    assert info.value.exit_code == EXIT_USAGE
    assert str(path) in str(info.value)
    assert detail in str(info.value)


def test_slimming_keeps_what_the_gate_reads(tmp_path: Path) -> None:
    data = scan.load(FIXTURES / "debian-buster.json")
    vuln = data["Results"][0]["Vulnerabilities"][0]
    assert set(vuln) <= {
        "VulnerabilityID",
        "PkgName",
        "InstalledVersion",
        "FixedVersion",
        "Severity",
        "Title",
    }
    assert data["Metadata"]["OS"]["Family"] == "debian"  # other objects are untouched


def test_missing_report_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such report file"):
        scan.evaluate_file(tmp_path / "nope.json")


def test_unknown_gate_severity_is_refused() -> None:
    with pytest.raises(UsageError, match="unknown severity 'SEVERE'"):
        scan.evaluate(_report([]), fail_on=["SEVERE"])


_severity = st.sampled_from([*scan.SEVERITIES, ""])
_vulns = st.lists(
    st.fixed_dictionaries({
        "VulnerabilityID": st.from_regex(r"CVE-20[0-9]{2}-[0-9]{4,6}", fullmatch=True),
        "PkgName": st.sampled_from(["openssl", "zlib", "musl", "requests"]),
        "Severity": _severity,
    }),
    max_size=8,
)  # fmt: skip
_results = st.lists(
    st.fixed_dictionaries(
        {"Target": st.text(min_size=1, max_size=10), "Vulnerabilities": st.none() | _vulns}
    ),
    max_size=4,
)
_gate = st.lists(st.sampled_from(scan.SEVERITIES), max_size=3, unique=True)


@settings(max_examples=200, deadline=None)
@given(results=_results, fail_on=_gate, warn_on=_gate)
def test_gate_properties(results: list[dict[str, Any]], fail_on: list[str], warn_on: list[str]) -> None:
    verdict = scan.evaluate(_report(results), fail_on=fail_on, warn_on=warn_on)
    severities = [v["Severity"] or "UNKNOWN" for r in results for v in (r["Vulnerabilities"] or [])]
    assert verdict.total == len(severities)
    assert dict(verdict.counts) == {s: severities.count(s) for s in scan.SEVERITIES}
    assert verdict.passed == (not any(s in fail_on for s in severities))
    assert all(f.severity in fail_on for f in verdict.blocking)
    assert all(f.severity in warn_on and f.severity not in fail_on for f in verdict.warnings)
    assert len(verdict.blocking) + len(verdict.warnings) == sum(
        1 for s in severities if s in {*fail_on, *warn_on}
    )


def test_bench_generator_makes_a_valid_report(tmp_path: Path) -> None:
    """bench/trivy_gate.py stays runnable: its generated report passes the gate's validation."""
    spec = importlib.util.spec_from_file_location("trivy_gate_bench", REPO_ROOT / "bench" / "trivy_gate.py")
    assert spec is not None
    assert spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    path = tmp_path / "report.json"
    counts = bench.generate(path, 250, 3)
    verdict = scan.evaluate_file(path)
    assert verdict.total == 250
    assert verdict.targets == 3
    assert dict(verdict.counts) == counts
