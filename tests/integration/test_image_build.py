"""``image-build`` end to end: tags under GitHub events (dry-run), then a real daemon and registry."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
from typing import TYPE_CHECKING, Any

import pytest

from dex_tasks.tasks import image_build
from dex_tasks.tools import docker as docker_tool
from dex_tasks.tools import oci
from tests import docker_fixtures
from tests.helpers import REPO_ROOT, git, need

if TYPE_CHECKING:
    from pathlib import Path

    from tests.conftest import CliRunner

MERGE = "f" * 40  # GITHUB_SHA on pull_request: the merge commit, which must never become a tag
PR_HEAD = "0123456789abcdef0123456789abcdef01234567"
PUSH_SHA = "89abcdef0123456789abcdef0123456789abcdef"
IMAGE = "ghcr.io/data-literate/dex"


def make_project(root: Path, *, image: str = IMAGE, extra_toml: str = "") -> str:
    """A committed git project with a Dockerfile; returns its HEAD commit."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(
        f'[project]\nname = "app"\nversion = "0"\n\n[tool.dex]\nimage = "{image}"\n{extra_toml}',
        encoding="utf-8",
    )
    if docker_fixtures.BUSYBOX.is_file():
        docker_fixtures.write_busybox_context(root)
    else:  # dry-run tests need only a Dockerfile
        (root / "Dockerfile").write_text("FROM scratch\n", encoding="utf-8")
    git("init", "-q", cwd=root)
    git("add", "-A", cwd=root)
    git("commit", "-q", "-m", "init", cwd=root)
    return git("rev-parse", "HEAD", cwd=root)


@pytest.fixture(autouse=True)
def ghcr_has_no_such_tag(monkeypatch: pytest.MonkeyPatch) -> None:
    """ghcr.io is not reachable from the tests: its registry, as ``--push`` asks it first, has no tag yet.

    Images in the local test registry (the docker tests) are asked for real.
    """
    real = image_build.registry_digests

    def registry_digests(image: str, tags: tuple[str, ...]) -> dict[str, str | None]:
        if image == IMAGE:
            return {tag: None for tag in tags if tag.startswith("sha-")}
        return real(image, tags)

    monkeypatch.setattr(image_build, "registry_digests", registry_digests)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str]:
    monkeypatch.setenv("DEX_DOCKER_BUILDX", "0")  # the same argv on every machine; buildx has its own tests
    root = tmp_path / "app"
    return root, make_project(root)


def github_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, env: dict[str, str], event: dict[str, Any] | None
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    if event is not None:
        path = tmp_path / "event.json"
        path.write_text(json.dumps(event), encoding="utf-8")
        monkeypatch.setenv("GITHUB_EVENT_PATH", str(path))


def pr_event(number: int, labels: tuple[str, ...]) -> dict[str, Any]:
    return {
        "action": "labeled",
        "number": number,
        "pull_request": {
            "number": number,
            "head": {"sha": PR_HEAD, "ref": "feature/x"},
            "base": {"ref": "main"},
            "labels": [{"name": label} for label in labels],
        },
    }


ACTIONS = {
    "GITHUB_ACTIONS": "true",
    "GITHUB_SERVER_URL": "https://github.com",
    "GITHUB_REPOSITORY": "data-literate/dex",
}


def actions_env(event_name: str, ref: str, sha: str) -> dict[str, str]:
    return {**ACTIONS, "GITHUB_EVENT_NAME": event_name, "GITHUB_REF": ref, "GITHUB_SHA": sha}


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    env: dict[str, str]
    event: dict[str, Any] | None
    argv: list[str]
    expected: list[str]


