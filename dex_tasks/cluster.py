"""What the GitOps tasks ask of the cluster: is a tag really live, emergency rollout, Argo CD sync.

Used by ``promote`` (live check), ``rollback --emergency`` / ``--sync``, ``status``, ``verify``
and ``preview`` (``--context``, the port-forwarded health check).

Access rules (documented in the README):

* **No cluster access** means: kubectl is not on PATH, there is no kubeconfig (``KUBECONFIG``
  names no existing file, no ``~/.kube/config``, not in a pod), or the API server cannot be
  reached (connection, unknown context, credentials). ``check_live(required=False)`` then
  returns ``checked=False`` and the caller says once that only git was checked.
  ``check_live(required=True)`` (``promote --verify live``) raises instead: kubectl missing ->
  :class:`ToolMissing` (exit 3), no kubeconfig, an unknown context or an unusable kubeconfig ->
  exit 2 (:class:`UsageError`, :class:`~dex_tasks.errors.KubeconfigError`), unreachable
  or forbidden (RBAC) -> :class:`RemoteError` (exit 4).
* **Argo CD is in use** when ``ARGOCD_SERVER`` is set (:func:`dex_tasks.tools.argocd.in_use`); then
  the env's app must also be Synced and Healthy, a missing ``argocd`` CLI is exit 3 and an Argo CD
  that cannot be asked (auth, connection) is exit 4 - never a silently skipped or failed check.

Everything in :func:`check_live` is read-only.
"""

from __future__ import annotations

import dataclasses
import re
import time
from typing import TYPE_CHECKING

from dex_tasks import proc, progress
from dex_tasks.errors import (
    AppNotFoundError,
    ClusterAccessError,
    CommandFailed,
    RemoteError,
    RolloutIncompleteError,
    ToolMissing,
    UsageError,
)
from dex_tasks.tools import argocd
from dex_tasks.tools.kubectl import (
    Deployment,
    ImageRef,
    Kubectl,
    Pod,
    check_context,
    kubeconfig_problem,
    last_line,
)

if TYPE_CHECKING:
    from dex_tasks.config import Config
    from dex_tasks.rollouts import RolloutState


@dataclasses.dataclass(frozen=True, kw_only=True)
class LiveCheck:
    checked: bool  # False: no cluster access and not required
    ok: bool
    detail: str  # what runs instead / why not checked
    image: str | None  # image the deployment runs


def with_context(cfg: Config, context: str | None) -> Config:
    """``cfg`` with a task's ``--context`` applied to ``[tool.dex.cluster] context``."""
    if not context:
        return cfg
    # The one context asked for, for every env: it wins over `contexts` too.
    cluster_cfg = dataclasses.replace(cfg.cluster, context=check_context(context), contexts={})
    return dataclasses.replace(cfg, cluster=cluster_cfg)


def context_for(cfg: Config, env: str | None) -> str:
    """ENV's kube context: ``[tool.dex.cluster] contexts[env]``, else ``context`` (else current)."""
    return cfg.cluster.contexts.get(env, cfg.cluster.context) if env else cfg.cluster.context


def kubectl_for(cfg: Config, env: str | None = None) -> Kubectl:
    return Kubectl(context=context_for(cfg, env))


def argocd_server_for(cfg: Config, env: str | None) -> str | None:
    """ENV's Argo CD server (``argocd-servers``), None: the CLI's own ``ARGOCD_SERVER``."""
    return cfg.cluster.argocd_servers.get(env) if env else None


def access_problem(cfg: Config) -> str | None:  # noqa: ARG001 - the kubeconfig is per process, not per config
    """Why there is no cluster access before even asking the API server, or None."""
    if proc.which("kubectl") is None:
        return "kubectl is not on PATH"
    return kubeconfig_problem()


def expected_image(cfg: Config, tag: str) -> str:
    return f"{cfg.image}:{tag}"


def is_app_image(cfg: Config, ref: ImageRef) -> bool:
    """Is ``ref`` an image of this app, whatever its tag?

    The kustomize name (``data-literate/dex``) also counts: an overlay without ``newName`` leaves
    the base's name in the deployment.
    """
    return ref.repository in {cfg.image, cfg.kustomize_image_name}


