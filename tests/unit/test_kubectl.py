"""Parsing in tools/kubectl.py (no processes): deployments, pods, image refs, rollout rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dex_tasks import errors, proc
from dex_tasks.errors import CommandFailed, RemoteError
from dex_tasks.tools import kubectl
from dex_tasks.tools.kubectl import Deployment, ImageRef, Kubectl, Pod


def deployment_json(**status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "dex", "namespace": "dex-prod", "generation": 3},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "dex"}},
            "template": {
                "spec": {
                    "containers": [
                        {"name": "sidecar", "image": "envoy:1"},
                        {"name": "dex", "image": "ghcr.io/data-literate/dex:sha-1234567"},
                    ]
                }
            },
        },
        "status": {
            "observedGeneration": 3,
            "replicas": 2,
            "updatedReplicas": 2,
            "availableReplicas": 2,
            **status,
        },
    }


@pytest.mark.parametrize(
    ("image", "repository", "tag", "digest"),
    [
        ("ghcr.io/data-literate/dex:sha-1234567", "ghcr.io/data-literate/dex", "sha-1234567", ""),
        ("localhost:5000/dex:pr-3", "localhost:5000/dex", "pr-3", ""),
        ("localhost:5000/dex", "localhost:5000/dex", "", ""),
        ("dex@sha256:abc", "dex", "", "sha256:abc"),
        ("ghcr.io/x/dex:sha-1234567@sha256:abc", "ghcr.io/x/dex", "sha-1234567", "sha256:abc"),
    ],
)
def test_image_ref(image: str, repository: str, tag: str, digest: str) -> None:
    assert ImageRef.parse(image) == ImageRef(repository=repository, tag=tag, digest=digest)


def test_deployment_parse_picks_the_container() -> None:
    d = Deployment.from_json(deployment_json(), "dex")
    assert d.image == "ghcr.io/data-literate/dex:sha-1234567"
    assert d.containers == ("sidecar", "dex")
    assert d.selector == {"app": "dex"}
    assert d.rollout_state() == (True, "rollout complete")
    assert Deployment.from_json(deployment_json(), "web").image is None


@pytest.mark.parametrize(
    ("status", "why"),
    [
        ({"observedGeneration": 2}, "spec update to be observed"),
        ({"updatedReplicas": 1}, "1 of 2 new replicas"),
        ({"replicas": 3}, "1 old replicas are pending termination"),
        ({"availableReplicas": 1}, "1 of 2 updated replicas are available"),
        (
            {"conditions": [{"type": "Progressing", "reason": "ProgressDeadlineExceeded"}]},
            "progress deadline",
        ),
    ],
)
def test_rollout_rules_like_kubectl(status: dict[str, Any], why: str) -> None:
    complete, reason = Deployment.from_json(deployment_json(**status), "dex").rollout_state()
    assert not complete
    assert why in reason


def test_pod_digest_and_terminating() -> None:
    pod = Pod.from_json(
        {
            "metadata": {"name": "dex-1", "deletionTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"containers": [{"name": "dex", "image": "ghcr.io/x/dex:sha-1234567"}]},
            "status": {
                "containerStatuses": [{"name": "dex", "imageID": "ghcr.io/x/dex@sha256:feed", "ready": True}]
            },
        },
        "dex",
    )
    assert pod.digest == "sha256:feed"
    assert pod.terminating
    assert pod.ready
    assert Pod.from_json({"metadata": {"name": "p"}}, "dex").digest is None


def test_argv_context() -> None:
    assert Kubectl().argv("get", "ns") == ("kubectl", "get", "ns")
    assert Kubectl(context="prod").argv("get", "ns") == ("kubectl", "--context", "prod", "get", "ns")


def test_kubeconfig_problem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr(Path, "home", lambda: tmp_path)
    assert "KUBECONFIG unset" in (kubectl.kubeconfig_problem({}) or "")
    assert "names no existing file" in (kubectl.kubeconfig_problem({"KUBECONFIG": str(tmp_path / "x")}) or "")
    config = tmp_path / "config"
    config.write_text("apiVersion: v1\n", encoding="utf-8")
    assert kubectl.kubeconfig_problem({"KUBECONFIG": str(config)}) is None
    assert kubectl.kubeconfig_problem({"KUBERNETES_SERVICE_HOST": "10.0.0.1"}) is None
    (tmp_path / ".kube").mkdir()
    (tmp_path / ".kube" / "config").write_text("apiVersion: v1\n", encoding="utf-8")
    assert kubectl.kubeconfig_problem({}) is None


@pytest.mark.parametrize(
    "stderr",
    [
        "The connection to the server 127.0.0.1:6443 was refused - did you specify the right host or port?",
        "Unable to connect to the server: dial tcp: lookup k8s.example: no such host",
        'error: context "nope" does not exist',
        "error: You must be logged in to the server (Unauthorized)",
    ],
)
def test_unreachable_messages(stderr: str) -> None:
    assert kubectl._is_unreachable(stderr)


def test_not_found_is_not_unreachable() -> None:
    text = 'Error from server (NotFound): deployments.apps "dex" not found'
    assert not kubectl._is_unreachable(text)
    assert kubectl._is_not_found(text)


def test_check_context() -> None:
    assert kubectl.check_context("prod") == "prod"
    with pytest.raises(Exception, match="invalid kubectl context"):
        kubectl.check_context("--kubeconfig=/etc/x")


def _pod(name: str, image: str, *, phase: str = "Running", reason: str = "") -> Pod:
    status: dict[str, Any] = {
        "phase": phase,
        "containerStatuses": [{"name": "dex", "imageID": "ghcr.io/x/dex@sha256:feed", "ready": True}],
    }
    if reason:
        status["reason"] = reason
    return Pod.from_json(
        {
            "metadata": {"name": name},
            "spec": {"containers": [{"name": "dex", "image": image}]},
            "status": status,
        },
        "dex",
    )


def test_live_check_ignores_evicted_and_completed_pods(tmp_path: Path) -> None:
    # An old ReplicaSet's evicted pod (phase Failed, reason Evicted) stays listed with the old
    # image until the pod GC removes it: the rollout is complete and the check must say so.
    from dex_tasks import cluster  # noqa: PLC0415
    from dex_tasks.config import Config  # noqa: PLC0415

    new = "ghcr.io/data-literate/dex:sha-1234567"
    pods = [
        _pod("dex-new-1", new),
        _pod("dex-new-2", new),
        _pod("dex-old-1", "ghcr.io/data-literate/dex:sha-7654321", phase="Failed", reason="Evicted"),
        _pod("dex-job-1", "ghcr.io/data-literate/dex:sha-7654321", phase="Succeeded"),
    ]
    assert pods[2].finished
    assert not pods[0].finished
    deployment = Deployment.from_json(deployment_json(), "dex")
    check = cluster._judge(Config(root=tmp_path), "prod", "sha-1234567", deployment=deployment, pods=pods)
    assert check.ok, check.detail
    assert "2 pod(s)" in check.detail
    # A running pod with another image still fails the check.
    stray = [*pods, _pod("dex-old-2", "ghcr.io/data-literate/dex:sha-7654321")]
    check = cluster._judge(Config(root=tmp_path), "prod", "sha-1234567", deployment=deployment, pods=stray)
    assert not check.ok
    assert "pods still run ghcr.io/data-literate/dex:sha-7654321" in check.detail


@pytest.mark.parametrize(
    "stderr",
    [
        'error: context "nope" does not exist',
        "error: EOF",  # kubectl prompted "Please enter Username:" (a user without credentials)
        "error: no configuration has been provided, try setting KUBERNETES_MASTER environment variable",
    ],
)
def test_bad_kubeconfig_is_exit_2(stderr: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(argv: Any, **_: Any) -> Any:
        raise CommandFailed("failed", argv=argv, returncode=1, stderr_tail=stderr)

    monkeypatch.setattr(proc, "run", fail)
    with pytest.raises(errors.KubeconfigError) as info:
        Kubectl(context="x").deployment("dex-prod", "dex", "dex")
    assert info.value.exit_code == 2
    assert isinstance(info.value, errors.ClusterAccessError)  # status: "live unknown"
    assert not isinstance(info.value, errors.RemoteError)  # exit 2 by its class, not an override
    assert "\n" not in str(info.value)


def test_forbidden_is_no_access_not_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    stderr = (
        'Error from server (Forbidden): deployments.apps "dex" is forbidden: User "ci" cannot get '
        'resource "deployments" in API group "apps" in the namespace "dex-prod"'
    )
    assert kubectl._is_unreachable(stderr)

    def fail(argv: Any, **_: Any) -> Any:
        raise CommandFailed("failed", argv=argv, returncode=1, stderr_tail=stderr)

    monkeypatch.setattr(proc, "run", fail)
    with pytest.raises(errors.ForbiddenError, match="no access to the cluster") as info:
        Kubectl().deployment("dex-prod", "dex", "dex")
    assert info.value.exit_code == 4


def test_other_server_errors_are_one_line_remote_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    tail = (
        "E1127 05:44:10 memcache.go:265] some warning\n"
        'Error from server (InternalError): an error on the server ("etcdserver: request timed out") '
        "has prevented the request from succeeding (get deployments.apps dex)"
    )

    def fail(argv: Any, **_: Any) -> Any:
        raise CommandFailed("failed\n" + tail, argv=argv, returncode=1, stderr_tail=tail)

    monkeypatch.setattr(proc, "run", fail)
    with pytest.raises(RemoteError) as info:
        Kubectl().deployment("dex-prod", "dex", "dex")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("kubectl get deployment dex in namespace dex-prod failed: ")
    assert "etcdserver: request timed out" in message
    assert info.value.exit_code == 4


CONFLICT = (
    'Error from server (Conflict): Operation cannot be fulfilled on namespaces "dex-pr-5": The system is '
    "ensuring all content is removed from this namespace.  Upon completion, this namespace will "
    "automatically be purged by the system."
)


@pytest.mark.parametrize(
    ("stderr", "outcome"),
    [
        ('Error from server (NotFound): namespaces "dex-pr-5" not found', "gone"),
        (CONFLICT, "terminating"),
    ],
)
def test_delete_namespace_gone_or_terminating_is_not_a_failure(
    stderr: str, outcome: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(argv: Any, **_: Any) -> Any:
        raise CommandFailed("failed", argv=argv, returncode=1, stderr_tail=stderr)

    monkeypatch.setattr(proc, "run", fail)
    assert Kubectl().delete_namespace("dex-pr-5") == outcome


def test_live_check_refuses_a_deployment_scaled_to_zero(tmp_path: Path) -> None:
    # `kubectl rollout status` says "successfully rolled out" for 0 replicas, but nothing runs
    # the tag: promoting from such an env would promote something nobody ran.
    from dex_tasks import cluster  # noqa: PLC0415
    from dex_tasks.config import Config  # noqa: PLC0415

    data = deployment_json(replicas=0, updatedReplicas=0, availableReplicas=0)
    data["spec"]["replicas"] = 0
    deployment = Deployment.from_json(data, "dex")
    assert deployment.rollout_state() == (True, "rollout complete")
    check = cluster._judge(Config(root=tmp_path), "stage", "sha-1234567", deployment=deployment, pods=[])
    assert check.checked
    assert not check.ok
    assert "scaled to 0 replicas" in check.detail


def test_http_health_requests_do_not_outlive_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    import time  # noqa: PLC0415

    import requests  # noqa: PLC0415

    from dex_tasks import cluster  # noqa: PLC0415

    timeouts: list[float] = []

    def get(url: str, **kwargs: Any) -> Any:
        timeouts.append(kwargs["timeout"])
        raise requests.ConnectionError("refused")

    monkeypatch.setattr(requests, "get", get)
    health = cluster.http_health(
        "http://127.0.0.1:9/health", attempts=3, interval=0, request_timeout=10, deadline=time.monotonic() + 3
    )
    assert not health.ok
    assert timeouts
    assert all(1.0 <= t <= 3 for t in timeouts)
    timeouts.clear()
    cluster.http_health("http://127.0.0.1:9/health", attempts=2, interval=0, request_timeout=10)
    assert timeouts == [10, 10]
