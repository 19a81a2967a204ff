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
  and phase ``Paused`` (message ``CanaryPauseStep``), its ``startTime`` the controller's now. A
  timed pause (``pause: {duration: 30s}``) is over once now is after ``startTime`` + duration
  (``rollout/pause.go`` ``CompletedCanaryPauseStep``); the controller requeues the Rollout for that
  moment (``checkEnqueueRolloutDuringWait``). "Now" is the ``now`` argument - the fake API
  server's own clock, which tests move (:meth:`FakeKube.advance`): no test sleeps through a pause.
* Analysis (``rollout/analysis.go``): an ``analysis`` step creates an AnalysisRun named
  ``<rollout>-<pod hash>-<revision>-<step index>`` (``newAnalysisRunFromRollout``) labelled
  ``rollout-type: Step``, ``step-index`` and the pod hash, owned by the Rollout; the step is
  complete when the run is ``Successful`` (``completedCurrentCanaryStep``). Background analysis
  (``spec.strategy.canary.analysis``, from ``startingStep``) creates ``<rollout>-<pod
  hash>-<revision>`` (``rollout-type: Background``) that runs beside the steps. Their state is in
  ``status.canary.currentStepAnalysisRunStatus`` / ``currentBackgroundAnalysisRunStatus``
  (``{name, status, message}``). A run that is ``Failed`` or ``Error`` aborts the update with the
  message ``Step-based analysis phase error/failed: <run message>`` (``Background analysis ...``
  for the background run), appended to ``Rollout aborted update to revision N``. Once the update is
  fully promoted, aborted or promoted with ``promoteFull``, the runs still going are cancelled
  (``cancelAnalysisRuns``: ``spec.terminate: true``; the analysis controller then ends them
  ``Successful``, message ``Run Terminated``) and canary drops their status. The measurements
  themselves are not modelled: a test sets a run's phase (:meth:`FakeKube.set_analysis`).
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
import datetime as dt
import hashlib
import json
import re
from typing import Any

EPOCH = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
_DURATION = re.compile(r"^(\d+)(s|m|h)?$")
FAILED_PHASES = frozenset({"Failed", "Error"})


def _timestamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def duration_seconds(value: object) -> int | None:
    """``RolloutPause.DurationSeconds``: an int is seconds, a string ``30s``/``5m``/``1h``."""
    if isinstance(value, int):
        return value
    found = _DURATION.match(str(value or ""))
    if not found:
        return None
    return int(found.group(1)) * {"s": 1, "m": 60, "h": 3600, None: 1}[found.group(2)]


def analysis_run(ro: dict[str, Any], name: str, pod_hash: str, kind: str, *, templates: list[Any],
                 now: dt.datetime, step: int | None = None) -> dict[str, Any]:  # fmt: skip
    """The AnalysisRun ``newAnalysisRunFromRollout`` creates (metrics named after the templates)."""
    meta = ro["metadata"]
    labels = {"rollouts-pod-template-hash": pod_hash, "rollout-type": kind,
              **((ro["spec"].get("selector") or {}).get("matchLabels") or {})}  # fmt: skip
    if step is not None:
        labels["step-index"] = str(step)
    revision = (meta.get("annotations") or {}).get("rollout.argoproj.io/revision", "1")
    return {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisRun",
        "metadata": {
            "name": name, "namespace": meta["namespace"], "uid": f"uid-ar-{meta['namespace']}-{name}",
            "labels": labels, "annotations": {"rollout.argoproj.io/revision": revision},
            "creationTimestamp": _timestamp(now),
            "ownerReferences": [{"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
                                 "name": meta["name"], "uid": meta.get("uid", ""), "controller": True,
                                 "blockOwnerDeletion": True}],
        },
        "spec": {"metrics": [{"name": str((t or {}).get("templateName", "metric"))} for t in templates]},
        "status": {"phase": "Running", "startedAt": _timestamp(now)},
    }  # fmt: skip


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


def _run_status(run: dict[str, Any]) -> dict[str, Any]:
    out = {"name": run["metadata"]["name"], "status": run["status"].get("phase", "")}
    if run["status"].get("message"):
        out["message"] = run["status"]["message"]
    return out


def _analysis_failure(ro: dict[str, Any], current: str, runs: dict[str, dict[str, Any]]) -> str | None:
    """The abort message of a failed run of the current revision (step first), or None."""
    revision = (ro["metadata"].get("annotations") or {}).get("rollout.argoproj.io/revision", "1")
    for kind, words in (("Step", "Step-based"), ("Background", "Background")):
        for run in runs.values():
            meta = run["metadata"]
            labels = meta["labels"]
            if (labels.get("rollout-type") == kind and labels.get("rollouts-pod-template-hash") == current
                    and meta["annotations"].get("rollout.argoproj.io/revision") == revision
                    and meta["ownerReferences"][0]["name"] == ro["metadata"]["name"]
                    and run["status"].get("phase") in FAILED_PHASES):  # fmt: skip
                return f"{words} analysis phase error/failed: {run['status'].get('message', '')}"
    return None


def _cancel_runs(ro: dict[str, Any], runs: dict[str, dict[str, Any]]) -> None:
    """``cancelAnalysisRuns``: every run of this Rollout still going is terminated."""
    for run in runs.values():
        if run["metadata"]["ownerReferences"][0]["name"] == ro["metadata"]["name"] and (
            run["status"].get("phase") in {"Pending", "Running", ""}
        ):
            run["spec"]["terminate"] = True
            run["status"].update({"phase": "Successful", "message": "Run Terminated"})


