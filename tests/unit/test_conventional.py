"""The conventional-commit parser: examples from the spec, and properties over generated subjects."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dex_tasks.insight import conventional
from dex_tasks.insight.conventional import Parsed

types = st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True)
scopes = st.none() | st.from_regex(r"[a-z0-9_./-]{1,12}", fullmatch=True)
descriptions = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9 ,.'-]{0,40}[A-Za-z0-9.]", fullmatch=True)


prs = st.none() | st.integers(min_value=1, max_value=10**9)


@pytest.mark.parametrize(
    ("subject", "body", "expected"),
    [
        ("feat: add login", "", ("feat", None, "add login", False, None)),
        ("fix(api): 500 on empty body (#42)", "",
         ("fix", "api", "500 on empty body", False, 42)),
        ("feat(api)!: drop v1", "", ("feat", "api", "drop v1", True, None)),
        ("refactor: x", "BREAKING CHANGE: the config moved",
         ("refactor", None, "x", True, None)),
        ("chore: y", "BREAKING-CHANGE: z", ("chore", None, "y", True, None)),
        ("Feat: Capital", "", ("feat", None, "Capital", False, None)),
        ("Update README.md", "", (None, None, "Update README.md", False, None)),
        ("feat:no space", "", (None, None, "feat:no space", False, None)),
        ("Merge pull request #7 from data-literate/feature", "fix(ui): a button\n\nmore text",
         ("fix", "ui", "a button", False, 7)),
        ("Merge pull request #8 from o/b", "",
         (None, None, "Merge pull request #8 from o/b", False, 8)),
        ("breaking change in text: BREAKING CHANGE: not a footer", "",
         (None, None, "breaking change in text: BREAKING CHANGE: not a footer", False, None)),
    ],
)  # fmt: skip
def test_examples(subject: str, body: str, expected: tuple[object, ...]) -> None:
    # `expected` holds type, scope, subject, breaking and pr, in the dataclass order
    assert dataclasses.astuple(conventional.parse(subject, body)) == expected


@given(types, scopes, st.booleans(), descriptions, prs)
def test_round_trip(kind: str, scope: str | None, bang: bool, description: str, pr: int | None) -> None:
    subject = f"{kind}{f'({scope})' if scope else ''}{'!' if bang else ''}: {description}"
    if pr is not None:
        subject += f" (#{pr})"
    parsed = conventional.parse(subject)
    assert parsed == Parsed(type=kind, scope=scope, subject=description, breaking=bang, pr=pr)
    assert conventional.group(parsed) == (
        "breaking" if bang else kind if kind in {"feat", "fix"} else "other"
    )


@given(st.text(max_size=200), st.text(max_size=200))
def test_any_text_parses_without_error(subject: str, body: str) -> None:
    parsed = conventional.parse(subject, body)
    assert conventional.group(parsed) in {"breaking", "feat", "fix", "other"}
    assert parsed.pr is None or parsed.pr > 0
    assert parsed.type is None or parsed.type == parsed.type.lower()


@given(types, descriptions, st.integers(min_value=1, max_value=10**9))
def test_merge_commits_take_the_pr_title(kind: str, description: str, pr: int) -> None:
    parsed = conventional.parse(f"Merge pull request #{pr} from o/branch", f"{kind}: {description}\n")
    assert (parsed.type, parsed.subject, parsed.pr) == (kind, description, pr)
