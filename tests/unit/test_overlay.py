"""Byte-exact newTag edits over a table of tricky overlays, every refusal, and a property test."""

from __future__ import annotations

import subprocess
from typing import TYPE_CHECKING, NoReturn

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dex_tasks import errors
from dex_tasks.errors import UsageError
from dex_tasks.gitops import overlay
from dex_tasks.gitops.overlay import OverlayEdit, read_tag, set_tag
from tests.helpers import need_tool

if TYPE_CHECKING:
    from pathlib import Path

IMAGE = "data-literate/dex"
NEW = "sha-0123abcd"
OLD = "sha-a1b2c3d4"


def changed_lines(edit: OverlayEdit) -> tuple[list[str], list[str]]:
    body = [line for line in edit.diff().splitlines() if not line.startswith(("---", "+++"))]
    return [x for x in body if x.startswith("-")], [x for x in body if x.startswith("+")]


# (id, old text, new text) — the new text is written out in full so every byte is asserted.
REPLACE_CASES = [
    (
        "dex-layout",
        "images:\n  - name: data-literate/dex\n    newTag: sha-a1b2c3d4  # updated by CD\n",
        "images:\n  - name: data-literate/dex\n    newTag: sha-0123abcd  # updated by CD\n",
    ),
    (
        "comments-everywhere",
        (
            "# top comment\n---\napiVersion: kustomize.config.k8s.io/v1beta1  # api\nkind: Kustomization\n\n"
            "resources:   # res\n  - ../../base # base\n\n# images below\nimages:  # list\n"
            "  # before the entry\n  - name: data-literate/dex   # the app\n    # between keys\n"
            "    newTag: sha-a1b2c3d4 # tag\n    # after\n\n# tail\n"
        ),
        (
            "# top comment\n---\napiVersion: kustomize.config.k8s.io/v1beta1  # api\nkind: Kustomization\n\n"
            "resources:   # res\n  - ../../base # base\n\n# images below\nimages:  # list\n"
            "  # before the entry\n  - name: data-literate/dex   # the app\n    # between keys\n"
            "    newTag: sha-0123abcd # tag\n    # after\n\n# tail\n"
        ),
    ),
    (
        "single-quoted",
        "images:\n- name: data-literate/dex\n  newTag: 'sha-a1b2c3d4'\n",
        "images:\n- name: data-literate/dex\n  newTag: 'sha-0123abcd'\n",
    ),
    (
        "double-quoted",
        'images:\n- name: "data-literate/dex"\n  newTag: "sha-a1b2c3d4"\n',
        'images:\n- name: "data-literate/dex"\n  newTag: "sha-0123abcd"\n',
    ),
    (
        "four-space",
        "images:\n    -   name: data-literate/dex\n        newTag: sha-a1b2c3d4\n",
        "images:\n    -   name: data-literate/dex\n        newTag: sha-0123abcd\n",
    ),
    (
        "zero-offset",
        "images:\n- name: data-literate/dex\n  newTag: sha-a1b2c3d4\nreplicas:\n- name: dex\n  count: 2\n",
        "images:\n- name: data-literate/dex\n  newTag: sha-0123abcd\nreplicas:\n- name: dex\n  count: 2\n",
    ),
    (
        "crlf",
        (
            "resources:\r\n  - ../../base\r\nimages:\r\n"
            "  - name: data-literate/dex\r\n    newTag: sha-a1b2c3d4\r\n"
        ),
        (
            "resources:\r\n  - ../../base\r\nimages:\r\n"
            "  - name: data-literate/dex\r\n    newTag: sha-0123abcd\r\n"
        ),
    ),
    (
        "bom",
        "\ufeffimages:\n  - name: data-literate/dex\n    newTag: sha-a1b2c3d4\n",
        "\ufeffimages:\n  - name: data-literate/dex\n    newTag: sha-0123abcd\n",
    ),
    (
        "similar-names",
        (
            "images:\n  - name: data-literate/dex-worker\n    newTag: sha-a1b2c3d4\n"
            "  - name: data-literate/dex\n    newTag: sha-a1b2c3d4\n"
            "  - name: ghcr.io/data-literate/dex\n    newTag: sha-a1b2c3d4\n"
        ),
        (
            "images:\n  - name: data-literate/dex-worker\n    newTag: sha-a1b2c3d4\n"
            "  - name: data-literate/dex\n    newTag: sha-0123abcd\n"
            "  - name: ghcr.io/data-literate/dex\n    newTag: sha-a1b2c3d4\n"
        ),
    ),
    (
        "document-markers",
        "---\nimages:\n  - name: data-literate/dex\n    newTag: sha-a1b2c3d4\n...\n",
        "---\nimages:\n  - name: data-literate/dex\n    newTag: sha-0123abcd\n...\n",
    ),
    (
        "number-like-plain",
        "images:\n  - name: data-literate/dex\n    newTag: 1234567\n",
        "images:\n  - name: data-literate/dex\n    newTag: sha-0123abcd\n",
    ),
    (
        "new-name-and-key-order",
        (
            "images:\n  - newTag: sha-a1b2c3d4\n"
            "    newName: ghcr.io/data-literate/dex\n    name: data-literate/dex\n"
        ),
        (
            "images:\n  - newTag: sha-0123abcd\n"
            "    newName: ghcr.io/data-literate/dex\n    name: data-literate/dex\n"
        ),
    ),
    (
        "explicit-tag",
        "images:\n  - name: data-literate/dex\n    newTag: !!str 1234567\n",
        "images:\n  - name: data-literate/dex\n    newTag: !!str sha-0123abcd\n",
    ),
    (
        "flow-entry",
        "images: [{name: data-literate/dex, newTag: sha-a1b2c3d4}]\n",
        "images: [{name: data-literate/dex, newTag: sha-0123abcd}]\n",
    ),
    (
        "no-final-newline",
        "images:\n  - name: data-literate/dex\n    newTag: sha-a1b2c3d4",
        "images:\n  - name: data-literate/dex\n    newTag: sha-0123abcd",
    ),
    (
        "trailing-spaces-elsewhere",
        "namePrefix: x   \nimages:\n  - name: data-literate/dex\n    newTag: sha-a1b2c3d4   \n",
        "namePrefix: x   \nimages:\n  - name: data-literate/dex\n    newTag: sha-0123abcd   \n",
    ),
    # Regressions: an empty `newTag:` (YAML null) was spliced at the next token, so the edit wrote
    # `newTag:\nsha-...` and was refused as "this is a bug".
    (
        "empty-value",
        "images:\n  - name: data-literate/dex\n    newTag:\n    newName: ghcr.io/x/dex\n",
        "images:\n  - name: data-literate/dex\n    newTag: sha-0123abcd\n    newName: ghcr.io/x/dex\n",
    ),
    (
        "empty-value-with-comment-at-eof",
        "images:\n  - name: data-literate/dex\n    newTag:  # set by CD\n",
        "images:\n  - name: data-literate/dex\n    newTag: sha-0123abcd  # set by CD\n",
    ),
]


