"""dex_tasks.rollouts: the Rollout object read like the argo-rollouts plugin does (pure, no processes)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from dex_tasks import cluster, rollouts
from dex_tasks.tools import argocd
from tests.fakes import rollouts_controller

IMAGE = "ghcr.io/data-literate/dex"
STEPS = [{"setWeight": 20}, {"pause": {}}, {"setWeight": 50}, {"pause": {"duration": "1h"}}]


def rollout(status: dict[str, Any], *, generation: int = 2, steps: list[Any] | None = None,
            paused: bool = False, blue_green: bool = False) -> dict[str, Any]:  # fmt: skip
    strategy = (
        {"blueGreen": {"activeService": "dex"}} if blue_green else {"canary": {"steps": steps or STEPS}}
    )
    return {
        "metadata": {"name": "dex", "namespace": "dex-prod", "generation": generation},
        "spec": {
            "paused": paused,
            "strategy": strategy,
            "template": {"spec": {"containers": [{"name": "dex", "image": f"{IMAGE}:sha-2222bbbb"}]}},
        },
        "status": {"observedGeneration": str(generation), **status},
    }


@pytest.mark.parametrize(
    ("status", "phase", "step", "weight"),
    [
        ({"phase": "Paused", "message": "CanaryPauseStep", "currentStepIndex": 1,
          "pauseConditions": [{"reason": "CanaryPauseStep"}], "controllerPause": True}, "Paused", 1, 20),
        ({"phase": "Paused", "currentStepIndex": 3, "pauseConditions": [{"reason": "CanaryPauseStep"}]},
         "Paused", 3, 50),
        # The controller has not reacted to the promote yet: IsUnpausing.
        ({"phase": "Paused", "currentStepIndex": 1, "controllerPause": True}, "Progressing", 1, 20),
        ({"phase": "Healthy", "currentStepIndex": 4}, "Healthy", 4, 100),
        # GetCurrentSetWeight: 0 once aborted.
        ({"phase": "Degraded", "currentStepIndex": 0, "abort": True}, "Degraded", 0, 0),
        # Before v1.0 the client computes the phase.
        ({"currentStepIndex": 1, "pauseConditions": [{"reason": "CanaryPauseStep"}]}, "Paused", 1, 20),
        ({"stableRS": "a", "currentPodHash": "a", "currentStepIndex": 4}, "Healthy", 4, 100),
        # The traffic router's weight wins over the desired one.
        ({"phase": "Progressing", "currentStepIndex": 2, "canary": {"weights": {"canary": {"weight": 35}}}},
         "Progressing", 2, 35),
    ],
)  # fmt: skip
def test_phase_step_and_weight_like_the_plugin(
    status: dict[str, Any], phase: str, step: int, weight: int
) -> None:
    state = rollouts.RolloutState.from_json(rollout(status), "dex")
    assert (state.phase, state.step, state.steps, state.weight) == (phase, step, 4, weight)


def test_spec_not_observed_yet_is_progressing() -> None:
    data = rollout({"phase": "Healthy"})
    data["status"]["observedGeneration"] = "1"
    state = rollouts.RolloutState.from_json(data, "dex")
    assert (state.phase, state.message) == ("Progressing", "waiting for rollout spec update to be observed")


def test_blue_green_has_no_step_or_weight() -> None:
    state = rollouts.RolloutState.from_json(rollout({"phase": "Paused"}, blue_green=True), "dex")
    assert (state.strategy, state.step, state.steps, state.weight) == ("bluegreen", None, None, None)
    assert "preview_image" in state.as_json("prod")


def test_images_come_from_the_replicasets_by_pod_template_hash() -> None:
    state = rollouts.RolloutState.from_json(rollout({"stableRS": "old", "currentPodHash": "new"}), "dex")

    def rs(pod_hash: str, tag: str) -> dict[str, Any]:
        return {
            "metadata": {"labels": {rollouts.HASH_LABEL: pod_hash}},
            "spec": {"template": {"spec": {"containers": [{"name": "dex", "image": f"{IMAGE}:{tag}"}]}}},
        }

    pod = {
        "metadata": {"labels": {rollouts.HASH_LABEL: "old"}},
        "spec": {"containers": [{"name": "dex", "image": f"{IMAGE}:sha-1111aaaa"}]},
        "status": {"containerStatuses": [{"name": "dex", "imageID": f"{IMAGE}@sha256:{'a' * 64}"}]},
    }
    full = rollouts.with_images(state, [rs("old", "sha-1111aaaa"), rs("new", "sha-2222bbbb")], [pod], "dex")
    assert full.stable_image == f"{IMAGE}:sha-1111aaaa"
    assert full.new_image == f"{IMAGE}:sha-2222bbbb"
    assert full.stable_digest == f"sha256:{'a' * 64}"
    assert full.new_digest is None


def test_the_fakes_controller_agrees_with_the_parser() -> None:
    """The fake's status, read by dex-tasks, gives the plugin's numbers at every stage."""
    first = rollout({}, generation=1)
    first["spec"]["replicas"] = 4
    ro, _ = rollouts_controller.reconcile(first)
    assert rollouts.RolloutState.from_json(ro, "dex").phase == "Healthy"
    ro["spec"]["template"]["spec"]["containers"][0]["image"] = f"{IMAGE}:sha-3333cccc"
    ro["metadata"]["generation"] = 2
    ro, counts = rollouts_controller.reconcile(ro)
    state = rollouts.RolloutState.from_json(ro, "dex")
    assert (state.phase, state.step, state.weight) == ("Paused", 1, 20)
    assert sorted(counts.values()) == [1, 3]  # ceil(4 * 20%) canary pods beside 3 stable
    ro["status"]["pauseConditions"] = None
    ro, _ = rollouts_controller.reconcile(ro)
    assert rollouts.RolloutState.from_json(ro, "dex").step == 3
    ro["status"]["abort"] = True
    ro, counts = rollouts_controller.reconcile(ro)
    state = rollouts.RolloutState.from_json(ro, "dex")
    assert (state.phase, state.step, state.weight) == ("Degraded", 0, 0)
    assert state.message.startswith("RolloutAborted")
    assert sorted(counts.values()) == [0, 4]


def _update(steps: list[dict[str, Any]], **canary: Any) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """A Rollout (uid ``u1``) stable on sha-2222bbbb, its template changed to sha-3333cccc, synced
    once at the controller's EPOCH; and the AnalysisRuns that sync made."""
    first = rollout({}, generation=1)
    first["metadata"].update({"uid": "u1", "namespace": "dex-prod", "annotations": {}})
    first["spec"]["strategy"]["canary"] = {"steps": steps, **canary}
    ro, _ = rollouts_controller.reconcile(first)
    ro["spec"]["template"]["spec"]["containers"][0]["image"] = f"{IMAGE}:sha-3333cccc"
    ro["metadata"]["generation"] = 2
    ro["metadata"]["annotations"]["rollout.argoproj.io/revision"] = "2"
    runs: dict[str, dict[str, Any]] = {}
    ro, _ = rollouts_controller.reconcile(ro, runs=runs)
    return ro, runs


