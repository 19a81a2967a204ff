"""config: [tool.dex] into frozen dataclasses; defaults, walk-up, unknown keys, wrong types."""

from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from dex_tasks import config
from dex_tasks.errors import ConfigError, UsageError

if TYPE_CHECKING:
    from tests.conftest import CliRunner


def _project(root: Path, dex: str = "", project: str = '[project]\nname = "demo-app"\n') -> Path:
    root.mkdir(parents=True, exist_ok=True)
    path = root / "pyproject.toml"
    path.write_text(project + dex, encoding="utf-8")
    return path


def test_defaults_without_pyproject(tmp_path: Path) -> None:
    cfg = config.load(tmp_path)
    assert cfg.path is None
    assert cfg.root == tmp_path.resolve()
    assert cfg.image == "ghcr.io/data-literate/dex"
    assert cfg.kustomize_image_name == "data-literate/dex"
    assert cfg.environments == ("dev", "stage", "prod")
    assert cfg.overlay_file("prod") == Path("infra/argocd/overlays/prod/kustomization.yaml")
    assert cfg.namespace_for("stage") == "dex-stage"
    assert cfg.app_for("prod") == "dex-prod"
    assert cfg.branch_for("dev") == "dev"
    assert cfg.branch_for("prod") == "main"
    assert cfg.next_env("stage") == "prod"
    assert cfg.next_env("prod") is None
    assert cfg.scan.fail_on == ("CRITICAL",)
    assert cfg.test.coverage_fail_under == 80
    assert cfg.from_file == frozenset()


def test_without_pyproject_the_root_is_the_repository_top_level(tmp_path: Path) -> None:
    # Regression: in a repository without pyproject.toml the root was the current directory, so
    # `history dev` run from infra/ looked for infra/infra/argocd/overlays/dev/kustomization.yaml.
    (tmp_path / ".git").mkdir()
    sub = tmp_path / "infra" / "argocd"
    sub.mkdir(parents=True)
    cfg = config.load(sub)
    assert cfg.path is None
    assert cfg.root == tmp_path.resolve()


def test_config_is_frozen(tmp_path: Path) -> None:
    cfg = config.load(tmp_path)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.image = "x"  # type: ignore[misc]  # the point: assignment must fail


def test_walks_up_from_a_subdirectory(tmp_path: Path) -> None:
    path = _project(tmp_path, '[tool.dex]\nimage = "registry.example.com:5000/team/app"\n')
    sub = tmp_path / "src" / "deep"
    sub.mkdir(parents=True)
    cfg = config.load(sub)
    assert cfg.path == path.resolve()
    assert cfg.root == tmp_path.resolve()
    assert cfg.image == "registry.example.com:5000/team/app"
    assert cfg.kustomize_image_name == "team/app"


def test_file_values_and_from_file_tracking(tmp_path: Path) -> None:
    _project(
        tmp_path,
        '[tool.dex]\nenvironments = ["dev", "qa", "prod"]\nbranches = { qa = "release" }\n'
        'namespace = "shop-{env}"\n'
        "[tool.dex.test]\ncoverage-fail-under = 91.5\n"
        '[tool.dex.scan]\nfail-on = ["CRITICAL", "HIGH"]\n',
    )
    cfg = config.load(tmp_path)
    assert cfg.environments == ("dev", "qa", "prod")
    assert cfg.branch_for("qa") == "release"
    assert cfg.branch_for("prod") == "main"  # not in the table: the default branch
    assert cfg.namespace_for("qa") == "shop-qa"
    assert cfg.test.coverage_fail_under == 91.5
    assert cfg.scan.fail_on == ("CRITICAL", "HIGH")
    assert cfg.from_file == {
        "environments",
        "branches",
        "namespace",
        "test.coverage-fail-under",
        "scan.fail-on",
    }


def test_no_tool_dex_table_is_all_defaults(tmp_path: Path) -> None:
    path = _project(tmp_path)
    cfg = config.load(tmp_path)
    assert cfg.path == path.resolve()
    assert cfg.from_file == frozenset()
    assert cfg.image == "ghcr.io/data-literate/dex"


def test_unknown_key_names_it_and_suggests(tmp_path: Path) -> None:
    path = _project(tmp_path, '[tool.dex]\nimgae = "x"\n')
    with pytest.raises(ConfigError) as caught:
        config.load(tmp_path)
    message = str(caught.value)
    assert str(path.resolve()) in message
    assert "tool.dex.imgae" in message
    assert "did you mean 'image'?" in message
    assert caught.value.exit_code == 2


