"""The workflows are thin: every step is checkout, setup-uv, or one line calling a task that exists.

Also the security rules of the workflows (pins, permissions, tokens, concurrency) and that the
caller examples match the reusable workflows they call (inputs, secrets, permissions).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import tomllib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pytest

from dex_tasks.registry import BY_NAME
from tests.helpers import REPO_ROOT, need
from tests.workflow_runner import condition, evaluate, load_workflow

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
# The one run: step that is not a task call: a fixed notice (no variables, no expressions).
NOTICE = re.compile(r'^echo "::notice title=[\w ]+::[^"$`\\]+"$')
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


def _is_notice(step: Step) -> bool:
    return "run" in step and bool(NOTICE.match(str(step["run"]).strip()))


def _run_steps() -> list[tuple[str, str, Step]]:
    """The task-calling run: steps (every run: step but the fixed notices)."""
    return [item for item in _all_steps() if "run" in item[2] and not _is_notice(item[2])]


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
        # The button and the call take the same inputs: `inputs` is one context for both triggers,
        # and actionlint rejects `inputs.runs-on` unless every trigger declares it.
        assert set(triggers["workflow_dispatch"]["inputs"]) == set(triggers["workflow_call"]["inputs"])
    promote = load_workflow(WORKFLOWS_DIR / "dex-promote.yml")["on"]["workflow_dispatch"]["inputs"]
    assert {"from", "to", "tag", "runs-on"} == set(promote)
    rollback = load_workflow(WORKFLOWS_DIR / "dex-rollback.yml")["on"]["workflow_dispatch"]["inputs"]
    assert {"env", "tag", "emergency", "again", "runs-on"} == set(rollback)
    assert rollback["emergency"]["type"] == rollback["again"]["type"] == "boolean"


def test_the_rollback_steps_cover_each_combination_of_tag_again_and_emergency_once() -> None:
    """Exactly one step runs for any inputs, and it passes what was asked: a tag as "$TAG", again as
    --again (never both but in the step the task refuses), emergency as --emergency."""
    steps = [s for s in _jobs(WORKFLOWS_DIR / "dex-rollback.yml")["rollback"]["steps"] if "run" in s]
    for tag in ("", "sha-1a2b3c4d"):
        for again in (False, True):
            for emergency in (False, True):
                contexts = {"inputs": {"tag": tag, "again": again, "emergency": emergency}}
                chosen = [s for s in steps if condition(s["if"], contexts, failed=False)]
                assert len(chosen) == 1, (tag, again, emergency, [s["name"] for s in chosen])
                (step,) = chosen
                assert ('"$TAG"' in step["run"]) == bool(tag)
                assert ("--again" in step["run"]) == again
                if not (tag and again):  # the pair the task refuses: emergency does not matter there
                    assert ("--emergency" in step["run"]) == emergency
                assert "${{" not in step["run"]  # inputs reach the shell through env: only


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
            if all(_is_notice(step) for step in steps):
                continue  # a notice-only job checks nothing out and runs nothing
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
            tasks = {
                _task_of(step["run"]) for step in spec["steps"] if "run" in step and not _is_notice(step)
            }
            actions = {str(step.get("uses", "")).split("@")[0] for step in spec["steps"]}
            assert (permissions.get("contents") == "write") == bool(tasks & PUSHING_TASKS), (path.name, job)
            assert (permissions.get("packages") == "write") == ("image-build" in tasks), (path.name, job)
            # rollback pushes straight to the env's branch (--direct by default): no PR, no PR scope.
            opens_prs = any(
                _pr_step(step["run"]) for step in spec["steps"] if "run" in step and not _is_notice(step)
            )
            assert (permissions.get("pull-requests") == "write") == opens_prs, (path.name, job)
            needs_events = bool(
                actions & {"github/codeql-action/upload-sarif", "github/codeql-action/analyze"}
            )
            assert (permissions.get("security-events") == "write") == needs_events, (path.name, job)


def test_checkout_never_persists_credentials() -> None:
    """No token in .git/config: image-build of the workspace would ship it in the image. A step that
    pushes gets the token in its own env, and dex-tasks gives it to its git processes (GIT_CONFIG_*)."""
    for path in WORKFLOWS:
        for job, spec in _jobs(path).items():
            for step in spec.get("steps") or []:
                if str(step.get("uses", "")).startswith("actions/checkout@"):
                    assert step["with"]["persist-credentials"] is False, (path.name, job)
                    assert "token" not in step["with"], (path.name, job)


def test_every_pushing_step_gets_the_token_in_its_env() -> None:
    pushing = 0
    for path in WORKFLOWS:
        for job, spec in _jobs(path).items():
            for step in spec.get("steps") or []:
                if "run" in step and not _is_notice(step) and _task_of(step["run"]) in PUSHING_TASKS:
                    pushing += 1
                    token = (step.get("env") or {}).get("GITHUB_TOKEN", "")
                    assert "secrets.GITOPS_TOKEN || github.token" in token, (path.name, job, step.get("name"))
    assert pushing >= 6


def _group(workflow: str, job: str, *, ref: str = "refs/heads/main", **inputs: object) -> str:
    """A job's concurrency group as GitHub evaluates it for this ref and these inputs."""
    spec = _jobs(WORKFLOWS_DIR / f"{workflow}.yml")[job]["concurrency"]
    contexts = {"github": {"repository": "data-literate/dex", "ref": ref}, "inputs": inputs}
    return re.sub(r"\$\{\{(.*?)\}\}", lambda m: str(evaluate(m.group(1), contexts)), spec["group"])


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
    assert {"dex-cd:deliver", "dex-promote:promote", "dex-rollback:rollback", "dex-pr-preview:up"} <= set(
        groups
    )


