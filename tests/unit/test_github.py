"""tools/github.py against the fake GitHub REST server: PRs, idempotency, retries, errors, secrets."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import pytest

from dex_tasks import errors, redact
from dex_tasks.errors import RemoteError, UsageError
from dex_tasks.tools import github
from dex_tasks.tools.github import GitHub, PullRequest
from tests.fakes.github_api import FakeGitHub
from tests.helpers import moved_clock

if TYPE_CHECKING:
    from collections.abc import Iterator

TOKEN = "ghs_fakeTOKEN0123456789abcdefSECRET"
REPO = "o/r"
PULLS = f"/repos/{REPO}/pulls"

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    with FakeGitHub(token=TOKEN, repo=REPO) as server:
        yield server


class Sleeps:
    """Records requested sleeps instead of sleeping: retries are asserted without wall-clock timing."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def client(fake: FakeGitHub, sleeps: Sleeps) -> Iterator[GitHub]:
    with GitHub(
        repo=REPO, token=TOKEN, api_url=fake.url, timeout=10, backoff_factor=0.01, sleep=sleeps
    ) as gh:
        yield gh


def open_pr(gh: GitHub, head: str = "dex/bump-dev-sha-1234567", **kwargs: object) -> PullRequest:
    return gh.open_or_update_pr(
        head=head,
        base=str(kwargs.get("base", "dev")),
        title=str(kwargs.get("title", "chore: update dev image to sha-1234567")),
        body=str(kwargs.get("body", "body")),
        labels=("dex", "deploy") if kwargs.get("labels") else (),
    )


def test_creates_pr_with_headers_and_labels(fake: FakeGitHub, client: GitHub) -> None:
    pr = open_pr(client, labels=True)
    assert pr == PullRequest(number=1, url="https://github.com/o/r/pull/1", created=True)
    created = fake.pulls[1]
    assert (created["head"]["ref"], created["base"]["ref"]) == ("dex/bump-dev-sha-1234567", "dev")
    assert created["title"] == "chore: update dev image to sha-1234567"
    assert [label["name"] for label in created["labels"]] == ["dex", "deploy"]
    lookup, post, labels = fake.requests
    assert (lookup.method, lookup.path) == ("GET", PULLS)
    assert lookup.query == {
        "head": "o:dex/bump-dev-sha-1234567",
        "base": "dev",
        "state": "open",
        "per_page": "100",
    }
    assert (post.method, post.path) == ("POST", PULLS)
    assert post.json == {
        "title": "chore: update dev image to sha-1234567",
        "head": "dex/bump-dev-sha-1234567",
        "base": "dev",
        "body": "body",
    }
    assert labels.json == {"labels": ["dex", "deploy"]}
    for request in fake.requests:
        assert request.headers["authorization"] == f"Bearer {TOKEN}"
        assert request.headers["accept"] == "application/vnd.github+json"
        assert request.headers["x-github-api-version"] == "2022-11-28"
        assert request.headers["user-agent"].startswith("dex-tasks/")
        assert TOKEN not in request.path
        assert TOKEN not in str(request.query)


def test_open_pr_for_same_head_is_reused_and_updated(fake: FakeGitHub, client: GitHub) -> None:
    first = open_pr(client, title="old title", body="old body")
    second = open_pr(client, title="new title", body="new body")
    assert first.created
    assert second == PullRequest(number=first.number, url=first.url, created=False)
    assert len(fake.pulls) == 1
    assert (fake.pulls[1]["title"], fake.pulls[1]["body"]) == ("new title", "new body")
    assert len(fake.requests_to("POST", PULLS)) == 1
    patch = fake.requests_to("PATCH", f"{PULLS}/1")
    assert [r.json for r in patch] == [{"title": "new title", "body": "new body"}]


def test_pr_for_other_base_or_closed_is_not_reused(fake: FakeGitHub, client: GitHub) -> None:
    fake.add_pull(head="dex/x", base="main")
    closed = fake.add_pull(head="dex/x", base="dev")
    closed["state"] = "closed"
    pr = open_pr(client, head="dex/x", base="dev")
    assert pr.created
    assert pr.number == 3


def test_422_already_exists_falls_back_to_find_and_update(fake: FakeGitHub, client: GitHub) -> None:
    # Another run opened the PR between our lookup and our POST: the lookup (lagging) sees nothing.
    fake.add_pull(head="dex/bump", base="dev", title="theirs")
    fake.fail_next("GET", PULLS, status=200, body=[])
    pr = open_pr(client, head="dex/bump", title="ours")
    assert pr == PullRequest(number=1, url="https://github.com/o/r/pull/1", created=False)
    assert fake.pulls[1]["title"] == "ours"
    assert len(fake.pulls) == 1
    assert [(r.method, r.path) for r in fake.requests] == [
        ("GET", PULLS), ("POST", PULLS), ("GET", PULLS), ("PATCH", f"{PULLS}/1"),
    ]  # fmt: skip


