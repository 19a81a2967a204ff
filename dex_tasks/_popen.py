"""Process mechanics: start a command, read its pipes, stop it, and never hang on them.

No policy lives here - what is echoed, whether dry-run runs a command, what is redacted, which
error a caller sees: :mod:`dex_tasks.proc` decides that and calls in with a resolved argv. The
split follows nox's ``command.py`` (policy) and ``popen.py`` (mechanics).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import select
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

POLL_INTERVAL = 0.5  # seconds between checks whether a captured command has ended
DRAIN_GRACE = 5.0
"""Seconds to keep reading a command's output after it ended or was stopped. A grandchild that
inherited the pipe (ssh under git, a server a test left running, a docker CLI plugin) holds it
open, and waiting for end-of-file would turn a bounded timeout into an unbounded hang."""
STOP_GRACE = 5.0  # seconds a terminated command gets to exit before it is killed


@dataclasses.dataclass(frozen=True, kw_only=True)
class Output:
    """How a command ended and what it wrote (decoded; streamed output is in both fields)."""

    returncode: int
    stdout: str
    stderr: str


class TimedOut(Exception):
    """The command outlived its timeout and was stopped; what it wrote until then is kept."""

    def __init__(self, *, stdout: str, stderr: str) -> None:
        super().__init__("command timed out")
        self.stdout = stdout
        self.stderr = stderr


@dataclasses.dataclass(frozen=True, kw_only=True)
class RawOutput:
    """How a command ended and what it wrote, stdout as the bytes it wrote (stderr decoded)."""

    returncode: int
    stdout: bytes
    stderr: str


def captured(
    argv: tuple[str, ...],
    *,
    timeout: float | None,
    env: dict[str, str] | None,
    cwd: Path | str | None,
    stdin: str | None,
) -> Output:
    """Run ``argv`` with its output captured; :class:`TimedOut` once ``timeout`` has passed."""
    raw = captured_bytes(argv, timeout=timeout, env=env, cwd=cwd, stdin=stdin)
    return Output(returncode=raw.returncode, stdout=_decode(raw.stdout), stderr=raw.stderr)


def captured_bytes(
    argv: tuple[str, ...],
    *,
    timeout: float | None,
    env: dict[str, str] | None,
    cwd: Path | str | None,
    stdin: str | None,
) -> RawOutput:
    """:func:`captured` with stdout left as bytes: output framed by byte counts (``git cat-file
    --batch``) is cut by those counts first and decoded piece by piece."""
    # Bytes, decoded here: text mode would translate CRLF to LF, and `git show` of a CRLF
    # overlay must come back byte-exact (dry-run diffs are computed from it).
    # Not subprocess.run: after a timeout it kills the child and then, on Windows, reads the pipes
    # until end-of-file with no limit, so a grandchild holding them (git-remote-https, ssh) hangs
    # us forever; and its `with Popen` closes pipes a reader thread may still hold (a deadlock).
    return Started(argv, timeout=timeout, env=env, cwd=cwd, stdin=stdin).collect()


class Started:
    """A captured command started now and collected later (:meth:`collect`), so the caller can
    do other work while it runs (``history`` reads the local log while ``git ls-remote`` asks
    origin). :func:`captured_bytes` is one started and collected at once. The timeout counts from
    the start; :meth:`stop` kills a command that is not going to be collected (an error meanwhile)."""

    def __init__(
        self,
        argv: tuple[str, ...],
        *,
        timeout: float | None,
        env: dict[str, str] | None,
        cwd: Path | str | None,
        stdin: str | None,
    ) -> None:
        self._process = _Captured(
            argv,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=cwd,
        )
        self._deadline = None if timeout is None else time.monotonic() + timeout
        self._data = stdin.encode("utf-8") if stdin is not None else None
        self._collecting = False
        self._started_at = time.monotonic()

    def exited_within(self, seconds: float) -> bool:
        """Whether the command has ended, or ends within ``seconds`` of its start (waiting until
        then at most), so the caller can say what it waits for before a longer wait. For commands
        that write little (their output must fit in the pipe until :meth:`collect` reads it)."""
        try:
            self._process.wait(max(0.0, self._started_at + seconds - time.monotonic()))
        except subprocess.TimeoutExpired:
            return False
        return True

    def collect(self) -> RawOutput:
        """Wait for the command (until the deadline: :class:`TimedOut`) and return what it wrote."""
        self._collecting = True
        process, deadline, data = self._process, self._deadline, self._data
        try:
            while True:
                # In short steps, to notice a command that ended while a grandchild keeps its pipes
                # open (ssh's ControlPersist master under `git fetch`): that is not a timeout.
                step = (
                    POLL_INTERVAL
                    if deadline is None
                    else max(0.0, min(POLL_INTERVAL, deadline - time.monotonic()))
                )
                try:
                    # The input is handed over once; a repeated communicate() goes on where it was.
                    stdout, stderr = process.communicate(input=data, timeout=step)
                    break
                except subprocess.TimeoutExpired as exc:
                    data = None
                    if process.poll() is not None:
                        stdout, stderr = _drain(process, exc)
                        break
                    if deadline is not None and time.monotonic() >= deadline:
                        process.kill()
                        stdout, stderr = _drain(process, exc)
                        process.wait()  # killed: this returns at once and reaps the child
                        raise TimedOut(stdout=_decode(stdout), stderr=_decode(stderr)) from None
        except TimedOut:
            raise
        except BaseException:
            # Ctrl-C and anything else: never leave the child running behind us.
            self.stop()
            raise
        return RawOutput(returncode=process.returncode, stdout=_as_bytes(stdout), stderr=_decode(stderr))

    def stop(self) -> None:
        """Kill the command if it still runs and reap it (idempotent). A command never collected
        has its pipes closed too; after a collect they are communicate()'s (see :func:`_drain`)."""
        process = self._process
        if process.poll() is None:
            process.kill()
            process.wait()
        if not self._collecting:
            for pipe in (process.stdin, process.stdout, process.stderr):
                if pipe is not None and not pipe.closed:
                    with contextlib.suppress(OSError):
                        pipe.close()


