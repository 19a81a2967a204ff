"""parse_duration and now(): the one parser of `30s`/`15m`/`2h`/`7d` and the DEX_NOW clock."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dex_tasks import durations
from dex_tasks.errors import UsageError


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("15m", 900), ("2h", 7200), ("7d", 604800), (" 1d ", 86400)]
)
def test_examples(text: str, seconds: int) -> None:
    assert durations.parse_duration(text) == dt.timedelta(seconds=seconds)


@pytest.mark.parametrize(
    "text", ["", "0s", "30", "s", "1h30m", "-1d", "1.5h", "1 d", "1w", "1D", "nan", "99999999999d", "1d\n2d"]
)
def test_refused(text: str) -> None:
    with pytest.raises(UsageError, match="duration"):
        durations.parse_duration(text)


@given(st.integers(min_value=1, max_value=3650), st.sampled_from("smhd"))
def test_round_trip(amount: int, unit: str) -> None:
    assert durations.parse_duration(f"{amount}{unit}").total_seconds() == amount * durations.UNITS[unit]


@given(st.text(max_size=20))
def test_any_text_is_a_duration_or_a_usage_error(text: str) -> None:
    try:
        value = durations.parse_duration(text)
    except UsageError:
        return
    assert dt.timedelta(0) < value <= dt.timedelta(seconds=durations.MAX_SECONDS)


def test_now_honours_dex_now(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEX_NOW", "2026-03-01T12:00:00Z")
    assert durations.now() == dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
    monkeypatch.setenv("DEX_NOW", "2026-03-01T12:00:00")  # no offset: UTC
    assert durations.now().tzinfo is not None
    monkeypatch.setenv("DEX_NOW", "yesterday")
    with pytest.raises(UsageError, match="DEX_NOW"):
        durations.now()
    monkeypatch.delenv("DEX_NOW")
    assert durations.now().tzinfo is not None


def test_format_duration() -> None:
    assert [durations.format_duration(s) for s in (None, 5, 95, 3600, 90061)] == [
        "-",
        "5s",
        "1m35s",
        "1h",
        "1d1h",
    ]