def test_422_other_validation_error_is_one_line(fake: FakeGitHub, client: GitHub) -> None:
    fake.fail_next(
        "POST",
        PULLS,
        status=422,
        body={
            "message": "Validation Failed",
            "errors": [
                {"resource": "PullRequest", "code": "custom", "message": "No commits between dev and x"}
            ],
            "documentation_url": "https://docs.github.com/rest/pulls/pulls#create-a-pull-request",
        },
    )
    with pytest.raises(RemoteError) as info:
        open_pr(client, head="x")
    assert (
        str(info.value)
        == "GitHub API POST /repos/o/r/pulls: 422 Validation Failed: No commits between dev and x"
    )
    assert info.value.exit_code == 4


def test_fake_answers_real_422_for_duplicate(fake: FakeGitHub, client: GitHub) -> None:
    fake.add_pull(head="dup", base="dev")
    with pytest.raises(
        RemoteError, match=r"422 Validation Failed: A pull request already exists for o:dup\."
    ):
        client._json("POST", PULLS, json={"title": "t", "head": "dup", "base": "dev"})
    with pytest.raises(RemoteError, match="missing_field"):
        client._json("POST", PULLS, json={"title": "t", "base": "dev"})


def test_401_is_one_line_without_token(fake: FakeGitHub, sleeps: Sleeps) -> None:
    gh = GitHub(repo=REPO, token="wrong-secret-token", api_url=fake.url, sleep=sleeps)
    with gh, pytest.raises(RemoteError) as info:
        open_pr(gh)
    message = str(info.value)
    assert message == (
        "GitHub API GET /repos/o/r/pulls: 401 Bad credentials "
        "(check GITHUB_TOKEN permissions: contents: write, pull-requests: write)"
    )
    assert "wrong-secret-token" not in message
    assert "\n" not in message
    assert info.value.exit_code == 2  # the token's fault: configuration, nothing was retried
    assert len(fake.requests) == 1  # not retried
    assert sleeps.calls == []


def test_404_unknown_repo(fake: FakeGitHub, sleeps: Sleeps) -> None:
    gh = GitHub(repo="o/other", token=TOKEN, api_url=fake.url, sleep=sleeps)
    expected = r"^GitHub API GET /repos/o/other/pulls: 404 Not Found \(check"
    with gh, pytest.raises(RemoteError, match=expected):
        gh.find_open_pr(head="b", base="main")
    assert len(fake.requests) == 1


def test_403_permission_error_is_not_retried_and_keeps_message(fake: FakeGitHub, client: GitHub) -> None:
    fake.fail_next("POST", PULLS, status=403)
    with pytest.raises(RemoteError) as info:
        open_pr(client)
    assert str(info.value).startswith(
        "GitHub API POST /repos/o/r/pulls: 403 Resource not accessible by integration"
    )
    assert len(fake.requests_to("POST", PULLS)) == 1


def test_primary_rate_limit_is_not_retried(fake: FakeGitHub, client: GitHub, sleeps: Sleeps) -> None:
    fake.primary_rate_limit_exhausted("GET", PULLS)
    with pytest.raises(RemoteError, match=r"403 API rate limit exceeded.*resets at epoch 1700000000"):
        client.find_open_pr(head="b", base="dev")
    assert len(fake.requests) == 1
    assert sleeps.calls == []


def test_502_twice_then_success_is_retried(fake: FakeGitHub, client: GitHub) -> None:
    fake.fail_next("POST", PULLS, status=502, times=2)
    pr = open_pr(client)
    assert pr.created
    assert len(fake.requests_to("POST", PULLS)) == 3
    assert len(fake.pulls) == 1


def test_post_retried_after_server_created_it_is_not_duplicated(fake: FakeGitHub, client: GitHub) -> None:
    # The PR exists (created by the attempt that got a 504), the lookup lags: the retried POST gets 422.
    fake.add_pull(head="dex/bump-dev-sha-1234567", base="dev")
    fake.fail_next("GET", PULLS, status=200, body=[])
    fake.fail_next("POST", PULLS, status=504)
    pr = open_pr(client)
    assert pr.number == 1
    assert not pr.created
    assert len(fake.pulls) == 1


