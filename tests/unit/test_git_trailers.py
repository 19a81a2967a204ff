"""Commit messages and trailers: what history and rollback read back."""

from __future__ import annotations

import pytest

from dex_tasks.errors import CommandFailed, UsageError
from dex_tasks.gitops import history, workflow
from dex_tasks.tools import git


def _change(**kwargs: object) -> workflow.Change:
    base: dict[str, object] = {
        "action": "bump", "envs": ("dev",), "tag": "sha-1a2b3c4d", "base": "dev",
        "branch": "dex/bump-dev-sha-1a2b3c4d", "subject": "chore: update dev image to sha-1a2b3c4d",
        "registry_check": "passed",
    }  # fmt: skip
    base.update(kwargs)
    return workflow.Change(**base)  # type: ignore[arg-type]


def test_parse_trailers() -> None:
    text = "Dex-Action: rollback\nDex-Env: stage\nDex-Env: prod\nSigned-off-by: A <a@x>\nnot a trailer\n"
    trailers = git.parse_trailers(text)
    assert trailers["dex-action"] == ("rollback",)
    assert trailers["dex-env"] == ("stage", "prod")
    assert "signed-off-by" in trailers


DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64


def test_message_single_env() -> None:
    msg = workflow.message(_change(digests={"dev": DIGEST_A}), {"dev": "sha-00000000"})
    assert msg == (
        "chore: update dev image to sha-1a2b3c4d\n\n"
        "Dex-Action: bump\nDex-Env: dev\nDex-Tag: sha-1a2b3c4d\nDex-Previous-Tag: sha-00000000\n"
        f"Dex-Digest: {DIGEST_A}\n"
    )


def test_message_registry_check_off_has_no_digest() -> None:
    msg = workflow.message(_change(registry_check="off", digests={"dev": None}), {"dev": None})
    lines = msg.rstrip("\n").split("\n\n")[-1].splitlines()
    assert lines[-1] == "Dex-Registry-Check: off"
    assert not [line for line in lines if line.startswith("Dex-Digest")]


def test_digest_trailers_follow_the_env_order_and_history_reads_them() -> None:
    change = _change(envs=("stage", "prod"), digests={"prod": DIGEST_B, "stage": DIGEST_A})
    trailers = workflow.trailers(change, {})
    assert [t for t in trailers if t.startswith(("Dex-Env", "Dex-Digest"))] == [
        "Dex-Env: stage", "Dex-Env: prod", f"Dex-Digest: {DIGEST_A}", f"Dex-Digest: {DIGEST_B}",
    ]  # fmt: skip
    commit = git.Commit(
        sha="c", date="d", author="a", subject="s", trailers=git.parse_trailers("\n".join(trailers))
    )
    assert history.digest_for(commit, "prod") == DIGEST_B
    assert history.digest_for(commit, "stage") == DIGEST_A
    assert history.digest_for(commit, None) is None  # two digests, no env: not guessed


def test_message_several_envs_forced_promote() -> None:
    change = _change(
        action="promote", envs=("stage", "prod"), from_env="dev", forced=True, body=("Forced: because.",)
    )
    msg = workflow.message(change, {"stage": "sha-11111111", "prod": None})
    paragraphs = msg.rstrip("\n").split("\n\n")
    assert paragraphs[1] == "Forced: because."
    assert paragraphs[2].splitlines() == [
        "Dex-Action: promote", "Dex-Env: stage", "Dex-Env: prod", "Dex-Tag: sha-1a2b3c4d",
        "Dex-Previous-Tag: sha-11111111", "Dex-Previous-Tag: none", "Dex-From-Env: dev", "Dex-Forced: true",
    ]  # fmt: skip