def test_every_writer_of_an_env_shares_its_deploy_group() -> None:
    """main's CD writes stage and prod in one job, so every writer of stage or prod is in one group."""
    main = _group("dex-cd", "deliver", ref="refs/heads/main")
    dev = _group("dex-cd", "deliver", ref="refs/heads/dev")
    assert main.startswith("dex-deploy-data-literate/dex-")
    assert main != dev
    assert _group("dex-promote", "promote", to="prod") == main
    assert _group("dex-promote", "promote", to="stage") == main
    assert _group("dex-promote", "promote", to="dev") == dev


@pytest.mark.parametrize("env", ["dev", "stage", "prod"])
def test_a_rollback_is_never_in_a_deploy_group(env: str) -> None:
    """GitHub keeps one pending job per group and a newer pending job cancels the older one (even
    with cancel-in-progress: false): a rollback that shared a group with deploys could be cancelled
    by the next merge. So each env's rollbacks have a group of their own."""
    rollback = _group("dex-rollback", "rollback", env=env)
    deploys = {
        _group("dex-cd", "deliver", ref="refs/heads/main"),
        _group("dex-cd", "deliver", ref="refs/heads/dev"),
        *(_group("dex-promote", "promote", to=to) for to in ("dev", "stage", "prod")),
    }
    assert rollback not in deploys
    assert rollback == f"dex-rollback-data-literate/dex-{env}"
    others = {_group("dex-rollback", "rollback", env=e) for e in ("dev", "stage", "prod")} - {rollback}
    assert len(others) == 2
    spec = _jobs(WORKFLOWS_DIR / "dex-rollback.yml")["rollback"]["concurrency"]
    assert spec["cancel-in-progress"] is False


def test_no_comment_claims_deploys_are_queued_not_cancelled() -> None:
    """A pending job in a group IS cancelled by a newer pending one; no comment may say otherwise."""
    for path in WORKFLOWS:
        text = path.read_text(encoding="utf-8").lower()
        assert "queued not cancelled" not in text.replace(",", ""), path.name
        assert "queued, not cancelled" not in text, path.name


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


