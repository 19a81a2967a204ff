"""release-notes FROM TO and promote's PR body: app commits only, grouped, PRs linked, compare link."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from tests.fakes.github_api import FakeGitHub
from tests.gitops_fixtures import OVERLAYS
from tests.helpers import git

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.conftest import CliRunner
    from tests.gitops_fixtures import GitOpsRepo

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def github(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGitHub]:
    with FakeGitHub(token="ghs_fake_token_for_tests", repo="data-literate/dex") as fake:
        for name, value in fake.env().items():
            monkeypatch.setenv(name, value)
        yield fake


def _commit(repo: GitOpsRepo, path: str, text: str, *messages: str) -> str:
    w = repo.writer
    (w / path).parent.mkdir(parents=True, exist_ok=True)
    (w / path).write_text(text, encoding="utf-8")
    git("add", path, cwd=w)
    git("commit", "--quiet", *[arg for m in messages for arg in ("-m", m)], cwd=w)
    return git("rev-parse", "HEAD", cwd=w)


def _history(repo: GitOpsRepo) -> str:
    """App and overlay commits on main after the fixture's; returns the newest app commit's tag."""
    w = repo.writer
    git("fetch", "--quiet", "origin", cwd=w)
    git("checkout", "--quiet", "-B", "main", "origin/main", cwd=w)
    _commit(repo, "api.py", "v = 2\n", "feat(api)!: drop the v1 endpoints (#12)")
    _commit(repo, "fix.py", "x = 1\n", "fix: crash on an empty body (#13)")
    # An overlay edit by hand (no trailer) and one with a Dex-Action trailer: not app commits.
    _commit(repo, f"{OVERLAYS}/dev/notes.txt", "hand edit\n", "chore: note in the dev overlay")
    _commit(repo, "README.md", "# dex\nbump\n", "chore: update dev image", "Dex-Action: bump\nDex-Env: dev")
    git("checkout", "--quiet", "-b", "feature", cwd=w)
    _commit(repo, "ui.py", "ui = 1\n", "wip: branch commit")
    git("checkout", "--quiet", "main", cwd=w)
    git("merge", "--quiet", "--no-ff", "feature", "-m", "Merge pull request #20 from data-literate/feature",
        "-m", "feat(ui): a new button", cwd=w)  # fmt: skip
    head = _commit(repo, "docs.md", "docs\n", "docs: explain promote")
    git("push", "--quiet", "origin", "main", cwd=w)
    return f"sha-{head[:8]}"


def test_release_notes_lists_app_commits_grouped(
    repo: GitOpsRepo, github: FakeGitHub, run_cli: CliRunner
) -> None:
    new = _history(repo)
    assert run_cli("bump-overlay", "stage", new, "--direct", cwd=repo.clone).code == 0
    before = len(github.requests)
    result = run_cli("release-notes", "stage", "prod", "--json", cwd=repo.clone)
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert (data["task"], data["from_env"], data["to_env"]) == ("release-notes", "stage", "prod")
    assert (data["from_tag"], data["to_tag"]) == (new, repo.tags[0])
    subjects = [c["subject"] for c in data["commits"]]
    assert subjects == [
        "explain promote", "a new button", "crash on an empty body", "drop the v1 endpoints",
        "app change 4", "app change 3", "app change 2", "app change 1",
    ]  # fmt: skip
    by_subject = {c["subject"]: c for c in data["commits"]}
    assert by_subject["drop the v1 endpoints"] | {"sha": ""} == {
        "sha": "", "type": "feat", "scope": "api", "subject": "drop the v1 endpoints", "breaking": True,
        "pr": 12,
    }  # fmt: skip
    assert by_subject["a new button"]["pr"] == 20
    assert by_subject["a new button"]["scope"] == "ui"
    md = data["markdown"]
    order = [md.index(h) for h in ("Breaking changes", "#### Features", "#### Fixes", "#### Other")]
    assert order == sorted(order)
    assert "([#12](https://github.com/data-literate/dex/pull/12))" in md
    assert "[#20](https://github.com/data-literate/dex/pull/20)" in md
    assert f"https://github.com/data-literate/dex/compare/{repo.apps[0]}..." in md
    for excluded in (
        "note in the dev overlay",
        "update dev image",
        "branch commit",
        "add overlays",
        "rollback",
    ):
        assert excluded not in md
    assert len(github.requests) == before  # release notes need no API call
    # The human form is the same markdown, on stdout.
    human = run_cli("release-notes", "stage", "prod", cwd=repo.clone)
    assert human.out.strip() == md


def test_promote_pr_body_carries_the_release_notes(
    repo: GitOpsRepo, github: FakeGitHub, run_cli: CliRunner
) -> None:
    new = _history(repo)
    assert run_cli("bump-overlay", "stage", new, "--direct", cwd=repo.clone).code == 0
    notes = json.loads(run_cli("release-notes", "stage", "prod", "--json", cwd=repo.clone).out)["markdown"]
    result = run_cli("promote", "stage", "prod", "--verify", "git", cwd=repo.clone)
    assert result.code == 0, result.err
    body = github.pulls[1]["body"]
    assert notes in body
    assert "update stage image" not in body


def test_release_notes_refuses_bad_input(repo: GitOpsRepo, run_cli: CliRunner) -> None:
    for argv in (("stage", "stage"), ("stage", "qa"), ("stage",)):
        result = run_cli("release-notes", *argv, "--json", cwd=repo.clone)
        assert result.code == 2
        assert len(result.err.strip().splitlines()) == 1
        assert json.loads(result.out)["exit_code"] == 2
