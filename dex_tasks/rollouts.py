"""Argo Rollouts: read a Rollout like ``kubectl argo rollouts get``, and promote or abort it.

Pure parsing (:meth:`RolloutState.from_json`) follows the plugin
(argoproj/argo-rollouts ``pkg/kubectl-argo-rollouts/info/rollout_info.go``):

* phase: ``utils/rollout.GetRolloutPhase`` - Progressing while ``status.observedGeneration`` lags
  ``metadata.generation`` or while unpausing (``controllerPause`` with no pause conditions left),
  else the controller's ``status.phase`` (v1.0+), else a client-side fallback.
* step ``n/N``: ``status.currentStepIndex`` of ``len(spec.strategy.canary.steps)`` (canary with
  steps only).
* weight: the traffic router's ``status.canary.weights.canary.weight`` when present, else the
  desired weight (``replicasetutil.GetCurrentSetWeight``: 0 when aborted, 100 past the last step,
  else the newest ``setWeight`` at or before the current step).
* stable / canary (blue-green: preview) images: the pod templates of the ReplicaSets whose
  ``rollouts-pod-template-hash`` is ``status.stableRS`` / ``status.currentPodHash``; digests from
  those ReplicaSets' pods' ``imageID``.
* analysis: the AnalysisRuns the Rollout owns (``info/analysisrun_info.go`` ``getAnalysisRunInfo``:
  by owner UID), those of the revision being rolled out, ordered like the plugin (revision, then
  creation); each with its ``status.phase`` and ``rollout-type`` (Step, Background).

The writes are the plugin's merge patches on the status subresource
(``pkg/kubectl-argo-rollouts/cmd/promote/promote.go``, ``abort/abort.go``), sent with plain
kubectl, or Argo CD's Rollout resource actions when Argo CD is configured (Argo CD's self-heal
would otherwise fight a direct write to a resource it manages only for spec, not status - the
actions are what Argo CD's UI uses).
"""

from __future__ import annotations

import dataclasses
import json
import time
from typing import TYPE_CHECKING, Any

from dex_tasks import cluster, proc, progress
from dex_tasks.errors import CommandFailed, RemoteError, UsageError
from dex_tasks.tools import argocd
from dex_tasks.tools.kubectl import Pod, last_line, selector_string

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from dex_tasks.config import Config
    from dex_tasks.tools.kubectl import Kubectl

KIND = "rollouts.argoproj.io"
ANALYSIS_KIND = "analysisruns.argoproj.io"
RUNNING = frozenset({"", "Pending", "Running"})  # AnalysisPhase not Completed()
HASH_LABEL = "rollouts-pod-template-hash"
SETTLED = frozenset({"Healthy", "Paused", "Degraded"})
POLL_INTERVAL = 2.0

# The plugin's patches (promote.go, abort.go).
UNPAUSE_PATCH = {"spec": {"paused": False}}
CLEAR_PAUSE_CONDITIONS_PATCH = {"status": {"pauseConditions": None}}
PROMOTE_FULL_PATCH = {"status": {"promoteFull": True}}
ABORT_PATCH = {"status": {"abort": True}}


@dataclasses.dataclass(frozen=True, kw_only=True)
class Analysis:
    """One AnalysisRun of the update, as the plugin lists it."""

    name: str
    phase: str  # Pending | Running | Successful | Failed | Error | Inconclusive
    kind: str  # the run's rollout-type label: Step | Background (blue-green: PrePromotion, ...)
    message: str

    @property
    def running(self) -> bool:
        return self.phase in RUNNING

    def as_json(self) -> dict[str, str]:
        return {
            "name": self.name,
            "phase": self.phase or "Pending",
            "type": self.kind,
            "message": self.message,
        }


def analysis_runs(items: list[Mapping[str, Any]], owner_uid: str, pod_hash: str) -> tuple[Analysis, ...]:
    """The runs ``owner_uid`` owns for ``pod_hash``, newest revision first, then oldest created."""
    found: list[tuple[int, str, str, Analysis]] = []
    for item in items:
        meta = item.get("metadata") or {}
        owners = meta.get("ownerReferences") or []
        if not owner_uid or not any(o.get("uid") == owner_uid for o in owners if isinstance(o, dict)):
            continue
        labels = meta.get("labels") or {}
        if pod_hash and labels.get(HASH_LABEL) != pod_hash:
            continue
        status = item.get("status") or {}
        revision = str((meta.get("annotations") or {}).get("rollout.argoproj.io/revision", "0"))
        run = Analysis(
            name=str(meta.get("name", "")), phase=str(status.get("phase") or ""),
            kind=str(labels.get("rollout-type", "")), message=str(status.get("message") or ""),
        )  # fmt: skip
        found.append((-int(revision) if revision.isdigit() else 0, str(meta.get("creationTimestamp", "")),
                      run.name, run))  # fmt: skip
    found.sort(key=lambda entry: entry[2], reverse=True)  # the plugin's last key: name, descending
    found.sort(key=lambda entry: (entry[0], entry[1]))  # stable: revision (newest first), creation
    return tuple(entry[3] for entry in found)


