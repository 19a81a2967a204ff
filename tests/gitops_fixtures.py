"""A DEX-like GitOps repository for tests: a bare ``origin``, ``dev``/``main``, a deployment history.

``build(tmp_path)`` returns a :class:`GitOpsRepo` with:

- ``origin``: a bare repository (the "GitHub" remote), branches ``main`` and ``dev``;
- ``clone``: the user's clone on ``main`` with uncommitted work (a modified tracked file, a staged
  file, an untracked file) that every task must leave exactly as it was;
- ``writer``: a second clone, a competing writer for push-race tests (:meth:`GitOpsRepo.race`);
- app commits ``apps[0..4]`` on main whose ``sha-<8 hex>`` tags (``tags[i]``) were deployed:

  ======  ==============================================  ==========
  env     deployments, oldest first                        current
  ======  ==============================================  ==========
  dev     T0 (manual), T1, T2, T3 (bumps)                  T3
  stage   T0 (manual), T1, T2 (bumps), rollback T2 -> T1,  T1
          then a hand edit that keeps the tag
  prod    T0 (manual)                                      T0
  ======  ==============================================  ==========

  So stage's last known good tag is T0 (T2 is known bad: a rollback moved away from it), and
  ``tags[4]`` (T4) was built but never deployed anywhere.

The overlays render with ``kubectl kustomize`` (base deployment + ``newName``), like DEX's.
Other helpers reuse it (``status``, ``verify``): import ``build`` and call it with a tmp path.
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import time
from typing import TYPE_CHECKING

from tests.helpers import git

if TYPE_CHECKING:
    from pathlib import Path

IMAGE = "ghcr.io/data-literate/dex"
KUSTOMIZE_IMAGE = "data-literate/dex"
OVERLAYS = "infra/argocd/overlays"
ENVS = ("dev", "stage", "prod")

# The fixture's tags were never pushed anywhere (ghcr.io is not reachable from tests): the GitOps
# tests of git behaviour run with the registry check off, which also needs no scan gate. The
# registry-backed behaviour has its own tests (test_gitops_registry.py) against the real registry.
PYPROJECT = f"""\
[project]
name = "dex"
version = "0.1.0"

# The scan table first: tests add [tool.dex] keys by appending lines, so [tool.dex] comes last.
[tool.dex.scan]
required-for = []

[tool.dex]
image = "{IMAGE}"
registry-check = "off"
"""

BASE_KUSTOMIZATION = """\
resources:
  - deployment.yaml
"""

BASE_DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: dex
spec:
  replicas: 1
  selector:
    matchLabels:
      app: dex
  template:
    metadata:
      labels:
        app: dex
    spec:
      containers:
        - name: dex
          image: data-literate/dex
          ports:
            - containerPort: 8000
"""


def overlay_text(env: str, tag: str) -> str:
    return f"""\
# {env} overlay of the dex app
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: dex-{env}
resources:
  - ../../base
images:
  - name: {KUSTOMIZE_IMAGE}
    newName: {IMAGE}
    newTag: {tag}  # updated by CD
"""


def overlay_path(env: str) -> str:
    return f"{OVERLAYS}/{env}/kustomization.yaml"


