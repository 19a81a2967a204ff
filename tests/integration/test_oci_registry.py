"""tools/oci.py and supply/verdicts.py against the REAL registry (Debian's docker-registry 2.8).

Images are pushed over HTTP by ``tests/oci_fixtures.py`` (no daemon needed). Auth, the referrers
API and hiccups come from ``tests/fakes/registry_front.py``, a front that proxies everything else
to the same real registry, so digests, Location URLs, 404s and manifest validation are the
registry's own.
"""

from __future__ import annotations

import base64
import json
import os
import re
import time
import types
import uuid
from typing import TYPE_CHECKING, Literal

import pytest

from dex_tasks import redact
from dex_tasks.errors import EXIT_REMOTE, RemoteError, UsageError
from dex_tasks.supply import verdicts
from dex_tasks.tools import oci
from tests import docker_fixtures, oci_fixtures
from tests.fakes.registry_front import registry_front

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

pytestmark = [pytest.mark.docker, pytest.mark.timeout(120)]

WRITER = {"DEX_REGISTRY_USER": "ci", "DEX_REGISTRY_PASSWORD": "pw-ci-0123456789"}
USERS = {
    "ci": ("pw-ci-0123456789", frozenset({"pull", "push"})),
    "reader": ("pw-reader-0123456789", frozenset({"pull"})),
}


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> str:
    return docker_fixtures.require_services(monkeypatch).registry


@pytest.fixture
def name() -> str:
    """A fresh repository per test: the registry outlives the tests."""
    return f"oci-test/{uuid.uuid4().hex[:12]}"


def client(env: Mapping[str, str] | None = None) -> oci.Client:
    """A client that sees only ``env``: no credentials from the developer's shell leak into a test."""
    return oci.Client(env=dict(env or {}))


def verdict(digest: str, *, passed: bool, at: str) -> verdicts.Verdict:
    return verdicts.Verdict(
        digest=digest,
        passed=passed,
        counts={"CRITICAL": 0 if passed else 1, "HIGH": 2},
        fail_on=("CRITICAL",),
        trivy_version="0.58.1",
        db_updated="2026-01-01T00:00:00Z",
        scanned_at=at,
    )


def record(c: oci.Client, image_ref: str, digest: str, *, passed: bool, at: str) -> str:
    return verdicts.record(c, image_ref, digest, verdict(digest, passed=passed, at=at))


def assert_a_pass_reads_back(c: oci.Client, image_ref: str, digest: str) -> None:
    """Record a passing verdict and read it back as the newest: a scan, then a promote's gate."""
    record(c, image_ref, digest, passed=True, at="2026-03-01T10:00:00Z")
    newest = verdicts.newest(c, image_ref, digest)
    assert newest is not None
    assert newest.passed


# -- resolve -------------------------------------------------------------------------------------------
def test_resolve_a_tag_and_absent_ones(registry: str, name: str) -> None:
    image = oci_fixtures.push_image(registry, name, "sha-1a2b3c4d")
    with client() as c:
        assert c.resolve(f"{registry}/{name}", "sha-1a2b3c4d") == image.digest
        assert c.requests == 1  # one HEAD for an anonymous registry
        assert c.resolve(f"{registry}/{name}", image.digest) == image.digest
        assert c.resolve(f"{registry}/{name}", "sha-00000000") is None  # MANIFEST_UNKNOWN
        assert c.resolve(f"{registry}/oci-test/never-pushed", "sha-1a2b3c4d") is None  # NAME_UNKNOWN
        assert c.stat(f"{registry}/{name}", "sha-1a2b3c4d") == oci.Descriptor(
            media_type=oci.OCI_MANIFEST, digest=image.digest, size=image.size
        )
        manifest = c.get_manifest(f"{registry}/{name}", "sha-1a2b3c4d")
        assert manifest is not None
        media_type, body, digest = manifest
        assert (media_type, digest, oci.sha256(body)) == (oci.OCI_MANIFEST, image.digest, image.digest)
        with pytest.raises(UsageError):
            c.resolve(f"{registry}/{name}", "bad/tag")
    assert docker_fixtures.registry_digest(registry, name, "sha-1a2b3c4d") == image.digest