def test_429_retry_after_is_honoured(fake: FakeGitHub, client: GitHub, sleeps: Sleeps) -> None:
    fake.rate_limit("GET", PULLS, retry_after=7)
    assert client.find_open_pr(head="b", base="dev") is None
    assert sleeps.calls == [7]  # the Retry-After value, not the (tiny) backoff
    assert len(fake.requests_to("GET", PULLS)) == 2


def test_secondary_rate_limit_with_retry_after(fake: FakeGitHub, client: GitHub, sleeps: Sleeps) -> None:
    fake.secondary_rate_limit("POST", PULLS, retry_after=3)
    assert open_pr(client).created
    assert sleeps.calls == [3]
    assert len(fake.requests_to("POST", PULLS)) == 2


def test_secondary_rate_limit_message_only(fake: FakeGitHub, sleeps: Sleeps) -> None:
    fake.secondary_rate_limit("POST", PULLS, retry_after=None, times=2)
    # Two waits of a minute need a deadline beyond the default 60 s.
    with GitHub(repo=REPO, token=TOKEN, api_url=fake.url, sleep=sleeps, deadline=300) as client:
        assert open_pr(client).created
    assert len(fake.requests_to("POST", PULLS)) == 3
    assert sleeps.calls == [60, 60]  # GitHub's guidance: wait at least a minute


def test_retry_after_is_capped(fake: FakeGitHub, sleeps: Sleeps) -> None:
    fake.rate_limit("GET", PULLS, retry_after=86400)
    with GitHub(repo=REPO, token=TOKEN, api_url=fake.url, sleep=sleeps, max_retry_after=30) as gh:
        gh.find_open_pr(head="b", base="dev")
    assert sleeps.calls == [30]


def test_exhausted_retries_exit_4(fake: FakeGitHub, sleeps: Sleeps) -> None:
    fake.fail_next("POST", PULLS, status=503, times=10)
    gh = GitHub(repo=REPO, token=TOKEN, api_url=fake.url, retries=2, backoff_factor=0.01, sleep=sleeps)
    with gh, pytest.raises(RemoteError) as info:
        open_pr(gh)
    assert (
        str(info.value)
        == "GitHub API POST /repos/o/r/pulls: 503 Service Unavailable (gave up after 2 retries)"
    )
    assert info.value.exit_code == 4
    assert len(fake.requests_to("POST", PULLS)) == 3
    assert len(sleeps.calls) == 1  # urllib3 retries the first time at once, then backs off
    assert fake.pulls == {}


def test_exhausted_secondary_rate_limit_exit_4(fake: FakeGitHub, sleeps: Sleeps) -> None:
    fake.secondary_rate_limit("POST", PULLS, retry_after=1, times=5)
    with (
        GitHub(repo=REPO, token=TOKEN, api_url=fake.url, retries=1, sleep=sleeps) as gh,
        pytest.raises(
            RemoteError, match=r"403 You have exceeded a secondary rate limit.*gave up after 1 retries"
        ),
    ):
        open_pr(gh)