@dataclasses.dataclass
class GitOpsRepo:
    origin: Path
    clone: Path
    writer: Path
    apps: list[str]  # full shas of the app commits on main
    tags: list[str]  # sha-<8> of each app commit

    # -- reading the remote ----------------------------------------------------------------
    def show(self, rev: str, path: str) -> str | None:
        done = subprocess.run(
            ["git", "show", f"{rev}:{path}"], cwd=self.origin, capture_output=True, text=True, check=False
        )
        return done.stdout if done.returncode == 0 else None

    def tag(self, env: str, rev: str | None = None) -> str | None:
        """The newTag of ``env``'s overlay on origin (its base branch unless ``rev``)."""
        text = self.show(rev or branch_of(env), overlay_path(env))
        if text is None:
            return None
        for line in text.splitlines():
            if line.strip().startswith("newTag:"):
                return line.split(":", 1)[1].split("#")[0].strip().strip("'\"")
        return None

    def head(self, branch: str) -> str:
        return git("rev-parse", f"refs/heads/{branch}", cwd=self.origin)

    def message(self, rev: str) -> str:
        return git("log", "-1", "--format=%B", rev, cwd=self.origin)

    def subject(self, rev: str) -> str:
        return git("log", "-1", "--format=%s", rev, cwd=self.origin)

    def remote_branches(self) -> list[str]:
        out = git("for-each-ref", "--format=%(refname:short)", "refs/heads/", cwd=self.origin)
        return out.splitlines()

    # -- state snapshots -----------------------------------------------------------------------
    def snapshot(self) -> dict[str, str]:
        """Everything a task must not change when it refuses: remote refs, the clone's refs,
        worktrees, HEAD, index, working-tree files (including uncommitted and untracked ones)."""
        clone = self.clone
        files = {
            name: (clone / name).read_bytes().decode("utf-8", "replace")
            for name in ("README.md", "notes.txt", "staged.txt")
            if (clone / name).exists()
        }
        return {
            "origin_refs": git("for-each-ref", "--format=%(objectname) %(refname)", cwd=self.origin),
            "clone_refs": git("for-each-ref", "--format=%(objectname) %(refname)", cwd=clone),
            "worktrees": git("worktree", "list", "--porcelain", cwd=clone),
            "head": git("symbolic-ref", "HEAD", cwd=clone) + " " + git("rev-parse", "HEAD", cwd=clone),
            "status": git("status", "--porcelain=v1", "-uall", cwd=clone),
            "index": git("diff", "--cached", cwd=clone),
            "worktree_diff": git("diff", cwd=clone),
            "files": repr(sorted(files.items())),
            "worktree_dirs": repr(sorted(p.name for p in (clone / ".git" / "worktrees").glob("*"))),
        }

    # -- a second writer -----------------------------------------------------------------------
    def race(self, branch: str, path: str = "CHANGELOG.md", text: str | None = None) -> str:
        """Another writer commits to ``branch`` on origin (a file other than the overlays by default)."""
        w = self.writer
        git("fetch", "--quiet", "origin", cwd=w)
        git("checkout", "--quiet", "-B", branch, f"origin/{branch}", cwd=w)
        target = w / path
        target.parent.mkdir(parents=True, exist_ok=True)
        previous = target.read_text(encoding="utf-8") if target.exists() else ""
        target.write_text(text if text is not None else previous + "another writer\n", encoding="utf-8")
        git("add", path, cwd=w)
        git("commit", "--quiet", "-m", f"chore: another writer on {branch}", cwd=w)
        git("push", "--quiet", "origin", f"HEAD:refs/heads/{branch}", cwd=w)
        return git("rev-parse", "HEAD", cwd=w)


def branch_of(env: str) -> str:
    return "dev" if env == "dev" else "main"


