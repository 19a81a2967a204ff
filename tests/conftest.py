"""Fixtures shared by every test: a hermetic environment and an in-process CLI runner."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dex_tasks import cli, redact
from tests.helpers import refused_port

# Hypothesis fails an example that takes over 200 ms (its default deadline), and calls a test
# whose data generation is slow unhealthy: both are about the machine, not the code. On a loaded
# 2-core CI runner a GC pause or a descheduled moment exceeds them, and a re-run that is fast
# then fails as "Unreliable test timings" (a flake). No property here is about speed (speed goes
# in bench/), so neither applies. Loaded here, before any test module is imported: a @settings on
# a test takes the values it does not set from this profile.
# The `floors` nox session runs the front-door tests with the package's own dependencies only (no
# hypothesis, which is a dev dependency): there, no property test runs and no profile is needed.
try:
    from hypothesis import HealthCheck, settings
except ImportError:  # pragma: no cover - only in the floors session
    pass
else:
    settings.register_profile("dex", deadline=None, suppress_health_check=[HealthCheck.too_slow])
    settings.load_profile("dex")

# Variables of a real Actions runner or a developer shell that would change what tasks do.
_LEAKY_ENV = (
    "GITHUB_ACTIONS", "GITHUB_TOKEN", "GH_TOKEN", "GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY", "GITHUB_ENV",
    "GITHUB_EVENT_NAME", "GITHUB_EVENT_PATH", "GITHUB_REF", "GITHUB_REF_NAME", "GITHUB_SHA",
    "GITHUB_REPOSITORY", "GITHUB_API_URL", "GITHUB_SERVER_URL", "GITHUB_HEAD_REF", "GITHUB_BASE_REF",
    "KUBECONFIG", "ARGOCD_SERVER", "ARGOCD_AUTH_TOKEN", "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE",
    "DEX_REGISTRY_USER", "DEX_REGISTRY_PASSWORD", "GITOPS_TOKEN", "GIT_CONFIG_COUNT", "GNUPGHOME",
    # Every other variable the product reads (grep dex_tasks for environ), so that a shell which
    # set one - DEX_NOW from a dry run "at ...", DEX_PUSH_BACKOFF, a runner's in-cluster
    # KUBERNETES_SERVICE_HOST - cannot change a test's outcome: each test that wants one sets it.
    "DEX_NOW", "DEX_DEBUG", "DEX_PUSH_ATTEMPTS", "DEX_PUSH_BACKOFF", "DEX_GITHUB_DEADLINE",
    "DEX_REGISTRY_DEADLINE", "DEX_DOCKER_BUILDX", "DEX_DEMO_REGISTRY", "DEX_GIT_USERNAME",
    "DEX_GIT_PASSWORD", "DEX_SLACK_WEBHOOK_URL", "DEX_WEBHOOK_URL", "DEX_WEBHOOK_SECRET", "ARGOCD_OPTS",
    "GITHUB_RUN_ID", "GITHUB_ACTOR", "ACTIONS_RUNTIME_TOKEN", "ACTIONS_CACHE_URL", "ACTIONS_RESULTS_URL",
    "KUBERNETES_SERVICE_HOST", "SOURCE_DATE_EPOCH",
    # git's own: who and when a commit is (the fixtures' commits and dates), and config given by
    # `git -c` to a parent git (a test run from a git hook).
    "GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_AUTHOR_DATE", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL",
    "GIT_COMMITTER_DATE", "GIT_CONFIG_PARAMETERS", "GIT_OBJECT_DIRECTORY", "GIT_ALTERNATE_OBJECT_DIRECTORIES",
)  # fmt: skip


@pytest.fixture(autouse=True)
def hermetic_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _LEAKY_ENV:
        monkeypatch.delenv(name, raising=False)
    home = tmp_path_factory.mktemp("home")
    gitconfig = home / ".gitconfig"
    gitconfig.write_text(
        "[user]\n\tname = Dex Test\n\temail = dex-test@example.invalid\n"
        "[init]\n\tdefaultBranch = main\n[advice]\n\tdetachedHead = false\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(gitconfig))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_TERMINAL_PROMPT", "0")
    monkeypatch.setenv("DOCKER_CONFIG", str(home / ".docker"))
    # Secrets a test registers (a webhook URL, a token) stay that test's: the set is process-wide, and
    # a later test's expected text holding the same value read '***' (or not) by the order tests ran.
    monkeypatch.setattr(redact, "_secrets", set(redact._secrets))


@pytest.fixture
def fresh_redaction(monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty registry of secrets for the test (the process-wide one is back after it).

    For a test that asserts some code *registered* a secret: with the process-wide set, any
    earlier test that registered the same value made that assertion pass whatever the code did.
    """
    monkeypatch.setattr(redact, "_secrets", set())


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port nothing listens on, held for the test (:func:`tests.helpers.refused_port`)."""
    with refused_port() as port:
        yield port


@dataclasses.dataclass(frozen=True)
class CliResult:
    code: int
    out: str
    err: str


CliRunner = Callable[..., CliResult]


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """Run ``dex-tasks ARGS`` in-process: ``run_cli("lint", "--json", cwd=path)``."""
    start = Path.cwd()

    def runner(*argv: str, cwd: Path | str | None = None) -> CliResult:
        capsys.readouterr()
        if cwd is not None:
            monkeypatch.chdir(cwd)
        try:
            code = cli.main(list(argv))
        finally:
            os.chdir(start)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return runner
