"""A local webhook receiver on 127.0.0.1: a Slack incoming webhook and a generic signed JSON hook.

What it reproduces:

* Slack incoming webhooks (https://api.slack.com/messaging/webhooks, "Handling errors"): 200 with
  the body ``ok``; a body that is not JSON is 400 ``invalid_payload``; no ``text`` and no
  ``blocks`` is 400 ``no_text``; more than 50 blocks, a section text over 3,000 characters or a
  ``text`` over 40,000 is 400 ``invalid_blocks`` / ``msg_too_long``.
* Paths under ``/slack/`` answer like Slack; every other path is the generic hook: with
  ``secret`` set, ``X-Dex-Signature`` must be ``sha256=`` + the hex
  HMAC-SHA256 of the raw body, else 401 (what a receiver that verifies does).
* ``fail_next(status, times, retry_after)``: canned failures (429 with ``Retry-After``, 5xx).

Every request is recorded with its raw body bytes, so tests compare what was sent byte for byte.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

SLACK_PREFIX = "/slack/"  # paths under it answer like Slack; the others like the generic hook


@dataclasses.dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]  # lower-cased names
    body: bytes
    status: int


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    receiver: WebhookReceiver


class WebhookReceiver:
    def __init__(self, *, secret: str | None = None) -> None:
        self.secret = secret
        self.received: list[Received] = []
        self._canned: list[tuple[int, str | None]] = []
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Self:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.receiver = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def url(self, path: str) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    def fail_next(self, status: int, *, times: int = 1, retry_after: str | None = None) -> None:
        with self._lock:
            self._canned += [(status, retry_after)] * times

    def bodies(self, path: str) -> list[Any]:
        return [json.loads(r.body) for r in self.received if r.path == path and r.status == 200]


def _slack_problem(payload: Any) -> str | None:
    if not isinstance(payload, dict):
        return "invalid_payload"
    blocks = payload.get("blocks") or []
    if not payload.get("text") and not blocks:
        return "no_text"
    if len(str(payload.get("text") or "")) > 40_000:
        return "msg_too_long"
    if len(blocks) > 50:
        return "invalid_blocks"
    for block in blocks:
        text = (block.get("text") or {}).get("text", "") if block.get("type") == "section" else ""
        if len(text) > 3000:
            return "invalid_blocks"
    return None


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        """Quiet: tests read ``received``."""

    def do_POST(self) -> None:
        receiver = self.server.receiver
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, text, extra = self._answer(receiver, self.path, headers, body)
        with receiver._lock:
            receiver.received.append(Received(self.path, headers, body, status))
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in extra.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    @staticmethod
    def _answer(
        receiver: WebhookReceiver, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, str, dict[str, str]]:
        with receiver._lock:
            canned = receiver._canned.pop(0) if receiver._canned else None
        if canned is not None:
            status, retry_after = canned
            return (
                status,
                "rate_limited" if status == 429 else "server_error",
                ({"Retry-After": retry_after} if retry_after else {}),
            )
        try:
            payload = json.loads(body)
        except ValueError:
            return 400, "invalid_payload", {}
        if not path.startswith(SLACK_PREFIX):
            expected = (
                "sha256=" + hmac.new((receiver.secret or "").encode(), body, hashlib.sha256).hexdigest()
            )
            if receiver.secret and not hmac.compare_digest(headers.get("x-dex-signature", ""), expected):
                return 401, "bad signature", {}
            return 200, "ok", {}
        problem = _slack_problem(payload)
        return (400, problem, {}) if problem else (200, "ok", {})
