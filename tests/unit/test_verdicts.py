"""supply/verdicts.py: the verdict JSON is untrusted, so its shape is validated strictly."""

from __future__ import annotations

import json
from typing import Any

import pytest

from dex_tasks.errors import MalformedVerdictError
from dex_tasks.supply import verdicts

DIGEST = "sha256:" + "ab" * 32
GOOD: dict[str, Any] = {
    "digest": DIGEST,
    "passed": False,
    "counts": {"CRITICAL": 1, "HIGH": 3, "MEDIUM": 0},
    "fail_on": ["CRITICAL"],
    "trivy_version": "0.58.1",
    "db_updated": "2026-01-01T00:00:00Z",
    "scanned_at": "2026-01-02T10:00:00+01:00",
}


def test_round_trip() -> None:
    verdict = verdicts.Verdict.from_json(json.dumps(GOOD))
    assert verdict.counts == {"CRITICAL": 1, "HIGH": 3, "MEDIUM": 0}
    assert verdict.fail_on == ("CRITICAL",)
    assert verdicts.Verdict.from_json(verdict.to_json()) == verdict
    assert json.loads(verdict.to_json()) == GOOD  # the contract's keys, nothing else


def test_db_updated_may_be_null_and_unknown_keys_are_ignored() -> None:
    verdict = verdicts.Verdict.from_json(json.dumps({**GOOD, "db_updated": None, "future": 1}))
    assert verdict.db_updated is None


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"digest": "sha256:00"}, "digest"),
        ({"digest": None}, "digest"),
        ({"passed": 1}, "passed"),
        ({"passed": "true"}, "passed"),
        ({"counts": {"CRITICAL": True}}, "counts"),
        ({"counts": {"CRITICAL": -1}}, "counts"),
        ({"counts": {"critical": 1}}, "counts"),
        ({"counts": [1]}, "counts"),
        ({"fail_on": "CRITICAL"}, "fail_on"),
        ({"fail_on": [1]}, "fail_on"),
        ({"trivy_version": 58}, "trivy_version"),
        ({"db_updated": 0}, "db_updated"),
        ({"db_updated": "yesterday"}, "db_updated"),
        ({"scanned_at": "2026-01-02T10:00:00"}, "time zone"),
        ({"scanned_at": None}, "scanned_at"),
    ],
)  # fmt: skip
def test_wrong_shapes_are_refused(change: dict[str, Any], why: str) -> None:
    with pytest.raises(MalformedVerdictError, match=why):
        verdicts.Verdict.from_json(json.dumps({**GOOD, **change}))


@pytest.mark.parametrize("text", ["", "[]", "null", '"x"', "{", b"\xff"])
def test_not_json_objects_are_refused(text: str | bytes) -> None:
    with pytest.raises(MalformedVerdictError):
        verdicts.Verdict.from_json(text)


def test_verdict_layer_accepts_only_verdicts_for_this_digest() -> None:
    layer = {"mediaType": verdicts.ARTIFACT_TYPE, "digest": DIGEST, "size": 10}
    manifest = {
        "artifactType": verdicts.ARTIFACT_TYPE,
        "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": DIGEST, "size": 1},
        "layers": [layer],
    }
    assert verdicts._verdict_layer(json.dumps(manifest).encode(), DIGEST) is not None
    other = "sha256:" + "cd" * 32
    assert verdicts._verdict_layer(json.dumps(manifest).encode(), other) is None
    assert verdicts._verdict_layer(json.dumps({**manifest, "artifactType": "x"}).encode(), DIGEST) is None
    two_layers = {**manifest, "layers": [layer, layer]}
    assert verdicts._verdict_layer(json.dumps(two_layers).encode(), DIGEST) is None
    big = {**layer, "size": verdicts.MAX_VERDICT_BYTES + 1}
    assert verdicts._verdict_layer(json.dumps({**manifest, "layers": [big]}).encode(), DIGEST) is None
    assert verdicts._verdict_layer(b"not json", DIGEST) is None
