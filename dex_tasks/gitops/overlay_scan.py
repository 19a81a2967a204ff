"""The line scan: an overlay's ``newTag`` without a YAML parser, for the common layout.

Apart from :mod:`dex_tasks.gitops.overlay` so that reading a tag imports no ruamel (about 80 ms of
a process's start-up): ``history`` reads every version of an overlay, and ``history --limit 10``
is a short process, so the parser is imported only for a version the scan declines
(:func:`read_tag_fast` asks :func:`dex_tasks.gitops.overlay.read_tag` then) or one that pins a
digest.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from typing import Any

from dex_tasks.errors import UsageError

DEFAULT_PATH = "kustomization.yaml"
MAX_OVERLAY_BYTES = 1024 * 1024
"""Overlays larger than this are refused before ruamel sees them (exit 2). A real kustomization is
a few kilobytes; ruamel's pure-Python parser needs minutes for a 50 MB one."""


def check_size(text: str, path: str) -> None:
    """Refuse (exit 2) a text over :data:`MAX_OVERLAY_BYTES`, before anything parses it."""
    # Characters first: no UTF-8 character is shorter than one byte, so only a text that could be
    # over the limit is encoded to count its bytes.
    size = len(text)
    if size * 4 > MAX_OVERLAY_BYTES:
        size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_OVERLAY_BYTES:
        raise UsageError(
            f"{path}: {size} bytes is over the {MAX_OVERLAY_BYTES // (1024 * 1024)} MiB limit for a "
            "kustomization; nothing was parsed or changed"
        )


def read_tag_fast(text: str, image: str, *, path: str = DEFAULT_PATH) -> str | None:
    """:func:`~dex_tasks.gitops.overlay.read_tag`, by a line scan when the file is in the common
    layout (see :func:`scan_tag`).

    Same result, same refusals: a file the scan does not fully understand goes to the parser.
    ``history`` reads every version of an overlay with it; a ruamel parse costs milliseconds.
    """
    check_size(text, path)
    try:
        return scan_tag(text, image)
    except Declined:
        # Imported here: the parser, and ruamel with it, only for a file the scan declines.
        from dex_tasks.gitops import overlay  # noqa: PLC0415

        return overlay.read_tag(text, image, path=path)


# --- the line scan -------------------------------------------------------------------------------
#
# A strict subset of YAML, read line by line: block mappings and sequences, plain scalars of a
# safe alphabet and quoted ones without escapes, comments, one leading `---`. The subset is chosen
# so that a file inside it is valid YAML whose structure is plain to see; the scan then gives
# exactly what :func:`read_tag` gives. Anything outside (tabs, CR, non-ASCII, flow collections,
# anchors, tags, block or multi-line scalars, keys YAML would resolve to non-strings, duplicate
# keys, two documents, timestamps a loader could refuse) and anything :func:`read_tag` refuses
# (an `images` that is not a list, a non-mapping or duplicate entry, a digest, a non-scalar
# newTag) raises :class:`Declined`, and the caller asks the full parser, which answers or refuses
# with its own message. tests/unit/test_overlay_scan.py holds the two to the same answers.


class Declined(Exception):
    """The line scan does not answer for this text; :func:`read_tag` does."""


_OUTSIDE = re.compile(r"[^\x20-\x7e\n]")  # tabs, CR, control characters, anything not ASCII
_KEY = r"[A-Za-z_][A-Za-z0-9_./-]*"
_WORD = r"[A-Za-z0-9_./](?:[A-Za-z0-9_./+@,:=-]*[A-Za-z0-9_./+@,=-])?"  # never ends with `:`
# A value: quoted without escapes, or plain words joined by single spaces (none ends with `:`,
# none starts with `#`, so `: ` and ` #` never occur inside); then an optional comment.
_VALUE = rf"""(?:'(?P<single>[^']+)'|"(?P<double>[^"\\]+)"|(?P<plain>{_WORD}(?: {_WORD})*))"""
_TAIL = r" *(?: #.*)?"
_MAP_LINE = re.compile(rf"(?P<key>{_KEY}):(?:{_TAIL}| +{_VALUE}{_TAIL})")
_SCALAR_LINE = re.compile(rf"{_VALUE}{_TAIL}")
# Keys a YAML loader resolves to booleans or null (so `true:` and `True:` would be duplicates).
_RESERVED_KEYS = frozenset({"true", "false", "yes", "no", "on", "off", "y", "n", "null"})
# A loader builds numbers and dates from plain scalars that start so, and refuses some of them
# (`0o_`, `2026-13-45`): those are left to it, except integers and dotted numbers (`1.25.3`).
_NUMBER_LIKE = re.compile(r"[0-9_]|\.[0-9_]")  # `._` is a float to ruamel (`\.[0-9_]+`)
# sys.get_int_max_str_digits(): the parser builds ints with int(), which refuses longer ones.
_INT_DIGITS = sys.get_int_max_str_digits() or sys.maxsize
_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)*")


@dataclasses.dataclass(frozen=True)
class _Scalar:
    text: str


