"""proc: the one place a process starts. Children are real processes (``sys.executable -c ...``)."""

from __future__ import annotations

import io
import os
import shlex
import sys
import time
from pathlib import Path

import pytest

from dex_tasks import proc, redact
from dex_tasks.errors import EXIT_TOOL_MISSING, CommandFailed, CommandTimeout, ToolMissing

PY = sys.executable


def _echoed(**kwargs: object) -> tuple[proc.Result, str]:
    """Run a command inside a proc session and return its result and what was echoed."""
    argv = kwargs.pop("argv")
    assert isinstance(argv, list)
    echo = io.StringIO()
    stream = io.StringIO()
    dry_run = bool(kwargs.pop("dry_run", False))
    with proc.session(dry_run=dry_run, echo_to=echo, stream_to=stream):
        result = proc.run(argv, **kwargs)  # type: ignore[arg-type]  # kwargs mirror proc.run's options
    return result, echo.getvalue()


def test_echo_is_the_shell_quoted_argv() -> None:
    argv = [PY, "-c", "import sys; print(sys.argv[1:])", "two words", "it's", 'say "hi"', "$HOME"]
    result, echoed = _echoed(argv=argv)
    assert echoed == f"$ {shlex.join(argv)}\n"
    # The child got every argument unchanged: no shell in between.
    assert result.stdout.strip() == repr(["two words", "it's", 'say "hi"', "$HOME"])
    assert shlex.split(echoed[2:]) == argv


def test_quiet_does_not_echo() -> None:
    result, echoed = _echoed(argv=[PY, "-c", "print('hi')"], quiet=True)
    assert echoed == ""
    assert result.stdout == "hi\n"
    assert result.ok


@pytest.mark.parametrize("var", ["GITHUB_TOKEN", "GH_TOKEN"])
def test_env_tokens_are_redacted_in_echo_and_errors(var: str, monkeypatch: pytest.MonkeyPatch) -> None:
    token = "ghp_" + "A1b2C3d4" * 4
    monkeypatch.setenv(var, token)
    script = "import sys; print(sys.argv[1], file=sys.stderr); sys.exit(3)"
    echo = io.StringIO()
    with proc.session(echo_to=echo), pytest.raises(CommandFailed) as caught:
        proc.run([PY, "-c", script, f"--token={token}"])
    assert token not in echo.getvalue()
    assert "--token=***" in echo.getvalue()
    err = caught.value
    assert token not in str(err)
    assert token not in err.stderr_tail
    assert "***" in err.stderr_tail
    assert err.returncode == 3
    assert err.argv[-1] == f"--token={token}"  # the real argv stays available to code, not to logs
    assert "exit code 3" in str(err)


def test_registered_secret_is_redacted_everywhere() -> None:
    secret = "s3cr3t-registered-value-42"
    redact.register_secret(secret)
    assert redact.redact(f"a {secret} b") == "a *** b"
    script = "import sys; print('out', sys.argv[1]); print('err', sys.argv[1], file=sys.stderr); sys.exit(1)"
    echo = io.StringIO()
    stream = io.StringIO()
    with proc.session(echo_to=echo, stream_to=stream):
        with pytest.raises(CommandFailed) as captured:
            proc.run([PY, "-c", script, secret])
        with pytest.raises(CommandFailed) as streamed:
            proc.run([PY, "-c", script, secret], stream=True)
    for text in (echo.getvalue(), stream.getvalue(), str(captured.value), str(streamed.value)):
        assert secret not in text
        assert "***" in text


def test_blank_secret_is_ignored() -> None:
    redact.register_secret("")
    redact.register_secret("   ")
    redact.register_secret(None)
    assert redact.redact("nothing to hide") == "nothing to hide"


def test_failure_carries_argv_exit_code_and_stderr_tail() -> None:
    script = "import sys\nfor i in range(50): print(f'line {i}', file=sys.stderr)\nsys.exit(7)"
    with proc.session(echo_to=io.StringIO()), pytest.raises(CommandFailed) as caught:
        proc.run([PY, "-c", script])
    err = caught.value
    assert err.returncode == 7
    assert err.exit_code == 1
    assert err.argv[0] == PY
    tail = err.stderr_tail.splitlines()
    assert len(tail) == proc.TAIL_LINES
    assert tail[-1] == "line 49"
    assert "line 29" not in tail
    assert "line 49" in str(err)


