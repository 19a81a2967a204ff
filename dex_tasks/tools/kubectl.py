"""kubectl: argv tuples and parsing of its JSON output. Nothing else.

Queries (``get``) are ``read_only=True`` so they run under ``--dry-run``; ``set image``,
``delete`` and ``rollout status`` (which only makes sense after a change) are not.

The kubeconfig comes from where kubectl itself looks (``KUBECONFIG``, else ``~/.kube/config``,
else the in-cluster service account); the context from ``[tool.dex.cluster] context`` or a task's
``--context`` flag, else the kubeconfig's current context.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import os
import queue
import socket
import threading
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

from dex_tasks import proc, redact
from dex_tasks._untrusted import control_character, parse_json
from dex_tasks.errors import (
    ClusterAccessError,
    ClusterUnreachableError,
    CommandFailed,
    ForbiddenError,
    KubeconfigError,
    RemoteError,
    UsageError,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

QUERY_TIMEOUT = 60.0
# kubectl's own per-request timeout, so an unreachable API server fails fast instead of hanging.
REQUEST_TIMEOUT = "20s"

# Fragments of kubectl's stderr that mean "cannot talk to the cluster at all" (as opposed to an
# answer from it). Taken from kubectl/client-go messages.
_UNREACHABLE = (
    "unable to connect to the server",
    "was refused - did you specify the right host or port",
    "connection refused",
    "no such host",
    "i/o timeout",
    "tls handshake timeout",
    "couldn't get current server api group list",
    "context deadline exceeded",
    "the server has asked for the client to provide credentials",
    "you must be logged in to the server",
    # RBAC said no (`Error from server (Forbidden): deployments.apps "dex" is forbidden: User ...`):
    # no access, like a missing credential - not "the deployment is missing".
    "(forbidden)",
)
# The kubeconfig itself is wrong: bad input (exit 2), not a remote failure.
_BAD_KUBECONFIG = (
    "no configuration has been provided",
    "context was not found for specified context",
    'error: context "',  # `error: context "x" does not exist` (kubectl 1.32, unknown --context)
    "invalid configuration",
)


@dataclasses.dataclass(frozen=True, kw_only=True)
class ImageRef:
    """``registry/repo:tag@digest`` split into its parts (any part may be empty)."""

    repository: str
    tag: str = ""
    digest: str = ""

    @classmethod
    def parse(cls, image: str) -> ImageRef:
        name, _, digest = image.partition("@")
        last = name.rsplit("/", 1)[-1]
        if ":" in last:
            repository, _, tag = name.rpartition(":")
        else:
            repository, tag = name, ""
        return cls(repository=repository, tag=tag, digest=digest)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Deployment:
    """What ``kubectl get deployment -o json`` says about one container and the rollout."""

    namespace: str
    name: str
    image: str | None  # the container's image in the pod template; None if no such container
    containers: tuple[str, ...]
    selector: Mapping[str, str]
    generation: int
    observed_generation: int
    replicas: int  # desired (spec.replicas, default 1)
    current_replicas: int  # status.replicas: pods of every revision
    updated_replicas: int
    available_replicas: int
    progress_deadline_exceeded: bool

    def rollout_state(self) -> tuple[bool, str]:
        """(complete, why not) with the same rules as ``kubectl rollout status`` for deployments."""
        if self.observed_generation < self.generation:
            return False, "waiting for the deployment spec update to be observed"
        if self.progress_deadline_exceeded:
            return False, "the deployment exceeded its progress deadline"
        if self.updated_replicas < self.replicas:
            return False, f"{self.updated_replicas} of {self.replicas} new replicas have been updated"
        if self.current_replicas > self.updated_replicas:
            old = self.current_replicas - self.updated_replicas
            return False, f"{old} old replicas are pending termination"
        if self.available_replicas < self.updated_replicas:
            return (
                False,
                f"{self.available_replicas} of {self.updated_replicas} updated replicas are available",
            )
        return True, "rollout complete"

    @classmethod
    def from_json(cls, data: Mapping[str, Any], container: str) -> Deployment:
        meta, spec, status = _obj(data.get("metadata")), _obj(data.get("spec")), _obj(data.get("status"))
        containers = _objs(_obj(_obj(spec.get("template")).get("spec")).get("containers"))
        image = next((_str(c.get("image")) or None for c in containers if c.get("name") == container), None)
        labels = _obj(_obj(spec.get("selector")).get("matchLabels"))
        replicas = _int(spec.get("replicas"))
        return cls(
            namespace=_str(meta.get("namespace")),
            name=_str(meta.get("name")),
            image=image,
            containers=tuple(_str(c.get("name")) for c in containers),
            selector={k: v for k, v in labels.items() if isinstance(v, str)},
            generation=_int(meta.get("generation")) or 0,
            observed_generation=_int(status.get("observedGeneration")) or 0,
            replicas=1 if replicas is None else replicas,
            current_replicas=_int(status.get("replicas")) or 0,
            updated_replicas=_int(status.get("updatedReplicas")) or 0,
            available_replicas=_int(status.get("availableReplicas")) or 0,
            progress_deadline_exceeded=any(
                c.get("type") == "Progressing" and c.get("reason") == "ProgressDeadlineExceeded"
                for c in _objs(status.get("conditions"))
            ),
        )


# kubectl prints the API server's objects as it got them (unstructured): a field of the wrong type
# (an admission webhook, a proxy, a hand-made server) reads as absent, never as a traceback.
def _obj(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _objs(value: Any) -> list[Mapping[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _int(value: Any) -> int | None:
    """A JSON integer that is not negative, else None (``true`` is no count; ``"2"`` neither)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Pod:
    name: str
    image: str | None  # the container's image as the pod spec says
    image_id: str | None  # what the kubelet really pulled (containerStatuses[].imageID, a digest)
    ready: bool
    terminating: bool
    phase: str = ""  # status.phase: Pending | Running | Succeeded | Failed | Unknown

    @property
    def finished(self) -> bool:
        """An evicted or completed pod: it stays listed (until garbage-collected) but runs nothing."""
        return self.phase in {"Succeeded", "Failed"}

    @property
    def digest(self) -> str | None:
        if not self.image_id or "@" not in self.image_id:
            return None
        return self.image_id.rpartition("@")[2]

    @classmethod
    def from_json(cls, data: Mapping[str, Any], container: str) -> Pod:
        meta, spec, status_ = _obj(data.get("metadata")), _obj(data.get("spec")), _obj(data.get("status"))
        spec_containers = _objs(spec.get("containers"))
        statuses = _objs(status_.get("containerStatuses"))
        image = next(
            (_str(c.get("image")) or None for c in spec_containers if c.get("name") == container), None
        )
        status: Mapping[str, Any] = next((s for s in statuses if s.get("name") == container), {})
        return cls(
            name=_str(meta.get("name")),
            image=image,
            image_id=_str(status.get("imageID")) or None,
            ready=status.get("ready") is True,
            terminating=bool(meta.get("deletionTimestamp")),
            phase=_str(status_.get("phase")),
        )


