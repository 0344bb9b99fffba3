"""docs/architecture.md's map of the package matches the package: one row per module, no row for a
module that is gone. A newcomer walks the code from that table, so it must not drift."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "shared" / "heliport"
ROW = re.compile(r"^\| `([^`]+)` \|", re.MULTILINE)


def _map_rows() -> list[str]:
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    section = text.split("## Map of the package", 1)[1].split("\n## ", 1)[0]
    return ROW.findall(section)


def _modules() -> set[str]:
    return {
        path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*.py")
        if path.name != "__init__.py" and "static" not in path.parts
    }


def test_every_module_has_its_own_row() -> None:
    rows = set(_map_rows())
    assert sorted(_modules() - rows) == []


def test_every_row_names_something_that_exists() -> None:
    assert sorted(row for row in _map_rows() if not (PACKAGE / row.rstrip("/")).exists()) == []


def test_no_module_has_two_rows() -> None:
    rows = _map_rows()
    assert sorted({row for row in rows if rows.count(row) > 1}) == []
