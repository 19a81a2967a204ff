"""``security``: the bundled semgrep rules, for real (semgrep is slow to start: three runs in total)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from dex_tasks import proc
from dex_tasks.errors import CommandFailed
from dex_tasks.tools import semgrep
from tests.helpers import need

if TYPE_CHECKING:
    from tests.conftest import CliRunner

SEMGREP = Path(sys.executable).parent / "semgrep"

VULNERABLE_APP = '''\
"""A small deploy helper with every mistake the rules know about."""
import hashlib
import pickle
import subprocess
import tempfile

import flask
import requests
import yaml

API_TOKEN = "f3a9c1d27b8e4f60a1b2c3d4"


def deploy(ref):
    subprocess.run(f"git checkout {ref}", shell=True, check=True)
    manifest = yaml.load(open("kustomization.yaml"))
    state = pickle.loads(requests.get("https://cache.invalid/state", timeout=5).content)
    scratch = tempfile.mktemp()
    digest = hashlib.md5(manifest["image"].encode()).hexdigest()
    return eval(state["expr"]), scratch, digest


app = flask.Flask(__name__)

if __name__ == "__main__":
    print("starting")
    app.run(host="0.0.0.0", debug=True)
'''

TEAM_RULES = """\
rules:
  - id: team-no-print
    pattern: print(...)
    message: use logging
    languages: [python]
    severity: INFO
"""

VULNERABLE_WORKFLOW = """\
name: greet
on: pull_request_target
jobs:
  greet:
    runs-on: ubuntu-latest
    steps:
      - run: echo "Thanks for ${{ github.event.pull_request.title }}"
"""

CLEAN_APP = '''\
"""Nothing to report but one warning-level finding (no timeout), which does not fail the task."""
import subprocess

import requests


def head(ref: str) -> str:
    return subprocess.run(["git", "rev-parse", ref], check=True, capture_output=True, text=True).stdout


def ping() -> int:
    return requests.get("https://example.invalid/health").status_code
'''


@pytest.fixture
def semgrep_bin() -> Path:
    need(SEMGREP.exists(), "semgrep is not installed in this environment (uv sync --group dev)")
    return SEMGREP


def _project(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True)
    (root / "pyproject.toml").write_text('[project]\nname = "app"\n', encoding="utf-8")
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


@pytest.mark.timeout(300)
@pytest.mark.slow
def test_bundled_rules_pass_their_rule_tests(semgrep_bin: Path) -> None:
    """semgrep's own --test format: every `# ruleid:` line matches, no `# ok:` line does."""
    argv = [str(semgrep_bin), *semgrep.rule_test_argv()[1:]]
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=280, check=False, env={**semgrep.OFFLINE_ENV, **_env()}
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "All tests passed" in output
    # every rule file has a test file, and every rule id appears in its tests
    for rules_file in semgrep.rule_files():
        ids = [
            line.split(":", 1)[1].strip() for line in rules_file.read_text().splitlines() if "- id:" in line
        ]
        tests = [p for p in semgrep.rule_test_files() if p.name.split(".")[0] == rules_file.stem]
        assert tests, f"no rule tests for {rules_file.name}"
        text = "".join(p.read_text(encoding="utf-8") for p in tests)
        for rule_id in ids:
            assert f"ruleid: {rule_id}" in text, f"{rule_id} has no positive test"


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "TMPDIR", "LANG", "SYSTEMROOT"}}