def test_unknown_nested_key_suggests_the_kebab_case_name(tmp_path: Path) -> None:
    _project(tmp_path, '[tool.dex.scan]\nfail_on = ["HIGH"]\n')
    with pytest.raises(ConfigError, match=r"tool\.dex\.scan\.fail_on; did you mean 'fail-on'\?"):
        config.load(tmp_path)


@pytest.mark.parametrize(
    ("toml", "where", "expected"),
    [
        ('environments = "dev"', "tool.dex.environments", "expected a list of strings, got a string"),
        ("image = 3", "tool.dex.image", "expected a string, got an integer"),
        ('branches = ["dev"]', "tool.dex.branches", "expected a table of strings"),
        (
            '[tool.dex.test]\ncoverage-fail-under = "high"',
            "tool.dex.test.coverage-fail-under",
            "expected a number",
        ),
        (
            "[tool.dex.test]\ncoverage-fail-under = true",
            "tool.dex.test.coverage-fail-under",
            "expected a number",
        ),
        ('[tool.dex.lint]\nmypy = "no"', "tool.dex.lint.mypy", "expected true or false"),
        ("[tool.dex.lint]\ntimeout = 1.5", "tool.dex.lint.timeout", "expected a whole number, got 1.5"),
        ('scan = "strict"', "tool.dex.scan", "must be a table"),
    ],
)
def test_wrong_types_name_file_and_key(tmp_path: Path, toml: str, where: str, expected: str) -> None:
    path = _project(tmp_path, f"[tool.dex]\n{toml}\n")
    with pytest.raises(ConfigError) as caught:
        config.load(tmp_path)
    message = str(caught.value)
    assert message.startswith(f"{path.resolve()}: {where}")
    assert expected in message


def test_custom_environments_without_branches(tmp_path: Path) -> None:
    # Regression: the default branches (dev/stage/prod) were validated against custom environments,
    # so `environments = ["dev", "prod"]` alone failed with "branches: 'stage' is not in environments".
    _project(tmp_path, '[tool.dex]\nenvironments = ["dev", "prod"]\n')
    cfg = config.load(tmp_path)
    assert dict(cfg.branches) == {"dev": "dev", "prod": "main"}
    assert cfg.branch_for("dev") == "dev"
    _project(tmp_path, '[tool.dex]\nenvironments = ["qa", "live"]\ndefault-branch = "trunk"\n')
    cfg = config.load(tmp_path)
    assert dict(cfg.branches) == {}
    assert cfg.branch_for("live") == "trunk"
    assert "branches" not in cfg.from_file


def test_branches_with_unknown_env(tmp_path: Path) -> None:
    _project(tmp_path, '[tool.dex]\nbranches = { stagin = "main" }\n')
    with pytest.raises(ConfigError, match=r"'stagin' is not in environments; did you mean 'stage'\?"):
        config.load(tmp_path)


def test_sign_commits(tmp_path: Path) -> None:
    assert config.load(tmp_path).sign_commits == ()  # default: nothing signed by us
    _project(tmp_path, '[tool.dex]\nsign-commits = ["prod"]\n')
    cfg = config.load(tmp_path)
    assert cfg.sign_commits == ("prod",)
    assert "sign-commits" in cfg.from_file
    assert cfg.signs(("stage", "prod"))  # one commit for several envs: signed if any requires it
    assert not cfg.signs(("dev",))
    assert config.as_dict(cfg)["sign-commits"] == ["prod"]


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        (
            'sign-commits = ["prd"]',
            r"tool.dex.sign-commits: 'prd' is not in environments; did you mean 'prod'\?",
        ),
        ('sign-commits = "prod"', "sign-commits: expected a list of strings"),
        ('environments = ["a"]\nsign-commits = ["prod"]', "'prod' is not in environments"),
        ("environments = []", "must not be empty"),
        ('environments = ["dev", "dev"]', "duplicates"),
        ('environments = ["Prod"]', "invalid environment name 'Prod'"),
        ('image = "ghcr.io/x/app:1.0"', "must not carry a tag"),
        ('namespace = "dex-{stage}"', "bad template"),
        ('[tool.dex.scan]\nfail-on = ["CRITICIAL"]', "did you mean 'CRITICAL'"),
        # Regressions: these used to be tracebacks or silently accepted.
        ('[tool.dex.scan]\nfail-on = ["critical"]', "did you mean 'CRITICAL'"),
        ('namespace = "dex-{env.x}"', "bad template"),
        ('argocd-app = "dex-{env[a]}"', "bad template"),
        ('environments = ["dev\\n"]', "tool.dex.environments\\[0\\]: control character"),
        ('image = ""', "image must not be empty"),
        ('image = "ghcr.io/Data-Literate/Dex"', "is not an image reference"),
        ('image = "ghcr.io/dex app"', "is not an image reference"),
        ('[tool.dex.security]\nfail-on = ["BLOCKER"]', "unknown semgrep severity 'BLOCKER'"),
        ('[tool.dex.security]\nfail-on = ["eror"]', "did you mean 'ERROR'"),
    ],
)
def test_invalid_values(tmp_path: Path, toml: str, expected: str) -> None:
    _project(tmp_path, f"[tool.dex]\n{toml}\n")
    with pytest.raises(ConfigError, match=expected):
        config.load(tmp_path)


