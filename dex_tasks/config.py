"""``[tool.dex]`` from the nearest pyproject.toml, read once into frozen, keyword-only dataclasses.

Defaults are the DEX layout (README "Configuration"). Unknown keys and wrong types raise :class:`ConfigError`
(exit 2) naming ``file:key`` with a difflib suggestion, like cibuildwheel's ``options.py``.
"""

from __future__ import annotations

import dataclasses
import math
import re
import tomllib
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path, PureWindowsPath
from typing import Any

from dex_tasks._untrusted import control_character
from dex_tasks.errors import ConfigError, UsageError

ENV_NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$")


# An image name as docker's reference grammar (distribution/reference) has it: an optional
# registry host (with port), then lowercase path components.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_DOMAIN = rf"{_LABEL}(?:\.{_LABEL})*(?::[0-9]+)?"
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
IMAGE_NAME_RE = re.compile(rf"(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*")

DEFAULT_BRANCHES = {"dev": "dev", "stage": "main", "prod": "main"}
# The runbook's PR title for prod is "Promote <tag> to Production"; `env-titles` adds to this.
DEFAULT_ENV_TITLES = {"prod": "Production"}


@dataclasses.dataclass(frozen=True, kw_only=True)
class ScanConfig:
    """``[tool.dex.scan]``: the trivy gate."""

    fail_on: tuple[str, ...] = ("CRITICAL",)
    warn_on: tuple[str, ...] = ("HIGH",)
    sarif: str = "reports/trivy.sarif"
    ignore_unfixed: bool = False
    timeout: int = 900
    # Envs that take only a digest whose newest scan verdict (in the registry) passed.
    required_for: tuple[str, ...] = ("prod",)


@dataclasses.dataclass(frozen=True, kw_only=True)
class TestConfig:
    """``[tool.dex.test]``: pytest and coverage."""

    __test__ = False  # not a pytest test class, despite the name

    coverage_fail_under: float = 80
    coverage_xml: str = "coverage.xml"
    junit_xml: str = "reports/junit.xml"
    timeout: int = 3600


@dataclasses.dataclass(frozen=True, kw_only=True)
class LintConfig:
    """``[tool.dex.lint]``: ruff and mypy."""

    paths: tuple[str, ...] = ()  # empty: the package and tests/
    mypy: bool = True
    timeout: int = 900


@dataclasses.dataclass(frozen=True, kw_only=True)
class SecurityConfig:
    """``[tool.dex.security]``: semgrep."""

    configs: tuple[str, ...] = ()  # extra semgrep configs on top of the bundled rules
    fail_on: tuple[str, ...] = ("ERROR",)  # semgrep severities: ERROR, WARNING, INFO
    sarif: str = "reports/semgrep.sarif"
    paths: tuple[str, ...] = ()  # empty: the project root
    timeout: int = 900


@dataclasses.dataclass(frozen=True, kw_only=True)
class BuildConfig:
    """``[tool.dex.build]``: docker build."""

    dockerfile: str = "Dockerfile"
    context: str = "."
    args: Mapping[str, str] = dataclasses.field(default_factory=dict)
    platforms: tuple[str, ...] = ()
    timeout: int = 3600


@dataclasses.dataclass(frozen=True, kw_only=True)
class ClusterConfig:
    """``[tool.dex.cluster]``: kubectl, previews and health checks."""

    context: str = ""  # kubectl context; empty: the kubeconfig's current context
    health_urls: Mapping[str, str] = dataclasses.field(default_factory=dict)  # env -> URL for `verify`
    health_path: str = "/health"
    service: str = "dex"
    service_port: int = 8000  # the runbook's: kubectl port-forward -n dex-pr-42 svc/dex 8000:8000
    preview_namespace: str = "dex-pr-{pr}"
    preview_app: str = "dex-pr-{pr}"
    rollout_timeout: int = 300
    argocd_prune: bool = False  # `argocd app sync --prune` for rollback --sync
    contexts: Mapping[str, str] = dataclasses.field(default_factory=dict)  # env -> kube context
    argocd_servers: Mapping[str, str] = dataclasses.field(default_factory=dict)  # env -> Argo CD server
    workload: str = "Deployment"  # or "Rollout" (Argo Rollouts): what `status` and `verify` read