class _Dates:
    """Commit dates for the seed history: one a second, the newest about two minutes ago.

    Not the wall clock: git dates have whole seconds, so two seed commits shared a date or not by
    chance, and so did what a test read from them ("the newest commit", a soak's "since", an order
    by date) - flaky. One a second apart, every run sees the same distinct dates. In the past, so
    whatever a test commits later, at the real time, is newer than all of them; close to now, so
    the real-time windows of ``metrics`` and the fakes (the ``now`` fixture) still hold them.
    """

    def __init__(self) -> None:
        self._next = int(time.time()) - 120

    def env(self) -> dict[str, str]:
        stamp = f"@{self._next} +0000"
        self._next += 1
        return {"GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp}


def _commit_overlay(
    work: Path,
    env: str,
    tag: str,
    subject: str,
    trailers: list[str] | None = None,
    *,
    dates: _Dates | None = None,
) -> None:
    path = work / overlay_path(env)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(overlay_text(env, tag), encoding="utf-8")
    git("add", overlay_path(env), cwd=work)
    args = ["commit", "--quiet", "-m", subject]
    if trailers:
        args += ["-m", "\n".join(trailers)]
    git(*args, cwd=work, env=dates.env() if dates else None)


def _bump_trailers(env: str, tag: str, previous: str) -> list[str]:
    return ["Dex-Action: bump", f"Dex-Env: {env}", f"Dex-Tag: {tag}", f"Dex-Previous-Tag: {previous}"]


def build(tmp_path: Path) -> GitOpsRepo:
    origin = tmp_path / "origin.git"
    work = tmp_path / "seed"
    clone = tmp_path / "clone"
    writer = tmp_path / "writer"
    dates = _Dates()
    git("init", "--quiet", "--bare", "--initial-branch=main", str(origin), cwd=tmp_path)
    git("init", "--quiet", "--initial-branch=main", str(work), cwd=tmp_path)
    (work / "pyproject.toml").write_text(PYPROJECT, encoding="utf-8")
    (work / "README.md").write_text("# dex\n", encoding="utf-8")
    base = work / "infra" / "argocd" / "base"
    base.mkdir(parents=True)
    (base / "kustomization.yaml").write_text(BASE_KUSTOMIZATION, encoding="utf-8")
    (base / "deployment.yaml").write_text(BASE_DEPLOYMENT, encoding="utf-8")
    (work / "app.py").write_text("VERSION = 0\n", encoding="utf-8")
    git("add", ".", cwd=work)
    git("commit", "--quiet", "-m", "feat: dex app", cwd=work, env=dates.env())
    apps = [git("rev-parse", "HEAD", cwd=work)]
    for i in range(1, 5):
        (work / "app.py").write_text(f"VERSION = {i}\n", encoding="utf-8")
        git("commit", "--quiet", "-am", f"feat: app change {i}", cwd=work, env=dates.env())
        apps.append(git("rev-parse", "HEAD", cwd=work))
    tags = [f"sha-{sha[:8]}" for sha in apps]
    # Initial overlays by hand (no trailers: `manual` in history).
    for env in ENVS:
        path = work / overlay_path(env)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(overlay_text(env, tags[0]), encoding="utf-8")
    git("add", OVERLAYS, cwd=work)
    git("commit", "--quiet", "-m", "chore: add overlays", cwd=work, env=dates.env())
    # stage on main: T1, T2, then a rollback T2 -> T1.
    _commit_overlay(
        work,
        "stage",
        tags[1],
        f"chore: update stage image to {tags[1]}",
        _bump_trailers("stage", tags[1], tags[0]),
        dates=dates,
    )
    _commit_overlay(
        work,
        "stage",
        tags[2],
        f"chore: update stage image to {tags[2]}",
        _bump_trailers("stage", tags[2], tags[1]),
        dates=dates,
    )
    _commit_overlay(
        work,
        "stage",
        tags[1],
        f"fix: rollback stage to {tags[1]}",
        ["Dex-Action: rollback", "Dex-Env: stage", f"Dex-Tag: {tags[1]}", f"Dex-Previous-Tag: {tags[2]}"],
        dates=dates,
    )
    # A hand edit after the rollback (the tag stays): a person has looked at stage since, so a
    # rollback without TAG is not taken for a re-run of that rollback job.
    stage_file = work / overlay_path("stage")
    stage_file.write_text(
        overlay_text("stage", tags[1]).replace("dex app", "dex app (reviewed)"), encoding="utf-8"
    )
    git("commit", "--quiet", "-am", "docs: note on the stage overlay", cwd=work, env=dates.env())
    git("branch", "dev", cwd=work)
    git("checkout", "--quiet", "dev", cwd=work)
    for i in range(1, 4):
        _commit_overlay(
            work,
            "dev",
            tags[i],
            f"chore: update dev image to {tags[i]}",
            _bump_trailers("dev", tags[i], tags[i - 1]),
            dates=dates,
        )
    git("checkout", "--quiet", "main", cwd=work)  # fmt: skip
    git("remote", "add", "origin", str(origin), cwd=work)
    git("push", "--quiet", "origin", "main", "dev", cwd=work)
    git("clone", "--quiet", str(origin), str(clone), cwd=tmp_path)
    git("clone", "--quiet", str(origin), str(writer), cwd=tmp_path)
    # The user's uncommitted work, which no task may touch.
    (clone / "README.md").write_text("# dex\n\nwork in progress\n", encoding="utf-8")
    (clone / "staged.txt").write_text("staged but not committed\n", encoding="utf-8")
    git("add", "staged.txt", cwd=clone)
    (clone / "notes.txt").write_text("untracked notes\n", encoding="utf-8")
    return GitOpsRepo(origin=origin, clone=clone, writer=writer, apps=apps, tags=tags)


def shallow_clone(repo: GitOpsRepo, dest: Path) -> Path:
    """``git clone --depth 1`` of origin, like actions/checkout (file:// so depth is honoured)."""
    url = repo.origin.resolve().as_uri()
    subprocess.run(
        ["git", "clone", "--quiet", "--depth", "1", "--no-single-branch", url, str(dest)],
        check=True,
        capture_output=True,
        env={**os.environ},
    )
    # Keep the plain path as origin's URL so GitHub slug detection sees the same remote.
    return dest


# A temporary worktree as the product names it (git.worktree: mkdtemp(prefix="dex-worktree-")),
# with the separator after it, so `<tmp>/wt` reads the same on Windows.
_TMP_WORKTREE = re.compile(r"[^\s'=]*dex-worktree-[^/\\\s']+[/\\]?")


def without_tmp_paths(line: str) -> str:
    """``line`` with every temporary worktree path replaced by ``<tmp>/`` (they differ per run)."""
    return _TMP_WORKTREE.sub("<tmp>/", line)


@dataclasses.dataclass(frozen=True)
class SigningKey:
    key: Path  # the private key file (user.signingkey may name it or its .pub)
    public: str  # "ssh-ed25519 AAAA... comment"
    allowed_signers: Path  # gpg.ssh.allowedSignersFile listing this key


def ssh_signing_key(directory: Path, *, principal: str = "dex-test@example.invalid") -> SigningKey:
    """A fresh ed25519 key (no passphrase) from the real ssh-keygen, and an allowed-signers file."""
    directory.mkdir(parents=True, exist_ok=True)
    key = directory / "id_ed25519"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", principal, "-f", str(key)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    public = (directory / "id_ed25519.pub").read_text(encoding="utf-8").strip()
    allowed = directory / "allowed_signers"
    # https://man.openbsd.org/ssh-keygen#ALLOWED_SIGNERS: "principals [options] key".
    allowed.write_text(f"{principal} {public}\n", encoding="utf-8")
    return SigningKey(key=key, public=public, allowed_signers=allowed)


def enable_signing(repo: GitOpsRepo, key: SigningKey, envs: tuple[str, ...] = ("prod",)) -> None:
    """``sign-commits = envs`` in the clone's pyproject, and git's ssh signing set up in the clone;
    origin verifies against the same allowed-signers file (``git verify-commit`` there)."""
    pyproject = repo.clone / "pyproject.toml"
    listed = ", ".join(f'"{env}"' for env in envs)
    pyproject.write_text(
        pyproject.read_text(encoding="utf-8") + f"sign-commits = [{listed}]\n", encoding="utf-8"
    )
    for where in (repo.clone, repo.origin):
        git("config", "gpg.format", "ssh", cwd=where)
        git("config", "gpg.ssh.allowedSignersFile", str(key.allowed_signers), cwd=where)
    git("config", "user.signingkey", str(key.key), cwd=repo.clone)


def signature_status(repo: GitOpsRepo, rev: str) -> str:
    """git's %G? letter for ``rev`` on origin (G: good and verified; N: none)."""
    return git("log", "-1", "--format=%G?", rev, cwd=repo.origin)
