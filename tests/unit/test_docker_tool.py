"""tools/docker.py: argv builders, output parsers, references; image_build helpers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dex_tasks import proc, redact
from dex_tasks.errors import UsageError
from dex_tasks.tasks import image_build
from dex_tasks.tools import docker
from tests.fakes.token_registry import DIGEST

SPEC = docker.BuildSpec(
    context=Path("/src"),
    dockerfile=Path("/src/Dockerfile"),
    refs=("ghcr.io/org/app:sha-1a2b3c4d", "ghcr.io/org/app:latest"),
    labels={"org.opencontainers.image.version": "sha-1a2b3c4d", "a": "b c"},
    build_args={"PY": "3.12"},
)


def test_classic_build_argv() -> None:
    assert docker.build_argv(SPEC, buildx=False) == (
        "docker", "build", "--file", "/src/Dockerfile",
        "--tag", "ghcr.io/org/app:sha-1a2b3c4d", "--tag", "ghcr.io/org/app:latest",
        "--label", "a=b c", "--label", "org.opencontainers.image.version=sha-1a2b3c4d",
        "--build-arg", "PY=3.12", "/src",
    )  # fmt: skip


def test_buildx_push_argv() -> None:
    spec = docker.BuildSpec(
        context=Path("/src"),
        dockerfile=Path("/src/Dockerfile"),
        refs=("r/app:sha-1a2b3c4d",),
        platforms=("linux/amd64", "linux/arm64"),
        push=True,
        cache_from=("type=gha",),
        cache_to=("type=gha,mode=max",),
        attestations=True,
        metadata_file=Path("/tmp/m.json"),
    )
    argv = docker.build_argv(spec, buildx=True)
    assert argv[:3] == ("docker", "buildx", "build")
    assert argv[-2:] == ("--push", "/src")
    joined = " ".join(argv)
    for part in (
        "--platform linux/amd64,linux/arm64",
        "--cache-from type=gha",
        "--cache-to type=gha,mode=max",
        "--sbom=true --provenance=mode=max",
        "--metadata-file /tmp/m.json",
    ):
        assert part in joined


def test_buildx_load_without_push() -> None:
    assert docker.build_argv(SPEC, buildx=True)[-2:] == ("--load", "/src")


def test_classic_refuses_several_platforms() -> None:
    spec = docker.BuildSpec(
        context=Path(), dockerfile=Path("D"), refs=("a:b",), platforms=("linux/amd64", "linux/arm64")
    )
    with pytest.raises(UsageError, match="buildx"):
        docker.build_argv(spec, buildx=False)


def test_login_never_puts_the_password_in_argv(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[tuple[str, ...], str | None]] = []

    def fake_run(argv: tuple[str, ...], **kwargs: object) -> proc.Result:
        stdin = kwargs.get("stdin")
        calls.append((argv, stdin if isinstance(stdin, str) else None))
        return proc.Result(argv=argv, returncode=0, stdout="Login Succeeded", stderr="")

    monkeypatch.setattr(proc, "run", fake_run)
    docker.login("ghcr.io", "octocat", "ghp_s3cr3t-value")
    ((argv, stdin),) = calls
    assert argv == ("docker", "login", "ghcr.io", "--username", "octocat", "--password-stdin")
    assert stdin == "ghp_s3cr3t-value"
    assert "ghp_s3cr3t-value" not in redact.redact("token ghp_s3cr3t-value")


def test_parse_push_digest() -> None:
    output = (
        "The push refers to repository [127.0.0.1:5000/x/y]\nfb6e453c0c99: Pushed\n"
        f"t1: digest: {DIGEST} size: 528\n"
    )
    assert docker.parse_push_digest(output) == DIGEST
    assert docker.parse_push_digest("no digest here") is None


def test_parse_metadata_digest() -> None:
    assert docker.parse_metadata_digest(json.dumps({"containerimage.digest": DIGEST})) == DIGEST
    assert docker.parse_metadata_digest("{}") is None
    assert docker.parse_metadata_digest("not json") is None


def test_parse_inspect_and_digest_for() -> None:
    output = json.dumps(
        [
            {
                "Id": "sha256:" + "1" * 64,
                "RepoTags": ["r:5000/org/app:sha-1a2b3c4d"],
                "RepoDigests": ["other/app@" + "sha256:" + "2" * 64, f"r:5000/org/app@{DIGEST}"],
                "Config": {"Labels": {"a": "b"}},
            }
        ]
    )
    info = docker.parse_inspect(output)
    assert info.labels == {"a": "b"}
    assert info.digest_for("r:5000/org/app") == DIGEST
    assert info.digest_for("nope") is None
    assert docker.parse_inspect(json.dumps([{"Id": "x", "Config": {"Labels": None}}])).labels == {}


def test_parse_buildx_driver() -> None:
    output = "Name:   default\nDriver: docker\n\nNodes:\nName:      default\n"
    assert docker.parse_buildx_driver(output) == "docker"
    assert docker.parse_buildx_driver("Name: x\nDriver:   docker-container\n") == "docker-container"
    assert docker.parse_buildx_driver("") is None


def test_has_buildx_override() -> None:
    assert docker.has_buildx({"DEX_DOCKER_BUILDX": "1"}) is True
    assert docker.has_buildx({"DEX_DOCKER_BUILDX": "0"}) is False


def test_split_ref() -> None:
    assert docker.split_ref("127.0.0.1:5000/a/b:sha-1a2b3c4d") == ("127.0.0.1:5000/a/b", "sha-1a2b3c4d")
    with pytest.raises(UsageError):
        docker.split_ref("127.0.0.1:5000/a/b")


# -- image_build helpers ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("git@github.com:data-literate/dex.git", "https://github.com/data-literate/dex"),
        ("https://github.com/data-literate/dex.git", "https://github.com/data-literate/dex"),
        ("https://x-access-token:ghs_secret@github.com/data-literate/dex", "https://github.com/data-literate/dex"),
        ("ssh://git@github.com:22/data-literate/dex.git", "https://github.com/data-literate/dex"),
        ("/srv/git/dex.git", None),
        ("file:///srv/git/dex.git", None),
        ("", None),
    ],
)  # fmt: skip
def test_normalize_source_url(url: str, expected: str | None) -> None:
    assert image_build.normalize_source_url(url) == expected


def test_created_timestamp_honours_source_date_epoch() -> None:
    assert image_build.created_timestamp({"SOURCE_DATE_EPOCH": "0"}) == "1970-01-01T00:00:00Z"
    assert image_build.created_timestamp({}).endswith("Z")


GHA_RUNTIME = {"GITHUB_ACTIONS": "true", "ACTIONS_RUNTIME_TOKEN": "x"}


@pytest.mark.parametrize(
    ("env", "push", "driver", "cache_from"),
    [
        ({**GHA_RUNTIME, "ACTIONS_RESULTS_URL": "u"}, True, None, ("type=gha",)),
        ({"GITHUB_ACTIONS": "true"}, True, "docker-container", ("type=registry,ref=r/app:buildcache",)),
        ({}, True, "docker-container", ("type=registry,ref=r/app:buildcache",)),
        ({}, False, "docker-container", ()),
        ({**GHA_RUNTIME, "ACTIONS_CACHE_URL": "u"}, True, "docker", ()),
    ],
)  # fmt: skip
def test_cache_options(
    env: dict[str, str], push: bool, driver: str | None, cache_from: tuple[str, ...]
) -> None:
    assert image_build.cache_options(env, image="r/app", push=push, driver=driver)[0] == cache_from
