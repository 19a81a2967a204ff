"""A sample consumer repository (like data-literate/dex) for running our workflows end to end.

Built on :mod:`tests.gitops_fixtures` (bare ``origin`` with ``main``/``dev``, DEX overlays and their
deployment history), plus what a real consumer has on both branches:

* a ``Dockerfile`` ``FROM scratch`` with a static busybox
  (:func:`tests.docker_fixtures.write_busybox_context`), so the build needs no base image or network;
* ``[tool.dex] image`` pointing at the local test registry (``127.0.0.1:PORT/test-<hex>/dex``), and
  the overlays' ``newName`` too; ``kustomize-image`` stays ``data-literate/dex`` (``images[].name``).

:func:`checkout` clones one branch of ``origin`` into a fresh directory: that is what
``actions/checkout`` leaves in ``$GITHUB_WORKSPACE`` (``origin`` is the bare repo, so the GitOps
tasks push there). :func:`fake_trivy` installs the fake trivy CLI with one report for every image.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import uuid
from typing import TYPE_CHECKING

from tests import docker_fixtures, gitops_fixtures
from tests.fakes import trivy_cli
from tests.helpers import REPO_ROOT, git

if TYPE_CHECKING:
    from pathlib import Path

APP_REPOSITORY = "data-literate/dex"
KUSTOMIZE_IMAGE = gitops_fixtures.KUSTOMIZE_IMAGE
TRIVY_FIXTURES = REPO_ROOT / "tests" / "fixtures" / "trivy"


def pyproject(image: str) -> str:
    return (
        '[project]\nname = "dex"\nversion = "0.1.0"\nrequires-python = ">=3.11"\n\n'
        '[tool.poe]\ninclude_script = "dex_tasks.poe:tasks"\n\n'
        f'[tool.dex]\nimage = "{image}"\nkustomize-image = "{KUSTOMIZE_IMAGE}"\n'
    )


@dataclasses.dataclass(frozen=True, kw_only=True)
class Consumer:
    gitops: gitops_fixtures.GitOpsRepo
    image: str  # registry/name, no tag
    heads: dict[str, str]  # branch -> the app commit CD builds

    @property
    def origin(self) -> Path:
        return self.gitops.origin


def build(tmp_path: Path, *, registry: str) -> Consumer:
    """The GitOps fixture repo plus a Dockerfile and a registry-pointing pyproject on main and dev.

    The image name is unique per call (``<registry>/test-<hex>/dex``): the test registry is shared by
    the whole session, and a test asserting that a tag is *not* there must not see another's push.
    """
    (tmp_path / "gitops").mkdir()
    repo = gitops_fixtures.build(tmp_path / "gitops")
    image = f"{registry}/test-{uuid.uuid4().hex[:10]}/dex"
    seed = tmp_path / "seed-app"
    git("clone", "--quiet", str(repo.origin), str(seed), cwd=tmp_path)
    heads: dict[str, str] = {}
    for branch in ("main", "dev"):
        git("checkout", "--quiet", branch, cwd=seed)
        docker_fixtures.write_busybox_context(seed)
        (seed / ".dockerignore").write_text(".git\n", encoding="utf-8")
        (seed / "pyproject.toml").write_text(pyproject(image), encoding="utf-8")
        # The overlays deploy from the same registry the build pushes to.
        for env in gitops_fixtures.ENVS:
            overlay = seed / gitops_fixtures.overlay_path(env)
            text = overlay.read_text(encoding="utf-8")
            overlay.write_text(
                text.replace(f"newName: {gitops_fixtures.IMAGE}", f"newName: {image}"), encoding="utf-8"
            )
        git("add", "--all", cwd=seed)
        git("commit", "--quiet", "-m", f"feat: containerise the app ({branch})", cwd=seed)
        git("push", "--quiet", "origin", f"HEAD:refs/heads/{branch}", cwd=seed)
        heads[branch] = git("rev-parse", "HEAD", cwd=seed)
    return Consumer(gitops=repo, image=image, heads=heads)


def checkout(consumer: Consumer, branch: str, dest: Path) -> Path:
    """What actions/checkout leaves: a clone of ``branch`` whose ``origin`` is the bare repo."""
    git("clone", "--quiet", "--branch", branch, str(consumer.origin), str(dest), cwd=dest.parent)
    return dest


def fake_trivy(directory: Path, *, report: str) -> dict[str, str]:
    """Install the fake trivy answering every image with ``report`` (a file in tests/fixtures/trivy).

    Returns the environment for the runner: PATH with the fake first, the report dir and call log.
    """
    bin_dir = directory / "bin"
    reports = directory / "reports"
    trivy_cli.install(bin_dir)
    reports.mkdir()
    shutil.copyfile(TRIVY_FIXTURES / report, reports / "default.json")
    return {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "FAKE_TRIVY_REPORTS": str(reports),
        "FAKE_TRIVY_LOG": str(directory / "trivy-calls.jsonl"),
    }