@dataclasses.dataclass(frozen=True, kw_only=True)
class MetricsTargets:
    """``[tool.dex.metrics] targets``: the runbook's targets the metrics are set against."""

    ci_seconds: float = 120
    build_seconds: float = 180
    sync_seconds: float = 30
    ci_pass_rate: float = 0.95
    cd_success_rate: float = 0.99


@dataclasses.dataclass(frozen=True, kw_only=True)
class MetricsConfig:
    """``[tool.dex.metrics]``: which workflows are CI and CD, and the targets (``metrics``)."""

    workflows: Mapping[str, str] = dataclasses.field(default_factory=lambda: {"ci": "ci.yml", "cd": "cd.yml"})
    targets: MetricsTargets = dataclasses.field(default_factory=MetricsTargets)


@dataclasses.dataclass(frozen=True, kw_only=True)
class NotifyConfig:
    """``[tool.dex.notify]``: envs that notify (empty: all); the targets come from the environment."""

    envs: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config:
    """The resolved configuration. ``from_file`` holds the dotted keys the file set."""

    image: str = "ghcr.io/data-literate/dex"
    kustomize_image: str = ""  # empty: image minus the registry host
    overlays: str = "infra/argocd/overlays"
    environments: tuple[str, ...] = ("dev", "stage", "prod")
    namespace: str = "dex-{env}"
    argocd_app: str = "dex-{env}"
    deployment: str = "dex"
    container: str = "dex"
    default_branch: str = "main"
    branches: Mapping[str, str] = dataclasses.field(default_factory=lambda: dict(DEFAULT_BRANCHES))
    env_titles: Mapping[str, str] = dataclasses.field(default_factory=dict)  # merged with DEFAULT_ENV_TITLES
    package: str = ""  # empty: guessed from [project].name
    soak: Mapping[str, str] = dataclasses.field(default_factory=dict)  # env -> duration FROM must run a tag
    freeze: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)  # env -> windows
    registry_check: str = "require"  # or "off": never ask the registry (no digests, no scan gate)
    pin_digest: tuple[str, ...] = ()  # envs whose overlays also carry `digest: sha256:...`
    sign_commits: tuple[str, ...] = ()  # envs whose overlay commits git must sign (gpg or ssh)
    scan: ScanConfig = dataclasses.field(default_factory=ScanConfig)
    test: TestConfig = dataclasses.field(default_factory=TestConfig)
    lint: LintConfig = dataclasses.field(default_factory=LintConfig)
    security: SecurityConfig = dataclasses.field(default_factory=SecurityConfig)
    build: BuildConfig = dataclasses.field(default_factory=BuildConfig)
    cluster: ClusterConfig = dataclasses.field(default_factory=ClusterConfig)
    metrics: MetricsConfig = dataclasses.field(default_factory=MetricsConfig)
    notify: NotifyConfig = dataclasses.field(default_factory=NotifyConfig)

    root: Path = dataclasses.field(default_factory=Path.cwd)
    path: Path | None = None
    from_file: frozenset[str] = frozenset()
    project_name: str = ""  # [project].name, kept from the one parse of the file for package_dir()

    # -- derived values ------------------------------------------------------------------------
    @property
    def kustomize_image_name(self) -> str:
        return self.kustomize_image or strip_registry(self.image)

    def check_env(self, env: str) -> str:
        """Return ``env`` if it is a configured environment, else raise UsageError (exit 2)."""
        if not ENV_NAME_RE.fullmatch(env):  # fullmatch: `$` alone lets "dev\n" through
            raise UsageError(f"invalid environment name {env!r}: use lowercase letters, digits and '-'")
        if env not in self.environments:
            raise UsageError(
                f"unknown environment {env!r}: configured environments are {', '.join(self.environments)}"
                + _suggest(env, self.environments)
            )
        return env

    def signs(self, envs: typing.Iterable[str]) -> bool:
        """Whether a commit touching ``envs`` must be signed: when any of them is in sign-commits."""
        return any(env in self.sign_commits for env in envs)

    def branch_for(self, env: str) -> str:
        return self.branches.get(env, self.default_branch)

    def env_title(self, env: str) -> str:
        """How PR titles name ``env``: ``env-titles`` over the default ``{prod = "Production"}``,
        else the name capitalised (``stage`` -> ``Stage``)."""
        titles = {**DEFAULT_ENV_TITLES, **self.env_titles}
        return titles.get(env) or env.title()

    def overlay_dir(self, env: str) -> Path:
        """Overlay directory of ``env`` relative to the repository root."""
        return Path(self.overlays) / self.check_env(env)

    def overlay_file(self, env: str) -> Path:
        return self.overlay_dir(env) / "kustomization.yaml"

    def namespace_for(self, env: str) -> str:
        return self.namespace.format(env=env)

    def app_for(self, env: str) -> str:
        return self.argocd_app.format(env=env)

    def next_env(self, env: str) -> str | None:
        index = self.environments.index(self.check_env(env))
        return self.environments[index + 1] if index + 1 < len(self.environments) else None

    def package_dir(self) -> str | None:
        """The project's import package (for lint paths and coverage), if it can be found."""
        if self.package:
            return self.package
        if not self.project_name:
            return None
        candidate = self.project_name.replace("-", "_").replace(".", "_").lower()
        for base in (self.root, self.root / "src"):
            if (base / candidate / "__init__.py").is_file():
                return str((base / candidate).relative_to(self.root))
        return None


