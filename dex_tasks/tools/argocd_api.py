"""Argo CD's REST API, for what a job without the argocd CLI must still do: read or delete an app.

GitHub's hosted runners have no argocd CLI, so ``preview down`` (delete) and ``metrics`` (the
app's sync history) talk to argocd-server's REST gateway when the CLI is missing and
``ARGOCD_SERVER`` and ``ARGOCD_AUTH_TOKEN`` are set:
``GET``/``DELETE https://$ARGOCD_SERVER/api/v1/applications/<name>?cascade=true`` with the token as
a bearer token (what the CLI sends). ``GET`` answers the Application document that ``argocd app
get NAME -o json`` prints (the CLI calls the same ``ApplicationService.Get``). ``ARGOCD_OPTS`` is
read as the CLI reads it: ``--plaintext`` means http, ``--insecure`` skips TLS verification (a
self-signed server), ``--grpc-web`` changes nothing for REST. The token is redacted everywhere and
never part of a URL.

Errors are grpc-gateway bodies, ``{"error", "code", "message"}`` with the gRPC code: NotFound (5,
HTTP 404) means the app is gone; PermissionDenied (7, 403) is, since Argo CD 2.5, also the answer
for an app that does not exist (CVE-2022-41354); Unauthenticated (16, 401) is an expired or wrong
token. 401 and 403 are configuration (:class:`ArgoCDAccessError`, exit 2); a server that does not
answer, or answers 5xx, is retried (bounded in attempts and by one deadline) and then exit 4.
"""

from __future__ import annotations

import os
import shlex
import time
import urllib.parse
from typing import TYPE_CHECKING, Any, Self

from dex_tasks import __version__, progress, redact
from dex_tasks._untrusted import parse_json, secret_from_env
from dex_tasks.errors import AppNotFoundError, ArgoCDAccessError, ArgoCDError, UsageError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    import requests

SERVER_ENV = "ARGOCD_SERVER"
TOKEN_ENV = "ARGOCD_AUTH_TOKEN"  # noqa: S105 - the variable name, not a token
OPTS_ENV = "ARGOCD_OPTS"
ATTEMPTS = 3
TIMEOUT = 30.0  # seconds per request
DEADLINE = 60.0  # seconds for everything one client does
BACKOFF = 1.0  # seconds before the second attempt, doubled after


def available(env: Mapping[str, str] | None = None) -> bool:
    """Can the REST API be used: ``ARGOCD_SERVER`` and ``ARGOCD_AUTH_TOKEN`` both set?"""
    env = os.environ if env is None else env
    return bool(env.get(SERVER_ENV, "").strip() and env.get(TOKEN_ENV, "").strip())


def base_url(env: Mapping[str, str] | None = None, *, server: str | None = None) -> tuple[str, bool]:
    """``(https://host[:port], verify_tls)`` from ``ARGOCD_SERVER`` and ``ARGOCD_OPTS``.

    ``server``: an env's own (``[tool.dex.cluster] argocd-servers``) in place of ``ARGOCD_SERVER``,
    as the CLI gets it.
    """
    env = os.environ if env is None else env
    server = (server or env.get(SERVER_ENV, "")).strip()
    try:
        opts = shlex.split(env.get(OPTS_ENV, ""))
    except ValueError as exc:
        raise UsageError(f"{OPTS_ENV} is not a valid option list: {exc}") from None
    plaintext = "--plaintext" in opts
    insecure = "--insecure" in opts
    # The CLI wants host[:port]; a scheme someone put in front is tolerated, a path is not.
    host = server.split("://", 1)[-1].rstrip("/")
    if not host or "/" in host or any(c.isspace() or ord(c) < 32 for c in host):
        raise UsageError(f"{SERVER_ENV}={server!r}: expected the Argo CD server as host[:port]")
    return f"{'http' if plaintext else 'https'}://{host}", not insecure


