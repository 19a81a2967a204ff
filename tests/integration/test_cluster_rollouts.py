"""``rollout status | promote | abort`` end to end: the real kubectl against the fake API server's
Argo Rollouts resource (tests/fakes/rollouts_controller.py), real git for abort's rollback commit."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

import pytest

from tests.cluster_fixtures import IMAGE
from tests.fakes.kube_apiserver import image_id
from tests.helpers import serving

if TYPE_CHECKING:
    from tests.conftest import CliRunner
    from tests.fakes.argocd_state import FakeArgo
    from tests.fakes.kube_apiserver import FakeKube
    from tests.gitops_fixtures import GitOpsRepo

pytestmark = [pytest.mark.timeout(240), pytest.mark.kubectl]

STATUS_PATH = "/apis/argoproj.io/v1alpha1/namespaces/dex-{env}/rollouts/dex/status"
SPEC_PATH = "/apis/argoproj.io/v1alpha1/namespaces/dex-{env}/rollouts/dex"


def canary(kube: FakeKube, env: str, stable: str, new: str, **kwargs: object) -> None:
    """ENV's Rollout: ``stable`` stable, the update to ``new`` paused at its first pause (step 1/4)."""
    kube.add_rollout(f"dex-{env}", "dex", image=f"{IMAGE}:{stable}", **kwargs)  # type: ignore[arg-type]
    kube.set_rollout_image(f"dex-{env}", "dex", f"{IMAGE}:{new}")


def error_lines(err: str) -> list[str]:
    """The task's error lines (the echoed ``$ kubectl ...`` commands are not errors)."""
    return [line for line in err.splitlines() if line.startswith("dex-tasks ")]


def status(run_cli: CliRunner, repo: GitOpsRepo, env: str, *extra: str) -> dict[str, object]:
    result = run_cli("rollout", "status", env, "--json", *extra, cwd=repo.clone)
    assert result.code == 0, result.err
    data: dict[str, object] = json.loads(result.out)
    return data


def test_status_of_a_paused_canary(repo: GitOpsRepo, fake_kube: FakeKube, run_cli: CliRunner) -> None:
    t = repo.tags
    canary(fake_kube, "stage", t[0], t[1])
    data = status(run_cli, repo, "stage")
    assert data["task"] == "rollout"
    assert data["env"] == "stage"
    assert (data["phase"], data["step"], data["steps"], data["weight"]) == ("Paused", 1, 4, 20)
    assert data["message"] == "CanaryPauseStep"
    assert data["stable_image"] == f"{IMAGE}:{t[0]}"
    assert data["canary_image"] == f"{IMAGE}:{t[1]}"
    assert data["stable_digest"] == image_id(f"{IMAGE}:{t[0]}").split("@")[1]
    assert data["canary_digest"] == image_id(f"{IMAGE}:{t[1]}").split("@")[1]
    assert "preview_image" not in data
    assert fake_kube.writes() == []
    human = run_cli("rollout", "status", "stage", cwd=repo.clone)
    assert human.code == 0, human.err
    assert "dex-stage/dex Paused (CanaryPauseStep), step 1/4, weight 20%" in human.out
    assert f"stable  {IMAGE}:{t[0]}" in human.out


