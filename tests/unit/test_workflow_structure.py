"""The workflows are thin: every step is checkout, setup-uv, or one line calling a task that exists.

Also the security rules of the workflows (pins, permissions, tokens, concurrency) and that the
caller examples match the reusable workflows they call (inputs, secrets, permissions).
"""

from __future__ import annotations

import re
import shlex
import subprocess
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pytest

from dex_tasks.registry import BY_NAME
from tests.helpers import REPO_ROOT
from tests.workflow_runner import load_workflow

if TYPE_CHECKING:
    from pathlib import Path

WORKFLOWS_DIR = REPO_ROOT / ".github" / "workflows"
EXAMPLES_DIR = REPO_ROOT / "examples" / "workflows"
WORKFLOWS = sorted(WORKFLOWS_DIR.glob("*.yml"))
EXAMPLES = sorted(EXAMPLES_DIR.glob("*.yml"))
REUSABLE = ("dex-ci", "dex-security", "dex-cd", "dex-pr-preview", "dex-promote", "dex-rollback")

# The actions a thin job may use; everything else is a `run:` step calling a task.
ALLOWED_ACTIONS = {
    "actions/checkout",
    "astral-sh/setup-uv",
    "actions/upload-artifact",
    "github/codeql-action/upload-sarif",
    "github/codeql-action/init",
    "github/codeql-action/analyze",
    "aquasecurity/setup-trivy",  # trivy is not on GitHub's runner images
}
PINNED_USES = re.compile(r"^\s*(?:-\s+)?uses:\s+(?P<ref>\S+)@(?P<sha>[0-9a-f]{40})\s+#\s+(?P<comment>\S.*)$")
USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s+(?P<value>\S+)")
PUSHING_TASKS = {"bump-overlay", "promote", "rollback"}
TOKEN_TASKS = PUSHING_TASKS | {"image-build"}

Step = Mapping[str, Any]


def _jobs(path: Path) -> dict[str, Any]:
    jobs = load_workflow(path).get("jobs")
    assert isinstance(jobs, dict), path
    return jobs


def _all_steps() -> list[tuple[str, str, Step]]:
    return [
        (path.name, job, step)
        for path in WORKFLOWS
        for job, spec in _jobs(path).items()
        for step in spec.get("steps") or []
    ]


def _run_steps() -> list[tuple[str, str, Step]]:
    return [item for item in _all_steps() if "run" in item[2]]


def _pr_step(line: str) -> bool:
    """Does this task call open or update a PR (so it needs pull-requests: write and a token)?"""
    argv = shlex.split(line)
    task = _task_of(line)
    return task in {"bump-overlay", "promote"} or (task == "preview" and "comment" in argv)


def _task_of(line: str) -> str:
    """The task a run line calls, or an AssertionError saying why the line is not a task call."""
    argv = shlex.split(line)
    if argv[:2] == ["uv", "run"]:
        argv = argv[2:]
    if argv[:1] == ["poe"] and len(argv) > 1:
        return argv[1]
    if argv[:1] == ["dex-tasks"] and len(argv) > 1:
        return argv[1]
    if argv[:2] == ["nox", "-s"] and len(argv) > 2:
        return argv[2]
    raise AssertionError(f"run: {line!r} is not `uv run poe|dex-tasks <task>` or `nox -s <task>`")


def test_the_workflows_exist() -> None:
    names = {path.stem for path in WORKFLOWS}
    assert set(REUSABLE) | {"ci"} <= names
    assert {"pipeline", "pr-preview", "promote", "rollback"} <= {path.stem for path in EXAMPLES}


@pytest.mark.parametrize("name", REUSABLE)
def test_reusable_workflows_are_workflow_call_with_typed_inputs(name: str) -> None:
    triggers = load_workflow(WORKFLOWS_DIR / f"{name}.yml")["on"]
    call = triggers["workflow_call"]
    for input_name, spec in (call.get("inputs") or {}).items():
        assert spec.get("type") in {"string", "boolean", "number"}, (name, input_name)
        assert spec.get("description"), (name, input_name)
    for secret, spec in (call.get("secrets") or {}).items():
        assert "required" in spec, (name, secret)


