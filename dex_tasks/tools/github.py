"""GitHub REST API: open or update a pull request, sticky comments. Thin: requests + a bounded retry loop.

Only imported lazily by the tasks that talk to GitHub, so requests at module top is fine.

Secrets: the token travels in the ``Authorization`` header only (a ``requests`` auth object, so
``~/.netrc`` cannot replace it and requests drops it on a redirect to another host). It is never part
of a URL, argv, log line or error message; it is registered with :func:`redact.register_secret` so that
anything printed through ``proc`` is redacted too.

Retries are an explicit loop (not urllib3's ``Retry``, so every attempt can print a progress line and
the whole interaction has one deadline): connection errors, 5xx and 429 are retried with exponential
backoff, honouring ``Retry-After``; a 403 only when it is a secondary rate limit (``Retry-After``
present, or "secondary rate limit" in the message) and never when the primary quota is spent
(``x-ratelimit-remaining: 0``, which resets up to an hour later). 401, any other 403 and 404 are the
token's or the repository's fault: :class:`GitHubAccessError` (exit 2) at once, nothing retried.
Everything one client does shares one deadline, counted from its first request (:data:`DEADLINE`
seconds, ``DEX_GITHUB_DEADLINE`` overrides), each request's timeout is cut to what is left, and a
wait that would end past it is not started: a hung API is exit 4 within the deadline, not after 5 x
30 s.
See https://docs.github.com/en/rest/using-the-rest-api/best-practices-for-using-the-rest-api
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Self

import requests
import requests.auth

from dex_tasks import __version__, durations, progress, redact
from dex_tasks._untrusted import parse_json, secret_from_env
from dex_tasks.errors import ForeignHostError, GitHubAccessError, RemoteError, UsageError

log = logging.getLogger(__name__)

DEFAULT_API_URL = "https://api.github.com"
DEFAULT_SERVER_URL = "https://github.com"
API_VERSION = "2022-11-28"
PERMISSIONS_HINT = "check GITHUB_TOKEN permissions: contents: write, pull-requests: write"
# Retry-After values above this are capped: a CLI step should not hang for an hour.
MAX_RETRY_AFTER = 300.0
# GitHub: after a secondary rate limit without Retry-After, "wait for at least one minute".
SECONDARY_RATE_LIMIT_WAIT = 60.0
DEADLINE = 60.0  # seconds for everything one client does; then exit 4
DEADLINE_ENV = "DEX_GITHUB_DEADLINE"
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_SLUG_RE = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_MAX_PAGES = 20  # comments are paged 100 at a time; 2000 comments is far beyond a bump PR


@dataclasses.dataclass(frozen=True, kw_only=True)
class PullRequest:
    number: int
    url: str  # html_url
    created: bool  # False when an open PR for the same head was reused (and updated)


# --- URLs and environment -----------------------------------------------------------------------


def _without_credentials(url: str) -> str:
    """``url`` with any ``user:password@`` removed, for messages (remotes can embed tokens)."""
    return re.sub(r"^([a-z][a-z0-9+.-]*://)[^/@]*@", r"\1", url.strip(), flags=re.IGNORECASE)


def repo_slug(remote_url: str) -> str:
    """``owner/name`` of a GitHub remote: https, ssh://, git://, ``git@host:owner/name``, ``.git`` or not."""
    url = remote_url.strip()
    path: str | None = None
    scp = re.match(r"^(?:[^@/]+@)?[^/:]+:(?!//)(.+)$", url)  # git@github.com:owner/name.git
    if re.match(r"^(https?|ssh|git|git\+ssh)://", url, flags=re.IGNORECASE):
        path = urllib.parse.urlsplit(url).path
    elif scp and not re.match(r"^[A-Za-z]:[\\/]", url):  # not a Windows drive path (C:\repo)
        path = scp.group(1)
    slug = (path or "").strip("/").removesuffix(".git").removesuffix("/")
    if path is None or not _SLUG_RE.match(slug):
        raise UsageError(
            f"cannot tell the GitHub repository from remote {_without_credentials(url)!r}: "
            "expected https://github.com/OWNER/NAME(.git) or git@github.com:OWNER/NAME.git "
            "(set GITHUB_REPOSITORY=OWNER/NAME)"
        )
    return slug


