"""A re-run rollback job does not go a second tag back; ``--revert`` of CD's combined commit.

``rollback ENV`` without TAG picks the last known good tag. Run twice (a CI job re-run), the second
run would find the first one's rollback on top and go one more tag back: it is refused (exit 1,
naming the rollback commit and its tag) unless ``--again``; ``rollback ENV TAG`` stays idempotent.

CD on main commits stage and prod in one commit; ``rollback prod --revert`` then puts back only
prod's file, as it was before that commit, and only while it still holds what that commit wrote.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from tests.gitops_fixtures import GitOpsRepo, overlay_path
from tests.helpers import git

if TYPE_CHECKING:
    from tests.conftest import CliRunner

pytestmark = [pytest.mark.timeout(180), pytest.mark.usefixtures("no_push_backoff")]

GITOPS_KEYS = (
    "task", "changed", "env", "tag", "previous_tag", "base", "branch", "commit", "pushed", "pr_url",
    "compare_url", "dry_run",
)  # fmt: skip


def _deploy_prod(repo: GitOpsRepo, run_cli: CliRunner) -> None:
    """prod: T0 (manual), then bumps to T1 and T2 (stage/prod commits, as CD makes them on main)."""
    for tag in repo.tags[1:3]:
        assert run_cli("bump-overlay", "stage", "prod", tag, "--direct", cwd=repo.clone).code == 0


def test_a_second_rollback_without_tag_is_refused(repo: GitOpsRepo, run_cli: CliRunner) -> None:
    _deploy_prod(repo, run_cli)
    first = run_cli("rollback", "prod", "--json", cwd=repo.clone)
    assert first.code == 0, first.err
    rollback = json.loads(first.out)["commit"]
    assert repo.tag("prod") == repo.tags[1]
    before = repo.snapshot()
    for extra in ((), ("--dry-run",), ("--emergency",), ("--pr",)):
        again = run_cli("rollback", "prod", *extra, "--json", cwd=repo.clone)
        assert again.code == 1, (extra, again.err)
        errors = [line for line in again.err.splitlines() if "error:" in line]
        assert len(errors) == 1, again.err
        assert rollback[:12] in errors[0]
        assert f"is a rollback to {repo.tags[1]}" in errors[0]
        assert "--again" in errors[0]
        data = json.loads(again.out)
        for key in GITOPS_KEYS:
            assert key in data, key
        assert data["changed"] is False
        assert data["env"] == "prod"
        assert data["tag"] == repo.tags[1]
        assert data["exit_code"] == 1
        assert data["error"]
        assert repo.snapshot() == before
    # By name it is idempotent: prod already runs T1.
    named = run_cli("rollback", "prod", repo.tags[1], "--json", cwd=repo.clone)
    assert named.code == 0, named.err
    assert json.loads(named.out)["changed"] is False
    assert repo.snapshot() == before
    # --again means it: T2 is known bad, T1 runs, so T0.
    further = run_cli("rollback", "prod", "--again", "--json", cwd=repo.clone)
    assert further.code == 0, further.err
    assert repo.tag("prod") == repo.tags[0]


def test_a_hand_edit_after_the_rollback_lets_a_rollback_run_again(
    repo: GitOpsRepo, run_cli: CliRunner
) -> None:
    # The fixture's stage: rollback T2 -> T1, then a hand edit of the file that keeps the tag.
    result = run_cli("rollback", "stage", "--json", cwd=repo.clone)
    assert result.code == 0, result.err
    assert repo.tag("stage") == repo.tags[0]


def test_revert_of_a_combined_commit_reverts_only_that_env(repo: GitOpsRepo, run_cli: CliRunner) -> None:
    t4 = repo.tags[4]
    assert run_cli("bump-overlay", "stage", "prod", t4, "--direct", cwd=repo.clone).code == 0
    combined = repo.head("main")
    stage_before = repo.show("main", overlay_path("stage"))
    prod_before = repo.show(f"{combined}^", overlay_path("prod"))
    result = run_cli("rollback", "prod", "--revert", "--json", cwd=repo.clone)
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["changed"] is True
    assert data["tag"] == repo.tags[0]
    assert data["previous_tag"] == t4
    assert data["revert"] == combined
    assert repo.show("main", overlay_path("prod")) == prod_before  # byte for byte as before
    assert repo.show("main", overlay_path("stage")) == stage_before  # stage keeps T4
    changed = git("diff-tree", "--no-commit-id", "--name-only", "-r", "main", cwd=repo.origin)
    assert changed.splitlines() == [overlay_path("prod")]
    message = repo.message("main")
    assert repo.subject("main").startswith('Revert "chore: update stage/prod image to')
    for trailer in (
        "Dex-Action: rollback",
        "Dex-Env: prod",
        f"Dex-Tag: {repo.tags[0]}",
        f"Dex-Previous-Tag: {t4}",
    ):
        assert trailer in message
    assert f"This reverts {overlay_path('prod')} of commit {combined}" in message


def test_revert_of_a_combined_commit_refuses_when_the_file_changed_since(
    repo: GitOpsRepo, run_cli: CliRunner
) -> None:
    t4 = repo.tags[4]
    assert run_cli("bump-overlay", "stage", "prod", t4, "--direct", cwd=repo.clone).code == 0
    path = overlay_path("prod")
    text = repo.show("main", path) or ""
    repo.race("main", path, text.replace("# prod overlay", "# prod overlay, edited by hand"))
    git("fetch", "--quiet", "origin", cwd=repo.clone)  # the task's own fetch is no change
    before = repo.snapshot()
    for extra in ((), ("--dry-run",)):
        result = run_cli("rollback", "prod", "--revert", *extra, cwd=repo.clone)
        assert result.code == 2, result.err
        errors = [line for line in result.err.splitlines() if "error:" in line]
        assert len(errors) == 1, result.err
        assert "was changed after" in errors[0]
        assert "use rollback prod TAG" in errors[0]
        assert repo.snapshot() == before
