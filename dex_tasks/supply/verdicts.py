"""Scan verdicts as OCI artifacts attached to the image manifest they judge (contract v2).

A verdict is an OCI image manifest with ``artifactType`` :data:`ARTIFACT_TYPE`, ``subject`` = the
image manifest, the empty config ``{}`` and one layer holding the verdict JSON::

    {"digest": "sha256:...", "passed": false, "counts": {"CRITICAL": 1, "HIGH": 3},
     "fail_on": ["CRITICAL"], "trivy_version": "0.58.1", "db_updated": "2026-01-01T00:00:00Z",
     "scanned_at": "2026-01-02T10:00:00Z"}

It is found through the referrers API or the fallback tag ``sha256-<hex>`` (see
:meth:`dex_tasks.tools.oci.Client.referrers`). **The newest verdict for a digest decides**: a rescan
that fails after a new CVE was published overrides an older pass, and a fixed rescan passes again.

Everything read from a registry is untrusted: :meth:`Verdict.from_json` validates the shape strictly,
and :func:`newest` skips artifacts that are not verdicts *for this digest* instead of failing on them,
so a stray artifact cannot block a promotion, and a verdict copied from another image cannot pass one.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from typing import TYPE_CHECKING, Any

from dex_tasks import durations
from dex_tasks._untrusted import parse_json
from dex_tasks.errors import BadContentError, MalformedVerdictError, UsageError
from dex_tasks.tools import oci

if TYPE_CHECKING:
    from collections.abc import Mapping

ARTIFACT_TYPE = "application/vnd.dex-tasks.scan-verdict.v1+json"
MAX_VERDICTS = 20  # verdicts read per digest, newest first by their created annotation
MAX_VERDICT_BYTES = 64 * 1024
_SEVERITY_RE = re.compile(r"[A-Z]{1,16}")  # trivy's CRITICAL HIGH MEDIUM LOW UNKNOWN, and room for more
_MAX_TEXT = 200


@dataclasses.dataclass(frozen=True, kw_only=True)
class Verdict:
    """The trivy gate's outcome for one image digest."""

    digest: str
    passed: bool
    counts: Mapping[str, int]  # severity -> number of findings
    fail_on: tuple[str, ...]
    trivy_version: str
    db_updated: str | None  # ISO 8601: when trivy's vulnerability DB was built
    scanned_at: str  # ISO 8601 with a time zone

    @property
    def scanned(self) -> dt.datetime:
        return _instant(self.scanned_at, "scanned_at")

    def to_json(self) -> bytes:
        data = {
            "digest": self.digest,
            "passed": self.passed,
            "counts": dict(self.counts),
            "fail_on": list(self.fail_on),
            "trivy_version": self.trivy_version,
            "db_updated": self.db_updated,
            "scanned_at": self.scanned_at,
        }
        return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, text: str | bytes) -> Verdict:
        """Parse and validate; MalformedVerdictError (exit 2) naming the first thing that is wrong."""
        try:
            data = parse_json(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise MalformedVerdictError(f"a scan verdict is JSON: {exc}") from None
        if not isinstance(data, dict):
            raise MalformedVerdictError("a scan verdict is a JSON object")
        return cls.from_data(data)

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Verdict:
        digest = data.get("digest")
        if not isinstance(digest, str) or not oci.DIGEST_RE.fullmatch(digest):
            raise MalformedVerdictError(f"verdict digest {digest!r} is not sha256:<64 hex>")
        passed = data.get("passed")
        if not isinstance(passed, bool):
            raise MalformedVerdictError(f"verdict passed {passed!r} is not true or false")
        counts = data.get("counts")
        if not isinstance(counts, dict) or not all(
            isinstance(k, str) and _SEVERITY_RE.fullmatch(k) and _count(v) for k, v in counts.items()
        ):
            raise MalformedVerdictError("verdict counts are not a SEVERITY -> non-negative integer object")
        fail_on = data.get("fail_on")
        severities = fail_on if isinstance(fail_on, list) else [None]
        if not all(isinstance(s, str) and _SEVERITY_RE.fullmatch(s) for s in severities):
            raise MalformedVerdictError("verdict fail_on is not a list of severities")
        trivy_version = data.get("trivy_version")
        if not isinstance(trivy_version, str) or len(trivy_version) > _MAX_TEXT:
            raise MalformedVerdictError("verdict trivy_version is not a short string")
        db_updated = data.get("db_updated")
        if db_updated is not None:
            if not isinstance(db_updated, str):
                raise MalformedVerdictError("verdict db_updated is not an ISO 8601 string or null")
            _instant(db_updated, "db_updated")
        scanned_at = data.get("scanned_at")
        if not isinstance(scanned_at, str):
            raise MalformedVerdictError("verdict scanned_at is not an ISO 8601 string")
        _instant(scanned_at, "scanned_at")
        return cls(
            digest=digest,
            passed=passed,
            counts=dict(counts),
            fail_on=tuple(str(s) for s in severities),
            trivy_version=trivy_version,
            db_updated=db_updated,
            scanned_at=scanned_at,
        )


def _count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _instant(text: str, field: str) -> dt.datetime:
    """An ISO 8601 instant with a time zone (``Z`` or an offset): naive times cannot be ordered."""
    if len(text) > _MAX_TEXT:
        raise MalformedVerdictError(f"verdict {field} is not an ISO 8601 time")
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise MalformedVerdictError(f"verdict {field} {text!r} is not an ISO 8601 time") from None
    if value.tzinfo is None:
        raise MalformedVerdictError(f"verdict {field} {text!r} has no time zone (add Z or +00:00)")
    utc = durations.instant(text)  # verdicts are compared: year 1 at +01:00 is an OverflowError there
    if utc is None:
        raise MalformedVerdictError(f"verdict {field} {text!r} is out of range")
    return utc


def _created(descriptor: oci.Descriptor) -> dt.datetime:
    """A referrer's created annotation, for choosing which to read; unparsable ones sort oldest."""
    raw = descriptor.annotations.get(oci.CREATED_ANNOTATION, "")
    return durations.instant(raw) or dt.datetime.min.replace(tzinfo=dt.UTC)


def record(client: oci.Client, image: str, digest: str, verdict: Verdict) -> str:
    """Attach ``verdict`` to the manifest ``image@digest``; the verdict artifact's digest.

    UsageError when the verdict is for another digest or the registry does not have ``digest``.
    """
    if verdict.digest != digest:
        raise UsageError(f"the verdict is for {verdict.digest}, not {digest}")
    subject = client.get_manifest(image, digest)
    if subject is None:
        raise UsageError(f"{image}@{digest} is not in the registry: push the image before recording its scan")
    annotations = {oci.CREATED_ANNOTATION: verdict.scanned_at}
    return client.attach(image, subject.descriptor, ARTIFACT_TYPE, verdict.to_json(), annotations=annotations)


def _verdict_layer(body: bytes, digest: str) -> oci.Descriptor | None:
    """The one layer of a verdict artifact whose subject is ``digest``, None for anything else."""
    try:
        data = parse_json(body)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("artifactType") != ARTIFACT_TYPE:
        return None
    subject, layers = data.get("subject"), data.get("layers")
    if not isinstance(subject, dict) or subject.get("digest") != digest:
        return None
    if not isinstance(layers, list) or len(layers) != 1:
        return None
    try:
        layer = oci.Descriptor.from_json(layers[0])
    except ValueError:
        return None
    return layer if layer.size <= MAX_VERDICT_BYTES else None


def read(client: oci.Client, image: str, digest: str, referrer: oci.Descriptor) -> Verdict | None:
    """The verdict in artifact ``referrer``, None when it is not a verdict for ``digest``."""
    manifest = client.get_manifest(image, referrer.digest)
    # None: listed in a fallback index but deleted since.
    layer = _verdict_layer(manifest.body, digest) if manifest else None
    if layer is None:
        return None
    try:
        blob = client.get_blob(image, layer.digest, limit=MAX_VERDICT_BYTES)
        verdict = Verdict.from_json(blob) if blob is not None else None
    except (BadContentError, MalformedVerdictError):
        # A blob that does not match its digest or is too big, or JSON of another shape: not a verdict.
        return None
    # A verdict copied from another image (same JSON, new subject) does not count for this one.
    return verdict if verdict is not None and verdict.digest == digest else None


def newest(client: oci.Client, image: str, digest: str) -> Verdict | None:
    """The newest valid verdict for ``image@digest`` by ``scanned_at``, None when it was never scanned.

    Reads at most :data:`MAX_VERDICTS` referrers, newest first by their created annotation (which
    :func:`record` sets to ``scanned_at``). On a tie a failing verdict wins: the safe side.
    """
    if not oci.DIGEST_RE.fullmatch(digest):
        raise UsageError(f"invalid digest {digest!r}: expected sha256:<64 hex>")
    listed = client.referrers(image, digest, ARTIFACT_TYPE)
    listed.sort(key=_created, reverse=True)
    found = [v for d in listed[:MAX_VERDICTS] if (v := read(client, image, digest, d)) is not None]
    if not found:
        return None
    return max(found, key=lambda v: (v.scanned, not v.passed))
