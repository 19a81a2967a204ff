"""argparse ``type=`` helpers shared by the tasks: numbers and text checked where they are parsed.

A bad value is an ``ArgumentTypeError``, which the CLI's parser turns into one line and exit 2
before the task runs. ``float()`` accepts ``nan``, ``inf`` and ``1e999``, and ``int()`` any
number of digits: a wait of ``nan`` seconds never ends (every comparison with it is false), and
``time.sleep(1e300)`` raises OverflowError, so every number is bounded on both sides.
"""

from __future__ import annotations

import argparse
import math
from typing import TYPE_CHECKING

from dex_tasks._untrusted import control_character

if TYPE_CHECKING:
    from collections.abc import Callable

MAX_SECONDS = 7 * 24 * 3600.0
"""A week: longer than any wait a task is asked for, far below what ``time.sleep`` overflows at."""
MAX_COUNT = 100_000
"""Attempts: more than anybody waits for, and the loops stay bounded by it."""


def _number(text: str, convert: Callable[[str], float], kind: str) -> float:
    try:
        value = convert(text.strip())
    except (ValueError, OverflowError):
        raise argparse.ArgumentTypeError(f"expected {kind}, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def seconds(text: str) -> float:
    """A positive, finite number of seconds, at most :data:`MAX_SECONDS` (``--timeout``)."""
    value = _number(text, float, "a number of seconds")
    if not 0 < value <= MAX_SECONDS:
        raise argparse.ArgumentTypeError(f"expected seconds above 0, at most {MAX_SECONDS:g}, got {text!r}")
    return value


def pause(text: str) -> float:
    """A finite number of seconds from 0 to :data:`MAX_SECONDS` (``--interval``: 0 is no pause)."""
    value = _number(text, float, "a number of seconds")
    if not 0 <= value <= MAX_SECONDS:
        raise argparse.ArgumentTypeError(f"expected seconds from 0 to {MAX_SECONDS:g}, got {text!r}")
    return value


def count(text: str) -> int:
    """A whole number from 1 to :data:`MAX_COUNT` (``--attempts``)."""
    value = int(_number(text, int, "a whole number"))
    if not 1 <= value <= MAX_COUNT:
        raise argparse.ArgumentTypeError(f"expected a whole number from 1 to {MAX_COUNT}, got {text!r}")
    return value


def text(value: str) -> str:
    """Text without control characters: a path, an image reference, a URL, a kube context.

    Such a value reaches an argv or a path, where NUL is ``ValueError: embedded null byte`` and a
    newline or escape sequence is never what was meant.
    """
    bad = control_character(value)
    if bad is not None:
        raise argparse.ArgumentTypeError(f"control character {bad} is not allowed in {value[:60]!r}")
    return value


def value(text_: str) -> str:
    """:func:`text` that is not empty or blank: a URL, a context, a path or an app name given as
    ``""`` (an unset ``"$VAR"`` in a script) is refused, not taken for "not given" and its default."""
    if not text_.strip():
        raise argparse.ArgumentTypeError("expected a value, got an empty string")
    return text(text_)
