"""``heliport.hql.compile``: what HQL accepts, what it refuses and why, and what it writes.

The statements run against real databases in ``tests/api/test_hql.py``; here the compiler alone is held
to its rules: every documented example compiles for both databases, every table reference becomes the
organisation's subquery, and hostile statements are refused with a message naming ``sql``.
"""

from __future__ import annotations

import pytest

from heliport.hql.compile import HqlError, compile_hql
from tests.hql.examples import documented_statements

DIALECTS = ("postgres", "sqlite")

#: Statements HQL must refuse, with a word the refusal must contain.
HOSTILE = [
    ("", "empty"),
    ("   -- only a comment", "statement"),
    ("SELECT 1", "FROM request_response_rmt"),
    ("SELECT * FROM requests", "only the table"),
    ("SELECT * FROM request_response_rmt; SELECT * FROM requests", "exactly one"),
    ("SELECT * FROM request_response_rmt; DROP TABLE requests", "exactly one"),
    ("DROP TABLE request_response_rmt", "only SELECT"),
    ("DELETE FROM request_response_rmt WHERE 1 = 1", "only SELECT"),
    ("INSERT INTO request_response_rmt (status) VALUES (1)", "only SELECT"),
    ("UPDATE request_response_rmt SET status = 1", "only SELECT"),
    ("TRUNCATE TABLE request_response_rmt", "only SELECT"),
    ("ALTER TABLE request_response_rmt DELETE WHERE 1", ""),
    ("CREATE TABLE x AS SELECT * FROM request_response_rmt", "only SELECT"),
    ("SELECT * FROM request_response_rmt UNION ALL SELECT * FROM request_response_rmt", "only SELECT"),
    ("SELECT status FROM request_response_rmt UNION ALL SELECT org_id FROM requests", "only SELECT"),
    ("SELECT * FROM system.tables", "only the table"),
    ("SELECT * FROM default.request_response_rmt", "only the table"),
    ("SELECT * FROM pg_catalog.pg_authid", "only the table"),
    ("SELECT * FROM sqlite_master", "only the table"),
    ("SELECT * FROM url('http://169.254.169.254/', CSV, 'a String')", "only the table"),
    ("SELECT * FROM file('/etc/passwd')", "only the table"),
    ("SELECT * FROM request_response_rmt AS r JOIN requests AS q ON r.request_id = q.request_id", "only the table"),
    ("SELECT status FROM request_response_rmt WHERE status IN (SELECT status FROM requests)", "only the table"),
    ("WITH x AS (SELECT * FROM requests) SELECT * FROM x", "only the table"),
    ("WITH x AS (SELECT * FROM request_response_rmt) SELECT * FROM request_response_rmt", "WITH"),
    ("SELECT * FROM request_response_rmt SETTINGS max_execution_time = 1000", "SETTINGS"),
    ("SELECT * FROM request_response_rmt FORMAT CSV", "FORMAT"),
    ("SELECT * FROM request_response_rmt INTO OUTFILE '/tmp/x'", "parse"),
    ("SELECT org_id FROM request_response_rmt", "unknown column org_id"),
    ("SELECT organization_id FROM request_response_rmt", "unknown column"),
    ("SELECT key_id FROM request_response_rmt", "unknown column"),
    ("SELECT requests.org_id FROM request_response_rmt", "unknown table"),
    ("SELECT pg_read_file('/etc/passwd') FROM request_response_rmt", "function"),
    ("SELECT pg_sleep(100) FROM request_response_rmt", "function"),
    ("SELECT sleep(3) FROM request_response_rmt", "function"),
    ("SELECT current_setting('heliport.org_id') FROM request_response_rmt", "function"),
    ("SELECT set_config('heliport.org_id', 'other', true) FROM request_response_rmt", "function"),
    ("SELECT load_extension('x') FROM request_response_rmt", "function"),
    ("SELECT hql_now() FROM request_response_rmt", "function"),
    ("SELECT dictGet('d', 'a', 1) FROM request_response_rmt", "function"),
    ("SELECT readfile('/etc/passwd') FROM request_response_rmt", "function"),
    ("SELECT status FROM request_response_rmt WHERE status = ?", ""),
    ("SELECT status FROM request_response_rmt WHERE status = $1", ""),
    ("SELECT properties[status] FROM request_response_rmt", "string literal"),
    ("SELECT status[1] FROM request_response_rmt", "subscripted"),
    ("SELECT * FROM request_response_rmt WHERE request_created_at > now() - INTERVAL x DAY", "INTERVAL"),
    ("SELECT INTERVAL 1 DAY FROM request_response_rmt", "INTERVAL"),
    ("SELECT * FROM request_response_rmt WHERE request_created_at > now() - INTERVAL 1 FORTNIGHT", ""),
    ("SELEC * FROM request_response_rmt", ""),
    ("SELECT * FROM request_response_rmt WHERE (", "parse"),
    ("SELECT '", ""),
    ("SELECT * FROM request_response_rmt /* unterminated", ""),
    ("SELECT " + "(" * 5000 + "1" + ")" * 5000 + " FROM request_response_rmt", ""),
    ("SHOW TABLES", ""),
    ("DESCRIBE TABLE requests", ""),
    ("EXPLAIN SELECT * FROM request_response_rmt", ""),
    ("SET allow_ddl = 1", ""),
    ("SELECT * FROM request_response_rmt ARRAY JOIN properties", ""),
    ("SELECT quantile(0.5)(latency) FROM request_response_rmt", "function"),
    ("SELECT x FROM request_response_rmt", "unknown column x"),
]


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize(("sql", "word"), HOSTILE)
def test_hostile_statements_are_refused_saying_why(sql: str, word: str, dialect: str) -> None:
    with pytest.raises(HqlError) as refused:
        compile_hql(sql, dialect)  # type: ignore[arg-type]
    assert refused.value.status == 400
    assert refused.value.message.startswith("Invalid sql: ")
    assert word.lower() in refused.value.message.lower()


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("sql", documented_statements())
def test_every_documented_example_compiles_confined(sql: str, dialect: str) -> None:
    compiled = compile_hql(sql, dialect)  # type: ignore[arg-type]
    placeholder = "$1" if dialect == "postgres" else "?"
    assert compiled.org_params == 1
    assert compiled.sql.count(f"FROM requests WHERE org_id = {placeholder}") == 1
    assert "request_response_rmt" not in compiled.sql.replace("AS request_response_rmt", "")


