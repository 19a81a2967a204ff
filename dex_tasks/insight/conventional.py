"""A small Conventional Commits parser (https://www.conventionalcommits.org/en/v1.0.0/).

``type(scope)!: description``:

* ``type`` is a word (letters, digits, ``-``), compared lower-cased (``Feat`` is ``feat``);
* ``(scope)`` is optional and holds no parentheses;
* ``!`` before the colon, or a ``BREAKING CHANGE:`` / ``BREAKING-CHANGE:`` footer in the body,
  marks a breaking change;
* a subject that does not follow the form has type ``None`` (release notes list it as "other").

GitHub's PR numbers: a squash merge ends the subject with `` (#123)``; a merge commit's subject
is ``Merge pull request #123 from owner/branch`` and its body's first line is the PR title,
which then becomes the subject (itself parsed as above). Pure functions, no I/O.
"""

from __future__ import annotations

import dataclasses
import re

_HEADER_RE = re.compile(
    r"(?P<type>[A-Za-z][A-Za-z0-9-]*)(?:\((?P<scope>[^()\r\n]*)\))?(?P<bang>!)?: (?P<desc>.*)"
)
_PR_SUFFIX_RE = re.compile(r"\s*\(#(?P<pr>[1-9][0-9]{0,9})\)\s*$")
_MERGE_RE = re.compile(r"Merge pull request #(?P<pr>[1-9][0-9]{0,9}) from \S+")
_BREAKING_FOOTER_RE = re.compile(r"^BREAKING[ -]CHANGE: ", re.MULTILINE)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Parsed:
    type: str | None  # None: not a conventional commit
    scope: str | None
    subject: str  # the description (or the whole subject), without the `(#123)` suffix
    breaking: bool
    pr: int | None


def parse(subject: str, body: str = "") -> Parsed:
    """Parse one commit's subject line and body (see the module docstring)."""
    subject = subject.strip()
    pr: int | None = None
    merge = _MERGE_RE.fullmatch(subject)
    if merge:
        pr = int(merge.group("pr"))
        title = next((line.strip() for line in body.splitlines() if line.strip()), "")
        subject = title or subject
        body = "\n".join(body.splitlines()[1:]) if title else body
    suffix = _PR_SUFFIX_RE.search(subject)
    if suffix:
        pr = pr if pr is not None else int(suffix.group("pr"))
        subject = subject[: suffix.start()].rstrip()
    footer = bool(_BREAKING_FOOTER_RE.search(body))
    header = _HEADER_RE.fullmatch(subject)
    if header is None:
        return Parsed(type=None, scope=None, subject=subject, breaking=footer, pr=pr)
    scope = header.group("scope")
    return Parsed(
        type=header.group("type").lower(),
        scope=scope.strip() or None if scope is not None else None,
        subject=header.group("desc").strip(),
        breaking=footer or header.group("bang") is not None,
        pr=pr,
    )


def group(parsed: Parsed) -> str:
    """``breaking``, ``feat``, ``fix`` or ``other``: the release-notes section of a commit."""
    if parsed.breaking:
        return "breaking"
    if parsed.type in {"feat", "fix"}:
        return parsed.type
    return "other"
