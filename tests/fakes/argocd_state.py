"""State of the fake ``argocd`` CLI (``tests/fakes/argocd``): a JSON file named by an env var.

Tests create a :class:`FakeArgo`, put its ``bin`` directory first on PATH and set
``ARGOCD_SERVER`` (and ``ARGOCD_AUTH_TOKEN`` when the state demands a token). Every call is
recorded in the file, so tests can assert what was run, and ``app sync`` changes the state.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

STATE_ENV = "DEX_FAKE_ARGOCD_STATE"
SCRIPT = Path(__file__).with_name("argocd")


SOURCE = {"repoURL": "https://github.com/data-literate/dex.git", "path": "infra/argocd/overlays",
          "targetRevision": "HEAD"}  # fmt: skip


def revision_history(
    ident: int,
    revision: str,
    *,
    started: str | None,
    deployed: str,
    automated: bool = False,
    user: str = "admin",
) -> dict[str, Any]:
    """One ``status.history[]`` entry as Argo CD serializes a ``RevisionHistory``
    (argo-cd pkg/apis/application/v1alpha1/types.go; controller/state.go ``persistRevisionHistory``):
    ``revision``, ``deployedAt``, ``id`` (int64), ``source``, ``deployStartedAt`` (omitted when nil,
    as before Argo CD 1.7: ``started=None``), ``initiatedBy`` (``automated`` for an auto-sync)."""
    entry: dict[str, Any] = {"revision": revision, "deployedAt": deployed, "id": ident,
                             "source": dict(SOURCE)}  # fmt: skip
    if started is not None:
        entry["deployStartedAt"] = started
    entry["initiatedBy"] = {"automated": True} if automated else {"username": user}
    return entry


def application(name: str, *, namespace: str, image: str, revision: str = "0" * 40, sync: str = "Synced",
                health: str = "Healthy") -> dict[str, Any]:  # fmt: skip
    """An app in the state file (the fake renders the Application resource from it)."""
    return {
        "name": name, "namespace": namespace, "sync": sync, "health": health, "revision": revision,
        "images": [image], "operation_phase": "Succeeded",
        # The commit the last operation synced (None: the app's revision).
        "operation_revision": None,
        # status.operationState.{startedAt,finishedAt,message} of the last operation.
        "operation_started_at": "2025-12-31T23:59:48Z", "operation_finished_at": "2026-01-01T00:00:00Z",
        "operation_message": "successfully synced (all tasks run)",
        "history": [revision_history(0, revision, started="2025-12-31T23:59:48Z",
                                     deployed="2026-01-01T00:00:00Z")],
        # spec.revisionHistoryLimit (None: unset, Argo CD keeps 10) and how long `app sync` takes.
        "history_limit": None, "sync_seconds": 12,
        # What the next `app sync` deploys (None: keep): set by tests to model a new git revision.
        "target_revision": None, "target_images": None,
        # Failure modes: "sync_error" (the sync RPC fails), "sync_failed" (the sync operation runs and
        # ends Failed: no history entry), "wait_timeout" (app wait times out), "get_unavailable"
        # (every `app get` fails like an unreachable argocd-server), "get_unavailable_once" (the next
        # `app get` fails like a restarting argocd-server).
        "fail": None,
    }  # fmt: skip


class FakeArgo:
    def __init__(self, directory: Path, *, token: str | None = None) -> None:
        self.path = directory / "argocd-state.json"
        self.bin = directory / "argocd-bin"
        self.bin.mkdir(parents=True, exist_ok=True)
        if os.name == "nt":  # no shebangs or unprivileged symlinks: a .cmd wrapper, found via PATHEXT
            wrapper = self.bin / "argocd.cmd"
            wrapper.write_text(f'@"{sys.executable}" "{SCRIPT}" %*\r\n', encoding="utf-8")
        elif not (link := self.bin / "argocd").exists():
            link.symlink_to(SCRIPT)
        mode = SCRIPT.stat().st_mode
        if not mode & stat.S_IXUSR:  # a checkout without the executable bit
            SCRIPT.chmod(mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        self.save({"token": token, "apps": {}, "calls": []})

    def load(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.path.read_text(encoding="utf-8"))
        return data

    def save(self, data: dict[str, Any]) -> None:
        self.path.write_text(json.dumps(data, indent=2), encoding="utf-8")

    def add_app(self, name: str, **kwargs: Any) -> None:
        data = self.load()
        data["apps"][name] = application(name, **kwargs)
        self.save(data)

    def update_app(self, name: str, **changes: Any) -> None:
        """Change the app; a new ``history`` also moves the last operation's times to its last
        entry's (a successful sync is both), unless the test sets them."""
        data = self.load()
        history = changes.get("history")
        if history and "operation_finished_at" not in changes:
            last = history[-1]
            changes.setdefault("operation_started_at", last.get("deployStartedAt") or last["deployedAt"])
            changes["operation_finished_at"] = last["deployedAt"]
        data["apps"][name].update(changes)
        self.save(data)

    def app(self, name: str) -> dict[str, Any]:
        app: dict[str, Any] = self.load()["apps"][name]
        return app

    def connect(self, kube_url: str) -> None:
        """Resource actions (``app actions run``) patch the fake API server at ``kube_url``."""
        data = self.load()
        data["kube_url"] = kube_url
        self.save(data)

    def calls(self) -> list[list[str]]:
        return [list(c) for c in self.load()["calls"]]

    def calls_by_server(self) -> list[tuple[str | None, list[str]]]:
        """(ARGOCD_SERVER the call saw, argv) of every call."""
        data = self.load()
        return list(zip(data.get("servers", []), [list(c) for c in data["calls"]], strict=True))

    def env(self, *, server: str = "argocd.example.invalid", token: str | None = None) -> dict[str, str]:
        """Environment variables for a test: PATH with the fake first, the server, the state file."""
        env = {"PATH": f"{self.bin}{os.pathsep}{os.environ.get('PATH', '')}", STATE_ENV: str(self.path),
               "ARGOCD_SERVER": server}  # fmt: skip
        if token is not None:
            env["ARGOCD_AUTH_TOKEN"] = token
        return env
