"""Registry truth for the writing tasks: ``<image>:<tag>`` -> digest before anything is written.

``bump-overlay``, ``promote`` and ``rollback`` (and ``verify --rollback-on-failure``) ask the
registry through one :class:`RegistryCheck` per run, before the first write:

* a tag the registry does not have is :class:`~dex_tasks.errors.ImageMissingError` (exit 1,
  naming image and tag): a deploy of it would only end in ``ImagePullBackOff``;
* a registry that does not answer is :class:`~dex_tasks.errors.RemoteError` (exit 4) within the
  client's deadline (60 s, ``DEX_REGISTRY_DEADLINE``);
* ``registry-check = "off"`` (or ``--no-registry-check`` for one run) asks nothing: digests are
  unknown (``null`` in ``--json``, no ``Dex-Digest`` trailer) and the commit says
  ``Dex-Registry-Check: off``.

The scan gate (:meth:`RegistryCheck.scan_problems`): an env in ``[tool.dex.scan] required-for``
takes only a digest whose newest verdict (:func:`dex_tasks.supply.verdicts.newest`) passed.

Reads only: the same calls run under ``--dry-run``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Self

from dex_tasks.errors import ImageMissingError
from dex_tasks.supply import verdicts
from dex_tasks.tools import oci

if TYPE_CHECKING:
    from types import TracebackType

    from dex_tasks.config import Config

PASSED = "passed"
OFF = "off"
# status / scan states of a digest
SCAN_PASSED, SCAN_FAILED, SCAN_MISSING, SCAN_UNKNOWN = "passed", "failed", "missing", "unknown"


def scan_hint(image: str, digest: str) -> str:
    return f"scan it: dex-tasks trivy-scan {image}@{digest}"


class RegistryCheck:
    """One run's questions to the registry: one client (one deadline, one token), answers cached."""

    def __init__(self, cfg: Config, *, off: bool = False) -> None:
        self.cfg = cfg
        self.enabled = cfg.registry_check != OFF and not off
        self._client: oci.Client | None = None
        self._digests: dict[str, str | None] = {}

    @property
    def state(self) -> str:
        """``"passed"`` or ``"off"``: the ``registry_check`` of the result JSON."""
        return PASSED if self.enabled else OFF

    @property
    def client(self) -> oci.Client:
        if self._client is None:
            self._client = oci.Client()
        return self._client

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._client is not None:
            self._client.close()

    def lookup(self, tag: str) -> str | None:
        """The digest of ``<image>:<tag>``, None when the registry does not have it (or the check is off)."""
        if not self.enabled:
            return None
        if tag not in self._digests:
            self._digests[tag] = self.client.resolve(self.cfg.image, tag)
        return self._digests[tag]

    def exists(self, tag: str) -> bool:
        """Whether ``<image>:<tag>`` is there; always True when the check is off (nothing is known)."""
        return not self.enabled or self.lookup(tag) is not None

    def require(self, tag: str) -> str | None:
        """The digest of ``<image>:<tag>``; ImageMissingError (exit 1) when absent; None when off."""
        if not self.enabled:
            return None
        digest = self.lookup(tag)
        if digest is None:
            raise ImageMissingError(
                f"{self.cfg.image}:{tag} is not in the registry (image {self.cfg.image}, tag {tag}): "
                "push it first (dex-tasks image-build --push); nothing was written"
            )
        return digest

    def scan_state(self, digest: str | None) -> tuple[str, verdicts.Verdict | None]:
        """(passed | failed | missing | unknown, the newest verdict) of ``digest``."""
        if not self.enabled or digest is None:
            return SCAN_UNKNOWN, None
        verdict = verdicts.newest(self.client, self.cfg.image, digest)
        if verdict is None:
            return SCAN_MISSING, None
        return (SCAN_PASSED if verdict.passed else SCAN_FAILED), verdict

    def scan_problems(self, envs: tuple[str, ...] | list[str], digest: str | None) -> list[str]:
        """Why the envs among ``scan.required-for`` may not take ``digest`` (empty: they may)."""
        gated = [env for env in envs if env in self.cfg.scan.required_for]
        if not gated:
            return []
        where = "/".join(gated)
        if not self.enabled or digest is None:
            why = "which cannot be checked with the registry check off"
            return [f"{where} requires a passing scan verdict ([tool.dex.scan] required-for), {why}"]
        state, verdict = self.scan_state(digest)
        if state == SCAN_PASSED:
            return []
        image = self.cfg.image
        if state == SCAN_MISSING:
            hint = scan_hint(image, digest)
            return [f"{where} requires a passing scan verdict and {image}@{digest} has none; {hint}"]
        assert verdict is not None  # noqa: S101 - failed implies a verdict
        counts = ", ".join(f"{k} {v}" for k, v in sorted(verdict.counts.items()) if v) or "no findings"
        failed = f"the newest for {image}@{digest} failed ({counts}; scanned {verdict.scanned_at})"
        hint = scan_hint(image, digest)
        return [f"{where} requires a passing scan verdict and {failed}; fix and rebuild, or {hint} again"]
