"""Run one job of a GitHub Actions workflow here, the way a GitHub-hosted runner would.

Our workflows are thin on purpose: ``actions/checkout``, ``astral-sh/setup-uv`` and single-line
``run:`` steps that call a dex-tasks task. So a job can run for real in the tests:

* ``run:`` steps run in order, as argv (``shlex.split``; no shell, they are one task call each),
  with the environment Actions sets: ``GITHUB_ACTIONS=true``, ``CI=true``, ``GITHUB_EVENT_NAME``,
  ``GITHUB_EVENT_PATH`` (the payload written to a file), ``GITHUB_SHA``, ``GITHUB_REF``,
  ``GITHUB_REF_NAME``, ``GITHUB_REPOSITORY``, ``GITHUB_SERVER_URL``, ``GITHUB_API_URL``,
  ``GITHUB_WORKSPACE``, a fresh ``GITHUB_OUTPUT``/``GITHUB_STEP_SUMMARY``/``GITHUB_ENV`` file per
  step, and the workflow/job/step ``env:``. ``$VAR`` / ``${VAR}`` in the argv are expanded from that
  environment like bash does (an unset variable is an error here: it is always a workflow bug).
* ``uv run X ...`` runs ``X`` from *this* repository's virtualenv (its bin dir first on PATH), in the
  sample consumer repo as working directory. That is the local equivalent of the consumer having
  dex-tasks as a dev dependency (``uv add --dev dex-tasks``): ``uv run`` there resolves ``dex-tasks``
  and ``poe`` from the consumer's environment, which contains this package.
* Step outputs are parsed from ``GITHUB_OUTPUT`` (``name=value`` and ``name<<DELIM`` heredocs) and
  wired into later steps through expressions.
* ``uses:`` steps are replaced by their local equivalent: checkout (the repo is already there),
  setup-uv (uv is there), docker/login-action (the test registry takes anonymous pushes),
  upload-artifact (each path must match something, per ``if-no-files-found``), upload-sarif (the
  file must exist and be SARIF 2.1.0), CodeQL init/analyze (no local equivalent: recorded, skipped).
* Expressions: the subset our workflows use - contexts ``github`` (incl. ``github.event.*``),
  ``inputs``, ``secrets``, ``steps.<id>.outputs|outcome|conclusion``, ``env``, ``runner``, ``vars``,
  ``job``; literals; ``! == != < <= > >= && ||`` and parentheses; ``.*`` object filters
  (``labels.*.name``); functions ``success() failure() always() cancelled() contains() startsWith()
  endsWith() format() join() toJSON() fromJSON()``. Semantics as documented by GitHub: string
  comparison ignores case, ``&&``/``||`` return an operand, an ``if:`` without a status function
  means ``success() && (...)``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

_STATUS_FUNCTIONS = ("success", "failure", "always", "cancelled")
_SHELL_METACHARS = ("|", "&", ";", "<", ">", "`", "$(", "\n")
_DEFAULT_STEP_TIMEOUT = 900


class WorkflowError(Exception):
    """The workflow uses something this runner does not support (or is malformed)."""


# --------------------------------------------------------------------------------------------------
# Expressions


class _Filtered(list[Any]):
    """The result of a ``.*`` filter: property access maps over the elements."""


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<num>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|0x[0-9a-fA-F]+)
      | (?P<str>'(?:[^']|'')*')
      | (?P<op>==|!=|<=|>=|&&|\|\||[!<>()\[\].,*])
      | (?P<ident>[A-Za-z_][A-Za-z0-9_-]*)
    )""",
    re.VERBOSE,
)


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None:
            raise WorkflowError(f"cannot parse expression at {text[pos:]!r} in {text!r}")
        kind = match.lastgroup
        assert kind is not None
        tokens.append((kind, match.group(kind)))
        pos = match.end()
    return tokens


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _to_number(value: Any) -> float:  # noqa: PLR0911 - one return per type, like the spec table
    """GitHub's coercion to number: null 0, bool 0/1, string parsed (NaN if not a number)."""
    if value is None:
        return 0.0
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if _is_number(value):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        if text == "":
            return 0.0
        try:
            return float(int(text, 16)) if text.lower().startswith("0x") else float(text)
        except ValueError:
            return float("nan")
    return float("nan")


