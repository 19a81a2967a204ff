"""init: the scaffold renders with kubectl, passes the workflow validators, merges without rewriting,
is idempotent, never overwrites without --force, and bump-overlay/promote work on what it made."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
from typing import TYPE_CHECKING, Any

import pytest
from ruamel.yaml import YAML

from dex_tasks import config
from dex_tasks.scaffold import init as scaffold
from tests.helpers import REPO_ROOT, git, need_tool
from tests.integration.test_workflows_lint import check_jsonschema, zizmor

if TYPE_CHECKING:
    from pathlib import Path

    from tests.conftest import CliRunner

USES = re.compile(r"^\s*uses:\s*(\S+)", re.MULTILINE)


def _init(run_cli: CliRunner, root: Path, *args: str) -> dict[str, Any]:
    result = run_cli("init", "--json", "-C", str(root), *args)
    assert result.code == 0, result.err
    payload: dict[str, Any] = json.loads(result.out)
    return payload


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".git" not in p.parts
    }


def test_templates_call_the_same_pinned_workflows_as_the_examples() -> None:
    for name in scaffold.WORKFLOW_FILES:
        example = (REPO_ROOT / "examples" / "workflows" / name).read_text(encoding="utf-8")
        ours = scaffold.template(f"workflows/{name}")
        assert USES.findall(ours) == USES.findall(example), name
        assert USES.findall(ours)


def test_rendered_with_the_default_envs_the_workflows_are_the_examples() -> None:
    options = scaffold.Options(app="dex", image="ghcr.io/data-literate/dex", envs=("dev", "stage", "prod"))
    files = scaffold.desired_files(options)
    for name in scaffold.WORKFLOW_FILES:
        example = (REPO_ROOT / "examples" / "workflows" / name).read_text(encoding="utf-8")
        assert files[f".github/workflows/{name}"] == example, name


def test_init_scaffolds_a_repo_that_renders_and_validates(run_cli: CliRunner, tmp_path: Path) -> None:
    root = tmp_path / "shop"
    root.mkdir()
    payload = _init(run_cli, root, "--app", "shop", "--image", "ghcr.io/acme/shop", "--envs", "dev,qa,prod")
    assert payload["task"] == "init"
    assert payload["updated"] == payload["skipped"] == payload["unchanged"] == []
    created = set(payload["created"])
    assert {"pyproject.toml", "noxfile.py", ".dockerignore", "infra/argocd/base/deployment.yaml"} <= created
    assert {f"infra/argocd/overlays/{env}/kustomization.yaml" for env in ("dev", "qa", "prod")} <= created
    assert ".git" in (root / ".dockerignore").read_text(encoding="utf-8").splitlines()

    cfg = config.load(root)  # the [tool.dex] written is valid config
    assert (cfg.image, cfg.environments, cfg.deployment) == (
        "ghcr.io/acme/shop",
        ("dev", "qa", "prod"),
        "shop",
    )
    kubectl = need_tool("kubectl")
    for env in cfg.environments:
        rendered = subprocess.run(
            [kubectl, "kustomize", str(root / cfg.overlay_dir(env))],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert f"image: ghcr.io/acme/shop:{scaffold.PLACEHOLDER_TAG}" in rendered
        assert f"namespace: shop-{env}" in rendered
        assert "containerPort: 8000" in rendered
    apps = subprocess.run(
        [kubectl, "kustomize", str(root / scaffold.APPS)], capture_output=True, text=True, check=True
    ).stdout
    assert "kind: ApplicationSet" in apps
    assert "shop-pr-{{number}}" in apps
    assert "- preview" in apps
    assert apps.count("kind: Application\n") == 3

    workflows = sorted((root / ".github" / "workflows").glob("*.yml"))
    assert len(workflows) == 4
    done = check_jsonschema(*workflows)
    assert done.returncode == 0, done.stdout + done.stderr
    assert zizmor(*workflows) == []
    promote = (root / ".github" / "workflows" / "promote.yml").read_text(encoding="utf-8")
    assert "options: [dev, qa]" in promote
    assert "options: [qa, prod]" in promote


def test_a_second_run_changes_nothing(run_cli: CliRunner, tmp_path: Path) -> None:
    _init(run_cli, tmp_path, "--app", "shop", "--image", "ghcr.io/acme/shop")
    before = _tree(tmp_path)
    again = _init(run_cli, tmp_path)  # app, image and envs now come from the [tool.dex] it wrote
    assert again["created"] == again["updated"] == again["skipped"] == []
    assert len(again["unchanged"]) == len(before)
    assert _tree(tmp_path) == before


def test_an_existing_pyproject_is_appended_to_never_rewritten(run_cli: CliRunner, tmp_path: Path) -> None:
    original = (
        '[project]\nname = "Shop_API"   # odd spacing stays\nversion = "1"\n\n[tool.ruff]\nline-length = 99\n'
    )
    (tmp_path / "pyproject.toml").write_bytes(original.replace("\n", "\r\n").encode())
    (tmp_path / "noxfile.py").write_text("import nox\n", encoding="utf-8")
    payload = _init(run_cli, tmp_path, "--image", "ghcr.io/acme/shop-api")
    assert {"pyproject.toml", "noxfile.py"} <= set(payload["updated"])
    text = (tmp_path / "pyproject.toml").read_bytes().decode()
    assert text.startswith(original.replace("\n", "\r\n"))  # byte for byte, CRLF kept
    assert "\n" not in text.replace("\r\n", "")  # what was appended has CRLF too
    assert config.load(tmp_path).deployment == "shop-api"
    assert (tmp_path / "noxfile.py").read_text(encoding="utf-8") == f"import nox\n{scaffold.NOX_LINE}\n"


def test_a_differing_file_is_skipped_unless_force(run_cli: CliRunner, tmp_path: Path) -> None:
    _init(run_cli, tmp_path, "--app", "shop", "--image", "ghcr.io/acme/shop")
    service = tmp_path / scaffold.BASE / "service.yaml"
    service.write_text("# mine\n", encoding="utf-8")
    result = run_cli("init", "--json", "-C", str(tmp_path))
    assert result.code == 0
    assert json.loads(result.out)["skipped"] == [f"{scaffold.BASE}/service.yaml"]
    assert "service.yaml: skipped: exists and differs (--force overwrites it)" in result.err
    assert service.read_text(encoding="utf-8") == "# mine\n"
    forced = _init(run_cli, tmp_path, "--force")
    assert forced["updated"] == [f"{scaffold.BASE}/service.yaml"]
    assert "kind: Service" in service.read_text(encoding="utf-8")


def test_an_existing_poe_table_without_our_line_is_skipped_with_a_warning(
    run_cli: CliRunner, tmp_path: Path
) -> None:
    original = '[tool.poe.tasks]\nhello = "echo hi"\n'
    (tmp_path / "pyproject.toml").write_text(original, encoding="utf-8")
    result = run_cli("init", "--json", "-C", str(tmp_path), "--image", "ghcr.io/acme/x")
    assert result.code == 0
    assert "pyproject.toml" in json.loads(result.out)["updated"]  # [tool.dex] appended
    assert "add that line to it yourself" in result.err
    assert (tmp_path / "pyproject.toml").read_text(encoding="utf-8").startswith(original)


def test_dry_run_shows_the_diff_and_writes_nothing(run_cli: CliRunner, tmp_path: Path) -> None:
    result = run_cli("init", "--dry-run", "-C", str(tmp_path), "--app", "shop")
    assert result.code == 0, result.err
    assert "+++ b/infra/argocd/overlays/dev/kustomization.yaml" in result.out
    assert "+    newTag: sha-0000000" in result.out
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--app", "Shop!"], "--app 'Shop!'"),
        (["--image", "ghcr.io/acme/shop:1.0"], "--image"),
        (["--envs", "dev,dev"], "twice"),
        (["--envs", "Dev"], "invalid environment name"),
        # An unset "$ENVS" in a script: not the defaults, which are not what it asked for.
        (["--envs", ""], "--envs needs at least one environment"),
        (["--envs", " , "], "--envs needs at least one environment"),
        (["--rollout", "linear"], "invalid choice: 'linear'"),
    ],
)
def test_bad_input_is_exit_2_in_one_line_and_writes_nothing(
    run_cli: CliRunner, tmp_path: Path, args: list[str], message: str
) -> None:
    result = run_cli("init", "-C", str(tmp_path), *args)
    assert result.code == 2
    assert message in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("rollout", [[], ["--rollout", "canary"], ["--rollout", "bluegreen"]])
def test_bump_and_promote_work_on_the_scaffold(
    run_cli: CliRunner, tmp_path: Path, rollout: list[str]
) -> None:
    origin = tmp_path / "origin.git"
    repo = tmp_path / "shop"
    git("init", "--quiet", "--bare", "--initial-branch=main", str(origin), cwd=tmp_path)
    git("init", "--quiet", "--initial-branch=main", str(repo), cwd=tmp_path)
    git("remote", "add", "origin", str(origin), cwd=repo)
    _init(run_cli, repo, "--app", "shop", "--image", "ghcr.io/acme/shop", *rollout)
    if "registry_check" in {f.name for f in dataclasses.fields(config.Config)}:
        # No image exists in any registry here: the GitOps write path must not ask one.
        pyproject = repo / "pyproject.toml"
        text = pyproject.read_text(encoding="utf-8")
        pyproject.write_text(
            text.replace("[tool.dex]\n", '[tool.dex]\nregistry-check = "off"\n', 1), encoding="utf-8"
        )
    git("add", "-A", cwd=repo)
    git("commit", "--quiet", "-m", "chore: dex-tasks init", cwd=repo)
    git("push", "--quiet", "origin", "main", "main:dev", cwd=repo)
    tag = "sha-1a2b3c4d"

    bumped = run_cli("bump-overlay", "dev", tag, "--direct", "--json", "-C", str(repo))
    assert bumped.code == 0, bumped.err
    assert json.loads(bumped.out)["pushed"] is True
    promoted = run_cli("promote", "dev", "stage", "--direct", "--verify", "git", "--json", "-C", str(repo))
    assert promoted.code == 0, promoted.err
    assert json.loads(promoted.out)["tag"] == tag
    stage = git("show", "main:infra/argocd/overlays/stage/kustomization.yaml", cwd=origin)
    assert f"newTag: {tag}  # set by dex-tasks bump-overlay, promote and rollback" in stage
    assert "newName: ghcr.io/acme/shop  # must equal [tool.dex] image" in stage


# -- init --rollout ------------------------------------------------------------------------------


def _render(root: Path) -> list[dict[str, Any]]:
    kubectl = need_tool("kubectl")
    done = subprocess.run([kubectl, "kustomize", str(root)], capture_output=True, text=True, check=True)
    return [doc for doc in YAML(typ="safe").load_all(done.stdout) if doc]


def _kinds(docs: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(doc["kind"], doc["metadata"]["name"]): doc for doc in docs}


def _image(rollout: dict[str, Any]) -> str:
    image: str = rollout["spec"]["template"]["spec"]["containers"][0]["image"]
    return image


@pytest.mark.parametrize(
    ("strategy", "second", "refs"),
    [
        ("canary", "shop-canary", {"stableService": "shop", "canaryService": "shop-canary"}),
        ("bluegreen", "shop-preview", {"activeService": "shop", "previewService": "shop-preview"}),
    ],
)
def test_init_rollout_scaffolds_a_rollout_that_kustomize_renders(
    run_cli: CliRunner, tmp_path: Path, strategy: str, second: str, refs: dict[str, str]
) -> None:
    payload = _init(run_cli, tmp_path, "--app", "shop", "--image", "ghcr.io/acme/shop", "--rollout", strategy)
    assert payload["rollout"] == strategy
    base = f"{scaffold.BASE}/"
    assert {base + name for name in ("rollout.yaml", "rollout-transform.yaml", f"{second[5:]}.yaml")} <= {
        path.replace("service-", "") for path in payload["created"]
    }
    assert f"{base}deployment.yaml" not in payload["created"]
    cfg = config.load(tmp_path)
    assert (cfg.cluster.workload, cfg.deployment) == ("Rollout", "shop")
    transform = (tmp_path / base / "rollout-transform.yaml").read_text(encoding="utf-8")
    assert "Apache License 2.0" in transform
    assert "path: spec/strategy/blueGreen/previewService" in transform

    for env in cfg.environments:
        objects = _kinds(_render(tmp_path / cfg.overlay_dir(env)))
        assert set(objects) == {("Rollout", "shop"), ("Service", "shop"), ("Service", second)}
        rollout = objects[("Rollout", "shop")]
        assert rollout["apiVersion"] == "argoproj.io/v1alpha1"
        assert rollout["metadata"]["namespace"] == f"shop-{env}"
        assert _image(rollout) == f"ghcr.io/acme/shop:{scaffold.PLACEHOLDER_TAG}"
        spec = rollout["spec"]["strategy"]
        if strategy == "canary":
            steps = spec["canary"]["steps"]
            assert steps[:2] == [{"setWeight": 20}, {"pause": {}}]
            assert steps[-1] == {"pause": {"duration": "30s"}}  # a final timed pause
        else:
            assert spec["blueGreen"]["autoPromotionEnabled"] is False
        assert {key: spec[next(iter(spec))][key] for key in refs} == refs

    # The overlay's newTag (and a pinned digest) reach the Rollout, and a namePrefix/nameSuffix
    # reaches its service references (rollout-transform.yaml's nameReference).
    overlay = tmp_path / cfg.overlay_dir("dev") / "kustomization.yaml"
    text = overlay.read_text(encoding="utf-8")
    tag_line = f"newTag: {scaffold.PLACEHOLDER_TAG}  #"
    overlay.write_text(text.replace(tag_line, "newTag: sha-1a2b3c4  #"), encoding="utf-8")
    assert _image(_kinds(_render(overlay.parent))[("Rollout", "shop")]) == "ghcr.io/acme/shop:sha-1a2b3c4"
    digest = "sha256:" + "ab" * 32
    overlay.write_text(
        text.replace(tag_line, f"digest: {digest}\n    newTag: sha-1a2b3c4  #")
        + "namePrefix: blue-\nnameSuffix: -v2\n",
        encoding="utf-8",
    )
    objects = _kinds(_render(overlay.parent))
    rollout = objects[("Rollout", "blue-shop-v2")]
    assert _image(rollout) == f"ghcr.io/acme/shop:sha-1a2b3c4@{digest}"  # kustomize keeps both
    spec = rollout["spec"]["strategy"]
    assert {key: spec[next(iter(spec))][key] for key in refs} == {k: f"blue-{v}-v2" for k, v in refs.items()}
    assert ("Service", f"blue-{second}-v2") in objects


def test_init_rollout_is_idempotent_and_keeps_its_strategy(run_cli: CliRunner, tmp_path: Path) -> None:
    _init(run_cli, tmp_path, "--app", "shop", "--image", "ghcr.io/acme/shop", "--rollout", "bluegreen")
    before = _tree(tmp_path)
    again = _init(run_cli, tmp_path)  # no --rollout: the Rollout it wrote decides
    assert again["rollout"] == "bluegreen"
    assert again["created"] == again["updated"] == again["skipped"] == []
    assert _tree(tmp_path) == before
    (tmp_path / "new").mkdir()
    dry = run_cli("init", "--dry-run", "-C", str(tmp_path / "new"), "--app", "x", "--rollout", "canary")
    assert dry.code == 0, dry.err
    assert "+kind: Rollout" in dry.out
    assert "+  - rollout-transform.yaml" in dry.out
    assert list((tmp_path / "new").iterdir()) == []


def test_switching_a_deployment_scaffold_to_a_rollout_needs_force(run_cli: CliRunner, tmp_path: Path) -> None:
    _init(run_cli, tmp_path, "--app", "shop", "--image", "ghcr.io/acme/shop")
    before = _tree(tmp_path)
    for extra in ([], ["--dry-run"], ["--json"]):
        refused = run_cli("init", "-C", str(tmp_path), "--rollout", "canary", *extra)
        assert refused.code == 2
        assert refused.err.strip().splitlines() == [
            (
                f"dex-tasks init: error: {scaffold.BASE}/deployment.yaml exists: init --rollout canary would "
                "replace the Deployment with a Rollout (the running pods move to a new ReplicaSet); rerun "
                "with --force to do it: nothing changed"
            )
        ]
        assert _tree(tmp_path) == before

    forced = run_cli("init", "--json", "-C", str(tmp_path), "--rollout", "canary", "--force")
    assert forced.code == 0, forced.err
    payload = json.loads(forced.out)
    assert payload["updated"] == [f"{scaffold.BASE}/kustomization.yaml"]
    assert f"{scaffold.BASE}/rollout.yaml" in payload["created"]
    assert payload["skipped"] == ["pyproject.toml"]  # the user's file: never rewritten
    assert '[tool.dex.cluster] has no workload = "Rollout": add that line to it yourself' in forced.err
    assert f"delete {scaffold.BASE}/deployment.yaml" in forced.err
    assert set(_kinds(_render(tmp_path / scaffold.OVERLAYS / "dev"))) == {
        ("Rollout", "shop"),
        ("Service", "shop"),
        ("Service", "shop-canary"),
    }


def test_switching_a_rollout_strategy_needs_force(run_cli: CliRunner, tmp_path: Path) -> None:
    _init(run_cli, tmp_path, "--app", "shop", "--image", "ghcr.io/acme/shop", "--rollout", "canary")
    before = _tree(tmp_path)
    for extra in ([], ["--dry-run"]):
        refused = run_cli("init", "-C", str(tmp_path), "--rollout", "bluegreen", *extra)
        assert refused.code == 2
        assert refused.err.strip().splitlines() == [
            (
                f"dex-tasks init: error: {scaffold.BASE}/rollout.yaml is a canary Rollout: init --rollout "
                "bluegreen would change its strategy; rerun with --force to do it: nothing changed"
            )
        ]
        assert _tree(tmp_path) == before  # not even the preview Service is added

    forced = run_cli("init", "--json", "-C", str(tmp_path), "--rollout", "bluegreen", "--force")
    assert forced.code == 0, forced.err
    assert ("Service", "shop-preview") in _kinds(_render(tmp_path / scaffold.OVERLAYS / "dev"))


@pytest.mark.parametrize(
    "link",
    ["infra/argocd/base/rollout.yaml", "infra/argocd/base", ".dockerignore"],
)
def test_a_symlink_on_the_way_to_a_file_of_ours_is_refused_and_nothing_is_written(
    run_cli: CliRunner, tmp_path: Path, link: str
) -> None:
    # A link out of the repository (a peer's checkout, a home directory): init must not write
    # through it, nor write anything else before saying no.
    root, outside = tmp_path / "shop", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    target = outside / "target"
    if link.endswith((".yaml", "ignore")):
        target.write_text("theirs\n", encoding="utf-8")
    else:
        target.mkdir()
    (root / link).parent.mkdir(parents=True, exist_ok=True)
    (root / link).symlink_to(target)
    before = _tree(root), _tree(outside)
    result = run_cli("init", "-C", str(root), "--rollout", "canary")
    assert result.code == 2, result.err
    assert "symbolic link" in result.err
    assert len(result.err.strip().splitlines()) == 1, result.err
    assert (_tree(root), _tree(outside)) == before


def test_a_file_where_init_needs_a_directory_is_refused_and_nothing_is_written(
    run_cli: CliRunner, tmp_path: Path
) -> None:
    (tmp_path / "infra").mkdir()
    (tmp_path / "infra" / "argocd").write_text("not a directory\n", encoding="utf-8")
    result = run_cli("init", "-C", str(tmp_path), "--rollout", "bluegreen")
    assert result.code == 2, result.err
    assert "infra/argocd exists and is not a directory" in result.err
    assert "Traceback" not in result.err
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == ["infra", "infra/argocd"]


def test_a_write_that_fails_half_way_leaves_the_tree_as_it_was(
    run_cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A full disk or a read-only directory met at the fifth file: the four before must not stay
    # behind (a half scaffold that a re-run would call "exists and differs").
    from dex_tasks.tasks import init as init_task  # noqa: PLC0415 - the module the fault goes into

    (tmp_path / "pyproject.toml").write_text('[project]\nname = "shop"\n', encoding="utf-8")
    before = _tree(tmp_path)
    real = init_task._stage
    calls: list[Path] = []

    def failing(path: Path, text: str) -> Path:
        calls.append(path)
        if len(calls) == 5:
            raise OSError(28, "No space left on device", str(path))
        return real(path, text)

    monkeypatch.setattr(init_task, "_stage", failing)
    result = run_cli("init", "-C", str(tmp_path), "--rollout", "canary")
    assert result.code == 2, result.err
    assert "No space left on device" in result.err
    assert len(result.err.strip().splitlines()) == 1, result.err
    assert _tree(tmp_path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pyproject.toml"]


@pytest.mark.parametrize("path", ["infra/argocd/base/rollout.yaml", "noxfile.py", ".dockerignore"])
def test_a_file_of_ours_that_is_not_utf8_is_exit_2_and_nothing_is_written(
    run_cli: CliRunner, tmp_path: Path, path: str
) -> None:
    (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / path).write_bytes(b"\xff\xfe not text")
    before = _tree(tmp_path)
    result = run_cli("init", "-C", str(tmp_path), "--rollout", "canary")
    assert result.code == 2, result.err
    assert f"{path} is not UTF-8 text" in result.err
    assert len(result.err.strip().splitlines()) == 1, result.err
    assert _tree(tmp_path) == before


def test_a_configured_rollout_workload_scaffolds_a_rollout(run_cli: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "shop"\n\n[tool.dex.cluster]\nworkload = "Rollout"\n', encoding="utf-8"
    )
    payload = _init(run_cli, tmp_path, "--app", "shop", "--image", "ghcr.io/acme/shop")
    assert payload["rollout"] == "canary"
    assert f"{scaffold.BASE}/rollout.yaml" in payload["created"]
    assert not (tmp_path / scaffold.BASE / "deployment.yaml").exists()
    assert ("Rollout", "shop") in _kinds(_render(tmp_path / scaffold.OVERLAYS / "dev"))
