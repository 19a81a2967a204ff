"""gha: workflow commands escaped per actions/toolkit command.ts; files appended; no-op elsewhere."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from dex_tasks import gha, redact

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture
def actions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    output = tmp_path / "output"
    summary = tmp_path / "summary"
    output.touch()
    summary.touch()
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_OUTPUT", str(output))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    return output, summary


def test_escape_data_and_property() -> None:
    assert gha.escape_data("100% done\r\nnext") == "100%25 done%0D%0Anext"
    assert gha.escape_property("a:b,c%d\ne") == "a%3Ab%2Cc%25d%0Ae"
    # `%` first, so an escape sequence in the input is not decoded by the runner.
    assert gha.escape_data("%0A") == "%250A"


def test_annotation_escapes_message_and_properties(
    actions: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    gha.annotation(
        "error",
        "Incompatible types: got 100%\nexpected str",
        file="src/a,b.py",
        line=12,
        col=5,
        title="mypy: [assignment]",
    )
    err = capsys.readouterr().err
    assert err == (
        "::error file=src/a%2Cb.py,line=12,col=5,title=mypy%3A [assignment]"
        "::Incompatible types: got 100%25%0Aexpected str\n"
    )


def test_annotation_without_properties(
    actions: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    gha.annotation("warning", "just a message")
    assert capsys.readouterr().err == "::warning::just a message\n"


def test_group(actions: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    with gha.group("ruff check"):
        pass
    assert capsys.readouterr().err == "::group::ruff check\n::endgroup::\n"


def test_group_closes_on_error(actions: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(RuntimeError), gha.group("x"):
        raise RuntimeError
    assert capsys.readouterr().err.endswith("::endgroup::\n")


def test_set_output_single_line(actions: tuple[Path, Path]) -> None:
    output, _ = actions
    gha.set_output("tag", "sha-1a2b3c4d")
    gha.set_outputs({"digest": "sha256:abc", "pushed": "true"})
    assert output.read_text(encoding="utf-8") == "tag=sha-1a2b3c4d\ndigest=sha256:abc\npushed=true\n"


def test_set_output_multi_line_uses_a_heredoc(actions: tuple[Path, Path]) -> None:
    output, _ = actions
    gha.set_output("notes", "line one\nline two")
    lines = output.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("notes<<ghadelimiter_")
    delimiter = lines[0].partition("<<")[2]
    assert lines[1:] == ["line one", "line two", delimiter]
    assert delimiter not in "line one\nline two"


def test_summary_appends_markdown(actions: tuple[Path, Path]) -> None:
    _, summary = actions
    gha.summary("### first")
    gha.summary(gha.markdown_table(["tool", "result"], [["ruff | check", "passed"], ["mypy", "multi\nline"]]))
    assert summary.read_text(encoding="utf-8") == (
        "### first\n\n| tool | result |\n|---|---|\n| ruff \\| check | passed |\n| mypy | multi line |\n\n"
    )


def test_add_mask(actions: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    gha.add_mask("value,with:chars")
    assert capsys.readouterr().err == "::add-mask::value,with:chars\n"


def test_registered_secret_is_masked_in_actions(
    actions: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    redact.register_secret("gha-secret-value-0001")
    assert "::add-mask::gha-secret-value-0001\n" in capsys.readouterr().err


def test_everything_is_a_no_op_outside_actions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "output"
    summary = tmp_path / "summary"
    # The files are set but GITHUB_ACTIONS is not (the conftest clears it): nothing is written.
    monkeypatch.setenv("GITHUB_OUTPUT", str(output))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    assert not gha.active()
    gha.annotation("error", "x", file="a.py", line=1)
    gha.add_mask("x")
    with gha.group("g"):
        pass
    gha.set_output("a", "b")
    gha.summary("s")
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == ""
    assert not output.exists()
    assert not summary.exists()


def test_active_only_for_true(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "false")
    assert not gha.active()
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    assert gha.active()