def truthy(value: Any) -> bool:
    """Falsy: false, 0, -0, "", null, NaN. Everything else (objects and arrays too) is truthy."""
    if value is None or value is False:
        return False
    if _is_number(value):
        return not math.isnan(value) and value != 0
    if isinstance(value, str):
        return value != ""
    return True


def loose_equal(left: Any, right: Any) -> bool:
    """``==`` as documented: same type compares directly (strings ignoring case), else as numbers."""
    if isinstance(left, str) and isinstance(right, str):
        return left.casefold() == right.casefold()
    if type(left) is type(right) and not isinstance(left, dict | list):
        return bool(left == right)
    if isinstance(left, dict | list) or isinstance(right, dict | list):
        return left is right
    return _to_number(left) == _to_number(right)


def to_string(value: Any) -> str:
    """How a value is written into a string by ``${{ }}`` interpolation."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if _is_number(value):
        return str(int(value)) if float(value).is_integer() else str(value)
    if isinstance(value, dict | list):
        return json.dumps(value, indent=2)
    return str(value)


def _get(obj: Any, key: Any) -> Any:
    if isinstance(obj, _Filtered):
        return _Filtered(_get(item, key) for item in obj)
    if isinstance(obj, Mapping):
        if isinstance(key, str):
            if key in obj:
                return obj[key]
            folded = key.casefold()  # context property names are case-insensitive
            for name, value in obj.items():
                if isinstance(name, str) and name.casefold() == folded:
                    return value
        return None
    if isinstance(obj, list) and _is_number(key) and float(key).is_integer():
        index = int(key)
        return obj[index] if 0 <= index < len(obj) else None
    return None


@dataclasses.dataclass
class _Status:
    failed: bool = False
    cancelled: bool = False


class _Parser:
    def __init__(self, text: str, contexts: Mapping[str, Any], status: _Status) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.pos = 0
        self.contexts = contexts
        self.status = status

    def parse(self) -> Any:
        value = self._or()
        if self.pos != len(self.tokens):
            raise WorkflowError(f"unexpected {self.tokens[self.pos][1]!r} in expression {self.text!r}")
        return value

    def _peek(self) -> str | None:
        return self.tokens[self.pos][1] if self.pos < len(self.tokens) else None

    def _take(self, expected: str | None = None) -> tuple[str, str]:
        if self.pos >= len(self.tokens):
            raise WorkflowError(f"unexpected end of expression {self.text!r}")
        token = self.tokens[self.pos]
        if expected is not None and token[1] != expected:
            raise WorkflowError(f"expected {expected!r}, got {token[1]!r} in {self.text!r}")
        self.pos += 1
        return token

    def _or(self) -> Any:
        value = self._and()
        while self._peek() == "||":
            self._take()
            right = self._and()
            value = value if truthy(value) else right
        return value

    def _and(self) -> Any:
        value = self._equality()
        while self._peek() == "&&":
            self._take()
            right = self._equality()
            value = right if truthy(value) else value
        return value

    def _equality(self) -> Any:
        value = self._comparison()
        while self._peek() in {"==", "!="}:
            op = self._take()[1]
            right = self._comparison()
            equal = loose_equal(value, right)
            value = equal if op == "==" else not equal
        return value

    def _comparison(self) -> Any:
        value = self._unary()
        while self._peek() in {"<", "<=", ">", ">="}:
            op = self._take()[1]
            right = self._unary()
            if isinstance(value, str) and isinstance(right, str):
                left_key: Any = value.casefold()
                right_key: Any = right.casefold()
            else:
                left_key, right_key = _to_number(value), _to_number(right)
            value = {
                "<": left_key < right_key,
                "<=": left_key <= right_key,
                ">": left_key > right_key,
                ">=": left_key >= right_key,
            }[op]
        return value

    def _unary(self) -> Any:
        if self._peek() == "!":
            self._take()
            return not truthy(self._unary())
        return self._postfix(self._primary())

    def _primary(self) -> Any:  # noqa: PLR0911 - one return per token kind
        kind, text = self._take()
        if kind == "num":
            number = float(int(text, 16)) if text.lower().startswith("0x") else float(text)
            return int(number) if number.is_integer() else number
        if kind == "str":
            return text[1:-1].replace("''", "'")
        if text == "(":
            value = self._or()
            self._take(")")
            return value
        if kind != "ident":
            raise WorkflowError(f"unexpected {text!r} in expression {self.text!r}")
        lowered = text.lower()
        if lowered in {"true", "false"}:
            return lowered == "true"
        if lowered == "null":
            return None
        if self._peek() == "(":
            self._take("(")
            args: list[Any] = []
            while self._peek() != ")":
                args.append(self._or())
                if self._peek() == ",":
                    self._take(",")
            self._take(")")
            return self._call(lowered, args)
        if lowered not in self.contexts:
            raise WorkflowError(f"unknown context {text!r} in expression {self.text!r}")
        return self.contexts[lowered]

    def _postfix(self, value: Any) -> Any:
        while self._peek() in {".", "["}:
            if self._take()[1] == ".":
                kind, name = self._take()
                if name == "*":
                    if isinstance(value, Mapping):
                        value = _Filtered(value.values())
                    elif isinstance(value, list):
                        value = _Filtered(value)
                    else:
                        value = _Filtered()
                elif kind in {"ident", "num"}:
                    value = _get(value, name)
                else:
                    raise WorkflowError(f"bad property {name!r} in expression {self.text!r}")
            else:
                key = self._or()
                self._take("]")
                value = _get(value, key)
        return value

    def _call(self, name: str, args: list[Any]) -> Any:  # noqa: PLR0911 - one return per function
        if name in _STATUS_FUNCTIONS:
            if args:
                raise WorkflowError(f"{name}() takes no arguments")
            return {
                "success": not self.status.failed and not self.status.cancelled,
                "failure": self.status.failed,
                "always": True,
                "cancelled": self.status.cancelled,
            }[name]
        if name == "contains":
            haystack, needle = args
            if isinstance(haystack, list):
                return any(loose_equal(item, needle) for item in haystack)
            return to_string(needle).casefold() in to_string(haystack).casefold()
        if name == "startswith":
            return to_string(args[0]).casefold().startswith(to_string(args[1]).casefold())
        if name == "endswith":
            return to_string(args[0]).casefold().endswith(to_string(args[1]).casefold())
        if name == "format":
            template, *rest = args
            return re.sub(r"\{(\d+)\}", lambda m: to_string(rest[int(m.group(1))]), to_string(template))
        if name == "join":
            items, sep = args[0], args[1] if len(args) > 1 else ","
            return to_string(sep).join(to_string(i) for i in items) if isinstance(items, list) else items
        if name == "tojson":
            return json.dumps(args[0], indent=2)
        if name == "fromjson":
            return json.loads(to_string(args[0]))
        raise WorkflowError(f"function {name}() is not supported by the local runner")


def evaluate(expression: str, contexts: Mapping[str, Any], *, failed: bool = False) -> Any:
    """Evaluate the text inside ``${{ }}``."""
    return _Parser(expression, contexts, _Status(failed=failed)).parse()


_INTERPOLATION = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)


def interpolate(value: Any, contexts: Mapping[str, Any], *, failed: bool = False) -> Any:
    """Replace ``${{ }}`` in a scalar; a string that is exactly one expression keeps the value's type."""
    if not isinstance(value, str):
        return value
    whole = _INTERPOLATION.fullmatch(value.strip())
    if whole and value.strip().count("${{") == 1:
        return evaluate(whole.group(1), contexts, failed=failed)
    return _INTERPOLATION.sub(lambda m: to_string(evaluate(m.group(1), contexts, failed=failed)), value)


