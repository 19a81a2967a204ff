"""A canary and a blue-green delivery end to end, git authoritative: ``bump-overlay`` puts the tag in
git, "Argo CD" applies it (the Rollout's template gets the tag the overlay names on origin), ``rollout
status`` shows the paused step or the preview, ``rollout promote`` makes it Healthy and ``verify``
passes; or ``rollout abort`` makes it Degraded, commits the overlay back to the stable tag on origin,
``verify`` fails, and applying that commit makes the Rollout Healthy on the stable image again.

Real git and kubectl; the fake API server with the controller stand-in of
tests/fakes/rollouts_controller.py; a local HTTP server for the health URL.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from tests.cluster_fixtures import IMAGE
from tests.fakes.kube_apiserver import ROLLOUT_HASH_LABEL, image_id
from tests.helpers import serving
from tests.integration.test_cluster_rollouts import STATUS_PATH, _Ok, use_rollouts

SPEC_PATH = "/apis/argoproj.io/v1alpha1/namespaces/dex-stage/rollouts/dex"

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.conftest import CliRunner
    from tests.fakes.kube_apiserver import FakeKube
    from tests.gitops_fixtures import GitOpsRepo

pytestmark = [pytest.mark.timeout(240), pytest.mark.kubectl]

NS = "dex-stage"


@pytest.fixture
def health_url() -> Iterator[str]:
    from http.server import ThreadingHTTPServer  # noqa: PLC0415 - only this fixture serves

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    with serving(server):
        yield f"http://127.0.0.1:{server.server_address[1]}/health"


def argo_sync(repo: GitOpsRepo, kube: FakeKube) -> str:
    """What Argo CD's automated sync does with stage's overlay: the Rollout's pod template gets the
    image git names (a template change: the controller starts a new revision). Returns the tag."""
    tag = repo.tag("stage")
    assert tag
    image = f"{IMAGE}:{tag}"
    template = kube.rollout(NS, "dex")["spec"]["template"]["spec"]["containers"][0]["image"]
    if template != image:
        kube.set_rollout_image(NS, "dex", image)
    return tag


def cli_json(run_cli: CliRunner, repo: GitOpsRepo, *args: str, code: int = 0) -> dict[str, Any]:
    result = run_cli(*args, "--json", cwd=repo.clone)
    assert result.code == code, result.err
    data: dict[str, Any] = json.loads(result.out)
    return data


def start(repo: GitOpsRepo, kube: FakeKube, run_cli: CliRunner, strategy: str) -> tuple[str, str]:
    """stage runs its overlay's tag (T1) Healthy; bump-overlay to T3, applied. Returns (stable, new)."""
    t = repo.tags
    use_rollouts(repo)
    assert repo.tag("stage") == t[1]
    kube.add_rollout(NS, "dex", image=f"{IMAGE}:{t[1]}", strategy=strategy)
    assert kube.rollout(NS, "dex")["status"]["phase"] == "Healthy"
    bumped = cli_json(run_cli, repo, "bump-overlay", "stage", t[3], "--direct")
    assert bumped["pushed"] is True
    assert argo_sync(repo, kube) == t[3]
    return t[1], t[3]


