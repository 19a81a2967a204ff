"""cli: the one parser; global flags anywhere, -C, the last-resort handler, Ctrl-C, --json errors."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from dex_tasks import cli, errors, registry
from dex_tasks.errors import UsageError
from tests.helpers import REPO_ROOT

if TYPE_CHECKING:
    from tests.conftest import CliRunner

CONTRACT = (
    "lint", "lint-fix", "test", "test-cov", "security", "image-build", "trivy-scan", "bump-overlay",
    "promote", "rollback", "history", "status", "preview", "verify", "config", "doctor",
    "demo", "init", "completion", "lock", "unlock", "locks", "metrics", "release-notes", "notify",
    "rollout",
)  # fmt: skip


def test_registry_has_every_task_of_the_contract() -> None:
    assert [spec.name for spec in registry.TASKS] == list(CONTRACT)
    for spec in registry.TASKS:
        assert spec.help
        assert spec.example.startswith("dex-tasks " + spec.name)


@pytest.mark.parametrize(
    ("argv", "dry_run", "as_json", "directory", "rest"),
    [
        (["promote", "stage", "prod", "--dry-run"], True, False, None, ["promote", "stage", "prod"]),
        (["--json", "status"], False, True, None, ["status"]),
        (["-C", "some/dir", "history", "prod", "--json"], False, True, "some/dir", ["history", "prod"]),
        (["history", "-Csome/dir", "prod"], False, False, "some/dir", ["history", "prod"]),
        (["history", "--directory=d", "prod"], False, False, "d", ["history", "prod"]),
        # After a literal `--` everything belongs to the tool, global-looking flags included.
        (["test", "-x", "--", "--json", "--dry-run", "-C", "x"], False, False, None,
         ["test", "-x", "--", "--json", "--dry-run", "-C", "x"]),
        (["test", "--dry-run", "--", "--json"], True, False, None, ["test", "--", "--json"]),
    ],
)  # fmt: skip
def test_split_global_flags(
    argv: list[str], dry_run: bool, as_json: bool, directory: str | None, rest: list[str]
) -> None:
    flags, remaining = cli.split_global_flags(argv)
    assert flags.dry_run is dry_run
    assert flags.json is as_json
    assert flags.directory == (Path(directory) if directory else None)
    assert remaining == rest


def test_dash_c_needs_a_value(run_cli: CliRunner) -> None:
    result = run_cli("config", "-C")
    assert result.code == 2
    assert "-C needs a directory" in result.err


def test_passthrough_args_reach_the_task() -> None:
    flags, args, spec = cli._parse(["test", "tests/unit", "-k", "promote", "--dry-run", "-x"])
    assert spec.name == "test"
    assert flags.dry_run
    assert args.passthrough == ["tests/unit", "-k", "promote", "-x"]
    flags, args, _ = cli._parse(["test-cov", "--json", "--", "--json", "-q"])
    assert flags.json
    assert args.passthrough == ["--json", "-q"]


def test_unknown_arguments_of_a_task_without_passthrough_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["config", "--bogus"]) == 2
    err = capsys.readouterr().err
    expected = "dex-tasks config: error: unrecognized arguments: --bogus (see: dex-tasks config --help)"
    assert err.strip() == expected


@pytest.mark.parametrize(
    "argv",
    [
        ["bump-overlay", "dev", "sha-1a2b3c4d", "--dry"],  # not --dry-run: must not run for real
        ["promote", "stage", "prod", "--dry-r"],
        ["config", "--js"],
        ["rollback", "dev", "--emerg"],
    ],
)
def test_abbreviated_flags_are_refused(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    # Regression: argparse took `--dry` as `--dry-run` on the task's parser, where nothing reads it,
    # and the task ran for real (pushing, committing) instead of printing its plan.
    assert cli.main(argv) == 2
    assert f"unrecognized arguments: {argv[-1]}" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        ([], "dex-tasks: error: the following arguments are required: TASK"),
        (["-C", "somewhere", "nope"], "dex-tasks: error: argument TASK: invalid choice: 'nope'"),
        (["history", "-C"], "dex-tasks history: error: -C needs a directory"),
    ],
)
def test_error_line_names_the_task_only_when_there_is_one(
    capsys: pytest.CaptureFixture[str], argv: list[str], line: str
) -> None:
    # Regression: "dex-tasks ?: error: ..." without a task, and "-C somewhere" named task "somewhere".
    assert cli.main(["--json", *argv]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(line)
    assert json.loads(captured.out)["task"] == (argv[0] if argv[:1] == ["history"] else None)


def test_argument_errors_are_one_json_object_under_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["history", "--json", "--limit", "many"]) == 2
    captured = capsys.readouterr()
    payload = json.loads(captured.out)
    assert payload["task"] == "history"
    assert payload["exit_code"] == 2
    assert "invalid int value: 'many'" in payload["error"]
    assert len(captured.err.strip().splitlines()) == 1


@pytest.mark.parametrize("argv", [["--help"], ["--help", "history"], ["-h", "--json", "rollback", "prod"]])
def test_help_lists_every_task(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    # A task named after the top-level --help: still the whole list (a run builds only its own).
    with pytest.raises(SystemExit) as caught:
        cli.main(argv)
    assert caught.value.code == 0
    out = capsys.readouterr().out
    for name in CONTRACT:
        assert f"\n    {name} " in out or f"\n    {name}\n" in out, name
    assert "--dry-run" in out
    assert "exit codes" in out
    for spec in registry.TASKS:  # the epilog promises an example per task: it shows one
        assert f"\n  {spec.example}\n" in out, spec.name


def test_task_help_has_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["lint", "--help"])
    out = capsys.readouterr().out
    assert "example:\n  dex-tasks lint" in out
    assert "-C DIR" in out


def test_a_task_run_builds_only_its_own_subcommand(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[str] = []
    add_parser = argparse._SubParsersAction.add_parser

    def spy(self: argparse._SubParsersAction[argparse.ArgumentParser], name: str, **kw: Any) -> object:
        built.append(name)
        return add_parser(self, name, **kw)

    monkeypatch.setattr(argparse._SubParsersAction, "add_parser", spy)
    flags, args, spec = cli._parse(["history", "prod", "--limit", "3", "--json"])
    assert (built, spec.name, args.env, args.limit, flags.json) == (["history"], "history", "prod", 3, True)
    built.clear()
    with pytest.raises(UsageError, match="invalid choice"):
        cli._parse(["histroy", "prod"])
    assert len(built) == len(registry.TASKS)  # the error lists every task


@pytest.mark.parametrize("argv", [["-", "history", "prod"], ["-1", "history", "prod"]])
def test_a_word_before_the_task_is_refused_with_every_task_listed(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # Not the task's name first: argparse takes that word for TASK, and its "invalid choice" lists
    # the tasks it knows, so all of them must be built (not just the one named further on).
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "invalid choice" in err
    for name in CONTRACT:
        assert repr(name) in err


def test_dash_c_runs_in_that_directory(tmp_path: Path, run_cli: CliRunner) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.dex]\nimage = "ghcr.io/acme/x"\n', encoding="utf-8")
    result = run_cli("config", "--json", "-C", str(tmp_path))
    assert result.code == 0, result.err
    assert json.loads(result.out)["root"] == str(tmp_path.resolve())


def test_dash_c_not_a_directory(tmp_path: Path, run_cli: CliRunner) -> None:
    result = run_cli("config", "-C", str(tmp_path / "missing"))
    assert result.code == 2
    assert "not a directory" in result.err


def _plant_bug(monkeypatch: pytest.MonkeyPatch, where: str = "run") -> None:
    """Make the ``config`` task's run (or add_arguments) fail the way a bug does."""
    from dex_tasks.tasks import config_cmd  # noqa: PLC0415 - the module the planted bug goes into

    def broken(*_: object) -> None:
        token = {"GITHUB_TOKEN": "ghp_canary"}  # a secret in the message stays masked too
        raise KeyError(f"no such key\nsecond line {token['GITHUB_TOKEN']}")

    monkeypatch.setenv("GITHUB_TOKEN", "ghp_canary")
    monkeypatch.setattr(config_cmd, where, broken)