def reconcile(  # noqa: PLR0912, PLR0915 - one sync, like syncRolloutStatusCanary
    rollout: dict[str, Any], *, now: dt.datetime | None = None, runs: dict[str, dict[str, Any]] | None = None
) -> tuple[dict[str, Any], dict[str, int]]:
    """The Rollout after one controller sync (a new object; the argument is not changed), and
    the replicas of each ReplicaSet it keeps (pod-template-hash -> replicas). ``now``: the
    controller's clock (default :data:`EPOCH`); ``runs``: the namespace's AnalysisRuns by name,
    which the sync creates and updates in place."""
    now = now or EPOCH
    runs = {} if runs is None else runs
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
    revision = (ro["metadata"].get("annotations") or {}).get("rollout.argoproj.io/revision", "1")
    failure = _analysis_failure(ro, current, runs) if stable != current else None
    if failure:
        status["abort"] = True  # pauseContext.AddAbort(message)
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
                    conditions = status.get("pauseConditions") or []
                    seconds = duration_seconds((step["pause"] or {}).get("duration"))
                    started = dt.datetime.fromisoformat(conditions[0]["startTime"]) if conditions else None
                    expired = (
                        seconds is not None
                        and started is not None
                        and now > started + dt.timedelta(seconds=seconds)
                    )
                    if (status.get("controllerPause") and not conditions) or expired:
                        status.pop("pauseConditions", None)  # CompletedCanaryPauseStep
                        status["controllerPause"] = False
                        index += 1
                        continue
                    if not conditions:
                        status["pauseConditions"] = [
                            {"reason": "CanaryPauseStep", "startTime": _timestamp(now)}
                        ]
                        status["controllerPause"] = True
                    break
                if "analysis" in step:
                    name = f"{ro['metadata']['name']}-{current}-{revision}-{index}"
                    templates = (step["analysis"] or {}).get("templates") or []
                    run = runs.setdefault(
                        name,
                        analysis_run(ro, name, current, "Step", templates=templates, now=now, step=index),
                    )
                    if run["status"].get("phase") == "Successful":
                        index += 1
                        continue
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

    canary_spec = strategy.get("canary") or {}
    background = canary_spec.get("analysis")
    # Background analysis from its startingStep (reconcileBackgroundAnalysisRun, after the steps ran:
    # the real controller creates it on the sync after the index got there; one sync here).
    if background and status["stableRS"] != current and not aborted and not blue_green:
        index = int(status.get("currentStepIndex") or 0)
        if index >= int(background.get("startingStep") or 0):
            name = f"{ro['metadata']['name']}-{current}-{revision}"
            runs.setdefault(
                name,
                analysis_run(
                    ro, name, current, "Background", templates=background.get("templates") or [], now=now
                ),
            )
    stable = status["stableRS"]
    canary_status = status.setdefault("canary", {}) if not blue_green else {}
    if stable == current or aborted or status.get("promoteFull"):
        _cancel_runs(ro, runs)  # shouldCancelCurrentAnalysis
        canary_status.pop("currentStepAnalysisRunStatus", None)
        canary_status.pop("currentBackgroundAnalysisRunStatus", None)
    elif not blue_green:
        index = int(status.get("currentStepIndex") or 0)
        step_run = runs.get(f"{ro['metadata']['name']}-{current}-{revision}-{index}")
        if step_run is not None:
            canary_status["currentStepAnalysisRunStatus"] = _run_status(step_run)
        else:
            canary_status.pop("currentStepAnalysisRunStatus", None)
        background_run = runs.get(f"{ro['metadata']['name']}-{current}-{revision}")
        if background_run is not None:
            canary_status["currentBackgroundAnalysisRunStatus"] = _run_status(background_run)
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
        canary: dict[str, Any] = {
            k: v
            for k, v in canary_status.items()
            if k.startswith("current") and k.endswith("AnalysisRunStatus")
        }
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
    status["phase"], status["message"] = _phase(ro, aborted=aborted, failure=failure)
    conditions = [{"type": "Available", "status": "True", "reason": "AvailableReason"}]
    if aborted:
        conditions.append({
            "type": "Progressing", "status": "False", "reason": "RolloutAborted",
            "message": _aborted_message(ro, failure),
        })  # fmt: skip
    else:
        conditions.append({"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"})
    status["conditions"] = conditions
    return ro, {stable: stable_replicas, current: canary_replicas if stable != current else replicas}


def _aborted_message(ro: dict[str, Any], failure: str | None) -> str:
    """``conditions.RolloutAbortedMessage`` with the abort's message (``rollout/sync.go``)."""
    revision = ro["metadata"].get("annotations", {}).get("rollout.argoproj.io/revision", "2")
    return f"Rollout aborted update to revision {revision}" + (f": {failure}" if failure else "")


def _phase(ro: dict[str, Any], *, aborted: bool, failure: str | None = None) -> tuple[str, str]:
    """``CalculateRolloutPhase`` for the states the fake produces."""
    spec, status = ro["spec"], ro["status"]
    if aborted:
        return "Degraded", f"RolloutAborted: {_aborted_message(ro, failure)}"
    if spec.get("paused"):
        return "Paused", "manually paused"
    for condition in status.get("pauseConditions") or []:
        return "Paused", str(condition["reason"])
    if status.get("stableRS") != status.get("currentPodHash"):
        return "Progressing", "waiting for all steps to complete"
    return "Healthy", ""
