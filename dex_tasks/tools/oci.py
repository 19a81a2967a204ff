"""The registry v2 API (OCI distribution spec 1.1) with ``requests``: digests, manifests, blobs, referrers.

Spoken directly rather than through ``docker`` / ``crane`` / ``oras``: it needs no daemon, login state
or extra binary, works on insecure loopback registries without ``--insecure``, and answers "absent"
precisely (404, ``MANIFEST_UNKNOWN``, ``NAME_UNKNOWN``).
Spec: https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md

* **Auth** follows the ``WWW-Authenticate`` challenge of the first 401: ``Bearer realm=,service=,scope=``
  (the token flow, https://distribution.github.io/distribution/spec/auth/token/) or ``Basic``. Reads ask
  for ``repository:<name>:pull``, writes for ``repository:<name>:pull,push``; a token is cached per
  (host, scope) for the life of one :class:`Client` and registered as a secret. Credentials:
  ``DEX_REGISTRY_USER``/``DEX_REGISTRY_PASSWORD``, or ``GITHUB_TOKEN`` on ghcr.io only; anonymous
  otherwise (public images on ghcr.io and Docker Hub get anonymous pull tokens).
* **Bounded**: every request has a timeout (:data:`REQUEST_TIMEOUT`), connection errors, 429 and 5xx
  are retried :data:`ATTEMPTS` times with a short exponential backoff, and the whole interaction of
  one client has one deadline (:data:`DEADLINE` seconds, ``DEX_REGISTRY_DEADLINE`` overrides), after
  which :class:`~dex_tasks.errors.RemoteError` (exit 4) says the registry did not answer. A wait of
  more than :data:`PROGRESS_AFTER` seconds prints a ``# waiting for registry ...`` line.
* **Referrers**: ``GET /v2/<name>/referrers/<digest>``, or, where the registry answers 404 (it has no
  referrers API: distribution 2.x, which is Debian's docker-registry, and ghcr.io), the fallback tag
  ``sha256-<hex>`` holding an OCI image index of the referrers (the spec's "referrers tag schema").
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
from dex_tasks._untrusted import parse_json, secret_from_env
from dex_tasks.errors import BadContentError, RegistryError, RemoteError, UsageError

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

AUTH_HINT = "set GITHUB_TOKEN (ghcr.io) or DEX_REGISTRY_USER/DEX_REGISTRY_PASSWORD"
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


def check_reference(ref: str) -> str:
    """A tag or a ``sha256:`` digest, else UsageError (exit 2) before any request is made."""
    if DIGEST_RE.fullmatch(ref) or TAG_RE.fullmatch(ref):
        return ref
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
    token = secret_from_env(source, "GITHUB_TOKEN")
    if token and host == "ghcr.io":
        # ghcr.io ignores the user name for a token; the actor keeps audit logs readable.
        return source.get("GITHUB_ACTOR", "").strip() or "x-access-token", token
    return None


def deadline_from_env(env: Mapping[str, str] | None = None) -> float:
    """``DEX_REGISTRY_DEADLINE`` seconds (a positive number below a day), else :data:`DEADLINE`."""
    return durations.seconds_from_env(DEADLINE_ENV, DEADLINE, env)


def _parse_challenge(header: str) -> dict[str, str]:
    """``Bearer realm="...",service="...",scope="..."`` -> its parameters (scheme under ``scheme``)."""
    scheme, _, rest = header.strip().partition(" ")
    params = dict(re.findall(r'(\w+)="([^"]*)"', rest))
    params["scheme"] = scheme.lower()
    return params


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
        media_type = _media_type(response) or _body_media_type(body)
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
            else:
                found = listed
        if repo.host in self._no_referrers_api:
            manifest = self.get_manifest(image, fallback)
            if manifest is None:
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
        url: str | None = f"{repo.base_url}/referrers/{digest}"
        if artifact_type:
            url = f"{url}?{urllib.parse.urlencode({'artifactType': artifact_type})}"
        found: list[Descriptor] = []
        for _ in range(MAX_REFERRER_PAGES):
            if url is None:
                break
            proc.echo(f"# GET {url}")
            response = self._request("GET", repo, url, scope=_pull(repo.name), headers={"Accept": OCI_INDEX})
            if response.status_code == 404:
                return None
            self._expect(response, repo, (200,), f"GET referrers of {digest}")
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
        ``If-Match``; it is sent anyway for those that honour it, answering 412), so two writers can
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
            if current is not None:
                try:
                    entries = index_entries(current)
                except ValueError as exc:
                    # The spec: a tag that is not the expected index is reported, never overwritten.
                    raise RemoteError(
                        f"registry {repo.host}: tag {tag} of {repo.name} is not a referrers index ({exc}); "
                        "not overwriting it"
                    ) from None
                extra["If-Match"] = f'"{current.digest}"'
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
            if after is not None and any(e.get("digest") == entry.digest for e in index_entries(after)):
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

    def _cached_auth(self, repo: Repository, scope: str) -> str | None:
        if repo.api_host in self._basic_hosts:
            credentials = registry_credentials(repo.host, self.env)
            return "Basic " + _basic(*credentials) if credentials else None
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
    ) -> requests.Response:
        """One API request with auth: a 401 is answered once with the challenge's credentials."""
        same_host = urllib.parse.urlsplit(url).netloc == repo.api_host
        auth = self._cached_auth(repo, scope) if same_host else None
        response = self._send(repo, method, url, headers=headers, data=data, auth=auth, stream=stream)
        if response.status_code == 401 and same_host:
            challenge = _parse_challenge(response.headers.get("WWW-Authenticate", ""))
            response.close()
            auth = self._authorize(repo, challenge, scope, rejected=auth)
            response = self._send(repo, method, url, headers=headers, data=data, auth=auth, stream=stream)
        if response.status_code in {401, 403}:
            response.close()
            push = scope.endswith(",push")
            raise RemoteError(
                f"registry {repo.host} refused {'push' if push else 'pull'} access to {repo.name} "
                f"(HTTP {response.status_code} on {method}): {PUSH_HINT if push else AUTH_HINT}"
            )
        return response

    def _authorize(
        self, repo: Repository, challenge: Mapping[str, str], scope: str, *, rejected: str | None
    ) -> str:
        credentials = registry_credentials(repo.host, self.env)
        if credentials:
            redact.register_secret(credentials[1])
        if challenge.get("scheme") == "basic":
            if credentials is None or rejected is not None:
                why = "wrong user or password" if rejected else "needs a login"
                raise RemoteError(
                    f"registry {repo.host} {why} (HTTP Basic): set DEX_REGISTRY_USER/DEX_REGISTRY_PASSWORD"
                )
            self._basic_hosts.add(repo.api_host)
            return "Basic " + _basic(*credentials)
        realm = challenge.get("realm")
        if challenge.get("scheme") != "bearer" or not realm:
            raise RemoteError(f"registry {repo.host}: unsupported auth challenge {challenge.get('scheme')!r}")
        if rejected is not None:
            # The cached token was refused (expired, or lacks the scope): never ask twice in a row.
            self._auth.pop((repo.api_host, scope), None)
        params = {"scope": scope}
        if challenge.get("service"):
            params["service"] = challenge["service"]
        token_url = f"{realm}{'&' if '?' in realm else '?'}{urllib.parse.urlencode(params)}"
        basic = "Basic " + _basic(*credentials) if credentials else None
        proc.echo(f"# GET {token_url}")
        response = self._send(repo, "GET", token_url, headers=None, data=None, auth=basic, stream=False)
        if response.status_code != 200:
            action = "push" if scope.endswith(",push") else "pull"
            why = "the credentials were refused" if credentials else "anonymous access is not allowed"
            raise RemoteError(
                f"registry {repo.host} refused a {action} token for {repo.name} "
                f"(HTTP {response.status_code}, {why}): {PUSH_HINT if action == 'push' else AUTH_HINT}"
            )
        try:
            body = parse_json(response.content)
        except ValueError:
            body = {}
        token = (body.get("token") or body.get("access_token")) if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise RemoteError(f"registry {repo.host}: the token endpoint answered without a token")
        redact.register_secret(token)
        value = f"Bearer {token}"
        self._auth[(repo.api_host, scope)] = value
        return value

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
        tried = 0
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
                last = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code != 429 and response.status_code < 500:
                    return response
                last = f"HTTP {response.status_code}"
                response.close()
            if attempt < self.attempts:
                delay = BACKOFF * 2 ** (attempt - 1)
                if delay >= self._remaining():
                    break
                self._pause(repo, delay, attempt + 1, self.attempts, last)
        elapsed = self.deadline - self._remaining()
        raise RemoteError(
            f"registry {repo.host} did not answer {method} {urllib.parse.urlsplit(url).path} "
            f"after {tried} tries in {elapsed:.0f}s (deadline {self.deadline:g}s, {DEADLINE_ENV}): {last}"
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
    _error_bodies[response] = found
    return found


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
