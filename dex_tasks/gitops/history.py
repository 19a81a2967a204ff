"""An environment's deployments, read from the git history of its overlay file.

Each commit that changed the overlay's tag is one deployment; the tag is read from the file as
it was at that commit, so history works for commits made by hand too. The ``Dex-*`` trailers our
commits carry say which action made them; commits without are ``manual``. A rollback's previous
tag is *known bad*: ``rollback`` never picks it again.

A version of the file that :func:`overlay.read_tag` refuses (invalid YAML, or over
``overlay_scan.MAX_OVERLAY_BYTES``) is skipped: it is not a deployment, and the walk goes on. The
current version is read by the task itself, which refuses it (exit 2) instead.

Reading is lazy and in bulk (issue 13): :func:`deployments` returns a :class:`Deployments`
sequence that reads the log (metadata and trailers, ``git log``) a window at a time and the
file's versions in batches (one ``git cat-file --batch`` per batch), each version parsed once by
:func:`overlay_scan.read_tag_fast`. So ``entries[:10]`` reads about ten versions, ``last_known_good``
stops at the first good tag, and the known bad tags come from the rollback commits alone (found
by their trailers and subjects in the log, then their two versions read).

A field of an entry read from the commit (a trailer, a ``git log`` placeholder) goes into
:func:`_deployment`: add it to :class:`dex_tasks.tools.git.Commit` (and ``git.log``'s format),
then to :class:`Deployment` and :meth:`Deployment.as_json`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, overload

from dex_tasks.errors import DexError
from dex_tasks.gitops import overlay_scan
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
    digest: str | None = None  # Dex-Digest of this env (or the overlay's pinned digest); None: unknown
    signed: bool = False  # the commit carries a signature (only read with signatures=True)
    verified: bool = False  # git verified it against the configured signers (%G? is G)

    def as_json(self) -> dict[str, str | bool | None]:
        return {
            "tag": self.tag,
            "commit": self.commit,
            "date": self.date,
            "author": self.author,
            "subject": self.subject,
            "action": self.action,
            "digest": self.digest,
            "signed": self.signed,
            "verified": self.verified,
        }


def _is_rollback(commit: git.Commit, action: str) -> bool:
    # A hand-made `git revert` or "rollback" commit moves away from a bad tag just like ours does.
    subject = commit.subject.lower()
    return action == ROLLBACK or subject.startswith(('revert "', "fix: rollback", "rollback"))


def digest_for(commit: git.Commit, env: str | None) -> str | None:
    """The ``Dex-Digest`` trailer of ``env``: the one at ``env``'s position among the ``Dex-Env`` lines."""
    digests = commit.trailers.get("dex-digest", ())
    envs = commit.trailers.get("dex-env", ())
    if env is not None and len(digests) == len(envs) and env in envs:
        return digests[envs.index(env)]
    return digests[0] if len(digests) == 1 else None


def _deployment(
    commit: git.Commit, tag: str, older: str | None, *, env: str | None = None, pinned: str | None = None
) -> Deployment:
    """The entry of a commit that moved the overlay from ``older`` to ``tag``."""
    action = commit.trailer("Dex-Action") or MANUAL
    return Deployment(
        tag=tag,
        previous_tag=older,
        commit=commit.sha,
        date=commit.date,
        author=commit.author,
        subject=commit.subject,
        action=action,
        rolled_back_from=_rolled_back_from(commit, action, older),
        # The file's pin is what the kubelet pulls; else what the registry said at commit time.
        digest=pinned or digest_for(commit, env),
        signed=commit.signed,
        verified=commit.verified,
    )


def _rolled_back_from(commit: git.Commit, action: str, older: str | None) -> str | None:
    if not _is_rollback(commit, action):
        return None
    found = commit.trailer("Dex-Previous-Tag") or older
    return older if found in {"", "none"} else found


FIRST_WINDOW = 32  # log entries read first when only the newest few are wanted
FIRST_BATCH = 16  # versions read by the first cat-file; each later batch is 4 times the last
# A slice's first window: its entries, the version before the last, and this many commits that
# touch the file but not its tag (more only costs a second window, still the same entries).
SLICE_SLACK = 4
# A count past this is "all of it" (`--limit 99999999999`): the log is read whole, in one go, rather
# than a window or a cat-file batch sized to the count, which would count to it before reading.
MAX_WINDOW = 1 << 20
_UNREAD = object()