def condition(text: Any, contexts: Mapping[str, Any], *, failed: bool) -> bool:
    """An ``if:``: optional ``${{ }}``, and ``success() &&`` implied without a status function."""
    if text is None:
        return not failed
    if isinstance(text, bool):
        return text and not failed
    expression = str(text).strip()
    whole = _INTERPOLATION.fullmatch(expression)
    if whole:
        expression = whole.group(1).strip()
    if not re.search(r"\b(" + "|".join(_STATUS_FUNCTIONS) + r")\s*\(", expression, re.IGNORECASE):
        expression = f"success() && ({expression})"
    return truthy(evaluate(expression, contexts, failed=failed))


# --------------------------------------------------------------------------------------------------
# Files Actions hands to a step


def parse_output_file(text: str) -> dict[str, str]:
    """``$GITHUB_OUTPUT`` / ``$GITHUB_ENV``: ``name=value`` lines and ``name<<DELIM`` heredocs."""
    values: dict[str, str] = {}
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if not line.strip():
            continue
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            body: list[str] = []
            while index < len(lines) and lines[index] != delimiter:
                body.append(lines[index])
                index += 1
            if index >= len(lines):
                raise WorkflowError(f"unterminated heredoc {delimiter!r} for output {name!r}")
            index += 1
            values[name] = "\n".join(body)
        elif "=" in line:
            name, value = line.split("=", 1)
            values[name] = value
        else:
            raise WorkflowError(f"invalid line in an output file: {line!r}")
    return values