def test_outcome_json_fields() -> None:
    single = workflow.Outcome(changed=True, envs=("dev",), tag="t", previous_tags={"dev": "p"}, base="dev")
    data = single.as_json()
    for key in (
        "changed",
        "env",
        "tag",
        "previous_tag",
        "base",
        "branch",
        "commit",
        "pushed",
        "pr_url",
        "compare_url",
    ):
        assert key in data
    assert data["env"] == "dev"
    assert data["previous_tag"] == "p"
    assert data["digests"] == {"dev": None}
    assert data["registry_check"] == "off"
    several = workflow.Outcome(
        changed=True, envs=("stage", "prod"), tag="t", previous_tags={"stage": "a", "prod": "b"}, base="main"
    )
    data = several.as_json()
    assert data["env"] == "stage/prod"
    assert data["envs"] == ["stage", "prod"]
    assert data["previous_tag"] is None  # they differ; previous_tags has each
    assert data["previous_tags"] == {"stage": "a", "prod": "b"}


def test_backoff_is_bounded_and_jittered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(workflow.BACKOFF_ENV, "1")
    for attempt in range(1, 20):
        assert 0 <= workflow._backoff(attempt) <= workflow.MAX_BACKOFF
    monkeypatch.setenv(workflow.BACKOFF_ENV, "0")
    assert workflow._backoff(3) == 0


REF_NAMES = [
    "main", "dev", "dex/bump-dev-sha-1a2b3c4d", "rollback-prod-sha-1234567", "a.b", "a..b", "a/.b", ".a",
    "a.lock", "a.lock/b", "a/b.lock", "a.locked", "a.", "a/", "/a", "a//b", "a b", "a~b", "a^b", "a:b",
    "a?b", "a*b", "a[b", "a]b", "a\\b", "a@{b", "a@b", "@", "@/a", "a{b", "a}b", "ü", "a\x7fb", "a\x01b",
    "-a", "a-", "HEAD", "a/b/c", "a/./b", "a/../b", ".", "..", "a.b.", "x.lock.y", "a!b", "a#b", "a'b", "",
]  # fmt: skip


def test_ref_names_are_judged_as_git_check_ref_format_judges_them() -> None:
    import subprocess  # noqa: PLC0415 - the test runs git itself to compare with

    for name in REF_NAMES:
        ref = f"refs/heads/{name}"
        done = subprocess.run(["git", "check-ref-format", ref], capture_output=True, check=False)
        assert git.valid_ref_name(ref) == (done.returncode == 0), ref


@pytest.mark.parametrize(
    ("letter", "signed", "verified"),
    [("G", True, True), ("U", True, False), ("B", True, False), ("X", True, False), ("Y", True, False),
     ("R", True, False), ("E", True, False), ("N", False, False), ("", False, False)],
)  # fmt: skip
def test_signed_and_verified_from_git_signature_letter(letter: str, signed: bool, verified: bool) -> None:
    commit = git.Commit(sha="a" * 40, date="", author="", subject="", trailers={}, signature=letter)
    assert (commit.signed, commit.verified) == (signed, verified)


def _failed(stderr: str) -> CommandFailed:
    return CommandFailed("command failed", argv=("git", "commit"), returncode=128, stderr_tail=stderr)


@pytest.mark.parametrize(
    ("stderr", "sign", "detail"),
    [
        ("error: gpg failed to sign the data\nfatal: failed to write commit object", True,
         "error: gpg failed to sign the data"),
        ("fatal: either user.signingkey or gpg.ssh.defaultKeyCommand needs to be configured", True,
         "user.signingkey or gpg.ssh.defaultKeyCommand"),
        ('error: Load key "/k": invalid format?\n\nfatal: failed to write commit object', True,
         'error: Load key "/k": invalid format?'),
        # commit.gpgSign = true in the user's config, no -S from us: the same advice.
        ("error: gpg failed to sign the data\nfatal: failed to write commit object", False,
         "error: gpg failed to sign the data"),
    ],
)  # fmt: skip
def test_signing_failures_are_exit_2_in_one_line(stderr: str, sign: bool, detail: str) -> None:
    error = git._signing_error(_failed(stderr), sign=sign)
    assert isinstance(error, UsageError)
    assert detail in str(error)
    assert "failed to write commit object" not in str(error)
    assert "\n" not in str(error)


def test_other_commit_failures_stay_what_they_are() -> None:
    failed = _failed("fatal: unable to write new index file")
    assert git._signing_error(failed, sign=True) is failed
