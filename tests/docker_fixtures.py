"""The Docker daemon and local registry of ``scripts/test-services.sh``, for ``@pytest.mark.docker`` tests.

Plain functions rather than fixtures, so a test module imports what it needs without fixture
re-export lint noise::

    from tests import docker_fixtures

    @pytest.mark.docker
    @pytest.mark.timeout(300)
    def test_x(tmp_path, monkeypatch):
        services = docker_fixtures.require_services(monkeypatch)   # skip locally / fail in CI
        context = docker_fixtures.write_busybox_context(tmp_path / "ctx")
        image = f"{services.registry}/data-literate/dex"

The services are found through ``DOCKER_HOST`` + ``DEX_TEST_REGISTRY`` in the environment (CI
sources the env file), else the env file ``$DEX_TEST_SERVICES_DIR/env`` (default
``${TMPDIR:-/tmp}/dex-test-services/env``) that ``scripts/test-services.sh start`` writes, so a
developer only runs the script once in any shell.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

from tests.helpers import need

if TYPE_CHECKING:
    import pytest

BUSYBOX = Path("/bin/busybox")  # Debian busybox-static: a static binary that runs FROM scratch
MANIFEST_ACCEPT = (
    "application/vnd.oci.image.index.v1+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.v2+json"
)
START_HINT = (
    "start them with `scripts/test-services.sh start` as root "
    "(apt-get install -y docker.io docker-registry busybox-static)"
)


@dataclasses.dataclass(frozen=True, kw_only=True)
class DockerServices:
    docker_host: str  # unix:///.../docker.sock
    registry: str  # 127.0.0.1:PORT

    @property
    def env(self) -> dict[str, str]:
        return {"DOCKER_HOST": self.docker_host, "DEX_TEST_REGISTRY": self.registry}


def env_file() -> Path:
    directory = os.environ.get("DEX_TEST_SERVICES_DIR") or str(
        Path(tempfile.gettempdir()) / "dex-test-services"
    )
    return Path(directory) / "env"


def _read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return values
    for line in text.splitlines():
        key, sep, value = line.removeprefix("export ").partition("=")
        if sep:
            values[key.strip()] = value.strip()
    return values


def _configured() -> tuple[str, str] | None:
    host, registry = os.environ.get("DOCKER_HOST", ""), os.environ.get("DEX_TEST_REGISTRY", "")
    if not (host and registry):
        values = _read_env_file(env_file())
        host, registry = values.get("DOCKER_HOST", ""), values.get("DEX_TEST_REGISTRY", "")
    return (host, registry) if host and registry else None


@functools.cache
def _probe(docker_host: str, registry: str) -> str | None:
    """None when both answer, else why not (cached: probed once per session)."""
    if shutil.which("docker") is None:
        return "the docker client is not installed"
    try:
        done = subprocess.run(
            ["docker", "version", "--format", "{{.Server.Version}}"],
            env={**os.environ, "DOCKER_HOST": docker_host},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"the Docker daemon at {docker_host} did not answer within 30s"
    if done.returncode != 0:
        return f"no Docker daemon at {docker_host}: {done.stderr.strip().splitlines()[-1:]}"
    try:
        with urllib.request.urlopen(f"http://{registry}/v2/", timeout=10) as response:
            if response.status != 200:
                return f"registry {registry} answered HTTP {response.status}"
    except (urllib.error.URLError, OSError) as exc:
        return f"no registry at {registry}: {exc}"
    return None


def find_services() -> DockerServices | str:
    """The running services, or why they cannot be used."""
    configured = _configured()
    if configured is None:
        return f"no Docker test services configured (DOCKER_HOST/DEX_TEST_REGISTRY or {env_file()})"
    problem = _probe(*configured)
    if problem is not None:
        return problem
    return DockerServices(docker_host=configured[0], registry=configured[1])


def require_services(monkeypatch: pytest.MonkeyPatch) -> DockerServices:
    """The services, with DOCKER_HOST set for the test; skip locally (fail in CI) when absent."""
    found = find_services()
    need(isinstance(found, DockerServices), f"{found}; {START_HINT}")
    assert isinstance(found, DockerServices)
    need(BUSYBOX.is_file(), f"{BUSYBOX} is missing: apt-get install -y busybox-static")
    for key, value in found.env.items():
        monkeypatch.setenv(key, value)
    return found


def write_busybox_context(directory: Path, *, dockerfile_extra: str = "") -> Path:
    """A build context whose Dockerfile needs no base image: ``FROM scratch`` + static busybox."""
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy2(BUSYBOX, directory / "busybox")
    (directory / "Dockerfile").write_text(
        "FROM scratch\nCOPY busybox /bin/busybox\n"
        + dockerfile_extra
        + 'ENTRYPOINT ["/bin/busybox"]\nCMD ["echo", "hello from dex"]\n',
        encoding="utf-8",
    )
    return directory


def docker(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The docker CLI against the test daemon (DOCKER_HOST set by :func:`require_services`)."""
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=check)


def registry_digest(registry: str, name: str, tag: str) -> str | None:
    """What the registry itself says: ``Docker-Content-Digest`` of HEAD /v2/<name>/manifests/<tag>."""
    request = urllib.request.Request(
        f"http://{registry}/v2/{name}/manifests/{tag}", method="HEAD", headers={"Accept": MANIFEST_ACCEPT}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            digest: str = response.headers["Docker-Content-Digest"]
            return digest
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise
