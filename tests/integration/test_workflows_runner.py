"""The local workflow runner itself: expressions, output files, step wiring, uses-step equivalents.

The runner is what lets the CD and preview workflows run for real in the other tests, so its
expression semantics are pinned here against GitHub's documented behaviour (case-insensitive string
comparison, ``&&``/``||`` returning an operand, implicit ``success()``, ``.*`` filters...).
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import git
from tests.workflow_runner import (
    Runner,
    WorkflowError,
    condition,
    evaluate,
    expand_vars,
    interpolate,
    parse_output_file,
)

CONTEXTS: dict[str, Any] = {
    "github": {
        "ref": "refs/heads/main",
        "ref_name": "main",
        "event_name": "pull_request",
        "token": "ghs_x",
        "event": {
            "action": "labeled",
            "pull_request": {"number": 42, "labels": [{"name": "bug"}, {"name": "Preview"}]},
        },
    },
    "inputs": {"tag": "", "emergency": False, "to": "prod", "label": "preview"},
    "secrets": {"GITOPS_TOKEN": ""},
    "steps": {"build": {"outputs": {"tag": "sha-1a2b3c4d"}, "outcome": "success"}},
    "env": {},
}


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("github.ref == 'refs/heads/main'", True),
        ("github.ref == 'REFS/HEADS/MAIN'", True),  # strings compare ignoring case
        ("github.ref != 'refs/heads/dev'", True),
        ("github.event.pull_request.number", 42),
        ("github.event.pull_request.number == '42'", True),  # coerced to numbers
        ("steps.build.outputs.tag", "sha-1a2b3c4d"),
        ("steps.missing.outputs.tag", None),
        ("secrets.GITOPS_TOKEN || github.token", "ghs_x"),  # || returns the first truthy operand
        ("inputs.tag == '' && !inputs.emergency", True),
        ("inputs.tag != '' && inputs.emergency", False),
        ("contains(github.event.pull_request.labels.*.name, inputs.label)", True),
        ("contains(github.event.pull_request.labels.*.name, 'wip')", False),
        ("contains('hello world', 'WORLD')", True),
        ("startsWith(github.ref, 'refs/heads/')", True),
        ("format('dex-{0}-{1}', inputs.to, 7)", "dex-prod-7"),
        ("github.ref == 'refs/heads/main' && 'prod' || 'dev'", "prod"),
        ("(1 < 2) && !(3 <= 2)", True),
        ("fromJSON('{\"a\": [1, 2]}').a[1]", 2),
        ("null == null", True),
        ("true && 0", 0),
        ("github['event']['action']", "labeled"),
        ("'it''s'", "it's"),
    ],
)
def test_expressions(expression: str, expected: object) -> None:
    assert evaluate(expression, CONTEXTS) == expected


def test_interpolation_keeps_types_for_a_whole_expression_and_joins_strings() -> None:
    assert interpolate("${{ github.event.pull_request.number }}", CONTEXTS) == 42
    assert interpolate("pr-${{ github.event.pull_request.number }}", CONTEXTS) == "pr-42"
    assert interpolate("${{ inputs.emergency }}-${{ steps.x.outputs.y }}", CONTEXTS) == "false-"
    assert interpolate(value=True, contexts=CONTEXTS) is True


def test_if_implies_success_unless_a_status_function_is_used() -> None:
    assert condition("github.ref == 'refs/heads/main'", CONTEXTS, failed=False)
    assert not condition("github.ref == 'refs/heads/main'", CONTEXTS, failed=True)
    assert condition("${{ always() && steps.build.outcome != 'skipped' }}", CONTEXTS, failed=True)
    assert condition("failure()", CONTEXTS, failed=True)
    assert not condition(None, CONTEXTS, failed=True)
    assert condition(None, CONTEXTS, failed=False)


@pytest.mark.parametrize("bad", ["github.", "unknown.ctx", "hashFiles('x')", "1 +", "'unterminated"])
def test_unsupported_or_malformed_expressions_fail_loudly(bad: str) -> None:
    with pytest.raises(WorkflowError):
        evaluate(bad, CONTEXTS)


def test_output_file_lines_and_heredocs() -> None:
    text = "image=ghcr.io/x/y\ntags<<EOF_1\nsha-1a2b3c4d\nlatest\nEOF_1\ndigest=sha256:ab=cd\n"
    assert parse_output_file(text) == {
        "image": "ghcr.io/x/y",
        "tags": "sha-1a2b3c4d\nlatest",
        "digest": "sha256:ab=cd",
    }
    with pytest.raises(WorkflowError, match="unterminated"):
        parse_output_file("x<<EOF\nvalue\n")


def test_expand_vars_like_bash_but_unset_is_an_error() -> None:
    assert expand_vars("$TAG", {"TAG": "sha-1"}) == "sha-1"
    assert expand_vars("pr-${PR}/x", {"PR": "7"}) == "pr-7/x"
    with pytest.raises(WorkflowError, match="TAG"):
        expand_vars("$TAG", {})


def _workflow(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "wf.yml"
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


def _repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "pyproject.toml").write_text(
        '[project]\nname = "app"\nversion = "0"\n\n[tool.dex]\nimage = "registry.example/team/app"\n',
        encoding="utf-8",
    )
    git("init", "-q", cwd=repo)
    git("add", "-A", cwd=repo)
    git("commit", "-qm", "init", cwd=repo)
    return repo


@pytest.mark.timeout(120)
def test_a_job_runs_steps_in_order_with_the_actions_environment(tmp_path: Path) -> None:
    """`uv run dex-tasks config --json` runs from this venv in the repo, with GITHUB_* set and env: wired."""
    workflow = _workflow(
        tmp_path,
        """\
        name: t
        on:
          workflow_call:
            inputs:
              flavour: {type: string, default: plain}
        permissions: {}
        defaults:
          run:
            shell: bash
        jobs:
          j:
            runs-on: ubuntu-latest
            permissions: {contents: read}
            outputs:
              ok: ${{ steps.config.outcome }}
            steps:
              - uses: actions/checkout@08c6903cd8c0fde910a37f88322edcfb5dd907a8 # v5.0.0
              - uses: astral-sh/setup-uv@e92bafb6253dcd438e0484186d7669ea7a8ca1cc # v6.4.3
              - id: config
                env:
                  PR: ${{ github.event.pull_request.number }}
                run: uv run dex-tasks config --json
              - name: skipped because the ref is not dev
                if: github.ref == 'refs/heads/dev'
                run: uv run dex-tasks config
              - name: fails
                run: uv run dex-tasks no-such-task
              - name: skipped after a failure
                run: uv run dex-tasks config
              - name: runs after a failure
                if: always() && steps.config.outcome == 'success'
                env:
                  FLAVOUR: ${{ inputs.flavour }}
                run: uv run dex-tasks config -C "$GITHUB_WORKSPACE"
        """,
    )
    repo = _repo(tmp_path)
    event = {
        "pull_request": {"number": 7, "head": {"ref": "feature", "sha": "a" * 40}, "base": {"ref": "main"}}
    }
    runner = Runner(
        workflow=workflow,
        workspace=repo,
        temp=tmp_path / "runner",
        event_name="pull_request",
        event=event,
        ref="refs/pull/7/merge",
        sha="b" * 40,
    )
    result = runner.run_job("j")
    outcomes = [step.outcome for step in result.steps]
    assert outcomes == ["success", "success", "success", "skipped", "failure", "skipped", "success"], (
        result.log()
    )
    assert not result.success
    assert result.outputs == {"ok": "success"}
    config = result.step("config")
    assert json.loads(config.stdout)["task"] == "config"
    assert config.env["PR"] == "7"
    assert result.steps[-1].env["FLAVOUR"] == "plain"
    assert result.steps[-1].argv[-1] == str(repo)
    assert Path(config.argv[0]).name.startswith("dex-tasks")
    assert result.step("fails").returncode == 2
    payload = json.loads((tmp_path / "runner" / "event.json").read_text(encoding="utf-8"))
    assert payload["pull_request"]["number"] == 7


@pytest.mark.timeout(60)
def test_uses_steps_are_replaced_by_local_checks(tmp_path: Path) -> None:
    workflow = _workflow(
        tmp_path,
        """\
        name: t
        on: push
        permissions: {}
        jobs:
          j:
            runs-on: ubuntu-latest
            permissions: {contents: read}
            steps:
              - uses: actions/checkout@08c6903cd8c0fde910a37f88322edcfb5dd907a8 # v5.0.0
              - uses: github/codeql-action/upload-sarif@51f77329afa6477de8c49fc9c7046c15b9a4e79d # v3.29.5
                with: {sarif_file: good.sarif, category: good}
              - uses: actions/upload-artifact@ea165f8d65b6e75b540449e92b4886f43607fa02 # v4.6.2
                with:
                  name: reports
                  path: |
                    good.sarif
                    missing.xml
              - uses: github/codeql-action/upload-sarif@51f77329afa6477de8c49fc9c7046c15b9a4e79d # v3.29.5
                if: always()
                with: {sarif_file: bad.sarif, category: bad}
        """,
    )
    repo = _repo(tmp_path)
    (repo / "good.sarif").write_text(json.dumps({"version": "2.1.0", "runs": []}), encoding="utf-8")
    (repo / "bad.sarif").write_text(json.dumps({"version": "2.0.0", "runs": []}), encoding="utf-8")
    result = Runner(workflow=workflow, workspace=repo, temp=tmp_path / "r", event_name="push").run_job("j")
    assert [step.outcome for step in result.steps] == ["success", "success", "success", "failure"]
    assert result.sarif == {"good": repo / "good.sarif"}
    assert result.artifacts == {"reports": [repo / "good.sarif"]}
    assert "2.1.0" in result.steps[-1].note


def test_run_lines_that_need_a_shell_are_refused(tmp_path: Path) -> None:
    workflow = _workflow(
        tmp_path,
        """\
        on: push
        jobs:
          j:
            runs-on: ubuntu-latest
            steps:
              - run: uv run dex-tasks config | tee out
        """,
    )
    with pytest.raises(WorkflowError, match="needs a shell"):
        Runner(workflow=workflow, workspace=_repo(tmp_path), temp=tmp_path / "r", event_name="push").run_job(
            "j"
        )


def test_job_if_false_runs_nothing(tmp_path: Path) -> None:
    workflow = _workflow(
        tmp_path,
        """\
        on: push
        jobs:
          j:
            if: github.ref == 'refs/heads/dev'
            runs-on: ubuntu-latest
            steps:
              - run: uv run dex-tasks config
        """,
    )
    result = Runner(workflow=workflow, workspace=tmp_path, temp=tmp_path / "r", event_name="push").run_job(
        "j"
    )
    assert not result.ran
    assert result.steps == []
