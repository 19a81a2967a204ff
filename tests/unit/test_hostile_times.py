"""Instants at datetime's edges never become exit 70 (hostile-input sweep, second pass).

An instant comes from outside in DEX_NOW, lock trailers on origin, commit dates (anyone's to set:
git prints ``10000-01-01T00:00:00+00:00`` and ``9999-12-31T11:59:59-12:00``), freeze windows, and
the answers of GitHub, Argo CD and trivy. Each one near year 1 or 9999 was an OverflowError (or,
for year 10000, a ValueError nobody caught) in the first sum, difference or ``astimezone``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from dex_tasks import durations
from dex_tasks.controls import freeze, soak
from dex_tasks.errors import UsageError
from dex_tasks.gitops import locks
from dex_tasks.insight import argosync, dora, pipeline
from dex_tasks.tools import trivy

if TYPE_CHECKING:
    from tests.conftest import CliRunner

EDGES = [
    "0001-01-01T00:00:00+01:00",  # astimezone(UTC) is in the year 0
    "9999-12-31T11:59:59-12:00",  # ... in the year 10000
    "9999-12-31T23:59:59Z",  # in range, but any later sum is not
    "0001-01-01T00:00:00Z",  # ... nor any earlier difference
    "10000-01-01T00:00:00+00:00",  # as git prints it: no datetime at all
    "3170843-11-07T09:46:39+00:00",
]


@pytest.mark.parametrize("text", EDGES)
def test_an_edge_instant_is_no_instant(text: str) -> None:
    assert durations.instant(text) is None
    assert argosync._parse(text) is None
    assert pipeline._parse(text) is None
    assert trivy.iso_instant(text) is None


@pytest.mark.parametrize("text", EDGES)
def test_an_edge_dex_now_is_exit_2(
    run_cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n', encoding="utf-8")
    monkeypatch.setenv("DEX_NOW", text)
    with pytest.raises(UsageError, match="DEX_NOW"):
        durations.now()
    # lock adds its --expires to now before it looks at any repository: was OverflowError, exit 70.
    result = run_cli("lock", "dev", "--reason", "x", "--expires", "7d", cwd=tmp_path)
    assert result.code == 2, result.err
    assert result.err.strip().splitlines() == [result.err.strip()]
    assert "DEX_NOW" in result.err
    assert "internal error" not in result.err


def test_an_ordinary_instant_still_reads() -> None:
    assert durations.instant("2026-12-24T10:00:00+01:00") == dt.datetime(2026, 12, 24, 9, tzinfo=dt.UTC)
    assert durations.instant("2026-12-24T10:00:00") == dt.datetime(2026, 12, 24, 10, tzinfo=dt.UTC)
    assert durations.instant("2026-12-24T10:00:00", naive_is_utc=False) is None
    assert durations.parse_instant("2026-12-24T09:00:00Z").year == 2026


@pytest.mark.parametrize("text", EDGES)
def test_a_peers_lock_with_an_edge_expiry_never_expires_by_itself(text: str) -> None:
    message = (
        f"lock\n\nDex-Lock-By: peer\nDex-Lock-Reason: x\nDex-Lock-Since: {text}\nDex-Lock-Expires: {text}\n"
    )
    lock = locks.parse("prod", "a" * 40, message)
    assert lock.expires is None
    assert lock.since is None
    assert not lock.expired(dt.datetime(2026, 12, 1, tzinfo=dt.UTC))


@dataclasses.dataclass(frozen=True)
class _Entry:
    tag: str
    date: str
    commit: str = "c" * 40
    action: str = "bump"


@pytest.mark.parametrize("text", EDGES)
def test_a_commit_dated_at_an_edge_is_not_counted(text: str) -> None:
    good = _Entry("sha-2222222", "2026-12-01T10:00:00+00:00")
    assert dora.from_history([_Entry("sha-1111111", text), good]) == dora.from_history([good])
    # soak: no time for the stint, so no soak (the guard refuses as for an unknown deploy time).
    assert soak.deployed_at([_Entry("sha-1111111", text)], "sha-1111111") is None


@pytest.mark.parametrize(
    "window",
    ["9999-12-31T00:00/9999-12-31T23:59 America/New_York", "0001-01-01T00:00/0001-01-01T01:00 Asia/Tokyo"],
)
def test_a_freeze_window_past_the_years_is_a_config_error(
    run_cli: CliRunner, tmp_path: Path, window: str
) -> None:
    with pytest.raises(ValueError, match="out of range"):
        freeze.parse_window(window)
    (tmp_path / "pyproject.toml").write_text(f'[tool.dex.freeze]\nprod = ["{window}"]\n', encoding="utf-8")
    result = run_cli("config", cwd=tmp_path)
    assert result.code == 2, result.err
    assert "tool.dex.freeze.prod[0]" in result.err
    assert "internal error" not in result.err


# -- a lock's trailers are anyone's to write: shown on one line, never as terminal control ---------


@pytest.mark.parametrize(
    "text",
    ["evil \x1b[2J\x1b[31mperson", "reason \x1b]0;title\x07", "a\u202eb", "one\u2028two", "x\x85y"],
    ids=["CSI", "OSC", "bidi override", "line separator", "NEL"],
)
def test_a_lock_field_with_control_characters_is_shown_inert(text: str) -> None:
    lock = locks.parse("prod", "a" * 40, f"lock\n\nDex-Lock-By: {text}\nDex-Lock-Reason: {text}\n")
    for shown in (lock.by, lock.reason, lock.describe()):
        # A line separator or NEL already ends the trailer (git's lines are Python's splitlines).
        assert "\ufffd" in shown or text.startswith(shown.split(" since")[0])
        assert not any(c in shown for c in "\x1b\x07\u202e\u2028\x85")


def test_a_huge_lock_reason_is_cut_to_the_reason_limit() -> None:
    lock = locks.parse("prod", "a" * 40, "lock\n\nDex-Lock-By: p\nDex-Lock-Reason: " + "x" * 200_000 + "\n")
    assert len(lock.reason) == locks.MAX_REASON
    assert lock.reason.endswith("\u2026")
    assert len(lock.describe()) < 2 * locks.MAX_REASON


def test_what_a_task_prints_carries_no_terminal_control(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Commit subjects and author names (history, release-notes), lock reasons, a tool's error text.
    from dex_tasks import cli  # noqa: PLC0415 - the entry layer, as the console script runs it
    from dex_tasks.tasks import Context  # noqa: PLC0415 - the task layer's output protocol

    ctx = Context(task="history", config=None, cwd=Path(), json=False)  # type: ignore[arg-type]  # out/warn read no config
    evil = "subject \x1b[2J\x1b]0;title\x07 \u202eright-to-left\rforged"
    ctx.out(f"table line 1\n\t{evil}")
    ctx.warn(evil)
    monkeypatch.setattr(cli, "_run", lambda *_a: (_ for _ in ()).throw(UsageError(evil)))
    cli.main(["history", "dev"])
    printed = capsys.readouterr()
    for stream in (printed.out, printed.err):
        assert not any(c in stream for c in "\x1b\x07\u202e\r")
    assert "table line 1\n\tsubject \ufffd[2J" in printed.out
    assert printed.err.count("\ufffd") >= 10


def test_progress_and_echo_lines_carry_no_terminal_control(capsys: pytest.CaptureFixture[str]) -> None:
    # A retry notice quotes the server's error code (a registry's JSON, GitHub's message) and an
    # echoed request line the token realm of a registry's WWW-Authenticate: neither is ours.
    from dex_tasks import proc, progress  # noqa: PLC0415 - only this test writes through them

    evil = "TOOMANYREQUESTS\x1b]0;title\x07\x1b[2J\u202e"
    progress.waiting("registry r.example", 2, 4, 1.0, f"HTTP 429 {evil}")
    proc.echo(f"# GET https://r.example/token?{evil}")
    err = capsys.readouterr().err
    assert not any(c in err for c in "\x1b\x07\u202e")
    assert err.count("\ufffd") == 8
    assert "attempt 2/4" in err
