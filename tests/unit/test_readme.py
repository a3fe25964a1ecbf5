"""README.md stays one screen to start, and the README's and docs/ pages' relative links resolve."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
MAX_LINES = 150
MAX_WIDTH = 160
# [text](target) or [text](target "title"); images too. Code spans and fenced blocks are skipped.
LINK = re.compile(r"\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def prose_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, text) of the lines outside ``` fenced blocks."""
    out, fenced = [], False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if not fenced:
            out.append((number, line))
    return out


def relative_links(path: Path) -> list[tuple[int, str]]:
    """(line number, target) of every markdown link that is neither a URL nor an in-page anchor."""
    found = []
    for number, line in prose_lines(path):
        text = re.sub(r"`[^`]*`", "", line)  # a link-like text inside a code span is not a link
        for target in LINK.findall(text):
            if re.match(r"[a-z][a-z0-9+.-]*:", target, re.I) or target.startswith("#"):
                continue
            found.append((number, target))
    return found


def test_readme_fits_one_screen_to_start():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_LINES, (
        f"README.md has {len(lines)} lines (at most {MAX_LINES}); move detail to docs/"
    )


def test_readme_lines_are_short_outside_code_and_tables():
    long = [
        f"README.md:{number} ({len(line)} chars)"
        for number, line in prose_lines(README)
        if len(line) > MAX_WIDTH and not line.lstrip().startswith("|")
    ]
    assert not long, f"lines over {MAX_WIDTH} characters: {long}"


def test_readme_links_every_docs_page():
    text = README.read_text(encoding="utf-8")
    missing = [p.name for p in PAGES[1:] if f"(docs/{p.name})" not in text]
    assert not missing, f"README.md does not link docs/ pages {missing}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page: Path):
    broken = []
    for number, target in relative_links(page):
        file_part = target.split("#", 1)[0].split("?", 1)[0]
        if file_part and not (page.parent / file_part).exists():
            broken.append(f"{page.relative_to(ROOT)}:{number} -> {target}")
    assert not broken, f"links to missing files: {broken}"


def test_link_pattern_finds_links():
    sample = 'see [a](docs/a.md), [b](../b.md#x "t"), [web](https://x.org), [here](#top) and `[c](no.md)`'
    text = re.sub(r"`[^`]*`", "", sample)
    assert LINK.findall(text) == ["docs/a.md", "../b.md#x", "https://x.org", "#top"]