def repo_from_env(remote_url: str | None) -> str:
    """``owner/name``: ``GITHUB_REPOSITORY`` (set in Actions), else the origin's URL."""
    repo = os.environ.get("GITHUB_REPOSITORY", "").strip()
    if repo:
        return repo
    if not remote_url:
        raise UsageError("cannot tell the GitHub repository: set GITHUB_REPOSITORY=OWNER/NAME")
    return repo_slug(remote_url)


def remote_host(url: str) -> str | None:
    """The host of an https/ssh/scp-like git URL (lower case), None for local paths."""
    match = re.match(r"^[a-z][a-z0-9+.-]*://(?:[^/@]*@)?([^/:]+)", url, flags=re.IGNORECASE) or re.match(
        r"^(?:[^@/]+@)?([^/:\\]{2,}):(?!//)", url
    )
    return match.group(1).lower() if match else None


def foreign_host(remote_url: str | None) -> str | None:
    """The origin's host when it is not github.com and the environment does not name its server
    (GitHub Enterprise, another forge), else None. Such a repository's pages are on its own host,
    and a token must not go to api.github.com for it (a same-named repository could get the PR)."""
    if not remote_url or os.environ.get("GITHUB_SERVER_URL") or os.environ.get("GITHUB_REPOSITORY"):
        return None
    host = remote_host(remote_url)
    return host if host and host != "github.com" else None


def server_url(remote_url: str | None = None) -> str:
    """Web base: GITHUB_SERVER_URL, else the origin's own host when it is not github.com."""
    host = foreign_host(remote_url)
    if host:
        return f"https://{host}"
    return (os.environ.get("GITHUB_SERVER_URL") or DEFAULT_SERVER_URL).rstrip("/")


def default_api_url() -> str:
    return (os.environ.get("GITHUB_API_URL") or DEFAULT_API_URL).rstrip("/")


def compare_url(repo: str, base: str, branch: str, *, remote_url: str | None = None) -> str:
    """The page that offers to open a PR from ``branch`` into ``base`` (printed when there is no token)."""

    def quote(ref: str) -> str:
        return urllib.parse.quote(ref, safe="/")

    return f"{server_url(remote_url)}/{repo}/compare/{quote(base)}...{quote(branch)}?expand=1"


def token_from_env() -> str | None:
    """``GITHUB_TOKEN``, then ``GH_TOKEN`` (the gh CLI's name); registered for redaction."""
    for name in ("GITHUB_TOKEN", "GH_TOKEN"):
        token = secret_from_env(os.environ, name)
        if token:
            redact.register_secret(token)
            return token
    return None


# --- retries ------------------------------------------------------------------------------------


def _message_of(body: Any) -> str:
    if isinstance(body, Mapping):
        return str(body.get("message") or "")
    return ""


def _is_secondary_rate_limit(headers: Mapping[str, str], body_text: str) -> bool:
    if headers.get("Retry-After"):
        return True
    return "secondary rate limit" in body_text.lower()


