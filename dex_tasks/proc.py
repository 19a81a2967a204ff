"""The one place a process starts.

Every external command goes through :func:`run`: argv as a tuple (never a shell), the binary
resolved with ``shutil.which`` first (a missing one raises :class:`ToolMissing` with an install
hint), an echo of ``$ <shell-quoted argv>`` to stderr, a timeout, environment overrides, secret
redaction, and dry-run. Commands are read-only or mutating: ``read_only=True`` commands run under
``--dry-run``, everything else is only printed. The default is *not* read-only, so a command
nobody thought about is printed instead of run - the safe side.

This module is the policy; :mod:`dex_tasks._popen` holds the mechanics (pipes, draining, stopping)
and :mod:`dex_tasks.redact` the secrets. Like cibuildwheel's ``util/cmd.py`` and nox's
``command.py``; the stderr tail in errors follows pre-commit's ``util.py``.
"""

from __future__ import annotations

import collections
import contextlib
import contextvars
import dataclasses
import functools
import os
import shlex
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from dex_tasks import gha as _gha  # noqa: F401 - imported for its add-mask subscription to new secrets
from dex_tasks import redact
from dex_tasks._untrusted import inert
from dex_tasks.errors import CommandFailed, CommandTimeout, ToolMissing, UsageError

if TYPE_CHECKING:
    import subprocess
    from collections.abc import Iterator, Mapping, Sequence

    from dex_tasks import _popen

# _MECHANICS: dex_tasks._popen (subprocess, selectors, signal, the reader threads: a sixth of the
# start-up of `dex-tasks config`, bench/startup.py) is imported by the functions that start a
# process, so a task that starts none (config, --help, an argument error) does not pay for it.
# So is sysconfig, asked once by which() (shutil is not worth it: argparse's help formatter
# imports it on every start).

DEFAULT_TIMEOUT = 300.0
"""Seconds. Long commands (builds, test runs) pass their own, larger timeout."""

TAIL_LINES = 20

INSTALL_HINTS: Mapping[str, str] = {
    "uv": "install it with: python3 -m pip install uv",
    "git": "install git from https://git-scm.com/downloads or your package manager",
    "docker": "install Docker: https://docs.docker.com/engine/install/",
    "trivy": "install trivy: https://trivy.dev/latest/getting-started/installation/",
    "kubectl": "install kubectl: https://kubernetes.io/docs/tasks/tools/",
    "argocd": "install the Argo CD CLI: https://argo-cd.readthedocs.io/en/stable/cli_installation/",
    "semgrep": "install it with: uv add --dev 'dex-tasks[security]'",
    "ruff": "install it with: uv add --dev dex-tasks",
    "mypy": "install it with: uv add --dev dex-tasks",
    "pytest": "install it with: uv add --dev dex-tasks",
}