def test_promote_goes_to_the_next_pause_then_to_the_end(
    repo: GitOpsRepo, fake_kube: FakeKube, run_cli: CliRunner
) -> None:
    t = repo.tags
    canary(fake_kube, "stage", t[0], t[1])
    result = run_cli("rollout", "promote", "stage", cwd=repo.clone)
    assert result.code == 0, result.err
    # The plugin's patch, on the status subresource (promote.go clearPauseConditionsPatch).
    assert fake_kube.writes() == [("PATCH", STATUS_PATH.format(env="stage"))]
    fake_kube.wait_rollout("dex-stage", "dex", "Paused")
    data = status(run_cli, repo, "stage", "--watch", "--interval", "0.2")
    assert (data["phase"], data["step"], data["weight"]) == ("Paused", 3, 50)
    result = run_cli("rollout", "promote", "stage", cwd=repo.clone)
    assert result.code == 0, result.err
    data = status(run_cli, repo, "stage", "--watch", "--interval", "0.2")
    assert (data["phase"], data["step"], data["steps"], data["weight"]) == ("Healthy", 4, 4, 100)
    assert data["stable_image"] == f"{IMAGE}:{t[1]}"
    assert data["canary_image"] is None
    assert fake_kube.pod_images("dex-stage") == [f"{IMAGE}:{t[1]}"] * 4
    # Nothing left to promote: bad input, one line.
    again = run_cli("rollout", "promote", "stage", cwd=repo.clone)
    assert again.code == 2
    assert "nothing to promote" in again.err
    assert len(error_lines(again.err)) == 1


def test_promote_full_completes(repo: GitOpsRepo, fake_kube: FakeKube, run_cli: CliRunner) -> None:
    t = repo.tags
    canary(fake_kube, "stage", t[0], t[1], traffic_routing=True)
    assert status(run_cli, repo, "stage")["weight"] == 20  # status.canary.weights, the router's view
    result = run_cli("rollout", "promote", "stage", "--full", cwd=repo.clone)
    assert result.code == 0, result.err
    ro = fake_kube.wait_rollout("dex-stage", "dex", "Healthy")
    assert ro["status"]["stableRS"] == ro["status"]["currentPodHash"]
    assert "promoteFull" not in ro["status"]  # reset by the controller once promoted
    assert status(run_cli, repo, "stage")["stable_image"] == f"{IMAGE}:{t[1]}"


def test_promote_unpauses_a_manually_paused_rollout(
    repo: GitOpsRepo, fake_kube: FakeKube, run_cli: CliRunner
) -> None:
    t = repo.tags
    canary(fake_kube, "stage", t[0], t[1])
    with fake_kube.lock:
        fake_kube.objects[("rollouts", "dex-stage", "dex")]["spec"]["paused"] = True
    result = run_cli("rollout", "promote", "stage", "--dry-run", cwd=repo.clone)
    assert result.code == 0, result.err
    assert fake_kube.writes() == []
    assert "--subresource=status" in result.out + result.err
    assert '{"spec":{"paused":false}}' in result.out + result.err
    result = run_cli("rollout", "promote", "stage", cwd=repo.clone)
    assert result.code == 0, result.err
    assert fake_kube.writes() == [
        ("PATCH", STATUS_PATH.format(env="stage")),
        ("PATCH", SPEC_PATH.format(env="stage")),
    ]
    ro = fake_kube.wait_rollout("dex-stage", "dex", "Paused")
    assert ro["spec"]["paused"] is False
    assert ro["status"]["currentStepIndex"] == 3


def test_abort_sends_traffic_to_stable_and_commits_the_rollback(
    repo: GitOpsRepo, fake_kube: FakeKube, run_cli: CliRunner
) -> None:
    t = repo.tags
    # dev's overlay (branch dev) says T3; Argo CD synced it: the canary runs T3, T2 is stable.
    canary(fake_kube, "dev", t[2], t[3])
    result = run_cli("rollout", "abort", "dev", "--json", cwd=repo.clone)
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["aborted_image"] == f"{IMAGE}:{t[3]}"
    assert data["stable_image"] == f"{IMAGE}:{t[2]}"
    assert (data["tag"], data["previous_tag"], data["pushed"]) == (t[2], t[3], True)
    assert ("PATCH", STATUS_PATH.format(env="dev")) in fake_kube.writes()
    ro = fake_kube.wait_rollout("dex-dev", "dex", "Degraded")
    assert ro["status"]["abort"] is True
    assert ro["status"]["message"].startswith("RolloutAborted")
    assert fake_kube.pod_images("dex-dev") == [f"{IMAGE}:{t[2]}"] * 4
    # Git is authoritative: dev's overlay goes back to the stable tag, with the usual trailers.
    assert repo.tag("dev", "dev") == t[2]
    message = repo.message("dev")
    assert message.splitlines()[0] == f"fix: rollback dev to {t[2]}"
    assert "Dex-Action: rollback" in message
    assert f"Dex-Previous-Tag: {t[3]}" in message
    watched = run_cli("rollout", "status", "dev", "--watch", "--json", cwd=repo.clone)
    assert watched.code == 1  # Degraded: the watch says no
    assert json.loads(watched.out)["phase"] == "Degraded"


