"""metrics end to end: DORA from the fixture's git history, pipeline and verify failures from GitHub."""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING

import pytest

from dex_tasks.tools.github import GitHub
from tests.fakes.github_api import FakeGitHub
from tests.helpers import stamp

if TYPE_CHECKING:
    from pathlib import Path

    from tests.conftest import CliRunner
    from tests.gitops_fixtures import GitOpsRepo

pytestmark = pytest.mark.timeout(120)


def test_dora_from_git_alone(repo: GitOpsRepo, run_cli: CliRunner, now: dt.datetime) -> None:
    result = run_cli("metrics", "--since", "7d", "--json", cwd=repo.clone)
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data.get("task") == "metrics", result.out
    assert data["pipeline"] is None
    assert dt.datetime.fromisoformat(data["since"]) == now - dt.timedelta(days=7)
    stage = data["dora"]["stage"]
    # stage: T0 by hand, T1, T2, then a rollback T2 -> T1: T2 failed; 1 of the 3 that were not rollbacks.
    assert stage["deployments"] == 4
    assert stage["change_failure_rate"] == round(1 / 3, 4)
    assert stage["time_to_restore_p50_s"] is not None
    assert stage["lead_time_p50_s"] is not None
    assert data["dora"]["prod"]["deployments"] == 1
    assert data["dora"]["prod"]["change_failure_rate"] == 0
    assert data["dora"]["dev"]["deployments"] == 4
    assert "no GitHub token" in result.err
    # The human form: a table per half.
    human = run_cli("metrics", "--env", "stage", cwd=repo.clone)
    assert "CHANGE FAILURE RATE" in human.out
    assert "33.3% (1)" in human.out


def test_pipeline_and_failed_verify_with_a_token(
    repo: GitOpsRepo, run_cli: CliRunner, now: dt.datetime, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with FakeGitHub(token="ghs_metrics", repo="data-literate/dex") as github:
        for name, value in github.env().items():
            monkeypatch.setenv(name, value)
        for i in range(20):
            github.add_run(
                "ci.yml", stamp(now - dt.timedelta(hours=i + 2)), "failure" if i == 0 else "success", 90
            )
        github.add_run("cd.yml", stamp(now - dt.timedelta(hours=3)), "success", seconds=400)
        github.now = stamp(now - dt.timedelta(minutes=30))
        # prod's T0 deployment was recorded (seeded through the real client), and its verify failed.
        prod_commit = json.loads(run_cli("history", "prod", "--json", cwd=repo.clone).out)["entries"][0][
            "commit"
        ]

        with GitHub(repo="data-literate/dex", token="ghs_metrics", api_url=github.url) as client:
            created = client.create_deployment(ref=prod_commit, environment="prod", required_contexts=[])
            client.create_deployment_status(int(created["id"]), state="failure")
        summary = tmp_path / "summary.md"
        monkeypatch.setenv("GITHUB_ACTIONS", "true")
        monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
        result = run_cli("metrics", "--json", cwd=repo.clone)
    assert result.code == 0, result.err
    data = json.loads(result.out)
    ci, cd = data["pipeline"]["ci"], data["pipeline"]["cd"]
    assert (ci["runs"], ci["pass_rate"], ci["p50_s"], ci["met"]) == (20, 0.95, 90, True)
    assert (cd["runs"], cd["p90_s"], cd["met_duration"], cd["met"]) == (1, 400, False, False)
    assert data["dora"]["prod"]["change_failure_rate"] == 1.0
    assert data["dora"]["prod"]["unrestored"] == 1
    text = summary.read_text(encoding="utf-8")
    assert "### dex-tasks metrics" in text
    assert "✗" in text
    assert "ghs_metrics" not in result.out + result.err + text


def test_bad_input_exits_2(repo: GitOpsRepo, run_cli: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    for argv in (("--since", "30"), ("--since", "1h30m"), ("--env", "qa")):
        result = run_cli("metrics", *argv, "--json", cwd=repo.clone)
        assert result.code == 2, argv
        assert len(result.err.strip().splitlines()) == 1
        assert json.loads(result.out)["exit_code"] == 2
    monkeypatch.setenv("DEX_NOW", "not a time")
    result = run_cli("metrics", cwd=repo.clone)
    assert result.code == 2
    assert "DEX_NOW" in result.err
