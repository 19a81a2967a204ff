"""The registry v2 API (OCI distribution spec 1.1) with ``requests``: digests, manifests, blobs, referrers.

Spoken directly rather than through ``docker`` / ``crane`` / ``oras``: it needs no daemon, login state
or extra binary, works on insecure loopback registries without ``--insecure``, and answers "absent"
precisely (404, ``MANIFEST_UNKNOWN``, ``NAME_UNKNOWN``).
Spec: https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md

* **Auth** follows the ``WWW-Authenticate`` challenge of the first 401: ``Bearer realm=,service=,scope=``
  (the token flow, https://distribution.github.io/distribution/spec/auth/token/) or ``Basic``. Reads ask
  for ``repository:<name>:pull``, writes for ``repository:<name>:pull,push``; a token is cached per
  (host, scope) for the life of one :class:`Client` and registered as a secret. Credentials:
  ``DEX_REGISTRY_USER``/``DEX_REGISTRY_PASSWORD``, or ``GITHUB_TOKEN`` on ghcr.io only, else what
  ``docker login`` stored (:mod:`dex_tasks.tools.docker_credentials`: config.json ``auths``,
  ``credHelpers``, ``credsStore``, identity tokens by OAuth2); anonymous otherwise (public images on
  ghcr.io and Docker Hub get anonymous pull tokens).
* **Bounded**: every request has a timeout (:data:`REQUEST_TIMEOUT`), connection errors, 429 and 5xx
  are retried :data:`ATTEMPTS` times with a short exponential backoff, and the whole interaction of
  one client has one deadline (:data:`DEADLINE` seconds, ``DEX_REGISTRY_DEADLINE`` overrides), after
  which :class:`~dex_tasks.errors.RemoteError` (exit 4) says the registry did not answer. A 429 or
  503 with ``Retry-After`` waits that long, or fails at once when that is past the deadline (a
  rate limit: TOOMANYREQUESTS). A wait of more than :data:`PROGRESS_AFTER` seconds prints a
  ``# waiting for registry ...`` line.
* **Referrers**: ``GET /v2/<name>/referrers/<digest>``, or, where the registry answers 404 (it has no
  referrers API: distribution 2.x and 3.x, ghcr.io, Docker Hub) or a 200 that is not an OCI index,
  the fallback tag ``sha256-<hex>`` holding an OCI image index of the referrers (the spec's
  "referrers tag schema"); a 404 ``NAME_UNKNOWN`` is a missing repository (oras-go decides alike).
* **Credentials** go only to the registry's own origin: a blob redirected to storage on another
  host (S3/GCS signed URLs, a CDN) gets no ``Authorization``, nor does a plain-HTTP token realm.
* A loopback registry (127.0.0.0/8, ``localhost``, ``::1``) is spoken to over plain HTTP and never
  through a proxy from the environment, as dockerd does; everything else over HTTPS.

Only the tasks that talk to a registry import this module's :class:`Client`; ``requests`` is imported
when the first client is made, so the reference helpers stay cheap for ``image-build``.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import hashlib
import ipaddress
import json
import os
import re
import threading
import time
import urllib.parse
import weakref
from typing import TYPE_CHECKING, Any, NamedTuple, Self

from dex_tasks import durations, proc, progress, redact
from dex_tasks._untrusted import parse_json, secret_from_env, unusable_secret
from dex_tasks.errors import BadContentError, RegistryError, RemoteError, UsageError
from dex_tasks.tools import docker_credentials

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from types import TracebackType

    import requests

# -- media types and limits ------------------------------------------------------------------------
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST, *INDEX_TYPES})
# The image spec's empty descriptor for artifacts without a config:
# https://github.com/opencontainers/image-spec/blob/v1.1.0/manifest.md#guidance-for-an-empty-descriptor
EMPTY_MEDIA_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY_JSON = b"{}"
CREATED_ANNOTATION = "org.opencontainers.image.created"

# Every manifest kind a tag can point at: single-platform (Docker v2, OCI) and multi-platform
# (Docker manifest list, OCI index). Without them a registry may answer 404 for an index or
# convert it (distribution/distribution#2395).
MANIFEST_ACCEPT = f"{OCI_INDEX}, {DOCKER_MANIFEST_LIST}, {OCI_MANIFEST}, {DOCKER_MANIFEST}"
DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")
# The distribution spec's tag grammar: [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}
TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
MAX_MANIFEST_BYTES = 4 * 1024 * 1024  # what distribution and the spec accept for a manifest
MAX_BLOB_BYTES = 4 * 1024 * 1024  # this client only reads small blobs (artifact payloads)
MAX_REFERRER_PAGES = 10  # the referrers API pages with Link: rel="next"; 10 pages is far beyond use

# -- timing ------------------------------------------------------------------------------------------
REQUEST_TIMEOUT = 10.0  # seconds per request (connect and each read), capped by the deadline
ATTEMPTS = 4  # tries of one request against connection errors, 429 and 5xx
BACKOFF = 0.5  # seconds; try n+1 waits BACKOFF * 2**(n-1): 0.5, 1, 2
DEADLINE = 60.0  # seconds for everything one Client does ("registry unreachable" is exit 4 by then)
DEADLINE_ENV = "DEX_REGISTRY_DEADLINE"
PROGRESS_AFTER = 2.0  # seconds: a longer wait prints one progress line
FALLBACK_ATTEMPTS = 3  # read-modify-write rounds of the fallback referrers index

AUTH_HINT = "set GITHUB_TOKEN (ghcr.io) or DEX_REGISTRY_USER/DEX_REGISTRY_PASSWORD, or docker login"
PUSH_HINT = (
    "the token needs push access: on ghcr.io give GITHUB_TOKEN `packages: write` "
    "(workflow permissions), elsewhere set DEX_REGISTRY_USER/DEX_REGISTRY_PASSWORD of a user that may push"
)


# -- references ---------------------------------------------------------------------------------------
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


# distribution/reference's grammar (reference/regexp.go): a domain (optionally with port), then
# lowercase path components separated by "/".
_DOMAIN_RE = re.compile(
    r"(?:\[[0-9A-Fa-f:.]+\]|(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])"
    r"(?:\.(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9]))*)(?::[0-9]+)?"
)
_PATH_RE = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*")
_NAME_MAX = 255  # distribution/reference's NameTotalLengthMax (domain and path)
# Docker Hub's names: reference/normalize.go maps the legacy index.docker.io to docker.io, and
# a one-component name there to library/<name>.
DOCKER_HUB = "docker.io"
_DOCKER_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})


def parse_repository(image: str) -> Repository:
    """Split an image reference without tag into registry host and repository name.

    Follows distribution/reference's ``splitDockerDomain``: the first component is the registry
    when it has a ``.`` or ``:``, is ``localhost`` or is not lowercase; Docker Hub's aliases become
    ``docker.io``, whose one-component names get ``library/``.
    """
    if not image or image != image.strip() or any(c.isspace() for c in image):
        raise UsageError(f"invalid image reference {image!r}")
    if "@" in image or ":" in image.rpartition("/")[2]:
        raise UsageError(
            f"invalid image repository {image!r}: give it without tag or digest, e.g. ghcr.io/org/app"
        )
    first, sep, rest = image.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        host, name = first, rest
    else:
        host, name = DOCKER_HUB, image
    if host.lower() in _DOCKER_HUB_ALIASES:
        host = DOCKER_HUB
        if name and "/" not in name:
            name = f"library/{name}"
    if not _DOMAIN_RE.fullmatch(host):
        raise UsageError(f"invalid registry host {host!r} in {image!r}")
    if not _PATH_RE.fullmatch(name) or len(host) + 1 + len(name) > _NAME_MAX:
        raise UsageError(
            f"invalid image repository {image!r}: path components are lowercase letters, digits and "
            f"single separators (. _ __ -), joined by /, e.g. ghcr.io/org/app"
        )
    return Repository(host=host, name=name)


# Any digest the image spec's grammar allows (algorithm:encoded): only sha256 is spoken here.
_ANY_DIGEST_RE = re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")


def check_reference(ref: str) -> str:
    """A tag or a ``sha256:`` digest, else UsageError (exit 2) before any request is made."""
    if DIGEST_RE.fullmatch(ref) or TAG_RE.fullmatch(ref):
        return ref
    if _ANY_DIGEST_RE.fullmatch(ref):
        algorithm = ref.partition(":")[0]
        raise UsageError(
            f"unsupported digest {ref!r}: only sha256 digests (sha256:<64 lowercase hex>) are supported"
            + ("" if algorithm == "sha256" else f", not {algorithm}")
        )
    raise UsageError(
        f"invalid tag or digest {ref!r}: tags are [A-Za-z0-9_.-] (up to 128), digests sha256:<64 hex>"
    )


def fallback_tag(digest: str) -> str:
    """The referrers tag of ``digest``: ``sha256:<hex>`` -> ``sha256-<hex>`` (the "referrers tag schema")."""
    if not DIGEST_RE.fullmatch(digest):
        raise UsageError(f"invalid digest {digest!r}: expected sha256:<64 hex>")
    return digest.replace(":", "-", 1)


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def registry_credentials(host: str, env: Mapping[str, str] | None = None) -> tuple[str, str] | None:
    """(user, password) for ``host``: DEX_REGISTRY_USER/DEX_REGISTRY_PASSWORD, or GITHUB_TOKEN on ghcr.io."""
    source = os.environ if env is None else env
    user = secret_from_env(source, "DEX_REGISTRY_USER")
    password = secret_from_env(source, "DEX_REGISTRY_PASSWORD")
    if user and password:
        return user, password
    # Read for ghcr.io only: a stray byte in a token never sent elsewhere must not refuse another host.
    token = secret_from_env(source, "GITHUB_TOKEN") if host == "ghcr.io" else ""
    if token:
        # ghcr.io ignores the user name for a token; the actor keeps audit logs readable.
        return source.get("GITHUB_ACTOR", "").strip() or "x-access-token", token
    return None


def deadline_from_env(env: Mapping[str, str] | None = None) -> float:
    """``DEX_REGISTRY_DEADLINE`` seconds (a positive number below a day), else :data:`DEADLINE`."""
    return durations.seconds_from_env(DEADLINE_ENV, DEADLINE, env)


# RFC 9110 section 11.6.1: challenge = auth-scheme [ 1*SP ( token68 / #auth-param ) ], and several
# challenges in one header or several headers (requests joins those with ", ").
_TCHARS = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_PARAM_RE = re.compile(rf'[\s,]*({_TCHARS})\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,]+)')
_SCHEME_RE = re.compile(rf"[\s,]*({_TCHARS})(?=[\s,]|$)")
_TOKEN68_RE = re.compile(r"\s+[A-Za-z0-9\-._~+/]+=*(?=\s*(?:,|$))")
_ESCAPE_RE = re.compile(r"\\(.)")


def _parse_challenges(header: str) -> list[dict[str, str]]:
    """Every challenge of a ``WWW-Authenticate`` value, each its parameters plus ``scheme`` (lowercase).

    Parameter names are case-insensitive, values quoted (commas and escaped quotes inside) or bare
    tokens: ``Bearer realm="https://r/token",service="r",scope="repository:a/b:pull,push"``.
    """
    challenges: list[dict[str, str]] = []
    pos = 0
    while pos < len(header):
        param = _PARAM_RE.match(header, pos)
        if param and challenges:
            value = param[2]
            if value.startswith('"'):
                value = _ESCAPE_RE.sub(r"\1", value[1:-1])
            challenges[-1].setdefault(param[1].lower(), value)
            pos = param.end()
            continue
        scheme = _SCHEME_RE.match(header, pos)
        if scheme is None:
            break  # garbage: keep what was understood
        challenges.append({"scheme": scheme[1].lower()})
        pos = scheme.end()
        token68 = _TOKEN68_RE.match(header, pos)  # Negotiate <base64>: no parameters
        if token68:
            pos = token68.end()
    return challenges


def _parse_challenge(header: str) -> dict[str, str]:
    """The challenge to answer: the first Basic or Bearer one, as go-containerregistry's
    ``pickFromMultipleChallenges`` (pkg/v1/remote/transport/ping.go) picks it, else the first."""
    challenges = _parse_challenges(header)
    usable = [c for c in challenges if c["scheme"] in {"basic", "bearer"}]
    return (usable or challenges or [{"scheme": ""}])[0]


def _basic(user: str, password: str) -> str:
    import base64  # noqa: PLC0415 - only for basic-auth registries

    return base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


# -- descriptors ----------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True, kw_only=True)
class Descriptor:
    """An OCI content descriptor: what a manifest, an index entry or a referrer points at."""

    media_type: str
    digest: str
    size: int
    artifact_type: str | None = None
    annotations: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.artifact_type:
            data["artifactType"] = self.artifact_type
        if self.annotations:
            data["annotations"] = dict(self.annotations)
        return data

    @classmethod
    def from_json(cls, data: object) -> Descriptor:
        """Validate an untrusted descriptor object; ValueError naming what is wrong."""
        if not isinstance(data, dict):
            raise ValueError("a descriptor is a JSON object")  # noqa: TRY004 - untrusted JSON: a bad value
        media_type, digest, size = data.get("mediaType"), data.get("digest"), data.get("size")
        if not isinstance(media_type, str) or not media_type:
            raise ValueError("descriptor without mediaType")
        if not isinstance(digest, str) or not DIGEST_RE.fullmatch(digest):
            raise ValueError(f"descriptor digest {digest!r} is not sha256:<64 hex>")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ValueError(f"descriptor size {size!r} is not a non-negative integer")
        artifact_type = data.get("artifactType")
        if artifact_type is not None and not isinstance(artifact_type, str):
            raise ValueError("descriptor artifactType is not a string")
        annotations = data.get("annotations") or {}
        if not isinstance(annotations, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in annotations.items()
        ):
            raise ValueError("descriptor annotations are not a string -> string object")
        return cls(
            media_type=media_type,
            digest=digest,
            size=size,
            artifact_type=artifact_type,
            annotations=annotations,
        )


class Manifest(NamedTuple):
    """A manifest as the registry serves it: ``media_type, body, digest = client.get_manifest(...)``."""

    media_type: str
    body: bytes
    digest: str  # sha256 of ``body``, computed here (not taken on trust from a header)

    @property
    def descriptor(self) -> Descriptor:
        return Descriptor(media_type=self.media_type, digest=self.digest, size=len(self.body))


class Pushed(NamedTuple):
    """What a manifest PUT answered: its digest and the ``OCI-Subject`` header (None when not sent)."""

    digest: str
    subject: str | None


def index_entries(manifest: Manifest) -> list[dict[str, Any]]:
    """The raw ``manifests`` entries of an index (objects only), ValueError when it is not an index."""
    try:
        data = parse_json(manifest.body)
    except ValueError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(data, dict) or manifest.media_type not in INDEX_TYPES:
        raise ValueError(f"a {manifest.media_type}, not an image index")
    entries = data.get("manifests")
    if not isinstance(entries, list):
        raise ValueError("an index without a manifests list")  # noqa: TRY004 - untrusted JSON: a bad value
    return [entry for entry in entries if isinstance(entry, dict)]


def parse_descriptors(entries: list[dict[str, Any]]) -> list[Descriptor]:
    """Valid descriptors of ``entries``; malformed ones (someone else's junk) are skipped."""
    found: list[Descriptor] = []
    for entry in entries:
        try:
            found.append(Descriptor.from_json(entry))
        except ValueError:
            continue
    return found


# -- the client -------------------------------------------------------------------------------------------
class _HeaderAuth:
    """A requests auth callable that sets (or removes) ``Authorization``.

    Passed on every request, so ``~/.netrc`` (which requests consults when no auth is given) can never
    replace the registry token, and requests drops it on a redirect to another host (blob downloads
    from ghcr.io go to a CDN that must not see the token).
    """

    def __init__(self, value: str | None) -> None:
        self.value = value

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if self.value:
            request.headers["Authorization"] = self.value
        else:
            request.headers.pop("Authorization", None)
        return request


def _pull(name: str) -> str:
    return f"repository:{name}:pull"


def _push(name: str) -> str:
    return f"repository:{name}:pull,push"


class Client:
    """One registry interaction (a promote, a scan upload): sessions, tokens, a deadline, a counter.

    Use it as a context manager; it closes its pooled connections on every way out. ``requests``
    counts every HTTP request sent (token requests and retries included), for benchmarks.

    The deadline counts from the first request: make one client per interaction (a resolve before
    a bump, a verdict upload after a scan), or call :meth:`restart_deadline` between interactions.
    """

    def __init__(
        self,
        *,
        env: Mapping[str, str] | None = None,
        deadline: float | None = None,
        timeout: float = REQUEST_TIMEOUT,
        attempts: int = ATTEMPTS,
    ) -> None:
        self.env: Mapping[str, str] = os.environ if env is None else env
        self.deadline = deadline_from_env(self.env) if deadline is None else deadline
        self.timeout = timeout
        self.attempts = max(1, attempts)
        self.requests = 0
        self._started: float | None = None
        self._sessions: dict[str, requests.Session] = {}
        # (host, scope) -> Authorization value; a pull,push token serves reads of the same repository.
        self._auth: dict[tuple[str, str], str] = {}
        self._basic_hosts: set[str] = set()
        self._credentials_of: dict[str, docker_credentials.Credentials | None] = {}
        # (host, name, manifest digest) -> the ETag the registry served with it, for If-Match.
        self._etags: dict[tuple[str, str, str], str] = {}
        # Hosts whose referrers endpoint answered 404: go straight to the fallback tag next time.
        self._no_referrers_api: set[str] = set()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def restart_deadline(self) -> None:
        """Give the next request a fresh :attr:`deadline` (tokens and connections are kept)."""
        self._started = None

    def close(self) -> None:
        for session in self._sessions.values():
            session.close()
        self._sessions.clear()

    # -- reads ----------------------------------------------------------------------------------------
    def _head(self, image: str, ref: str) -> tuple[Repository, requests.Response] | None:
        repo = parse_repository(image)
        url = f"{repo.base_url}/manifests/{check_reference(ref)}"
        proc.echo(f"# HEAD {url}")
        response = self._request(
            "HEAD", repo, url, scope=_pull(repo.name), headers={"Accept": MANIFEST_ACCEPT}
        )
        response.close()  # a HEAD has no body; the connection goes back to the pool
        if response.status_code == 404:
            return None
        self._expect(response, repo, (200,), f"HEAD {ref}")
        digest = response.headers.get("Docker-Content-Digest", "")
        if DIGEST_RE.fullmatch(ref) and DIGEST_RE.fullmatch(digest) and digest != ref:
            raise RemoteError(f"registry {repo.host} answered digest {digest} for {image}@{ref}")
        return repo, response

    def resolve(self, image: str, ref: str) -> str | None:
        """The manifest digest ``image:ref`` points at, None when the registry does not have it.

        For a multi-platform image it is the digest of the index (manifest list) itself: what
        kustomize's ``digest:`` pins and what a pod's ``imageID`` shows. One HEAD request for an
        anonymous registry; a token registry adds one 401 and one token request per client.
        """
        found = self._head(image, ref)
        if found is None:
            return None
        digest = found[1].headers.get("Docker-Content-Digest", "")
        if DIGEST_RE.fullmatch(digest):
            return digest
        # The header is a SHOULD in the spec; without it the digest is the hash of the body.
        manifest = self.get_manifest(image, ref)
        return manifest.digest if manifest else None

    def stat(self, image: str, ref: str) -> Descriptor | None:
        """The descriptor (media type, digest, size) of a manifest from a HEAD, None when absent."""
        found = self._head(image, ref)
        if found is None:
            return None
        headers = found[1].headers
        digest, media_type = headers.get("Docker-Content-Digest", ""), _media_type(found[1])
        size = headers.get("Content-Length", "")
        if DIGEST_RE.fullmatch(digest) and media_type in MANIFEST_TYPES and size.isdigit() and int(size) > 0:
            return Descriptor(media_type=media_type, digest=digest, size=int(size))
        manifest = self.get_manifest(image, ref)
        return manifest.descriptor if manifest else None

    def get_manifest(self, image: str, ref: str) -> Manifest | None:
        """GET a manifest (any kind in :data:`MANIFEST_ACCEPT`), None when absent."""
        repo = parse_repository(image)
        url = f"{repo.base_url}/manifests/{check_reference(ref)}"
        proc.echo(f"# GET {url}")
        response = self._request(
            "GET", repo, url, scope=_pull(repo.name), headers={"Accept": MANIFEST_ACCEPT}
        )
        if _absent(response):
            return None
        self._expect(response, repo, (200,), f"GET manifest {ref}")
        body = _read(response, MAX_MANIFEST_BYTES, f"manifest {image}:{ref}")
        digest = sha256(body)
        if DIGEST_RE.fullmatch(ref) and digest != ref:
            raise BadContentError(
                f"registry {repo.host} served content for {image}@{ref} whose digest is {digest}"
            )
        # The spec says Content-Type is the manifest's mediaType; where a proxy or mirror serves a
        # generic one (application/json, octet-stream), the body's own mediaType says what it is.
        header = _media_type(response)
        media_type = header if header in MANIFEST_TYPES else (_body_media_type(body) or header)
        etag = response.headers.get("ETag", "")
        # A weak one (W/"..", nginx's when it compresses) never matches If-Match's strong comparison
        # (RFC 9110 section 13.1.1): sent, every update would be 412.
        if etag and not etag.startswith("W/"):
            self._etags[(repo.api_host, repo.name, digest)] = etag
        return Manifest(media_type=media_type, body=body, digest=digest)

    def get_blob(self, image: str, digest: str, *, limit: int = MAX_BLOB_BYTES) -> bytes | None:
        """A small blob (at most ``limit`` bytes), verified against ``digest``; None when absent."""
        repo = parse_repository(image)
        if not DIGEST_RE.fullmatch(digest):
            raise UsageError(f"invalid blob digest {digest!r}")
        url = f"{repo.base_url}/blobs/{digest}"
        response = self._request("GET", repo, url, scope=_pull(repo.name), stream=True)
        if _absent(response):
            return None
        self._expect(response, repo, (200,), f"GET blob {digest}")
        data = _read(response, limit, f"blob {image}@{digest}")
        if sha256(data) != digest:
            raise BadContentError(
                f"registry {repo.host} served a blob for {digest} whose digest is {sha256(data)}"
            )
        return data

    def referrers(self, image: str, digest: str, artifact_type: str | None = None) -> list[Descriptor]:
        """The manifests whose ``subject`` is ``digest``, filtered by ``artifact_type``.

        ``GET /v2/<name>/referrers/<digest>`` (distribution spec 1.1); a 404 there means the registry
        has no referrers API (the spec forbids a 404 from one that has), so the fallback tag
        ``sha256-<hex>`` is read instead, and its absence means no referrers.
        """
        repo = parse_repository(image)
        fallback = fallback_tag(digest)
        found: list[Descriptor] = []
        if repo.host not in self._no_referrers_api:
            listed = self._referrers_api(repo, image, digest, artifact_type)
            if listed is None:
                self._no_referrers_api.add(repo.host)
            elif listed is _NO_REPOSITORY:
                return []  # no repository, no referrers; says nothing about the API
            else:
                found = listed
        if repo.host in self._no_referrers_api:
            manifest = self.get_manifest(image, fallback)
            if manifest is None or manifest.digest == digest:
                # The subject itself: GitLab resolves sha256-<hex> as the digest sha256:<hex>
                # (oras-project/oras-go#1396); its own manifests are no referrers.
                return []
            try:
                found = parse_descriptors(index_entries(manifest))
            except ValueError as exc:
                raise RemoteError(
                    f"registry {repo.host}: tag {fallback} of {repo.name} is not a referrers index ({exc})"
                ) from None
        return [d for d in found if artifact_type is None or d.artifact_type == artifact_type]

    def _referrers_api(
        self, repo: Repository, image: str, digest: str, artifact_type: str | None
    ) -> list[Descriptor] | None:
        """The API's listing; None when the registry has no referrers API, as oras-go decides it
        (``referrersPageByAPI``, registry/remote/repository.go): a 404 whose body is not
        ``NAME_UNKNOWN`` (that is a missing repository: :data:`_NO_REPOSITORY`), or a 200 that is
        not an OCI image index (a web UI answering every path)."""
        url: str | None = f"{repo.base_url}/referrers/{digest}"
        if artifact_type:
            url = f"{url}?{urllib.parse.urlencode({'artifactType': artifact_type})}"
        found: list[Descriptor] = []
        for _ in range(MAX_REFERRER_PAGES):
            if url is None:
                break
            proc.echo(f"# GET {url}")
            response = self._request(
                "GET", repo, url, scope=_pull(repo.name), headers={"Accept": OCI_INDEX}, unchallenged_ok=True
            )
            if response.status_code == 401:
                response.close()
                return None  # Harbor before 2.8: no referrers API, and a 401 that asks for nothing
            if response.status_code == 404:
                missing = "NAME_UNKNOWN" in _error_codes(response)[0]
                response.close()
                return _NO_REPOSITORY if missing else None
            self._expect(response, repo, (200,), f"GET referrers of {digest}")
            if _media_type(response) != OCI_INDEX:
                response.close()
                return None
            body = _read(response, MAX_MANIFEST_BYTES, f"referrers of {image}@{digest}")
            try:
                found += parse_descriptors(index_entries(Manifest(OCI_INDEX, body, sha256(body))))
            except ValueError as exc:
                raise RemoteError(
                    f"registry {repo.host}: the referrers of {digest} are not an index ({exc})"
                ) from None
            url = _next_link(response, url)
        return found

    # -- writes ---------------------------------------------------------------------------------------
    def put_blob(self, image: str, data: bytes, media_type: str = "application/octet-stream") -> Descriptor:
        """Upload ``data`` (monolithic POST + PUT), skipped when a HEAD says the blob is there."""
        repo = parse_repository(image)
        digest = sha256(data)
        descriptor = Descriptor(media_type=media_type, digest=digest, size=len(data))
        scope = _push(repo.name)
        head = self._request("HEAD", repo, f"{repo.base_url}/blobs/{digest}", scope=scope)
        if head.status_code == 200:
            return descriptor
        start_url = f"{repo.base_url}/blobs/uploads/"
        proc.echo(f"# POST {start_url} ({digest}, {len(data)} bytes)")
        started = self._request("POST", repo, start_url, scope=scope, headers={"Content-Length": "0"})
        self._expect(started, repo, (202,), "start a blob upload")
        location = started.headers.get("Location", "")
        if not location:
            raise RemoteError(f"registry {repo.host} started an upload without a Location header")
        # The Location may be relative, and carries state in its query (distribution's _state).
        upload = urllib.parse.urljoin(start_url, location)
        upload += ("&" if "?" in upload else "?") + urllib.parse.urlencode({"digest": digest})
        headers = {"Content-Type": "application/octet-stream"}
        done = self._request("PUT", repo, upload, scope=scope, headers=headers, data=data)
        self._expect(done, repo, (201,), f"upload blob {digest}")
        answered = done.headers.get("Docker-Content-Digest")
        if answered and answered != digest:
            raise RemoteError(f"registry {repo.host} stored blob {digest} as {answered}")
        return descriptor

    def put_manifest(self, image: str, ref: str, body: bytes, media_type: str) -> Pushed:
        """PUT a manifest under a tag or its digest; the digest and ``OCI-Subject`` it answered."""
        repo = parse_repository(image)
        url = f"{repo.base_url}/manifests/{check_reference(ref)}"
        proc.echo(f"# PUT {url} ({media_type})")
        return self._put_manifest(repo, url, body, media_type, {})

    def _put_manifest(
        self, repo: Repository, url: str, body: bytes, media_type: str, extra: Mapping[str, str]
    ) -> Pushed:
        headers = {"Content-Type": media_type, **extra}
        response = self._request("PUT", repo, url, scope=_push(repo.name), headers=headers, data=body)
        self._expect(response, repo, (201,), "push a manifest")
        digest = sha256(body)
        answered = response.headers.get("Docker-Content-Digest")
        if answered and answered != digest:
            raise RemoteError(f"registry {repo.host} stored manifest {digest} as {answered}")
        return Pushed(digest=digest, subject=response.headers.get("OCI-Subject") or None)

    def attach(
        self,
        image: str,
        subject: Descriptor,
        artifact_type: str,
        data: bytes,
        *,
        annotations: Mapping[str, str] | None = None,
        config: bytes | None = None,
        layer_media_type: str | None = None,
    ) -> str:
        """Push an artifact whose ``subject`` is ``subject``; its manifest digest.

        An OCI image manifest with ``artifactType``, the empty config ``{}`` (or ``config`` as a JSON
        config of media type ``artifact_type``) and ``data`` as its one layer, pushed by digest. When
        the registry did not answer ``OCI-Subject`` it has no referrers API, and the fallback index
        ``sha256-<hex>`` is updated, as the spec requires of the client.
        """
        repo = parse_repository(image)
        if not DIGEST_RE.fullmatch(subject.digest):
            raise UsageError(f"invalid subject digest {subject.digest!r}")
        if config is None:
            config_descriptor = self.put_blob(image, EMPTY_JSON, EMPTY_MEDIA_TYPE)
        else:
            config_descriptor = self.put_blob(image, config, artifact_type)
        layer = self.put_blob(image, data, layer_media_type or artifact_type)
        manifest: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": artifact_type,
            "config": config_descriptor.to_json(),
            "layers": [layer.to_json()],
            "subject": Descriptor(
                media_type=subject.media_type, digest=subject.digest, size=subject.size
            ).to_json(),
        }
        if annotations:
            manifest["annotations"] = dict(annotations)
        body = json.dumps(manifest, separators=(",", ":"), sort_keys=True).encode()
        pushed = self.put_manifest(image, sha256(body), body, OCI_MANIFEST)
        if pushed.subject is None:
            entry = Descriptor(
                media_type=OCI_MANIFEST,
                digest=pushed.digest,
                size=len(body),
                artifact_type=artifact_type,
                annotations=dict(annotations or {}),
            )
            self._add_to_fallback(repo, image, subject.digest, entry)
        return pushed.digest

    def _add_to_fallback(self, repo: Repository, image: str, subject: str, entry: Descriptor) -> None:
        """Read-modify-write of the fallback index, bounded and verified.

        The spec's steps (pull the tag, 404 = empty index, append unless present, push). Registries
        without the referrers API have no compare-and-swap for tags (distribution 2.8 ignores
        ``If-Match``; the ETag the registry served is sent anyway for those that honour it,
        answering 412), so two writers can
        race: each re-reads the tag after its write and tries again, at most
        :data:`FALLBACK_ATTEMPTS` times, when its entry was overwritten. A writer whose entry a
        *later* writer dropped between that writer's read and write cannot notice; the window is
        one GET-to-PUT (milliseconds), and verdicts are written once per scan.
        """
        tag = fallback_tag(subject)
        url = f"{repo.base_url}/manifests/{tag}"
        for attempt in range(1, FALLBACK_ATTEMPTS + 1):
            current = self.get_manifest(image, tag)
            entries: list[dict[str, Any]] = []
            extra: dict[str, str] = {}
            if current is not None and current.digest == subject:
                raise RemoteError(
                    f"registry {repo.host} answers the referrers tag {tag} of {repo.name} with the image "
                    "itself (it reads the tag as its digest, as GitLab's registry does), so it can hold "
                    f"neither a referrers API nor the fallback index: artifact {entry.digest} is pushed "
                    "but cannot be listed"
                )
            if current is not None:
                try:
                    entries = index_entries(current)
                except ValueError as exc:
                    # The spec: a tag that is not the expected index is reported, never overwritten.
                    raise RemoteError(
                        f"registry {repo.host}: tag {tag} of {repo.name} is not a referrers index ({exc}); "
                        "not overwriting it"
                    ) from None
                # RFC 9110: If-Match carries the entity tag the server gave (distribution's is the
                # quoted digest, others make their own); none served, no condition.
                etag = self._etags.get((repo.api_host, repo.name, current.digest))
                if etag:
                    extra["If-Match"] = etag
            if not any(e.get("digest") == entry.digest for e in entries):
                # Other tools' entries (cosign, notation) are kept exactly as they were.
                entries.append(entry.to_json())
                index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
                body = json.dumps(index, separators=(",", ":")).encode()
                proc.echo(f"# PUT {url} (referrers index, {len(entries)} entries)")
                try:
                    self._put_manifest(repo, url, body, OCI_INDEX, extra)
                except RegistryError as exc:
                    if exc.status == 412 or "MANIFEST_BLOB_UNKNOWN" in exc.codes:
                        # 412: someone wrote first. MANIFEST_BLOB_UNKNOWN: an entry was deleted
                        # (distribution checks that an index's manifests exist); drop it and retry.
                        gone = exc.detail
                        self._drop_missing(repo, image, tag, gone)
                        continue
                    raise
            after = self.get_manifest(image, tag)
            try:
                listed = index_entries(after) if after is not None else []
            except ValueError as exc:
                # Overwritten with something else since our write: report it, never a traceback.
                raise RemoteError(
                    f"registry {repo.host}: tag {tag} of {repo.name} is not a referrers index ({exc})"
                ) from None
            if any(e.get("digest") == entry.digest for e in listed):
                return
            if attempt < FALLBACK_ATTEMPTS:
                self._pause(
                    repo, BACKOFF * attempt, attempt + 1, FALLBACK_ATTEMPTS, "the referrers index changed"
                )
        raise RemoteError(
            f"registry {repo.host}: the referrers index {tag} of {repo.name} kept changing under "
            f"{FALLBACK_ATTEMPTS} updates; artifact {entry.digest} is pushed but not listed (run again)"
        )

    def _drop_missing(self, repo: Repository, image: str, tag: str, gone: str) -> None:
        """Remove the entry for ``gone`` (a deleted manifest) from the fallback index, if it is there."""
        current = self.get_manifest(image, tag)
        if current is None or not DIGEST_RE.fullmatch(gone):
            return
        entries = [e for e in index_entries(current) if e.get("digest") != gone]
        body = json.dumps(
            {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}, separators=(",", ":")
        )
        self._put_manifest(repo, f"{repo.base_url}/manifests/{tag}", body.encode(), OCI_INDEX, {})

    # -- transport ------------------------------------------------------------------------------------
    def _session(self, repo: Repository) -> requests.Session:
        session = self._sessions.get(repo.api_host)
        if session is None:
            import requests  # noqa: PLC0415 - heavy; only registry checks need it

            session = requests.Session()
            # A loopback registry is on this machine: an HTTP(S)_PROXY from the environment must not see it.
            session.trust_env = not is_loopback(repo.host)
            self._sessions[repo.api_host] = session
        return session

    def _remaining(self) -> float:
        if self._started is None:
            self._started = time.monotonic()
        return self._started + self.deadline - time.monotonic()

    def _credentials(self, repo: Repository) -> docker_credentials.Credentials | None:
        """The environment's credentials for the host, else docker's (``docker login``), once per client."""
        if repo.host not in self._credentials_of:
            pair = registry_credentials(repo.host, self.env)
            if pair is not None:
                # Both set, or GITHUB_TOKEN was taken (a user alone is not the pair that was sent).
                explicit = (
                    self.env.get("DEX_REGISTRY_USER", "").strip()
                    and self.env.get("DEX_REGISTRY_PASSWORD", "").strip()
                )
                source = "DEX_REGISTRY_USER/DEX_REGISTRY_PASSWORD" if explicit else "GITHUB_TOKEN"
                found: docker_credentials.Credentials | None = docker_credentials.Credentials(
                    user=pair[0], password=pair[1], source=source
                )
            else:
                found = docker_credentials.lookup(repo.host, self.env)
            if found is not None:
                found.register()
            self._credentials_of[repo.host] = found
        return self._credentials_of[repo.host]

    def _cached_auth(self, repo: Repository, scope: str) -> str | None:
        if repo.api_host in self._basic_hosts:
            credentials = self._credentials(repo)
            basic = credentials.basic if credentials else None
            return "Basic " + _basic(*basic) if basic else None
        found = self._auth.get((repo.api_host, scope))
        if found is None and scope == _pull(repo.name):
            found = self._auth.get((repo.api_host, _push(repo.name)))
        return found

    def _request(
        self,
        method: str,
        repo: Repository,
        url: str,
        *,
        scope: str,
        headers: Mapping[str, str] | None = None,
        data: bytes | None = None,
        stream: bool = False,
        unchallenged_ok: bool = False,
    ) -> requests.Response:
        """One API request with auth: a 401 is answered once with the challenge's credentials.

        ``unchallenged_ok``: a 401 without any ``WWW-Authenticate`` is returned as it is (no
        challenge to answer: Harbor 2.7's referrers endpoint, goharbor/harbor#18305).
        """
        same_host = _same_origin(url, repo)
        auth = self._cached_auth(repo, scope) if same_host else None
        response = self._send(repo, method, url, headers=headers, data=data, auth=auth, stream=stream)
        if response.status_code == 401 and unchallenged_ok and "WWW-Authenticate" not in response.headers:
            return response
        if response.status_code == 401 and same_host:
            challenge = _parse_challenge(response.headers.get("WWW-Authenticate", ""))
            response.close()
            auth = self._authorize(repo, challenge, scope, rejected=auth)
            response = self._send(repo, method, url, headers=headers, data=data, auth=auth, stream=stream)
        if response.status_code in {401, 403}:
            # The registry's words say which permission is missing (GAR: 403 DENIED "Permission
            # 'artifactregistry.repositories.uploadArtifacts' denied"); a HEAD has no body.
            codes, message = _error_message(response)
            response.close()
            push = scope.endswith(",push")
            said = (f" {codes[0]}" if codes else "") + (f": {message}" if message else "")
            # Docker Hub and GAR answer a repository that does not exist like a private one.
            maybe = "" if push else " (it may not exist, or be private)"
            raise RemoteError(
                f"registry {repo.host} refused {'push' if push else 'pull'} access to {repo.name}{maybe} "
                f"(HTTP {response.status_code} on {method}{said}): {PUSH_HINT if push else AUTH_HINT}"
            )
        return response

    def _authorize(
        self, repo: Repository, challenge: Mapping[str, str], scope: str, *, rejected: str | None
    ) -> str:
        credentials = self._credentials(repo)
        basic_pair = credentials.basic if credentials else None
        if challenge.get("scheme") == "basic":
            if basic_pair is None or rejected is not None:
                why = (
                    f"refused the credentials ({credentials.source})"
                    if rejected and credentials
                    else "needs a login"
                )
                raise RemoteError(
                    f"registry {repo.host} {why} (HTTP Basic): "
                    "set DEX_REGISTRY_USER/DEX_REGISTRY_PASSWORD, or docker login"
                )
            self._basic_hosts.add(repo.api_host)
            return "Basic " + _basic(*basic_pair)
        realm = challenge.get("realm")
        if challenge.get("scheme") != "bearer" or not realm:
            raise RemoteError(f"registry {repo.host}: unsupported auth challenge {challenge.get('scheme')!r}")
        if rejected is not None:
            # The cached token was refused (expired, or lacks the scope): never ask twice in a row.
            self._auth.pop((repo.api_host, scope), None)
        if credentials and credentials.registry_token and rejected is None:
            # docker config's registrytoken is a bearer token for the registry itself (no token server).
            value = f"Bearer {credentials.registry_token}"
            self._auth[(repo.api_host, scope)] = value
            return value
        response = self._token_response(repo, realm, challenge.get("service", ""), scope, credentials)
        if response.status_code != 200:
            said = _token_error(response)
            response.close()
            action = "push" if scope.endswith(",push") else "pull"
            why = (
                f"the credentials were refused: {credentials.source}"
                if credentials
                else "anonymous access is not allowed"
            )
            raise RemoteError(
                f"registry {repo.host} refused a {action} token for {repo.name} "
                f"(HTTP {response.status_code}{said}, {why}): {PUSH_HINT if action == 'push' else AUTH_HINT}"
            )
        try:
            body = parse_json(response.content)
        except ValueError:
            body = {}
        token = (body.get("token") or body.get("access_token")) if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise RemoteError(f"registry {repo.host}: the token endpoint answered without a token")
        if unusable_secret(token):
            # It goes into a header, which requests refuses and quotes escaped (past the redaction).
            raise RemoteError(
                f"registry {repo.host}: the token endpoint answered a token that is not header text"
            )
        redact.register_secret(token)
        value = f"Bearer {token}"
        self._auth[(repo.api_host, scope)] = value
        return value

    def _token_response(
        self,
        repo: Repository,
        realm: str,
        service: str,
        scope: str,
        credentials: docker_credentials.Credentials | None,
    ) -> requests.Response:
        """Ask the token server: GET with HTTP Basic, or an OAuth2 POST for an identity token.

        distribution's docs/spec/auth/oauth.md: ``grant_type=refresh_token`` with the identity token
        ``docker login`` stored (ACR's ``az acr login``); a server without OAuth2 answers 404/405 to the
        POST, and then gets the GET with the token as the password, as go-containerregistry's
        ``bearerTransport.refresh`` (pkg/v1/remote/transport/bearer.go) falls back.
        """
        if credentials and repo.scheme == "https" and urllib.parse.urlsplit(realm).scheme != "https":
            # An HTTPS registry whose challenge names a plain-HTTP (or other) realm: a password or
            # refresh token sent there would cross the network in clear text.
            raise RemoteError(
                f"registry {repo.host} sends tokens from {realm!r}, which is not HTTPS: "
                "not sending credentials there"
            )
        if credentials and credentials.identity_token:
            form = {
                "grant_type": "refresh_token",
                "refresh_token": credentials.identity_token,
                "client_id": "dex-tasks",
                "scope": scope,
            }
            if service:
                form["service"] = service
            proc.echo(f"# POST {realm} (OAuth2 refresh_token, {credentials.source})")
            headers = {"Content-Type": "application/x-www-form-urlencoded"}
            data = urllib.parse.urlencode(form).encode()
            response = self._send(repo, "POST", realm, headers=headers, data=data, auth=None, stream=False)
            if response.status_code not in {404, 405}:
                return response
            response.close()
        params = {"scope": scope}
        if service:
            params["service"] = service
        token_url = f"{realm}{'&' if '?' in realm else '?'}{urllib.parse.urlencode(params)}"
        pair = credentials.basic if credentials else None
        if credentials and credentials.identity_token and pair is None:
            pair = (credentials.user or docker_credentials.TOKEN_USER, credentials.identity_token)
        basic = "Basic " + _basic(*pair) if pair else None
        proc.echo(f"# GET {token_url}")
        return self._send(repo, "GET", token_url, headers=None, data=None, auth=basic, stream=False)

    def _send(
        self,
        repo: Repository,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None,
        data: bytes | None,
        auth: str | None,
        stream: bool,
    ) -> requests.Response:
        """Bounded retries of one request: connection errors, 429 and 5xx; the client's deadline."""
        import requests  # noqa: PLC0415 - heavy; only registry checks need it

        session = self._session(repo)
        last = "no time left"
        message = ""  # the registry's error message of the last answer
        tried = 0
        retry_after: float | None = None
        limited = False
        for attempt in range(1, self.attempts + 1):
            remaining = self._remaining()
            if remaining <= 0:
                break
            timeout = min(self.timeout, remaining)
            self.requests += 1
            tried = attempt
            try:
                with _slow_notice(f"# waiting for registry {repo.host} (attempt {attempt}/{self.attempts})"):
                    response = session.request(
                        method,
                        url,
                        headers=dict(headers or {}),
                        data=data,
                        auth=_HeaderAuth(auth),
                        timeout=timeout,
                        allow_redirects=method in {"GET", "HEAD"},
                        stream=stream,
                    )
            except requests.RequestException as exc:
                last, message, retry_after, limited = f"{type(exc).__name__}: {exc}", "", None, False
            else:
                if response.status_code != 429 and response.status_code < 500:
                    return response
                codes, message = _error_message(response)
                last = f"HTTP {response.status_code}" + (f" {codes[0]}" if codes else "")
                # RFC 9110 Retry-After (seconds or a date) on 429 and 503: Docker Hub's and GAR's
                # rate limits; trying again sooner only burns another request of the quota.
                retry_after = _retry_after(response.headers.get("Retry-After", ""))
                limited = response.status_code == 429
                response.close()
            if attempt < self.attempts:
                delay = max(BACKOFF * 2 ** (attempt - 1), retry_after or 0.0)
                if delay >= self._remaining():
                    break
                self._pause(repo, delay, attempt + 1, self.attempts, last)
        elapsed = self.deadline - self._remaining()
        path = urllib.parse.urlsplit(url).path
        said = f"{last}: {message}" if message else last
        budget = f"deadline {self.deadline:g}s, {DEADLINE_ENV}"
        if limited:
            later = (
                f"; it asks to wait {retry_after:.0f}s (Retry-After), past the deadline"
                if retry_after is not None and retry_after >= self._remaining()
                else ""
            )
            raise RemoteError(
                f"registry {repo.host} rate-limited {method} {path} after {tried} tries in {elapsed:.0f}s "
                f"({budget}){later}: {said}; authenticate ({AUTH_HINT}) or try again later"
            )
        raise RemoteError(
            f"registry {repo.host} did not answer {method} {path} "
            f"after {tried} tries in {elapsed:.0f}s ({budget}): {said}"
        )

    def _pause(self, repo: Repository, delay: float, attempt: int, attempts: int, why: str) -> None:
        progress.waiting(f"registry {repo.host}", attempt, attempts, delay, why)
        time.sleep(delay)

    def _expect(self, response: requests.Response, repo: Repository, ok: tuple[int, ...], what: str) -> None:
        if response.status_code in ok:
            return
        codes, detail = _error_codes(response)
        response.close()
        raise RegistryError(
            f"registry {repo.host} refused to {what} for {repo.name}: HTTP {response.status_code}"
            + (f" {', '.join(codes)}" if codes else ""),
            status=response.status_code,
            codes=codes,
            detail=detail,
        )


