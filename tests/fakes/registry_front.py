"""A front for the REAL local registry (Debian's docker-registry, distribution 2.8): token auth, referrers.

Every request is proxied to the real registry (``DEX_TEST_REGISTRY``) with the client's ``Host``
header, so the registry's own answers come back unchanged: its digests, ``Location`` URLs (distribution
builds them from ``Host``, so uploads come back through the front), 404 bodies, manifest validation
(``MANIFEST_BLOB_UNKNOWN`` for an index that lists a manifest it does not have) and blob storage. The
front adds only what distribution 2.8 cannot do here:

* ``auth="bearer"``: the token flow of https://distribution.github.io/distribution/spec/auth/token/
  as ghcr.io and Docker Hub speak it, with distribution's token access controller
  (``registry/auth/token/accesscontroller.go``) deciding:

  - a request without a token -> 401, ``{"errors":[{"code":"UNAUTHORIZED",...}]}`` and
    ``WWW-Authenticate: Bearer realm="http://<front>/token",service="<front>",scope="repository:<name>:<actions>"``
    where ``<actions>`` is ``pull`` for GET/HEAD and ``pull,push`` for POST/PUT/PATCH/DELETE;
  - a token without the needed action -> 401 with ``error="insufficient_scope"`` added to the challenge;
  - ``GET /token?service=..&scope=repository:<name>:<actions>`` -> ``{"token","access_token",
    "expires_in","issued_at"}``. The token server grants the *intersection* of what was asked and
    what the user may do (an anonymous caller gets at most ``pull``, and only with
    ``anonymous_pull``), and answers 401 ``UNAUTHORIZED`` only for wrong credentials (HTTP Basic on
    the token request; ghcr.io takes any user name with a token as the password).
  - ``POST /token`` (``refresh_tokens``): the OAuth2 flow of distribution's docs/spec/auth/oauth.md,
    as ACR's ``/oauth2/token`` serves the identity token ``az acr login`` leaves in docker's
    config.json: a form ``grant_type=refresh_token&refresh_token=..&service=..&scope=..&client_id=..``
    (``client_id`` required) -> ``{"access_token","scope","expires_in","issued_at"}``; an unknown
    refresh token -> 401 ``UNAUTHORIZED``; ``oauth=False`` answers the POST 405, as token servers
    without OAuth2 do (the client then falls back to the GET).
* ``auth="basic"``: distribution's htpasswd auth: 401 ``WWW-Authenticate: Basic realm="Registry Realm"``.
* ``referrers=True``: the OCI distribution spec 1.1 referrers API, as zot and Harbor >= 2.9
  (goharbor/harbor#18865) implement it and distribution itself does not yet
  (distribution/distribution#4828 is open): a manifest PUT with a ``subject`` answers
  ``OCI-Subject: <subject digest>``, and ``GET /v2/<name>/referrers/<digest>[?artifactType=]`` answers
  an OCI image index of the referrers (``artifactType`` from the manifest or its config's media type,
  its annotations), filtered with ``OCI-Filters-Applied: artifactType``, empty (never 404) when none;
  a repository the registry does not have is 404 ``NAME_UNKNOWN`` (zot's ``GetReferrers`` handler,
  pkg/api/routes.go; the spec's 404 ban is for a missing *subject* in a known repository).
  Without it the front passes the referrers path through and the real registry answers
  ``404 page not found``, which is what makes a client use the fallback tag.
* ``web_ui=True`` (without ``referrers``): the referrers path answers 200 ``text/html``, as a registry
  whose web UI serves every unknown path does; oras-go checks the Content-Type for that
  (``referrersPageByAPI``: anything but an OCI index means "no referrers API").
* ``blob_redirect=True``: ``GET /v2/<name>/blobs/<digest>`` answers ``307 Temporary Redirect`` to a
  signed storage URL on *another host* (``localhost:<port>/_storage/...?X-Amz-Signature=..``), as
  distribution's ``redirect`` storage middleware and the s3/gcs drivers do
  (registry/handlers/blob.go ``GetBlob`` -> ``ServeBlob``; ghcr.io and Docker Hub send blobs to a
  CDN the same way). The storage answers like S3: 400 ``InvalidArgument`` "Only one auth mechanism
  allowed" when the request carries an ``Authorization`` header beside the signature, else the blob.
  ``storage_auth`` records the Authorization header of each storage request.
* ``no_digest_header=True``: manifest answers without ``Docker-Content-Digest``, which the spec makes
  a SHOULD (spec.md "Pulling manifests"), as registries behind some proxies and caches (Artifactory
  remote repositories, Nexus proxies) answer HEAD: the client must hash the body.
* ``generic_content_type=True``: manifests are served as ``Content-Type: application/json``, as a
  caching proxy or static mirror that does not keep the registry's header does (the spec's MUST that
  Content-Type equals the body's ``mediaType`` broken); the body still says what it is.
* ``dash_digests=True``: a manifest GET/HEAD of the reference ``sha256-<hex>`` is answered as the
  digest ``sha256:<hex>``, as GitLab's registry does (oras-project/oras-go#1396: "normalizes the
  dash form to a digest instead of treating it as a tag"); it has no referrers API either.
* ``unchallenged_referrers=True``: the referrers path answers 401 ``UNAUTHORIZED`` *without* a
  ``WWW-Authenticate`` header, even with a valid token, as Harbor 2.7 did (goharbor/harbor#18305:
  "responds to the referrers API with a 401 and no www-authenticate header"); nothing to answer.
* ``relative_location=True``: ``Location`` headers are made relative
  (``/v2/<name>/blobs/uploads/<id>?_state=..``), as Quay (endpoints/v2/manifest.py ``url_for``
  without ``_external``) and ghcr.io answer; a client must resolve them against the request URL
  (RFC 9110 section 10.2.2).
* ``own_etags=True``: manifests carry an entity tag of the registry's own making (``ETag: "<hex>"``, not
  distribution's quoted digest) and a manifest PUT with ``If-Match`` is honoured as RFC 9110
  section 13.1.1 says: 412 unless it names the current entity tag of that tag. Only the ETag the
  registry served can match; a client must not make one up. The entity tag is opaque, as the
  conditional-request semantics proposed for the spec say (opencontainers/distribution-spec#250,
  #251 preconditions.md: "Many registries supply ETags today"; distribution's own is the quoted
  digest, registry/handlers/manifests.go). ``if_match`` records the path and
  ``If-Match`` ("" when absent) of each manifest PUT. ``weak_etags=True`` serves them weak
  (``W/"<hex>"``, as nginx does to a strong one when it compresses the body): If-Match compares
  strongly (RFC 9110 section 13.1.1), so a weak tag there never matches and is 412.
* ``fail_next(n)``: the next ``n`` requests get 503 ``UNAVAILABLE`` (a registry hiccup).
* ``rate_limit(n, retry_after)``: the next ``n`` requests get Docker Hub's pull-limit answer
  (docs.docker.com/docker-hub/usage/pulls: 429 with the distribution spec's ``TOOMANYREQUESTS``
  code and "You have reached your pull rate limit..."), with ``Retry-After: <seconds>`` (RFC 9110
  section 10.2.3) when ``retry_after`` is given, as GAR and ECR send it on throttling.
* ``other_challenges``: ``WWW-Authenticate`` headers sent *before* the registry's own on every 401,
  e.g. ``("Negotiate",)`` as Artifactory and Nexus behind a Kerberos (SPNEGO) proxy answer; the
  client must pick the Basic/Bearer one (go-containerregistry ``pickFromMultipleChallenges``,
  pkg/v1/remote/transport/ping.go). HTTP sends them as separate header lines, which ``requests``
  joins with ", " (RFC 9110 section 5.3).

Listens on 127.0.0.1 only (the ``blob_redirect`` storage is the same server, named ``localhost``);
each upstream request and each client connection has a 30 s timeout, and every answer is one
request to the registry at most (two for an ``If-Match`` check): no retry loops in the front.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import datetime as dt
import http.client
import json
import re
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, ClassVar, Literal
from urllib.parse import parse_qs, urlparse

if TYPE_CHECKING:
    from collections.abc import Iterator

_API_RE = re.compile(r"^/v2/(?P<name>.+?)/(?P<kind>manifests|blobs|tags|referrers)(?:/|$)")
_REFERRERS_RE = re.compile(r"^/v2/(?P<name>.+)/referrers/(?P<digest>sha256:[0-9a-f]{64})$")
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-authorization", "te", "upgrade"}
UPSTREAM_TIMEOUT = 30.0
_MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)


@dataclasses.dataclass
class FrontState:
    upstream: str
    auth: Literal["none", "bearer", "basic"]
    users: dict[str, tuple[str, frozenset[str]]]  # user -> (password, allowed actions)
    anonymous_pull: bool
    referrers: bool = False
    host: str = ""
    log: list[str] = dataclasses.field(default_factory=list)
    token_requests: list[dict[str, str]] = dataclasses.field(default_factory=list)
    tokens: dict[str, dict[str, frozenset[str]]] = dataclasses.field(default_factory=dict)
    referrer_index: dict[tuple[str, str], list[dict[str, object]]] = dataclasses.field(default_factory=dict)
    failures: int = 0
    limited: int = 0
    web_ui: bool = False
    blob_redirect: bool = False
    no_digest_header: bool = False
    generic_content_type: bool = False
    dash_digests: bool = False
    unchallenged_referrers: bool = False
    relative_location: bool = False
    own_etags: bool = False
    weak_etags: bool = False
    storage_auth: list[str] = dataclasses.field(default_factory=list)
    if_match: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # (path, If-Match) per PUT
    retry_after: str | None = None
    other_challenges: tuple[str, ...] = ()
    refresh_tokens: dict[str, str] = dataclasses.field(default_factory=dict)  # refresh token -> user
    oauth: bool = True
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    def fail_next(self, count: int) -> None:
        with self.lock:
            self.failures = count

    def rate_limit(self, count: int, retry_after: str | None = None) -> None:
        with self.lock:
            self.limited, self.retry_after = count, retry_after

    def requests_to(self, prefix: str) -> list[str]:
        return [line for line in self.log if line.split(" ", 1)[1].startswith(prefix)]


class _Handler(BaseHTTPRequestHandler):
    state: ClassVar[FrontState]
    # socketserver sets it on the client socket: a client that connects and sends nothing (or less
    # body than its Content-Length says) frees its handler thread after this, not never. HTTP/1.0
    # (the default protocol_version): one request per connection, so no keep-alive loop either.
    timeout = UPSTREAM_TIMEOUT

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002, ARG002 - stdlib signature; quiet
        return

    # Every method goes through one place.
    def do_GET(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def _send(self, code: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        headers = dict(headers or {})
        headers.setdefault("Content-Length", str(len(body)))
        headers.setdefault("Docker-Distribution-Api-Version", "registry/2.0")
        if code == 401 and "WWW-Authenticate" in headers:
            for challenge in self.state.other_challenges:
                self.send_header("WWW-Authenticate", challenge)
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def _error(self, code: int, error: str, message: str, headers: dict[str, str] | None = None) -> None:
        body = json.dumps({"errors": [{"code": error, "message": message, "detail": None}]}).encode()
        self._send(code, body, {"Content-Type": "application/json; charset=utf-8", **(headers or {})})

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _refused_early(self) -> bool:
        """A hiccup (503) or a rate limit (429) instead of an answer."""
        state = self.state
        with state.lock:
            failing = state.failures > 0
            state.failures -= 1 if failing else 0
            limited = not failing and state.limited > 0
            state.limited -= 1 if limited else 0
        if failing:
            self._error(503, "UNAVAILABLE", "service unavailable")
        elif limited:
            message = (
                "You have reached your pull rate limit. You may increase the limit by authenticating "
                "and upgrading: https://www.docker.com/increase-rate-limit"
            )
            after = {"Retry-After": state.retry_after} if state.retry_after else {}
            self._error(429, "TOOMANYREQUESTS", message, after)
        return failing or limited

    def _handle(self) -> None:
        state = self.state
        state.log.append(f"{self.command} {self.path}")
        body = self._body()
        if self._refused_early():
            return
        url = urlparse(self.path)
        if url.path.startswith("/_storage/"):
            self._storage(url.path.removeprefix("/_storage"))
            return
        if url.path == "/token" and state.auth == "bearer":
            if self.command == "POST":
                self._oauth(body)
            else:
                self._token(url.query)
            return
        match = _API_RE.match(url.path)
        name = match["name"] if match else ""
        needed = frozenset({"pull"} if self.command in {"GET", "HEAD"} else {"pull", "push"})
        if (url.path == "/v2/" or match) and not self._authorized(name, needed):
            return
        if not self._answered_here(url.path, url.query, match is not None and match["kind"] == "blobs"):
            self._proxy(body, name if match and match["kind"] == "manifests" else "")

    def _answered_here(self, path: str, query: str, blob: bool) -> bool:
        """What the front answers itself instead of the registry: blob redirects, referrers."""
        state = self.state
        found = _REFERRERS_RE.match(path)
        if self.command != "GET":
            return False
        if state.blob_redirect and blob and "/uploads" not in path:
            port = state.host.rpartition(":")[2]
            signed = f"http://localhost:{port}/_storage{path}?X-Amz-Signature={secrets.token_hex(8)}"
            self._send(307, b"", {"Location": signed})
        elif state.unchallenged_referrers and found and not state.referrers:
            body = json.dumps({"errors": [{"code": "UNAUTHORIZED", "message": "unauthorized"}]}).encode()
            self._send(401, body, {"Content-Type": "application/json; charset=utf-8"})
        elif state.web_ui and found and not state.referrers:
            page = b"<!doctype html><html><body>Registry UI</body></html>"
            self._send(200, page, {"Content-Type": "text/html; charset=utf-8"})
        elif state.referrers and found:
            self._referrers(found["name"], found["digest"], parse_qs(query).get("artifactType", [None])[0])
        else:
            return False
        return True

    # -- auth ----------------------------------------------------------------------------------------
    def _credentials(self) -> tuple[str, str] | None:
        scheme, _, encoded = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, _, password = base64.b64decode(encoded).decode().partition(":")
        except ValueError:
            return None
        return user, password

    def _user_actions(self) -> frozenset[str] | None:
        """What the caller may do: None for wrong credentials."""
        given = self._credentials()
        if given is None:
            return frozenset({"pull"}) if self.state.anonymous_pull else frozenset()
        password, allowed = self.state.users.get(given[0], (None, frozenset()))
        refresh_user = self.state.refresh_tokens.get(given[1])
        if self.state.auth == "bearer" and refresh_user is not None:
            # ACR: a refresh (identity) token is also taken as the password of a GET /oauth2/token.
            return self.state.users.get(refresh_user, ("", frozenset()))[1]
        if self.state.auth == "bearer" and given[0] not in self.state.users:
            # ghcr.io: any user name, the token is the password.
            match = [acts for pw, acts in self.state.users.values() if pw == given[1]]
            return match[0] if match else None
        return allowed if password == given[1] else None

    def _authorized(self, name: str, needed: frozenset[str]) -> bool:
        state = self.state
        if state.auth == "none":
            return True
        if state.auth == "basic":
            allowed = self._user_actions() if self._credentials() else None
            if allowed is None or not needed <= allowed:
                basic = {"WWW-Authenticate": 'Basic realm="Registry Realm"'}
                self._error(401, "UNAUTHORIZED", "authentication required", basic)
                return False
            return True
        scheme, _, token = self.headers.get("Authorization", "").partition(" ")
        granted = state.tokens.get(token) if scheme == "Bearer" else None
        if granted is not None and (not name or needed <= granted.get(name, frozenset())):
            return True
        actions = ",".join(sorted(needed))  # "pull" or "pull,push", as distribution writes them
        challenge = f'Bearer realm="http://{state.host}/token",service="{state.host}"'
        if name:
            challenge += f',scope="repository:{name}:{actions}"'
        if granted is not None:
            challenge += ',error="insufficient_scope"'
        self._error(401, "UNAUTHORIZED", "authentication required", {"WWW-Authenticate": challenge})
        return False

    def _issue(self, scopes: list[str], actions: frozenset[str]) -> tuple[str, str]:
        """A new token granting, per ``repository:<name>:<actions>`` scope, what the user may do.

        As distribution's token servers (docs/spec/auth/token.md) grant the intersection of what
        was asked and what the user has; both the GET and the OAuth2 POST issue tokens this way.
        Returns the token and its ``issued_at``.
        """
        granted: dict[str, frozenset[str]] = {}
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, wanted = rest.rpartition(":")
            if kind == "repository" and name:
                granted[name] = granted.get(name, frozenset()) | (frozenset(wanted.split(",")) & actions)
        token = secrets.token_hex(16)
        with self.state.lock:
            self.state.tokens[token] = granted
        return token, dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")

    def _token(self, query: str) -> None:
        params = parse_qs(query)
        self.state.token_requests.append({
            "scope": " ".join(params.get("scope", [])),
            "service": params.get("service", [""])[0],
            "user": (self._credentials() or ("", ""))[0],
        })  # fmt: skip
        actions = self._user_actions()
        if actions is None:
            self._error(401, "UNAUTHORIZED", "authentication required")
            return
        if not actions and self._credentials() is None:
            self._error(401, "UNAUTHORIZED", "authentication required")
            return
        token, now = self._issue(params.get("scope", []), actions)
        body = {"token": token, "access_token": token, "expires_in": 300, "issued_at": now}
        self._send(200, json.dumps(body).encode(), {"Content-Type": "application/json"})

    def _oauth(self, body: bytes) -> None:
        if not self.state.oauth:
            self._error(405, "UNSUPPORTED", "The operation is unsupported.")
            return
        form = parse_qs(body.decode())
        grant = form.get("grant_type", [""])[0]
        self.state.token_requests.append({
            "scope": " ".join(" ".join(form.get("scope", [])).split()),
            "service": form.get("service", [""])[0],
            "user": self.state.refresh_tokens.get(form.get("refresh_token", [""])[0], ""),
            "grant_type": grant,
        })  # fmt: skip
        if grant != "refresh_token" or not form.get("client_id"):
            self._error(400, "UNSUPPORTED", "unsupported grant_type or missing client_id")
            return
        user = self.state.refresh_tokens.get(form.get("refresh_token", [""])[0])
        if user is None:
            self._error(401, "UNAUTHORIZED", "authentication required")
            return
        actions = self.state.users.get(user, ("", frozenset()))[1]
        token, now = self._issue(" ".join(form.get("scope", [])).split(), actions)
        answer = {"access_token": token, "scope": " ".join(form.get("scope", [])), "expires_in": 300,
                  "issued_at": now}  # fmt: skip
        self._send(200, json.dumps(answer).encode(), {"Content-Type": "application/json"})

    def _storage(self, path: str) -> None:
        given = self.headers.get("Authorization", "")
        self.state.storage_auth.append(given)
        if given:
            body = (
                b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>InvalidArgument</Code>'
                b"<Message>Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, "
                b"Signature query string parameter or the Authorization header should be specified"
                b"</Message></Error>"
            )
            self._send(400, body, {"Content-Type": "application/xml"})
            return
        upstream = http.client.HTTPConnection(self.state.upstream, timeout=UPSTREAM_TIMEOUT)
        try:
            upstream.request("GET", path)
            response = upstream.getresponse()
            data = response.read()
        finally:
            upstream.close()
        self._send(response.status, data, {"Content-Type": "application/octet-stream"})

    # -- referrers -------------------------------------------------------------------------------------
    def _referrers(self, name: str, digest: str, artifact_type: str | None) -> None:
        upstream = http.client.HTTPConnection(self.state.upstream, timeout=UPSTREAM_TIMEOUT)
        try:
            upstream.request("GET", f"/v2/{name}/tags/list")
            known = upstream.getresponse().status == 200
        finally:
            upstream.close()
        if not known:
            self._error(404, "NAME_UNKNOWN", "repository name not known to registry")
            return
        with self.state.lock:
            entries = list(self.state.referrer_index.get((name, digest), []))
        headers = {"Content-Type": "application/vnd.oci.image.index.v1+json"}
        if artifact_type:
            entries = [e for e in entries if e.get("artifactType") == artifact_type]
            headers["OCI-Filters-Applied"] = "artifactType"
        index = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": entries,
        }
        self._send(200, json.dumps(index).encode(), headers)

    def _record_subject(self, name: str, body: bytes, digest: str) -> str | None:
        try:
            manifest = json.loads(body)
        except ValueError:
            return None
        subject = manifest.get("subject") if isinstance(manifest, dict) else None
        if not isinstance(subject, dict) or not isinstance(subject.get("digest"), str):
            return None
        config = manifest.get("config") if isinstance(manifest.get("config"), dict) else {}
        entry: dict[str, object] = {
            "mediaType": manifest.get("mediaType") or self.headers.get("Content-Type", ""),
            "digest": digest,
            "size": len(body),
            "artifactType": manifest.get("artifactType") or config.get("mediaType"),
        }
        if manifest.get("annotations"):
            entry["annotations"] = manifest["annotations"]
        with self.state.lock:
            listed = self.state.referrer_index.setdefault((name, subject["digest"]), [])
            if all(e["digest"] != digest for e in listed):
                listed.append(entry)
        return str(subject["digest"])

    # -- proxy -------------------------------------------------------------------------------------------
    def _proxy(self, body: bytes, manifest_repo: str) -> None:
        headers = {
            k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP | {"authorization", "host"}
        }
        headers["Host"] = self.state.host  # the registry builds Location URLs from it
        path = self.path
        if manifest_repo and self.command in {"GET", "HEAD"} and self.state.dash_digests:
            path = re.sub(r"/manifests/sha256-([0-9a-f]{64})$", r"/manifests/sha256:\1", path)
        if manifest_repo and self.state.own_etags and self.command == "PUT":
            self.state.if_match.append((path, self.headers.get("If-Match", "")))
        if manifest_repo and self.state.own_etags and self.command == "PUT" and "If-Match" in self.headers:
            headers.pop("If-Match", None)
            if self.headers["If-Match"] != self._current_etag(path, headers):
                self._error(412, "PRECONDITION_FAILED", "If-Match does not match the current entity tag")
                return
        upstream = http.client.HTTPConnection(self.state.upstream, timeout=UPSTREAM_TIMEOUT)
        try:
            upstream.request(self.command, path, body=body or None, headers=headers)
            response = upstream.getresponse()
            data = response.read()
            relayed = {k: v for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP}
        finally:
            upstream.close()
        if self.state.relative_location and "Location" in relayed:
            absolute = urlparse(relayed["Location"])
            relayed["Location"] = absolute.path + (f"?{absolute.query}" if absolute.query else "")
        if manifest_repo and self.command in {"GET", "HEAD"} and self.state.no_digest_header:
            relayed = {k: v for k, v in relayed.items() if k.lower() != "docker-content-digest"}
        if manifest_repo and self.command in {"GET", "HEAD"} and self.state.own_etags:
            digest = relayed.get("Docker-Content-Digest", "")
            relayed = {k: v for k, v in relayed.items() if k.lower() != "etag"}
            if digest:
                relayed["ETag"] = ("W/" if self.state.weak_etags else "") + f'"{digest.partition(":")[2]}"'
        if manifest_repo and self.command in {"GET", "HEAD"} and self.state.generic_content_type:
            relayed = {k: v for k, v in relayed.items() if k.lower() != "content-type"}
            relayed["Content-Type"] = "application/json"
        if manifest_repo and self.command == "PUT" and response.status == 201 and self.state.referrers:
            digest = relayed.get("Docker-Content-Digest", "")
            subject = self._record_subject(manifest_repo, body, digest)
            if subject:
                relayed["OCI-Subject"] = subject
        self._send(response.status, data, relayed)

    def _current_etag(self, path: str, headers: dict[str, str]) -> str:
        """The entity tag the front serves for the manifest at ``path`` now ("" when absent)."""
        accept = {"Accept": ", ".join(_MANIFEST_TYPES), "Host": headers["Host"]}
        upstream = http.client.HTTPConnection(self.state.upstream, timeout=UPSTREAM_TIMEOUT)
        try:
            upstream.request("HEAD", path, headers=accept)
            response = upstream.getresponse()
            response.read()
            digest = response.getheader("Docker-Content-Digest", "") if response.status == 200 else ""
        finally:
            upstream.close()
        return f'"{digest.partition(":")[2]}"' if digest else ""


@contextlib.contextmanager
def registry_front(
    upstream: str,
    *,
    auth: Literal["none", "bearer", "basic"] = "none",
    users: dict[str, tuple[str, frozenset[str]]] | None = None,
    anonymous_pull: bool = True,
    referrers: bool = False,
    other_challenges: tuple[str, ...] = (),
    refresh_tokens: dict[str, str] | None = None,
    oauth: bool = True,
    web_ui: bool = False,
    blob_redirect: bool = False,
    no_digest_header: bool = False,
    generic_content_type: bool = False,
    dash_digests: bool = False,
    unchallenged_referrers: bool = False,
    relative_location: bool = False,
    own_etags: bool = False,
    weak_etags: bool = False,
) -> Iterator[FrontState]:
    """Serve a front for ``upstream`` (``127.0.0.1:PORT`` of the real registry) on 127.0.0.1."""
    state = FrontState(
        upstream=upstream,
        auth=auth,
        users=dict(users or {}),
        anonymous_pull=anonymous_pull,
        referrers=referrers,
        other_challenges=other_challenges,
        refresh_tokens=dict(refresh_tokens or {}),
        oauth=oauth,
        web_ui=web_ui,
        blob_redirect=blob_redirect,
        no_digest_header=no_digest_header,
        generic_content_type=generic_content_type,
        dash_digests=dash_digests,
        unchallenged_referrers=unchallenged_referrers,
        relative_location=relative_location,
        own_etags=own_etags,
        weak_etags=weak_etags,
    )
    handler = type("Handler", (_Handler,), {"state": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    state.host = f"127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
