"""What ``dex-tasks init`` writes into a consumer repo, and how it merges with what is there.

Pure where it can be: :func:`plan` turns the options and the files that exist into a list of
:class:`FileChange` (path, old text, new text, outcome); the task prints and writes them. Files
of our own (workflows, manifests) are whole templates under ``templates/``; files the user owns
(``pyproject.toml``, ``noxfile.py``, ``.dockerignore``) are only ever appended to - existing
content is never rewritten, so comments and formatting stay exactly as they were.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from importlib import resources
from typing import TYPE_CHECKING

from dex_tasks.config import DEFAULT_BRANCHES, ENV_NAME_RE, IMAGE_NAME_RE, strip_registry
from dex_tasks.errors import InternalError, UsageError
from dex_tasks.gitops import paths

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from pathlib import Path

CREATED, UPDATED, UNCHANGED, SKIPPED = "created", "updated", "unchanged", "skipped"
OUTCOMES = (CREATED, UPDATED, UNCHANGED, SKIPPED)

OVERLAYS = "infra/argocd/overlays"
BASE = "infra/argocd/base"
APPS = "infra/argocd/apps"
WORKFLOWS = ".github/workflows"
WORKFLOW_FILES = ("pipeline.yml", "pr-preview.yml", "promote.yml", "rollback.yml")
PLACEHOLDER_TAG = "sha-0000000"  # a valid tag (sha- + 7 hex) that no build produces
ROLLOUTS = ("canary", "bluegreen")
# The second Service a Rollout strategy needs, by strategy (canaryService, previewService).
SECOND_SERVICE = {"canary": "canary", "bluegreen": "preview"}
POE_LINE = 'include_script = "dex_tasks.poe:tasks"'
NOX_LINE = "import dex_tasks.nox  # noqa: F401  (registers one session per task)"
_MARKER = re.compile(r"@@([a-z_]+)@@")
_GITHUB = re.compile(r"github\.com[:/]+([A-Za-z0-9_.-]+)/([A-Za-z0-9_.-]+?)(?:\.git)?/?$")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Options:
    app: str
    image: str
    envs: tuple[str, ...]
    repo_url: str = ""  # the origin's URL, for the Argo CD apps (a placeholder without one)
    rollout: str = ""  # "", or an Argo Rollouts strategy (ROLLOUTS) in place of the Deployment

    @property
    def kustomize_image(self) -> str:
        return strip_registry(self.image)

    def branch(self, env: str) -> str:
        return DEFAULT_BRANCHES.get(env, "main")


@dataclasses.dataclass(frozen=True, kw_only=True)
class FileChange:
    path: str  # relative, with forward slashes
    old: str | None  # None: the file does not exist
    new: str  # what the file would hold (== old when nothing changes or it is skipped)
    outcome: str
    reason: str = ""  # why it is skipped


def check_app(app: str) -> str:
    if not ENV_NAME_RE.fullmatch(app):
        raise UsageError(
            f"--app {app!r}: use lowercase letters, digits and '-' (a Kubernetes name, at most 40 characters)"
        )
    return app


def check_image(image: str) -> str:
    if not IMAGE_NAME_RE.fullmatch(image) or "/" not in image:
        raise UsageError(
            f"--image {image!r}: give a full image name without tag, e.g. ghcr.io/acme/shop "
            "(lowercase; a registry host first)"
        )
    return image


def parse_envs(text: str) -> tuple[str, ...]:
    envs = tuple(part.strip() for part in text.split(",") if part.strip())
    if not envs:
        raise UsageError("--envs needs at least one environment, e.g. dev,stage,prod")
    for env in envs:
        if not ENV_NAME_RE.fullmatch(env):
            raise UsageError(
                f"--envs: invalid environment name {env!r}: use lowercase letters, digits and '-'"
            )
    if len(set(envs)) != len(envs):
        raise UsageError(f"--envs lists an environment twice: {text}")
    return envs


def github_slug(url: str) -> tuple[str, str] | None:
    found = _GITHUB.search(url)
    return (found.group(1), found.group(2)) if found else None


def default_app(project_name: str, directory_name: str) -> str:
    """A Kubernetes name from the project's name, else the directory's."""
    for candidate in (project_name, directory_name):
        name = re.sub(r"[^a-z0-9-]+", "-", candidate.lower()).strip("-")[:40].strip("-")
        if name and ENV_NAME_RE.fullmatch(name):
            return name
    return "app"


# -- templates -----------------------------------------------------------------------------------


def template(name: str) -> str:
    """A bundled template by its path under ``templates/`` (they ship in the wheel)."""
    return resources.files("dex_tasks.scaffold").joinpath("templates", name).read_text(encoding="utf-8")


def render(text: str, values: Mapping[str, str]) -> str:
    """Replace every ``@@name@@``; a marker without a value is a bug in the templates."""

    def value(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise InternalError(f"scaffold template marker @@{key}@@ has no value")
        return values[key]

    return _MARKER.sub(value, text)


def _flow(items: Sequence[str]) -> str:
    return ", ".join(items)


def workflow_values(options: Options) -> dict[str, str]:
    envs = options.envs
    branches = ["main"] + [b for b in dict.fromkeys(options.branch(e) for e in envs) if b != "main"]
    return {
        "push_branches": _flow(branches),
        "from_envs": _flow(envs[:-1]),
        "to_envs": _flow(envs[1:]),
        "default_from": envs[-2] if len(envs) > 1 else envs[0],
        "default_to": envs[-1],
        "all_envs": _flow(envs),
        "last_env": envs[-1],
    }


def manifest_values(options: Options) -> dict[str, str]:
    slug = github_slug(options.repo_url)
    owner, repo = slug or ("OWNER", "REPO")
    return {
        "app": options.app,
        "image": options.image,
        "kustomize_image": options.kustomize_image,
        "repo_url": options.repo_url or f"https://github.com/{owner}/{repo}.git",
        "owner": owner,
        "repo": repo,
        "overlays": OVERLAYS,
        "base": BASE,
        "apps": APPS,
        "preview_prefix": f"{options.app}-pr-",
        "strategy": {"canary": "canary", "bluegreen": "blue-green"}.get(options.rollout, ""),
        "role": SECOND_SERVICE.get(options.rollout, ""),
    }


def dex_table(options: Options, extra: Mapping[str, str] | None = None) -> str:
    """The ``[tool.dex]`` tables for ``options``; ``extra`` adds ``key = <TOML value>`` lines."""
    app, envs = options.app, options.envs
    branches = ", ".join(f"{env} = {_toml_string(options.branch(env))}" for env in envs)
    lines = [
        "[tool.dex]",
        "# The overlays' images[].newName must equal `image` (bump-overlay/promote/rollback check it).",
        f"image = {_toml_string(options.image)}",
        f"environments = [{', '.join(_toml_string(e) for e in envs)}]",
        f"branches = {{ {branches} }}",
        f'namespace = "{app}-{{env}}"',
        f'argocd-app = "{app}-{{env}}"',
        f"deployment = {_toml_string(app)}",
        f"container = {_toml_string(app)}",
    ]
    lines += [f"{key} = {value}" for key, value in (extra or {}).items() if "." not in key]
    lines += [
        "",
        "[tool.dex.cluster]",
        f"service = {_toml_string(app)}",
        "service-port = 8000",
        f'preview-namespace = "{app}-pr-{{pr}}"',
        f'preview-app = "{app}-pr-{{pr}}"',
    ]
    if options.rollout:
        lines.append('workload = "Rollout"  # an Argo Rollouts Rollout, not a Deployment')
    lines += [f"{key.partition('.')[2]} = {value}" for key, value in (extra or {}).items() if "." in key]
    return "\n".join(lines) + "\n"


def _toml_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# -- merging into the user's files ---------------------------------------------------------------


def _append(old: str, block: str) -> str:
    """``block`` after ``old``, separated by one blank line, never touching ``old``'s bytes."""
    if not old:
        return block
    newline = "\r\n" if "\r\n" in old else "\n"
    sep = "" if old.endswith("\n") else newline
    return old + sep + newline + block.replace("\n", newline)


