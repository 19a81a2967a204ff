"""The Argo CD CLI: argv tuples and parsing of ``argocd app get -o json``. Nothing else.

Authentication is the CLI's own business: ``ARGOCD_SERVER``, ``ARGOCD_AUTH_TOKEN``, ``ARGOCD_OPTS``
(e.g. ``--grpc-web``) are inherited from the environment, so a token never appears in argv or in
logs; the token is also registered for redaction in case the CLI echoes it in an error.

"Argo CD is configured" means: ``argocd`` is on PATH *and* ``ARGOCD_SERVER`` is set (``status`` and
``preview list`` skip Argo CD otherwise; checks that must not pass on half the facts use
:func:`in_use`, for which ``ARGOCD_SERVER`` without the CLI is exit 3). Without the
variable the CLI would fall back to a ``argocd login`` session in ``~/.config/argocd``, which a
CI runner does not have, and each call would fail after a connection timeout; requiring the
variable keeps "not configured" a fast, explicit answer.
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import TYPE_CHECKING, Any

from dex_tasks import proc, redact
from dex_tasks._untrusted import parse_json
from dex_tasks.errors import AppNotFoundError, ArgoCDError, CommandFailed, ToolMissing

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

TOKEN_ENV = "ARGOCD_AUTH_TOKEN"  # noqa: S105 - the variable name, not a token
SERVER_ENV = "ARGOCD_SERVER"
QUERY_TIMEOUT = 120.0


def configured(env: Mapping[str, str] | None = None) -> bool:
    return not_configured_reason(env) is None


def not_configured_reason(env: Mapping[str, str] | None = None, *, server: str | None = None) -> str | None:
    """Why Argo CD cannot be asked; ``server``: an env's own (``[tool.dex.cluster] argocd-servers``)."""
    env = os.environ if env is None else env
    if proc.which("argocd") is None:
        return "argocd is not on PATH"
    if not server and not env.get(SERVER_ENV, "").strip():
        return f"{SERVER_ENV} is not set"
    return None


def in_use(
    env: Mapping[str, str] | None = None, *, hint: str | None = None, server: str | None = None
) -> bool:
    """Must this run ask Argo CD? True when configured, False when ``ARGOCD_SERVER`` is unset.

    ``ARGOCD_SERVER`` set without the CLI raises :class:`ToolMissing` (exit 3): the project uses
    Argo CD, and a check that skipped it would pass on half the facts (for ``verify``: a health
    check of the old pods before Argo CD has even synced).
    """
    env = os.environ if env is None else env
    if not server and not env.get(SERVER_ENV, "").strip():
        return False
    if hint is not None and proc.which("argocd") is None:  # ``hint``: what else would do
        raise ToolMissing("argocd", hint=f"{proc.INSTALL_HINTS['argocd']}, {hint}")
    proc.require("argocd")
    return True


@dataclasses.dataclass(frozen=True, kw_only=True)
class HistoryEntry:
    """One ``status.history[]`` item: argo-cd ``RevisionHistory`` (pkg/apis/application/v1alpha1).

    The controller appends one after every *successful* sync (controller/sync.go calls
    ``persistRevisionHistory`` only when the phase is Successful) and keeps the last
    ``spec.revisionHistoryLimit`` (default 10). Times are RFC 3339 as metav1.Time serializes them.
    """

    id: int  # int64, auto-incrementing: the previous entry's id + 1 (the first is 0)
    revision: str  # "" for a multi-source app, which fills ``revisions`` instead
    deployed_at: str  # deployedAt: when the sync operation completed
    # deployStartedAt: when it started (the operation's startedAt); "" before Argo CD 1.7 (#3715).
    deploy_started_at: str = ""
    # initiatedBy (Argo CD 2.11+): the user, or "" with automated=True for an auto-sync.
    initiated_by: str = ""
    automated: bool = False