class ArgoCDAPI:
    """A small client of argocd-server's REST gateway. Use as a context manager."""

    def __init__(
        self,
        *,
        url: str,
        token: str,
        verify: bool = True,
        attempts: int = ATTEMPTS,
        timeout: float = TIMEOUT,
        deadline: float = DEADLINE,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        import requests  # noqa: PLC0415 - only the tasks that go without the CLI need it

        redact.register_secret(token)
        self.url = url.rstrip("/")
        self.attempts = max(1, attempts)
        self.timeout = timeout
        self.deadline = deadline
        # Counted from the first request (as the GitHub and registry clients count theirs): a
        # client used a moment after it was made, on a loaded runner, still asks once.
        self._started: float | None = None
        self._sleep = sleep or time.sleep
        self._session = requests.Session()
        self._session.trust_env = False  # no ~/.netrc: the token is the only credential
        self._session.verify = verify  # False only with --insecure in ARGOCD_OPTS, as for the CLI
        self._session.headers.update(
            {
                "Authorization": f"Bearer {token}",
                "Accept": "application/json",
                "User-Agent": f"dex-tasks/{__version__}",
            }
        )

    @classmethod
    def from_env(cls, *, server: str | None = None) -> ArgoCDAPI:
        url, verify = base_url(server=server)
        return cls(url=url, token=secret_from_env(os.environ, TOKEN_ENV), verify=verify)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self._session.close()

    def __repr__(self) -> str:
        return f"ArgoCDAPI(url={self.url!r})"

    # --- applications ---

    def app_path(self, name: str) -> str:
        return f"/api/v1/applications/{urllib.parse.quote(name, safe='')}"

    def get_app(self, name: str) -> dict[str, Any]:
        """The Application; :class:`AppNotFoundError` for 404 and (Argo CD 2.5+) PermissionDenied."""
        response = self._request("GET", self.app_path(name))
        if response.status_code in {403, 404}:
            raise AppNotFoundError(
                f"Argo CD API GET {self.app_path(name)}: {self._error_text(response)} "
                f"(Argo CD says this when app {name} does not exist, or this token may not read it)"
            )
        self._check(response, "GET", self.app_path(name))
        body = self._body(response)
        if not isinstance(body, dict):
            raise ArgoCDError(f"Argo CD API GET {self.app_path(name)}: the answer is not an Application")
        return body

    def delete_app(self, name: str) -> bool:
        """Delete the app and its resources (``cascade=true``); False when it was already gone."""
        path = self.app_path(name)
        response = self._request("DELETE", path, params={"cascade": "true"})
        if response.status_code == 404:
            return False
        self._check(response, "DELETE", path)
        return True

    # --- HTTP ---

    @staticmethod
    def _body(response: requests.Response) -> Any:
        try:
            return parse_json(response.content.decode("utf-8", "replace") or "null")
        except ValueError:
            return None

    def _error_text(self, response: requests.Response) -> str:
        body = self._body(response)
        text = ""
        if isinstance(body, dict):
            text = str(body.get("message") or body.get("error") or "")
            if body.get("code") is not None:
                text += f" (code {body['code']})"
        if not text:  # an HTML page from a proxy: the first line of it, never the page
            text = " ".join(response.content[:200].decode("utf-8", "replace").split())
        return redact.redact(f"{response.status_code} {text}".strip())

    def _check(self, response: requests.Response, method: str, path: str) -> None:
        if response.status_code < 400:
            return
        line = f"Argo CD API {method} {path}: {self._error_text(response)}"
        if response.status_code == 401:
            raise ArgoCDAccessError(line, hint=f"renew {TOKEN_ENV}: Argo CD rejected it")
        if response.status_code == 403:
            raise ArgoCDAccessError(
                line, hint=f"the token of {TOKEN_ENV} may not do this: check its project role's policy"
            )
        raise ArgoCDError(line)

    def _remaining(self) -> float:
        if self._started is None:
            self._started = time.monotonic()
        return self._started + self.deadline - time.monotonic()

    def _request(
        self, method: str, path: str, *, params: Mapping[str, str] | None = None
    ) -> requests.Response:
        """Bounded retries of connection errors and 5xx within the client's deadline."""
        import requests  # noqa: PLC0415 - see __init__

        last = "no time left"
        for attempt in range(1, self.attempts + 1):
            remaining = self._remaining()
            if remaining <= 0:
                break
            timeout = min(self.timeout, remaining)
            try:
                response = self._session.request(
                    method, f"{self.url}{path}", params=params, timeout=timeout, allow_redirects=False
                )
            except requests.Timeout:
                last = f"no answer within {timeout:.1f}s"
            except requests.RequestException as exc:
                last = f"cannot connect ({_reason(exc)})"
            else:
                if response.status_code < 500:
                    return response
                last = self._error_text(response)
                response.close()
            if attempt == self.attempts:
                break
            delay = BACKOFF * 2 ** (attempt - 1)
            if delay >= self._remaining():
                break
            progress.waiting(f"Argo CD API {method} {path}", attempt + 1, self.attempts, delay, last)
            self._sleep(delay)
        raise ArgoCDError(
            redact.redact(f"Argo CD API {method} {self.url}{path}: {last} (deadline {self.deadline:g}s)")
        )


def _reason(exc: Exception) -> str:
    """The last link of requests' exception chain, without urllib3's object reprs."""
    text = str(exc)
    for marker in ("Connection refused", "Name or service not known", "nodename nor servname", "timed out",
                   "certificate verify failed", "No route to host", "Connection reset"):  # fmt: skip
        if marker.lower() in text.lower():
            return marker.lower()
    return type(exc).__name__