def merge_pyproject(old: str | None, options: Options) -> FileChange:
    path = "pyproject.toml"
    dex = dex_table(options)
    poe = f"[tool.poe]\n{POE_LINE}\n"
    if old is None:
        project = f'[project]\nname = "{options.app}"\nversion = "0.1.0"\nrequires-python = ">=3.11"\n'
        return FileChange(path=path, old=None, new=f"{project}\n{poe}\n{dex}", outcome=CREATED)
    try:
        data = tomllib.loads(old)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path} is not valid TOML ({exc}): fix it before init merges into it") from exc
    tool = data.get("tool")
    tool = tool if isinstance(tool, dict) else {}
    blocks: list[str] = []
    reasons: list[str] = []
    poe_table = tool.get("poe")
    if poe_table is None:
        blocks.append(poe)
    elif not (isinstance(poe_table, dict) and poe_table.get("include_script") == "dex_tasks.poe:tasks"):
        reasons.append(f"[tool.poe] exists without {POE_LINE}: add that line to it yourself")
    dex_config = tool.get("dex")
    if dex_config is None:
        blocks.append(dex)
    elif options.rollout and _workload(dex_config) != "Rollout":
        # The user's file is never rewritten, and a key cannot be appended into an existing table.
        reasons.append('[tool.dex.cluster] has no workload = "Rollout": add that line to it yourself')
    if not blocks:
        outcome = SKIPPED if reasons else UNCHANGED
        return FileChange(path=path, old=old, new=old, outcome=outcome, reason="; ".join(reasons))
    new = _append(old, "\n".join(blocks))
    try:
        tomllib.loads(new)
    except tomllib.TOMLDecodeError as exc:  # e.g. `tool = {...}` inline: tables cannot be appended
        reason = f"appending [tool.poe]/[tool.dex] would make it invalid TOML ({exc}); add them yourself"
        return FileChange(path=path, old=old, new=old, outcome=SKIPPED, reason=reason)
    return FileChange(path=path, old=old, new=new, outcome=UPDATED, reason="; ".join(reasons))


