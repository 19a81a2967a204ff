"""The line scan of ``overlay_scan.read_tag_fast`` answers exactly as the full parser, or not at all.

Every overlay layout the other tests know (the edit tables, refusals, tab cases, the GitOps
fixture's and the benchmark's overlays), hand-made corners of the subset the scan reads, single-line
mutations of all of them and random overlays: where :func:`overlay_scan.scan_tag` answers, :func:`read_tag`
gives the same answer (and does not refuse). The common layouts must be answered by the scan, or
the fast path would be a slow path with extra steps.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings

from dex_tasks.errors import DexError
from dex_tasks.gitops import overlay, overlay_scan
from tests.gitops_fixtures import overlay_text
from tests.unit import test_overlay

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import gitops as bench_gitops

IMAGE = test_overlay.IMAGE
NAMES = (IMAGE, f"{IMAGE}-worker", f"ghcr.io/{IMAGE}", "nginx")

COMMON = {
    "fixture": overlay_text("prod", "sha-1a2b3c4d"),
    "bench": bench_gitops._overlay("prod", "sha-1a2b3c4d", " (7)"),
    "dex-layout": test_overlay.REPLACE_CASES[0][1],
    "zero-indent": "images:\n- name: data-literate/dex\n  newTag: 'sha-a1b2c3d4'\n",
    "labels and patches": (
        "---\napiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: dex-prod\n"
        "commonLabels:\n  app.kubernetes.io/name: dex\n  tier: web\nresources:\n- ../../base\n"
        "patches:\n  - path: replicas.yaml\n    target:\n      kind: Deployment\n      name: dex\n"
        "replicas:\n  - name: dex\n    count: 3\n"
        "images:\n  - name: nginx\n    newTag: 1.25.3\n  - name: data-literate/dex\n"
        '    newName: ghcr.io/data-literate/dex\n    newTag: "sha-1a2b3c4d"   # CD\n'
    ),
    "no images": "resources:\n  - ../../base\n",
    "images null": "resources:\n  - ../../base\nimages:\n# filled by CD\n",
    "no newTag": "images:\n  - name: data-literate/dex\n    newName: x.io/dex\n",
    "empty newTag": "images:\n  - name: data-literate/dex\n    newTag:   # CD fills it\n",
    "number tag": "images:\n  - name: data-literate/dex\n    newTag: 1234567\n",
    "null-looking tag": "images:\n  - name: data-literate/dex\n    newTag: null\n",
    "other image only": "images:\n  - name: data-literate/dex-worker\n    newTag: sha-1111111\n",
}

# Inside the alphabet of the scan but not of the subset, or refused by read_tag: the scan must
# decline (or agree), whatever read_tag then says.
CORNERS = {
    "duplicate nested key": (
        "images:\n  - name: data-literate/dex\n    newTag: sha-1111111\n    newTag: sha-2222222\n"
    ),
    "duplicate top key": "kind: A\nkind: B\nimages: []\n",
    "bool keys": "true: 1\nTrue: 2\n",
    "digest": "images:\n  - name: data-literate/dex\n    digest: sha256:abc\n    newTag: sha-1111111\n",
    "two entries": "images:\n  - name: data-literate/dex\n  - name: data-literate/dex\n",
    "scalar entry": "images:\n  - data-literate/dex\n",
    "images scalar": "images: data-literate/dex\n",
    "images mapping": "images:\n  name: data-literate/dex\n",
    "newTag mapping": "images:\n  - name: data-literate/dex\n    newTag:\n      a: b\n",
    "continued plain": "images:\n  - name: data-literate/dex\n    newTag: sha-1111111\n      more\n",
    "bad dedent": "a:\n    b: 1\n  c: 2\nimages: []\n",
    "seq after scalar": "a: 1\n- b\n",
    "two documents": "a: 1\n---\nb: 2\n",
    "document end": "images:\n  - name: data-literate/dex\n    newTag: sha-1111111\n...\n",
    "date": "created: 2026-13-45\nimages: []\n",
    "octal-ish": "n: 0o_\nimages: []\n",
    "colon value": "images:\n  - name: data-literate/dex\n    newTag: sha-1: x\n",
    "key no space": "images:\n  - name:data-literate/dex\n",
    "dash alone": "images:\n  -\n    name: data-literate/dex\n    newTag: sha-1111111\n",
    "nested seq": "images:\n  - - name: data-literate/dex\n",
    "indented root": "  images:\n    - name: data-literate/dex\n      newTag: sha-1111111\n",
    "root sequence": "- name: data-literate/dex\n",
    "only comments": "# nothing\n",
    "empty": "",
    "quoted empty": "images:\n  - name: data-literate/dex\n    newTag: ''\n",
    "escaped quote": "images:\n  - name: data-literate/dex\n    newTag: 'it''s'\n",
    "flow": "images: [{name: data-literate/dex, newTag: sha-1111111}]\n",
    "anchor": "images:\n  - &e name: data-literate/dex\n",
    "crlf": "images:\r\n  - name: data-literate/dex\r\n    newTag: sha-1111111\r\n",
    "tab": "images:\n  - name: data-literate/dex\n    newTag: sha-1111111\t# c\n",
    "non-ascii comment": "# déploiement\nimages:\n  - name: data-literate/dex\n    newTag: sha-1111111\n",
    "misaligned item keys": "images:\n-   name: data-literate/dex\n  newTag: sha-1111111\n",
}


def _known_texts() -> list[str]:
    texts = list(COMMON.values()) + list(CORNERS.values())
    for case in test_overlay.REPLACE_CASES + test_overlay.APPEND_CASES:
        texts += [case[1], case[2]]
    texts += [case[1] for case in test_overlay.REFUSALS]
    texts += list(test_overlay.TABBED.values())
    return texts


def _mutations(text: str) -> list[str]:
    """Each line deleted, doubled, indented or dedented, prefixed with `- `, `#` or `:`; lines swapped."""
    lines = text.split("\n")
    found = []
    for i, line in enumerate(lines):
        variants = [[], [line, line], ["  " + line], [" " + line], [line[2:]], ["- " + line], ["#" + line]]
        variants += [[line + ":"], [line.replace(": ", ":  ", 1)], [line.replace(" ", "", 1)]]
        found += ["\n".join(lines[:i] + new + lines[i + 1 :]) for new in variants]
        if i + 1 < len(lines):
            found.append("\n".join([*lines[:i], lines[i + 1], line, *lines[i + 2 :]]))
    return found


def _full(text: str, image: str) -> str | type[Exception] | None:
    try:
        return overlay.read_tag(text, image)
    except DexError:
        return DexError


def _check(text: str, names: tuple[str, ...] = NAMES) -> bool:
    """Whether the scan answered; it is an error for it to answer differently from read_tag."""
    answered = False
    for image in names:
        try:
            fast = overlay_scan.scan_tag(text, image)
        except overlay_scan.Declined:
            continue
        answered = True
        assert _full(text, image) == fast, (text, image)
        assert overlay_scan.read_tag_fast(text, image) == fast
    return answered


@pytest.mark.parametrize("text", COMMON.values(), ids=COMMON)
def test_the_common_layouts_are_read_by_the_scan(text: str) -> None:
    assert _check(text)


@pytest.mark.parametrize("text", CORNERS.values(), ids=CORNERS)
def test_corners_are_declined_or_agree(text: str) -> None:
    _check(text)
    for image in NAMES:  # read_tag_fast always gives read_tag's answer or refusal
        try:
            expected: object = overlay.read_tag(text, image)
        except DexError as exc:  # `0o_` too: ruamel's IndexError is a refusal (test_overlay_fuzz)
            with pytest.raises(type(exc)):
                overlay_scan.read_tag_fast(text, image)
        else:
            assert overlay_scan.read_tag_fast(text, image) == expected


def test_every_known_layout_agrees_with_the_parser() -> None:
    texts = _known_texts()
    assert sum(_check(text) for text in texts) >= len(COMMON)


def test_mutations_of_the_common_layouts_agree_with_the_parser() -> None:
    # Bounded: about a thousand texts, one image each (a full parse is a few milliseconds).
    texts = [*COMMON.values(), *(case[1] for case in test_overlay.REPLACE_CASES[:8])]
    mutated = list(itertools.chain.from_iterable(_mutations(t) for t in texts))
    answered = sum(_check(text, (IMAGE,)) for text in mutated)
    assert answered > len(mutated) // 10  # the scan takes part; declines alone would prove nothing


@settings(max_examples=60, deadline=None)
@given(case=test_overlay.overlays())
def test_random_overlays_agree_with_the_parser(case: tuple[str, str, str | None]) -> None:
    text, nl, current = case
    if nl == "\n" and "images: []" not in text:  # CRLF and flow lists are the parser's
        assert _check(text)
        assert overlay_scan.scan_tag(text, IMAGE) == current
    else:
        _check(text)


def test_reading_a_tag_imports_the_parser_only_for_a_declined_text() -> None:
    # `history` reads every version with read_tag_fast; ruamel is most of a short run's start-up.
    common = overlay_text("prod", "sha-1111111")
    declined = common.replace("\n", "\r\n")  # CRLF: the scan leaves it to the parser
    script = (
        "import sys\n"
        "from dex_tasks.tasks import history\n"
        "from dex_tasks.gitops import overlay_scan\n"
        f"print(overlay_scan.read_tag_fast({common!r}, {IMAGE!r}), 'ruamel' in sys.modules)\n"
        f"print(overlay_scan.read_tag_fast({declined!r}, {IMAGE!r}), 'ruamel' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.splitlines() == ["sha-1111111 False", "sha-1111111 True"]
