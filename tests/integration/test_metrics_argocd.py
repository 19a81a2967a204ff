"""metrics' Argo CD half end to end: the fake argocd CLI on PATH, or the fake REST API without it.

``dex-tasks metrics --json`` through the real CLI entry; the Application history is what Argo CD
serializes (``tests.fakes.argocd_state.revision_history``), written relative to ``DEX_NOW``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from typing import TYPE_CHECKING, Any

import pytest

from dex_tasks.errors import ArgoCDError
from dex_tasks.tools import argocd, argocd_api
from tests.fakes.argocd_api import FakeArgoCDAPI
from tests.fakes.argocd_state import revision_history
from tests.helpers import stamp

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.conftest import CliResult, CliRunner
    from tests.fakes.argocd_state import FakeArgo
    from tests.gitops_fixtures import GitOpsRepo

pytestmark = pytest.mark.timeout(120)
IMAGE = "ghcr.io/data-literate/dex"
PROD_SERVER = "argocd.prod.example"


def _history(now: dt.datetime, seconds: list[float | None], *, days_apart: float = 1) -> list[dict[str, Any]]:
    """One entry a day back from ``now`` per duration (None: no deployStartedAt), oldest first."""
    entries = []
    for i, taken in enumerate(seconds):
        deployed = now - dt.timedelta(days=days_apart * (len(seconds) - i))
        started = None if taken is None else stamp(deployed - dt.timedelta(seconds=taken))
        entries.append(revision_history(i, f"{i:040x}", started=started, deployed=stamp(deployed)))
    return entries


def _one_line(result: CliResult, start: str) -> str:
    lines = [line.removeprefix("warning: ") for line in result.err.splitlines()]
    lines = [line for line in lines if line.startswith(start)]
    assert len(lines) == 1, result.err
    assert "Traceback" not in result.err
    return lines[0]


def test_sync_history_through_the_cli(
    repo: GitOpsRepo,
    fake_argo: FakeArgo,
    run_cli: CliRunner,
    now: dt.datetime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for env in ("dev", "stage", "prod"):
        fake_argo.add_app(f"dex-{env}", namespace=f"dex-{env}", image=f"{IMAGE}:{repo.tags[0]}")
    # dev: five syncs, one from an Argo CD before 1.7 (no start time); one before the window.
    fake_argo.update_app("dex-dev", history=_history(now, [90, 12, None, 20, 25, 31]), history_limit=None)
    # stage: slow syncs.
    fake_argo.update_app("dex-stage", history=_history(now, [40, 45, 50]))
    # prod: a full history (10 kept), every entry inside the window: the count is what Argo CD kept.
    fake_argo.update_app("dex-prod", history=_history(now, [8.0] * 10, days_apart=0.4))
    summary = repo.clone.parent / "summary.md"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))

    result = run_cli("metrics", "--since", "5d", "--json", cwd=repo.clone)
    assert result.code == 0, result.err
    data = json.loads(result.out)
    # The contract's keys stay; the Argo CD half is beside them.
    assert {"task", "since", "pipeline", "dora", "argocd"} <= data.keys()
    assert data["dora"]["stage"]["deployments"] == 4
    dev, stage, prod = (data["argocd"][env] for env in ("dev", "stage", "prod"))
    # dev: 6 entries, the 90s one is 6 days old: 5 in the window, one without a start time.
    assert (dev["app"], dev["via"], dev["syncs"], dev["with_duration"], dev["without_duration"]) == (
        "dex-dev", "cli", 5, 4, 1,
    )  # fmt: skip
    assert (dev["p50_s"], dev["p90_s"], dev["target_s"], dev["met"]) == (20, 31, 30, False)
    assert (dev["last_phase"], dev["failed"], dev["complete"], dev["history"]) == ("Succeeded", 0, True, 6)
    assert (stage["syncs"], stage["p90_s"], stage["met"]) == (3, 50, False)
    assert (prod["syncs"], prod["p90_s"], prod["met"], prod["complete"]) == (10, 8, True, False)
    assert prod["history_limit"] == 10
    # Each env's app was read once, with app get -o json (app history has no start times).
    assert sorted(c for c in fake_argo.calls() if c[:2] == ["app", "get"]) == [
        ["app", "get", f"dex-{env}", "-o", "json"] for env in ("dev", "prod", "stage")
    ]

    human = run_cli("metrics", "--since", "5d", cwd=repo.clone)
    assert human.code == 0, human.err
    assert "ARGO CD" in human.out
    dev_row = next(line for line in human.out.splitlines() if line.startswith("dev ") and "dex-dev" in line)
    assert "5, 1 without start time" in dev_row
    assert "31s ✗ (target 30s)" in dev_row
    prod_row = next(
        line for line in human.out.splitlines() if line.startswith("prod ") and "dex-prod" in line
    )
    assert "10 (Argo CD keeps the last 10)" in prod_row
    assert "8s ✓ (target 30s)" in prod_row
    text = summary.read_text(encoding="utf-8")
    assert "| ARGO CD | APP | SYNCS | P50 | P90 | LAST SYNC |" in text
    assert "| dex-prod |" in text


def test_a_sync_the_fake_records_and_a_failed_one(
    repo: GitOpsRepo, fake_argo: FakeArgo, run_cli: CliRunner, now: dt.datetime
) -> None:
    fake_argo.add_app("dex-dev", namespace="dex-dev", image=f"{IMAGE}:{repo.tags[0]}")
    fake_argo.update_app("dex-dev", history=[], sync_seconds=17)
    argocd.app_sync("dex-dev", timeout=30)  # the wrapper, the fake's `app sync`: a history entry
    (entry,) = fake_argo.app("dex-dev")["history"]
    assert entry["id"] == 0
    assert set(entry) == {"revision", "deployedAt", "id", "source", "deployStartedAt", "initiatedBy"}
    result = run_cli("metrics", "--env", "dev", "--json", cwd=repo.clone)
    assert result.code == 0, result.err
    dev = json.loads(result.out)["argocd"]["dev"]
    assert (dev["syncs"], dev["p50_s"], dev["met"], dev["last_phase"]) == (1, 17, True, "Succeeded")

    fake_argo.update_app("dex-dev", fail="sync_failed")
    with pytest.raises(ArgoCDError, match=r"\(exit 1\): Operation has completed with phase: Failed"):
        argocd.app_sync("dex-dev", timeout=30)
    assert len(fake_argo.app("dex-dev")["history"]) == 1  # a failed sync is not recorded
    dev = json.loads(run_cli("metrics", "--env", "dev", "--json", cwd=repo.clone).out)["argocd"]["dev"]
    assert (dev["syncs"], dev["last_phase"], dev["failed"], dev["success_rate"]) == (1, "Failed", 1, 0.5)
    assert "failed to apply" in dev["last_message"]
    human = run_cli("metrics", "--env", "dev", cwd=repo.clone)
    assert "Failed 20" in human.out  # the phase and when it ended


def test_history_is_truncated_to_the_limit_as_argo_cd_does(
    repo: GitOpsRepo, fake_argo: FakeArgo, run_cli: CliRunner, now: dt.datetime
) -> None:
    fake_argo.add_app("dex-dev", namespace="dex-dev", image=f"{IMAGE}:{repo.tags[0]}")
    fake_argo.update_app("dex-dev", history=_history(now, [5, 6]), history_limit=3)
    for _ in range(3):
        argocd.app_sync("dex-dev", timeout=30)
    history = fake_argo.app("dex-dev")["history"]
    assert [h["id"] for h in history] == [2, 3, 4]
    dev = json.loads(run_cli("metrics", "--env", "dev", "--json", cwd=repo.clone).out)["argocd"]["dev"]
    assert (dev["syncs"], dev["history"], dev["history_limit"], dev["complete"]) == (3, 3, 3, False)


def test_not_configured_is_one_notice(repo: GitOpsRepo, run_cli: CliRunner, now: dt.datetime) -> None:
    result = run_cli("metrics", "--json", cwd=repo.clone)
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["argocd"] is None
    assert data["dora"]["dev"]["deployments"] == 4
    assert _one_line(result, "Argo CD sync history skipped:").endswith("ARGOCD_SERVER is not set")
    human = run_cli("metrics", cwd=repo.clone)
    assert "ARGO CD" not in human.out


def test_server_without_cli_or_token_is_skipped(
    repo: GitOpsRepo, run_cli: CliRunner, now: dt.datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    _without_cli(monkeypatch)
    monkeypatch.setenv("ARGOCD_SERVER", "argocd.example.invalid")
    result = run_cli("metrics", "--json", cwd=repo.clone)
    assert result.code == 0, result.err
    assert json.loads(result.out)["argocd"] is None
    line = _one_line(result, "Argo CD sync history skipped:")
    assert "argocd is not on PATH and ARGOCD_AUTH_TOKEN is not set" in line


@pytest.mark.usefixtures("now")
def test_unauthorised_argo_cd_is_a_warning_once_per_server(
    repo: GitOpsRepo, fake_argo: FakeArgo, run_cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = fake_argo.load()
    data["token"] = "the-right-token"
    fake_argo.save(data)
    monkeypatch.setenv("ARGOCD_AUTH_TOKEN", "a-wrong-token")
    for env in ("dev", "stage", "prod"):
        fake_argo.add_app(f"dex-{env}", namespace=f"dex-{env}", image=f"{IMAGE}:{repo.tags[0]}")
    result = run_cli("metrics", "--json", cwd=repo.clone)
    # As the GitHub half: a remote that cannot be asked is a warning, the rest still reports.
    assert result.code == 0, result.err
    out = json.loads(result.out)
    assert out["dora"]["stage"]["deployments"] == 4
    for env in ("dev", "stage", "prod"):
        assert "code = Unauthenticated" in out["argocd"][env]["error"]
        assert out["argocd"][env]["syncs"] == 0
    line = _one_line(result, "Argo CD sync history of")
    assert "argocd app get dex-dev failed (exit 20)" in line
    # One server, one failure: the other envs' apps are not asked again.
    assert len([c for c in fake_argo.calls() if c[:2] == ["app", "get"]]) == 1
    assert "a-wrong-token" not in result.out + result.err


def test_unreachable_and_missing_apps(
    repo: GitOpsRepo, fake_argo: FakeArgo, run_cli: CliRunner, now: dt.datetime
) -> None:
    fake_argo.add_app("dex-dev", namespace="dex-dev", image=f"{IMAGE}:{repo.tags[0]}")
    fake_argo.update_app("dex-dev", fail="get_unavailable")
    result = run_cli("metrics", "--env", "dev", "--env", "stage", "--json", cwd=repo.clone)
    assert result.code == 0, result.err
    out = json.loads(result.out)
    assert "code = Unavailable" in out["argocd"]["dev"]["error"]
    # Unavailable is the server: stage (same server) is not asked again, and has the same error.
    assert out["argocd"]["stage"]["error"] == out["argocd"]["dev"]["error"]
    assert [c[2] for c in fake_argo.calls() if c[:2] == ["app", "get"]] == ["dex-dev"]
    human = run_cli("metrics", "--env", "dev", cwd=repo.clone)
    assert "not read (see the warning)" in human.out
    assert len([line for line in human.err.splitlines() if "Argo CD sync history of dev" in line]) == 1

    fake_argo.update_app("dex-dev", fail=None)
    result = run_cli("metrics", "--env", "dev", "--env", "stage", "--json", cwd=repo.clone)
    out = json.loads(result.out)
    assert "error" not in out["argocd"]["dev"]
    missing = "Argo CD app dex-stage does not exist (or this token may not read it)"
    assert out["argocd"]["stage"]["error"] == missing
    _one_line(result, "Argo CD sync history of stage not available")


@pytest.mark.usefixtures("now")
def test_each_env_asks_its_own_argo_cd(
    repo: GitOpsRepo, fake_argo: FakeArgo, run_cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = repo.clone / "pyproject.toml"
    path.write_text(
        path.read_text(encoding="utf-8")
        + f'\n[tool.dex.cluster]\nargocd-servers = {{ prod = "{PROD_SERVER}" }}\n',
        encoding="utf-8",
    )
    for env in ("dev", "prod"):
        fake_argo.add_app(f"dex-{env}", namespace=f"dex-{env}", image=f"{IMAGE}:{repo.tags[0]}")
    result = run_cli("metrics", "--env", "dev", "--env", "prod", "--json", cwd=repo.clone)
    assert result.code == 0, result.err
    gets = [(server, call[2]) for server, call in fake_argo.calls_by_server() if call[:2] == ["app", "get"]]
    assert gets == [("argocd.example.invalid", "dex-dev"), (PROD_SERVER, "dex-prod")]
    # Without ARGOCD_SERVER only prod has an Argo CD: dev is null, said once.
    monkeypatch.delenv("ARGOCD_SERVER")
    result = run_cli("metrics", "--env", "dev", "--env", "prod", "--json", cwd=repo.clone)
    out = json.loads(result.out)
    assert out["argocd"]["dev"] is None
    assert out["argocd"]["prod"]["via"] == "cli"
    assert _one_line(result, "no Argo CD server for").startswith("no Argo CD server for dev")


def _without_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    directories = os.environ.get("PATH", "").split(os.pathsep)
    path = os.pathsep.join(d for d in directories if d and not shutil.which("argocd", path=d))
    monkeypatch.setenv("PATH", path)


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeArgoCDAPI]:
    """The fake REST API; ARGOCD_* point at it; no argocd CLI on PATH; no waiting between retries."""
    _without_cli(monkeypatch)
    monkeypatch.setattr(argocd_api, "BACKOFF", 0.0)
    with FakeArgoCDAPI() as fake:
        for key, value in fake.env().items():
            monkeypatch.setenv(key, value)
        yield fake


def test_without_the_cli_the_rest_api(
    repo: GitOpsRepo, api: FakeArgoCDAPI, run_cli: CliRunner, now: dt.datetime
) -> None:
    operation = {"phase": "Error", "message": "failed to record sync to history", "startedAt": stamp(now),
                 "finishedAt": stamp(now)}  # fmt: skip
    api.add_app("dex-dev", namespace="dex-dev", image=f"{IMAGE}:x", history=_history(now, [3, 4, 5]),
                operation_state=operation)  # fmt: skip
    result = run_cli("metrics", "--env", "dev", "--env", "stage", "--json", cwd=repo.clone)
    assert result.code == 0, result.err
    out = json.loads(result.out)
    dev = out["argocd"]["dev"]
    assert (dev["via"], dev["syncs"], dev["p50_s"], dev["p90_s"], dev["met"]) == ("api", 3, 4, 5, True)
    assert (dev["last_phase"], dev["failed"]) == ("Error", 1)
    # The fake answers 404 NotFound for dex-stage: that env's error, said once.
    assert "does not exist" in out["argocd"]["stage"]["error"]
    assert [(r.method, r.path) for r in api.requests] == [
        ("GET", "/api/v1/applications/dex-dev"),
        ("GET", "/api/v1/applications/dex-stage"),
    ]
    assert api.requests[0].headers["authorization"] == f"Bearer {api.token}"
    assert api.token not in result.out + result.err


def test_rest_api_expired_token(
    repo: GitOpsRepo, api: FakeArgoCDAPI, run_cli: CliRunner, now: dt.datetime
) -> None:
    api.add_app("dex-dev", namespace="dex-dev", image=f"{IMAGE}:x", history=_history(now, [3]))
    api.expired = True
    result = run_cli("metrics", "--json", cwd=repo.clone)
    assert result.code == 0, result.err
    out = json.loads(result.out)
    assert "401 invalid session: token is expired" in out["argocd"]["dev"]["error"]
    assert out["argocd"]["prod"]["error"] == out["argocd"]["dev"]["error"]
    assert len(api.requests) == 1  # one server, asked once
    assert "token is expired" in _one_line(result, "Argo CD sync history of dev")
    # A 503 is retried within the client's bounds, then the same one warning.
    api.expired = False
    api.fail_next("GET", times=3)
    result = run_cli("metrics", "--env", "dev", "--json", cwd=repo.clone)
    assert result.code == 0, result.err
    assert "connection refused" in json.loads(result.out)["argocd"]["dev"]["error"]
    _one_line(result, "Argo CD sync history of dev")
