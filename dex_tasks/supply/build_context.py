"""Secrets stay out of images: what of ``.git`` a build context would send to the builder.

actions/checkout with ``persist-credentials: true`` (its default) writes the job's token into
``.git/config`` as ``http.https://github.com/.extraheader = AUTHORIZATION: basic <base64>``; a
``docker build`` of the workspace with a ``COPY . .`` Dockerfile then bakes it into a layer of an
image that is pushed, public or not, for as long as the image exists. So before a build:

- the context's ``.git`` is found (a directory; a worktree's ``.git`` *file* only names a path);
- docker's own ignore rules (:mod:`dex_tasks.tools.dockerignore`) say which of it is sent;
- if ``.git/config`` is sent and holds a credential, the build is refused (exit 2) before
  anything is logged in to, built or pushed; any other part of ``.git`` that is sent is a warning
  (history and hooks in an image are rarely meant).

A credential is what this file would hand to anyone who reads it: an ``extraheader`` whose value
is an ``Authorization`` header, a URL with a password (``https://user:password@host``, also in a
``[url "..."]`` section name), or a GitHub token (``ghp_``/``ghs_``/``github_pat_``...). The file is
scanned as text, comments included, because the bytes ship as they are. Never printed: the error
names the kind of credential, not its value.
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import TYPE_CHECKING

from dex_tasks.errors import CredentialInContextError, UsageError
from dex_tasks.tools import dockerignore

if TYPE_CHECKING:
    from pathlib import Path

_EXTRAHEADER = re.compile(r"^\s*extraheader\s*=\s*\"?\s*authorization\s*:", re.IGNORECASE | re.MULTILINE)
# userinfo with a password: scheme://user:password@ (the password may be empty only after a colon
# that someone typed on purpose, e.g. a token as the user name: https://TOKEN:@host).
_URL_PASSWORD = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s/@\"'\]]+:[^\s/@\"'\]]*@")
# GitHub's token formats (https://github.blog/2021-04-05-behind-githubs-new-authentication-token-formats/).
_GITHUB_TOKEN = re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})")
MAX_CONFIG_BYTES = 1024 * 1024  # a .git/config is a few kB; a bigger one is read only this far


@dataclasses.dataclass(frozen=True, kw_only=True)
class Verdict:
    """What of ``.git`` the build would send; ``ignore_file`` is the ignore file docker reads."""

    sent: tuple[str, ...]  # paths under the context's .git that are not excluded (top level only)
    ignore_file: Path | None


def credentials_in(text: str) -> list[str]:
    """The kinds of credential ``text`` (a git config file) holds, never the values."""
    found = []
    if _EXTRAHEADER.search(text):
        found.append("an http extraheader with an Authorization header")
    if _URL_PASSWORD.search(text):
        found.append("a URL with a password (user:password@)")
    if _GITHUB_TOKEN.search(text):
        found.append("a GitHub token")
    return found


def check(context: Path, dockerfile: Path, *, buildkit: bool) -> Verdict:
    """Refuse a context that would send a credential in ``.git/config``; say what of ``.git`` is sent.

    Raises :class:`CredentialInContextError` (exit 2). Reads files only, starts nothing.
    """
    git_dir = context / ".git"
    if not git_dir.exists() and not git_dir.is_symlink():
        return Verdict(sent=(), ignore_file=None)
    matcher, ignore_file = dockerignore.for_build(context, dockerfile, buildkit=buildkit)
    if not git_dir.is_dir():
        # A worktree or submodule: `.git` is a file naming the real git directory, which is
        # outside the context. It still ships a path, so it is named in the warning.
        return Verdict(sent=() if matcher.excluded(".git") else (".git",), ignore_file=ignore_file)
    # ".git" itself, and each entry one level down: a "!.git/config" after ".git" re-includes one.
    candidates = [".git", *sorted(f".git/{entry.name}" for entry in _entries(git_dir))]
    sent = tuple(path for path in candidates if not matcher.excluded(path))
    if ".git/config" in sent:
        config = git_dir / "config"
        kinds = credentials_in(_read(config)) if config.is_file() else []
        if kinds:
            where = f"{ignore_file.name} does not exclude it" if ignore_file else "there is no .dockerignore"
            raise CredentialInContextError(
                f"the build context {context} would send .git/config to the builder ({where}), and it "
                f"holds {' and '.join(kinds)}: add .git to .dockerignore, or check out without it "
                "(actions/checkout persist-credentials: false); nothing was built"
            )
    return Verdict(sent=sent, ignore_file=ignore_file)


def _entries(directory: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(directory) as it:
            return list(it)
    except OSError as exc:
        raise UsageError(f"cannot read {directory}: {exc.strerror}") from None


def _read(path: Path) -> str:
    try:
        with path.open("rb") as handle:
            return handle.read(MAX_CONFIG_BYTES).decode("utf-8", "replace")
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
