"""Relative links in README.md and docs/*.md point at files that exist and, with an #anchor, at a heading there.

Anchors are GitHub's: the heading's text lower-cased, markup and punctuation dropped, spaces turned into hyphens, and
"-1", "-2", ... added to repeats."""

import os
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DOCS = [REPO / "README.md"] + sorted((REPO / "docs").glob("*.md"))

_FENCE = re.compile(r"^(```|~~~)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_LINK = re.compile(r"(?<!!)\[(?:[^\[\]]|\[[^\]]*\])*\]\(([^()\s]+)(?:\s+\"[^\"]*\")?\)")
_CODE_SPAN = re.compile(r"`[^`]*`")


def _prose_lines(text):
    """(line number, line) of the lines outside fenced code blocks."""
    fenced = False
    for number, line in enumerate(text.splitlines(), start=1):
        if _FENCE.match(line.strip()):
            fenced = not fenced
            continue
        if not fenced:
            yield number, line


def _slug(heading):
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path):
    seen, result = {}, set()
    for _, line in _prose_lines(path.read_text(encoding="utf-8")):
        match = _HEADING.match(line)
        if not match:
            continue
        slug = _slug(match.group(2))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        result.add(slug if count == 0 else "{}-{}".format(slug, count))
    return result


def links(path):
    for number, line in _prose_lines(path.read_text(encoding="utf-8")):
        for match in _LINK.finditer(_CODE_SPAN.sub("", line)):
            yield number, match.group(1)


def test_slug_follows_github():
    assert _slug("How good it is") == "how-good-it-is"
    assert _slug("MNN's Winograd level") == "mnns-winograd-level"
    assert _slug("The LUT's own regressor") == "the-luts-own-regressor"
    assert _slug("Small networks move, large ones do not") == "small-networks-move-large-ones-do-not"
    assert _slug("calib-cnn version 2") == "calib-cnn-version-2"


def test_links_in_a_sample_are_found(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Top\n\nSee [a](other.md#x), `[b](code.md)` and ![img](pic.png).\n\n```\n[c](fenced.md)\n```\n")
    assert [target for _, target in links(page)] == ["other.md#x"]
    assert anchors(page) == {"top"}


def broken_links(doc):
    broken = []
    for number, target in links(doc):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        path_part, _, anchor = target.partition("#")
        dest = (doc.parent / path_part).resolve() if path_part else doc
        if not os.path.exists(str(dest)):
            broken.append("line {}: {} (no such file)".format(number, target))
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append("line {}: {} (no such heading)".format(number, target))
    return broken


def test_broken_links_are_reported(tmp_path):
    (tmp_path / "other.md").write_text("# Other\n\n## A part\n")
    page = tmp_path / "page.md"
    page.write_text("# Page\n\n[ok](other.md#a-part) [self](#page) [gone](missing.md)\n[bad](other.md#nowhere)\n")
    assert broken_links(page) == ["line 3: missing.md (no such file)", "line 4: other.md#nowhere (no such heading)"]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve(doc):
    broken = broken_links(doc)
    assert not broken, "{}: {}".format(doc.relative_to(REPO), "; ".join(broken))
