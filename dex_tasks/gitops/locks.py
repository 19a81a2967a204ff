"""Per-env deploy locks that laptop and CI both respect: refs ``refs/dex/locks/<env>`` on origin.

A lock is a ref pointing at a commit with the empty tree and no parent, made with ``git mktree`` and
``git commit-tree`` in the user's object store (no working copy, index or branch is touched),
whose message carries the trailers ``Dex-Lock-By`` (the git identity, ``name <email>``),
``Dex-Lock-Reason``, ``Dex-Lock-Since`` and ``Dex-Lock-Expires`` (ISO 8601 UTC, or ``never``).

It needs no server beyond origin: creating one is ``git push --atomic
--force-with-lease=refs/dex/locks/<env>: origin <sha>:refs/dex/locks/<env>`` (an empty expected
value: the ref must not exist yet), so of two clones locking at the same instant the server lets
exactly one in. Updating or removing one leases on the commit that was read.

Reading: ``git ls-remote origin 'refs/dex/locks/*'``, then the lock commits are fetched by id
(``git fetch origin <sha>``) into the object store *without creating any local ref*: nothing new
appears in ``git branch``, ``git tag`` or ``git for-each-ref`` of the user's clone.
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import TYPE_CHECKING, Any

from dex_tasks import durations, redact
from dex_tasks._untrusted import printable
from dex_tasks.errors import DexError, UsageError
from dex_tasks.tools import git

if TYPE_CHECKING:
    import datetime as dt
    from pathlib import Path

REF_PREFIX = "refs/dex/locks/"
NEVER = "never"
UNKNOWN = "(unknown)"
PLANNED_TREE = "<empty-tree>"
PLANNED_COMMIT = "<new-commit>"
_ENV_RE = re.compile(r"[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?")
MAX_REASON = 500


@dataclasses.dataclass(frozen=True, kw_only=True)
class Lock:
    env: str
    sha: str
    by: str
    reason: str
    since: dt.datetime | None
    expires: dt.datetime | None  # None: until unlocked

    def expired(self, now: dt.datetime) -> bool:
        return self.expires is not None and self.expires <= now

    def as_json(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "by": self.by,
            "reason": self.reason,
            "since": durations.iso(self.since) if self.since else None,
            "expires": durations.iso(self.expires) if self.expires else None,
        }

    def describe(self) -> str:
        """``Ada <ada@example.com> since 2026-...Z: db migration (until 2026-...Z)``."""
        since = durations.iso(self.since) if self.since else "an unknown time"
        until = f" (until {durations.iso(self.expires)})" if self.expires else ""
        return f"{self.by} since {since}: {self.reason}{until}"


def ref(env: str) -> str:
    return REF_PREFIX + env


def check_reason(reason: str) -> str:
    text = " ".join(reason.split())
    if not text:
        raise UsageError("--reason must say why (it is what others see when the lock refuses them)")
    if len(text) > MAX_REASON:
        raise UsageError(f"--reason is too long ({len(text)} characters, at most {MAX_REASON})")
    return text


# -- reading -----------------------------------------------------------------------------------


def remote_tips(root: Path) -> dict[str, str]:
    """env -> lock commit id, from ``git ls-remote origin 'refs/dex/locks/*'``."""
    git.require_remote(root)
    found = git.ls_remote(root, REF_PREFIX + "*", what="cannot read the locks on origin")
    tips: dict[str, str] = {}
    for sha, name in found:
        env = name.removeprefix(REF_PREFIX)
        # Only names we could have made: anything else under refs/dex/locks/ is not a lock of ours.
        if name.startswith(REF_PREFIX) and _ENV_RE.fullmatch(env) and re.fullmatch(r"[0-9a-f]{40,64}", sha):
            tips[env] = sha
    return tips


def _when(value: str | None) -> dt.datetime | None:
    if not value or value == NEVER:
        return None
    try:
        return durations.parse_instant(value, what="Dex-Lock")
    except DexError:
        return None


def parse(env: str, sha: str, message: str) -> Lock:
    """A lock from its commit message. A lock someone wrote by hand still locks: missing fields
    read as unknown, and an unreadable expiry as none (it never expires by itself)."""
    trailers = git.parse_trailers(message)

    def last(key: str) -> str | None:
        values = trailers.get(key.lower())
        # Anyone who can push a ref wrote this: shown on one line, at most as long as our own reason.
        return printable(values[-1], MAX_REASON) if values else None

    return Lock(
        env=env,
        sha=sha,
        by=last("Dex-Lock-By") or UNKNOWN,
        reason=last("Dex-Lock-Reason") or UNKNOWN,
        since=_when(last("Dex-Lock-Since")),
        expires=_when(last("Dex-Lock-Expires")),
    )


def load(root: Path, env: str, sha: str) -> Lock:
    git.fetch_commit(root, sha)  # by id: no local ref is created
    return parse(env, sha, git.message_body(root, sha))


def read_all(root: Path) -> dict[str, Lock]:
    return {env: load(root, env, sha) for env, sha in sorted(remote_tips(root).items())}


def read(root: Path, env: str) -> Lock | None:
    sha = remote_tips(root).get(env)
    return load(root, env, sha) if sha else None


# -- who am I ----------------------------------------------------------------------------------


def identity(root: Path) -> str:
    """``user.name <user.email>`` as git would commit with it (the same fallback in CI)."""
    fallback = git.identity_env(root)

    def value(part: str) -> str:
        from_env = os.environ.get(f"GIT_COMMITTER_{part.upper()}")
        if from_env:
            return from_env
        if f"GIT_COMMITTER_{part.upper()}" in fallback:
            return fallback[f"GIT_COMMITTER_{part.upper()}"] or ""
        result = git.git("config", f"user.{part}", cwd=root, read_only=True, check=False, quiet=True)
        return result.stdout.strip()

    # In the form a lock's Dex-Lock-By is read back (inert, cut: :func:`parse`), so that a name
    # with a bidi override or of 600 characters still knows its own lock.
    return printable(" ".join(f"{value('name')} <{value('email')}>".split()), MAX_REASON)


# -- writing -----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class Pushed:
    ok: bool
    detail: str


def _before_push(env: str) -> None:
    """Hook point between reading the lock and pushing it (tests make a second clone race us here)."""


def make_commit(root: Path, lock: Lock, now: dt.datetime) -> str:
    """The lock commit (empty tree, no parent); ``<new-commit>`` when dry-run only echoed it."""
    tree = git.git("mktree", cwd=root, stdin="").stdout.strip() or PLANNED_TREE
    message = (
        f"dex-tasks lock {lock.env}\n\n"
        f"Dex-Lock-By: {lock.by}\n"
        f"Dex-Lock-Reason: {lock.reason}\n"
        f"Dex-Lock-Since: {durations.iso(lock.since or now)}\n"
        f"Dex-Lock-Expires: {durations.iso(lock.expires) if lock.expires else NEVER}\n"
    )
    stamp = durations.iso(now)
    env = {**git.identity_env(root), "GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp}
    result = git.git("commit-tree", tree, "-F", "-", cwd=root, stdin=message, env=env)
    return result.stdout.strip() or PLANNED_COMMIT


def push(root: Path, env: str, new: str | None, *, expect: str | None) -> Pushed:
    """Point ``refs/dex/locks/<env>`` at ``new`` (None: delete it) if it is still at ``expect``
    (None: it must not exist). Atomic on the server: one of two racing pushes wins."""
    _before_push(env)
    name = ref(env)
    remote, env_vars = git.network_remote(root, push=True)  # no credential in argv
    result = git.git(
        "push", "--porcelain", "--no-verify", "--atomic", f"--force-with-lease={name}:{expect or ''}",
        remote, f"{new or ''}:{name}", cwd=root, check=False, env=env_vars,
    )  # fmt: skip
    if result.skipped or result.ok:
        return Pushed(ok=True, detail="")
    text = redact.redact((result.stdout + "\n" + result.stderr).strip())
    what = f"cannot push the lock of {env} to {git.REMOTE}"
    git.refuse_configuration(text, what, outcome="nothing was locked")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    rejected = next((line.split("\t")[-1] for line in lines if line.startswith("!")), "")
    first = next((line for line in lines if line.startswith(("fatal:", "error:"))), "")
    return Pushed(ok=False, detail=rejected or first or (lines[-1] if lines else "git push failed"))