def kubeconfig_problem(env: Mapping[str, str] | None = None) -> str | None:
    """Why kubectl has no configuration to use, or None when it has one (as kubectl decides)."""
    env = os.environ if env is None else env
    if env.get("KUBECONFIG"):
        paths = [p for p in env["KUBECONFIG"].split(os.pathsep) if p]
        if not any(Path(p).is_file() for p in paths):
            value = env["KUBECONFIG"]
            shown = value if control_character(value) is None else repr(value)  # one line, whatever it holds
            return f"KUBECONFIG={shown} names no existing file"
        return None
    if (Path.home() / ".kube" / "config").is_file():
        return None
    if env.get("KUBERNETES_SERVICE_HOST"):  # in-cluster service account, e.g. a runner pod
        return None
    return "no kubeconfig (KUBECONFIG unset and ~/.kube/config missing)"


def _is_unreachable(text: str) -> bool:
    lowered = text.lower()
    return _is_bad_kubeconfig(text) or any(fragment in lowered for fragment in _UNREACHABLE)


def _is_forbidden(text: str) -> bool:
    # `Error from server (Forbidden): ...`, or from the streaming upgrade of port-forward:
    # `error: error upgrading connection: pods "x" is forbidden: User "y" cannot create resource ...`.
    lowered = text.lower()
    return "(forbidden)" in lowered or " is forbidden: user " in lowered


def _is_bad_kubeconfig(text: str) -> bool:
    lowered = text.lower()
    # A kubeconfig user without credentials for an https server: kubectl prompts "Please enter
    # Username:" on stdout, reads stdin (/dev/null here) and fails with a bare `error: EOF`.
    return last_line(lowered) == "error: eof" or any(f in lowered for f in _BAD_KUBECONFIG)


def _is_not_found(text: str) -> bool:
    return "(notfound)" in text.lower() or " not found" in text.lower()