def test_promote_and_rollback_are_also_buttons() -> None:
    for name in ("dex-promote", "dex-rollback"):
        triggers = load_workflow(WORKFLOWS_DIR / f"{name}.yml")["on"]
        assert "workflow_dispatch" in triggers
        # The button and the call take the same inputs.
        assert set(triggers["workflow_dispatch"]["inputs"]) <= set(triggers["workflow_call"]["inputs"])
    promote = load_workflow(WORKFLOWS_DIR / "dex-promote.yml")["on"]["workflow_dispatch"]["inputs"]
    assert {"from", "to", "tag"} == set(promote)
    rollback = load_workflow(WORKFLOWS_DIR / "dex-rollback.yml")["on"]["workflow_dispatch"]["inputs"]
    assert {"env", "tag", "emergency"} == set(rollback)
    assert rollback["emergency"]["type"] == "boolean"


def test_every_run_step_is_one_line_calling_a_task_that_exists() -> None:
    steps = _run_steps()
    assert len(steps) >= 15
    for workflow, job, step in steps:
        line = step["run"]
        assert "\n" not in line.strip(), f"{workflow}:{job}: multi-line run: {line!r}"
        task = _task_of(line)
        assert task in BY_NAME, f"{workflow}:{job}: unknown task {task!r} in {line!r}"
        # No shell: the line must survive argv splitting, so no pipes, redirects or substitutions.
        assert not re.search(r"[|;&<>`]|\$\(", line), f"{workflow}:{job}: shell syntax in {line!r}"


def test_no_expression_is_interpolated_into_run() -> None:
    """Template injection: values reach run: through env: and "$VAR", never through ${{ }}."""
    for workflow, job, step in _run_steps():
        assert "${{" not in step["run"], f"{workflow}:{job}: {step['run']!r}"
    for path in [*WORKFLOWS, *EXAMPLES]:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.match(r"^\s*(?:-\s+)?run:", line):
                assert "github.event" not in line, f"{path.name}:{number}"


def test_tokens_are_passed_by_env_only() -> None:
    for workflow, job, step in _run_steps():
        task = _task_of(step["run"])
        env = step.get("env") or {}
        if task in TOKEN_TASKS or _pr_step(step["run"]):
            assert "GITHUB_TOKEN" in env, f"{workflow}:{job}: {task} needs GITHUB_TOKEN in env:"
        for name, value in env.items():
            if "secrets." in str(value) or "github.token" in str(value):
                assert name.endswith(("TOKEN", "PASSWORD", "USER")) or name.startswith("ARGOCD_"), (
                    workflow,
                    job,
                    name,
                )


def test_every_action_is_pinned_by_full_sha_with_a_version_comment() -> None:
    seen: set[str] = set()
    for path in [*WORKFLOWS, *EXAMPLES]:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            uses = USES_LINE.match(line)
            if not uses:
                continue
            if uses.group("value").startswith("./.github/workflows/"):
                assert path.parent == WORKFLOWS_DIR, f"{path.name}:{number}: local reusable workflow"
                continue
            pinned = PINNED_USES.match(line)
            assert pinned, f"{path.name}:{number}: not pinned by a 40-hex SHA with a version comment: {line}"
            assert re.search(r"\d+\.\d+", pinned.group("comment")), f"{path.name}:{number}: {line}"
            seen.add(pinned.group("ref"))
    actions = {ref for ref in seen if not ref.startswith("data-literate/dex-tasks/")}
    assert actions <= ALLOWED_ACTIONS, actions - ALLOWED_ACTIONS


def test_one_sha_per_action() -> None:
    """The same action at two different commits is a half-done update."""
    pins: dict[str, set[str]] = {}
    for path in [*WORKFLOWS, *EXAMPLES]:
        for line in path.read_text(encoding="utf-8").splitlines():
            pinned = PINNED_USES.match(line)
            if pinned:
                repo = "/".join(pinned.group("ref").split("/")[:2])
                pins.setdefault(repo, set()).add(f"{pinned.group('sha')} {pinned.group('comment')}")
    for repo, values in pins.items():
        assert len(values) == 1, (repo, values)


def test_steps_are_checkout_setup_uv_then_tasks() -> None:
    for path in WORKFLOWS:
        for job, spec in _jobs(path).items():
            steps = spec.get("steps")
            if steps is None:
                continue
            uses = [str(step.get("uses", "")).split("@")[0] for step in steps]
            assert uses[0] == "actions/checkout", (path.name, job)
            if any("run" in step for step in steps):
                assert uses[1] == "astral-sh/setup-uv", (path.name, job)
            for step in steps:
                if "uses" in step:
                    assert str(step["uses"]).split("@")[0] in ALLOWED_ACTIONS, (path.name, job, step["uses"])