def test_invalid_toml_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.dex\nimage = ", encoding="utf-8")
    with pytest.raises(ConfigError, match="invalid TOML"):
        config.load(tmp_path)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b'tool = "x"\n', "tool must be a table"),
        (b'[tool.dex]\nimage = "\xff\xfe"\n', "not UTF-8"),
    ],
)
def test_broken_pyproject_is_a_config_error(tmp_path: Path, content: bytes, expected: str) -> None:
    # Regression: both were Python tracebacks (AttributeError, UnicodeDecodeError).
    (tmp_path / "pyproject.toml").write_bytes(content)
    with pytest.raises(ConfigError, match=expected):
        config.load(tmp_path)


def test_security_fail_on_accepts_semgrep_severities_in_any_case(tmp_path: Path) -> None:
    _project(tmp_path, '[tool.dex.security]\nfail-on = ["error", "WARNING", "HIGH"]\n')
    assert config.load(tmp_path).security.fail_on == ("error", "WARNING", "HIGH")


def test_check_env(tmp_path: Path) -> None:
    cfg = config.load(tmp_path)
    assert cfg.check_env("prod") == "prod"
    with pytest.raises(UsageError, match="did you mean 'stage'"):
        cfg.check_env("stag")
    with pytest.raises(UsageError, match="invalid environment name"):
        cfg.check_env("../prod")
    with pytest.raises(UsageError, match="invalid environment name"):
        cfg.check_env("prod\n")


def test_package_dir_is_guessed_from_the_project_name(tmp_path: Path) -> None:
    _project(tmp_path)
    assert config.load(tmp_path).package_dir() is None
    (tmp_path / "src" / "demo_app").mkdir(parents=True)
    (tmp_path / "src" / "demo_app" / "__init__.py").write_text("", encoding="utf-8")
    assert config.load(tmp_path).package_dir() == str(Path("src/demo_app"))
    _project(tmp_path, '[tool.dex]\npackage = "other"\n')
    assert config.load(tmp_path).package_dir() == "other"


def test_cli_unknown_key_exits_2_naming_it(tmp_path: Path, run_cli: CliRunner) -> None:
    _project(tmp_path, '[tool.dex]\nimgae = "x"\n')
    result = run_cli("config", cwd=tmp_path)
    assert result.code == 2
    assert "imgae" in result.err
    assert "did you mean 'image'?" in result.err
    assert len(result.err.strip().splitlines()) == 1  # one clear line
    assert result.out == ""


def test_cli_config_json(tmp_path: Path, run_cli: CliRunner) -> None:
    path = _project(
        tmp_path, '[tool.dex]\nimage = "ghcr.io/acme/shop"\n[tool.dex.test]\ncoverage-fail-under = 90\n'
    )
    result = run_cli("config", "--json", "-C", str(tmp_path))
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["task"] == "config"
    assert data["exit_code"] == 0
    assert data["path"] == str(path.resolve())
    assert data["from_file"] == ["image", "test.coverage-fail-under"]
    assert data["config"]["image"] == "ghcr.io/acme/shop"
    assert data["config"]["kustomize-image"] == "acme/shop"
    assert data["config"]["test"]["coverage-fail-under"] == 90
    assert data["config"]["environments"] == ["dev", "stage", "prod"]
    # Human output went to stderr so stdout is exactly one JSON object.
    assert "* image" in result.err