def image_matches(cfg: Config, image: str | None, tag: str, digest: str | None = None) -> bool:
    """Does ``image`` name ``<cfg.image>:<tag>`` (see :func:`is_app_image`)? A digest pin after the
    tag is allowed; with ``digest`` (the registry's for the tag) so is ``<cfg.image>@<digest>``."""
    if not image:
        return False
    ref = ImageRef.parse(image)
    if digest and not ref.tag and ref.digest == digest:
        return is_app_image(cfg, ref)
    return ref.tag == tag and is_app_image(cfg, ref)


def _not_checked(required: bool, problem: str, *, missing_tool: bool = False) -> LiveCheck:
    if required:
        if missing_tool:
            raise ToolMissing("kubectl", hint=proc.INSTALL_HINTS["kubectl"])
        raise UsageError(f"--verify live needs cluster access: {problem}")
    return LiveCheck(checked=False, ok=False, detail=f"no cluster access: {problem}", image=None)


def check_live(cfg: Config, env: str, tag: str, *, required: bool, digest: str | None = None) -> LiveCheck:
    """Does ENV's deployment really run ``<cfg.image>:<tag>`` with its rollout complete?

    And, when Argo CD is configured, is ENV's app Synced and Healthy? ``ok=False`` with ``detail``
    saying what runs instead. See the module docstring for what "no access" does.

    ``digest`` (the registry's digest of the tag): the pods' ``imageID`` must name it, so a tag that
    was pushed again after ENV pulled it is caught; pods that report no imageID yet are not judged.
    """
    cfg.check_env(env)
    problem = access_problem(cfg)
    if problem is not None:
        return _not_checked(required, problem, missing_tool=problem.startswith("kubectl is not"))
    # rollouts imports this module (kube access, Argo CD servers): imported here, not at the top.
    from dex_tasks import rollouts  # noqa: PLC0415

    kube = kubectl_for(cfg, env)
    namespace = cfg.namespace_for(env)
    try:
        if cfg.cluster.workload == "Rollout":
            ro = rollouts.read_from(kube, namespace, cfg)
            return _judge_rollout(cfg, env, tag, ro, namespace=namespace, digest=digest)
        deployment = kube.deployment(namespace, cfg.deployment, cfg.container)
        if deployment is None:  # "or detected": an Argo Rollouts Rollout of that name, if any
            ro = rollouts.detect(kube, namespace, cfg)
            return _judge_rollout(cfg, env, tag, ro, namespace=namespace, digest=digest, detected=True)
        pods = kube.pods(namespace, deployment.selector, cfg.container) if deployment.selector else []
    except ClusterAccessError as exc:
        if required:
            raise
        return LiveCheck(checked=False, ok=False, detail=f"no cluster access: {exc}", image=None)
    return _judge(cfg, env, tag, deployment=deployment, pods=pods, digest=digest)


# tools.oci.DIGEST_RE; not imported from there, which would load requests with every status.
DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")

DETECTED = (
    "no deployment {name} in {namespace}, read the Argo Rollouts Rollout of that name "
    '(set [tool.dex.cluster] workload = "Rollout" to say so)'
)


def _judge_rollout(
    cfg: Config, env: str, tag: str, ro: RolloutState | None, *, namespace: str, digest: str | None,
    detected: bool = False,
) -> LiveCheck:  # fmt: skip
    """The Rollout's stable ReplicaSet runs the tag and no update is in progress (a canary paused
    mid-way runs the tag on some pods only: not live yet), the phase is Healthy, every pod runs it."""
    from dex_tasks import rollouts  # noqa: PLC0415 - see check_live

    if ro is None:
        kind = "deployment" if detected else "rollout"
        return LiveCheck(
            checked=True,
            ok=False,
            image=None,
            detail=f"{kind} {cfg.deployment} not found in namespace {namespace}",
        )

    problem = rollouts.live_problem(ro, env)
    if ro.updating and not ro.aborted and not image_matches(cfg, ro.new_image, tag, digest):
        problem = f"rollout {ro.summary()} is rolling {ro.new_image} out, not {expected_image(cfg, tag)}"
    check = _judge_rollout_alone(cfg, env, tag, ro, digest=digest, problem=problem)
    if detected:
        note = DETECTED.format(name=cfg.deployment, namespace=ro.namespace)
        return dataclasses.replace(check, detail=f"{check.detail} ({note})")
    return check