def _workload(dex: object) -> object:
    cluster = dex.get("cluster") if isinstance(dex, dict) else None
    return cluster.get("workload") if isinstance(cluster, dict) else None


def merge_line(path: str, old: str | None, line: str, *, present: Callable[[str], bool]) -> FileChange:
    """A file that needs ``line`` (or an equivalent, by ``present``): created, or the line appended."""
    if old is None:
        return FileChange(path=path, old=None, new=line + "\n", outcome=CREATED)
    if present(old):
        return FileChange(path=path, old=old, new=old, outcome=UNCHANGED)
    newline = "\r\n" if "\r\n" in old else "\n"
    sep = "" if not old or old.endswith(("\n", "\r")) else newline
    return FileChange(path=path, old=old, new=old + sep + line + newline, outcome=UPDATED)


def _has_git_line(text: str) -> bool:
    return any(line.strip() in {".git", ".git/", "/.git", "/.git/", "**/.git"} for line in text.splitlines())


def _has_nox_import(text: str) -> bool:
    return re.search(r"^\s*import dex_tasks\.nox\b", text, flags=re.MULTILINE) is not None


def _ours(path: str, old: str | None, new: str, *, force: bool) -> FileChange:
    if old is None:
        return FileChange(path=path, old=None, new=new, outcome=CREATED)
    if old == new:
        return FileChange(path=path, old=old, new=old, outcome=UNCHANGED)
    if force:
        return FileChange(path=path, old=old, new=new, outcome=UPDATED)
    return FileChange(
        path=path, old=old, new=old, outcome=SKIPPED, reason="exists and differs (--force overwrites it)"
    )


def desired_files(options: Options) -> dict[str, str]:
    """Every file of ours (not the merged ones) and its content."""
    files: dict[str, str] = {}
    wf_values = workflow_values(options)
    for name in WORKFLOW_FILES:
        if name == "promote.yml" and len(options.envs) < 2:
            continue  # nothing to promote to
        files[f"{WORKFLOWS}/{name}"] = render(template(f"workflows/{name}"), wf_values)
    values = manifest_values(options)
    if options.rollout:
        role = SECOND_SERVICE[options.rollout]
        files[f"{BASE}/kustomization.yaml"] = render(template("k8s/base-kustomization-rollout.yaml"), values)
        files[f"{BASE}/rollout.yaml"] = render(template(f"k8s/base-rollout-{options.rollout}.yaml"), values)
        files[f"{BASE}/service.yaml"] = render(template("k8s/base-service.yaml"), values)
        files[f"{BASE}/service-{role}.yaml"] = render(template("k8s/base-service-second.yaml"), values)
        files[f"{BASE}/rollout-transform.yaml"] = template("k8s/rollout-transform.yaml")
    else:
        for name in ("kustomization", "deployment", "service"):
            files[f"{BASE}/{name}.yaml"] = render(template(f"k8s/base-{name}.yaml"), values)
    app_files: list[str] = []
    for env in options.envs:
        env_values = {
            **values,
            "env": env,
            "namespace": f"{options.app}-{env}",
            "argocd_app": f"{options.app}-{env}",
            "branch": options.branch(env),
        }
        files[f"{OVERLAYS}/{env}/kustomization.yaml"] = render(
            template("k8s/overlay-kustomization.yaml"), env_values
        )
        files[f"{APPS}/{options.app}-{env}.yaml"] = render(template("k8s/application.yaml"), env_values)
        app_files.append(f"{options.app}-{env}.yaml")
    files[f"{APPS}/{options.app}-previews.yaml"] = render(template("k8s/previews.yaml"), values)
    app_files.append(f"{options.app}-previews.yaml")
    listing = "\n".join(f"  - {name}" for name in app_files)
    files[f"{APPS}/kustomization.yaml"] = render(
        template("k8s/apps-kustomization.yaml"), {**values, "app_files": listing}
    )
    return files