def test_least_privilege_permissions() -> None:
    for path in [*WORKFLOWS, *EXAMPLES]:
        data = load_workflow(path)
        assert data.get("permissions") == {}, f"{path.name}: top-level permissions must be {{}}"
        for job, spec in data["jobs"].items():
            permissions = spec.get("permissions")
            assert isinstance(permissions, dict), f"{path.name}:{job}: no job-level permissions"
            assert "write-all" not in str(permissions)
            for scope, level in permissions.items():
                assert level in {"read", "write"}, (path.name, job, scope)


def test_each_write_permission_is_needed() -> None:
    """Each write scope only where a step needs it: push (contents), image (packages), PR, SARIF."""
    for path in WORKFLOWS:
        for job, spec in _jobs(path).items():
            if "steps" not in spec:
                continue
            permissions = spec["permissions"]
            tasks = {_task_of(step["run"]) for step in spec["steps"] if "run" in step}
            actions = {str(step.get("uses", "")).split("@")[0] for step in spec["steps"]}
            assert (permissions.get("contents") == "write") == bool(tasks & PUSHING_TASKS), (path.name, job)
            assert (permissions.get("packages") == "write") == ("image-build" in tasks), (path.name, job)
            # rollback pushes straight to the env's branch (--direct by default): no PR, no PR scope.
            opens_prs = any(_pr_step(step["run"]) for step in spec["steps"] if "run" in step)
            assert (permissions.get("pull-requests") == "write") == opens_prs, (path.name, job)
            needs_events = bool(
                actions & {"github/codeql-action/upload-sarif", "github/codeql-action/analyze"}
            )
            assert (permissions.get("security-events") == "write") == needs_events, (path.name, job)


def test_checkout_persists_credentials_only_where_a_task_pushes() -> None:
    for path in WORKFLOWS:
        for job, spec in _jobs(path).items():
            for step in spec.get("steps") or []:
                if str(step.get("uses", "")).startswith("actions/checkout@"):
                    pushes = spec["permissions"].get("contents") == "write"
                    assert step["with"]["persist-credentials"] is pushes, (path.name, job)
                    # And no job that persists a credential uploads the workspace as an artifact.
                    if pushes:
                        uses = [str(s.get("uses", "")) for s in spec["steps"]]
                        assert not any(u.startswith("actions/upload-artifact@") for u in uses), (
                            path.name,
                            job,
                        )


def test_deploy_jobs_have_a_concurrency_group_per_env() -> None:
    groups: dict[str, str] = {}
    for path in WORKFLOWS:
        for job, spec in _jobs(path).items():
            permissions = spec.get("permissions") or {}
            if permissions.get("contents") == "write" or permissions.get("packages") == "write":
                concurrency = spec.get("concurrency")
                assert isinstance(concurrency, dict), f"{path.name}:{job}: deploy job without concurrency"
                assert "github.repository" in concurrency["group"], (path.name, job)
                groups[f"{path.stem}:{job}"] = concurrency["group"]
                if permissions.get("contents") == "write":
                    # A queued deploy must not cancel a running one halfway through a push.
                    assert concurrency["cancel-in-progress"] is False, (path.name, job)
                    assert "dex-deploy-" in concurrency["group"], (path.name, job)
    assert {"dex-cd:deliver", "dex-promote:promote", "dex-rollback:rollback", "dex-pr-preview:up"} <= set(
        groups
    )


def test_cd_blocks_the_bump_on_the_scan_but_always_uploads_the_sarif() -> None:
    steps = _jobs(WORKFLOWS_DIR / "dex-cd.yml")["deliver"]["steps"]
    order = [step.get("id") or str(step.get("uses", step.get("run", ""))).split("@")[0] for step in steps]
    assert order.index("build") < order.index("scan")
    sarif = next(
        step for step in steps if str(step.get("uses", "")).startswith("github/codeql-action/upload-sarif")
    )
    assert "always()" in sarif["if"]
    bumps = [step for step in steps if "bump-overlay" in str(step.get("run", ""))]
    assert [shlex.split(step["run"])[4:] for step in bumps] == [["dev", "$TAG"], ["stage", "prod", "$TAG"]]
    for step in bumps:
        assert not re.search(r"always\(\)|failure\(\)|cancelled\(\)", step["if"])  # implicit success()
        assert step["env"]["TAG"] == "${{ steps.build.outputs.sha }}"