@dataclasses.dataclass(frozen=True, kw_only=True)
class Kubectl:
    """kubectl with a fixed context (empty: the kubeconfig's current context)."""

    context: str = ""

    def argv(self, *args: str) -> tuple[str, ...]:
        extra = ("--context", self.context) if self.context else ()
        return ("kubectl", *extra, *args)

    def _run(
        self, *args: str, read_only: bool, timeout: float = QUERY_TIMEOUT, quiet: bool = False
    ) -> proc.Result:
        """proc.run; output that says kubectl cannot use the cluster at all becomes a
        :class:`~dex_tasks.errors.ClusterAccessError` (not a CommandFailed, so callers'
        ``except CommandFailed`` only sees answers from the API server)."""
        try:
            return proc.run(self.argv(*args), read_only=read_only, timeout=timeout, quiet=quiet)
        except CommandFailed as exc:
            access = self._access_error(exc.stderr_tail)
            if access is not None:
                raise access from exc
            raise

    def _access_error(self, output: str) -> ClusterAccessError | None:
        """The error for output that says kubectl cannot use the cluster at all, else None."""
        last = last_line(output)
        if _is_bad_kubeconfig(output):
            if last.lower() == "error: eof":
                last = "kubectl asked for a username (the kubeconfig user has no credentials)"
            return KubeconfigError(f"unusable kubeconfig{self._where()}: {last}")
        if _is_forbidden(output):
            return ForbiddenError(f"no access to the cluster{self._where()}: {last}")
        if _is_unreachable(output):
            return ClusterUnreachableError(f"cannot reach the cluster{self._where()}: {last}")
        return None

    def _where(self) -> str:
        return f" (context {self.context})" if self.context else ""

    def get_json(self, kind: str, name: str | None = None, *, namespace: str | None = None,
                 selector: str | None = None) -> dict[str, Any] | None:  # fmt: skip
        """``kubectl get KIND [NAME] -o json``; None when the object does not exist."""
        args = ["get", kind]
        if name:
            args.append(name)
        if namespace:
            args += ["-n", namespace]
        if selector:
            args += ["-l", selector]
        args += ["-o", "json", f"--request-timeout={REQUEST_TIMEOUT}"]
        try:
            result = self._run(*args, read_only=True)
        except CommandFailed as exc:
            if name and _is_not_found(exc.stderr_tail):
                return None
            # An answer from the API server that is not "not found" (InternalError, a webhook, a
            # timeout): one line saying what, as a remote failure - not a multi-line exit 1.
            what = " ".join(["kubectl get", kind, *([name] if name else [])])
            where = f" in namespace {namespace}" if namespace else ""
            raise RemoteError(
                f"{what}{where} failed: {last_line(exc.stderr_tail) or f'exit {exc.returncode}'}"
            ) from exc
        try:
            data = parse_json(result.stdout)
        except ValueError as exc:
            raise RemoteError(f"kubectl get {kind}: output is not JSON we can read: {exc}") from None
        if not isinstance(data, dict):
            raise RemoteError(f"kubectl get {kind}: unexpected output")
        return data

    def deployment(self, namespace: str, name: str, container: str) -> Deployment | None:
        data = self.get_json("deployment", name, namespace=namespace)
        return None if data is None else Deployment.from_json(data, container)

    def pods(self, namespace: str, selector: Mapping[str, str], container: str) -> list[Pod]:
        """The pods a deployment's selector matches (every revision, terminating ones included)."""
        data = self.get_json("pods", namespace=namespace, selector=selector_string(selector) or None) or {}
        return [Pod.from_json(item, container) for item in _objs(data.get("items"))]

    def merge_patch(
        self, kind: str, name: str, namespace: str, patch: str, *, subresource: str = ""
    ) -> proc.Result:
        """``kubectl patch KIND NAME -n NS [--subresource=S] --type=merge -p PATCH`` (mutating).

        Raises :class:`ClusterAccessError` for no access, CommandFailed for the API server's "no"."""
        extra = (f"--subresource={subresource}",) if subresource else ()
        return self._run("patch", kind, name, "-n", namespace, *extra, "--type=merge", "-p", patch,
                         read_only=False)  # fmt: skip

    def json_patch(self, kind: str, name: str, namespace: str, patch: str) -> proc.Result:
        """``kubectl patch KIND NAME -n NS --type=json -p PATCH`` (RFC 6902; mutating). A custom
        resource takes no strategic merge, and a merge patch replaces a whole list (containers)."""
        return self._run("patch", kind, name, "-n", namespace, "--type=json", "-p", patch,
                         read_only=False)  # fmt: skip

    def set_image(self, namespace: str, deployment: str, container: str, image: str) -> proc.Result:
        return self._run("set", "image", f"deployment/{deployment}", f"{container}={image}", "-n", namespace,
                         read_only=False)  # fmt: skip

    def rollout_status(self, namespace: str, deployment: str, *, timeout: int) -> proc.Result:
        """Wait for the rollout; raises CommandFailed when kubectl gives up (timeout, deadline)."""
        # Not read-only on purpose: it waits for a change this run made; under --dry-run there is none.
        return self._run("rollout", "status", f"deployment/{deployment}", "-n", namespace,
                         f"--timeout={timeout}s", read_only=False, timeout=timeout + 30)  # fmt: skip

    def delete_namespace(self, namespace: str, *, wait: bool = False) -> str:
        """``kubectl delete namespace``: "deleted" (or printed, under --dry-run), "gone" when it
        no longer exists, "terminating" when it is already being deleted.

        A namespace stays in phase Terminating until its content is removed, and the API server
        answers another DELETE meanwhile with 409 Conflict ("The system is ensuring all content
        is removed from this namespace"); it can also vanish between a ``get`` and this call.
        """
        try:
            self._run("delete", "namespace", namespace, f"--wait={'true' if wait else 'false'}",
                      read_only=False)  # fmt: skip
        except CommandFailed as exc:
            if _is_not_found(exc.stderr_tail):
                return "gone"
            if "(conflict)" in exc.stderr_tail.lower() and "content is removed" in exc.stderr_tail:
                return "terminating"
            why = last_line(exc.stderr_tail) or f"exit {exc.returncode}"
            raise RemoteError(f"kubectl delete namespace {namespace} failed: {why}") from exc
        return "deleted"

    @contextlib.contextmanager
    def port_forward(self, namespace: str, target: str, remote_port: int, *, local_port: int | None = None,
                     ready_timeout: float = 30.0) -> Iterator[int]:  # fmt: skip
        """``kubectl port-forward -n NS TARGET LOCAL:REMOTE`` on 127.0.0.1; yields the local port.

        Ready when kubectl says ``Forwarding from 127.0.0.1:PORT`` (bounded by ``ready_timeout``),
        not when the port merely accepts connections: another process that grabbed the port
        between our pick and kubectl's bind would answer instead of the service. A picked port
        taken meanwhile is retried with a new one. kubectl's output is drained all along (it
        logs every connection; a full pipe would stall it). Always stops kubectl on exit,
        exceptions and Ctrl-C included (proc.background).
        """
        for attempt in range(1, PORT_ATTEMPTS + 1):
            port = local_port or _free_port()
            argv = self.argv(
                "port-forward", "-n", namespace, target, f"{port}:{remote_port}", "--address", "127.0.0.1"
            )
            with proc.background(argv) as process:
                output = _wait_forwarding(process, port, ready_timeout)
                if output is None:
                    yield port
                    return
            retry = local_port is None and attempt < PORT_ATTEMPTS and "unable to listen on" in output.lower()
            if not retry:
                # No access (RBAC, network, kubeconfig) is not "the service does not answer":
                # `verify --rollback-on-failure` must not roll back on it.
                access = self._access_error(output)
                if access is not None:
                    raise access
                if output == _NOT_READY:
                    raise RemoteError(
                        f"kubectl port-forward {target} in {namespace}: port {port} did not open "
                        f"within {ready_timeout:g}s"
                    )
                why = last_line(output) or "no output"
                raise RemoteError(f"kubectl port-forward {target} in {namespace} exited: {why}")


