"""dex_tasks.rollouts: the Rollout object read like the argo-rollouts plugin does (pure, no processes)."""

from __future__ import annotations

from typing import Any

import pytest

from dex_tasks import rollouts
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