# Pin scheme for the examples: a full commit SHA, not a release tag. zizmor's unpinned-uses rule
# (and this file's pin test) wants a SHA because a tag can be moved; and a commit cannot contain its
# own SHA, so the examples pin an *earlier* commit whose .github/workflows/ tree is byte-for-byte
# the one at HEAD. Changing a workflow therefore takes two commits: the change, then the pin moved
# to it - and this test fails until the second one lands. The SHA must stay reachable from main:
# merge this history as is (no squash or rebase, which would orphan the pinned commit).
_EXAMPLE_USES = re.compile(
    r"^data-literate/dex-tasks/(?P<path>\.github/workflows/[\w.-]+\.yml)@(?P<sha>[0-9a-f]{40})$"
)


def _git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=False, timeout=60
    )


def _example_pins() -> list[tuple[str, str, str, str]]:
    """(example:job, workflow path, sha, version comment) for every reusable-workflow call."""
    pins = []
    for path in EXAMPLES:
        lines = path.read_text(encoding="utf-8").splitlines()
        for job, spec in _jobs(path).items():
            match = _EXAMPLE_USES.match(spec["uses"])
            assert match, f"{path.name}:{job}: {spec['uses']} is not dex-tasks' workflow at a 40-hex SHA"
            line = next(line for line in lines if spec["uses"] in line)
            comment = line.partition(" # ")[2].strip()
            pins.append((f"{path.name}:{job}", match.group("path"), match.group("sha"), comment))
    return pins


def test_examples_pin_a_commit_whose_workflows_equal_heads() -> None:
    pins = _example_pins()
    assert len(pins) >= 6
    shas = {sha for _, _, sha, _ in pins}
    assert len(shas) == 1, f"the examples pin different commits: {shas}"
    (sha,) = shas
    if _git("cat-file", "-e", f"{sha}^{{commit}}").returncode != 0:
        shallow = _git("rev-parse", "--is-shallow-repository").stdout.strip() == "true"
        # Only a shallow clone (GitHub's default checkout) may lack it; never .ci/run (full history).
        need(not shallow, f"{sha} is not in this shallow clone: fetch the full history to check the pin")
        pytest.fail(f"the examples pin {sha}, which is not a commit of this repository")
    assert _git("merge-base", "--is-ancestor", sha, "HEAD").returncode == 0, (
        f"{sha} is not an ancestor of HEAD"
    )
    # The workflows as pinned are the workflows as they are here (the working tree, = HEAD in CI).
    listed = _git("ls-tree", "--name-only", f"{sha}:.github/workflows").stdout.split()
    here = sorted(path.name for path in WORKFLOWS_DIR.iterdir() if path.is_file())
    stale = [] if sorted(listed) == here else [f"files: pinned {sorted(listed)} != here {here}"]
    for name in here:
        pinned = _git("show", f"{sha}:.github/workflows/{name}")
        if pinned.returncode != 0 or pinned.stdout != (WORKFLOWS_DIR / name).read_text(encoding="utf-8"):
            stale.append(name)
    assert not stale, (
        f"the examples pin {sha[:12]}, whose .github/workflows/ differ from this commit's: {stale}. "
        "Commit the workflow change, then pin the examples to that commit (git rev-parse HEAD)."
    )
    # The version comment is the package version at the pinned commit.
    version = tomllib.loads(_git("show", f"{sha}:pyproject.toml").stdout)["project"]["version"]
    for where, _, _, comment in pins:
        assert comment == f"dex-tasks {version}", (where, comment)


def test_the_pin_test_catches_a_stale_pin() -> None:
    """The comparison above is not vacuous: the commit before the workflows' last change differs."""
    last = _git("log", "-1", "--format=%H", "--", ".github/workflows").stdout.strip()
    need(bool(last) and _git("cat-file", "-e", f"{last}~1").returncode == 0, "needs the git history")
    before = _git("diff", "--quiet", f"{last}~1", last, "--", ".github/workflows")
    assert before.returncode == 1


