"""Byte-exact newTag edits over a table of tricky overlays, every refusal, and a property test."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dex_tasks import errors
from dex_tasks.errors import UsageError
from dex_tasks.gitops import overlay
from dex_tasks.gitops.overlay import OverlayEdit, read_tag, set_tag

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
    monkeypatch.setattr(overlay, "_replace_scalar", lambda text, _node, tag, _path: text.replace(OLD, tag))
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
