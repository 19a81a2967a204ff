"""Notifications and GitHub Deployments end to end: the real tasks, a local receiver, the fake GitHub."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import pytest

from dex_tasks.insight import notify
from tests.fakes.github_api import FakeGitHub
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.helpers import serving

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.conftest import CliRunner
    from tests.gitops_fixtures import GitOpsRepo

pytestmark = pytest.mark.timeout(120)
SECRET = "whsec_dex_test_secret"
NOW = "2030-01-01T00:00:00+00:00"


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[WebhookReceiver]:
    with WebhookReceiver(secret=SECRET) as server:
        monkeypatch.setenv(notify.SLACK_ENV, server.url("/slack/T000/B000/XXXX"))
        monkeypatch.setenv(notify.WEBHOOK_ENV, server.url("/hook"))
        monkeypatch.setenv(notify.SECRET_ENV, SECRET)
        monkeypatch.setenv("DEX_NOW", NOW)
        monkeypatch.setattr(notify, "BACKOFF", 0.0)
        yield server


@pytest.fixture
def github(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGitHub]:
    with FakeGitHub(token="ghs_fake_token_for_insight", repo="data-literate/dex") as fake:
        for name, value in fake.env().items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("GITHUB_RUN_ID", "4242")
        yield fake


def _hooks(receiver: WebhookReceiver) -> list[Any]:
    return receiver.bodies("/hook")


def _slack(receiver: WebhookReceiver) -> list[Any]:
    return receiver.bodies("/slack/T000/B000/XXXX")


def test_notify_test_sends_signed_bytes(
    receiver: WebhookReceiver, run_cli: CliRunner, repo: GitOpsRepo
) -> None:
    result = run_cli("notify", "--test", "--json", cwd=repo.clone)
    assert result.code == 0, result.err
    assert json.loads(result.out)["sent"] == ["slack", "webhook"]
    hook = next(r for r in receiver.received if r.path == "/hook")
    event = notify.Event(
        kind="test",
        envs=("dev", "stage", "prod"),
        tag=None,
        detail="a test notification from dex-tasks notify --test",
    )
    assert hook.body == notify.encode(event.as_json())  # byte for byte
    assert hook.headers["x-dex-signature"] == notify.sign(hook.body, SECRET)
    assert hook.headers["content-type"] == "application/json; charset=utf-8"
    slack = _slack(receiver)[0]
    assert slack["text"].startswith("dex-tasks test notification")
    assert slack["blocks"][0]["type"] == "section"
    # Webhook URLs and the secret are redacted like tokens.
    for secret in (SECRET, receiver.url("/hook"), "/slack/T000/B000/XXXX"):
        assert secret not in result.out + result.err


def test_notify_test_needs_a_target_and_reports_a_failure(
    receiver: WebhookReceiver, run_cli: CliRunner, repo: GitOpsRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run_cli("notify", cwd=repo.clone).code == 2
    receiver.fail_next(503, times=3)  # slack: every attempt fails
    result = run_cli("notify", "--test", cwd=repo.clone)
    assert result.code == 4
    assert result.err.count("notify slack: attempt") == 2  # progress lines, then the give-up
    assert "HTTP 503" in result.err
    monkeypatch.delenv(notify.SLACK_ENV)
    monkeypatch.delenv(notify.WEBHOOK_ENV)
    result = run_cli("notify", "--test", cwd=repo.clone)
    assert result.code == 2
    assert "no notification target" in result.err


def test_bump_records_deployments_and_sends_one_message(
    repo: GitOpsRepo, github: FakeGitHub, receiver: WebhookReceiver, run_cli: CliRunner
) -> None:
    t4 = repo.tags[4]
    result = run_cli("bump-overlay", "stage", "prod", t4, "--direct", "--json", cwd=repo.clone)
    assert result.code == 0, result.err
    commit = json.loads(result.out)["commit"]
    # One message per change, naming both envs.
    hooks, slack = _hooks(receiver), _slack(receiver)
    assert len(hooks) == 1
    assert len(slack) == 1
    assert (hooks[0]["event"], hooks[0]["envs"], hooks[0]["tag"], hooks[0]["commit"]) == (
        "bump",
        ["stage", "prod"],
        t4,
        commit,
    )
    assert hooks[0]["previous_tags"] == {"stage": repo.tags[1], "prod": repo.tags[0]}
    assert "stage, prod" in slack[0]["text"]
    # One deployment per env, ref = the overlay commit; prod is the production environment.
    made = list(github.deployments.values())
    assert [(d["environment"], d["ref"]) for d in made] == [("stage", commit), ("prod", commit)]
    for d in made:
        sent = d["_request"]
        assert sent["payload"] == {"tag": t4, "action": "bump"}
        assert (sent["auto_merge"], sent["required_contexts"], sent["transient_environment"]) == (
            False,
            [],
            False,
        )
        assert sent["production_environment"] is (d["environment"] == "prod")
        statuses = github.deployment_statuses[d["id"]]
        assert [(s["state"], s["auto_inactive"]) for s in statuses] == [("success", True)]
        assert statuses[0]["log_url"] == "https://github.com/data-literate/dex/actions/runs/4242"


def test_pr_mode_deployments_are_in_progress(
    repo: GitOpsRepo, github: FakeGitHub, receiver: WebhookReceiver, run_cli: CliRunner
) -> None:
    result = run_cli("promote", "stage", "prod", "--verify", "git", cwd=repo.clone)
    assert result.code == 0, result.err
    (deployment,) = github.deployments.values()
    assert deployment["environment"] == "prod"
    assert github.deployment_statuses[deployment["id"]][0]["state"] == "in_progress"
    (hook,) = _hooks(receiver)
    assert (hook["event"], hook["from_env"], hook["pr_url"]) == (
        "promote",
        "stage",
        github.pulls[1]["html_url"],
    )


def test_rollback_notifies_once_despite_a_retry(
    repo: GitOpsRepo, github: FakeGitHub, receiver: WebhookReceiver, run_cli: CliRunner
) -> None:
    receiver.fail_next(429, retry_after="0")  # slack asks to back off once
    result = run_cli("rollback", "stage", cwd=repo.clone)
    assert result.code == 0, result.err
    assert "notify slack: attempt 1/3 failed (HTTP 429" in result.err
    assert len(_slack(receiver)) == 1
    assert len(_hooks(receiver)) == 1
    assert _hooks(receiver)[0]["event"] == "rollback"


def test_nothing_on_dry_run_no_push_or_no_change(
    repo: GitOpsRepo, github: FakeGitHub, receiver: WebhookReceiver, run_cli: CliRunner
) -> None:
    t4 = repo.tags[4]
    for argv in (("--dry-run",), ("--no-push",)):
        result = run_cli("bump-overlay", "dev", t4, "--direct", *argv, cwd=repo.clone)
        assert result.code == 0, result.err
    result = run_cli("bump-overlay", "dev", repo.tags[3], "--direct", cwd=repo.clone)  # already there
    assert result.code == 0, result.err
    assert receiver.received == []
    assert github.requests_to("POST", "/repos/data-literate/dex/deployments") == []


def test_failures_never_fail_the_task(
    repo: GitOpsRepo, github: FakeGitHub, receiver: WebhookReceiver, run_cli: CliRunner
) -> None:
    receiver.fail_next(500, times=6)  # both targets, every attempt
    github.fail_next("POST", "/repos/data-literate/dex/deployments", status=403)
    result = run_cli("bump-overlay", "dev", repo.tags[4], "--direct", cwd=repo.clone)
    assert result.code == 0, result.err
    assert "warning: GitHub deployment of dev not recorded" in result.err
    assert "warning: notification to slack not sent: HTTP 500" in result.err
    assert "warning: notification to webhook not sent" in result.err


def test_notify_envs_filter_and_no_token_notice(
    repo: GitOpsRepo, receiver: WebhookReceiver, run_cli: CliRunner
) -> None:
    pyproject = repo.clone / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text(encoding="utf-8") + '\n[tool.dex.notify]\nenvs = ["prod"]\n', "utf-8"
    )
    result = run_cli("bump-overlay", "dev", repo.tags[4], "--direct", cwd=repo.clone)
    assert result.code == 0, result.err
    assert receiver.received == []
    result = run_cli("bump-overlay", "prod", repo.tags[4], "--direct", cwd=repo.clone)
    assert result.code == 0, result.err
    assert [h["envs"] for h in _hooks(receiver)] == [["prod"]]


class _Health(BaseHTTPRequestHandler):
    status = 200

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        """Quiet."""

    def do_GET(self) -> None:
        body = b'{"status": "ok"}'
        self.send_response(type(self).status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.mark.parametrize(("status", "ok"), [(200, True), (500, False)])
def test_verify_posts_its_status_and_notifies(  # noqa: PLR0917 - fixtures and parameters
    repo: GitOpsRepo, github: FakeGitHub, receiver: WebhookReceiver, run_cli: CliRunner, status: int, ok: bool
) -> None:
    assert run_cli("bump-overlay", "dev", repo.tags[4], "--direct", cwd=repo.clone).code == 0
    handler = type("Health", (_Health,), {"status": status})
    with serving(ThreadingHTTPServer(("127.0.0.1", 0), handler)) as server:
        url = f"http://127.0.0.1:{server.server_address[1]}/health"
        result = run_cli("verify", "dev", "--url", url, "--attempts", "1", "--interval", "0", cwd=repo.clone)
    assert result.code == (0 if ok else 1), result.err
    (deployment,) = github.deployments.values()
    states = [s["state"] for s in github.deployment_statuses[deployment["id"]]]
    assert states == ["success", "success" if ok else "failure"]
    verify_hook = _hooks(receiver)[-1]
    assert (verify_hook["event"], verify_hook["envs"], verify_hook["ok"]) == ("verify", ["dev"], ok)


def test_slack_limits() -> None:
    event = notify.Event(kind="bump", envs=("dev",), tag="sha-1234567", detail="x" * 50_000)
    payload = notify.slack_payload(event)
    assert len(payload["text"]) <= notify.SLACK_TEXT_MAX
    assert len(payload["blocks"]) <= notify.SLACK_BLOCKS_MAX
    assert all(len(b["text"]["text"]) <= notify.SLACK_SECTION_MAX for b in payload["blocks"] if "text" in b)
