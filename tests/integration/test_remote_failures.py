"""Exit codes that mean what they say, bounded time and visible progress (issue 10, classes 5-7).

A token, repository or transport problem is configuration (exit 2), found before anything is
pushed; a remote that stays down or hangs is exit 4 within one deadline, with a progress line per
attempt that never looks like the one error line.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from tests.fakes.github_api import FakeGitHub
from tests.helpers import git

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.conftest import CliResult, CliRunner
    from tests.gitops_fixtures import GitOpsRepo

TOKEN = "ghs_fake_token_for_remote_tests"


@pytest.fixture
def github(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGitHub]:
    with FakeGitHub(token=TOKEN, repo="data-literate/dex", max_hang=20) as fake:
        for name, value in fake.env().items():
            monkeypatch.setenv(name, value)
        yield fake


def _one_error_line(result: CliResult, task: str) -> str:
    errors = [line for line in result.err.splitlines() if line.startswith(f"dex-tasks {task}:")]
    assert len(errors) == 1, result.err
    assert "Traceback" not in result.err
    assert TOKEN not in result.out + result.err
    return errors[0]


# -- class 5: GitHub 401 / 403 / 404 are exit 2, checked before the push ---------------------------


_ACCESS_CASES = {
    "401": "401 Bad credentials",
    "403": "403 Resource not accessible by integration",
    "404": "404 Not Found (check the repository name data-literate/no-such-repo",
    "read-only": "may read data-literate/dex but not push",
}


def _break_access(case: str, github: FakeGitHub, monkeypatch: pytest.MonkeyPatch) -> None:
    if case == "401":
        monkeypatch.setenv("GITHUB_TOKEN", "ghs_wrong")
    elif case == "403":
        github.forbidden("GET", "/repos/*", accepted="contents=read", times=10)
    elif case == "404":
        monkeypatch.setenv("GITHUB_REPOSITORY", "data-literate/no-such-repo")
    else:
        github.permissions.update(push=False)


@pytest.mark.parametrize("case", list(_ACCESS_CASES))
def test_bad_token_or_repository_is_exit_2_and_pushes_nothing(
    repo: GitOpsRepo, github: FakeGitHub, run_cli: CliRunner, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    _break_access(case, github, monkeypatch)
    expected = _ACCESS_CASES[case]
    before = repo.snapshot()
    for task, argv in (
        ("bump-overlay", ("dev", repo.tags[4])),
        ("promote", ("stage", "prod", "--verify", "git")),
        ("rollback", ("stage", "--pr")),
    ):
        result = run_cli(task, *argv, "--json", cwd=repo.clone)
        assert result.code == 2, result.err
        line = _one_error_line(result, task)
        assert expected in line
        assert "contents: write" in line or "repository name" in line
        data = json.loads(result.out)
        assert data["exit_code"] == 2
        assert expected in data["error"]
        # Nothing pushed: no stray branch, no PR, nothing retried.
        assert repo.snapshot() == before
        assert github.pulls == {}
    assert {(r.method, r.path) for r in github.requests} <= {
        ("GET", "/repos/data-literate/dex"),
        ("GET", "/repos/data-literate/no-such-repo"),
    }
    assert len(github.requests) == 3


def test_403_on_the_pr_after_the_push_is_exit_2_naming_the_permission(
    repo: GitOpsRepo, github: FakeGitHub, run_cli: CliRunner
) -> None:
    # contents: write but not pull-requests: write: the pre-flight passes (permissions.push is
    # true), the branch is pushed, the PR is refused. Exit 2 with what is missing, no retries.
    github.forbidden("POST", "/repos/*/pulls", accepted="pull_requests=write")
    result = run_cli("bump-overlay", "dev", repo.tags[4], cwd=repo.clone)
    assert result.code == 2, result.err
    line = _one_error_line(result, "bump-overlay")
    assert "403 Resource not accessible by integration" in line
    assert "pull_requests=write" in line
    assert f"branch dex/bump-dev-{repo.tags[4]} is pushed" in line
    assert len(github.requests_to("POST", "/repos/*/pulls")) == 1
    assert "waiting for" not in result.err


def test_the_preflight_is_one_get_of_the_repository(
    repo: GitOpsRepo, github: FakeGitHub, run_cli: CliRunner
) -> None:
    result = run_cli("bump-overlay", "dev", repo.tags[4], cwd=repo.clone)
    assert result.code == 0, result.err
    assert (github.requests[0].method, github.requests[0].path) == ("GET", "/repos/data-literate/dex")
    assert len(github.requests_to("GET", "/repos/data-literate/dex")) == 1
    assert len(github.pulls) == 1


def test_direct_and_no_push_need_no_pre_flight(
    repo: GitOpsRepo, github: FakeGitHub, run_cli: CliRunner
) -> None:
    # --direct opens no PR, so nothing asks for push access first; what it says afterwards is only
    # the GitHub deployment record of what was pushed (issue 14), never a PR or the repository check.
    assert run_cli("rollback", "stage", cwd=repo.clone).code == 0
    assert {(r.method, r.path.rsplit("/", 1)[-1]) for r in github.requests} <= {
        ("POST", "deployments"), ("POST", "statuses"),
    }  # fmt: skip
    assert not [r for r in github.requests if "/pulls" in r.path or r.path.endswith("/dex")]
    github.requests.clear()
    # --no-push delivers nothing: GitHub hears nothing at all.
    assert run_cli("bump-overlay", "dev", repo.tags[4], "--no-push", cwd=repo.clone).code == 0
    assert github.requests == []


# -- class 6: a hung or failing GitHub API: one deadline, a progress line per attempt ---------------


def test_hung_github_api_is_exit_4_within_the_deadline(
    repo: GitOpsRepo, github: FakeGitHub, run_cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEX_GITHUB_DEADLINE", "0.5")
    github.hang("GET", "/repos/*", times=100)
    before = repo.snapshot()
    result = run_cli("bump-overlay", "dev", repo.tags[4], cwd=repo.clone)
    assert result.code == 4, result.err
    line = _one_error_line(result, "bump-overlay")
    assert "no answer from" in line
    assert "DEX_GITHUB_DEADLINE" in line
    assert repo.snapshot() == before  # the pre-flight hung: nothing was pushed
    assert len(github.requests) <= 5
    for progress in result.err.splitlines():
        if "waiting for GitHub API" in progress:
            assert progress.startswith("# waiting for GitHub API (attempt ")


def test_github_5xx_is_retried_with_a_progress_line_per_attempt(
    repo: GitOpsRepo, github: FakeGitHub, run_cli: CliRunner
) -> None:
    # The first retry goes at once (no wait): it still says so.
    github.fail_next("POST", "/repos/*/pulls", status=502)
    result = run_cli("bump-overlay", "dev", repo.tags[4], cwd=repo.clone)
    assert result.code == 0, result.err
    waiting = [line for line in result.err.splitlines() if "waiting for GitHub API" in line]
    assert waiting == ["# waiting for GitHub API (attempt 2/5, next try in 0.0s): HTTP 502"]
    assert len(github.pulls) == 1


def test_bad_github_deadline_is_exit_2(
    repo: GitOpsRepo, github: FakeGitHub, run_cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEX_GITHUB_DEADLINE", "soon")
    before = repo.snapshot()
    result = run_cli("bump-overlay", "dev", repo.tags[4], cwd=repo.clone)
    assert result.code == 2, result.err
    assert "DEX_GITHUB_DEADLINE='soon'" in _one_error_line(result, "bump-overlay")
    assert repo.snapshot() == before
    assert github.requests == []


# -- class 5: git transports that are configuration, not network ------------------------------------


def _bump(repo: GitOpsRepo, run_cli: CliRunner, *argv: str) -> CliResult:
    return run_cli("bump-overlay", "dev", repo.tags[4], *argv, cwd=repo.clone)


@pytest.mark.parametrize(
    ("url", "config", "expected"),
    [
        pytest.param("ext::git %s {origin}", {}, "transport 'ext' not allowed", id="ext"),
        pytest.param(
            "file://{origin}", {"protocol.file.allow": "never"}, "transport 'file' not allowed", id="file"
        ),
        pytest.param("nosuchproto://example.invalid/o/r.git", {}, "remote-nosuchproto", id="unknown"),
    ],
)
def test_forbidden_transport_is_exit_2(  # noqa: PLR0917 - pytest passes fixtures positionally
    repo: GitOpsRepo,
    run_cli: CliRunner,
    monkeypatch: pytest.MonkeyPatch,
    url: str,
    config: dict[str, str],
    expected: str,
) -> None:
    git("remote", "set-url", "origin", url.format(origin=repo.origin), cwd=repo.clone)
    for i, (key, value) in enumerate(config.items()):
        monkeypatch.setenv("GIT_CONFIG_COUNT", str(i + 1))
        monkeypatch.setenv(f"GIT_CONFIG_KEY_{i}", key)
        monkeypatch.setenv(f"GIT_CONFIG_VALUE_{i}", value)
    before = repo.snapshot()
    for argv in ((), ("--direct",), ("--dry-run",)):
        result = _bump(repo, run_cli, *argv)
        assert result.code == 2, result.err
        line = _one_error_line(result, "bump-overlay")
        assert expected in line
        assert "waiting for" not in result.err  # nothing was retried
        assert repo.snapshot() == before


def test_forbidden_push_transport_is_exit_2(repo: GitOpsRepo, run_cli: CliRunner) -> None:
    # Fetch works, the push URL is refused by git itself: configuration too, not "push failed".
    git("remote", "set-url", "--push", "origin", f"ext::git %s {repo.origin}", cwd=repo.clone)
    before = repo.remote_branches(), repo.head("dev")
    for argv in ((), ("--direct",)):
        result = _bump(repo, run_cli, *argv)
        assert result.code == 2, result.err
        line = _one_error_line(result, "bump-overlay")
        assert "transport 'ext' not allowed" in line
        assert "nothing was pushed" in line
        assert (repo.remote_branches(), repo.head("dev")) == before


# -- class 7: a refused promote carries the same GitOps keys as one that happened ------------------


def test_refused_promote_has_the_gitops_keys_of_a_successful_one(
    repo: GitOpsRepo, run_cli: CliRunner
) -> None:
    before = repo.snapshot()
    stage_tag = repo.tag("stage")
    other = next(tag for tag in repo.tags if tag != stage_tag)
    refused = run_cli("promote", "stage", "prod", other, "--verify", "git", "--json", cwd=repo.clone)
    assert refused.code == 1, refused.err
    assert repo.snapshot() == before
    refused_data = json.loads(refused.out)
    done = run_cli("promote", "stage", "prod", "--verify", "git", "--no-push", "--json", cwd=repo.clone)
    assert done.code == 0, done.err
    done_data = json.loads(done.out)
    assert set(done_data) - {"diff"} <= set(refused_data)
    assert set(refused_data) - set(done_data) == {"refused", "error"}
    assert refused_data["exit_code"] == 1
    assert refused_data["error"].startswith("promotion refused:")
    assert (refused_data["changed"], refused_data["pushed"], refused_data["attempts"]) == (False, False, 0)
    assert (refused_data["envs"], refused_data["from_env"], refused_data["tag"]) == (["prod"], "stage", other)
    assert refused_data["previous_tags"] == {"prod": repo.tag("prod")}
    assert refused_data["pr_number"] is None
    assert refused_data["forced"] is False
