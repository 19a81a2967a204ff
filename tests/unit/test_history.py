"""Last known good: the newest tag that is not current and was never rolled back from; the walk."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dex_tasks.gitops import history, overlay
from tests.helpers import git

if TYPE_CHECKING:
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
    assert set(data) == {"tag", "commit", "date", "author", "subject", "action", "signed", "verified"}
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
