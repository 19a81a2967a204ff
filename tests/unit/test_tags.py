"""Tags of the contract: sha-<7..40 hex>, pr-<N> (previews), latest (never in an overlay)."""

from __future__ import annotations

import pytest

from dex_tasks.errors import UsageError
from dex_tasks.gitops import tags


@pytest.mark.parametrize("tag", ["sha-1a2b3c4", "sha-1a2b3c4d", "sha-" + "f" * 40])
def test_valid_sha_tags(tag: str) -> None:
    assert tags.validate_tag(tag) == tag
    assert tags.is_sha_tag(tag)
    assert tags.sha_of(tag) == tag[4:]


@pytest.mark.parametrize(
    "tag",
    ["sha-1a2b3c", "sha-" + "f" * 41, "sha-1A2B3C4D", "sha-1a2b3c4d\n", "\nsha-1a2b3c4d", "v1.0", "", "sha-"],
)
def test_invalid_tags(tag: str) -> None:
    with pytest.raises(UsageError, match="invalid tag") as info:
        tags.validate_tag(tag)
    assert info.value.exit_code == 2
    assert not tags.is_sha_tag(tag)


def test_pr_tags_only_for_previews() -> None:
    assert tags.validate_tag("pr-12", preview=True) == "pr-12"
    with pytest.raises(UsageError, match="PR previews only"):
        tags.validate_tag("pr-12")
    assert not tags.is_pr_tag("pr-0")
    assert not tags.is_pr_tag("pr-12\n")


def test_latest_never_in_overlays() -> None:
    with pytest.raises(UsageError, match="never written into an overlay"):
        tags.validate_tag("latest", preview=True)
    assert tags.validate_tag("latest", allow_latest=True) == "latest"


def test_sha_tag_and_pr_tag() -> None:
    assert tags.sha_tag("1A2B3C4D5E6F" + "0" * 28) == "sha-1a2b3c4d"
    assert tags.pr_tag(7) == "pr-7"
    assert tags.sha_of("pr-7") is None
    with pytest.raises(UsageError):
        tags.sha_tag("xyz")
    with pytest.raises(UsageError):
        tags.pr_tag(0)


def test_a_very_long_invalid_tag_is_shown_cut_short() -> None:
    # Regression: a pasted 5000-character value was echoed whole in the one error line.
    with pytest.raises(UsageError) as caught:
        tags.validate_tag("x" * 5000)
    message = str(caught.value)
    assert len(message) < 200
    assert "(5000 characters)" in message