def plan(root: Path, options: Options, *, force: bool) -> list[FileChange]:
    """What init would do in ``root``: one :class:`FileChange` per file, in a stable order."""

    desired = desired_files(options)
    for path in ("pyproject.toml", "noxfile.py", ".dockerignore", f"{BASE}/deployment.yaml", *desired):
        _check_path(root, path)

    def read(path: str) -> str | None:
        target = root / path
        if not target.is_file():
            if target.exists():
                raise UsageError(f"{path} exists and is not a file")
            return None
        # newline="" keeps CRLF as it is, so a comparison or an append never changes line endings.
        try:
            with target.open(encoding="utf-8", newline="") as handle:
                return handle.read()
        except UnicodeDecodeError as exc:  # a comparison or an append must not guess an encoding
            raise UsageError(f"{path} is not UTF-8 text (byte {exc.start}): nothing changed") from None

    deployment = f"{BASE}/deployment.yaml"
    switching = bool(options.rollout) and read(deployment) is not None
    if switching and not force:
        raise UsageError(
            f"{deployment} exists: init --rollout {options.rollout} would replace the Deployment with "
            "a Rollout (the running pods move to a new ReplicaSet); rerun with --force to do it: "
            "nothing changed"
        )
    current = rollout_of(root) if options.rollout else ""
    if current and current != options.rollout and not force:
        raise UsageError(
            f"{BASE}/rollout.yaml is a {current} Rollout: init --rollout {options.rollout} would change its "
            "strategy; rerun with --force to do it: nothing changed"
        )
    changes = [
        merge_pyproject(read("pyproject.toml"), options),
        merge_line("noxfile.py", read("noxfile.py"), NOX_LINE, present=_has_nox_import),
        merge_line(".dockerignore", read(".dockerignore"), ".git", present=_has_git_line),
    ]
    if changes[2].outcome == CREATED:  # a new .dockerignore gets the whole template
        changes[2] = FileChange(path=".dockerignore", old=None, new=template("dockerignore"), outcome=CREATED)
    changes += [_ours(path, read(path), new, force=force) for path, new in desired.items()]
    if switching:  # --force: the kustomization no longer lists it; deleting is the user's call
        changes = [
            dataclasses.replace(change, reason=f"it no longer lists deployment.yaml: delete {deployment}")
            if change.path == f"{BASE}/kustomization.yaml" and change.outcome == UPDATED
            else change
            for change in changes
        ]
    return changes


def _check_path(root: Path, path: str) -> None:
    """Refuse, before anything is read or written, a file of init's whose way goes through a
    symbolic link (it could lead out of the repository: init would write a peer's file) or
    through a file where a directory must be (the write would fail half-way)."""
    for step in paths.components(path)[:-1]:
        if (root / step).is_symlink():
            break  # check_disk's refusal says which link
        if (root / step).exists() and not (root / step).is_dir():
            raise UsageError(f"{step} exists and is not a directory (init writes {path}): nothing changed")
        if not (root / step).exists():
            break
    paths.check_disk(root, path)


def rollout_of(root: Path) -> str:
    """The strategy of the Rollout a previous ``init --rollout`` wrote in ``root`` ("" for none)."""
    path = root / BASE / "rollout.yaml"
    if not path.is_file():
        return ""
    return (
        "bluegreen"
        # errors="replace": a hand-edited file that is not UTF-8 still has a strategy line to find
        if re.search(r"^\s+blueGreen:", path.read_text(encoding="utf-8", errors="replace"), re.MULTILINE)
        else "canary"
    )