def test_a_timed_pause_ends_when_the_controllers_clock_passes_it() -> None:
    epoch = rollouts_controller.EPOCH
    ro, _ = _update([{"setWeight": 20}, {"pause": {"duration": "30s"}}, {"setWeight": 50}, {"pause": {}}])
    state = rollouts.RolloutState.from_json(ro, "dex")
    assert (state.phase, state.message, state.step, state.weight) == ("Paused", "CanaryPauseStep", 1, 20)
    assert ro["status"]["pauseConditions"][0]["startTime"] == "2026-01-01T00:00:00Z"
    # pause.go CompletedCanaryPauseStep: now.After(startTime + duration) - not at the second itself.
    ro, _ = rollouts_controller.reconcile(ro, now=epoch + dt.timedelta(seconds=30))
    assert rollouts.RolloutState.from_json(ro, "dex").step == 1
    ro, _ = rollouts_controller.reconcile(ro, now=epoch + dt.timedelta(seconds=31))
    state = rollouts.RolloutState.from_json(ro, "dex")
    assert (state.phase, state.step, state.weight) == ("Paused", 3, 50)  # the next, indefinite, pause
    assert ro["status"]["pauseConditions"][0]["startTime"] == "2026-01-01T00:00:31Z"
    assert rollouts_controller.duration_seconds("5m") == 300
    assert rollouts_controller.duration_seconds(45) == 45


