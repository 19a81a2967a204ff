"""An environment's deployments, read from the git history of its overlay file.

Each commit that changed the overlay's tag is one deployment; the tag is read from the file as
it was at that commit (``git show <c>:<path>``), so history works for commits made by hand too.
The ``Dex-*`` trailers our commits carry say which action made them; commits without are
``manual``. A rollback's previous tag is *known bad*: ``rollback`` never picks it again.

A version of the file that :func:`overlay.read_tag` refuses (invalid YAML, or over
``overlay.MAX_OVERLAY_BYTES``) is skipped: it is not a deployment, and the walk goes on. The
current version is read by the task itself, which refuses it (exit 2) instead.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from dex_tasks.errors import DexError
from dex_tasks.gitops import overlay
from dex_tasks.tools import git

if TYPE_CHECKING:
    from pathlib import Path

MANUAL = "manual"
ROLLBACK = "rollback"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Deployment:
    tag: str
    previous_tag: str | None  # the tag before this commit (None: the first deployment seen)
    commit: str
    date: str
    author: str
    subject: str
    action: str
    rolled_back_from: str | None  # for rollbacks: the tag this commit moved away from (known bad)
    signed: bool = False  # the commit carries a signature (only read with signatures=True)
    verified: bool = False  # git verified it against the configured signers (%G? is G)

    def as_json(self) -> dict[str, str | bool]:
        return {
            "tag": self.tag,
            "commit": self.commit,
            "date": self.date,
            "author": self.author,
            "subject": self.subject,
            "action": self.action,
            "signed": self.signed,
            "verified": self.verified,
        }


def _is_rollback(commit: git.Commit, action: str) -> bool:
    # A hand-made `git revert` or "rollback" commit moves away from a bad tag just like ours does.
    subject = commit.subject.lower()
    return action == ROLLBACK or subject.startswith(('revert "', "fix: rollback", "rollback"))


def deployments(root: Path, rev: str, path: str, image: str, *, signatures: bool = False) -> list[Deployment]:
    """Every tag change of ``path`` on ``rev``, newest first.

    ``signatures``: also whether each commit is signed and verified (``history`` shows it;
    rollback's walk does not ask, as git starts gpg or ssh-keygen for every signed commit).
    """

    commits = git.log(root, rev, path, signatures=signatures)
    tags: list[str | None] = []
    for commit in commits:
        text = git.show(root, commit.sha, path)
        tag: str | None = None
        if text is not None:
            try:
                tag = overlay.read_tag(text, image, path=path)
            except DexError:
                tag = None  # an old, broken or oversized version of the file is not a deployment
        tags.append(tag)
    result: list[Deployment] = []
    for index, (commit, tag) in enumerate(zip(commits, tags, strict=True)):
        older = tags[index + 1] if index + 1 < len(tags) else None
        if tag is None or tag == older:
            continue  # the commit touched the file without changing the tag
        action = commit.trailer("Dex-Action") or MANUAL
        rolled_back_from = None
        if _is_rollback(commit, action):
            rolled_back_from = commit.trailer("Dex-Previous-Tag") or older
            if rolled_back_from in {"", "none"}:
                rolled_back_from = older
        result.append(
            Deployment(
                tag=tag,
                previous_tag=older,
                commit=commit.sha,
                date=commit.date,
                author=commit.author,
                subject=commit.subject,
                action=action,
                rolled_back_from=rolled_back_from,
                signed=commit.signed,
                verified=commit.verified,
            )
        )
    return result


def known_bad(entries: list[Deployment]) -> set[str]:
    return {d.rolled_back_from for d in entries if d.rolled_back_from}


def last_known_good(entries: list[Deployment], current: str | None) -> str | None:
    """The newest tag that is not ``current`` and was never rolled back from."""
    bad = known_bad(entries)
    for entry in entries:
        if entry.tag != current and entry.tag not in bad:
            return entry.tag
    return None


def was_deployed(entries: list[Deployment], tag: str) -> bool:
    return any(entry.tag == tag for entry in entries)
