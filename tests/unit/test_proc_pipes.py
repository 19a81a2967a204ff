"""proc's timeouts stay bounded when a grandchild inherits the output pipe.

Real commands do this: git runs git-remote-https or ssh, a test suite leaves a server running,
docker runs CLI plugins. The grandchild keeps the pipe open after the command ended or was killed,
so reading "until end-of-file" would wait for the grandchild, not for the timeout. The grandchild
here sleeps far longer than each test's pytest timeout: waiting for it fails the test.

The drain grace is shortened: the tests are about the wait being bounded by it, and waiting out
the real 5 s in each of them took most of the unit suite's time. That the shortened one bounds it
is read from the bounds the waits were given (:func:`output_waits`), not from a stopwatch: an
elapsed-time bound trips on a loaded CI machine (two python starts and a kill under it), and a
wait held up by the grandchild is caught anyway, by the pytest timeout far below ``LINGER``.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import sys
import threading
from typing import TYPE_CHECKING, Any

import pytest

from dex_tasks import _popen, proc
from dex_tasks.errors import CommandTimeout

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

PY = sys.executable
LINGER = 120  # seconds the grandchild would keep the pipe open; far above every test's timeout
REAL_GRACE = _popen.DRAIN_GRACE
GRACE = 0.2


@pytest.fixture(autouse=True)
def short_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_popen, "DRAIN_GRACE", GRACE)


@pytest.fixture
def output_waits(monkeypatch: pytest.MonkeyPatch) -> list[float | None]:
    """The bound of every wait for a command's output: each ``communicate`` of a captured command,
    each ``join`` of a streamed command's reader thread - the waits a grandchild can hold up."""
    bounds: list[float | None] = []
    communicate = _popen._Captured.communicate

    def spy(self: _popen._Captured, input: Any = None, timeout: float | None = None) -> Any:  # noqa: A002 - Popen's name
        bounds.append(timeout)
        return communicate(self, input, timeout)

    class Thread(threading.Thread):
        def join(self, timeout: float | None = None) -> None:
            bounds.append(timeout)
            super().join(timeout)

    monkeypatch.setattr(_popen._Captured, "communicate", spy)
    monkeypatch.setattr(threading, "Thread", Thread)  # the module _popen starts its reader with
    return bounds


def _script(pid_file: Path, *, parent_sleeps: int) -> str:
    """A parent that starts a pipe-holding grandchild, prints, then sleeps ``parent_sleeps``."""
    grandchild = f"import time; time.sleep({LINGER})"
    return (
        "import pathlib, subprocess, sys, time\n"
        f"child = subprocess.Popen([sys.executable, '-c', {grandchild!r}])\n"
        f"pathlib.Path({str(pid_file)!r}).write_text(str(child.pid))\n"
        "print('parent says hi', flush=True)\n"
        f"time.sleep({parent_sleeps})\n"
    )


@contextlib.contextmanager
def _reaping(pid_file: Path) -> Iterator[None]:
    try:
        yield
    finally:
        if pid_file.exists():
            with contextlib.suppress(OSError):
                os.kill(int(pid_file.read_text()), signal.SIGTERM)


@pytest.mark.timeout(40)
@pytest.mark.parametrize("stream", [False, True])
def test_timeout_is_not_held_up_by_a_grandchild(
    stream: bool, tmp_path: Path, output_waits: list[float | None]
) -> None:
    pid_file = tmp_path / "pid"
    with (
        _reaping(pid_file),
        proc.session(echo_to=io.StringIO(), stream_to=io.StringIO()),
        pytest.raises(CommandTimeout) as caught,
    ):
        proc.run([PY, "-c", _script(pid_file, parent_sleeps=LINGER)], timeout=2, stream=stream)
    assert "timed out after 2s" in str(caught.value)
    # Bounded by the shortened grace (read when the wait starts), never the real one.
    assert GRACE in output_waits
    assert REAL_GRACE not in output_waits


@pytest.mark.timeout(40)
@pytest.mark.parametrize("stream", [False, True])
def test_finished_command_returns_while_a_grandchild_lingers(
    stream: bool, tmp_path: Path, output_waits: list[float | None]
) -> None:
    # ssh's ControlPersist master under `git fetch` does this: the command has ended, its result is
    # final, and waiting for the pipes to close would wait until the timeout (here: the test's).
    pid_file = tmp_path / "pid"
    with _reaping(pid_file), proc.session(echo_to=io.StringIO(), stream_to=io.StringIO()):
        result = proc.run([PY, "-c", _script(pid_file, parent_sleeps=0)], timeout=LINGER, stream=stream)
    # The wait after the command ended was the shortened grace, not the timeout nor the real grace.
    assert GRACE in output_waits
    assert REAL_GRACE not in output_waits
    assert LINGER not in output_waits
    assert result.returncode == 0
    assert "parent says hi" in result.stdout


def _refused(pid: int) -> int:
    raise OSError(38, "Function not implemented")


@pytest.fixture(params=["pidfd", "no os.pidfd_open", "pidfd_open refused"])
def wait_kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The bounded wait each way it can go: a pidfd (Linux 5.3+), no os.pidfd_open at all
    (Windows, macOS), or a kernel or sandbox that refuses the call (CPython's polling wait)."""
    if request.param == "pidfd" and not hasattr(os, "pidfd_open"):
        pytest.skip("no pidfd here")
    if request.param == "no os.pidfd_open":
        monkeypatch.delattr(os, "pidfd_open", raising=False)
    if request.param == "pidfd_open refused":
        monkeypatch.setattr(os, "pidfd_open", _refused, raising=False)
    return str(request.param)


@pytest.mark.timeout(40)
@pytest.mark.usefixtures("wait_kind")
def test_a_command_that_closes_its_pipes_and_stays_is_stopped_at_its_timeout() -> None:
    # Only the wait is left once the pipes are closed: that wait too ends at the timeout (the
    # pidfd wait of _popen._Captured), and the command is stopped, not left behind.
    script = f"import os, time; os.close(1); os.close(2); time.sleep({LINGER})"
    with proc.session(echo_to=io.StringIO()), pytest.raises(CommandTimeout) as caught:
        proc.run([PY, "-c", script], timeout=1)
    assert "timed out after 1s" in str(caught.value)


@pytest.mark.usefixtures("wait_kind")
def test_exit_codes_come_through_the_wait() -> None:
    with proc.session(echo_to=io.StringIO()):
        for code in (0, 3, 70):
            result = proc.run([PY, "-c", f"raise SystemExit({code})"], check=False, timeout=30)
            assert result.returncode == code
            with proc.start([PY, "-c", f"raise SystemExit({code})"], check=False, timeout=30) as pending:
                assert pending.result().returncode == code


@pytest.mark.usefixtures("wait_kind")
def test_a_bounded_wait_takes_a_timeout_of_any_size() -> None:
    # poll() takes milliseconds in a C int (about 24.8 days): a longer bound still waits.
    from dex_tasks import _popen  # noqa: PLC0415 - the mechanics themselves

    with _popen._Captured([PY, "-c", "pass"]) as process:
        assert process.wait(timeout=10.0**8) == 0
