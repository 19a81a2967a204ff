"""completion: the bash, zsh and fish scripts, run in the real shells against the real CLI.

Each script is sourced in its shell and asked for completions the way the shell asks: bash and zsh
(through bashcompinit) call ``_dex_tasks`` with ``COMP_WORDS``/``COMP_CWORD``; fish answers
``complete -C LINE``. Env names come from the project's ``[tool.dex] environments`` (the script
calls ``dex-tasks completion --list-envs``), so the project here has unusual ones.
"""

from __future__ import annotations

import json
import os
import subprocess
import sysconfig
from typing import TYPE_CHECKING

import pytest

from dex_tasks import cli, registry
from dex_tasks.tasks import completion
from tests.helpers import need_tool

if TYPE_CHECKING:
    from pathlib import Path

    from tests.conftest import CliRunner

PYPROJECT = '[tool.dex]\nimage = "ghcr.io/acme/shop"\nenvironments = ["qa", "live"]\n'


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text(PYPROJECT, encoding="utf-8")
    return tmp_path


def _env() -> dict[str, str]:
    # The console script first on PATH, as after `uv add --dev dex-tasks` in an activated venv.
    scripts = sysconfig.get_path("scripts")
    return {**os.environ, "PATH": f"{scripts}{os.pathsep}{os.environ.get('PATH', '')}"}


def _script(run_cli: CliRunner, shell: str, tmp_path: Path) -> Path:
    result = run_cli("completion", shell)
    assert result.code == 0, result.err
    path = tmp_path / f"dex-tasks.{shell}"
    path.write_text(result.out, encoding="utf-8")
    return path


def _bash_like(shell: str, script: Path, words: list[str], cwd: Path, prelude: str = "") -> list[str]:
    quoted = " ".join("'" + w.replace("'", "'\\''") + "'" for w in words)
    code = (
        f"source {script}; {prelude}COMP_WORDS=({quoted}); COMP_CWORD={len(words) - 1}; "
        '_dex_tasks; printf "%s\\n" "${COMPREPLY[@]}"'
    )
    done = subprocess.run(
        [need_tool(shell), "-c", code],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return [line for line in done.stdout.splitlines() if line]


def test_bash_completes_tasks_options_choices_and_configured_envs(
    run_cli: CliRunner, project: Path, tmp_path: Path
) -> None:
    script = _script(run_cli, "bash", tmp_path)

    def ask(*words: str, cwd: Path = project) -> list[str]:
        return _bash_like("bash", script, list(words), cwd)

    assert ask("dex-tasks", "pro") == ["promote"]
    assert set(ask("dex-tasks", "")) >= {spec.name for spec in registry.TASKS}
    assert ask("dex-tasks", "promote", "") == ["qa", "live"]  # from [tool.dex], not the defaults
    assert ask("dex-tasks", "promote", "qa", "l") == ["live"]
    assert ask("dex-tasks", "promote", "--verify", "") == ["auto", "git", "live"]
    assert ask("dex-tasks", "rollback", "--em") == ["--emergency"]
    assert ask("dex-tasks", "preview", "") == ["list", "health", "down", "comment"]
    assert ask("dex-tasks", "completion", "") == ["bash", "zsh", "fish"]
    assert ask("dex-tasks", "init", "--rollout", "") == ["canary", "bluegreen"]
    # -C DIR anywhere before the task: the envs of *that* project, and the task still found.
    assert ask("dex-tasks", "-C", str(project), "history", "", cwd=tmp_path.parent) == ["qa", "live"]
    assert "--list-envs" not in ask("dex-tasks", "completion", "--")  # the hidden helper stays hidden


def test_zsh_runs_the_same_completion_through_bashcompinit(
    run_cli: CliRunner, project: Path, tmp_path: Path
) -> None:
    script = _script(run_cli, "zsh", tmp_path)
    # What zsh's _bash_complete sets before it calls the function (zsh/Completion/bashcompinit).
    prelude = "emulate -L sh; setopt kshglob noshglob braceexpand; "
    # zsh's compgen does not filter by the word (zsh's own matcher does): the candidates are all there.
    assert "promote" in _bash_like("zsh", script, ["dex-tasks", "pro"], project, prelude)
    assert _bash_like("zsh", script, ["dex-tasks", "promote", ""], project, prelude) == ["qa", "live"]


def test_fish_completes_tasks_with_help_and_configured_envs(
    run_cli: CliRunner, project: Path, tmp_path: Path
) -> None:
    script = _script(run_cli, "fish", tmp_path)

    def ask(line: str) -> list[str]:
        done = subprocess.run(
            [need_tool("fish"), "-c", f"source {script}; complete -C {json.dumps(line)}"],
            cwd=project,
            env=_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return [row.split("\t")[0] for row in done.stdout.splitlines()]

    assert ask("dex-tasks pro") == ["promote"]
    assert sorted(ask("dex-tasks promote ")) == ["live", "qa"]
    assert ask("dex-tasks promote --verify ") == ["auto", "git", "live"]
    assert "--emergency" in ask("dex-tasks rollback --")


def test_list_envs_prints_the_configured_envs(run_cli: CliRunner, project: Path) -> None:
    result = run_cli("completion", "--list-envs", "-C", str(project))
    assert (result.code, result.out.split()) == (0, ["qa", "live"])


def test_completion_without_a_shell_or_with_an_unknown_one_is_exit_2(run_cli: CliRunner) -> None:
    assert run_cli("completion").code == 2
    result = run_cli("completion", "powershell")
    assert result.code == 2
    assert len(result.err.strip().splitlines()) == 1


def test_the_model_has_every_task_and_no_hidden_option() -> None:
    model = completion.describe(cli.build_parser())
    assert [c.name for c in model.commands] == [spec.name for spec in registry.TASKS]
    flags = {flag for c in model.commands for o in c.options for flag in o.flags}
    assert "--list-envs" not in flags
    by_name = {c.name: c for c in model.commands}
    assert by_name["promote"].envs
    assert by_name["bump-overlay"].envs
    assert not by_name["lint"].envs
