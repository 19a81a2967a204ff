"""The GitOps tasks never leave anything half-done: refusals, push races, retries, Ctrl-C."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from typing import TYPE_CHECKING

import pytest

from dex_tasks.gitops import workflow
from dex_tasks.tools import git as git_tool
from tests.gitops_fixtures import GitOpsRepo, branch_of, overlay_path, overlay_text
from tests.helpers import git

if TYPE_CHECKING:
    from pathlib import Path

    from tests.conftest import CliRunner

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("no_push_backoff")]


REFUSALS = [
    # (argv, expected exit code, a piece of the one-line message)
    (("bump-overlay", "dev", "sha-XYZ"), 2, "invalid tag"),
    (("bump-overlay", "dev", "latest"), 2, "never written into an overlay"),
    (("bump-overlay", "dev", "pr-12"), 2, "PR previews only"),
    (("bump-overlay", "qa", "sha-1a2b3c4d"), 2, "unknown environment"),
    (("bump-overlay", "../x", "sha-1a2b3c4d"), 2, "invalid environment name"),
    (("bump-overlay", "dev/../prod", "sha-1a2b3c4d"), 2, "invalid environment name"),
    (("bump-overlay", "sha-1a2b3c4d"), 2, "at least one environment"),
    (("bump-overlay", "dev", "dev", "sha-1a2b3c4d"), 2, "listed twice"),
    (("promote", "stage", "prod", "latest", "--verify", "git"), 2, "never written"),
    (("promote", "stage", "stage", "--verify", "git"), 2, "to itself"),
    (("promote", "prod", "dev", "--verify", "git"), 2, "prod is the last environment"),
    (("promote", "../x", "prod"), 2, "invalid environment name"),
    (("rollback", "../x"), 2, "invalid environment name"),
    (("rollback", "stage", "pr-3"), 2, "PR previews only"),
    (("rollback", "prod"), 2, "no known good tag"),
    (("rollback", "dev", "sha-1a2b3c4d", "--revert"), 2, "takes no TAG"),
    (
        ("rollback", "dev", "sha-1a2b3c4d", "--again"),
        2,
        "--again rolls back one more tag from history; it takes",
    ),
    # Regression: stage's last overlay commit is a rollback T2 -> T1; reverting it redeployed T2.
    (("rollback", "stage", "--revert"), 2, "which was rolled back from before (known bad)"),
    (("history", "../x"), 2, "invalid environment name"),
    (("history", "dev", "--limit", "0"), 2, "--limit"),
]


@pytest.mark.parametrize(("argv", "code", "text"), REFUSALS, ids=[" ".join(a) for a, _, _ in REFUSALS])
def test_refusals_change_nothing(
    repo: GitOpsRepo, run_cli: CliRunner, argv: tuple[str, ...], code: int, text: str
) -> None:
    before = repo.snapshot()
    result = run_cli(*argv, cwd=repo.clone)
    assert result.code == code, result.err
    assert text in result.err
    error_lines = [line for line in result.err.splitlines() if "error:" in line]
    assert len(error_lines) == 1, result.err
    assert repo.snapshot() == before


def test_not_a_git_repository(tmp_path: Path, run_cli: CliRunner) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.dex]\n", encoding="utf-8")
    result = run_cli("bump-overlay", "dev", "sha-1a2b3c4d", cwd=tmp_path)
    assert result.code == 2
    assert "not inside a git repository" in result.err


def test_branch_owned_by_someone_else_is_not_overwritten(repo: GitOpsRepo, run_cli: CliRunner) -> None:
    t4 = repo.tags[4]
    branch = f"dex/bump-dev-{t4}"
    # Someone's own branch of the same name (an app commit: no Dex-Action trailer).
    git("push", "--quiet", "origin", f"{repo.apps[4]}:refs/heads/{branch}", cwd=repo.writer)
    before = repo.snapshot()
    result = run_cli("bump-overlay", "dev", t4, cwd=repo.clone)
    assert result.code == 2
    assert "was not made by dex-tasks" in result.err
    after = repo.snapshot()
    assert after["origin_refs"] == before["origin_refs"]
    assert after["worktrees"] == before["worktrees"]


def test_push_race_lands_both_changes(
    repo: GitOpsRepo, run_cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    t4 = repo.tags[4]
    competing: list[str] = []

    def second_writer(change: workflow.Change, attempt: int) -> None:
        if attempt == 1:  # between our fetch+commit and our push, someone else pushes to dev
            competing.append(repo.race(change.base))

    monkeypatch.setattr(workflow, "_before_push", second_writer)
    result = run_cli("bump-overlay", "dev", t4, "--direct", "--json", cwd=repo.clone)
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["attempts"] == 2
    assert "moved on origin" in result.err
    # Both changes are on dev: ours on top of the competing commit.
    assert repo.head("dev") == data["commit"]
    assert git("rev-parse", "dev^", cwd=repo.origin) == competing[0]
    assert repo.tag("dev") == t4
    assert repo.show("dev", "CHANGELOG.md") == "another writer\n"
    assert git("worktree", "list", "--porcelain", cwd=repo.clone).count("worktree ") == 1


def test_push_race_refetches_the_base_the_task_fetched(
    repo: GitOpsRepo, run_cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    # rollback hands workflow.apply the tip it fetched to choose the tag; a lost race must still
    # re-fetch main and re-apply the edit on the new tip, not push the stale commit again.
    competing: list[str] = []

    def second_writer(change: workflow.Change, attempt: int) -> None:
        if attempt == 1:
            competing.append(repo.race(change.base))

    monkeypatch.setattr(workflow, "_before_push", second_writer)
    result = run_cli("rollback", "stage", "--json", cwd=repo.clone)
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["attempts"] == 2
    assert repo.head("main") == data["commit"]
    assert git("rev-parse", "main^", cwd=repo.origin) == competing[0]
    assert repo.tag("stage") == repo.tags[0]
    fetches = [line for line in result.err.splitlines() if " fetch --no-tags" in line]
    assert len(fetches) == 2, result.err  # the task's, and the retry's


def test_push_race_where_the_other_writer_set_the_same_tag(
    repo: GitOpsRepo, run_cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    t4 = repo.tags[4]

    def same_tag(change: workflow.Change, attempt: int) -> None:
        if attempt == 1:
            repo.race(change.base, overlay_path("dev"), overlay_text("dev", t4))

    monkeypatch.setattr(workflow, "_before_push", same_tag)
    result = run_cli("bump-overlay", "dev", t4, "--direct", "--json", cwd=repo.clone)
    assert result.code == 0, result.err
    data = json.loads(result.out)
    # The edit was recomputed on the new tip: already at the tag, so nothing more to do.
    assert data["changed"] is False
    assert data["commit"] is None
    assert repo.tag("dev") == t4
    assert repo.subject("dev") == "chore: another writer on dev"


def test_push_retries_exhausted_exit_4_nothing_half_done(
    repo: GitOpsRepo, run_cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(workflow.ATTEMPTS_ENV, "3")
    calls: list[int] = []

    def always_racing(change: workflow.Change, attempt: int) -> None:
        calls.append(attempt)
        repo.race(change.base)

    monkeypatch.setattr(workflow, "_before_push", always_racing)
    before = repo.snapshot()
    result = run_cli("rollback", "stage", "--json", cwd=repo.clone)
    assert result.code == 4, result.err
    assert "still rejected after 3 attempts" in result.err
    assert calls == [1, 2, 3]
    after = repo.snapshot()
    assert repo.tag("stage") == repo.tags[1]  # not rolled back
    assert repo.subject("main") == "chore: another writer on main"
    assert after["worktrees"] == before["worktrees"]
    assert after["worktree_dirs"] == before["worktree_dirs"]
    for key in ("head", "status", "index", "worktree_diff", "files"):
        assert after[key] == before[key], key
    heads = [line for line in after["clone_refs"].splitlines() if "refs/heads/" in line]
    assert heads == [line for line in before["clone_refs"].splitlines() if "refs/heads/" in line]


@pytest.mark.parametrize("step", ["commit", "push", "_render_check"])
def test_ctrl_c_leaves_no_worktree(
    repo: GitOpsRepo, run_cli: CliRunner, monkeypatch: pytest.MonkeyPatch, step: str, tmp_path: Path
) -> None:
    seen: list[Path] = []

    def interrupt(*args: object, **kwargs: object) -> object:
        seen.extend(p for p in private_tmp.glob("dex-worktree-*/wt") if p.is_dir())
        raise KeyboardInterrupt

    # A private temp dir, so worktrees of other test runs on this machine cannot confuse us.
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private_tmp))
    monkeypatch.setattr(workflow if step.startswith("_") else git_tool, step, interrupt)
    before = repo.snapshot()
    result = run_cli("bump-overlay", "dev", repo.tags[4], "--direct", cwd=repo.clone)
    assert result.code == 130
    assert "interrupted" in result.err
    assert len(seen) == 1  # the worktree existed when Ctrl-C came...
    assert repo.snapshot() == before  # ...and is gone, with its .git/worktrees entry
    assert list(private_tmp.iterdir()) == []


def test_push_rejected_by_the_remote_is_exit_4(
    repo: GitOpsRepo, run_cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook = repo.origin / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'protected branch: pushes need a PR' >&2\nexit 1\n", encoding="utf-8")
    hook.chmod(0o755)
    before = repo.snapshot()
    result = run_cli("bump-overlay", "dev", repo.tags[4], "--direct", cwd=repo.clone)
    assert result.code == 4, result.err
    assert "rejected" in result.err
    after = repo.snapshot()
    assert after["origin_refs"] == before["origin_refs"]
    assert after["worktrees"] == before["worktrees"]


def test_user_hooks_are_not_run(repo: GitOpsRepo, run_cli: CliRunner) -> None:
    hooks = repo.clone / ".git" / "hooks"
    marker = repo.clone.parent / "hook-ran"
    for name in ("pre-commit", "commit-msg", "post-checkout", "post-commit", "pre-push"):
        hook = hooks / name
        hook.write_text(f"#!/bin/sh\necho {name} >> '{marker}'\nexit 1\n", encoding="utf-8")
        hook.chmod(0o755)
    result = run_cli("bump-overlay", "dev", repo.tags[4], "--direct", cwd=repo.clone)
    assert result.code == 0, result.err
    assert repo.tag("dev") == repo.tags[4]
    assert not marker.exists()
    result = run_cli("rollback", "dev", "--revert", cwd=repo.clone)
    assert result.code == 0, result.err
    assert not marker.exists()


def test_push_race_on_the_same_file_reapplies_the_edit(
    repo: GitOpsRepo, run_cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The other writer changes another line of the SAME overlay: a stale patch would conflict or
    # drop their change; re-applying the edit on the new tip keeps both.
    t4 = repo.tags[4]
    theirs = overlay_text("dev", repo.tags[3]).replace("namespace: dex-dev", "namespace: dex-dev-2")

    def same_file(change: workflow.Change, attempt: int) -> None:
        if attempt == 1:
            repo.race(change.base, overlay_path("dev"), theirs)

    monkeypatch.setattr(workflow, "_before_push", same_file)
    result = run_cli("bump-overlay", "dev", t4, "--direct", cwd=repo.clone)
    assert result.code == 0, result.err
    assert repo.show("dev", overlay_path("dev")) == theirs.replace(f"newTag: {repo.tags[3]}", f"newTag: {t4}")


def test_crlf_overlay_stays_crlf(repo: GitOpsRepo, run_cli: CliRunner) -> None:
    crlf = overlay_text("prod", repo.tags[0]).replace("\n", "\r\n").encode("utf-8")
    w = repo.writer
    git("checkout", "--quiet", "main", cwd=w)
    git("pull", "--quiet", "origin", "main", cwd=w)
    (w / overlay_path("prod")).write_bytes(crlf)
    git("commit", "--quiet", "-am", "chore: prod overlay with CRLF", cwd=w)
    git("push", "--quiet", "origin", "main", cwd=w)
    result = run_cli("bump-overlay", "prod", repo.tags[4], "--direct", cwd=repo.clone)
    assert result.code == 0, result.err
    blob = subprocess.run(
        ["git", "cat-file", "blob", f"main:{overlay_path('prod')}"],
        cwd=repo.origin,
        capture_output=True,
        check=True,
    ).stdout
    assert blob == crlf.replace(repo.tags[0].encode(), repo.tags[4].encode())


def test_transient_push_failure_is_retried(
    repo: GitOpsRepo, run_cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_push = git_tool.push
    calls: list[str] = []

    def flaky(wt: Path, src: str, branch: str, **kwargs: object) -> git_tool.PushResult:
        calls.append(branch)
        if len(calls) == 1:
            return git_tool.PushResult(
                ok=False, stale=False, transient=True, detail="fatal: the remote end hung up unexpectedly"
            )
        return real_push(wt, src, branch, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(git_tool, "push", flaky)
    result = run_cli("bump-overlay", "dev", repo.tags[4], "--json", cwd=repo.clone)
    assert result.code == 0, result.err
    assert calls == [f"dex/bump-dev-{repo.tags[4]}"] * 2
    assert "hung up unexpectedly (attempt 1/" in result.err
    assert repo.tag("dev", f"dex/bump-dev-{repo.tags[4]}") == repo.tags[4]


def test_push_detail_lines() -> None:
    porcelain = (
        "To /tmp/origin.git\n"
        "!\trefs/heads/dev:refs/heads/dev\t[remote rejected] (pre-receive hook declined)\nDone\n"
        "remote: protected branch: pushes need a PR\nerror: failed to push some refs to '/tmp/origin.git'"
    )
    assert git_tool._push_detail(porcelain, 1) == (
        "[remote rejected] (pre-receive hook declined): remote: protected branch: pushes need a PR"
    )
    assert git_tool._push_detail(
        "fatal: unable to access 'https://x/': Could not resolve host: x", 128
    ).startswith("fatal: unable to access")
    assert git_tool._push_detail("", 1) == "git push exited with 1"


def test_revert_of_a_commit_that_changed_other_envs_leaves_them(repo: GitOpsRepo, run_cli: CliRunner) -> None:
    # Was refused ("also changes ..."); now only prod's file is put back (issue 10, class 5).
    result = run_cli("bump-overlay", "stage", "prod", repo.tags[4], "--direct", cwd=repo.clone)
    assert result.code == 0, result.err
    before = repo.snapshot()
    result = run_cli("rollback", "prod", "--revert", cwd=repo.clone)
    assert result.code == 0, result.err
    assert repo.tag("prod") == repo.tags[0]
    assert repo.tag("stage") == repo.tags[4]
    after = repo.snapshot()
    assert after["worktrees"] == before["worktrees"]


def _git_translates(language: str) -> bool:
    """Does this git have ``language``'s message catalogue (Debian's git ships them)?"""
    said = subprocess.run(
        ["git", "rev-parse", "--git-dir"], cwd=tempfile.gettempdir(), capture_output=True, text=True,
        env={"PATH": os.environ["PATH"], "LANGUAGE": language, "LANG": "C.UTF-8"}, check=False,
    )  # fmt: skip
    return said.returncode != 0 and not said.stderr.startswith("fatal:")


@pytest.mark.parametrize("language", [None, "de"])
def test_missing_base_branch_is_exit_2(
    repo: GitOpsRepo, run_cli: CliRunner, monkeypatch: pytest.MonkeyPatch, language: str | None
) -> None:
    if language is not None:
        # A user whose git speaks German: the messages dex-tasks reads must still be git's English.
        if not _git_translates(language):
            pytest.skip(f"this git has no {language!r} messages")
        monkeypatch.setenv("LANGUAGE", language)
        monkeypatch.setenv("LANG", "C.UTF-8")
    git("push", "--quiet", "origin", "--delete", "dev", cwd=repo.writer)
    result = run_cli("bump-overlay", "dev", repo.tags[4], cwd=repo.clone)
    assert result.code == 2
    assert "branch 'dev' does not exist on origin" in result.err


@pytest.mark.parametrize("argv", [("history", "dev"), ("rollback", "dev"), ("promote", "dev", "stage")])
def test_no_origin_remote_is_exit_2_for_every_gitops_task(
    repo: GitOpsRepo, run_cli: CliRunner, argv: tuple[str, ...]
) -> None:
    # Regression: history/rollback/promote fetch before anything else, and a clone without origin
    # was exit 4 with git's boilerplate last line ("and the repository exists.").
    git("remote", "remove", "origin", cwd=repo.clone)
    result = run_cli(*argv, cwd=repo.clone)
    assert result.code == 2, result.err
    assert "no git remote 'origin'" in result.err
    assert "repository exists" not in result.err


def test_unreachable_origin_names_the_reason(repo: GitOpsRepo, run_cli: CliRunner, tmp_path: Path) -> None:
    git("remote", "set-url", "origin", str(tmp_path / "does-not-exist.git"), cwd=repo.clone)
    before = repo.snapshot()
    result = run_cli("history", "dev", cwd=repo.clone)
    assert result.code == 4, result.err
    (line,) = [line for line in result.err.splitlines() if "error:" in line]
    assert "does not appear to be a git repository" in line
    assert repo.snapshot() == before


# Overlays ruamel cannot read, or only reads into something the edit cannot keep: each was exit 70
# ("internal error") before; a bad file is bad input, exit 2 naming the file, nothing written.
_HOSTILE_OVERLAYS = {
    "octal-ish newTag": (b"newTag: 0o_", "cannot read the !!int value '0o_'"),
    "hex-ish newTag": (b"newTag: 0x_", "cannot read the !!int value '0x_'"),
    "bool-tagged newTag": (b"newTag: !!bool x", "cannot read the !!bool value 'x'"),
    "set-tagged newTag": (b"newTag: !!set x", "cannot read the !!set value 'x'"),
    "int-tagged newTag": (b"newTag: !!int 1234567", "carries the YAML tag !!int"),
    "huge int": (b"newTag: " + b"9" * 5000, "Exceeds the limit"),
    "NUL": (b"newTag: sha-1\x00", "invalid YAML"),
    "not UTF-8": (b"newTag: sha-\xff\xfe", "not UTF-8 text"),
    "deep nesting": (b"newTag: " + b"[" * 20_000 + b"]" * 20_000, "invalid YAML"),
}


def _hand_edit_dev(repo: GitOpsRepo, value: bytes) -> Path:
    """Commit (not push) dev's overlay with ``value`` in place of its ``newTag`` line, in the writer
    clone, as a person editing by hand would; returns the writer clone."""
    w = repo.writer
    git("checkout", "--quiet", "dev", cwd=w)
    git("pull", "--quiet", "origin", "dev", cwd=w)
    good = overlay_text("dev", repo.tags[0]).encode()
    hostile = good.replace(f"newTag: {repo.tags[0]}".encode(), value)
    assert hostile != good
    (w / overlay_path("dev")).write_bytes(hostile)
    git("commit", "--quiet", "-am", "chore: a hand-edited dev overlay", cwd=w)
    return w


@pytest.mark.parametrize(("value", "needle"), _HOSTILE_OVERLAYS.values(), ids=_HOSTILE_OVERLAYS)
def test_a_hostile_overlay_value_is_one_error_line_and_changes_nothing(
    repo: GitOpsRepo, run_cli: CliRunner, value: bytes, needle: str
) -> None:
    _hand_edit_dev(repo, value)
    git("push", "--quiet", "origin", "dev", cwd=repo.writer)
    git("fetch", "--quiet", "origin", cwd=repo.clone)  # the task fetches: that is not a change
    before = repo.snapshot()
    result = run_cli("bump-overlay", "dev", repo.tags[4], "--direct", cwd=repo.clone)
    assert result.code == 2, result.err
    error_lines = [line for line in result.err.splitlines() if "error:" in line]
    assert len(error_lines) == 1, result.err
    assert overlay_path("dev") in error_lines[0]
    assert needle in error_lines[0]
    assert "Traceback" not in result.err
    assert repo.snapshot() == before


# The same overlays in an OLD commit, with a good version on top: history and rollback read old
# versions from git; a hostile one is no deployment (skipped), never exit 70 or a refusal of the env.
_HOSTILE_OLD = {
    **{name: value for name, (value, _) in _HOSTILE_OVERLAYS.items()},
    "deep nesting, digest mentioned": b"digest: x\nnewTag: " + b"[" * 20_000 + b"]" * 20_000,
    "NUL, digest mentioned": b"newTag: sha-1\x00 # digest",
    "alias bomb, digest mentioned": b"a: &a [x,x,x,x,x,x,x,x,x]\n"
    + b"".join(
        b"%c: &%c [*%c,*%c,*%c,*%c,*%c,*%c,*%c,*%c,*%c]\n" % ((c, c) + (c - 1,) * 9) for c in range(98, 107)
    )
    + b"digest: *j\nnewTag: x",
}


@pytest.mark.parametrize("value", _HOSTILE_OLD.values(), ids=_HOSTILE_OLD)
def test_a_hostile_old_overlay_version_is_skipped_by_history_and_rollback(
    repo: GitOpsRepo, run_cli: CliRunner, value: bytes
) -> None:
    w = _hand_edit_dev(repo, value)
    (w / overlay_path("dev")).write_bytes(overlay_text("dev", repo.tags[3]).encode())
    git("commit", "--quiet", "-am", f"chore(dev): deploy {repo.tags[3]}", cwd=w)
    git("push", "--quiet", "origin", "dev", cwd=w)
    result = run_cli("history", "dev", "--json", cwd=repo.clone)
    assert result.code == 0, result.err
    assert "Traceback" not in result.err
    before = repo.snapshot()
    result = run_cli("rollback", "dev", "--dry-run", cwd=repo.clone)
    assert result.code == 0, result.err
    assert "internal error" not in result.err
    assert "Traceback" not in result.err
    assert repo.snapshot() == before
    # --revert would put the hostile version back: a one-line refusal, origin and clone unchanged.
    result = run_cli("rollback", "dev", "--revert", cwd=repo.clone)
    assert "Traceback" not in result.err
    assert "internal error" not in result.err
    assert result.code == 2, result.err
    assert len([line for line in result.err.splitlines() if "error:" in line]) == 1, result.err
    assert repo.snapshot() == before


def test_history_follows_origin_rewound_behind_the_tracking_ref(repo: GitOpsRepo, run_cli: CliRunner) -> None:
    # Someone force-pushed dev back one commit: the tracking ref is ahead of origin, so ls-remote's
    # tip differs and history fetches (+refspec) instead of showing the commit origin dropped.
    branch = branch_of("dev")
    git("fetch", "--quiet", "origin", cwd=repo.clone)
    dropped = repo.head(branch)
    git("update-ref", f"refs/heads/{branch}", f"{dropped}~1", cwd=repo.origin)
    result = run_cli("history", "dev", "--json", cwd=repo.clone)
    assert result.code == 0, result.err
    commits = [entry["commit"] for entry in json.loads(result.out)["entries"]]
    assert dropped not in commits
    assert git("rev-parse", f"refs/remotes/origin/{branch}", cwd=repo.clone) == repo.head(branch)


def test_history_of_a_branch_deleted_on_origin_says_so_like_a_first_fetch(
    repo: GitOpsRepo, run_cli: CliRunner, tmp_path: Path
) -> None:
    # ls-remote lists nothing: the fetch runs and names the missing branch, as it does for a clone
    # that never had the tracking ref (the fetch-first path).
    branch = branch_of("dev")
    git("fetch", "--quiet", "origin", cwd=repo.clone)
    fresh = tmp_path / "fresh"
    git("clone", "--quiet", "--no-checkout", str(repo.origin), str(fresh), cwd=tmp_path)
    git("checkout", "--quiet", branch_of("prod") if branch != branch_of("prod") else "main", cwd=fresh)
    git("update-ref", "-d", f"refs/remotes/origin/{branch}", cwd=fresh)
    git("update-ref", "-d", f"refs/heads/{branch}", cwd=repo.origin)
    results = [run_cli("history", "dev", cwd=where) for where in (repo.clone, fresh)]
    lines = [[line for line in r.err.splitlines() if "error:" in line] for r in results]
    assert [r.code for r in results] == [results[1].code] * 2
    assert results[0].code not in {0, 70}, results[0].err
    assert len(lines[0]) == 1, results[0].err
    assert lines[0] == lines[1]


_HOSTILE_TASKS = {
    "promote from it": ("promote", "dev", "stage", "--verify", "git"),
    "rollback of it": ("rollback", "dev"),
    "rollback --revert of it": ("rollback", "dev", "--revert"),
    "history of it": ("history", "dev"),
    "status": ("status",),
}


@pytest.mark.parametrize("argv", _HOSTILE_TASKS.values(), ids=_HOSTILE_TASKS)
@pytest.mark.parametrize("name", ["int-tagged newTag", "not UTF-8", "deep nesting"])
def test_other_tasks_refuse_a_hostile_current_overlay_cleanly(
    repo: GitOpsRepo, run_cli: CliRunner, argv: tuple[str, ...], name: str
) -> None:
    value, _ = _HOSTILE_OVERLAYS[name]
    earlier = repo.tag("dev")
    w = _hand_edit_dev(repo, value)
    git("push", "--quiet", "origin", "dev", cwd=w)
    git("fetch", "--quiet", "origin", cwd=repo.clone)
    before = repo.snapshot()
    result = run_cli(*argv, cwd=repo.clone)
    assert "Traceback" not in result.err
    assert result.code in {0, 2}, result.err
    if result.code == 2:
        assert len([line for line in result.err.splitlines() if "error:" in line]) == 1, result.err
    if "--revert" in argv and result.code == 0:
        # Reverting the hand edit is what was asked: the version before it is back, nothing else.
        assert repo.tag("dev") == earlier
        return
    assert repo.snapshot() == before


def test_history_says_it_waits_for_a_slow_origin(
    repo: GitOpsRepo, run_cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # ls-remote runs quietly beside the local log; when origin takes longer than progress.SAY_AFTER
    # to answer, history says what it waits for instead of looking hung.
    slow = tmp_path / "slow-ssh"
    slow.write_text('#!/bin/sh\nsleep 3\nshift\nexec sh -c "$*"\n', encoding="utf-8")
    slow.chmod(0o755)
    git("fetch", "--quiet", "origin", cwd=repo.clone)
    git("config", "remote.origin.url", f"ssh://slowhost{repo.origin}", cwd=repo.clone)
    monkeypatch.setenv("GIT_SSH_COMMAND", str(slow))
    result = run_cli("history", "dev", cwd=repo.clone)
    assert result.code == 0, result.err
    assert "# waiting for origin's dev (git ls-remote) (attempt 1/1)" in result.err
