"""Hostile overlays: whatever the file holds, reading or editing it answers or refuses (exit 2).

ruamel's constructors raise IndexError on ``0o_``, KeyError on ``!!bool x``, AttributeError on
``!!set x``; a kept ``!!int`` tag made a spliced tag unparseable, and an explicit ``? name`` key put
an inserted ``digest:`` at the wrong column. Each of those was an exit 70 "internal error". Here
random values go into ``newTag:`` (and the other keys), random small documents into the file, and
every entry point must return or raise a :class:`DexError` that is not an internal error; where
the line scan answers, the full parser gives the same answer.
"""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from dex_tasks.errors import DexError, InternalError, UsageError
from dex_tasks.gitops import overlay, overlay_scan

IMAGE = "data-literate/dex"
NEW = "sha-0123abcd"
DIGEST = "sha256:" + "c" * 64

# Values that were crashes or internal errors, and their relatives: number-like prefixes that
# ruamel's int/float/timestamp resolvers take and then cannot convert, explicit tags of every
# yaml.org type, properties, flow and block scalars, anchors and aliases.
HOSTILE = [
    "0o_", "0x_", "0b_", "._", "1_", "1__", "0_", ":", "a:b", "1:2:_", "1:2", "0:_", "-1:_", "1:60",
    "9" * 5000, "0x" + "f" * 5000, ".inf", "-.inf", ".nan", "+.5", "1e9999", "2026-13-45",
    "2026-02-30", "2026-01-01T25:00:00", "0o", "0b", "0x", "+", "-", "~", "null", "true", "y", "=",
    "!!binary x", "!!binary AAA=", "!!bool x", "!!bool true", "!!int", "!!int x", "!!int 0o_",
    "!!int 1:2:_", "!!int 1234567", "!!float x", "!!float ._", "!!float 1.5", "!!null ~", "!!null x",
    "!!timestamp x", "!!timestamp 2026-01-01", "!!set x", "!!omap x", "!!pairs x", "!!seq x",
    "!!map x", "!!merge x", "!!value x", "!!str", "!!str 1", "!foo x", "!<tag:yaml.org,2002:int> 1",
    "!!python/object:os.system x", "!!python/name:os.system", "&a x", "&a", "*a", "*", "& x",
    "&a !!int 1", "!!int &a 1", "[a]", "{a: b}", "[", "{", "]", "}", "'", '"', "'a''b'", '"\\u0041"',
    '"\\x"', '"\\U0010ffff"', "|", "|\n      x", ">-\n      x", "? x", "- x", "% x", "@x", "`x",
    "#x", "x #c", "\ufeffx", "x\x00", "\x85", "\u2028", "\ud800", "\t", "x\t#c", "\\",
]  # fmt: skip

_LAYOUTS = [
    "images:\n  - name: {image}\n    newTag: {v}\n",
    "images:\n- name: {image}\n  newTag: {v}\n  digest: " + DIGEST + "\n",
    "kind: {v}\nimages:\n  - name: {image}\n    newTag: sha-1111111\n",
    "images:\n  - name: {v}\n    newTag: sha-1111111\n  - name: {image}\n",
    "x: &a sha-1111111\nimages:\n- name: {image}\n  newTag: {v}\n",
    "base: &b\n  newName: y\nimages:\n- <<: *b\n  name: {image}\n  newTag: {v}\n",
    "images:\n- ? name\n  : {image}\n  newTag: {v}\n",
    "images:\n- {{name: {image}, newTag: {v}}}\n",
    "\ufeff---\nimages:\n- name: {image}\n  newTag: {v}\n",
    "images:\n- name: {image}\n  newTag: {v}\n  <<: {{x: 1}}\n",
    "? images\n: - name: {image}\n    newTag: {v}\n",
]

# Pieces of YAML syntax for random documents: indentation, indicators, properties, keys that
# matter to read_tag, values, comments, document markers and directives, odd characters.
_PIECES = [
    "images", "name", "newTag", "digest", IMAGE, "sha-1111111", DIGEST, ":", ": ", "- ", "? ", "\n",
    "\n  ", "\n    ", "\n- ", "  ", "\t", "#", "&a ", "*a", "<<: ", "!!str ", "!!int ", "!!set ",
    "!!binary ", "!!map ", "!!seq ", "!foo ", "[", "]", "{", "}", ", ", "'", '"', "|", ">", "---",
    "...", "%YAML 1.1\n", "%TAG ! !x\n", "0o_", "1:2:_", "._", "~", "\ufeff", "\x00", "\r\n", "\x85",
    "\\", "\u00e9", "&b ", "*b", "[*a, *a]", "x: ", "\n  y: ",
]  # fmt: skip

