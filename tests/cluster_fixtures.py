"""Fixtures for cluster tests: the fake API server with a kubeconfig, and the fake argocd CLI.

Import the fixtures into a test module: ``from tests.cluster_fixtures import fake_kube, fake_argo``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.fakes.argocd_state import FakeArgo
from tests.fakes.kube_apiserver import FakeKube
from tests.helpers import need_tool

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

IMAGE = "ghcr.io/data-literate/dex"


@pytest.fixture
def fake_kube(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FakeKube]:
    """A running fake API server; KUBECONFIG points at it (context ``fake``), discovery cache is private."""
    need_tool("kubectl")
    home = tmp_path_factory.mktemp("kube")
    with FakeKube() as kube:
        kubeconfig = kube.write_kubeconfig(home / "config")
        monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
        # kubectl caches discovery per server under ~/.kube/cache; keep it out of the user's home.
        monkeypatch.setenv("KUBECACHEDIR", str(home / "cache"))
        yield kube


@pytest.fixture
def fake_argo(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> FakeArgo:
    """The fake argocd first on PATH, ARGOCD_SERVER set: "Argo CD is configured"."""
    argo = FakeArgo(tmp_path_factory.mktemp("argocd"))
    for key, value in argo.env().items():
        monkeypatch.setenv(key, value)
    return argo


@pytest.fixture
def no_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No kubeconfig anywhere kubectl would look (kubectl itself is there: that is another case)."""
    need_tool("kubectl")
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-such-kubeconfig"))


def deploy_envs(kube: FakeKube, tags: dict[str, str], *, image: str = IMAGE) -> None:
    """One ``dex`` deployment per env in namespace ``dex-<env>``, running ``image:tag``."""
    for env, tag in tags.items():
        kube.add_deployment(f"dex-{env}", "dex", image=f"{image}:{tag}")
