"""A fake GitHub REST API on 127.0.0.1 for tests: pull requests, issue comments, labels.

Usage::

    with FakeGitHub(token="t", repo="o/r") as gh:
        client = GitHub(repo="o/r", token="t", api_url=gh.url, backoff_factor=0, sleep=lambda s: None)
        gh.fail_next("POST", "/repos/o/r/pulls", status=502, times=2)
        ...
        assert gh.pulls[1]["head"]["ref"] == "dex/bump-dev-sha-1234567"
        assert [r.method for r in gh.requests] == [...]

Point the product at it with ``GITHUB_API_URL=gh.url`` (``gh.env()`` returns the variables).

What it reproduces of the real API (https://docs.github.com/en/rest, version 2022-11-28):

* Authentication: ``Authorization: Bearer <token>`` or ``token <token>``; a wrong token is
  ``401 {"message": "Bad credentials", ...}``, no header is ``401 "Requires authentication"``.
  A repository other than ``repo`` is ``404 {"message": "Not Found", ...}`` (GitHub's answer for
  repositories a token cannot see). An unsupported ``X-GitHub-Api-Version`` is a 400.
* ``POST /repos/{r}/pulls``: 201 with the PR JSON (number, html_url, state, title, body,
  head.ref/label, base.ref/label, labels). Missing fields are 422 ``missing_field``; an open PR
  for the same head and base is GitHub's exact 422 ``"A pull request already exists for
  owner:branch."``; ``branches`` (optional) makes unknown head/base refs a 422 ``invalid``.
* ``GET /repos/{r}/pulls?head=owner:branch&base=..&state=open|closed|all`` filters like GitHub
  (``head`` must be ``owner:branch``; a bare branch matches nothing, as on GitHub).
* ``GET/PATCH /repos/{r}/pulls/{n}`` (title, body, state, base).
* ``GET/POST /repos/{r}/issues/{n}/comments`` (paged: ``per_page``, ``page``, ``Link: rel="next"``),
  ``PATCH /repos/{r}/issues/comments/{id}``, ``POST /repos/{r}/issues/{n}/labels``
  (200 with all the issue's labels). PRs and issues share one number sequence.
* Failure injection with GitHub's real bodies: ``fail_next`` queues canned responses for a
  ``(method, path glob)``; helpers for 5xx, ``429`` with ``Retry-After``, the ``403`` secondary rate
  limit (with or without ``Retry-After``), and primary rate limit exhaustion
  (``403`` + ``x-ratelimit-remaining: 0``). Canned 200 bodies can simulate lagging reads.
* ``GET /repos/{r}``: the repository JSON; ``permissions`` (``admin``, ``maintain``, ``push``,
  ``triage``, ``pull``) is there as GitHub sends it for a user token, or left out
  (``permissions=None``), as for some GitHub App installation tokens.
* A 403 from a token without the permission carries GitHub's ``X-Accepted-GitHub-Permissions``
  header (``forbidden()``), e.g. ``pull_requests=write``.
* Every response has GitHub's ``X-RateLimit-*`` headers (``remaining`` well above 0 unless a
  rate-limit helper says otherwise).
* ``hang(method, path)``: the next matching request gets no answer at all (the connection stays
  open, silent) until the client gives up or the fake stops - a hung API, bounded by the fake's
  ``max_hang`` seconds.
* Every request is recorded (method, path, query, headers, parsed JSON body).
* Actions: ``GET /repos/{r}/actions/workflows/{file}/runs?created=A..B&per_page&page`` (newest
  first; ``created`` as ``A..B``, ``>=A``, ``>A``, ``<=B``, ``<B`` or a date; ``total_count`` counts
  every match but, as on GitHub, only the first 1,000 are reachable: later pages are empty;
  ``Link`` with ``next``/``last``), an unknown workflow file is a 404;
  ``GET /repos/{r}/actions/runs/{id}/timing`` (``billable``, ``run_duration_ms``).
* Deployments: ``POST /repos/{r}/deployments`` (201 with the deployment; ``ref`` required, a
  ``ref`` that is neither a known branch nor 7..40 hex is GitHub's 422 ``No ref found for: X``),
  ``GET /repos/{r}/deployments?environment=..`` (newest first, paged), ``POST`` and ``GET
  /repos/{r}/deployments/{id}/statuses`` (states error, failure, inactive, in_progress, queued,
  pending, success, else 422; ``auto_inactive`` (default true) on a success makes the env's
  other deployments ``inactive``, as GitHub does for non-transient environments).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import itertools
import json
import re
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Self

if TYPE_CHECKING:
    from collections.abc import Mapping

DOCS = "https://docs.github.com/rest"
API_VERSION = "2022-11-28"
SECONDARY_RATE_LIMIT_MESSAGE = (
    "You have exceeded a secondary rate limit and have been temporarily blocked from content creation. "
    "Please retry your request again later. If you reach out to GitHub Support for help, please include "
    "the request ID 0000:1111:2222:3333:44444444."
)
STATUS_BODIES: dict[int, dict[str, Any]] = {
    400: {"message": "Problems parsing JSON", "documentation_url": DOCS, "status": "400"},
    401: {"message": "Bad credentials", "documentation_url": DOCS, "status": "401"},
    403: {"message": "Resource not accessible by integration", "documentation_url": DOCS, "status": "403"},
    404: {"message": "Not Found", "documentation_url": DOCS, "status": "404"},
    422: {"message": "Validation Failed", "errors": [], "documentation_url": DOCS, "status": "422"},
    429: {
        "message": "API rate limit exceeded for installation ID 1.",
        "documentation_url": f"{DOCS}/overview/rate-limits-for-the-rest-api",
        "status": "429",
    },
    500: {"message": "Server Error"},
    502: {"message": "Server Error"},
    503: {"message": "Service Unavailable"},
    504: {"message": "We couldn't respond to your request in time. Sorry about that."},
}


@dataclasses.dataclass(frozen=True, kw_only=True)
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    json: Any


@dataclasses.dataclass(frozen=True, kw_only=True)
class Canned:
    status: int
    body: Any
    headers: dict[str, str]
    hang: bool = False


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeGitHub


class FakeGitHub:
    """The fake server; a context manager that starts it on a free 127.0.0.1 port."""

    def __init__(
        self,
        *,
        token: str = "test-token",  # noqa: S107 - a fake server's fake token
        repo: str = "o/r",
        html_url: str = "https://github.com",
        branches: set[str] | None = None,
        permissions: dict[str, bool] | None = None,
        max_hang: float = 30.0,
    ) -> None:
        self.token = token
        # GitHub's repository permissions for the token's user; None: the field is left out.
        self.permissions = (
            {"admin": False, "maintain": False, "push": True, "triage": True, "pull": True}
            if permissions is None
            else permissions
        )
        self.send_permissions = True
        self.max_hang = max_hang
        self._release = threading.Event()
        self.repo = repo
        self.owner = repo.split("/", 1)[0]
        self.html_url = html_url.rstrip("/")
        self.branches = branches
        self.pulls: dict[int, dict[str, Any]] = {}
        self.comments: dict[int, dict[str, Any]] = {}
        self.issue_labels: dict[int, list[str]] = {}
        self.requests: list[Recorded] = []
        self.workflow_runs: dict[str, list[dict[str, Any]]] = {}  # workflow file -> runs
        self.deployments: dict[int, dict[str, Any]] = {}
        self.deployment_statuses: dict[int, list[dict[str, Any]]] = {}
        self.now: str | None = None  # ISO 8601 for created_at; None: the real clock
        self._run_ids = itertools.count(9000001)
        self._deployment_ids = itertools.count(500001)
        self._canned: list[tuple[str, str, list[Canned]]] = []
        self._numbers = itertools.count(1)
        self._comment_ids = itertools.count(1001)
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ---

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
        self._release.set()  # hung requests end now
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
    def url(self) -> str:
        assert self._server is not None, "FakeGitHub is not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def env(self) -> dict[str, str]:
        """Environment for the product under test: API URL, repository, token, server URL."""
        return {
            "GITHUB_API_URL": self.url,
            "GITHUB_REPOSITORY": self.repo,
            "GITHUB_TOKEN": self.token,
            "GITHUB_SERVER_URL": self.html_url,
        }

    # --- failure injection ---

    def fail_next(
        self,
        method: str,
        path: str,
        *,
        status: int,
        times: int = 1,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Answer the next ``times`` requests matching ``method`` and ``path`` (a glob over the path
        without query, e.g. ``/repos/o/r/pulls/*``) with ``status``; ``body`` defaults to GitHub's
        body for that status. Queued responses are used in order, before the real handlers."""
        canned = Canned(
            status=status,
            body=STATUS_BODIES.get(status, {"message": "Error"}) if body is None else body,
            headers=dict(headers or {}),
        )
        with self._lock:
            self._canned.append((method.upper(), path, [canned] * times))

    def hang(self, method: str, path: str, *, times: int = 1) -> None:
        """The next ``times`` matching requests get no answer: the server reads the request and says
        nothing (at most ``max_hang`` seconds, or until :meth:`stop`), then drops the connection."""
        with self._lock:
            self._canned.append(
                (method.upper(), path, [Canned(status=0, body=None, headers={}, hang=True)] * times)
            )

    def forbidden(
        self, method: str, path: str, *, accepted: str = "pull_requests=write", times: int = 1
    ) -> None:
        """403 "Resource not accessible by integration" with the permission GitHub names in
        ``X-Accepted-GitHub-Permissions`` (a GitHub App or fine-grained token without it)."""
        self.fail_next(
            method, path, status=403, times=times, headers={"X-Accepted-GitHub-Permissions": accepted}
        )

    def rate_limit(self, method: str, path: str, *, retry_after: int = 7, times: int = 1) -> None:
        """429 with ``Retry-After`` (what GitHub sends when a client must back off)."""
        self.fail_next(method, path, status=429, times=times, headers={"Retry-After": str(retry_after)})

    def secondary_rate_limit(
        self, method: str, path: str, *, retry_after: int | None = 3, times: int = 1
    ) -> None:
        """403 secondary rate limit; GitHub sends ``Retry-After`` on most, but not all, of them."""
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        body = {
            "message": SECONDARY_RATE_LIMIT_MESSAGE,
            "documentation_url": f"{DOCS}/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
        }
        self.fail_next(method, path, status=403, times=times, body=body, headers=headers)

    def primary_rate_limit_exhausted(self, method: str, path: str, *, times: int = 1) -> None:
        """403 with ``x-ratelimit-remaining: 0``: the hourly quota is spent (not worth retrying)."""
        body = {"message": "API rate limit exceeded for user ID 1.", "documentation_url": DOCS}
        headers = {
            "x-ratelimit-remaining": "0",
            "x-ratelimit-reset": "1700000000",
            "x-ratelimit-limit": "5000",
        }
        self.fail_next(method, path, status=403, times=times, body=body, headers=headers)

    def _take_canned(self, method: str, path: str) -> Canned | None:
        with self._lock:
            for i, (m, pattern, queue) in enumerate(self._canned):
                if m == method and fnmatch.fnmatchcase(path, pattern):
                    canned = queue.pop(0)
                    if not queue:
                        del self._canned[i]
                    return canned
        return None

    # --- assertions ---

    def requests_to(self, method: str, path: str) -> list[Recorded]:
        """Recorded requests matching ``method`` and the path glob."""
        return [r for r in self.requests if r.method == method.upper() and fnmatch.fnmatchcase(r.path, path)]

    def repository(self) -> dict[str, Any]:
        """``GET /repos/{owner}/{repo}`` as GitHub answers it (the fields a client looks at)."""
        owner, name = self.repo.split("/", 1)
        data: dict[str, Any] = {
            "id": 1296269,
            "name": name,
            "full_name": self.repo,
            "private": True,
            "owner": {"login": owner, "type": "Organization"},
            "html_url": f"{self.html_url}/{self.repo}",
            "url": f"{self.url}/repos/{self.repo}",
            "default_branch": "main",
            "archived": False,
            "visibility": "private",
        }
        if self.send_permissions:
            data["permissions"] = dict(self.permissions)
        return data

    def open_pulls(self) -> list[dict[str, Any]]:
        return [pr for pr in self.pulls.values() if pr["state"] == "open"]

    # --- state helpers for tests ---

    def add_pull(self, *, head: str, base: str, title: str = "existing", body: str = "") -> dict[str, Any]:
        """Seed an open PR (as if someone opened it earlier)."""
        with self._lock:
            return self._new_pull(head=head, base=base, title=title, body=body)

    def add_comment(self, number: int, body: str) -> dict[str, Any]:
        """Seed a comment on issue/PR ``number`` (which must exist)."""
        with self._lock:
            return self._new_comment(number, body)

    def add_run(
        self,
        workflow: str,
        created_at: str,
        conclusion: str | None = "success",
        seconds: float | None = 60,
        status: str = "completed",
        *,
        started: bool = True,
    ) -> dict[str, Any]:
        """Seed a workflow run, shaped like GitHub's (``run_started_at`` = ``created_at``)."""
        import datetime as dt  # noqa: PLC0415 - only seeding needs it

        run_id = next(self._run_ids)
        created = dt.datetime.fromisoformat(created_at)
        updated = created + dt.timedelta(seconds=seconds or 0)
        run = {
            "id": run_id,
            "name": workflow.removesuffix(".yml"),
            "path": f".github/workflows/{workflow}",
            "head_branch": "main",
            "head_sha": f"{run_id:040x}",
            "run_number": run_id - 9000000,
            "event": "push",
            "status": status,
            "conclusion": conclusion,
            "workflow_id": 161335,
            "run_attempt": 1,
            "html_url": f"{self.html_url}/{self.repo}/actions/runs/{run_id}",
            "created_at": created_at,
            "updated_at": updated.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "run_started_at": created_at if started else None,
            "_duration_ms": int((seconds or 0) * 1000),  # for the timing endpoint; not in GitHub's JSON
        }
        with self._lock:
            self.workflow_runs.setdefault(workflow, []).append(run)
        return run

    def _clock(self) -> str:
        if self.now:
            return self.now
        import datetime as dt  # noqa: PLC0415 - only deployments need it

        return dt.datetime.now(tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def _new_comment(self, number: int, body: str) -> dict[str, Any]:
        cid = next(self._comment_ids)
        comment = {
            "id": cid,
            "url": f"{self.url}/repos/{self.repo}/issues/comments/{cid}",
            "html_url": f"{self.html_url}/{self.repo}/pull/{number}#issuecomment-{cid}",
            "issue_number": number,  # not in GitHub's JSON; the fake needs it for listing
            "body": body,
            "user": {"login": "dex-bot"},
        }
        self.comments[cid] = comment
        return comment

    def _new_pull(self, *, head: str, base: str, title: str, body: str | None) -> dict[str, Any]:
        number = next(self._numbers)
        pr = {
            "url": f"{self.url}/repos/{self.repo}/pulls/{number}",
            "id": 100000 + number,
            "number": number,
            "html_url": f"{self.html_url}/{self.repo}/pull/{number}",
            "state": "open",
            "title": title,
            "body": body,
            "draft": False,
            "user": {"login": "dex-bot"},
            "head": {"ref": head, "label": f"{self.owner}:{head}", "repo": {"full_name": self.repo}},
            "base": {"ref": base, "label": f"{self.owner}:{base}", "repo": {"full_name": self.repo}},
            "labels": [],
        }
        self.pulls[number] = pr
        self.issue_labels[number] = []
        return pr


def _created_matches(created_at: str, query: str) -> bool:
    """GitHub's date qualifier of ``created``: ``A..B``, ``>=A``, ``>A``, ``<=B``, ``<B`` or one date."""
    if not query:
        return True
    stamp = created_at.replace("Z", "+00:00")

    def norm(text: str) -> str:
        text = text.strip().replace("Z", "+00:00")
        return text if "T" in text else text + "T00:00:00+00:00"

    if ".." in query:
        low, high = query.split("..", 1)
        return (low in {"", "*"} or stamp >= norm(low)) and (high in {"", "*"} or stamp <= norm(high))
    for op, test in ((">=", str.__ge__), ("<=", str.__le__), (">", str.__gt__), ("<", str.__lt__)):
        if query.startswith(op):
            return bool(test(stamp, norm(query[len(op) :])))
    return stamp[:10] == query[:10]


def _error(status: int, **extra: Any) -> tuple[int, Any, dict[str, str]]:
    return status, {**STATUS_BODIES[status], **extra}, {}


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; without TCP_NODELAY each keep-alive request waits for
    # a delayed ACK (~40 ms).
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        """Quiet: tests assert on ``FakeGitHub.requests`` instead of reading a log."""

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        fake = self.server.fake
        split = urllib.parse.urlsplit(self.path)
        path = split.path
        query = dict(urllib.parse.parse_qsl(split.query))
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            payload: Any = json.loads(raw) if raw else None
        except ValueError:
            payload = ValueError
        headers = {k.lower(): v for k, v in self.headers.items()}
        with fake._lock:
            fake.requests.append(
                Recorded(
                    method=method, path=path, query=query, headers=headers,
                    json=None if payload is ValueError else payload,
                )
            )  # fmt: skip
        try:
            status, body, extra = self._respond(fake, method, path, query, headers, payload)
        except Exception as exc:  # a bug in the fake must show up as a 500, like a real server
            status, body, extra = 500, {"message": f"fake error: {exc!r}"}, {}
        if status == 0:  # hung: drop the connection without a word
            self.close_connection = True
            return
        self._send(status, body, extra)

    def _respond(  # noqa: PLR0911, PLR0917 - a router: one early answer per check
        self,
        fake: FakeGitHub,
        method: str,
        path: str,
        query: dict[str, str],
        headers: dict[str, str],
        payload: Any,
    ) -> tuple[int, Any, dict[str, str]]:
        auth = headers.get("authorization")
        if auth is None:
            return _error(401, message="Requires authentication")
        if auth not in {f"Bearer {fake.token}", f"token {fake.token}"}:
            return _error(401)
        version = headers.get("x-github-api-version")
        if version is not None and version != API_VERSION:
            return 400, {"message": f"API version {version} is not supported.", "documentation_url": DOCS}, {}
        canned = fake._take_canned(method, path)
        if canned is not None:
            if canned.hang:
                fake._release.wait(fake.max_hang)
                return 0, None, {}
            return canned.status, canned.body, canned.headers
        if payload is ValueError:
            return _error(400)
        if path in {f"/repos/{fake.repo}", f"/repos/{fake.repo}/"} and method == "GET":
            return 200, fake.repository(), {}
        prefix = f"/repos/{fake.repo}/"
        if not path.startswith(prefix):
            return _error(404)
        rest = path[len(prefix) :]
        with fake._lock:
            return self._route(fake, method, rest, query, payload)

    def _route(  # noqa: PLR0911, PLR0912 - a router: one branch and answer per endpoint
        self, fake: FakeGitHub, method: str, rest: str, query: dict[str, str], payload: Any
    ) -> tuple[int, Any, dict[str, str]]:
        body = payload if isinstance(payload, dict) else {}
        if rest == "pulls" and method == "POST":
            return self._create_pull(fake, body)
        if rest == "pulls" and method == "GET":
            state = query.get("state", "open")
            found = [
                pr
                for pr in fake.pulls.values()
                if (state == "all" or pr["state"] == state)
                and ("head" not in query or pr["head"]["label"] == query["head"])
                and ("base" not in query or pr["base"]["ref"] == query["base"])
            ]
            return 200, sorted(found, key=lambda pr: -int(pr["number"])), {}
        if m := re.fullmatch(r"pulls/(\d+)", rest):
            pr = fake.pulls.get(int(m.group(1)))
            if pr is None:
                return _error(404)
            if method == "PATCH":
                for key in ("title", "body", "state"):
                    if key in body:
                        pr[key] = body[key]
                if "base" in body:
                    pr["base"] = {**pr["base"], "ref": body["base"], "label": f"{fake.owner}:{body['base']}"}
            elif method != "GET":
                return _error(404)
            return 200, pr, {}
        if m := re.fullmatch(r"issues/(\d+)/comments", rest):
            return self._issue_comments(fake, method, int(m.group(1)), query, body)
        if m := re.fullmatch(r"issues/comments/(\d+)", rest):
            comment = fake.comments.get(int(m.group(1)))
            if comment is None:
                return _error(404)
            if method == "PATCH":
                if not isinstance(body.get("body"), str):
                    return self._invalid("IssueComment", "body", "missing_field")
                comment["body"] = body["body"]
            elif method != "GET":
                return _error(404)
            return 200, comment, {}
        if m := re.fullmatch(r"actions/workflows/([^/]+)/runs", rest):
            return (
                self._runs(fake, urllib.parse.unquote(m.group(1)), query) if method == "GET" else _error(404)
            )
        if (m := re.fullmatch(r"actions/runs/(\d+)/timing", rest)) and method == "GET":
            for runs in fake.workflow_runs.values():
                for run in runs:
                    if run["id"] == int(m.group(1)):
                        return 200, {"billable": {}, "run_duration_ms": run["_duration_ms"]}, {}
            return _error(404)
        if rest == "deployments":
            return self._deployments(fake, method, query, body)
        if m := re.fullmatch(r"deployments/(\d+)/statuses", rest):
            return self._statuses(fake, method, int(m.group(1)), query, body)
        if (m := re.fullmatch(r"issues/(\d+)/labels", rest)) and method == "POST":
            number = int(m.group(1))
            if number not in fake.issue_labels:
                return _error(404)
            labels = fake.issue_labels[number]
            for name in body.get("labels") or ():
                if name not in labels:
                    labels.append(str(name))
            objects = [{"name": n, "color": "ededed", "default": False} for n in labels]
            if number in fake.pulls:
                fake.pulls[number]["labels"] = objects
            return 200, objects, {}
        return _error(404)

    @staticmethod
    def _page(
        fake: FakeGitHub, rest: str, items: list[Any], query: dict[str, str], *, cap: int | None = None
    ) -> tuple[list[Any], dict[str, str]]:
        """GitHub's paging: ``per_page`` (max 100), ``page``, ``Link`` next/last; ``cap`` reachable items."""
        per_page = max(1, min(100, int(query.get("per_page", "30"))))
        page = max(1, int(query.get("page", "1")))
        reachable = items[:cap] if cap is not None else items
        chunk = reachable[(page - 1) * per_page : page * per_page]
        last = max(1, -(-len(reachable) // per_page))
        links = []
        others = {k: v for k, v in query.items() if k not in {"page", "per_page"}}

        def url(n: int) -> str:
            params = urllib.parse.urlencode({**others, "per_page": per_page, "page": n})
            return f"{fake.url}/repos/{fake.repo}/{rest}?{params}"

        if page < last:
            links += [f'<{url(page + 1)}>; rel="next"', f'<{url(last)}>; rel="last"']
        return chunk, ({"Link": ", ".join(links)} if links else {})

    def _runs(
        self, fake: FakeGitHub, workflow: str, query: dict[str, str]
    ) -> tuple[int, Any, dict[str, str]]:
        if workflow not in fake.workflow_runs:
            return _error(404)
        created = query.get("created", "")
        runs = [r for r in fake.workflow_runs[workflow] if _created_matches(r["created_at"], created)]
        runs.sort(key=lambda r: (r["created_at"], r["id"]), reverse=True)
        chunk, headers = self._page(fake, f"actions/workflows/{workflow}/runs", runs, query, cap=1000)
        shown = [{k: v for k, v in r.items() if not k.startswith("_")} for r in chunk]
        return 200, {"total_count": len(runs), "workflow_runs": shown}, headers

    def _deployments(
        self, fake: FakeGitHub, method: str, query: dict[str, str], body: dict[str, Any]
    ) -> tuple[int, Any, dict[str, str]]:
        if method == "GET":
            found = [
                d for d in fake.deployments.values()
                if "environment" not in query or d["environment"] == query["environment"]
            ]  # fmt: skip
            found.sort(key=lambda d: -int(d["id"]))
            chunk, headers = self._page(fake, "deployments", found, query)
            return 200, chunk, headers
        if method != "POST":
            return _error(404)
        ref = body.get("ref")
        if not isinstance(ref, str) or not ref:
            return self._invalid("Deployment", "ref", "missing_field")
        if not re.fullmatch(r"[0-9a-f]{7,40}", ref) and ref not in (fake.branches or set()):
            return _error(422, message=f"No ref found for: {ref}", errors=[])
        if not isinstance(body.get("required_contexts", []), list):
            return self._invalid("Deployment", "required_contexts", "invalid")
        deployment_id = next(fake._deployment_ids)
        env = str(body.get("environment") or "production")
        now = fake._clock()
        deployment = {
            "url": f"{fake.url}/repos/{fake.repo}/deployments/{deployment_id}",
            "id": deployment_id,
            "node_id": f"DE_{deployment_id}",
            "sha": ref,
            "ref": ref,
            "task": body.get("task", "deploy"),
            "payload": body.get("payload", {}),
            "original_environment": env,
            "environment": env,
            "description": body.get("description"),
            "creator": {"login": "dex-bot"},
            "created_at": now,
            "updated_at": now,
            "statuses_url": f"{fake.url}/repos/{fake.repo}/deployments/{deployment_id}/statuses",
            "repository_url": f"{fake.url}/repos/{fake.repo}",
            "transient_environment": bool(body.get("transient_environment", False)),
            "production_environment": bool(body.get("production_environment", env == "production")),
            "_request": dict(body),  # not in GitHub's JSON: what the client sent, for assertions
        }
        fake.deployments[deployment_id] = deployment
        fake.deployment_statuses[deployment_id] = []
        return 201, {k: v for k, v in deployment.items() if not k.startswith("_")}, {}

    def _statuses(
        self, fake: FakeGitHub, method: str, deployment_id: int, query: dict[str, str], body: dict[str, Any]
    ) -> tuple[int, Any, dict[str, str]]:
        deployment = fake.deployments.get(deployment_id)
        if deployment is None:
            return _error(404)
        statuses = fake.deployment_statuses[deployment_id]
        if method == "GET":
            chunk, headers = self._page(fake, f"deployments/{deployment_id}/statuses", statuses[::-1], query)
            return 200, chunk, headers
        if method != "POST":
            return _error(404)
        state = body.get("state")
        if state not in {"error", "failure", "inactive", "in_progress", "queued", "pending", "success"}:
            return self._invalid("DeploymentStatus", "state", "invalid")
        status = self._status(fake, deployment, str(state), body)
        if state == "success" and body.get("auto_inactive", True) and not deployment["transient_environment"]:
            for other in fake.deployments.values():
                if other["environment"] == deployment["environment"] and other["id"] != deployment_id:
                    history = fake.deployment_statuses[other["id"]]
                    if history and history[-1]["state"] != "inactive":
                        self._status(fake, other, "inactive", {"description": "superseded"})
        return 201, status, {}

    @staticmethod
    def _status(
        fake: FakeGitHub, deployment: dict[str, Any], state: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        statuses = fake.deployment_statuses[deployment["id"]]
        status_id = deployment["id"] * 100 + len(statuses) + 1
        status = {
            "url": f"{deployment['url']}/statuses/{status_id}",
            "id": status_id,
            "state": state,
            "creator": {"login": "dex-bot"},
            "description": body.get("description", ""),
            "environment": deployment["environment"],
            "target_url": body.get("log_url", ""),
            "log_url": body.get("log_url", ""),
            "environment_url": body.get("environment_url", ""),
            "created_at": fake._clock(),
            "updated_at": fake._clock(),
            "deployment_url": deployment["url"],
            "repository_url": deployment["repository_url"],
            "auto_inactive": body.get("auto_inactive", True),
        }
        statuses.append(status)
        return status

    @staticmethod
    def _invalid(
        resource: str, field: str, code: str, message: str | None = None
    ) -> tuple[int, Any, dict[str, str]]:
        error: dict[str, str] = {"resource": resource, "code": code}
        if code == "custom" and message:
            error["message"] = message
        else:
            error["field"] = field
        return _error(422, errors=[error])

    def _create_pull(self, fake: FakeGitHub, body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        for field in ("head", "base"):
            if not isinstance(body.get(field), str) or not body[field]:
                return self._invalid("PullRequest", field, "missing_field")
        if not body.get("title") and not body.get("issue"):
            return self._invalid("PullRequest", "title", "missing_field")
        head = str(body["head"]).split(":", 1)[-1]
        base = str(body["base"])
        if fake.branches is not None:
            for field, ref in (("head", head), ("base", base)):
                if ref not in fake.branches:
                    return self._invalid("PullRequest", field, "invalid")
        for pr in fake.pulls.values():
            if pr["state"] == "open" and pr["head"]["ref"] == head and pr["base"]["ref"] == base:
                return self._invalid(
                    "PullRequest", "", "custom", f"A pull request already exists for {fake.owner}:{head}."
                )
        pr = fake._new_pull(head=head, base=base, title=str(body.get("title") or ""), body=body.get("body"))
        return 201, pr, {"Location": pr["url"]}

    def _issue_comments(
        self, fake: FakeGitHub, method: str, number: int, query: dict[str, str], body: dict[str, Any]
    ) -> tuple[int, Any, dict[str, str]]:
        if number not in fake.issue_labels:
            return _error(404)
        if method == "POST":
            if not isinstance(body.get("body"), str):
                return self._invalid("IssueComment", "body", "missing_field")
            comment = fake._new_comment(number, body["body"])
            return 201, comment, {"Location": comment["url"]}
        if method != "GET":
            return _error(404)
        per_page = max(1, min(100, int(query.get("per_page", "30"))))
        page = max(1, int(query.get("page", "1")))
        mine = [c for c in fake.comments.values() if c["issue_number"] == number]
        chunk = mine[(page - 1) * per_page : page * per_page]
        headers = {}
        if page * per_page < len(mine):
            next_url = (
                f"{fake.url}/repos/{fake.repo}/issues/{number}/comments?per_page={per_page}&page={page + 1}"
            )
            headers["Link"] = f'<{next_url}>; rel="next"'
        return 200, chunk, headers

    def _send(self, status: int, body: Any, headers: Mapping[str, str]) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-GitHub-Api-Version-Selected", API_VERSION)
        self.send_header("X-GitHub-Request-Id", "0000:1111:2222:3333:44444444")
        rate = {"x-ratelimit-limit": "5000", "x-ratelimit-remaining": "4999", "x-ratelimit-used": "1",
                "x-ratelimit-reset": "1700000000", "x-ratelimit-resource": "core"}  # fmt: skip
        for name, value in rate.items():
            if name not in {k.lower() for k in headers}:
                self.send_header(name, value)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