# Actions whose local equivalent is "already there": the note says what stands in for them.
_NOTED_ACTIONS = {
    "astral-sh/setup-uv": "setup-uv: uv run maps to this virtualenv's bin dir",
    "docker/login-action": "docker login: the test registry accepts anonymous pushes",
    "github/codeql-action/init": "github/codeql-action/init: CodeQL has no local equivalent (skipped)",
    "github/codeql-action/analyze": "github/codeql-action/analyze: CodeQL has no local equivalent (skipped)",
}


def check_sarif(path: Path) -> dict[str, Any]:
    """What upload-sarif needs: a JSON object with version 2.1.0 and a runs array."""
    if not path.is_file():
        raise AssertionError(f"SARIF file {path} does not exist")
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or data.get("version") != "2.1.0" or not isinstance(data.get("runs"), list):
        raise AssertionError(f"{path} is not SARIF 2.1.0 (version={data.get('version')!r})")
    return data


# --------------------------------------------------------------------------------------------------
# Jobs


@dataclasses.dataclass(kw_only=True)
class StepResult:
    index: int
    id: str | None
    name: str
    kind: str  # "run" or "uses"
    outcome: str  # "success", "failure", "skipped"
    argv: tuple[str, ...] = ()
    uses: str | None = None
    env: dict[str, str] = dataclasses.field(default_factory=dict)
    with_: dict[str, Any] = dataclasses.field(default_factory=dict)
    returncode: int | None = None
    stdout: str = ""
    stderr: str = ""
    outputs: dict[str, str] = dataclasses.field(default_factory=dict)
    summary: str = ""
    note: str = ""


@dataclasses.dataclass(kw_only=True)
class JobResult:
    job: str
    ran: bool
    steps: list[StepResult]
    outputs: dict[str, Any]
    sarif: dict[str, Path]  # category -> file uploaded
    artifacts: dict[str, list[Path]]  # name -> files uploaded

    @property
    def success(self) -> bool:
        return all(step.outcome != "failure" for step in self.steps)

    @property
    def summary(self) -> str:
        return "".join(step.summary for step in self.steps)

    def step(self, key: str) -> StepResult:
        """A step by id or name."""
        for step in self.steps:
            if key in {step.id, step.name}:
                return step
        raise KeyError(f"no step {key!r} in job {self.job}: {[s.id or s.name for s in self.steps]}")

    def log(self) -> str:
        """Everything the job printed, for assertion messages."""
        parts = []
        for step in self.steps:
            parts.append(f"--- step {step.index} {step.name} [{step.outcome}] {shlex.join(step.argv)}")
            parts.extend(text for text in (step.stdout, step.stderr, step.note) if text)
        return "\n".join(parts)


def load_workflow(path: Path) -> dict[str, Any]:
    """Parse as YAML 1.2 (``on`` stays a string key)."""
    from ruamel.yaml import YAML  # noqa: PLC0415 - heavy, only needed here

    data = YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise WorkflowError(f"{path}: not a mapping")
    return data


def venv_bin() -> Path:
    """This interpreter's scripts directory (bin/ or Scripts\\), where ``dex-tasks`` and ``poe`` live."""
    return Path(sysconfig.get_path("scripts"))


def _input_defaults(workflow: Mapping[str, Any], event_name: str) -> dict[str, Any]:
    triggers = workflow.get("on") or {}
    if not isinstance(triggers, Mapping):
        return {}
    source = triggers.get("workflow_dispatch" if event_name == "workflow_dispatch" else "workflow_call")
    specs = (source or {}).get("inputs") or {}
    if not specs:
        specs = ((triggers.get("workflow_call") or {}).get("inputs")) or {}
    return {name: (spec or {}).get("default") for name, spec in specs.items()}