def test_an_analysis_step_waits_for_its_run_and_a_failed_run_aborts() -> None:
    template = [{"templateName": "success-rate"}]
    ro, runs = _update(
        [{"setWeight": 20}, {"analysis": {"templates": template}}, {"setWeight": 60}],
        analysis={"templates": [{"templateName": "error-rate"}]},
    )
    current = ro["status"]["currentPodHash"]
    step_run, background = f"dex-{current}-2-1", f"dex-{current}-2"
    assert set(runs) == {step_run, background}
    assert runs[step_run]["metadata"]["labels"]["rollout-type"] == "Step"
    assert runs[step_run]["metadata"]["labels"]["step-index"] == "1"
    assert runs[background]["metadata"]["labels"]["rollout-type"] == "Background"
    assert runs[step_run]["metadata"]["ownerReferences"][0]["uid"] == "u1"
    state = rollouts.RolloutState.from_json(ro, "dex")
    assert (state.phase, state.step) == ("Progressing", 1)  # no pause: the step waits for its run
    assert ro["status"]["canary"]["currentStepAnalysisRunStatus"] == {"name": step_run, "status": "Running"}
    listed = rollouts.analysis_runs(list(runs.values()), "u1", current)
    assert [(r.name, r.phase, r.kind, r.running) for r in listed] == [
        (step_run, "Running", "Step", True),
        (background, "Running", "Background", True),
    ]
    assert rollouts.analysis_runs(list(runs.values()), "someone-else", current) == ()

    runs[step_run]["status"]["phase"] = "Successful"
    ro, _ = rollouts_controller.reconcile(ro, runs=runs)
    assert rollouts.RolloutState.from_json(ro, "dex").phase == "Healthy"  # past the last step
    assert runs[background]["status"] == {
        "phase": "Successful", "message": "Run Terminated", "startedAt": "2026-01-01T00:00:00Z",
    }  # fmt: skip
    assert runs[background]["spec"]["terminate"] is True

    ro, runs = _update([{"setWeight": 20}, {"pause": {}}], analysis={"templates": template})
    run = next(iter(runs.values()))
    run["status"].update({"phase": "Failed", "message": 'Metric "success-rate" assessed Failed'})
    ro, _ = rollouts_controller.reconcile(ro, runs=runs)
    state = rollouts.RolloutState.from_json(ro, "dex")
    assert (state.phase, state.aborted, state.weight) == ("Degraded", True, 0)
    assert state.message == (
        "RolloutAborted: Rollout aborted update to revision 2: Background analysis phase error/failed: "
        'Metric "success-rate" assessed Failed'
    )


HOSTILE_VALUES = [None, "x", "7", 5, -3, 99, True, 1.5, [], [1, "a"], {}, {"a": 1}]
HOSTILE_PATHS = [
    ("metadata",), ("metadata", "generation"), ("spec",), ("spec", "paused"), ("spec", "strategy"),
    ("spec", "strategy", "canary"), ("spec", "strategy", "canary", "steps"), ("spec", "template"),
    ("spec", "template", "spec"), ("spec", "template", "spec", "containers"), ("status",),
    ("status", "phase"), ("status", "currentStepIndex"), ("status", "pauseConditions"),
    ("status", "observedGeneration"), ("status", "canary"), ("status", "canary", "weights"),
    ("status", "canary", "weights", "canary"), ("status", "canary", "weights", "canary", "weight"),
    ("status", "stableRS"),
]  # fmt: skip


@pytest.mark.parametrize("path", HOSTILE_PATHS, ids="/".join)
def test_a_rollout_with_null_or_wrongly_typed_fields_is_read_not_a_traceback(path: tuple[str, ...]) -> None:
    # A CRD's schema is only as strict as its author (preserve-unknown-fields, an old CRD, a
    # hand-applied object): a null or odd field must read as absent, never as exit 70.
    for value in HOSTILE_VALUES:
        data = rollout({"phase": "Paused", "currentStepIndex": 1, "pauseConditions": [{"reason": "x"}],
                        "stableRS": "a", "currentPodHash": "b",
                        "canary": {"weights": {"canary": {"weight": 20}}}})  # fmt: skip
        node: Any = data
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        state = rollouts.RolloutState.from_json(data, "dex")
        state = rollouts.with_images(state, [data, {"metadata": None, "spec": {"template": None}}],
                                     [data, {"status": None}], "dex")  # fmt: skip
        assert state.step is None or 0 <= state.step <= (state.steps or 0)
        assert state.weight is None or isinstance(state.weight, int)
        assert isinstance(state.summary(), str)
        assert isinstance(state.as_json("prod")["phase"], str)


@pytest.mark.parametrize(
    ("index", "step"), [("1", None), (True, None), (-1, None), (9, None), (4, 4), (0, 0)]
)
def test_step_index_that_is_not_a_step_of_the_spec_is_no_step(index: Any, step: int | None) -> None:
    state = rollouts.RolloutState.from_json(
        rollout({"phase": "Progressing", "currentStepIndex": index}), "dex"
    )
    assert state.step == step
    assert state.weight in {0, 20, 100}


def test_odd_analysis_runs_are_skipped_not_a_traceback() -> None:
    owned = {"ownerReferences": ["u1", {"uid": "u1"}], "labels": None,
             "annotations": {"rollout.argoproj.io/revision": 3}}  # fmt: skip
    runs: list[Any] = [None, "x", {"metadata": None}, {"metadata": {"ownerReferences": None}},
                       {"metadata": owned, "status": None}]  # fmt: skip
    listed = rollouts.analysis_runs(runs, "u1", "")
    assert [(run.name, run.phase) for run in listed] == [("", "")]
    assert rollouts.analysis_runs(None, "u1", "") == ()


class _Cfg:
    """The two things the waits ask of a Config."""

    deployment = "dex"

    def namespace_for(self, env: str) -> str:
        return f"dex-{env}"


