"""A fake Argo CD API server (REST, the grpc-gateway side of argocd-server) on 127.0.0.1.

It reproduces what ``preview down`` asks of Argo CD v2.x without the CLI
(``server/application/application.proto``, gateway routes as of v2.13):

* ``GET /api/v1/applications/{name}``: 200 with the Application (``apiVersion``
  ``argoproj.io/v1alpha1``, ``kind``, ``metadata``, ``spec.destination``, ``status.sync``,
  ``status.health``, ``status.summary.images``; ``status.history[]``, ``status.operationState``
  and ``spec.revisionHistoryLimit`` when the test gives them - the same JSON as the CLI's
  ``app get -o json``, both being ``ApplicationService.Get``).
* ``DELETE /api/v1/applications/{name}?cascade=true``: 200 ``{}`` and the app is gone; the query
  is recorded (``cascade``, ``propagationPolicy``).
* Errors are grpc-gateway v1 bodies: ``{"error": msg, "code": <grpc code>, "message": msg,
  "details": []}`` with the HTTP status grpc-gateway maps the code to:
  NotFound (5) -> 404 ``applications.argoproj.io "x" not found``;
  PermissionDenied (7) -> 403 ``permission denied``; Unauthenticated (16) -> 401
  ``invalid session: token is expired`` (``expired = True``) or ``no session information``
  (no ``Authorization`` header); Unavailable (14) -> 503.
* ``hide_missing = True`` is Argo CD 2.5+ (CVE-2022-41354): an app that does not exist is
  answered with PermissionDenied, like one the token may not see.
* ``deny`` holds (method, app) pairs the token's RBAC does not allow (403 PermissionDenied).
* Authentication: ``Authorization: Bearer <token>`` (what the CLI sends for ARGOCD_AUTH_TOKEN).
* ``fail_next(method, status, times)`` queues 5xx answers; every request is recorded.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

GRPC_STATUS = {5: 404, 7: 403, 14: 503, 16: 401}


@dataclasses.dataclass(frozen=True, kw_only=True)
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names


def grpc_error(code: int, message: str) -> tuple[int, dict[str, Any]]:
    return GRPC_STATUS[code], {"error": message, "code": code, "message": message, "details": []}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeArgoCDAPI


class FakeArgoCDAPI:
    """The fake server; a context manager that starts it on a free 127.0.0.1 port."""

    def __init__(self, *, token: str = "argocd-test-token") -> None:  # noqa: S107 - a fake's token
        self.token = token
        self.apps: dict[str, dict[str, Any]] = {}
        self.expired = False
        self.hide_missing = False
        self.deny: set[tuple[str, str]] = set()
        self.requests: list[Recorded] = []
        self._failures: list[tuple[str, int]] = []
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.fake = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def server(self) -> str:
        """What ``ARGOCD_SERVER`` holds: host:port, no scheme."""
        assert self._server is not None, "FakeArgoCDAPI is not started"
        return f"127.0.0.1:{self._server.server_address[1]}"

    def env(self) -> dict[str, str]:
        """``ARGOCD_SERVER``, ``ARGOCD_AUTH_TOKEN`` and ``ARGOCD_OPTS`` (plain HTTP: no TLS here)."""
        return {
            "ARGOCD_SERVER": self.server,
            "ARGOCD_AUTH_TOKEN": self.token,
            "ARGOCD_OPTS": "--grpc-web --plaintext",
        }

    def add_app(
        self,
        name: str,
        *,
        namespace: str,
        image: str,
        history: list[dict[str, Any]] | None = None,
        operation_state: dict[str, Any] | None = None,
        history_limit: int | None = None,
    ) -> dict[str, Any]:
        """``history``: ``RevisionHistory`` entries (see ``tests.fakes.argocd_state.revision_history``)."""
        app: dict[str, Any] = {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Application",
            "metadata": {"name": name, "namespace": "argocd", "uid": f"uid-{name}", "resourceVersion": "1"},
            "spec": {
                "project": "default",
                "destination": {"server": "https://kubernetes.default.svc", "namespace": namespace},
                "source": {
                    "repoURL": "https://github.com/data-literate/dex",
                    "path": "infra",
                    "targetRevision": "HEAD",
                },
            },
            "status": {
                "sync": {"status": "Synced", "revision": "0" * 40},
                "health": {"status": "Healthy"},
                "summary": {"images": [image]},
            },
        }
        if history is not None:
            app["status"]["history"] = history
        if operation_state is not None:
            app["status"]["operationState"] = operation_state
        if history_limit is not None:
            app["spec"]["revisionHistoryLimit"] = history_limit
        with self._lock:
            self.apps[name] = app
        return app

    def fail_next(self, method: str, *, status: int = 503, times: int = 1) -> None:
        with self._lock:
            self._failures += [(method.upper(), status)] * times

    def writes(self) -> list[Recorded]:
        return [r for r in self.requests if r.method != "GET"]


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        """Quiet: tests assert on ``FakeArgoCDAPI.requests``."""

    def do_GET(self) -> None:
        self._handle("GET")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        fake = self.server.fake
        split = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(split.query))
        headers = {k.lower(): v for k, v in self.headers.items()}
        with fake._lock:
            fake.requests.append(Recorded(method=method, path=split.path, query=query, headers=headers))
            status, body = self._respond(fake, method, urllib.parse.unquote(split.path), headers)
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    @staticmethod
    def _respond(  # noqa: PLR0911 - one early answer per check, like the server's interceptors
        fake: FakeArgoCDAPI, method: str, path: str, headers: dict[str, str]
    ) -> tuple[int, Any]:
        auth = headers.get("authorization")
        if not auth:
            return grpc_error(16, "no session information")
        if auth != f"Bearer {fake.token}":
            return grpc_error(16, "invalid session: signature is invalid")
        if fake.expired:
            return grpc_error(16, "invalid session: token is expired")
        for i, (m, status) in enumerate(fake._failures):
            if m == method:
                del fake._failures[i]
                return status, {"error": "connection refused", "code": 14, "message": "connection refused"}
        prefix = "/api/v1/applications/"
        if not path.startswith(prefix) or "/" in path[len(prefix) :]:
            return 404, {"error": "Not Found", "code": 5, "message": "Not Found"}
        name = path[len(prefix) :]
        if (method, name) in fake.deny:
            return grpc_error(7, "permission denied")
        app = fake.apps.get(name)
        if app is None:
            if fake.hide_missing:
                return grpc_error(7, "permission denied")
            return grpc_error(5, f'applications.argoproj.io "{name}" not found')
        if method == "DELETE":
            del fake.apps[name]
            return 200, {}
        return 200, app
