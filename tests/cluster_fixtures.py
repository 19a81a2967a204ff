"""Helpers for cluster tests: the app's image and deployments in the fake API server.

The fixtures (``fake_kube``, ``fake_argo``, ``no_cluster``) are in ``tests/integration/conftest.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.fakes.kube_apiserver import FakeKube

IMAGE = "ghcr.io/data-literate/dex"


def deploy_envs(kube: FakeKube, tags: dict[str, str], *, image: str = IMAGE) -> None:
    """One ``dex`` deployment per env in namespace ``dex-<env>``, running ``image:tag``."""
    for env, tag in tags.items():
        kube.add_deployment(f"dex-{env}", "dex", image=f"{image}:{tag}")
