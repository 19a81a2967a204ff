"""Registry truth, digests and the scan gate of bump-overlay / promote / rollback, against the REAL registry.

The GitOps repository is :func:`tests.sample_consumer.build`: the DEX history of
:mod:`tests.gitops_fixtures` with ``[tool.dex] image`` (and the overlays' ``newName``) in the local
test registry, registry-check at its default (``require``) and ``scan.required-for`` at its default
(``["prod"]``). Images are pushed over HTTP by :mod:`tests.oci_fixtures` (no daemon needed), scan
verdicts are recorded with :func:`dex_tasks.supply.verdicts.record`.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

import pytest

from dex_tasks.supply import verdicts
from dex_tasks.tools import oci
from tests import docker_fixtures, oci_fixtures, sample_consumer
from tests.gitops_fixtures import GitOpsRepo, overlay_path
from tests.helpers import git

if TYPE_CHECKING:
    from pathlib import Path

    from tests.conftest import CliRunner
    from tests.fakes.kube_apiserver import FakeKube

pytestmark = [pytest.mark.docker, pytest.mark.timeout(180)]


class Setup:
    def __init__(self, consumer: sample_consumer.Consumer, registry: str) -> None:
        self.consumer = consumer
        self.registry = registry
        self.image = consumer.image
        self.name = consumer.image.split("/", 1)[1]
        self.repo: GitOpsRepo = consumer.gitops
        self.digests: dict[str, str] = {}

    def push(self, *tags: str) -> None:
        for tag in tags:
            self.digests[tag] = oci_fixtures.push_image(self.registry, self.name, tag).digest

    def verdict(self, tag: str, *, passed: bool, at: str) -> None:
        digest = self.digests[tag]
        with oci.Client(env={}) as client:
            verdicts.record(
                client,
                self.image,
                digest,
                verdicts.Verdict(
                    digest=digest, passed=passed, counts={"CRITICAL": 0 if passed else 2},
                    fail_on=("CRITICAL",), trivy_version="0.58.1", db_updated="2024-12-10T18:22:06Z",
                    scanned_at=at,
                ),
            )  # fmt: skip

    def configure(self, extra: str) -> None:
        """More ``[tool.dex]`` keys in the user's clone (the tasks read the working copy's pyproject)."""
        pyproject = self.repo.clone / "pyproject.toml"
        text = pyproject.read_text(encoding="utf-8")
        pyproject.write_text(text.replace("[tool.dex]\n", f"[tool.dex]\n{extra}", 1), encoding="utf-8")


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Setup:
    registry = docker_fixtures.require_services(monkeypatch).registry
    consumer = sample_consumer.build(tmp_path, registry=registry)
    # The user's clone follows main, where the registry-pointing pyproject now is (the clone's own
    # uncommitted work is in other files and stays).
    git("pull", "--quiet", "--ff-only", cwd=consumer.gitops.clone)
    return Setup(consumer, registry)


def _json(out: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(out)
    return data


def _trailers(repo: GitOpsRepo, rev: str) -> list[str]:
    return [line for line in repo.message(rev).splitlines() if line.startswith("Dex-")]


# -- 1. registry truth before any write -----------------------------------------------------------------
def test_bump_resolves_the_tag_and_records_its_digest(setup: Setup, run_cli: CliRunner) -> None:
    t4 = setup.repo.tags[4]
    setup.push(t4)
    result = run_cli("bump-overlay", "dev", t4, "--direct", "--json", cwd=setup.repo.clone)
    assert result.code == 0, result.err
    data = _json(result.out)
    assert data["digests"] == {"dev": setup.digests[t4]}
    assert data["registry_check"] == "passed"
    assert f"Dex-Digest: {setup.digests[t4]}" in _trailers(setup.repo, "dev")
    history = run_cli("history", "dev", "--json", cwd=setup.repo.clone)
    entries = _json(history.out)["entries"]
    assert isinstance(entries, list)
    assert entries[0]["tag"] == t4
    assert entries[0]["digest"] == setup.digests[t4]
    assert entries[1]["digest"] is None  # older commits carry no Dex-Digest
    assert setup.digests[t4][:19] in run_cli("history", "dev", cwd=setup.repo.clone).out


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_tag_that_is_not_in_the_registry_is_refused_and_nothing_is_written(
    setup: Setup, run_cli: CliRunner, dry_run: bool
) -> None:
    t4 = setup.repo.tags[4]
    before = setup.repo.snapshot()
    argv = ["bump-overlay", "dev", t4, "--json"] + (["--dry-run"] if dry_run else [])
    result = run_cli(*argv, cwd=setup.repo.clone)
    assert result.code == 1, result.err
    assert f"{setup.image}:{t4} is not in the registry" in result.err
    assert f"tag {t4}" in result.err
    assert _json(result.out)["exit_code"] == 1
    assert setup.repo.snapshot() == before


def test_no_registry_check_is_recorded(setup: Setup, run_cli: CliRunner) -> None:
    t4 = setup.repo.tags[4]
    result = run_cli(
        "bump-overlay", "dev", t4, "--direct", "--no-registry-check", "--json", cwd=setup.repo.clone
    )
    assert result.code == 0, result.err
    data = _json(result.out)
    assert data["registry_check"] == "off"
    assert data["digests"] == {"dev": None}
    trailers = _trailers(setup.repo, "dev")
    assert "Dex-Registry-Check: off" in trailers
    assert not [t for t in trailers if t.startswith("Dex-Digest")]


def test_an_unreachable_registry_is_exit_4_and_nothing_is_written(
    setup: Setup, run_cli: CliRunner, closed_port: int
) -> None:
    setup.configure('registry-check = "require"\n')
    pyproject = setup.repo.clone / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    pyproject.write_text(text.replace(setup.registry, f"127.0.0.1:{closed_port}"), encoding="utf-8")
    before = setup.repo.snapshot()
    for argv in (
        ("bump-overlay", "dev", setup.repo.tags[4]),
        ("promote", "stage", "prod", "--verify", "git"),
        ("rollback", "dev"),
    ):
        result = run_cli(*argv, "--json", cwd=setup.repo.clone)
        assert result.code == 4, result.err
        assert "did not answer" in _json(result.out)["error"]
        assert setup.repo.snapshot() == before


# -- rollback skips tags that are gone ----------------------------------------------------------------------
def test_rollback_skips_good_tags_that_are_gone_from_the_registry(setup: Setup, run_cli: CliRunner) -> None:
    tags = setup.repo.tags
    setup.push(tags[1])  # dev ran T0..T3; T2 (the last good) is gone, T1 is there
    result = run_cli("rollback", "dev", "--json", cwd=setup.repo.clone)
    assert result.code == 0, result.err
    assert f"skipping {tags[2]}: {setup.image}:{tags[2]} is no longer in the registry" in result.err
    data = _json(result.out)
    assert data["tag"] == tags[1]
    assert data["digests"] == {"dev": setup.digests[tags[1]]}
    assert setup.repo.tag("dev") == tags[1]


def test_rollback_to_a_named_tag_that_is_gone_is_refused(setup: Setup, run_cli: CliRunner) -> None:
    before = setup.repo.snapshot()
    result = run_cli("rollback", "dev", setup.repo.tags[1], cwd=setup.repo.clone)
    assert result.code == 1, result.err
    assert f"{setup.image}:{setup.repo.tags[1]} is not in the registry" in result.err
    assert setup.repo.snapshot() == before


# -- 4. the scan gate ---------------------------------------------------------------------------------------
def test_prod_takes_only_a_digest_whose_newest_verdict_passed(setup: Setup, run_cli: CliRunner) -> None:
    t4 = setup.repo.tags[4]
    setup.push(t4)
    digest = setup.digests[t4]
    before = setup.repo.snapshot()

    missing = run_cli("bump-overlay", "stage", "prod", t4, "--direct", cwd=setup.repo.clone)
    assert missing.code == 1, missing.err
    assert f"dex-tasks trivy-scan {setup.image}@{digest}" in missing.err
    assert "has none" in missing.err
    assert setup.repo.snapshot() == before

    setup.verdict(t4, passed=True, at="2026-01-01T10:00:00Z")
    setup.verdict(t4, passed=False, at="2026-01-02T10:00:00Z")  # a new CVE: the newest decides
    failed = run_cli("bump-overlay", "stage", "prod", t4, "--direct", cwd=setup.repo.clone)
    assert failed.code == 1, failed.err
    assert "failed (CRITICAL 2" in failed.err
    assert setup.repo.snapshot() == before

    dev_only = run_cli("bump-overlay", "stage", t4, "--direct", cwd=setup.repo.clone)  # not gated
    assert dev_only.code == 0, dev_only.err

    forced = run_cli(
        "bump-overlay", "stage", "prod", t4, "--direct", "--force", "--json", cwd=setup.repo.clone
    )
    assert forced.code == 0, forced.err
    assert _json(forced.out)["forced"] is True
    message = setup.repo.message("main")
    assert "Dex-Forced: true" in message
    assert (
        f"Forced: prod requires a passing scan verdict and the newest for {setup.image}@{digest} failed"
        in message
    )

    setup.verdict(t4, passed=True, at="2026-01-03T10:00:00Z")  # fixed rescan
    status = run_cli("status", "prod", "--json", "--no-fetch", cwd=setup.repo.clone)
    rows = _json(status.out)["envs"]
    assert isinstance(rows, list)
    assert rows[0]["scan"] == {"state": "passed", "digest": digest}


def test_promote_into_prod_is_gated_and_checks_the_digest_the_source_runs(
    setup: Setup, run_cli: CliRunner, fake_kube: FakeKube
) -> None:
    t1 = setup.repo.tags[1]  # what stage runs
    setup.push(t1)
    digest = setup.digests[t1]
    # The pods pulled the tag before it was pushed again: their imageID is another digest.
    fake_kube.pulled[f"{setup.image}:{t1}"] = "sha256:" + "e" * 64
    fake_kube.add_deployment("dex-stage", "dex", image=f"{setup.image}:{t1}")
    before = setup.repo.snapshot()
    repushed = run_cli("promote", "stage", "prod", "--verify", "live", "--json", cwd=setup.repo.clone)
    assert repushed.code == 1, repushed.err
    assert "pushed again" in _json(repushed.out)["refused"]
    assert setup.repo.snapshot() == before

    fake_kube.pulled[f"{setup.image}:{t1}"] = digest
    fake_kube.add_deployment("dex-stage", "dex", image=f"{setup.image}:{t1}")
    unscanned = run_cli("promote", "stage", "prod", "--verify", "live", "--json", cwd=setup.repo.clone)
    assert unscanned.code == 1, unscanned.err
    assert f"trivy-scan {setup.image}@{digest}" in _json(unscanned.out)["refused"]
    assert setup.repo.snapshot() == before

    setup.verdict(t1, passed=True, at="2026-01-01T10:00:00Z")
    done = run_cli("promote", "stage", "prod", "--verify", "live", "--direct", "--json", cwd=setup.repo.clone)
    assert done.code == 0, done.err
    data = _json(done.out)
    assert data["digests"] == {"prod": digest}
    assert f"Dex-Digest: {digest}" in _trailers(setup.repo, "main")


# -- 3. pin-digest ----------------------------------------------------------------------------------------
def test_pin_digest_writes_the_digest_beside_the_tag(setup: Setup, run_cli: CliRunner) -> None:
    tags = setup.repo.tags
    setup.push(tags[3], tags[4])
    for tag in (tags[3], tags[4]):
        setup.verdict(tag, passed=True, at="2026-01-01T10:00:00Z")
    setup.configure('pin-digest = ["prod"]\n')
    first = run_cli("bump-overlay", "stage", "prod", tags[3], "--direct", cwd=setup.repo.clone)
    assert first.code == 0, first.err
    prod = setup.repo.show("main", overlay_path("prod")) or ""
    assert f"    newTag: {tags[3]}  # updated by CD\n    digest: {setup.digests[tags[3]]}\n" in prod
    assert "digest:" not in (setup.repo.show("main", overlay_path("stage")) or "")

    second = run_cli("bump-overlay", "stage", "prod", tags[4], "--direct", "--json", cwd=setup.repo.clone)
    assert second.code == 0, second.err
    diff = git("diff", "main~1", "main", "--", overlay_path("prod"), cwd=setup.repo.origin)
    changed = [line for line in diff.splitlines() if re.match(r"^[-+] ", line)]
    assert changed == [
        f"-    newTag: {tags[3]}  # updated by CD", f"-    digest: {setup.digests[tags[3]]}",
        f"+    newTag: {tags[4]}  # updated by CD", f"+    digest: {setup.digests[tags[4]]}",
    ]  # fmt: skip
    history = _json(run_cli("history", "prod", "--json", cwd=setup.repo.clone).out)["entries"]
    assert history[0]["digest"] == setup.digests[tags[4]]

    # Off for one run, the digest of a pinned env cannot be known: refused, nothing written.
    before = setup.repo.snapshot()
    off = run_cli(
        "bump-overlay", "prod", tags[3], "--direct", "--no-registry-check", "--force", cwd=setup.repo.clone
    )
    assert off.code == 2, off.err
    assert "pin-digest" in off.err
    assert setup.repo.snapshot() == before


# -- step outputs ----------------------------------------------------------------------------------
def _outputs(path: Path) -> dict[str, str]:
    """``$GITHUB_OUTPUT`` as name -> value (the last write wins, as in Actions); emptied for the next step."""
    found = dict(line.split("=", 1) for line in path.read_text(encoding="utf-8").splitlines() if "=" in line)
    path.write_text("", encoding="utf-8")
    return found


def test_step_outputs_carry_the_digest_and_the_registry_check(
    setup: Setup, run_cli: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    outputs = tmp_path / "gh-output"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_OUTPUT", str(outputs))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "gh-summary"))
    tags = setup.repo.tags
    setup.push(tags[1], tags[4])
    t4, digest = tags[4], setup.digests[tags[4]]

    bump = run_cli("bump-overlay", "dev", t4, "--direct", cwd=setup.repo.clone)
    assert bump.code == 0, bump.err
    out = _outputs(outputs)
    assert (out["env"], out["tag"], out["digest"], out["registry_check"]) == ("dev", t4, digest, "passed")
    assert json.loads(out["digests"]) == {"dev": digest}

    # Several envs in one commit: `env` is "stage/prod", `digest` the one they share, `digests` per env.
    setup.verdict(t4, passed=True, at="2026-01-01T10:00:00Z")
    both = run_cli("bump-overlay", "stage", "prod", t4, "--direct", cwd=setup.repo.clone)
    assert both.code == 0, both.err
    out = _outputs(outputs)
    assert (out["env"], out["digest"], out["registry_check"]) == ("stage/prod", digest, "passed")
    assert json.loads(out["digests"]) == {"stage": digest, "prod": digest}

    # rollback: the digest of the tag it goes back to (T2 is gone from the registry, T1 is there).
    back = run_cli("rollback", "dev", cwd=setup.repo.clone)
    assert back.code == 0, back.err
    out = _outputs(outputs)
    assert (out["tag"], out["digest"]) == (tags[1], setup.digests[tags[1]])

    off = run_cli("bump-overlay", "dev", t4, "--direct", "--no-registry-check", cwd=setup.repo.clone)
    assert off.code == 0, off.err
    out = _outputs(outputs)
    assert (out["digest"], out["registry_check"]) == ("", "off")
    assert json.loads(out["digests"]) == {"dev": None}