def test_canary_bump_promote_verify(
    repo: GitOpsRepo, fake_kube: FakeKube, run_cli: CliRunner, health_url: str
) -> None:
    stable, new = start(repo, fake_kube, run_cli, "canary")
    data = cli_json(run_cli, repo, "rollout", "status", "stage")
    assert (data["phase"], data["step"], data["steps"], data["weight"]) == ("Paused", 1, 4, 20)
    assert (data["stable_image"], data["canary_image"]) == (f"{IMAGE}:{stable}", f"{IMAGE}:{new}")
    assert data["canary_digest"] == image_id(f"{IMAGE}:{new}").split("@")[1]
    paused = cli_json(run_cli, repo, "verify", "stage", "--url", health_url, "--interval", "0", code=1)
    assert paused["rollout"]["phase"] == "Paused"

    cli_json(run_cli, repo, "rollout", "promote", "stage")
    data = cli_json(run_cli, repo, "rollout", "status", "stage", "--watch", "--interval", "0.2")
    assert (data["phase"], data["step"], data["weight"]) == ("Paused", 3, 50)
    cli_json(run_cli, repo, "rollout", "promote", "stage")
    fake_kube.wait_rollout(NS, "dex", "Healthy")
    data = cli_json(run_cli, repo, "rollout", "status", "stage")
    assert (data["phase"], data["stable_image"], data["canary_image"]) == ("Healthy", f"{IMAGE}:{new}", None)
    verified = cli_json(run_cli, repo, "verify", "stage", "--url", health_url, "--interval", "0")
    assert verified["ok"] is True
    assert verified["rollout"]["phase"] == "Healthy"
    assert repo.tag("stage") == new  # git and the cluster agree
    assert fake_kube.pod_images(NS) == [f"{IMAGE}:{new}"] * 4


def test_blue_green_bump_promote_verify(
    repo: GitOpsRepo, fake_kube: FakeKube, run_cli: CliRunner, health_url: str
) -> None:
    stable, new = start(repo, fake_kube, run_cli, "bluegreen")
    ro = fake_kube.rollout(NS, "dex")
    old_hash, new_hash = ro["status"]["stableRS"], ro["status"]["currentPodHash"]
    assert old_hash != new_hash
    # The preview Service reaches the new ReplicaSet, the active one still the stable one.
    assert fake_kube.service_selector(NS, "dex-preview")[ROLLOUT_HASH_LABEL] == new_hash
    assert fake_kube.service_selector(NS, "dex")[ROLLOUT_HASH_LABEL] == old_hash
    data = cli_json(run_cli, repo, "rollout", "status", "stage")
    assert (data["strategy"], data["phase"], data["message"]) == ("bluegreen", "Paused", "BlueGreenPause")
    assert (data["step"], data["steps"], data["weight"]) == (None, None, None)
    assert (data["stable_image"], data["preview_image"]) == (f"{IMAGE}:{stable}", f"{IMAGE}:{new}")
    assert data["preview_digest"] == image_id(f"{IMAGE}:{new}").split("@")[1]
    assert data["stable_digest"] == image_id(f"{IMAGE}:{stable}").split("@")[1]
    assert "canary_image" not in data
    assert "canary_digest" not in data
    # Both revisions run side by side while paused: the preview at full size.
    assert sorted(fake_kube.pod_images(NS)) == sorted([f"{IMAGE}:{stable}"] * 4 + [f"{IMAGE}:{new}"] * 4)
    cli_json(run_cli, repo, "verify", "stage", "--url", health_url, "--interval", "0", code=1)

    promoted = cli_json(run_cli, repo, "rollout", "promote", "stage")
    assert promoted["done"] == ["pauseConditions cleared"]
    ro = fake_kube.wait_rollout(NS, "dex", "Healthy")
    assert ro["status"]["stableRS"] == new_hash
    assert ro["status"]["blueGreen"] == {"activeSelector": new_hash, "previewSelector": new_hash}
    assert fake_kube.service_selector(NS, "dex")[ROLLOUT_HASH_LABEL] == new_hash
    data = cli_json(run_cli, repo, "rollout", "status", "stage")
    assert (data["phase"], data["stable_image"], data["preview_image"]) == ("Healthy", f"{IMAGE}:{new}", None)
    assert cli_json(run_cli, repo, "verify", "stage", "--url", health_url, "--interval", "0")["ok"] is True
    assert fake_kube.pod_images(NS) == [f"{IMAGE}:{new}"] * 4