class Deployments(Sequence[Deployment]):
    """Every tag change of an overlay, newest first, read as far as it is looked at.

    Indexing, slicing, truth and iteration read only what they need (iteration that stops early
    stops the reading); ``len()`` and negative indexes read everything, in one batch.
    """

    def __init__(
        self, root: Path, rev: str, path: str, image: str, env: str | None = None, *, signatures: bool = False
    ) -> None:
        self._root, self._rev, self._path, self._image, self._env = root, rev, path, image, env
        self._signatures = signatures
        self._pins: dict[int, str | None] = {}  # log index -> the version's `digest:` pin, if any
        self._commits: list[git.Commit] = []
        self._complete = False  # the whole log is in _commits
        self._tags: dict[int, str | None] = {}  # log index -> the tag of that version (None: none)
        self._entries: list[Deployment] = []
        self._next = 0  # the log index to look at next for an entry
        self._window = FIRST_WINDOW  # the least a git log reads
        self._batch = FIRST_BATCH

    # -- the log and the versions ------------------------------------------------------------

    def _log(self, wanted: int | None) -> None:
        """At least ``wanted`` log entries (None: all of them) unless the log ends first."""
        if self._complete or (wanted is not None and len(self._commits) >= wanted):
            return
        limit = None if wanted is None else max(wanted - len(self._commits), len(self._commits), self._window)
        more = git.log(
            self._root,
            self._rev,
            self._path,
            limit=limit,
            skip=len(self._commits),
            signatures=self._signatures,
        )
        self._commits += more
        self._complete = limit is None or len(more) < limit

    def _read(self, indexes: Iterable[int]) -> None:
        wanted = sorted({i for i in indexes if i not in self._tags and i < len(self._commits)})
        if not wanted:
            return
        names = [f"{self._commits[i].sha}:{self._path}" for i in wanted]
        for index, blob in zip(wanted, git.blobs(self._root, names), strict=True):
            self._tags[index], self._pins[index] = self._tag_of(blob)

    def _tag_of(self, blob: bytes | None) -> tuple[str | None, str | None]:
        """The version's tag and its ``digest:`` pin (pin-digest envs)."""
        # Over the limit in bytes is over it in decoded text too (U+FFFD is 3 bytes in UTF-8):
        # skipped without decoding, as read_tag would refuse it before parsing.
        if blob is None or len(blob) > overlay_scan.MAX_OVERLAY_BYTES:
            return None, None
        # "replace", as proc decodes `git show`: a broken byte reads the same either way.
        text = blob.decode("utf-8", "replace")
        try:
            tag = overlay_scan.read_tag_fast(text, self._image, path=self._path)
            # Only a file that mentions a digest pays for the full parse that reads it.
            pin = _read_digest(text, self._image, self._path) if "digest" in text else None
        except DexError:
            return None, None  # an old, broken or oversized version of the file is not a deployment
        return tag, pin

    def _tag(self, index: int) -> str | None:
        """The tag at log index ``index`` (None past the end: the file's first version has no older)."""
        if index >= len(self._commits):
            return None
        if index not in self._tags:
            # The next batch from here on, growing, so a long walk takes few processes.
            self._log(index + self._batch + 1)
            # Only versions the log has: a batch sized to a huge --limit is not counted through.
            self._read(range(index, min(index + self._batch + 1, len(self._commits))))
            self._batch *= 4
        return self._tags[index]

    def _advance(self) -> bool:
        """Look at the next log entry; False when the log is done."""
        self._log(self._next + 2)
        if self._next >= len(self._commits):
            return False
        index = self._next
        self._next += 1
        tag, older = self._tag(index), self._tag(index + 1)
        if tag is not None and tag != older:  # else the commit touched the file, not the tag
            entry = _deployment(self._commits[index], tag, older, env=self._env, pinned=self._pins.get(index))
            self._entries.append(entry)
        return True

    def _until(self, count: int | None) -> None:
        if count is None:
            self._log(None)
            self._read(range(self._next, len(self._commits)))  # everything left, in one batch
        while (count is None or len(self._entries) < count) and self._advance():
            pass

    # -- the sequence ------------------------------------------------------------------------

    def __iter__(self) -> Iterator[Deployment]:
        index = 0
        while True:
            if index >= len(self._entries):
                self._until(index + 1)
                if index >= len(self._entries):
                    return
            yield self._entries[index]
            index += 1

    def __len__(self) -> int:
        self._until(None)
        return len(self._entries)

    def __bool__(self) -> bool:
        self._until(1)
        return bool(self._entries)

    @overload
    def __getitem__(self, index: int) -> Deployment: ...
    @overload
    def __getitem__(self, index: slice) -> list[Deployment]: ...
    def __getitem__(self, index: int | slice) -> Deployment | list[Deployment]:
        if isinstance(index, slice):
            stop = index.stop
            negative = any(v is not None and v < 0 for v in (index.start, stop))
            if stop is not None and stop > MAX_WINDOW:
                stop = None  # past any log: all of it, read in one go
            if stop is not None and not negative and not self._commits:
                # Nothing read yet and the count known (`--limit 10`): the first log and the
                # first cat-file sized to it, as `git log -n` is, not to a guess.
                self._batch = stop + SLICE_SLACK
                self._window = self._batch + 1
            self._until(None if stop is None or negative else stop)
            return self._entries[index]
        self._until(None if index < 0 else index + 1)
        return self._entries[index]

    def known_bad(self) -> set[str]:
        """:func:`known_bad` without reading every version: only the rollback commits can add a
        tag, so those (from the whole log's trailers and subjects) and the versions before them."""
        self._log(None)
        rollbacks = [
            index for index, commit in enumerate(self._commits)
            if _is_rollback(commit, commit.trailer("Dex-Action") or MANUAL)
        ]  # fmt: skip
        self._read([i for index in rollbacks for i in (index, index + 1)])
        bad: set[str] = set()
        for index in rollbacks:
            tag, older = self._tag(index), self._tag(index + 1)
            if tag is None or tag == older:
                continue  # not a deployment, so it marks nothing (as in the full walk)
            found = _deployment(self._commits[index], tag, older).rolled_back_from
            if found:
                bad.add(found)
        return bad