EVENTS = [
    Case(
        "push to main",
        actions_env("push", "refs/heads/main", PUSH_SHA),
        {"ref": "refs/heads/main", "after": PUSH_SHA},
        [],
        ["sha-89abcdef", "latest"],
    ),
    Case(
        "push to dev",
        actions_env("push", "refs/heads/dev", PUSH_SHA),
        {"ref": "refs/heads/dev", "after": PUSH_SHA},
        [],
        ["sha-89abcdef"],
    ),
    Case(
        "pull_request without preview label",
        actions_env("pull_request", "refs/pull/42/merge", MERGE),
        pr_event(42, ("enhancement",)),
        [],
        ["sha-01234567"],
    ),
    Case(
        "pull_request with preview label",
        actions_env("pull_request", "refs/pull/42/merge", MERGE),
        pr_event(42, ("enhancement", "preview")),
        [],
        ["sha-01234567", "pr-42"],
    ),
    Case(
        "workflow_dispatch on main",
        actions_env("workflow_dispatch", "refs/heads/main", PUSH_SHA),
        {"inputs": {}, "ref": "refs/heads/main"},
        [],
        ["sha-89abcdef", "latest"],
    ),
    Case(
        "workflow_dispatch on dev with --pr and --tag",
        actions_env("workflow_dispatch", "refs/heads/dev", PUSH_SHA),
        {"inputs": {}},
        ["--pr", "5", "--tag", "sha-0000000"],
        ["sha-89abcdef", "pr-5", "sha-0000000"],
    ),
]


@pytest.mark.parametrize("case", EVENTS, ids=[case.name for case in EVENTS])
def test_tags_under_github_events(
    run_cli: CliRunner, project: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: Case
) -> None:
    root, _ = project
    expected = case.expected
    output = tmp_path / "github_output"
    output.write_text("", encoding="utf-8")
    monkeypatch.setenv("GITHUB_OUTPUT", str(output))
    github_env(monkeypatch, tmp_path, case.env, case.event)

    result = run_cli("image-build", "--dry-run", "--json", *case.argv, cwd=root)

    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["tags"] == expected
    assert data["image"] == IMAGE
    assert data["refs"] == [f"{IMAGE}:{tag}" for tag in expected]
    assert data["pushed"] is False
    assert data["digest"] is None
    assert data["dry_run"] is True
    commit = PR_HEAD if case.env["GITHUB_EVENT_NAME"] == "pull_request" else PUSH_SHA
    assert data["sha"] == f"sha-{commit[:8]}"
    assert MERGE[:8] not in result.out
    labels = data["labels"]
    assert labels["org.opencontainers.image.revision"] == commit
    assert labels["org.opencontainers.image.version"] == data["sha"]
    assert labels["org.opencontainers.image.source"] == "https://github.com/data-literate/dex"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", labels["org.opencontainers.image.created"])
    (build,) = data["commands"]
    assert build.startswith("docker build ")
    for tag in expected:
        assert f"--tag {IMAGE}:{tag}" in build
    assert "dry-run: not run" in result.err
    # Step outputs for the next steps of the job.
    outputs = dict(line.split("=", 1) for line in output.read_text(encoding="utf-8").splitlines())
    assert outputs == {
        "image": IMAGE, "tags": ",".join(expected), "sha": data["sha"], "digest": "", "reused": "false",
    }  # fmt: skip


def test_local_clean_repository_uses_head(run_cli: CliRunner, project: tuple[Path, str]) -> None:
    root, head = project
    git(
        "remote", "add", "origin", "https://x-access-token:ghs_abc@github.com/data-literate/dex.git", cwd=root
    )
    # That URL holds a token: image-build refuses to send .git/config to the builder (exit 2)...
    refused = run_cli("image-build", "--dry-run", "--json", cwd=root)
    assert refused.code == 2, refused.err
    assert "a URL with a password" in json.loads(refused.out)["error"]
    assert "ghs_abc" not in refused.out + refused.err
    # ...until .dockerignore keeps .git out of the context.
    (root / ".dockerignore").write_text(".git\n", encoding="utf-8")
    git("add", ".dockerignore", cwd=root)
    git("commit", "-q", "-m", "dockerignore", cwd=root)
    head = git("rev-parse", "HEAD", cwd=root)
    result = run_cli("image-build", "--dry-run", "--json", cwd=root)
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["tags"] == [f"sha-{head[:8]}"]  # a laptop build never moves latest
    assert data["source"] == "git HEAD"
    assert data["labels"]["org.opencontainers.image.source"] == "https://github.com/data-literate/dex"
    assert "ghs_abc" not in result.out


def test_local_main_branch_gets_no_latest(run_cli: CliRunner, project: tuple[Path, str]) -> None:
    root, _ = project
    assert git("rev-parse", "--abbrev-ref", "HEAD", cwd=root) == "main"
    result = run_cli("image-build", "--dry-run", "--json", "--pr", "3", cwd=root)
    assert json.loads(result.out)["tags"][1:] == ["pr-3"]