@pytest.mark.parametrize("strategy", ["canary", "bluegreen"])
def test_abort_rolls_git_back_and_verify_fails_until_it_is_applied(
    repo: GitOpsRepo, fake_kube: FakeKube, run_cli: CliRunner, health_url: str, strategy: str
) -> None:
    stable, new = start(repo, fake_kube, run_cli, strategy)
    ro = fake_kube.rollout(NS, "dex")
    old_hash, new_hash = ro["status"]["stableRS"], ro["status"]["currentPodHash"]
    aborted = cli_json(run_cli, repo, "rollout", "abort", "stage")
    assert (aborted["aborted_image"], aborted["stable_image"]) == (f"{IMAGE}:{new}", f"{IMAGE}:{stable}")
    assert (aborted["tag"], aborted["previous_tag"], aborted["pushed"]) == (stable, new, True)
    assert ("PATCH", STATUS_PATH.format(env="stage")) in fake_kube.writes()
    ro = fake_kube.wait_rollout(NS, "dex", "Degraded")
    assert ro["status"]["message"] == "RolloutAborted: Rollout aborted update to revision 2"
    if strategy == "bluegreen":
        # reconcileActiveService: back to the stable hash; the preview keeps the aborted one.
        assert ro["status"]["blueGreen"] == {"activeSelector": old_hash, "previewSelector": new_hash}
        assert fake_kube.service_selector(NS, "dex")[ROLLOUT_HASH_LABEL] == old_hash
    assert fake_kube.pod_images(NS) == [f"{IMAGE}:{stable}"] * 4

    # Git is authoritative: the rollback commit is on origin, with its trailers.
    assert repo.tag("stage") == stable
    message = repo.message("main")
    assert message.splitlines()[0] == f"fix: rollback stage to {stable}"
    assert "Dex-Action: rollback" in message
    assert f"Dex-Previous-Tag: {new}" in message
    data = cli_json(run_cli, repo, "rollout", "status", "stage")
    assert (data["phase"], data["stable_image"]) == ("Degraded", f"{IMAGE}:{stable}")
    failed = run_cli("verify", "stage", "--url", health_url, "--interval", "0", cwd=repo.clone)
    assert failed.code == 1, failed.err
    assert "Degraded (RolloutAborted: Rollout aborted update to revision 2)" in failed.err

    # Argo CD applies the rollback commit: the template is the stable one again, the abort is over.
    assert argo_sync(repo, fake_kube) == stable
    ro = fake_kube.wait_rollout(NS, "dex", "Healthy")
    assert ro["status"]["stableRS"] == ro["status"]["currentPodHash"] == old_hash
    assert cli_json(run_cli, repo, "verify", "stage", "--url", health_url, "--interval", "0")["ok"] is True


def test_verify_rollback_on_failure_aborts_the_rollout_first(
    repo: GitOpsRepo, fake_kube: FakeKube, run_cli: CliRunner, health_url: str
) -> None:
    stable, new = start(repo, fake_kube, run_cli, "canary")
    before = repo.snapshot()
    planned = run_cli(
        "verify", "stage", "--url", health_url, "--interval", "0", "--rollback-on-failure", "--dry-run",
        cwd=repo.clone,
    )  # fmt: skip
    assert planned.code == 1, planned.err
    assert "would abort rollout dex-stage/dex first" in planned.out
    assert fake_kube.writes() == []
    assert repo.snapshot() == before

    args = ("verify", "stage", "--url", health_url, "--interval", "0", "--rollback-on-failure")
    data = cli_json(run_cli, repo, *args, code=1)
    assert data["rollout_aborted"] is True
    assert fake_kube.writes()[0] == ("PATCH", STATUS_PATH.format(env="stage"))
    assert fake_kube.wait_rollout(NS, "dex", "Degraded")["status"]["abort"] is True
    assert data["rolled_back"]["tag"] == stable
    assert repo.tag("stage") == stable
    assert "Dex-Action: rollback" in repo.message("main")
    assert new != stable


