"""Every task of the contract as plain data: name, module, help, example.

Imported by ``poe.py`` on *every* ``poe`` call (tab completion included) and by ``cli.py`` before
it knows which task runs, so it imports nothing at run time: not even ``dataclasses`` or
``typing``, which cost more than the rest of the poe path together (``bench/startup.py``).
"""

from __future__ import annotations

TASK_PACKAGE = "dex_tasks.tasks."


class TaskSpec:
    """One task: where its code lives and how the adapters treat it. Immutable once made."""

    __slots__ = (
        "add_arguments",
        "example",
        "help",
        "module",
        "mutating",
        "name",
        "passthrough",
        "python",
        "run",
    )

    name: str
    module: str
    help: str
    example: str
    #: Needs the project's Python environment (ruff, mypy, pytest, semgrep): nox builds one from the lock.
    python: bool
    #: Changes something outside the working copy (registry, remote branches, PRs, cluster):
    #: never part of a bare ``nox`` run.
    mutating: bool
    #: Unknown arguments are passed through to the tool (pytest).
    passthrough: bool
    #: The names, in ``module``, of ``add_arguments(parser)`` and ``run(ctx, args)``.
    add_arguments: str
    run: str

    def __init__(
        self,
        name: str,
        help_: str,
        example: str,
        *,
        module_name: str = "",
        python: bool = False,
        mutating: bool = False,
        passthrough: bool = False,
        add_arguments: str = "add_arguments",
        run: str = "run",
    ) -> None:
        values = {
            "name": name,
            "module": TASK_PACKAGE + (module_name or name.replace("-", "_")),
            "help": help_,
            "example": example,
            "python": python,
            "mutating": mutating,
            "passthrough": passthrough,
            "add_arguments": add_arguments,
            "run": run,
        }
        for key, value in values.items():
            object.__setattr__(self, key, value)

    def __setattr__(self, key: str, value: object) -> None:
        raise AttributeError(f"TaskSpec is immutable: cannot set {key!r}")

    def __repr__(self) -> str:
        return f"TaskSpec(name={self.name!r}, module={self.module!r})"


TASKS: tuple[TaskSpec, ...] = (
    TaskSpec("lint", "ruff check, ruff format --check and mypy; all run, one summary", "dex-tasks lint",
             python=True),
    TaskSpec("lint-fix", "ruff check --fix and ruff format", "dex-tasks lint-fix src/", python=True,
             module_name="lint", add_arguments="add_fix_arguments", run="run_fix"),
    TaskSpec("test", "pytest, extra arguments passed through", "dex-tasks test -k promote -x", python=True,
             passthrough=True),
    TaskSpec("test-cov", "pytest with coverage: terminal report, coverage.xml, junit xml, fail-under",
             "dex-tasks test-cov", python=True, passthrough=True, module_name="test", run="run_cov"),
    TaskSpec("security", "semgrep with the bundled offline rules, SARIF for code scanning",
             "dex-tasks security --sarif reports/semgrep.sarif", python=True),
    TaskSpec("image-build",
             "docker build with sha-/latest/pr- tags and OCI labels; --push reports the digest",
             "dex-tasks image-build --push", mutating=True),
    TaskSpec("trivy-scan", "trivy image scan; CRITICAL blocks, HIGH warns (gate computed from trivy's JSON)",
             "dex-tasks trivy-scan ghcr.io/data-literate/dex:sha-1a2b3c4d"),
    TaskSpec("bump-overlay", "set the image tag in env overlays: branch, commit, push, PR",
             "dex-tasks bump-overlay dev sha-1a2b3c4d", mutating=True),
    TaskSpec("promote", "promote the tag an env runs to the next env: verify, edit overlay, PR",
             "dex-tasks promote stage prod", mutating=True),
    TaskSpec("rollback", "roll an env back to its last known good tag (--emergency: kubectl, Argo CD down)",
             "dex-tasks rollback prod", mutating=True),
    TaskSpec("history", "every deployment of an env, from git, newest first",
             "dex-tasks history prod --limit 10"),
    TaskSpec("status", "per env: tag in git, image live, Argo CD sync/health, DRIFT", "dex-tasks status"),
    TaskSpec("preview", "PR preview environments: list, health PR, down PR, comment PR",
             "dex-tasks preview health 42", mutating=True),
    TaskSpec("verify", "post-deploy smoke test: Argo CD synced+healthy, then the health URL",
             "dex-tasks verify prod --rollback-on-failure", mutating=True),
    TaskSpec("config", "print the resolved [tool.dex] configuration and where each value came from",
             "dex-tasks config --json", module_name="config_cmd"),
    TaskSpec("doctor", "check the tools, the configuration and the GitHub token", "dex-tasks doctor"),
    TaskSpec("demo", "the whole runbook end to end in a throwaway sandbox repo (needs only git)",
             "dex-tasks demo --keep /tmp/dex-demo"),
    TaskSpec("init", "scaffold a consumer repo: [tool.dex], workflows, base, overlays, Argo CD apps",
             "dex-tasks init --app shop --image ghcr.io/acme/shop"),
    TaskSpec("completion", "print a shell completion script (env names come from [tool.dex])",
             "dex-tasks completion bash > ~/.local/share/bash-completion/completions/dex-tasks"),
    TaskSpec("lock", "lock an env for deploys (a ref on origin that laptop and CI both respect)",
             'dex-tasks lock prod --reason "db migration" --expires 2h', mutating=True),
    TaskSpec("unlock", "remove an env's deploy lock (someone else's needs --force)", "dex-tasks unlock prod",
             mutating=True, module_name="lock", add_arguments="add_unlock_arguments", run="run_unlock"),
    TaskSpec("locks", "every env's deploy lock: who, why, since, until", "dex-tasks locks",
             module_name="lock", add_arguments="add_locks_arguments", run="run_locks"),
    TaskSpec("metrics", "pipeline pass rate and durations against the targets; DORA from git; Argo CD syncs",
             "dex-tasks metrics --since 30d --env prod"),
    TaskSpec("release-notes", "the app commits a promotion FROM -> TO would ship, grouped by type",
             "dex-tasks release-notes stage prod"),
    TaskSpec("notify", "send a sample notification to the Slack and webhook targets (--test)",
             "dex-tasks notify --test", mutating=True),
    TaskSpec("rollout", "Argo Rollouts: status [--watch], promote [--full], abort (and the overlay back)",
             "dex-tasks rollout status prod --watch", mutating=True),
)  # fmt: skip

BY_NAME: dict[str, TaskSpec] = {task.name: task for task in TASKS}
