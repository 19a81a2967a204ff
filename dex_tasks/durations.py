"""Durations (``30s``, ``15m``, ``2h``, ``7d``) and the clock (``DEX_NOW`` stands in for it).

A leaf module (standard library and :mod:`dex_tasks.errors` only): metrics, freeze windows, soak
times and lock expiry all read durations and "now" the same way, so a test that sets ``DEX_NOW``
moves every one of them at once.
"""

from __future__ import annotations

import datetime as dt
import os
import re

from dex_tasks.errors import UsageError

NOW_ENV = "DEX_NOW"
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# Ten years: far beyond any window, soak or lock, and small enough that datetime arithmetic
# (which overflows past year 9999) cannot fail on what this returns.
MAX_SECONDS = 10 * 366 * 86400
_DURATION_RE = re.compile(r"([0-9]{1,9})([smhd])")


def parse_duration(text: str) -> dt.timedelta:
    """``30s``, ``15m``, ``2h``, ``7d`` -> a positive timedelta; anything else is UsageError (exit 2).

    One number and one unit, nothing else: no spaces, signs, fractions or compound forms
    (``1h30m``), so a typo cannot silently mean something else.
    """
    match = _DURATION_RE.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise UsageError(
            f"invalid duration {text!r}: expected a whole number and a unit s, m, h or d "
            "(e.g. 30s, 15m, 2h, 7d)"
        )
    seconds = int(match.group(1)) * UNITS[match.group(2)]
    if seconds <= 0:
        raise UsageError(f"invalid duration {text!r}: must be more than zero")
    if seconds > MAX_SECONDS:
        raise UsageError(f"invalid duration {text!r}: at most ten years")
    return dt.timedelta(seconds=seconds)


def format_duration(seconds: float | None) -> str:
    """``95`` -> ``1m35s``; None -> ``-`` (for tables)."""
    if seconds is None:
        return "-"
    total = round(seconds)
    if total < 60:
        return f"{total}s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        amount, total = divmod(total, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return "".join(parts[:2])


def parse_instant(text: str, *, what: str = "time") -> dt.datetime:
    """An ISO 8601 date-time (``Z`` or an offset; none means UTC) as an aware datetime."""
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except (ValueError, AttributeError):
        raise UsageError(f"invalid {what} {text!r}: expected ISO 8601, e.g. 2026-01-31T12:00:00Z") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value


def now() -> dt.datetime:
    """The current time, aware (UTC); ``DEX_NOW`` (ISO 8601) replaces it, for tests and replays."""
    fixed = os.environ.get(NOW_ENV, "").strip()
    if fixed:
        return parse_instant(fixed, what=NOW_ENV)
    return dt.datetime.now(tz=dt.UTC)