def test_cli_config_marks_file_values(tmp_path: Path, run_cli: CliRunner) -> None:
    _project(tmp_path, '[tool.dex]\nimage = "ghcr.io/acme/shop"\n')
    result = run_cli("config", cwd=tmp_path)
    assert result.code == 0
    assert '* image = "ghcr.io/acme/shop"' in result.out
    assert '  overlays = "infra/argocd/overlays"' in result.out


def test_env_titles_merge_with_the_runbook_default(tmp_path: Path) -> None:
    assert config.load(tmp_path).env_title("prod") == "Production"
    assert config.load(tmp_path).env_title("stage") == "Stage"
    _project(tmp_path, '[tool.dex]\nenv-titles = { stage = "Staging" }\n')
    cfg = config.load(tmp_path)
    assert (cfg.env_title("stage"), cfg.env_title("prod"), cfg.env_title("dev")) == (
        "Staging",
        "Production",
        "Dev",
    )
    _project(tmp_path, '[tool.dex]\nenv-titles = { prod = "Live" }\n')
    assert config.load(tmp_path).env_title("prod") == "Live"


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            'env-titles = { prd = "P" }',
            r"tool\.dex\.env-titles: 'prd' is not in environments; did you mean 'prod'",
        ),
        ('env-titles = { prod = " " }', r"tool\.dex\.env-titles\.prod must not be empty"),
        ("env-titles = { prod = 1 }", r"env-titles"),
    ],
)
def test_env_titles_are_validated(tmp_path: Path, toml: str, message: str) -> None:
    _project(tmp_path, f"[tool.dex]\n{toml}\n")
    with pytest.raises(ConfigError, match=message):
        config.load(tmp_path)


def test_service_port_defaults_to_the_runbook_s_8000(tmp_path: Path) -> None:
    assert config.load(tmp_path).cluster.service_port == 8000


# -- contract v2: the registry keys ----------------------------------------------------------------
def test_registry_keys_default_and_read(tmp_path: Path) -> None:
    cfg = config.load(tmp_path)
    assert (cfg.registry_check, cfg.pin_digest, cfg.scan.required_for) == ("require", (), ("prod",))
    _project(
        tmp_path / "p",
        '[tool.dex]\nregistry-check = "off"\npin-digest = ["prod"]\n'
        '[tool.dex.scan]\nrequired-for = ["stage"]\n',
    )
    cfg = config.load(tmp_path / "p")
    assert (cfg.registry_check, cfg.pin_digest, cfg.scan.required_for) == ("off", ("prod",), ("stage",))


def test_required_for_default_applies_only_to_an_existing_prod(tmp_path: Path) -> None:
    _project(tmp_path, '[tool.dex]\nenvironments = ["dev", "live"]\n')
    assert config.load(tmp_path).scan.required_for == ()


@pytest.mark.parametrize(
    ("dex", "message"),
    [
        ('[tool.dex]\nregistry-check = "of"\n', "did you mean 'off'"),
        ('[tool.dex]\nregistry-check = "required"\n', "did you mean 'require'"),
        (
            '[tool.dex]\npin-digest = ["prd"]\n',
            "tool.dex.pin-digest: 'prd' is not in environments; did you mean 'prod'",
        ),
        ('[tool.dex.scan]\nrequired-for = ["stag"]\n', "tool.dex.scan.required-for: 'stag'"),
        ("[tool.dex]\npin-digest = true\n", "expected a list of strings"),
    ],
)
def test_registry_keys_are_validated(tmp_path: Path, dex: str, message: str) -> None:
    _project(tmp_path, dex)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("[", r"\[")):
        config.load(tmp_path)


def _sections(cls: type) -> list[type]:
    """``cls`` and every config dataclass reachable from its fields."""
    found = [cls]
    for hint in typing.get_type_hints(cls).values():
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            found += _sections(hint)
    return found


def test_field_hints_are_what_get_type_hints_says() -> None:
    # load resolves a field's annotation itself (once per spelling); it must be the same type
    # typing.get_type_hints gives, for every field of every section, or a key would be checked
    # against the wrong type.
    sections = _sections(config.Config)
    assert len(sections) >= 10
    for cls in sections:
        hints = typing.get_type_hints(cls)
        for field in dataclasses.fields(cls):
            assert config._hint(field) == hints[field.name], (cls.__name__, field.name)