@pytest.mark.parametrize("media_type", [oci_fixtures.OCI_INDEX, oci_fixtures.DOCKER_LIST])
def test_a_multi_platform_tag_resolves_to_the_index_digest(registry: str, name: str, media_type: str) -> None:
    index, children = oci_fixtures.push_index(registry, name, "sha-0badcafe", media_type=media_type)
    with client() as c:
        digest = c.resolve(f"{registry}/{name}", "sha-0badcafe")
        found = c.stat(f"{registry}/{name}", "sha-0badcafe")
    # What kustomize's digest: and a pod's imageID carry: the index, not a platform's manifest.
    assert digest == index.digest
    assert digest not in {child.digest for child in children}
    assert found is not None
    assert found.media_type == media_type


# -- verdicts through the fallback tag -----------------------------------------------------------------
def test_newest_verdict_decides_through_the_fallback_tag(registry: str, name: str) -> None:
    image_ref = f"{registry}/{name}"
    image = oci_fixtures.push_image(registry, name, "sha-1a2b3c4d")
    with client() as c:
        assert verdicts.newest(c, image_ref, image.digest) is None  # never scanned
        assert_a_pass_reads_back(c, image_ref, image.digest)
        # A rescan after a new CVE fails: it wins over the older pass.
        record(c, image_ref, image.digest, passed=False, at="2026-03-02T10:00:00Z")
        newest = verdicts.newest(c, image_ref, image.digest)
        assert newest is not None
        assert not newest.passed
        assert newest.counts == {"CRITICAL": 1, "HIGH": 2}
        # Recorded later but scanned earlier (a slow job): scanned_at decides, not push order.
        record(c, image_ref, image.digest, passed=True, at="2026-02-01T10:00:00Z")
        newest = verdicts.newest(c, image_ref, image.digest)
        assert newest is not None
        assert newest.scanned_at == "2026-03-02T10:00:00Z"
        listed = c.referrers(image_ref, image.digest, verdicts.ARTIFACT_TYPE)
    assert len(listed) == 3
    # The real registry holds the spec's fallback: tag sha256-<hex>, an OCI index of the referrers.
    stored = oci_fixtures.get_manifest(registry, name, image.digest.replace(":", "-"))
    assert stored is not None
    assert stored[0] == oci.OCI_INDEX
    entries = json.loads(stored[1])["manifests"]
    assert {e["artifactType"] for e in entries} == {verdicts.ARTIFACT_TYPE}
    assert {e["annotations"][oci.CREATED_ANNOTATION] for e in entries} == {
        "2026-03-01T10:00:00Z", "2026-03-02T10:00:00Z", "2026-02-01T10:00:00Z",
    }  # fmt: skip
    # The image tag itself is untouched.
    assert docker_fixtures.registry_digest(registry, name, "sha-1a2b3c4d") == image.digest


def test_foreign_referrers_are_kept_and_filtered_and_copies_do_not_count(registry: str, name: str) -> None:
    image_ref = f"{registry}/{name}"
    image = oci_fixtures.push_image(registry, name, "a")
    other = oci_fixtures.push_image(registry, name, "b")
    with client() as c:
        subject = c.get_manifest(image_ref, image.digest)
        assert subject is not None
        # Another tool's artifact (an SBOM) in the same fallback index.
        sbom = c.attach(image_ref, subject.descriptor, "application/spdx+json", b'{"spdxVersion":"SPDX-2.3"}')
        record(c, image_ref, image.digest, passed=True, at="2026-03-01T10:00:00Z")
        assert {d.digest for d in c.referrers(image_ref, image.digest)} >= {sbom}
        assert [d.artifact_type for d in c.referrers(image_ref, image.digest, verdicts.ARTIFACT_TYPE)] == [
            verdicts.ARTIFACT_TYPE
        ]
        # The other image's passing verdict attached to this image does not pass it: wrong digest inside.
        copied = verdict(other.digest, passed=True, at="2026-04-01T10:00:00Z")
        c.attach(
            image_ref, subject.descriptor, verdicts.ARTIFACT_TYPE, copied.to_json(),
            annotations={oci.CREATED_ANNOTATION: copied.scanned_at},
        )  # fmt: skip
        newest = verdicts.newest(c, image_ref, image.digest)
        assert newest is not None
        assert newest.scanned_at == "2026-03-01T10:00:00Z"
        missing = "sha256:" + "0" * 64
        with pytest.raises(UsageError, match="not in the registry"):
            record(c, image_ref, missing, passed=True, at="2026-03-01T10:00:00Z")