def test_this_repo_ci_dogfoods_the_reusable_workflows() -> None:
    jobs = _jobs(WORKFLOWS_DIR / "ci.yml")
    assert jobs["ci"]["uses"] == "./.github/workflows/dex-ci.yml"
    assert jobs["security"]["uses"] == "./.github/workflows/dex-security.yml"
    runs = [step["run"] for step in _jobs(WORKFLOWS_DIR / "dex-ci.yml")["lint"]["steps"] if "run" in step]
    runs += [
        step["run"] for step in _jobs(WORKFLOWS_DIR / "dex-ci.yml")["test-cov"]["steps"] if "run" in step
    ]
    assert runs == ["uv run poe lint", "uv run poe test-cov"]


def _callers() -> list[tuple[Path, str, dict[str, Any]]]:
    callers = []
    for path in [*EXAMPLES, WORKFLOWS_DIR / "ci.yml"]:
        for job, spec in _jobs(path).items():
            if "uses" in spec:
                callers.append((path, job, spec))
    return callers


def _callee_versions(uses: str) -> list[tuple[str, dict[str, Any]]]:
    """The called workflow as it is now and, for a SHA pin in this clone's history, as pinned."""
    if uses.startswith("./"):
        return [(uses, load_workflow(REPO_ROOT / uses))]
    match = re.fullmatch(
        r"data-literate/dex-tasks/(?P<path>\.github/workflows/[\w.-]+\.yml)@(?P<sha>[0-9a-f]{40})", uses
    )
    assert match, uses
    current = REPO_ROOT / match.group("path")
    assert current.is_file(), uses
    versions = [(current.name, load_workflow(current))]
    pinned = subprocess.run(
        ["git", "show", f"{match.group('sha')}:{match.group('path')}"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    if pinned.returncode == 0:
        from ruamel.yaml import YAML  # noqa: PLC0415 - only this test reads YAML text

        versions.append((f"{current.name}@{match.group('sha')[:8]}", YAML(typ="safe").load(pinned.stdout)))
    return versions


def test_callers_match_the_reusable_workflows() -> None:
    """Inputs and secrets a caller passes are declared; required ones are passed; permissions suffice.

    Checked against the workflow as it is now and as the example pins it.
    """
    callers = _callers()
    assert len(callers) >= 6
    for path, job, spec in callers:
        for label, callee in _callee_versions(spec["uses"]):
            _check_call(f"{path.name}:{job} -> {label}", spec, callee)


def _check_call(where: str, spec: Mapping[str, Any], callee: Mapping[str, Any]) -> None:
    call = callee["on"]["workflow_call"]
    declared_inputs = call.get("inputs") or {}
    declared_secrets = call.get("secrets") or {}
    given_inputs = spec.get("with") or {}
    given_secrets = spec.get("secrets") or {}
    assert set(given_inputs) <= set(declared_inputs), where
    assert given_secrets == "inherit" or set(given_secrets) <= set(declared_secrets), where
    for name, input_spec in declared_inputs.items():
        if input_spec.get("required"):
            assert name in given_inputs, (where, name)
    # A called workflow's job can only keep or reduce the caller's permissions.
    granted = spec.get("permissions") or {}
    for callee_job, callee_spec in callee["jobs"].items():
        for scope, level in (callee_spec.get("permissions") or {}).items():
            allowed = {"read", "write"} if level == "read" else {"write"}
            assert granted.get(scope) in allowed, f"{where}: {callee_job} needs {scope}={level}"


def test_examples_pin_a_commit_that_has_the_workflow() -> None:
    for path, job, spec in _callers():
        if path.parent != EXAMPLES_DIR:
            continue
        ref, sha = spec["uses"].split("@")
        workflow_path = ref.removeprefix("data-literate/dex-tasks/")
        known = subprocess.run(
            ["git", "cat-file", "-e", f"{sha}:{workflow_path}"],
            cwd=REPO_ROOT,
            capture_output=True,
            check=False,
        )
        if subprocess.run(
            ["git", "cat-file", "-e", sha], cwd=REPO_ROOT, capture_output=True, check=False
        ).returncode:
            pytest.skip(f"{sha} is not in this clone's history (shallow clone?)")
        assert known.returncode == 0, f"{path.name}:{job}: {sha} has no {workflow_path}"