@dataclasses.dataclass(frozen=True, kw_only=True)
class RolloutState:
    """What the plugin shows of one Rollout (images filled in from its ReplicaSets later)."""

    namespace: str
    name: str
    strategy: str  # "canary" | "bluegreen"
    phase: str
    message: str
    step: int | None
    steps: int | None
    weight: int | None
    paused: bool  # spec.paused
    pause_conditions: int
    aborted: bool
    stable_hash: str
    current_hash: str
    template_image: str | None
    observed: bool = True  # status.observedGeneration == metadata.generation
    stable_image: str | None = None
    new_image: str | None = None  # the canary's (blue-green: the preview's); None when none runs
    stable_digest: str | None = None
    new_digest: str | None = None
    pods: tuple[Pod, ...] = ()  # every pod of the Rollout's selector (for the live check)
    uid: str = ""
    analysis: tuple[Analysis, ...] = ()  # the update's AnalysisRuns (none when not updating)

    @property
    def updating(self) -> bool:
        return bool(self.current_hash) and self.current_hash != self.stable_hash

    @classmethod
    def from_json(cls, data: Mapping[str, Any], container: str) -> RolloutState:
        meta = data.get("metadata") or {}
        spec = data.get("spec") or {}
        status = data.get("status") or {}
        strategy = spec.get("strategy") or {}
        blue_green = "blueGreen" in strategy
        steps = list(((strategy.get("canary") or {}).get("steps")) or [])
        index = status.get("currentStepIndex")
        has_step = not blue_green and bool(steps) and isinstance(index, int)
        containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
        phase, message = _phase(meta, spec, status)
        return cls(
            namespace=str(meta.get("namespace", "")),
            name=str(meta.get("name", "")),
            strategy="bluegreen" if blue_green else "canary",
            phase=phase,
            message=message,
            step=index if has_step and isinstance(index, int) else None,
            steps=len(steps) if has_step else None,
            weight=None if blue_green else _weight(steps, status),
            paused=bool(spec.get("paused")),
            pause_conditions=len(status.get("pauseConditions") or []),
            aborted=bool(status.get("abort")),
            stable_hash=str(status.get("stableRS") or ""),
            current_hash=str(status.get("currentPodHash") or ""),
            template_image=next((c.get("image") for c in containers if c.get("name") == container), None),
            observed=str(status.get("observedGeneration", "")) == str(meta.get("generation", "")),
            uid=str(meta.get("uid", "")),
        )

    def as_json(self, env: str) -> dict[str, Any]:
        new_key = "preview" if self.strategy == "bluegreen" else "canary"
        return {
            "task": "rollout", "env": env, "namespace": self.namespace, "name": self.name,
            "strategy": self.strategy, "phase": self.phase, "message": self.message, "step": self.step,
            "steps": self.steps, "weight": self.weight, "stable_image": self.stable_image,
            "stable_digest": self.stable_digest, f"{new_key}_image": self.new_image,
            f"{new_key}_digest": self.new_digest, "analysis": [run.as_json() for run in self.analysis],
        }  # fmt: skip

    def summary(self) -> str:
        parts = [f"{self.namespace}/{self.name} {self.phase}"]
        if self.message:
            parts[0] += f" ({self.message})"
        if self.step is not None:
            parts.append(f"step {self.step}/{self.steps}")
        if self.weight is not None:
            parts.append(f"weight {self.weight}%")
        parts += [f"analysis {run.name} {run.phase or 'Pending'}" for run in self.analysis if run.running]
        return ", ".join(parts)


def _phase(meta: Mapping[str, Any], spec: Mapping[str, Any], status: Mapping[str, Any]) -> tuple[str, str]:  # noqa: PLR0911 - one return per rule of GetRolloutPhase
    """``rolloututil.GetRolloutPhase``."""
    observed = str(status.get("observedGeneration", ""))
    if observed.isdigit() and int(observed) < int(meta.get("generation") or 0):
        return "Progressing", "waiting for rollout spec update to be observed"
    if status.get("controllerPause") and not status.get("pauseConditions"):
        return "Progressing", "waiting for rollout to unpause"
    if status.get("phase"):
        return str(status["phase"]), str(status.get("message") or "")
    # Controllers before v1.0 leave the phase to the client (CalculateRolloutPhase), in short:
    if status.get("abort"):
        return "Degraded", "RolloutAborted"
    if spec.get("paused"):
        return "Paused", "manually paused"
    for condition in status.get("pauseConditions") or []:
        return "Paused", str(condition.get("reason", ""))
    if status.get("stableRS") and status.get("stableRS") == status.get("currentPodHash"):
        return "Healthy", ""
    return "Progressing", "waiting for all steps to complete"


