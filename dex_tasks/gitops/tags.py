"""Image tags of the contract: ``sha-`` + 7..40 lowercase hex, ``pr-<N>``, ``latest`` (never in an overlay).

Pure functions; every task validates a tag here before any file is touched (exit 2 otherwise).
"""

from __future__ import annotations

import re

from dex_tasks.errors import UsageError

SHA_TAG_RE = re.compile(r"^sha-[0-9a-f]{7,40}$")
PR_TAG_RE = re.compile(r"^pr-[1-9][0-9]{0,9}$")
LATEST = "latest"
BUILD_SHA_LENGTH = 8


def is_sha_tag(tag: str) -> bool:
    return bool(SHA_TAG_RE.fullmatch(tag))


def is_pr_tag(tag: str) -> bool:
    return bool(PR_TAG_RE.fullmatch(tag))


def sha_tag(commit: str) -> str:
    """``sha-`` + the first 8 hex digits of ``commit`` (what builds emit)."""
    commit = commit.strip().lower()
    if not is_sha_tag(f"sha-{commit}"):  # the tag rule's hex and length bounds, not a copy of them
        raise UsageError(f"not a commit sha: {commit!r}")
    return f"sha-{commit[:BUILD_SHA_LENGTH]}"


def pr_tag(number: int | str) -> str:
    tag = f"pr-{number}"
    if not is_pr_tag(tag):
        raise UsageError(f"invalid pull request number {number!r}: expected a positive integer")
    return tag


def sha_of(tag: str) -> str | None:
    """The commit prefix a ``sha-`` tag names, or None for other tags."""
    return tag[4:] if is_sha_tag(tag) else None


def validate_tag(tag: str, *, preview: bool = False, allow_latest: bool = False) -> str:
    """Return ``tag`` if it is valid for the purpose, else raise UsageError (exit 2).

    ``preview``: the target is a PR preview, where ``pr-<N>`` is allowed.
    ``allow_latest``: a build/push tag; ``latest`` is never written into an overlay.
    """
    if is_sha_tag(tag):
        return tag
    if is_pr_tag(tag):
        if preview:
            return tag
        raise UsageError(f"tag {tag!r} is for PR previews only; environment overlays take sha-<hex> tags")
    if tag == LATEST:
        if allow_latest:
            return tag
        raise UsageError("tag 'latest' is never written into an overlay: use the sha-<hex> tag of the build")
    raise UsageError(
        f"invalid tag {shown(tag)}: "
        "expected sha- followed by 7 to 40 lowercase hex digits (e.g. sha-1a2b3c4d)"
        + (", pr-<N>" if preview else "")
    )


def shown(value: str, limit: int = 60) -> str:
    """``repr`` of bad input, cut short: the error stays one readable line whatever was pasted."""
    return repr(value) if len(value) <= limit else repr(value[:limit]) + f"... ({len(value)} characters)"
