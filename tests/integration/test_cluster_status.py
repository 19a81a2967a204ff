"""``status``: git (a DEX-like repo with a bare origin) vs the real kubectl on the fake API server."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from tests.cluster_fixtures import IMAGE, deploy_envs
from tests.fakes.argocd_state import FakeArgo

if TYPE_CHECKING:
    from pathlib import Path

    from tests.conftest import CliRunner
    from tests.fakes.kube_apiserver import FakeKube
    from tests.gitops_fixtures import GitOpsRepo

pytestmark = [pytest.mark.timeout(180), pytest.mark.kubectl]


def envs_of(out: str) -> dict[str, dict[str, Any]]:
    data = json.loads(out)
    return {e["env"]: e for e in data["envs"]}


def test_status_drift(repo: GitOpsRepo, fake_kube: FakeKube, run_cli: CliRunner) -> None:
    t = repo.tags
    # git: dev T3, stage T1, prod T0. The cluster: stage runs T2 (someone kubectl'd it).
    deploy_envs(fake_kube, {"dev": t[3], "stage": t[2], "prod": t[0]})
    before = repo.snapshot()
    result = run_cli("status", "--json", cwd=repo.clone)
    assert result.code == 0, result.err
    envs = envs_of(result.out)
    assert envs["dev"]["git_tag"] == envs["dev"]["live_tag"] == t[3]
    assert envs["dev"]["drift"] is False
    assert envs["stage"]["drift"] is True
    assert (envs["stage"]["git_tag"], envs["stage"]["live_tag"]) == (t[1], t[2])
    assert envs["stage"]["live_image"] == f"{IMAGE}:{t[2]}"
    assert f"git says {t[1]}, the cluster runs {t[2]}" in envs["stage"]["notes"]
    assert json.loads(result.out)["drift"] == ["stage"]
    assert envs["prod"]["drift"] is False
    assert repo.snapshot() == before
    assert fake_kube.writes() == []
    # The table says DRIFT; --check turns drift into exit 1.
    table = run_cli("status", cwd=repo.clone)
    assert table.code == 0
    stage_line = next(line for line in table.out.splitlines() if line.startswith("stage"))
    assert "DRIFT" in stage_line
    checked = run_cli("status", "stage", "--check", cwd=repo.clone)
    assert checked.code == 1
    assert "drift in stage" in checked.err


def test_status_without_cluster_is_unknown_not_a_crash(repo: GitOpsRepo, no_cluster: None,
                                                       run_cli: CliRunner) -> None:  # fmt: skip
    result = run_cli("status", "--json", "prod", cwd=repo.clone)
    assert result.code == 0, result.err
    prod = envs_of(result.out)["prod"]
    assert prod["git_tag"] == repo.tags[0]
    assert prod["live_tag"] is None
    assert prod["drift"] is False
    assert any("live unknown" in n and "KUBECONFIG" in n for n in prod["notes"])
    table = run_cli("status", "prod", cwd=repo.clone)
    assert "unknown" in table.out


def test_status_missing_deployment_and_namespace(repo: GitOpsRepo, fake_kube: FakeKube,
                                                 run_cli: CliRunner) -> None:  # fmt: skip
    deploy_envs(fake_kube, {"dev": repo.tags[3]})
    result = run_cli("status", "--json", cwd=repo.clone)
    assert result.code == 0, result.err
    stage = envs_of(result.out)["stage"]
    assert stage["live_tag"] is None
    assert any("not found in namespace dex-stage" in n for n in stage["notes"]), stage["notes"]


def test_status_with_argocd(repo: GitOpsRepo, fake_kube: FakeKube, fake_argo: FakeArgo,
                            run_cli: CliRunner) -> None:  # fmt: skip
    t = repo.tags
    deploy_envs(fake_kube, {"dev": t[3], "stage": t[1], "prod": t[0]})
    fake_argo.add_app("dex-dev", namespace="dex-dev", image=f"{IMAGE}:{t[3]}", revision=repo.head("dev"))
    fake_argo.add_app("dex-stage", namespace="dex-stage", image=f"{IMAGE}:{t[1]}", revision=repo.head("main"))
    fake_argo.add_app("dex-prod", namespace="dex-prod", image=f"{IMAGE}:{t[0]}", sync="OutOfSync",
                      health="Progressing")  # fmt: skip
    result = run_cli("status", "--json", cwd=repo.clone)
    assert result.code == 0, result.err
    envs = envs_of(result.out)
    assert (envs["dev"]["sync"], envs["dev"]["health"], envs["dev"]["revision"]) == (
        "Synced", "Healthy", repo.head("dev"),
    )  # fmt: skip
    assert envs["stage"]["drift"] is False
    assert envs["prod"]["drift"] is True
    assert "Argo CD reports the app OutOfSync" in envs["prod"]["notes"]
    assert json.loads(result.out)["argocd"] == "checked"


def test_status_argocd_auth_failure_is_unknown(
    repo: GitOpsRepo, fake_kube: FakeKube, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_cli: CliRunner
) -> None:
    argo = FakeArgo(tmp_path / "argo", token="right")
    for key, value in argo.env(token="wrong").items():
        monkeypatch.setenv(key, value)
    deploy_envs(fake_kube, {"dev": repo.tags[3]})
    result = run_cli("status", "--json", "dev", cwd=repo.clone)
    assert result.code == 0, result.err
    dev = envs_of(result.out)["dev"]
    assert dev["sync"] == "unknown"
    assert any("Unauthenticated" in n for n in dev["notes"])
    # Asked once; every env says unknown with the reason (not "-", which means "not configured").
    every = run_cli("status", "--json", cwd=repo.clone)
    assert every.code == 0, every.err
    envs = envs_of(every.out)
    assert [(envs[e]["sync"], envs[e]["health"]) for e in ("dev", "stage", "prod")] == [
        ("unknown", "unknown")
    ] * 3
    assert all(any("Unauthenticated" in n for n in envs[e]["notes"]) for e in envs)
    assert sum(c[:2] == ["app", "get"] for c in argo.calls()) == 2  # dev, then dev again: once per run
    assert "wrong" not in result.out


def test_status_bad_env_is_exit_2(repo: GitOpsRepo, run_cli: CliRunner) -> None:
    result = run_cli("status", "qa", cwd=repo.clone)
    assert result.code == 2
    assert "unknown environment 'qa'" in result.err


def test_status_forbidden_namespace_is_unknown_for_that_env_only(repo: GitOpsRepo, fake_kube: FakeKube,
                                                                 run_cli: CliRunner) -> None:  # fmt: skip
    # RBAC denies dex-dev only: dev is unknown with RBAC's one-line reason; stage and prod are
    # still asked (the denial is per namespace, unlike an unreachable server).
    t = repo.tags
    deploy_envs(fake_kube, {"dev": t[3], "stage": t[1], "prod": t[0]})
    fake_kube.forbid("dex-dev")
    result = run_cli("status", "--json", cwd=repo.clone)
    assert result.code == 0, result.err
    envs = envs_of(result.out)
    assert envs["dev"]["live_tag"] is None
    assert len(envs["dev"]["notes"]) == 1
    note = envs["dev"]["notes"][0]
    assert note.startswith("live unknown: no access to the cluster: Error from server (Forbidden)")
    assert "\n" not in note
    assert (envs["stage"]["live_tag"], envs["prod"]["live_tag"]) == (t[1], t[0])


def test_status_live_images_by_digest_and_other_registry(repo: GitOpsRepo, fake_kube: FakeKube,
                                                         run_cli: CliRunner) -> None:  # fmt: skip
    t = repo.tags
    digest = "sha256:" + "ab" * 32
    # dev: tag and digest (the tag counts); stage: a digest only (unknown, said why); prod: the
    # same tag from another registry (drift: it is not an image of [tool.dex] image).
    fake_kube.add_deployment("dex-dev", "dex", image=f"{IMAGE}:{t[3]}@{digest}")
    fake_kube.add_deployment("dex-stage", "dex", image=f"{IMAGE}@{digest}")
    fake_kube.add_deployment("dex-prod", "dex", image=f"registry.example.com/data-literate/dex:{t[0]}")
    result = run_cli("status", "--json", cwd=repo.clone)
    assert result.code == 0, result.err
    envs = envs_of(result.out)
    assert (envs["dev"]["live_tag"], envs["dev"]["drift"]) == (t[3], False)
    stage = envs["stage"]
    assert (stage["live_tag"], stage["drift"]) == (None, False)
    assert stage["notes"] == [
        f"live tag unknown: the cluster runs {IMAGE}@{digest} (pinned by digest, no tag)"
    ]
    prod = envs["prod"]
    assert prod["drift"] is True
    assert any("not an image of ghcr.io/data-literate/dex" in n for n in prod["notes"])
    checked = run_cli("status", "stage", "--check", cwd=repo.clone)
    assert checked.code == 1
    assert "live state unknown for stage" in checked.err


def test_status_names_each_env_once(repo: GitOpsRepo, no_cluster: None, run_cli: CliRunner) -> None:
    result = run_cli("status", "--json", "prod", "dev", "prod", cwd=repo.clone)
    assert result.code == 0, result.err
    assert [row["env"] for row in json.loads(result.out)["envs"]] == ["prod", "dev"]


def test_status_of_a_rollout_pinned_by_digest_says_why_its_tag_is_unknown(
    repo: GitOpsRepo, fake_kube: FakeKube, run_cli: CliRunner
) -> None:
    # The same note as for a Deployment (status.py _live_deployment): no tag, said why.
    digest = "sha256:" + "ab" * 32
    pyproject = repo.clone / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text(encoding="utf-8") + '\n[tool.dex.cluster]\nworkload = "Rollout"\n',
        encoding="utf-8",
    )
    fake_kube.add_rollout("dex-stage", "dex", image=f"{IMAGE}@{digest}")
    result = run_cli("status", "stage", "--json", cwd=repo.clone)
    assert result.code == 0, result.err
    stage = envs_of(result.out)["stage"]
    assert (stage["live_tag"], stage["drift"]) == (None, False)
    assert f"live tag unknown: the cluster runs {IMAGE}@{digest} (pinned by digest, no tag)" in stage["notes"]