def _weight(steps: list[Any], status: Mapping[str, Any]) -> int:
    weights = (status.get("canary") or {}).get("weights") or {}
    actual = (weights.get("canary") or {}).get("weight")
    if isinstance(actual, int):
        return actual
    if status.get("abort"):
        return 0
    index = status.get("currentStepIndex")
    index = index if isinstance(index, int) else 0
    if not steps or index >= len(steps):
        return 100
    for step in reversed(steps[: index + 1]):
        if isinstance(step, dict) and isinstance(step.get("setWeight"), int):
            return int(step["setWeight"])
    return 0


def _templates(replicasets: list[Mapping[str, Any]], container: str) -> dict[str, str]:
    """pod-template-hash -> the container's image in that ReplicaSet's pod template."""
    images: dict[str, str] = {}
    for rs in replicasets:
        labels = (rs.get("metadata") or {}).get("labels") or {}
        containers = ((rs.get("spec") or {}).get("template") or {}).get("spec", {}).get("containers") or []
        image = next((c.get("image") for c in containers if c.get("name") == container), None)
        if labels.get(HASH_LABEL) and image:
            images[str(labels[HASH_LABEL])] = str(image)
    return images


def _digests(pods: list[Mapping[str, Any]], container: str) -> dict[str, str]:
    """pod-template-hash -> the digest its pods run (the first pod that reports one)."""
    found: dict[str, str] = {}
    for item in pods:
        labels = (item.get("metadata") or {}).get("labels") or {}
        pod = Pod.from_json(item, container)
        if labels.get(HASH_LABEL) and pod.digest and not pod.terminating:
            found.setdefault(str(labels[HASH_LABEL]), pod.digest)
    return found


def with_images(
    state: RolloutState, replicasets: list[Mapping[str, Any]], pods: list[Mapping[str, Any]], container: str
) -> RolloutState:
    images = _templates(replicasets, container)
    digests = _digests(pods, container)
    stable_image = images.get(state.stable_hash) or (None if state.updating else state.template_image)
    new_image = (images.get(state.current_hash) or state.template_image) if state.updating else None
    return dataclasses.replace(
        state, stable_image=stable_image, new_image=new_image, stable_digest=digests.get(state.stable_hash),
        new_digest=digests.get(state.current_hash) if state.updating else None,
    )  # fmt: skip


def _kube(cfg: Config, env: str, what: str) -> Kubectl:
    proc.require("kubectl")
    problem = cluster.access_problem(cfg)
    if problem is not None:
        raise UsageError(f"{what} needs cluster access: {problem}")
    return cluster.kubectl_for(cfg, env)


def read(cfg: Config, env: str, *, what: str = "rollout status") -> RolloutState:
    """ENV's Rollout (``[tool.dex] deployment`` in ``namespace``) with its images and digests."""
    state = read_from(_kube(cfg, env, what), cfg.namespace_for(env), cfg)
    if state is None:
        raise UsageError(
            f"rollout {cfg.deployment} not found in namespace {cfg.namespace_for(env)} (is it a Rollout?)"
        )
    return state


def read_from(kube: Kubectl, namespace: str, cfg: Config) -> RolloutState | None:
    """The Rollout ``cfg.deployment`` in ``namespace`` (None: there is none), read-only."""
    data = kube.get_json(KIND, cfg.deployment, namespace=namespace)
    if data is None:
        return None
    state = RolloutState.from_json(data, cfg.container)
    selector = selector_string(((data.get("spec") or {}).get("selector") or {}).get("matchLabels") or {})
    replicasets = (kube.get_json("replicasets", namespace=namespace, selector=selector or None) or {}).get(
        "items"
    ) or []
    pods = (kube.get_json("pods", namespace=namespace, selector=selector or None) or {}).get("items") or []
    state = with_images(state, replicasets, pods, cfg.container)
    runs: tuple[Analysis, ...] = ()
    if state.updating:  # the runs of the revision being rolled out (the controller owns them)
        items = (kube.get_json(ANALYSIS_KIND, namespace=namespace, selector=selector or None) or {}).get(
            "items"
        )
        runs = analysis_runs(items or [], state.uid, state.current_hash)
    return dataclasses.replace(
        state, pods=tuple(Pod.from_json(item, cfg.container) for item in pods), analysis=runs
    )


