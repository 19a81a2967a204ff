"""tools/docker_credentials.py: docker login's config.json, looked up as the docker CLI does."""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING

import pytest

from dex_tasks import redact
from dex_tasks.errors import ConfigError
from dex_tasks.tools import docker_credentials

if TYPE_CHECKING:
    from pathlib import Path


def env_with(tmp_path: Path, config: object) -> dict[str, str]:
    (tmp_path / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return {"DOCKER_CONFIG": str(tmp_path)}


def auth(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.usefixtures("fresh_redaction")
def test_docker_hub_is_keyed_by_the_v1_index_url(tmp_path: Path) -> None:
    env = env_with(tmp_path, {"auths": {"https://index.docker.io/v1/": {"auth": auth("me", "hub-secret-1")}}})
    found = docker_credentials.lookup("docker.io", env)
    assert found is not None
    assert found.basic == ("me", "hub-secret-1")
    assert "hub-secret-1" not in redact.redact("hub-secret-1")
    assert docker_credentials.lookup("ghcr.io", env) is None


def test_keys_with_scheme_and_path_match_their_host(tmp_path: Path) -> None:
    env = env_with(
        tmp_path, {"auths": {"https://registry.example:8443/v2/": {"username": "u", "password": "p1"}}}
    )
    found = docker_credentials.lookup("registry.example:8443", env)
    assert found is not None
    assert found.basic == ("u", "p1")
    assert docker_credentials.lookup("registry.example", env) is None


def test_tokens_in_the_config(tmp_path: Path) -> None:
    env = env_with(
        tmp_path, {"auths": {"r.io": {"identitytoken": "idt-1"}, "s.io": {"registrytoken": "rt-1"}}}
    )
    identity, registry = docker_credentials.lookup("r.io", env), docker_credentials.lookup("s.io", env)
    assert identity is not None
    assert (identity.identity_token, identity.basic) == ("idt-1", None)
    assert registry is not None
    assert registry.registry_token == "rt-1"


def test_no_config_no_credentials(tmp_path: Path) -> None:
    assert docker_credentials.lookup("ghcr.io", {}) is None
    assert docker_credentials.lookup("ghcr.io", {"DOCKER_CONFIG": str(tmp_path / "absent")}) is None
    assert docker_credentials.lookup("ghcr.io", {"HOME": str(tmp_path)}) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [("{not json", "is not valid JSON"), ("[]", "is not a JSON object"), (None, "cannot be read")],
    ids=["not-json", "not-object", "unreadable"],
)
def test_a_config_docker_cannot_load_is_a_note_and_no_credentials(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str | None, message: str
) -> None:
    # As the docker CLI (cli/config LoadDefaultConfigFile: "WARNING: Error loading config file",
    # then an empty config): an anonymous pull of a public image still works, every task does not
    # exit 2 for a file a `sudo docker login` left unreadable or an editor left half-written.
    path = tmp_path / "config.json"
    if text is None:
        path.mkdir()  # unreadable even as root (IsADirectoryError), as a root-owned 0600 file is to a user
    else:
        path.write_text(text, encoding="utf-8")
    assert docker_credentials.lookup("ghcr.io", {"DOCKER_CONFIG": str(tmp_path)}) is None
    err = capsys.readouterr().err
    assert f"docker config {path}" in err
    assert message in err
    assert "no docker login credentials" in err


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (json.dumps({"auths": {"ghcr.io": {"auth": "%%%"}}}), "not base64 of user:password"),
        (json.dumps({"auths": {"ghcr.io": {"auth": base64.b64encode(b"nocolon").decode()}}}), "not base64"),
    ],
)
def test_a_broken_config_is_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "config.json").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        docker_credentials.lookup("ghcr.io", {"DOCKER_CONFIG": str(tmp_path)})


@pytest.mark.parametrize(
    "entry",
    [
        {"username": "u", "password": "line\nbreak-s3kr1t"},
        {"registrytoken": "esc\x1b[2J-s3kr1t"},
        {"identitytoken": "surrogate\ud800-s3kr1t"},
        {"auth": auth("u", "tab\tand\rreturn-s3kr1t")},
    ],
    ids=["password-newline", "registrytoken-escape", "identitytoken-surrogate", "auth-decoded-cr"],
)
def test_a_secret_that_cannot_go_in_a_header_is_refused_by_name(
    tmp_path: Path, entry: dict[str, str]
) -> None:
    # requests refuses such a header (InvalidHeader) and quotes the value escaped, where the
    # redaction of the real value cannot find it: refused where it is read, the value never shown.
    env = env_with(tmp_path, {"auths": {"ghcr.io": entry}})
    with pytest.raises(ConfigError, match="holds a control character or bytes that are not UTF-8") as caught:
        docker_credentials.lookup("ghcr.io", env)
    assert "s3kr1t" not in str(caught.value)
    assert "\n" not in str(caught.value)
