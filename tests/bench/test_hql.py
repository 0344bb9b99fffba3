"""``bench/hql.py`` at a tiny size: the whole benchmark runs end to end and its results hold together.

The real run fills 1,000,000 rows and takes minutes; this one fills 2,000, copies all of them to
SQLite (``--sqlite-every 1``), and times each statement twice, so a benchmark that no longer runs
(a statement HQL stops accepting, a changed helper it imports) fails the suite. It checks what the
run measured, never how fast.
"""

from __future__ import annotations

import json
from pathlib import Path

from bench import hql
from tests.hql.examples import documented_statements


def test_a_tiny_run_times_every_documented_statement_on_both_databases(pg_dsn_sync: str, tmp_path: Path) -> None:
    out = tmp_path / "hql.json"
    written = hql.main(
        ["--rows", "2000", "--repeat", "2", "--sqlite-every", "1", "--dsn", pg_dsn_sync, "--out", str(out)]
    )
    assert written == out
    result = json.loads(out.read_text())

    expected = list(dict.fromkeys([hql.DOCUMENTED, *documented_statements()]))
    assert expected[0] == hql.DOCUMENTED  # the feature page's REST example comes first
    assert len(expected) > 1
    for engine in ("postgres", "sqlite"):
        cases = result[engine]
        assert [case["sql"] for case in cases] == expected
        for case in cases:
            assert 0 < case["p50_ms"] <= case["p99_ms"]
            assert case["bytes"] > 0
    # SQLite holds a copy of every row, so each statement answers as many rows on both databases;
    # the measured organisation has rows in the last day, so none of the answers is empty by accident.
    assert result["sqlite_rows"] == 2000
    rows = {engine: [case["rows"] for case in result[engine]] for engine in ("postgres", "sqlite")}
    assert rows["postgres"] == rows["sqlite"]
    assert rows["postgres"][0] == 3  # the example groups by model; the generator writes three models

    explained = result["postgres_slowest_explain"]
    assert explained["sql"] == max(result["postgres"], key=lambda case: case["p50_ms"])["sql"]
    assert "Execution Time" in explained["plan"]
    assert "heliport.org_id" in explained["plan"]  # run as the API runs it: under row-level security