def detect(kube: Kubectl, namespace: str, cfg: Config) -> RolloutState | None:
    """:func:`read_from` for a cluster that may not have Argo Rollouts at all (no CRD: None)."""
    try:
        return read_from(kube, namespace, cfg)
    except RemoteError as exc:
        if "doesn't have a resource type" in str(exc):  # kubectl's words for an unknown kind
            return None
        raise


def live_problem(state: RolloutState, env: str) -> str | None:
    """Why the Rollout's stable revision is not a finished delivery (an update in progress, a
    phase other than Healthy, an abort), or None. The image itself is the caller's to compare."""
    if state.updating and not state.aborted:
        return (
            f"rollout {state.summary()} is still rolling {state.new_image} out (stable "
            f"{state.stable_image or 'none'}): not live yet; finish it with: dex-tasks rollout promote {env}"
        )
    return health_problem(state)


def health_problem(state: RolloutState) -> str | None:
    """Why ``verify`` must not call the Rollout healthy (Paused and Degraded are not), or None."""
    if state.phase == "Healthy":
        return None
    return f"rollout {state.summary()} is not Healthy"


def watch(
    cfg: Config, env: str, *, timeout: int, interval: float = POLL_INTERVAL,
    sleep: Callable[[float], None] = time.sleep,
) -> RolloutState:  # fmt: skip
    """Poll until the Rollout is Healthy, Paused or Degraded; :class:`RemoteError` (exit 4) when it
    is still progressing after ``timeout`` seconds. At most ``timeout / interval + 1`` polls."""
    interval = max(interval, 0.1)  # --interval 0: as fast as is sensible, still a bounded count
    attempts = int(timeout / interval) + 1
    deadline = time.monotonic() + timeout
    state = read(cfg, env)
    for attempt in range(2, attempts + 1):
        if state.phase in SETTLED or time.monotonic() + interval > deadline:
            break
        progress.waiting(
            f"rollout {state.namespace}/{state.name}", attempt, attempts, interval, state.summary()
        )
        sleep(interval)
        state = read(cfg, env)
    if state.phase not in SETTLED:
        raise RemoteError(f"rollout {state.summary()}: not Healthy, Paused or Degraded within {timeout}s")
    return state


def _patch(kube: Kubectl, namespace: str, name: str, patch: Mapping[str, Any], *, status: bool) -> None:
    text = json.dumps(patch, separators=(",", ":"))
    try:
        kube.merge_patch("rollout", name, namespace, text, subresource="status" if status else "")
    except CommandFailed as exc:  # an answer from the API server (no access raised already)
        raise RemoteError(
            f"kubectl patch rollout {namespace}/{name} failed: {last_line(exc.stderr_tail) or 'no output'}"
        ) from exc


def promote(cfg: Config, env: str, *, full: bool = False) -> tuple[RolloutState, list[str]]:
    """Promote ENV's Rollout to its next pause (``full``: to the end). Returns the state before
    and what was done. Exit 1-free: a Rollout with nothing to promote raises UsageError (exit 2)."""
    what = "rollout promote"
    state = read(cfg, env, what=what)
    if not state.updating and not state.paused:
        raise UsageError(f"rollout {state.summary()}: no update in progress, nothing to promote")
    done: list[str] = []
    server = cluster.argocd_server_for(cfg, env)
    if argocd.in_use(server=server):
        action = "promote-full" if full else "resume"
        argocd.app_action_run(cfg.app_for(env), action, kind="Rollout", resource=state.name,
                              namespace=state.namespace, server=server)  # fmt: skip
        return state, [f"argocd {action}"]
    kube = _kube(cfg, env, what)
    if full:
        if state.updating:
            _patch(kube, state.namespace, state.name, PROMOTE_FULL_PATCH, status=True)
            done.append("promoteFull")
    elif state.pause_conditions:
        _patch(kube, state.namespace, state.name, CLEAR_PAUSE_CONDITIONS_PATCH, status=True)
        done.append("pauseConditions cleared")
    if state.paused:
        _patch(kube, state.namespace, state.name, UNPAUSE_PATCH, status=False)
        done.append("spec.paused=false")
    if not done:
        raise UsageError(f"rollout {state.summary()}: not paused, nothing to promote (try --full)")
    return state, done