def _judge_rollout_alone(
    cfg: Config, env: str, tag: str, ro: RolloutState, *, digest: str | None, problem: str | None
) -> LiveCheck:
    want = expected_image(cfg, tag)
    where = f"{ro.namespace}/{ro.name}"
    if ro.template_image is None:
        return LiveCheck(
            checked=True, ok=False, image=None, detail=f"rollout {where} has no container {cfg.container!r}"
        )
    image = ro.stable_image or ro.template_image
    if problem is not None:
        return LiveCheck(checked=True, ok=False, image=image, detail=problem)
    if not image_matches(cfg, image, tag, digest):
        return LiveCheck(
            checked=True, ok=False, image=image, detail=f"rollout {where} runs {image}, not {want}"
        )
    return _pods_and_argo(
        cfg, env, tag, where=f"rollout {where}", image=image, pods=list(ro.pods), digest=digest
    )


def _judge(
    cfg: Config, env: str, tag: str, *, deployment: Deployment, pods: list[Pod], digest: str | None = None
) -> LiveCheck:
    want = expected_image(cfg, tag)
    namespace = deployment.namespace or cfg.namespace_for(env)
    image = deployment.image
    where = f"{namespace}/{cfg.deployment}"
    if image is None:
        return LiveCheck(
            checked=True, ok=False, image=None,
            detail=f"deployment {where} has no container {cfg.container!r} "
            f"(containers: {', '.join(deployment.containers) or 'none'})",
        )  # fmt: skip
    if not image_matches(cfg, image, tag, digest):
        return LiveCheck(checked=True, ok=False, image=image, detail=f"{where} runs {image}, not {want}")
    complete, why = deployment.rollout_state()
    if not complete or deployment.replicas == 0:
        # 0 replicas: `kubectl rollout status` calls that complete, but nothing runs the tag.
        why = (
            f"its rollout is not complete: {why}"
            if not complete
            else "is scaled to 0 replicas: nothing runs it"
        )
        return LiveCheck(checked=True, ok=False, image=image, detail=f"{where} specifies {image} but {why}")
    return _pods_and_argo(cfg, env, tag, where=where, image=image, pods=pods, digest=digest)


def _pods_and_argo(
    cfg: Config, env: str, tag: str, *, where: str, image: str, pods: list[Pod], digest: str | None
) -> LiveCheck:
    """Every live pod runs the tag (and ``digest``), and Argo CD agrees."""
    want = expected_image(cfg, tag)
    # Evicted pods (phase Failed) of an old ReplicaSet stay listed with the old image until the
    # pod garbage collector removes them; they run nothing, so they do not count.
    live_pods = [p for p in pods if not p.terminating and not p.finished]
    stray = sorted({p.image or "?" for p in live_pods if not image_matches(cfg, p.image, tag, digest)})
    if stray:
        return LiveCheck(
            checked=True,
            ok=False,
            image=image,
            detail=f"{where}: pods still run {', '.join(stray)}, not {want}",
        )
    digests = sorted({d for p in live_pods if (d := p.digest)})
    other = [d for d in digests if digest and d != digest]
    if other:
        return LiveCheck(
            checked=True, ok=False, image=image,
            detail=f"{where}: pods run {', '.join(other)}, but {want} in the registry is {digest} "
            "(the tag was pushed again since they pulled it)",
        )  # fmt: skip
    notes = [f"rollout complete, {len(live_pods)} pod(s)"]
    if digests:
        notes.append("digest " + ", ".join(digests))
    argo_note, argo_ok = _argo_check(cfg, env, tag)
    if argo_note:
        notes.append(argo_note)
    detail = f"{where} runs {image} ({'; '.join(notes)})"
    if not argo_ok:
        return LiveCheck(checked=True, ok=False, image=image, detail=f"{where} runs {image} but {argo_note}")
    return LiveCheck(checked=True, ok=True, image=image, detail=detail)