def _reads(monkeypatch: pytest.MonkeyPatch, name: str, answers: list[Any]) -> list[Any]:
    """``rollouts.<name>`` answers ``answers`` in turn (an exception is raised)."""
    left = list(answers)

    def fake(*_args: object, **_kwargs: object) -> Any:
        answer = left.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    monkeypatch.setattr(rollouts, name, fake)
    return left


def _state(status: dict[str, Any], image: str = f"{IMAGE}:sha-2222bbbb") -> rollouts.RolloutState:
    data = rollout(status)
    data["spec"]["template"]["spec"]["containers"][0]["image"] = image
    return rollouts.RolloutState.from_json(data, "dex")


def test_watch_survives_a_read_that_fails_and_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from dex_tasks.errors import ClusterUnreachableError, ForbiddenError, RemoteError  # noqa: PLC0415

    progressing = _state({"phase": "Progressing", "currentStepIndex": 2})
    healthy = _state({"phase": "Healthy", "currentStepIndex": 4})
    blip = ClusterUnreachableError("no access to the cluster: connection refused")
    _reads(monkeypatch, "read", [progressing, blip, RemoteError("InternalError"), healthy])
    state = rollouts.watch(_Cfg(), "prod", timeout=60, interval=1, sleep=lambda _s: None)  # type: ignore[arg-type]
    assert state.phase == "Healthy"
    err = capsys.readouterr().err
    assert "could not read it (no access to the cluster: connection refused); asking again" in err
    assert "attempt 4/" in err
    # Three in a row, or RBAC at once: the wait ends with that error (exit 4).
    _reads(monkeypatch, "read", [progressing, blip, blip, blip])
    with pytest.raises(ClusterUnreachableError):
        rollouts.watch(_Cfg(), "prod", timeout=60, interval=1, sleep=lambda _s: None)  # type: ignore[arg-type]
    _reads(monkeypatch, "read", [progressing, ForbiddenError("forbidden")])
    with pytest.raises(ForbiddenError):
        rollouts.watch(_Cfg(), "prod", timeout=60, interval=1, sleep=lambda _s: None)  # type: ignore[arg-type]


def test_the_emergency_wait_survives_a_read_that_fails_and_says_the_patch_is_in(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from dex_tasks.errors import ClusterUnreachableError, RemoteError  # noqa: PLC0415

    image = f"{IMAGE}:sha-1111aaaa"
    done = _state({"phase": "Healthy", "stableRS": "a", "currentPodHash": "a"}, image)
    blip = ClusterUnreachableError("no access to the cluster: connection refused")
    _reads(monkeypatch, "read_from", [blip, done])
    wait = rollouts._wait_emergency
    wait(_Cfg(), "prod", None, image, timeout=60, interval=1, sleep=lambda _s: None)  # type: ignore[arg-type]
    assert "could not read it" in capsys.readouterr().err
    _reads(monkeypatch, "read_from", [blip, blip, blip])
    with pytest.raises(RemoteError, match=f"now specifies {image} but could not be read"):
        wait(_Cfg(), "prod", None, image, timeout=60, interval=1, sleep=lambda _s: None)  # type: ignore[arg-type]


def test_a_promote_whose_second_patch_fails_says_what_the_first_did(monkeypatch: pytest.MonkeyPatch) -> None:
    # Paused by hand at a pause step: two patches. The second refused (a webhook, a conflict):
    # the user must learn the pause conditions are already cleared, and that a re-run finishes it.
    from dex_tasks.errors import CommandFailed, RemoteError  # noqa: PLC0415

    paused = {"phase": "Paused", "currentStepIndex": 1, "pauseConditions": [{"reason": "CanaryPauseStep"}]}
    data = rollout({**paused, "stableRS": "a", "currentPodHash": "b"}, paused=True)
    state = rollouts.RolloutState.from_json(data, "dex")
    sent: list[str] = []

    class Kube:
        def merge_patch(self, *args: str, **_kwargs: str) -> None:
            sent.append(args[-1])  # kind, name, namespace, patch
            if len(sent) == 2:
                tail = (
                    'Error from server (InternalError): Internal error occurred: failed calling webhook "x"'
                )
                raise CommandFailed("kubectl patch failed", argv=["kubectl"], returncode=1, stderr_tail=tail)

    _reads(monkeypatch, "read", [state])
    monkeypatch.setattr(rollouts, "_kube", lambda *_a: Kube())
    monkeypatch.setattr(cluster, "argocd_server_for", lambda *_a: None)
    monkeypatch.setattr(argocd, "in_use", lambda **_k: False)
    with pytest.raises(RemoteError) as raised:
        rollouts.promote(_Cfg(), "prod")  # type: ignore[arg-type]
    assert len(sent) == 2
    assert "failed calling webhook" in str(raised.value)
    assert "already done: pauseConditions cleared" in str(raised.value)
