"""cluster.py against the real kubectl talking to the fake API server, and the fake argocd CLI."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from dex_tasks import cluster, proc
from dex_tasks.config import ClusterConfig, Config
from dex_tasks.errors import RemoteError, UsageError
from tests.cluster_fixtures import IMAGE, deploy_envs
from tests.fakes.argocd_state import FakeArgo
from tests.fakes.kube_apiserver import FakeKube, image_id

pytestmark = [pytest.mark.timeout(120), pytest.mark.kubectl]

OLD, NEW = "sha-1111aaaa", "sha-2222bbbb"


def config(tmp_path: Path, **cluster_kwargs: object) -> Config:
    return Config(root=tmp_path, cluster=ClusterConfig(**cluster_kwargs))  # type: ignore[arg-type]


def test_live_ok_reports_digest(fake_kube: FakeKube, tmp_path: Path) -> None:
    deploy_envs(fake_kube, {"stage": OLD})
    check = cluster.check_live(config(tmp_path), "stage", OLD, required=True)
    assert check.checked
    assert check.ok, check.detail
    assert check.image == f"{IMAGE}:{OLD}"
    assert image_id(f"{IMAGE}:{OLD}").split("@")[1] in check.detail
    assert fake_kube.writes() == []


def test_live_refuses_and_says_what_runs_instead(fake_kube: FakeKube, tmp_path: Path) -> None:
    deploy_envs(fake_kube, {"stage": OLD})
    check = cluster.check_live(config(tmp_path), "stage", NEW, required=False)
    assert check.checked
    assert not check.ok
    assert check.image == f"{IMAGE}:{OLD}"
    assert f"runs {IMAGE}:{OLD}, not {IMAGE}:{NEW}" in check.detail


def test_live_missing_deployment(fake_kube: FakeKube, tmp_path: Path) -> None:
    fake_kube.add_namespace("dex-stage")
    check = cluster.check_live(config(tmp_path), "stage", OLD, required=True)
    assert check.checked
    assert not check.ok
    assert "deployment dex not found in namespace dex-stage" in check.detail


def test_live_rollout_incomplete(fake_kube: FakeKube, tmp_path: Path) -> None:
    deploy_envs(fake_kube, {"stage": OLD})
    fake_kube.set_stall("dex-stage", "dex")
    cfg = config(tmp_path, rollout_timeout=2)
    with pytest.raises(RemoteError, match="rollout did not complete"):
        cluster.emergency_rollout(cfg, "stage", NEW)
    check = cluster.check_live(cfg, "stage", NEW, required=True)
    assert check.checked
    assert not check.ok
    assert "rollout is not complete" in check.detail


def test_no_kubeconfig_not_required_is_unchecked(no_cluster: None, tmp_path: Path) -> None:
    check = cluster.check_live(config(tmp_path), "stage", OLD, required=False)
    assert not check.checked
    assert not check.ok
    assert "no cluster access" in check.detail
    assert "KUBECONFIG" in check.detail


def test_no_kubeconfig_required_is_exit_2(no_cluster: None, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--verify live needs cluster access"):
        cluster.check_live(config(tmp_path), "stage", OLD, required=True)


def test_unreachable_server(
    fake_kube: FakeKube, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, closed_port: int
) -> None:
    dead = tmp_path / "dead-kubeconfig"
    dead.write_text(
        Path(os.environ["KUBECONFIG"])
        .read_text(encoding="utf-8")
        .replace(fake_kube.url, f"http://127.0.0.1:{closed_port}"),
        encoding="utf-8",
    )
    monkeypatch.setenv("KUBECONFIG", str(dead))
    check = cluster.check_live(config(tmp_path), "stage", OLD, required=False)
    assert not check.checked
    assert "cannot reach the cluster" in check.detail
    with pytest.raises(RemoteError, match="cannot reach the cluster"):
        cluster.check_live(config(tmp_path), "stage", OLD, required=True)


def test_unknown_context_is_no_access(fake_kube: FakeKube, tmp_path: Path) -> None:
    deploy_envs(fake_kube, {"stage": OLD})
    assert cluster.check_live(config(tmp_path, context="fake"), "stage", OLD, required=True).ok
    check = cluster.check_live(config(tmp_path, context="nope"), "stage", OLD, required=False)
    assert not check.checked
    assert "context" in check.detail


def test_emergency_rollout_completes(fake_kube: FakeKube, tmp_path: Path) -> None:
    deploy_envs(fake_kube, {"prod": NEW})
    cluster.emergency_rollout(config(tmp_path, rollout_timeout=30), "prod", OLD)
    assert fake_kube.deployment_image("dex-prod", "dex") == f"{IMAGE}:{OLD}"
    assert fake_kube.pod_images("dex-prod") == [f"{IMAGE}:{OLD}"] * 2
    assert cluster.check_live(config(tmp_path), "prod", OLD, required=True).ok


def test_emergency_rollout_dry_run_changes_nothing(fake_kube: FakeKube, tmp_path: Path) -> None:
    deploy_envs(fake_kube, {"prod": NEW})
    with proc.session(dry_run=True):
        cluster.emergency_rollout(config(tmp_path), "prod", OLD)
    assert fake_kube.writes() == []
    assert fake_kube.deployment_image("dex-prod", "dex") == f"{IMAGE}:{NEW}"


def test_emergency_rollout_bad_names_change_nothing(fake_kube: FakeKube, tmp_path: Path) -> None:
    deploy_envs(fake_kube, {"prod": NEW})
    cfg = dataclasses.replace(config(tmp_path), container="web")
    with pytest.raises(UsageError, match="no container 'web'"):
        cluster.emergency_rollout(cfg, "prod", OLD)
    cfg = dataclasses.replace(config(tmp_path), deployment="api")
    with pytest.raises(UsageError, match="deployment api not found"):
        cluster.emergency_rollout(cfg, "prod", OLD)
    assert fake_kube.writes() == []


def test_live_with_argocd(fake_kube: FakeKube, fake_argo: FakeArgo, tmp_path: Path) -> None:
    deploy_envs(fake_kube, {"stage": OLD})
    fake_argo.add_app("dex-stage", namespace="dex-stage", image=f"{IMAGE}:{OLD}", revision="a" * 40)
    check = cluster.check_live(config(tmp_path), "stage", OLD, required=True)
    assert check.ok, check.detail
    assert "Synced/Healthy" in check.detail
    fake_argo.update_app("dex-stage", sync="OutOfSync", health="Degraded")
    check = cluster.check_live(config(tmp_path), "stage", OLD, required=True)
    assert check.checked
    assert not check.ok
    assert "Argo CD app dex-stage is OutOfSync/Degraded" in check.detail


def test_live_with_argocd_unknown_app(fake_kube: FakeKube, fake_argo: FakeArgo, tmp_path: Path) -> None:
    deploy_envs(fake_kube, {"stage": OLD})
    check = cluster.check_live(config(tmp_path), "stage", OLD, required=True)
    assert not check.ok
    assert "Argo CD app dex-stage does not exist" in check.detail


def test_argocd_sync_and_wait(fake_argo: FakeArgo, tmp_path: Path) -> None:
    fake_argo.add_app("dex-prod", namespace="dex-prod", image=f"{IMAGE}:{NEW}", sync="OutOfSync")
    fake_argo.update_app("dex-prod", target_images=[f"{IMAGE}:{OLD}"], target_revision="b" * 40)
    cluster.argocd_sync(config(tmp_path, argocd_prune=True, rollout_timeout=60), "prod")
    assert fake_argo.calls() == [
        ["app", "sync", "dex-prod", "--prune", "--timeout", "60"],
        ["app", "wait", "dex-prod", "--health", "--sync", "--timeout", "60"],
    ]
    app = fake_argo.app("dex-prod")
    assert (app["sync"], app["health"], app["images"]) == ("Synced", "Healthy", [f"{IMAGE}:{OLD}"])


def test_argocd_sync_failures(fake_argo: FakeArgo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Argo CD 2.5+ answers an unknown app with PermissionDenied (not NotFound).
    with pytest.raises(
        RemoteError, match=r"argocd app sync dex-prod failed \(exit 20\): rpc error: code = PermissionDenied"
    ):
        cluster.argocd_sync(config(tmp_path), "prod")
    fake_argo.add_app("dex-prod", namespace="dex-prod", image=f"{IMAGE}:{NEW}")
    fake_argo.update_app("dex-prod", fail="wait_timeout")
    with pytest.raises(RemoteError, match="timed out"):
        cluster.argocd_sync(config(tmp_path), "prod")
    monkeypatch.delenv("ARGOCD_SERVER")
    with pytest.raises(UsageError, match="ARGOCD_SERVER is not set"):
        cluster.argocd_sync(config(tmp_path), "prod")


def test_argocd_token_never_in_argv_or_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    argo = FakeArgo(tmp_path, token="s3cret-token-value")
    for key, value in argo.env(token="wrong-token-value").items():
        monkeypatch.setenv(key, value)
    argo.add_app("dex-prod", namespace="dex-prod", image=f"{IMAGE}:{NEW}")
    with pytest.raises(RemoteError, match="Unauthenticated") as err:
        cluster.argocd_sync(config(tmp_path), "prod")
    assert "wrong-token-value" not in str(err.value)
    assert "wrong-token-value" not in capsys.readouterr().err
    assert all("wrong-token-value" not in " ".join(c) for c in argo.calls())
    monkeypatch.setenv("ARGOCD_AUTH_TOKEN", "s3cret-token-value")
    cluster.argocd_sync(config(tmp_path), "prod")


def test_port_forward_is_always_stopped(fake_kube: FakeKube, tmp_path: Path) -> None:
    import socket  # noqa: PLC0415 - only this test talks TCP itself

    from dex_tasks.tools.kubectl import Kubectl  # noqa: PLC0415

    deploy_envs(fake_kube, {"stage": OLD})
    with socket.create_server(("127.0.0.1", 0)) as backend:
        fake_kube.set_backend("dex-stage", backend.getsockname()[1])
        kube = Kubectl()
        with kube.port_forward("dex-stage", "svc/dex", 8000) as port:
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5)
        # On an exception inside the block too.
        with (
            pytest.raises(RuntimeError, match="boom"),
            kube.port_forward("dex-stage", "svc/dex", 8000) as port2,
        ):
            raise RuntimeError("boom")
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port2), timeout=5)
        # And on Ctrl-C (KeyboardInterrupt is no Exception).
        with (
            pytest.raises(KeyboardInterrupt),
            kube.port_forward("dex-stage", "svc/dex", 8000) as port3,
        ):
            raise KeyboardInterrupt
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port3), timeout=5)


def test_port_forward_to_missing_service_says_why(fake_kube: FakeKube) -> None:
    from dex_tasks.tools.kubectl import Kubectl  # noqa: PLC0415

    fake_kube.add_namespace("dex-stage")
    with (
        pytest.raises(RemoteError, match=r'services "dex" not found'),
        Kubectl().port_forward("dex-stage", "svc/dex", 8000),
    ):
        pass


def test_emergency_rollout_connection_lost_while_waiting_says_the_image_was_set(
    fake_kube: FakeKube, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dex_tasks.errors import ClusterUnreachableError  # noqa: PLC0415
    from dex_tasks.tools.kubectl import Kubectl  # noqa: PLC0415

    deploy_envs(fake_kube, {"prod": NEW})

    def lost(self: Kubectl, namespace: str, deployment: str, *, timeout: int) -> proc.Result:
        raise ClusterUnreachableError("cannot reach the cluster: Unable to connect to the server: EOF")

    monkeypatch.setattr(Kubectl, "rollout_status", lost)
    with pytest.raises(RemoteError) as err:
        cluster.emergency_rollout(config(tmp_path), "prod", OLD)
    message = str(err.value)
    assert message.startswith(
        f"rollout did not complete: deployment dex-prod/dex now specifies {IMAGE}:{OLD}"
    )
    assert "Unable to connect to the server: EOF" in message
    assert "kubectl rollout undo deployment/dex -n dex-prod" in message
    assert fake_kube.deployment_image("dex-prod", "dex") == f"{IMAGE}:{OLD}"


@pytest.mark.parametrize("seconds", [0, -5])
def test_rollout_timeout_must_be_positive(fake_kube: FakeKube, fake_argo: FakeArgo, tmp_path: Path,
                                          seconds: int) -> None:  # fmt: skip
    # 0 means "wait for ever" to kubectl rollout status and argocd app wait: refused up front.
    deploy_envs(fake_kube, {"prod": NEW})
    fake_argo.add_app("dex-prod", namespace="dex-prod", image=f"{IMAGE}:{NEW}")
    cfg = config(tmp_path, rollout_timeout=seconds)
    with pytest.raises(UsageError, match="rollout-timeout must be a positive number of seconds"):
        cluster.emergency_rollout(cfg, "prod", OLD)
    with pytest.raises(UsageError, match="rollout-timeout must be a positive number of seconds"):
        cluster.argocd_sync(cfg, "prod")
    assert fake_kube.writes() == []
    assert fake_argo.calls() == []


def test_live_with_argocd_kustomize_name_and_digest(fake_kube: FakeKube, fake_argo: FakeArgo,
                                                    tmp_path: Path) -> None:  # fmt: skip
    # An overlay without newName leaves the kustomize name in the deployment, and Argo CD reports
    # that same image (here with a digest): the deployment check accepts it, so must Argo CD's.
    digest = "sha256:" + "cd" * 32
    fake_kube.add_deployment("dex-stage", "dex", image=f"data-literate/dex:{OLD}@{digest}")
    fake_argo.add_app("dex-stage", namespace="dex-stage", image=f"data-literate/dex:{OLD}@{digest}")
    check = cluster.check_live(config(tmp_path), "stage", OLD, required=True)
    assert check.ok, check.detail
    fake_argo.update_app("dex-stage", images=[f"data-literate/dex:{NEW}"])
    check = cluster.check_live(config(tmp_path), "stage", OLD, required=True)
    assert not check.ok
    assert f"reports images data-literate/dex:{NEW}, not {IMAGE}:{OLD}" in check.detail


def test_port_forward_never_talks_to_whoever_holds_the_picked_port(
    fake_kube: FakeKube, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another process takes the picked port before kubectl binds it: readiness by "the port
    # answers" would send the health check to that process. kubectl fails to listen; a new port
    # is picked and the forward goes to the pod.
    import socket  # noqa: PLC0415 - only this test talks TCP itself

    from dex_tasks.tools import kubectl  # noqa: PLC0415

    deploy_envs(fake_kube, {"stage": OLD})
    with (
        socket.create_server(("127.0.0.1", 0)) as squatter,
        socket.create_server(("127.0.0.1", 0)) as backend,
    ):
        fake_kube.set_backend("dex-stage", backend.getsockname()[1])
        taken = squatter.getsockname()[1]
        # Then the real pick: a port picked free can be taken by another process before kubectl
        # binds it, which the retry handles as it does for the squatter (a second fixed pick could
        # not be retried past: the test would fail on a race it is not about).
        picks, real_pick = iter([taken]), kubectl._free_port
        monkeypatch.setattr(kubectl, "_free_port", lambda: next(picks, None) or real_pick())
        with kubectl.Kubectl().port_forward("dex-stage", "svc/dex", 8000) as port:
            assert port != taken
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
            backend.settimeout(10)
            backend.accept()[0].close()  # the connection reached the pod's backend


# -- workload = "Rollout" (Argo Rollouts), and a Rollout found where no Deployment is -------------


def test_live_rollout_needs_the_stable_revision_and_no_update_in_progress(
    fake_kube: FakeKube, tmp_path: Path
) -> None:
    cfg = config(tmp_path, workload="Rollout")
    fake_kube.add_rollout("dex-stage", "dex", image=f"{IMAGE}:{OLD}")
    check = cluster.check_live(cfg, "stage", OLD, required=True)
    assert check.ok, check.detail
    assert check.detail.startswith(f"rollout dex-stage/dex runs {IMAGE}:{OLD} (rollout complete, 4 pod(s)")
    assert image_id(f"{IMAGE}:{OLD}").split("@")[1] in check.detail

    fake_kube.set_rollout_image("dex-stage", "dex", f"{IMAGE}:{NEW}")  # paused at step 1/4, 20%
    mid = cluster.check_live(cfg, "stage", NEW, required=True)
    assert not mid.ok
    assert mid.detail == (
        f"rollout dex-stage/dex Paused (CanaryPauseStep), step 1/4, weight 20% is still rolling "
        f"{IMAGE}:{NEW} out (stable {IMAGE}:{OLD}): not live yet; finish it with: "
        "dex-tasks rollout promote stage"
    )
    other = cluster.check_live(cfg, "stage", OLD, required=True)
    assert not other.ok
    assert other.detail.endswith(f"is rolling {IMAGE}:{NEW} out, not {IMAGE}:{OLD}")

    with fake_kube.lock:  # what `rollout promote --full` patches
        fake_kube.objects[("rollouts", "dex-stage", "dex")]["status"]["promoteFull"] = True
        fake_kube._store_rollout(fake_kube.rollout("dex-stage", "dex"), "MODIFIED")
    done = cluster.check_live(cfg, "stage", NEW, required=True)
    assert done.ok, done.detail
    assert cluster.check_live(cfg, "stage", OLD, required=True).detail == (
        f"rollout dex-stage/dex runs {IMAGE}:{NEW}, not {IMAGE}:{OLD}"
    )
    assert fake_kube.writes() == []


def test_live_rollout_aborted_is_not_live(fake_kube: FakeKube, tmp_path: Path) -> None:
    cfg = config(tmp_path, workload="Rollout")
    fake_kube.add_rollout("dex-stage", "dex", image=f"{IMAGE}:{OLD}")
    fake_kube.set_rollout_image("dex-stage", "dex", f"{IMAGE}:{NEW}")
    with fake_kube.lock:
        fake_kube.objects[("rollouts", "dex-stage", "dex")]["status"]["abort"] = True
        fake_kube._store_rollout(fake_kube.rollout("dex-stage", "dex"), "MODIFIED")
    check = cluster.check_live(cfg, "stage", OLD, required=True)
    assert not check.ok
    assert check.detail == (
        "rollout dex-stage/dex Degraded (RolloutAborted: Rollout aborted update to revision 2), step 0/4, "
        "weight 0% is not Healthy"
    )
    missing = cluster.check_live(cfg, "prod", OLD, required=True)
    assert missing.detail == "rollout dex not found in namespace dex-prod"


def test_live_detects_a_rollout_where_no_deployment_is(fake_kube: FakeKube, tmp_path: Path) -> None:
    fake_kube.add_rollout("dex-stage", "dex", image=f"{IMAGE}:{OLD}")
    check = cluster.check_live(config(tmp_path), "stage", OLD, required=True)  # workload: the default
    assert check.ok, check.detail
    assert check.detail.endswith(
        "(no deployment dex in dex-stage, read the Argo Rollouts Rollout of that name "
        '(set [tool.dex.cluster] workload = "Rollout" to say so))'
    )
    fake_kube.set_rollout_image("dex-stage", "dex", f"{IMAGE}:{NEW}")
    assert "not live yet" in cluster.check_live(config(tmp_path), "stage", NEW, required=True).detail


def test_without_argo_rollouts_a_missing_deployment_is_just_missing(
    fake_kube: FakeKube, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.fakes import kube_apiserver  # noqa: PLC0415 - the fake's resource table

    # A cluster without the Rollouts CRD: discovery does not list the kind, kubectl refuses it.
    monkeypatch.delitem(kube_apiserver.RESOURCES, "rollouts")
    monkeypatch.delitem(kube_apiserver.RESOURCES, "analysisruns")
    fake_kube.add_namespace("dex-stage")
    check = cluster.check_live(config(tmp_path), "stage", OLD, required=True)
    assert (check.checked, check.ok) == (True, False)
    assert check.detail == "deployment dex not found in namespace dex-stage"