@pytest.mark.parametrize(("old", "new"), [c[1:] for c in REPLACE_CASES], ids=[c[0] for c in REPLACE_CASES])
def test_replace_is_byte_exact_one_line(old: str, new: str) -> None:
    edit = set_tag(old, IMAGE, NEW, path="infra/argocd/overlays/dev/kustomization.yaml")
    assert edit.new_text == new
    assert edit.changed
    assert edit.tag == NEW
    assert edit.previous_tag == read_tag(old, IMAGE)
    assert read_tag(edit.new_text, IMAGE) == NEW
    minus, plus = changed_lines(edit)
    assert len(minus) == 1
    assert len(plus) == 1
    assert NEW in plus[0]
    assert edit.diff().startswith(
        "--- a/infra/argocd/overlays/dev/kustomization.yaml\n"
        "+++ b/infra/argocd/overlays/dev/kustomization.yaml\n"
    )


def test_empty_value_reads_as_no_tag() -> None:
    text = "images:\n  - name: data-literate/dex\n    newTag:\r\n"
    assert read_tag(text, IMAGE) is None
    edit = set_tag(text, IMAGE, NEW)
    assert edit.previous_tag is None
    assert edit.new_text == "images:\n  - name: data-literate/dex\n    newTag: sha-0123abcd\r\n"


def test_number_like_previous_tag_is_the_source_text() -> None:
    assert read_tag("images:\n- name: data-literate/dex\n  newTag: 1.10\n", IMAGE) == "1.10"