@dataclasses.dataclass(frozen=True, kw_only=True)
class App:
    """The parts of an Argo CD Application the tasks look at."""

    name: str
    sync_status: str  # Synced | OutOfSync | Unknown
    health: str  # Healthy | Progressing | Degraded | Suspended | Missing | Unknown
    revision: str  # status.sync.revision: the git commit the app is synced to
    images: tuple[str, ...]  # status.summary.images
    operation_phase: str  # status.operationState.phase: Running | Succeeded | Failed | Error | Terminating
    # The commit that operation synced (syncResult.revision, else the requested operation.sync.revision).
    operation_revision: str = ""
    namespace: str  # spec.destination.namespace
    history: tuple[HistoryEntry, ...]
    # status.operationState.{startedAt,finishedAt,message}: the last (or running) operation.
    # A failed sync leaves no history entry; this is the only trace of it.
    operation_started_at: str = ""
    operation_finished_at: str = ""
    operation_message: str = ""
    history_limit: int | None = None  # spec.revisionHistoryLimit (None: Argo CD's default, 10)

    @property
    def synced_and_healthy(self) -> bool:
        return self.sync_status == "Synced" and self.health == "Healthy"

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> App:
        # The CLI's and the REST API's document is Argo CD's typed struct, but a proxy, a fake or
        # a hand-made file can hold anything: a null or odd field reads as absent, never exit 70.
        status = _map(data.get("status"))
        spec = _map(data.get("spec"))
        history = status.get("history")
        operation = _map(status.get("operationState"))
        limit = spec.get("revisionHistoryLimit")
        sync, health = _map(status.get("sync")), _map(status.get("health"))
        images = _map(status.get("summary")).get("images")
        return cls(
            name=_text(_map(data.get("metadata")).get("name")),
            sync_status=_text(sync.get("status")) or "Unknown",
            health=_text(health.get("status")) or "Unknown",
            revision=_text(sync.get("revision")),
            images=tuple(_text(i) for i in images if _text(i)) if isinstance(images, list) else (),
            operation_phase=_text(operation.get("phase")),
            operation_revision=_operation_revision(operation),
            namespace=_text(_map(spec.get("destination")).get("namespace")),
            history=tuple(_history_entry(h) for h in history if isinstance(h, dict))
            if isinstance(history, list)
            else (),
            operation_started_at=_text(operation.get("startedAt")),
            operation_finished_at=_text(operation.get("finishedAt")),
            operation_message=_text(operation.get("message")),
            history_limit=limit if isinstance(limit, int) and not isinstance(limit, bool) else None,
        )


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str:
    """A JSON string or number as text; null, true/false, objects and lists as empty."""
    return str(value) if isinstance(value, str | int | float) and not isinstance(value, bool) else ""


def _history_entry(h: Mapping[str, Any]) -> HistoryEntry:
    initiator = _map(h.get("initiatedBy"))
    raw_id = h.get("id", 0)
    number = isinstance(raw_id, int) and not isinstance(raw_id, bool)
    return HistoryEntry(
        # int64 in Go; JSON carries it as a number (a string only from a hand-made document).
        id=int(raw_id) if number or (isinstance(raw_id, str) and raw_id.isdigit()) else 0,
        revision=_text(h.get("revision")),
        deployed_at=_text(h.get("deployedAt")),
        deploy_started_at=_text(h.get("deployStartedAt")),
        initiated_by=_text(initiator.get("username")),
        automated=initiator.get("automated") is True,
    )


def _operation_revision(operation_state: Mapping[str, Any]) -> str:
    result = _text(_map(operation_state.get("syncResult")).get("revision"))
    requested = _text(_map(_map(operation_state.get("operation")).get("sync")).get("revision"))
    return result or requested


# The CLI logs a fatal error with logrus's text formatter: `FATA[0000] <message>` on a terminal,
# logfmt (`time="..." level=fatal msg="<message, Go-quoted>"`) when stderr is a pipe, as here.
_LOGFMT_MSG = re.compile(r'level=(?:fatal|error)\s+msg=("(?:[^"\\]|\\.)*"|\S+)')
# Since Argo CD 2.5 (CVE-2022-41354) the API answers a request for an app that does not exist
# with the same PermissionDenied as one the token may not read, so nobody can probe app names
# (server/application: getAppEnforceRBAC).
_DENIED = "code = PermissionDenied desc = permission denied"


def _message(line: str) -> str:
    match = _LOGFMT_MSG.search(line)
    if match:
        quoted = match.group(1)
        if not quoted.startswith('"'):
            return quoted
        try:
            return str(parse_json(quoted))  # Go's %q is JSON for what the CLI prints
        except ValueError:
            return quoted[1:-1]
    if "] " in line and line.startswith(("FATA", "ERRO")):
        return line.split("] ", 1)[1]
    return line


def _fail(exc: CommandFailed, what: str, *, app: str | None = None) -> ArgoCDError:
    """The CLI's failure as one line; ``app``: the request names that app, so NotFound - and the
    PermissionDenied that Argo CD answers instead for an unknown app - is :class:`AppNotFoundError`."""
    tail = exc.stderr_tail
    last = _message(next((line.strip() for line in reversed(tail.splitlines()) if line.strip()), ""))
    message = f"argocd {what} failed (exit {exc.returncode}): {last or 'no output'}"
    if "code = NotFound" in tail:
        return AppNotFoundError(message)
    if app is not None and _DENIED in tail:
        return AppNotFoundError(
            f"{message} (Argo CD says this when app {app} does not exist, or this token may not read it)"
        )
    return ArgoCDError(message)


