"""GitOps tasks open (or update) real-shaped pull requests through the fake GitHub REST API."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from tests.fakes.github_api import FakeGitHub
from tests.gitops_fixtures import GitOpsRepo, shallow_clone
from tests.helpers import git

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from tests.conftest import CliRunner

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def github(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGitHub]:
    with FakeGitHub(token="ghs_fake_token_for_tests", repo="data-literate/dex") as fake:
        for name, value in fake.env().items():
            monkeypatch.setenv(name, value)
        yield fake


def test_bump_dev_opens_the_pr_with_the_runbook_title(
    repo: GitOpsRepo, github: FakeGitHub, run_cli: CliRunner
) -> None:
    t4 = repo.tags[4]
    result = run_cli("bump-overlay", "dev", t4, "--json", cwd=repo.clone)
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert len(github.pulls) == 1
    pr = github.pulls[1]
    assert pr["head"]["ref"] == f"dex/bump-dev-{t4}"
    assert pr["base"]["ref"] == "dev"
    assert pr["title"] == f"chore: update dev image to {t4}"
    assert data["pr_url"] == pr["html_url"]
    assert data["pr_number"] == 1
    assert (
        data["compare_url"]
        == f"https://github.com/data-literate/dex/compare/dev...dex/bump-dev-{t4}?expand=1"
    )
    assert "ghs_fake_token_for_tests" not in result.out + result.err
    # Re-running updates the same PR instead of opening a second one.
    again = run_cli("bump-overlay", "dev", t4, "--json", cwd=repo.clone)
    assert again.code == 0, again.err
    assert len(github.pulls) == 1
    assert "updated PR #1" in again.err
    assert json.loads(again.out)["pr_url"] == pr["html_url"]


def test_bump_stage_prod_one_pr_to_main(repo: GitOpsRepo, github: FakeGitHub, run_cli: CliRunner) -> None:
    t4 = repo.tags[4]
    result = run_cli("bump-overlay", "stage", "prod", t4, cwd=repo.clone)
    assert result.code == 0, result.err
    assert [(p["head"]["ref"], p["base"]["ref"], p["title"]) for p in github.pulls.values()] == [
        (f"dex/bump-stage-prod-{t4}", "main", f"chore: update stage/prod image to {t4}")
    ]


def test_promote_pr_title_and_body(repo: GitOpsRepo, github: FakeGitHub, run_cli: CliRunner) -> None:
    t0, t1 = repo.tags[0], repo.tags[1]
    result = run_cli("promote", "stage", "prod", "--verify", "git", cwd=repo.clone)
    assert result.code == 0, result.err
    pr = github.pulls[1]
    assert pr["title"] == f"Promote {t1} to Production"
    assert pr["head"]["ref"] == f"promote-prod-{t1}"
    assert pr["base"]["ref"] == "main"
    body = pr["body"]
    assert "from **stage** to **prod**" in body
    assert f"`{t0}`" in body
    assert f"`{t1}`" in body
    assert "- app change 1 (" in body


def test_promote_pr_body_from_a_shallow_clone_lists_the_app_commits(
    repo: GitOpsRepo, github: FakeGitHub, run_cli: CliRunner, tmp_path: Path
) -> None:
    # The body is made only when the PR is opened; that is when the shallow clone is completed.
    shallow = shallow_clone(repo, tmp_path / "shallow")
    result = run_cli("promote", "stage", "prod", "--verify", "git", cwd=shallow)
    assert result.code == 0, result.err
    assert "- app change 1 (" in github.pulls[1]["body"]


def test_promote_dry_run_leaves_a_shallow_clone_shallow(
    repo: GitOpsRepo, github: FakeGitHub, run_cli: CliRunner, tmp_path: Path
) -> None:
    # Regression: the PR body (never shown by a dry run) was made anyway, and its --unshallow fetch
    # was a third fetch of main beside the two plain ones.
    shallow = shallow_clone(repo, tmp_path / "shallow")
    for argv in (("--dry-run",), ("--direct", "--dry-run"), ("--no-push", "--dry-run")):
        result = run_cli("promote", "stage", "prod", "--verify", "git", *argv, cwd=shallow)
        assert result.code == 0, result.err
        fetches = [line for line in result.err.splitlines() if " fetch --no-tags" in line]
        assert len(fetches) == 1, result.err
        assert "--unshallow" not in result.err
    assert git("rev-parse", "--is-shallow-repository", cwd=shallow) == "true"
    assert github.requests == []


def test_rollback_pr_is_labelled(repo: GitOpsRepo, github: FakeGitHub, run_cli: CliRunner) -> None:
    result = run_cli("rollback", "stage", "--pr", cwd=repo.clone)
    assert result.code == 0, result.err
    assert github.pulls[1]["title"] == f"Rollback Stage to {repo.tags[0]}"
    assert github.issue_labels[1] == ["rollback"]


def test_dry_run_makes_no_api_call(repo: GitOpsRepo, github: FakeGitHub, run_cli: CliRunner) -> None:
    before = repo.snapshot()
    result = run_cli("bump-overlay", "dev", repo.tags[4], "--dry-run", cwd=repo.clone)
    assert result.code == 0, result.err
    assert github.requests == []
    assert repo.snapshot() == before


def test_no_token_prints_the_compare_url(
    repo: GitOpsRepo, run_cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_REPOSITORY", "data-literate/dex")
    t4 = repo.tags[4]
    result = run_cli("bump-overlay", "dev", t4, "--json", cwd=repo.clone)
    assert result.code == 0, result.err
    url = f"https://github.com/data-literate/dex/compare/dev...dex/bump-dev-{t4}?expand=1"
    assert url in result.err
    data = json.loads(result.out)
    assert data["compare_url"] == url
    assert data["pr_url"] is None
    assert data["pushed"] is True


def test_origin_not_on_github_com_keeps_the_token_home(
    repo: GitOpsRepo, github: FakeGitHub, run_cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Regression: with a token and an origin on GitHub Enterprise (or another forge), the slug was
    # taken from the remote and the PR was opened through api.github.com, with that token, and the
    # compare URL pointed at github.com.
    from dex_tasks.tools import git as git_tool  # noqa: PLC0415 - patched for this test only

    for name in ("GITHUB_API_URL", "GITHUB_REPOSITORY", "GITHUB_SERVER_URL"):
        monkeypatch.delenv(name)
    monkeypatch.setattr(git_tool, "remote_url", lambda *_a, **_k: "git@ghe.example.com:data-literate/dex.git")
    t4 = repo.tags[4]
    result = run_cli("bump-overlay", "dev", t4, "--json", cwd=repo.clone)
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["pushed"] is True
    assert data["pr_url"] is None
    assert (
        data["compare_url"]
        == f"https://ghe.example.com/data-literate/dex/compare/dev...dex/bump-dev-{t4}?expand=1"
    )
    assert "set GITHUB_API_URL (GitHub Enterprise: https://ghe.example.com/api/v3)" in result.err
    assert github.requests == []
