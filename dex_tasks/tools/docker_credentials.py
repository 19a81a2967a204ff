"""Registry credentials from docker's ``config.json``, as ``docker login`` left them.

After ``docker login`` (or docker/login-action, ``aws ecr get-login-password | docker login``,
``gcloud auth configure-docker``, ``az acr login``) the registry API client finds the same
credentials the docker CLI would, in the docker CLI's order (docker/cli
``cli/config/configfile/file.go`` ``GetAuthConfig`` and ``cli/config/credentials``):

1. ``credHelpers[<host>]``: the helper ``docker-credential-<name>`` (``ecr-login``, ``gcloud``,
   ``acr-env`` ...), asked with ``get`` and the server URL on stdin; it answers
   ``{"ServerURL","Username","Secret"}``, or fails with "credentials not found";
2. ``auths[<host>]``: ``auth`` (base64 ``user:password``), ``username``/``password``,
   ``identitytoken`` (an OAuth2 refresh token: ACR's ``az acr login``), ``registrytoken`` (a bearer
   token to send as it is). Keys are matched as docker's ``ConvertToHostname`` does: with or
   without ``https://`` / ``http://`` and any path (``https://index.docker.io/v1/``);
3. ``credsStore``: the helper for every other host (``desktop``, ``osxkeychain``, ``pass``,
   ``secretservice``, ``wincred``); an ``auths`` entry without secrets (what ``docker login`` writes
   beside a store) defers to it.

A helper answering ``Username: "<token>"`` hands out an identity token (docker/cli
``credentials/native_store.go``). Docker Hub's key is ``https://index.docker.io/v1/``.
``$DOCKER_CONFIG/config.json`` is read when ``DOCKER_CONFIG`` is set, else ``~/.docker/config.json``.
A helper that is not on PATH (a config copied from a laptop: ``desktop``) gives no credentials and a
note, as anonymous pulls of public images still work without it; so does a config docker itself
could not load (unreadable, not JSON), as the docker CLI warns and goes on without one.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING

from dex_tasks import proc, redact
from dex_tasks._untrusted import parse_json, unusable_secret
from dex_tasks.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Mapping

DOCKER_HUB_KEY = "https://index.docker.io/v1/"  # docker/cli registry.IndexServer
_DOCKER_HUB_HOSTS = ("docker.io", "index.docker.io", "registry-1.docker.io")
HELPER_TIMEOUT = 30.0  # seconds: a helper may refresh a cloud token (ecr-login, gcloud)
TOKEN_USER = "<token>"  # noqa: S105 - not a secret: a helper's user name for an identity token
MAX_CONFIG_BYTES = 1024 * 1024


@dataclasses.dataclass(frozen=True, kw_only=True)
class Credentials:
    """What to authenticate with; ``source`` says where it came from, for messages (no secrets)."""

    user: str = ""
    password: str = ""
    identity_token: str = ""  # OAuth2 refresh token: POST to the token realm (distribution's oauth.md)
    registry_token: str = ""  # a bearer token for the registry itself
    source: str

    @property
    def basic(self) -> tuple[str, str] | None:
        """(user, password) for HTTP Basic, None when this is a token."""
        return (self.user, self.password) if self.user and self.password else None

    def register(self) -> None:
        for secret in (self.password, self.identity_token, self.registry_token):
            if secret:
                redact.register_secret(secret)


def config_path(env: Mapping[str, str]) -> Path | None:
    """Where docker reads its config: ``$DOCKER_CONFIG/config.json`` or ``~/.docker/config.json``."""
    if env.get("DOCKER_CONFIG"):
        return Path(env["DOCKER_CONFIG"]) / "config.json"
    home = env.get("HOME") or env.get("USERPROFILE")
    return Path(home) / ".docker" / "config.json" if home else None


def _hostname(key: str) -> str:
    """docker/cli ``credentials.ConvertToHostname``: strip the scheme and any path."""
    for prefix in ("http://", "https://"):
        if key.startswith(prefix):
            key = key[len(prefix) :]
            break
    return key.partition("/")[0]


def _keys(host: str) -> tuple[str, ...]:
    """The config keys docker would look ``host`` up under, most specific first."""
    return (DOCKER_HUB_KEY, *_DOCKER_HUB_HOSTS) if host in _DOCKER_HUB_HOSTS else (host,)


def _read_config(path: Path) -> dict[str, object] | None:
    """The config, or None (with a note) when there is none or docker itself could not load it.

    As the docker CLI does (docker/cli ``cli/config/config.go`` ``LoadDefaultConfigFile``: "WARNING:
    Error loading config file", then an empty config): a file ``sudo docker login`` left unreadable
    or an editor left half-written costs its credentials, not every registry task (an anonymous
    pull of a public image still works)."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return _unloadable(path, f"cannot be read ({exc.strerror or exc})")
    try:
        if len(raw) > MAX_CONFIG_BYTES:
            raise ValueError("larger than 1 MiB")  # noqa: TRY301 - one message for both
        data = parse_json(raw)
    except ValueError as exc:
        return _unloadable(path, f"is not valid JSON ({exc})")
    if not isinstance(data, dict):
        return _unloadable(path, "is not a JSON object")
    return data


def _unloadable(path: Path, why: str) -> dict[str, object] | None:
    proc.echo(f"# the docker config {path} {why}: no docker login credentials (fix or remove it)")
    return None


def _text(data: Mapping[str, object], key: str, source: str) -> str:
    """``data[key]`` stripped, "" when absent; ConfigError naming the key, never the value, when it
    holds a control character or text that is not UTF-8: it goes into an ``Authorization`` header,
    where requests refuses it (InvalidHeader) and quotes it escaped, past the redaction."""
    value = data.get(key)
    return _header_text(value.strip() if isinstance(value, str) else "", key, source)


def _header_text(text: str, key: str, source: str) -> str:
    """``text`` unless it holds a control character or is not UTF-8 (see :func:`_text`)."""
    if text and unusable_secret(text):
        raise ConfigError(f"{source}: `{key}` holds a control character or bytes that are not UTF-8")
    return text


def _from_entry(entry: object, source: str) -> Credentials | None:
    """An ``auths`` entry; None when it holds no secret (then the credential store has it)."""
    if not isinstance(entry, dict):
        return None
    user, password = _text(entry, "username", source), _text(entry, "password", source)
    encoded = _text(entry, "auth", source)
    if encoded:
        try:
            decoded = base64.b64decode(encoded, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            decoded = ""
        user, sep, password = decoded.partition(":")
        if not sep:
            raise ConfigError(f"{source}: `auth` is not base64 of user:password; run docker login again")
        _header_text(password, "auth", source)  # the decoded secret obeys the same rule
    identity, registry_token = _text(entry, "identitytoken", source), _text(entry, "registrytoken", source)
    if not (password or identity or registry_token):
        return None
    return Credentials(
        user=user, password=password, identity_token=identity, registry_token=registry_token, source=source
    )


def _from_helper(helper: str, host: str, key: str) -> Credentials | None:
    """Ask ``docker-credential-<helper> get`` (the docker-credential-helpers protocol)."""
    tool = f"docker-credential-{helper}"
    if proc.which(tool) is None:
        proc.echo(f"# docker config names {tool}, which is not on PATH: no credentials for {host}")
        return None
    result = proc.run((tool, "get"), read_only=True, check=False, stdin=key, timeout=HELPER_TIMEOUT)
    if not result.ok:
        # "credentials not found in native keychain" (exit 1): this helper has none for the host.
        return None
    try:
        data = parse_json(result.stdout)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise ConfigError(f"{tool} get answered something that is not its JSON; check the helper")
    source = f"credential helper {tool}"
    user, secret = _text(data, "Username", source), _text(data, "Secret", source)
    if not secret:
        return None
    if user == TOKEN_USER:
        return Credentials(identity_token=secret, source=source)
    return Credentials(user=user, password=secret, source=source)


def lookup(host: str, env: Mapping[str, str] | None = None) -> Credentials | None:
    """The docker CLI's credentials for registry ``host`` (``ghcr.io``, ``127.0.0.1:5000``), if any."""
    source_env = os.environ if env is None else env
    path = config_path(source_env)
    config = _read_config(path) if path else None
    if config is None or path is None:
        return None
    keys = _keys(host)
    helpers = config.get("credHelpers")
    if isinstance(helpers, dict):
        for key in keys:
            helper = helpers.get(key)
            if isinstance(helper, str) and helper:
                found = _from_helper(helper, host, key)
                if found:
                    found.register()
                return found
    auths = config.get("auths")
    entries = auths if isinstance(auths, dict) else {}
    matched = [k for k in keys if k in entries] or [
        k for k in entries if isinstance(k, str) and _hostname(k) in keys
    ]
    for key in matched:
        found = _from_entry(entries[key], f"docker config {path} (auths {key!r})")
        if found:
            found.register()
            return found
    store = config.get("credsStore")
    if isinstance(store, str) and store:
        found = _from_helper(store, host, matched[0] if matched else keys[0])
        if found:
            found.register()
        return found
    return None