def test_verify_rollback_on_failure_still_rolls_back_when_the_abort_is_refused(
    repo: GitOpsRepo, fake_kube: FakeKube, run_cli: CliRunner, health_url: str
) -> None:
    # The CI's service account may read Rollouts but not patch them: the abort is only the fast
    # path, the rollback commit is what makes the env right - it must still be made, and said.
    stable, _ = start(repo, fake_kube, run_cli, "canary")
    fake_kube.deny_writes(NS)
    args = ("verify", "stage", "--url", health_url, "--interval", "0", "--rollback-on-failure", "--json")
    result = run_cli(*args, cwd=repo.clone)
    assert result.code == 1, result.err
    data = json.loads(result.out)
    assert data["rollout_aborted"] is False
    assert data["rolled_back"]["tag"] == stable
    assert repo.tag("stage") == stable
    assert "could not abort rollout dex-stage/dex first" in result.err
    assert "Traceback" not in result.err
    assert fake_kube.wait_rollout(NS, "dex", "Paused")["status"].get("abort") is not True


def test_promote_needs_the_rollout_finished_in_from(
    repo: GitOpsRepo, fake_kube: FakeKube, run_cli: CliRunner
) -> None:
    _, new = start(repo, fake_kube, run_cli, "canary")
    before = repo.snapshot()
    args = ("promote", "stage", "prod", "--direct", "--verify", "live")
    mid = run_cli(*args, cwd=repo.clone)
    assert mid.code == 1, mid.err
    assert "is still rolling" in mid.err
    assert "not live yet; finish it with: dex-tasks rollout promote stage" in mid.err
    assert repo.snapshot() == before  # refused: nothing written
    cli_json(run_cli, repo, "rollout", "promote", "stage", "--full")
    fake_kube.wait_rollout(NS, "dex", "Healthy")
    done = cli_json(run_cli, repo, *args)
    assert done["tag"] == new
    assert repo.tag("prod") == new


def test_status_detects_a_rollout_where_no_deployment_is(
    repo: GitOpsRepo, fake_kube: FakeKube, run_cli: CliRunner
) -> None:
    t = repo.tags
    fake_kube.add_rollout(NS, "dex", image=f"{IMAGE}:{t[0]}")  # workload: the default, "Deployment"
    fake_kube.set_rollout_image(NS, "dex", f"{IMAGE}:{t[1]}")
    rows = {row["env"]: row for row in cli_json(run_cli, repo, "status")["envs"]}
    stage = rows["stage"]
    assert (stage["live_image"], stage["live_tag"]) == (f"{IMAGE}:{t[1]}", t[1])
    assert stage["notes"][0] == (
        "no deployment dex in dex-stage, read the Argo Rollouts Rollout of that name "
        '(set [tool.dex.cluster] workload = "Rollout" to say so)'
    )
    assert any("Paused (CanaryPauseStep), step 1/4" in note for note in stage["notes"])
    assert "live unknown: deployment dex not found in namespace dex-prod" in rows["prod"]["notes"]


# -- rollback --emergency ------------------------------------------------------------------------


@pytest.fixture
def quick_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    from dex_tasks import rollouts  # noqa: PLC0415 - the module whose poll interval is shortened

    monkeypatch.setattr(rollouts, "POLL_INTERVAL", 0.2)


@pytest.mark.usefixtures("quick_polls")
def test_emergency_rollback_patches_the_rollout_and_skips_the_steps(
    repo: GitOpsRepo, fake_kube: FakeKube, run_cli: CliRunner
) -> None:
    t = repo.tags
    use_rollouts(repo)
    # stage: git says T1 (a rollback from T2); its last known good is T0. The Rollout runs T1.
    fake_kube.add_rollout(NS, "dex", image=f"{IMAGE}:{t[1]}")
    before = repo.snapshot()
    planned = run_cli("rollback", "stage", "--emergency", "--dry-run", cwd=repo.clone)
    assert planned.code == 0, planned.err
    assert "--type=json" in planned.err
    patch = (
        '[{"op":"test","path":"/spec/template/spec/containers/0/name","value":"dex"},'
        f'{{"op":"replace","path":"/spec/template/spec/containers/0/image","value":"{IMAGE}:{t[0]}"}}]'
    )
    assert patch in planned.err
    assert f"would patch the Rollout of stage to {t[0]} with kubectl" in planned.out
    assert fake_kube.writes() == []
    assert repo.snapshot() == before

    result = run_cli("rollback", "stage", "--emergency", "--json", cwd=repo.clone)
    assert result.code == 0, result.err
    # T0 is not the stable revision: the controller starts the canary steps, and promoteFull skips them.
    assert fake_kube.writes() == [("PATCH", SPEC_PATH), ("PATCH", STATUS_PATH.format(env="stage"))]
    ro = fake_kube.rollout(NS, "dex")
    assert ro["status"]["phase"] == "Healthy"
    assert ro["spec"]["template"]["spec"]["containers"][0]["image"] == f"{IMAGE}:{t[0]}"
    assert fake_kube.pod_images(NS) == [f"{IMAGE}:{t[0]}"] * 4
    assert repo.tag("stage") == t[0]  # and git matches, so Argo CD does not undo it
    assert "Dex-Action: rollback" in repo.message("main")


