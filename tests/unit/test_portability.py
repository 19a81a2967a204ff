"""Behaviour that differs on Windows and macOS, checked with the inputs those systems produce."""

from __future__ import annotations

import functools
import io
import os
import sys
from pathlib import Path

import pytest

from dex_tasks import proc
from dex_tasks.tasks import image_build


@pytest.mark.parametrize(
    "remote",
    ["C:\\Users\\me\\src\\dex", "C:/src/dex.git", "d:\\repos\\dex.git"],
)
def test_a_windows_path_remote_is_no_source_url(remote: str) -> None:
    # `git clone C:\src\dex` leaves that path as origin; it is no host "C" with a web UI.
    assert image_build.normalize_source_url(remote) is None


def test_scp_like_remotes_still_are_source_urls() -> None:
    assert image_build.normalize_source_url("git@github.com:o/r.git") == "https://github.com/o/r"
    assert image_build.normalize_source_url("gh:o/r") == "https://gh/o/r"  # a two-letter ssh alias


def test_temporary_directories_do_not_mask_errors_on_windows() -> None:
    """Every TemporaryDirectory in the package ignores cleanup errors.

    On Windows a file that is still open cannot be deleted. After a timeout the tool is killed,
    but a child of it (semgrep-core, a docker CLI plugin) may still hold a file in the directory;
    without ignore_cleanup_errors the PermissionError of the cleanup replaces the timeout error.
    """
    package = Path(image_build.__file__).parent.parent
    offenders = []
    for path in sorted(package.rglob("*.py")):
        if "rules" in path.relative_to(package).parts:
            continue  # semgrep rule test targets: bad code on purpose, never imported
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if "TemporaryDirectory(" in line and "ignore_cleanup_errors=True" not in line:
                offenders.append(f"{path.relative_to(package)}:{number}")
    assert offenders == []


# -- output a Windows code page cannot hold --------------------------------------------------------
UNICODE_LINE = "table \u250c\u2500\u2510 \u2705"  # trivy's box drawing, a test's emoji


@pytest.mark.timeout(60)
def test_streamed_output_the_terminal_cannot_encode_is_replaced_not_fatal() -> None:
    # Windows: stdout is cp1252 when it is a pipe (CI, `| tee`). A UnicodeEncodeError used to end
    # the reader thread; the tool then got a closed pipe (or blocked on a full one).
    raw = io.BytesIO()
    cp1252 = io.TextIOWrapper(raw, encoding="cp1252", write_through=True)
    code = (
        "import sys\n"
        f"sys.stdout.buffer.write({UNICODE_LINE!r}.encode() + b'\\n')\n"
        "for i in range(2000): print('after', i)\n"
    )
    with proc.session(echo_to=io.StringIO(), stream_to=cp1252):
        result = proc.run([sys.executable, "-c", code], stream=True, timeout=30)
    assert result.returncode == 0
    assert result.stdout.startswith(UNICODE_LINE + "\n")  # the result keeps the real text
    shown = raw.getvalue().decode("cp1252")
    assert shown.startswith("table ??? ?\n")
    assert "after 1999" in shown