@pytest.mark.timeout(300)
@pytest.mark.slow
def test_planted_vulnerabilities_fail_with_annotations_sarif_and_summary(
    semgrep_bin: Path, tmp_path: Path, run_cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = _project(
        tmp_path / "proj",
        {
            "deploy/app.py": VULNERABLE_APP,
            ".github/workflows/greet.yml": VULNERABLE_WORKFLOW,
            # an extra local rule set from [tool.dex.security] configs runs beside the bundled rules
            "semgrep-rules/team.yml": TEAM_RULES,
        },
    )
    pyproject = project / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text(encoding="utf-8") + '[tool.dex.security]\nconfigs = ["semgrep-rules"]\n',
        encoding="utf-8",
    )
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result = run_cli("security", "--json", cwd=project)
    assert result.code == 1, result.err
    data = json.loads(result.out)
    found = {(f["rule"], f["path"], f["line"]) for f in data["findings"]}
    lines = VULNERABLE_APP.splitlines()

    def line_of(text: str) -> int:
        return next(i for i, line in enumerate(lines, 1) if text in line)

    expected = {
        ("dex-hardcoded-secret", "deploy/app.py", line_of("API_TOKEN =")),
        ("dex-subprocess-shell", "deploy/app.py", line_of("shell=True")),
        ("dex-yaml-unsafe-load", "deploy/app.py", line_of("yaml.load(")),
        ("dex-unsafe-deserialization", "deploy/app.py", line_of("pickle.loads(")),
        ("dex-tempfile-mktemp", "deploy/app.py", line_of("mktemp")),
        ("dex-weak-hash", "deploy/app.py", line_of("md5")),
        ("dex-eval-exec", "deploy/app.py", line_of("eval(")),
        ("dex-web-debug-enabled", "deploy/app.py", line_of("debug=True")),
        ("dex-gha-script-injection", ".github/workflows/greet.yml", 7),
    }
    assert expected <= found, found
    assert ("team-no-print", "deploy/app.py", line_of("print(")) in found
    assert str(project / "semgrep-rules") in data["configs"]
    assert data["passed"] is False
    assert data["blocking"] == sum(1 for f in data["findings"] if f["severity"] == "ERROR")
    assert data["counts"]["WARNING"] >= 1  # the md5
    eval_finding = next(f for f in data["findings"] if f["rule"] == "dex-eval-exec")
    assert any("CWE-95" in cwe for cwe in eval_finding["cwe"])
    # annotations point at the file and line
    assert f"::error file=deploy/app.py,line={line_of('eval(')}," in result.err
    assert "title=semgrep dex-gha-script-injection::" in result.err
    # SARIF 2.1.0 with the same findings
    sarif = json.loads((project / "reports" / "semgrep.sarif").read_text(encoding="utf-8"))
    assert data["sarif"] == str(project / "reports" / "semgrep.sarif")
    assert sarif["version"] == "2.1.0"
    (run,) = sarif["runs"]
    assert {r["ruleId"] for r in run["results"]} == {f["rule"] for f in data["findings"]}
    assert len(run["results"]) == len(data["findings"])
    text = summary.read_text(encoding="utf-8")
    assert "### semgrep:" in text
    assert "**FAILED**" in text
    assert "`dex-eval-exec`" in text


@pytest.mark.timeout(300)
@pytest.mark.slow
def test_clean_project_passes_and_dry_run_writes_nothing(
    semgrep_bin: Path, tmp_path: Path, run_cli: CliRunner
) -> None:
    project = _project(tmp_path / "proj", {"app/main.py": CLEAN_APP})
    result = run_cli("security", "app", "--sarif", "out/s.sarif", "--dry-run", "--json", cwd=project)
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["passed"] is True
    assert data["paths"] == ["app"]
    assert [(f["rule"], f["severity"]) for f in data["findings"]] == [("dex-requests-no-timeout", "WARNING")]
    assert data["sarif"] is None
    assert not (project / "out").exists()
    assert not (project / "reports").exists()
    assert "--metrics=off" in result.err
    assert "--disable-version-check" in result.err


def test_missing_path_is_exit_2(tmp_path: Path, run_cli: CliRunner) -> None:
    project = _project(tmp_path / "proj", {})
    result = run_cli("security", "nope", cwd=project)
    assert result.code == 2
    assert "nope: no such file or directory" in result.err


@pytest.mark.parametrize("config", ["rules/typo.yml", "owasp-top-ten"])
def test_unknown_extra_config_is_exit_2_before_semgrep_runs(
    tmp_path: Path, run_cli: CliRunner, monkeypatch: pytest.MonkeyPatch, config: str
) -> None:
    project = _project(tmp_path / "proj", {})
    (project / "pyproject.toml").write_text(
        f'[project]\nname = "app"\n[tool.dex.security]\nconfigs = ["{config}"]\n', encoding="utf-8"
    )
    ran: list[object] = []
    monkeypatch.setattr(proc, "run", lambda *a, **_k: ran.append(a))
    result = run_cli("security", cwd=project)
    assert result.code == 2
    assert f"{config!r} is neither a file or directory" in result.err
    assert ran == []


