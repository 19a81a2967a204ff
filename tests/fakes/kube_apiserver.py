"""A small Kubernetes API server on 127.0.0.1 for the real kubectl (1.32) to talk to.

It reproduces the parts of the real API server that the cluster tasks use, on the wire:

* ``/version``; legacy discovery (``/api``, ``/apis``, ``/api/v1``, ``/apis/apps/v1``). kubectl
  1.32 first asks for aggregated discovery (``Accept: application/json;g=apidiscovery.k8s.io;v=v2;
  as=APIGroupDiscoveryList,...,application/json``); like an API server without aggregated
  discovery we answer with plain ``application/json``, and client-go falls back to the legacy
  documents (that fallback is what real pre-1.26 servers trigger).
* GET / LIST (``labelSelector``, ``fieldSelector=metadata.name=X``) / WATCH (``watch=true``:
  chunked ``{"type": ..., "object": ...}`` lines from ``resourceVersion`` on, bounded by
  ``timeoutSeconds`` and at most 30 s) of deployments, replicasets, pods, namespaces, services.
* Strategic merge PATCH (``application/strategic-merge-patch+json``, containers merged by
  ``name``), which is what ``kubectl set image`` sends; a spec change bumps
  ``metadata.generation`` like the real registry does.
* A deployment controller stand-in: after a spec change the rollout either completes (status
  ``observedGeneration``/``updatedReplicas``/``availableReplicas``, new pods with the new
  ``image``/``imageID``) or, with ``stall=True``, stays stuck with 0 updated replicas so
  ``kubectl rollout status --timeout`` gives up.
* Argo Rollouts (``argoproj.io/v1alpha1`` ``rollouts``, short name ``ro``): discovery, GET/LIST,
  JSON merge PATCH (``application/merge-patch+json``; strategic merge is the CRD's real 415) of
  the resource and of its ``status`` subresource, each dropping the other's fields like the real
  server does for a CRD with ``subresources: {status: {}}``, and JSON PATCH (RFC 6902) of the
  resource. The controller stand-in is :mod:`tests.fakes.rollouts_controller` (steps, timed
  pauses, analysis, promote, promote-full, abort, blue-green), with a ReplicaSet per
  ``rollouts-pod-template-hash`` and its pods and the ``analysisruns`` (short name ``ar``) it
  creates; :meth:`FakeKube.add_rollout`, :meth:`FakeKube.set_rollout_image` (an Argo CD sync of a
  new tag), :meth:`FakeKube.wait_rollout`, :meth:`FakeKube.advance` (the controller's clock: timed
  pauses end), :meth:`FakeKube.set_analysis` (an AnalysisRun's verdict).
* DELETE of namespaces: phase Terminating first, purged shortly after (or never, for a namespace
  a test holds); a second DELETE meanwhile is the real 409 Conflict.
* ``kubectl port-forward`` (``pods/NAME/portforward``): the WebSocket attempt is refused like an
  API server before 1.30 does, kubectl falls back to SPDY/3.1, served by
  :mod:`tests.fakes.kube_portforward` and forwarded to a test's TCP server (``set_backend``).
* Errors as ``Status`` objects with the real reason/code (404 NotFound ``deployments.apps "x" not
  found``, 405, 415; 403 Forbidden ``deployments.apps "dex" is forbidden: User "..." cannot get
  resource "deployments" in API group "apps" in the namespace "ns"`` for namespaces a test
  :meth:`FakeKube.forbid` - what RBAC answers a service account without a Role there).

``requests`` records every (method, path) so tests can assert that nothing was written.
Plain HTTP: the kubeconfig says ``server: http://127.0.0.1:PORT`` and kubectl accepts that.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Self

from tests.fakes import rollouts_controller
from tests.fakes.kube_portforward import SpdySession

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

WATCH_MAX_SECONDS = 30.0
ROLLOUT_DELAY = 0.2  # seconds between a spec change and the "controller" finishing the rollout

# resource plural -> (group/version, kind, namespaced)
RESOURCES: dict[str, tuple[str, str, bool]] = {
    "namespaces": ("v1", "Namespace", False),
    "pods": ("v1", "Pod", True),
    "services": ("v1", "Service", True),
    "deployments": ("apps/v1", "Deployment", True),
    "replicasets": ("apps/v1", "ReplicaSet", True),
    # The Argo Rollouts CRD (argoproj.io/v1alpha1), served with its status subresource like the
    # CRD in argo-rollouts' manifests/crds/rollout-crd.yaml (`subresources: {status: {}}`).
    "rollouts": ("argoproj.io/v1alpha1", "Rollout", True),
    # argo-rollouts' manifests/crds/analysis-run-crd.yaml, also with a status subresource.
    "analysisruns": ("argoproj.io/v1alpha1", "AnalysisRun", True),
}
SHORT_NAMES = {
    "namespaces": ["ns"],
    "pods": ["po"],
    "services": ["svc"],
    "deployments": ["deploy"],
    "replicasets": ["rs"],
    "rollouts": ["ro"],
    "analysisruns": ["ar"],
}
GROUP_OF = {"v1": "", "apps/v1": "apps", "argoproj.io/v1alpha1": "argoproj.io"}
ROLLOUT_HASH_LABEL = "rollouts-pod-template-hash"


def _resource_list(group_version: str) -> dict[str, Any]:
    resources = []
    for plural, (gv, kind, namespaced) in RESOURCES.items():
        if gv != group_version:
            continue
        resources.append(
            {
                "name": plural,
                "singularName": kind.lower(),
                "namespaced": namespaced,
                "kind": kind,
                "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
                "shortNames": SHORT_NAMES.get(plural, []),
            }
        )
        if plural == "deployments":
            resources.append(
                {
                    "name": "deployments/scale",
                    "singularName": "",
                    "namespaced": True,
                    "group": "autoscaling",
                    "version": "v1",
                    "kind": "Scale",
                    "verbs": ["get", "patch", "update"],
                }
            )
            resources.append(
                {
                    "name": "deployments/status",
                    "singularName": "",
                    "namespaced": True,
                    "kind": "Deployment",
                    "verbs": ["get", "patch", "update"],
                }
            )
        if plural == "rollouts":
            resources[-1]["categories"] = ["all"]
            resources.append(
                {
                    "name": "rollouts/status",
                    "singularName": "",
                    "namespaced": True,
                    "kind": "Rollout",
                    "verbs": ["get", "patch", "update"],
                }
            )
        if plural == "pods":
            resources.append(
                {
                    "name": "pods/portforward",
                    "singularName": "",
                    "namespaced": True,
                    "kind": "PodPortForwardOptions",
                    "verbs": ["create", "get"],
                }
            )
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }


def image_id(image: str, pulled: dict[str, str] | None = None) -> str:
    """What a kubelet reports as imageID: ``<repo>@sha256:<digest>`` of the manifest it pulled.

    A reference pinned by digest (``repo:tag@sha256:x``, what kustomize renders for ``digest:``)
    pulls exactly that digest. For a tag, the digest the registry served at pull time: ``pulled``
    (tag reference -> digest, :meth:`FakeKube.pulled`), else one derived from the reference.
    """
    repo, _, pinned = image.partition("@")
    last = repo.rsplit("/", 1)[-1]
    if ":" in last:
        repo = repo.rsplit(":", 1)[0]
    if pinned:
        return f"{repo}@{pinned}"
    if pulled and image in pulled:
        return f"{repo}@{pulled[image]}"
    return f"{repo}@sha256:{hashlib.sha256(image.encode()).hexdigest()}"


def json_merge(target: dict[str, Any], patch: dict[str, Any]) -> None:
    """RFC 7386 JSON merge patch (``application/merge-patch+json``): null deletes, objects merge,
    everything else (lists included) replaces."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict):
            if not isinstance(target.get(key), dict):
                target[key] = {}
            json_merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def json_patch(doc: dict[str, Any], ops: list[dict[str, Any]]) -> dict[str, Any]:
    """RFC 6902 ``test``/``replace``/``add`` on a copy of ``doc`` (what the API server applies for
    ``--type=json``, evanphx/json-patch); ValueError with that library's words when one does not apply."""
    out = copy.deepcopy(doc)
    for op in ops:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in str(op.get("path", "")).split("/")[1:]]
        parent: Any = out
        for part in parts[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent.get(part)
            if parent is None:
                raise ValueError(f"doc is missing path: {op.get('path')}: missing value")
        last = parts[-1] if parts else ""
        key: Any = int(last) if isinstance(parent, list) and last.isdigit() else last
        exists = (0 <= key < len(parent)) if isinstance(parent, list) else key in parent
        if op["op"] == "test":
            if not exists or parent[key] != op.get("value"):
                raise ValueError(f"testing value {op.get('path')} failed: test failed")
        elif op["op"] in {"replace", "add"}:
            if op["op"] == "replace" and not exists:
                raise ValueError(f"replace operation does not apply: doc is missing key: {op.get('path')}")
            parent[key] = copy.deepcopy(op.get("value"))
        else:
            raise ValueError(f"Unexpected kind: {op['op']}")
    return out


def _status(code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details is not None:
        body["details"] = details
    return body


def _details(name: str | None, group: str, kind: str) -> dict[str, Any]:
    """StatusDetails as the real server sends it: empty fields are omitted (``omitempty``)."""
    details: dict[str, Any] = {"name": name, "group": group, "kind": kind}
    return {k: v for k, v in details.items() if v}


def _merge(target: dict[str, Any], patch: dict[str, Any]) -> None:
    """Strategic merge, enough for Deployments: lists of named objects merge by ``name``."""
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        elif (
            isinstance(value, list)
            and isinstance(target.get(key), list)
            and all(isinstance(v, dict) and "name" in v for v in value)
        ):
            existing = {item.get("name"): item for item in target[key] if isinstance(item, dict)}
            for item in value:
                if item["name"] in existing:
                    _merge(existing[item["name"]], item)
                else:
                    target[key].append(copy.deepcopy(item))
        else:
            target[key] = copy.deepcopy(value)


class FakeKube:
    """The cluster state plus the HTTP server. Use as a context manager."""

    def __init__(self) -> None:
        self.lock = threading.Condition()
        self.clock = rollouts_controller.EPOCH  # the Rollouts controller's now: tests move it (advance)
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}  # (plural, namespace, name) -> obj
        self.events: list[tuple[int, str, str, dict[str, Any]]] = []  # (rv, type, plural, obj)
        self.rv = 100
        self.stall: set[tuple[str, str]] = set()  # (namespace, deployment) whose rollouts never finish
        self.requests: list[tuple[str, str]] = []
        self.stopping = False
        self._timers: list[threading.Timer] = []
        self.backends: dict[str, int] = {}  # namespace -> 127.0.0.1 port that its pods "listen" on
        self.forbidden: set[str] = set()  # namespaces where RBAC denies everything (403)
        self.read_only: set[str] = set()  # namespaces where RBAC allows get/list/watch only (403)
        self.held_namespaces: set[str] = set()  # deleted namespaces that stay Terminating
        # image reference -> the digest the "registry" served when pods pulled it (imageID)
        self.pulled: dict[str, str] = {}
        # (namespace, rollout, pod-template-hash) -> the pod template of that revision
        self.rollout_templates: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )

    # -- lifecycle ------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with self.lock:
            self.stopping = True
            self.lock.notify_all()
            timers = list(self._timers)
        for timer in timers:
            timer.cancel()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)

    def write_kubeconfig(self, path: Path, *, context: str = "fake", namespace: str = "default") -> Path:
        path.write_text(
            "apiVersion: v1\nkind: Config\n"
            f"clusters:\n- name: fake\n  cluster:\n    server: {self.url}\n"
            f"contexts:\n- name: {context}\n  context:\n    cluster: fake\n    user: fake\n"
            f"    namespace: {namespace}\n"
            f"current-context: {context}\n"
            "users:\n- name: fake\n  user: {}\n",
            encoding="utf-8",
        )
        return path

    # -- state ----------------------------------------------------------------------------------
    def _next_rv(self) -> int:
        self.rv += 1
        return self.rv

    def _store(self, plural: str, obj: dict[str, Any], event: str) -> dict[str, Any]:
        meta = obj["metadata"]
        rv = self._next_rv()
        meta["resourceVersion"] = str(rv)
        key = (plural, meta.get("namespace", ""), meta["name"])
        if event == "DELETED":
            self.objects.pop(key, None)
        else:
            self.objects[key] = obj
        self.events.append((rv, event, plural, copy.deepcopy(obj)))
        self.lock.notify_all()
        return obj

    def add_namespace(self, name: str, labels: dict[str, str] | None = None) -> None:
        with self.lock:
            self._store(
                "namespaces",
                {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {
                        "name": name,
                        "uid": f"uid-ns-{name}",
                        "labels": {"kubernetes.io/metadata.name": name, **(labels or {})},
                        "creationTimestamp": "2026-01-01T00:00:00Z",
                    },
                    "spec": {"finalizers": ["kubernetes"]},
                    "status": {"phase": "Active"},
                },
                "ADDED",
            )

    def add_deployment(
        self,
        namespace: str,
        name: str,
        *,
        image: str,
        container: str = "dex",
        replicas: int = 2,
        service_port: int = 8000,
        target_port: int = 8000,
    ) -> None:
        """A deployment whose rollout to ``image`` is complete, its pods and a service."""
        if ("namespaces", "", namespace) not in self.objects:
            self.add_namespace(namespace)
        labels = {"app.kubernetes.io/name": name}
        with self.lock:
            deployment = {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {
                    "name": name,
                    "namespace": namespace,
                    "uid": f"uid-{namespace}-{name}",
                    "generation": 1,
                    "labels": dict(labels),
                    "creationTimestamp": "2026-01-01T00:00:00Z",
                },
                "spec": {
                    "replicas": replicas,
                    "selector": {"matchLabels": dict(labels)},
                    "progressDeadlineSeconds": 600,
                    "strategy": {
                        "type": "RollingUpdate",
                        "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
                    },
                    "template": {
                        "metadata": {"labels": dict(labels)},
                        "spec": {
                            "containers": [
                                {"name": container, "image": image, "ports": [{"containerPort": target_port}]}
                            ]
                        },
                    },
                },
                "status": {},
            }
            self._complete(deployment)
            self._store("deployments", deployment, "ADDED")
            self._store(
                "services",
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": {"name": name, "namespace": namespace, "uid": f"uid-svc-{namespace}-{name}"},
                    "spec": {
                        "selector": dict(labels),
                        "ports": [
                            {
                                "name": "http",
                                "port": service_port,
                                "targetPort": target_port,
                                "protocol": "TCP",
                            }
                        ],
                        "type": "ClusterIP",
                    },
                },
                "ADDED",
            )

    def set_backend(self, namespace: str, port: int) -> None:
        """Port-forwards to pods in ``namespace`` reach ``127.0.0.1:port`` (a test's HTTP server)."""
        with self.lock:
            self.backends[namespace] = port

    def _portforward(self, h: _Handler, namespace: str, name: str) -> None:
        with self.lock:
            pod = self.objects.get(("pods", namespace, name))
            backend = self.backends.get(namespace)
        if pod is None:
            h.send_json(
                404, _status(404, "NotFound", f'pods "{name}" not found', {"name": name, "kind": "pods"})
            )
            return
        if "spdy/3.1" not in h.headers.get("Upgrade", "").lower():
            # What an API server without WebSocket streaming (before 1.30) answers; kubectl then
            # falls back to SPDY.
            h.send_json(400, _status(400, "BadRequest", "Upgrade request required"))
            return
        h.send_response(101, "Switching Protocols")
        h.send_header("Connection", "Upgrade")
        h.send_header("Upgrade", "SPDY/3.1")
        h.send_header("X-Stream-Protocol-Version", "portforward.k8s.io")
        h.end_headers()
        h.wfile.flush()
        h.close_connection = True
        SpdySession(h.rfile, h.connection, pod=name, backend=backend).serve()

    def forbid(self, namespace: str) -> None:
        """Every request in ``namespace`` gets RBAC's 403 (the client's user has no Role there)."""
        with self.lock:
            self.forbidden.add(namespace)

    def deny_writes(self, namespace: str) -> None:
        """A Role with only get/list/watch in ``namespace``: every write gets RBAC's 403 (the
        same authorizer text as :meth:`forbid`, with the write's verb)."""
        with self.lock:
            self.read_only.add(namespace)

    def set_stall(self, namespace: str, name: str, stall: bool = True) -> None:
        with self.lock:
            (self.stall.add if stall else self.stall.discard)((namespace, name))

    def deployment_image(self, namespace: str, name: str, container: str = "dex") -> str | None:
        with self.lock:
            obj = self.objects.get(("deployments", namespace, name))
            if obj is None:
                return None
            containers = obj["spec"]["template"]["spec"]["containers"]
            return next((c["image"] for c in containers if c["name"] == container), None)

    def pod_images(self, namespace: str) -> list[str]:
        with self.lock:
            return sorted(
                o["spec"]["containers"][0]["image"]
                for (plural, ns, _), o in self.objects.items()
                if plural == "pods" and ns == namespace
            )

    def writes(self) -> list[tuple[str, str]]:
        return [(m, p) for m, p in self.requests if m not in {"GET", "HEAD"}]

    def _pods_for(self, deployment: dict[str, Any]) -> None:
        """Replace the deployment's pods by ``replicas`` pods of the current template."""
        namespace = deployment["metadata"]["namespace"]
        name = deployment["metadata"]["name"]
        for key in [
            k for k in self.objects if k[0] == "pods" and k[1] == namespace and k[2].startswith(name + "-")
        ]:
            self._store("pods", copy.deepcopy(self.objects[key]), "DELETED")
        template = deployment["spec"]["template"]
        generation = deployment["metadata"]["generation"]
        for i in range(int(deployment["spec"].get("replicas", 1))):
            pod_name = f"{name}-{generation:04d}-{i}"
            containers = copy.deepcopy(template["spec"]["containers"])
            self._store(
                "pods",
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {
                        "name": pod_name,
                        "namespace": namespace,
                        "uid": f"uid-pod-{pod_name}",
                        "labels": dict(template["metadata"]["labels"]),
                        "ownerReferences": [
                            {
                                "apiVersion": "apps/v1",
                                "kind": "ReplicaSet",
                                "name": f"{name}-{generation:04d}",
                                "controller": True,
                            }
                        ],
                    },
                    "spec": {"containers": containers},
                    "status": {
                        "phase": "Running",
                        "podIP": f"10.0.0.{i + 1}",
                        "conditions": [{"type": "Ready", "status": "True"}],
                        "containerStatuses": [
                            {
                                "name": c["name"],
                                "image": c["image"],
                                "imageID": image_id(c["image"], self.pulled),
                                "ready": True,
                                "started": True,
                                "restartCount": 0,
                                "state": {"running": {}},
                            }
                            for c in containers
                        ],
                    },
                },
                "ADDED",
            )

    def _complete(self, deployment: dict[str, Any]) -> None:
        replicas = int(deployment["spec"].get("replicas", 1))
        deployment["status"] = {
            "observedGeneration": deployment["metadata"]["generation"],
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": replicas,
            "availableReplicas": replicas,
            "conditions": [
                {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
            ],
        }
        self._pods_for(deployment)

    def _controller(self, namespace: str, name: str) -> None:
        with self.lock:
            if self.stopping:
                return
            obj = self.objects.get(("deployments", namespace, name))
            if obj is None:
                return
            obj = copy.deepcopy(obj)
            if (namespace, name) in self.stall:
                # What the real controller reports when the new pod never becomes ready (bad
                # image, failing probe) with maxSurge 25% / maxUnavailable 25%: one surge pod of
                # the new ReplicaSet (updated, unavailable) beside all the old ones.
                replicas = int(obj["spec"].get("replicas", 1))
                surge = min(replicas, 1)
                obj["status"].update(
                    {
                        "observedGeneration": obj["metadata"]["generation"],
                        "replicas": replicas + surge,
                        "updatedReplicas": surge,
                        "availableReplicas": replicas,
                        "unavailableReplicas": surge,
                    }
                )
                obj["status"]["conditions"][1].update({"reason": "ReplicaSetUpdated"})
            else:
                self._complete(obj)
            self._store("deployments", obj, "MODIFIED")

    # -- HTTP -----------------------------------------------------------------------------------
    def handle(self, h: _Handler) -> None:  # noqa: PLR0911, PLR0912 - one router, like a mux
        parsed = urllib.parse.urlsplit(h.path)
        path = parsed.path.rstrip("/") or "/"
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(parsed.query).items()}
        with self.lock:
            self.requests.append((h.command, path))
        if path == "/version":
            return h.send_json(
                200, {"major": "1", "minor": "32", "gitVersion": "v1.32.4-fake", "platform": "linux/amd64"}
            )
        if path == "/api":
            return h.send_json(
                200,
                {
                    "kind": "APIVersions",
                    "versions": ["v1"],
                    "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}],
                },
            )
        if path == "/apis":
            return h.send_json(
                200,
                {
                    "kind": "APIGroupList",
                    "apiVersion": "v1",
                    "groups": [
                        {
                            "name": "apps",
                            "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
                            "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"},
                        },
                        {
                            "name": "argoproj.io",
                            "versions": [{"groupVersion": "argoproj.io/v1alpha1", "version": "v1alpha1"}],
                            "preferredVersion": {
                                "groupVersion": "argoproj.io/v1alpha1",
                                "version": "v1alpha1",
                            },
                        },
                    ],
                },
            )
        if path == "/api/v1":
            return h.send_json(200, _resource_list("v1"))
        if path == "/apis/apps/v1":
            return h.send_json(200, _resource_list("apps/v1"))
        if path == "/apis/argoproj.io/v1alpha1":
            return h.send_json(200, _resource_list("argoproj.io/v1alpha1"))
        if path.startswith(("/openapi", "/swagger")):
            return h.send_json(
                404, _status(404, "NotFound", "the server could not find the requested resource")
            )
        route = _route(path)
        if route is None:
            return h.send_json(
                404, _status(404, "NotFound", "the server could not find the requested resource")
            )
        plural, namespace, name, sub = route
        if namespace is not None and namespace in self.forbidden:
            return self._forbidden(h, plural, namespace, name, query)
        if namespace is not None and namespace in self.read_only and h.command != "GET":
            return self._forbidden(h, plural, namespace, name, query)
        if sub == "portforward" and plural == "pods" and name is not None:
            return self._portforward(h, namespace or "", name)
        status_sub = sub == "status" and plural == "rollouts" and name is not None
        if sub and not status_sub:
            return h.send_json(
                404, _status(404, "NotFound", "the server could not find the requested resource")
            )
        if h.command == "GET" and name is None:
            if query.get("watch") in {"true", "1"}:
                return self._watch(h, plural, namespace, query)
            return h.send_json(200, self._list(plural, namespace, query))
        if name is None:
            return h.send_json(405, _status(405, "MethodNotAllowed", "the server does not allow this method"))
        with self.lock:
            obj = self.objects.get((plural, namespace or "", name))
            if obj is None:
                group = GROUP_OF[RESOURCES[plural][0]]
                qualified = f"{plural}.{group}" if group else plural
                return h.send_json(
                    404,
                    _status(
                        404,
                        "NotFound",
                        f'{qualified} "{name}" not found',
                        _details(name, group, plural),
                    ),
                )
            if h.command == "GET":
                return h.send_json(200, obj)
            if h.command == "PATCH" and plural == "rollouts":
                return self._patch_rollout(h, obj, status=status_sub)
            if h.command == "PATCH":
                return self._patch(h, plural, obj)
            if h.command == "DELETE" and plural == "namespaces":
                return self._delete_namespace(h, name, obj)
        return h.send_json(405, _status(405, "MethodNotAllowed", "the server does not allow this method"))

    def _forbidden(
        self, h: _Handler, plural: str, namespace: str, name: str | None, query: dict[str, str]
    ) -> None:
        # The authorizer's text (k8s.io/apiserver endpoints/handlers/responsewriters/errors.go).
        group = GROUP_OF[RESOURCES[plural][0]]
        qualified = f"{plural}.{group}" if group else plural
        verb = {"GET": "get", "PATCH": "patch", "DELETE": "delete", "PUT": "update", "POST": "create"}.get(
            h.command, "get"
        )
        if h.command == "GET" and name is None:
            verb = "watch" if query.get("watch") in {"true", "1"} else "list"
        subject = f'{qualified} "{name}"' if name else qualified
        message = (
            f'{subject} is forbidden: User "system:serviceaccount:ci:deployer" cannot {verb} resource '
            f'"{plural}" in API group "{group}" in the namespace "{namespace}"'
        )
        h.send_json(403, _status(403, "Forbidden", message, _details(name, group, plural)))

    def _delete_namespace(self, h: _Handler, name: str, obj: dict[str, Any]) -> None:
        """Like the namespace registry (pkg/registry/core/namespace/storage): the first DELETE
        answers 200 with the namespace in phase Terminating; it stays (GET/LIST show it) until the
        namespace controller has removed its content, and a DELETE meanwhile is 409 Conflict."""
        if obj["metadata"].get("deletionTimestamp"):
            message = (
                f'Operation cannot be fulfilled on namespaces "{name}": The system is ensuring all '
                "content is removed from this namespace.  Upon completion, this namespace will "
                "automatically be purged by the system."
            )
            h.send_json(409, _status(409, "Conflict", message, {"name": name, "kind": "namespaces"}))
            return
        terminating = copy.deepcopy(obj)
        terminating["status"]["phase"] = "Terminating"
        terminating["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
        self._store("namespaces", terminating, "MODIFIED")
        h.send_json(200, terminating)
        if name not in self.held_namespaces:
            timer = threading.Timer(ROLLOUT_DELAY, self._purge_namespace, (name,))
            timer.daemon = True
            self._timers.append(timer)
            timer.start()

    def hold_namespace(self, name: str) -> None:
        """A deleted ``name`` stays Terminating (a finalizer that does not finish, a stuck webhook)."""
        with self.lock:
            self.held_namespaces.add(name)

    def _purge_namespace(self, name: str) -> None:
        """The namespace controller: delete the content, then the namespace itself."""
        with self.lock:
            if self.stopping or ("namespaces", "", name) not in self.objects:
                return
            for key in [k for k in self.objects if k[1] == name]:
                self._store(key[0], copy.deepcopy(self.objects[key]), "DELETED")
            self._store("namespaces", copy.deepcopy(self.objects[("namespaces", "", name)]), "DELETED")

    def _patch(self, h: _Handler, plural: str, obj: dict[str, Any]) -> None:
        ctype = h.headers.get("Content-Type", "")
        if "strategic-merge-patch" not in ctype and "merge-patch" not in ctype:
            h.send_json(
                415,
                _status(
                    415,
                    "UnsupportedMediaType",
                    "the body of the request was in an unknown "
                    "format - accepted media types include: "
                    "application/strategic-merge-patch+json",
                ),
            )
            return
        patch = json.loads(h.body() or b"{}")
        updated = copy.deepcopy(obj)
        _merge(updated, patch)
        changed = updated.get("spec") != obj.get("spec")
        if changed:
            updated["metadata"]["generation"] = int(updated["metadata"].get("generation", 1)) + 1
        self._store(plural, updated, "MODIFIED")
        h.send_json(200, updated)
        if changed and plural == "deployments":
            meta = updated["metadata"]
            timer = threading.Timer(ROLLOUT_DELAY, self._controller, (meta["namespace"], meta["name"]))
            timer.daemon = True
            self._timers.append(timer)
            timer.start()

    # -- Argo Rollouts ---------------------------------------------------------------------------
    def add_rollout(
        self,
        namespace: str,
        name: str,
        *,
        image: str,
        container: str = "dex",
        replicas: int = 4,
        strategy: str = "canary",
        steps: list[dict[str, Any]] | None = None,
        traffic_routing: bool = False,
        analysis: dict[str, Any] | None = None,
    ) -> None:
        """A Rollout whose revision ``image`` is stable (phase Healthy), with its ReplicaSet and pods.

        ``steps`` default to ``setWeight 20, pause, setWeight 50, pause`` (canary); ``strategy
        "bluegreen"`` uses ``activeService``/``previewService`` without auto-promotion, and both
        Services exist (the controller points their selectors at a ReplicaSet, see
        :meth:`_switch_services`).
        """
        if ("namespaces", "", namespace) not in self.objects:
            self.add_namespace(namespace)
        labels = {"app.kubernetes.io/name": name}
        if strategy == "bluegreen":
            spec_strategy: dict[str, Any] = {
                "blueGreen": {
                    "activeService": name,
                    "previewService": f"{name}-preview",
                    "autoPromotionEnabled": False,
                }
            }
        else:
            canary: dict[str, Any] = {
                "steps": steps
                if steps is not None
                else [{"setWeight": 20}, {"pause": {}}, {"setWeight": 50}, {"pause": {}}]
            }
            if traffic_routing:
                canary["trafficRouting"] = {"nginx": {"stableIngress": name}}
            if analysis is not None:  # background analysis: {templates: [...], startingStep: N}
                canary["analysis"] = analysis
            spec_strategy = {"canary": canary}
        rollout = {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Rollout",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "uid": f"uid-ro-{namespace}-{name}",
                "generation": 1,
                "labels": dict(labels),
                "annotations": {"rollout.argoproj.io/revision": "1"},
                "creationTimestamp": "2026-01-01T00:00:00Z",
            },
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": dict(labels)},
                "strategy": spec_strategy,
                "template": {
                    "metadata": {"labels": dict(labels)},
                    "spec": {"containers": [{"name": container, "image": image}]},
                },
            },
            "status": {},
        }
        with self.lock:
            if strategy == "bluegreen":
                for service in (name, f"{name}-preview"):
                    self._store(
                        "services",
                        {
                            "apiVersion": "v1",
                            "kind": "Service",
                            "metadata": {
                                "name": service, "namespace": namespace,
                                "uid": f"uid-svc-{namespace}-{service}",
                            },
                            "spec": {
                                "selector": dict(labels),
                                "ports": [{"name": "http", "port": 8000, "targetPort": 8000}],
                                "type": "ClusterIP",
                            },
                        },
                        "ADDED",
                    )  # fmt: skip
            self._store_rollout(rollout, "ADDED")

    def service_selector(self, namespace: str, name: str) -> dict[str, str]:
        with self.lock:
            selector: dict[str, str] = self.objects[("services", namespace, name)]["spec"]["selector"]
            return dict(selector)

    def _switch_services(self, ro: dict[str, Any]) -> None:
        """Blue-green: ``rollout/service.go`` ``switchServiceSelector`` puts the
        ``rollouts-pod-template-hash`` of the ReplicaSet each Service should reach into its selector
        (``reconcilePreviewService``: the newest ReplicaSet; ``reconcileActiveService``: the stable one
        until the pause is over, and the stable one again on abort) - the selectors the controller then
        reports as ``status.blueGreen.activeSelector``/``previewSelector``. Holds the lock."""
        blue_green = (ro["spec"].get("strategy") or {}).get("blueGreen")
        selectors = (ro.get("status") or {}).get("blueGreen") or {}
        if not blue_green:
            return
        namespace = ro["metadata"]["namespace"]
        for key, status_key in (("activeService", "activeSelector"), ("previewService", "previewSelector")):
            service = self.objects.get(("services", namespace, str(blue_green.get(key))))
            if service is None or not selectors.get(status_key):
                continue
            if service["spec"].get("selector", {}).get(ROLLOUT_HASH_LABEL) != selectors[status_key]:
                updated = copy.deepcopy(service)
                updated["spec"].setdefault("selector", {})[ROLLOUT_HASH_LABEL] = selectors[status_key]
                self._store("services", updated, "MODIFIED")

    def set_rollout_image(self, namespace: str, name: str, image: str, container: str = "dex") -> None:
        """What an Argo CD sync of a new overlay does: the template's image changes, a new revision
        starts, and the controller runs it up to its first pause (synchronously, for set-up)."""
        with self.lock:
            ro = copy.deepcopy(self.objects[("rollouts", namespace, name)])
            for c in ro["spec"]["template"]["spec"]["containers"]:
                if c["name"] == container:
                    c["image"] = image
            ro["metadata"]["generation"] = int(ro["metadata"]["generation"]) + 1
            annotations = ro["metadata"].setdefault("annotations", {})
            annotations["rollout.argoproj.io/revision"] = str(
                int(annotations.get("rollout.argoproj.io/revision", "1")) + 1
            )
            self._store_rollout(ro, "MODIFIED")

    def advance(self, seconds: float) -> None:
        """The controller's clock moves on, and it syncs every Rollout (the requeue of
        ``checkEnqueueRolloutDuringWait`` at the end of a timed pause)."""
        with self.lock:
            self.clock += dt.timedelta(seconds=seconds)
            for key in [k for k in self.objects if k[0] == "rollouts"]:
                self._store_rollout(copy.deepcopy(self.objects[key]), "MODIFIED")

    def set_analysis(self, namespace: str, name: str, phase: str, message: str = "") -> None:
        """What the analysis controller reports of AnalysisRun ``name`` (Successful, Failed,
        Error, Inconclusive); its Rollout syncs on the change, as on the informer's event."""
        with self.lock:
            run = copy.deepcopy(self.objects[("analysisruns", namespace, name)])
            run["status"].update({"phase": phase, "message": message})
            self._store("analysisruns", run, "MODIFIED")
            owner = run["metadata"]["ownerReferences"][0]["name"]
            self._store_rollout(copy.deepcopy(self.objects[("rollouts", namespace, owner)]), "MODIFIED")

    def analysis_runs(self, namespace: str) -> dict[str, dict[str, Any]]:
        with self.lock:
            return {
                key[2]: copy.deepcopy(obj)
                for key, obj in self.objects.items()
                if key[0] == "analysisruns" and key[1] == namespace
            }

    def rollout(self, namespace: str, name: str) -> dict[str, Any]:
        with self.lock:
            return copy.deepcopy(self.objects[("rollouts", namespace, name)])

    def wait_rollout(self, namespace: str, name: str, phase: str, timeout: float = 20.0) -> dict[str, Any]:
        """The Rollout once the "controller" reports ``phase`` (bounded; AssertionError after)."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while True:
                ro = copy.deepcopy(self.objects[("rollouts", namespace, name)])
                observed = ro["status"].get("observedGeneration") == str(ro["metadata"]["generation"])
                if observed and ro["status"].get("phase") == phase and not self._pending_rollouts:
                    return ro
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"rollout {namespace}/{name} never reached {phase}: {ro['status']}")
                self.lock.wait(timeout=min(remaining, 0.2))

    _pending_rollouts = 0

    def _store_rollout(self, ro: dict[str, Any], event: str) -> None:
        """Store the controller's view of ``ro``, with its ReplicaSets and pods. Holds the lock."""
        meta = ro["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        runs = {
            key[2]: copy.deepcopy(obj)
            for key, obj in self.objects.items()
            if key[0] == "analysisruns" and key[1] == namespace
        }
        before = copy.deepcopy(runs)
        reconciled, counts = rollouts_controller.reconcile(ro, now=self.clock, runs=runs)
        for run_name, run in runs.items():
            if before.get(run_name) != run:
                self._store("analysisruns", run, "MODIFIED" if run_name in before else "ADDED")
        self._store("rollouts", reconciled, event)
        self._switch_services(reconciled)
        template = reconciled["spec"]["template"]
        current = reconciled["status"]["currentPodHash"]
        self.rollout_templates[(namespace, name, current)] = copy.deepcopy(template)
        for (p, ns, _), obj in list(self.objects.items()):
            if p in {"replicasets", "pods"} and ns == namespace:
                pod_hash = obj["metadata"].get("labels", {}).get(ROLLOUT_HASH_LABEL)
                if pod_hash and obj["metadata"]["name"].startswith(name + "-"):
                    keep = pod_hash in counts and (
                        p == "replicasets"
                        or int(obj["metadata"]["name"].rsplit("-", 1)[1]) < counts[pod_hash]
                    )
                    if not keep:
                        self._store(p, copy.deepcopy(obj), "DELETED")
        for pod_hash, count in counts.items():
            rs_template = copy.deepcopy(self.rollout_templates[(namespace, name, pod_hash)])
            labels = {**rs_template["metadata"].get("labels", {}), ROLLOUT_HASH_LABEL: pod_hash}
            rs_template["metadata"]["labels"] = labels
            rs_name = f"{name}-{pod_hash}"
            self._store(
                "replicasets",
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "metadata": {
                        "name": rs_name,
                        "namespace": namespace,
                        "uid": f"uid-rs-{rs_name}",
                        "labels": dict(labels),
                        "ownerReferences": [
                            {
                                "apiVersion": "argoproj.io/v1alpha1",
                                "kind": "Rollout",
                                "name": name,
                                "controller": True,
                            }
                        ],
                    },
                    "spec": {
                        "replicas": count,
                        "selector": {"matchLabels": dict(labels)},
                        "template": rs_template,
                    },
                    "status": {"replicas": count, "readyReplicas": count, "availableReplicas": count},
                },
                "MODIFIED" if ("replicasets", namespace, rs_name) in self.objects else "ADDED",
            )
            for i in range(count):
                pod_name = f"{rs_name}-{i}"
                if ("pods", namespace, pod_name) in self.objects:
                    continue
                containers = copy.deepcopy(rs_template["spec"]["containers"])
                self._store(
                    "pods",
                    {
                        "apiVersion": "v1",
                        "kind": "Pod",
                        "metadata": {
                            "name": pod_name, "namespace": namespace, "uid": f"uid-pod-{pod_name}",
                            "labels": dict(labels),
                            "ownerReferences": [
                                {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs_name,
                                 "controller": True}
                            ],
                        },
                        "spec": {"containers": containers},
                        "status": {
                            "phase": "Running",
                            "conditions": [{"type": "Ready", "status": "True"}],
                            "containerStatuses": [
                                {"name": c["name"], "image": c["image"],
                                 "imageID": image_id(c["image"], self.pulled), "ready": True,
                                 "started": True, "restartCount": 0, "state": {"running": {}}}
                                for c in containers
                            ],
                        },
                    },
                    "ADDED",
                )  # fmt: skip

    def _patch_rollout(self, h: _Handler, obj: dict[str, Any], *, status: bool) -> None:
        """A merge patch of a Rollout or of its ``/status``: with the status subresource enabled,
        the API server drops status changes sent to the main resource and everything but status
        sent to ``/status``; only a spec change bumps ``metadata.generation``. The controller
        reacts shortly after (ROLLOUT_DELAY), as the real one does to the watch event."""
        ctype = h.headers.get("Content-Type", "")
        if "json-patch" in ctype and not status:
            try:
                updated = json_patch(obj, json.loads(h.body() or b"[]"))
            except ValueError as exc:  # apiserver's applyJSPatch: 422 with jsonpatch's error text
                h.send_json(422, _status(422, "Invalid", str(exc)))
                return
            updated["status"] = copy.deepcopy(obj.get("status") or {})  # the status subresource's
            self._rollout_write(h, obj, updated)
            return
        if "merge-patch" not in ctype and "strategic-merge-patch" not in ctype:
            h.send_json(415, _status(415, "UnsupportedMediaType", f"unsupported patch type {ctype!r}"))
            return
        patch = json.loads(h.body() or b"{}")
        updated = copy.deepcopy(obj)
        if "strategic-merge-patch" in ctype:
            # CRDs take no strategic merge (apiextensions-apiserver): the real 415.
            h.send_json(
                415,
                _status(
                    415, "UnsupportedMediaType", "strategic merge patch is not supported for custom resources"
                ),
            )
            return
        if status:
            json_merge(updated.setdefault("status", {}), patch.get("status") or {})
        else:
            json_merge(updated, {k: v for k, v in patch.items() if k != "status"})
        self._rollout_write(h, obj, updated)

    def _rollout_write(self, h: _Handler, obj: dict[str, Any], updated: dict[str, Any]) -> None:
        if updated.get("spec") != obj.get("spec"):
            updated["metadata"]["generation"] = int(updated["metadata"].get("generation", 1)) + 1
        self._store("rollouts", updated, "MODIFIED")
        self._pending_rollouts += 1
        h.send_json(200, updated)
        meta = updated["metadata"]
        timer = threading.Timer(ROLLOUT_DELAY, self._rollout_controller, (meta["namespace"], meta["name"]))
        timer.daemon = True
        self._timers.append(timer)
        timer.start()

    def _rollout_controller(self, namespace: str, name: str) -> None:
        with self.lock:
            self._pending_rollouts -= 1
            if self.stopping or ("rollouts", namespace, name) not in self.objects:
                return
            self._store_rollout(copy.deepcopy(self.objects[("rollouts", namespace, name)]), "MODIFIED")

    def _matches(self, obj: dict[str, Any], query: dict[str, str]) -> bool:
        meta = obj["metadata"]
        for selector, source in (("labelSelector", meta.get("labels", {})), ("fieldSelector", None)):
            for term in filter(None, query.get(selector, "").split(",")):
                key, _, value = term.partition("=")
                value = value.lstrip("=")
                if source is None:
                    actual = {
                        "metadata.name": meta.get("name"),
                        "metadata.namespace": meta.get("namespace"),
                    }.get(key)
                else:
                    actual = source.get(key)
                if actual != value:
                    return False
        return True

    def _list(self, plural: str, namespace: str | None, query: dict[str, str]) -> dict[str, Any]:
        gv, kind, _ = RESOURCES[plural]
        with self.lock:
            items = [
                copy.deepcopy(o)
                for (p, ns, _), o in sorted(self.objects.items())
                if p == plural and (namespace is None or ns == namespace) and self._matches(o, query)
            ]
            rv = self.rv
        return {
            "kind": f"{kind}List",
            "apiVersion": gv,
            "metadata": {"resourceVersion": str(rv)},
            "items": items,
        }

    def _watch(self, h: _Handler, plural: str, namespace: str | None, query: dict[str, str]) -> None:
        since = int(query.get("resourceVersion") or 0) or self.rv
        timeout = min(float(query.get("timeoutSeconds") or WATCH_MAX_SECONDS), WATCH_MAX_SECONDS)
        deadline = time.monotonic() + timeout
        h.start_stream()
        try:
            for event in self._events(plural, namespace, query, since, deadline):
                h.send_chunk((json.dumps(event) + "\n").encode())
            h.end_stream()
        except (BrokenPipeError, ConnectionResetError):  # kubectl stopped watching: normal
            return

    def _events(
        self, plural: str, namespace: str | None, query: dict[str, str], since: int, deadline: float
    ) -> Iterator[dict[str, Any]]:
        while True:
            with self.lock:
                pending = [
                    (rv, kind, obj)
                    for rv, kind, p, obj in self.events
                    if rv > since
                    and p == plural
                    and (namespace is None or obj["metadata"].get("namespace") == namespace)
                    and self._matches(obj, query)
                ]
                if not pending:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or self.stopping:
                        return
                    self.lock.wait(timeout=min(remaining, 0.5))
                    continue
            for rv, kind, obj in pending:
                since = rv
                yield {"type": kind, "object": obj}