def _argo_check(cfg: Config, env: str, tag: str) -> tuple[str, bool]:
    """(note, ok) for ENV's Argo CD app; ("", True) when Argo CD is not configured.

    Raises :class:`ToolMissing` when ``ARGOCD_SERVER`` is set but the CLI is missing, and
    :class:`~dex_tasks.errors.ArgoCDError` (exit 4) when Argo CD cannot be asked (auth,
    connection): that is a remote failure, not "the env runs something else" (exit 1).
    """
    server = argocd_server_for(cfg, env)
    if not argocd.in_use(server=server):
        return "", True
    name = cfg.app_for(env)
    try:
        app = argocd.app_get(name, server=server)
    except AppNotFoundError:
        return f"Argo CD app {name} does not exist (or this token may not read it)", False
    if not app.synced_and_healthy:
        return f"Argo CD app {name} is {app.sync_status}/{app.health}", False
    # The same rule as for the deployment (a digest after the tag, the kustomize name without
    # newName), or Argo CD would contradict what the check just accepted.
    if app.images and not any(image_matches(cfg, image, tag) for image in app.images):
        want = expected_image(cfg, tag)
        return f"Argo CD app {name} reports images {', '.join(app.images)}, not {want}", False
    return f"Argo CD {name} Synced/Healthy at {app.revision[:12] or '?'}", True


def _require_access(cfg: Config, what: str, env: str | None = None) -> Kubectl:
    proc.require("kubectl")
    problem = kubeconfig_problem()
    if problem is not None:
        raise UsageError(f"{what} needs cluster access: {problem}")
    return kubectl_for(cfg, env)


def emergency_rollout(cfg: Config, env: str, tag: str, *, digest: str | None = None) -> None:
    """``kubectl set image`` ENV's deployment to ``<image>:<tag>`` (``<image>:<tag>@<digest>`` when
    the rollback's digest is known: the bytes that were good, even if the tag was pushed again),
    then wait for the rollout. ``workload = "Rollout"``: :func:`dex_tasks.rollouts.emergency`.

    Checks first (read-only) that the deployment and container exist, so bad names change nothing
    (exit 2). A rollout that does not complete within ``cluster.rollout-timeout`` raises
    :class:`RemoteError` (exit 4) saying so; the deployment then specifies the new image and the
    caller must not claim success.
    """
    cfg.check_env(env)
    if digest and not DIGEST_RE.fullmatch(digest):
        raise UsageError(f"{digest!r} is not a sha256 digest to pin {tag} to: nothing changed")
    timeout = rollout_timeout(cfg)
    image = expected_image(cfg, tag) + (f"@{digest}" if digest else "")
    if cfg.cluster.workload == "Rollout":
        from dex_tasks import rollouts  # noqa: PLC0415 - see check_live

        rollouts.emergency(cfg, env, image, timeout=timeout)
        return
    kube = _require_access(cfg, "rollback --emergency", env)
    namespace = cfg.namespace_for(env)
    deployment = kube.deployment(namespace, cfg.deployment, cfg.container)
    if deployment is None:
        raise UsageError(f"deployment {cfg.deployment} not found in namespace {namespace}: nothing changed")
    if deployment.image is None:
        raise UsageError(
            f"deployment {namespace}/{cfg.deployment} has no container {cfg.container!r} "
            f"(containers: {', '.join(deployment.containers) or 'none'}): nothing changed"
        )
    try:
        kube.set_image(namespace, cfg.deployment, cfg.container, image)
    except CommandFailed as exc:
        raise RemoteError(
            f"kubectl set image failed for {namespace}/{cfg.deployment}: "
            f"{last_line(exc.stderr_tail) or 'no output'}"
        ) from exc
    target = f"deployment/{cfg.deployment}"
    inspect = proc.quote(kube.argv("rollout", "status", target, "-n", namespace))
    undo = proc.quote(kube.argv("rollout", "undo", target, "-n", namespace))
    if not proc.is_dry_run():  # under --dry-run rollout status is only printed
        progress.waiting(
            f"the rollout of {target} in {namespace}", 1, 1, why=f"kubectl waits up to {timeout}s"
        )
    try:
        kube.rollout_status(namespace, cfg.deployment, timeout=timeout)
    except (CommandFailed, RemoteError) as exc:
        # RemoteError: the API server went away while waiting. Either way the deployment already
        # specifies the new image, and the user must learn that, not only "cannot reach".
        why = (last_line(exc.stderr_tail) or "no output") if isinstance(exc, CommandFailed) else str(exc)
        raise RolloutIncompleteError(
            f"rollout did not complete: deployment {namespace}/{cfg.deployment} now specifies {image} "
            f"but its rollout was not seen to finish within {timeout}s ({why}); "
            f"inspect with: {inspect}; undo with: {undo}"
        ) from exc


