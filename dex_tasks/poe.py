"""poethepoet adapter: ``[tool.poe] include_script = "dex_tasks.poe:tasks"``.

poe runs :func:`tasks` in a subprocess on *every* ``poe`` invocation (tab completion included) and
reads the returned dict as ``[tool.poe]`` config, so this module imports only the task table
(``dex_tasks.registry``, which imports nothing): no nox, requests or ruamel, and not even
``typing`` at run time (annotations are strings here, see ``from __future__``).

Each task is a ``cmd`` task calling the one CLI. poe appends a ``cmd`` task's free arguments to
the command, so ``poe test -k promote -x`` runs ``dex-tasks test -k promote -x`` and
``poe promote stage prod --dry-run`` reaches the CLI's global flags unchanged.
"""

from __future__ import annotations

from dex_tasks.registry import TASKS

EXECUTABLE = "dex-tasks"


def tasks(prefix: str = "", executable: str = EXECUTABLE) -> dict[str, dict[str, dict[str, str]]]:
    """Every dex-tasks task as a poe ``cmd`` task; ``prefix`` namespaces them (e.g. ``"dex-"``).

    ``executable`` is the command poe runs; poe resolves it in the project's environment.
    """
    poe_tasks = {
        prefix + spec.name: {"help": spec.help, "cmd": f"{executable} {spec.name}"} for spec in TASKS
    }
    return {"tasks": poe_tasks}