def test_a_tag_that_is_not_an_index_is_never_overwritten(registry: str, name: str) -> None:
    image_ref = f"{registry}/{name}"
    image = oci_fixtures.push_image(registry, name, "a")
    squatter = oci_fixtures.push_image(registry, name, image.digest.replace(":", "-"), seed="squatter")
    with client() as c, pytest.raises(RemoteError, match="not a referrers index"):
        record(c, image_ref, image.digest, passed=True, at="2026-03-01T10:00:00Z")
    assert docker_fixtures.registry_digest(registry, name, image.digest.replace(":", "-")) == squatter.digest


def test_a_deleted_referrer_is_dropped_from_the_fallback_index(registry: str, name: str) -> None:
    # distribution refuses an index that lists a manifest it no longer has (400 MANIFEST_BLOB_UNKNOWN),
    # so a verdict deleted by hand (or by a retention policy) must not block recording the next one.
    image_ref = f"{registry}/{name}"
    image = oci_fixtures.push_image(registry, name, "a")
    with client() as c:
        first = record(c, image_ref, image.digest, passed=True, at="2026-03-01T10:00:00Z")
        oci_fixtures.delete_manifest(registry, name, first)
        second = record(c, image_ref, image.digest, passed=False, at="2026-03-02T10:00:00Z")
        assert [d.digest for d in c.referrers(image_ref, image.digest)] == [second]
        newest = verdicts.newest(c, image_ref, image.digest)
    assert newest is not None
    assert not newest.passed


# -- the referrers API (zot / Harbor behaviour through the front) ---------------------------------------
def test_referrers_api_is_used_when_the_registry_has_it(registry: str, name: str) -> None:
    image = oci_fixtures.push_image(registry, name, "sha-1a2b3c4d")
    with registry_front(registry, referrers=True) as front:
        image_ref = f"{front.host}/{name}"
        with client() as c:
            record(c, image_ref, image.digest, passed=False, at="2026-03-01T10:00:00Z")
            record(c, image_ref, image.digest, passed=True, at="2026-03-05T10:00:00Z")
            newest = verdicts.newest(c, image_ref, image.digest)
    assert newest is not None
    assert newest.passed
    # OCI-Subject was answered, so no fallback tag was written, and listing used the API with the filter.
    assert oci_fixtures.get_manifest(registry, name, image.digest.replace(":", "-")) is None
    listing = front.requests_to(f"/v2/{name}/referrers/{image.digest}")
    assert listing
    assert all("artifactType=" in line for line in listing)


def test_a_missing_repository_does_not_turn_the_referrers_api_off(registry: str, name: str) -> None:
    image = oci_fixtures.push_image(registry, name, "t")
    with registry_front(registry, referrers=True) as front, client() as c:
        image_ref = f"{front.host}/{name}"
        # 404 NAME_UNKNOWN: that repository is not there, which says nothing about the API.
        assert c.referrers(f"{front.host}/oci-test/absent-{uuid.uuid4().hex[:8]}", image.digest) == []
        # Read through the API, where the verdict is (no fallback tag was written).
        assert_a_pass_reads_back(c, image_ref, image.digest)
    assert oci_fixtures.get_manifest(registry, name, image.digest.replace(":", "-")) is None


def test_a_referrers_path_that_is_not_an_index_means_the_fallback_tag(registry: str, name: str) -> None:
    image = oci_fixtures.push_image(registry, name, "t")
    with registry_front(registry, web_ui=True) as front, client() as c:
        image_ref = f"{front.host}/{name}"
        assert_a_pass_reads_back(c, image_ref, image.digest)
    assert oci_fixtures.get_manifest(registry, name, image.digest.replace(":", "-")) is not None


def test_a_referrers_401_without_a_challenge_means_the_fallback_tag(registry: str, name: str) -> None:
    image = oci_fixtures.push_image(registry, name, "t")
    served = registry_front(registry, auth="bearer", users=USERS, unchallenged_referrers=True)
    with served as front, client(WRITER) as c:
        image_ref = f"{front.host}/{name}"
        assert_a_pass_reads_back(c, image_ref, image.digest)