# -- helpers -------------------------------------------------------------------------------------------
_NO_REPOSITORY: list[Descriptor] = []  # the referrers API's 404 NAME_UNKNOWN (compared by identity)


class _Watchdog:
    """One daemon thread that prints the "no answer yet" lines of every slow request.

    A ``threading.Timer`` per request would start a thread per HEAD (about a millisecond on a busy
    machine, as much as the request itself); registering a deadline here is a dict insert. The
    thread ends after :data:`_WATCHDOG_IDLE` seconds without pending notices and is started again
    on demand, so it never outlives the registry interaction by much.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._pending: dict[int, tuple[float, contextvars.Context, str]] = {}
        self._serial = 0
        self._running = False

    def add(self, after: float, line: str) -> int:
        with self._cond:
            self._serial += 1
            self._pending[self._serial] = (time.monotonic() + after, contextvars.copy_context(), line)
            if not self._running:
                self._running = True
                threading.Thread(target=self._run, name="dex-registry-progress", daemon=True).start()
            elif len(self._pending) == 1:
                self._cond.notify()  # it waits for the idle timeout: wake it to wait for this one
            return self._serial

    def cancel(self, serial: int) -> None:
        with self._cond:
            self._pending.pop(serial, None)

    def _run(self) -> None:
        idle_since = time.monotonic()
        while True:
            with self._cond:
                now = time.monotonic()
                due = [key for key, (when, _, _) in self._pending.items() if when <= now]
                fire = [self._pending.pop(key) for key in due]
                if self._pending:
                    idle_since = now
                    self._cond.wait(min(when for when, _, _ in self._pending.values()) - now)
                elif not fire:
                    if now - idle_since >= _WATCHDOG_IDLE:
                        self._running = False
                        return
                    self._cond.wait(_WATCHDOG_IDLE)
            for _, context, line in fire:
                # Run in the requester's context, so the line goes where that task's echo goes.
                context.run(proc.echo, line)


_WATCHDOG_IDLE = 5.0
_watchdog = _Watchdog()


@contextlib.contextmanager
def _slow_notice(line: str, after: float = PROGRESS_AFTER) -> Iterator[None]:
    """Print ``line`` once if the block is still waiting after ``after`` seconds (a slow registry)."""
    serial = _watchdog.add(after, f"{line}, no answer yet after {after:.0f}s")
    try:
        yield
    finally:
        _watchdog.cancel(serial)


def _same_origin(url: str, repo: Repository) -> bool:
    """Whether ``url`` (an upload ``Location``, a Link) is the registry itself: its credentials may go there.

    Scheme, host (case-insensitive) and port, with the scheme's default port filled in: Harbor and
    GitLab behind a proxy answer ``Location: https://host:443/v2/...`` for ``https://host``.
    """
    parts = urllib.parse.urlsplit(url)
    own = urllib.parse.urlsplit(f"{repo.scheme}://{repo.api_host}")
    defaults = {"http": 80, "https": 443}
    try:
        port, own_port = parts.port, own.port
    except ValueError:
        return False
    return (
        parts.scheme == own.scheme
        and (parts.hostname or "") == (own.hostname or "")
        and (port or defaults.get(parts.scheme)) == (own_port or defaults.get(own.scheme))
    )


def _media_type(response: requests.Response) -> str:
    return response.headers.get("Content-Type", "").partition(";")[0].strip()


def _body_media_type(body: bytes) -> str:
    try:
        data = parse_json(body)
    except ValueError:
        return ""
    value = data.get("mediaType") if isinstance(data, dict) else None
    return value if isinstance(value, str) else ""


_error_bodies: weakref.WeakKeyDictionary[requests.Response, tuple[tuple[str, ...], str]] = (
    weakref.WeakKeyDictionary()
)
_error_bodies_messages: weakref.WeakKeyDictionary[requests.Response, str] = weakref.WeakKeyDictionary()


def _error_codes(response: requests.Response) -> tuple[tuple[str, ...], str]:
    """The spec's error body ``{"errors":[{"code","message","detail"}]}``: its codes and first detail.

    Reads at most 64 KiB, once per response (a streamed body cannot be read twice).
    """
    cached = _error_bodies.get(response)
    if cached is not None:
        return cached
    found: tuple[tuple[str, ...], str] = ((), "")
    if response.request.method != "HEAD":
        try:
            data = parse_json(next(response.iter_content(65536), b""))
        # Not JSON; a stream already read (StreamConsumedError is a TypeError); a connection that broke.
        except (ValueError, TypeError, OSError):
            data = None
        errors = data.get("errors") if isinstance(data, dict) else None
        if isinstance(errors, list):
            objects = [e for e in errors if isinstance(e, dict)]
            codes = tuple(e["code"] for e in objects if isinstance(e.get("code"), str))
            detail = next((e.get("detail") for e in objects if "detail" in e), "")
            found = (codes, detail if isinstance(detail, str) else "")
            message = next((e["message"] for e in objects if isinstance(e.get("message"), str)), "")
            # Untrusted text bound for a terminal: printable characters only.
            shown = "".join(c for c in " ".join(message.split()) if c.isprintable())
            _error_bodies_messages[response] = shown[:200]
    _error_bodies[response] = found
    return found


def _error_message(response: requests.Response) -> tuple[tuple[str, ...], str]:
    """The error codes and the first message of an error body (at most 200 characters), for messages."""
    codes, _ = _error_codes(response)
    data = _error_bodies_messages.get(response, "")
    return codes, data


def _token_error(response: requests.Response) -> str:
    """What a token server said when it refused: ``" DENIED: ..."`` (the spec's errors, ghcr.io) or
    ``": incorrect username or password"`` (Docker Hub's ``{"details": ...}``), else ""."""
    codes, message = _error_message(response)
    if codes or message:
        return (f" {codes[0]}" if codes else "") + (f": {message}" if message else "")
    try:
        data = parse_json(response.content[:65536])
    except ValueError:
        return ""
    details = data.get("details") if isinstance(data, dict) else None
    if not isinstance(details, str) or not details.strip():
        return ""
    return ": " + "".join(c for c in " ".join(details.split()) if c.isprintable())[:200]


def _retry_after(value: str) -> float | None:
    """RFC 9110 section 10.2.3: ``Retry-After: 120`` or an HTTP date; None when absent or unreadable."""
    value = value.strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    import email.utils  # noqa: PLC0415 - only for a date-valued Retry-After

    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def _absent(response: requests.Response) -> bool:
    """404, or the spec's "unknown" codes under another status (some registries answer 400/401)."""
    if response.status_code == 404:
        response.close()
        return True
    if response.status_code < 400:
        return False
    codes, _ = _error_codes(response)
    return bool({"MANIFEST_UNKNOWN", "NAME_UNKNOWN", "BLOB_UNKNOWN"} & set(codes))


def _read(response: requests.Response, limit: int, what: str) -> bytes:
    """The body, at most ``limit`` bytes: registries are untrusted, and a manifest is small."""
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        response.close()
        raise BadContentError(f"{what} is {declared} bytes, more than the {limit} this client reads")
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(65536):
        size += len(chunk)
        if size > limit:
            response.close()
            raise BadContentError(f"{what} is more than the {limit} bytes this client reads")
        chunks.append(chunk)
    return b"".join(chunks)


def _next_link(response: requests.Response, url: str) -> str | None:
    """``Link: </v2/...?last=x>; rel="next"`` (the referrers API pages like the tag list)."""
    following = response.links.get("next", {}).get("url")
    return urllib.parse.urljoin(url, following) if following else None


# -- one-shot helpers (image-build, the v1 registry check) ---------------------------------------------
def manifest_digest(image: str, tag: str, *, env: Mapping[str, str] | None = None) -> str | None:
    """The registry's digest of ``image:tag``, None if absent; RemoteError (exit 4) if unreachable."""
    with Client(env=env) as client:
        return client.resolve(image, tag)


def tag_exists(image: str, tag: str, *, env: Mapping[str, str] | None = None) -> bool:
    """Whether the registry has ``image:tag`` (promote refuses tags that were never pushed)."""
    return manifest_digest(image, tag, env=env) is not None
