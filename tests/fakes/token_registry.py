"""A registry that wants a bearer token, like ghcr.io (and Docker Hub) do, for the auth flow of tag_exists.

Reproduces the real wire behaviour of the distribution token flow
(https://distribution.github.io/distribution/spec/auth/token/) as ghcr.io speaks it:

* ``HEAD /v2/<name>/manifests/<tag>`` without a token -> 401 with
  ``WWW-Authenticate: Bearer realm="<base>/token",service="<host>",scope="repository:<name>:pull"``.
* ``GET /token?scope=...&service=...`` -> ``{"token": "..."}``; with ``private`` repositories only when
  HTTP basic credentials match (ghcr.io: any user name, the token as password), else 401
  ``{"errors":[{"code":"UNAUTHORIZED",...}]}``.
* With ``Authorization: Bearer <token>``: 200 + ``Docker-Content-Digest`` for known tags, 404 for others.
* ``fail_first`` answers that many requests with 503 first (a registry hiccup).

The real local registry (docker-registry) covers everything else; it has no token server.
"""

from __future__ import annotations

import base64
import contextlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, ClassVar
from urllib.parse import parse_qs, urlparse

if TYPE_CHECKING:
    from collections.abc import Iterator

DIGEST = "sha256:" + "ab" * 32
TOKEN = "fake-registry-token-0123456789"


class _Handler(BaseHTTPRequestHandler):
    manifests: ClassVar[dict[str, str]] = {}
    private_password: ClassVar[str | None] = None
    fail_first: ClassVar[list[int]] = [0]
    requests_seen: ClassVar[list[str]] = []

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002, ARG002 - stdlib signature; quiet
        return

    def _send(self, code: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _hiccup(self) -> bool:
        self.requests_seen.append(f"{self.command} {self.path}")
        if self.fail_first[0] > 0:
            self.fail_first[0] -= 1
            self._send(503, b'{"errors":[{"code":"UNAVAILABLE","message":"service unavailable"}]}')
            return True
        return False

    def do_GET(self) -> None:
        if self._hiccup():
            return
        url = urlparse(self.path)
        if url.path != "/token":
            self._send(404)
            return
        if self.private_password is not None and not _password_matches(
            self.headers.get("Authorization", ""), self.private_password
        ):
            self._send(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}')
            return
        scope = parse_qs(url.query).get("scope", [""])[0]
        self._send(200, json.dumps({"token": TOKEN, "scope": scope}).encode())

    def do_HEAD(self) -> None:
        if self._hiccup():
            return
        path = urlparse(self.path).path
        name, _, tag = path.removeprefix("/v2/").rpartition("/manifests/")
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            host = self.headers.get("Host", "")
            realm = f"http://{host}/token"
            challenge = f'Bearer realm="{realm}",service="{host}",scope="repository:{name}:pull"'
            self._send(401, headers={"WWW-Authenticate": challenge})
            return
        digest = self.manifests.get(f"{name}:{tag}")
        if digest is None:
            self._send(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}')
            return
        self._send(200, headers={"Docker-Content-Digest": digest})


def _password_matches(auth: str, password: str) -> bool:
    scheme, _, encoded = auth.partition(" ")
    if scheme != "Basic":
        return False
    try:
        _user, _, given = base64.b64decode(encoded).decode().partition(":")
    except ValueError:
        return False
    return given == password


@contextlib.contextmanager
def token_registry(
    manifests: dict[str, str], *, private_password: str | None = None, fail_first: int = 0
) -> Iterator[tuple[str, list[str]]]:
    """Serve on 127.0.0.1; yields (``127.0.0.1:PORT``, the request log)."""
    seen: list[str] = []
    handler = type(
        "Handler",
        (_Handler,),
        {
            "manifests": manifests,
            "private_password": private_password,
            "fail_first": [fail_first],
            "requests_seen": seen,
        },
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