@pytest.mark.parametrize(("returncode", "code"), [(7, 2), (5, 2), (2, 1)])
def test_semgrep_failures_map_to_exit_codes(
    tmp_path: Path, run_cli: CliRunner, monkeypatch: pytest.MonkeyPatch, returncode: int, code: int
) -> None:
    project = _project(tmp_path / "proj", {})
    monkeypatch.setattr(
        proc,
        "run",
        lambda argv, **_: proc.Result(argv=tuple(argv), returncode=returncode, stdout="", stderr="boom"),
    )
    result = run_cli("security", cwd=project)
    assert result.code == code
    assert "boom" in result.err
    assert not (project / "reports").exists()


def test_semgrep_missing_is_exit_3(
    tmp_path: Path, run_cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = _project(tmp_path / "proj", {})
    real_which = proc.which
    monkeypatch.setattr(proc, "which", lambda tool: None if tool == "semgrep" else real_which(tool))
    result = run_cli("security", cwd=project)
    assert result.code == 3
    assert "required tool 'semgrep' was not found on PATH" in result.err


def test_argv_is_offline_and_skips_rule_tests(tmp_path: Path) -> None:
    argv = semgrep.scan_argv(
        configs=[str(p) for p in semgrep.rule_files()], targets=["."], sarif=tmp_path / "s.sarif",
        excludes=["dex_tasks/rules/python.py"],
    )  # fmt: skip
    assert "--metrics=off" in argv
    assert "--disable-version-check" in argv
    assert not any(a in {"auto", "p/default"} or a.startswith("p/") for a in argv)
    assert [p.name for p in semgrep.rule_files()] == ["github-actions.yml", "python.yml"]
    assert [p.name for p in semgrep.rule_test_files()] == ["github-actions.test.yml", "python.py"]
    assert argv[-2:] == ("--", ".")


def test_parse_rejects_non_json() -> None:
    with pytest.raises(CommandFailed, match="semgrep did not print its JSON result"):
        semgrep.parse("Traceback: boom", ("semgrep",))


def _semgrep_json(*severities: str) -> str:
    results = [
        {
            "check_id": f"rule-{severity.lower()}",
            "path": "app.py",
            "start": {"line": i + 1, "col": 1},
            "end": {"line": i + 1},
            "extra": {"severity": severity, "message": f"a {severity} finding"},
        }
        for i, severity in enumerate(severities)
    ]
    return json.dumps({"results": results, "errors": [], "paths": {"scanned": ["app.py"]}})


@pytest.mark.parametrize(
    "case",
    [
        # Regression: semgrep reports CRITICAL/HIGH for rules written on its newer scale, and the
        # default gate (ERROR) passed them while their annotations said "error".
        ('["ERROR"]', ("CRITICAL", "HIGH", "MEDIUM", "LOW", "INFO"), 2),
        ('["ERROR", "WARNING"]', ("HIGH", "MEDIUM", "WARNING", "LOW"), 3),
        ('["CRITICAL"]', ("CRITICAL", "HIGH", "ERROR"), 1),
        ('["error"]', ("ERROR", "INFO"), 1),
    ],
)
def test_gate_maps_semgrep_severity_scales(
    tmp_path: Path,
    run_cli: CliRunner,
    monkeypatch: pytest.MonkeyPatch,
    case: tuple[str, tuple[str, ...], int],
) -> None:
    fail_on, severities, blocking = case
    project = _project(tmp_path / "proj", {"app.py": "x = 1\n"})
    (project / "pyproject.toml").write_text(
        f'[project]\nname = "app"\n[tool.dex.security]\nfail-on = {fail_on}\n', encoding="utf-8"
    )
    stdout = _semgrep_json(*severities)
    monkeypatch.setattr(
        proc, "run", lambda argv, **_: proc.Result(argv=tuple(argv), returncode=0, stdout=stdout, stderr="")
    )
    result = run_cli("security", "--json", cwd=project)
    data = json.loads(result.out)
    assert data["blocking"] == blocking
    assert result.code == (1 if blocking else 0)


def test_sarif_under_a_file_is_exit_2_not_a_traceback(
    tmp_path: Path, run_cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Regression: creating the SARIF's directory raised FileExistsError through to the user.
    project = _project(tmp_path / "proj", {"app.py": "x = 1\n", "blocker": "a file\n"})

    def fake_run(argv: tuple[str, ...], **_: object) -> proc.Result:
        sarif = next(a.split("=", 1)[1] for a in argv if a.startswith("--sarif-output="))
        Path(sarif).write_text("{}", encoding="utf-8")
        return proc.Result(argv=tuple(argv), returncode=0, stdout=_semgrep_json(), stderr="")

    monkeypatch.setattr(proc, "run", fake_run)
    result = run_cli("security", "--sarif", "blocker/s.sarif", "--json", cwd=project)
    assert result.code == 2, result.err
    assert "cannot write SARIF to" in json.loads(result.out)["error"]


REGISTRY_CONFIGS = ["p/owasp-top-ten", "r/python.lang.security.audit", "s/someone:rule", "auto"]


@pytest.mark.parametrize("config", [*REGISTRY_CONFIGS, "https://127.0.0.1:{port}/rules.yml"])
def test_unreachable_registry_config_is_exit_4_before_semgrep_runs(
    tmp_path: Path, run_cli: CliRunner, monkeypatch: pytest.MonkeyPatch, config: str, closed_port: int
) -> None:
    # Regression: offline, semgrep retried for ~100 s in silence, then a 16-line traceback, exit 1.
    port = closed_port  # nothing listens there: the connection is refused at once
    monkeypatch.setattr(semgrep, "REGISTRY_HOST", "127.0.0.1")
    monkeypatch.setattr(semgrep, "REGISTRY_PORT", port)
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    config = config.format(port=port)
    project = _project(tmp_path / "proj", {})
    (project / "pyproject.toml").write_text(
        f'[project]\nname = "app"\n[tool.dex.security]\nconfigs = ["{config}"]\n', encoding="utf-8"
    )
    ran: list[object] = []
    monkeypatch.setattr(proc, "run", lambda *a, **_k: ran.append(a))
    result = run_cli("security", cwd=project)
    assert result.code == 4, result.err
    progress, error = result.err.strip().splitlines()
    assert progress.startswith(f"security: waiting for 127.0.0.1:{port} to answer, for {config}")
    assert error.startswith(f"dex-tasks security: error: [tool.dex.security] configs: {config!r}")
    assert "cannot be reached" in error
    assert "bundled rules" in error
    assert ran == []
    assert not (project / "reports").exists()


def test_reachable_registry_lets_semgrep_run(
    tmp_path: Path, run_cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        monkeypatch.setattr(semgrep, "REGISTRY_HOST", "127.0.0.1")
        monkeypatch.setattr(semgrep, "REGISTRY_PORT", server.getsockname()[1])
        for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.delenv(name, raising=False)
        project = _project(tmp_path / "proj", {})
        (project / "pyproject.toml").write_text(
            '[project]\nname = "app"\n[tool.dex.security]\nconfigs = ["p/owasp-top-ten"]\n', encoding="utf-8"
        )
        ran: list[tuple[str, ...]] = []

        def fake_run(argv: tuple[str, ...], **_kwargs: object) -> proc.Result:
            ran.append(tuple(argv))
            return proc.Result(argv=tuple(argv), returncode=0, stdout=_semgrep_json(), stderr="")

        monkeypatch.setattr(proc, "run", fake_run)
        result = run_cli("security", "--dry-run", cwd=project)
    assert result.code == 0, result.err
    assert ran
    assert "p/owasp-top-ten" in ran[0]


def test_registry_probe_goes_to_the_https_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert semgrep.registry_endpoint("p/owasp-top-ten") == ("proxy.internal", 3128)
    monkeypatch.delenv("HTTPS_PROXY")
    monkeypatch.delenv("https_proxy", raising=False)
    assert semgrep.registry_endpoint("p/owasp-top-ten") == ("semgrep.dev", 443)
    assert semgrep.registry_endpoint("http://rules.example:8080/x.yml") == ("rules.example", 8080)
