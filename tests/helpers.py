"""Shared test helpers (importable as ``tests.helpers``)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import types
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Callable, Iterator, Mapping
    from http.server import ThreadingHTTPServer

REPO_ROOT = Path(__file__).resolve().parent.parent


def in_ci() -> bool:
    """True under .ci/run, which exports DEX_TEST_STRICT=1 after it has started every service.

    Not plain ``CI``: GitHub's runners set CI=true too, and this repo's own Actions workflow runs
    the suite without the private Docker daemon and registry, where those tests must skip.
    """
    return os.environ.get("DEX_TEST_STRICT", "") == "1"


def need(condition: bool, reason: str) -> None:
    """Skip locally when a real tool/service is absent; under .ci/run that is a failure, not a skip."""
    if condition:
        return
    if in_ci():
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


def need_tool(tool: str) -> str:
    found = shutil.which(tool)
    need(found is not None, f"{tool} is not installed")
    assert found is not None
    return found


@contextlib.contextmanager
def refused_port() -> Iterator[int]:
    """A loopback port that refuses every connection for the block: bound, never listening.

    Not a port picked free and closed again: that one is free for anyone, and on a machine where
    other suites run, a server of theirs can take it before we connect - which then answers (or
    hangs) instead of refusing. A port bound here is nobody else's, and with no listen() the kernel
    answers a connection to it with a reset: ECONNREFUSED, at once.
    """
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        yield port


def moved_clock(monkeypatch: pytest.MonkeyPatch, module: types.ModuleType) -> Callable[[float], None]:
    """Give ``module`` a ``time`` whose monotonic clock the returned function moves on by seconds.

    For "a client made, then used only later": sleeping past a short deadline made that deadline
    the first request's timeout too, which a fake on a loaded machine could miss (a flake). Only
    ``module``'s name ``time`` is replaced - requests and urllib3 keep the real clock.
    """
    skipped = [0.0]
    clock = types.SimpleNamespace(
        monotonic=lambda: time.monotonic() + skipped[0], time=time.time, sleep=time.sleep
    )
    monkeypatch.setattr(module, "time", clock)

    def move(seconds: float) -> None:
        skipped[0] += seconds

    return move


def git(*args: str, cwd: Path | str, env: Mapping[str, str] | None = None) -> str:
    """Run git in a test fixture (tests may use subprocess directly; the product may not).

    ``env``: variables set for this git on top of the test's environment.
    """
    done = subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True, timeout=60,
        env={**os.environ, **env} if env else None,
    )  # fmt: skip
    return done.stdout.strip()


def venv_env() -> dict[str, str]:
    """The environment with this interpreter's scripts dir first, as `uv run` would set it up."""
    env = dict(os.environ)
    env.pop("VIRTUAL_ENV", None)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def run_poe(cwd: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The real ``poe ARGS`` in ``cwd``, from this interpreter's environment."""
    return subprocess.run(
        [sys.executable, "-m", "poethepoet", "--no-ansi", *args],
        capture_output=True, text=True, timeout=timeout, cwd=cwd, env=venv_env(), check=False,
    )  # fmt: skip


@contextlib.contextmanager
def serving(server: ThreadingHTTPServer) -> Iterator[ThreadingHTTPServer]:
    """Serve ``server`` in a thread for the block; it is shut down and closed however the block ends."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def stamp(moment: dt.datetime) -> str:
    """``moment`` as the ISO 8601 UTC text ``DEX_NOW`` and GitHub's payloads use."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