# -- auth ---------------------------------------------------------------------------------------------------
def test_token_flow_with_pull_and_push_scopes(registry: str, name: str) -> None:
    image = oci_fixtures.push_image(registry, name, "sha-1a2b3c4d")
    with registry_front(registry, auth="bearer", users=USERS, anonymous_pull=False) as front:
        image_ref = f"{front.host}/{name}"
        with client(WRITER) as c:
            assert c.resolve(image_ref, "sha-1a2b3c4d") == image.digest
            assert c.requests == 3  # 401, token, HEAD
            assert c.resolve(image_ref, "sha-1a2b3c4d") == image.digest
            assert c.requests == 4  # the pull token is cached for the client
            assert_a_pass_reads_back(c, image_ref, image.digest)
    scopes = [t["scope"] for t in front.token_requests]
    assert scopes == [f"repository:{name}:pull", f"repository:{name}:pull,push"]
    assert {t["user"] for t in front.token_requests} == {"ci"}
    assert all(t["service"] == front.host for t in front.token_requests)
    for token in front.tokens:
        assert token not in redact.redact(f"token {token}")


def test_an_expired_token_is_asked_for_again(registry: str, name: str) -> None:
    image = oci_fixtures.push_image(registry, name, "t")
    with (
        registry_front(registry, auth="bearer", users=USERS, anonymous_pull=False) as front,
        client(WRITER) as c,
    ):
        assert c.resolve(f"{front.host}/{name}", "t") == image.digest
        front.tokens.clear()  # expires_in has passed: the registry no longer takes the token
        assert c.resolve(f"{front.host}/{name}", "t") == image.digest
    assert len(front.token_requests) == 2


def test_anonymous_pull_works_but_push_needs_a_token_with_push(registry: str, name: str) -> None:
    image = oci_fixtures.push_image(registry, name, "sha-1a2b3c4d")
    with registry_front(registry, auth="bearer", users=USERS) as front:
        image_ref = f"{front.host}/{name}"
        with client() as c:
            assert c.resolve(image_ref, "sha-1a2b3c4d") == image.digest
            with pytest.raises(RemoteError, match=r"refused push access.*packages: write") as refused:
                record(c, image_ref, image.digest, passed=True, at="2026-03-01T10:00:00Z")
        reader = {"DEX_REGISTRY_USER": "reader", "DEX_REGISTRY_PASSWORD": USERS["reader"][0]}
        refused_push = (
            r"refused push access to \S+ \(HTTP 401 on POST UNAUTHORIZED: authentication required\)"
        )
        with client(reader) as c, pytest.raises(RemoteError, match=refused_push):
            record(c, image_ref, image.digest, passed=True, at="2026-03-01T10:00:00Z")
    assert refused.value.exit_code == EXIT_REMOTE


@pytest.mark.usefixtures("fresh_redaction")
def test_wrong_credentials_name_the_fix(registry: str, name: str) -> None:
    oci_fixtures.push_image(registry, name, "t")
    wrong = {"DEX_REGISTRY_USER": "ci", "DEX_REGISTRY_PASSWORD": "not-the-password"}
    with registry_front(registry, auth="bearer", users=USERS, anonymous_pull=False) as front:
        image_ref = f"{front.host}/{name}"
        anonymous = r"anonymous access is not allowed.*DEX_REGISTRY_USER"
        refused = (
            r"HTTP 401 UNAUTHORIZED: authentication required, the credentials were refused.*DEX_REGISTRY_USER"
        )
        with client() as c, pytest.raises(RemoteError, match=anonymous):
            c.resolve(image_ref, "t")
        with client(wrong) as c, pytest.raises(RemoteError, match=refused):
            c.resolve(image_ref, "t")
    assert "not-the-password" not in redact.redact("not-the-password")
    basic = registry_front(registry, auth="basic", users=USERS)
    expected = r"refused pull access.*DEX_REGISTRY_USER"
    with basic as front, client(wrong) as c, pytest.raises(RemoteError, match=expected):
        c.resolve(f"{front.host}/{name}", "t")


def test_basic_auth(registry: str, name: str) -> None:
    image = oci_fixtures.push_image(registry, name, "t")
    with registry_front(registry, auth="basic", users=USERS) as front, client(WRITER) as c:
        assert c.resolve(f"{front.host}/{name}", "t") == image.digest
        assert c.resolve(f"{front.host}/{name}", "t") == image.digest
        assert c.requests == 3  # 401 once, then Basic on every request


