"""Checks for input that comes from outside: JSON other programs print, text users type or configure.

A leaf (it imports nothing of dex_tasks but the error tree), so every layer can use it: proc,
the tool wrappers, config, the tasks.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from dex_tasks.errors import UsageError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

# C0 controls, DEL and C1 controls (Unicode category Cc). NUL cannot reach an argv or a path at
# all (``ValueError: embedded null byte``); the others are never part of a name, tag, branch,
# path or URL that a person meant, and a newline would let one value pose as two lines of output.
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")


# What must not reach a terminal from text others wrote (a lock's trailers on origin): the controls
# above, and the bidirectional overrides and line separators that reorder or split what is shown.
_UNPRINTABLE_RE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


# The same for text of many lines (a table, a diff): line feeds and tabs are its layout.
_UNPRINTABLE_IN_TEXT_RE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def inert(text: str) -> str:
    """``text`` with every control character but line feed and tab as U+FFFD: what a task prints
    holds commit subjects, author names and lock reasons that anyone who can push wrote, and an
    escape sequence there would clear the screen, retitle the terminal or forge a line."""
    return _UNPRINTABLE_IN_TEXT_RE.sub("\ufffd", text)


def printable(value: str, limit: int) -> str:
    """``value`` for one line of output: each control character (an escape sequence, a carriage
    return, a bidi override) as U+FFFD, and at most ``limit`` characters (then an ellipsis)."""
    shown = _UNPRINTABLE_RE.sub("\ufffd", value)
    return shown if len(shown) <= limit else shown[: limit - 1] + "\u2026"


def parse_json(text: str | bytes, *, object_hook: Callable[[dict[str, Any]], Any] | None = None) -> Any:
    """``json.loads`` for a document nobody vouches for; every failure is a ``ValueError``.

    ``json`` recurses once per nesting level, so ``[[[[...`` 100,000 levels deep raises
    RecursionError (a RuntimeError, which callers catching ``JSONDecodeError`` miss and which
    would end as a traceback or a "bug"). Here it becomes a ValueError with a one-line message,
    like invalid JSON and undecodable bytes (``UnicodeDecodeError`` is a ValueError already).
    """
    try:
        return json.loads(text, object_hook=object_hook)
    except RecursionError:
        raise ValueError("JSON nested too deeply to parse") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON: {exc}") from None


def control_character(value: str) -> str | None:
    """The first control character in ``value`` as ``repr`` shows it (``'\\x00'``), or None."""
    found = _CONTROL_RE.search(value)
    return repr(found.group()) if found else None


def unencodable(value: str) -> bool:
    """Whether ``value`` holds bytes the environment gave that are not UTF-8 (Python keeps them as
    lone surrogates, which no header, URL, argv or HMAC key can encode: UnicodeEncodeError)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def unusable_secret(value: str) -> bool:
    """Whether ``value`` cannot be a header, URL or HMAC key: a control character (requests refuses
    the header and quotes it escaped, past the redaction) or bytes that are not UTF-8."""
    return control_character(value) is not None or unencodable(value)


def secret_from_env(environ: Mapping[str, str], name: str) -> str:
    """The variable ``name`` stripped ("" when unset), or UsageError (exit 2) naming it, never its
    value, when it holds a control character or bytes that are not UTF-8: a token pasted with a
    stray byte is refused where it is read, not a UnicodeEncodeError (exit 70) in the first request."""
    value = environ.get(name, "").strip()
    if value and unusable_secret(value):
        raise UsageError(f"{name} holds a control character or bytes that are not UTF-8")
    return value


def check_text(value: str, what: str) -> str:
    """``value`` unless it holds a control character; else UsageError (exit 2) naming ``what``."""
    bad = control_character(value)
    if bad is not None:
        raise UsageError(f"{what}: control character {bad} is not allowed (in {_shown(value)})")
    return value


def _shown(value: str, limit: int = 60) -> str:
    """``repr``, cut short: the error stays one readable line whatever was pasted."""
    return repr(value) if len(value) <= limit else repr(value[:limit]) + f"... ({len(value)} characters)"
