"""The promote and rollback buttons (dex-promote.yml, dex-rollback.yml) run end to end.

A ``workflow_dispatch`` of each workflow runs through :mod:`tests.workflow_runner` in a fresh clone
of the DEX-like GitOps fixture (bare ``origin``, real git), against the fake GitHub API: the right
step is chosen from the inputs, the PR is opened with the runbook's title, with GITOPS_TOKEN.
No Docker and no cluster needed (``--verify auto`` finds no cluster: git verification).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from tests import gitops_fixtures
from tests.fakes.github_api import FakeGitHub
from tests.helpers import REPO_ROOT, git
from tests.workflow_runner import JobResult, Runner

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

WORKFLOWS = REPO_ROOT / ".github" / "workflows"
REPOSITORY = "data-literate/dex"
GITHUB_TOKEN = "ghs_default-workflow-token"
GITOPS_TOKEN = "ghs_gitops-app-token"


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    # Only the GitOps token is accepted: the workflow must prefer it over github.token.
    with FakeGitHub(token=GITOPS_TOKEN, repo=REPOSITORY) as fake:
        yield fake


def _fixture(tmp_path: Path) -> tuple[gitops_fixtures.GitOpsRepo, Path]:
    (tmp_path / "gitops").mkdir()
    repo = gitops_fixtures.build(tmp_path / "gitops")
    workspace = tmp_path / "workspace"
    git("clone", "--quiet", "--branch", "main", str(repo.origin), str(workspace), cwd=tmp_path)
    return repo, workspace


def _run(
    tmp_path: Path, workspace: Path, github: FakeGitHub, workflow: str, *, job: str, inputs: dict[str, Any]
) -> JobResult:
    runner = Runner(
        workflow=WORKFLOWS / workflow,
        workspace=workspace,
        temp=tmp_path / f"runner-{len(list(tmp_path.glob('runner-*')))}",
        event_name="workflow_dispatch",
        event={"inputs": inputs, "ref": "refs/heads/main"},
        ref="refs/heads/main",
        sha=git("rev-parse", "HEAD", cwd=workspace),
        repository=REPOSITORY,
        api_url=github.url,
        server_url=github.html_url,
        token=GITHUB_TOKEN,
        inputs=inputs,
        secrets={"GITOPS_TOKEN": GITOPS_TOKEN},
        env={"KUBECONFIG": str(tmp_path / "no-kubeconfig")},
    )
    return runner.run_job(job)


def _dispatch(
    tmp_path: Path, github: FakeGitHub, workflow: str, job: str, inputs: dict[str, Any]
) -> tuple[gitops_fixtures.GitOpsRepo, JobResult]:
    repo, workspace = _fixture(tmp_path)
    return repo, _run(tmp_path, workspace, github, workflow, job=job, inputs=inputs)


@pytest.mark.timeout(300)
def test_promote_button_opens_the_promotion_pr(tmp_path: Path, github: FakeGitHub) -> None:
    repo, result = _dispatch(
        tmp_path, github, "dex-promote.yml", "promote", {"from": "stage", "to": "prod", "tag": ""}
    )
    assert result.success, result.log()
    ran = [step.name for step in result.steps if step.outcome == "success" and step.kind == "run"]
    assert ran == ["promote the tag the source env runs"]
    stage_tag = repo.tags[1]  # what stage runs in the fixture
    (pull,) = github.pulls.values()
    assert pull["title"] == f"Promote {stage_tag} to Production"
    assert pull["base"]["ref"] == "main"
    assert repo.tag("prod", rev=pull["head"]["ref"]) == stage_tag
    assert repo.tag("prod") == repo.tags[0]  # main itself is untouched until the PR merges


@pytest.mark.timeout(300)
def test_promote_button_refuses_a_tag_the_source_does_not_run(tmp_path: Path, github: FakeGitHub) -> None:
    repo, workspace = _fixture(tmp_path)
    before = git("for-each-ref", "--format=%(objectname) %(refname)", cwd=repo.origin)
    inputs = {"from": "stage", "to": "prod", "tag": repo.tags[4]}  # T4 was never deployed
    refused = _run(tmp_path, workspace, github, "dex-promote.yml", job="promote", inputs=inputs)
    assert not refused.success
    assert refused.step("promote the tag the source env runs").outcome == "skipped"
    step = refused.step("promote the given tag")
    assert step.returncode == 1, refused.log()
    assert step.argv[1:] == ("promote", "stage", "prod", repo.tags[4])
    assert github.pulls == {}
    assert git("for-each-ref", "--format=%(objectname) %(refname)", cwd=repo.origin) == before


@pytest.mark.timeout(300)
def test_rollback_button_goes_back_to_the_last_known_good_tag(tmp_path: Path, github: FakeGitHub) -> None:
    repo, result = _dispatch(
        tmp_path, github, "dex-rollback.yml", "rollback", {"env": "stage", "tag": "", "emergency": False}
    )
    assert result.success, result.log()
    ran = [step.name for step in result.steps if step.outcome == "success" and step.kind == "run"]
    assert ran == ["roll back to the last known good tag"]
    good = repo.tags[0]  # T2 is known bad (rolled back from), T1 runs now: T0 is the last good one
    # rollback's default is --direct (an incident does not wait for a review): main moves now.
    assert repo.tag("stage") == good
    assert repo.subject("main") == f"fix: rollback stage to {good}"
    assert github.pulls == {}


def _rollback_inputs(env: str, *, tag: str = "", again: bool = False) -> dict[str, Any]:
    return {"env": env, "tag": tag, "emergency": False, "again": again}


@pytest.mark.timeout(300)
def test_rollback_button_again_goes_one_more_tag_back(tmp_path: Path, github: FakeGitHub) -> None:
    repo, workspace = _fixture(tmp_path)
    first = _run(
        tmp_path, workspace, github, "dex-rollback.yml", job="rollback", inputs=_rollback_inputs("dev")
    )
    assert first.success, first.log()
    assert repo.tag("dev", rev="dev") == repo.tags[2]  # dev ran T0..T3: back to T2
    # A plain re-run now would go one more back unasked: refused (exit 1), nothing pushed.
    before = git("for-each-ref", "--format=%(objectname) %(refname)", cwd=repo.origin)
    rerun = _run(
        tmp_path, workspace, github, "dex-rollback.yml", job="rollback", inputs=_rollback_inputs("dev")
    )
    assert not rerun.success
    assert rerun.step("roll back to the last known good tag").returncode == 1, rerun.log()
    assert git("for-each-ref", "--format=%(objectname) %(refname)", cwd=repo.origin) == before

    again = _run(
        tmp_path,
        workspace,
        github,
        "dex-rollback.yml",
        job="rollback",
        inputs=_rollback_inputs("dev", again=True),
    )
    assert again.success, again.log()
    ran = [step.name for step in again.steps if step.outcome == "success" and step.kind == "run"]
    assert ran == ["roll back again, one more tag"]
    assert again.step("roll back again, one more tag").argv[1:] == ("rollback", "dev", "--again")
    assert repo.tag("dev", rev="dev") == repo.tags[1]


@pytest.mark.timeout(300)
def test_rollback_button_refuses_a_tag_together_with_again(tmp_path: Path, github: FakeGitHub) -> None:
    repo, workspace = _fixture(tmp_path)
    before = git("for-each-ref", "--format=%(objectname) %(refname)", cwd=repo.origin)
    inputs = _rollback_inputs("dev", tag=repo.tags[1], again=True)
    refused = _run(tmp_path, workspace, github, "dex-rollback.yml", job="rollback", inputs=inputs)
    assert not refused.success
    step = refused.step("refuse a tag together with again")
    assert step.returncode == 2, refused.log()
    errors = [line for line in step.stderr.splitlines() if "error" in line.lower()]
    assert any("--again rolls back one more tag from history; it takes no TAG" in line for line in errors), (
        errors
    )
    # Every other rollback step was skipped: nothing was pushed, no PR opened.
    assert {s.name for s in refused.steps if s.kind == "run" and s.outcome != "skipped"} == {step.name}
    assert git("for-each-ref", "--format=%(objectname) %(refname)", cwd=repo.origin) == before
    assert github.pulls == {}