def _run(
    args: Sequence[str],
    *,
    read_only: bool,
    what: str,
    timeout: float = QUERY_TIMEOUT,
    app: str | None = None,
    server: str | None = None,
) -> proc.Result:
    redact.register_secret(os.environ.get(TOKEN_ENV))
    # An env's own server goes in the CLI's environment, like ARGOCD_SERVER itself: argv stays the same.
    env = {SERVER_ENV: server} if server else None
    try:
        return proc.run(("argocd", *args), read_only=read_only, timeout=timeout, env=env)
    except CommandFailed as exc:
        raise _fail(exc, what, app=app) from exc


def app_get(name: str, *, timeout: float = QUERY_TIMEOUT, server: str | None = None) -> App:
    """The app; :class:`AppNotFoundError` when it does not exist (or the token may not read it).

    Also the app's deployment history (``App.history``). ``argocd app history NAME`` makes the same
    ``ApplicationService.Get`` call but prints only a table of ID, DATE (deployedAt) and REVISION,
    or the ids with ``-o id`` (cmd/argocd/commands/app.go, ``NewApplicationHistoryCommand``): no
    ``deployStartedAt``, so no sync duration, and no ``operationState`` for a sync that failed.
    The JSON of ``app get`` carries ``status.history[]`` as Argo CD stores it.
    """
    result = _run(
        ("app", "get", name, "-o", "json"), read_only=True, what=f"app get {name}", timeout=timeout, app=name,
        server=server,
    )  # fmt: skip
    try:
        data = parse_json(result.stdout)
    except ValueError as exc:
        raise ArgoCDError(f"argocd app get {name}: output is not JSON we can read: {exc}") from None
    if not isinstance(data, dict):
        raise ArgoCDError(f"argocd app get {name}: unexpected output")
    return App.from_json(data)


def app_list() -> list[App]:
    result = _run(("app", "list", "-o", "json"), read_only=True, what="app list")
    try:
        data = parse_json(result.stdout or "[]")
    except ValueError as exc:
        raise ArgoCDError(f"argocd app list: output is not JSON we can read: {exc}") from None
    items = data if isinstance(data, list) else _map(data).get("items")
    # Only objects are apps: a null or a string in the list (a proxy's answer) is skipped.
    return (
        [App.from_json(item) for item in items if isinstance(item, dict)] if isinstance(items, list) else []
    )


def app_sync(name: str, *, timeout: int, prune: bool = False, server: str | None = None) -> proc.Result:
    """``argocd app sync NAME [--prune] --timeout N``.

    The CLI waits for the sync operation to finish, with no limit of its own by default; its
    ``--timeout`` makes it give up (and say so) before our process timeout kills it silently.
    """
    args = ["app", "sync", name]
    if prune:
        args.append("--prune")
    args += ["--timeout", str(timeout)]
    return _run(args, read_only=False, what=f"app sync {name}", timeout=timeout + 30, server=server)


def app_wait(
    name: str, *, timeout: int, health: bool = True, sync: bool = True, server: str | None = None
) -> proc.Result:
    args = ["app", "wait", name]
    if health:
        args.append("--health")
    if sync:
        args.append("--sync")
    args += ["--timeout", str(timeout)]
    # Not read-only: it waits for a change this run made; under --dry-run there is none.
    return _run(args, read_only=False, what=f"app wait {name}", timeout=timeout + 30, server=server)


def app_delete(name: str) -> proc.Result:
    return _run(("app", "delete", name, "--yes"), read_only=False, what=f"app delete {name}")


def app_action_run(
    name: str, action: str, *, kind: str, resource: str, namespace: str, server: str | None = None
) -> proc.Result:
    """``argocd app actions run NAME ACTION --kind KIND --resource-name R --namespace NS``.

    Argo CD's built-in Rollout actions (argo-cd ``resource_customizations/argoproj.io/Rollout/
    actions``): ``resume`` clears ``status.pauseConditions`` and ``spec.paused``, ``promote-full``
    sets ``status.promoteFull``, ``abort`` sets ``status.abort`` - the same patches as the plugin.
    """
    args = ("app", "actions", "run", name, action, "--kind", kind, "--resource-name", resource,
            "--namespace", namespace)  # fmt: skip
    return _run(args, read_only=False, what=f"app actions run {name} {action}", app=name, server=server)
