"""Byte-exact edits of ``images[name=<image>].newTag`` in a kustomization file (pure text in, text out).

Why not load, modify and dump with ruamel's round-trip mode: even round-trip dumping re-flows
indentation, quoting and comment spacing in corner cases (0-offset sequences, CRLF, BOM, ``...``).
GitOps reviewers must see a one-line diff, so ruamel only *locates* the scalar: the composer gives
each node's start and end character index in the original string, and we splice the new value into
exactly that span. The result is re-parsed and compared with the expected structure before it is
returned, so a wrong splice can never reach a commit.

Only the GitOps tasks that edit or fully parse an overlay import this module (the CLI imports the
one task it runs), so ruamel is an ordinary top-level import here. Reading a tag in the common
layout needs no parser: that is :func:`dex_tasks.gitops.overlay_scan.read_tag_fast`, which
``history`` uses without importing this module.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import functools
import re
import warnings
from typing import TYPE_CHECKING, Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import TaggedScalar
from ruamel.yaml.constructor import ConstructorError, RoundTripConstructor
from ruamel.yaml.error import YAMLError
from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode
from ruamel.yaml.scanner import Scanner

from dex_tasks.errors import OverlayInternalError, UsageError
from dex_tasks.gitops import overlay_scan, tags

if TYPE_CHECKING:
    from ruamel.yaml.nodes import Node

DEFAULT_PATH = overlay_scan.DEFAULT_PATH
MAX_OVERLAY_BYTES = overlay_scan.MAX_OVERLAY_BYTES
_NEWLINE_RE = re.compile(r"[^\n]*\n|[^\n]+\Z")
_DOC_END_RE = re.compile(r"^\.\.\.[ \t]*(#.*)?\r?$")


@dataclasses.dataclass(frozen=True, kw_only=True)
class OverlayEdit:
    """The result of :func:`set_tag`: both texts, the tag before and after, and a unified diff."""

    path: str  # label used in messages and diff headers
    old_text: str
    new_text: str
    previous_tag: str | None  # None when the images entry (or its newTag) was missing
    tag: str
    digest: str | None = None  # set_digest: the digest written (pin-digest envs)
    previous_digest: str | None = None

    @property
    def changed(self) -> bool:
        return self.old_text != self.new_text

    def diff(self) -> str:
        """Unified diff with ``a/<path>`` / ``b/<path>`` headers, ``""`` when unchanged.

        Line endings are shown as ``\\n`` (a CRLF file's diff stays readable in a terminal); the edit
        itself keeps CRLF. A missing final newline is marked the way git marks it.
        """
        if not self.changed:
            return ""
        old, new = _diff_lines(self.old_text), _diff_lines(self.new_text)
        out: list[str] = []
        for line in difflib.unified_diff(old, new, fromfile=f"a/{self.path}", tofile=f"b/{self.path}"):
            if line.endswith("\n"):
                out.append(line.removesuffix("\n").removesuffix("\r") + "\n")
            else:  # the last line of a file without a final newline
                out.append(line.removesuffix("\r") + "\n\\ No newline at end of file\n")
        return "".join(out)


def read_tag(text: str, image: str, *, path: str = DEFAULT_PATH) -> str | None:
    """The ``newTag`` of ``images[name=image]`` as written in the file, or None without entry/newTag.

    The value is the scalar's text (``newTag: 1234567`` reads as ``"1234567"``, as kustomize does).
    Raises UsageError for files :func:`set_tag` would refuse (invalid YAML, several documents, ...).
    """
    overlay_scan.check_size(text, path)
    # A pinned entry (`newTag` + `digest`, pin-digest) still names its tag: history and status read it.
    located = _locate(text, image, path, allow_digest=True)
    if located.tag_node is None or _is_empty(located.tag_node):
        return None
    return str(located.tag_node.value)


def read_digest(text: str, image: str, *, path: str = DEFAULT_PATH) -> str | None:
    """The ``digest`` of ``images[name=image]`` as written, or None (no entry, no digest)."""
    overlay_scan.check_size(text, path)
    located = _locate(text, image, path, allow_digest=True)
    node = located.digest_node
    return None if node is None or _is_empty(node) else str(node.value)


def set_tag(
    text: str, image: str, tag: str, *, path: str = DEFAULT_PATH, pinned: bool = False
) -> OverlayEdit:
    """Set ``images[name=image].newTag`` to ``tag``, changing only that value's text.

    An entry without ``newTag`` gets a ``newTag`` line; a missing entry (or ``images`` key) is
    appended. Refuses with UsageError (exit 2) before anything is written: invalid tag or YAML, an
    empty or non-mapping document, several documents, ``images`` not a list, duplicate entries for
    ``image``, an entry pinned by ``digest`` (kustomize pulls the digest then) unless ``pinned``: a
    pin-digest env, whose digest :func:`set_digest` updates right after.
    """
    # Overlays take sha- tags; pr-<N> goes into preview overlays. `latest` and anything else: never.
    tags.validate_tag(tag, preview=True)
    overlay_scan.check_size(text, path)
    located = _locate(text, image, path, allow_digest=pinned)
    _check_unshared(located, "newTag", path, value=located.tag_node)
    if located.entry is not None:
        previous, new_text = _set_value(
            text, located.entry, tag, key=located.tag_key, node=located.tag_node, path=path, name="newTag"
        )
    else:
        previous = None
        new_text = _append_entry(text, located, image, tag, path)
    edit = OverlayEdit(path=path, old_text=text, new_text=new_text, previous_tag=previous, tag=tag)
    _verify(edit, image, old_data=located.data, replaced=located.tag_node is not None)
    return edit


def _set_value(
    text: str,
    entry: MappingNode,
    value: str,
    *,
    key: ScalarNode | None,
    node: ScalarNode | None,
    path: str,
    name: str,
) -> tuple[str | None, str]:
    """``entry``'s ``name`` set to ``value``: (the value before, the new text), one span changed."""
    if node is not None and key is not None and _no_text(node):
        # `name:` with nothing after it: its (empty) node starts at the *next* token, so the value
        # goes right after the key's colon instead, keeping any comment on that line.
        colon = text.index(":", key.end_mark.index) + 1
        return None, text[:colon] + " " + value + text[colon:]
    if node is not None:
        previous = None if _is_empty(node) else str(node.value)
        return previous, _replace_scalar(text, node, value, path, name, key=key)
    return None, _insert_new_tag(text, entry, value, path, name)


# The same as tools.oci.DIGEST_RE; not imported from there, which would load requests with every overlay.
DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")


def set_digest(text: str, image: str, digest: str, *, path: str = DEFAULT_PATH) -> OverlayEdit:
    """Set ``images[name=image].digest`` (pin-digest envs), changing only that value's text.

    The entry must exist with its ``newTag`` (call :func:`set_tag` with ``pinned=True`` first): the
    tag stays in the file for people, the digest is what the kubelet pulls (kustomize renders
    ``<newName>:<newTag>@<digest>``). A missing ``digest:`` line is inserted after the entry's last
    value with the entry's indentation. Re-parsed and compared like :func:`set_tag`.
    """
    if not DIGEST_RE.fullmatch(digest):
        raise UsageError(f"invalid digest {digest!r}: expected sha256:<64 hex>")
    overlay_scan.check_size(text, path)
    located = _locate(text, image, path, allow_digest=True)
    if located.entry is None or located.tag_node is None:
        raise UsageError(f"{path}: no `images` entry with `newTag` for {image!r} to pin by digest")
    _check_unshared(located, "digest", path, value=located.digest_node)
    tag = str(located.tag_node.value)
    previous, new_text = _set_value(
        text, located.entry, digest, key=located.digest_key, node=located.digest_node, path=path,
        name="digest",
    )  # fmt: skip
    edit = OverlayEdit(
        path=path, old_text=text, new_text=new_text, previous_tag=tag, tag=tag, digest=digest,
        previous_digest=previous,
    )  # fmt: skip
    _verify_digest(edit, image, old_data=located.data, inserted=located.digest_node is None)
    return edit


# --- locating -----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Located:
    root: MappingNode
    data: Any  # the loaded document, for comparing structures after the edit
    images_key: ScalarNode | None
    images: Node | None  # the value of `images:` (a sequence, or a null scalar for `images:`)
    entry: MappingNode | None
    tag_node: ScalarNode | None
    tag_key: ScalarNode | None = None
    digest_node: ScalarNode | None = None
    digest_key: ScalarNode | None = None


def _is_empty(node: ScalarNode) -> bool:
    """A plain empty value YAML reads as null: ``key:`` and nothing else, or only an anchor
    (``key: &a``). ``key: !!str`` is the empty string, not null."""
    return node.value == "" and node.style in {None, ""} and str(node.tag).endswith(":null")


def _no_text(node: ScalarNode) -> bool:
    """``key:`` with nothing after it, not even a property: its node is an empty span."""
    return _is_empty(node) and node.start_mark.index == node.end_mark.index


class _Constructor(RoundTripConstructor):
    """ruamel's round-trip constructor, whose every failure is a ``ConstructorError`` at the node.

    ruamel's own constructors index, look up and convert the scalar's text without checking it
    first, so some values a file can hold end as the wrong exception: ``0o_`` / ``0x_`` / ``0b_``
    (``construct_yaml_int`` reads ``value_s[2]``: IndexError), ``!!bool x`` (KeyError),
    ``!!set x`` (AttributeError: a scalar has no ``flow_style``), ``!!int 1:2:_`` (ValueError).
    Those are bad input, not bugs of ours: each becomes the "invalid YAML" refusal with its line.
    """

    def construct_non_recursive_object(self, node: Any, tag: str | None = None) -> Any:
        try:
            return super().construct_non_recursive_object(node, tag)
        except (YAMLError, RecursionError):
            raise  # located already / "nested too deeply" (see _parse)
        except Exception as exc:  # whatever ruamel raises on a value is about the value
            value = node.value if isinstance(node, ScalarNode) else ""
            shown = f" {value!r}" if isinstance(value, str) and len(value) <= 60 else ""
            tag = str(tag or node.tag).replace("tag:yaml.org,2002:", "!!")
            # A ValueError says what is wrong ("month must be in 1..12"); an IndexError does not.
            why = f": {exc}" if isinstance(exc, ValueError) else ""
            raise ConstructorError(
                problem=f"cannot read the {tag} value{shown}{why}",
                problem_mark=node.start_mark,
            ) from exc


def _yaml() -> Any:

    yaml = YAML(typ="rt")
    yaml.Constructor = _Constructor
    yaml.allow_duplicate_keys = False
    return yaml


def _problem(exc: Exception) -> str:
    """One line out of ruamel's multi-line error: the problem and where it is."""
    problem = getattr(exc, "problem", None) or getattr(exc, "context", None)
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    if problem:
        return f"{problem}{where}"
    lines = str(exc).strip().splitlines()
    return f"{lines[0] if lines else type(exc).__name__}{where}"


_OTHER_BREAKS = re.compile("[\x85\u2028\u2029]")


def _check_breaks(text: str, path: str) -> None:
    """Refuse NEL, LS and PS before inserting lines: ruamel and go-yaml both read them as line
    breaks, and insertions count ``\n`` lines, so a new line could land inside another one.
    Replacing a value in place does not count lines and works with them."""
    found = _OTHER_BREAKS.search(text)
    if found is not None:
        line = text.count("\n", 0, found.start()) + 1
        raise UsageError(
            f"{path}: line {line} holds the line break U+{ord(found.group()):04X}, which YAML reads as "
            "a new line; use LF or CRLF line endings"
        )


class _TabScanner(Scanner):
    """A scan-only pass that finds the tabs YAML allows as separation but ruamel refuses.

    ruamel's scanner (PyYAML's, in turn) skips only spaces between tokens in block context
    (``scan_to_next_token``: ``white_space = ' \t' if self.flow_level > 0 else ' '``, with a TODO
    about "more sane" tab handling), so ``newTag: sha-1\t# note`` is "found character '\t' that
    cannot start any token". go-yaml, which kustomize uses, reads such tabs as whitespace. A tab
    this method meets is between tokens, never inside a scalar; it is recorded, and skipped like a
    space, when go-yaml accepts it there (:func:`_separating_tab`). Tabs in indentation, or right
    after a block indicator (``-\tname``), stay and fail as they do with kubectl.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tabs: list[int] = []

    def scan_to_next_token(self) -> None:
        super().scan_to_next_token()
        reader = self.reader
        while (
            not self.flow_level and reader.peek() == "\t" and _separating_tab(reader.buffer, reader.pointer)
        ):
            while (char := reader.peek()) in " \t":
                if char == "\t":
                    self.tabs.append(reader.index)
                reader.forward()
            super().scan_to_next_token()


_LINE_BREAKS = "\r\n\x85\u2028\u2029"
_COMMENT_RE = re.compile(r"(?:^|(?<=[ \t]))#.*")
_LINE_SPLIT_RE = re.compile("\r\n|[\r\n\x85\u2028\u2029]")


def _separating_tab(buffer: str, start: int) -> bool:
    """Whether the whitespace at ``start`` (a tab between tokens) is what go-yaml skips.

    Tried with kubectl 1.32's ``kustomize``: trailing tabs, tabs before a comment, after a key's
    ``:`` and before a ``:``; not in indentation, nor after a ``-``/``?``/``:`` that opens a line.
    """
    end = start
    while buffer[end] in " \t":
        end += 1
    line_start = max(buffer.rfind(char, 0, start) for char in _LINE_BREAKS) + 1
    before = buffer[line_start:start].lstrip("\ufeff").strip(" ")
    if not before or (before.replace(" ", "").strip("-?:") == "" and before != "---"):
        return False  # indentation, or the separation after a block indicator
    after = buffer[end]
    if after in "#\0" or after in _LINE_BREAKS:
        return True  # trailing whitespace, or before a comment
    return before.endswith(":") or (after == ":" and buffer[end + 1] in " \t\0" + _LINE_BREAKS)


def _shadow(text: str) -> str:
    """``text`` with the separating tabs (:class:`_TabScanner`) as spaces: the same length, so every
    index ruamel reports for the shadow is valid for ``text``, and edits splice into ``text``."""
    if "\t" not in text:
        return text
    yaml = YAML(typ="safe", pure=True)
    yaml.Scanner = _TabScanner
    try:
        for _token in yaml.scan(text):
            pass
    except Exception:  # noqa: BLE001, S110 - any failure: the real parse below reports it
        pass  # (on the text up to here with its tabs fixed)
    tabs = yaml.scanner.tabs
    if not tabs:
        return text
    chars = list(text)
    for index in tabs:
        chars[index] = " "
    return "".join(chars)


def _parse(text: str, path: str) -> tuple[MappingNode, Any]:
    """Compose (for character spans), then construct the data from those nodes (which refuses
    duplicate keys): one parse of the text, where ``compose_all`` and ``load_all`` made two."""

    shadow = _shadow(text)
    yaml = _yaml()
    try:
        # ruamel warns (ReusedAnchorWarning: a later `&a` redefines an anchor, which YAML allows)
        # on stderr in several lines; the file is read as YAML says, without the noise.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nodes = list(yaml.compose_all(shadow))
            docs = [yaml.constructor.construct_document(node) for node in nodes if node is not None]
    except (YAMLError, ValueError) as exc:  # DuplicateKeyError is a YAMLError; bad chars raise ValueError
        problem = _problem(exc)
        if "'\\t'" in problem:
            problem += "; a tab is read as a space only after `key:`, before a comment or at a line's end"
        raise UsageError(f"{path}: invalid YAML: {problem}") from exc
    except RecursionError:  # ruamel's composer recurses once per nesting level
        raise UsageError(f"{path}: invalid YAML: nested too deeply to parse") from None
    except Exception as exc:  # the text is untrusted: any failure of the parser is a refusal
        # _Constructor locates what the constructors raise; this is for the rest of ruamel (reader,
        # scanner, composer), which must not turn a hostile file into exit 70 either.
        raise UsageError(f"{path}: invalid YAML: {type(exc).__name__}: {_problem(exc)}") from exc
    nodes = [n for n in nodes if n is not None]
    if len(docs) > 1 or len(nodes) > 1:
        raise UsageError(f"{path}: contains {len(docs)} YAML documents; a kustomization is one document")
    if not nodes or not docs or docs[0] is None:
        raise UsageError(f"{path}: is empty; expected a kustomization mapping")
    root = nodes[0]
    if not isinstance(root, MappingNode):
        raise UsageError(f"{path}: is not a YAML mapping; expected a kustomization")
    _check_plain(root, _MAP, "the kustomization", path)
    _check_aliases(root, path)
    return root, docs[0]


MAX_EXPANSION = 100_000
"""Nodes a kustomization may expand to through its aliases, beyond four times the nodes written.
A "billion laughs" file (ten aliases of ten aliases of ...) is kilobytes but expands to 10**9
nodes: the comparison that checks every edit would never end. go-yaml (kustomize) refuses such a
file too ("document contains excessive aliasing")."""


def _children(node: Node) -> list[Node]:
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, SequenceNode):
        return list(node.value)
    return []


def _post_order(root: Node, path: str) -> list[Node]:
    """Every distinct node once, children before parents (an alias is its anchored node again).

    Iterative, so any depth the composer built is walked; an alias inside the node it names
    (``&a [*a]``) is refused, as go-yaml refuses it ("anchor 'a' value contains itself").
    """
    order: list[Node] = []
    done: set[int] = set()
    active: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, leaving = stack.pop()
        if leaving:
            active.discard(id(node))
            done.add(id(node))
            order.append(node)
            continue
        if id(node) in done:
            continue
        active.add(id(node))
        stack.append((node, True))
        for child in _children(node):
            if id(child) in active:
                raise UsageError(
                    f"{path}: the alias on line {child.start_mark.line + 1} refers to a node that "
                    "contains it; a kustomization cannot be recursive"
                )
            if id(child) not in done:
                stack.append((child, False))
    return order


def _check_aliases(root: Node, path: str) -> None:
    order = _post_order(root, path)
    size: dict[int, int] = {}
    for node in order:
        size[id(node)] = min(1 + sum(size[id(child)] for child in _children(node)), 1 << 62)
    expanded = size[id(root)]
    if expanded > 4 * len(order) and expanded > MAX_EXPANSION:
        raise UsageError(
            f"{path}: its aliases expand {len(order)} nodes to {expanded}; a kustomization that "
            "large through aliases is refused"
        )


_MAP, _SEQ = "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"


def _check_plain(node: Node, tag: str, what: str, path: str) -> None:
    """``node`` is a plain mapping / list: a type tag (``!!set``, ``!!omap``, ``!foo``) makes ruamel
    build another type (a set, pairs), which no edit can be checked against; kustomize wants plain."""
    if str(node.tag) != tag:
        shown = str(node.tag).replace("tag:yaml.org,2002:", "!!")
        raise UsageError(
            f"{path}: {what} is tagged {shown} (line {node.start_mark.line + 1}); remove the tag"
        )


def _get(mapping: MappingNode, key: str) -> tuple[ScalarNode, Node] | None:

    for k, v in mapping.value:
        if isinstance(k, ScalarNode) and k.value == key:
            return k, v
    return None


def _entries_for(images: SequenceNode, image: str, path: str) -> list[MappingNode]:
    """The ``images`` entries named ``image``; non-mapping and aliased entries are refused."""

    entries: list[MappingNode] = []
    for item in images.value:
        if not isinstance(item, MappingNode):
            raise UsageError(f"{path}: an `images` entry is not a mapping (line {item.start_mark.line + 1})")
        if item.start_mark.index < images.start_mark.index:
            raise UsageError(f"{path}: an `images` entry is a YAML alias (line {item.start_mark.line + 1})")
        name = _get(item, "name")
        if name is not None and isinstance(name[1], ScalarNode) and name[1].value == image:
            _check_plain(item, _MAP, f"the `images` entry for {image!r}", path)
            entries.append(item)
    return entries


def _locate(text: str, image: str, path: str, *, allow_digest: bool = False) -> _Located:

    root, data = _parse(text, path)
    located = functools.partial(_Located, root=root, data=data)
    found = _get(root, "images")
    if found is None:
        return located(images_key=None, images=None, entry=None, tag_node=None)
    images_key, images = found
    # `images:` with nothing after it (an empty null): the entry can go on the lines below the key.
    # `images: ~` / `images: null` would need that line changed, so they are refused as "not a list".
    if isinstance(images, ScalarNode) and str(images.tag).endswith(":null") and images.value == "":
        return located(images_key=images_key, images=images, entry=None, tag_node=None)
    if not isinstance(images, SequenceNode):
        raise UsageError(f"{path}: `images` is not a list")
    _check_plain(images, _SEQ, "`images`", path)
    if images.start_mark.index < images_key.end_mark.index:
        # `images: *anchor`: the list is written elsewhere and shared; editing it there would change
        # every user of the anchor (like an aliased newTag below).
        raise UsageError(f"{path}: `images` is a YAML alias (line {images_key.start_mark.line + 1})")
    entries = _entries_for(images, image, path)
    if len(entries) > 1:
        lines = ", ".join(str(e.start_mark.line + 1) for e in entries)
        raise UsageError(f"{path}: {len(entries)} `images` entries for {image!r} (lines {lines}); keep one")
    if not entries:
        return located(images_key=images_key, images=images, entry=None, tag_node=None)
    entry = entries[0]
    digest = _get(entry, "digest")
    if digest is not None and not allow_digest:
        # kustomize pulls the digest when both are set, so editing only newTag would "deploy"
        # nothing. Refuse instead of producing a commit that changes no running image.
        raise UsageError(
            f"{path}: {image!r} is pinned by `digest:` (line {entry.start_mark.line + 1}); "
            "remove the digest to deploy by tag, or list the env in [tool.dex] pin-digest"
        )
    digest_key, digest_node = _scalar(digest, "digest", image, path)
    new_tag = _get(entry, "newTag")
    tag_key, tag_node = _scalar(new_tag, "newTag", image, path)
    return located(
        images_key=images_key, images=images, entry=entry, tag_node=tag_node, tag_key=tag_key,
        digest_node=digest_node, digest_key=digest_key,
    )  # fmt: skip


def _scalar(
    found: tuple[ScalarNode, Node] | None, name: str, image: str, path: str
) -> tuple[ScalarNode | None, ScalarNode | None]:
    """(key, value) of an entry's ``newTag`` / ``digest``; refuses values that cannot be spliced."""
    if found is None:
        return None, None
    key, value = found
    if not isinstance(value, ScalarNode):
        raise UsageError(f"{path}: `{name}` of {image!r} is not a scalar (line {key.start_mark.line + 1})")
    if value.start_mark.index < key.end_mark.index:
        # An alias (`newTag: *anchor`) composes to the anchored node, which sits earlier in the file:
        # splicing there would change every user of the anchor.
        raise UsageError(f"{path}: `{name}` of {image!r} is an alias (line {key.start_mark.line + 1})")
    return key, value


def _check_unshared(located: _Located, name: str, path: str, *, value: ScalarNode | None) -> None:
    """Refuse to edit a node an alias elsewhere uses too (``newTag: &t sha-1`` and ``*t``; an
    anchored entry or ``images`` list): the alias would change with it. Reading it is fine.

    The value (``newTag``/``digest``), the entry it is in and the ``images`` list are checked:
    each is changed by the edit, whether a value is replaced, a line inserted or an entry appended.
    """
    for node, what in (
        (value, f"`{name}`"),
        (located.entry, "the `images` entry"),
        (located.images, "`images`"),
    ):
        if node is not None and _uses(located.root, node) > 1:
            raise UsageError(
                f"{path}: {what} on line {node.start_mark.line + 1} is anchored and used again by an "
                "alias, which the edit would change too; write the value in both places"
            )


def _uses(root: Node, target: Node) -> int:
    """How often ``target`` occurs in the expanded tree: an alias composes to its anchored node
    itself, and an alias of a collection holding ``target`` uses it again."""
    uses: dict[int, int] = {}
    for node in _post_order(root, "kustomization"):  # not recursive: _parse checked it
        uses[id(node)] = min((node is target) + sum(uses[id(child)] for child in _children(node)), 2)
    return uses[id(root)]


# --- editing ------------------------------------------------------------------------------------


def _eol(text: str) -> str:
    """The file's line ending: CRLF when its first line ends so, else LF."""
    first = text.find("\n")
    return "\r\n" if first > 0 and text[first - 1] == "\r" else "\n"


def _render(tag: str, style: str | None) -> str:
    # Tags are [a-z0-9-] only, so no quoting or escaping is ever needed inside the quotes.
    if style in {"'", '"'}:
        return f"{style}{tag}{style}"
    return tag


def _replace_scalar(
    text: str, node: ScalarNode, tag: str, path: str, name: str = "newTag", *, key: ScalarNode | None = None
) -> str:
    start, end = node.start_mark.index, node.end_mark.index
    source = text[start:end]
    style = node.style if node.style in {"'", '"'} else None
    if node.style not in {None, "", "'", '"'}:
        raise UsageError(
            f"{path}: `{name}` is a block scalar (line {node.start_mark.line + 1}); write it inline"
        )
    written = _render(str(node.value), style)
    # The span may start with a tag or anchor (`!!str 1234567`, `&t sha-1`): keep those, replace the
    # scalar text at its end. Anything we cannot recognise (escapes, line folding) is refused.
    if not source.endswith(written):
        raise UsageError(
            f"{path}: cannot edit `{name}` written as {source!r} (line {node.start_mark.line + 1}); "
            "write it as a plain or quoted single-line value"
        )
    # The properties before the value (`&anchor`, `!tag`, either order) stay; a tag other than
    # `!!str` would then apply to the new value: `!!int sha-1a2b3c4d` does not parse, `!!null`
    # makes it null. Refused before the splice, so it is bad input and not a failed verification.
    # From the key's colon: ruamel starts the node's span at the anchor in `!!int &a 1`.
    after = text.index(":", key.end_mark.index) + 1 if key is not None else start
    properties = text[min(after, start) : end - len(written)].split()
    if any(p.startswith("!") for p in properties) and str(node.tag) != "tag:yaml.org,2002:str":
        shown = next(p for p in properties if p.startswith("!"))
        raise UsageError(
            f"{path}: `{name}` carries the YAML tag {shown} (line {node.start_mark.line + 1}); "
            "kustomize reads it as a string: remove the tag or write !!str"
        )
    # Only properties (`!!str`, `&a`) and an empty value: the value goes after them, spaced.
    space = " " if not written and source else ""
    return text[: end - len(written)] + space + _render(tag, style) + text[end:]


def _line_end(text: str, index: int) -> int:
    """Index just after the line break of the line containing ``index`` (len(text) at EOF)."""
    newline = text.find("\n", index)
    return len(text) if newline < 0 else newline + 1


def _insert_at(text: str, at: int, block: str, eol: str, *, after: Node, path: str) -> str:
    """Insert whole lines at ``at`` (a line start or EOF); a missing final newline is added first.

    ``after`` is the node the insertion follows. A block scalar that ends the file without a
    final newline would gain one (``|`` keeps a final line break), so that is refused.
    """
    _check_breaks(text, path)
    if at == len(text) and text and not text.endswith("\n"):
        last = _last_node(after)
        if isinstance(last, ScalarNode) and last.style in {"|", ">"}:
            raise UsageError(
                f"{path}: the file ends in a block scalar without a final newline (line "
                f"{last.start_mark.line + 1}); end the file with a newline"
            )
        return text + eol + block
    return text[:at] + block + text[at:]


def _last_index(node: Node) -> int:
    """The end index of the last character of ``node``'s content (not of trailing blank lines)."""

    if isinstance(node, MappingNode):
        return max((_last_index(v) for _, v in node.value), default=node.start_mark.index)
    if isinstance(node, SequenceNode):
        return max((_last_index(v) for v in node.value), default=node.start_mark.index)
    return int(node.end_mark.index)


def _last_node(node: Node) -> Node:
    """The innermost node that ends ``node``'s content (keys count: ``? |`` can end a file)."""
    while children := _children(node):
        node = max(children, key=lambda child: int(child.end_mark.index))
    return node


def _insert_new_tag(text: str, entry: MappingNode, tag: str, path: str, key: str = "newTag") -> str:
    if entry.flow_style:
        raise UsageError(
            f"{path}: the `images` entry on line {entry.start_mark.line + 1} is a flow mapping; "
            f"add `{key}` to it by hand"
        )
    indent = " " * _key_column(text, entry)
    # Directly after the entry's last value (name / newName), before any comment lines that follow.
    at = _line_end(text, _last_index(entry) - 1 if _last_index(entry) > 0 else 0)
    return _insert_at(text, at, f"{indent}{key}: {tag}{_eol(text)}", _eol(text), after=entry, path=path)


def _seq_offset(root: MappingNode) -> int:
    """How far this file indents block sequences under their key (``0`` or ``2`` usually)."""

    for key, value in root.value:
        if isinstance(value, SequenceNode) and not value.flow_style and value.value:
            return max(0, int(value.start_mark.column) - int(key.start_mark.column))
    return 2


def _key_column(text: str, mapping: MappingNode) -> int:
    """The column a block mapping's keys start at: its indentation, where a new key goes.

    Not the mapping's own start (``- &e`` or ``!!map`` on the line above its keys), nor what
    ruamel marks as a key's start: ``- ? name`` has the `?` at the mapping's column, and in
    ``!!str &b x:`` the mark is at ``&b``. Properties and ``?`` before a key count as the key's.
    """
    columns = []
    for key, _ in mapping.value:
        index = int(key.start_mark.index)
        line_start = max(text.rfind(char, 0, index) for char in _LINE_BREAKS) + 1
        if line_start == 0 and text.startswith("\ufeff"):
            line_start = 1  # the byte order mark takes no column
        before = text[line_start:index].rstrip(" \t")
        while True:
            cut = max(before.rfind(" "), before.rfind("\t")) + 1
            if not before[cut:].startswith(("!", "&", "?")):
                break
            if before[cut:].startswith("?"):
                before = before[:cut]  # the `?` itself is where the key starts
                break
            before = before[:cut].rstrip(" \t")
        column = len(before)
        while line_start + column < index and text[line_start + column] in " \t":
            column += 1
        columns.append(column)
    return min(columns, default=int(mapping.start_mark.column))


def _explicit_key(text: str, key: Node) -> bool:
    """Whether ``key`` is written after the explicit-key indicator ``?`` (on its line, or on a line
    above with only blank and comment lines between: ``?\n  images``)."""
    lines = _LINE_SPLIT_RE.split(text[: key.start_mark.index])
    for number, line in enumerate(reversed(lines)):
        # Above the key's own line, a comment ends the line's content (`? # why`).
        content = (_COMMENT_RE.sub("", line) if number else line).rstrip(" \t")
        if not content.strip(" \t"):
            continue  # the key's own indentation, or a blank or comment line above it
        return content.endswith("?") and (len(content) == 1 or content[-2] in " \t-?")
    return False


def _entry_lines(image: str, tag: str, dash_col: int, key_col: int, eol: str) -> str:
    dash = " " * dash_col + "-" + " " * (key_col - dash_col - 1)
    return f"{dash}name: {image}{eol}{' ' * key_col}newTag: {tag}{eol}"


def _append_entry(text: str, located: _Located, image: str, tag: str, path: str) -> str:

    eol = _eol(text)
    images, root = located.images, located.root
    if isinstance(images, SequenceNode) and images.flow_style:
        # `images: []` / `images: [{...}]`: add a flow entry before `]`, staying on the same line.
        close = images.end_mark.index - 1
        if text[close] != "]":
            raise UsageError(f"{path}: cannot append to the flow-style `images` list; add the entry by hand")
        sep = ", " if images.value else ""
        return text[:close] + f"{sep}{{name: {image}, newTag: {tag}}}" + text[close:]
    if isinstance(images, SequenceNode):
        last = images.value[-1]
        dash_col = images.start_mark.column
        key_col = _key_column(text, last) if last.value and not last.flow_style else dash_col + 2
        at = _line_end(text, _last_index(last) - 1)
        return _insert_at(
            text, at, _entry_lines(image, tag, dash_col, key_col, eol), eol, after=last, path=path
        )
    if root.flow_style:
        raise UsageError(f"{path}: the kustomization is a flow mapping; add the `images` entry by hand")
    explicit = next((k for k, _ in root.value if _explicit_key(text, k)), None)
    if explicit is not None:
        # `? images` / `? key` ends where its `:` line would be: lines appended after it become
        # part of that key (or its value), not a new `images` key.
        raise UsageError(
            f"{path}: the kustomization writes a key with `?` (line {explicit.start_mark.line + 1}); "
            "add the `images` entry by hand"
        )
    key_col = _key_column(text, root)
    dash_col = key_col + _seq_offset(root)
    block = _entry_lines(image, tag, dash_col, dash_col + 2, eol)
    if located.images_key is not None:  # `images:` with no value (null): the entry goes below the key
        at = _line_end(text, located.images_key.end_mark.index)
        return _insert_at(text, at, block, eol, after=located.images_key, path=path)
    block = f"{' ' * key_col}images:{eol}{block}"
    # Before a trailing `...` document end marker (appending after it would start a new document).
    lines = _NEWLINE_RE.findall(text)
    offset = len(text)
    for line in reversed(lines):
        offset -= len(line)
        if _DOC_END_RE.match(line.rstrip("\n")):
            return text[:offset] + block + text[offset:]
        if line.strip() and not line.lstrip().startswith("#"):
            break
    return _insert_at(text, len(text), block, eol, after=root, path=path)


# --- verification -------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """ruamel's commented containers as plain dict/list, so structures compare by value only."""

    if isinstance(value, TaggedScalar):  # `!!str 123` loads as TaggedScalar; compare its text
        return value.value
    if isinstance(value, dict):
        return {_plain_key(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _plain_key(key: Any) -> Any:
    """A key as :func:`_plain` would give it, but hashable: a tagged key (``!foo :``) compares by
    its text, a complex key (``? [a, b]``: ruamel's CommentedKeySeq/-Map) as a tuple."""
    if isinstance(key, TaggedScalar):
        return key.value
    if isinstance(key, dict):
        return tuple((_plain_key(k), _plain_key(v)) for k, v in key.items())
    if isinstance(key, (list, tuple)):
        return tuple(_plain_key(v) for v in key)
    return key


def _verify(edit: OverlayEdit, image: str, *, old_data: Any, replaced: bool) -> None:
    """Re-parse the new text; only ``newTag`` of ``image`` may differ from the old structure."""
    path = edit.path
    try:
        new = _locate(edit.new_text, image, path, allow_digest=True)
        new_data = new.data
        read_back = None if new.tag_node is None else str(new.tag_node.value)
    except UsageError as exc:
        raise OverlayInternalError(f"{path}: the edited file does not parse ({exc}); this is a bug") from exc
    expected = copy.deepcopy(_plain(old_data))
    images = expected.setdefault("images", None)
    if images is None:
        expected["images"] = images = []
    matches = [e for e in images if isinstance(e, dict) and e.get("name") == image]
    if matches:
        matches[0]["newTag"] = edit.tag
    else:
        images.append({"name": image, "newTag": edit.tag})
    if _plain(new_data) != expected or read_back != edit.tag:
        raise OverlayInternalError(f"{path}: editing newTag changed more than that value; this is a bug")
    if replaced:
        old_lines, new_lines = _NEWLINE_RE.findall(edit.old_text), _NEWLINE_RE.findall(edit.new_text)
        differing = [i for i, (a, b) in enumerate(zip(old_lines, new_lines, strict=False)) if a != b]
        if len(old_lines) != len(new_lines) or len(differing) != int(edit.changed):
            raise OverlayInternalError(f"{path}: editing newTag changed more than one line; this is a bug")


def _verify_digest(edit: OverlayEdit, image: str, *, old_data: Any, inserted: bool) -> None:
    """Re-parse: only ``digest`` of ``image`` differs, on one line (replaced) or one new line (inserted)."""
    path = edit.path
    try:
        new = _locate(edit.new_text, image, path, allow_digest=True)
    except UsageError as exc:
        raise OverlayInternalError(f"{path}: the edited file does not parse ({exc}); this is a bug") from exc
    expected = copy.deepcopy(_plain(old_data))
    matches = [e for e in expected.get("images") or [] if isinstance(e, dict) and e.get("name") == image]
    if matches:
        matches[0]["digest"] = edit.digest
    read_back = None if new.digest_node is None else str(new.digest_node.value)
    if not matches or _plain(new.data) != expected or read_back != edit.digest:
        raise OverlayInternalError(f"{path}: editing digest changed more than that value; this is a bug")
    old_lines, new_lines = _NEWLINE_RE.findall(edit.old_text), _NEWLINE_RE.findall(edit.new_text)
    if inserted:
        extra = [line for line in new_lines if line not in old_lines]
        same = len(new_lines) == len(old_lines) + 1 and len(extra) == 1
        if not same or [line for line in new_lines if line != extra[0]] != old_lines:
            raise OverlayInternalError(f"{path}: inserting digest changed other lines; this is a bug")
    else:
        differing = [i for i, (a, b) in enumerate(zip(old_lines, new_lines, strict=False)) if a != b]
        if len(old_lines) != len(new_lines) or len(differing) != int(edit.changed):
            raise OverlayInternalError(f"{path}: editing digest changed more than one line; this is a bug")


def _diff_lines(text: str) -> list[str]:
    return list(_NEWLINE_RE.findall(text))
