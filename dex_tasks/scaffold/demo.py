"""The ``demo`` sandbox: a consumer repo with a local bare origin, and the runbook run on it.

:func:`run_demo` builds the sandbox (``init`` makes the repo's base, overlays and workflows), then
drives the real tasks through ``run_cli(argv) -> (exit code, --json object)``, which the task
passes in (it runs ``python -m dex_tasks`` as a user would; this module never imports the entry
layer). Every task runs with ``-C <sandbox repo>`` and an environment that keeps the user's world
out: a sandbox git config (``GIT_CONFIG_GLOBAL``), no GitHub or Argo CD credentials, a kubeconfig
that does not exist - so nothing outside the sandbox is read or changed.

No cluster: a :class:`HealthServer` on 127.0.0.1 answers ``/<env>/health`` for each env, 200 for
a good tag and 500 for the bad deploy, and is pointed to by ``[tool.dex.cluster] health-urls``.
After each GitOps step the demo "syncs" it to the tag the env's overlay holds on origin, as Argo
CD would.

``trivy-sample.json`` is a real trivy report (schema 2), copied unchanged from aquasecurity/trivy
``integration/testdata/centos-7-ignore-unfixed.json.golden`` (Apache-2.0, Aqua Security): MEDIUM 1,
LOW 1, so the gate passes. It is scanned when ``trivy`` is not installed or there is no image.
"""

from __future__ import annotations

import dataclasses
import http.server
import os
import shutil
import threading
from importlib import resources
from typing import TYPE_CHECKING, Any, Self

from dex_tasks import proc
from dex_tasks.errors import DexError
from dex_tasks.scaffold import init as scaffold
from dex_tasks.tools import git

if TYPE_CHECKING:
    import contextlib
    from collections.abc import Callable, Mapping, Sequence
    from pathlib import Path

    RunCli = Callable[[Sequence[str]], tuple[int, dict[str, Any]]]
    Say = Callable[[str], None]

APP = "demo"
ENVS = ("dev", "stage", "prod")
REGISTRY_ENV = "DEX_DEMO_REGISTRY"  # host:port of a registry the demo may push its image to
IDENTITY = {"name": "dex-tasks demo", "email": "demo@dex-tasks.invalid"}
# Variables of the user's shell that would reach outside the sandbox (tokens, clusters, Actions).
ISOLATED = (
    "GITHUB_TOKEN", "GH_TOKEN", "GITHUB_ACTIONS", "GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY", "GITHUB_ENV",
    "GITHUB_REPOSITORY", "GITHUB_API_URL", "GITHUB_SERVER_URL", "GITHUB_EVENT_PATH", "GITHUB_EVENT_NAME",
    "GITHUB_REF", "GITHUB_SHA", "ARGOCD_SERVER", "ARGOCD_AUTH_TOKEN", "GIT_DIR", "GIT_WORK_TREE",
    "GIT_INDEX_FILE", "DEX_REGISTRY_USER", "DEX_REGISTRY_PASSWORD",
)  # fmt: skip
DOCKERFILE = "FROM scratch\nCOPY app.txt /app.txt\n"


