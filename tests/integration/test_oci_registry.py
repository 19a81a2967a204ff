"""tools/oci.py and supply/verdicts.py against the REAL registry (Debian's docker-registry 2.8).

Images are pushed over HTTP by ``tests/oci_fixtures.py`` (no daemon needed). Auth, the referrers
API and hiccups come from ``tests/fakes/registry_front.py``, a front that proxies everything else
to the same real registry, so digests, Location URLs, 404s and manifest validation are the
registry's own.
"""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING

import pytest

from dex_tasks import redact
from dex_tasks.errors import EXIT_REMOTE, RemoteError, UsageError
from dex_tasks.supply import verdicts
from dex_tasks.tools import oci
from tests import docker_fixtures, oci_fixtures
from tests.fakes.registry_front import registry_front

if TYPE_CHECKING:
    from collections.abc import Mapping

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
        record(c, image_ref, image.digest, passed=True, at="2026-03-01T10:00:00Z")
        newest = verdicts.newest(c, image_ref, image.digest)
        assert newest is not None
        assert newest.passed
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
            record(c, image_ref, image.digest, passed=True, at="2026-03-01T10:00:00Z")
            newest = verdicts.newest(c, image_ref, image.digest)
        assert newest is not None
        assert newest.passed
    scopes = [t["scope"] for t in front.token_requests]
    assert scopes == [f"repository:{name}:pull", f"repository:{name}:pull,push"]
    assert {t["user"] for t in front.token_requests} == {"ci"}
    assert all(t["service"] == front.host for t in front.token_requests)
    for token in front.tokens:
        assert token not in redact.redact(f"token {token}")


def test_anonymous_pull_works_but_push_needs_a_token_with_push(registry: str, name: str) -> None:
    image = oci_fixtures.push_image(registry, name, "sha-1a2b3c4d")
    with registry_front(registry, auth="bearer", users=USERS) as front:
        image_ref = f"{front.host}/{name}"
        with client() as c:
            assert c.resolve(image_ref, "sha-1a2b3c4d") == image.digest
            with pytest.raises(RemoteError, match=r"refused push access.*packages: write") as refused:
                record(c, image_ref, image.digest, passed=True, at="2026-03-01T10:00:00Z")
        reader = {"DEX_REGISTRY_USER": "reader", "DEX_REGISTRY_PASSWORD": USERS["reader"][0]}
        with client(reader) as c, pytest.raises(RemoteError, match="refused push access"):
            record(c, image_ref, image.digest, passed=True, at="2026-03-01T10:00:00Z")
    assert refused.value.exit_code == EXIT_REMOTE


def test_wrong_credentials_name_the_fix(registry: str, name: str) -> None:
    oci_fixtures.push_image(registry, name, "t")
    wrong = {"DEX_REGISTRY_USER": "ci", "DEX_REGISTRY_PASSWORD": "not-the-password"}
    with registry_front(registry, auth="bearer", users=USERS, anonymous_pull=False) as front:
        image_ref = f"{front.host}/{name}"
        anonymous = r"anonymous access is not allowed.*DEX_REGISTRY_USER"
        refused = r"credentials were refused.*DEX_REGISTRY_USER"
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