_NULL = _Scalar("")  # `key:` with nothing after it: null (its node's text is "")
_Tree = dict[str, Any] | list[Any] | _Scalar


def scan_tag(text: str, image: str) -> str | None:
    """The ``newTag`` of ``images[name=image]`` for a text in the common layout, by a line scan.

    Raises :class:`Declined` when the text is outside the subset it reads (see above); never
    gives an answer :func:`read_tag` would not give.
    """
    if not text.isascii() or _OUTSIDE.search(text):
        raise Declined
    lines = _content_lines(text)
    if not lines or lines[0][0] != 0:
        raise Declined
    root, end = _block(lines, 0, 0)
    if end != len(lines) or not isinstance(root, dict):
        raise Declined
    images = root.get("images", _NULL)
    if images is _NULL:
        return None
    if not isinstance(images, list):
        raise Declined
    entries = []
    for item in images:
        if not isinstance(item, dict):
            raise Declined
        name = item.get("name")
        if isinstance(name, _Scalar) and name is not _NULL and name.text == image:
            entries.append(item)
    if len(entries) > 1:
        raise Declined
    if not entries:
        return None
    entry = entries[0]
    if "digest" in entry:
        raise Declined
    tag = entry.get("newTag", _NULL)
    if not isinstance(tag, _Scalar):
        raise Declined
    return None if tag is _NULL else tag.text


def _content_lines(text: str) -> list[tuple[int, str]]:
    """(indent, content) of every line that is not blank or a comment."""
    found: list[tuple[int, str]] = []
    started = False
    for line in text.split("\n"):
        content = line.lstrip(" ")
        if not content or content.startswith("#"):
            continue
        if line.startswith(("---", "...")):
            if line.rstrip(" ") == "---" and not found and not started:
                started = True
                continue  # one document start marker before the document
            raise Declined
        found.append((len(line) - len(content), content.rstrip(" ")))
    return found


def _is_entry(content: str) -> bool:
    return content == "-" or content.startswith("- ")


def _block(lines: list[tuple[int, str]], at: int, indent: int) -> tuple[_Tree, int]:
    """The mapping or sequence whose first line is ``lines[at]``, at ``indent``; and where it ends."""
    if lines[at][0] != indent:
        raise Declined
    if _is_entry(lines[at][1]):
        return _sequence(lines, at, indent)
    return _mapping(lines, at, indent, lines[at][1])


def _scanned_scalar(match: re.Match[str]) -> _Scalar:
    value = match.group("single") or match.group("double")
    if value is None:
        value = match.group("plain")
        if _NUMBER_LIKE.match(value) and not _DECIMAL.fullmatch(value):
            raise Declined
        if len(value) > _INT_DIGITS and value.isdigit():
            raise Declined  # Python refuses int() of it (ValueError), so read_tag refuses the file
    return _Scalar(value)


def _after_scalar(lines: list[tuple[int, str]], at: int, indent: int) -> None:
    # A deeper line after a scalar would continue it (a multi-line plain scalar) or be an error.
    if at < len(lines) and lines[at][0] > indent:
        raise Declined


def _mapping(lines: list[tuple[int, str]], at: int, indent: int, first: str) -> tuple[dict[str, Any], int]:
    """A block mapping at ``indent``; ``first`` is its first line's content (after a ``- ``)."""
    result: dict[str, Any] = {}
    content = first
    while True:
        match = _MAP_LINE.fullmatch(content)
        if match is None:
            raise Declined
        key = match.group("key")
        if key in result or key.lower() in _RESERVED_KEYS:
            raise Declined
        at += 1
        if match.group("single") or match.group("double") or match.group("plain"):
            result[key] = _scanned_scalar(match)
            _after_scalar(lines, at, indent)
        elif at < len(lines) and lines[at][0] > indent:
            result[key], at = _block(lines, at, lines[at][0])
        elif at < len(lines) and lines[at][0] == indent and _is_entry(lines[at][1]):
            result[key], at = _sequence(lines, at, indent)  # `key:` then `- item` at the key's column
        else:
            result[key] = _NULL
        if at == len(lines) or lines[at][0] < indent:
            return result, at
        if lines[at][0] > indent or _is_entry(lines[at][1]):
            raise Declined
        content = lines[at][1]


def _sequence(lines: list[tuple[int, str]], at: int, indent: int) -> tuple[list[Any], int]:
    result: list[Any] = []
    while at < len(lines) and lines[at][0] == indent and _is_entry(lines[at][1]):
        content = lines[at][1]
        rest = content[1:].lstrip(" ")
        if not rest or rest.startswith(("#", "-")):
            raise Declined  # `-` alone (the item on the lines below) or a nested `- -`
        column = indent + len(content) - len(rest)
        item: _Tree
        if _MAP_LINE.fullmatch(rest):
            item, at = _mapping(lines, at, column, rest)
        elif (match := _SCALAR_LINE.fullmatch(rest)) is not None:
            item = _scanned_scalar(match)
            at += 1
            _after_scalar(lines, at, indent)
        else:
            raise Declined
        result.append(item)
    if at < len(lines) and lines[at][0] > indent:
        raise Declined
    return result, at