@pytest.mark.parametrize("dialect", DIALECTS)
def test_every_reference_to_the_table_is_confined(dialect: str) -> None:
    sql = (
        "SELECT a.status, count() FROM request_response_rmt AS a JOIN request_response_rmt AS b "
        "ON a.request_id = b.request_id WHERE a.status IN (SELECT status FROM request_response_rmt) "
        "GROUP BY a.status"
    )
    compiled = compile_hql(sql, dialect)  # type: ignore[arg-type]
    assert compiled.org_params == 3
    assert compiled.sql.count("FROM requests WHERE org_id =") == 3


def test_aliases_used_in_the_same_select_are_expanded() -> None:
    compiled = compile_hql(
        "SELECT countIf(status >= 400) AS errors, count() AS total, errors / total AS rate "
        "FROM request_response_rmt WHERE rate >= 0",
        "postgres",
    )
    assert "errors /" not in compiled.sql and "rate >=" not in compiled.sql
    assert compiled.sql.count("COUNT(*)") == 3


def test_properties_keys_read_as_stored() -> None:
    pg = compile_hql("SELECT properties['Environment'], properties['Helicone-Session-Id'] FROM request_response_rmt",
                     "postgres")  # fmt: skip
    assert "properties ->> 'environment'" in pg.sql and "properties ->> 'Helicone-Session-Id'" in pg.sql
    lite = compile_hql("SELECT properties['it''s'] AS p FROM request_response_rmt", "sqlite")
    assert "HQL_MAP_GET(properties, 'it''s')" in lite.sql


def test_map_outputs_are_named() -> None:
    assert compile_hql("SELECT * FROM request_response_rmt", "sqlite").map_outputs == {"properties", "scores"}
    named = compile_hql("SELECT properties AS p, status FROM request_response_rmt", "sqlite")
    assert named.map_outputs == {"p"}


def test_aliases_of_aliases_cannot_expand_without_bound() -> None:
    chain = ", ".join(f"a{i} + a{i} AS a{i + 1}" for i in range(40))
    with pytest.raises(HqlError, match="too large"):
        compile_hql(f"SELECT status AS a0, {chain} FROM request_response_rmt", "sqlite")


def test_a_compiled_statement_is_remembered_and_a_refused_one_is_refused_every_time() -> None:
    """Compiling is pure in (statement, database): the second call is the first's result (no sqlglot
    work), per database; a refused statement raises on every call, never a remembered success."""
    from heliport.hql.compile import HqlError, compile_hql

    sql = "SELECT count(*) AS n FROM request_response_rmt WHERE status = 200 AND model = 'cache-probe'"
    first = compile_hql(sql, "postgres")
    assert compile_hql(sql, "postgres") is first
    on_sqlite = compile_hql(sql, "sqlite")
    assert on_sqlite is not first and on_sqlite.sql != first.sql
    for _ in range(2):
        with pytest.raises(HqlError):
            compile_hql("SELECT * FROM pg_catalog.pg_user", "postgres")