# poll() takes its timeout in milliseconds in a C int (~24.8 days); a longer bound is cut to it,
# and an exit still wakes the wait at once.
_POLL_MS_MAX = 2**31 - 1


class _Captured(subprocess.Popen[bytes]):
    """Popen whose bounded wait wakes up when the command exits, where the system can say so.

    ``communicate(timeout=...)`` ends in ``wait(timeout)``, which CPython does by polling with
    sleeps of 1, 2, 4 ... ms: a command that exits a moment after closing its pipes (every git
    query) cost a millisecond more each, a third of a ``git rev-parse``. A pidfd (Linux 5.3+)
    becomes readable when the process exits, so ``poll`` waits exactly that long, still bounded.
    """

    def wait(self, timeout: float | None = None) -> int:
        if timeout is None or self.returncode is not None or not hasattr(os, "pidfd_open"):
            return super().wait(timeout)
        try:
            fd = os.pidfd_open(self.pid)
        except OSError:  # an older kernel, or a sandbox without the call: CPython's way
            return super().wait(timeout)
        try:
            # poll, not select: select takes no descriptor past FD_SETSIZE (1024), and a process
            # with many files open gets pidfds past it. Both wait at most the timeout (ms here).
            waiting = select.poll()
            waiting.register(fd, select.POLLIN)
            exited = waiting.poll(min(_POLL_MS_MAX, max(0, math.ceil(timeout * 1000))))
        finally:
            os.close(fd)
        if not exited:
            raise subprocess.TimeoutExpired(self.args, timeout)
        return super().wait()  # it has exited: this reaps it at once


