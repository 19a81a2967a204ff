"""The CD, PR-preview and CI workflows run for real, job by job, against a sample consumer repo.

:mod:`tests.workflow_runner` executes the job's steps in order with the environment Actions sets;
``uv run`` resolves to this repository's virtualenv, the local equivalent of the consumer having
dex-tasks as a dev dependency. Everything behind the steps is real or a faithful fake: git with a
bare ``origin``, the Docker daemon and registry of ``scripts/test-services.sh``, the fake trivy
(``tests/fakes/trivy``) and the fake GitHub REST API (``tests/fakes/github_api.py``).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from tests import docker_fixtures, sample_consumer
from tests.fakes.argocd_state import STATE_ENV, FakeArgo
from tests.fakes.github_api import FakeGitHub
from tests.helpers import REPO_ROOT, git
from tests.workflow_runner import JobResult, Runner

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

WORKFLOWS = REPO_ROOT / ".github" / "workflows"
TOKEN = "ghs_workflow-token-0123456789"


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub(token=TOKEN, repo=sample_consumer.APP_REPOSITORY) as fake:
        yield fake


def _push_event(consumer: sample_consumer.Consumer, branch: str) -> dict[str, Any]:
    sha = consumer.heads[branch]
    return {
        "ref": f"refs/heads/{branch}",
        "after": sha,
        "head_commit": {"id": sha, "message": "feat: containerise the app"},
        "repository": {"full_name": sample_consumer.APP_REPOSITORY, "default_branch": "main"},
    }


def _run_cd(
    tmp_path: Path,
    github: FakeGitHub,
    *,
    branch: str,
    report: str,
) -> tuple[sample_consumer.Consumer, JobResult]:
    services = docker_fixtures.find_services()
    assert isinstance(services, docker_fixtures.DockerServices)
    consumer = sample_consumer.build(tmp_path, registry=services.registry)
    workspace = sample_consumer.checkout(consumer, branch, tmp_path / "workspace")
    env = {**services.env, **sample_consumer.fake_trivy(tmp_path / "trivy", report=report)}
    runner = Runner(
        workflow=WORKFLOWS / "dex-cd.yml",
        workspace=workspace,
        temp=tmp_path / "runner",
        event_name="push",
        event=_push_event(consumer, branch),
        ref=f"refs/heads/{branch}",
        sha=consumer.heads[branch],
        repository=sample_consumer.APP_REPOSITORY,
        api_url=github.url,
        server_url=github.html_url,
        token=TOKEN,
        env=env,
    )
    return consumer, runner.run_job("deliver")


def _registry_name(consumer: sample_consumer.Consumer) -> tuple[str, str]:
    registry, _, name = consumer.image.partition("/")
    return registry, name


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_cd_on_main_builds_pushes_scans_and_opens_the_stage_prod_pr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, github: FakeGitHub
) -> None:
    docker_fixtures.require_services(monkeypatch)
    consumer, result = _run_cd(tmp_path, github, branch="main", report="alpine-310.json")
    assert result.ran
    assert result.success, result.log()
    tag = f"sha-{consumer.heads['main'][:8]}"

    # image-build: outputs wired from $GITHUB_OUTPUT; the image is in the registry with both tags.
    build = result.step("build")
    assert build.outputs["image"] == consumer.image
    assert build.outputs["sha"] == tag
    assert build.outputs["tags"].split(",") == [tag, "latest"]
    assert build.outputs["digest"].startswith("sha256:")
    registry, name = _registry_name(consumer)
    assert docker_fixtures.registry_digest(registry, name, tag) == build.outputs["digest"]
    assert docker_fixtures.registry_digest(registry, name, "latest") == build.outputs["digest"]
    assert "image-build" in result.summary

    # trivy-scan got the image from the step output (through env:, not interpolation) and wrote SARIF.
    scan = result.step("scan")
    assert scan.argv[1:] == ("trivy-scan", f"{consumer.image}:{tag}", "--sarif", "reports/trivy.sarif")
    sarif = json.loads(result.sarif["trivy"].read_text(encoding="utf-8"))
    assert sarif["version"] == "2.1.0"
    assert len(sarif["runs"][0]["results"]) == 4  # the report's four MEDIUM findings: reported, not blocking

    # The main-branch bump: one PR for stage and prod, with the runbook's title.
    assert result.step("bump the dev overlay").outcome == "skipped"
    assert result.step("bump the stage and prod overlays").outcome == "success"
    pulls = list(github.pulls.values())
    assert len(pulls) == 1, pulls
    pull = pulls[0]
    assert pull["title"] == f"chore: update stage/prod image to {tag}"
    assert pull["base"]["ref"] == "main"
    head = pull["head"]["ref"]
    assert head == f"dex/bump-stage-prod-{tag}"
    for env in ("stage", "prod"):
        assert consumer.gitops.tag(env, rev=head) == tag
    assert consumer.gitops.tag("dev", rev="dev") == consumer.gitops.tags[3]  # dev untouched
    # The token reached the API only through env: (Authorization header), never argv.
    assert all(r.headers.get("authorization") == f"Bearer {TOKEN}" for r in github.requests)
    assert all(TOKEN not in " ".join(step.argv) for step in result.steps)
    assert result.outputs == {"image": consumer.image, "tag": tag, "digest": build.outputs["digest"]}


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_cd_on_dev_bumps_dev_only_and_never_moves_latest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, github: FakeGitHub
) -> None:
    docker_fixtures.require_services(monkeypatch)
    consumer, result = _run_cd(tmp_path, github, branch="dev", report="alpine-310.json")
    assert result.success, result.log()
    tag = f"sha-{consumer.heads['dev'][:8]}"
    assert result.step("build").outputs["tags"] == tag
    registry, name = _registry_name(consumer)
    assert docker_fixtures.registry_digest(registry, name, "latest") is None
    assert result.step("bump the stage and prod overlays").outcome == "skipped"
    (pull,) = github.pulls.values()
    assert pull["title"] == f"chore: update dev image to {tag}"
    assert pull["base"]["ref"] == "dev"
    assert consumer.gitops.tag("dev", rev=pull["head"]["ref"]) == tag


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_cd_a_critical_finding_blocks_the_bump_but_the_sarif_is_uploaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, github: FakeGitHub
) -> None:
    docker_fixtures.require_services(monkeypatch)
    consumer, result = _run_cd(tmp_path, github, branch="main", report="alpine-39-high-critical.json")
    before = git("for-each-ref", "--format=%(refname)", "refs/heads/", cwd=consumer.origin)
    assert not result.success
    assert result.step("scan").outcome == "failure"
    assert result.step("scan").returncode == 1
    assert "CRITICAL" in result.step("scan").stdout + result.step("scan").stderr
    assert result.step("upload trivy SARIF").outcome == "success"
    assert "trivy" in result.sarif
    assert result.step("bump the stage and prod overlays").outcome == "skipped"
    assert github.pulls == {}
    assert not github.requests
    assert "dex/bump" not in before


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_pr_preview_pushes_pr_n_and_comments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, github: FakeGitHub
) -> None:
    services = docker_fixtures.require_services(monkeypatch)
    consumer = sample_consumer.build(tmp_path, registry=services.registry)
    # The PR branch: one commit on top of main, as a contributor would push it.
    workspace = sample_consumer.checkout(consumer, "main", tmp_path / "workspace")
    git("checkout", "--quiet", "-b", "feature/preview-me", cwd=workspace)
    (workspace / "app.py").write_text("VERSION = 99\n", encoding="utf-8")
    git("commit", "--quiet", "-am", "feat: something to preview", cwd=workspace)
    git("push", "--quiet", "origin", "HEAD", cwd=workspace)
    head_sha = git("rev-parse", "HEAD", cwd=workspace)
    pull = github.add_pull(head="feature/preview-me", base="main", title="feat: something to preview")
    number = int(pull["number"])
    event = {
        "action": "labeled",
        "number": number,
        "label": {"name": "preview"},
        "pull_request": {
            "number": number,
            "state": "open",
            "labels": [{"name": "preview"}],
            "user": {"login": "contributor"},
            "head": {
                "ref": "feature/preview-me",
                "sha": head_sha,
                "repo": {"full_name": sample_consumer.APP_REPOSITORY},  # not a fork
            },
            "base": {"ref": "main"},
        },
    }

    # Argo CD (the fake CLI) runs the preview app the ApplicationSet made for the PR.
    argo = FakeArgo(tmp_path / "argo", token="argo-token")
    argo.add_app(f"dex-pr-{number}", namespace=f"dex-pr-{number}", image=f"{consumer.image}:pr-{number}")
    argo_env = argo.env()
    env = {**services.env, "PATH": argo_env["PATH"], STATE_ENV: argo_env[STATE_ENV]}

    def runner(action: str, **changes: Any) -> Runner:
        return Runner(
            workflow=WORKFLOWS / "dex-pr-preview.yml",
            workspace=workspace,
            temp=tmp_path / f"runner-{action}",
            event_name="pull_request",
            event={**event, "action": action, **changes},
            ref=f"refs/pull/{number}/merge",
            sha="f" * 40,  # GitHub's on-the-fly merge commit: never the tag source
            repository=sample_consumer.APP_REPOSITORY,
            api_url=github.url,
            server_url=github.html_url,
            token=TOKEN,
            env=env,
            secrets={"ARGOCD_SERVER": "argocd.example.invalid", "ARGOCD_AUTH_TOKEN": "argo-token"},
        )

    assert not runner("labeled").run_job("down").ran
    result = runner("labeled").run_job("up")
    assert result.success, result.log()
    build = result.step("build")
    assert build.argv[1:] == ("image-build", "--push", "--pr", str(number))
    pr_tag = f"pr-{number}"
    assert pr_tag in build.outputs["tags"].split(",")
    assert build.outputs["sha"] == f"sha-{head_sha[:8]}"  # the PR head, not the merge commit
    assert result.steps[0].with_["ref"] == head_sha  # checkout: the PR head, what the tag names
    assert build.env["UV_LOCKED"] == "1"  # the workflow's env reaches the steps
    registry, name = _registry_name(consumer)
    assert docker_fixtures.registry_digest(registry, name, pr_tag) == build.outputs["digest"]
    comments = [c for c in github.comments.values() if c["issue_number"] == number]
    assert len(comments) == 1, comments
    assert "dex-pr-" in comments[0]["body"]  # the preview namespace
    assert "port-forward" in comments[0]["body"]

    # A second push updates the same comment instead of adding one.
    assert runner("synchronize").run_job("up").success
    assert len([c for c in github.comments.values() if c["issue_number"] == number]) == 1

    # Another label coming off is not the preview label coming off.
    assert not runner("unlabeled", label={"name": "bug"}).run_job("down").ran

    assert not runner("closed").run_job("up").ran
    down = runner("closed").run_job("down")
    assert down.success, down.log()
    assert down.steps[-1].argv[1:] == ("preview", "down", str(number))
    assert f"dex-pr-{number}" not in argo.load()["apps"]
    assert ["app", "delete", f"dex-pr-{number}", "--yes"] in [call[:4] for call in argo.calls()]


def _small_project(tmp_path: Path) -> Path:
    """A clean consumer: src/app, one test, poe adapter line, coverage floor 90."""
    project = tmp_path / "app"
    (project / "src" / "app").mkdir(parents=True)
    (project / "tests").mkdir()
    (project / "pyproject.toml").write_text(
        '[project]\nname = "app"\nversion = "0.1.0"\nrequires-python = ">=3.11"\n\n'
        '[tool.poe]\ninclude_script = "dex_tasks.poe:tasks"\n\n'
        '[tool.pytest.ini_options]\npythonpath = ["src"]\n\n'
        "[tool.dex.test]\ncoverage-fail-under = 90\n",
        encoding="utf-8",
    )
    (project / "src" / "app" / "__init__.py").write_text(
        '"""App."""\n\n\ndef add(a: int, b: int) -> int:\n    return a + b\n', encoding="utf-8"
    )
    (project / "tests" / "test_app.py").write_text(
        "from app import add\n\n\ndef test_add() -> None:\n    assert add(1, 2) == 3\n", encoding="utf-8"
    )
    git("init", "--quiet", cwd=project)
    git("add", "-A", cwd=project)
    git("commit", "--quiet", "-m", "init", cwd=project)
    return project


@pytest.mark.timeout(600)
@pytest.mark.slow
def test_ci_lint_and_test_cov_jobs_pass_on_a_clean_consumer(tmp_path: Path) -> None:
    """dex-ci.yml's jobs (`uv run poe lint`, `uv run poe test-cov`) on a small consumer project."""
    project = _small_project(tmp_path)
    sha = git("rev-parse", "HEAD", cwd=project)
    runner = Runner(
        workflow=WORKFLOWS / "dex-ci.yml",
        workspace=project,
        temp=tmp_path / "runner",
        event_name="pull_request",
        event={"pull_request": {"number": 3, "head": {"ref": "x", "sha": sha}, "base": {"ref": "main"}}},
        ref="refs/pull/3/merge",
        sha=sha,
    )
    lint = runner.run_job("lint")
    assert lint.success, lint.log()
    assert [step.argv[1:] for step in lint.steps if step.kind == "run"] == [("lint",)]
    test_cov = runner.run_job("test-cov")
    assert test_cov.success, test_cov.log()
    assert test_cov.artifacts["test-reports"] == [project / "coverage.xml", project / "reports" / "junit.xml"]


@pytest.mark.timeout(600)
@pytest.mark.slow
def test_security_semgrep_job_uploads_sarif(tmp_path: Path) -> None:
    """dex-security.yml's semgrep job: `uv run poe security --sarif ...`, then the SARIF upload."""
    project = _small_project(tmp_path)
    runner = Runner(
        workflow=WORKFLOWS / "dex-security.yml",
        workspace=project,
        temp=tmp_path / "runner",
        event_name="push",
        ref="refs/heads/main",
        sha=git("rev-parse", "HEAD", cwd=project),
    )
    result = runner.run_job("semgrep")
    assert result.success, result.log()
    assert result.step("semgrep").argv[1:] == ("security", "--sarif", "reports/semgrep.sarif")
    sarif = json.loads(result.sarif["semgrep"].read_text(encoding="utf-8"))
    assert sarif["version"] == "2.1.0"
    codeql = runner.run_job("codeql")
    assert codeql.ran  # CodeQL has no local equivalent: its steps are recorded as skipped-local
    assert all("no local equivalent" in step.note for step in codeql.steps[1:])