@dataclasses.dataclass
class Step:
    name: str
    ok: bool
    skipped: bool = False
    detail: str = ""

    def as_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class HealthServer:
    """``GET /<env>/health`` on 127.0.0.1: 200 while the env runs a good tag, 500 for a bad one."""

    def __init__(self) -> None:
        self.deployed: dict[str, str] = {}
        self.bad: set[str] = set()
        state = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                env = self.path.strip("/").partition("/")[0]
                tag = state.deployed.get(env, "")
                status = 200 if tag and tag not in state.bad else 500
                body = f"{env} runs {tag or 'nothing'}: {'ok' if status == 200 else 'unhealthy'}\n".encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - argparse's name
                pass  # quiet: the demo says what happened

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, name="dex-demo-health", daemon=True)

    def url(self, env: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/{env}/health"

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


def sandbox_env(sandbox: Path) -> dict[str, str | None]:
    """Overrides for every process the demo starts (on top of ``os.environ``)."""
    env: dict[str, str | None] = dict.fromkeys(ISOLATED)
    env.update(
        {
            "GIT_CONFIG_GLOBAL": str(sandbox / "gitconfig"),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_TERMINAL_PROMPT": "0",
            "KUBECONFIG": str(sandbox / "kubeconfig-none"),  # no cluster: status says "unknown"
            "NO_PROXY": "127.0.0.1,localhost",  # the health endpoints are local
            "no_proxy": "127.0.0.1,localhost",
            "DEX_PUSH_ATTEMPTS": "1",
        }
    )
    return env


def docker_registry() -> tuple[str | None, str]:
    """The registry to push to, or None and why the build is skipped."""
    registry = os.environ.get(REGISTRY_ENV, "").strip()
    if not registry:
        return None, f"no registry: set {REGISTRY_ENV}=host:port (and DOCKER_HOST) to build and push"
    if proc.which("docker") is None:
        return None, "docker is not installed"
    try:
        proc.run(
            ("docker", "version", "--format", "{{.Server.Version}}"), read_only=True, quiet=True, timeout=30
        )
    except DexError as exc:
        return None, f"no Docker daemon answered ({exc.message.splitlines()[0]})"
    return registry, ""


def _git(repo: Path, env: Mapping[str, str | None], *args: str) -> str:
    return git.git(*args, cwd=repo, env=env, quiet=True).stdout.strip()


def _commit_app(repo: Path, env: Mapping[str, str | None], version: str, subject: str) -> str:
    # The GitOps tasks pushed overlay commits to main meanwhile: build on top of them.
    _git(repo, env, "fetch", "--quiet", "origin", "main")
    _git(repo, env, "merge", "--quiet", "--ff-only", "origin/main")
    (repo / "app.txt").write_text(f"demo app {version}\n", encoding="utf-8")
    _git(repo, env, "add", "-A")
    _git(repo, env, "commit", "--quiet", "-m", subject)
    _git(repo, env, "push", "--quiet", "origin", "HEAD:refs/heads/main")
    return "sha-" + _git(repo, env, "rev-parse", "HEAD")[:8]


def _overlay_tag(origin: Path, env_name: str, env: Mapping[str, str | None]) -> str:
    base = "dev" if env_name == "dev" else "main"
    text = git.git(
        "show", f"{base}:{scaffold.OVERLAYS}/{env_name}/kustomization.yaml",
        cwd=origin, env=env, read_only=True, quiet=True, check=False,
    ).stdout  # fmt: skip
    for line in text.splitlines():
        if line.strip().startswith("newTag:"):
            return line.split(":", 1)[1].split("#")[0].strip().strip("'\"")
    return ""


def build_sandbox(sandbox: Path, health: HealthServer, *, image: str, pushed: bool) -> tuple[Path, Path]:
    """The bare origin and the consumer repo's first commit; returns (origin, repo)."""
    env = sandbox_env(sandbox)
    (sandbox / "gitconfig").write_text(
        f"[user]\n\tname = {IDENTITY['name']}\n\temail = {IDENTITY['email']}\n"
        "[init]\n\tdefaultBranch = main\n[commit]\n\tgpgsign = false\n[advice]\n\tdetachedHead = false\n",
        encoding="utf-8",
    )
    origin, repo = sandbox / "origin.git", sandbox / APP
    git.git(
        "init", "--quiet", "--bare", "--initial-branch=main", str(origin), cwd=sandbox, env=env, quiet=True
    )
    git.git("init", "--quiet", "--initial-branch=main", str(repo), cwd=sandbox, env=env, quiet=True)
    # The identity also in the repo's own config, for whoever explores a kept sandbox with their git.
    _git(repo, env, "config", "user.name", IDENTITY["name"])
    _git(repo, env, "config", "user.email", IDENTITY["email"])
    _git(repo, env, "remote", "add", "origin", str(origin))
    urls = ", ".join(f'{e} = "{health.url(e)}"' for e in ENVS)
    extra = {"cluster.health-urls": f"{{ {urls} }}", "cluster.rollout-timeout": "30"}
    # Without a registry there is nothing to resolve tags in; without a real trivy scanning the pushed
    # image there is no verdict in the registry for prod's scan gate to read: the demo says so.
    extra["registry-check"] = '"require"' if pushed else '"off"'
    gate = pushed and proc.which("trivy") is not None
    options = scaffold.Options(app=APP, image=image, envs=ENVS, repo_url=str(origin))
    project = f'[project]\nname = "{APP}"\nversion = "0.1.0"\nrequires-python = ">=3.11"\n\n'
    scan = "" if gate else "\n[tool.dex.scan]\nrequired-for = []  # no verdict to gate on (see the scan)\n"
    text = project + scaffold.dex_table(options, extra) + scan
    (repo / "pyproject.toml").write_text(text, encoding="utf-8")
    (repo / "Dockerfile").write_text(DOCKERFILE, encoding="utf-8")
    (repo / ".gitignore").write_text("reports/\n", encoding="utf-8")
    return origin, repo


class _Run:
    """One demo run: the sandbox, the health server, and a method per step that returns its Step."""

    def __init__(
        self, sandbox: Path, run_cli: RunCli, health: HealthServer, *, registry: str | None, no_build: str
    ) -> None:
        self.no_build = no_build
        self.env = sandbox_env(sandbox)
        self.run_cli = run_cli
        self.health = health
        self.registry = registry
        self.image = f"{registry}/dex-demo/{APP}" if registry else f"registry.invalid/dex-demo/{APP}"
        self.origin, self.repo = build_sandbox(sandbox, health, image=self.image, pushed=registry is not None)
        self.good = self.bad = ""

    def cli(self, *argv: str) -> tuple[int, dict[str, Any]]:
        return self.run_cli(["-C", str(self.repo), "--json", *argv])

    def sync(self) -> None:
        """What Argo CD would do: each env runs what its overlay on origin says."""
        for name in ENVS:
            self.health.deployed[name] = _overlay_tag(self.origin, name, self.env)

    def gitops(self, name: str, argv: Sequence[str], what: Callable[[dict[str, Any]], str]) -> Step:
        code, data = self.cli(*argv)
        detail = what(data) if code == 0 else str(data.get("error") or f"exit {code}")
        self.sync()
        return Step(name=name, ok=code == 0, detail=f"dex-tasks {' '.join(argv)}: {detail}")

    # -- the steps, in order ---------------------------------------------------------------------
    def init(self) -> Step:
        code, data = self.cli("init", "--app", APP, "--image", self.image)
        if code != 0:
            return Step(name="init", ok=False, detail=str(data.get("error")))
        made = f"{len(data.get('created', []))} files created (base, overlays, workflows, Argo CD apps)"
        merged = f"; merged into {', '.join(data['updated'])}" if data.get("updated") else ""
        _git(self.repo, self.env, "add", "-A")
        _git(self.repo, self.env, "commit", "--quiet", "-m", "chore: dex-tasks init")
        _git(self.repo, self.env, "push", "--quiet", "origin", "HEAD:refs/heads/main", "HEAD:refs/heads/dev")
        self.good = _commit_app(self.repo, self.env, "v1", "feat: the first version")
        return Step(name="init", ok=True, detail=f"dex-tasks init: {made}{merged}; pushed main and dev")

    def build_good(self) -> Step:
        return self._build(self.good)

    def _build(self, tag: str) -> Step:
        if self.registry is None:
            return Step(name=f"build {tag}", ok=True, skipped=True, detail=f"skipped: {self.no_build}")
        code, data = self.cli("image-build", "--push")
        detail = f"pushed {self.image}:{tag} ({data.get('digest') or 'no digest'})" if code == 0 else ""
        return Step(
            name=f"build {tag}",
            ok=code == 0,
            detail=f"dex-tasks image-build --push: {detail or data.get('error')}",
        )

    def scan(self) -> Step:
        image = f"{self.image}:{self.good}"
        if self.registry is not None and proc.which("trivy") is not None:
            code, data = self.cli("trivy-scan", image)
            if code in {0, 1}:  # a gate verdict; anything else (no DB offline): the sample below
                verdict = "passed" if code == 0 else "blocked"
                return Step(
                    name="scan gate", ok=code == 0, detail=f"trivy {image}: {data.get('counts')}: {verdict}"
                )
        with sample_report() as report:
            code, data = self.cli("trivy-scan", "--report", str(report))
        counts = {k: v for k, v in (data.get("counts") or {}).items() if v}
        why = "trivy is not installed" if proc.which("trivy") is None else "no image was built"
        verdict = "passed" if code == 0 else "blocked"
        detail = f"{why}: evaluated the bundled sample trivy report ({counts}): gate {verdict}"
        return Step(name="scan gate", ok=code == 0, detail=detail)

    def bump_dev(self) -> Step:
        def what(d: dict[str, Any]) -> str:
            return f"dev now runs {d.get('tag')} (commit {str(d.get('commit'))[:12]} pushed to dev)"

        return self.gitops("bump dev", ["bump-overlay", "dev", self.good, "--direct"], what)

    def promote_stage(self) -> Step:
        argv = ["promote", "dev", "stage", "--direct", "--verify", "git"]
        return self.gitops("promote dev -> stage", argv, lambda d: f"stage now runs {d.get('tag')}")

    def promote_prod(self) -> Step:
        argv = ["promote", "stage", "prod", "--direct", "--verify", "git"]
        return self.gitops("promote stage -> prod", argv, lambda d: f"prod now runs {d.get('tag')}")

    def verify_prod(self) -> Step:
        argv = ["verify", "prod", "--attempts", "3", "--interval", "0.2"]
        return self.gitops("verify prod", argv, lambda d: f"healthy: {(d.get('health') or {}).get('detail')}")

    def bad_commit(self) -> Step:
        self.bad = _commit_app(self.repo, self.env, "v2", "feat: a change that breaks /health")
        self.health.bad.add(self.bad)
        return self._build(self.bad)

    def bad_deploy(self) -> Step:
        argv = ["bump-overlay", "dev", self.bad, "--direct"]
        return self.gitops(
            "bad deploy to dev", argv, lambda d: f"dev now runs {d.get('tag')}, which answers 500"
        )

    def verify_catches(self) -> Step:
        code, data = self.cli("verify", "dev", "--attempts", "2", "--interval", "0.2")
        seen = (data.get("health") or {}).get("detail")
        # The check that says no is the step doing its job: exit 1 is the success here.
        detail = (
            f"caught the bad deploy ({seen}): exit 1, as it should"
            if code == 1
            else f"missed it (exit {code})"
        )
        return Step(name="verify dev (catches the bad deploy)", ok=code == 1, detail=detail)

    def rollback(self) -> Step:
        def what(d: dict[str, Any]) -> str:
            return f"dev back on {d.get('tag')} (was {d.get('previous_tag')}); /health answers 200 again"

        return self.gitops("rollback dev", ["rollback", "dev", "--direct"], what)

    def history(self) -> Step:
        code, data = self.cli("history", "dev")
        entries = data.get("entries", [])
        trail = ", ".join(f"{e.get('action')} {e.get('tag')}" for e in entries)
        return Step(
            name="history dev", ok=code == 0, detail=f"{len(entries)} deployments, newest first: {trail}"
        )

    def status(self) -> Step:
        code, data = self.cli("status")
        tags = ", ".join(f"{r.get('env')}={r.get('git_tag')}" for r in data.get("envs", []))
        return Step(
            name="status", ok=code == 0, detail=f"in git: {tags}; live: unknown (no cluster in the demo)"
        )


def run_demo(sandbox: Path, run_cli: RunCli, say: Say, *, task_names: Sequence[str]) -> list[Step]:
    """Run every step in ``sandbox`` (an empty directory); stop at the first that fails."""
    steps: list[Step] = []
    registry, no_build = docker_registry()
    with HealthServer() as health:
        run = _Run(sandbox, run_cli, health, registry=registry, no_build=no_build)
        say(f"sandbox: repo {run.repo}, bare origin {run.origin}; 127.0.0.1 servers stand in for a cluster")
        order = [
            run.init, run.build_good, run.scan, run.bump_dev, run.promote_stage, run.promote_prod,
            run.verify_prod, run.bad_commit, run.bad_deploy, run.verify_catches, run.rollback, run.history,
            run.status,
        ]  # fmt: skip
        for step_fn in order:
            step = step_fn()
            _say(say, step)
            steps.append(step)
            if not step.ok:
                return steps
        if "metrics" in task_names:
            code, data = run.cli("metrics", "--since", "1d")
            step = Step(
                name="metrics",
                ok=code == 0,
                detail=f"dex-tasks metrics --since 1d: {data.get('error') or 'ok'}",
            )
        else:
            step = Step(
                name="metrics", ok=True, skipped=True, detail="skipped: this version has no metrics task"
            )
        _say(say, step)
        steps.append(step)
    return steps


def _say(say: Say, step: Step) -> None:
    mark = "skipped" if step.skipped else ("ok" if step.ok else "FAILED")
    say(f"[{mark}] {step.name}: {step.detail}")


def sample_report() -> contextlib.AbstractContextManager[Path]:
    """The bundled trivy report as a real file (it is one in an installed wheel)."""
    return resources.as_file(resources.files("dex_tasks.scaffold").joinpath("trivy-sample.json"))


def remove(sandbox: Path) -> None:
    shutil.rmtree(sandbox, ignore_errors=True)