values = st.one_of(
    st.sampled_from(HOSTILE),
    st.text(alphabet=st.sampled_from("0123456789abox._:-+!&*~[]{}'\"#|>?,@` \t"), max_size=12),
    st.text(max_size=8),
)
documents = st.one_of(
    st.lists(st.sampled_from(_PIECES), max_size=24).map("".join),
    st.builds(lambda layout, v: layout.format(image=IMAGE, v=v), st.sampled_from(_LAYOUTS), values),
)


def _answers(call: object) -> object:
    """What ``call()`` gives: its value, or the DexError class it raised (never anything else)."""
    assert callable(call)
    try:
        return call()
    except DexError as exc:
        refused = exc
    assert not isinstance(refused, InternalError), refused  # exit 70 is for our bugs, not for a file
    assert "\n" not in str(refused), refused  # one line
    return type(refused)


def _check(text: str) -> None:
    full = _answers(lambda: overlay.read_tag(text, IMAGE))
    assert full is None or isinstance(full, str) or issubclass(full, UsageError)  # type: ignore[arg-type]
    assert _answers(lambda: overlay_scan.read_tag_fast(text, IMAGE)) == full
    assert _answers(lambda: overlay.read_digest(text, IMAGE)) is not None or True
    try:
        scanned = overlay_scan.scan_tag(text, IMAGE)
    except overlay_scan.Declined:
        pass
    else:
        assert scanned == full, (text, scanned, full)
    for pinned in (False, True):
        edit = _answers(lambda pinned=pinned: overlay.set_tag(text, IMAGE, NEW, pinned=pinned))
        if isinstance(edit, overlay.OverlayEdit):
            assert overlay.read_tag(edit.new_text, IMAGE) == NEW
            if pinned and edit.new_text != text:
                pin = _answers(lambda new=edit.new_text: overlay.set_digest(new, IMAGE, DIGEST))
                if isinstance(pin, overlay.OverlayEdit):
                    assert overlay.read_digest(pin.new_text, IMAGE) == DIGEST


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize("layout", _LAYOUTS)
def test_hostile_values_are_answered_or_refused(layout: str, value: str) -> None:
    _check(layout.format(image=IMAGE, v=value))


@settings(max_examples=300, deadline=None)
@given(layout=st.sampled_from(_LAYOUTS), value=values)
def test_random_values_are_answered_or_refused(layout: str, value: str) -> None:
    _check(layout.format(image=IMAGE, v=value))


@settings(max_examples=400, deadline=None)
@given(text=documents)
@example(text="images:\n- name: data-literate/dex\n  newTag: 0o_\n")
@example(text="n: 0o_\nimages: []\n")
def test_random_documents_are_answered_or_refused(text: str) -> None:
    _check(text)


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("0o_", "cannot read the !!int value '0o_' (line 3, column 13)"),
        ("!!bool x", "cannot read the !!bool value 'x'"),
        ("!!set x", "cannot read the !!set value 'x'"),
        ("2026-13-45", "cannot read the !!timestamp value '2026-13-45': month must be in 1..12"),
        ("9" * 5000, "Exceeds the limit (4300 digits)"),
    ],
)
def test_unreadable_values_name_the_file_the_value_and_the_line(value: str, needle: str) -> None:
    text = f"images:\n  - name: {IMAGE}\n    newTag: {value}\n"
    with pytest.raises(UsageError) as info:
        overlay.read_tag(text, IMAGE, path="overlays/dev/kustomization.yaml")
    assert str(info.value).startswith("overlays/dev/kustomization.yaml: invalid YAML: ")
    assert needle in str(info.value)


@pytest.mark.parametrize("tag", ["!!int 1234567", "!!null ~", "!!bool true", "!foo sha-1111111"])
def test_a_kept_type_tag_is_refused_before_the_splice(tag: str) -> None:
    text = f"images:\n  - name: {IMAGE}\n    newTag: {tag}\n"
    with pytest.raises(UsageError, match=r"`newTag` carries the YAML tag !"):
        overlay.set_tag(text, IMAGE, NEW)
    # !!str keeps the new value a string, so that one is still edited in place.
    edit = overlay.set_tag(f"images:\n  - name: {IMAGE}\n    newTag: !!str 1234567\n", IMAGE, NEW)
    assert edit.new_text.endswith(f"newTag: !!str {NEW}\n")


