"""Parsing in tools/argocd.py and the 'configured' rule (no processes)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pytest

from dex_tasks import errors, proc, redact
from dex_tasks.errors import CommandFailed
from dex_tasks.tools import argocd

if TYPE_CHECKING:
    from pathlib import Path

LOGFMT = 'time="2026-01-01T00:00:00Z" level=fatal msg='
APP = {
    "metadata": {"name": "dex-prod"},
    "spec": {"destination": {"namespace": "dex-prod"}},
    "status": {
        "sync": {"status": "Synced", "revision": "a" * 40},
        "health": {"status": "Healthy"},
        "summary": {"images": ["ghcr.io/data-literate/dex:sha-1234567"]},
        "history": [
            {"id": 1, "revision": "b" * 40, "deployedAt": "2026-01-01T00:00:00Z"},
            {"id": 2, "revision": "a" * 40, "deployedAt": "2026-01-02T00:00:00Z"},
        ],
        "operationState": {"phase": "Succeeded"},
    },
}


def test_app_parse() -> None:
    app = argocd.App.from_json(APP)
    assert (app.name, app.sync_status, app.health, app.revision) == (
        "dex-prod",
        "Synced",
        "Healthy",
        "a" * 40,
    )
    assert app.images == ("ghcr.io/data-literate/dex:sha-1234567",)
    assert app.operation_phase == "Succeeded"
    assert app.namespace == "dex-prod"
    assert [h.id for h in app.history] == [1, 2]
    assert app.synced_and_healthy


def test_app_parse_missing_status() -> None:
    app = argocd.App.from_json({"metadata": {"name": "x"}})
    assert (app.sync_status, app.health, app.revision, app.images) == ("Unknown", "Unknown", "", ())
    assert not app.synced_and_healthy


def test_configured_needs_cli_and_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(proc, "which", lambda _tool: None)
    assert argocd.not_configured_reason({"ARGOCD_SERVER": "x"}) == "argocd is not on PATH"
    monkeypatch.setattr(proc, "which", lambda tool: f"/usr/bin/{tool}")
    assert argocd.not_configured_reason({}) == "ARGOCD_SERVER is not set"
    assert argocd.configured({"ARGOCD_SERVER": "argocd.example"})


@pytest.mark.parametrize(
    ("tail", "cls", "text"),
    [
        (
            'FATA[0000] rpc error: code = NotFound desc = applications.argoproj.io "x" not found',
            errors.AppNotFoundError,
            'rpc error: code = NotFound desc = applications.argoproj.io "x" not found',
        ),
        (
            "FATA[0000] Argo CD server address unspecified",
            errors.ArgoCDError,
            "Argo CD server address unspecified",
        ),
        # What the CLI prints when stderr is a pipe (logrus logfmt), as under dex-tasks.
        (
            LOGFMT + '"rpc error: code = NotFound desc = applications.argoproj.io \\"x\\" not found"',
            errors.AppNotFoundError,
            'rpc error: code = NotFound desc = applications.argoproj.io "x" not found',
        ),
        (
            LOGFMT + '"rpc error: code = Unauthenticated desc = invalid session: token signature is invalid"',
            errors.ArgoCDError,
            "rpc error: code = Unauthenticated desc = invalid session: token signature is invalid",
        ),
    ],
)
def test_error_mapping(tail: str, cls: type[Exception], text: str) -> None:
    err = argocd._fail(CommandFailed("x", argv=("argocd",), returncode=20, stderr_tail=tail), "app get x")
    assert type(err) is cls
    assert str(err) == f"argocd app get x failed (exit 20): {text}"


def test_token_is_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARGOCD_AUTH_TOKEN", "tok-very-secret")
    monkeypatch.setattr(
        proc, "run", lambda *_a, **_k: proc.Result(argv=("argocd",), returncode=0, stdout="[]", stderr="")
    )
    argocd.app_list()
    assert redact.redact("token tok-very-secret here") == "token *** here"


def test_verify_argo_wait_is_bounded_in_count_and_per_call_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # --interval 0 and a long --timeout: the wait still ends after MAX_ARGO_POLLS checks, and no
    # single `argocd app get` may run past the deadline (its own timeout is capped by it).
    from dex_tasks.config import Config  # noqa: PLC0415
    from dex_tasks.tasks import Context, verify  # noqa: PLC0415

    timeouts: list[float] = []
    status: dict[str, Any] = dict(APP["status"])  # type: ignore[call-overload]  # APP is a literal
    progressing = {**APP, "status": {**status, "health": {"status": "Progressing"}}}

    def app_get(name: str, *, timeout: float = argocd.QUERY_TIMEOUT, server: str | None = None) -> argocd.App:
        assert server is None  # no [tool.dex.cluster] argocd-servers: the CLI's ARGOCD_SERVER
        timeouts.append(timeout)
        return argocd.App.from_json(progressing)

    monkeypatch.setattr(argocd, "in_use", lambda _env=None, **_kwargs: True)  # server= too
    monkeypatch.setattr(argocd, "app_get", app_get)
    monkeypatch.setattr(verify, "MAX_ARGO_POLLS", 5)
    ctx = Context(task="verify", config=Config(root=tmp_path), cwd=tmp_path, json=False)
    data: dict[str, object] = {}
    deadline = time.monotonic() + 3600
    problem = verify._argo_wait(ctx, "prod", deadline=deadline, interval=0, data=data)
    assert problem is not None
    assert "after 5 check(s)" in problem
    assert len(timeouts) == 5
    assert all(t <= argocd.QUERY_TIMEOUT for t in timeouts)
    timeouts.clear()
    verify._argo_wait(ctx, "prod", deadline=time.monotonic() + 30, interval=0, data=data)
    assert timeouts
    assert all(verify.MIN_QUERY_TIMEOUT <= t <= 30 for t in timeouts)


def test_unknown_app_is_permission_denied_since_argo_cd_2_5() -> None:
    # CVE-2022-41354: `app get` of an app that does not exist answers PermissionDenied, like an app
    # the token may not read. For `app get` that means "no such app" (per app, not "Argo CD is
    # down"); for other commands it stays a plain failure.
    tail = LOGFMT + '"rpc error: code = PermissionDenied desc = permission denied"'
    failed = CommandFailed("x", argv=("argocd",), returncode=20, stderr_tail=tail)
    err = argocd._fail(failed, "app get dex-pr-3", app="dex-pr-3")
    assert type(err) is errors.AppNotFoundError
    assert str(err).startswith("argocd app get dex-pr-3 failed (exit 20): rpc error: code = PermissionDenied")
    assert "does not exist, or this token may not read it" in str(err)
    assert type(argocd._fail(failed, "app sync dex-pr-3")) is errors.ArgoCDError
