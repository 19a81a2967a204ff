"""A cluster per env: ``[tool.dex.cluster] contexts`` and ``argocd-servers``, with two fake API servers.

prod lives on its own API server (context ``prod-cluster``); dev and stage on the other (the
kubeconfig's current context). Argo CD of prod is ``argocd.prod.example``; the others use
``ARGOCD_SERVER``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import pytest

from tests.cluster_fixtures import deploy_envs
from tests.fakes.argocd_state import FakeArgo
from tests.fakes.kube_apiserver import FakeKube
from tests.helpers import need_tool, venv_env

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from tests.conftest import CliRunner
    from tests.gitops_fixtures import GitOpsRepo

pytestmark = [pytest.mark.timeout(180), pytest.mark.kubectl]

PROD_SERVER = "argocd.prod.example"


@pytest.fixture
def two_clusters(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[FakeKube, FakeKube]]:
    need_tool("kubectl")
    home = tmp_path_factory.mktemp("kube")
    with FakeKube() as main, FakeKube() as prod:
        (home / "config").write_text(
            "apiVersion: v1\nkind: Config\n"
            f"clusters:\n- name: main\n  cluster:\n    server: {main.url}\n"
            f"- name: prod\n  cluster:\n    server: {prod.url}\n"
            "contexts:\n- name: main-cluster\n  context:\n    cluster: main\n    user: fake\n"
            "- name: prod-cluster\n  context:\n    cluster: prod\n    user: fake\n"
            "current-context: main-cluster\n"
            "users:\n- name: fake\n  user: {}\n",
            encoding="utf-8",
        )
        monkeypatch.setenv("KUBECONFIG", str(home / "config"))
        monkeypatch.setenv("KUBECACHEDIR", str(home / "cache"))
        yield main, prod


def _per_env_config(repo: GitOpsRepo) -> None:
    path = repo.clone / "pyproject.toml"
    path.write_text(
        path.read_text(encoding="utf-8")
        + '\n[tool.dex.cluster]\ncontexts = { prod = "prod-cluster" }\n'
        + f'argocd-servers = {{ prod = "{PROD_SERVER}" }}\n',
        encoding="utf-8",
    )


def _envs(out: str) -> dict[str, dict[str, Any]]:
    return {e["env"]: e for e in json.loads(out)["envs"]}


def test_status_asks_each_env_s_cluster(
    repo: GitOpsRepo, two_clusters: tuple[FakeKube, FakeKube], run_cli: CliRunner, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    main, prod = two_clusters
    t = repo.tags
    # The main cluster also has a stale dex-prod: the per-env context must not read it.
    deploy_envs(main, {"dev": t[3], "stage": t[1], "prod": t[2]})
    deploy_envs(prod, {"prod": t[0]})
    argo = FakeArgo(tmp_path / "argocd")
    for key, value in argo.env().items():
        monkeypatch.setenv(key, value)
    for env, tag in (("dev", t[3]), ("stage", t[1]), ("prod", t[0])):
        argo.add_app(f"dex-{env}", namespace=f"dex-{env}", image=f"ghcr.io/data-literate/dex:{tag}")
    _per_env_config(repo)
    result = run_cli("status", "--json", cwd=repo.clone)
    assert result.code == 0, result.err
    envs = _envs(result.out)
    assert envs["prod"]["live_tag"] == t[0]
    assert envs["prod"]["drift"] is False
    assert envs["stage"]["live_tag"] == t[1]
    servers = {call[2]: server for server, call in argo.calls_by_server() if call[:2] == ["app", "get"]}
    assert servers == {"dex-dev": "argocd.example.invalid", "dex-stage": "argocd.example.invalid",
                       "dex-prod": PROD_SERVER}  # fmt: skip
    # The controls' rows are there too (nothing configured: null).
    assert (envs["prod"]["lock"], envs["prod"]["freeze"], envs["prod"]["soak"]) == (None, None, None)
    # Without the per-env context, prod would read the main cluster's stale deployment.
    same = run_cli("status", "prod", "--json", "--context", "main-cluster", cwd=repo.clone)
    assert _envs(same.out)["prod"]["live_tag"] == t[2]


def test_promote_live_check_uses_the_source_env_s_cluster(
    repo: GitOpsRepo, two_clusters: tuple[FakeKube, FakeKube], run_cli: CliRunner
) -> None:
    main, prod = two_clusters
    t = repo.tags
    path = repo.clone / "pyproject.toml"
    path.write_text(
        path.read_text(encoding="utf-8") + '\n[tool.dex.cluster]\ncontexts = { stage = "prod-cluster" }\n',
        encoding="utf-8",
    )
    deploy_envs(main, {"stage": t[2]})  # the wrong cluster runs something else
    deploy_envs(prod, {"stage": t[1]})  # stage's own cluster runs what git says
    result = run_cli("promote", "stage", "prod", "--verify", "live", "--no-push", cwd=repo.clone)
    assert result.code == 0, result.err
    assert f"stage runs {t[1]} live" in result.out


def test_emergency_rollback_uses_the_env_s_cluster(
    repo: GitOpsRepo, two_clusters: tuple[FakeKube, FakeKube], run_cli: CliRunner
) -> None:
    main, prod = two_clusters
    t = repo.tags
    _per_env_config(repo)
    deploy_envs(main, {"prod": t[2]})
    deploy_envs(prod, {"prod": t[2]})
    result = run_cli("rollback", "prod", t[0], "--emergency", "--no-push", cwd=repo.clone)
    assert result.code == 0, result.err
    assert prod.deployment_image("dex-prod", "dex") == f"ghcr.io/data-literate/dex:{t[0]}"
    assert main.deployment_image("dex-prod", "dex") == f"ghcr.io/data-literate/dex:{t[2]}"
    assert main.writes() == []


def test_emergency_rollback_passes_a_lock_and_records_it(
    repo: GitOpsRepo, two_clusters: tuple[FakeKube, FakeKube], run_cli: CliRunner
) -> None:
    _, prod = two_clusters
    t = repo.tags
    _per_env_config(repo)
    assert run_cli("bump-overlay", "prod", t[4], "--direct", cwd=repo.clone).code == 0
    deploy_envs(prod, {"prod": t[4]})
    subprocess.run(
        [sys.executable, "-m", "dex_tasks", "lock", "prod", "--reason", "incident"],
        cwd=repo.writer, env={**venv_env(), "GIT_COMMITTER_NAME": "On Call"}, capture_output=True,
        timeout=120, check=True,
    )  # fmt: skip
    refused = run_cli("rollback", "prod", cwd=repo.clone)
    assert refused.code == 1
    assert "prod is locked by On Call" in refused.err
    result = run_cli("rollback", "prod", "--emergency", cwd=repo.clone)
    assert result.code == 0, result.err
    assert "warning: prod is locked by On Call" in result.err
    assert "emergency rollback" in result.err
    assert prod.deployment_image("dex-prod", "dex") == f"ghcr.io/data-literate/dex:{t[0]}"
    assert "Dex-Lock-Broken: prod" in repo.message("main")
    assert repo.tag("prod") == t[0]