@dataclasses.dataclass(frozen=True, kw_only=True)
class Result:
    """What a command did. ``skipped`` is true when dry-run printed it instead of running it."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    skipped: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode == 0


@dataclasses.dataclass(frozen=True, kw_only=True)
class BytesResult:
    """:class:`Result` of :func:`run_bytes`: stdout as the bytes the command wrote."""

    argv: tuple[str, ...]
    returncode: int
    stdout: bytes
    stderr: str
    skipped: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode == 0


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Settings:
    """What :func:`session` set for the commands run inside it."""

    dry_run: bool = False
    # Where streamed command output goes: stdout normally, stderr under --json so stdout stays JSON.
    stream_to: TextIO | None = None
    echo_to: TextIO | None = None


# _Settings is frozen, so sharing one default instance is safe.
_settings: contextvars.ContextVar[_Settings] = contextvars.ContextVar("dex_proc", default=_Settings())  # noqa: B039


@contextlib.contextmanager
def session(
    *, dry_run: bool = False, stream_to: TextIO | None = None, echo_to: TextIO | None = None
) -> Iterator[None]:
    """Set dry-run and output streams for every :func:`run` inside the block."""
    token = _settings.set(_Settings(dry_run=dry_run, stream_to=stream_to, echo_to=echo_to))
    try:
        yield
    finally:
        _settings.reset(token)


def is_dry_run() -> bool:
    return _settings.get().dry_run


def quote(argv: Sequence[str]) -> str:
    """The argv as one shell-quoted, redacted line (for echo and errors only, never executed)."""
    return redact.redact(shlex.join(argv))


def _search_path() -> str:
    return os.pathsep.join([*_scripts_dirs(), os.environ.get("PATH", "")])


@functools.cache
def _scripts_dirs() -> tuple[str, ...]:
    # The interpreter's own scripts dir first: `python -m dex_tasks` from an unactivated venv must
    # still find the ruff/mypy/pytest installed beside it. That is the interpreter's directory in a
    # venv, but not in a Windows base install (python.exe in C:\Python311, ruff.exe in
    # C:\Python311\Scripts): sysconfig knows the scripts dir of both. Asked once: neither changes
    # while the interpreter runs, and sysconfig's answer was a third of each command's lookup.
    import sysconfig  # noqa: PLC0415 - see _MECHANICS

    scripts = [sysconfig.get_path("scripts"), str(Path(sys.executable).parent)]
    return tuple(dict.fromkeys(d for d in scripts if d))


def which(tool: str) -> str | None:
    """Full path of ``tool``, or None. Honours PATHEXT on Windows through shutil.which."""
    if sys.platform == "win32" and len(Path(tool).parts) == 1:
        return which_outside_cwd(tool, _search_path())
    return shutil.which(tool, path=_search_path())


def which_outside_cwd(tool: str, search: str) -> str | None:
    """``shutil.which`` over the absolute entries of ``search``, never from the current directory.

    On Windows shutil.which looks in the current directory before PATH, as cmd.exe does: a checked
    out repository holding ``git.bat`` or ``semgrep.cmd`` would run instead of the real tool (Go's
    os/exec stopped this for the same reason: https://go.dev/blog/path-security). One directory at
    a time, with the current directory named *last* so shutil.which does not put it first, and
    only absolute results kept.
    """
    for directory in search.split(os.pathsep):
        if not directory or not Path(directory).is_absolute():
            continue
        found = shutil.which(tool, path=os.pathsep.join([directory, os.curdir]))
        if found is not None and Path(found).is_absolute():
            return found
    return None


# What cmd.exe reads as syntax even inside the double quotes subprocess adds ('"' ends them).
_CMD_SPECIAL = frozenset('&|<>^%!"\r\n')


def check_batch_arguments(executable: str, args: Sequence[str]) -> None:
    """Refuse arguments cmd.exe would interpret when the tool is a ``.bat``/``.cmd`` shim.

    Windows runs batch files through cmd.exe, whose parsing subprocess's quoting does not cover:
    ``& calc`` in a branch name or an image reference would run as a command ("BatBadBut",
    CVE-2024-24576). Real executables (``.exe``) are not affected.
    """
    if not executable.lower().endswith((".bat", ".cmd")):
        return
    for arg in args:
        if _CMD_SPECIAL.intersection(arg):
            raise UsageError(
                f"refusing to pass {arg!r} to {Path(executable).name}: a .bat/.cmd tool would let cmd.exe "
                f"interpret it; install the tool's executable (.exe) instead"
            )


def require(tool: str) -> str:
    """Full path of ``tool``, or raise :class:`ToolMissing` with an install hint."""
    found = which(tool)
    if found is None:
        raise ToolMissing(tool, hint=INSTALL_HINTS.get(tool))
    return found


def echo(line: str) -> None:
    """Write one already-formatted line to the echo stream (stderr), redacted."""
    stream = _settings.get().echo_to or sys.stderr
    # Inert: an echoed line can quote a server (the token realm of a registry's WWW-Authenticate).
    stream.write(inert(redact.redact(line)) + "\n")
    stream.flush()


def _tail(text: str, lines: int = TAIL_LINES) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _merged_env(env: Mapping[str, str | None] | None) -> dict[str, str] | None:
    if not env:
        return None
    merged = dict(os.environ)
    for key, value in env.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def _resolve(argv: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``argv`` as strings, and the argv to start: the tool resolved to its full path (or
    :class:`ToolMissing`) and its arguments checked for a ``.bat``/``.cmd`` shim."""
    args = tuple(str(a) for a in argv)
    if not args:
        raise ValueError("empty argv")
    # The last line of defence (inputs are checked where they are read): subprocess would raise
    # "ValueError: embedded null byte", and no OS can pass a NUL inside an argument anyway.
    if (bad := next((a for a in args if "\0" in a), None)) is not None:
        raise UsageError(f"refusing to run {args[0]}: an argument holds a NUL byte: {bad[:60]!r}")
    executable = require(args[0])
    check_batch_arguments(executable, args[1:])
    return args, (executable, *args[1:])


def _timed_out(args: tuple[str, ...], timeout: float | None, tail: str) -> CommandTimeout:
    return CommandTimeout(
        f"command timed out after {timeout:g}s: {quote(args)}", argv=args, returncode=None, stderr_tail=tail
    )


def _failure(argv: tuple[str, ...], returncode: int, output: str) -> CommandFailed:
    tail = redact.redact(_tail(output))
    message = f"command failed with exit code {returncode}: {quote(argv)}"
    if tail:
        message += "\n" + tail
    return CommandFailed(message, argv=argv, returncode=returncode, stderr_tail=tail)


def run(
    argv: Sequence[str],
    *,
    read_only: bool = False,
    check: bool = True,
    stream: bool = False,
    timeout: float | None = DEFAULT_TIMEOUT,
    env: Mapping[str, str | None] | None = None,
    cwd: Path | str | None = None,
    stdin: str | None = None,
    quiet: bool = False,
) -> Result:
    """Run ``argv`` and return its :class:`Result`.

    ``read_only``: the command changes nothing, so it also runs under ``--dry-run``.
    ``check``: raise :class:`CommandFailed` (argv, exit code, output tail) on a non-zero exit.
    ``stream``: copy output line by line to the terminal as it comes (long builds, test runs)
    and still keep it for the result; otherwise output is captured for parsing.
    ``env``: overrides on top of ``os.environ``; a value of None removes the variable.
    ``stdin``: text fed to the process (e.g. a password for ``--password-stdin``).
    ``quiet``: do not echo the command line (queries whose echo would only be noise).
    """
    args, full = _resolve(argv)
    settings = _settings.get()
    if settings.dry_run and not read_only:
        echo(f"$ {quote(args)}    # dry-run: not run")
        return Result(argv=args, returncode=0, stdout="", stderr="", skipped=True)
    if not quiet:
        echo(f"$ {quote(args)}")
    merged = _merged_env(env)
    if stream:
        result = _run_streaming(args, full, timeout=timeout, env=merged, cwd=cwd, stdin=stdin)
    else:
        result = _run_captured(args, full, timeout=timeout, env=merged, cwd=cwd, stdin=stdin)
    if check and result.returncode != 0:
        raise _failure(args, result.returncode, result.stderr or result.stdout)
    return result


def run_bytes(
    argv: Sequence[str],
    *,
    read_only: bool = False,
    check: bool = True,
    timeout: float | None = DEFAULT_TIMEOUT,
    env: Mapping[str, str | None] | None = None,
    cwd: Path | str | None = None,
    stdin: str | None = None,
    quiet: bool = False,
) -> BytesResult:
    """:func:`run` for output that is framed by byte counts (``git cat-file --batch``: a header
    with the object's size, then that many bytes): stdout comes back as bytes, so the caller cuts
    it by those counts and decodes each piece. Everything else (echo, dry-run, timeout, the error of
    a failed command, stderr as text) is :func:`run`'s. Not for streaming."""
    from dex_tasks import _popen  # noqa: PLC0415 - see _MECHANICS

    args, full = _resolve(argv)
    if _settings.get().dry_run and not read_only:
        echo(f"$ {quote(args)}    # dry-run: not run")
        return BytesResult(argv=args, returncode=0, stdout=b"", stderr="", skipped=True)
    if not quiet:
        echo(f"$ {quote(args)}")
    try:
        done = _popen.captured_bytes(full, timeout=timeout, env=_merged_env(env), cwd=cwd, stdin=stdin)
    except _popen.TimedOut as exc:
        raise _timed_out(args, timeout, redact.redact(_tail(exc.stderr or exc.stdout))) from None
    if check and done.returncode != 0:
        raise _failure(args, done.returncode, done.stderr or done.stdout.decode("utf-8", "replace"))
    return BytesResult(argv=args, returncode=done.returncode, stdout=done.stdout, stderr=done.stderr)


class Pending:
    """A command :func:`start` began: :meth:`result` waits for it (once; later calls repeat it)."""

    def __init__(self, args: tuple[str, ...], started: _popen.Started | None, *, check: bool,
                 timeout: float | None) -> None:  # fmt: skip
        self._args, self._started, self._check, self._timeout = args, started, check, timeout
        self._result: Result | None = None
        self._timed_out: CommandTimeout | None = None

    def ended_within(self, seconds: float) -> bool:
        """Whether the command has ended, or ends within ``seconds`` of its start (waiting at
        most until then): False tells the caller to say what it waits for before :meth:`result`."""
        return self._result is not None or self._started is None or self._started.exited_within(seconds)

    def result(self) -> Result:
        """:func:`run`'s result: the same decoding, timeout and error of a failed command."""
        if self._timed_out is not None:  # asked again: the same timeout, not the killed command's exit
            raise self._timed_out
        if self._result is None:
            if self._started is None:  # dry-run printed it instead
                self._result = Result(argv=self._args, returncode=0, stdout="", stderr="", skipped=True)
            else:
                from dex_tasks import _popen  # noqa: PLC0415 - see _MECHANICS

                try:
                    done = self._started.collect()
                except _popen.TimedOut as exc:
                    tail = redact.redact(_tail(exc.stderr or exc.stdout))
                    self._timed_out = _timed_out(self._args, self._timeout, tail)
                    raise self._timed_out from None
                stdout = done.stdout.decode("utf-8", "replace")
                self._result = Result(argv=self._args, returncode=done.returncode, stdout=stdout,
                                      stderr=done.stderr)  # fmt: skip
        if self._check and self._result.returncode != 0:
            raise _failure(self._args, self._result.returncode, self._result.stderr or self._result.stdout)
        return self._result


@contextlib.contextmanager
def start(
    argv: Sequence[str],
    *,
    read_only: bool = False,
    check: bool = True,
    timeout: float | None = DEFAULT_TIMEOUT,
    env: Mapping[str, str | None] | None = None,
    cwd: Path | str | None = None,
    quiet: bool = False,
) -> Iterator[Pending]:
    """:func:`run` (captured, no stdin) started now and waited for by the block's ``.result()``,
    so the caller works meanwhile (``history`` reads the local log while ``git ls-remote`` asks
    origin). The same resolution, echo, dry-run rule, timeout (counted from the start), redaction
    and errors as :func:`run`. Leaving the block without the result (an error meanwhile, Ctrl-C)
    kills the command: nothing is left running behind us."""
    args, full = _resolve(argv)
    if _settings.get().dry_run and not read_only:
        echo(f"$ {quote(args)}    # dry-run: not run")
        yield Pending(args, None, check=check, timeout=timeout)
        return
    if not quiet:
        echo(f"$ {quote(args)}")
    from dex_tasks import _popen  # noqa: PLC0415 - see _MECHANICS

    started = _popen.Started(full, timeout=timeout, env=_merged_env(env), cwd=cwd, stdin=None)
    try:
        yield Pending(args, started, check=check, timeout=timeout)
    finally:
        started.stop()


def _run_captured(
    args: tuple[str, ...],
    full: tuple[str, ...],
    *,
    timeout: float | None,
    env: dict[str, str] | None,
    cwd: Path | str | None,
    stdin: str | None,
) -> Result:
    from dex_tasks import _popen  # noqa: PLC0415 - see _MECHANICS

    try:
        done = _popen.captured(full, timeout=timeout, env=env, cwd=cwd, stdin=stdin)
    except _popen.TimedOut as exc:
        raise _timed_out(args, timeout, redact.redact(_tail(exc.stderr or exc.stdout))) from None
    return Result(argv=args, returncode=done.returncode, stdout=done.stdout, stderr=done.stderr)


def _run_streaming(
    args: tuple[str, ...],
    full: tuple[str, ...],
    *,
    timeout: float | None,
    env: dict[str, str] | None,
    cwd: Path | str | None,
    stdin: str | None,
) -> Result:
    from dex_tasks import _popen  # noqa: PLC0415 - see _MECHANICS

    out = _settings.get().stream_to or sys.stdout
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)

    def show(line: str) -> None:
        tail.append(line)
        _write(out, redact.redact(line))

    try:
        done = _popen.streamed(full, on_line=show, timeout=timeout, env=env, cwd=cwd, stdin=stdin)
    except _popen.TimedOut:
        raise _timed_out(args, timeout, redact.redact("".join(tail)).rstrip()) from None
    return Result(argv=args, returncode=done.returncode, stdout=done.stdout, stderr=done.stderr)


def _write(stream: TextIO, text: str) -> None:
    """Write tool output that the stream's encoding may not hold (trivy's box drawing, a test's
    emoji on a cp1252 Windows console or pipe): unencodable characters become ``?``. An exception
    here would end the reader thread, and the tool would block on a full pipe."""
    try:
        stream.write(text)
    except UnicodeEncodeError:
        encoding = getattr(stream, "encoding", None) or "ascii"
        stream.write(text.encode(encoding, "replace").decode(encoding))
    stream.flush()


@contextlib.contextmanager
def background(
    argv: Sequence[str],
    *,
    env: Mapping[str, str | None] | None = None,
    cwd: Path | str | None = None,
) -> Iterator[subprocess.Popen[str]]:
    """Start a long-running helper (e.g. ``kubectl port-forward``) and always stop it on exit.

    The caller waits for readiness itself (e.g. until a port answers). Output is captured so the
    caller can read it for a failure message. Runs under dry-run too: callers only use it for
    read-only helpers.
    """
    from dex_tasks import _popen  # noqa: PLC0415 - see _MECHANICS

    args, full = _resolve(argv)
    echo(f"$ {quote(args)} &")
    with _popen.background(full, env=_merged_env(env), cwd=cwd) as process:
        yield process
