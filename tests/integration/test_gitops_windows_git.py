"""GitOps edits stay byte-exact under Git for Windows' default configuration.

Git for Windows installs with ``core.autocrlf=true``: the temporary worktree then holds CRLF copies
of LF blobs, and ``git add`` turns them back. The committed overlay must differ from the base only
in the tag, whatever the checkout conversion did. Runs on any OS: autocrlf behaves the same.
"""

from __future__ import annotations

import subprocess
from typing import TYPE_CHECKING

import pytest

from tests.gitops_fixtures import GitOpsRepo, overlay_path
from tests.helpers import git

if TYPE_CHECKING:
    from tests.conftest import CliRunner

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("no_push_backoff")]


def _blob(repo: GitOpsRepo, rev: str, path: str) -> bytes:
    return subprocess.run(
        ["git", "cat-file", "blob", f"{rev}:{path}"], cwd=repo.origin, capture_output=True, check=True
    ).stdout


@pytest.mark.parametrize("autocrlf", ["true", "input"])
def test_bump_under_autocrlf_changes_only_the_tag(
    autocrlf: str, repo: GitOpsRepo, run_cli: CliRunner
) -> None:
    git("config", "--global", "core.autocrlf", autocrlf, cwd=repo.clone)
    path = overlay_path("prod")
    before = _blob(repo, "main", path)
    assert b"\r\n" not in before
    snapshot = repo.snapshot()
    result = run_cli("bump-overlay", "prod", repo.tags[4], "--direct", cwd=repo.clone)
    assert result.code == 0, result.err
    after = _blob(repo, "main", path)
    assert after == before.replace(repo.tags[0].encode(), repo.tags[4].encode())
    # The user's working copy, index and branches are as they were (only origin moved).
    now = repo.snapshot()
    for key in ("head", "status", "index", "worktree_diff", "files", "worktrees"):
        assert now[key] == snapshot[key], key


def test_crlf_overlay_under_autocrlf_stays_crlf(repo: GitOpsRepo, run_cli: CliRunner) -> None:
    # An overlay committed with CRLF (edited on Windows without autocrlf) by a teammate; this
    # machine has Git for Windows' default. The blob keeps its CRLF, only the tag changes.
    path = overlay_path("prod")
    w = repo.writer
    git("checkout", "--quiet", "main", cwd=w)
    git("pull", "--quiet", "origin", "main", cwd=w)
    crlf = (w / path).read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    (w / path).write_bytes(crlf)
    git("commit", "--quiet", "-am", "chore: prod overlay with CRLF", cwd=w)
    git("push", "--quiet", "origin", "main", cwd=w)
    git("config", "--global", "core.autocrlf", "true", cwd=repo.clone)
    result = run_cli("bump-overlay", "prod", repo.tags[4], "--direct", cwd=repo.clone)
    assert result.code == 0, result.err
    assert _blob(repo, "main", path) == crlf.replace(repo.tags[0].encode(), repo.tags[4].encode())


@pytest.mark.parametrize("dry_run", [True, False])
def test_a_cp1252_overlay_is_refused_and_nothing_changes(
    dry_run: bool, repo: GitOpsRepo, run_cli: CliRunner
) -> None:
    # Saved by a Windows editor in cp1252 ("über" as 0xFC): decoding it as UTF-8 failed with a
    # traceback, and a lossy decode would have written U+FFFD over the teammate's bytes.
    path = overlay_path("prod")
    w = repo.writer
    git("checkout", "--quiet", "main", cwd=w)
    git("pull", "--quiet", "origin", "main", cwd=w)
    raw = (w / path).read_bytes()
    (w / path).write_bytes(raw.replace(b"# prod overlay", "# prod overlay \u00fcber".encode("cp1252")))
    git("commit", "--quiet", "-am", "chore: prod overlay from a cp1252 editor", cwd=w)
    git("push", "--quiet", "origin", "main", cwd=w)
    git("fetch", "--quiet", "origin", cwd=repo.clone)  # the task's own fetch is no change
    before = repo.snapshot()
    argv = ["bump-overlay", "prod", repo.tags[4], "--direct"] + (["--dry-run"] if dry_run else [])
    result = run_cli(*argv, cwd=repo.clone)
    assert result.code == 2, result.err
    last = result.err.strip().splitlines()[-1]
    assert last == (
        f"dex-tasks bump-overlay: error: {path} on main is not UTF-8 text: save it as UTF-8; "
        "nothing was changed"
    )
    assert repo.snapshot() == before
