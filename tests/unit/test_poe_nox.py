"""The poe and nox adapters: every task, the same names, the same CLI; poe imports nothing heavy."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import TYPE_CHECKING

import nox
import pytest

from dex_tasks import poe, registry
from tests.helpers import REPO_ROOT, run_poe, venv_env

if TYPE_CHECKING:
    from pathlib import Path

TASK_NAMES = [spec.name for spec in registry.TASKS]
HEAVY = ("requests", "urllib3", "ruamel", "ruamel.yaml", "nox")
# poe runs tasks() on every call: even these two cost more than the rest of its path together.
STDLIB_HEAVY = ("typing", "dataclasses", "argparse", "subprocess")


@pytest.mark.timeout(60)
def test_importing_the_poe_adapter_stays_light() -> None:
    # json only after the check: the adapter's own imports are what is measured.
    script = (
        "import sys\n"
        "import dex_tasks.poe\n"
        "tasks = dex_tasks.poe.tasks()\n"
        f"loaded = [m for m in {(*HEAVY, *STDLIB_HEAVY)!r} if m in sys.modules]\n"
        "import json\n"
        "print(json.dumps(loaded))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60, cwd=REPO_ROOT
    )
    assert json.loads(done.stdout) == []


def test_poe_tasks_cover_every_task() -> None:
    config = poe.tasks()
    assert list(config) == ["tasks"]
    tasks = config["tasks"]
    assert list(tasks) == TASK_NAMES
    for spec in registry.TASKS:
        assert tasks[spec.name] == {"help": spec.help, "cmd": f"dex-tasks {spec.name}"}
    json.dumps(config)  # poe reads it back as JSON


def test_poe_prefix_and_executable() -> None:
    tasks = poe.tasks(prefix="dex-", executable="python -m dex_tasks")["tasks"]
    assert tasks["dex-lint"]["cmd"] == "python -m dex_tasks lint"


def _poe_project(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "poe-consumer"\nversion = "0"\n'
        '[tool.poe]\ninclude_script = "dex_tasks.poe:tasks"\n'
        '[tool.dex]\nimage = "ghcr.io/acme/poe-consumer"\n',
        encoding="utf-8",
    )
    return tmp_path


@pytest.mark.timeout(120)
def test_real_poe_lists_every_task(tmp_path: Path) -> None:
    project = _poe_project(tmp_path)
    done = run_poe(project)
    listing = done.stdout + done.stderr
    assert "Configured tasks:" in listing
    for name in TASK_NAMES:
        assert f"\n  {name} " in listing, name


@pytest.mark.timeout(120)
def test_real_poe_runs_the_cli_with_extra_args(tmp_path: Path) -> None:
    project = _poe_project(tmp_path)
    done = run_poe(project, "config", "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["task"] == "config"
    assert data["config"]["image"] == "ghcr.io/acme/poe-consumer"
    assert "Poe => dex-tasks config --json" in done.stderr


@pytest.mark.timeout(120)
def test_real_poe_passes_the_exit_code_through(tmp_path: Path) -> None:
    project = _poe_project(tmp_path)
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text(encoding="utf-8") + 'imgae = "typo"\n', encoding="utf-8")
    done = run_poe(project, "config")
    assert done.returncode == 2
    assert "did you mean 'image'?" in done.stderr


# -- nox -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sessions() -> dict[str, object]:
    import dex_tasks.nox  # noqa: F401, PLC0415 - importing registers the sessions under test

    registered: dict[str, object] = dict(nox.registry.get())
    return registered


def test_nox_registers_every_task(sessions: dict[str, object]) -> None:
    assert [name for name in TASK_NAMES if name not in sessions] == []


def test_nox_session_kinds(sessions: dict[str, object]) -> None:
    for spec in registry.TASKS:
        func = sessions[spec.name]
        python = getattr(func, "python", None)
        backend = getattr(func, "venv_backend", None)
        default = getattr(func, "default", None)
        if spec.python:
            assert backend == "uv", spec.name
            assert python is not False, spec.name
        else:
            assert python is False, spec.name
        if spec.mutating:
            assert default is False, spec.name
    assert getattr(sessions["lint"], "default", None) is True
    assert getattr(sessions["lint-fix"], "default", None) is False  # a bare `nox` never rewrites files


class _Venv:
    location = "/tmp/nox-venv"


class _RecordingSession:
    """Just enough of nox.Session to see which commands an adapter session asks nox to run."""

    def __init__(self, name: str, posargs: list[str]) -> None:
        self.name = name
        self.posargs = posargs
        self.virtualenv = _Venv()
        self.calls: list[tuple[str, tuple[str, ...], dict[str, object]]] = []

    def run(self, *args: str, **kwargs: object) -> None:
        self.calls.append(("run", args, kwargs))

    def run_install(self, *args: str, **kwargs: object) -> None:
        self.calls.append(("run_install", args, kwargs))

    def error(self, message: str) -> None:
        raise RuntimeError(message)


def test_python_session_syncs_the_lock_then_runs_the_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dex_tasks.nox as dex_nox  # noqa: PLC0415 - see the sessions fixture

    (tmp_path / "uv.lock").write_text("version = 1\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    session = _RecordingSession("lint", ["src/", "--dry-run"])
    dex_nox._make_session(registry.BY_NAME["lint"])(session)  # type: ignore[arg-type]  # duck-typed session
    install, run = session.calls
    assert install[0] == "run_install"
    assert install[1][:3] == ("uv", "sync", "--locked")
    assert install[2]["env"] == {"UV_PROJECT_ENVIRONMENT": "/tmp/nox-venv"}
    assert install[2]["stderr"] is None  # not merged into stdout, which --json keeps for its object
    assert run == ("run", ("python", "-m", "dex_tasks", "lint", "src/", "--dry-run"), {"stderr": None})


def test_python_session_without_a_lock_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import dex_tasks.nox as dex_nox  # noqa: PLC0415 - see the sessions fixture

    monkeypatch.chdir(tmp_path)
    session = _RecordingSession("test", [])
    with pytest.raises(RuntimeError, match=r"uv\.lock not found"):
        dex_nox._make_session(registry.BY_NAME["test"])(session)  # type: ignore[arg-type]  # duck-typed session
    assert session.calls == []


def test_plain_session_uses_the_running_interpreter() -> None:
    import dex_tasks.nox as dex_nox  # noqa: PLC0415 - see the sessions fixture

    session = _RecordingSession("promote", ["stage", "prod", "--dry-run"])
    dex_nox._make_session(registry.BY_NAME["promote"])(session)  # type: ignore[arg-type]  # duck-typed session
    assert session.calls == [
        (
            "run",
            (sys.executable, "-m", "dex_tasks", "promote", "stage", "prod", "--dry-run"),
            {"stderr": None, "external": True},
        )
    ]


@pytest.mark.timeout(120)
def test_real_nox_lists_every_task_from_the_repo_noxfile() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "nox", "-l", "-f", str(REPO_ROOT / "noxfile.py")],
        capture_output=True, text=True, timeout=120, cwd=REPO_ROOT, env=venv_env(), check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    listing = done.stdout
    for spec in registry.TASKS:
        # `*` = in a bare `nox` run, `-` = only when asked for by name.
        marker = "*" if spec.name in {"lint", "test"} else "-"
        assert f"{marker} {spec.name} -> {spec.help}" in listing, spec.name


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("extra", "code"), [("", 0), ('imgae = "typo"\n', 2)])
def test_real_nox_json_is_pure_and_exit_codes_pass_through(tmp_path: Path, extra: str, code: int) -> None:
    # Regression: nox merged the CLI's stderr into stdout (so --json was not one JSON object) and
    # turned exit 2 into 1.
    project = tmp_path / "consumer"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        f'[project]\nname = "consumer"\n[tool.dex]\nimage = "ghcr.io/acme/app"\n{extra}', encoding="utf-8"
    )
    (project / "noxfile.py").write_text("import dex_tasks.nox  # noqa: F401\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "nox", "-s", "config", "--", "--json"],
        capture_output=True, text=True, timeout=120, cwd=project, env=venv_env(), check=False,
    )  # fmt: skip
    assert done.returncode == code, done.stderr
    data = json.loads(done.stdout)
    assert data["task"] == "config"
    assert data["exit_code"] == code
    if code:
        assert "did you mean 'image'?" in done.stderr
