"""Nothing is read or written outside the repository, whatever was committed or configured.

A symbolic link committed anywhere on an overlay's path, pointing out of the repository, would make
bump-overlay rewrite (or append an ``images:`` entry to) whatever file it leads to. Every link
position is refused with exit 2 and one line, by every writing task, in real runs and dry runs,
with nothing changed: not the remote, the clone, the worktree list, the temp dir, nor the files
outside. Absolute and ``..`` overlays are refused when the config loads.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from dex_tasks.errors import UnsafePathError
from dex_tasks.gitops import paths
from tests.gitops_fixtures import OVERLAYS, GitOpsRepo, overlay_path, overlay_text
from tests.helpers import git

if TYPE_CHECKING:
    from tests.conftest import CliRunner

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(sys.platform == "win32", reason="symbolic links need privileges on Windows"),
]

# Every step of prod's overlay path, from the top down to the file itself.
STEPS = ("infra", "infra/argocd", OVERLAYS, f"{OVERLAYS}/prod", overlay_path("prod"))

NO_IMAGES = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: not-an-overlay\ndata:\n  a: b\n"


def _fingerprint(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(autouse=True)
def own_tempdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A temp dir of this test's own (the machine's /tmp is shared), so leftovers are ours."""
    mine = tmp_path / "tmp"
    mine.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(mine))


def _temp_entries() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).iterdir()}


def _link_on_origin(repo: GitOpsRepo, step: str, outside: Path, *, images: bool = True) -> None:
    """Replace ``step`` on origin's main with a symbolic link to a copy of it outside the repository."""
    w = repo.writer
    git("fetch", "--quiet", "origin", cwd=w)
    git("checkout", "--quiet", "-B", "main", "origin/main", cwd=w)
    source = w / step
    target = outside / Path(step).name
    if source.is_dir():
        shutil.copytree(source, target)
    else:
        target.write_text(overlay_text("prod", "sha-00000000") if images else NO_IMAGES, encoding="utf-8")
    if not images:
        file = outside / Path(step).name
        for found in [file] if file.is_file() else list(file.rglob("kustomization.yaml")):
            if "prod" in found.as_posix():
                found.write_text(NO_IMAGES, encoding="utf-8")
    git("rm", "-r", "--quiet", step, cwd=w)
    shutil.rmtree(source, ignore_errors=True)
    source.parent.mkdir(parents=True, exist_ok=True)
    source.symlink_to(target, target_is_directory=target.is_dir())
    git("add", step, cwd=w)
    git("commit", "--quiet", "-m", f"chore: {step} is a link", cwd=w)
    git("push", "--quiet", "origin", "HEAD:refs/heads/main", cwd=w)


CASES = [
    ("bump-overlay", "prod", "T4", "--direct"),
    ("bump-overlay", "prod", "T4", "--direct", "--dry-run"),
    ("bump-overlay", "prod", "T4"),
    ("bump-overlay", "stage", "prod", "T4", "--no-push"),
    ("promote", "stage", "prod", "--verify", "git", "--direct"),
    ("rollback", "prod", "T0"),
    ("rollback", "prod", "--revert", "--dry-run"),
]


@pytest.mark.parametrize("images", [True, False], ids=["images", "no-images"])
@pytest.mark.parametrize("step", STEPS)
@pytest.mark.parametrize("argv", CASES, ids=[" ".join(a) for a in CASES])
def test_a_symbolic_link_on_the_overlay_path_is_refused_and_nothing_is_written(  # noqa: PLR0917 - pytest parametrizes positionally
    repo: GitOpsRepo, run_cli: CliRunner, tmp_path: Path, argv: tuple[str, ...], step: str, images: bool
) -> None:
    if not images and argv[0] != "bump-overlay":
        pytest.skip("one task is enough for the file without images:")
    outside = tmp_path / "outside"
    outside.mkdir()
    _link_on_origin(repo, step, outside, images=images)
    git("pull", "--quiet", "--ff-only", cwd=repo.clone)  # the user's clone has the link too
    argv = tuple({"T4": repo.tags[4], "T0": repo.tags[0]}.get(arg, arg) for arg in argv)
    before, files, temps = repo.snapshot(), _fingerprint(outside), _temp_entries()
    result = run_cli(*argv, "--json", cwd=repo.clone)
    assert result.code == 2, result.err
    errors = [line for line in result.err.splitlines() if "error:" in line]
    assert len(errors) == 1, result.err
    assert "is a symbolic link" in errors[0]
    assert "Traceback" not in result.err
    assert json.loads(result.out)["exit_code"] == 2
    assert repo.snapshot() == before
    assert _fingerprint(outside) == files
    assert _temp_entries() == temps