def _route(path: str) -> tuple[str, str | None, str | None, str | None] | None:
    """``/api/v1/namespaces/ns/pods/name[/sub]`` -> (plural, namespace, name, sub)."""
    parts = path.strip("/").split("/")
    if parts[:2] == ["api", "v1"]:
        rest, gv = parts[2:], "v1"
    elif parts[:3] == ["apis", "apps", "v1"]:
        rest, gv = parts[3:], "apps/v1"
    elif parts[:3] == ["apis", "argoproj.io", "v1alpha1"]:
        rest, gv = parts[3:], "argoproj.io/v1alpha1"
    else:
        return None
    namespace = None
    if len(rest) >= 3 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    elif rest[:1] == ["namespaces"]:
        return ("namespaces", None, rest[1] if len(rest) > 1 else None, None) if gv == "v1" else None
    if not rest or rest[0] not in RESOURCES or RESOURCES[rest[0]][0] != gv:
        return None
    plural = rest[0]
    name = rest[1] if len(rest) > 1 else None
    sub = "/".join(rest[2:]) or None
    return plural, namespace, name, sub


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake: FakeKube

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002, ARG002 - stdlib signature
        return

    _body: bytes = b""

    def body(self) -> bytes:
        return self._body

    def send_json(self, code: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def start_stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()

    def send_chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _dispatch(self) -> None:
        # Always consume the body (DELETE carries DeleteOptions): left unread, it would be parsed
        # as the next request on this keep-alive connection.
        length = int(self.headers.get("Content-Length") or 0)
        self._body = self.rfile.read(length) if length else b""
        try:
            self.fake.handle(self)
        except (BrokenPipeError, ConnectionResetError):
            return
        except Exception as exc:
            self.send_json(500, _status(500, "InternalError", f"fake apiserver: {exc!r}"))

    do_GET = do_PATCH = do_DELETE = do_POST = do_PUT = _dispatch  # noqa: N815 - BaseHTTPRequestHandler API


def _handler_for(fake: FakeKube) -> type[_Handler]:
    return type("Handler", (_Handler,), {"fake": fake})