def test_the_deadline_counts_from_the_first_request(
    fake: FakeGitHub, sleeps: Sleeps, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Made, then used only after more than its deadline (a loaded runner descheduled the task in
    # between): the client still asks once instead of "no time left after 0 retries".
    move = moved_clock(monkeypatch, github)
    with GitHub(repo=REPO, token=TOKEN, api_url=fake.url, sleep=sleeps, deadline=30) as gh:
        move(60)
        assert gh.find_open_pr(head="b", base="dev") is None
    assert len(fake.requests) == 1


def test_unreachable_server_is_remote_error(sleeps: Sleeps, closed_port: int) -> None:
    url = f"http://127.0.0.1:{closed_port}"
    with (
        GitHub(
            repo=REPO, token=TOKEN, api_url=url, retries=1, backoff_factor=0.01, timeout=5, sleep=sleeps
        ) as gh,
        pytest.raises(RemoteError) as info,
    ):
        gh.find_open_pr(head="b", base="dev")
    message = str(info.value)
    assert message.startswith(f"GitHub API GET /repos/o/r/pulls: cannot reach {url} (ConnectionError")
    assert "\n" not in message
    assert TOKEN not in message


def test_upsert_comment_creates_then_updates(fake: FakeGitHub, client: GitHub) -> None:
    pr = open_pr(client)
    marker = "<!-- dex:preview -->"
    url = client.upsert_comment(number=pr.number, body="first", marker=marker)
    assert url == "https://github.com/o/r/pull/1#issuecomment-1001"
    assert fake.comments[1001]["body"] == f"{marker}\nfirst"
    url2 = client.upsert_comment(number=pr.number, body=f"second {marker}", marker=marker)
    assert url2 == url
    assert len(fake.comments) == 1
    assert fake.comments[1001]["body"] == f"second {marker}"
    # Same body again: nothing written.
    writes = len(fake.requests_to("PATCH", "/repos/o/r/issues/comments/*"))
    client.upsert_comment(number=pr.number, body=f"second {marker}", marker=marker)
    assert len(fake.requests_to("PATCH", "/repos/o/r/issues/comments/*")) == writes


def test_upsert_comment_follows_pages(fake: FakeGitHub, client: GitHub) -> None:
    pr = open_pr(client)
    for i in range(150):
        fake.add_comment(pr.number, f"noise {i}")
    marker = "<!-- dex:status -->"
    fake.add_comment(pr.number, f"{marker}\nold")
    client.upsert_comment(number=pr.number, body="new", marker=marker)
    assert len(fake.comments) == 151
    assert fake.comments[1151]["body"] == f"{marker}\nnew"
    assert len(fake.requests_to("GET", "/repos/o/r/issues/1/comments")) == 2


def test_upsert_comment_validation(client: GitHub) -> None:
    with pytest.raises(UsageError, match="HTML comment"):
        client.upsert_comment(number=1, body="x", marker="dex")
    with pytest.raises(RemoteError, match="404 Not Found"):
        client.upsert_comment(number=99, body="x", marker="<!-- m -->")


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/o/r.git",
        "https://github.com/o/r",
        "https://github.com/o/r/",
        "http://ghe.example.com/o/r.git",
        "https://x-access-token:SECRET@github.com/o/r.git",
        "ssh://git@github.com/o/r.git",
        "ssh://git@github.com:22/o/r",
        "git@github.com:o/r.git",
        "git@github.com:o/r",
        "github.com:o/r.git",
        "git://github.com/o/r.git",
    ],
)
def test_repo_slug_forms(url: str) -> None:
    assert github.repo_slug(url) == "o/r"


def test_repo_slug_keeps_dots_and_dashes() -> None:
    assert github.repo_slug("git@github.com:data-literate/dex.tasks.git") == "data-literate/dex.tasks"


@pytest.mark.parametrize(
    "url",
    [
        "/srv/git/origin.git",
        "../origin",
        "file:///srv/git/o/r.git",
        "C:\\repos\\o\\r",
        "https://github.com/o",
        "https://github.com/o/r/tree/main",
        "",
        "https://user:SECRET@github.com/only-owner",
    ],
)
def test_repo_slug_refuses(url: str) -> None:
    with pytest.raises(UsageError, match="cannot tell the GitHub repository") as info:
        github.repo_slug(url)
    assert "SECRET" not in str(info.value)
    assert info.value.exit_code == 2


def test_compare_url_and_server_url(monkeypatch: pytest.MonkeyPatch) -> None:
    assert github.server_url() == "https://github.com"
    assert (
        github.compare_url("o/r", "dev", "dex/bump-dev-sha-1234567")
        == "https://github.com/o/r/compare/dev...dex/bump-dev-sha-1234567?expand=1"
    )
    monkeypatch.setenv("GITHUB_SERVER_URL", "https://ghe.example.com/")
    assert github.compare_url("o/r", "main", "promote-prod-sha-1") == (
        "https://ghe.example.com/o/r/compare/main...promote-prod-sha-1?expand=1"
    )


def test_token_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    assert github.token_from_env() is None
    monkeypatch.setenv("GH_TOKEN", "gh-secret-1")
    assert github.token_from_env() == "gh-secret-1"
    monkeypatch.setenv("GITHUB_TOKEN", " gha-secret-2 ")
    assert github.token_from_env() == "gha-secret-2"
    assert redact.redact("x gha-secret-2 y") == "x *** y"


def test_repo_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # One rule for the PR client and the compare URL: GITHUB_REPOSITORY, else the origin's URL.
    assert github.repo_from_env("git@github.com:a/b.git") == "a/b"
    with pytest.raises(UsageError, match="GITHUB_REPOSITORY"):
        github.repo_from_env(None)
    with pytest.raises(UsageError, match="cannot tell the GitHub repository from remote"):
        github.repo_from_env("/local/bare/repo")
    monkeypatch.setenv("GITHUB_REPOSITORY", " o/r ")
    assert github.repo_from_env("git@github.com:a/b.git") == "o/r"
    assert github.repo_from_env(None) == "o/r"


