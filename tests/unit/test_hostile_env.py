"""Secret variables with bytes that are not UTF-8 or a control character (hostile-input sweep,
second pass): refused where they are read, exit 2 naming the variable, never its value. Python
keeps such bytes of the environment as lone surrogates; the first header or base64 of them was a
UnicodeEncodeError, exit 70, in every task that runs git."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from dex_tasks.errors import UsageError
from dex_tasks.tools import argocd_api, git, github, oci

if TYPE_CHECKING:
    from pathlib import Path

    from tests.conftest import CliRunner

BAD_VALUES = {
    "undecodable": "ghp_s3cr3t\udcff",
    "newline": "ghp_s3cr3t\nX-Evil: 1",
    "escape": "ghp_s3cr3t\x1b[2J",
}


@pytest.mark.parametrize("value", BAD_VALUES.values(), ids=BAD_VALUES)
@pytest.mark.parametrize("name", git.TOKEN_VARS)
def test_a_bad_token_is_refused_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(UsageError, match=f"^{name} holds a control character") as caught:
        git.auth_env({name: value})
    assert "s3cr3t" not in str(caught.value)


@pytest.mark.parametrize("value", BAD_VALUES.values(), ids=BAD_VALUES)
def test_a_bad_github_or_registry_secret_is_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", value)
    with pytest.raises(UsageError, match=r"^GITHUB_TOKEN holds"):
        github.token_from_env()
    with pytest.raises(UsageError, match=r"^DEX_REGISTRY_PASSWORD holds"):
        oci.registry_credentials(
            "registry.example", {"DEX_REGISTRY_USER": "u", "DEX_REGISTRY_PASSWORD": value}
        )


def test_a_good_token_still_reads() -> None:
    assert git.auth_env({"GH_TOKEN": "  ghp_fine  "})
    assert oci.registry_credentials("ghcr.io", {"GITHUB_TOKEN": "ghp_fine"}) == ("x-access-token", "ghp_fine")


@pytest.mark.parametrize(
    "task", [("history", "dev"), ("locks",), ("bump-overlay", "dev", "sha-1a2b3c4d", "--direct")]
)
def test_a_task_with_a_bad_token_is_one_line_and_exit_2(
    run_cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, task: tuple[str, ...]
) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n', encoding="utf-8")
    monkeypatch.setenv("GH_TOKEN", BAD_VALUES["undecodable"])
    result = run_cli(*task, "--json", cwd=tmp_path)
    assert result.code == 2, result.err
    assert result.err.strip().splitlines() == [
        f"dex-tasks {task[0]}: error: GH_TOKEN holds a control character or bytes that are not UTF-8"
    ]
    assert "s3cr3t" not in result.err + result.out


@pytest.mark.parametrize("value", ["/nowhere\nsecond line", "/nowhere\x1b[2J"])
def test_a_kubeconfig_with_a_control_character_is_named_on_one_line(
    run_cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n', encoding="utf-8")
    monkeypatch.setenv("KUBECONFIG", value)
    result = run_cli("rollout", "status", "dev", cwd=tmp_path)
    assert result.code == 2, result.err
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert f"KUBECONFIG={value!r} names no existing file" in lines[0]


def test_argocd_auth_token_with_a_control_character_is_refused_by_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ARGOCD_SERVER", "argocd.example")
    monkeypatch.setenv("ARGOCD_AUTH_TOKEN", "eyJ-s3kr1t\nX-Evil: 1")
    with pytest.raises(UsageError, match=r"^ARGOCD_AUTH_TOKEN holds a control character") as caught:
        argocd_api.ArgoCDAPI.from_env()
    assert "s3kr1t" not in str(caught.value)