# ---------------------------------------------------------------------------------------------
# Action pins: one table, every uses: line checked against it.

PINS_FILE = REPO_ROOT / "tests" / "fixtures" / "action-pins.toml"


def test_every_action_pin_is_the_one_in_the_pin_table() -> None:
    table = tomllib.loads(PINS_FILE.read_text(encoding="utf-8"))["actions"]
    used: set[str] = set()
    checked = 0
    for path in [*WORKFLOWS, *EXAMPLES]:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            uses = USES_LINE.match(line)
            if not uses or uses.group("value").startswith(("./", "data-literate/dex-tasks/")):
                continue
            pinned = PINNED_USES.match(line)
            assert pinned, f"{path.name}:{number}: {line}"
            repo = "/".join(pinned.group("ref").split("/")[:2])
            assert repo in table, f"{path.name}:{number}: {repo} is not in {PINS_FILE.name}"
            entry = table[repo]
            assert pinned.group("sha") == entry["sha"], (
                f"{path.name}:{number}: {repo} is not at {entry['sha']}"
            )
            assert pinned.group("comment") == entry["version"], f"{path.name}:{number}: comment != {entry}"
            used.add(repo)
            checked += 1
    assert checked >= 20
    assert used == set(table), f"rows nothing uses: {set(table) - used}"
    for repo, entry in table.items():
        assert re.fullmatch(r"v\d+\.\d+\.\d+", entry["version"]), repo
        assert re.fullmatch(r"[0-9a-f]{40}", entry["sha"]), repo
        # GitHub's runners deprecate node20 actions; node actions must be node24 at the pinned commit.
        assert entry["using"] in {"node24", "composite"}, repo


# ---------------------------------------------------------------------------------------------
# uv: the reusable workflows check the caller's lock.


@pytest.mark.parametrize("name", REUSABLE)
def test_reusable_workflows_run_uv_locked(name: str) -> None:
    """UV_LOCKED=1 (= `uv run --locked`): a stale uv.lock fails the caller's CI instead of re-locking."""
    data = load_workflow(WORKFLOWS_DIR / f"{name}.yml")
    assert data.get("env", {}).get("UV_LOCKED") == "1", name
    for job, spec in data["jobs"].items():
        assert "UV_LOCKED" not in (spec.get("env") or {}), (name, job)
        for step in spec.get("steps") or []:
            assert "UV_LOCKED" not in (step.get("env") or {}), (name, job)


