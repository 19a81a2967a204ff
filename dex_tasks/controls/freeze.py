"""Freeze windows: ``[tool.dex.freeze] prod = ["Fri 16:00-Mon 08:00 Europe/Berlin", ...]``.

Two forms, each ending with an IANA time zone (``zoneinfo``; ``UTC`` works too):

* weekly, ``<Day> HH:MM-<Day> HH:MM <Zone>`` (days ``Mon`` .. ``Sun``): every week, from the first
  wall-clock time to the second; it may wrap over the week's end (``Fri 16:00-Mon 08:00``);
* dated, ``<start>/<end> <Zone>`` with ISO 8601 local times without offset
  (``2026-12-24T00:00/2026-12-27T00:00 Europe/Berlin``): once, start included, end excluded.

Times are local wall-clock times in that zone, so ``Fri 16:00`` is 16:00 in Berlin in summer and in
winter alike (DST is the zone's business). A weekly edge is compared as wall-clock time, so an
edge inside a spring-forward gap takes effect at the first wall-clock time after it; a dated
edge inside a gap or a repeated hour is read with the offset before the change (``fold=0``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable
    from zoneinfo import ZoneInfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WEEK_MINUTES = 7 * 24 * 60
_WEEKLY_RE = re.compile(
    r"(?P<d1>[A-Za-z]{3}) (?P<h1>[0-9]{1,2}):(?P<m1>[0-9]{2})-(?P<d2>[A-Za-z]{3}) "
    r"(?P<h2>[0-9]{1,2}):(?P<m2>[0-9]{2}) (?P<zone>\S+)"
)
_DATED_RE = re.compile(r"(?P<start>[0-9][0-9T:.-]*)/(?P<end>[0-9][0-9T:.-]*) (?P<zone>\S+)")
# An IANA key: no leading '/', no '..' (ZoneInfo would read a file by that path).
_ZONE_RE = re.compile(r"[A-Za-z0-9_+-]+(?:/[A-Za-z0-9_+-]+)*")
EXAMPLE = '"Fri 16:00-Mon 08:00 Europe/Berlin" or "2026-12-24T00:00/2026-12-27T00:00 Europe/Berlin"'


@dataclasses.dataclass(frozen=True, kw_only=True)
class Window:
    text: str
    zone: ZoneInfo
    # weekly: minutes since Monday 00:00 local; dated: None
    week_start: int | None = None
    week_end: int | None = None
    # dated: aware instants
    start: dt.datetime | None = None
    end: dt.datetime | None = None

    def until(self, now: dt.datetime) -> dt.datetime | None:
        """When the window that covers ``now`` ends (aware), or None when it does not cover ``now``."""
        if self.start is not None and self.end is not None:
            return self.end if self.start <= now < self.end else None
        # One of the two forms is set: parse_window makes either.
        assert self.week_start is not None  # noqa: S101
        assert self.week_end is not None  # noqa: S101
        local = now.astimezone(self.zone).replace(tzinfo=None)
        minute = local.weekday() * 1440 + local.hour * 60 + local.minute
        start, end = self.week_start, self.week_end
        inside = start <= minute < end if start < end else (minute >= start or minute < end)
        if not inside:
            return None
        # Wall-clock arithmetic on the naive local time, then the zone: right across DST changes.
        ahead = (end - minute) % WEEK_MINUTES
        naive_end = local.replace(second=0, microsecond=0) + dt.timedelta(minutes=ahead)
        return naive_end.replace(tzinfo=self.zone).astimezone(dt.UTC)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Frozen:
    window: str
    until: dt.datetime


def _zone(name: str) -> ZoneInfo:
    import zoneinfo  # noqa: PLC0415 - only configs with freeze windows pay for it

    if not _ZONE_RE.fullmatch(name):
        raise ValueError(f"unknown time zone {name!r}")
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(
            f"unknown time zone {name!r} (an IANA name such as Europe/Berlin; on Windows install tzdata)"
        ) from None


def _minutes(day: str, hour: str, minute: str) -> int:
    index = DAYS.index(day.lower()) if day.lower() in DAYS else -1
    if index < 0:
        raise ValueError(f"unknown day {day!r} (use Mon, Tue, Wed, Thu, Fri, Sat, Sun)")
    h, m = int(hour), int(minute)
    if h > 23 or m > 59:
        raise ValueError(f"invalid time {hour}:{minute} (00:00 to 23:59)")
    return index * 1440 + h * 60 + m


def _local(text: str, zone: ZoneInfo) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 local time (e.g. 2026-12-24T00:00)") from None
    if value.tzinfo is not None:
        raise ValueError(f"{text!r} has an offset: give the local time, the zone follows the range")
    try:
        utc = value.replace(tzinfo=zone).astimezone(dt.UTC)
    except OverflowError:  # 9999-12-31T23:00 west of UTC is in the year 10000
        raise ValueError(f"{text!r} is out of range in {zone.key}") from None
    return utc


def parse_window(text: str) -> Window:
    """One window; ``ValueError`` saying what is wrong (config turns it into exit 2)."""
    weekly = _WEEKLY_RE.fullmatch(text.strip())
    if weekly:
        zone = _zone(weekly["zone"])
        start = _minutes(weekly["d1"], weekly["h1"], weekly["m1"])
        end = _minutes(weekly["d2"], weekly["h2"], weekly["m2"])
        if start == end:
            raise ValueError(f"{text!r} starts where it ends (a whole week? say so with two windows)")
        return Window(text=text, zone=zone, week_start=start, week_end=end)
    dated = _DATED_RE.fullmatch(text.strip())
    if dated:
        zone = _zone(dated["zone"])
        start_at, end_at = _local(dated["start"], zone), _local(dated["end"], zone)
        if end_at <= start_at:
            raise ValueError(f"{text!r} ends before it starts")
        return Window(text=text, zone=zone, start=start_at, end=end_at)
    raise ValueError(f"{text!r} is not a freeze window: use {EXAMPLE}")


def frozen(windows: Iterable[str], now: dt.datetime) -> Frozen | None:
    """The window that freezes ``now`` (the one ending last, if several do), else None."""
    found: Frozen | None = None
    for text in windows:
        until = parse_window(text).until(now)
        if until is not None and (found is None or until > found.until):
            found = Frozen(window=text, until=until)
    return found