def test_abort_dry_run_changes_nothing(repo: GitOpsRepo, fake_kube: FakeKube, run_cli: CliRunner) -> None:
    t = repo.tags
    canary(fake_kube, "dev", t[2], t[3])
    before = repo.snapshot()
    result = run_cli("rollout", "abort", "dev", "--dry-run", cwd=repo.clone)
    assert result.code == 0, result.err
    assert '{"status":{"abort":true}}' in result.out + result.err
    assert fake_kube.writes() == []
    assert repo.snapshot() == before


def test_blue_green_shows_the_preview(repo: GitOpsRepo, fake_kube: FakeKube, run_cli: CliRunner) -> None:
    t = repo.tags
    canary(fake_kube, "stage", t[0], t[1], strategy="bluegreen")
    data = status(run_cli, repo, "stage")
    assert (data["phase"], data["message"], data["step"], data["weight"]) == (
        "Paused",
        "BlueGreenPause",
        None,
        None,
    )
    assert data["preview_image"] == f"{IMAGE}:{t[1]}"
    assert data["stable_image"] == f"{IMAGE}:{t[0]}"
    assert "canary_image" not in data
    assert run_cli("rollout", "promote", "stage", cwd=repo.clone).code == 0
    ro = fake_kube.wait_rollout("dex-stage", "dex", "Healthy")
    assert ro["status"]["blueGreen"]["activeSelector"] == ro["status"]["currentPodHash"]


def test_bad_input_is_one_line_exit_2(repo: GitOpsRepo, fake_kube: FakeKube, run_cli: CliRunner) -> None:
    fake_kube.add_namespace("dex-stage")
    missing = run_cli("rollout", "status", "stage", cwd=repo.clone)
    assert missing.code == 2
    assert "rollout dex not found in namespace dex-stage" in missing.err
    unknown = run_cli("rollout", "status", "nope", cwd=repo.clone)
    assert unknown.code == 2
    fake_kube.add_rollout("dex-prod", "dex", image=f"{IMAGE}:{repo.tags[0]}")
    healthy = run_cli("rollout", "abort", "prod", cwd=repo.clone)
    assert healthy.code == 2
    assert "nothing to abort" in healthy.err
    for result in (missing, unknown, healthy):
        assert "Traceback" not in result.err
        assert len(error_lines(result.err)) == 1, result.err
    assert fake_kube.writes() == []


