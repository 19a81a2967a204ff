"""Last known good: the newest tag that is not current and was never rolled back from; the walk."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from dex_tasks.errors import DexError
from dex_tasks.gitops import history, overlay
from dex_tasks.tools import git as gitlib
from tests.helpers import git

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path


def _d(
    tag: str, previous: str | None, action: str = "bump", *, rolled_back_from: str | None = None
) -> history.Deployment:
    return history.Deployment(
        tag=tag, previous_tag=previous, commit=f"c-{tag}", date="2026-01-01T00:00:00+00:00",
        author="a", subject="s", action=action, rolled_back_from=rolled_back_from,
    )  # fmt: skip


def test_newest_tag_that_is_not_current() -> None:
    entries = [_d("sha-3333333", "sha-2222222"), _d("sha-2222222", "sha-1111111"), _d("sha-1111111", None)]
    assert history.last_known_good(entries, "sha-3333333") == "sha-2222222"


def test_a_tag_rolled_back_from_is_skipped() -> None:
    # 1, 2, 3, rollback 3 -> 2: current 2; 3 is known bad, so the next good one is 1.
    entries = [
        _d("sha-2222222", "sha-3333333", "rollback", rolled_back_from="sha-3333333"),
        _d("sha-3333333", "sha-2222222"),
        _d("sha-2222222", "sha-1111111"),
        _d("sha-1111111", None),
    ]
    assert history.known_bad(entries) == {"sha-3333333"}
    assert history.last_known_good(entries, "sha-2222222") == "sha-1111111"


def test_redeployed_bad_tag_stays_bad() -> None:
    entries = [
        _d("sha-3333333", "sha-2222222"),
        _d("sha-2222222", "sha-3333333", "rollback", rolled_back_from="sha-3333333"),
        _d("sha-3333333", "sha-2222222"),
        _d("sha-2222222", None),
    ]
    assert history.last_known_good(entries, "sha-3333333") == "sha-2222222"


def test_nothing_good_left() -> None:
    assert history.last_known_good([_d("sha-1111111", None)], "sha-1111111") is None
    assert history.last_known_good([], None) is None


def test_was_deployed() -> None:
    entries = [_d("sha-1111111", None)]
    assert history.was_deployed(entries, "sha-1111111")
    assert not history.was_deployed(entries, "sha-2222222")


def test_as_json_has_the_contract_fields() -> None:
    data = _d("sha-1111111", None).as_json()
    contract = {"tag", "commit", "date", "author", "subject", "action", "digest"}  # digest: contract v2
    assert set(data) == {*contract, "signed", "verified"}  # signed/verified: contract v2 too
    assert (data["signed"], data["verified"]) == (False, False)


def test_an_oversized_old_version_is_skipped_like_a_broken_one(tmp_path: Path) -> None:
    # One rule for every old version the walk cannot read (invalid YAML, over the size limit):
    # it is not a deployment. The walk goes on, and reads the versions around it.
    path = "kustomization.yaml"
    git("init", "-q", cwd=tmp_path)

    def commit(text: str, subject: str) -> None:
        (tmp_path / path).write_text(text, encoding="utf-8")
        git("add", path, cwd=tmp_path)
        git("commit", "-q", "-m", subject, cwd=tmp_path)

    overlay_of = "images:\n  - name: data-literate/dex\n    newTag: {}\n".format
    commit(overlay_of("sha-1111111"), "first")
    commit(overlay_of("sha-2222222") + "#" * (overlay.MAX_OVERLAY_BYTES + 1) + "\n", "huge")
    commit(overlay_of("sha-3333333"), "third")
    entries = history.deployments(tmp_path, "HEAD", path, "data-literate/dex")
    assert [(e.tag, e.subject) for e in entries] == [("sha-3333333", "third"), ("sha-1111111", "first")]


# -- the lazy, batched walk (issue 13) gives what the walk of one `git show` per commit gave ------


def _reference(root: Path, rev: str, path: str, image: str) -> list[history.Deployment]:
    """The walk as it was before issue 13: every version by `git show`, the full parser, all of it."""
    commits = gitlib.log(root, rev, path)
    tags: list[str | None] = []
    for commit in commits:
        text = gitlib.show(root, commit.sha, path)
        try:
            tags.append(None if text is None else overlay.read_tag(text, image, path=path))
        except DexError:
            tags.append(None)
    result = []
    for index, (commit, tag) in enumerate(zip(commits, tags, strict=True)):
        older = tags[index + 1] if index + 1 < len(tags) else None
        if tag is not None and tag != older:
            result.append(history._deployment(commit, tag, older))
    return result


def _log_windows(monkeypatch: pytest.MonkeyPatch) -> list[int | None]:
    """Record the ``limit`` of every ``git log`` the history reads (None: the whole log)."""
    windows: list[int | None] = []
    original_log = gitlib.log

    def log(*args: Any, **kwargs: Any) -> list[gitlib.Commit]:
        windows.append(kwargs.get("limit"))
        return original_log(*args, **kwargs)

    monkeypatch.setattr(gitlib, "log", log)
    return windows


def _varied_history(root: Path) -> list[str]:
    """A history with every kind of version and commit the walk must tell apart; its tags."""
    path = root / "kustomization.yaml"
    git("init", "-q", cwd=root)
    overlay_of = "images:\n  - name: data-literate/dex\n    newTag: {}\n".format
    tags = [f"sha-{i:07x}" for i in range(1, 30)]

    def commit(text: str | None, message: str) -> None:
        if text is None:
            path.unlink()
            git("rm", "-q", "--cached", "kustomization.yaml", cwd=root)
        else:
            path.write_bytes(text.encode("utf-8"))
            git("add", "kustomization.yaml", cwd=root)
        git("commit", "-q", "--allow-empty", "-m", message, cwd=root)

    trailers = "\n\nDex-Action: {}\nDex-Previous-Tag: {}".format
    commit(overlay_of(tags[0]), "manual first")
    for i in range(1, 26):
        tag, before = tags[i], tags[i - 1]
        kind = i % 9
        if kind == 1:
            commit(overlay_of(tag), "chore: bump" + trailers("bump", before))
        elif kind == 2:  # a rollback to the tag two back, trailer names the bad one
            commit(overlay_of(tags[i - 2]), "fix: rollback" + trailers("rollback", before))
            tags[i] = tags[i - 2]
        elif kind == 3:
            commit(overlay_of(tag).replace("\n", "\r\n"), "manual CRLF (the parser's)")
        elif kind == 4:
            commit("images: [unclosed\n", "broken")
        elif kind == 5:
            commit(overlay_of(tag) + "#" * (overlay.MAX_OVERLAY_BYTES + 1) + "\n", "huge")
        elif kind == 6:
            commit(overlay_of(tags[i - 3]), f'Revert "deploy {before}"')  # by hand: no trailers
        elif kind == 7:
            commit(
                overlay_of(tags[i - 1]) + "# same tag\n",
                "rollback that changes nothing" + trailers("rollback", "none"),
            )
        elif kind == 8:
            commit(None, "delete the overlay")
        else:
            wide = overlay_of(tag).replace("  - name", "  -   name").replace("    newTag", "      newTag")
            commit(wide, "bump" + trailers("rollback", "none"))
    return tags


@pytest.mark.parametrize(
    ("window", "batch", "slack"),
    [(history.FIRST_WINDOW, history.FIRST_BATCH, history.SLICE_SLACK), (3, 1, 0)],
)
def test_the_lazy_walk_gives_what_the_full_walk_gave(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, window: int, batch: int, slack: int
) -> None:
    # Small windows and batches: many `git log --skip` windows and cat-file batches on 27 commits
    # (no slack: a slice's first window holds only as many commits as it has entries, plus one).
    monkeypatch.setattr(history, "FIRST_WINDOW", window)
    monkeypatch.setattr(history, "FIRST_BATCH", batch)
    monkeypatch.setattr(history, "SLICE_SLACK", slack)
    tags = _varied_history(tmp_path)
    args = (tmp_path, "HEAD", "kustomization.yaml", "data-literate/dex")
    expected = _reference(*args)
    assert len(expected) > 10
    assert list(history.deployments(*args)) == expected
    assert len(history.deployments(*args)) == len(expected)
    for n in (1, 2, 5, 100):
        assert history.deployments(*args)[:n] == expected[:n]
    assert history.deployments(*args)[3] == expected[3]
    assert history.deployments(*args)[-1] == expected[-1]
    assert bool(history.deployments(*args))
    bad = history.known_bad(expected)
    assert bad
    assert history.known_bad(history.deployments(*args)) == bad
    for current in [*set(tags), None]:
        assert history.last_known_good(history.deployments(*args), current) == history.last_known_good(
            expected, current
        )
        assert history.was_deployed(history.deployments(*args), current or "") == history.was_deployed(
            expected, current or ""
        )
    entries = history.deployments(*args)
    assert list(entries) == list(entries)  # a second pass reads from what the first one read


def test_the_newest_entries_read_only_a_few_versions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _varied_history(tmp_path)
    read: list[int] = []
    original = gitlib.blobs

    def blobs(root: Path, names: Sequence[str]) -> list[bytes | None]:
        read.append(len(names))
        return original(root, names)

    monkeypatch.setattr(gitlib, "blobs", blobs)
    windows = _log_windows(monkeypatch)
    entries = history.deployments(tmp_path, "HEAD", "kustomization.yaml", "data-literate/dex")
    assert len(entries[:2]) == 2
    # One git log and one cat-file, sized to the slice (as `git log -n`), not to a guess.
    assert windows == [2 + history.SLICE_SLACK + 1]
    assert read == [2 + history.SLICE_SLACK + 1]


@pytest.mark.parametrize("limit", [10**7, 10**30])
def test_a_huge_slice_reads_the_whole_log_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, limit: int
) -> None:
    # `history --limit 99999999999`: a count past any log is "all of it", one git log without a
    # limit; a window or batch sized to the count counted to it first (10**30: never finished).
    _varied_history(tmp_path)
    args = (tmp_path, "HEAD", "kustomization.yaml", "data-literate/dex")
    expected = _reference(*args)
    windows = _log_windows(monkeypatch)
    assert history.deployments(*args)[:limit] == expected
    assert windows == [None]
