"""``.dockerignore`` as docker reads it: which paths of a build context are *not* sent to the builder.

A faithful port of the two pieces docker (the classic builder and BuildKit alike) uses:

- reading the file, moby/patternmatcher ``ignorefile.ReadAll``
  (https://github.com/moby/patternmatcher/blob/main/ignorefile/ignorefile.go): a UTF-8 BOM is
  dropped from the first line; a line *starting* with ``#`` is a comment (`` # x`` is a pattern);
  each line is trimmed; ``!`` negates; the pattern is cleaned like Go's ``filepath.Clean``
  (``.git/`` -> ``.git``, ``./a/../.git`` -> ``.git``) and a leading ``/`` is dropped, so ``/.git``
  is ``.git``: patterns are always relative to the context root.
- matching, ``PatternMatcher.MatchesOrParentMatches``
  (https://github.com/moby/patternmatcher/blob/main/patternmatcher.go): patterns apply in order and
  the last one that matches decides (a ``!`` pattern re-includes); a pattern that matches a parent
  directory matches everything under it (``.git`` excludes ``.git/config``). ``*`` and ``?`` never
  cross ``/``; ``**`` crosses any number of directories (``**/.git`` also matches ``.git``); ``[...]``
  is a character class; ``\\`` escapes the next character. ``.*`` matches ``.git`` (one component),
  not ``a/.git``.

Not ported: Windows' backslash separators (patterns here always use ``/``, as docker's docs say);
a character class the Go and Python regex engines read differently (``[[:alpha:]]``) is refused.
"""

from __future__ import annotations

import dataclasses
import posixpath
import re
from typing import TYPE_CHECKING

from dex_tasks.errors import UsageError

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

_BOM = "\ufeff"
# patternmatcher's shouldEscape: regex metacharacters that are not filepath.Match syntax.
_ESCAPE = frozenset(".+()|{}$")


def go_clean(path: str) -> str:
    """Go's ``filepath.Clean`` on a slash path (posixpath.normpath, but ``//x`` is ``/x`` as in Go)."""
    cleaned = posixpath.normpath(path)
    return "/" + cleaned.lstrip("/") if cleaned.startswith("//") else cleaned


def read_patterns(text: str) -> list[str]:
    """The patterns of a ``.dockerignore`` file, as ``ignorefile.ReadAll`` returns them."""
    patterns: list[str] = []
    for number, line in enumerate(text.splitlines()):
        raw = line.removeprefix(_BOM) if number == 0 else line
        if raw.startswith("#"):
            continue
        pattern = raw.strip()
        if not pattern:
            continue
        invert = pattern.startswith("!")
        if invert:
            pattern = pattern[1:].strip()
        if pattern:
            pattern = go_clean(pattern)
            if len(pattern) > 1 and pattern.startswith("/"):
                pattern = pattern[1:]
        patterns.append("!" + pattern if invert else pattern)
    return patterns


@dataclasses.dataclass(frozen=True)
class _Pattern:
    text: str  # the cleaned pattern, without "!"
    exclusion: bool  # a "!" pattern: re-includes what it matches
    kind: str  # exact | prefix | suffix | regexp, as patternmatcher's matchType
    regexp: re.Pattern[str] | None

    def match(self, path: str) -> bool:
        if self.kind == "exact":
            return path == self.text
        if self.kind == "prefix":  # "abc**": strip the trailing **
            return path.startswith(self.text[:-2])
        if self.kind == "suffix":  # "**abc": strip the leading **; "**/foo" also matches "foo"
            suffix = self.text[2:]
            return path.endswith(suffix) or (suffix.startswith("/") and path == suffix[1:])
        assert self.regexp is not None  # noqa: S101 - compile() sets it for the regexp kind
        return self.regexp.fullmatch(path) is not None


def _star(text: str, i: int, kind: str, *, first: bool) -> tuple[str, int, str]:
    """Upstream's ``*`` branch: the regex for the ``*`` or ``**`` at ``text[i - 1]``, where the scan
    goes on, and the match kind after it."""
    n = len(text)
    if i >= n or text[i] != "*":
        return "[^/]*", i, "regexp"  # "*": anything but "/"
    i += 1
    if i < n and text[i] == "/":  # treat "**/" as "**"
        i += 1
    if i >= n:  # "**" at the end: like .gitignore, everything below
        piece, kind = ("", "prefix") if kind == "exact" else (".*", "regexp")
    else:  # any number of directories, none included
        piece, kind = "(.*/)?", "regexp"
    return piece, i, "suffix" if first else kind


