"""Links between the repository's files resolve: no README, doc page, Dockerfile or module points at a
file (or a heading) that does not exist.

Two kinds of link are checked:
- markdown links and images, ``[text](target)`` and ``[id]: target``, relative to the file they are in
  (``/target`` from the repository's root), outside fenced code blocks;
- paths written out from the repository's root, ``docs/<file>[#anchor]``, in markdown, Dockerfiles and
  the other text sources (a comment or docstring saying "see docs/...").

A ``#anchor`` into a markdown file must be one of its headings as GitHub renders them (or an explicit
``id``/``name``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]
THIS_FILE = Path(__file__).resolve()  # its examples are broken on purpose
# Directories that are not the project's own files: virtualenvs, caches, build output, dependencies.
SKIPPED_DIRECTORIES = {"node_modules", "__pycache__", "build", "dist"}
MENTION_SUFFIXES = {".md", ".py", ".yaml", ".yml", ".toml", ".tf", ".hcl", ".sh", ".txt", ".cfg", ".ini"}

MARKDOWN_LINK = re.compile(r"!?\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+(?:\"[^\"]*\"|'[^']*'))?\s*\)")
REFERENCE_DEFINITION = re.compile(r"^ {0,3}\[[^\]\n]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", re.MULTILINE)
# `docs/<path>` written from the root: not part of a longer path (seeds/docs/..., a URL's /docs/...).
ROOT_MENTION = re.compile(r"(?<![\w./@:-])(docs/[\w./-]*[\w/])(#[\w-]+)?")
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
FENCE = re.compile(r"^ {0,3}(```|~~~)")
HEADING = re.compile(r"^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$")
HTML_ANCHOR = re.compile(r"<[^>]+\b(?:id|name)=[\"']([^\"']+)[\"']")


def _sources() -> Iterator[Path]:
    """The repository's own text files that may link: markdown, Dockerfiles and sources."""
    for directory, subdirectories, files in os.walk(ROOT):
        subdirectories[:] = sorted(
            name for name in subdirectories if not name.startswith(".") and name not in SKIPPED_DIRECTORIES
        )
        for name in sorted(files):
            path = Path(directory) / name
            if (name.startswith("Dockerfile") or path.suffix in MENTION_SUFFIXES) and path != THIS_FILE:
                yield path


def _outside_fences(text: str) -> str:
    """``text`` with the lines of fenced code blocks blanked (line numbers are kept)."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            lines.append("")
        else:
            lines.append("" if fenced else line)
    return "\n".join(lines)


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: its text (no markup) lowercased, punctuation other than ``-`` and
    ``_`` dropped, spaces made hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text only
    text = re.sub(r"<[^>]+>", "", text).replace("`", "").replace("*", "")
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


@cache
def _anchors(path: Path) -> frozenset[str]:
    """Every anchor of a markdown file: headings (GitHub numbers repeats -1, -2, ...) and HTML ids."""
    text = path.read_text(encoding="utf-8")
    anchors: set[str] = set(HTML_ANCHOR.findall(text))
    seen: dict[str, int] = {}
    for line in _outside_fences(text).splitlines():
        match = HEADING.match(line)
        if match:
            slug = github_slug(match.group(1))
            anchors.add(slug if slug not in seen else f"{slug}-{seen[slug]}")
            seen[slug] = seen.get(slug, 0) + 1
    return frozenset(anchors)


def _links(path: Path, text: str) -> list[tuple[int, Path, str | None]]:
    """(line, target file, anchor or None) of every relative link in ``text``, the content of ``path``;
    a markdown link written from the root (``[x](docs/y.md)`` in README.md) counts once."""
    return sorted(set(_all_links(path, text)), key=lambda link: (link[0], str(link[1]), link[2] or ""))


def _all_links(path: Path, text: str) -> Iterator[tuple[int, Path, str | None]]:
    body = text
    if path.suffix == ".md":
        body = _outside_fences(text)  # code blocks are examples, not links
        for pattern in (MARKDOWN_LINK, REFERENCE_DEFINITION):
            for match in pattern.finditer(body):
                target = match.group(1)
                if SCHEME.match(target) or target.startswith("//"):
                    continue  # a URL (http:, mailto:, ...), not a file of the repository
                file_part, _, anchor = unquote(target).partition("#")
                base = ROOT if file_part.startswith("/") else path.parent
                resolved = (base / file_part.lstrip("/")).resolve() if file_part else path
                yield body.count("\n", 0, match.start()) + 1, resolved, anchor or None
    for match in ROOT_MENTION.finditer(body):
        anchor = match.group(2)
        yield body.count("\n", 0, match.start()) + 1, ROOT / match.group(1), anchor[1:] if anchor else None


def broken_links(path: Path, text: str) -> list[str]:
    """What in ``text`` (the content of ``path``) points at a missing file or heading."""
    broken = []
    for line, target, anchor in _links(path, text):
        where = f"{path.relative_to(ROOT)}:{line}"
        shown = target.relative_to(ROOT) if target.is_relative_to(ROOT) else target
        if not target.exists():
            broken.append(f"{where}: {shown} does not exist")
        elif anchor and target.suffix == ".md" and anchor not in _anchors(target):
            broken.append(f"{where}: {shown} has no heading #{anchor}")
    return broken


def test_every_relative_link_points_at_an_existing_file() -> None:
    sources = list(_sources())
    assert any(path.name == "Dockerfile" for path in sources) and ROOT / "README.md" in sources
    linked = [target for path in sources for _, target, _ in _links(path, path.read_text(encoding="utf-8"))]
    assert len(linked) >= 20 and ROOT / "docs" / "architecture.md" in linked, "the scan must see the links"
    broken = [item for path in sources for item in broken_links(path, path.read_text(encoding="utf-8"))]
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_the_realtime_docs_are_linked_at_their_section() -> None:
    """The Dockerfile and the realtime module's README point at the realtime relay's section."""
    anchor = "the-realtime-relay-v1gatewayoairealtime"
    assert github_slug("The realtime relay (`/v1/gateway/oai/realtime`)") == anchor
    assert anchor in _anchors(ROOT / "docs" / "architecture.md")
    for path in (ROOT / "Dockerfile", ROOT / "infra" / "terraform" / "modules" / "realtime" / "README.md"):
        text = path.read_text(encoding="utf-8")
        assert (ROOT / "docs" / "architecture.md", anchor) in {(target, a) for _, target, a in _links(path, text)}


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("Dockerfile", "# see docs/realtime.md.\n", "Dockerfile:1: docs/realtime.md does not exist"),
        ("notes.md", "See [it](docs/nowhere.md).\n", "notes.md:1: docs/nowhere.md does not exist"),
        ("notes.md", "\n[ref]: docs/architecture.md#nowhere\n", "notes.md:2: docs/architecture.md has no heading"),
        ("notes.md", "Read `docs/architecture.md#no-such-heading`.\n", "notes.md:1: docs/architecture.md has no"),
    ],
    ids=["dockerfile-mention", "markdown-link", "reference-anchor", "mention-anchor"],
)
def test_a_broken_link_is_reported(name: str, text: str, expected: str) -> None:
    (found,) = broken_links(ROOT / name, text)
    assert found.startswith(expected), found


def test_links_in_code_blocks_urls_and_longer_paths_are_not_links() -> None:
    text = "```\n[x](docs/missing.md)\n```\n[site](https://example.com/docs/missing.md) seeds/docs/missing.md\n"
    assert broken_links(ROOT / "notes.md", text) == []
