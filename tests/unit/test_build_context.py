"""Secrets stay out of images: docker's .dockerignore rules (moby/patternmatcher, ported) and the
credential check of a build context's ``.git/config``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from dex_tasks.errors import CredentialInContextError, UsageError
from dex_tasks.supply import build_context
from dex_tasks.tools import dockerignore

if TYPE_CHECKING:
    from pathlib import Path

TOKEN_HEADER = "AUTHORIZATION: basic eC1hY2Nlc3MtdG9rZW46Z2hzX3NlY3JldA=="  # x-access-token:ghs_secret


def _excluded(text: str, path: str) -> bool:
    return dockerignore.Matcher(dockerignore.read_patterns(text)).excluded(path)


# (file content, path, excluded?) - each as moby/patternmatcher decides it.
MATCHES = [
    (".git", ".git/config", True),
    (".git/", ".git/config", True),  # filepath.Clean drops the trailing slash
    ("/.git", ".git/config", True),  # a leading slash is the context root
    ("./.git", ".git/config", True),
    ("a/../.git", ".git/config", True),
    ("**/.git", ".git/config", True),  # "**/" also matches no directory at all
    ("**/.git", "sub/.git/config", True),
    (".git", "sub/.git/config", False),  # patterns are anchored at the context root
    (".*", ".git/config", True),
    (".*", "sub/.git", False),  # "*" never crosses "/"
    ("*", ".git/config", True),
    (".gi?", ".git/config", True),
    (".g[a-j]t", ".git/config", True),
    (".g[^i]t", ".git/config", False),
    (".git*", ".git/config", True),
    (".git/**", ".git/config", True),
    ("**", ".git/config", True),
    ("git", ".git/config", False),
    ("  .git  ", ".git/config", True),  # lines are trimmed
    ("# .git", ".git/config", False),  # a comment
    (" # .git", ".git/config", False),  # not a comment (it does not start with #), but no match either
    ("\ufeff.git", ".git/config", True),  # the BOM of the first line is dropped
    (".git\n!.git/config", ".git/config", False),  # the last matching pattern decides
    (".git\n!.git/config", ".git/HEAD", True),
    ("*\n!.git", ".git/config", False),  # a re-included directory re-includes what is in it
    ("!.git", ".git/config", False),
    (".git\n! .git", ".git/config", False),  # "! pattern": the space after ! is trimmed too
    ("\\.git", ".git/config", True),  # an escaped character is that character
    ("a.b", "aXb", False),  # "." is literal, not a regex dot
]


@pytest.mark.parametrize(("text", "path", "excluded"), MATCHES, ids=[f"{t!r} {p}" for t, p, _ in MATCHES])
def test_dockerignore_matches_like_moby(text: str, path: str, excluded: bool) -> None:
    assert _excluded(text, path) is excluded


def test_read_patterns_like_ignorefile_read_all() -> None:
    text = "\ufeff# comment\n\n  .git/  \n!/keep//this/\n/\n*.pyc\n"
    assert dockerignore.read_patterns(text) == [".git", "!keep/this", "/", "*.pyc"]


@pytest.mark.parametrize("text", ["!", "[unclosed", "[[:alpha:]]"])
def test_bad_patterns_are_exit_2(text: str) -> None:
    with pytest.raises(UsageError):
        dockerignore.Matcher([text])


@pytest.mark.parametrize(
    ("config", "kinds"),
    [
        ('[http "https://github.com/"]\n\textraheader = ' + TOKEN_HEADER + "\n", ["extraheader"]),
        ('[http]\n\textraHeader = "authorization: bearer x"\n', ["extraheader"]),
        ('[remote "origin"]\n\turl = https://x-access-token:ghs_abc@github.com/o/r\n', ["password"]),
        ('[url "https://me:pw@example.com/"]\n\tinsteadOf = https://example.com/\n', ["password"]),
        ('[remote "origin"]\n\turl = https://ghp_abcdefghijklmnopqrstuvwxyz0123@github.com/o/r\n', ["token"]),
        (
            '[remote "origin"]\n\turl = https://github.com/o/r\n\tfetch = +refs/heads/*:refs/remotes/o/*\n',
            [],
        ),
        ('[remote "origin"]\n\turl = git@github.com:o/r.git\n', []),  # ssh user, no secret
        ('[remote "origin"]\n\turl = https://alice@bitbucket.org/o/r.git\n', []),  # a user name alone
        ("[http]\n\textraheader = X-Custom: 1\n", []),
    ],
)
def test_credentials_in_git_config(config: str, kinds: list[str]) -> None:
    found = build_context.credentials_in(config)
    assert len(found) == len(kinds)
    for kind, text in zip(kinds, found, strict=True):
        assert kind in text.lower()


def _context(tmp_path: Path, *, config: str = "", ignore: str | None = None) -> Path:
    ctx = tmp_path / "ctx"
    (ctx / ".git").mkdir(parents=True)
    (ctx / ".git" / "HEAD").write_text("ref: refs/heads/main\n", encoding="utf-8")
    (ctx / ".git" / "config").write_text("[core]\n\tbare = false\n" + config, encoding="utf-8")
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY . .\n", encoding="utf-8")
    if ignore is not None:
        (ctx / ".dockerignore").write_text(ignore, encoding="utf-8")
    return ctx


PERSISTED = f'[http "https://github.com/"]\n\textraheader = {TOKEN_HEADER}\n'


def test_a_persisted_token_without_dockerignore_is_refused_without_its_value(tmp_path: Path) -> None:
    ctx = _context(tmp_path, config=PERSISTED)
    with pytest.raises(CredentialInContextError) as caught:
        build_context.check(ctx, ctx / "Dockerfile", buildkit=False)
    message = str(caught.value)
    assert ".git/config" in message
    assert "add .git to .dockerignore" in message
    assert "persist-credentials: false" in message
    assert "eC1hY2Nlc3" not in message
    assert "\n" not in message
    assert caught.value.exit_code == 2


@pytest.mark.parametrize("ignore", [".git", ".git/", "/.git", "**/.git", ".*", "*\n!Dockerfile"])
def test_an_excluded_git_dir_is_fine(tmp_path: Path, ignore: str) -> None:
    ctx = _context(tmp_path, config=PERSISTED, ignore=ignore + "\n")
    verdict = build_context.check(ctx, ctx / "Dockerfile", buildkit=False)
    assert verdict.sent == ()
    assert verdict.ignore_file == ctx / ".dockerignore"


def test_a_re_included_config_is_refused(tmp_path: Path) -> None:
    ctx = _context(tmp_path, config=PERSISTED, ignore=".git\n!.git/config\n")
    with pytest.raises(CredentialInContextError, match=r"\.dockerignore does not exclude it"):
        build_context.check(ctx, ctx / "Dockerfile", buildkit=False)


def test_an_unexcluded_git_without_credentials_is_only_named(tmp_path: Path) -> None:
    ctx = _context(tmp_path, ignore="*.pyc\n")
    verdict = build_context.check(ctx, ctx / "Dockerfile", buildkit=False)
    assert verdict.sent == (".git", ".git/HEAD", ".git/config")
    only_head = _context(tmp_path / "b", config=PERSISTED, ignore=".git/config\n")
    assert build_context.check(only_head, only_head / "Dockerfile", buildkit=False).sent == (
        ".git",
        ".git/HEAD",
    )


def test_buildkit_reads_the_dockerfiles_own_ignore_file_first(tmp_path: Path) -> None:
    ctx = _context(tmp_path, config=PERSISTED, ignore="*.pyc\n")  # the context's file misses .git
    build = ctx / "build"
    build.mkdir()
    dockerfile = build / "app.Dockerfile"
    dockerfile.write_text("FROM scratch\nCOPY . .\n", encoding="utf-8")
    (build / "app.Dockerfile.dockerignore").write_text(".git\n", encoding="utf-8")
    verdict = build_context.check(ctx, dockerfile, buildkit=True)
    assert verdict.sent == ()
    assert verdict.ignore_file == build / "app.Dockerfile.dockerignore"
    # The classic builder knows only <context>/.dockerignore.
    with pytest.raises(CredentialInContextError):
        build_context.check(ctx, dockerfile, buildkit=False)


def test_no_git_dir_or_a_worktree_git_file(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    assert build_context.check(plain, plain / "Dockerfile", buildkit=True).sent == ()
    worktree = tmp_path / "wt"
    worktree.mkdir()
    (worktree / ".git").write_text("gitdir: /elsewhere/.git/worktrees/wt\n", encoding="utf-8")
    assert build_context.check(worktree, worktree / "Dockerfile", buildkit=True).sent == (".git",)
