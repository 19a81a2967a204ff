"""demo: the whole runbook in a sandbox, through the real CLI, changing nothing outside it."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from dex_tasks.scaffold import demo
from tests import docker_fixtures
from tests.helpers import git

if TYPE_CHECKING:
    from tests.conftest import CliRunner

STEPS = [
    "init", "scan gate", "bump dev", "promote dev -> stage", "promote stage -> prod", "verify prod",
    "bad deploy to dev", "verify dev (catches the bad deploy)", "rollback dev", "history dev", "status",
    "metrics",
]  # fmt: skip


def _demo(run_cli: CliRunner, *args: str) -> dict[str, object]:
    result = run_cli("demo", "--json", *args)
    assert result.code == 0, result.err
    payload: dict[str, object] = json.loads(result.out)
    return payload


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_demo_runs_the_runbook_and_leaves_the_sandbox_with_keep(
    run_cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(demo.REGISTRY_ENV, raising=False)
    global_config = Path(os.environ["GIT_CONFIG_GLOBAL"])
    before = global_config.read_bytes()
    sandbox = tmp_path / "sandbox"
    payload = _demo(run_cli, "--keep", str(sandbox))
    assert payload["task"] == "demo"
    assert payload["sandbox"] == str(sandbox.resolve())
    steps = payload["steps"]
    assert isinstance(steps, list)
    names = [s["name"] for s in steps if not s["name"].startswith("build ")]
    assert names == [s for s in STEPS if s != "metrics"] + ["metrics"]
    assert all(step["ok"] for step in steps), steps
    assert set(steps[0]) == {"name", "ok", "skipped", "detail"}
    builds = [s for s in steps if s["name"].startswith("build ")]
    assert len(builds) == 2
    assert all(s["skipped"] and "DEX_DEMO_REGISTRY" in s["detail"] for s in builds)
    scan = next(s for s in steps if s["name"] == "scan gate")
    assert "bundled sample trivy report" in scan["detail"]
    caught = next(s for s in steps if s["name"].startswith("verify dev"))
    assert "HTTP 500" in caught["detail"]

    # The sandbox is real: origin holds the audit trail the tasks wrote.
    origin = sandbox / "origin.git"
    dev_log = git("log", "--format=%s", "dev", cwd=origin)
    assert dev_log.splitlines()[0].startswith("fix: rollback dev to sha-")
    prod = git("show", "main:infra/argocd/overlays/prod/kustomization.yaml", cwd=origin)
    good = next(s for s in steps if s["name"] == "bump dev")["detail"].split("dev now runs ")[1].split()[0]
    assert f"newTag: {good}" in prod
    assert global_config.read_bytes() == before  # the user's git config is untouched


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_demo_without_keep_removes_its_sandbox(
    run_cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(demo.REGISTRY_ENV, raising=False)
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # tempfile.mkdtemp puts the sandbox here
    monkeypatch.setattr("tempfile.tempdir", None)
    payload = _demo(run_cli)
    assert not Path(str(payload["sandbox"])).exists()
    assert list(tmp_path.iterdir()) == []


def test_keep_refuses_a_non_empty_directory(run_cli: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("mine\n", encoding="utf-8")
    result = run_cli("demo", "--keep", str(tmp_path))
    assert result.code == 2
    assert "not an empty directory" in result.err
    assert [p.name for p in tmp_path.iterdir()] == ["mine.txt"]


def test_dry_run_makes_no_sandbox(run_cli: CliRunner, tmp_path: Path) -> None:
    result = run_cli("demo", "--dry-run", "--keep", str(tmp_path / "s"))
    assert result.code == 0, result.err
    assert not (tmp_path / "s").exists()


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_demo_builds_and_pushes_with_a_daemon_and_registry(
    run_cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = docker_fixtures.require_services(monkeypatch)
    monkeypatch.setenv(demo.REGISTRY_ENV, services.registry)
    payload = _demo(run_cli, "--keep", str(tmp_path / "sandbox"))
    steps = payload["steps"]
    assert isinstance(steps, list)
    assert all(step["ok"] for step in steps), steps
    builds = [s for s in steps if s["name"].startswith("build ")]
    assert len(builds) == 2
    assert not any(s["skipped"] for s in builds)
    assert all(f"pushed {services.registry}/dex-demo/demo:sha-" in s["detail"] for s in builds)