PORT_ATTEMPTS = 3
_NOT_READY = "\0not ready"


class _Process(Protocol):  # what proc.background yields (subprocess is the process layer's alone)
    stdout: IO[str] | None

    def wait(self, timeout: float | None = None) -> int: ...


def _wait_forwarding(process: _Process, port: int, ready_timeout: float) -> str | None:
    """None once kubectl forwards ``port``; else its (redacted) output, or :data:`_NOT_READY`."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        try:
            for line in process.stdout or ():
                lines.put(line)
        except (OSError, ValueError):  # the pipe was closed under us: kubectl was stopped
            pass
        finally:
            lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    seen: collections.deque[str] = collections.deque(maxlen=20)
    deadline = time.monotonic() + ready_timeout
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=min(remaining, 0.5))
        except queue.Empty:
            continue
        if line is None:  # kubectl exited
            return redact.redact("".join(seen)) or f"exit {process.wait(timeout=5)}"
        seen.append(line)
        if line.startswith(f"Forwarding from 127.0.0.1:{port} "):
            return None
    return _NOT_READY


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def last_line(text: str) -> str:
    """The last non-blank line of kubectl's output: the one that says what went wrong."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def selector_string(labels: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def check_context(context: str) -> str:
    """A context name from a flag or config, refused (exit 2) when it could be read as an option."""
    if context.startswith("-"):
        raise UsageError(f"invalid kubectl context {context!r}")
    return context


__all__: Sequence[str] = (
    "Deployment",
    "ImageRef",
    "Kubectl",
    "Pod",
    "check_context",
    "kubeconfig_problem",
    "last_line",
)