@pytest.mark.parametrize("where", ["run", "add_arguments"])
def test_a_bug_is_one_line_and_exit_70(
    where: str, monkeypatch: pytest.MonkeyPatch, run_cli: CliRunner, tmp_path: Path
) -> None:
    monkeypatch.delenv("DEX_DEBUG", raising=False)
    _plant_bug(monkeypatch, where)
    result = run_cli("config", cwd=tmp_path)
    assert result.code == 70
    assert result.out == ""
    assert result.err.count("\n") == 1
    assert result.err.startswith("dex-tasks config: internal error: KeyError: ")
    assert result.err.rstrip().endswith("(a bug; DEX_DEBUG=1 shows the traceback)")
    assert "Traceback" not in result.err
    assert "ghp_canary" not in result.err


def test_a_bug_under_json_is_one_object(
    monkeypatch: pytest.MonkeyPatch, run_cli: CliRunner, tmp_path: Path
) -> None:
    _plant_bug(monkeypatch)
    result = run_cli("config", "--json", "--dry-run", cwd=tmp_path)
    assert result.code == 70
    payload = json.loads(result.out)  # exactly one JSON object: json.loads refuses anything more
    assert payload["exit_code"] == 70
    assert payload["task"] == "config"
    assert payload["dry_run"] is True
    assert payload["error"].startswith("internal error: KeyError: ")
    assert "ghp_canary" not in result.out


