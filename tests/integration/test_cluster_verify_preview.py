"""``verify`` and ``preview``: a local health server, the fake API server (real kubectl), the fake
argocd CLI, the fake GitHub API, and a DEX-like repository with a bare origin."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

import pytest

from tests.cluster_fixtures import IMAGE, deploy_envs
from tests.fakes.argocd_state import FakeArgo
from tests.fakes.github_api import FakeGitHub
from tests.helpers import need_tool, serving

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from tests.conftest import CliRunner
    from tests.fakes.kube_apiserver import FakeKube
    from tests.gitops_fixtures import GitOpsRepo

pytestmark = [pytest.mark.timeout(180)]
FAST = ("--interval", "0", "--attempts", "2")


class HealthServer:
    """``GET /health`` answers ``status`` (200 or 503); counts the requests."""

    def __init__(self) -> None:
        self.status = 200
        self.hits = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits += 1
                code = outer.status if self.path == "/health" else 404
                body = b'{"status":"ok"}' if code == 200 else b'{"status":"down"}'
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002, ARG002 - stdlib signature
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/health"


@pytest.fixture
def health() -> Iterator[HealthServer]:
    server = HealthServer()
    with serving(server.server):
        yield server


# -- verify -------------------------------------------------------------------------------------


def test_verify_health_url_ok(repo: GitOpsRepo, health: HealthServer, run_cli: CliRunner) -> None:
    result = run_cli("verify", "stage", "--url", health.url, "--json", *FAST, cwd=repo.clone)
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["ok"] is True
    assert data["health"]["status"] == 200
    assert data["argocd"] == {"checked": False, "reason": "argocd is not on PATH"}


def test_verify_health_urls_from_config(repo: GitOpsRepo, health: HealthServer, run_cli: CliRunner) -> None:
    pyproject = repo.clone / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text(encoding="utf-8")
        + f'\n[tool.dex.cluster]\nhealth-urls = {{ stage = "{health.url}" }}\n',
        encoding="utf-8",
    )
    result = run_cli("verify", "stage", *FAST, cwd=repo.clone)
    assert result.code == 0, result.err
    assert health.hits == 1


@pytest.mark.parametrize("url", ["stage.example.com/health", "ftp://stage.example.com/health"])
def test_verify_bad_health_url_in_config_is_exit_2_and_no_rollback(
    repo: GitOpsRepo, url: str, run_cli: CliRunner
) -> None:
    pyproject = repo.clone / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text(encoding="utf-8")
        + f'\n[tool.dex.cluster]\nhealth-urls = {{ stage = "{url}" }}\n',
        encoding="utf-8",
    )
    before = repo.snapshot()
    result = run_cli("verify", "stage", "--rollback-on-failure", *FAST, cwd=repo.clone)
    assert result.code == 2, result.err
    assert f"health-urls.stage must be an http(s) URL, got '{url}'" in result.err
    assert repo.snapshot() == before
    assert repo.tag("stage") == repo.tags[1]


@pytest.mark.kubectl
@pytest.mark.parametrize("port", [0, 70000])
def test_verify_bad_service_port_is_exit_2_and_no_rollback(
    repo: GitOpsRepo, fake_kube: FakeKube, port: int, run_cli: CliRunner
) -> None:
    deploy_envs(fake_kube, {"stage": repo.tags[1]})
    pyproject = repo.clone / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text(encoding="utf-8") + f"\n[tool.dex.cluster]\nservice-port = {port}\n",
        encoding="utf-8",
    )
    before = repo.snapshot()
    result = run_cli("verify", "stage", "--rollback-on-failure", *FAST, cwd=repo.clone)
    assert result.code == 2, result.err
    assert f"service-port must be a TCP port (1-65535), got {port}" in result.err
    assert repo.snapshot() == before
    assert fake_kube.writes() == []


def test_verify_failure_without_rollback_changes_nothing(
    repo: GitOpsRepo, health: HealthServer, run_cli: CliRunner
) -> None:
    health.status = 503
    before = repo.snapshot()
    result = run_cli("verify", "stage", "--url", health.url, *FAST, cwd=repo.clone)
    assert result.code == 1
    assert "verify stage failed" in result.err
    assert "HTTP 503" in result.err
    assert health.hits == 2  # bounded retries
    assert repo.snapshot() == before


def test_verify_failure_with_an_html_error_page_is_one_line(repo: GitOpsRepo, run_cli: CliRunner) -> None:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = (
                b"<html>\n<head><title>502 Bad Gateway</title></head>\n<body>\n"
                + b"x" * 100_000
                + b"\n</body>"
            )
            self.send_response(502)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002, ARG002 - stdlib signature
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/health"
        result = run_cli("verify", "stage", "--url", url, *FAST, cwd=repo.clone)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
    assert result.code == 1
    last = result.err.strip().splitlines()[-1]
    assert last.startswith(f"dex-tasks verify: verify stage failed: {url}: HTTP 502: <html> <head><title>502")
    assert len(last) < 400


def test_verify_rollback_on_failure(repo: GitOpsRepo, health: HealthServer, run_cli: CliRunner) -> None:
    health.status = 503
    t = repo.tags
    result = run_cli(
        "verify", "stage", "--url", health.url, "--rollback-on-failure", "--json", *FAST, cwd=repo.clone
    )
    assert result.code == 1
    assert f"rolled stage back to {t[0]}" in result.err
    assert repo.tag("stage") == t[0]
    data = json.loads(result.out)
    assert data["rolled_back"]["tag"] == t[0]
    assert data["rolled_back"]["pushed"] is True


def test_verify_outputs_in_actions(
    repo: GitOpsRepo,
    health: HealthServer,
    run_cli: CliRunner,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    outputs, summary = tmp_path / "out", tmp_path / "summary"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_OUTPUT", str(outputs))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    health.status = 503
    result = run_cli("verify", "stage", "--url", health.url, "--rollback-on-failure", *FAST, cwd=repo.clone)
    assert result.code == 1
    lines = outputs.read_text(encoding="utf-8").splitlines()  # the rollback adds its own outputs
    assert lines[-2:] == ["ok=false", f"rolled-back-to={repo.tags[0]}"]
    assert "verify stage" in summary.read_text(encoding="utf-8")


def test_verify_rollback_dry_run(repo: GitOpsRepo, health: HealthServer, run_cli: CliRunner) -> None:
    health.status = 503
    before = repo.snapshot()
    result = run_cli(
        "verify", "stage", "--url", health.url, "--rollback-on-failure", "--dry-run", *FAST, cwd=repo.clone
    )
    assert result.code == 1
    assert "would have rolled stage back" in result.err
    assert repo.snapshot() == before


def test_verify_waits_for_argocd_at_the_expected_revision(
    repo: GitOpsRepo, fake_argo: FakeArgo, health: HealthServer, run_cli: CliRunner
) -> None:
    main = repo.head("main")
    fake_argo.add_app("dex-stage", namespace="dex-stage", image=f"{IMAGE}:{repo.tags[1]}", revision="f" * 40)
    before = repo.snapshot()
    stale = run_cli(
        "verify",
        "stage",
        "--url",
        health.url,
        "--timeout",
        "1",
        "--rollback-on-failure",
        *FAST,
        cwd=repo.clone,
    )
    assert stale.code == 1
    assert f"not Synced/Healthy at {main[:12]}" in stale.err
    assert health.hits == 0  # the health URL is only asked once Argo CD is there
    assert repo.tag("stage") == repo.tags[0]  # rolled back
    # A synced app at the (new) tip passes.
    repo_main = repo.head("main")
    assert repo_main != main
    fake_argo.update_app("dex-stage", revision=repo_main)
    assert before != repo.snapshot()
    ok = run_cli("verify", "stage", "--url", health.url, *FAST, cwd=repo.clone)
    assert ok.code == 0, ok.err
    assert "Synced/Healthy" in ok.out


def test_verify_survives_one_argocd_blip(
    repo: GitOpsRepo, fake_argo: FakeArgo, health: HealthServer, run_cli: CliRunner
) -> None:
    # argocd-server restarts during the wait: one failed `app get` is asked again, not exit 4.
    fake_argo.add_app(
        "dex-stage", namespace="dex-stage", image=f"{IMAGE}:{repo.tags[1]}", revision=repo.head("main")
    )
    fake_argo.update_app("dex-stage", fail="get_unavailable_once")
    result = run_cli("verify", "stage", "--url", health.url, "--timeout", "60", *FAST, cwd=repo.clone)
    assert result.code == 0, result.err
    assert "Argo CD did not answer" in result.err
    # The wait before asking again says what it waits for and which attempt (progress.waiting).
    assert "Argo CD app dex-stage to answer (attempt 2/" in result.err
    assert [c[:2] for c in fake_argo.calls()] == [["app", "get"], ["app", "get"]]


def test_verify_failed_sync_fails_fast(
    repo: GitOpsRepo, fake_argo: FakeArgo, health: HealthServer, run_cli: CliRunner
) -> None:
    # The sync of our commit (the tip of origin/main) failed: no need to wait for the timeout.
    fake_argo.add_app("dex-stage", namespace="dex-stage", image=f"{IMAGE}:{repo.tags[1]}", health="Degraded",
                      revision=repo.head("main"))  # fmt: skip
    fake_argo.update_app("dex-stage", operation_phase="Failed")
    result = run_cli("verify", "stage", "--url", health.url, "--timeout", "60", *FAST, cwd=repo.clone)
    assert result.code == 1
    assert "the last sync failed" in result.err


def test_verify_stale_failed_sync_of_an_older_commit_is_waited_out(
    repo: GitOpsRepo, fake_argo: FakeArgo, health: HealthServer, run_cli: CliRunner
) -> None:
    # The failed operation is an older revision's (before our push): Argo CD may not have started
    # syncing ours yet, so that is no verdict - wait (bounded), and say what was seen.
    from tests.helpers import git  # noqa: PLC0415

    older = git("rev-parse", "main~1", cwd=repo.origin).strip()
    fake_argo.add_app("dex-stage", namespace="dex-stage", image=f"{IMAGE}:{repo.tags[1]}", health="Degraded",
                      revision=older)  # fmt: skip
    fake_argo.update_app("dex-stage", operation_phase="Failed")
    result = run_cli("verify", "stage", "--url", health.url, "--timeout", "1", *FAST, cwd=repo.clone)
    assert result.code == 1
    assert "the last sync failed" not in result.err
    assert f"not Synced/Healthy at {repo.head('main')[:12]}, after" in result.err


def test_verify_argocd_unreachable_is_exit_4_and_no_rollback(
    repo: GitOpsRepo,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    health: HealthServer,
    run_cli: CliRunner,
) -> None:
    argo = FakeArgo(tmp_path / "argo", token="right")
    for key, value in argo.env(token="wrong").items():
        monkeypatch.setenv(key, value)
    before = repo.snapshot()
    result = run_cli("verify", "stage", "--url", health.url, "--rollback-on-failure", *FAST, cwd=repo.clone)
    assert result.code == 4
    assert "Unauthenticated" in result.err
    assert repo.snapshot() == before


@pytest.mark.kubectl
def test_verify_through_port_forward(
    repo: GitOpsRepo, fake_kube: FakeKube, health: HealthServer, run_cli: CliRunner
) -> None:
    # No URL configured: kubectl port-forward svc/dex in dex-stage (SPDY through the fake API
    # server to the test's HTTP server), GET /health, and kubectl is stopped afterwards.
    deploy_envs(fake_kube, {"stage": repo.tags[1]})
    fake_kube.set_backend("dex-stage", health.port)
    result = run_cli("verify", "stage", "--json", *FAST, cwd=repo.clone)
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["health"]["url"].startswith("http://127.0.0.1:")
    assert data["health"]["url"].endswith("/health")
    assert health.hits == 1
    assert "kubectl port-forward -n dex-stage svc/dex" in result.err
    assert ("POST", "/api/v1/namespaces/dex-stage/pods/dex-0001-0/portforward") in fake_kube.writes()


@pytest.mark.kubectl
def test_verify_port_forward_without_access_is_exit_4_and_no_rollback(
    repo: GitOpsRepo, fake_kube: FakeKube, health: HealthServer, run_cli: CliRunner
) -> None:
    # RBAC denies the runner in dex-stage: nothing is known about the env, so no "unhealthy"
    # verdict and no rollback of what may be a healthy deployment.
    deploy_envs(fake_kube, {"stage": repo.tags[1]})
    fake_kube.set_backend("dex-stage", health.port)
    fake_kube.forbid("dex-stage")
    before = repo.snapshot()
    result = run_cli("verify", "stage", "--rollback-on-failure", *FAST, cwd=repo.clone)
    assert result.code == 4, result.err
    last = result.err.strip().splitlines()[-1]
    assert last.startswith("dex-tasks verify: error: no access to the cluster: Error from server (Forbidden)")
    assert "rolling" not in result.out + result.err
    assert repo.snapshot() == before
    assert health.hits == 0


@pytest.mark.kubectl
def test_verify_port_forward_nothing_listening(
    repo: GitOpsRepo, fake_kube: FakeKube, run_cli: CliRunner
) -> None:
    # The pod accepts the port-forward but nothing listens on its port (the app crashed).
    deploy_envs(fake_kube, {"stage": repo.tags[1]})
    result = run_cli("verify", "stage", *FAST, cwd=repo.clone)
    assert result.code == 1
    assert "verify stage failed" in result.err
    assert "no answer" in result.err


def test_verify_bad_input(repo: GitOpsRepo, run_cli: CliRunner) -> None:
    assert run_cli("verify", "qa", cwd=repo.clone).code == 2
    bad = run_cli("verify", "stage", "--url", "ftp://x", cwd=repo.clone)
    assert bad.code == 2
    assert "--url must be an http(s) URL" in bad.err


# -- preview ------------------------------------------------------------------------------------


@pytest.mark.kubectl
def test_preview_list(fake_kube: FakeKube, fake_argo: FakeArgo, run_cli: CliRunner, tmp_path: Path) -> None:
    for ns in ("dex-pr-7", "dex-pr-12", "dex-stage", "dex-pr-x"):
        fake_kube.add_namespace(ns)
    fake_argo.add_app("dex-pr-12", namespace="dex-pr-12", image=f"{IMAGE}:pr-12", health="Progressing")
    fake_argo.add_app("dex-pr-31", namespace="dex-pr-31", image=f"{IMAGE}:pr-31")
    fake_argo.add_app("dex-stage", namespace="dex-stage", image=f"{IMAGE}:sha-1234567")
    result = run_cli("preview", "list", "--json", cwd=tmp_path)
    assert result.code == 0, result.err
    previews = json.loads(result.out)["previews"]
    assert [(p["pr"], p["namespace"], p["app"], p["health"]) for p in previews] == [
        (7, "dex-pr-7", None, None),
        (12, "dex-pr-12", "dex-pr-12", "Progressing"),
        (31, "dex-pr-31", "dex-pr-31", "Healthy"),
    ]


def test_preview_list_without_anything(no_cluster: None, run_cli: CliRunner, tmp_path: Path) -> None:
    result = run_cli("preview", "list", cwd=tmp_path)
    assert result.code == 0, result.err
    assert "no previews found" in result.out
    assert "namespaces not checked" in result.out


def test_preview_down_argocd(fake_argo: FakeArgo, run_cli: CliRunner, tmp_path: Path) -> None:
    fake_argo.add_app("dex-pr-12", namespace="dex-pr-12", image=f"{IMAGE}:pr-12")
    dry = run_cli("preview", "down", "12", "--dry-run", cwd=tmp_path)
    assert dry.code == 0, dry.err
    assert "argocd app delete dex-pr-12 --yes" in dry.err
    assert "dex-pr-12" in fake_argo.load()["apps"]
    result = run_cli("preview", "down", "12", "--json", cwd=tmp_path)
    assert result.code == 0, result.err
    assert json.loads(result.out)["deleted"] == "app/dex-pr-12"
    assert "dex-pr-12" not in fake_argo.load()["apps"]
    again = run_cli("preview", "down", "12", "--json", cwd=tmp_path)
    assert again.code == 0
    assert json.loads(again.out)["changed"] is False


@pytest.mark.kubectl
def test_preview_down_namespace(fake_kube: FakeKube, run_cli: CliRunner, tmp_path: Path) -> None:
    fake_kube.add_namespace("dex-pr-5")
    dry = run_cli("preview", "down", "5", "--dry-run", cwd=tmp_path)
    assert dry.code == 0, dry.err
    assert "kubectl delete namespace dex-pr-5" in dry.err
    assert fake_kube.writes() == []
    result = run_cli("preview", "down", "5", cwd=tmp_path)
    assert result.code == 0, result.err
    assert ("DELETE", "/api/v1/namespaces/dex-pr-5") in fake_kube.writes()
    gone = run_cli("preview", "down", "5", cwd=tmp_path)
    assert gone.code == 0
    # Gone, or still Terminating if the fake's namespace controller has not purged it yet.
    assert "nothing to do" in gone.out


@pytest.mark.kubectl
def test_preview_down_terminating_namespace_is_nothing_to_do(
    fake_kube: FakeKube, run_cli: CliRunner, tmp_path: Path
) -> None:
    # A namespace stays Terminating until its content is gone (minutes, or for ever with a stuck
    # finalizer); a second `preview down` (the PR-closed workflow re-run) must not fail on the
    # API server's 409 Conflict.
    fake_kube.add_namespace("dex-pr-5")
    fake_kube.hold_namespace("dex-pr-5")
    first = run_cli("preview", "down", "5", cwd=tmp_path)
    assert first.code == 0, first.err
    again = run_cli("preview", "down", "5", "--json", cwd=tmp_path)
    assert again.code == 0, again.err
    data = json.loads(again.out)
    assert (data["deleted"], data["changed"]) == (None, False)
    assert "is already being deleted (Terminating); nothing to do" in again.err
    assert fake_kube.writes() == [("DELETE", "/api/v1/namespaces/dex-pr-5")]
    # `preview list` says so instead of showing it as a live preview.
    listed = run_cli("preview", "list", "--json", cwd=tmp_path)
    assert listed.code == 0, listed.err
    assert [(p["pr"], p["terminating"]) for p in json.loads(listed.out)["previews"]] == [(5, True)]
    assert "dex-pr-5 (Terminating)" in run_cli("preview", "list", cwd=tmp_path).out


def test_preview_bad_pr_is_exit_2(run_cli: CliRunner, tmp_path: Path) -> None:
    for bad in ("0", "-3", "abc", "12/../x"):
        result = run_cli("preview", "down", bad, cwd=tmp_path)
        assert result.code == 2, (bad, result.err)


def test_preview_health_url(health: HealthServer, run_cli: CliRunner, tmp_path: Path) -> None:
    ok = run_cli("preview", "health", "12", "--url", health.url, *FAST, cwd=tmp_path)
    assert ok.code == 0, ok.err
    health.status = 503
    bad = run_cli("preview", "health", "12", "--url", health.url, *FAST, cwd=tmp_path)
    assert bad.code == 1
    assert "preview 12 is not healthy" in bad.err


@pytest.mark.kubectl
def test_preview_health_through_port_forward(
    fake_kube: FakeKube, health: HealthServer, run_cli: CliRunner, tmp_path: Path
) -> None:
    fake_kube.add_deployment("dex-pr-12", "dex", image=f"{IMAGE}:pr-12")
    fake_kube.set_backend("dex-pr-12", health.port)
    result = run_cli("preview", "health", "12", "--json", *FAST, cwd=tmp_path)
    assert result.code == 0, result.err
    assert json.loads(result.out)["namespace"] == "dex-pr-12"
    assert health.hits == 1
    missing = run_cli("preview", "health", "13", *FAST, cwd=tmp_path)
    assert missing.code == 1
    assert "port-forward failed" in missing.err


def test_preview_health_without_cluster(no_cluster: None, run_cli: CliRunner, tmp_path: Path) -> None:
    need_tool("kubectl")
    result = run_cli("preview", "health", "12", cwd=tmp_path)
    assert result.code == 2
    assert "needs a URL" in result.err


def test_preview_comment_without_token_prints(run_cli: CliRunner, tmp_path: Path) -> None:
    result = run_cli("preview", "comment", "12", cwd=tmp_path)
    assert result.code == 0, result.err
    assert "kubectl port-forward -n dex-pr-12 svc/dex 8000:8000" in result.out
    assert "pr-12" in result.out
    assert "not posted" in result.out


def test_preview_comment_is_sticky(
    run_cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeGitHub(repo="data-literate/dex") as gh:
        for key, value in gh.env().items():
            monkeypatch.setenv(key, value)
        gh.add_pull(head="feature", base="main")
        first = run_cli("preview", "comment", "1", "--json", cwd=tmp_path)
        assert first.code == 0, first.err
        second = run_cli("preview", "comment", "1", "--json", cwd=tmp_path)
        assert second.code == 0, second.err
        assert json.loads(second.out)["comment_url"] == json.loads(first.out)["comment_url"]
        assert len(gh.comments) == 1
        body = next(iter(gh.comments.values()))["body"]
        assert "<!-- dex-tasks:preview -->" in body
        assert "dex-pr-1" in body
        assert gh.token not in first.out + first.err


def test_preview_down_without_access_fails_and_leaves_the_comment(
    no_cluster: None, run_cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Nothing can delete it (no Argo CD, no kubeconfig): exit 2 as the cause says, not 0, and the
    # sticky comment does not claim the preview is gone.
    with FakeGitHub(repo="data-literate/dex") as gh:
        for key, value in gh.env().items():
            monkeypatch.setenv(key, value)
        gh.add_pull(head="feature", base="main")
        up = run_cli("preview", "comment", "1", cwd=tmp_path)
        assert up.code == 0, up.err
        body = next(iter(gh.comments.values()))["body"]
        writes = len([r for r in gh.requests if r.method != "GET"])
        down = run_cli("preview", "down", "1", "--json", cwd=tmp_path)
        assert down.code == 2, down.err
        data = json.loads(down.out)
        assert data["exit_code"] == 2
        assert "nothing was deleted" in data["error"]
        assert "ARGOCD_AUTH_TOKEN" in data["error"]
        assert [line for line in down.err.splitlines() if line.startswith("dex-tasks preview:")] == [
            f"dex-tasks preview: error: {data['error']}"
        ]
        assert next(iter(gh.comments.values()))["body"] == body
        assert len([r for r in gh.requests if r.method != "GET"]) == writes


def test_preview_down_without_kubectl_or_argocd_is_exit_3(
    run_cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ARGOCD_SERVER", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    result = run_cli("preview", "down", "4", cwd=tmp_path)
    assert result.code == 3, result.err
    assert "kubectl" in result.err
    assert "nothing was deleted" in result.err


def test_preview_down_argocd_server_without_cli_is_exit_3(
    run_cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARGOCD_SERVER", "argocd.example.invalid")
    monkeypatch.setenv("PATH", str(tmp_path))
    result = run_cli("preview", "down", "4", cwd=tmp_path)
    assert result.code == 3
    assert "argocd" in result.err


def test_verify_argocd_server_without_cli_is_exit_3(
    repo: GitOpsRepo, health: HealthServer, monkeypatch: pytest.MonkeyPatch, run_cli: CliRunner
) -> None:
    # Skipping the Argo CD wait would GET the health of the old pods and say "verified".
    from dex_tasks import proc  # noqa: PLC0415

    real_which = proc.which
    monkeypatch.setattr(proc, "which", lambda tool: None if tool == "argocd" else real_which(tool))
    monkeypatch.setenv("ARGOCD_SERVER", "argocd.example.invalid")
    before = repo.snapshot()
    result = run_cli("verify", "stage", "--url", health.url, "--rollback-on-failure", *FAST, cwd=repo.clone)
    assert result.code == 3, result.err
    assert "required tool 'argocd' was not found" in result.err
    assert health.hits == 0
    assert repo.snapshot() == before


def test_verify_accepts_argocd_at_a_later_commit_of_the_base_branch(repo: GitOpsRepo) -> None:
    # Someone merges to main after verify fetched it: Argo CD syncs the newer commit, which
    # contains ours. Waiting for the exact commit would time out and roll back a healthy env.
    from dex_tasks.tasks.verify import _at_or_after, _Expected  # noqa: PLC0415
    from tests.helpers import git  # noqa: PLC0415

    older = git("rev-parse", "main~1", cwd=repo.origin).strip()
    tip = git("rev-parse", "main", cwd=repo.origin).strip()

    def expected(commit: str) -> _Expected:  # what verify fetched for stage (base branch main)
        return _Expected(root=repo.clone, base="main", commit=commit)

    seen: dict[str, bool] = {}
    assert _at_or_after(expected(older), tip, seen)
    assert _at_or_after(expected(tip), tip, seen)
    assert not _at_or_after(expected(tip), older, seen)  # an older commit is not there yet
    assert not _at_or_after(expected(tip), "f" * 40, seen)  # unknown everywhere
    assert not _at_or_after(expected(tip), "", seen)


def test_verify_retries_print_progress_lines_and_end_in_one_error_line(
    repo: GitOpsRepo, health: HealthServer, run_cli: CliRunner
) -> None:
    health.status = 503
    result = run_cli("verify", "stage", "--url", health.url, *FAST, cwd=repo.clone)
    assert result.code == 1, result.err
    waiting = [line for line in result.err.splitlines() if "waiting for" in line]
    assert len(waiting) == 1, result.err
    assert waiting[0].startswith(f"# waiting for {health.url} (attempt 2/2, next try in 0.0s): HTTP 503")
    errors = [line for line in result.err.splitlines() if line.startswith("dex-tasks verify:")]
    assert len(errors) == 1, result.err
    assert "HTTP 503" in errors[0]
