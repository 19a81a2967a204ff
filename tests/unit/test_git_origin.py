"""origin's URLs remembered for one write (git.remembering_origin): the same answers as get-url."""

from __future__ import annotations

import subprocess
from typing import TYPE_CHECKING

import pytest

from dex_tasks import proc
from dex_tasks.tools import git

if TYPE_CHECKING:
    from pathlib import Path


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def _get_url(repo: Path, *, push: bool) -> str | None:
    done = subprocess.run(
        ["git", "-C", str(repo), "remote", "get-url", *(["--push"] if push else []), "origin"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else None


SETUPS = {
    "no origin": [],
    "plain": [["remote", "add", "origin", "https://example.com/org/repo.git"]],
    "pushurl": [
        ["remote", "add", "origin", "https://example.com/org/repo.git"],
        ["remote", "set-url", "--push", "origin", "ssh://git@example.com/org/repo.git"],
    ],
    "insteadOf and pushInsteadOf": [
        ["remote", "add", "origin", "gh:org/repo.git"],
        ["config", "url.https://github.com/.insteadOf", "gh:"],
        ["config", "url.ssh://git@github.com/.pushInsteadOf", "https://github.com/"],
    ],
    "two URLs, a space, another remote first": [
        ["remote", "add", "aaa", "https://example.com/other.git"],
        ["remote", "add", "origin", "/tmp/a dir/first.git"],
        ["remote", "set-url", "--add", "origin", "/tmp/second.git"],
    ],
    # A partial clone (actions/checkout's `filter: blob:none`): remote -v adds the filter after
    # the fetch line's "(fetch)" (builtin/remote.c get_one_entry).
    "partial clone filter": [
        ["remote", "add", "origin", "https://example.com/org/repo.git"],
        ["config", "remote.origin.partialclonefilter", "blob:none"],
    ],
    "partial clone filter, pushurl, a URL ending in ]": [
        ["remote", "add", "origin", "http://[::1]"],
        ["remote", "set-url", "--push", "origin", "ssh://git@example.com/org/repo.git"],
        ["config", "remote.origin.partialclonefilter", "blob:limit=1m"],
    ],
    "a tab and (push) inside the URL, a filter": [
        ["remote", "add", "origin", "https://example.com/a b\ttab (push)/r.git"],
        ["config", "remote.origin.partialclonefilter", "tree:0"],
    ],
}


@pytest.mark.parametrize("setup", list(SETUPS))
def test_remembered_urls_are_what_get_url_prints(tmp_path: Path, setup: str) -> None:
    _git(tmp_path, "init", "--quiet")
    for args in SETUPS[setup]:
        _git(tmp_path, *args)
    expected = (_get_url(tmp_path, push=False), _get_url(tmp_path, push=True))
    assert (git.remote_url(tmp_path), git._origin_url(tmp_path, push=True)) == expected
    with git.remembering_origin():
        assert (git.remote_url(tmp_path), git._origin_url(tmp_path, push=True)) == expected


def test_one_git_process_answers_every_question_in_the_block(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _git(tmp_path, "init", "--quiet")
    _git(tmp_path, "remote", "add", "origin", "https://user:secret@example.com/org/repo.git")
    ran: list[tuple[str, ...]] = []
    real = proc.run

    def run(argv: tuple[str, ...], **kwargs: object) -> proc.Result:
        ran.append(tuple(argv))
        return real(argv, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(proc, "run", run)
    with git.remembering_origin():
        with git.remembering_origin():  # nested: the outer block's answers
            fetch = git.network_remote(tmp_path)
        push = git.network_remote(tmp_path, push=True)
        assert git.require_remote(tmp_path) == "https://user:secret@example.com/org/repo.git"
    assert fetch[0] == push[0] == "https://example.com/org/repo.git"  # no userinfo in argv
    assert len(ran) == 1
    git.remote_url(tmp_path)  # outside the block: asked again
    assert len(ran) == 2