@pytest.mark.parametrize("dirt", ["modified", "untracked", "staged"])
def test_local_dirty_tree_refuses_unless_allowed(
    run_cli: CliRunner, project: tuple[Path, str], dirt: str
) -> None:
    root, head = project
    if dirt == "modified":
        (root / "Dockerfile").write_text("FROM scratch\nLABEL x=y\n", encoding="utf-8")
    elif dirt == "untracked":
        (root / "notes.txt").write_text("wip\n", encoding="utf-8")
    else:
        (root / "new.py").write_text("x = 1\n", encoding="utf-8")
        git("add", "new.py", cwd=root)
    before = git("status", "--porcelain", cwd=root)

    # Not even a dry-run: the refusal comes before any docker command.
    refused = run_cli("image-build", "--json", cwd=root)
    assert refused.code == 2
    assert "uncommitted changes" in refused.err
    assert "--allow-dirty" in refused.err
    assert "$ docker" not in refused.err
    assert json.loads(refused.out)["exit_code"] == 2
    assert git("status", "--porcelain", cwd=root) == before

    allowed = run_cli("image-build", "--dry-run", "--json", "--allow-dirty", cwd=root)
    assert allowed.code == 0, allowed.err
    assert json.loads(allowed.out)["tags"] == [f"sha-{head[:8]}"]
    assert "dirty working tree" in allowed.err


@pytest.mark.parametrize("bad", ["v1.2.3", "sha-XYZ1234", "pr-0", "LATEST", "sha-12"])
def test_bad_tag_is_exit_2_before_anything_runs(
    run_cli: CliRunner, project: tuple[Path, str], bad: str
) -> None:
    root, _ = project
    result = run_cli("image-build", "--push", "--tag", bad, cwd=root)
    assert result.code == 2
    assert "invalid tag" in result.err or "pull request number" in result.err
    assert "$ docker" not in result.err
    assert len(result.err.strip().splitlines()) == 1


def test_bad_pr_number_is_exit_2(run_cli: CliRunner, project: tuple[Path, str]) -> None:
    root, _ = project
    assert run_cli("image-build", "--dry-run", "--pr", "0", cwd=root).code == 2
    bad = run_cli("image-build", "--dry-run", "--pr", "x", cwd=root)  # argparse's "invalid int value"
    assert bad.code == 2
    assert "invalid int value: 'x'" in bad.err