def test_a_cluster_without_argo_rollouts_is_one_line_exit_2(
    repo: GitOpsRepo, fake_kube: FakeKube, run_cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.fakes import kube_apiserver  # noqa: PLC0415 - the fake's resource table

    # No Rollouts CRD: discovery does not list the kind, and kubectl says "the server doesn't have
    # a resource type" (exit 1) - configuration, not an unreachable cluster.
    monkeypatch.delitem(kube_apiserver.RESOURCES, "rollouts")
    monkeypatch.delitem(kube_apiserver.RESOURCES, "analysisruns")
    fake_kube.add_namespace("dex-stage")
    before = repo.snapshot()
    for argv in (
        ("rollout", "status", "stage"),
        ("rollout", "promote", "stage"),
        ("rollout", "abort", "stage"),
    ):
        result = run_cli(*argv, "--json", cwd=repo.clone)
        assert result.code == 2, result.err
        assert "Traceback" not in result.err
        payload = json.loads(result.out)
        assert payload["exit_code"] == 2
        assert payload["error"].startswith(
            "the cluster serves no rollouts.argoproj.io (Argo Rollouts is not installed)"
        ), payload["error"]
    assert fake_kube.writes() == []
    assert repo.snapshot() == before


def test_no_cluster_is_exit_2(repo: GitOpsRepo, no_cluster: None, run_cli: CliRunner) -> None:
    result = run_cli("rollout", "status", "stage", cwd=repo.clone)
    assert result.code == 2
    assert "needs cluster access" in result.err


def test_with_argo_cd_promote_and_abort_are_resource_actions(
    repo: GitOpsRepo, fake_kube: FakeKube, fake_argo: FakeArgo, run_cli: CliRunner
) -> None:
    t = repo.tags
    canary(fake_kube, "dev", t[2], t[3])
    fake_argo.add_app("dex-dev", namespace="dex-dev", image=f"{IMAGE}:{t[3]}")
    fake_argo.connect(fake_kube.url)
    result = run_cli("rollout", "promote", "dev", cwd=repo.clone)
    assert result.code == 0, result.err
    assert fake_argo.calls()[-1] == [
        "app", "actions", "run", "dex-dev", "resume", "--kind", "Rollout", "--resource-name", "dex",
        "--namespace", "dex-dev",
    ]  # fmt: skip
    assert fake_kube.wait_rollout("dex-dev", "dex", "Paused")["status"]["currentStepIndex"] == 3
    result = run_cli("rollout", "abort", "dev", cwd=repo.clone)
    assert result.code == 0, result.err
    assert fake_argo.calls()[-1][4] == "abort"
    assert fake_kube.wait_rollout("dex-dev", "dex", "Degraded")["status"]["abort"] is True
    assert repo.tag("dev", "dev") == t[2]


def use_rollouts(repo: GitOpsRepo) -> None:
    pyproject = repo.clone / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    pyproject.write_text(text + '\n[tool.dex.cluster]\nworkload = "Rollout"\n', encoding="utf-8")


class _Ok(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002, ARG002 - stdlib signature
        return


def test_verify_with_rollouts_paused_and_degraded_are_not_healthy(
    repo: GitOpsRepo, fake_kube: FakeKube, run_cli: CliRunner
) -> None:
    t = repo.tags
    use_rollouts(repo)
    canary(fake_kube, "stage", t[0], t[1])
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    url = f"http://127.0.0.1:{server.server_address[1]}/health"
    with serving(server):
        paused = run_cli("verify", "stage", "--url", url, "--json", "--interval", "0", cwd=repo.clone)
        assert paused.code == 1, paused.err
        data = json.loads(paused.out)
        assert "rollout dex-stage/dex Paused (CanaryPauseStep), step 1/4, weight 20% is not Healthy" in (
            paused.err
        )
        assert data["rollout"]["phase"] == "Paused"
        assert run_cli("rollout", "promote", "stage", "--full", cwd=repo.clone).code == 0
        fake_kube.wait_rollout("dex-stage", "dex", "Healthy")
        healthy = run_cli("verify", "stage", "--url", url, "--interval", "0", cwd=repo.clone)
        assert healthy.code == 0, healthy.err
    bad = repo.clone / "pyproject.toml"
    bad.write_text(bad.read_text(encoding="utf-8").replace('"Rollout"', '"rollout"'), encoding="utf-8")
    refused = run_cli("verify", "stage", "--url", url, cwd=repo.clone)
    assert refused.code == 2
    assert (
        "tool.dex.cluster.workload: 'rollout' is not 'Deployment' or 'Rollout'; did you mean 'Rollout'?"
        in (refused.err)
    )


def test_status_with_rollouts_shows_the_rollouts_image(
    repo: GitOpsRepo, fake_kube: FakeKube, run_cli: CliRunner
) -> None:
    t = repo.tags
    use_rollouts(repo)
    canary(fake_kube, "stage", t[0], t[1])
    result = run_cli("status", "stage", "--json", cwd=repo.clone)
    assert result.code == 0, result.err
    row = json.loads(result.out)["envs"][0]
    assert row["live_image"] == f"{IMAGE}:{t[1]}"
    assert row["live_tag"] == t[1]
    assert any("Paused (CanaryPauseStep), step 1/4" in note for note in row["notes"])
    assert f"stable {IMAGE}:{t[0]}" in row["notes"]
    assert fake_kube.writes() == []


def test_watch_gives_up_after_the_rollout_timeout(
    repo: GitOpsRepo, fake_kube: FakeKube, run_cli: CliRunner
) -> None:
    t = repo.tags
    canary(fake_kube, "stage", t[0], t[1])
    with fake_kube.lock:  # a controller that never observes the new spec
        fake_kube.objects[("rollouts", "dex-stage", "dex")]["metadata"]["generation"] = 9
    pyproject = repo.clone / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text(encoding="utf-8") + "\n[tool.dex.cluster]\nrollout-timeout = 8\n",
        encoding="utf-8",
    )
    # The timeout counts the reads too (four kubectl gets each): 8 s, not 4, so that a loaded
    # runner's first read still ends before the deadline - interval and there is a second attempt.
    result = run_cli("rollout", "status", "stage", "--watch", "--interval", "2", cwd=repo.clone)
    assert result.code == 4
    assert "# waiting for rollout dex-stage/dex (attempt 2/5, next try in 2.0s)" in result.err
    assert "waiting for rollout spec update to be observed" in result.err
    assert error_lines(result.err) == [
        (
            "dex-tasks rollout: error: rollout dex-stage/dex Progressing (waiting for rollout spec update to "
            "be observed), step 1/4, weight 20%: not Healthy, Paused or Degraded within 8s"
        )
    ]


def test_forbidden_is_exit_4(repo: GitOpsRepo, fake_kube: FakeKube, run_cli: CliRunner) -> None:
    canary(fake_kube, "stage", repo.tags[0], repo.tags[1])
    fake_kube.forbid("dex-stage")
    result = run_cli("rollout", "promote", "stage", cwd=repo.clone)
    assert result.code == 4
    assert 'rollouts.argoproj.io "dex" is forbidden' in result.err
    assert fake_kube.writes() == []


def test_a_timed_pause_ends_on_the_controllers_clock(
    repo: GitOpsRepo, fake_kube: FakeKube, run_cli: CliRunner
) -> None:
    t = repo.tags
    steps = [{"setWeight": 20}, {"pause": {"duration": "30s"}}]
    canary(fake_kube, "stage", t[0], t[1], steps=steps)
    # A timed pause is Paused to the plugin as well: --watch ends there.
    data = status(run_cli, repo, "stage", "--watch", "--interval", "0.2")
    assert (data["phase"], data["message"], data["step"], data["steps"]) == (
        "Paused",
        "CanaryPauseStep",
        1,
        2,
    )
    fake_kube.advance(31)  # no test sleeps through the 30s: the fake's controller clock moves
    data = status(run_cli, repo, "stage")
    assert (data["phase"], data["step"], data["stable_image"]) == ("Healthy", 2, f"{IMAGE}:{t[1]}")
    assert fake_kube.writes() == []


def test_status_shows_the_running_analysis_and_a_failed_one_aborts(
    repo: GitOpsRepo, fake_kube: FakeKube, run_cli: CliRunner
) -> None:
    t = repo.tags
    steps = [{"setWeight": 20}, {"analysis": {"templates": [{"templateName": "success-rate"}]}},
             {"setWeight": 50}, {"pause": {}}]  # fmt: skip
    background = {"templates": [{"templateName": "error-rate"}], "startingStep": 1}
    canary(fake_kube, "dev", t[2], t[3], steps=steps, analysis=background)
    ro = fake_kube.rollout("dex-dev", "dex")
    current = ro["status"]["currentPodHash"]
    step_run, background_run = f"dex-{current}-2-1", f"dex-{current}-2"
    data = status(run_cli, repo, "dev")
    assert (data["phase"], data["step"], data["weight"]) == ("Progressing", 1, 20)
    assert data["analysis"] == [
        {"name": step_run, "phase": "Running", "type": "Step", "message": ""},
        {"name": background_run, "phase": "Running", "type": "Background", "message": ""},
    ]
    human = run_cli("rollout", "status", "dev", cwd=repo.clone)
    assert (
        f"step 1/4, weight 20%, analysis {step_run} Running, analysis {background_run} Running" in human.out
    )
    assert f"  analysis {step_run} Running (Step)" in human.out

    fake_kube.set_analysis("dex-dev", step_run, "Successful")
    data = status(run_cli, repo, "dev")
    assert (data["phase"], data["step"], data["weight"]) == ("Paused", 3, 50)
    runs: list[dict[str, str]] = data["analysis"]  # type: ignore[assignment]
    assert [(run["name"], run["phase"]) for run in runs] == [
        (step_run, "Successful"),
        (background_run, "Running"),
    ]
    message = 'Metric "error-rate" assessed Failed due to failed (1) > failureLimit (0)'
    fake_kube.set_analysis("dex-dev", background_run, "Failed", message)
    watched = run_cli("rollout", "status", "dev", "--watch", "--json", cwd=repo.clone)
    assert watched.code == 1  # the analysis aborted the update: Degraded
    data = json.loads(watched.out)
    assert data["message"] == (
        "RolloutAborted: Rollout aborted update to revision 2: Background analysis phase error/failed: "
        + message
    )
    assert fake_kube.pod_images("dex-dev") == [f"{IMAGE}:{t[2]}"] * 4
    # The cluster is back on the stable pods; git still names the aborted tag until abort commits it.
    result = run_cli("rollout", "abort", "dev", "--json", cwd=repo.clone)
    assert result.code == 0, result.err
    assert repo.tag("dev", "dev") == t[2]


def test_abort_that_git_would_refuse_aborts_nothing(
    repo: GitOpsRepo, fake_kube: FakeKube, run_cli: CliRunner
) -> None:
    # The stable ReplicaSet runs a tag dev's overlay never held: the rollback commit is refused
    # (exit 2), and so must the abort be - a refusal leaves the cluster as it was too.
    t = repo.tags
    canary(fake_kube, "dev", "sha-0badc0de", t[3])
    before = repo.snapshot()
    result = run_cli("rollout", "abort", "dev", cwd=repo.clone)
    assert result.code == 2, result.err
    assert "was never deployed to dev" in result.err
    assert "Traceback" not in result.err
    assert len(error_lines(result.err)) == 1, result.err
    assert fake_kube.writes() == []
    assert repo.snapshot() == before


def test_abort_refuses_when_the_rollout_moved_on_while_git_was_checked(
    repo: GitOpsRepo, fake_kube: FakeKube, run_cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The patch waits for the rollback's checks (fetch, registry, controls: seconds). Meanwhile
    # Argo CD synced another revision: aborting that one, and committing the old stable tag over
    # it, is not what was asked - refused, with nothing changed.
    from dex_tasks import rollouts  # noqa: PLC0415 - the read the race goes into

    t = repo.tags
    canary(fake_kube, "dev", t[2], t[3])
    before = repo.snapshot()
    real, reads = rollouts.read, []

    def racing(*args: object, **kwargs: object) -> rollouts.RolloutState:
        reads.append(1)
        if len(reads) == 2:
            fake_kube.set_rollout_image("dex-dev", "dex", f"{IMAGE}:{t[4]}")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(rollouts, "read", racing)
    result = run_cli("rollout", "abort", "dev", cwd=repo.clone)
    assert result.code == 2, result.err
    assert "changed since it was read" in result.err
    assert ("PATCH", STATUS_PATH.format(env="dev")) not in fake_kube.writes()
    assert repo.snapshot() == before