def test_a_digest_goes_under_an_entry_with_an_explicit_key() -> None:
    text = f"images:\n- ? name\n  : {IMAGE}\n  newTag: sha-1111111\n"
    tagged = overlay.set_tag(text, IMAGE, NEW, pinned=True)
    pinned = overlay.set_digest(tagged.new_text, IMAGE, DIGEST)
    assert pinned.new_text == f"images:\n- ? name\n  : {IMAGE}\n  newTag: {NEW}\n  digest: {DIGEST}\n"


def test_other_line_breaks_are_refused_only_where_lines_are_inserted() -> None:
    text = f"# a\u2028# b\nimages:\n  - name: {IMAGE}\n    newTag: sha-1111111\n"
    assert overlay.set_tag(text, IMAGE, NEW).new_text == text.replace("sha-1111111", NEW)
    with pytest.raises(UsageError, match=r"line 1 holds the line break U\+2028"):
        overlay.set_tag(text, f"{IMAGE}-worker", NEW)  # a new entry: lines are inserted
    with pytest.raises(UsageError, match="U\\+0085"):
        overlay.set_tag("# c\x85a: 1\n", IMAGE, NEW)  # NEL ends the comment: `a` is a key


@pytest.mark.parametrize(
    "text",
    [
        f"images:\n  - name: {IMAGE}\n    newTag: &t sha-1111111\nlabels:\n  tag: *t\n",
        f"images:\n  - &e\n    name: {IMAGE}\n    newTag: sha-1111111\nx: [*e]\n",
        f"images:\n  - &e\n    name: {IMAGE}\nx: [*e]\n",  # newTag inserted into a shared entry
        f"images: &i\n  - name: {IMAGE}-worker\nx: *i\n",  # an entry appended to a shared list
        f"images: &i\n  - name: {IMAGE}\n    newTag: sha-1111111\nx:\n  y: *i\n",
        "images: &n\nx: *n\n",  # the entry would go under `images:`, which the anchor names
    ],
)
def test_an_edit_an_alias_would_share_is_refused(text: str) -> None:
    overlay.read_tag(text, IMAGE)  # reading is fine
    with pytest.raises(UsageError, match="is anchored and used again by an alias"):
        overlay.set_tag(text, IMAGE, NEW)


def test_an_anchored_value_used_once_is_edited() -> None:
    alone = f"images:\n  - name: {IMAGE}\n    newTag: &t sha-1111111\n"
    assert overlay.set_tag(alone, IMAGE, NEW).new_text == alone.replace("sha-1111111", NEW)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("? images\n", "writes a key with `?` (line 1)"),
        ("a: b\n? # the key is below\n\n  images\n", "writes a key with `?` (line 4)"),
        ("a: |\n  x", "ends in a block scalar without a final newline (line 1)"),
        ("a: &a [*a]\n", "the alias on line 1 refers to a node that contains it"),
        ("!!set\n  y:\n", "the kustomization is tagged !!set (line 1)"),
        (f"images: !!omap\n- name: {IMAGE}\n", "`images` is tagged !!omap (line 1)"),
        (
            f"images:\n- !!set\n  name: {IMAGE}\n",
            f"the `images` entry for '{IMAGE}' is tagged !!set (line 2)",
        ),
        (
            "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
            + "".join(
                f"{c}: &{c} [{', '.join([f'*{p}'] * 10)}]\n"
                for p, c in zip("abcdefgh", "bcdefghi", strict=True)
            ),
            "its aliases expand 29 nodes to 1234567909",
        ),
    ],
)
def test_layouts_an_edit_cannot_keep_are_refused(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("?", "\\?").replace("(", "\\(").replace(")", "\\)")):
        overlay.set_tag(text, IMAGE, NEW)


def test_an_empty_value_with_properties_gets_the_tag_after_them() -> None:
    for value, expected in (("!!str", f"!!str {NEW}"), ("&a", f"&a {NEW}")):
        text = f"images:\n  - name: {IMAGE}\n    newTag: {value}\n"
        edit = overlay.set_tag(text, IMAGE, NEW)
        assert edit.new_text == text.replace(value, expected)
    assert overlay.read_tag(f"images:\n  - name: {IMAGE}\n    newTag: !!str\n", IMAGE) == ""
    assert overlay.read_tag(f"images:\n  - name: {IMAGE}\n    newTag: &a\n", IMAGE) is None


def test_a_reused_anchor_is_read_as_yaml_says_without_a_warning() -> None:
    # ruamel warns (ReusedAnchorWarning, several lines on stderr; an error under this suite's
    # filterwarnings) where YAML lets a later anchor redefine the name.
    text = f"x: &a 1\ny: &a 2\nimages:\n  - name: {IMAGE}\n    newTag: &a sha-1111111\nz: *a\n"
    assert overlay.read_tag(text, IMAGE) == "sha-1111111"