def _sync_prerequisites(cfg: Config, env: str) -> int:
    """The argocd CLI (exit 3), ``ARGOCD_SERVER`` (exit 2), a positive timeout (exit 2)."""
    cfg.check_env(env)
    timeout = rollout_timeout(cfg)
    proc.require("argocd")
    reason = argocd.not_configured_reason(server=argocd_server_for(cfg, env))
    if reason is not None:
        raise UsageError(f"--sync needs Argo CD: {reason}")
    return timeout


def check_sync_ready(cfg: Config, env: str) -> None:
    """What ``argocd_sync`` needs, checked read-only *before* a task changes git, and that the app
    exists (exit 2 when Argo CD says it does not, 4 when Argo CD cannot be asked)."""
    _sync_prerequisites(cfg, env)
    app = cfg.app_for(env)
    try:
        argocd.app_get(app, server=argocd_server_for(cfg, env))
    except AppNotFoundError as exc:
        raise UsageError(f"--sync: Argo CD app {app!r} not found ({exc})") from None


def argocd_sync(cfg: Config, env: str) -> None:
    """``argocd app sync <app> [--prune]`` then ``argocd app wait <app> --health --sync --timeout N``.

    Raises :class:`UsageError` (exit 2) when Argo CD is not configured, :class:`RemoteError`
    (exit 4) when the sync or the wait fails.
    """
    timeout = _sync_prerequisites(cfg, env)
    app = cfg.app_for(env)
    server = argocd_server_for(cfg, env)
    if not proc.is_dry_run():  # under --dry-run sync and wait are only printed
        progress.waiting(f"Argo CD app {app} to sync", 1, 1, why=f"argocd waits up to {timeout}s")
    argocd.app_sync(app, prune=cfg.cluster.argocd_prune, timeout=timeout, server=server)
    if not proc.is_dry_run():
        progress.waiting(f"Argo CD app {app} to be Synced and Healthy", 1, 1, why=f"up to {timeout}s")
    argocd.app_wait(app, timeout=timeout, server=server)


def rollout_timeout(cfg: Config) -> int:
    """``cluster.rollout-timeout``, refused (exit 2) unless positive: ``kubectl rollout status
    --timeout=0s`` and ``argocd app wait --timeout 0`` mean "wait for ever"."""
    timeout = cfg.cluster.rollout_timeout
    if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout <= 0:
        raise UsageError(
            f"[tool.dex.cluster] rollout-timeout must be a positive number of seconds, got {timeout!r}"
        )
    return timeout


@dataclasses.dataclass(frozen=True, kw_only=True)
class Health:
    ok: bool
    url: str
    status: int | None  # the last HTTP status, None when no answer
    attempts: int
    detail: str

    def as_json(self) -> dict[str, object]:
        return dataclasses.asdict(self)