def _drain(process: subprocess.Popen[bytes], first: subprocess.TimeoutExpired) -> tuple[bytes, bytes]:
    """What the process wrote, read for at most :data:`DRAIN_GRACE` more seconds."""
    try:
        return process.communicate(timeout=DRAIN_GRACE)
    except subprocess.TimeoutExpired as exc:
        # Give up on the rest. On Windows communicate() reads in threads that close the pipes when
        # the grandchild lets go (closing them here would wait for those threads' locks); elsewhere
        # it reads in this thread, so nothing else holds them.
        if sys.platform != "win32":
            for pipe in (process.stdout, process.stderr):
                if pipe is not None:
                    pipe.close()
        partial = exc if exc.output is not None or exc.stderr is not None else first
        return _as_bytes(partial.output), _as_bytes(partial.stderr)


def _as_bytes(data: str | bytes | None) -> bytes:
    if data is None:
        return b""
    return data if isinstance(data, bytes) else data.encode("utf-8")


def _decode(data: str | bytes | None) -> str:
    if data is None:
        return ""
    if isinstance(data, bytes):
        return data.decode("utf-8", "replace")
    return data


def streamed(
    argv: tuple[str, ...],
    *,
    on_line: Callable[[str], None],
    timeout: float | None,
    env: dict[str, str] | None,
    cwd: Path | str | None,
    stdin: str | None,
) -> Output:
    """Run ``argv`` with stderr merged into stdout, handing each line to ``on_line`` as it comes.

    ``on_line`` runs in a reader thread and must not raise: the tool would block on a full pipe.
    """
    lines: list[str] = []
    # Not `with Popen(...)`: its exit closes stdout, which blocks on the lock the reader thread
    # holds while a grandchild keeps the pipe open - the timeout would never end (see _finish).
    process = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        encoding="utf-8",
        errors="replace",
        env=env,
        cwd=cwd,
    )

    def pump() -> None:
        assert process.stdout is not None  # noqa: S101 - stdout=PIPE above
        # The reader owns the pipe and closes it: only it can do so without waiting for its lock.
        with process.stdout:
            for line in process.stdout:
                lines.append(line)
                on_line(line)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        if stdin is not None and process.stdin is not None:
            process.stdin.write(stdin)
            process.stdin.close()
        returncode = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop(process)
        _finish(process, reader)
        output = "".join(lines)
        raise TimedOut(stdout=output, stderr=output) from None
    except BaseException:
        # Ctrl-C and anything else: never leave the child running behind us.
        stop(process)
        _finish(process, reader, grace=0)
        raise
    _finish(process, reader)
    output = "".join(lines)
    return Output(returncode=returncode, stdout=output, stderr=output)


def _finish(process: subprocess.Popen[str], reader: threading.Thread, *, grace: float | None = None) -> None:
    """Let the reader copy what is left, for at most ``grace`` (default :data:`DRAIN_GRACE`) seconds.

    A reader still blocked after that (a grandchild holds the pipe) is left behind: closing the
    pipe from here would wait for the reader's lock. It is a daemon thread; it closes the pipe and
    ends when the grandchild does.
    """
    if process.stdin is not None and not process.stdin.closed:
        with contextlib.suppress(OSError):
            process.stdin.close()
    # DRAIN_GRACE read now, not bound as the default when this module was imported.
    reader.join(timeout=DRAIN_GRACE if grace is None else grace)


def stop(process: subprocess.Popen[str]) -> None:
    """Terminate ``process``, kill it if it is still there after :data:`STOP_GRACE`, and reap it."""
    process.terminate()
    try:
        process.wait(timeout=STOP_GRACE)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextlib.contextmanager
def background(
    argv: tuple[str, ...], *, env: dict[str, str] | None, cwd: Path | str | None
) -> Iterator[subprocess.Popen[str]]:
    """Start ``argv`` with its output on one text pipe; stop it and close the pipe on exit."""
    process = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        encoding="utf-8",
        errors="replace",
        env=env,
        cwd=cwd,
    )
    try:
        yield process
    finally:
        stop(process)
        if process.stdout is not None:
            process.stdout.close()
