"""image-build keeps ``.git/config`` credentials out of images, against the real daemon and registry.

The ``.dockerignore`` port is also held to docker itself: for each file below, a ``COPY . /ctx/``
build is inspected for ``/ctx/.git/config`` and compared with what our matcher says docker sends.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from dex_tasks.tools import dockerignore
from tests import docker_fixtures
from tests.helpers import git
from tests.integration.test_image_build import make_project

if TYPE_CHECKING:
    from pathlib import Path

    from tests.conftest import CliRunner

pytestmark = [pytest.mark.docker, pytest.mark.timeout(300)]

HEADER = "AUTHORIZATION: basic eC1hY2Nlc3MtdG9rZW46Z2hzX3NlY3JldA=="


@pytest.fixture
def services(monkeypatch: pytest.MonkeyPatch) -> docker_fixtures.DockerServices:
    found = docker_fixtures.require_services(monkeypatch)
    monkeypatch.setenv("DEX_DOCKER_BUILDX", "auto")
    return found


def _project(root: Path, image: str, ignore: str | None) -> str:
    """A project whose Dockerfile copies the whole context, with a token persisted in .git/config."""
    head = make_project(root, image=image)
    dockerfile = root / "Dockerfile"
    dockerfile.write_text(
        dockerfile.read_text(encoding="utf-8").replace("ENTRYPOINT", "COPY . /ctx/\nENTRYPOINT"),
        encoding="utf-8",
    )
    if ignore is not None:
        (root / ".dockerignore").write_text(ignore, encoding="utf-8")
    git("add", "-A", cwd=root)
    git("commit", "-q", "-m", "copy the context", cwd=root)
    # What actions/checkout with persist-credentials: true leaves behind.
    git("config", "http.https://github.com/.extraheader", HEADER, cwd=root)
    return git("rev-parse", "HEAD", cwd=root) or head


def _ls(ref: str, path: str) -> str:
    done = docker_fixtures.docker("run", "--rm", "--network", "none", ref, "ls", "-a", path, check=False)
    return done.stdout if done.returncode == 0 else ""


def test_a_persisted_token_is_refused_and_nothing_is_built_or_pushed(
    run_cli: CliRunner, services: docker_fixtures.DockerServices, tmp_path: Path
) -> None:
    image = f"{services.registry}/data-literate/ctx-refused"
    head = _project(tmp_path / "app", image, ignore=None)
    sha = f"sha-{head[:8]}"
    result = run_cli("image-build", "--push", "--json", cwd=tmp_path / "app")
    assert result.code == 2, result.err
    data = json.loads(result.out)
    assert "would send .git/config" in data["error"]
    assert "Authorization header" in data["error"]
    assert "eC1hY2Nlc3" not in result.err + result.out
    assert "$ docker" not in result.err  # no docker command ran: no login, no build, no push
    assert docker_fixtures.registry_digest(services.registry, "data-literate/ctx-refused", sha) is None
    assert docker_fixtures.docker("image", "inspect", f"{image}:{sha}", check=False).returncode != 0


def test_an_excluded_git_builds_and_pushes_without_it(
    run_cli: CliRunner, services: docker_fixtures.DockerServices, tmp_path: Path
) -> None:
    image = f"{services.registry}/data-literate/ctx-ok"
    head = _project(tmp_path / "app", image, ignore="/.git/\n")
    sha = f"sha-{head[:8]}"
    result = run_cli("image-build", "--push", "--json", cwd=tmp_path / "app")
    assert result.code == 0, result.err
    assert ".git" not in "".join(line for line in result.err.splitlines() if "warning" in line.lower())
    assert docker_fixtures.registry_digest(services.registry, "data-literate/ctx-ok", sha) is not None
    listing = _ls(f"{image}:{sha}", "/ctx")
    assert "Dockerfile" in listing
    assert ".git" not in listing.split()


def test_an_unexcluded_git_without_credentials_builds_with_a_warning(
    run_cli: CliRunner, services: docker_fixtures.DockerServices, tmp_path: Path
) -> None:
    image = f"{services.registry}/data-literate/ctx-warn"
    root = tmp_path / "app"
    _project(root, image, ignore=None)
    git("config", "--unset", "http.https://github.com/.extraheader", cwd=root)
    result = run_cli("image-build", "--json", cwd=root)
    assert result.code == 0, result.err
    assert "the build context sends .git to the builder" in result.err


# .dockerignore contents: docker decides whether /ctx/.git/config lands in the image.
GROUND_TRUTH = [
    ".git",
    ".git/",
    "/.git",
    "**/.git",
    ".*",
    "*\n!Dockerfile\n!busybox",
    ".git\n!.git/config",
    ".gi?/conf*",
    "*.pyc",
    "# .git",
    "git",
]


def test_the_dockerignore_port_agrees_with_docker(
    services: docker_fixtures.DockerServices, tmp_path: Path
) -> None:
    image = f"{services.registry}/data-literate/ctx-truth"
    disagreements = []
    for number, ignore in enumerate(GROUND_TRUTH):
        root = tmp_path / f"c{number}"
        _project(root, image, ignore=ignore + "\n")
        ref = f"{image}:case{number}"
        build = docker_fixtures.docker("build", "-q", "-t", ref, str(root), check=False, timeout=180)
        assert build.returncode == 0, build.stderr
        shipped = "config" in _ls(ref, "/ctx/.git").split()
        ours = not dockerignore.Matcher(dockerignore.read_patterns(ignore)).excluded(".git/config")
        if shipped != ours:
            disagreements.append((ignore, {"docker": shipped, "ours": ours}))
    assert not disagreements
