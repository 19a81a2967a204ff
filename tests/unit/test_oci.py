"""tools/oci.py: references, credentials, and the token flow against the ghcr.io-like fake."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from dex_tasks import proc, redact
from dex_tasks.errors import EXIT_REMOTE, RemoteError, UsageError
from dex_tasks.tools import docker_credentials, oci
from tests.fakes.token_registry import DIGEST, TOKEN, token_registry

if TYPE_CHECKING:
    from pathlib import Path


@pytest.mark.parametrize(
    ("image", "host", "name", "url"),
    [
        ("ghcr.io/data-literate/dex", "ghcr.io", "data-literate/dex", "https://ghcr.io/v2/data-literate/dex"),
        ("127.0.0.1:5000/data-literate/dex", "127.0.0.1:5000", "data-literate/dex", "http://127.0.0.1:5000/v2/data-literate/dex"),
        ("localhost/app", "localhost", "app", "http://localhost/v2/app"),
        ("nginx", "docker.io", "library/nginx", "https://registry-1.docker.io/v2/library/nginx"),
        ("org/app", "docker.io", "org/app", "https://registry-1.docker.io/v2/org/app"),
        # distribution/reference normalize.go: docker.io/x and the legacy index.docker.io are library/x.
        ("docker.io/nginx", "docker.io", "library/nginx", "https://registry-1.docker.io/v2/library/nginx"),
        ("docker.io/library/nginx", "docker.io", "library/nginx", "https://registry-1.docker.io/v2/library/nginx"),
        ("index.docker.io/org/app", "docker.io", "org/app", "https://registry-1.docker.io/v2/org/app"),
        ("registry.example:8443/org/team/app", "registry.example:8443", "org/team/app", "https://registry.example:8443/v2/org/team/app"),
        ("ghcr.io/org/team/sub-app_x", "ghcr.io", "org/team/sub-app_x", "https://ghcr.io/v2/org/team/sub-app_x"),
        ("[::1]:5000/app", "[::1]:5000", "app", "http://[::1]:5000/v2/app"),
    ],
)  # fmt: skip
def test_parse_repository(image: str, host: str, name: str, url: str) -> None:
    repo = oci.parse_repository(image)
    assert (repo.host, repo.name, repo.base_url) == (host, name, url)


@pytest.mark.parametrize(
    "bad",
    [
        "", "Org/App", "a b", "ghcr.io/org/app@sha256:00", "ghcr.io/", "ghcr.io/org/App",
        "ghcr.io/org/app:v1", "ghcr.io/org//app", "ghcr.io/-app", "ghcr.io/app-", "ghcr.io/a..b",
        "bad_host.io/app", "ghcr.io/" + "a" * 260,
    ],
)  # fmt: skip
def test_parse_repository_refuses(bad: str) -> None:
    with pytest.raises(UsageError):
        oci.parse_repository(bad)


def test_a_tag_in_the_image_and_other_digest_algorithms_are_named() -> None:
    with pytest.raises(UsageError, match="without tag or digest"):
        oci.parse_repository("ghcr.io/org/app:v1")
    with pytest.raises(UsageError, match=r"only sha256 digests .*, not sha512"):
        oci.check_reference("sha512:" + "ab" * 64)
    with pytest.raises(UsageError, match="only sha256 digests"):
        oci.check_reference("sha256:" + "AB" * 32)


def test_is_loopback() -> None:
    assert oci.is_loopback("127.0.0.1:5000")
    assert oci.is_loopback("localhost:5000")
    assert oci.is_loopback("[::1]:5000")
    assert not oci.is_loopback("ghcr.io")
    assert not oci.is_loopback("10.0.0.1:5000")


def test_registry_credentials() -> None:
    assert oci.registry_credentials("ghcr.io", {}) is None
    assert oci.registry_credentials("ghcr.io", {"GITHUB_TOKEN": "t", "GITHUB_ACTOR": "me"}) == ("me", "t")
    assert oci.registry_credentials("ghcr.io", {"GITHUB_TOKEN": "t"}) == ("x-access-token", "t")
    # GITHUB_TOKEN is for ghcr.io only: never sent to another registry.
    assert oci.registry_credentials("quay.io", {"GITHUB_TOKEN": "t"}) is None
    explicit = {"DEX_REGISTRY_USER": "u", "DEX_REGISTRY_PASSWORD": "p", "GITHUB_TOKEN": "t"}
    assert oci.registry_credentials("ghcr.io", explicit) == ("u", "p")


def test_github_token_is_not_read_for_another_registry() -> None:
    # GITHUB_TOKEN goes to ghcr.io only, so a stray byte in it is no reason to refuse another host.
    assert oci.registry_credentials("quay.io", {"GITHUB_TOKEN": "t\x1b"}) is None
    with pytest.raises(UsageError, match=r"^GITHUB_TOKEN holds"):
        oci.registry_credentials("ghcr.io", {"GITHUB_TOKEN": "t\x1b"})


def test_credentials_name_the_variables_they_came_from(tmp_path: Path) -> None:
    # DEX_REGISTRY_USER without a password: GITHUB_TOKEN is what is sent, and what a refusal names.
    env = {"DEX_REGISTRY_USER": "u", "GITHUB_TOKEN": "ghp_review_a_token", "HOME": str(tmp_path)}
    found = oci.Client(env=env)._credentials(oci.parse_repository("ghcr.io/org/app"))
    assert found is not None
    assert (found.user, found.password, found.source) == (
        "x-access-token",
        "ghp_review_a_token",
        "GITHUB_TOKEN",
    )
    env = {
        "DEX_REGISTRY_USER": "u",
        "DEX_REGISTRY_PASSWORD": "pw-review-a-123",
        "GITHUB_TOKEN": "ghp_review_a_token",
        "HOME": str(tmp_path),
    }
    found = oci.Client(env=env)._credentials(oci.parse_repository("ghcr.io/org/app"))
    assert found is not None
    assert (found.user, found.source) == ("u", "DEX_REGISTRY_USER/DEX_REGISTRY_PASSWORD")


# -- the registry check's token flow (ghcr.io-like fake) ------------------------------------------
@pytest.mark.timeout(60)
def test_tag_exists_follows_the_bearer_challenge() -> None:
    with token_registry({"org/app:sha-1a2b3c4d": DIGEST}) as (host, seen):
        assert oci.manifest_digest(f"{host}/org/app", "sha-1a2b3c4d", env={}) == DIGEST
        assert oci.tag_exists(f"{host}/org/app", "sha-1a2b3c4d")
        assert not oci.tag_exists(f"{host}/org/app", "sha-00000000")
    assert any(r.startswith("GET /token?") and "scope=repository%3Aorg%2Fapp%3Apull" in r for r in seen)
    assert TOKEN not in redact.redact(TOKEN)


@pytest.mark.timeout(60)
def test_private_repository_needs_credentials() -> None:
    with token_registry({"org/app:t": DIGEST}, private_password="pw-123456") as (host, _):
        with pytest.raises(RemoteError, match="refused a pull token"):
            oci.manifest_digest(f"{host}/org/app", "t", env={})
        env = {"DEX_REGISTRY_USER": "anyone", "DEX_REGISTRY_PASSWORD": "pw-123456"}
        assert oci.manifest_digest(f"{host}/org/app", "t", env=env) == DIGEST


@pytest.mark.timeout(60)
def test_registry_hiccups_are_retried_then_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(oci, "BACKOFF", 0.0)
    with token_registry({"org/app:t": DIGEST}, fail_first=1) as (host, _):
        assert oci.tag_exists(f"{host}/org/app", "t")
    with token_registry({}, fail_first=10) as (host, seen):
        with pytest.raises(RemoteError, match=r"did not answer.*HTTP 503"):
            oci.tag_exists(f"{host}/org/app", "t")
        assert len(seen) == oci.ATTEMPTS


def test_unreachable_registry_is_a_remote_error(monkeypatch: pytest.MonkeyPatch, closed_port: int) -> None:
    monkeypatch.setattr(oci, "BACKOFF", 0.0)
    with pytest.raises(RemoteError, match="ConnectionError"):
        oci.tag_exists(f"127.0.0.1:{closed_port}/org/app", "t")


@pytest.mark.timeout(60)
def test_every_registry_session_is_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    # Each check opens a requests.Session (pooled keep-alive sockets): a digest, a 404 and an
    # error must all close it, or a promote over many envs leaks a socket per check.
    import requests  # noqa: PLC0415 - only here

    opened: list[requests.Session] = []
    closed: list[requests.Session] = []

    class Tracked(requests.Session):
        def __init__(self) -> None:
            super().__init__()
            opened.append(self)

        def close(self) -> None:
            closed.append(self)
            super().close()

    monkeypatch.setattr(requests, "Session", Tracked)
    monkeypatch.setattr(oci, "BACKOFF", 0.0)
    with token_registry({"org/app:t": DIGEST}, private_password="pw-123456") as (host, _):
        env = {"DEX_REGISTRY_USER": "anyone", "DEX_REGISTRY_PASSWORD": "pw-123456"}
        assert oci.manifest_digest(f"{host}/org/app", "t", env=env) == DIGEST
        assert oci.manifest_digest(f"{host}/org/app", "absent", env=env) is None
        with pytest.raises(RemoteError, match="refused a pull token"):
            oci.manifest_digest(f"{host}/org/app", "t", env={})
    with token_registry({}, fail_first=10) as (host, _), pytest.raises(RemoteError, match="did not answer"):
        oci.manifest_digest(f"{host}/org/app", "t", env={})
    assert len(opened) == 4
    assert closed == opened


def test_an_unreachable_registry_is_exit_4_within_the_deadline(
    monkeypatch: pytest.MonkeyPatch, closed_port: int
) -> None:
    monkeypatch.setenv(oci.DEADLINE_ENV, "1.5")
    closed = f"127.0.0.1:{closed_port}"
    expected = r"did not answer.*deadline 1.5s"
    with oci.Client(env=None) as c, pytest.raises(RemoteError, match=expected) as failed:
        c.resolve(f"{closed}/org/app", "sha-1a2b3c4d")
    assert failed.value.exit_code == EXIT_REMOTE
    assert "ConnectionError" in str(failed.value)


def test_references_and_fallback_tags() -> None:
    digest = "sha256:" + "ab" * 32
    assert oci.check_reference("sha-1a2b3c4d") == "sha-1a2b3c4d"
    assert oci.check_reference(digest) == digest
    for bad in ("", "a/b", "-x", "x" * 129, "sha256:00", "a b"):
        with pytest.raises(UsageError):
            oci.check_reference(bad)
    assert oci.fallback_tag(digest) == "sha256-" + "ab" * 32
    with pytest.raises(UsageError):
        oci.fallback_tag("sha256-00")


def test_deadline_from_env() -> None:
    assert oci.deadline_from_env({}) == oci.DEADLINE
    assert oci.deadline_from_env({oci.DEADLINE_ENV: "5"}) == 5.0
    for bad in ("0", "-1", "soon", "1e9"):
        with pytest.raises(UsageError, match=oci.DEADLINE_ENV):
            oci.deadline_from_env({oci.DEADLINE_ENV: bad})


ANN = {"a": "b"}


def test_descriptors_from_untrusted_json() -> None:
    digest = "sha256:" + "ab" * 32
    entries: list[dict[str, object]] = [
        {"mediaType": oci.OCI_MANIFEST, "digest": digest, "size": 3, "artifactType": "t", "annotations": ANN},
        {"mediaType": oci.OCI_MANIFEST, "digest": "sha256:00", "size": 3},
        {"mediaType": oci.OCI_MANIFEST, "digest": digest, "size": True},
        {"mediaType": oci.OCI_MANIFEST, "digest": digest, "size": 3, "annotations": {"a": 1}},
        {"digest": digest, "size": 3},
    ]
    found = oci.parse_descriptors(entries)
    assert found == [
        oci.Descriptor(media_type=oci.OCI_MANIFEST, digest=digest, size=3, artifact_type="t", annotations=ANN)
    ]
    assert oci.Descriptor.from_json(found[0].to_json()) == found[0]


def test_a_slow_request_prints_one_progress_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import threading  # noqa: PLC0415 - only here

    printed: list[str] = []
    done = threading.Event()

    def echo(line: str) -> None:
        printed.append(line)
        done.set()

    monkeypatch.setattr(proc, "echo", echo)
    # No sleep and no timed assertion: the block waits (bounded) until the notice has been printed.
    with oci._slow_notice("# waiting for registry r (attempt 1/4)", after=0.0):
        assert done.wait(timeout=30)
    assert printed == ["# waiting for registry r (attempt 1/4), no answer yet after 0s"]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        # ghcr.io / distribution: quoted values, a comma inside the scope.
        ('Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:o/a:pull,push"',
         {"scheme": "bearer", "realm": "https://ghcr.io/token", "service": "ghcr.io",
          "scope": "repository:o/a:pull,push"}),
        # RFC 9110: case-insensitive scheme and parameter names, bare token values, spaces after commas.
        ("BEARER Realm=https://auth.example/token, Service=registry.example",
         {"scheme": "bearer", "realm": "https://auth.example/token", "service": "registry.example"}),
        # Several challenges (two headers, joined by requests): the first Basic/Bearer one.
        ('Negotiate, Basic realm="Artifactory Realm"', {"scheme": "basic", "realm": "Artifactory Realm"}),
        ('Negotiate YIIB=, Bearer realm="https://r/t?x=1,2"', {"scheme": "bearer", "realm": "https://r/t?x=1,2"}),
        # Escaped quotes in a quoted value; a later challenge's realm never overwrites the first's.
        ('Basic realm="a \\"b\\"", Bearer realm="other"', {"scheme": "basic", "realm": 'a "b"'}),
        ("", {"scheme": ""}),
    ],
)  # fmt: skip
def test_www_authenticate_challenges(header: str, expected: dict[str, str]) -> None:
    assert oci._parse_challenge(header) == expected


def test_credentials_go_to_the_registry_s_own_origin_only() -> None:
    ghcr, local = oci.parse_repository("ghcr.io/org/app"), oci.parse_repository("127.0.0.1:5000/app")
    assert oci._same_origin("https://ghcr.io/v2/org/app/blobs/uploads/x?_state=y", ghcr)
    assert oci._same_origin("https://GHCR.io:443/v2/org/app/blobs/uploads/x", ghcr)  # a proxy's Location
    assert not oci._same_origin("http://ghcr.io/v2/org/app/blobs/uploads/x", ghcr)  # never over plain HTTP
    assert not oci._same_origin("https://ghcr.io:8443/v2/", ghcr)
    assert not oci._same_origin("https://pkg-containers.githubusercontent.com/ghcr1/blobs/x", ghcr)
    assert oci._same_origin("http://127.0.0.1:5000/v2/app/blobs/uploads/1", local)
    assert not oci._same_origin("http://localhost:5000/v2/app/blobs/uploads/1", local)
    assert not oci._same_origin("http://127.0.0.1:bad/v2/", local)


def test_no_credentials_go_to_a_plain_http_token_realm_of_an_https_registry() -> None:
    credentials = docker_credentials.Credentials(user="u", password="secret-pw-1", source="test")
    repo = oci.parse_repository("ghcr.io/org/app")
    with oci.Client(env={}) as c, pytest.raises(RemoteError, match="not HTTPS: not sending credentials"):
        c._token_response(repo, "http://ghcr.io/token", "ghcr.io", "repository:org/app:pull", credentials)
    assert c.requests == 0


@pytest.mark.parametrize(
    ("body", "said"),
    [
        (b'{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}',
         " DENIED: requested access to the resource is denied"),  # ghcr.io
        (b'{"details":"incorrect username or password"}', ": incorrect username or password"),  # Docker Hub
        (b"<html>nope</html>", ""),
        (rb'{"details":"a\u001b[31m red"}', ": a[31m red"),  # no terminal escapes from a registry
    ],
)  # fmt: skip
def test_what_a_token_server_said_when_it_refused(body: bytes, said: str) -> None:
    import requests  # noqa: PLC0415 - the client imports it lazily too

    response = requests.models.Response()
    response.status_code = 401
    response._content = body
    # As requests leaves a response read without stream=True.
    response._content_consumed = True  # type: ignore[attr-defined]
    response.request = requests.Request("GET", "https://auth.example/token").prepare()
    assert oci._token_error(response) == said


@pytest.mark.parametrize("token", ["s3kr1t\r\nX-Evil: 1", "s3kr1t\x1b[2J", "s3kr1t\udcff"])
def test_a_token_that_is_not_header_text_is_refused_without_showing_it(
    monkeypatch: pytest.MonkeyPatch, token: str
) -> None:
    # requests would refuse the header (InvalidHeader) and quote the token escaped, which the
    # redaction of the real value cannot find; so the token server's answer is refused as it is.
    import requests  # noqa: PLC0415 - the client imports it lazily too

    response = requests.models.Response()
    response.status_code = 200
    response._content = json.dumps({"token": token}).encode()
    response._content_consumed = True  # type: ignore[attr-defined]
    monkeypatch.setattr(oci.Client, "_token_response", lambda *_args, **_kw: response)
    repo = oci.parse_repository("registry.example/app")
    challenge = {"scheme": "bearer", "realm": "https://registry.example/token"}
    with (
        oci.Client(env={}) as c,
        pytest.raises(RemoteError, match="a token that is not header text") as caught,
    ):
        c._authorize(repo, challenge, "repository:app:pull", rejected=None)
    assert "s3kr1t" not in str(caught.value)
