"""Push races that git reports as a ref-lock failure on the server, not as "fetch first".

When two receive-packs update one branch at the same moment, the loser does not see the new tip
in the ref advertisement (it was not there yet): it fails when it locks the ref, and the client
prints ``[remote rejected] main -> main (failed to update ref)`` with the server's
``cannot lock ref 'refs/heads/main': is at X but expected Y`` (git's refs/files-backend.c,
lock_raw_ref; receive-pack.c, update()). That is "the base moved" like any other race, so a
``--direct`` push re-applies the edit on the new tip.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING

import pytest

from tests.gitops_fixtures import GitOpsRepo, build
from tests.helpers import git

if TYPE_CHECKING:
    from pathlib import Path

    from tests.conftest import CliRunner

pytestmark = [pytest.mark.timeout(300), pytest.mark.usefixtures("no_push_backoff")]

# A pre-receive hook that, on its first run only, moves the branch itself (as a concurrent push
# would between the ref advertisement and the ref lock), so receive-pack's compare-and-swap fails.
# The hook runs with the pushed objects in a quarantine, where ref updates are forbidden (git's
# refs.c: "ref updates forbidden inside quarantine environment"): outside it, the new commit is
# made from objects already in the repository.
MOVE_REF_HOOK = """\
#!/bin/sh
marker="$GIT_DIR/moved-once"
[ -e "$marker" ] && exit 0
: > "$marker"
while read old new ref; do
  (
    unset GIT_QUARANTINE_PATH GIT_OBJECT_DIRECTORY GIT_ALTERNATE_OBJECT_DIRECTORIES
    tree=$(git rev-parse "$old^{tree}")
    moved=$(echo "another job" | git commit-tree "$tree" -p "$old")
    git update-ref "$ref" "$moved" "$old"
  ) || exit 1
done
exit 0
"""


def _install_hook(origin: Path) -> None:
    hook = origin / "hooks" / "pre-receive"
    hook.write_text(MOVE_REF_HOOK, encoding="utf-8", newline="\n")
    hook.chmod(0o755)


@pytest.mark.skipif(sys.platform == "win32", reason="the hook is a POSIX shell script")
def test_ref_lock_failure_is_retried_on_the_new_tip(repo: GitOpsRepo, run_cli: CliRunner) -> None:
    _install_hook(repo.origin)
    t4 = repo.tags[4]
    before = repo.head("main")
    result = run_cli("bump-overlay", "prod", t4, "--direct", "--json", cwd=repo.clone)
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["attempts"] == 2
    assert "main moved on origin while we committed (attempt 1/" in result.err
    # Ours on top of the commit the hook made: nothing of the other writer was lost.
    moved = git("rev-parse", "main^", cwd=repo.origin)
    assert git("rev-parse", f"{moved}^", cwd=repo.origin) == before
    assert repo.head("main") == data["commit"]
    assert repo.tag("prod") == t4
    assert git("worktree", "list", "--porcelain", cwd=repo.clone).count("worktree ") == 1


ROUNDS = 20


def _bump(clone: Path, env: str, tag: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dex_tasks", "-C", str(clone), "bump-overlay", env, tag, "--direct", "--json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={**os.environ, "DEX_PUSH_BACKOFF": "0.2", "DEX_PUSH_ATTEMPTS": "8"},
    )


def _bump_at(
    start: threading.Barrier,
    results: dict[str, subprocess.CompletedProcess[str]],
    clone: Path,
    env: str,
    tag: str,
) -> None:
    start.wait()  # both jobs start their run at the same instant
    results[env] = _bump(clone, env, tag)


def test_simultaneous_direct_bumps_of_two_envs_both_land(tmp_path: Path) -> None:
    repo = build(tmp_path)
    second = tmp_path / "second"
    git("clone", "--quiet", str(repo.origin), str(second), cwd=tmp_path)
    deadline = time.monotonic() + 240
    for round_ in range(ROUNDS):
        assert time.monotonic() < deadline, f"round {round_}: out of time"
        tag = repo.tags[4] if round_ % 2 == 0 else repo.tags[3]
        results: dict[str, subprocess.CompletedProcess[str]] = {}
        start = threading.Barrier(2, timeout=60)
        threads = [
            threading.Thread(target=_bump_at, args=(start, results, clone, env, tag))
            for env, clone in (("stage", repo.clone), ("prod", second))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=150)
        for env in ("stage", "prod"):
            done = results[env]
            assert done.returncode == 0, f"round {round_} {env}: {done.stderr}"
            assert repo.tag(env) == tag, f"round {round_} {env}"
            assert json.loads(done.stdout)["pushed"] is True