APPEND_CASES = [
    (
        "missing-entry-two-space",
        (
            "images:\n  - name: data-literate/dex-worker\n    newTag: sha-a1b2c3d4 # w\n  # comment after\n"
            "resources:\n  - ../../base\n"
        ),
        (
            "images:\n  - name: data-literate/dex-worker\n    newTag: sha-a1b2c3d4 # w\n"
            "  - name: data-literate/dex\n    newTag: sha-0123abcd\n"
            "  # comment after\nresources:\n  - ../../base\n"
        ),
    ),
    (
        "missing-entry-zero-offset",
        "images:\n- name: other\n  newName: x/other\n",
        "images:\n- name: other\n  newName: x/other\n- name: data-literate/dex\n  newTag: sha-0123abcd\n",
    ),
    (
        "missing-entry-four-space",
        "images:\n    -   name: other\n        newTag: sha-a1b2c3d4\n",
        (
            "images:\n    -   name: other\n        newTag: sha-a1b2c3d4\n    -   name: data-literate/dex\n"
            "        newTag: sha-0123abcd\n"
        ),
    ),
    (
        "missing-images-key",
        "resources:\n- ../../base\n",
        "resources:\n- ../../base\nimages:\n- name: data-literate/dex\n  newTag: sha-0123abcd\n",
    ),
    (
        "missing-images-key-indented-lists",
        "resources:\n  - ../../base\n# tail comment\n",
        (
            "resources:\n  - ../../base\n# tail comment\nimages:\n"
            "  - name: data-literate/dex\n    newTag: sha-0123abcd\n"
        ),
    ),
    (
        "missing-images-key-crlf-no-final-newline",
        "resources:\r\n  - ../../base",
        (
            "resources:\r\n  - ../../base\r\nimages:\r\n"
            "  - name: data-literate/dex\r\n    newTag: sha-0123abcd\r\n"
        ),
    ),
    (
        "missing-images-key-before-document-end",
        "---\nresources:\n  - ../../base\n...\n",
        (
            "---\nresources:\n  - ../../base\nimages:\n"
            "  - name: data-literate/dex\n    newTag: sha-0123abcd\n...\n"
        ),
    ),
    (
        "images-null",
        "images:\nresources:\n- ../../base\n",
        "images:\n- name: data-literate/dex\n  newTag: sha-0123abcd\nresources:\n- ../../base\n",
    ),
    (
        "entry-without-newtag",
        (
            "images:\n  - name: data-literate/dex  # app\n"
            "    newName: ghcr.io/data-literate/dex\n\n  - name: b\n"
        ),
        (
            "images:\n  - name: data-literate/dex  # app\n    newName: ghcr.io/data-literate/dex\n"
            "    newTag: sha-0123abcd\n\n  - name: b\n"
        ),
    ),
    (
        "entry-without-newtag-crlf",
        "images:\r\n- name: data-literate/dex\r\n",
        "images:\r\n- name: data-literate/dex\r\n  newTag: sha-0123abcd\r\n",
    ),
]


@pytest.mark.parametrize(("old", "new"), [c[1:] for c in APPEND_CASES], ids=[c[0] for c in APPEND_CASES])
def test_append_adds_lines_only(old: str, new: str) -> None:
    edit = set_tag(old, IMAGE, NEW)
    assert edit.new_text == new
    assert edit.previous_tag is None
    assert read_tag(old, IMAGE) is None
    assert read_tag(edit.new_text, IMAGE) == NEW
    minus, plus = changed_lines(edit)
    if old.endswith("\n"):
        assert minus == []
    else:  # the last line gains its line break, as git shows it
        assert len(minus) == 1
    assert any(NEW in line for line in plus)


def test_flow_list_append_stays_on_one_line() -> None:
    edit = set_tag("images: [{name: a, newTag: sha-a1b2c3d4}]\n", IMAGE, NEW)
    assert edit.new_text == f"images: [{{name: a, newTag: sha-a1b2c3d4}}, {{name: {IMAGE}, newTag: {NEW}}}]\n"
    edit = set_tag("images: []\n", IMAGE, NEW)
    assert edit.new_text == f"images: [{{name: {IMAGE}, newTag: {NEW}}}]\n"