def test_uv_locked_fails_uv_run_on_a_stale_lock(tmp_path: Path) -> None:
    """What UV_LOCKED=1 buys: uv refuses to run a project whose uv.lock does not match it."""
    uv = need_uv()
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "app"\nversion = "0.1.0"\nrequires-python = ">=3.11"\ndependencies = []\n',
        encoding="utf-8",
    )
    env = {**os.environ, "UV_OFFLINE": "1", "UV_PROJECT_ENVIRONMENT": str(tmp_path / "venv")}
    env.pop("VIRTUAL_ENV", None)
    env.pop("UV_LOCKED", None)

    def uv_run(**extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [uv, "run", "python", "-c", "pass"],
            cwd=tmp_path, env={**env, **extra}, capture_output=True, text=True, check=False, timeout=120,
        )  # fmt: skip

    lock = subprocess.run([uv, "lock"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
                          check=False)  # fmt: skip
    assert lock.returncode == 0, lock.stderr
    assert uv_run(UV_LOCKED="1").returncode == 0
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(pyproject.read_text(encoding="utf-8").replace("0.1.0", "0.2.0"), encoding="utf-8")
    stale = uv_run(UV_LOCKED="1")
    assert stale.returncode != 0
    assert "UV_LOCKED" in stale.stderr, stale.stderr
    assert uv_run().returncode == 0  # without it, uv re-locks silently: what a consumer's CI must not do


def need_uv() -> str:
    found = shutil.which("uv")
    need(found is not None, "uv is not on PATH")
    assert found is not None
    return found


# ---------------------------------------------------------------------------------------------
# PR previews: the head commit, no fork or Dependabot PRs, torn down on unlabel.


def _preview_event(action: str, *, fork: bool = False, author: str = "alice", label: str = "preview",
                   labels: tuple[str, ...] = ("preview",)) -> dict[str, Any]:  # fmt: skip
    head_repo = "someone/dex" if fork else "data-literate/dex"
    return {
        "action": action,
        "label": {"name": label},
        "pull_request": {
            "number": 7,
            "user": {"login": author},
            "labels": [{"name": name} for name in labels],
            "head": {"sha": "a" * 40, "ref": "feature", "repo": {"full_name": head_repo}},
        },
    }


def _preview_jobs_run(event: dict[str, Any]) -> set[str]:
    jobs = _jobs(WORKFLOWS_DIR / "dex-pr-preview.yml")
    contexts = {
        "github": {"event_name": "pull_request", "event": event, "repository": "data-literate/dex"},
        "inputs": {"label": "preview"},
    }
    return {job for job, spec in jobs.items() if condition(spec.get("if"), contexts, failed=False)}


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (_preview_event("labeled"), {"up"}),
        (_preview_event("synchronize"), {"up"}),
        (_preview_event("opened", labels=()), set()),
        (_preview_event("labeled", fork=True), {"skipped"}),
        (_preview_event("synchronize", author="dependabot[bot]"), {"skipped"}),
        (_preview_event("closed"), {"down"}),
        (_preview_event("closed", labels=()), set()),
        (_preview_event("unlabeled", labels=()), {"down"}),
        (_preview_event("unlabeled", label="bug"), set()),
        (_preview_event("closed", fork=True), set()),
    ],
)
def test_preview_jobs_per_event(event: dict[str, Any], expected: set[str]) -> None:
    assert _preview_jobs_run(event) == expected


def test_preview_builds_the_pr_head_not_the_merge_commit() -> None:
    jobs = _jobs(WORKFLOWS_DIR / "dex-pr-preview.yml")
    for job in ("up", "down"):
        checkout = jobs[job]["steps"][0]
        assert str(checkout["uses"]).startswith("actions/checkout@")
        assert checkout["with"]["ref"] == "${{ github.event.pull_request.head.sha }}", job
    notice = jobs["skipped"]["steps"]
    assert len(notice) == 1
    assert _is_notice(notice[0])
    assert jobs["skipped"]["permissions"] == {}
    triggers = load_workflow(EXAMPLES_DIR / "pr-preview.yml")["on"]["pull_request"]["types"]
    assert {"labeled", "unlabeled", "synchronize", "closed"} <= set(triggers)


# ---------------------------------------------------------------------------------------------
# Comments name files that exist.

# This repository's files (a consumer's `.github/workflows/pipeline.yml` is not one).
_NAMED_FILE = re.compile(r"(?<![\w/])(examples/[\w./-]*\.yml|\.github/workflows/(?:dex-[\w.-]+|ci)\.yml)")


def test_workflow_comments_name_files_that_exist() -> None:
    named = 0
    for path in [*WORKFLOWS, *EXAMPLES, REPO_ROOT / "README.md", REPO_ROOT / "examples" / "README.md"]:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if path.suffix == ".yml" and "#" not in line:
                continue
            text = line.split("#", 1)[1] if path.suffix == ".yml" else line
            for name in _NAMED_FILE.findall(text.replace("data-literate/dex-tasks/", "")):
                named += 1
                assert (REPO_ROOT / name).is_file(), f"{path.name}:{number}: {name} does not exist"
    assert named >= 5