def http_health(url: str, *, attempts: int = 10, interval: float = 3.0, request_timeout: float = 10.0,
                deadline: float | None = None) -> Health:  # fmt: skip
    """GET ``url`` until it answers 2xx: at most ``attempts`` tries, ``interval`` seconds apart, and
    never past ``deadline`` (a ``time.monotonic()`` value). Each request has ``request_timeout``."""
    import requests  # noqa: PLC0415 - only the smoke checks need it

    status: int | None = None
    detail = "not tried"
    tried = 0
    for attempt in range(1, max(1, attempts) + 1):
        tried = attempt
        try:
            # stream=True: only the head of the body is read (an error page can be large, or
            # never end), and the connection is closed right after.
            timeout = request_timeout
            if deadline is not None:  # a request must not outlive the caller's deadline either
                timeout = max(1.0, min(request_timeout, deadline - time.monotonic()))
            with requests.get(url, timeout=timeout, allow_redirects=True, stream=True) as response:
                status = response.status_code
                if 200 <= status < 300:
                    return Health(ok=True, url=url, status=status, attempts=attempt, detail=f"HTTP {status}")
                head = next(response.iter_content(chunk_size=1024), b"")
            # One line: the detail ends up in the task's one-line failure message; the head of an
            # HTML error page, squashed and cut, names it (its <title>) without the page.
            detail = f"HTTP {status}: {_short(head.decode('utf-8', 'replace'))}".rstrip(": ")
        except requests.RequestException as exc:
            status = None
            detail = f"no answer: {request_failure(exc, timeout)}"
        if attempt >= attempts or (deadline is not None and time.monotonic() + interval > deadline):
            break
        progress.waiting(url, attempt + 1, attempts, interval, detail)
        time.sleep(interval)
    return Health(ok=False, url=url, status=status, attempts=tried, detail=detail)


def port_forward_health(
    cfg: Config, namespace: str, *, attempts: int, interval: float, deadline: float | None = None,
    env: str | None = None,
) -> Health:  # fmt: skip
    """GET the health path through ``kubectl port-forward svc/<service>`` (``verify``, ``preview health``)."""
    port = cfg.cluster.service_port
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        # Up front: kubectl's refusal would read as "the service does not answer" (a rollback).
        raise UsageError(f"[tool.dex.cluster] service-port must be a TCP port (1-65535), got {port!r}")
    proc.require("kubectl")
    problem = access_problem(cfg)
    if problem is not None:
        raise UsageError(
            f"the health check needs a URL (--url, [tool.dex.cluster] health-urls) or cluster access: "
            f"{problem}"
        )
    kube = kubectl_for(cfg, env)
    target = f"svc/{cfg.cluster.service}"
    path = (
        cfg.cluster.health_path if cfg.cluster.health_path.startswith("/") else "/" + cfg.cluster.health_path
    )
    try:
        with kube.port_forward(namespace, target, cfg.cluster.service_port) as port:
            url = f"http://127.0.0.1:{port}{path}"
            return http_health(url, attempts=attempts, interval=interval, deadline=deadline)
    except ClusterAccessError:
        raise  # no access: nothing is known about the env (exit 4/2), never "unhealthy"
    except RemoteError as exc:
        return Health(
            ok=False,
            url=f"{target} in {namespace}{path}",
            status=None,
            attempts=0,
            detail=f"port-forward failed: {exc}",
        )


# What urllib3 wraps deep inside requests' exceptions, in words (its reprs name objects and ids).
_CAUSES = (
    ("connection refused", "connection refused"),
    ("name or service not known", "cannot resolve the host"),
    ("nodename nor servname", "cannot resolve the host"),
    ("temporary failure in name resolution", "cannot resolve the host"),
    ("no route to host", "no route to host"),
    ("network is unreachable", "network is unreachable"),
    ("connection reset", "connection reset"),
    ("certificate verify failed", "TLS certificate not trusted"),
    ("remotedisconnected", "the server closed the connection without an answer"),
    ("connection aborted", "the server closed the connection without an answer"),
)


def request_failure(exc: Exception, timeout: float | None = None) -> str:
    """Why a request got no answer, in one short line (no urllib3 object reprs)."""
    import requests  # noqa: PLC0415 - only the smoke checks need it

    if isinstance(exc, requests.ConnectTimeout):
        return "connect timeout" + (f" after {timeout:g}s" if timeout else "")
    if isinstance(exc, requests.Timeout):
        return "no answer" + (f" within {timeout:g}s" if timeout else "") + " (read timeout)"
    text = str(exc).lower()
    for marker, words in _CAUSES:
        if marker in text:
            return words
    return f"{type(exc).__name__}: {_short(re.sub(r'<[^>]*object at 0x[0-9a-f]+>:?', '', str(exc)), 120)}"


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