def test_pull_request_without_payload_is_exit_2(
    run_cli: CliRunner, project: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, _ = project
    monkeypatch.setenv("GITHUB_EVENT_NAME", "pull_request")
    monkeypatch.setenv("GITHUB_SHA", MERGE)
    result = run_cli("image-build", "--dry-run", cwd=root)
    assert result.code == 2
    assert "merge commit" in result.err


def test_missing_dockerfile_is_exit_2(
    run_cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEX_DOCKER_BUILDX", "0")
    root = tmp_path / "app"
    make_project(root, extra_toml='[tool.dex.build]\ndockerfile = "docker/Dockerfile.prod"\n')
    result = run_cli("image-build", "--dry-run", cwd=root)
    assert result.code == 2
    assert "docker/Dockerfile.prod" in result.err


def test_push_plan_classic_logs_in_with_stdin_and_pushes_every_tag(
    run_cli: CliRunner, project: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, head = project
    token = "ghs_0123456789abcdefSECRET"
    monkeypatch.setenv("GITHUB_TOKEN", token)
    monkeypatch.setenv("GITHUB_ACTOR", "octocat")
    result = run_cli("image-build", "--dry-run", "--json", "--push", "--pr", "9", cwd=root)
    assert result.code == 0, result.err
    data = json.loads(result.out)
    login, build, *pushes = data["commands"]
    assert login == "docker login ghcr.io --username octocat --password-stdin"
    assert build.startswith("docker build ")
    assert pushes == [f"docker push {IMAGE}:sha-{head[:8]}", f"docker push {IMAGE}:pr-9"]
    assert data["pushed"] is False  # dry-run
    assert token not in result.out + result.err


@pytest.fixture
def buildx(monkeypatch: pytest.MonkeyPatch) -> None:
    """buildx with a docker-container builder (what docker/setup-buildx-action creates), on any machine."""
    monkeypatch.setenv("DEX_DOCKER_BUILDX", "1")
    monkeypatch.setattr(docker_tool, "buildx_driver", lambda: "docker-container")


def test_push_plan_buildx(run_cli: CliRunner, project: tuple[Path, str], buildx: None) -> None:
    root, _ = project
    result = run_cli("image-build", "--dry-run", "--json", "--push", cwd=root)
    assert result.code == 0, result.err
    data = json.loads(result.out)
    (build,) = data["commands"]  # buildx pushes itself; no login without credentials
    assert build.startswith("docker buildx build ")
    assert f"--cache-from type=registry,ref={IMAGE}:buildcache" in build
    assert f"--cache-to type=registry,ref={IMAGE}:buildcache,mode=max" in build
    assert "--sbom=true --provenance=mode=max" in build
    assert build.split()[-2] == "--push"
    assert data["builder"] == "buildx"


def test_buildx_in_actions_uses_the_gha_cache(
    run_cli: CliRunner,
    project: tuple[Path, str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    buildx: None,
) -> None:
    root, _ = project
    github_env(
        monkeypatch,
        tmp_path,
        {
            **actions_env("push", "refs/heads/main", PUSH_SHA),
            "ACTIONS_RUNTIME_TOKEN": "rt",
            "ACTIONS_RESULTS_URL": "https://results.invalid/",
        },
        None,
    )
    result = run_cli("image-build", "--dry-run", "--json", cwd=root)
    (build,) = json.loads(result.out)["commands"]
    assert "--cache-from type=gha --cache-to type=gha,mode=max" in build
    assert build.split()[-2] == "--load"
    assert "--sbom" not in build


def test_buildx_docker_driver_skips_cache_export_and_attestations(
    run_cli: CliRunner, project: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, _ = project
    monkeypatch.setenv("DEX_DOCKER_BUILDX", "1")
    monkeypatch.setattr(docker_tool, "buildx_driver", lambda: "docker")
    result = run_cli("image-build", "--dry-run", "--json", "--push", cwd=root)
    assert result.code == 0, result.err
    (build,) = json.loads(result.out)["commands"]
    assert "--cache-to" not in build
    assert "--sbom" not in build
    assert build.split()[-2] == "--push"
    assert "setup-buildx-action" in result.err


# -- a real daemon and registry ----------------------------------------------------------------
@pytest.fixture
def services(monkeypatch: pytest.MonkeyPatch) -> docker_fixtures.DockerServices:
    found = docker_fixtures.require_services(monkeypatch)
    monkeypatch.setenv("DEX_DOCKER_BUILDX", "auto")
    return found


@pytest.mark.docker
@pytest.mark.timeout(300)
def test_real_build_has_tags_and_labels(
    run_cli: CliRunner, services: docker_fixtures.DockerServices, tmp_path: Path
) -> None:
    image = f"{services.registry}/data-literate/dex"
    root = tmp_path / "app"
    head = make_project(
        root, image=image, extra_toml='[tool.dex.build]\nargs = { GREETING = "hello from args" }\n'
    )
    (root / "Dockerfile").write_text(
        (root / "Dockerfile")
        .read_text(encoding="utf-8")
        .replace("ENTRYPOINT", 'ARG GREETING=unset\nLABEL greeting="${GREETING}"\nENTRYPOINT'),
        encoding="utf-8",
    )
    git("commit", "-q", "-am", "build arg", cwd=root)
    head = git("rev-parse", "HEAD", cwd=root)

    result = run_cli("image-build", "--json", "--pr", "12", cwd=root)

    assert result.code == 0, result.err
    data = json.loads(result.out)
    sha = f"sha-{head[:8]}"
    assert data["tags"] == [sha, "pr-12"]
    assert data["pushed"] is False
    info = json.loads(docker_fixtures.docker("image", "inspect", f"{image}:{sha}").stdout)[0]
    assert sorted(info["RepoTags"]) == sorted([f"{image}:{sha}", f"{image}:pr-12"])
    labels = info["Config"]["Labels"]
    assert labels["org.opencontainers.image.revision"] == head
    assert labels["org.opencontainers.image.version"] == sha
    assert labels["org.opencontainers.image.created"] == data["labels"]["org.opencontainers.image.created"]
    assert "org.opencontainers.image.source" not in labels  # no origin, not in Actions: no guess
    assert labels["greeting"] == "hello from args"
    assert data["image_id"] == info["Id"]
    run = docker_fixtures.docker("run", "--rm", "--network", "none", f"{image}:{sha}")
    assert run.stdout.strip() == "hello from dex"


@pytest.mark.docker
@pytest.mark.timeout(300)
def test_real_push_reports_the_registry_digest(
    run_cli: CliRunner,
    services: docker_fixtures.DockerServices,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    image = f"{services.registry}/data-literate/dex"
    root = tmp_path / "app"
    head = make_project(root, image=image)
    sha = f"sha-{head[:8]}"
    output = tmp_path / "github_output"
    output.write_text("", encoding="utf-8")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_OUTPUT", str(output))
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    assert not oci.tag_exists(image, sha)

    result = run_cli("image-build", "--push", "--json", "--tag", "pr-77", cwd=root)

    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["pushed"] is True
    digest = data["digest"]
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest)
    for tag in (sha, "pr-77"):
        assert docker_fixtures.registry_digest(services.registry, "data-literate/dex", tag) == digest
        assert oci.tag_exists(image, tag)
        assert oci.manifest_digest(image, tag) == digest
    assert not oci.tag_exists(image, "sha-00000000")
    outputs = dict(line.split("=", 1) for line in output.read_text(encoding="utf-8").splitlines())
    assert outputs == {
        "image": image,
        "tags": f"{sha},pr-77",
        "sha": sha,
        "digest": digest,
        "reused": "false",
    }
    assert digest in summary.read_text(encoding="utf-8")

    # Again (a re-run of the CD job): the sha tag is never moved; its digest is reported, pr-N moves.
    output.write_text("", encoding="utf-8")
    again = run_cli("image-build", "--push", "--json", "--tag", "pr-78", cwd=root)
    assert again.code == 0, again.err
    reused = json.loads(again.out)
    assert reused["reused"] is True
    assert reused["digest"] == digest
    assert "$ docker build" not in again.err
    assert "$ docker push" not in again.err
    assert f"{image}:{sha} is in the registry at {digest}: not moved" in again.err
    for tag in (sha, "pr-78"):
        assert docker_fixtures.registry_digest(services.registry, "data-literate/dex", tag) == digest
    outputs = dict(line.split("=", 1) for line in output.read_text(encoding="utf-8").splitlines())
    assert outputs["reused"] == "true"
    assert outputs["digest"] == digest

    # --rebuild builds and pushes the tag again, as asked.
    rebuilt = run_cli("image-build", "--push", "--json", "--rebuild", cwd=root)
    assert rebuilt.code == 0, rebuilt.err
    assert json.loads(rebuilt.out)["reused"] is False
    assert "$ docker" in rebuilt.err


@pytest.mark.docker
@pytest.mark.timeout(300)
def test_push_to_an_unreachable_registry_is_exit_4(
    run_cli: CliRunner,
    services: docker_fixtures.DockerServices,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    closed_port: int,
) -> None:
    monkeypatch.setattr(image_build, "PUSH_RETRY_DELAY", 0.0)
    image = f"127.0.0.1:{closed_port}/data-literate/dex"
    root = tmp_path / "app"
    make_project(root, image=image)
    # The sha tag cannot be looked up: exit 4 before anything is built (it might exist already).
    asked = run_cli("image-build", "--push", cwd=root)
    assert asked.code == 4, asked.err
    assert "never moves an existing sha- tag (--rebuild pushes without asking)" in asked.err
    assert "$ docker" not in asked.err
    result = run_cli("image-build", "--push", "--rebuild", cwd=root)
    assert result.code == 4, result.err
    assert result.err.count("$ docker push") == image_build.PUSH_ATTEMPTS
    assert "failed after 3 attempts" in result.err
    assert services.registry not in result.err


def test_services_script_usage_and_status_without_services(tmp_path: Path) -> None:
    import subprocess  # noqa: PLC0415 - tests may start processes directly; only this one does

    need(shutil.which("bash") is not None, "bash is not installed")
    env = {**os.environ, "DEX_TEST_SERVICES_DIR": str(tmp_path / "svc")}

    def script(command: str) -> subprocess.CompletedProcess[str]:
        argv = ["bash", str(REPO_ROOT / "scripts" / "test-services.sh"), command]
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)

    usage = script("bogus")
    assert usage.returncode == 2
    assert "usage:" in usage.stderr
    status = script("status")
    assert status.returncode == 1
    assert "docker daemon: down" in status.stderr
    assert script("stop").returncode == 0
    assert not (tmp_path / "svc").exists()
