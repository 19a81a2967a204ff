"""The docker CLI and the registry v2 API: argv builders, output parsing, a tag-exists check.

Thin, like pre-commit's ``languages/docker.py``: argv tuples here, decisions in the task. Both the
classic builder (``docker build``, then ``docker push`` per tag) and BuildKit through buildx
(``docker buildx build --push|--load``) are supported, because a laptop or a Debian CI machine often
has no buildx while GitHub's runners do.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import time
from typing import TYPE_CHECKING, Any

from dex_tasks import proc
from dex_tasks._untrusted import parse_json
from dex_tasks.errors import RemoteError, UsageError

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    import requests

DOCKER = "docker"
DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")
_PUSH_DIGEST_RE = re.compile(r"digest: (sha256:[0-9a-f]{64})")
BUILDX_ENV = "DEX_DOCKER_BUILDX"
"""``1`` forces buildx, ``0`` forces the classic builder; unset or ``auto`` detects."""

# Every manifest kind a tag can point at: single-platform (Docker v2, OCI) and multi-platform
# (Docker manifest list, OCI index). Without them a registry may answer 404 for an index or
# convert it (distribution/distribution#2395).
MANIFEST_ACCEPT = (
    "application/vnd.oci.image.index.v1+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.v2+json"
)
REGISTRY_TIMEOUT = 10.0
REGISTRY_ATTEMPTS = 3
RETRY_DELAY = 1.0


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
    proc.register_secret(password)
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


# -- references and the registry v2 API ----------------------------------------------------------
@dataclasses.dataclass(frozen=True, kw_only=True)
class Repository:
    """``ghcr.io/org/app`` -> host ``ghcr.io``, name ``org/app``; Docker Hub names get ``library/``."""

    host: str
    name: str

    @property
    def api_host(self) -> str:
        return "registry-1.docker.io" if self.host == "docker.io" else self.host

    @property
    def scheme(self) -> str:
        # dockerd talks plain HTTP to loopback registries (127.0.0.0/8 is insecure by default),
        # and so do we; everything else is HTTPS.
        return "http" if is_loopback(self.host) else "https"

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.api_host}/v2/{self.name}"


def is_loopback(host: str) -> bool:
    """``127.0.0.1:5000``, ``localhost``, ``[::1]:5000`` (a registry host, optionally with port)."""
    hostname = host[1:].partition("]")[0] if host.startswith("[") else host.partition(":")[0]
    if hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def parse_repository(image: str) -> Repository:
    """Split an image reference without tag into registry host and repository name."""
    if not image or any(c in image for c in " @") or image != image.strip():
        raise UsageError(f"invalid image reference {image!r}")
    first, sep, rest = image.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        host, name = first, rest
    else:
        host, name = "docker.io", image
        if "/" not in name:
            name = f"library/{name}"
    if not name or name != name.lower() or name.endswith("/"):
        raise UsageError(f"invalid image repository {image!r}: names are lowercase, e.g. ghcr.io/org/app")
    return Repository(host=host, name=name)


def registry_credentials(host: str, env: Mapping[str, str] | None = None) -> tuple[str, str] | None:
    """(user, password) for ``host``: DEX_REGISTRY_USER/DEX_REGISTRY_PASSWORD, or GITHUB_TOKEN on ghcr.io."""
    source = os.environ if env is None else env
    user = source.get("DEX_REGISTRY_USER", "").strip()
    password = source.get("DEX_REGISTRY_PASSWORD", "").strip()
    if user and password:
        return user, password
    token = source.get("GITHUB_TOKEN", "").strip()
    if token and host == "ghcr.io":
        # ghcr.io ignores the user name for a token; the actor keeps audit logs readable.
        return source.get("GITHUB_ACTOR", "").strip() or "x-access-token", token
    return None


def _parse_challenge(header: str) -> dict[str, str]:
    """``Bearer realm="...",service="...",scope="..."`` -> its parameters (scheme under ``scheme``)."""
    scheme, _, rest = header.strip().partition(" ")
    params = dict(re.findall(r'(\w+)="([^"]*)"', rest))
    params["scheme"] = scheme.lower()
    return params


def manifest_digest(image: str, tag: str, *, env: Mapping[str, str] | None = None) -> str | None:
    """The registry's digest of ``image:tag`` (``Docker-Content-Digest`` of a HEAD), None if absent.

    Speaks the distribution v2 API with ``requests`` rather than ``docker manifest inspect``: it needs
    no daemon or login state, works on insecure loopback registries without ``--insecure``, and answers
    404 precisely. Token auth follows the ``WWW-Authenticate: Bearer`` challenge (ghcr.io gives
    anonymous pull tokens for public images; GITHUB_TOKEN or DEX_REGISTRY_* for private ones).
    Raises RemoteError (exit 4) when the registry cannot answer after bounded retries.
    """
    import requests  # noqa: PLC0415 - heavy; only registry checks need it

    repo = parse_repository(image)
    if not tag or "/" in tag:
        raise UsageError(f"invalid tag {tag!r}")
    url = f"{repo.base_url}/manifests/{tag}"
    proc.echo(f"# HEAD {url}")
    headers = {"Accept": MANIFEST_ACCEPT}
    credentials = registry_credentials(repo.host, env)
    if credentials:
        proc.register_secret(credentials[1])
    # Closed on every way out (a digest, 404, an exception): its pooled connections are sockets.
    with requests.Session() as session:
        # A loopback registry is on this machine: an HTTP(S)_PROXY from the environment must not see it.
        session.trust_env = not is_loopback(repo.host)
        last_error = ""
        token_tried = False
        for attempt in range(REGISTRY_ATTEMPTS):
            if attempt and last_error:
                # A registry hiccup (5xx, reset) is often gone a moment later.
                time.sleep(RETRY_DELAY * attempt)
            try:
                response = session.head(url, headers=headers, timeout=REGISTRY_TIMEOUT, allow_redirects=True)
            except requests.RequestException as exc:
                last_error = f"{type(exc).__name__}: {exc}"
                continue
            if response.status_code == requests.codes.ok:
                digest = response.headers.get("Docker-Content-Digest", "")
                return digest if DIGEST_RE.fullmatch(digest) else ""
            if response.status_code == requests.codes.not_found:
                return None
            if response.status_code == requests.codes.unauthorized and not token_tried:
                token_tried = True
                challenge = _parse_challenge(response.headers.get("WWW-Authenticate", ""))
                headers["Authorization"] = _authorization(session, challenge, repo, credentials)
                continue
            if response.status_code in {requests.codes.unauthorized, requests.codes.forbidden}:
                raise RemoteError(
                    f"registry {repo.host} refused access to {repo.name} (HTTP {response.status_code}): "
                    "set GITHUB_TOKEN (ghcr.io) or DEX_REGISTRY_USER/DEX_REGISTRY_PASSWORD"
                )
            last_error = f"HTTP {response.status_code}"
    raise RemoteError(
        f"registry {repo.host} did not answer for {image}:{tag} after {REGISTRY_ATTEMPTS} tries: {last_error}"
    )


def _authorization(
    session: requests.Session,
    challenge: Mapping[str, str],
    repo: Repository,
    credentials: tuple[str, str] | None,
) -> str:
    import requests  # noqa: PLC0415 - heavy; only registry checks need it

    if challenge.get("scheme") == "basic":
        if credentials is None:
            raise RemoteError(
                f"registry {repo.host} needs a login: set DEX_REGISTRY_USER/DEX_REGISTRY_PASSWORD"
            )
        return "Basic " + _basic(*credentials)
    realm = challenge.get("realm")
    if challenge.get("scheme") != "bearer" or not realm:
        raise RemoteError(f"registry {repo.host}: unsupported auth challenge {challenge.get('scheme')!r}")
    params = {"scope": challenge.get("scope") or f"repository:{repo.name}:pull"}
    if challenge.get("service"):
        params["service"] = challenge["service"]
    try:
        response = session.get(realm, params=params, auth=credentials, timeout=REGISTRY_TIMEOUT)
    except requests.RequestException as exc:
        raise RemoteError(f"registry {repo.host}: token request failed: {type(exc).__name__}") from None
    if response.status_code != requests.codes.ok:
        raise RemoteError(
            f"registry {repo.host} refused a pull token for {repo.name} (HTTP {response.status_code}): "
            "set GITHUB_TOKEN (ghcr.io) or DEX_REGISTRY_USER/DEX_REGISTRY_PASSWORD"
        )
    try:
        body = response.json()
    except ValueError:
        body = {}
    token = body.get("token") or body.get("access_token") if isinstance(body, dict) else None
    if not isinstance(token, str) or not token:
        raise RemoteError(f"registry {repo.host}: the token endpoint answered without a token")
    proc.register_secret(token)
    return f"Bearer {token}"


def _basic(user: str, password: str) -> str:
    import base64  # noqa: PLC0415 - only for basic-auth registries

    return base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def tag_exists(image: str, tag: str) -> bool:
    """Whether the registry has ``image:tag`` (promote refuses tags that were never pushed)."""
    return manifest_digest(image, tag) is not None


def split_ref(ref: str) -> tuple[str, str]:
    """``ghcr.io/org/app:sha-1a2b3c4d`` -> (``ghcr.io/org/app``, ``sha-1a2b3c4d``)."""
    name, sep, tag = ref.rpartition(":")
    if not sep or "/" in tag:
        raise UsageError(f"image reference {ref!r} has no tag")
    return name, tag