@pytest.mark.parametrize("auth", ["bearer", "basic"])
def test_a_negotiate_challenge_before_the_registry_s_own_is_passed_over(
    registry: str, name: str, auth: Literal["bearer", "basic"]
) -> None:
    image = oci_fixtures.push_image(registry, name, "t")
    served = registry_front(registry, auth=auth, users=USERS, other_challenges=("Negotiate",))
    with served as front, client(WRITER) as c:
        assert c.resolve(f"{front.host}/{name}", "t") == image.digest


@pytest.mark.parametrize("media_type", [oci.OCI_INDEX, oci.DOCKER_MANIFEST_LIST])
def test_without_docker_content_digest_the_digest_is_the_body_s_hash(
    registry: str, name: str, media_type: str
) -> None:
    image, _ = oci_fixtures.push_index(registry, name, "multi", media_type=media_type)
    with registry_front(registry, no_digest_header=True) as front, client() as c:
        assert c.resolve(f"{front.host}/{name}", "multi") == image.digest
        stat = c.stat(f"{front.host}/{name}", "multi")
        assert c.resolve(f"{front.host}/{name}", "absent") is None
    assert stat is not None
    assert (stat.digest, stat.media_type) == (image.digest, media_type)
    assert any(line.startswith("GET ") for line in front.log)  # the HEAD alone could not say


def test_a_generic_content_type_is_read_from_the_manifest_body(registry: str, name: str) -> None:
    image = oci_fixtures.push_image(registry, name, "t")
    with registry_front(registry, generic_content_type=True) as front, client() as c:
        image_ref = f"{front.host}/{name}"
        manifest = c.get_manifest(image_ref, "t")
        record(c, image_ref, image.digest, passed=False, at="2026-03-01T10:00:00Z")
        record(c, image_ref, image.digest, passed=True, at="2026-03-02T10:00:00Z")
        newest = verdicts.newest(c, image_ref, image.digest)
    assert manifest is not None
    assert manifest.media_type == oci.OCI_MANIFEST
    assert newest is not None
    assert newest.passed  # the fallback index was read as an index both times


@pytest.mark.parametrize("multi", [False, True])
def test_a_registry_that_reads_the_fallback_tag_as_a_digest(registry: str, name: str, multi: bool) -> None:
    image = (
        oci_fixtures.push_index(registry, name, "t")[0]
        if multi
        else oci_fixtures.push_image(registry, name, "t")
    )
    with registry_front(registry, dash_digests=True) as front, client() as c:
        image_ref = f"{front.host}/{name}"
        # Reading: the subject's own manifests (an index's children) are no referrers.
        assert c.referrers(image_ref, image.digest) == []
        assert verdicts.newest(c, image_ref, image.digest) is None
        with pytest.raises(
            RemoteError, match=r"answers the referrers tag sha256-\w+ .* with the image itself"
        ):
            record(c, image_ref, image.digest, passed=True, at="2026-03-01T10:00:00Z")
    # Nothing was written under the fallback tag.
    assert oci_fixtures.get_manifest(registry, name, image.digest.replace(":", "-")) is None


def test_relative_upload_locations_are_resolved_and_keep_the_token(registry: str, name: str) -> None:
    image = oci_fixtures.push_image(registry, name, "t")
    served = registry_front(
        registry, auth="bearer", users=USERS, anonymous_pull=False, relative_location=True
    )
    with served as front, client(WRITER) as c:
        image_ref = f"{front.host}/{name}"
        assert_a_pass_reads_back(c, image_ref, image.digest)
    uploads = [line for line in front.log if line.startswith("PUT ") and "/blobs/uploads/" in line]
    assert uploads
    assert all("digest=sha256%3A" in line or "digest=sha256:" in line for line in uploads)


