"""End to end against the real Docker daemon and registry: build -> push -> scan -> bump dev ->
promote dev -> stage -> prod -> rollback, with the digest checked at every step.

The consumer is :func:`tests.sample_consumer.build` (image in the local registry, registry-check
``require``, ``scan.required-for = ["prod"]``, ``pin-digest = ["prod"]`` added here); trivy is the
fake CLI with a report whose gate passes.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from dex_tasks.supply import verdicts
from dex_tasks.tools import oci
from tests import docker_fixtures, oci_fixtures, sample_consumer
from tests.gitops_fixtures import overlay_path
from tests.helpers import git

if TYPE_CHECKING:
    from pathlib import Path

    from tests.conftest import CliRunner

pytestmark = [pytest.mark.docker, pytest.mark.timeout(300)]


def _ok(result: Any) -> dict[str, Any]:
    assert result.code == 0, result.err
    data: dict[str, Any] = json.loads(result.out)
    return data


def _trailer(message: str, key: str) -> list[str]:
    return [line.split(": ", 1)[1] for line in message.splitlines() if line.startswith(f"{key}: ")]


def test_build_push_scan_bump_promote_rollback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_cli: CliRunner
) -> None:
    services = docker_fixtures.require_services(monkeypatch)
    monkeypatch.setenv("DEX_DOCKER_BUILDX", "auto")
    consumer = sample_consumer.build(tmp_path, registry=services.registry)
    for key, value in sample_consumer.fake_trivy(tmp_path / "trivy", report="alpine-310.json").items():
        monkeypatch.setenv(key, value)
    repo = consumer.gitops
    workspace = sample_consumer.checkout(consumer, "main", tmp_path / "workspace")
    pyproject = workspace / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text(encoding="utf-8").replace("[tool.dex]\n", '[tool.dex]\npin-digest = ["prod"]\n'),
        encoding="utf-8",
    )
    git("commit", "--quiet", "-am", "chore: pin prod by digest", cwd=workspace)
    git("push", "--quiet", "origin", "HEAD:main", cwd=workspace)
    image, name = consumer.image, consumer.image.split("/", 1)[1]

    # build + push: the registry has the tag at the digest the task reports
    built = _ok(run_cli("image-build", "--push", "--json", cwd=workspace))
    tag, digest = built["sha"], built["digest"]
    assert docker_fixtures.registry_digest(services.registry, name, tag) == digest
    # a re-run never moves it
    assert _ok(run_cli("image-build", "--push", "--json", cwd=workspace))["digest"] == digest

    # scan: trivy scans exactly the digest, and the verdict is recorded on it
    scanned = _ok(run_cli("trivy-scan", f"{image}:{tag}", "--json", cwd=workspace))
    assert scanned["digest"] == digest
    assert scanned["verdict"] is not None
    log = (tmp_path / "trivy" / "trivy-calls.jsonl").read_text(encoding="utf-8").splitlines()
    assert any(json.loads(line)["argv"][-1] == f"{image}@{digest}" for line in log)
    with oci.Client(env={}) as client:
        verdict = verdicts.newest(client, image, digest)
    assert verdict is not None
    assert verdict.passed is True
    assert (verdict.trivy_version, verdict.db_updated) == ("0.58.1", "2024-12-10T18:22:06Z")

    # bump dev, promote dev -> stage -> prod: the same digest all the way
    steps = [
        ("bump-overlay", "dev", tag, "--direct"),
        ("promote", "dev", "stage", "--verify", "git", "--direct"),
        ("promote", "stage", "prod", "--verify", "git", "--direct"),
    ]
    for argv, env in zip(steps, ("dev", "stage", "prod"), strict=True):
        data = _ok(run_cli(*argv, "--json", cwd=workspace))
        assert data["digests"] == {env: digest}, argv
        assert data["registry_check"] == "passed"
        branch = "dev" if env == "dev" else "main"
        assert _trailer(repo.message(branch), "Dex-Digest") == [digest]
        assert repo.tag(env) == tag
    prod = repo.show("main", overlay_path("prod")) or ""
    assert f"newTag: {tag}  # updated by CD\n    digest: {digest}\n" in prod
    assert "digest:" not in (repo.show("main", overlay_path("stage")) or "")
    status = _ok(run_cli("status", "--json", "--no-fetch", cwd=workspace))
    scans = {row["env"]: row["scan"] for row in status["envs"]}
    assert scans["prod"] == {"state": "passed", "digest": digest}

    # rollback prod: the last good tag (T0) is in the registry again, with its own digest
    t0 = repo.tags[0]
    old = oci_fixtures.push_image(services.registry, name, t0).digest
    rolled = _ok(run_cli("rollback", "prod", "--json", cwd=workspace))
    assert (rolled["tag"], rolled["digests"]) == (t0, {"prod": old})
    assert f"newTag: {t0}  # updated by CD\n    digest: {old}\n" in (
        repo.show("main", overlay_path("prod")) or ""
    )
    history = _ok(run_cli("history", "prod", "--json", cwd=workspace))["entries"]
    assert [(e["tag"], e["digest"], e["action"]) for e in history[:2]] == [
        (t0, old, "rollback"),
        (tag, digest, "promote"),
    ]