def test_same_tag_is_unchanged_with_empty_diff() -> None:
    text = f"images:\n  - name: {IMAGE}\n    newTag: {OLD}\n"
    edit = set_tag(text, IMAGE, OLD)
    assert not edit.changed
    assert edit.diff() == ""
    assert edit.new_text == text
    assert edit.previous_tag == OLD


def test_pr_tag_accepted_for_previews() -> None:
    edit = set_tag(f"images:\n- name: {IMAGE}\n  newTag: pr-1\n", IMAGE, "pr-42")
    assert edit.new_text == f"images:\n- name: {IMAGE}\n  newTag: pr-42\n"


def test_diff_marks_missing_final_newline() -> None:
    edit = set_tag(f"images:\n- name: {IMAGE}\n  newTag: {OLD}", IMAGE, NEW)
    assert edit.diff().endswith(f"+  newTag: {NEW}\n\\ No newline at end of file\n")


def test_crlf_diff_is_readable() -> None:
    edit = set_tag(f"images:\r\n- name: {IMAGE}\r\n  newTag: {OLD}\r\n", IMAGE, NEW)
    assert "\r" not in edit.diff()
    assert f"+  newTag: {NEW}\n" in edit.diff()


REFUSALS = [
    ("invalid-yaml", "images:\n  - name: [unclosed\n", "invalid YAML"),
    # Regressions: aliased lists/entries ended in OverlayInternalError ("this is a bug", exit 1).
    (
        "images-alias",
        "x: &a\n  - name: data-literate/dex\n    newTag: sha-a1b2c3d4\nimages: *a\n",
        "`images` is a YAML alias",
    ),
    (
        "entry-alias",
        "x: &e {name: data-literate/dex, newTag: sha-a1b2c3d4}\nimages:\n  - *e\n",
        "an `images` entry is a YAML alias",
    ),
    ("tab-indent", "images:\n\t- name: x\n", "invalid YAML"),
    ("duplicate-key", "images: []\nimages: []\n", "invalid YAML"),
    ("empty", "", "empty"),
    ("only-comments", "# nothing\n", "empty"),
    ("null-document", "---\n...\n", "empty"),
    ("scalar-document", "just a string\n", "not a YAML mapping"),
    ("list-document", "- a\n- b\n", "not a YAML mapping"),
    ("multi-document", "a: 1\n---\nb: 2\n", "2 YAML documents"),
    ("multi-document-trailing-empty", "a: 1\n---\n", "YAML documents"),
    ("images-mapping", "images:\n  name: data-literate/dex\n", "`images` is not a list"),
    ("images-scalar", "images: data-literate/dex\n", "`images` is not a list"),
    ("images-tilde", "images: ~\n", "`images` is not a list"),
    ("entry-scalar", "images:\n  - data-literate/dex\n", "not a mapping"),
    (
        "duplicate-entries",
        f"images:\n  - name: {IMAGE}\n    newTag: {OLD}\n  - name: {IMAGE}\n    newTag: {OLD}\n",
        "2 `images` entries",
    ),
    ("digest-only", f"images:\n  - name: {IMAGE}\n    digest: sha256:{'a' * 64}\n", "pinned by `digest:`"),
    (
        "digest-and-tag",
        f"images:\n  - name: {IMAGE}\n    newTag: {OLD}\n    digest: sha256:{'a' * 64}\n",
        "pinned by `digest:`",
    ),
    ("alias", f"x: &t {OLD}\nimages:\n  - name: {IMAGE}\n    newTag: *t\n", "alias"),
    ("block-scalar", f"images:\n  - name: {IMAGE}\n    newTag: |\n      {OLD}\n", "block scalar"),
    ("newtag-list", f"images:\n  - name: {IMAGE}\n    newTag: [a]\n", "not a scalar"),
    ("escaped", f'images:\n  - name: {IMAGE}\n    newTag: "sha-\\x61bcdef0"\n', "cannot edit"),
    ("flow-entry-insert", f"images: [{{name: {IMAGE}}}]\n", "flow mapping"),
    ("flow-root", "{resources: [a]}\n", "flow mapping"),
]