def strip_registry(image: str) -> str:
    """``ghcr.io/org/app`` -> ``org/app``; a first component with a dot, colon or 'localhost' is a host."""
    first, sep, rest = image.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return rest
    return image


def _project_name(data: Mapping[str, object]) -> str:
    project = data.get("project")
    name = project.get("name") if isinstance(project, dict) else None
    return name if isinstance(name, str) else ""


def _suggest(key: str, known: typing.Iterable[str]) -> str:
    # Case-insensitive: 'critical' and 'eror' should point at 'CRITICAL' and 'ERROR'.
    by_lower = {name.lower(): name for name in known}
    import difflib  # noqa: PLC0415 - only an unknown key needs it, not every start

    matches = difflib.get_close_matches(key.lower(), list(by_lower), n=1, cutoff=0.6)
    return f"; did you mean {by_lower[matches[0]]!r}?" if matches else ""


def _nearest(start: Path, name: str, found: Callable[[Path], bool]) -> Path | None:
    """The nearest ``name`` in ``start`` or above for which ``found`` is true."""
    for directory in (start, *start.parents):
        if found(candidate := directory / name):
            return candidate
    return None


def _repository_root(start: Path) -> Path | None:
    """The nearest directory at or above ``start`` holding ``.git`` (a directory, or a file in a
    worktree or submodule); found without starting git, as config is read on every call."""
    git = _nearest(start, ".git", Path.exists)
    return git.parent if git else None


def find_pyproject(start: Path) -> Path | None:
    """The nearest pyproject.toml at or above ``start``."""
    return _nearest(start.resolve(), "pyproject.toml", Path.is_file)


def _toml_key(field_name: str) -> str:
    return field_name.replace("_", "-")


def _describe(value: object) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list",
            dict: "a table"}.get(type(value), type(value).__name__)  # fmt: skip


def _clean(value: str, where: str) -> str:
    """``value`` unless it holds a control character (TOML allows ``"\u0000"``).

    Every string here ends up in an argv, a path, a git ref or a line of output, and a NUL there
    is ``ValueError: embedded null byte`` deep inside a task; a newline or an escape sequence
    would forge output. Refused when the file is read, naming the key.
    """
    bad = control_character(value)
    if bad is not None:
        raise ConfigError(f"{where}: control character {bad} is not allowed in {value!r}")
    return value


def _number(value: object, hint: type[int | float], where: str) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value):  # TOML has nan and inf; no timeout or threshold means that
            raise ConfigError(f"{where}: expected a finite number, got {value}")
        if hint is int and isinstance(value, float) and not value.is_integer():
            # int(1.5) would silently become 1 second: say so instead.
            raise ConfigError(f"{where}: expected a whole number, got {value}")
        return hint(value)
    raise ConfigError(f"{where}: expected a number, got {_describe(value)}")


def _convert(value: object, hint: Any, where: str) -> object:
    """Check ``value`` against a field type hint and convert lists to tuples."""
    origin = typing.get_origin(hint)
    if hint is str:
        if isinstance(value, str):
            return _clean(value, where)
        raise ConfigError(f"{where}: expected a string, got {_describe(value)}")
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true or false, got {_describe(value)}")
    if hint is int or hint is float:
        return _number(value, hint, where)
    if origin is tuple:
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(_clean(v, f"{where}[{i}]") for i, v in enumerate(value))
        raise ConfigError(f"{where}: expected a list of strings, got {_describe(value)}")
    if origin is Mapping or origin is dict:
        return _table(value, typing.get_args(hint)[1], where)
    if isinstance(hint, types.UnionType):  # pragma: no cover - no optional fields today
        return value
    raise TypeError(f"unsupported config type {hint!r}")  # pragma: no cover - programming error