def test_an_emergency_wait_that_fails_after_the_patch_says_how_git_catches_up(
    repo: GitOpsRepo, fake_kube: FakeKube, run_cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dex_tasks import rollouts  # noqa: PLC0415 - the wait that fails
    from dex_tasks.errors import ClusterUnreachableError  # noqa: PLC0415

    def lost(*_args: object, **_kwargs: object) -> None:
        raise ClusterUnreachableError("no access to the cluster: connection refused")

    t = repo.tags
    use_rollouts(repo)
    fake_kube.add_rollout(NS, "dex", image=f"{IMAGE}:{t[1]}")
    monkeypatch.setattr(rollouts, "_wait_emergency", lost)
    before = repo.snapshot()
    result = run_cli("rollback", "stage", "--emergency", "--json", cwd=repo.clone)
    assert result.code == 4, result.err
    assert fake_kube.writes() == [("PATCH", SPEC_PATH)]  # the image is patched ...
    assert repo.snapshot() == before  # ... git is not, and the one error line says how it catches up
    assert json.loads(result.out)["error"] == (
        "no access to the cluster: connection refused; once it runs, make git match with: "
        f"dex-tasks rollback stage {t[0]} --direct"
    )


@pytest.mark.usefixtures("quick_polls")
def test_emergency_rollback_to_the_stable_revision_needs_no_promotion(
    repo: GitOpsRepo, fake_kube: FakeKube, run_cli: CliRunner
) -> None:
    t = repo.tags
    use_rollouts(repo)
    fake_kube.add_rollout(NS, "dex", image=f"{IMAGE}:{t[0]}")
    fake_kube.set_rollout_image(NS, "dex", f"{IMAGE}:{t[1]}")  # the canary of T1 paused at 20%
    result = run_cli("rollback", "stage", "--emergency", cwd=repo.clone)
    assert result.code == 0, result.err
    assert fake_kube.writes() == [("PATCH", SPEC_PATH)]  # back to the stable template: stable at once
    assert fake_kube.rollout(NS, "dex")["status"]["phase"] == "Healthy"
    assert fake_kube.pod_images(NS) == [f"{IMAGE}:{t[0]}"] * 4
    assert repo.tag("stage") == t[0]


def test_emergency_rollback_bad_names_change_nothing(
    repo: GitOpsRepo, fake_kube: FakeKube, run_cli: CliRunner
) -> None:
    use_rollouts(repo)
    fake_kube.add_namespace(NS)
    before = repo.snapshot()
    missing = run_cli("rollback", "stage", "--emergency", cwd=repo.clone)
    assert missing.code == 2
    assert "rollout dex not found in namespace dex-stage: nothing changed" in missing.err
    fake_kube.add_rollout(NS, "dex", image=f"{IMAGE}:{repo.tags[1]}", container="web")
    other = run_cli("rollback", "stage", "--emergency", cwd=repo.clone)
    assert other.code == 2
    assert "rollout dex-stage/dex has no container 'dex' (containers: web): nothing changed" in other.err
    assert fake_kube.writes() == []
    assert repo.snapshot() == before