_VAR = re.compile(r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))")


def expand_vars(token: str, env: Mapping[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group("braced") or match.group("bare")
        if name not in env:
            raise WorkflowError(f"${name} is not set in the step's environment")
        return env[name]

    return _VAR.sub(replace, token)


@dataclasses.dataclass(kw_only=True)
class Runner:
    """Runs jobs of ``workflow`` in ``workspace`` (the checked-out consumer repo)."""

    workflow: Path
    workspace: Path
    temp: Path
    event_name: str
    event: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    ref: str = "refs/heads/main"
    sha: str = ""
    repository: str = "data-literate/dex"
    server_url: str = "https://github.com"
    api_url: str = "https://api.github.com"
    token: str = "ghs_fake-workflow-token"
    actor: str = "dex-bot"
    inputs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    secrets: Mapping[str, str] = dataclasses.field(default_factory=dict)
    #: Extra process environment (PATH additions for fake CLIs, DOCKER_HOST...), like the runner
    #: image's own environment.
    env: Mapping[str, str] = dataclasses.field(default_factory=dict)
    bin_dir: Path = dataclasses.field(default_factory=venv_bin)

    def __post_init__(self) -> None:
        self.data = load_workflow(self.workflow)
        self.temp.mkdir(parents=True, exist_ok=True)

    # ----------------------------------------------------------------------------------------------
    def ref_name(self) -> str:
        for prefix in ("refs/heads/", "refs/tags/"):
            if self.ref.startswith(prefix):
                return self.ref.removeprefix(prefix)
        return self.ref.removeprefix("refs/")

    def _github_env(self, job: str, event_path: Path) -> dict[str, str]:
        env = {
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            "GITHUB_ACTOR": self.actor,
            "GITHUB_API_URL": self.api_url,
            "GITHUB_EVENT_NAME": self.event_name,
            "GITHUB_EVENT_PATH": str(event_path),
            "GITHUB_JOB": job,
            "GITHUB_REF": self.ref,
            "GITHUB_REF_NAME": self.ref_name(),
            "GITHUB_REF_TYPE": "tag" if self.ref.startswith("refs/tags/") else "branch",
            "GITHUB_REPOSITORY": self.repository,
            "GITHUB_REPOSITORY_OWNER": self.repository.split("/")[0],
            "GITHUB_RUN_ATTEMPT": "1",
            "GITHUB_RUN_ID": "4242",
            "GITHUB_RUN_NUMBER": "7",
            "GITHUB_SERVER_URL": self.server_url,
            "GITHUB_SHA": self.sha,
            "GITHUB_WORKFLOW": str(self.data.get("name", self.workflow.name)),
            "GITHUB_WORKSPACE": str(self.workspace),
            "RUNNER_OS": {"win32": "Windows", "darwin": "macOS"}.get(sys.platform, "Linux"),
            "RUNNER_TEMP": str(self.temp),
        }
        pull = self.event.get("pull_request") if isinstance(self.event, Mapping) else None
        if self.event_name.startswith("pull_request") and isinstance(pull, Mapping):
            env["GITHUB_HEAD_REF"] = str((pull.get("head") or {}).get("ref", ""))
            env["GITHUB_BASE_REF"] = str((pull.get("base") or {}).get("ref", ""))
        return env

    def _contexts(self, job: str, steps: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
        inputs = _input_defaults(self.data, self.event_name)
        inputs.update(self.inputs)
        github = {
            "action": "",
            "actor": self.actor,
            "api_url": self.api_url,
            "event": dict(self.event),
            "event_name": self.event_name,
            "job": job,
            "ref": self.ref,
            "ref_name": self.ref_name(),
            "ref_type": "tag" if self.ref.startswith("refs/tags/") else "branch",
            "repository": self.repository,
            "repository_owner": self.repository.split("/")[0],
            "run_id": "4242",
            "server_url": self.server_url,
            "sha": self.sha,
            "token": self.token,
            "workflow": str(self.data.get("name", "")),
            "workspace": str(self.workspace),
        }
        return {
            "github": github,
            "inputs": inputs,
            "secrets": {"GITHUB_TOKEN": self.token, **self.secrets},
            "steps": steps,
            "env": dict(env),
            "runner": {"os": "Linux", "temp": str(self.temp)},
            "vars": {},
            "job": {"status": "success"},
            "matrix": {},
            "strategy": {},
            "needs": {},
        }

    # ----------------------------------------------------------------------------------------------
    def _job_spec(self, job: str) -> Mapping[str, Any]:
        spec = (self.data.get("jobs") or {}).get(job)
        if not isinstance(spec, Mapping):
            raise WorkflowError(f"{self.workflow.name}: no job {job!r}")
        if "uses" in spec:
            raise WorkflowError(f"{job} calls another workflow; run that workflow's jobs instead")
        shell = ((spec.get("defaults") or self.data.get("defaults") or {}).get("run") or {}).get("shell")
        if shell not in {None, "bash"}:
            raise WorkflowError(f"{job}: shell {shell!r}: only bash semantics ($VAR) are reproduced")
        return spec

    def _job_env(self, job: str, spec: Mapping[str, Any]) -> dict[str, str]:
        job_env: dict[str, str] = {}
        for source in (self.data.get("env") or {}, spec.get("env") or {}):
            for name, value in source.items():
                job_env[name] = to_string(interpolate(value, self._contexts(job, {}, job_env)))
        return job_env

    def run_job(self, job: str) -> JobResult:
        spec = self._job_spec(job)
        event_path = self.temp / "event.json"
        event_path.write_text(json.dumps(dict(self.event)), encoding="utf-8")
        steps_ctx: dict[str, Any] = {}
        result = JobResult(job=job, ran=False, steps=[], outputs={}, sarif={}, artifacts={})

        contexts = self._contexts(job, steps_ctx, {})
        if not condition(spec.get("if"), contexts, failed=False):
            return result
        result.ran = True

        job_env = self._job_env(job, spec)
        added_env: dict[str, str] = {}  # from $GITHUB_ENV of earlier steps
        failed = False
        for index, step in enumerate(spec.get("steps") or []):
            step_id = step.get("id")
            name = str(step.get("name") or step.get("uses") or step.get("run") or f"step {index}")
            base_env = {**job_env, **added_env}
            contexts = self._contexts(job, steps_ctx, base_env)
            kind = "run" if "run" in step else "uses"
            record = StepResult(index=index, id=step_id, name=name, kind=kind, outcome="skipped")
            result.steps.append(record)
            if not condition(step.get("if"), contexts, failed=failed):
                if step_id:
                    steps_ctx[step_id] = {"outputs": {}, "outcome": "skipped", "conclusion": "skipped"}
                continue
            step_env = dict(base_env)
            for var, value in (step.get("env") or {}).items():
                step_env[var] = to_string(interpolate(value, contexts, failed=failed))
            record.env = step_env
            if kind == "run":
                self._run_step(
                    job=job,
                    record=record,
                    step=step,
                    step_env=step_env,
                    event_path=event_path,
                    added_env=added_env,
                )
            else:
                with_ = {
                    k: interpolate(v, contexts, failed=failed) for k, v in (step.get("with") or {}).items()
                }
                record.with_ = with_
                record.uses = str(step["uses"])
                self._uses_step(record, with_, result)
            if record.outcome == "failure":
                failed = True
            if step_id:
                steps_ctx[step_id] = {
                    "outputs": dict(record.outputs),
                    "outcome": record.outcome,
                    "conclusion": record.outcome,
                }
        contexts = self._contexts(job, steps_ctx, job_env)
        result.outputs = {
            name: to_string(interpolate(value, contexts, failed=failed))
            for name, value in (spec.get("outputs") or {}).items()
        }
        return result

    def _argv(self, line: str, env: Mapping[str, str]) -> list[str]:
        if any(char in line for char in _SHELL_METACHARS):
            raise WorkflowError(f"run: {line!r} needs a shell; our steps are single task calls")
        argv = [expand_vars(token, env) for token in shlex.split(line)]
        if argv[:2] == ["uv", "run"]:
            tool = shutil.which(argv[2], path=str(self.bin_dir))
            if tool is None:
                raise WorkflowError(f"{argv[2]} is not installed in {self.bin_dir}")
            argv = [tool, *argv[3:]]
        return argv

    def _run_step(
        self,
        *,
        job: str,
        record: StepResult,
        step: Mapping[str, Any],
        step_env: Mapping[str, str],
        event_path: Path,
        added_env: dict[str, str],
    ) -> None:
        line = str(step["run"]).strip()
        files = {}
        for var in ("GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY", "GITHUB_ENV", "GITHUB_PATH"):
            path = self.temp / f"step{record.index}_{var.lower()}"
            path.write_text("", encoding="utf-8")
            files[var] = str(path)
        env = {key: value for key, value in os.environ.items() if not key.startswith("GITHUB_")}
        env.update(self.env)
        env.update(self._github_env(job, event_path))
        env.update(files)
        env.update(step_env)
        env["PATH"] = os.pathsep.join([str(self.bin_dir), env.get("PATH", "")])
        record.argv = tuple(self._argv(line, env))
        timeout = int(step.get("timeout-minutes", 0)) * 60 or _DEFAULT_STEP_TIMEOUT
        done = subprocess.run(
            record.argv,
            cwd=self.workspace,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        record.returncode = done.returncode
        record.stdout, record.stderr = done.stdout, done.stderr
        record.outcome = "success" if done.returncode == 0 else "failure"
        record.outputs = parse_output_file(Path(files["GITHUB_OUTPUT"]).read_text(encoding="utf-8"))
        record.summary = Path(files["GITHUB_STEP_SUMMARY"]).read_text(encoding="utf-8")
        added_env.update(parse_output_file(Path(files["GITHUB_ENV"]).read_text(encoding="utf-8")))

    def _uses_step(self, record: StepResult, with_: Mapping[str, Any], result: JobResult) -> None:
        action = str(record.uses).split("@", 1)[0]
        record.outcome = "success"
        if action in _NOTED_ACTIONS:
            record.note = _NOTED_ACTIONS[action]
        elif action == "actions/checkout":
            if not (self.workspace / ".git").exists():
                record.outcome, record.note = "failure", f"checkout: {self.workspace} is not a git repository"
            else:
                record.note = "checkout: the repository is already the workspace"
        elif action == "aquasecurity/setup-trivy":
            if shutil.which("trivy", path=self.env.get("PATH", os.environ.get("PATH", ""))) is None:
                record.outcome, record.note = "failure", "setup-trivy: no trivy on PATH (the fake goes there)"
            else:
                record.note = "setup-trivy: the fake trivy is on PATH"
        elif action == "actions/upload-artifact":
            self._upload_artifact(record, with_, result)
        elif action == "github/codeql-action/upload-sarif":
            path = self.workspace / str(with_.get("sarif_file", "../results"))
            try:
                check_sarif(path)
            except (AssertionError, ValueError) as exc:
                record.outcome, record.note = "failure", f"upload-sarif: {exc}"
                return
            result.sarif[str(with_.get("category", ""))] = path
            record.note = f"upload-sarif: {path} is SARIF 2.1.0"
        else:
            raise WorkflowError(f"no local equivalent for action {action}")

    def _upload_artifact(self, record: StepResult, with_: Mapping[str, Any], result: JobResult) -> None:
        patterns = [line.strip() for line in str(with_.get("path", "")).splitlines() if line.strip()]
        found: list[Path] = []
        missing: list[str] = []
        for pattern in patterns:
            matches = sorted(self.workspace.glob(pattern)) if not Path(pattern).is_absolute() else []
            if Path(pattern).is_absolute() and Path(pattern).exists():
                matches = [Path(pattern)]
            (found.extend(matches) if matches else missing.append(pattern))
        policy = str(with_.get("if-no-files-found", "warn"))
        result.artifacts[str(with_.get("name", "artifact"))] = found
        record.note = f"upload-artifact: {len(found)} file(s); missing: {missing}"
        if not found and policy == "error":
            record.outcome = "failure"


def run_workflow_job(workflow: Path, job: str, **kwargs: Any) -> JobResult:
    """Shorthand: ``Runner(workflow=..., **kwargs).run_job(job)``."""
    return Runner(workflow=workflow, **kwargs).run_job(job)


def steps_of(workflow: Path) -> Sequence[tuple[str, Mapping[str, Any]]]:
    """(job, step) for every step of every job: for the structural tests."""
    data = load_workflow(workflow)
    return [(job, step) for job, spec in (data.get("jobs") or {}).items() for step in spec.get("steps") or []]
