"""The Argo Rollouts controller, as far as ``dex-tasks rollout`` sees it, for the fake API server.

A pure function of the Rollout object: :func:`reconcile` returns the status the real controller
(argoproj/argo-rollouts, ``rollout/canary.go``, ``rollout/bluegreen.go``, ``utils/rollout``)
would write after one sync, and the ReplicaSets it would keep. What it reproduces:

* A template change (a new ``rollouts-pod-template-hash``) starts an update: ``currentPodHash``
  becomes the new hash, ``currentStepIndex`` 0, ``abort`` and ``promoteFull`` are cleared
  (``rollout/sync.go`` ``resetRolloutStatus``: ``RemoveAbort``, ``PromoteFull = false``), ``stableRS``
  stays the old hash. A template equal to the stable ReplicaSet's (a rollback to it) is the stable
  revision at once: nothing to step through.
* Canary steps run in order: ``setWeight`` completes at once (pods are "ready" immediately); a
  ``pause`` adds ``pauseConditions: [{reason: CanaryPauseStep}]`` with ``controllerPause: true``
  and phase ``Paused`` (message ``CanaryPauseStep``). A timed pause (``pause: {duration}``) is
  held like an indefinite one: the fake has no clock of its own.
* ``promote`` (the plugin's ``{"status":{"pauseConditions":null}}``, plus ``{"spec":{"paused":
  false}}`` when paused): pause conditions gone while ``controllerPause`` is true is what
  ``IsUnpausing`` calls unpausing; the step completes (``completedCurrentCanaryStep``) and the next
  steps run up to the next pause.
* ``promote --full`` (``{"status":{"promoteFull":true}}``): pause conditions cleared,
  ``currentStepIndex`` = len(steps), the new ReplicaSet becomes stable (``promoteStable``), and
  ``promoteFull`` is reset once it is.
* ``abort`` (``{"status":{"abort":true}}``): canary scaled to 0, ``currentStepIndex`` 0 (back to
  the first step while the stable differs from the current hash), pause conditions removed, phase
  ``Degraded`` with message ``RolloutAborted: Rollout aborted update to revision N`` and a
  ``Progressing`` condition of reason ``RolloutAborted`` (``utils/conditions``). The stable
  ReplicaSet serves everything.
* ``spec.paused: true``: phase ``Paused``, message ``manually paused``, no step advances.
* Blue-green (``rollout/bluegreen.go``, ``rollout/service.go``; ``spec.strategy.blueGreen`` with
  ``autoPromotionEnabled: false``): the new ReplicaSet is scaled up to ``spec.replicas`` beside the
  stable one and the preview Service points at it (``reconcilePreviewService``:
  ``status.blueGreen.previewSelector`` = the new hash), while the active Service stays on the stable
  hash (``activeSelector``); the rollout pauses with a ``BlueGreenPause`` pause condition
  (``reconcileBlueGreenPause``), phase ``Paused``. Promote (pause conditions cleared while
  ``controllerPause``: ``CompletedBlueGreenPause``) switches the active Service to the new hash and
  ``promoteStable`` makes it stable (phase Healthy; the old ReplicaSet is scaled down at once, after
  ``scaleDownDelaySeconds``, default 30s, in the controller). Abort:
  ``reconcileActiveService`` sends the active Service back to ``status.stableRS``; the preview
  Service keeps the new hash (``reconcilePreviewService`` halts only for a user pause or an
  inconclusive analysis, not for an abort), and the new ReplicaSet is scaled to 0 - at once here,
  after ``abortScaleDownDelaySeconds`` (default 30s) in the controller; phase ``Degraded`` with the
  ``RolloutAborted`` message as for canary. The Services' selectors themselves are switched by the
  fake API server (``FakeKube._switch_services``) from the selectors this returns.
* Canary with ``trafficRouting``: ``status.canary.weights`` ``{canary: {weight, podTemplateHash},
  stable: {...}}`` as the traffic-router reconciler records them.

Phase and message are computed controller-side since v1.0 (``status.phase``/``status.message``),
with the rules of ``CalculateRolloutPhase``.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any


def pod_hash(template: dict[str, Any]) -> str:
    """A stable stand-in for ``controller.ComputeHash(template, collisionCount)``."""
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()
    return digest[:10]


def _steps(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return list(((spec.get("strategy") or {}).get("canary") or {}).get("steps") or [])


def set_weight(spec: dict[str, Any], status: dict[str, Any]) -> int:
    """``replicasetutil.GetCurrentSetWeight``: 0 when aborted, 100 past the last step, else the
    newest ``setWeight`` at or before the current step."""
    if status.get("abort"):
        return 0
    steps = _steps(spec)
    index = int(status.get("currentStepIndex") or 0)
    if not steps or index >= len(steps):
        return 100
    for step in reversed(steps[: index + 1]):
        if "setWeight" in step:
            return int(step["setWeight"])
    return 0


def reconcile(rollout: dict[str, Any]) -> tuple[dict[str, Any], dict[str, int]]:  # noqa: PLR0912, PLR0915 - one sync, like syncRolloutStatusCanary
    """The Rollout after one controller sync (a new object; the argument is not changed), and
    the replicas of each ReplicaSet it keeps (pod-template-hash -> replicas)."""
    ro = copy.deepcopy(rollout)
    spec, status = ro["spec"], ro.setdefault("status", {})
    strategy = spec.get("strategy") or {}
    blue_green = "blueGreen" in strategy
    steps = _steps(spec)
    current = pod_hash(spec["template"])
    generation = int(ro["metadata"].get("generation", 1))
    replicas = int(spec.get("replicas", 1))
    status["observedGeneration"] = str(generation)  # a string in the Rollout API (v0.9 legacy)

    if not status.get("stableRS"):  # the first revision becomes stable at once
        status["stableRS"] = current
        status["currentPodHash"] = current
    if status.get("currentPodHash") != current:  # a new revision: a new update starts
        status["currentPodHash"] = current
        status["currentStepIndex"] = 0
        status.pop("abort", None)
        status.pop("pauseConditions", None)
        status.pop("promoteFull", None)  # resetRolloutStatus: PromoteFull = false
        status["controllerPause"] = False
    if status.get("promoteFull"):
        status.pop("pauseConditions", None)
        status.pop("abort", None)
        status["controllerPause"] = False
        status["currentStepIndex"] = len(steps)
        status["stableRS"] = current

    stable = status["stableRS"]
    aborted = bool(status.get("abort")) and stable != current
    if aborted:
        status.pop("pauseConditions", None)
        status["controllerPause"] = False
        if steps:
            status["currentStepIndex"] = 0
    elif stable != current and not spec.get("paused"):
        if blue_green:
            if status.get("controllerPause") and not status.get("pauseConditions"):
                status["controllerPause"] = False  # promoted: cut over
                status["stableRS"] = current
            elif not status.get("pauseConditions"):
                status["pauseConditions"] = [
                    {"reason": "BlueGreenPause", "startTime": "2026-01-01T00:00:00Z"}
                ]
                status["controllerPause"] = True
        else:
            index = int(status.get("currentStepIndex") or 0)
            for _ in range(len(steps) + 1):  # bounded: every pass completes a step or stops
                if index >= len(steps):
                    status["stableRS"] = current
                    break
                step = steps[index]
                if "pause" in step:
                    if status.get("controllerPause") and not status.get("pauseConditions"):
                        status["controllerPause"] = False  # IsUnpausing: the step is complete
                        index += 1
                        continue
                    if not status.get("pauseConditions"):
                        status["pauseConditions"] = [
                            {"reason": "CanaryPauseStep", "startTime": "2026-01-01T00:00:00Z"}
                        ]
                        status["controllerPause"] = True
                    break
                index += 1  # setWeight (and anything else): done at once
            status["currentStepIndex"] = index
    if status.get("stableRS") == current:
        status.pop("pauseConditions", None)
        status["controllerPause"] = False
        status.pop("promoteFull", None)
        status.pop("abort", None)
        if steps:
            status["currentStepIndex"] = len(steps)
    stable = status["stableRS"]

    weight = 0 if stable == current else set_weight(spec, status)
    if blue_green:
        status["blueGreen"] = {
            "activeSelector": stable,
            "previewSelector": current,
        }
        status.pop("canary", None)
        canary_replicas = 0 if (stable == current or aborted) else replicas
    else:
        canary_replicas = 0 if stable == current else -(-replicas * weight // 100)
        canary: dict[str, Any] = {}
        if "trafficRouting" in (strategy.get("canary") or {}):
            canary["weights"] = {
                "canary": {"weight": weight, "podTemplateHash": current},
                "stable": {"weight": 100 - weight, "podTemplateHash": stable},
            }
        status["canary"] = canary
    stable_replicas = replicas
    if not blue_green and stable != current:
        stable_replicas = max(replicas - canary_replicas, 0) if weight < 100 else 0
        stable_replicas = replicas if aborted else stable_replicas
    total = stable_replicas + (canary_replicas if stable != current else 0)
    updated = replicas if stable == current else canary_replicas
    status.update({
        "replicas": total,
        "updatedReplicas": updated,
        "readyReplicas": total,
        "availableReplicas": total,
        "selector": f"app.kubernetes.io/name={ro['metadata']['name']}",
    })  # fmt: skip
    status["phase"], status["message"] = _phase(ro, aborted=aborted)
    conditions = [{"type": "Available", "status": "True", "reason": "AvailableReason"}]
    if aborted:
        revision = ro["metadata"].get("annotations", {}).get("rollout.argoproj.io/revision", "2")
        conditions.append({
            "type": "Progressing", "status": "False", "reason": "RolloutAborted",
            "message": f"Rollout aborted update to revision {revision}",
        })  # fmt: skip
    else:
        conditions.append({"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"})
    status["conditions"] = conditions
    return ro, {stable: stable_replicas, current: canary_replicas if stable != current else replicas}


def _phase(ro: dict[str, Any], *, aborted: bool) -> tuple[str, str]:
    """``CalculateRolloutPhase`` for the states the fake produces."""
    spec, status = ro["spec"], ro["status"]
    if aborted:
        revision = ro["metadata"].get("annotations", {}).get("rollout.argoproj.io/revision", "2")
        return "Degraded", f"RolloutAborted: Rollout aborted update to revision {revision}"
    if spec.get("paused"):
        return "Paused", "manually paused"
    for condition in status.get("pauseConditions") or []:
        return "Paused", str(condition["reason"])
    if status.get("stableRS") != status.get("currentPodHash"):
        return "Progressing", "waiting for all steps to complete"
    return "Healthy", ""