@pytest.mark.parametrize(("text", "needle"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS])
def test_refusals_name_the_path_and_exit_2(text: str, needle: str) -> None:
    with pytest.raises(UsageError) as info:
        set_tag(text, IMAGE, NEW, path="overlays/dev/kustomization.yaml")
    message = str(info.value)
    assert message.startswith("overlays/dev/kustomization.yaml: ")
    assert needle in message
    assert "\n" not in message
    assert info.value.exit_code == 2


@pytest.mark.parametrize("tag", ["latest", "sha-XYZ", "v1.2.3", "sha-123", "pr-0", "", "sha-0123abcd\n"])
def test_invalid_tags_are_refused(tag: str) -> None:
    with pytest.raises(UsageError):
        set_tag(f"images:\n- name: {IMAGE}\n  newTag: {OLD}\n", IMAGE, tag)


def test_read_tag_refuses_like_set_tag() -> None:
    with pytest.raises(UsageError, match=r"x\.yaml: contains 2 YAML documents"):
        read_tag("a: 1\n---\nb: 2\n", IMAGE, path="x.yaml")
    assert read_tag("resources: []\n", IMAGE) is None


def test_verification_catches_a_wrong_splice(monkeypatch: pytest.MonkeyPatch) -> None:
    # Simulate a buggy splice: the verifier must refuse to hand it out.
    def wrong(text: str, _node: object, tag: str, _path: str, *_: object, **_kw: object) -> str:
        return text.replace(OLD, tag)

    monkeypatch.setattr(overlay, "_replace_scalar", wrong)
    text = f"images:\n- name: other\n  newTag: {OLD}\n- name: {IMAGE}\n  newTag: {OLD}\n"
    with pytest.raises(errors.OverlayInternalError, match="changed more than that value"):
        set_tag(text, IMAGE, NEW)


indent = st.sampled_from(["", "  ", "    "])
comment = st.sampled_from(["", "  # c", " #x: 'y'"])
quote = st.sampled_from(["", "'", '"'])
eol = st.sampled_from(["\n", "\r\n"])
sha_tags = st.from_regex(r"sha-[0-9a-f]{7,40}", fullmatch=True)


@settings(max_examples=40, deadline=None)
@given(tag=sha_tags, old=sha_tags, seq=indent, c1=comment, c2=comment, q=quote, nl=eol)
def test_property_only_the_tag_line_changes(  # noqa: PLR0917 - hypothesis passes strategies by name
    tag: str, old: str, seq: str, c1: str, c2: str, q: str, nl: str
) -> None:
    key = seq + "  "
    lines = [
        "apiVersion: kustomize.config.k8s.io/v1beta1",
        "resources:",
        f"{seq}- ../../base{c1}",
        "images:",
        f"{seq}- name: {IMAGE}-worker",
        f"{key}newTag: {q}{old}{q}{c2}",
        f"{seq}- name: {IMAGE}{c1}",
        f"{key}newTag: {q}{old}{q}{c2}",
        "",
    ]
    text = nl.join(lines)
    edit = set_tag(text, IMAGE, tag)
    assert read_tag(edit.new_text, IMAGE) == tag
    assert read_tag(edit.new_text, f"{IMAGE}-worker") == old
    old_lines, new_lines = text.split(nl), edit.new_text.split(nl)
    assert len(old_lines) == len(new_lines)
    assert [i for i, (a, b) in enumerate(zip(old_lines, new_lines, strict=True)) if a != b] == (
        [7] if tag != old else []
    )
    assert new_lines[7] == f"{key}newTag: {q}{tag}{q}{c2}"