def _translate(text: str) -> tuple[str, str]:
    """patternmatcher's ``Pattern.compile`` with ``/`` as the separator: (regex, match kind)."""
    regex = ""
    kind = "exact"
    i = 0
    first = True  # upstream's loop counter is 0: the first token of the pattern
    while i < len(text):
        ch = text[i]
        i += 1
        if ch == "*":
            piece, i, kind = _star(text, i, kind, first=first)
            regex += piece
        elif ch == "?":
            regex += "[^/]"
            kind = "regexp"
        elif ch in _ESCAPE:
            regex += "\\" + ch
        elif ch == "\\":
            if i < len(text):  # escapes the next character
                regex += "\\" + text[i]
                i += 1
                kind = "regexp"
            else:
                regex += "\\\\"
        elif ch in "[]":
            regex += ch
            kind = "regexp"
        else:
            regex += ch
        first = False
    return regex, kind


def _compile(text: str, exclusion: bool, where: str) -> _Pattern:
    regex, kind = _translate(text)
    if kind != "regexp":
        return _Pattern(text=text, exclusion=exclusion, kind=kind, regexp=None)
    if "[:" in text:
        raise UsageError(f"{where}: pattern {text!r}: POSIX character classes are not supported here")
    try:
        compiled = re.compile(regex)
    except re.error as exc:
        raise UsageError(f"{where}: bad pattern {text!r} ({exc})") from None
    return _Pattern(text=text, exclusion=exclusion, kind="regexp", regexp=compiled)


class Matcher:
    """patternmatcher's ``PatternMatcher`` over the patterns of one file."""

    def __init__(self, patterns: Iterable[str], *, where: str = ".dockerignore") -> None:
        self._patterns: list[_Pattern] = []
        for raw in patterns:
            pattern = raw.strip()
            if not pattern:
                continue
            pattern = go_clean(pattern)
            exclusion = pattern.startswith("!")
            if exclusion:
                if len(pattern) == 1:
                    raise UsageError(f'{where}: illegal exclusion pattern: "!"')
                pattern = pattern[1:]
            self._patterns.append(_compile(pattern, exclusion, where))

    @property
    def has_exclusions(self) -> bool:
        return any(p.exclusion for p in self._patterns)

    def excluded(self, path: str) -> bool:
        """``MatchesOrParentMatches``: is ``path`` (relative to the context, ``/``-separated) left out?"""
        matched = False
        parent = posixpath.dirname(path) or "."
        parents = parent.split("/")
        for pattern in self._patterns:
            # An inclusion once matched, or an exclusion not yet matched, cannot change the result.
            if pattern.exclusion != matched:
                continue
            hit = pattern.match(path)
            if not hit and parent != ".":
                hit = any(pattern.match("/".join(parents[: i + 1])) for i in range(len(parents)))
            if hit:
                matched = not pattern.exclusion
        return matched


def for_build(context: Path, dockerfile: Path, *, buildkit: bool) -> tuple[Matcher, Path | None]:
    """The matcher docker uses for this build, and the file it came from (None: no ignore file).

    BuildKit first looks for ``<Dockerfile name>.dockerignore`` beside the Dockerfile, which then
    replaces the context's ``.dockerignore``
    (https://docs.docker.com/build/concepts/context/#filename-and-location); the classic builder
    reads only ``<context>/.dockerignore``.
    """
    candidates = [dockerfile.with_name(dockerfile.name + ".dockerignore")] if buildkit else []
    candidates.append(context / ".dockerignore")
    for path in candidates:
        if path.is_file():
            try:
                text = path.read_bytes().decode("utf-8", "replace")
            except OSError as exc:
                raise UsageError(f"cannot read {path}: {exc.strerror}") from None
            return Matcher(read_patterns(text), where=str(path)), path
    return Matcher(()), None