@pytest.mark.timeout(120)
def test_cli_on_a_cp1252_pipe_does_not_crash(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "u"\nversion = "0"\n', encoding="utf-8")
    (tmp_path / "test_u.py").write_text(
        "import sys\n\n\ndef test_u() -> None:\n"
        f"    sys.stdout.buffer.write({UNICODE_LINE!r}.encode() + b'\\n')\n"
        "    sys.stdout.flush()\n",
        encoding="utf-8",
    )
    env = {**os.environ, "PYTHONIOENCODING": "cp1252"}
    env.pop("PYTHONUTF8", None)
    done = proc.run(
        [sys.executable, "-m", "dex_tasks", "test", "-q", "-s", "-p", "no:cacheprovider", "test_u.py"],
        read_only=True, check=False, quiet=True, cwd=tmp_path, env=env, timeout=90,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert "1 passed" in done.stdout


def test_mypy_annotations_on_windows_use_posix_paths(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from dex_tasks.tasks import lint  # noqa: PLC0415 - the lint task module, only here

    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    output = "src\\dex\\cli.py:12:5: error: Incompatible return value  [return-value]\n"
    lint._annotate_mypy(lint.mypy_findings(output))
    assert "::error file=src/dex/cli.py,line=12,col=5,title=mypy (return-value)::" in capsys.readouterr().err


def test_tools_in_the_interpreters_scripts_dir_are_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A Windows base install: python.exe in C:\Python311, ruff.exe in C:\Python311\Scripts, and
    # neither on PATH when `py -m dex_tasks lint` runs.
    import stat  # noqa: PLC0415
    import sysconfig  # noqa: PLC0415

    scripts = tmp_path / "Scripts"
    scripts.mkdir()
    name = "dex-fake-linter"
    tool = scripts / (f"{name}.exe" if os.name == "nt" else name)
    tool.write_text("", encoding="utf-8")
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    real = sysconfig.get_path

    def get_path(key: str, scheme: str | None = None) -> str:
        if key == "scripts" and scheme is None:
            return str(scripts)
        return real(key) if scheme is None else real(key, scheme)

    monkeypatch.setattr(sysconfig, "get_path", get_path)
    # proc asks sysconfig once per interpreter: a fresh cache here, the real one back afterwards.
    monkeypatch.setattr(proc, "_scripts_dirs", functools.cache(proc._scripts_dirs.__wrapped__))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert proc.which(name) == str(tool)


# -- no programs from the current directory (Windows) ----------------------------------------------
def _executable(path: Path) -> Path:
    import stat  # noqa: PLC0415

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("", encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def _windows_which(cmd: str, mode: int = os.F_OK | os.X_OK, path: str | None = None) -> str | None:
    """shutil.which as on Windows: the current directory is searched first unless listed."""
    dirs = (path or "").split(os.pathsep)
    if os.curdir not in dirs:
        dirs.insert(0, os.curdir)
    for directory in dirs:
        candidate = Path(directory) / cmd
        if candidate.is_file() and os.access(candidate, mode):
            return str(candidate)
    return None


def test_a_tool_in_the_current_directory_is_never_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A repository under test that ships a `git.bat`/`semgrep.cmd` must not run instead of the tool.
    import shutil  # noqa: PLC0415

    repo, bin_dir = tmp_path / "repo", tmp_path / "bin"
    _executable(repo / "dex-fake-tool")
    real = _executable(bin_dir / "dex-fake-tool")
    monkeypatch.chdir(repo)
    monkeypatch.setattr(shutil, "which", _windows_which)
    search = os.pathsep.join([".", "relative-dir", str(bin_dir)])
    hazard = _windows_which("dex-fake-tool", path=search)
    assert hazard is not None
    assert not Path(hazard).is_absolute()  # what shutil.which does on Windows: the repo's copy
    assert proc.which_outside_cwd("dex-fake-tool", search) == str(real)
    assert proc.which_outside_cwd("dex-fake-tool", ".") is None


@pytest.mark.parametrize("arg", ["main & calc", "100%PATH%", 'a"b', "x|y", "^", "line\nbreak"])
def test_cmd_metacharacters_are_refused_for_batch_shims(arg: str) -> None:
    from dex_tasks.errors import UsageError  # noqa: PLC0415

    with pytest.raises(UsageError, match=r"cmd\.exe"):
        proc.check_batch_arguments("C:\\tools\\trivy.CMD", ["image", arg])


def test_plain_arguments_and_real_executables_pass() -> None:
    image = "ghcr.io/o/app:sha-1a2b3c4d"
    proc.check_batch_arguments("C:\\tools\\trivy.cmd", ["image", "--", image, "C:\\x y"])
    proc.check_batch_arguments("C:\\Program Files\\Git\\cmd\\git.exe", ["log", "--format=%H & %s"])
    proc.check_batch_arguments("/usr/bin/git", ["log", "--format=%H & %s"])