@st.composite
def overlays(draw: st.DrawFn) -> tuple[str, str, str | None]:
    """A random kustomization: (text, eol, current tag of IMAGE or None)."""
    nl = draw(eol)
    seq = draw(st.sampled_from(["", "  ", "    "]))
    pad = draw(st.sampled_from([" ", "   "]))  # spaces after the dash
    key = seq + " " + pad
    names = draw(
        st.lists(st.sampled_from([f"{IMAGE}-worker", f"ghcr.io/{IMAGE}", f"{IMAGE}2", "nginx"]), unique=True)
    )
    mode = draw(st.sampled_from(["tag", "no-tag", "missing", "no-images"]))
    position = draw(st.integers(min_value=0, max_value=len(names)))
    current = draw(sha_tags)
    lines = ["apiVersion: kustomize.config.k8s.io/v1beta1", "kind: Kustomization", "resources:"]
    lines.append(f"{seq}- ../../base{draw(comment)}")
    if mode != "no-images":
        entries: list[tuple[str, str | None, str]] = [(n, draw(sha_tags), draw(quote)) for n in names]
        if mode != "missing":
            entries.insert(position, (IMAGE, current if mode == "tag" else None, draw(quote)))
        lines.append(f"images:{draw(comment)}")
        for name, tag, q in entries:
            lines.append(f"{seq}-{pad}name: {name}{draw(comment)}")
            if draw(st.booleans()):
                lines.append(f"{key}newName: registry.example/{name}")
            if tag is not None:
                lines.append(f"{key}newTag: {q}{tag}{q}{draw(comment)}")
        if not entries:
            lines[-1] = "images: []"
    if draw(st.booleans()):
        lines.append("# trailing comment")
    text = nl.join(lines) + (nl if draw(st.booleans()) else "")
    return text, nl, current if mode == "tag" else None


@settings(max_examples=40, deadline=None)
@given(case=overlays(), tag=sha_tags)
def test_property_random_overlays(case: tuple[str, str, str | None], tag: str) -> None:
    text, nl, current = case
    others = {n: read_tag(text, n) for n in (f"{IMAGE}-worker", f"ghcr.io/{IMAGE}", f"{IMAGE}2", "nginx")}
    edit = set_tag(text, IMAGE, tag)
    assert edit.previous_tag == current
    assert read_tag(edit.new_text, IMAGE) == tag
    assert {n: read_tag(edit.new_text, n) for n in others} == others
    # Line endings of the file are kept: no bare LF sneaks into a CRLF file.
    if nl == "\r\n":
        assert edit.new_text.count("\n") == edit.new_text.count("\r\n")
    minus, plus = changed_lines(edit)
    if current is not None:
        assert len(minus) == len(plus) == (0 if tag == current else 1)
    elif text.endswith(nl) and "images: []" not in text:
        assert minus == []
        assert plus


# --- hostile input (issue 10): sizes, deep nesting, tabs that YAML allows ---------------------

_DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: dex
spec:
  template:
    spec:
      containers:
        - name: dex
          image: data-literate/dex