def test_status_and_history_refuse_a_linked_overlay_too(
    repo: GitOpsRepo, run_cli: CliRunner, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    _link_on_origin(repo, overlay_path("prod"), outside)
    result = run_cli("rollback", "prod", cwd=repo.clone)
    assert result.code == 2
    assert f"{overlay_path('prod')} is a symbolic link in origin/main" in result.err


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/etc", "is an absolute path"),
        ("C:\\\\overlays", "is an absolute path"),
        ("C:overlays", "is an absolute path"),
        ("\\\\\\\\server\\\\share", "is an absolute path"),
        ("../../outside", "climbs out with '..'"),
        ("infra/../../outside", "climbs out with '..'"),
        ("..\\\\..\\\\outside", "climbs out with '..'"),
    ],
)
@pytest.mark.parametrize("task", [("config",), ("bump-overlay", "prod", "sha-1a2b3c4d", "--direct")])
def test_overlays_outside_the_project_are_refused_when_config_loads(  # noqa: PLR0917 - pytest parametrizes positionally
    repo: GitOpsRepo, run_cli: CliRunner, tmp_path: Path, value: str, expected: str, task: tuple[str, ...]
) -> None:
    pyproject = repo.clone / "pyproject.toml"
    # Into [tool.dex] itself: the fixture's file has more tables after it.
    text = pyproject.read_text(encoding="utf-8").replace(
        "[tool.dex]\n", f'[tool.dex]\noverlays = "{value}"\n', 1
    )
    pyproject.write_text(text, encoding="utf-8")
    before, temps = repo.snapshot(), _temp_entries()
    result = run_cli(*task, cwd=repo.clone)
    assert result.code == 2, result.err
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert len(lines) == 1, result.err
    assert "tool.dex.overlays" in lines[0]
    assert expected in lines[0]
    assert repo.snapshot() == before
    assert _temp_entries() == temps


def test_backslashes_in_overlays_are_separators(repo: GitOpsRepo, run_cli: CliRunner) -> None:
    pyproject = repo.clone / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8").replace(
        "[tool.dex]\n", '[tool.dex]\noverlays = "infra\\\\argocd\\\\overlays"\n', 1
    )
    pyproject.write_text(text, encoding="utf-8")
    result = run_cli("bump-overlay", "prod", repo.tags[4], "--direct", cwd=repo.clone)
    assert result.code == 0, result.err
    assert repo.tag("prod") == repo.tags[4]


def test_check_disk_refuses_a_link_in_the_worktree(tmp_path: Path) -> None:
    # What a real run opens: a link in the checked-out files (and not only in the tree) is refused.
    top = tmp_path / "wt"
    (top / "infra").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (top / "infra" / "overlays").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafePathError, match=r"infra/overlays .* is a symbolic link in the worktree"):
        paths.check_disk(top, "infra/overlays/prod/kustomization.yaml")
    paths.check_disk(top, "infra/other/prod/kustomization.yaml")  # missing is the reader's business
    for bad in ("/etc/passwd", "../x", "a/../../x"):
        with pytest.raises(UnsafePathError, match="not a path inside the repository"):
            paths.components(bad)


@pytest.mark.parametrize("how", ["dotdot", "link", "absolute"])
def test_image_build_context_outside_the_repository_is_refused(
    tmp_path: Path, run_cli: CliRunner, how: str
) -> None:
    # The context is sent to the daemon and can end up in a pushed image: not the runner's files.
    top, outside = tmp_path / "repo", tmp_path / "outside"
    top.mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_text("not for the image\n", encoding="utf-8")
    context = {"dotdot": "../outside", "link": "ctx", "absolute": outside.as_posix()}[how]
    if how == "link":
        (top / "ctx").symlink_to(outside, target_is_directory=True)
    (top / "pyproject.toml").write_text(
        f'[project]\nname = "x"\n[tool.dex.build]\ncontext = "{context}"\n', encoding="utf-8"
    )
    (top / "Dockerfile").write_text("FROM scratch\n", encoding="utf-8")
    git("init", "--quiet", str(top), cwd=tmp_path)
    git("add", ".", cwd=top)
    git("commit", "--quiet", "-m", "x", cwd=top)
    result = run_cli("image-build", "--dry-run", cwd=top)
    assert result.code == 2, result.err
    assert "tool.dex.build.context" in result.err
    assert "outside the repository" in result.err
    assert "$ docker" not in result.err