def deadline_from_env(env: Mapping[str, str] | None = None) -> float:
    """``DEX_GITHUB_DEADLINE`` seconds (a positive number below a day), else :data:`DEADLINE`."""
    return durations.seconds_from_env(DEADLINE_ENV, DEADLINE, env)


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """``Retry-After`` in seconds (delta-seconds or an HTTP date), None when absent or unreadable."""
    value = (headers.get("Retry-After") or "").strip()
    if not value:
        return None
    if re.fullmatch(r"\d{1,9}", value):
        return float(value)
    import email.utils  # noqa: PLC0415 - only for the rare HTTP-date form

    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class _BearerAuth(requests.auth.AuthBase):
    """Sets the header per request; ``repr`` never shows the token."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def __repr__(self) -> str:
        return "_BearerAuth(***)"


# --- the client ---------------------------------------------------------------------------------


class GitHub:
    """A small GitHub REST client for one repository. Use as a context manager (closes the session)."""

    def __init__(
        self,
        *,
        repo: str,
        token: str,
        api_url: str | None = None,
        timeout: float = 30,
        retries: int = 4,
        backoff_factor: float = 1.0,
        sleep: Callable[[float], None] | None = None,
        max_retry_after: float = MAX_RETRY_AFTER,
        deadline: float | None = None,
    ) -> None:
        if not _SLUG_RE.match(repo):
            raise UsageError(f"invalid GitHub repository {repo!r}: expected OWNER/NAME")
        if not token.strip():
            raise UsageError("empty GitHub token")
        redact.register_secret(token)
        self.repo = repo
        self.owner = repo.split("/", 1)[0]
        self.api_url = (api_url or default_api_url()).rstrip("/")
        self.timeout = timeout
        self.retries = max(0, retries)
        self.backoff_factor = backoff_factor
        self.max_retry_after = max_retry_after
        #: Seconds everything this client does may take (requests, waits between them).
        self.deadline = deadline_from_env() if deadline is None else deadline
        # Counted from the first request, as the registry client's is: a client made and used a
        # moment later (on a loaded runner, more than a short deadline later) still asks once.
        self._started: float | None = None
        self._sleep = sleep or time.sleep
        self._token = token
        self._session = requests.Session()
        self._session.auth = _BearerAuth(token)
        self._session.headers.update(
            {
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": API_VERSION,
                "User-Agent": f"dex-tasks/{__version__}",
            }
        )

    @classmethod
    def from_env(cls, *, remote_url: str | None = None) -> GitHub | None:
        """A client from ``GITHUB_TOKEN``/``GH_TOKEN``, ``GITHUB_REPOSITORY`` (else ``remote_url``) and
        ``GITHUB_API_URL``; None when there is no token (callers then print the compare URL)."""
        token = token_from_env()
        if token is None:
            return None
        repo = repo_from_env(remote_url)
        host = foreign_host(remote_url)
        if host and not os.environ.get("GITHUB_API_URL"):
            raise ForeignHostError(
                f"origin is on {host}, not github.com: set GITHUB_API_URL "
                f"(GitHub Enterprise: https://{host}/api/v3) to use the GitHub API",
                host=host,
            )
        return cls(repo=repo, token=token)

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"GitHub(repo={self.repo!r}, api_url={self.api_url!r})"

    # --- HTTP ---

    def _same_origin(self, url: str) -> bool:
        """Whether ``url`` has the API's scheme, host and port (pagination links must)."""
        ours, theirs = urllib.parse.urlsplit(self.api_url), urllib.parse.urlsplit(url)
        return (ours.scheme.lower(), ours.netloc.lower()) == (theirs.scheme.lower(), theirs.netloc.lower())

    def _safe(self, text: str) -> str:
        return redact.redact(text.replace(self._token, redact.MASK)) if self._token else redact.redact(text)

    @staticmethod
    def _body_of(response: requests.Response) -> Any:
        content = response.content
        if not content:
            return None
        try:
            return parse_json(content.decode("utf-8", "replace"))
        except ValueError:
            return content.decode("utf-8", "replace")

    def _error(self, method: str, path: str, response: requests.Response, *, retried: int = 0,
               why: str = "") -> RemoteError:  # fmt: skip
        """The one line for a final error response; 401/403/404 are :class:`GitHubAccessError`."""
        body = self._body_of(response)
        status = response.status_code
        message = _message_of(body) or (response.reason or "").strip() or "error"
        details = []
        if isinstance(body, Mapping):
            for item in body.get("errors") or ():
                detail = item.get("message") if isinstance(item, Mapping) else str(item)
                if not detail and isinstance(item, Mapping):
                    detail = " ".join(f"{k}={item[k]}" for k in ("resource", "field", "code") if k in item)
                if detail:
                    details.append(str(detail))
        text = message + (": " + "; ".join(details) if details else "")
        if retried and (status in _RETRY_STATUSES or status == 403):
            text += f" (gave up after {retried} retries{': ' + why if why else ''})"
        line = self._safe(" ".join(f"GitHub API {method} {path}: {status} {text}".split()))
        rate_limited = status in _RETRY_STATUSES or (status == 403 and self._rate_limit(response, body))
        if status == 403 and response.headers.get("x-ratelimit-remaining") == "0":
            reset = response.headers.get("x-ratelimit-reset")
            return RemoteError(line, hint=f"rate limit exhausted; it resets at epoch {reset}")
        if status in {401, 403} and not rate_limited:
            # GitHub names what a GitHub App / fine-grained token lacks, e.g. "pull_requests=write".
            accepted = redact.redact(response.headers.get("X-Accepted-GitHub-Permissions", "").strip())
            needs = f"; this request needs {accepted}" if accepted and status == 403 else ""
            return GitHubAccessError(line, hint=PERMISSIONS_HINT + needs)
        if status == 404:
            return GitHubAccessError(
                line,
                hint=f"check the repository name {self.repo} (GITHUB_REPOSITORY or the origin URL), that "
                "what it names exists, and that the token can see it",
            )
        return RemoteError(line)

    @staticmethod
    def _rate_limit(response: requests.Response, body: Any) -> bool:
        """Is this 403 a secondary rate limit (worth waiting for)? Never when the quota is spent."""
        if response.headers.get("x-ratelimit-remaining") == "0":
            return False
        text = _message_of(body) if isinstance(body, Mapping) else str(body or "")
        return _is_secondary_rate_limit(response.headers, text)

    def _wait_for(self, attempt: int, response: requests.Response | None) -> float:
        """Seconds before retry number ``attempt`` (1: the first retry)."""
        if response is not None:
            after = _retry_after(response.headers)
            if after is not None:
                log.info("GitHub asked to retry after %s s", after)
                return min(after, self.max_retry_after)
            if response.status_code == 403:  # a secondary rate limit without Retry-After
                return min(SECONDARY_RATE_LIMIT_WAIT, self.max_retry_after)
        # Exponential backoff; the first retry goes at once (a blip is usually gone by then).
        return 0.0 if attempt <= 1 else self.backoff_factor * 2 ** (attempt - 1)

    def _remaining(self) -> float:
        if self._started is None:
            self._started = time.monotonic()
        return self._started + self.deadline - time.monotonic()

    def _unreachable(self, exc: requests.RequestException, timeout: float) -> str:
        if isinstance(exc, requests.Timeout) and not isinstance(exc, requests.ConnectTimeout):
            return f"no answer from {self.api_url} within {timeout:.1f}s (ReadTimeout)"
        reason = type(exc).__name__
        cause = exc.args[0] if exc.args else None
        inner = getattr(cause, "reason", None)
        if inner is not None:
            reason += f": {type(inner).__name__}"
        return f"cannot reach {self.api_url} ({reason})"

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        json: Any = None,
        url: str | None = None,
    ) -> requests.Response:
        """One API call with bounded retries within the client's deadline (see the module docstring).

        POST is retried on purpose: a PR created before a 5xx comes back as 422 "already exists"
        on the retry, which :meth:`open_or_update_pr` turns into find + update.
        """
        attempts = self.retries + 1
        last_response: requests.Response | None = None
        last = "no time left"
        gave_up = ""
        retried = 0
        for attempt in range(1, attempts + 1):
            remaining = self._remaining()
            if remaining <= 0:
                gave_up = f"deadline {self.deadline:g}s ({DEADLINE_ENV}) reached"
                break
            timeout = min(self.timeout, remaining)
            log.debug("GitHub API %s %s", method, path)
            response: requests.Response | None = None
            try:
                response = self._session.request(
                    method, url or f"{self.api_url}{path}", params=params, json=json, timeout=timeout,
                    allow_redirects=True,
                )  # fmt: skip
            except requests.RequestException as exc:
                last = self._unreachable(exc, timeout)
                last_response = None
            else:
                if response.status_code < 400:
                    return response
                body = self._body_of(response)
                retryable = response.status_code in _RETRY_STATUSES or (
                    response.status_code == 403 and self._rate_limit(response, body)
                )
                if not retryable:
                    raise self._error(method, path, response, retried=retried)
                last_response = response
                last = f"HTTP {response.status_code}"
            if attempt == attempts:
                break
            wait = self._wait_for(attempt, response)
            if wait >= self._remaining():
                gave_up = (
                    f"the next try would start after the deadline of {self.deadline:g}s ({DEADLINE_ENV}); "
                    f"GitHub asked for {wait:.0f}s"
                    if response is not None and wait > 1
                    else f"deadline {self.deadline:g}s ({DEADLINE_ENV}) reached"
                )
                break
            progress.waiting("GitHub API", attempt + 1, attempts, next_in=wait, why=self._safe(last))
            if wait > 0:
                self._sleep(wait)
            retried += 1
        if last_response is not None:
            raise self._error(method, path, last_response, retried=retried, why=gave_up)
        tail = f" after {retried} retries" + (f" ({gave_up})" if gave_up else "")
        raise RemoteError(self._safe(f"GitHub API {method} {path}: {last}{tail}"))

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._body_of(self._request(method, path, **kwargs))

    # --- the repository ---

    def check_push_access(self) -> None:
        """One cheap request that the token works and may write to the repository, made *before*
        anything is pushed: ``GET /repos/{owner}/{repo}``. 401/403/404 are :class:`GitHubAccessError`
        (exit 2); ``permissions.push: false`` (a read-only token) too. ``permissions`` is absent
        for some tokens (GitHub App installation tokens): then the PR request itself will tell.
        """
        data = self._json("GET", f"/repos/{self.repo}")
        permissions = data.get("permissions") if isinstance(data, Mapping) else None
        if isinstance(permissions, Mapping) and permissions.get("push") is False:
            raise GitHubAccessError(
                f"the GitHub token may read {self.repo} but not push to it (permissions.push is false)",
                hint=PERMISSIONS_HINT,
            )

    # --- pull requests ---

    def _pr(self, data: Any, *, created: bool) -> PullRequest:
        return PullRequest(number=int(data["number"]), url=str(data["html_url"]), created=created)

    def _head(self, head: str) -> str:
        # The pulls list filter wants `owner:branch`; a head that already names its owner is kept.
        return head if ":" in head else f"{self.owner}:{head}"

    def find_open_pr(self, *, head: str, base: str) -> PullRequest | None:
        pulls = self._json(
            "GET",
            f"/repos/{self.repo}/pulls",
            params={"head": self._head(head), "base": base, "state": "open", "per_page": 100},
        )
        for pr in pulls or ():
            return self._pr(pr, created=False)
        return None

    def open_or_update_pr(
        self, *, head: str, base: str, title: str, body: str, labels: Sequence[str] = ()
    ) -> PullRequest:
        """Open a PR from ``head`` into ``base``, or update the open one for the same head (idempotent)."""
        pr = self.find_open_pr(head=head, base=base)
        if pr is None:
            try:
                data = self._json(
                    "POST",
                    f"/repos/{self.repo}/pulls",
                    json={"title": title, "head": head, "base": base, "body": body},
                )
                pr = self._pr(data, created=True)
            except RemoteError as exc:
                # Created by a concurrent run, or by our own retried POST after a 5xx: reuse it.
                if "pull request already exists" not in str(exc).lower():
                    raise
                pr = self.find_open_pr(head=head, base=base)
                if pr is None:
                    raise
        if not pr.created:
            self._json("PATCH", f"/repos/{self.repo}/pulls/{pr.number}", json={"title": title, "body": body})
        if labels:
            self._json("POST", f"/repos/{self.repo}/issues/{pr.number}/labels", json={"labels": list(labels)})
        return pr

    # --- comments ---

    def upsert_comment(self, *, number: int, body: str, marker: str) -> str:
        """Create or update the one comment on issue/PR ``number`` that contains ``marker``.

        ``marker`` is an HTML comment (``<!-- dex:preview -->``), invisible on GitHub; it is added to
        ``body`` when missing. Returns the comment's html_url.
        """
        if not (marker.startswith("<!--") and marker.endswith("-->")):
            raise UsageError(f"comment marker must be an HTML comment like '<!-- dex:x -->', got {marker!r}")
        if marker not in body:
            body = f"{marker}\n{body}"
        path = f"/repos/{self.repo}/issues/{number}/comments"
        existing: Any = None
        response = self._request("GET", path, params={"per_page": 100})
        for _ in range(_MAX_PAGES):
            for comment in self._body_of(response) or ():
                if marker in str(comment.get("body") or ""):
                    existing = comment
                    break
            next_url = response.links.get("next", {}).get("url")
            if existing is not None or not next_url:
                break
            if not self._same_origin(next_url):
                # The session sends the token to every URL it is given: follow no link elsewhere.
                raise RemoteError(
                    self._safe(f"GitHub API GET {path}: the next page is not on {self.api_url}: {next_url}")
                )
            response = self._request("GET", path, url=next_url)
        if existing is None:
            return str(self._json("POST", path, json={"body": body})["html_url"])
        if existing.get("body") == body:
            return str(existing["html_url"])
        comment_path = f"/repos/{self.repo}/issues/comments/{existing['id']}"
        return str(self._json("PATCH", comment_path, json={"body": body})["html_url"])

    # --- Actions workflow runs (metrics) and Deployments (insight); additive, one call each ---

    def workflow_runs(self, workflow: str, *, created: str, page: int, per_page: int = 100) -> Any:
        """One page of ``GET /repos/{r}/actions/workflows/{file}/runs?created=..`` (``total_count``,
        ``workflow_runs``). GitHub returns at most 1,000 runs for a filtered query; callers split
        ``created`` ranges to see more."""
        path = f"/repos/{self.repo}/actions/workflows/{urllib.parse.quote(workflow, safe='')}/runs"
        params: dict[str, str | int] = {"created": created, "per_page": per_page, "page": page}
        return self._json("GET", path, params=params)

    def run_timing(self, run_id: int) -> Any:
        """``GET /repos/{r}/actions/runs/{id}/timing`` (``run_duration_ms``)."""
        return self._json("GET", f"/repos/{self.repo}/actions/runs/{int(run_id)}/timing")

    def create_deployment(self, **fields: Any) -> Any:
        """``POST /repos/{r}/deployments`` with ``fields`` (ref, environment, payload, ...)."""
        return self._json("POST", f"/repos/{self.repo}/deployments", json=fields)

    def create_deployment_status(self, deployment_id: int, **fields: Any) -> Any:
        """``POST /repos/{r}/deployments/{id}/statuses`` with ``fields`` (state, log_url, ...)."""
        return self._json(
            "POST", f"/repos/{self.repo}/deployments/{int(deployment_id)}/statuses", json=fields
        )

    def deployments(self, *, environment: str, per_page: int = 30, page: int = 1) -> Any:
        """``GET /repos/{r}/deployments?environment=..``, newest first."""
        params: dict[str, str | int] = {"environment": environment, "per_page": per_page, "page": page}
        return self._json("GET", f"/repos/{self.repo}/deployments", params=params)

    def deployment_statuses(self, deployment_id: int, *, per_page: int = 30) -> Any:
        """``GET /repos/{r}/deployments/{id}/statuses``, newest first."""
        path = f"/repos/{self.repo}/deployments/{int(deployment_id)}/statuses"
        return self._json("GET", path, params={"per_page": per_page})