"""


def _kustomize(tmp_path: Path, text: str) -> subprocess.CompletedProcess[str]:
    """``kubectl kustomize`` of an overlay holding ``text`` and one deployment of the image."""
    directory = tmp_path / f"k{len(list(tmp_path.iterdir()))}"
    directory.mkdir()
    (directory / "deployment.yaml").write_text(_DEPLOYMENT, encoding="utf-8")
    (directory / "kustomization.yaml").write_bytes(text.encode("utf-8"))
    return subprocess.run(
        [need_tool("kubectl"), "kustomize", str(directory)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def _overlay(images: str, *, head: str = "") -> str:
    return f"{head}resources:\n  - deployment.yaml\n{images}"


TABBED = {
    "after newTag": _overlay("images:\n  - name: data-literate/dex\n    newTag: sha-1a2b3c4d\t# note\n"),
    "after name": _overlay("images:\n  - name: data-literate/dex\t# the app\n    newTag: sha-1a2b3c4d\n"),
    "after images:": _overlay("images:\t# x\n  - name: data-literate/dex\n    newTag: sha-1a2b3c4d\n"),
    "after ---": _overlay(
        "images:\n  - name: data-literate/dex\n    newTag: sha-1a2b3c4d\n", head="---\t# header\n"
    ),
    "trailing tab": _overlay("images:\n  - name: data-literate/dex\n    newTag: sha-1a2b3c4d\t\n"),
    "key: tab value": _overlay("images:\n  - name:\tdata-literate/dex\n    newTag:\tsha-1a2b3c4d\n"),
    "key tab colon": _overlay("images:\n  - name: data-literate/dex\n    newTag\t: sha-1a2b3c4d\n"),
    "space tab space": _overlay("images:\n  - name: data-literate/dex\n    newTag: sha-1a2b3c4d \t # c\n"),
    "quoted, tabs inside": _overlay(
        'images:\n  - name: data-literate/dex\n    newName: "data-literate/dex"\t# "a\tb"\n'
        '    newTag: "sha-1a2b3c4d"\t# c\n'
    ),
    "tab inside a quoted value": _overlay(
        'commonAnnotations:\n  note: "a\t# not a comment"\t# a comment\n'
        "images:\n  - name: data-literate/dex\n    newTag: 'sha-1a2b3c4d'\n"
    ),
    "document end": _overlay("images:\n  - name: data-literate/dex\n    newTag: sha-1a2b3c4d\n...\t# end\n"),
    "empty newTag": _overlay("images:\n  - name: data-literate/dex\n    newTag:\t# filled by CD\n"),
    "CRLF": _overlay(
        "images:\t# x\r\n  - name: data-literate/dex\t# n\r\n    newTag: sha-1a2b3c4d\t# c\r\n"
    ).replace("resources:\n  - deployment.yaml\n", "resources:\r\n  - deployment.yaml\r\n"),
}  # fmt: skip


@pytest.mark.parametrize("text", TABBED.values(), ids=TABBED)
def test_tabs_yaml_allows_are_edited_not_refused(tmp_path: Path, text: str) -> None:
    # Regression: ruamel's scanner refused all of these as "invalid YAML"; kubectl renders them.
    edit = set_tag(text, "data-literate/dex", "sha-99999999")
    old_lines, new_lines = text.splitlines(keepends=True), edit.new_text.splitlines(keepends=True)
    assert len(old_lines) == len(new_lines)
    changed = [(a, b) for a, b in zip(old_lines, new_lines, strict=True) if a != b]
    assert len(changed) == 1
    before, after = changed[0]
    assert "newTag" in before
    assert after.count("\t") == before.count("\t")  # the tab stays where it was
    assert read_tag(edit.new_text, "data-literate/dex") == "sha-99999999"
    assert edit.new_text.count("\t") == text.count("\t")
    # kustomize reads both versions, and renders the tag read_tag reads (none for `newTag:`).
    for source, tag in ((text, read_tag(text, "data-literate/dex")), (edit.new_text, "sha-99999999")):
        rendered = _kustomize(tmp_path, source)
        assert rendered.returncode == 0, rendered.stderr
        assert f"image: data-literate/dex{':' + tag if tag else ''}\n" in rendered.stdout


TAB_REFUSED = {
    # (the images part, whether kubectl refuses it too)
    "indenting a key": ("images:\n  - name: data-literate/dex\n\tnewTag: sha-1a2b3c4d\n", True),
    "after a dash": ("images:\n  -\tname: data-literate/dex\n    newTag: sha-1a2b3c4d\n", True),
    "before a comment line": (
        "images:\n\t# c\n  - name: data-literate/dex\n    newTag: sha-1a2b3c4d\n",
        True,
    ),
    "--- then content": ("---\timages:\n  - name: data-literate/dex\n    newTag: sha-1a2b3c4d\n", True),
    # go-yaml reads `sha-1a2b3c4d\tx` as one value (kubectl renders the image "...:sha-1a2b3c4d\tx");
    # no tag holds a tab, so refusing it here is the safe side of the difference.
    "inside a plain value": ("images:\n  - name: data-literate/dex\n    newTag: sha-1a2b3c4d\tx\n", False),
}


@pytest.mark.parametrize(("images", "kubectl_refuses"), TAB_REFUSED.values(), ids=TAB_REFUSED)
def test_tabs_kubectl_refuses_are_refused(tmp_path: Path, images: str, kubectl_refuses: bool) -> None:
    text = (
        _overlay(images)
        if not images.startswith("---")
        else images.replace("\n", "\nresources:\n  - deployment.yaml\n", 1)
    )
    with pytest.raises(UsageError, match=r"invalid YAML: found character '\\t'") as caught:
        set_tag(text, "data-literate/dex", "sha-99999999")
    assert "\n" not in str(caught.value)
    assert (_kustomize(tmp_path, text).returncode != 0) is kubectl_refuses


def test_oversized_overlay_is_refused_before_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    text = "images:\n  - name: data-literate/dex\n    newTag: sha-1a2b3c4d\n" + "# padding\n" * 120_000

    def no_parser(*_args: object, **_kwargs: object) -> NoReturn:
        raise AssertionError("ruamel must not see an oversized overlay")

    monkeypatch.setattr(overlay, "YAML", no_parser)
    size = len(text.encode())
    for call in (lambda: set_tag(text, "data-literate/dex", "sha-99999999"), lambda: read_tag(text, "x")):
        with pytest.raises(UsageError, match=f"{size} bytes is over the 1 MiB limit"):
            call()


def test_the_size_limit_counts_bytes_not_characters() -> None:
    # 300,000 three-byte characters: under the limit in characters, over it in bytes.
    text = "images:\n  - name: data-literate/dex\n    newTag: sha-1a2b3c4d\n# " + "\u20ac" * 350_000 + "\n"
    assert len(text) < overlay.MAX_OVERLAY_BYTES < len(text.encode())
    with pytest.raises(UsageError, match="over the 1 MiB limit"):
        read_tag(text, "data-literate/dex")
    small = "images:\n  - name: data-literate/dex\n    newTag: sha-1a2b3c4d\n# " + "\u20ac" * 1000 + "\n"
    assert read_tag(small, "data-literate/dex") == "sha-1a2b3c4d"


@pytest.mark.parametrize(
    "nesting", ["[" * 20_000 + "]" * 20_000, "- " * 5_000 + "x", "{a: " * 20_000 + "b" + "}" * 20_000]
)
def test_deep_nesting_is_invalid_yaml_not_a_crash(nesting: str) -> None:
    text = f"images:\n  - name: data-literate/dex\n    newTag: sha-1a2b3c4d\nx: {nesting}\n"
    with pytest.raises(UsageError, match="invalid YAML"):
        read_tag(text, "data-literate/dex")


# -- pin-digest: set_digest ---------------------------------------------------------------------------
DIGEST = "sha256:" + "a" * 64
DIGEST2 = "sha256:" + "b" * 64


@pytest.mark.parametrize("eol", ["\n", "\r\n"])
def test_set_digest_inserts_under_the_entry_with_its_indentation(eol: str) -> None:
    text = f"images:{eol}- name: {IMAGE}{eol}  newTag: {OLD} # CD{eol}# after{eol}"
    edit = overlay.set_digest(text, IMAGE, DIGEST)
    assert (
        edit.new_text
        == f"images:{eol}- name: {IMAGE}{eol}  newTag: {OLD} # CD{eol}  digest: {DIGEST}{eol}# after{eol}"
    )
    assert edit.previous_digest is None
    assert overlay.read_digest(edit.new_text, IMAGE) == DIGEST
    assert read_tag(edit.new_text, IMAGE) == OLD  # the tag stays readable


def test_set_digest_replaces_only_the_value() -> None:
    text = f"images:\n  - name: {IMAGE}\n    newTag: {OLD}\n    digest: '{DIGEST}'  # pinned\n"
    edit = overlay.set_digest(text, IMAGE, DIGEST2)
    assert edit.new_text == text.replace(DIGEST, DIGEST2)
    assert edit.previous_digest == DIGEST
    assert changed_lines(edit) == (
        [f"-    digest: '{DIGEST}'  # pinned"],
        [f"+    digest: '{DIGEST2}'  # pinned"],
    )


def test_pinned_set_tag_keeps_the_digest_and_unpinned_refuses() -> None:
    text = f"images:\n  - name: {IMAGE}\n    newTag: {OLD}\n    digest: {DIGEST}\n"
    assert set_tag(text, IMAGE, NEW, pinned=True).new_text == text.replace(OLD, NEW)
    with pytest.raises(UsageError, match="pin-digest"):
        set_tag(text, IMAGE, NEW)


@pytest.mark.parametrize(
    ("text", "digest", "message"),
    [
        (f"images:\n  - name: {IMAGE}\n    newTag: {OLD}\n", "sha256:xyz", "invalid digest"),
        (f"images:\n  - name: {IMAGE}\n", DIGEST, "no `images` entry with `newTag`"),
        (f"images:\n  - {{name: {IMAGE}, newTag: {OLD}}}\n", DIGEST, "flow mapping"),
        (f"images:\n  - name: {IMAGE}\n    newTag: {OLD}\n    digest: [x]\n", DIGEST, "not a scalar"),
    ],
)
def test_set_digest_refuses(text: str, digest: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        overlay.set_digest(text, IMAGE, digest)
