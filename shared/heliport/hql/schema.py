"""The documented table ``request_response_rmt`` as heliport answers it: its columns, their ClickHouse
types, and how each is read from heliport's ``requests`` on either database.

Helicone's table (``features__hql.md``, and its ClickHouse definition) has one row per request; so has
heliport's. The columns are read as Helicone documents them:

* times are ``DateTime64(3)`` in UTC; on SQLite they are ClickHouse's text form
  (``2025-01-31 12:00:00.000``), so comparing text compares instants;
* ``cost`` and ``provider_total_cost`` are USD multiplied by 1,000,000,000, as integers ("Cost values
  are stored as integers"; heliport has one cost, so both are it);
* ``properties`` is a map of the request's custom properties (heliport stores their names in lower
  case, so ``properties['Environment']`` reads ``environment``) plus ``Helicone-Session-Id``,
  ``Helicone-Session-Path``, ``Helicone-Session-Name`` and ``Helicone-Prompt-Id`` when set;
* ``scores`` is a map of score name to value; ``request_body`` and ``response_body`` are the stored
  previews of the bodies (the bodies themselves live in the blob store);
* ``latency`` and ``time_to_first_token`` are whole milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

__all__ = ["COLUMNS", "MAP_COLUMNS", "SESSION_KEYS", "TABLE", "Column", "schema_answer", "view_sql"]

#: The one table HQL may read.
TABLE: Final = "request_response_rmt"


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    #: The ClickHouse type Helicone's schema route reports.
    type: str
    #: How the column is read from ``requests`` on PostgreSQL, and on SQLite.
    postgres: str
    sqlite: str
    comment: str


def _ms(column: str, integer: str) -> tuple[str, str]:
    return f"CAST(ROUND({column}) AS {integer})", f"CAST(ROUND({column}) AS INTEGER)"


def _time(column: str) -> str:
    # ClickHouse's DateTime64(3) text, from the stored fixed-width UTC ISO text.
    return f"strftime('%Y-%m-%d %H:%M:%f', {column})"


#: Keys of ``properties`` that heliport keeps in columns of their own.
SESSION_KEYS: Final = {
    "helicone-session-id": ("Helicone-Session-Id", "session_id"),
    "helicone-session-path": ("Helicone-Session-Path", "session_path"),
    "helicone-session-name": ("Helicone-Session-Name", "session_name"),
    "helicone-prompt-id": ("Helicone-Prompt-Id", "prompt_id"),
}
_PG_EXTRA = ", ".join(f"'{name}', {column}" for name, column in SESSION_KEYS.values())
_PG_COST = "CAST(ROUND(cost * 1000000000) AS BIGINT)"
_SQLITE_COST = "CAST(ROUND(CAST(cost AS REAL) * 1000000000) AS INTEGER)"

COLUMNS: Final = (
    Column("request_id", "UUID", "request_id", "request_id", "The request's id"),
    Column("request_created_at", "DateTime64(3)", "created_at", _time("created_at"), "When the request was made"),
    Column("response_created_at", "Nullable(DateTime64(3))", "response_created_at", _time("response_created_at"),
           "When the response was complete"),
    Column("latency", "Nullable(Int64)", *_ms("delay_ms", "BIGINT"), "Milliseconds from request to response"),
    Column("time_to_first_token", "Nullable(Int64)", *_ms("time_to_first_token", "BIGINT"),
           "Milliseconds to the first streamed token"),
    Column("status", "Int64", "status", "status", "HTTP status code"),
    Column("model", "String", "model", "model", "The model used (the response's, else the request's)"),
    Column("request_model", "String", "request_model", "request_model", "The model the request named"),
    Column("response_model", "String", "response_model", "response_model", "The model the response named"),
    Column("provider", "String", "provider", "provider", "The provider, e.g. OPENAI"),
    Column("target_url", "Nullable(String)", "target_url", "target_url", "The upstream URL"),
    Column("user_id", "String", "user_id", "user_id", "Your application's user (Helicone-User-Id)"),
    Column("prompt_id", "String", "prompt_id", "prompt_id", "Helicone-Prompt-Id"),
    Column("prompt_tokens", "Nullable(Int64)", "prompt_tokens", "prompt_tokens", "Prompt tokens"),
    Column("completion_tokens", "Nullable(Int64)", "completion_tokens", "completion_tokens", "Completion tokens"),
    Column("total_tokens", "Nullable(Int64)", "total_tokens", "total_tokens", "Prompt plus completion tokens"),
    Column("prompt_cache_read_tokens", "Nullable(Int64)", "prompt_cache_read_tokens", "prompt_cache_read_tokens",
           "Prompt tokens read from the provider's cache"),
    Column("prompt_cache_write_tokens", "Nullable(Int64)", "prompt_cache_write_tokens", "prompt_cache_write_tokens",
           "Prompt tokens written to the provider's cache"),
    Column("prompt_audio_tokens", "Nullable(Int64)", "prompt_audio_tokens", "prompt_audio_tokens",
           "Audio prompt tokens"),
    Column("completion_audio_tokens", "Nullable(Int64)", "completion_audio_tokens", "completion_audio_tokens",
           "Audio completion tokens"),
    Column("cost", "Nullable(UInt64)", _PG_COST, _SQLITE_COST, "Cost in USD multiplied by 1,000,000,000"),
    Column("provider_total_cost", "Nullable(UInt64)", _PG_COST, _SQLITE_COST,
           "Cost in USD multiplied by 1,000,000,000 (the same as cost)"),
    Column("cache_hit", "Bool", "cache_hit", "cache_hit", "Served from heliport's cache"),
    Column("properties", "Map(String, String)",
           f"(properties || jsonb_strip_nulls(jsonb_build_object({_PG_EXTRA})))",
           "json_patch(properties, json_object(" + ", ".join(f"'{n}', {c}" for n, c in SESSION_KEYS.values()) + "))",
           "Custom properties, e.g. properties['Helicone-Session-Id']"),
    Column("scores", "Map(String, Float64)", "scores", "scores", "Scores by name"),
    Column("request_body", "String", "COALESCE(request_preview, '')", "COALESCE(request_preview, '')",
           "The request body's stored preview"),
    Column("response_body", "String", "COALESCE(response_preview, '')", "COALESCE(response_preview, '')",
           "The response body's stored preview"),
)  # fmt: skip

#: Columns holding maps: read with ``column['key']``, answered as JSON objects.
MAP_COLUMNS: Final = frozenset({"properties", "scores"})


def view_sql(dialect: Literal["postgres", "sqlite"], placeholder: str) -> str:
    """The table as a SELECT over ``requests`` of one organisation (its id bound at ``placeholder``)."""
    columns = ", ".join(f"{c.postgres if dialect == 'postgres' else c.sqlite} AS {c.name}" for c in COLUMNS)
    return f"SELECT {columns} FROM requests WHERE org_id = {placeholder}"


def schema_answer() -> list[dict[str, object]]:
    """``GET /v1/helicone-sql/schema``: Helicone's ``ClickHouseTableSchema[]``."""
    return [
        {
            "table_name": TABLE,
            "columns": [{"name": c.name, "type": c.type, "comment": c.comment} for c in COLUMNS],
        }
    ]