def test_from_env(monkeypatch: pytest.MonkeyPatch, fake: FakeGitHub) -> None:
    assert GitHub.from_env(remote_url="git@github.com:o/r.git") is None
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    with pytest.raises(UsageError, match="GITHUB_REPOSITORY"):
        GitHub.from_env()
    gh = GitHub.from_env(remote_url="git@github.com:a/b.git")
    assert gh is not None
    assert (gh.repo, gh.api_url) == ("a/b", "https://api.github.com")
    gh.close()
    for name, value in fake.env().items():
        monkeypatch.setenv(name, value)
    with GitHub.from_env(remote_url="/local/bare/repo") as gh2:  # type: ignore[union-attr] # not None: token set
        assert (gh2.repo, gh2.api_url) == ("o/r", fake.url)
        assert gh2.find_open_pr(head="x", base="dev") is None
    assert TOKEN not in repr(gh2)


def test_invalid_constructor_arguments() -> None:
    with pytest.raises(UsageError, match="OWNER/NAME"):
        GitHub(repo="not-a-slug", token=TOKEN)
    with pytest.raises(UsageError, match="empty GitHub token"):
        GitHub(repo=REPO, token=" ")


def test_token_never_in_errors_or_logs(
    fake: FakeGitHub,
    sleeps: Sleeps,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    closed_port: int,
) -> None:
    caplog.set_level(logging.DEBUG)
    errors: list[str] = []
    fake.fail_next("GET", PULLS, status=500, times=1)
    fake.rate_limit("POST", PULLS, retry_after=1)
    fake.secondary_rate_limit("POST", PULLS, retry_after=None)
    # deadline=300: the secondary rate limit without Retry-After waits a minute.
    with GitHub(
        repo=REPO, token=TOKEN, api_url=fake.url, retries=3, backoff_factor=0.01, sleep=sleeps, deadline=300
    ) as gh:
        open_pr(gh, labels=True)
        gh.upsert_comment(number=1, body="hello", marker="<!-- m -->")
        fake.fail_next("PATCH", f"{PULLS}/*", status=401)
        fake.fail_next("GET", PULLS, status=200, body=[{"number": 1, "html_url": "u"}])
        for call in (
            lambda: open_pr(gh),
            lambda: gh.upsert_comment(number=42, body="x", marker="<!-- m -->"),
        ):
            try:
                call()
            except RemoteError as exc:
                errors.append(str(exc))
                errors.append(repr(exc))
    with GitHub(
        repo=REPO, token=TOKEN, api_url=f"http://127.0.0.1:{closed_port}", retries=0, sleep=sleeps
    ) as gh:
        with pytest.raises(RemoteError) as info:
            gh.find_open_pr(head="b", base="dev")
        errors.append(str(info.value))
    assert len(errors) == 5
    captured = capsys.readouterr()
    everything = "\n".join([*errors, caplog.text, captured.out, captured.err])
    assert "GitHub API GET /repos/o/r/pulls" in caplog.text  # debug logging is on and was captured
    assert TOKEN not in everything


def test_from_env_refuses_to_send_the_token_to_github_com_for_another_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # An origin on GitHub Enterprise (or another forge) with no GITHUB_API_URL: api.github.com is the
    # wrong server, and a same-named repository there could even receive the PR. Every caller
    # (GitOps PRs, preview comments) goes through from_env, so the guard lives here.
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    with pytest.raises(
        errors.ForeignHostError, match=r"set GITHUB_API_URL .*https://ghe\.example\.com/api/v3"
    ):
        GitHub.from_env(remote_url="git@ghe.example.com:data-literate/dex.git")
    monkeypatch.setenv("GITHUB_API_URL", "https://ghe.example.com/api/v3")
    with GitHub.from_env(remote_url="git@ghe.example.com:data-literate/dex.git") as gh:  # type: ignore[union-attr] # not None: token set
        assert (gh.repo, gh.api_url) == ("data-literate/dex", "https://ghe.example.com/api/v3")


def test_compare_url_uses_the_origin_host_when_it_is_not_github_com() -> None:
    assert github.compare_url("o/r", "main", "b", remote_url="https://ghe.example.com/o/r.git") == (
        "https://ghe.example.com/o/r/compare/main...b?expand=1"
    )
    assert github.compare_url("o/r", "main", "b", remote_url="git@github.com:o/r.git") == (
        "https://github.com/o/r/compare/main...b?expand=1"
    )
    assert github.remote_host("C:\\src\\repo") is None