@pytest.mark.parametrize("weak", [False, True], ids=["strong", "weak"])
def test_the_fallback_index_is_updated_under_the_registry_s_own_etag(
    registry: str, name: str, weak: bool
) -> None:
    # A weak ETag is never sent as If-Match: under strong comparison it would be 412 every time.
    image = oci_fixtures.push_image(registry, name, "t")
    with registry_front(registry, own_etags=True, weak_etags=weak) as front, client() as c:
        image_ref = f"{front.host}/{name}"
        first = record(c, image_ref, image.digest, passed=False, at="2026-03-01T10:00:00Z")
        second = record(c, image_ref, image.digest, passed=True, at="2026-03-02T10:00:00Z")
        listed = {d.digest for d in c.referrers(image_ref, image.digest)}
        newest = verdicts.newest(c, image_ref, image.digest)
    assert listed == {first, second}
    assert newest is not None
    assert newest.passed
    # The first write had nothing to match; the second was conditional (the tag existed) and,
    # since the front answers 412 to any other, carried the strong entity tag the front served.
    fallback = f"/v2/{name}/manifests/{image.digest.replace(':', '-')}"
    conditions = [given for path, given in front.if_match if path == fallback]
    assert len(conditions) == 2
    assert conditions[0] == ""
    if weak:
        assert conditions[1] == ""  # a weak tag is never sent: the write is unconditional
    else:
        assert re.fullmatch(r'"[0-9a-f]{64}"', conditions[1])


def test_a_blob_redirected_to_storage_on_another_host_gets_no_token(registry: str, name: str) -> None:
    image = oci_fixtures.push_image(registry, name, "t")
    served = registry_front(registry, auth="bearer", users=USERS, anonymous_pull=False, blob_redirect=True)
    with served as front, client(WRITER) as c:
        image_ref = f"{front.host}/{name}"
        assert_a_pass_reads_back(c, image_ref, image.digest)  # the verdict blob came from storage
    assert front.storage_auth == [""]  # and the registry's token never went there


