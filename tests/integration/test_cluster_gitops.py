"""promote's live check and rollback --emergency / --sync end to end: real git (bare origin),
the real kubectl against the fake API server, the fake argocd CLI."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from tests.cluster_fixtures import IMAGE, deploy_envs
from tests.gitops_fixtures import GitOpsRepo, _bump_trailers, _commit_overlay, build
from tests.helpers import git

if TYPE_CHECKING:
    from pathlib import Path

    from tests.conftest import CliRunner
    from tests.fakes.argocd_state import FakeArgo
    from tests.fakes.kube_apiserver import FakeKube

pytestmark = [pytest.mark.timeout(240), pytest.mark.kubectl]


def set_rollout_timeout(repo: GitOpsRepo, seconds: int) -> None:
    pyproject = repo.clone / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    pyproject.write_text(text + f"\n[tool.dex.cluster]\nrollout-timeout = {seconds}\n", encoding="utf-8")


def last_commit(repo: GitOpsRepo, branch: str) -> tuple[str, str]:
    """(message, patch) of the branch tip on origin, with the repo's tags spelled T0..T4 and no
    blob hashes: two fixture repos have different app commits, hence different tags."""
    message = git("log", "-1", "--format=%B", branch, cwd=repo.origin)
    patch = git("diff", f"{branch}~1", branch, cwd=repo.origin)
    patch = "\n".join(line for line in patch.splitlines() if not line.startswith("index "))
    for i, tag in enumerate(repo.tags):
        message, patch = message.replace(tag, f"T{i}"), patch.replace(tag, f"T{i}")
    return message, patch


def test_emergency_rollback_end_to_end(repo: GitOpsRepo, fake_kube: FakeKube, run_cli: CliRunner,
                                       tmp_path: Path) -> None:  # fmt: skip
    t = repo.tags
    # stage: git says T1 (a rollback from T2); last known good is T0. The cluster runs T1.
    deploy_envs(fake_kube, {"stage": t[1]})
    result = run_cli("rollback", "stage", "--emergency", cwd=repo.clone)
    assert result.code == 0, result.err
    # The cluster runs T0 (kubectl set image + a completed rollout) ...
    assert fake_kube.deployment_image("dex-stage", "dex") == f"{IMAGE}:{t[0]}"
    assert fake_kube.pod_images("dex-stage") == [f"{IMAGE}:{t[0]}"] * 2
    assert ("PATCH", "/apis/apps/v1/namespaces/dex-stage/deployments/dex") in fake_kube.writes()
    # ... and git matches, so Argo CD's self-heal will not undo it.
    assert repo.tag("stage") == t[0]
    emergency = last_commit(repo, "main")
    # The same commit as a normal rollback of an identical repository.
    (tmp_path / "normal").mkdir()
    other = build(tmp_path / "normal")
    normal = run_cli("rollback", "stage", cwd=other.clone)
    assert normal.code == 0, normal.err
    normal_message, normal_patch = last_commit(other, "main")
    assert emergency[1] == normal_patch
    assert emergency[0].splitlines()[0] == normal_message.splitlines()[0] == "fix: rollback stage to T0"
    trailers = [line for line in emergency[0].splitlines() if line.startswith("Dex-")]
    assert trailers == [line for line in normal_message.splitlines() if line.startswith("Dex-")]
    assert "Dex-Action: rollback" in trailers
    # status agrees: no drift.
    status = run_cli("status", "stage", "--check", cwd=repo.clone)
    assert status.code == 0, status.out + status.err


def test_emergency_rollback_stalled_rollout_is_exit_4_and_git_untouched(
    repo: GitOpsRepo, fake_kube: FakeKube, run_cli: CliRunner
) -> None:
    t = repo.tags
    deploy_envs(fake_kube, {"stage": t[1]})
    fake_kube.set_stall("dex-stage", "dex")
    set_rollout_timeout(repo, 3)
    before = repo.snapshot()
    result = run_cli("rollback", "stage", "--emergency", "--json", cwd=repo.clone)
    assert result.code == 4
    assert "rollout did not complete" in result.err
    assert "now runs" not in result.out + result.err  # nothing claimed
    # The deployment already names the rollback image: the one error line says how git catches up.
    assert json.loads(result.out)["error"].endswith(
        f"; once it runs, make git match with: dex-tasks rollback stage {t[0]} --direct"
    )
    assert repo.snapshot() == before
    assert repo.tag("stage") == t[1]


def test_emergency_rollback_without_cluster_changes_nothing(repo: GitOpsRepo, no_cluster: None,
                                                            run_cli: CliRunner) -> None:  # fmt: skip
    before = repo.snapshot()
    result = run_cli("rollback", "stage", "--emergency", cwd=repo.clone)
    assert result.code == 2
    assert "needs cluster access" in result.err
    assert repo.snapshot() == before


def test_emergency_rollback_dry_run(repo: GitOpsRepo, fake_kube: FakeKube, run_cli: CliRunner) -> None:
    deploy_envs(fake_kube, {"stage": repo.tags[1]})
    before = repo.snapshot()
    result = run_cli("rollback", "stage", "--emergency", "--dry-run", cwd=repo.clone)
    assert result.code == 0, result.err
    assert fake_kube.writes() == []
    assert repo.snapshot() == before


def test_promote_refused_when_stage_runs_something_else(repo: GitOpsRepo, fake_kube: FakeKube,
                                                        run_cli: CliRunner) -> None:  # fmt: skip
    t = repo.tags
    # stage's overlay says T1, but the cluster runs T2 (the rolled-back tag is still live).
    deploy_envs(fake_kube, {"stage": t[2], "prod": t[0]})
    before = repo.snapshot()
    result = run_cli("promote", "stage", "prod", cwd=repo.clone)
    assert result.code == 1
    assert f"runs {IMAGE}:{t[2]}, not {IMAGE}:{t[1]}" in result.err
    assert repo.snapshot() == before
    assert repo.tag("prod") == t[0]
    assert fake_kube.writes() == []


def test_promote_refused_when_rollout_incomplete(repo: GitOpsRepo, fake_kube: FakeKube,
                                                 run_cli: CliRunner) -> None:  # fmt: skip
    t = repo.tags
    deploy_envs(fake_kube, {"stage": t[0], "prod": t[0]})
    fake_kube.set_stall("dex-stage", "dex")
    # Someone started a rollout of T1 (what stage's overlay says) that never finishes.
    from dex_tasks.tools.kubectl import Kubectl  # noqa: PLC0415 - the product's own wrapper

    Kubectl().set_image("dex-stage", "dex", "dex", f"{IMAGE}:{t[1]}")
    before = repo.snapshot()
    result = run_cli("promote", "stage", "prod", "--verify", "live", cwd=repo.clone)
    assert result.code == 1
    assert "rollout is not complete" in result.err
    assert repo.snapshot() == before


def test_promote_verify_live_without_cluster_is_exit_2(repo: GitOpsRepo, no_cluster: None,
                                                        run_cli: CliRunner) -> None:  # fmt: skip
    before = repo.snapshot()
    result = run_cli("promote", "stage", "prod", "--verify", "live", cwd=repo.clone)
    assert result.code == 2
    assert "needs cluster access" in result.err
    assert repo.snapshot() == before


def test_promote_without_cluster_says_only_git_was_checked(repo: GitOpsRepo, no_cluster: None,
                                                           run_cli: CliRunner) -> None:  # fmt: skip
    result = run_cli("promote", "stage", "prod", "--dry-run", cwd=repo.clone)
    assert result.code == 0, result.err
    assert (result.out + result.err).count("only git was checked") == 1


def test_promote_live_ok_with_argocd(repo: GitOpsRepo, fake_kube: FakeKube, fake_argo: FakeArgo,
                                     run_cli: CliRunner) -> None:  # fmt: skip
    t = repo.tags
    deploy_envs(fake_kube, {"stage": t[1], "prod": t[0]})
    fake_argo.add_app("dex-stage", namespace="dex-stage", image=f"{IMAGE}:{t[1]}", sync="OutOfSync")
    refused = run_cli("promote", "stage", "prod", "--dry-run", cwd=repo.clone)
    assert refused.code == 1
    assert "Argo CD app dex-stage is OutOfSync/Healthy" in refused.err
    fake_argo.update_app("dex-stage", sync="Synced")
    result = run_cli("promote", "stage", "prod", "--dry-run", cwd=repo.clone)
    assert result.code == 0, result.err
    assert "Synced/Healthy" in result.out + result.err


def test_rollback_sync_calls_argocd(repo: GitOpsRepo, fake_argo: FakeArgo, run_cli: CliRunner) -> None:
    t = repo.tags
    fake_argo.add_app("dex-stage", namespace="dex-stage", image=f"{IMAGE}:{t[1]}", sync="OutOfSync")
    fake_argo.update_app("dex-stage", target_images=[f"{IMAGE}:{t[0]}"])
    result = run_cli("rollback", "stage", "--sync", cwd=repo.clone)
    assert result.code == 0, result.err
    assert repo.tag("stage") == t[0]
    assert fake_argo.calls() == [
        ["app", "get", "dex-stage", "-o", "json"],  # checked before git changes
        ["app", "sync", "dex-stage", "--timeout", "300"],
        ["app", "wait", "dex-stage", "--health", "--sync", "--timeout", "300"],
    ]
    assert fake_argo.app("dex-stage")["images"] == [f"{IMAGE}:{t[0]}"]


def test_rollback_sync_failure_is_exit_4_after_the_push(repo: GitOpsRepo, fake_argo: FakeArgo,
                                                        run_cli: CliRunner) -> None:  # fmt: skip
    fake_argo.add_app("dex-stage", namespace="dex-stage", image=f"{IMAGE}:{repo.tags[1]}")
    fake_argo.update_app("dex-stage", fail="sync_error")
    result = run_cli("rollback", "stage", "--sync", cwd=repo.clone)
    assert result.code == 4
    assert "argocd app sync dex-stage failed" in result.err
    assert repo.tag("stage") == repo.tags[0]  # the rollback itself landed; only the sync failed


def test_emergency_rollback_push_rejected_prints_the_follow_up(
    repo: GitOpsRepo, fake_kube: FakeKube, run_cli: CliRunner
) -> None:
    t = repo.tags
    deploy_envs(fake_kube, {"stage": t[1]})
    hook = repo.origin / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'protected branch: pushes are disabled' >&2\nexit 1\n", encoding="utf-8")
    hook.chmod(0o755)
    result = run_cli("rollback", "stage", "--emergency", cwd=repo.clone)
    assert result.code == 4, result.err
    # The cluster was rolled back; git could not be made to match: say exactly what to run.
    assert fake_kube.deployment_image("dex-stage", "dex") == f"{IMAGE}:{t[0]}"
    assert repo.tag("stage") == t[1]
    assert f"the cluster runs {t[0]} but git was not updated" in result.err
    assert f"dex-tasks rollback stage {t[0]} --direct" in result.err


def set_context(repo: GitOpsRepo, context: str) -> None:
    pyproject = repo.clone / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    pyproject.write_text(text + f'\n[tool.dex.cluster]\ncontext = "{context}"\n', encoding="utf-8")


def test_promote_verify_live_unknown_context_is_exit_2(repo: GitOpsRepo, fake_kube: FakeKube,
                                                       run_cli: CliRunner) -> None:  # fmt: skip
    # A context the kubeconfig does not have is configuration (exit 2), not a remote failure (4).
    deploy_envs(fake_kube, {"stage": repo.tags[1]})
    set_context(repo, "nope")
    before = repo.snapshot()
    result = run_cli("promote", "stage", "prod", "--verify", "live", "--json", cwd=repo.clone)
    assert result.code == 2, result.err
    error_lines = [line for line in result.err.splitlines() if "error:" in line]
    expected = (
        'dex-tasks promote: error: unusable kubeconfig (context nope): error: context "nope" does not exist'
    )
    assert error_lines == [expected]
    assert repo.snapshot() == before
    assert fake_kube.writes() == []


def test_promote_forbidden_namespace(repo: GitOpsRepo, fake_kube: FakeKube, run_cli: CliRunner) -> None:
    # RBAC denies the runner's service account in dex-stage: no access, said in one line; with
    # --verify live exit 4, without it "only git was checked" (never "deployment not found").
    deploy_envs(fake_kube, {"stage": repo.tags[1]})
    fake_kube.forbid("dex-stage")
    before = repo.snapshot()
    live = run_cli("promote", "stage", "prod", "--verify", "live", "--dry-run", cwd=repo.clone)
    assert live.code == 4, live.err
    line = live.err.strip().splitlines()[-1]
    assert line.startswith(
        "dex-tasks promote: error: no access to the cluster: Error from server (Forbidden)"
    )
    relaxed = run_cli("promote", "stage", "prod", "--dry-run", cwd=repo.clone)
    assert relaxed.code == 0, relaxed.err
    assert "only git was checked" in relaxed.out + relaxed.err
    assert "not found" not in relaxed.out + relaxed.err
    assert repo.snapshot() == before
    assert fake_kube.writes() == []


def test_promote_live_argocd_auth_failure_is_exit_4_not_a_refusal(
    repo: GitOpsRepo, fake_kube: FakeKube, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_cli: CliRunner
) -> None:
    # Argo CD cannot be asked (a wrong token): a remote failure (exit 4, one line), not "stage
    # runs something else" (exit 1).
    from tests.fakes.argocd_state import FakeArgo  # noqa: PLC0415

    t = repo.tags
    deploy_envs(fake_kube, {"stage": t[1]})
    argo = FakeArgo(tmp_path / "argo", token="right")
    for key, value in argo.env(token="wrong").items():
        monkeypatch.setenv(key, value)
    argo.add_app("dex-stage", namespace="dex-stage", image=f"{IMAGE}:{t[1]}")
    before = repo.snapshot()
    result = run_cli("promote", "stage", "prod", cwd=repo.clone)
    assert result.code == 4, result.err
    last = result.err.strip().splitlines()[-1]
    assert last.startswith("dex-tasks promote: error: argocd app get dex-stage failed (exit 20): rpc error: ")
    assert "Unauthenticated" in last
    assert repo.snapshot() == before


def test_promote_live_argocd_server_without_cli_is_exit_3(
    repo: GitOpsRepo, fake_kube: FakeKube, monkeypatch: pytest.MonkeyPatch, run_cli: CliRunner
) -> None:
    # ARGOCD_SERVER says the project uses Argo CD: without the CLI the live check would pass on
    # the deployment alone - exit 3 instead, nothing written.
    from dex_tasks import proc  # noqa: PLC0415

    real_which = proc.which
    monkeypatch.setattr(proc, "which", lambda tool: None if tool == "argocd" else real_which(tool))
    monkeypatch.setenv("ARGOCD_SERVER", "argocd.example.invalid")
    deploy_envs(fake_kube, {"stage": repo.tags[1]})
    before = repo.snapshot()
    result = run_cli("promote", "stage", "prod", "--verify", "live", cwd=repo.clone)
    assert result.code == 3, result.err
    assert "required tool 'argocd' was not found" in result.err
    assert repo.snapshot() == before


def test_emergency_rollback_dry_run_fails_where_the_real_run_would(
    repo: GitOpsRepo, no_cluster: None, run_cli: CliRunner
) -> None:
    # No kubeconfig: the real run refuses (exit 2) before touching anything, so must the dry run.
    before = repo.snapshot()
    result = run_cli("rollback", "stage", "--emergency", "--dry-run", cwd=repo.clone)
    assert result.code == 2, result.err
    assert "needs cluster access" in result.err
    assert repo.snapshot() == before


def test_rollback_sync_without_argocd_refuses_before_git_changes(
    repo: GitOpsRepo, no_cluster: None, run_cli: CliRunner
) -> None:
    # No argocd CLI on PATH: --sync could never work, so nothing is pushed (exit 3), not a push
    # followed by a failed sync.
    before = repo.snapshot()
    result = run_cli("rollback", "stage", "--sync", cwd=repo.clone)
    assert result.code == 3, result.err
    assert "argocd" in result.err
    assert repo.snapshot() == before


def test_rollback_sync_unknown_app_refuses_before_git_changes(
    repo: GitOpsRepo, fake_argo: FakeArgo, run_cli: CliRunner
) -> None:
    before = repo.snapshot()
    result = run_cli("rollback", "stage", "--sync", cwd=repo.clone)
    assert result.code == 2, result.err
    assert "dex-stage" in result.err
    assert repo.snapshot() == before
    assert all(call[:2] == ["app", "get"] for call in fake_argo.calls())  # asked, never synced


def _t3_recorded_then_bad_t4(repo: GitOpsRepo, fake_kube: FakeKube, dex_digest: str) -> None:
    """stage deployed T3 with ``Dex-Digest: <dex_digest>`` recorded, then T4 (the bad one), which runs."""
    t, w = repo.tags, repo.writer
    git("fetch", "--quiet", "origin", cwd=w)
    git("checkout", "--quiet", "-B", "main", "origin/main", cwd=w)
    _commit_overlay(w, "stage", t[3], f"chore: update stage image to {t[3]}",
                    [*_bump_trailers("stage", t[3], t[1]), f"Dex-Digest: {dex_digest}"])  # fmt: skip
    _commit_overlay(
        w, "stage", t[4], f"chore: update stage image to {t[4]}", _bump_trailers("stage", t[4], t[3])
    )
    git("push", "--quiet", "origin", "HEAD:refs/heads/main", cwd=w)
    deploy_envs(fake_kube, {"stage": t[4]})


def test_emergency_rollback_pins_the_digest_it_knows(
    repo: GitOpsRepo, fake_kube: FakeKube, run_cli: CliRunner
) -> None:
    t = repo.tags
    digest = "sha256:" + "3c" * 32
    _t3_recorded_then_bad_t4(repo, fake_kube, digest)
    result = run_cli("rollback", "stage", "--emergency", cwd=repo.clone)
    assert result.code == 0, result.err
    pinned = f"{IMAGE}:{t[3]}@{digest}"
    assert f"set image deployment/dex dex={pinned}" in result.err
    assert fake_kube.deployment_image("dex-stage", "dex") == pinned
    assert f"stage now runs {t[3]}@{digest} (kubectl)" in result.out
    assert repo.tag("stage") == t[3]


@pytest.mark.parametrize("recorded", ["sha256:3c3c", "latest", "sha256:" + "3C" * 32, "md5:" + "3c" * 16])
def test_emergency_rollback_ignores_a_digest_trailer_that_is_no_digest(
    repo: GitOpsRepo, fake_kube: FakeKube, run_cli: CliRunner, recorded: str
) -> None:
    # A hand-written Dex-Digest that is no sha256 digest must not become `image:tag@<junk>` in the
    # cluster (InvalidImageName: an emergency made worse) nor a trailer of the rollback commit.
    t = repo.tags
    _t3_recorded_then_bad_t4(repo, fake_kube, recorded)
    result = run_cli("rollback", "stage", "--emergency", cwd=repo.clone)
    assert result.code == 0, result.err
    assert fake_kube.deployment_image("dex-stage", "dex") == f"{IMAGE}:{t[3]}"
    assert repo.tag("stage") == t[3]
    assert recorded not in repo.message("main")
