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
from dex_tasks.errors import (
    CommandFailed,
    DexError,
    ForbiddenError,
    NoRolloutsError,
    RemoteError,
    RolloutIncompleteError,
    UsageError,
)
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
# Failed reads in a row that a wait survives (an API server restarting, a dropped connection);
# a wait of minutes must not end on one. RBAC (Forbidden) does not heal: never retried.
READ_RETRIES = 3

# The plugin's patches (promote.go, abort.go).
UNPAUSE_PATCH = {"spec": {"paused": False}}
CLEAR_PAUSE_CONDITIONS_PATCH = {"status": {"pauseConditions": None}}
PROMOTE_FULL_PATCH = {"status": {"promoteFull": True}}
ABORT_PATCH = {"status": {"abort": True}}


def _map(value: Any) -> Mapping[str, Any]:
    """``value`` if it is a JSON object, else empty: a CRD's fields are only as typed as its schema
    (``x-kubernetes-preserve-unknown-fields``, an old CRD, a hand-applied object), so a null or a
    wrongly typed field reads as absent rather than as a traceback."""
    return value if isinstance(value, dict) else {}


def _maps(value: Any) -> list[Mapping[str, Any]]:
    """The JSON objects of ``value`` if it is a list (anything else in it is skipped), else []."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _count(value: Any) -> int | None:
    """A JSON integer that is not negative (``true`` is not 2's complement of a step), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _text(value: Any) -> str:
    """A JSON string or number as text; null, objects and lists as empty."""
    return str(value) if isinstance(value, str | int | float) and not isinstance(value, bool) else ""


def _image(containers: Any, container: str) -> str | None:
    """The image of the container named ``container`` in a pod template's ``containers``."""
    return next(
        (_text(c.get("image")) or None for c in _maps(containers) if c.get("name") == container), None
    )


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


def analysis_runs(items: Any, owner_uid: str, pod_hash: str) -> tuple[Analysis, ...]:
    """The runs ``owner_uid`` owns for ``pod_hash``, newest revision first, then oldest created."""
    found: list[tuple[int, str, str, Analysis]] = []
    for item in _maps(items):
        meta = _map(item.get("metadata"))
        owners = _maps(meta.get("ownerReferences"))
        if not owner_uid or not any(o.get("uid") == owner_uid for o in owners):
            continue
        labels = _map(meta.get("labels"))
        if pod_hash and labels.get(HASH_LABEL) != pod_hash:
            continue
        status = _map(item.get("status"))
        revision = _text(_map(meta.get("annotations")).get("rollout.argoproj.io/revision"))
        run = Analysis(
            name=_text(meta.get("name")), phase=_text(status.get("phase")),
            kind=_text(labels.get("rollout-type")), message=_text(status.get("message")),
        )  # fmt: skip
        found.append((-int(revision) if revision.isdigit() else 0, _text(meta.get("creationTimestamp")),
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
        meta = _map(data.get("metadata"))
        spec = _map(data.get("spec"))
        status = _map(data.get("status"))
        strategy = _map(spec.get("strategy"))
        blue_green = "blueGreen" in strategy
        canary = _map(strategy.get("canary"))
        listed = canary.get("steps")
        steps: list[Any] = listed if isinstance(listed, list) else []
        # The controller keeps currentStepIndex within 0..len(steps); anything else is not a step.
        index = _count(status.get("currentStepIndex"))
        has_step = not blue_green and bool(steps) and index is not None and index <= len(steps)
        pause_conditions = status.get("pauseConditions")
        phase, message = _phase(meta, spec, status)
        return cls(
            namespace=_text(meta.get("namespace")),
            name=_text(meta.get("name")),
            strategy="bluegreen" if blue_green else "canary",
            phase=phase,
            message=message,
            step=index if has_step else None,
            steps=len(steps) if has_step else None,
            weight=None if blue_green else _weight(steps, status),
            paused=spec.get("paused") is True,
            pause_conditions=len(pause_conditions) if isinstance(pause_conditions, list) else 0,
            aborted=status.get("abort") is True,
            stable_hash=_text(status.get("stableRS")),
            current_hash=_text(status.get("currentPodHash")),
            template_image=_image(_map(_map(spec.get("template")).get("spec")).get("containers"), container),
            observed=_text(status.get("observedGeneration")) == _text(meta.get("generation")),
            uid=_text(meta.get("uid")),
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
    observed, generation = _text(status.get("observedGeneration")), _text(meta.get("generation"))
    if observed.isdigit() and generation.isdigit() and int(observed) < int(generation):
        return "Progressing", "waiting for rollout spec update to be observed"
    pause_conditions = _maps(status.get("pauseConditions"))
    if status.get("controllerPause") is True and not pause_conditions:
        return "Progressing", "waiting for rollout to unpause"
    if _text(status.get("phase")):
        return _text(status["phase"]), _text(status.get("message"))
    # Controllers before v1.0 leave the phase to the client (CalculateRolloutPhase), in short:
    if status.get("abort") is True:
        return "Degraded", "RolloutAborted"
    if spec.get("paused") is True:
        return "Paused", "manually paused"
    for condition in pause_conditions:
        return "Paused", _text(condition.get("reason"))
    if _text(status.get("stableRS")) and status.get("stableRS") == status.get("currentPodHash"):
        return "Healthy", ""
    return "Progressing", "waiting for all steps to complete"


def _weight(steps: list[Any], status: Mapping[str, Any]) -> int:
    actual = _count(_map(_map(_map(status.get("canary")).get("weights")).get("canary")).get("weight"))
    if actual is not None:
        return actual
    if status.get("abort") is True:
        return 0
    index = _count(status.get("currentStepIndex")) or 0
    if not steps or index >= len(steps):
        return 100
    for step in reversed(steps[: index + 1]):
        weight = _count(step.get("setWeight")) if isinstance(step, dict) else None
        if weight is not None:
            return weight
    return 0


def _templates(replicasets: list[Mapping[str, Any]], container: str) -> dict[str, str]:
    """pod-template-hash -> the container's image in that ReplicaSet's pod template."""
    images: dict[str, str] = {}
    for rs in _maps(replicasets):
        labels = _map(_map(rs.get("metadata")).get("labels"))
        template = _map(_map(rs.get("spec")).get("template"))
        image = _image(_map(template.get("spec")).get("containers"), container)
        if _text(labels.get(HASH_LABEL)) and image:
            images[_text(labels[HASH_LABEL])] = image
    return images


def _digests(pods: list[Mapping[str, Any]], container: str) -> dict[str, str]:
    """pod-template-hash -> the digest its pods run (the first pod that reports one)."""
    found: dict[str, str] = {}
    for item in _maps(pods):
        labels = _map(_map(item.get("metadata")).get("labels"))
        pod = _pod(item, container)
        if _text(labels.get(HASH_LABEL)) and pod.digest and not pod.terminating:
            found.setdefault(_text(labels[HASH_LABEL]), pod.digest)
    return found


def _pod(item: Mapping[str, Any], container: str) -> Pod:
    """:meth:`Pod.from_json` of a pod whose ``metadata``/``spec``/``status`` may be null."""
    return Pod.from_json({key: _map(item.get(key)) for key in ("metadata", "spec", "status")}, container)


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


_UNKNOWN_KIND = "doesn't have a resource type"  # kubectl's words for a kind discovery does not list


def read_from(kube: Kubectl, namespace: str, cfg: Config) -> RolloutState | None:
    """The Rollout ``cfg.deployment`` in ``namespace`` (None: there is none), read-only.
    A cluster without Argo Rollouts raises :class:`NoRolloutsError`."""
    try:
        data = kube.get_json(KIND, cfg.deployment, namespace=namespace)
    except RemoteError as exc:
        if _UNKNOWN_KIND not in str(exc):
            raise
        raise NoRolloutsError(
            f"the cluster serves no {KIND} (Argo Rollouts is not installed), but [tool.dex.cluster] "
            'workload = "Rollout": install Argo Rollouts, or set workload = "Deployment"'
        ) from None
    if data is None:
        return None
    state = RolloutState.from_json(data, cfg.container)
    match_labels = _map(_map(_map(data.get("spec")).get("selector")).get("matchLabels"))
    selector = selector_string({str(k): _text(v) for k, v in match_labels.items()}) or None
    replicasets = _maps(
        _map(kube.get_json("replicasets", namespace=namespace, selector=selector)).get("items")
    )
    pods = _maps(_map(kube.get_json("pods", namespace=namespace, selector=selector)).get("items"))
    state = with_images(state, replicasets, pods, cfg.container)
    runs: tuple[Analysis, ...] = ()
    if state.updating:  # the runs of the revision being rolled out (the controller owns them)
        listed = _map(kube.get_json(ANALYSIS_KIND, namespace=namespace, selector=selector))
        runs = analysis_runs(listed.get("items"), state.uid, state.current_hash)
    return dataclasses.replace(state, pods=tuple(_pod(item, cfg.container) for item in pods), analysis=runs)


def detect(kube: Kubectl, namespace: str, cfg: Config) -> RolloutState | None:
    """:func:`read_from` for a cluster that may not have Argo Rollouts at all (no CRD: None)."""
    try:
        return read_from(kube, namespace, cfg)
    except NoRolloutsError:
        return None


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
    failures = 0
    why = state.summary()
    for attempt in range(2, attempts + 1):
        if (failures == 0 and state.phase in SETTLED) or time.monotonic() + interval > deadline:
            break
        progress.waiting(f"rollout {state.namespace}/{state.name}", attempt, attempts, interval, why)
        sleep(interval)
        try:
            state, failures = read(cfg, env), 0
            why = state.summary()
        except RemoteError as exc:
            failures += 1
            if isinstance(exc, ForbiddenError) or failures >= READ_RETRIES:
                raise
            why = f"could not read it ({exc}); asking again"
    if failures or state.phase not in SETTLED:
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
    try:
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
    except RemoteError as exc:
        if done:  # two patches, not one transaction: say what is in, and that a re-run does the rest
            raise RemoteError(
                f"{exc} (already done: {', '.join(done)}; run rollout promote {env} again for the rest)"
            ) from exc
        raise
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
    containers = _map(_map(_map(data.get("spec")).get("template")).get("spec")).get("containers")
    containers = containers if isinstance(containers, list) else []
    # The index into the list as the server holds it (non-objects count): the JSON patch's path.
    index = next(
        (i for i, c in enumerate(containers) if isinstance(c, dict) and c.get("name") == cfg.container), None
    )
    if index is None:
        names = ", ".join(_text(c.get("name")) for c in _maps(containers)) or "none"
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
    try:
        _wait_emergency(cfg, env, kube, image, timeout=timeout, interval=interval, sleep=sleep)
    except RolloutIncompleteError:
        raise
    except DexError as exc:  # after the patch, whatever ended the wait: the Rollout has changed
        raise RolloutIncompleteError(exc.message, hint=exc.hint) from exc


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
    failures = 0
    for attempt in range(1, attempts + 1):
        try:
            state, failures = read_from(kube, namespace, cfg), 0
        except RemoteError as exc:
            # The patch is in: whatever the read says, the user must learn the Rollout changed.
            failures += 1
            if isinstance(exc, ForbiddenError) or failures >= READ_RETRIES or attempt == attempts:
                raise RemoteError(
                    f"rollout {namespace}/{cfg.deployment} now specifies {image} but could not be read "
                    f"({exc}); inspect with: dex-tasks rollout status {env}"
                ) from exc
            progress.waiting(f"rollout {namespace}/{cfg.deployment} on {image}", attempt + 1, attempts,
                             interval, f"could not read it ({exc}); asking again")  # fmt: skip
            sleep(interval)
            continue
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
