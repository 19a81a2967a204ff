"""nox adapter: ``import dex_tasks.nox`` in a noxfile registers one session per task, same names.

``nox -s promote -- stage prod --dry-run`` runs ``python -m dex_tasks promote stage prod --dry-run``:
``session.posargs`` go to the same CLI parser as everywhere else.

Tasks that drive the project's Python tools (``lint``, ``test``, ``security``...) get a session
virtualenv synced from the project's ``uv.lock`` with ``uv sync --locked`` (the nox + uv pattern),
so ``uvx nox -s lint`` uses exactly the ruff/mypy/pytest versions the project pinned, even when
nox itself was installed globally. The other tasks (git, docker, cluster) need no project
environment: they run ``python=False`` with the interpreter nox runs in.

A bare ``nox`` runs only :data:`DEFAULT_SESSIONS` (the checks that need nothing but the project's
own tools): it never builds, pushes, promotes, rolls back or rewrites files (``lint-fix``), and it
skips tasks that need arguments or a cluster.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nox
import nox.command

from dex_tasks.registry import TASKS, TaskSpec

if TYPE_CHECKING:
    from collections.abc import Callable

LOCK_FILE = "uv.lock"
DEFAULT_SESSIONS = frozenset({"lint", "test"})


def _sync_project(session: nox.Session) -> None:
    """Install the project and its default (dev) groups into the session venv from the lock."""
    if not Path(LOCK_FILE).is_file():
        session.error(
            f"{LOCK_FILE} not found in {Path.cwd()}: the {session.name!r} session installs the project's "
            "locked tools; run `uv lock` and commit uv.lock"
        )
    venv = session.virtualenv.location
    # UV_PROJECT_ENVIRONMENT points `uv sync` at the session venv instead of the project's .venv
    # (https://nox.thea.codes/en/stable/cookbook.html, "Using a lockfile").
    session.run_install(
        "uv",
        "sync",
        "--locked",
        f"--python={venv}",
        env={"UV_PROJECT_ENVIRONMENT": venv},
        external=True,
        stderr=None,  # uv's progress stays on stderr: stdout is the task's (one JSON object under --json)
    )


def _run_cli(session: nox.Session, *args: str, **kwargs: Any) -> None:
    """Run the CLI like the console script would: its stderr stays stderr, its exit code counts.

    nox merges a command's stderr into stdout by default, which breaks ``--json`` (exactly one
    JSON object on stdout), and reports every failure as exit 1. A check that said no (1) stays
    nox's ordinary session failure; bad input (2), a missing tool (3), a remote failure (4) and
    an interrupt (130) end nox with that same code, as ``dex-tasks`` and ``poe`` do.
    """
    try:
        session.run(*args, stderr=None, **kwargs)
    except nox.command.CommandFailed as exc:
        code = getattr(exc, "return_code", None)
        if isinstance(code, int) and code > 1:
            raise SystemExit(code) from None
        raise


def _make_session(spec: TaskSpec) -> Callable[[nox.Session], None]:
    if spec.python:

        def session_func(session: nox.Session) -> None:
            _sync_project(session)
            _run_cli(session, "python", "-m", "dex_tasks", spec.name, *session.posargs)

    else:

        def session_func(session: nox.Session) -> None:
            # The interpreter nox itself runs in has dex-tasks installed (it imported this module).
            _run_cli(session, sys.executable, "-m", "dex_tasks", spec.name, *session.posargs, external=True)

    session_func.__name__ = spec.name.replace("-", "_")
    session_func.__qualname__ = session_func.__name__
    session_func.__doc__ = spec.help
    return session_func


def register() -> None:
    """Register every task as a nox session (idempotent per nox registry: same names replace)."""
    for spec in TASKS:
        func = _make_session(spec)
        default = spec.name in DEFAULT_SESSIONS and not spec.mutating
        if spec.python:
            nox.session(name=spec.name, venv_backend="uv", default=default)(func)
        else:
            nox.session(name=spec.name, python=False, default=default)(func)


register()
