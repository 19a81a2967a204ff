"""Soak time: ``[tool.dex] soak = { stage = "15m" }`` - FROM must have run the tag this long.

Measured from the overlay commit that deployed it: the newest commit in FROM's overlay history
whose tag became the current one, by its committer date (the time it landed on the branch, which
a rebase or cherry-pick moves forward, never back). Pure: history entries and ``now`` in.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from typing import TYPE_CHECKING, Protocol

from dex_tasks import durations

if TYPE_CHECKING:
    from collections.abc import Iterable


class Entry(Protocol):
    """What soak needs of a history entry (:class:`dex_tasks.gitops.history.Deployment`)."""

    @property
    def tag(self) -> str: ...
    @property
    def date(self) -> str: ...
    @property
    def commit(self) -> str: ...


@dataclasses.dataclass(frozen=True, kw_only=True)
class Soak:
    required: dt.timedelta
    since: dt.datetime | None  # when FROM's overlay got the tag; None: not in its history
    commit: str | None
    remaining: dt.timedelta  # whole seconds, rounded up; zero when soaked

    @property
    def ok(self) -> bool:
        return self.since is not None and self.remaining <= dt.timedelta(0)

    @property
    def ran(self) -> dt.timedelta:
        """How long FROM has run the tag, up to ``required``: whole seconds, ``required - remaining``."""
        return self.required - self.remaining


def deployed_at(entries: Iterable[Entry], tag: str) -> tuple[dt.datetime, str] | None:
    """(committer date, commit) of the newest entry (entries come newest first) that set ``tag``."""
    for entry in entries:
        if entry.tag == tag:
            # A commit's date is anyone's to set (git prints year 10000 too): no time, no soak.
            when = durations.instant(entry.date)
            return (when, entry.commit) if when is not None else None
        # An older entry with the same tag is an earlier stint, not the current one.
    return None


def check(required: dt.timedelta, entries: Iterable[Entry], tag: str, now: dt.datetime) -> Soak:
    found = deployed_at(entries, tag)
    if found is None:
        return Soak(required=required, since=None, commit=None, remaining=required)
    since, commit = found
    # Whole seconds, rounded up (git's dates have whole seconds, the real clock does not): what
    # ran and what is left then add up to the soak, and a soak not over never has 0 s left. Each
    # rounded its own way they read "5m 1s of the 15m soak: 10m left", and status gave 599 s
    # beside "10m left", or 0 s while not soaked.
    remaining = dt.timedelta(seconds=math.ceil(max(0.0, (since + required - now).total_seconds())))
    return Soak(required=required, since=since, commit=commit, remaining=remaining)