def _read_digest(text: str, image: str, path: str) -> str | None:
    # Imported here: the YAML parser (ruamel) only for a version that mentions a digest, so a
    # plain history imports none (overlay_scan).
    from dex_tasks.gitops import overlay  # noqa: PLC0415

    return overlay.read_digest(text, image, path=path)


def deployments(
    root: Path, rev: str, path: str, image: str, env: str | None = None, *, signatures: bool = False
) -> Deployments:
    """Every tag change of ``path`` on ``rev``, newest first (read lazily: :class:`Deployments`);
    ``env`` picks its ``Dex-Digest`` among a combined commit's trailers. ``signatures``: also
    whether each commit is signed and verified (``history`` shows it; rollback's walk does not
    ask, as git starts gpg or ssh-keygen for every signed commit)."""
    return Deployments(root, rev, path, image, env, signatures=signatures)


def known_bad(entries: Iterable[Deployment]) -> set[str]:
    if isinstance(entries, Deployments):
        return entries.known_bad()
    return {d.rolled_back_from for d in entries if d.rolled_back_from}


def last_known_good(entries: Iterable[Deployment], current: str | None) -> str | None:
    """The newest tag that is not ``current`` and was never rolled back from (stops there)."""
    return next(known_good(entries, current), None)


def known_good(entries: Iterable[Deployment], current: str | None) -> Iterator[str]:
    """Candidates for rollback, best first: tags that are not ``current`` and were never rolled
    back from, each once; lazy, so a caller that takes the first reads no further."""
    bad = known_bad(entries)
    seen: set[str] = set()
    for entry in entries:
        if entry.tag != current and entry.tag not in bad and entry.tag not in seen:
            seen.add(entry.tag)
            yield entry.tag


def was_deployed(entries: Iterable[Deployment], tag: str) -> bool:
    return any(entry.tag == tag for entry in entries)