def _table(value: object, hint: Any, where: str) -> dict[str, object]:
    """A table keyed by env: of strings, or (``[tool.dex.freeze]``) of lists of strings."""
    if hint is not str:
        if isinstance(value, dict):
            return {_clean(k, f"{where} (a key)"): _convert(v, hint, f"{where}.{k}")
                    for k, v in value.items()}  # fmt: skip
        raise ConfigError(f'{where}: expected a table of lists of strings, e.g. {{ prod = ["..."] }}')
    if isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
        return {_clean(k, f"{where} (a key)"): _clean(v, f"{where}.{k}") for k, v in value.items()}
    raise ConfigError(f'{where}: expected a table of strings, e.g. {{ dev = "..." }}')


def _build(
    cls: type[Any], table: Mapping[str, object], prefix: str, file_label: str, seen: set[str]
) -> dict[str, object]:
    fields = {_toml_key(f.name): f for f in dataclasses.fields(cls) if f.init and f.name not in _INTERNAL}
    kwargs: dict[str, object] = {}
    for key, value in table.items():
        dotted = f"{prefix}.{key}"
        field = fields.get(key)
        if field is None:
            shown = dotted if control_character(dotted) is None else repr(dotted)  # stays one line
            raise ConfigError(f"{file_label}: unknown key {shown}" + _suggest(key, fields))
        hint = _hint(field)
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            if not isinstance(value, dict):
                raise ConfigError(f"{file_label}: {dotted} must be a table ([{dotted}])")
            kwargs[field.name] = hint(**_build(hint, value, dotted, file_label, seen))
        else:
            kwargs[field.name] = _convert(value, hint, f"{file_label}: {dotted}")
            seen.add(dotted.removeprefix("tool.dex."))
    return kwargs


_INTERNAL = frozenset({"root", "path", "from_file", "project_name"})
# Annotations are strings (``from __future__ import annotations``). typing.get_type_hints evaluates
# every field of a class, a compile each, on every load (29 per `dex-tasks config`); only the keys
# the file sets need theirs, and the same few spellings (``str``, ``tuple[str, ...]``) recur, so
# each spelling is evaluated once, here, in this module's namespace as get_type_hints would.
_HINTS: dict[str, object] = {"str": str, "bool": bool, "int": int, "float": float}


def _hint(field: dataclasses.Field[Any]) -> Any:
    spelling = field.type
    if not isinstance(spelling, str):  # pragma: no cover - every annotation here is a string
        return spelling
    if spelling not in _HINTS:
        _HINTS[spelling] = eval(spelling, globals())  # noqa: S307 - our own annotations, not input
    return _HINTS[spelling]


