"""Fixtures the integration modules share: the GitOps repository, push retries, the fake cluster.

pytest finds them here, so a test module requests them by name and neither defines nor
re-exports them. Helpers that are no fixtures (``build``, ``deploy_envs``, ``IMAGE``) stay in
``tests/gitops_fixtures.py`` and ``tests/cluster_fixtures.py``.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import pytest

from dex_tasks.gitops import workflow
from tests.fakes.argocd_state import FakeArgo
from tests.fakes.kube_apiserver import FakeKube
from tests.gitops_fixtures import GitOpsRepo, build
from tests.helpers import need_tool, stamp

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture
def repo(tmp_path: Path) -> GitOpsRepo:
    """The DEX-like GitOps repository of :func:`tests.gitops_fixtures.build`, in ``tmp_path``."""
    return build(tmp_path)


@pytest.fixture
def no_push_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """No real waiting between push attempts (modules that race pushes use it for every test)."""
    monkeypatch.setenv(workflow.BACKOFF_ENV, "0")


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


@pytest.fixture
def now(monkeypatch: pytest.MonkeyPatch) -> dt.datetime:
    """``DEX_NOW`` an hour ahead of the clock: what the fakes record now (real clock) is inside a window."""
    moment = dt.datetime.now(tz=dt.UTC).replace(microsecond=0) + dt.timedelta(hours=1)
    monkeypatch.setenv("DEX_NOW", stamp(moment))
    return moment
