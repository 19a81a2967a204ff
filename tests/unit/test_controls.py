"""Durations, the clock (DEX_NOW), freeze windows (weekly, dated, DST) and soak: pure logic."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import TYPE_CHECKING

import pytest

from dex_tasks import durations
from dex_tasks.config import load
from dex_tasks.controls import freeze, soak
from dex_tasks.errors import ConfigError, UsageError
from dex_tasks.gitops import locks

if TYPE_CHECKING:
    from pathlib import Path

UTC = dt.UTC


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("15m", 900), ("2h", 7200), ("7d", 604800), (" 1h ", 3600)]
)
def test_parse_duration(text: str, seconds: int) -> None:
    assert durations.parse_duration(text) == dt.timedelta(seconds=seconds)


@pytest.mark.parametrize(
    "text", ["", "15", "m", "1.5h", "-1h", "0s", "1w", "2 h", "1h30m", "3651d", "9" * 12 + "d"]
)
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(UsageError, match="invalid duration"):
        durations.parse_duration(text)


def test_now_honours_dex_now(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEX_NOW", "2026-12-24T10:00:00+01:00")
    assert durations.now() == dt.datetime(2026, 12, 24, 9, tzinfo=UTC)
    monkeypatch.setenv("DEX_NOW", "2026-12-24T10:00")  # no offset: UTC
    assert durations.now() == dt.datetime(2026, 12, 24, 10, tzinfo=UTC)
    monkeypatch.setenv("DEX_NOW", "2026-12-24T10:00:00Z")
    assert durations.iso(durations.now()) == "2026-12-24T10:00:00Z"
    monkeypatch.setenv("DEX_NOW", "christmas")
    with pytest.raises(UsageError, match="DEX_NOW: 'christmas' is not an ISO 8601 time"):
        durations.now()
    monkeypatch.delenv("DEX_NOW")
    assert durations.now().tzinfo is not None


def test_describe() -> None:
    assert durations.describe(dt.timedelta(minutes=14, seconds=30)) == "14m 30s"
    assert durations.describe(dt.timedelta(hours=1, minutes=5, seconds=3)) == "1h 5m"
    assert durations.describe(dt.timedelta(seconds=0.2)) == "1s"  # rounded up: never "0s left"
    assert durations.describe(dt.timedelta(0)) == "0s"


# -- freeze ------------------------------------------------------------------------------------

WEEKEND = "Fri 16:00-Mon 08:00 Europe/Berlin"
CHRISTMAS = "2026-12-24T00:00/2026-12-27T00:00 Europe/Berlin"


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).astimezone(UTC)


@pytest.mark.parametrize(
    ("now", "until"),
    [
        ("2026-07-03T15:59:00+02:00", None),  # Friday in summer (CEST), a minute before
        ("2026-07-03T16:00:00+02:00", "2026-07-06T08:00:00+02:00"),  # start included
        ("2026-07-05T12:00:00+02:00", "2026-07-06T08:00:00+02:00"),  # Sunday
        ("2026-07-06T07:59:59+02:00", "2026-07-06T08:00:00+02:00"),
        ("2026-07-06T08:00:00+02:00", None),  # end excluded
        ("2026-07-08T12:00:00+02:00", None),  # Wednesday
        ("2026-01-09T16:30:00+01:00", "2026-01-12T08:00:00+01:00"),  # winter (CET): same wall clock
        ("2026-07-03T14:30:00Z", "2026-07-06T08:00:00+02:00"),  # 16:30 in Berlin, given in UTC
    ],
)
def test_weekly_window_wraps_over_the_weekend(now: str, until: str | None) -> None:
    found = freeze.frozen([WEEKEND], at(now))
    assert (found.until if found else None) == (at(until) if until else None)


def test_weekly_window_across_a_dst_change() -> None:
    # Berlin leaves summer time on Sunday 2026-10-25 (03:00 CEST -> 02:00 CET): the window still
    # ends at 08:00 wall clock on Monday, which is 07:00 UTC, not 06:00.
    found = freeze.frozen([WEEKEND], at("2026-10-23T17:00:00+02:00"))
    assert found is not None
    assert found.until == dt.datetime(2026, 10, 26, 7, tzinfo=UTC)
    # And it starts at 16:00 wall clock on the Friday after spring-forward (2026-03-29) too.
    assert freeze.frozen([WEEKEND], at("2026-04-03T14:00:00Z")) is not None  # 16:00 CEST
    assert freeze.frozen([WEEKEND], at("2026-04-03T13:59:00Z")) is None


def test_dated_window_and_the_latest_end_wins() -> None:
    assert freeze.frozen([CHRISTMAS], at("2026-12-23T23:59:00+01:00")) is None
    found = freeze.frozen([WEEKEND, CHRISTMAS], at("2026-12-26T10:00:00+01:00"))  # a Saturday
    assert found is not None
    assert found.window == WEEKEND  # until Monday 28th 08:00, after Christmas ends on the 27th
    assert found.until == at("2026-12-28T08:00:00+01:00")
    found = freeze.frozen([CHRISTMAS], at("2026-12-24T00:00:00+01:00"))
    assert found is not None
    assert found.until == at("2026-12-27T00:00:00+01:00")
    assert freeze.frozen([CHRISTMAS], at("2026-12-27T00:00:00+01:00")) is None


def test_a_window_within_one_day() -> None:
    lunch = "Wed 12:00-Wed 13:00 UTC"
    assert freeze.frozen([lunch], at("2026-07-08T12:30:00Z")) is not None
    assert freeze.frozen([lunch], at("2026-07-08T13:30:00Z")) is None
    assert freeze.frozen([lunch], at("2026-07-09T12:30:00Z")) is None


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("Fri 16:00-Mon 08:00", "is not a freeze window"),
        ("Fri 16:00-Mon 08:00 Mars/Olympus", "unknown time zone 'Mars/Olympus'"),
        ("Fri 16:00-Mon 08:00 ../../etc/passwd", "unknown time zone"),
        ("Fry 16:00-Mon 08:00 UTC", "unknown day 'Fry'"),
        ("Fri 24:00-Mon 08:00 UTC", "invalid time 24:00"),
        ("Fri 16:00-Fri 16:00 UTC", "starts where it ends"),
        ("2026-12-27T00:00/2026-12-24T00:00 UTC", "ends before it starts"),
        ("2026-12-24T00:00+01:00/2026-12-27T00:00 UTC", "is not a freeze window"),
        ("2026-13-24T00:00/2026-12-27T00:00 UTC", "not an ISO 8601 local time"),
        ("weekends", "is not a freeze window"),
    ],
)
def test_bad_windows(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        freeze.parse_window(text)


# -- soak --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Entry:
    tag: str
    date: str
    commit: str


def test_soak_measures_from_the_newest_commit_that_set_the_tag() -> None:
    entries = [
        Entry("sha-2222222", "2026-07-01T12:00:00+02:00", "c3"),  # newest first
        Entry("sha-1111111", "2026-07-01T09:00:00+02:00", "c2"),
        Entry("sha-2222222", "2026-06-01T09:00:00+02:00", "c1"),  # an earlier stint does not count
    ]
    need = dt.timedelta(minutes=15)
    state = soak.check(need, entries, "sha-2222222", at("2026-07-01T12:05:00+02:00"))
    assert not state.ok
    assert state.commit == "c3"
    assert state.remaining == dt.timedelta(minutes=10)
    assert soak.check(need, entries, "sha-2222222", at("2026-07-01T12:15:00+02:00")).ok
    missing = soak.check(need, entries, "sha-3333333", at("2026-07-01T12:15:00+02:00"))
    assert not missing.ok
    assert missing.since is None


def test_soak_on_the_real_clock_counts_whole_seconds_one_way() -> None:
    # The real clock has fractions of a second (DEX_NOW and git's dates have none): what ran and
    # what is left still add up to the soak, and a soak not over never has 0 s left. Rounded each
    # its own way they read "5m 1s of the 15m soak: 10m left", and status said remaining_s 599
    # beside "10m left" - or 0 with ok false.
    entries = [Entry("sha-2222222", "2026-07-01T12:00:00+02:00", "c3")]
    need = dt.timedelta(minutes=15)
    state = soak.check(need, entries, "sha-2222222", at("2026-07-01T12:05:00.300000+02:00"))
    assert state.remaining == dt.timedelta(minutes=10)
    assert durations.describe(state.ran) == "5m"
    assert durations.describe(state.remaining) == "10m"
    assert state.ran + state.remaining == need
    almost = soak.check(need, entries, "sha-2222222", at("2026-07-01T12:14:59.700000+02:00"))
    assert (almost.ok, almost.remaining, almost.ran) == (
        False,
        dt.timedelta(seconds=1),
        need - dt.timedelta(seconds=1),
    )
    assert soak.check(need, entries, "sha-2222222", at("2026-07-01T12:15:00+02:00")).ran == need


# -- locks (parsing) ---------------------------------------------------------------------------


def test_a_lock_written_by_hand_still_locks() -> None:
    lock = locks.parse("prod", "a" * 40, "lock\n\nDex-Lock-Expires: whenever\n")
    assert lock.by == locks.UNKNOWN
    assert lock.expires is None
    assert not lock.expired(at("2030-01-01T00:00:00Z"))
    lock = locks.parse(
        "prod", "a" * 40,
        "lock\n\nDex-Lock-By: Ada <ada@example.com>\nDex-Lock-Reason: migration\n"
        "Dex-Lock-Since: 2026-07-01T10:00:00Z\nDex-Lock-Expires: 2026-07-01T12:00:00Z\n",
    )  # fmt: skip
    assert lock.as_json() == {
        "env": "prod", "by": "Ada <ada@example.com>", "reason": "migration",
        "since": "2026-07-01T10:00:00Z", "expires": "2026-07-01T12:00:00Z",
    }  # fmt: skip
    assert lock.expired(at("2026-07-01T12:00:00Z"))
    assert not lock.expired(at("2026-07-01T11:59:59Z"))


# -- config ------------------------------------------------------------------------------------


def _config(tmp_path: Path, body: str) -> None:
    (tmp_path / "pyproject.toml").write_text(f'[project]\nname = "x"\n\n[tool.dex]\n{body}', encoding="utf-8")


def test_config_reads_the_control_keys(tmp_path: Path) -> None:
    _config(
        tmp_path,
        'soak = { stage = "15m" }\n[tool.dex.freeze]\nprod = ["Fri 16:00-Mon 08:00 Europe/Berlin"]\n'
        '[tool.dex.cluster]\ncontexts = { prod = "prod-cluster" }\n'
        'argocd-servers = { prod = "argocd.prod" }\n',
    )
    cfg = load(tmp_path)
    assert cfg.soak == {"stage": "15m"}
    assert cfg.freeze == {"prod": ("Fri 16:00-Mon 08:00 Europe/Berlin",)}
    assert cfg.cluster.contexts == {"prod": "prod-cluster"}
    assert cfg.cluster.argocd_servers == {"prod": "argocd.prod"}


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ('soak = { stage = "15 minutes" }\n', r"tool\.dex\.soak\.stage: invalid duration '15 minutes'"),
        ('soak = { stag = "15m" }\n',
         r"tool\.dex\.soak: 'stag' is not in environments; did you mean 'stage'"),
        ('[tool.dex.freeze]\nprod = ["Fri 16:00-Mon 08:00 Mars/X"]\n',
         r"tool\.dex\.freeze\.prod\[0\]: unknown time zone 'Mars/X'"),
        ('[tool.dex.freeze]\nprod = "Fri 16:00-Mon 08:00 UTC"\n',
         r"tool\.dex\.freeze\.prod: expected a list of strings"),
        ('freeze = ["Fri 16:00-Mon 08:00 UTC"]\n', r"tool\.dex\.freeze: expected a table of lists"),
        ('[tool.dex.cluster]\ncontexts = { qa = "x" }\n',
         r"tool\.dex\.cluster\.contexts: 'qa' is not in environments"),
        ('[tool.dex.cluster]\nargocd-servers = { prod = " " }\n',
         r"tool\.dex\.cluster\.argocd-servers\.prod must not be empty"),
    ],
)  # fmt: skip
def test_config_refuses_bad_control_keys(tmp_path: Path, body: str, problem: str) -> None:
    _config(tmp_path, body)
    with pytest.raises(ConfigError, match=rf"pyproject\.toml: {problem}"):
        load(tmp_path)