def abort(cfg: Config, env: str, state: RolloutState | None = None) -> RolloutState:
    """Abort ENV's Rollout (``state``: as just read): the stable ReplicaSet takes all traffic again.
    Returns the state before."""
    what = "rollout abort"
    state = state or read(cfg, env, what=what)
    if not state.updating:
        raise UsageError(f"rollout {state.summary()}: no update in progress, nothing to abort")
    server = cluster.argocd_server_for(cfg, env)
    if argocd.in_use(server=server):
        argocd.app_action_run(cfg.app_for(env), "abort", kind="Rollout", resource=state.name,
                              namespace=state.namespace, server=server)  # fmt: skip
        return state
    _patch(_kube(cfg, env, what), state.namespace, state.name, ABORT_PATCH, status=True)
    return state


def emergency(cfg: Config, env: str, image: str, *, timeout: int, interval: float | None = None,
              sleep: Callable[[float], None] = time.sleep) -> None:  # fmt: skip
    """``rollback --emergency`` for a Rollout: ``kubectl set image`` knows only the built-in
    workloads, so a JSON patch of the container's image in the pod template (``test`` on its name
    first: the index is the one just read), then the Rollout read until it is Healthy on ``image``.

    A rollback to the stable ReplicaSet's template is stable at once (the controller has nothing
    to step through); to any other revision the controller would start the canary steps again, so
    once it has observed the new template, ``promoteFull`` skips them - the plugin's ``promote
    --full``. Degraded, or not done within ``timeout`` seconds: :class:`RemoteError` (exit 4) saying
    the Rollout now specifies ``image``. Bad names are exit 2 before anything is written.
    """
    what = "rollback --emergency"
    kube = _kube(cfg, env, what)
    namespace = cfg.namespace_for(env)
    data = kube.get_json(KIND, cfg.deployment, namespace=namespace)
    if data is None:
        raise UsageError(f"rollout {cfg.deployment} not found in namespace {namespace}: nothing changed")
    containers = ((data.get("spec") or {}).get("template") or {}).get("spec", {}).get("containers") or []
    index = next((i for i, c in enumerate(containers) if c.get("name") == cfg.container), None)
    if index is None:
        names = ", ".join(str(c.get("name")) for c in containers) or "none"
        raise UsageError(
            f"rollout {namespace}/{cfg.deployment} has no container {cfg.container!r} "
            f"(containers: {names}): nothing changed"
        )
    path = f"/spec/template/spec/containers/{index}"
    patch = [
        {"op": "test", "path": f"{path}/name", "value": cfg.container},
        {"op": "replace", "path": f"{path}/image", "value": image},
    ]
    where = f"{namespace}/{cfg.deployment}"
    try:
        kube.json_patch("rollout", cfg.deployment, namespace, json.dumps(patch, separators=(",", ":")))
    except CommandFailed as exc:
        raise RemoteError(
            f"kubectl patch rollout {where} failed: {last_line(exc.stderr_tail) or 'no output'}"
        ) from exc
    if proc.is_dry_run():  # the patch was only printed: nothing to wait for (nor to promote)
        return
    interval = POLL_INTERVAL if interval is None else interval  # read now: tests shorten it
    _wait_emergency(cfg, env, kube, image, timeout=timeout, interval=interval, sleep=sleep)


def _wait_emergency(
    cfg: Config, env: str, kube: Kubectl, image: str, *, timeout: int, interval: float,
    sleep: Callable[[float], None],
) -> None:  # fmt: skip
    namespace = cfg.namespace_for(env)
    interval = max(interval, 0.1)
    attempts = int(timeout / interval) + 1
    deadline = time.monotonic() + timeout
    promoted = False
    state: RolloutState | None = None
    for attempt in range(1, attempts + 1):
        state = read_from(kube, namespace, cfg)
        if state is None:
            raise RemoteError(
                f"rollout {namespace}/{cfg.deployment} disappeared during the emergency rollback"
            )
        mine = state.observed and state.template_image == image
        if mine and state.phase == "Healthy" and not state.updating:
            return
        if mine and state.phase == "Degraded":
            break
        if mine and state.updating and not promoted:
            _patch(kube, namespace, state.name, PROMOTE_FULL_PATCH, status=True)
            promoted = True
        if attempt == attempts or time.monotonic() + interval > deadline:
            break
        progress.waiting(f"rollout {namespace}/{state.name} on {image}", attempt + 1, attempts, interval,
                         state.summary())  # fmt: skip
        sleep(interval)
    summary = state.summary() if state else f"{namespace}/{cfg.deployment}"
    raise RemoteError(
        f"rollout did not complete: rollout {namespace}/{cfg.deployment} now specifies {image} but it was "
        f"not seen Healthy within {timeout}s ({summary}); inspect with: dex-tasks rollout status {env}"
    )