def test_check_false_returns_the_result() -> None:
    result, _ = _echoed(argv=[PY, "-c", "import sys; print('x'); sys.exit(4)"], check=False)
    assert result.returncode == 4
    assert not result.ok
    assert result.stdout == "x\n"


def _assert_gone(pid: int) -> None:
    # subprocess reaps the child it killed, so the pid no longer names a live process.
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


@pytest.mark.timeout(60)
@pytest.mark.skipif(sys.platform == "win32", reason="checks the pid with os.kill(pid, 0)")
@pytest.mark.parametrize("stream", [False, True])
def test_timeout_kills_the_child(stream: bool, tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    script = (
        "import os, sys, time, pathlib\n"
        "print('started', flush=True)\n"
        f"pathlib.Path({str(pid_file)!r}).write_text(str(os.getpid()))\n"
        "time.sleep(120)\n"
    )
    with (
        proc.session(echo_to=io.StringIO(), stream_to=io.StringIO()),
        pytest.raises(CommandTimeout) as caught,
    ):
        proc.run([PY, "-c", script], timeout=3, stream=stream)
    assert caught.value.returncode is None
    assert "timed out after 3s" in str(caught.value)
    assert isinstance(caught.value, CommandFailed)  # callers catching CommandFailed see timeouts too
    if pid_file.exists():  # the child may be killed before it got to write its pid
        _assert_gone(int(pid_file.read_text()))


def test_missing_tool_is_exit_3_with_hint(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    # The interpreter's own scripts dir is searched too; trivy is never installed there.
    with pytest.raises(ToolMissing) as caught:
        proc.run(["trivy", "--version"])
    err = caught.value
    assert err.exit_code == EXIT_TOOL_MISSING
    assert err.tool == "trivy"
    assert "'trivy' was not found" in str(err)
    assert "trivy.dev" in str(err)  # the install hint
    with pytest.raises(ToolMissing):
        proc.require("dex-no-such-tool-xyz")
    assert proc.which("dex-no-such-tool-xyz") is None


def test_missing_tool_is_reported_under_dry_run_too(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with proc.session(dry_run=True, echo_to=io.StringIO()), pytest.raises(ToolMissing):
        proc.run(["dex-no-such-tool-xyz", "push"])


def test_dry_run_runs_read_only_and_only_prints_mutating(tmp_path: Path) -> None:
    marker_ro = tmp_path / "read-only-ran"
    marker_mut = tmp_path / "mutating-ran"
    script = "import pathlib, sys; pathlib.Path(sys.argv[1]).write_text('x'); print('did it')"
    echo = io.StringIO()
    with proc.session(dry_run=True, echo_to=echo):
        assert proc.is_dry_run()
        read = proc.run([PY, "-c", script, str(marker_ro)], read_only=True)
        mutate = proc.run([PY, "-c", script, str(marker_mut)])
    assert not proc.is_dry_run()
    assert marker_ro.exists()
    assert read.stdout == "did it\n"
    assert not read.skipped
    assert not marker_mut.exists()
    assert mutate.skipped
    assert mutate.returncode == 0
    assert mutate.stdout == ""
    lines = echo.getvalue().splitlines()
    assert lines[0] == f"$ {shlex.join([PY, '-c', script, str(marker_ro)])}"
    assert lines[1].startswith(f"$ {shlex.join([PY, '-c', script, str(marker_mut)])}")
    assert lines[1].endswith("# dry-run: not run")


def test_streaming_copies_output_and_keeps_it() -> None:
    script = (
        "import sys\nfor i in range(30): print(f'out {i}', flush=True)\nprint('to stderr', file=sys.stderr)"
    )
    stream = io.StringIO()
    with proc.session(echo_to=io.StringIO(), stream_to=stream):
        result = proc.run([PY, "-c", script], stream=True)
    assert result.ok
    streamed = stream.getvalue()
    assert "out 0\n" in streamed
    assert "out 29\n" in streamed
    assert "to stderr" in streamed  # stderr is merged in the stream
    assert result.stdout == streamed
    assert result.stdout.count("\n") == 31


def test_streaming_failure_has_the_tail() -> None:
    script = "import sys\nfor i in range(40): print(f'out {i}')\nsys.exit(2)"
    with proc.session(echo_to=io.StringIO(), stream_to=io.StringIO()), pytest.raises(CommandFailed) as caught:
        proc.run([PY, "-c", script], stream=True)
    assert caught.value.returncode == 2
    assert caught.value.stderr_tail.splitlines()[-1] == "out 39"
    assert len(caught.value.stderr_tail.splitlines()) == proc.TAIL_LINES


def test_env_override_and_removal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEX_KEEP", "kept")
    monkeypatch.setenv("DEX_DROP", "dropped")
    script = (
        "import os; print(os.environ.get('DEX_KEEP'), os.environ.get('DEX_DROP'), os.environ.get('DEX_NEW'))"
    )
    result, _ = _echoed(argv=[PY, "-c", script], env={"DEX_DROP": None, "DEX_NEW": "new"})
    assert result.stdout.split() == ["kept", "None", "new"]
    assert os.environ["DEX_DROP"] == "dropped"  # only the child's environment changed


def test_stdin_and_cwd(tmp_path: Path) -> None:
    script = "import os, sys; print(os.getcwd()); print(sys.stdin.read().upper())"
    result, _ = _echoed(argv=[PY, "-c", script], stdin="hello", cwd=tmp_path)
    cwd, text = result.stdout.splitlines()[:2]
    assert Path(cwd).resolve() == tmp_path.resolve()
    assert text == "HELLO"


def test_empty_argv_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="empty argv"):
        proc.run([])


@pytest.mark.timeout(60)
def test_background_stops_the_helper() -> None:
    script = "import time; print('ready', flush=True); time.sleep(120)"
    with proc.session(echo_to=io.StringIO()), proc.background([PY, "-c", script]) as process:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready"
    assert process.returncode is not None  # stopped and reaped on exit


PROCESS_LAYER = ("proc.py", "_popen.py")  # policy and mechanics; both directly in dex_tasks/


def test_only_the_process_layer_starts_processes() -> None:
    """No module but proc.py and _popen.py imports subprocess, and nothing anywhere passes shell=True."""
    package = Path(proc.__file__).parent
    offenders = []
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package)
        if "rules" in relative.parts:
            continue  # bundled semgrep rules and their test targets: data, never imported
        text = path.read_text(encoding="utf-8")
        imports_subprocess = "import subprocess" in text or "from subprocess" in text
        if imports_subprocess and relative.as_posix() not in PROCESS_LAYER:
            offenders.append(relative.as_posix())
        if "shell=True" in text:
            offenders.append(f"{relative}: shell=True")
    assert offenders == []


def test_captured_output_keeps_crlf_byte_exact() -> None:
    # `git show` of a CRLF overlay feeds the dry-run diff: text mode would turn \r\n into \n.
    code = "import sys; sys.stdout.buffer.write(b'images:\\r\\n  - name: x\\r\\n')"
    result = proc.run((sys.executable, "-c", code), read_only=True, quiet=True)
    assert result.stdout == "images:\r\n  - name: x\r\n"


def test_stdin_text_reaches_the_process() -> None:
    code = "import sys; sys.stdout.write(sys.stdin.read().upper())"
    result = proc.run((sys.executable, "-c", code), read_only=True, quiet=True, stdin="secret-ish\n")
    assert result.stdout == "SECRET-ISH\n"


def test_start_gives_what_run_gives_and_the_same_errors() -> None:
    script = "import sys; print('out'); print('err', file=sys.stderr); sys.exit(int(sys.argv[1]))"
    echo = io.StringIO()
    with proc.session(echo_to=echo):
        with proc.start([PY, "-c", script, "0"]) as pending:
            done = pending.result()
        assert pending.result() is done  # asked again: the same result, not a second wait
        with proc.start([PY, "-c", script, "3"], check=False, quiet=True) as pending:
            failed = pending.result()
        with (
            proc.start([PY, "-c", script, "5"], quiet=True) as pending,
            pytest.raises(CommandFailed) as caught,
        ):
            pending.result()
    assert (done.returncode, done.stdout, done.stderr) == (0, "out\n", "err\n")
    assert (failed.returncode, failed.ok, failed.stdout) == (3, False, "out\n")
    assert caught.value.returncode == 5
    assert "exit code 5" in str(caught.value)
    assert echo.getvalue() == f"$ {shlex.join([PY, '-c', script, '0'])}\n"  # quiet ones are not echoed


def test_start_runs_while_the_caller_works_and_dry_run_only_prints_mutating(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    # The command waits for a file the caller writes after start returned: it runs meanwhile.
    script = (
        "import pathlib, sys, time\n"
        "gate = pathlib.Path(sys.argv[1])\n"
        "while not gate.exists(): time.sleep(0.01)\n"
        "print('saw', gate.read_text())\n"
    )
    marker = tmp_path / "mutating-ran"
    echo = io.StringIO()
    with proc.session(dry_run=True, echo_to=echo):
        with proc.start([PY, "-c", script, str(gate)], read_only=True, timeout=60) as pending:
            gate.write_text("it")
            assert pending.result().stdout == "saw it\n"
        write = f"import pathlib; pathlib.Path({str(marker)!r}).write_text('x')"
        with proc.start([PY, "-c", write]) as pending:
            skipped = pending.result()
    assert skipped.skipped
    assert not marker.exists()
    assert echo.getvalue().splitlines()[-1].endswith("# dry-run: not run")


@pytest.mark.timeout(60)
@pytest.mark.skipif(sys.platform == "win32", reason="checks the pid with os.kill(pid, 0)")
def test_start_kills_the_command_when_the_block_ends_without_its_result(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    script = f"import os, pathlib, time; pathlib.Path({str(pid_file)!r}).write_text(str(os.getpid()))\n"
    script += "time.sleep(120)\n"
    with (  # noqa: PT012 - the block waits for the child to start, then fails
        proc.session(echo_to=io.StringIO()),
        pytest.raises(RuntimeError, match="meanwhile"),
        proc.start([PY, "-c", script], quiet=True),
    ):
        # Until it wrote its pid, however long a loaded machine takes to start python: a cap of
        # 500 x 10 ms went on without the file after 5 s, and reading it failed the test. The
        # test's timeout bounds this wait.
        while not (pid_file.exists() and pid_file.read_text()):
            time.sleep(0.01)
        raise RuntimeError("an error meanwhile")
    _assert_gone(int(pid_file.read_text()))


@pytest.mark.timeout(60)
def test_start_times_out_like_run() -> None:
    with (
        proc.session(echo_to=io.StringIO()),
        pytest.raises(CommandTimeout) as caught,
        proc.start([PY, "-c", "import time; time.sleep(120)"], timeout=2, quiet=True) as pending,
    ):
        pending.result()
    assert "timed out after 2s" in str(caught.value)


@pytest.mark.timeout(60)
def test_a_timed_out_start_times_out_again_when_asked_again() -> None:
    # The second result() must not collect the killed command anew (its exit -9 is no failure).
    with (
        proc.session(echo_to=io.StringIO()),
        proc.start([PY, "-c", "import time; time.sleep(120)"], timeout=1, quiet=True) as pending,
    ):
        for _ in range(2):
            with pytest.raises(CommandTimeout, match="timed out after 1s"):
                pending.result()


@pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="the pidfd wait is Linux's")
def test_a_bounded_wait_works_with_descriptors_past_select_s_limit() -> None:
    # select() takes no descriptor past FD_SETSIZE (1024): a process with many files open (a long
    # pytest run, a server) got "filedescriptor out of range in select()" from every command.
    import resource  # noqa: PLC0415 - POSIX only

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1200:
        pytest.skip("cannot open 1100 descriptors here")
    resource.setrlimit(
        resource.RLIMIT_NOFILE, (max(soft, 1200) if hard == resource.RLIM_INFINITY else hard, hard)
    )
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        with proc.session(echo_to=io.StringIO()):
            assert proc.run([PY, "-c", "print('ok')"], timeout=60).stdout == "ok\n"
            with proc.start([PY, "-c", "print('ok')"], timeout=60, quiet=True) as pending:
                assert pending.result().stdout == "ok\n"
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
