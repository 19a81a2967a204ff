"""Hostile input never becomes a traceback (issue 10, class 3): deep JSON, control characters in
config and arguments, non-finite numbers. Each is one line on stderr and exit 2 (4 for a remote's
answer), before anything runs."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from dex_tasks import _untrusted, proc, scan
from dex_tasks.errors import ArgoCDError, CommandFailed, RemoteError, UsageError
from dex_tasks.gitops import build_tags
from dex_tasks.tools import argocd, docker, git, github, kubectl, semgrep

if TYPE_CHECKING:
    from pathlib import Path

    from tests.conftest import CliResult, CliRunner

DEPTH = 100_000
DEEP_DOCUMENTS = {
    "arrays": "[" * DEPTH + "]" * DEPTH,
    "objects": '{"a":' * DEPTH + "1" + "}" * DEPTH,
    "unclosed": "[" * DEPTH,  # never even valid: still the depth is what stops the decoder
    "in a report": '{"SchemaVersion": 2, "Results": ' + "[" * DEPTH + "]" * DEPTH + "}",
}


def _one_line_error(result: CliResult, code: int = 2) -> str:
    assert result.code == code, result.err
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert "Traceback" not in result.err
    assert "internal error" not in result.err  # exit 70 is a bug, not an answer to bad input
    return lines[0]


# -- deep or broken JSON, at every place that parses JSON from outside ----------------------------


@pytest.mark.parametrize("text", DEEP_DOCUMENTS.values(), ids=DEEP_DOCUMENTS)
def test_parse_json_turns_depth_into_value_error(text: str) -> None:
    with pytest.raises(ValueError, match=r"nested too deeply|invalid JSON"):
        _untrusted.parse_json(text)


@pytest.mark.parametrize(
    "text", [*DEEP_DOCUMENTS.values(), "{", "\ufeff{}"], ids=[*DEEP_DOCUMENTS, "cut", "bom"]
)
def test_deep_trivy_report_is_exit_2_naming_the_file(run_cli: CliRunner, tmp_path: Path, text: str) -> None:
    report = tmp_path / "deep.json"
    report.write_text(text, encoding="utf-8")
    line = _one_line_error(run_cli("trivy-scan", "--report", str(report), cwd=tmp_path))
    assert f"{report}: not a valid trivy JSON report" in line


def test_undecodable_trivy_report_is_exit_2(run_cli: CliRunner, tmp_path: Path) -> None:
    report = tmp_path / "latin1.json"
    report.write_bytes(b'{"ArtifactName": "caf\xe9"}')
    line = _one_line_error(run_cli("trivy-scan", "--report", str(report), cwd=tmp_path))
    assert "not UTF-8" in line


def _result(stdout: str) -> proc.Result:
    return proc.Result(argv=("tool",), returncode=0, stdout=stdout, stderr="")


@pytest.mark.parametrize("text", DEEP_DOCUMENTS.values(), ids=DEEP_DOCUMENTS)
def test_deep_tool_output_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setattr(proc, "run", lambda *_a, **_k: _result(text))
    with pytest.raises(CommandFailed, match="semgrep did not print its JSON result"):
        semgrep.parse(text, ("semgrep",))
    with pytest.raises(ArgoCDError, match="app get dex-prod: output is not JSON"):
        argocd.app_get("dex-prod")
    with pytest.raises(ArgoCDError, match="app list: output is not JSON"):
        argocd.app_list()
    with pytest.raises(RemoteError, match="kubectl get deployment: output is not JSON"):
        kubectl.Kubectl().get_json("deployment", "dex", namespace="dex-dev")
    with pytest.raises(RemoteError, match="docker image inspect x: cannot read"):
        docker.inspect("x")
    assert docker.parse_metadata_digest(text) is None


@pytest.mark.parametrize("text", DEEP_DOCUMENTS.values(), ids=DEEP_DOCUMENTS)
def test_deep_github_answer_is_kept_as_text(text: str) -> None:
    class Response:
        content = text.encode()

    # An error body that is not JSON is shown as text (it was so for invalid JSON already).
    assert github.GitHub._body_of(Response()) == text  # type: ignore[arg-type]  # a stand-in: only .content is read


@pytest.mark.parametrize("text", DEEP_DOCUMENTS.values(), ids=DEEP_DOCUMENTS)
def test_deep_event_payload_is_exit_2(tmp_path: Path, text: str) -> None:
    event = tmp_path / "event.json"
    event.write_text(text, encoding="utf-8")
    with pytest.raises(UsageError, match="not valid JSON"):
        build_tags.read_event({"GITHUB_EVENT_PATH": str(event)})


# -- oversized trivy reports are refused before they are read -----------------------------------


def test_oversized_trivy_report_is_refused_before_reading(
    run_cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scan, "MAX_REPORT_BYTES", 1024)
    report = tmp_path / "big.json"
    report.write_text(json.dumps({"SchemaVersion": 2, "Results": []}) + " " * 2048, encoding="utf-8")
    opened: list[object] = []
    real_open = type(report).open

    def spy(*args: Any, **kwargs: Any) -> Any:
        opened.append(args)
        return real_open(*args, **kwargs)

    monkeypatch.setattr(type(report), "open", spy)
    line = _one_line_error(run_cli("trivy-scan", "--report", str(report), cwd=tmp_path))
    size = report.stat().st_size
    assert f"{report}: the report is {size} bytes, over the 1024 bytes limit for a trivy report" in line
    assert opened == []  # stat said no: the file was never opened


def test_report_size_limit_is_generous() -> None:
    assert scan.MAX_REPORT_BYTES == 256 * 1024 * 1024


# -- control characters in [tool.dex] --------------------------------------------------------------

CONFIG_CASES = {
    "branches": ("branches = { dev = 'dev', stage = 'main', prod = \"ma\\u0000in\" }", "branches.prod"),
    "default-branch": ('default-branch = "main\\u0000"', "default-branch"),
    "namespace": ('namespace = "dex-{env}\\n"', "namespace"),
    "image": ('image = "ghcr.io/x/\\u0000app"', "image"),
    "overlays": ('overlays = "infra/\\u0000"', "overlays"),
    "environments": ('environments = ["dev", "st\\u001bage"]', "environments[1]"),
    "deployment": ('deployment = "dex\\r"', "deployment"),
    "nested table": ('[tool.dex.cluster]\ncontext = "kind\\u0000"', "cluster.context"),
    "table": ('[tool.dex.cluster]\nhealth-urls = { dev = "http://\\u0000" }', "cluster.health-urls.dev"),
    "table key": ('[tool.dex.build]\nargs = { "A\\u0000B" = "1" }', "build.args (a key)"),
    "list": ('[tool.dex.security]\nconfigs = ["rules\\u0000.yml"]', "security.configs[0]"),
    "tab": ('container = "dex\\t"', "container"),
    "DEL": ('argocd-app = "dex-{env}\\u007f"', "argocd-app"),
    "C1": ('kustomize-image = "x/\\u0085y"', "kustomize-image"),
}  # fmt: skip


@pytest.mark.parametrize(("toml", "key"), CONFIG_CASES.values(), ids=CONFIG_CASES)
def test_control_characters_in_config_are_exit_2_naming_the_key(
    run_cli: CliRunner, tmp_path: Path, toml: str, key: str
) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(f'[project]\nname = "x"\n\n[tool.dex]\n{toml}\n', encoding="utf-8")
    line = _one_line_error(run_cli("config", cwd=tmp_path))
    assert f"{pyproject}: tool.dex.{key}: control character" in line
    assert "\0" not in line


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ("[tool.dex.test]\ncoverage-fail-under = nan", "expected a finite number, got nan"),
        ("[tool.dex.scan]\ntimeout = inf", "expected a finite number, got inf"),
        ("[tool.dex.cluster]\nrollout-timeout = -inf", "expected a finite number, got -inf"),
        ("[tool.dex.lint]\ntimeout = 0", "tool.dex.lint.timeout must be a positive number"),
        ('[tool.dex]\n"bad\\nkey" = 1', "unknown key 'tool.dex.bad\\nkey'"),
        ("[tool.dex]\nx = " + "[" * 5000 + "]" * 5000, "nested too deeply"),
    ],
    ids=["nan", "inf", "-inf", "zero timeout", "newline in a key", "deep"],
)
def test_other_hostile_config_values_are_exit_2(
    run_cli: CliRunner, tmp_path: Path, toml: str, expected: str
) -> None:
    (tmp_path / "pyproject.toml").write_text(toml + "\n", encoding="utf-8")
    line = _one_line_error(run_cli("config", cwd=tmp_path))
    assert expected in line


# -- control characters in arguments -----------------------------------------------------------

ARG_CASES = {
    "env NUL": ("bump-overlay", "dev\0", "sha-1a2b3c4d"),
    "env newline": ("history", "dev\n"),
    "tag NUL": ("bump-overlay", "dev", "sha-1a2b3c4d\0"),
    "tag escape": ("rollback", "dev", "sha-1a2b\x1b[31m"),
    "image-build tag": ("image-build", "--tag", "sha-1a2b3c4\0"),
    "report path": ("trivy-scan", "--report", "report\0.json"),
    "sarif path": ("trivy-scan", "--report", "r.json", "--sarif", "out\n.sarif"),
    "image": ("trivy-scan", "ghcr.io/x/app:sha-1a2b3c4d\0"),
    "security path": ("security", "src\0"),
    "security sarif": ("security", "--sarif", "x\0.sarif"),
    "lint path": ("lint", "dex\0"),
    "url": ("verify", "dev", "--url", "http://127.0.0.1:1/health\n"),
    "url NUL": ("preview", "health", "3", "--url", "http://127.0.0.1:1/\0"),
    "context": ("verify", "dev", "--context", "kind\0"),
    "preview context": ("preview", "list", "--context", "a\tb"),
    "directory": ("-C", "dir\0", "config"),
    "pr": ("preview", "down", "3\0"),
}


@pytest.mark.parametrize("argv", ARG_CASES.values(), ids=ARG_CASES)
def test_control_characters_in_arguments_are_exit_2(
    run_cli: CliRunner, tmp_path: Path, argv: tuple[str, ...]
) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n', encoding="utf-8")
    before = sorted(p.name for p in tmp_path.iterdir())
    line = _one_line_error(run_cli(*argv, cwd=tmp_path))
    assert "$ " not in line
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written


def test_proc_refuses_nul_in_argv(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    with pytest.raises(UsageError, match="holds a NUL byte"):
        proc.run(("git", "-C", str(tmp_path), "init", f"{marker}\0x"))
    assert not marker.exists()


def test_pass_through_arguments_with_nul_are_exit_2(run_cli: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n', encoding="utf-8")
    line = _one_line_error(run_cli("test", "--", "-k", "a\0b", cwd=tmp_path))
    assert "holds a NUL byte" in line


@pytest.mark.parametrize("branch", ["main\0", "ma\nin", "dev\x1b"])
def test_branch_names_with_control_characters_are_refused(branch: str) -> None:
    with pytest.raises(UsageError, match="invalid branch name"):
        git.check_ref_name(branch)


# -- numbers: nan, inf, huge, zero, negative ------------------------------------------------------

NUMBER_CASES = {
    "interval nan": ("verify", "dev", "--interval", "nan"),
    "interval inf": ("verify", "dev", "--interval", "inf"),
    "interval -1": ("verify", "dev", "--interval", "-1"),
    "interval huge": ("verify", "dev", "--interval", "1e300"),
    "timeout inf": ("verify", "dev", "--timeout", "inf"),
    "timeout nan": ("verify", "dev", "--timeout", "nan"),
    "timeout 1e999": ("verify", "dev", "--timeout", "1e999"),
    "timeout 0": ("verify", "dev", "--timeout", "0"),
    "timeout -5": ("verify", "dev", "--timeout", "-5"),
    "attempts huge": ("verify", "dev", "--attempts", "9" * 30),
    "attempts digits": ("verify", "dev", "--attempts", "9" * 5000),
    "attempts 0": ("verify", "dev", "--attempts", "0"),
    "attempts float": ("verify", "dev", "--attempts", "2.5"),
    "preview attempts": ("preview", "health", "3", "--attempts", "1" + "0" * 12),
    "preview interval": ("preview", "health", "3", "--interval", "NaN"),
    "preview interval inf": ("preview", "health", "3", "--interval", "-Infinity"),
    "limit 0": ("history", "dev", "--limit", "0"),
    "limit nan": ("history", "dev", "--limit", "nan"),
    "limit negative": ("history", "dev", "--limit", "-3"),
    "pr nan": ("image-build", "--pr", "nan"),
    "pr huge": ("image-build", "--dry-run", "--pr", "9" * 30),
}


@pytest.mark.parametrize("argv", NUMBER_CASES.values(), ids=NUMBER_CASES)
def test_bad_numbers_are_refused_by_the_parser(
    run_cli: CliRunner, tmp_path: Path, argv: tuple[str, ...]
) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n', encoding="utf-8")
    line = _one_line_error(run_cli(*argv, cwd=tmp_path))
    assert "$ " not in line


@pytest.mark.parametrize(
    ("convert", "text", "expected"),
    [
        ("seconds", "0.5", 0.5),
        ("seconds", " 60 ", 60.0),
        ("pause", "0", 0.0),
        ("count", "10", 10),
    ],
)
def test_good_numbers_pass(convert: str, text: str, expected: Any) -> None:
    from dex_tasks.tasks import _args  # noqa: PLC0415 - the task package, like the CLI imports it

    assert getattr(_args, convert)(text) == expected


# -- wrongly typed fields in a tool's JSON (kubectl prints the API server's objects unstructured) --

_DEPLOYMENT = {
    "metadata": {"name": "dex", "namespace": "dex-dev", "generation": 2},
    "spec": {
        "replicas": 1,
        "selector": {"matchLabels": {"app": "dex"}},
        "template": {"spec": {"containers": [{"name": "dex", "image": "ghcr.io/x/dex:sha-1234567"}]}},
    },
    "status": {"observedGeneration": 2, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1},
}
_POD = {
    "metadata": {"name": "p"},
    "spec": {"containers": [{"name": "dex", "image": "ghcr.io/x/dex:sha-1234567"}]},
    "status": {"phase": "Running", "containerStatuses": [{"name": "dex", "imageID": "x@sha256:" + "a" * 64}]},
}
_ODD_VALUES = [None, "x", "", 1.5, True, -1, [None], {"a": None}, "9" * 30]


def _with(document: dict[str, Any], path: tuple[str | int, ...], value: object) -> dict[str, Any]:
    copy: dict[str, Any] = json.loads(json.dumps(document))
    target: Any = copy
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return copy


def _leaves(document: object, prefix: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    if isinstance(document, dict):
        return [p for k, v in document.items() for p in [(*prefix, k), *_leaves(v, (*prefix, k))]]
    if isinstance(document, list):
        return [p for i, v in enumerate(document) for p in [(*prefix, i), *_leaves(v, (*prefix, i))]]
    return []


@pytest.mark.parametrize("value", _ODD_VALUES, ids=repr)
def test_a_deployment_or_pod_with_odd_field_types_reads_as_absent_fields(value: object) -> None:
    # Every field of each document, in turn, replaced: a ValueError/TypeError/AttributeError was exit 70.
    for path in _leaves(_DEPLOYMENT):
        deployment = kubectl.Deployment.from_json(_with(_DEPLOYMENT, path, value), "dex")
        deployment.rollout_state()
        assert all(isinstance(v, str) for v in deployment.selector.values())
    for path in _leaves(_POD):
        pod = kubectl.Pod.from_json(_with(_POD, path, value), "dex")
        assert pod.digest is None or pod.digest == "sha256:" + "a" * 64
        assert pod.finished in {True, False}


def test_odd_replica_counts_are_not_counts() -> None:
    spec = _with(_DEPLOYMENT, ("spec", "replicas"), "3")
    assert kubectl.Deployment.from_json(spec, "dex").replicas == 1  # the API default, as when absent
    assert kubectl.Deployment.from_json(_with(_DEPLOYMENT, ("spec", "replicas"), 0), "dex").replicas == 0


@pytest.mark.parametrize("text", ['"x"', '[null, 1, "app"]', '{"items": "x"}', '{"items": [null]}', "5"])
def test_an_argocd_app_list_of_odd_items_is_no_apps(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setattr(proc, "run", lambda *_a, **_k: _result(text))
    assert argocd.app_list() == []


# -- an empty value is not "not given" (an unset "$VAR" in a script) ------------------------------

EMPTY_CASES = {
    "verify url": ("verify", "dev", "--url", ""),
    "verify context": ("verify", "dev", "--context", " "),
    "preview url": ("preview", "health", "3", "--url", ""),
    "rollout context": ("rollout", "status", "dev", "--context", ""),
    "init app": ("init", "--app", ""),
    "init image": ("init", "--image", ""),
    "demo keep": ("demo", "--keep", ""),
    "security sarif": ("security", "--sarif", ""),
    "trivy report": ("trivy-scan", "--report", ""),
    # An empty TAG was taken for no TAG: promote shipped what FROM runs, rollback its last known good.
    "promote tag": ("promote", "stage", "prod", "", "--direct"),
    "rollback tag": ("rollback", "stage", "", "--direct"),
}


@pytest.mark.parametrize("argv", EMPTY_CASES.values(), ids=EMPTY_CASES)
def test_an_empty_value_is_refused_not_taken_for_the_default(
    run_cli: CliRunner, tmp_path: Path, argv: tuple[str, ...]
) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n', encoding="utf-8")
    line = _one_line_error(run_cli(*argv, cwd=tmp_path))
    assert "expected a value, got an empty string" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pyproject.toml"]


# -- [tool.dex.cluster] and [tool.dex.test] values out of range, refused when the file is read ------

RANGE_CASES = {
    "rollout-timeout 0": (
        "[tool.dex.cluster]\nrollout-timeout = 0",
        "rollout-timeout must be a positive number",
    ),
    "rollout-timeout -5": (
        "[tool.dex.cluster]\nrollout-timeout = -5",
        "rollout-timeout must be a positive number",
    ),
    "rollout-timeout 1e300": ("[tool.dex.cluster]\nrollout-timeout = 1e300", "(at most 604800)"),
    "rollout-timeout 8d": ("[tool.dex.cluster]\nrollout-timeout = 691200", "(at most 604800), got 691200"),
    "service-port 0": (
        "[tool.dex.cluster]\nservice-port = 0",
        "service-port must be a TCP port (1-65535), got 0",
    ),
    "service-port 70000": ("[tool.dex.cluster]\nservice-port = 70000", "service-port must be a TCP port"),
    "service-port -1": ("[tool.dex.cluster]\nservice-port = -1", "service-port must be a TCP port"),
    "health-urls file": (
        '[tool.dex.cluster]\nhealth-urls = { dev = "file:///etc/passwd" }',
        "health-urls.dev must be an http(s) URL, got 'file:///etc/passwd'",
    ),
    "health-urls unknown env": (
        '[tool.dex.cluster]\nhealth-urls = { qa = "http://x" }',
        "'qa' is not in environments",
    ),
    "coverage 150": ("[tool.dex.test]\ncoverage-fail-under = 150", "must be a percentage (0-100), got 150"),
    "coverage -1": ("[tool.dex.test]\ncoverage-fail-under = -1", "must be a percentage (0-100), got -1"),
    "overlays empty": ('[tool.dex]\noverlays = ""', "tool.dex.overlays must not be empty"),
    # Branch names, named by their key (they were "invalid branch name" from the first fetch only).
    "branch option": (
        '[tool.dex]\nbranches = { dev = "-dev", stage = "main", prod = "main" }',
        "tool.dex.branches.dev: invalid branch name '-dev'",
    ),
    "branch revision": (
        '[tool.dex]\nbranches = { dev = "main~1", stage = "main", prod = "main" }',
        "tool.dex.branches.dev: invalid branch name 'main~1'",
    ),
    "default-branch empty": (
        '[tool.dex]\ndefault-branch = ""',
        "tool.dex.default-branch: invalid branch name ''",
    ),
    "default-branch space": (
        '[tool.dex]\ndefault-branch = "ma in"',
        "tool.dex.default-branch: invalid branch name",
    ),
}


@pytest.mark.parametrize(("toml", "expected"), RANGE_CASES.values(), ids=RANGE_CASES)
@pytest.mark.parametrize("task", [("config",), ("locks", "--json")])
def test_out_of_range_config_is_exit_2_for_every_task(
    run_cli: CliRunner, tmp_path: Path, toml: str, expected: str, task: tuple[str, ...]
) -> None:
    # Before, only a cluster task got to these (verify, rollback --emergency), or none did (a
    # coverage floor of 150 failed every test run; a file:// health URL was read as "down").
    (tmp_path / "pyproject.toml").write_text(toml + "\n", encoding="utf-8")
    line = _one_line_error(run_cli(*task, cwd=tmp_path))
    assert expected in line
    assert f"{tmp_path / 'pyproject.toml'}: tool.dex." in line


def test_edge_values_in_range_still_read(tmp_path: Path) -> None:
    # The range checks refuse nonsense, not sensible edges: a two-day canary watch, a 100.0 floor,
    # the lowest and highest ports, a health URL for an env listed after it in the file.
    from dex_tasks import config  # noqa: PLC0415 - only this test loads a file directly

    (tmp_path / "pyproject.toml").write_text(
        "[tool.dex.cluster]\nrollout-timeout = 172800\nservice-port = 65535\n"
        'health-urls = { qa = "HTTPS://qa.example/health" }\n'
        "[tool.dex.test]\ncoverage-fail-under = 100.0\n"
        '[tool.dex]\nenvironments = ["dev", "qa", "prod"]\n',
        encoding="utf-8",
    )
    cfg = config.load(tmp_path)
    assert (cfg.cluster.rollout_timeout, cfg.cluster.service_port) == (172800, 65535)
    assert cfg.test.coverage_fail_under == 100.0
    assert cfg.cluster.health_urls == {"qa": "HTTPS://qa.example/health"}


# -- GitHub answers of the wrong shape (a proxy, an Enterprise version, a hand-made server) ---------


class _OddGitHub:
    """Answers ``workflow_runs`` and ``run_timing`` with what it is given, as a server might."""

    def __init__(self, page: object, timing: object) -> None:
        self.page, self.timing = page, timing

    def workflow_runs(self, _workflow: str, **_query: object) -> object:
        return self.page

    def run_timing(self, _run_id: int) -> object:
        return self.timing


_RUN = {"id": 7, "status": "completed", "conclusion": "success", "created_at": "2026-01-02T00:00:00Z"}
ODD_PAGES = {
    "a list": [_RUN],
    "a string": "<html>502 Bad Gateway</html>",
    "count a string": {"total_count": "1", "workflow_runs": [_RUN]},
    "count true": {"total_count": True, "workflow_runs": [_RUN]},
    "count nan": {"total_count": float("nan"), "workflow_runs": [_RUN]},
    "runs an object": {"total_count": 1, "workflow_runs": {"id": 7}},
    "runs a number": {"total_count": 1, "workflow_runs": 5},
}
ODD_TIMINGS = {"a list": [], "ms a string": {"run_duration_ms": "12"}, "ms true": {"run_duration_ms": True},
               "ms nan": {"run_duration_ms": float("nan")}, "ms -1": {"run_duration_ms": -1}}  # fmt: skip


@pytest.mark.parametrize("page", ODD_PAGES.values(), ids=ODD_PAGES)
def test_an_odd_runs_page_is_read_as_far_as_it_is_runs(page: object) -> None:
    import datetime as dt  # noqa: PLC0415 - only these tests need it

    from dex_tasks.insight import pipeline  # noqa: PLC0415 - the domain, as the task imports it

    until = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)
    client: Any = _OddGitHub(page, {})
    runs = pipeline.fetch_runs(client, "ci.yml", until - dt.timedelta(days=30), until)
    # A count that is no count is no more pages; the first page's runs still count.
    assert runs == ([_RUN] if isinstance(page, dict) and isinstance(page.get("workflow_runs"), list) else [])


@pytest.mark.parametrize("timing", ODD_TIMINGS.values(), ids=ODD_TIMINGS)
def test_an_odd_run_timing_is_no_duration(timing: object) -> None:
    from dex_tasks.insight import pipeline  # noqa: PLC0415 - the domain, as the task imports it

    client: Any = _OddGitHub({}, timing)
    assert pipeline.duration_s(client, dict(_RUN), [1]) is None


def test_a_pyproject_with_a_bom_says_so(run_cli: CliRunner, tmp_path: Path) -> None:
    # tomllib's "Invalid statement (at line 1, column 1)" for a file that looks right in any editor.
    (tmp_path / "pyproject.toml").write_bytes(b'\xef\xbb\xbf[project]\nname = "x"\n')
    line = _one_line_error(run_cli("config", cwd=tmp_path))
    assert "starts with a UTF-8 byte order mark (BOM)" in line


def test_a_pyproject_with_crlf_reads(run_cli: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_bytes(
        b'[project]\r\nname = "x"\r\n\r\n[tool.dex]\r\nnamespace = "n-{env}"\r\n'
    )
    result = run_cli("config", "--json", cwd=tmp_path)
    assert result.code == 0, result.err
    assert json.loads(result.out)["config"]["namespace"] == "n-{env}"


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"Metadata": "x"}, "Metadata: expected an object, got str"),
        ({"Metadata": [1]}, "Metadata: expected an object, got list"),
        ({"ArtifactName": 5}, "ArtifactName: expected a string, got int"),
        ({"ArtifactType": {"a": 1}}, "ArtifactType: expected a string, got dict"),
    ],
)
def test_report_fields_trivy_convert_cannot_decode_are_exit_2_before_it_runs(
    run_cli: CliRunner,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fields: dict[str, object],
    expected: str,
) -> None:
    # Real trivy's Go decoder refuses these ("json decode error", exit 1, a second line of its log).
    ran: list[object] = []
    monkeypatch.setattr(proc, "run", lambda *a, **_k: ran.append(a))
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"SchemaVersion": 2, "Results": [], **fields}), encoding="utf-8")
    line = _one_line_error(run_cli("trivy-scan", "--report", str(report), cwd=tmp_path))
    assert f"{report}: not a valid trivy JSON report: {expected}" in line
    assert ran == []
