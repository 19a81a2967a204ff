"""The docker CLI: argv builders and output parsing. The registry v2 API is :mod:`dex_tasks.tools.oci`.

Thin, like pre-commit's ``languages/docker.py``: argv tuples here, decisions in the task. Both the
classic builder (``docker build``, then ``docker push`` per tag) and BuildKit through buildx
(``docker buildx build --push|--load``) are supported, because a laptop or a Debian CI machine often
has no buildx while GitHub's runners do.
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import TYPE_CHECKING, Any

from dex_tasks import proc, redact
from dex_tasks._untrusted import parse_json
from dex_tasks.errors import RemoteError, UsageError
from dex_tasks.tools.oci import DIGEST_RE

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path


DOCKER = "docker"
_PUSH_DIGEST_RE = re.compile(r"digest: (sha256:[0-9a-f]{64})")
BUILDX_ENV = "DEX_DOCKER_BUILDX"
"""``1`` forces buildx, ``0`` forces the classic builder; unset or ``auto`` detects."""


# -- builder detection -------------------------------------------------------------------------
def has_buildx(env: Mapping[str, str] | None = None) -> bool:
    """Whether ``docker buildx`` is available (honours ``DEX_DOCKER_BUILDX=0|1``)."""
    source = os.environ if env is None else env
    forced = source.get(BUILDX_ENV, "auto").strip().lower()
    if forced in {"1", "true", "yes"}:
        return True
    if forced in {"0", "false", "no"}:
        return False
    if proc.which(DOCKER) is None:
        return False
    return proc.run((DOCKER, "buildx", "version"), read_only=True, check=False, quiet=True).ok


def parse_buildx_driver(inspect_output: str) -> str | None:
    """The current builder's driver from ``docker buildx inspect``: ``docker``, ``docker-container``..."""
    for line in inspect_output.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() == "Driver":
            return value.strip() or None
    return None


def buildx_driver() -> str | None:
    result = proc.run((DOCKER, "buildx", "inspect"), read_only=True, check=False, quiet=True)
    return parse_buildx_driver(result.stdout) if result.ok else None


# -- build / push / login argv -----------------------------------------------------------------
@dataclasses.dataclass(frozen=True, kw_only=True)
class BuildSpec:
    """One image build. ``refs`` are full references (``image:tag``)."""

    context: Path
    dockerfile: Path
    refs: tuple[str, ...]
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)
    build_args: Mapping[str, str] = dataclasses.field(default_factory=dict)
    platforms: tuple[str, ...] = ()
    # buildx only:
    push: bool = False
    cache_from: tuple[str, ...] = ()
    cache_to: tuple[str, ...] = ()
    attestations: bool = False
    metadata_file: Path | None = None


def build_argv(spec: BuildSpec, *, buildx: bool) -> tuple[str, ...]:
    """``docker build`` (classic) or ``docker buildx build`` argv for ``spec``."""
    if not spec.refs:
        raise ValueError("a build needs at least one tag")
    argv: list[str] = [DOCKER, "buildx", "build"] if buildx else [DOCKER, "build"]
    argv += ["--file", str(spec.dockerfile)]
    for ref in spec.refs:
        argv += ["--tag", ref]
    for key, value in sorted(spec.labels.items()):
        argv += ["--label", f"{key}={value}"]
    for key, value in sorted(spec.build_args.items()):
        argv += ["--build-arg", f"{key}={value}"]
    if spec.platforms:
        if not buildx and len(spec.platforms) > 1:
            raise UsageError(
                f"building for several platforms ({', '.join(spec.platforms)}) needs docker buildx; "
                "install it or configure a single platform in [tool.dex.build] platforms"
            )
        argv += ["--platform", ",".join(spec.platforms)]
    if buildx:
        for cache in spec.cache_from:
            argv += ["--cache-from", cache]
        for cache in spec.cache_to:
            argv += ["--cache-to", cache]
        if spec.attestations:
            argv += ["--sbom=true", "--provenance=mode=max"]
        if spec.metadata_file is not None:
            argv += ["--metadata-file", str(spec.metadata_file)]
        argv.append("--push" if spec.push else "--load")
    argv.append(str(spec.context))
    return tuple(argv)


def push_argv(ref: str) -> tuple[str, ...]:
    return (DOCKER, "push", ref)


def login_argv(registry: str, username: str) -> tuple[str, ...]:
    """The password goes to stdin: argv is visible to every user of the machine (``ps``)."""
    return (DOCKER, "login", registry, "--username", username, "--password-stdin")


def login(registry: str, username: str, password: str) -> proc.Result:
    redact.register_secret(password)
    return proc.run(login_argv(registry, username), stdin=password, timeout=120)


def parse_push_digest(output: str) -> str | None:
    """The manifest digest from ``docker push`` output (``<tag>: digest: sha256:... size: N``)."""
    found = _PUSH_DIGEST_RE.findall(output)
    return found[-1] if found else None


def parse_metadata_digest(metadata: str) -> str | None:
    """``containerimage.digest`` from a buildx ``--metadata-file``."""
    try:
        data = parse_json(metadata)
    except ValueError:
        return None
    digest = data.get("containerimage.digest") if isinstance(data, dict) else None
    return digest if isinstance(digest, str) and DIGEST_RE.fullmatch(digest) else None


# -- inspect -----------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True, kw_only=True)
class ImageInfo:
    id: str
    repo_tags: tuple[str, ...]
    repo_digests: tuple[str, ...]
    labels: Mapping[str, str]

    def digest_for(self, image: str) -> str | None:
        """The registry digest of ``image`` (a repository without tag) from RepoDigests."""
        for entry in self.repo_digests:
            name, _, digest = entry.partition("@")
            if name == image and DIGEST_RE.fullmatch(digest):
                return digest
        return None


def inspect_argv(ref: str) -> tuple[str, ...]:
    return (DOCKER, "image", "inspect", ref)


def parse_inspect(output: str) -> ImageInfo:
    """The first image of ``docker image inspect`` JSON output; ValueError for anything else."""
    data = parse_json(output)
    if not isinstance(data, list) or not data or not isinstance(data[0], dict):
        raise ValueError("docker image inspect: expected a non-empty JSON array")
    item: dict[str, Any] = data[0]
    config = item.get("Config") or {}
    labels = config.get("Labels") or {}
    return ImageInfo(
        id=str(item.get("Id", "")),
        repo_tags=tuple(item.get("RepoTags") or ()),
        repo_digests=tuple(item.get("RepoDigests") or ()),
        labels={str(k): str(v) for k, v in labels.items()},
    )


def inspect(ref: str) -> ImageInfo | None:
    """The local image ``ref``, or None when the daemon does not have it."""
    result = proc.run(inspect_argv(ref), read_only=True, check=False, quiet=True)
    if not result.ok:
        return None
    try:
        return parse_inspect(result.stdout)
    except ValueError as exc:
        raise RemoteError(f"docker image inspect {ref}: cannot read the daemon's answer: {exc}") from None


# -- references ---------------------------------------------------------------------------------
def split_ref(ref: str) -> tuple[str, str]:
    """``ghcr.io/org/app:sha-1a2b3c4d`` -> (``ghcr.io/org/app``, ``sha-1a2b3c4d``)."""
    name, sep, tag = ref.rpartition(":")
    if not sep or "/" in tag:
        raise UsageError(f"image reference {ref!r} has no tag")
    return name, tag