def load(start: Path | None = None) -> Config:
    """Read the nearest pyproject.toml's ``[tool.dex]`` (or the defaults if there is none)."""
    start = (start or Path.cwd()).resolve()
    path = find_pyproject(start)
    if path is None:
        # No pyproject (e.g. an infra-only repository): paths such as `overlays` are relative to
        # the repository's top level, not to whichever subdirectory the command ran in.
        return Config(root=_repository_root(start) or start)
    try:
        text = path.read_text(encoding="utf-8")
        if text.startswith("\ufeff"):
            # Some Windows editors save one; tomllib (as pip's build) reads it as an invalid statement.
            raise ConfigError(
                f"{path}: starts with a UTF-8 byte order mark (BOM): save it as UTF-8 without one"
            )
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    except RecursionError:  # tomllib recurses per nesting level of arrays and inline tables
        raise ConfigError(f"{path}: invalid TOML: nested too deeply to parse") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 (TOML must be): {exc.reason} at byte {exc.start}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    tool = data.get("tool", {})
    if not isinstance(tool, dict):
        raise ConfigError(f"{path}: tool must be a table ([tool])")
    table = tool.get("dex", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: tool.dex must be a table ([tool.dex])")
    seen: set[str] = set()
    kwargs = _build(Config, table, "tool.dex", str(path), seen)
    if "branches" not in kwargs and "environments" in kwargs:
        # The default branches name dev/stage/prod: with other environments they are only a
        # default for those that exist (the rest use default-branch), not an error about a key
        # the file never set.
        environments = typing.cast("tuple[str, ...]", kwargs["environments"])
        kwargs["branches"] = {env: branch for env, branch in DEFAULT_BRANCHES.items() if env in environments}
    if "overlays" in kwargs:
        if not str(kwargs["overlays"]).strip():  # "" would be the project root: every env's dir at the top
            raise ConfigError(f"{path}: tool.dex.overlays must not be empty")
        kwargs["overlays"] = _inside_path(str(kwargs["overlays"]), f"{path}: tool.dex.overlays")
    config = Config(
        **kwargs,  # type: ignore[arg-type]
        root=path.parent,
        path=path,
        from_file=frozenset(seen),
        project_name=_project_name(data),
    )
    if "scan.required-for" not in seen:
        # Like branches: the default ("prod") applies only where such an env exists.
        scan = dataclasses.replace(
            config.scan, required_for=tuple(e for e in config.scan.required_for if e in config.environments)
        )
        config = dataclasses.replace(config, scan=scan)
    _validate(config, str(path))
    return config


def _validate_env_tables(config: Config, file_label: str) -> None:
    """Tables keyed by env: known envs, and no empty string values."""
    tables: dict[str, Mapping[str, object]] = {
        "branches": config.branches, "env-titles": config.env_titles, "soak": config.soak,
        "freeze": config.freeze, "cluster.contexts": config.cluster.contexts,
        "cluster.argocd-servers": config.cluster.argocd_servers,
        "cluster.health-urls": config.cluster.health_urls,
    }  # fmt: skip
    for key, table in tables.items():
        _known_envs(config, key, table, file_label)
        for env, value in table.items():
            if isinstance(value, str) and not value.strip():
                raise ConfigError(f"{file_label}: tool.dex.{key}.{env} must not be empty")


def _validate_branches(config: Config, file_label: str) -> None:
    """Branch names git accepts, named by their key here, not as "invalid branch name" from the
    first task that fetches one (``-dev`` would be an option to git; ``main~1`` is no branch)."""
    named = {f"branches.{env}": branch for env, branch in config.branches.items()}
    if "default-branch" in config.from_file:
        named["default-branch"] = config.default_branch
    if not ({"branches", "default-branch"} & config.from_file):
        return  # the defaults are valid: no need to import the git tool on every start
    from dex_tasks.tools.git import check_ref_name  # noqa: PLC0415 - only configs that set branches

    for key, branch in named.items():
        try:
            check_ref_name(branch)
        except UsageError as exc:
            raise ConfigError(f"{file_label}: tool.dex.{key}: {exc}") from None


def _inside_path(value: str, where: str) -> str:
    """A path that stays inside the project, in git's spelling (``/``), the same on every OS.

    The overlays are written: an absolute path or one that climbs out with ``..`` would make
    bump-overlay rewrite files outside the repository. ``\\`` is a separator too (a Windows user's
    ``infra\\argocd\\overlays``), so ``..\\..`` and ``C:\\x`` are caught on every OS alike.
    """
    posix = value.replace("\\", "/")
    windows = PureWindowsPath(value)
    if posix.startswith("/") or windows.drive or windows.root or _DRIVE_RE.match(posix):
        raise ConfigError(f"{where}: {value!r} is an absolute path; use a path relative to the project")
    parts = [part for part in posix.split("/") if part not in {"", "."}]
    if ".." in parts:
        raise ConfigError(f"{where}: {value!r} climbs out with '..'; use a path inside the project")
    return "/".join(parts) or "."


_DRIVE_RE = re.compile(r"^[A-Za-z]:")  # "C:x" is drive-relative on Windows: not inside the project


def _validate(config: Config, file_label: str) -> None:
    if not config.environments:
        raise ConfigError(f"{file_label}: tool.dex.environments must not be empty")
    if len(set(config.environments)) != len(config.environments):
        raise ConfigError(f"{file_label}: tool.dex.environments has duplicates")
    for env in config.environments:
        if not ENV_NAME_RE.fullmatch(env):
            raise ConfigError(f"{file_label}: tool.dex.environments: invalid environment name {env!r}")
    _validate_env_tables(config, file_label)
    _validate_branches(config, file_label)
    _known_envs(config, "sign-commits", config.sign_commits, file_label)
    for key, template, names in (
        ("namespace", config.namespace, {"env"}),
        ("argocd-app", config.argocd_app, {"env"}),
        ("cluster.preview-namespace", config.cluster.preview_namespace, {"pr"}),
        ("cluster.preview-app", config.cluster.preview_app, {"pr"}),
    ):
        try:
            template.format(**dict.fromkeys(names, "x"))
        except (KeyError, IndexError, ValueError, AttributeError, TypeError) as exc:  # "{env.x}", "{env[a]}"
            raise ConfigError(
                f"{file_label}: tool.dex.{key}: bad template {template!r} "
                f"(only {{{next(iter(names))}}} is known)"
            ) from exc
    if not config.image.strip():
        raise ConfigError(f"{file_label}: tool.dex.image must not be empty")
    last = config.image.rsplit("/", 1)[-1]
    if ":" in last or "@" in last:
        raise ConfigError(f"{file_label}: tool.dex.image must not carry a tag or digest: {config.image!r}")
    if not IMAGE_NAME_RE.fullmatch(config.image):
        # Caught here (exit 2) instead of as docker's "invalid reference format" after a build setup.
        raise ConfigError(
            f"{file_label}: tool.dex.image {config.image!r} is not an image reference "
            "(lowercase letters, digits, '.', '_', '-' and '/', optionally a registry host first)"
        )
    _validate_timeouts(config, file_label)
    _validate_severities(config, file_label)
    _validate_controls(config, file_label)
    _validate_registry(config, file_label)
    _validate_insight(config, file_label)


def _validate_controls(config: Config, file_label: str) -> None:
    """``soak`` durations and ``freeze`` windows parse (their envs: :func:`_validate_env_tables`)."""
    if config.soak:
        from dex_tasks.durations import parse_duration  # noqa: PLC0415 - only configs with a soak

        for env, text in config.soak.items():
            try:
                parse_duration(text)
            except UsageError as exc:
                raise ConfigError(f"{file_label}: tool.dex.soak.{env}: {exc}") from None
    if config.freeze:
        from dex_tasks.controls.freeze import parse_window  # noqa: PLC0415 - zoneinfo only when used

        for env, windows in config.freeze.items():
            for index, text in enumerate(windows):
                try:
                    parse_window(text)
                except ValueError as exc:
                    raise ConfigError(f"{file_label}: tool.dex.freeze.{env}[{index}]: {exc}") from None


REGISTRY_CHECKS = ("require", "off")
WORKLOADS = ("Deployment", "Rollout")


def _validate_registry(config: Config, file_label: str) -> None:
    if config.cluster.workload not in WORKLOADS:
        raise ConfigError(
            f"{file_label}: tool.dex.cluster.workload: {config.cluster.workload!r} is not "
            + " or ".join(repr(w) for w in WORKLOADS)
            + _suggest(str(config.cluster.workload), WORKLOADS)
        )
    if config.registry_check not in REGISTRY_CHECKS:
        raise ConfigError(
            f"{file_label}: tool.dex.registry-check: {config.registry_check!r} is not "
            + " or ".join(repr(c) for c in REGISTRY_CHECKS)
            + _suggest(config.registry_check, REGISTRY_CHECKS)
        )
    for key, envs in (("pin-digest", config.pin_digest), ("scan.required-for", config.scan.required_for)):
        _known_envs(config, key, envs, file_label)


def _validate_insight(config: Config, file_label: str) -> None:
    """``[tool.dex.metrics]`` and ``[tool.dex.notify]``: known envs, positive targets, rates in 0..1."""
    _known_envs(config, "notify.envs", config.notify.envs, file_label)
    for field in dataclasses.fields(MetricsTargets):
        value = getattr(config.metrics.targets, field.name)
        rate = field.name.endswith("rate")
        if value <= 0 or (rate and value > 1):
            want = "a rate above 0 and at most 1" if rate else "a positive number of seconds"
            raise ConfigError(
                f"{file_label}: tool.dex.metrics.targets.{_toml_key(field.name)}: expected {want}"
            )
    for name, workflow in config.metrics.workflows.items():
        if name not in {"ci", "cd"}:
            raise ConfigError(f"{file_label}: tool.dex.metrics.workflows: unknown key {name!r} (ci, cd)")
        if not re.fullmatch(r"[A-Za-z0-9_.-]+\.ya?ml", workflow):
            raise ConfigError(
                f"{file_label}: tool.dex.metrics.workflows.{name}: expected a workflow file name like ci.yml"
            )


def _known_envs(config: Config, key: str, envs: typing.Iterable[str], file_label: str) -> None:
    """Every env a key lists must be a configured environment: a typo must not switch a control off."""
    for env in envs:
        if env not in config.environments:
            raise ConfigError(
                f"{file_label}: tool.dex.{key}: {env!r} is not in environments"
                + _suggest(env, config.environments)
            )


# A week: longer than any CI job may run (5 days on a self-hosted Actions runner), so a canary with
# day-long pauses can still be watched, and far below where a Go duration overflows (~292 years:
# kubectl and argocd would refuse 1e300 s as an invalid duration).
MAX_ROLLOUT_TIMEOUT = 7 * 86400


def _validate_timeouts(config: Config, file_label: str) -> None:
    for section in ("scan", "test", "lint", "security", "build"):
        if getattr(config, section).timeout <= 0:  # a timeout of 0 or less ends every command at once
            raise ConfigError(f"{file_label}: tool.dex.{section}.timeout must be a positive number (seconds)")
    # Checked here as well as where they are used (cluster.py), so that a bad value is exit 2 for
    # every task that reads the file, before anything runs, not only once a cluster task gets to it.
    cluster = config.cluster
    if not 0 < cluster.rollout_timeout <= MAX_ROLLOUT_TIMEOUT:  # 0 is "wait for ever" to kubectl
        raise ConfigError(
            f"{file_label}: tool.dex.cluster.rollout-timeout must be a positive number of seconds "
            f"(at most {MAX_ROLLOUT_TIMEOUT}), got {cluster.rollout_timeout}"
        )
    if not 0 < cluster.service_port <= 65535:  # the TCP port range
        raise ConfigError(
            f"{file_label}: tool.dex.cluster.service-port must be a TCP port (1-65535), "
            f"got {cluster.service_port}"
        )
    for env, url in cluster.health_urls.items():
        # verify would read a typo as "the env is down"; a scheme is case-insensitive (RFC 3986).
        if not url.lower().startswith(("http://", "https://")):
            raise ConfigError(
                f"{file_label}: tool.dex.cluster.health-urls.{env} must be an http(s) URL, got {url!r}"
            )
    if not 0 <= config.test.coverage_fail_under <= 100:  # a percentage
        raise ConfigError(
            f"{file_label}: tool.dex.test.coverage-fail-under must be a percentage (0-100), "
            f"got {config.test.coverage_fail_under:g}"
        )


def _validate_severities(config: Config, file_label: str) -> None:
    for severity in (*config.scan.fail_on, *config.scan.warn_on):
        if severity not in SEVERITIES:
            raise ConfigError(
                f"{file_label}: tool.dex.scan: unknown severity {severity!r}" + _suggest(severity, SEVERITIES)
            )
    for severity in config.security.fail_on:
        if severity.upper() not in SEMGREP_SEVERITIES:
            # A typo here would silently make the security gate pass everything.
            raise ConfigError(
                f"{file_label}: tool.dex.security.fail-on: unknown semgrep severity {severity!r} "
                f"(known: {', '.join(SEMGREP_SEVERITIES)})" + _suggest(severity, SEMGREP_SEVERITIES)
            )


SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN")
# semgrep's rule severities: the classic three and the newer CRITICAL..LOW scale.
SEMGREP_SEVERITIES = ("ERROR", "WARNING", "INFO", "CRITICAL", "HIGH", "MEDIUM", "LOW")


def as_dict(config: Config) -> dict[str, object]:
    """The resolved configuration as TOML-shaped data (kebab-case keys), for ``dex-tasks config``."""

    def convert(obj: object) -> object:
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            return {
                _toml_key(f.name): convert(getattr(obj, f.name))
                for f in dataclasses.fields(obj)
                if f.name not in _INTERNAL
            }
        if isinstance(obj, tuple):
            return list(obj)
        if isinstance(obj, Mapping):
            return dict(obj)
        return obj

    result = convert(config)
    assert isinstance(result, dict)  # noqa: S101 - Config is a dataclass
    result["kustomize-image"] = config.kustomize_image_name
    return result