def test_dex_debug_shows_the_traceback(
    monkeypatch: pytest.MonkeyPatch, run_cli: CliRunner, tmp_path: Path
) -> None:
    _plant_bug(monkeypatch)
    monkeypatch.setenv("DEX_DEBUG", "1")
    result = run_cli("config", cwd=tmp_path)
    assert result.code == 70
    assert "Traceback (most recent call last)" in result.err
    assert "in broken" in result.err
    assert result.err.splitlines()[-1].startswith("dex-tasks config: internal error: KeyError: ")
    assert "ghp_canary" not in result.err


def test_an_error_class_of_70_is_reported_like_any_dex_error(
    monkeypatch: pytest.MonkeyPatch, run_cli: CliRunner, tmp_path: Path
) -> None:
    from dex_tasks.tasks import config_cmd  # noqa: PLC0415

    def broken(*_: object) -> None:
        raise errors.OverlayInternalError("the splice changed two lines; this is a bug")

    monkeypatch.setattr(config_cmd, "run", broken)
    result = run_cli("config", "--json", cwd=tmp_path)
    assert result.code == 70
    assert json.loads(result.out)["exit_code"] == 70
    assert "error: the splice changed two lines" in result.err


@pytest.mark.parametrize("data", [{}, {"counts": {"CRITICAL": 1}}, {"exit_code": 0}])
def test_a_check_that_said_no_carries_error_and_exit_code(
    data: dict[str, object], monkeypatch: pytest.MonkeyPatch, run_cli: CliRunner, tmp_path: Path
) -> None:
    from dex_tasks.tasks import TaskResult, config_cmd  # noqa: PLC0415

    def refused(*_: object) -> TaskResult:
        return TaskResult(exit_code=1, message="gate: 1 CRITICAL finding blocks the image", data=dict(data))

    monkeypatch.setattr(config_cmd, "run", refused)
    result = run_cli("config", "--json", cwd=tmp_path)
    assert result.code == 1
    payload = json.loads(result.out)
    assert payload["exit_code"] == 1  # the task's data cannot contradict the exit code
    assert payload["error"] == "gate: 1 CRITICAL finding blocks the image"
    assert result.err == "dex-tasks config: gate: 1 CRITICAL finding blocks the image\n"


def test_running_a_task_imports_only_its_own_module() -> None:
    script = (
        "import sys\n"
        "from dex_tasks import cli\n"
        "cli.main(['config'])\n"
        "print(sorted(m for m in sys.modules if m.startswith('dex_tasks.tasks.')))\n"
        "print(sorted(m for m in ('subprocess', 'dex_tasks._popen', 'requests', 'ruamel', 'difflib')"
        " if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60, cwd=REPO_ROOT
    )
    assert done.stdout.splitlines()[-2] == "['dex_tasks.tasks.config_cmd']"
    # The task starts no process: the process mechanics, and everything heavy, stay unloaded.
    assert done.stdout.splitlines()[-1] == "[]"


def test_full_parser_knows_every_task_s_arguments() -> None:
    parser = cli.build_parser()
    help_text = parser.format_help()
    for name in CONTRACT:
        assert name in help_text
    args = parser.parse_args(["promote", "stage", "prod", "--direct"])
    assert args.task == "promote"


def test_unknown_task_lists_the_tasks(run_cli: CliRunner, tmp_path: Path) -> None:
    result = run_cli("promot", "stage", cwd=tmp_path)
    assert result.code == 2
    assert "invalid choice: 'promot'" in result.err
    assert "promote" in result.err
    assert result.err.count("\n") == 1


def test_config_error_json_payload(run_cli: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.dex]\nimgae = "x"\n', encoding="utf-8")
    result = run_cli("config", "--json", "--dry-run", cwd=tmp_path)
    assert result.code == 2
    payload = json.loads(result.out)
    assert payload["exit_code"] == 2
    assert payload["dry_run"] is True
    assert "imgae" in payload["error"]


