"""How promote and rollback call the cluster side (dex_tasks.cluster, tested on its own with a fake
kube-apiserver): the order of steps and what is (not) written when the cluster says no."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from dex_tasks import cluster, proc
from dex_tasks.errors import RemoteError
from dex_tasks.gitops import workflow

if TYPE_CHECKING:
    from dex_tasks.config import Config
    from tests.conftest import CliRunner
    from tests.gitops_fixtures import GitOpsRepo

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("no_push_backoff")]


def _live(*, ok: bool, detail: str, checked: bool = True) -> cluster.LiveCheck:
    return cluster.LiveCheck(checked=checked, ok=ok, detail=detail, image=None)


def test_promote_refused_when_from_runs_something_else_live(
    repo: GitOpsRepo, run_cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[tuple[str, str, bool]] = []

    def check_live(
        cfg: Config, env: str, tag: str, *, required: bool, digest: str | None
    ) -> cluster.LiveCheck:
        asked.append((env, tag, required))
        return _live(ok=False, detail=f"stage runs ghcr.io/data-literate/dex:{repo.tags[2]}")

    monkeypatch.setattr(cluster, "check_live", check_live)
    before = repo.snapshot()
    result = run_cli("promote", "stage", "prod", "--verify", "live", "--json", cwd=repo.clone)
    assert result.code == 1
    assert f"stage runs ghcr.io/data-literate/dex:{repo.tags[2]}" in result.err
    assert asked == [("stage", repo.tags[1], True)]
    assert json.loads(result.out)["changed"] is False
    assert repo.snapshot() == before


def test_promote_auto_verify_not_required_and_ok(
    repo: GitOpsRepo, run_cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[bool] = []

    def check_live(
        cfg: Config, env: str, tag: str, *, required: bool, digest: str | None
    ) -> cluster.LiveCheck:
        asked.append(required)
        return _live(ok=True, detail="rollout complete")

    monkeypatch.setattr(cluster, "check_live", check_live)
    result = run_cli("promote", "stage", "prod", "--direct", cwd=repo.clone)
    assert result.code == 0, result.err
    assert asked == [False]
    assert "only git was checked" not in result.out + result.err
    assert repo.tag("prod") == repo.tags[1]


def test_promote_verify_git_does_not_ask_the_cluster(
    repo: GitOpsRepo, run_cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    def check_live(*args: object, **kwargs: object) -> cluster.LiveCheck:
        raise AssertionError("--verify git must not ask the cluster")

    monkeypatch.setattr(cluster, "check_live", check_live)
    result = run_cli("promote", "stage", "prod", "--verify", "git", "--dry-run", cwd=repo.clone)
    assert result.code == 0, result.err


def test_emergency_rollback_sets_the_image_first_then_git(
    repo: GitOpsRepo, run_cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    steps: list[str] = []

    def emergency_rollout(cfg: Config, env: str, tag: str, *, digest: str | None = None) -> None:
        steps.append(f"kubectl {env} {tag} (git stage={repo.tag('stage')})")

    def argocd_sync(cfg: Config, env: str) -> None:
        steps.append(f"sync {env} (git stage={repo.tag('stage')})")

    monkeypatch.setattr(cluster, "emergency_rollout", emergency_rollout)
    monkeypatch.setattr(cluster, "argocd_sync", argocd_sync)
    monkeypatch.setattr(cluster, "check_sync_ready", lambda _cfg, env: steps.append(f"ready {env}"))
    t0, t1 = repo.tags[0], repo.tags[1]
    result = run_cli("rollback", "stage", "--emergency", "--sync", "--json", cwd=repo.clone)
    assert result.code == 0, result.err
    assert steps == ["ready stage", f"kubectl stage {t0} (git stage={t1})", f"sync stage (git stage={t0})"]
    data = json.loads(result.out)
    assert data["emergency"] is True
    assert data["pushed"] is True
    assert "(emergency: kubectl first)" in repo.message("main")


def test_emergency_rollout_stall_writes_nothing(
    repo: GitOpsRepo, run_cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    def stalled(cfg: Config, env: str, tag: str, *, digest: str | None = None) -> None:
        raise RemoteError("rollout of deployment/dex in dex-stage did not complete within 300s")

    monkeypatch.setattr(cluster, "emergency_rollout", stalled)
    before = repo.snapshot()
    result = run_cli("rollback", "stage", "--emergency", cwd=repo.clone)
    assert result.code == 4
    assert "did not complete" in result.err
    assert repo.snapshot() == before


def test_emergency_then_git_push_fails_prints_the_follow_up(
    repo: GitOpsRepo, run_cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cluster, "emergency_rollout", lambda *_, **__: None)
    monkeypatch.setenv(workflow.ATTEMPTS_ENV, "1")
    monkeypatch.setattr(workflow, "_before_push", lambda change, *_: repo.race(change.base))
    result = run_cli("rollback", "stage", "--emergency", cwd=repo.clone)
    assert result.code == 4
    assert f"follow up with: dex-tasks rollback stage {repo.tags[0]} --direct" in result.err


def test_sync_dry_run_does_not_sync(
    repo: GitOpsRepo, run_cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*args: object) -> None:
        raise AssertionError("no sync in dry-run")

    checked: list[str] = []

    def emergency_rollout(cfg: Config, env: str, tag: str, *, digest: str | None = None) -> None:
        # Called under dry-run for its read-only checks; its `set image` is only printed there.
        assert proc.is_dry_run()
        checked.append(env)

    monkeypatch.setattr(cluster, "argocd_sync", boom)
    monkeypatch.setattr(cluster, "check_sync_ready", lambda *_: checked.append("sync-ready"))
    monkeypatch.setattr(cluster, "emergency_rollout", emergency_rollout)
    result = run_cli("rollback", "stage", "--sync", "--emergency", "--dry-run", cwd=repo.clone)
    assert result.code == 0, result.err
    assert "would sync Argo CD app dex-stage" in result.out
    assert checked == ["sync-ready", "stage"]