# -- docker login's credentials (config.json) -----------------------------------------------------------
def docker_config(directory: Path, config: dict[str, object]) -> dict[str, str]:
    """A client environment whose only credentials are ``config`` as ``$DOCKER_CONFIG/config.json``."""
    directory.mkdir(exist_ok=True)
    (directory / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return {"DOCKER_CONFIG": str(directory)}


def basic_auth(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.usefixtures("fresh_redaction")
@pytest.mark.parametrize("key", ["{host}", "https://{host}", "http://{host}/v1/"])
def test_docker_login_credentials_from_auths(registry: str, name: str, tmp_path: Path, key: str) -> None:
    image = oci_fixtures.push_image(registry, name, "t")
    with registry_front(registry, auth="bearer", users=USERS, anonymous_pull=False) as front:
        auths = {key.format(host=front.host): {"auth": basic_auth("ci", USERS["ci"][0])}}
        with client(docker_config(tmp_path / "docker", {"auths": auths})) as c:
            assert c.resolve(f"{front.host}/{name}", "t") == image.digest
            record(c, f"{front.host}/{name}", image.digest, passed=True, at="2026-03-01T10:00:00Z")
    assert {t["user"] for t in front.token_requests} == {"ci"}
    assert USERS["ci"][0] not in redact.redact(USERS["ci"][0])


@pytest.mark.usefixtures("fresh_redaction")
@pytest.mark.parametrize("oauth", [True, False])
def test_an_identity_token_is_exchanged_by_oauth2(
    registry: str, name: str, tmp_path: Path, oauth: bool
) -> None:
    image = oci_fixtures.push_image(registry, name, "t")
    refresh = "refresh-" + uuid.uuid4().hex
    acr_user = "00000000-0000-0000-0000-000000000000"  # what az acr login writes beside the token
    served = registry_front(
        registry,
        auth="bearer",
        users=USERS,
        anonymous_pull=False,
        refresh_tokens={refresh: "ci"},
        oauth=oauth,
    )
    with served as front:
        auths = {front.host: {"auth": basic_auth(acr_user, ""), "identitytoken": refresh}}
        with client(docker_config(tmp_path / "docker", {"auths": auths})) as c:
            assert c.resolve(f"{front.host}/{name}", "t") == image.digest
            record(c, f"{front.host}/{name}", image.digest, passed=True, at="2026-03-01T10:00:00Z")
        # pull, then pull,push: both asked by OAuth2; a server without it (405) gets the GET after.
        assert len([line for line in front.log if line.startswith("POST /token")]) == 2
        assert len([line for line in front.log if line.startswith("GET /token")]) == (0 if oauth else 2)
        # OAuth2: the refresh token's user; the GET: HTTP Basic as az acr login's user, the token as password.
        assert [t["user"] for t in front.token_requests] == ["ci" if oauth else acr_user] * 2
        assert all(t.get("grant_type") == ("refresh_token" if oauth else None) for t in front.token_requests)
    assert refresh not in redact.redact(refresh)


HELPER = """#!/bin/sh
read -r server
if [ "$server" = "{host}" ]; then
  printf '{{"ServerURL":"%s","Username":"ci","Secret":"{password}"}}' "$server"
else
  echo "credentials not found in native keychain"; exit 1
fi
"""


def test_credential_helpers_from_the_docker_config(
    registry: str,
    name: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    image = oci_fixtures.push_image(registry, name, "t")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    with registry_front(registry, auth="bearer", users=USERS) as front:
        helper = bin_dir / "docker-credential-dextest"
        helper.write_text(HELPER.format(host=front.host, password=USERS["ci"][0]), encoding="utf-8")
        helper.chmod(0o755)
        monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
        # credHelpers for this host wins over auths; credsStore serves a host without an entry.
        configs: list[dict[str, object]] = [
            {"credHelpers": {front.host: "dextest"}, "auths": {front.host: {"auth": basic_auth("x", "y")}}},
            {"credsStore": "dextest", "auths": {front.host: {}}},
        ]
        for config in configs:
            front.token_requests.clear()
            with client(docker_config(tmp_path / "docker", config)) as c:
                record(c, f"{front.host}/{name}", image.digest, passed=True, at="2026-03-01T10:00:00Z")
            assert {t["user"] for t in front.token_requests} == {"ci"}
        # A store that is not installed (a laptop's "desktop") is a note; public pulls still work.
        with client(docker_config(tmp_path / "docker", {"credsStore": "no-such-store"})) as c:
            assert c.resolve(f"{front.host}/{name}", "t") == image.digest
    assert "docker-credential-no-such-store, which is not on PATH" in capsys.readouterr().err


# -- bounded: hiccups -------------------------------------------------------------------------------
def test_5xx_is_retried_with_a_progress_line(
    registry: str, name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(oci, "BACKOFF", 0.01)
    image = oci_fixtures.push_image(registry, name, "t")
    with registry_front(registry) as front:
        front.fail_next(2)
        with client() as c:
            assert c.resolve(f"{front.host}/{name}", "t") == image.digest
            assert c.requests == 3
        front.fail_next(100)
        with client() as c, pytest.raises(RemoteError, match=r"did not answer .* after 4 tries.*HTTP 503"):
            c.resolve(f"{front.host}/{name}", "t")
    err = capsys.readouterr().err
    waiting = [line for line in err.splitlines() if "waiting for registry" in line]
    # The retry lines, not the "no answer yet after 2s" one a request slower than that prints
    # first (oci.PROGRESS_AFTER: a loaded runner's first request can be).
    retries = [line for line in waiting if "next try in" in line]
    assert retries[0] == f"# waiting for registry {front.host} (attempt 2/4, next try in 0.0s): HTTP 503"
    assert not any(line.startswith("dex-tasks ") for line in waiting)


def test_a_rate_limit_waits_as_long_as_retry_after_says(
    registry: str, name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(oci, "BACKOFF", 0.01)
    slept: list[float] = []
    # oci's own name `time` only: "dex_tasks.tools.oci.time.sleep" is the time module's sleep, for
    # every thread of the run (the front's included) for the length of the test.
    clock = types.SimpleNamespace(monotonic=time.monotonic, time=time.time, sleep=slept.append)
    monkeypatch.setattr(oci, "time", clock)
    image = oci_fixtures.push_image(registry, name, "t")
    with registry_front(registry) as front:
        front.rate_limit(1, retry_after="7")
        with client() as c:
            assert c.resolve(f"{front.host}/{name}", "t") == image.digest
        assert slept == [7.0]  # Retry-After, not the 0.01 s backoff
        # A HEAD has no body, so no error code in the line.
        line = f"# waiting for registry {front.host} (attempt 2/4, next try in 7.0s): HTTP 429"
        assert line in capsys.readouterr().err.splitlines()
        # Past the deadline: one request, no retries that would only use up more of the quota.
        front.rate_limit(100, retry_after="3600")
        front.log.clear()
        with client() as c, pytest.raises(RemoteError) as refused:
            c.get_manifest(f"{front.host}/{name}", "t")
        assert len(front.log) == 1
    message = str(refused.value)
    assert "rate-limited GET" in message
    assert "wait 3600s (Retry-After), past the deadline" in message
    assert "TOOMANYREQUESTS: You have reached your pull rate limit" in message
    assert refused.value.exit_code == EXIT_REMOTE