def test_keyboard_interrupt_exits_130(
    monkeypatch: pytest.MonkeyPatch, run_cli: CliRunner, tmp_path: Path
) -> None:
    def interrupted(*_args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("dex_tasks.tasks.config_cmd.run", interrupted)
    result = run_cli("config", cwd=tmp_path)
    assert result.code == 130
    assert "interrupted" in result.err


def test_keyboard_interrupt_under_json_is_one_json_object(
    monkeypatch: pytest.MonkeyPatch, run_cli: CliRunner, tmp_path: Path
) -> None:
    # Regression: Ctrl-C under --json left stdout empty.
    def interrupted(*_args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("dex_tasks.tasks.config_cmd.run", interrupted)
    result = run_cli("config", "--json", cwd=tmp_path)
    assert result.code == 130
    expected = {"task": "config", "dry_run": False, "exit_code": 130, "error": "interrupted"}
    assert json.loads(result.out) == expected


def test_unexpected_os_error_is_one_line_and_one_json_object(
    monkeypatch: pytest.MonkeyPatch, run_cli: CliRunner, tmp_path: Path
) -> None:
    # Regression: a file-system error no task caught (e.g. a file where a directory should be)
    # reached the user as a Python traceback, and under --json with nothing on stdout.
    def blocked(*_args: object) -> None:
        raise FileExistsError(17, "File exists", str(tmp_path / "reports"))

    monkeypatch.setattr("dex_tasks.tasks.config_cmd.run", blocked)
    result = run_cli("config", "--json", cwd=tmp_path)
    assert result.code == 2
    assert json.loads(result.out)["error"] == f"{tmp_path / 'reports'}: File exists"
    assert result.err == f"dex-tasks config: error: {tmp_path / 'reports'}: File exists\n"


def test_error_messages_are_redacted(
    monkeypatch: pytest.MonkeyPatch, run_cli: CliRunner, tmp_path: Path
) -> None:
    token = "ghp_" + "Z9y8X7w6" * 4
    monkeypatch.setenv("GITHUB_TOKEN", token)
    result = run_cli("config", "-C", str(tmp_path / token))
    assert result.code == 2
    assert token not in result.err
    assert "***" in result.err


def test_task_exit_code_and_message(
    monkeypatch: pytest.MonkeyPatch, run_cli: CliRunner, tmp_path: Path
) -> None:
    from dex_tasks.tasks import TaskResult  # noqa: PLC0415 - only this test builds a result by hand

    monkeypatch.setattr(
        "dex_tasks.tasks.config_cmd.run",
        lambda *_: TaskResult(exit_code=1, message="the check said no", data={"n": 1}),
    )
    result = run_cli("config", "--json", cwd=tmp_path)
    assert result.code == 1
    assert json.loads(result.out) == {
        "task": "config",
        "dry_run": False,
        "exit_code": 1,
        "n": 1,
        "error": "the check said no",
    }
    assert "dex-tasks config: the check said no" in result.err


def test_missing_tool_exits_3_with_hint(
    monkeypatch: pytest.MonkeyPatch, run_cli: CliRunner, tmp_path: Path
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    # Nothing on the search path, not even the interpreter's own scripts dir.
    monkeypatch.setattr("dex_tasks.proc._search_path", lambda: str(empty))
    result = run_cli("lint", "--json", cwd=tmp_path)
    assert result.code == 3
    assert (
        "required tool 'ruff' was not found on PATH (install it with: uv add --dev dex-tasks)" in result.err
    )
    assert "$ ruff" not in result.err  # looked up before anything ran
    assert json.loads(result.out)["exit_code"] == 3


def test_a_closed_stdout_pipe_is_not_reported_as_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # `dex-tasks history prod | head`: main() lets BrokenPipeError through (entry() ends with 0)
    # instead of turning it into "error: Broken pipe" and exit 2 like other OSErrors.
    def task(*_: object) -> None:
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(cli, "_task_attr", lambda spec, attr: task if attr == spec.run else (lambda *_: None))
    with pytest.raises(BrokenPipeError):
        cli.main(["config"])


def test_bump_overlay_usage_reads_as_meant(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["bump-overlay", "--help"])
    assert capsys.readouterr().out.startswith("usage: dex-tasks bump-overlay [options] ENV [ENV...] TAG\n")
