"""``trivy-scan`` end to end through the CLI, with the fake trivy (tests/fakes/trivy) on PATH."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.fakes.trivy_cli import install as install_fake
from tests.helpers import REPO_ROOT, git

if TYPE_CHECKING:
    from tests.conftest import CliRunner

FIXTURES = REPO_ROOT / "tests" / "fixtures" / "trivy"
IMAGES = {
    "alpine:3.9": "alpine-39-high-critical.json",
    "alpine:3.10": "alpine-310.json",
    "debian:buster": "debian-buster.json",
    "centos:7": "centos-7-ignore-unfixed.json",
    "gcr.io/distroless/base": "distroless-base.json",
}


def _name(image: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in image) + ".json"


@dataclasses.dataclass(frozen=True)
class Env:
    project: Path
    reports: Path
    log: Path
    bin: Path

    def calls(self) -> list[list[str]]:
        if not self.log.exists():
            return []
        return [json.loads(line)["argv"] for line in self.log.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Env:
    bin_dir = tmp_path / "bin"
    install_fake(bin_dir)
    reports = tmp_path / "reports-by-image"
    reports.mkdir()
    for image, fixture in IMAGES.items():
        shutil.copyfile(FIXTURES / fixture, reports / _name(image))
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        # registry.example is not reachable: recording verdicts is tested in test_e2e_registry.py.
        '[project]\nname = "app"\n\n[tool.dex]\nimage = "registry.example/team/app"\n'
        'registry-check = "off"\n',
        encoding="utf-8",
    )
    log = tmp_path / "trivy-calls.jsonl"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("FAKE_TRIVY_REPORTS", str(reports))
    monkeypatch.setenv("FAKE_TRIVY_LOG", str(log))
    return Env(project=project, reports=reports, log=log, bin=bin_dir)


def _json(out: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(out)
    return data


def _check_sarif(path: Path, results: int) -> dict[str, Any]:
    sarif: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    assert sarif["version"] == "2.1.0"
    assert sarif["$schema"].endswith("sarif-schema-2.1.0.json")
    (run,) = sarif["runs"]
    assert run["tool"]["driver"]["name"] == "Trivy"
    assert len(run["results"]) == results
    rule_ids = [rule["id"] for rule in run["tool"]["driver"]["rules"]]
    for result in run["results"]:
        assert rule_ids[result["ruleIndex"]] == result["ruleId"]
        assert result["level"] in {"error", "warning", "note", "none"}
        assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    return sarif


@pytest.mark.timeout(60)
def test_critical_blocks_with_json_payload_and_sarif(env: Env, run_cli: CliRunner) -> None:
    result = run_cli("trivy-scan", "alpine:3.9", "--json", cwd=env.project)
    assert result.code == 1, result.err
    data = _json(result.out)
    assert data["task"] == "trivy-scan"
    assert data["exit_code"] == 1
    assert data["passed"] is False
    assert data["image"] == "alpine:3.9"
    assert data["counts"] == {"CRITICAL": 2, "HIGH": 0, "MEDIUM": 0, "LOW": 0, "UNKNOWN": 0}
    assert [(f["id"], f["package"], f["installed"], f["fixed"]) for f in data["blocking"]] == [
        ("CVE-2019-14697", "musl", "1.1.20-r4", "1.1.20-r5"),
        ("CVE-2019-14697", "musl-utils", "1.1.20-r4", "1.1.20-r5"),
    ]
    assert data["warnings"] == []
    sarif = Path(data["sarif"])
    assert sarif == env.project / "reports" / "trivy.sarif"
    _check_sarif(sarif, results=2)
    # human output on stderr under --json: the counts table and the blocking findings
    assert "CRITICAL  2" in result.err
    assert "musl-utils" in result.err
    assert "scan gate failed: 2 CRITICAL finding(s) in alpine:3.9" in result.err
    # trivy ran once for the scan and once to convert
    scan_call, convert_call = env.calls()
    assert scan_call[:5] == ["image", "--format", "json", "--output", scan_call[4]]
    assert scan_call[-2:] == ["--", "alpine:3.9"]
    # every severity, exit code 0: neither filtered nor judged by trivy
    assert scan_call[scan_call.index("--severity") + 1] == "UNKNOWN,LOW,MEDIUM,HIGH,CRITICAL"
    assert scan_call[scan_call.index("--exit-code") + 1] == "0"
    assert convert_call[:5] == ["convert", "--format", "sarif", "--output", str(sarif)]
    assert convert_call[-1] == scan_call[4]


@pytest.mark.timeout(60)
def test_medium_only_passes_and_human_table(env: Env, run_cli: CliRunner) -> None:
    sarif = env.project / "out" / "scan.sarif"
    result = run_cli("trivy-scan", "alpine:3.10", "--sarif", "out/scan.sarif", cwd=env.project)
    assert result.code == 0, result.err
    assert "MEDIUM    4      info" in result.out
    assert "gate: passed" in result.out
    _check_sarif(sarif, results=4)


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("image", "code", "counts"),
    [
        ("debian:buster", 1, {"CRITICAL": 1, "LOW": 1}),
        ("centos:7", 0, {"MEDIUM": 1, "LOW": 1}),
        ("gcr.io/distroless/base", 0, {"MEDIUM": 2, "LOW": 2}),
    ],
)
def test_other_fixtures_through_the_cli(
    env: Env, run_cli: CliRunner, image: str, code: int, counts: dict[str, int]
) -> None:
    result = run_cli("trivy-scan", image, "--json", cwd=env.project)
    assert result.code == code, result.err
    data = _json(result.out)
    assert {k: v for k, v in data["counts"].items() if v} == counts


@pytest.mark.timeout(60)
def test_default_image_is_the_sha_tag_of_head(env: Env, run_cli: CliRunner) -> None:
    git("init", "-q", cwd=env.project)
    git("add", "pyproject.toml", cwd=env.project)
    git("commit", "-q", "-m", "init", cwd=env.project)
    head = git("rev-parse", "HEAD", cwd=env.project)
    shutil.copyfile(
        FIXTURES / "alpine-310.json", env.reports / _name(f"registry.example/team/app:sha-{head[:8]}")
    )
    result = run_cli("trivy-scan", "--json", cwd=env.project)
    assert result.code == 0, result.err
    assert _json(result.out)["image"] == f"registry.example/team/app:sha-{head[:8]}"


@pytest.mark.timeout(60)
def test_default_image_from_github_sha(env: Env, run_cli: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_SHA", "0123456789abcdef0123456789abcdef01234567")
    monkeypatch.setenv("GITHUB_EVENT_NAME", "push")
    shutil.copyfile(FIXTURES / "alpine-310.json", env.reports / "default.json")
    result = run_cli("trivy-scan", "--json", cwd=env.project)
    assert result.code == 0, result.err
    assert _json(result.out)["image"] == "registry.example/team/app:sha-01234567"


@pytest.mark.timeout(60)
def test_trivyignore_is_passed_and_honoured(env: Env, run_cli: CliRunner) -> None:
    ignore = env.project / ".trivyignore"
    ignore.write_text("# accepted: not reachable from our code\nCVE-2019-18224\n", encoding="utf-8")
    result = run_cli("trivy-scan", "debian:buster", "--json", cwd=env.project)
    assert result.code == 0, result.err
    data = _json(result.out)
    assert data["ignorefile"] == str(ignore)
    assert data["counts"]["CRITICAL"] == 0
    scan_call = env.calls()[0]
    assert scan_call[scan_call.index("--ignorefile") + 1] == str(ignore)


@pytest.mark.timeout(60)
def test_trivyignore_yaml_is_passed(env: Env, run_cli: CliRunner) -> None:
    ignore = env.project / ".trivyignore.yaml"
    ignore.write_text(
        "vulnerabilities:\n  - id: CVE-2019-18224\n    statement: fixed upstream, rebuilt weekly\n",
        encoding="utf-8",
    )
    result = run_cli("trivy-scan", "debian:buster", "--json", cwd=env.project)
    assert result.code == 0, result.err
    assert _json(result.out)["ignorefile"] == str(ignore)
    assert "--ignorefile" in env.calls()[0]


@pytest.mark.timeout(60)
def test_ignore_unfixed_flag_and_config(env: Env, run_cli: CliRunner) -> None:
    result = run_cli("trivy-scan", "debian:buster", "--ignore-unfixed", "--json", cwd=env.project)
    data = _json(result.out)
    assert data["ignore_unfixed"] is True
    assert data["counts"]["LOW"] == 0  # the LOW one has no fixed version
    assert "--ignore-unfixed" in env.calls()[0]

    pyproject = env.project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text(encoding="utf-8") + "[tool.dex.scan]\nignore-unfixed = true\n")
    result = run_cli("trivy-scan", "debian:buster", "--json", cwd=env.project)
    assert _json(result.out)["ignore_unfixed"] is True
    assert "--ignore-unfixed" in env.calls()[-2]


@pytest.mark.timeout(60)
def test_custom_fail_on_warn_on_config(env: Env, run_cli: CliRunner) -> None:
    pyproject = env.project / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text(encoding="utf-8")
        + '[tool.dex.scan]\nfail-on = ["CRITICAL", "MEDIUM"]\nwarn-on = ["LOW"]\n'
    )
    result = run_cli("trivy-scan", "gcr.io/distroless/base", "--json", cwd=env.project)
    assert result.code == 1
    data = _json(result.out)
    assert data["fail_on"] == ["CRITICAL", "MEDIUM"]
    assert len(data["blocking"]) == 2
    assert len(data["warnings"]) == 2


@pytest.mark.timeout(60)
def test_annotations_and_job_summary_in_actions(
    env: Env, run_cli: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    (env.reports / _name("mixed:1")).write_text(
        json.dumps({
            "SchemaVersion": 2,
            "ArtifactName": "mixed:1",
            "Results": [{"Target": "mixed:1 (debian 12)", "Class": "os-pkgs", "Vulnerabilities": [
                {"VulnerabilityID": "CVE-2024-1", "PkgName": "zlib", "InstalledVersion": "1.2",
                 "FixedVersion": "1.3", "Severity": "CRITICAL"},
                {"VulnerabilityID": "CVE-2024-2", "PkgName": "curl", "InstalledVersion": "8.0",
                 "Severity": "HIGH"},
                {"VulnerabilityID": "CVE-2024-3", "PkgName": "tar", "InstalledVersion": "1.3",
                 "Severity": "LOW"},
            ]}],
        }),
        encoding="utf-8",
    )  # fmt: skip
    result = run_cli("trivy-scan", "mixed:1", cwd=env.project)
    assert result.code == 1
    assert (
        "::error title=trivy CRITICAL::CVE-2024-1 (CRITICAL) in zlib 1.2, fixed in 1.3 [mixed%3A1"
        not in result.err
    )
    assert (
        "::error title=trivy CRITICAL::CVE-2024-1 (CRITICAL) in zlib 1.2, fixed in 1.3 [mixed:1 (debian 12)]"
        in (result.err)
    )
    assert "::warning title=trivy HIGH::CVE-2024-2 (HIGH) in curl 8.0, no fix yet" in result.err
    assert "CVE-2024-3" not in result.err.split("::warning")[-1].split("\n")[0]
    assert "::group::trivy image mixed:1" in result.out + result.err
    text = summary.read_text(encoding="utf-8")
    assert "### trivy: `mixed:1` — gate **FAILED**" in text
    assert "| CRITICAL | 1 | blocks |" in text
    assert "| CRITICAL | CVE-2024-1 | zlib | 1.2 | 1.3 | mixed:1 (debian 12) |" in text
    assert "#### Warnings" in text


@pytest.mark.timeout(60)
def test_trivy_missing_is_exit_3(tmp_path: Path, run_cli: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    (tmp_path / "pyproject.toml").write_text("[tool.dex]\n", encoding="utf-8")
    result = run_cli("trivy-scan", "alpine:3.9", cwd=tmp_path)
    assert result.code == 3
    assert "required tool 'trivy' was not found on PATH" in result.err
    assert not (tmp_path / "reports").exists()


@pytest.mark.timeout(60)
def test_unknown_image_fails_with_trivys_error(env: Env, run_cli: CliRunner) -> None:
    result = run_cli("trivy-scan", "nope/nothing:1", cwd=env.project)
    assert result.code == 1
    assert 'unable to find the specified image "nope/nothing:1"' in result.err
    assert not (env.project / "reports").exists()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("image", ["alpine 3.9", "alpine:3.9;id", "alpine:3.9\n", "$(id)"])
def test_bad_image_reference_is_exit_2(env: Env, run_cli: CliRunner, image: str) -> None:
    result = run_cli("trivy-scan", image, cwd=env.project)
    assert result.code == 2
    assert env.calls() == []


@pytest.mark.timeout(60)
def test_report_mode_needs_no_trivy(
    tmp_path: Path, run_cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    result = run_cli("trivy-scan", "--report", str(FIXTURES / "debian-buster.json"), "--json", cwd=tmp_path)
    assert result.code == 1
    data = _json(result.out)
    assert data["sarif"] is None
    assert data["report"] == str(FIXTURES / "debian-buster.json")
    assert [f["id"] for f in data["blocking"]] == ["CVE-2019-18224"]
    result = run_cli("trivy-scan", "--report", str(FIXTURES / "alpine-310.json"), cwd=tmp_path)
    assert result.code == 0


@pytest.mark.timeout(60)
def test_report_mode_with_sarif_converts(env: Env, run_cli: CliRunner) -> None:
    result = run_cli(
        "trivy-scan", "--report", str(FIXTURES / "alpine-310.json"), "--sarif", "x.sarif", cwd=env.project
    )
    assert result.code == 0, result.err
    _check_sarif(env.project / "x.sarif", results=4)


@pytest.mark.timeout(60)
def test_malformed_report_is_exit_2_naming_the_file(tmp_path: Path, run_cli: CliRunner) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"SchemaVersion": 1}', encoding="utf-8")
    result = run_cli("trivy-scan", "--report", str(bad), cwd=tmp_path)
    assert result.code == 2
    assert f"{bad}: not a valid trivy JSON report: SchemaVersion is 1" in result.err
    result = run_cli("trivy-scan", "--report", str(tmp_path / "missing.json"), cwd=tmp_path)
    assert result.code == 2
    result = run_cli("trivy-scan", "alpine:3.9", "--report", str(bad), cwd=tmp_path)
    assert result.code == 2
    assert "IMAGE or --report, not both" in result.err


@pytest.mark.timeout(60)
def test_dry_run_scans_but_writes_no_sarif(env: Env, run_cli: CliRunner) -> None:
    result = run_cli("trivy-scan", "alpine:3.9", "--dry-run", "--json", cwd=env.project)
    assert result.code == 1
    assert _json(result.out)["counts"]["CRITICAL"] == 2
    assert _json(result.out)["sarif"] is None
    assert not (env.project / "reports").exists()
    assert [call[0] for call in env.calls()] == ["image"]
    assert "trivy convert --format sarif" in result.err


@pytest.mark.timeout(60)
def test_unreadable_report_from_trivy_is_exit_2_naming_the_image(env: Env, run_cli: CliRunner) -> None:
    (env.reports / _name("old:1")).write_text('{"SchemaVersion": 1, "Results": []}', encoding="utf-8")
    result = run_cli("trivy-scan", "old:1", cwd=env.project)
    assert result.code == 2
    assert "trivy's report for old:1 cannot be read:" in result.err
    assert "SchemaVersion is 1" in result.err
    assert not (env.project / "reports").exists()


# -- the fake itself: the real behaviour it claims ------------------------------------------------


def _fake(env: Env, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(env.bin / "trivy"), *args],
        capture_output=True, text=True, timeout=30, check=False, cwd=env.project,
    )  # fmt: skip


@pytest.mark.timeout(60)
def test_fake_unknown_flag_and_version(env: Env) -> None:
    done = _fake(env, "image", "--no-such-flag", "alpine:3.9")
    assert done.returncode == 1
    assert "FATAL\tFatal error\tunknown flag: --no-such-flag" in done.stderr
    done = _fake(env, "--version")
    assert done.returncode == 0
    assert done.stdout.startswith("Version: ")


@pytest.mark.timeout(60)
def test_fake_severity_and_exit_code_semantics(env: Env, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    done = _fake(env, "image", "-f", "json", "-o", str(out), "--severity", "HIGH,CRITICAL",
                 "--exit-code", "5", "debian:buster")  # fmt: skip
    assert done.returncode == 5
    vulns = json.loads(out.read_text(encoding="utf-8"))["Results"][0]["Vulnerabilities"]
    assert [v["Severity"] for v in vulns] == ["CRITICAL"]
    done = _fake(env, "image", "--format=json", "-o", str(out), "--severity=LOW", "--ignore-unfixed",
                 "--exit-code=5", "--quiet", "debian:buster")  # fmt: skip
    assert done.returncode == 0
    assert "Vulnerabilities" not in json.loads(out.read_text(encoding="utf-8"))["Results"][0]
    done = _fake(env, "image", "--timeout", "5 minutes", "debian:buster")
    assert done.returncode == 1
    assert 'time: invalid duration "5 minutes"' in done.stderr


@pytest.mark.timeout(60)
def test_fake_sarif_matches_trivys_golden(env: Env, tmp_path: Path) -> None:
    out = tmp_path / "r.sarif"
    (env.reports / _name("testdata/fixtures/images/alpine-310.tar.gz")).write_text(
        (FIXTURES / "alpine-310.json").read_text(encoding="utf-8"), encoding="utf-8"
    )
    done = _fake(
        env, "image", "--format", "sarif", "--output", str(out), "testdata/fixtures/images/alpine-310.tar.gz"
    )
    assert done.returncode == 0, done.stderr
    ours = json.loads(out.read_text(encoding="utf-8"))["runs"][0]
    golden = json.loads((FIXTURES / "alpine-310.sarif").read_text(encoding="utf-8"))["runs"][0]

    def shape(run: dict[str, Any]) -> list[tuple[Any, ...]]:
        return [
            (r["ruleId"], r["ruleIndex"], r["level"], r["message"]["text"],
             r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"])
            for r in run["results"]
        ]  # fmt: skip

    assert shape(ours) == shape(golden)
    rules = [(r["id"], r["name"], r["defaultConfiguration"], r["properties"]["security-severity"]) for r in
             ours["tool"]["driver"]["rules"]]  # fmt: skip
    assert rules == [
        (r["id"], r["name"], r["defaultConfiguration"], r["properties"]["security-severity"])
        for r in golden["tool"]["driver"]["rules"]
    ]
    assert [r["help"]["text"] for r in ours["tool"]["driver"]["rules"]] == [
        r["help"]["text"] for r in golden["tool"]["driver"]["rules"]
    ]


@pytest.mark.timeout(60)
def test_sarif_under_a_file_is_exit_2_not_a_traceback(env: Env, run_cli: CliRunner) -> None:
    # Regression: mkdir of the SARIF's directory raised FileExistsError through to the user.
    (env.project / "blocker").write_text("a file, not a directory\n", encoding="utf-8")
    result = run_cli(
        "trivy-scan", "--report", str(FIXTURES / "alpine-310.json"), "--sarif", "blocker/x.sarif", "--json",
        cwd=env.project,
    )  # fmt: skip
    assert result.code == 2, result.err
    assert "cannot write SARIF to" in _json(result.out)["error"]
    assert "Traceback" not in result.err
