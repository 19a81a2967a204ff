"""Every task of the contract as plain data: name, module, help, example.

Imported by ``poe.py`` on every ``poe`` call, so it must stay free of heavy imports (stdlib only,
and little of it). ``cli.py`` builds its parser from this table; a task whose module is not in
this version shows as "not available in this version".
"""

from __future__ import annotations

import dataclasses
import importlib.util
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any


@dataclasses.dataclass(frozen=True, kw_only=True)
class TaskSpec:
    name: str
    module: str
    help: str
    example: str
    #: Needs the project's Python environment (ruff, mypy, pytest, semgrep): nox builds one from the lock.
    python: bool = False
    #: Changes something outside the working copy (registry, remote branches, PRs, cluster):
    #: never part of a bare ``nox`` run.
    mutating: bool = False
    #: Unknown arguments are passed through to the tool (pytest).
    passthrough: bool = False
    add_arguments: str = "add_arguments"
    run: str = "run"

    @property
    def available(self) -> bool:
        return importlib.util.find_spec(self.module) is not None


def _spec(name: str, help_: str, example: str, *, module_name: str = "", **kwargs: Any) -> TaskSpec:
    module = "dex_tasks.tasks." + (module_name or name.replace("-", "_"))
    return TaskSpec(name=name, module=module, help=help_, example=example, **kwargs)


TASKS: tuple[TaskSpec, ...] = (
    _spec("lint", "ruff check, ruff format --check and mypy; all run, one summary", "dex-tasks lint",
          python=True),
    _spec("lint-fix", "ruff check --fix and ruff format", "dex-tasks lint-fix src/", python=True,
          module_name="lint", add_arguments="add_fix_arguments", run="run_fix"),
    _spec("test", "pytest, extra arguments passed through", "dex-tasks test -k promote -x", python=True,
          passthrough=True),
    _spec("test-cov", "pytest with coverage: terminal report, coverage.xml, junit xml, fail-under",
          "dex-tasks test-cov", python=True, passthrough=True, module_name="test", run="run_cov"),
    _spec("security", "semgrep with the bundled offline rules, SARIF for code scanning",
          "dex-tasks security --sarif reports/semgrep.sarif", python=True),
    _spec("image-build", "docker build with sha-/latest/pr- tags and OCI labels; --push reports the digest",
          "dex-tasks image-build --push", mutating=True),
    _spec("trivy-scan", "trivy image scan; CRITICAL blocks, HIGH warns (gate computed from trivy's JSON)",
          "dex-tasks trivy-scan ghcr.io/data-literate/dex:sha-1a2b3c4d"),
    _spec("bump-overlay", "set the image tag in env overlays: branch, commit, push, PR",
          "dex-tasks bump-overlay dev sha-1a2b3c4d", mutating=True),
    _spec("promote", "promote the tag an env runs to the next env: verify, edit overlay, PR",
          "dex-tasks promote stage prod", mutating=True),
    _spec("rollback", "roll an env back to its last known good tag (--emergency: kubectl, Argo CD down)",
          "dex-tasks rollback prod", mutating=True),
    _spec("history", "every deployment of an env, from git, newest first",
          "dex-tasks history prod --limit 10"),
    _spec("status", "per env: tag in git, image live, Argo CD sync/health, DRIFT", "dex-tasks status"),
    _spec("preview", "PR preview environments: list, health PR, down PR, comment PR",
          "dex-tasks preview health 42", mutating=True),
    _spec("verify", "post-deploy smoke test: Argo CD synced+healthy, then the health URL",
          "dex-tasks verify prod --rollback-on-failure", mutating=True),
    _spec("config", "print the resolved [tool.dex] configuration and where each value came from",
          "dex-tasks config --json", module_name="config_cmd"),
    _spec("doctor", "check the tools, the configuration and the GitHub token", "dex-tasks doctor"),
)  # fmt: skip

BY_NAME: dict[str, TaskSpec] = {task.name: task for task in TASKS}
