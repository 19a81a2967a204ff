"""Durations (``30s``, ``15m``, ``2h``, ``7d``) and the clock, which ``DEX_NOW`` stands in for.

``DEX_NOW`` (ISO 8601, e.g. ``2026-12-24T10:00:00+01:00``) lets tests and dry runs ask "would
this be frozen / soaked / expired at ...". A time without an offset is UTC, so a value means the
same instant on every machine, whatever its local zone. Every instant leaves here aware.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from typing import TYPE_CHECKING

from dex_tasks.errors import UsageError

if TYPE_CHECKING:
    from collections.abc import Mapping

NOW_ENV = "DEX_NOW"
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# Ten years: a lock, soak or look-back longer than that is a typo, and timedelta overflows at
# about 2.7 million years, a traceback we must not show.
MAX_SECONDS = 3650 * 86400
_DURATION_RE = re.compile(r"([0-9]{1,9})([smhd])")


def parse_duration(text: str) -> dt.timedelta:
    """``30s``, ``15m``, ``2h``, ``7d`` -> timedelta; anything else is :class:`UsageError` (exit 2)."""
    match = _DURATION_RE.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise UsageError(f"invalid duration {text!r}: use a whole number and s, m, h or d (30s, 15m, 2h, 7d)")
    seconds = int(match.group(1)) * UNITS[match.group(2)]
    if seconds <= 0:
        raise UsageError(f"invalid duration {text!r}: must be more than 0")
    if seconds > MAX_SECONDS:
        raise UsageError(f"invalid duration {text!r}: at most 3650d")
    return dt.timedelta(seconds=seconds)


def seconds_from_env(name: str, default: float, env: Mapping[str, str] | None = None) -> float:
    """A deadline in seconds from the variable ``name`` (``default`` when unset): a positive number
    below a day, else :class:`UsageError` naming the variable (``nan`` and ``inf`` included)."""
    raw = (os.environ if env is None else env).get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not 0 < value < 86400:
        raise UsageError(f"{name}={raw!r}: expected a number of seconds, e.g. 60")
    return value


def now() -> dt.datetime:
    """The current instant (aware, UTC), or ``DEX_NOW`` when set (no offset given: UTC)."""
    raw = os.environ.get(NOW_ENV, "").strip()
    if not raw:
        return dt.datetime.now(dt.UTC)
    return parse_instant(raw, what=NOW_ENV)


# Instants from outside (DEX_NOW, lock trailers, commit dates, tool answers) stay in these years:
# a sum or difference with any duration here (at most MAX_SECONDS) then stays inside datetime's
# years 1 to 9999, where an edge value ("0001-01-01T00:00+01:00", DEX_NOW=9999-12-31T23:59Z and a
# 7d lock, a commit dated 9999-12-31T11:59-12:00) was an OverflowError: exit 70 for bad input.
MIN_YEAR, MAX_YEAR = 1900, 9000


def instant(raw: object, *, naive_is_utc: bool = True) -> dt.datetime | None:
    """An ISO 8601 instant as aware UTC, or None: not a string, not a time (git prints year
    10000 as ``10000-01-01``, which is none), without an offset unless ``naive_is_utc``, or
    outside :data:`MIN_YEAR` to :data:`MAX_YEAR`."""
    if not isinstance(raw, str) or not raw or len(raw) > 64:
        return None
    try:
        value = dt.datetime.fromisoformat(raw)
        if value.tzinfo is None:
            if not naive_is_utc:
                return None
            value = value.replace(tzinfo=dt.UTC)
        value = value.astimezone(dt.UTC)
    except (ValueError, OverflowError):
        return None
    return value if MIN_YEAR <= value.year <= MAX_YEAR else None


def parse_instant(raw: str, *, what: str = "time") -> dt.datetime:
    """An ISO 8601 instant (``Z`` and offsets allowed; none: UTC), or :class:`UsageError` naming ``what``."""
    value = instant(raw)
    if value is None:
        example = "2026-12-24T10:00:00+01:00"
        try:
            dt.datetime.fromisoformat(raw)
        except (ValueError, TypeError):
            raise UsageError(f"{what}: {raw!r} is not an ISO 8601 time (e.g. {example})") from None
        raise UsageError(f"{what}: {raw!r} is outside the years {MIN_YEAR} to {MAX_YEAR}")
    return value


def iso(value: dt.datetime) -> str:
    """``2026-12-24T09:00:00Z``: UTC, whole seconds (how locks and --json write instants)."""
    return value.astimezone(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def format_duration(seconds: float | None) -> str:
    """``95`` -> ``1m35s``; None -> ``-`` (the compact form of the metrics tables)."""
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


def describe(delta: dt.timedelta) -> str:
    """``1h 5m``, ``14m 30s``, ``45s``: a short human duration (rounded up to the second)."""
    total = max(0, int(-(-delta.total_seconds() // 1)))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [f"{n}{unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "m"), (seconds, "s")) if n]
    return " ".join(parts[:2]) or "0s"
