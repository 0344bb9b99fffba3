"""The request endpoints of the query API: list and look up logged requests, and annotate them.

::

    POST /v1/request/query, /v1/request/query-clickhouse   query_sql            -> to_helicone_request
    POST /v1/request/query-ids                            ids_sql
    GET  /v1/request/{id}                                 one_sql
    POST /v1/request/{id}/feedback                        feedback_sql
    PUT  /v1/request/{id}/property                        property_sql
    POST /v1/request/{id}/score                           scores_sql

Rows come back as Helicone's documented ``HeliconeRequest`` (``seeds/docs/rest__request__*.md``).
Decisions where the documentation is silent:

* Bodies. A single request (``GET /v1/request/{id}?includeBody=true``) carries them inline as
  ``request_body``/``response_body``; lists carry ``signed_body_url``, a short-lived URL of the JSON
  ``{request, response}`` (an S3 presigned GET in AWS, a heliport URL signed with HMAC locally), and
  ``request_body: null``. Omitted bodies (``Helicone-Omit-*``) are ``null`` either way.
* ``isCached: true`` lists cache hits only; ``isScored: true`` only requests with a score;
  ``isPartOfExperiment: true`` nothing (heliport has no experiments).
* ``limit`` defaults to 100 and may be at most 1000; ``offset`` at most 1,000,000 (deeper pages are
  a sign that a time filter is missing, and cost the database a scan).
* Fields heliport does not record (``country_code``, ``prompt_version``, ``llmSchema``, assets,
  ``request_referrer``) are ``null`` or empty; ``response_id`` is the request id (one response per
  request), ``feedback_id`` too when there is feedback; ``cache_enabled`` is true for cache hits.
* Scores are numbers; a boolean score is stored as 1 or 0, as Helicone does. Scores and properties
  are merged into what the row has: an existing name is overwritten, others are kept.
* ``request_properties`` is the custom properties as stored plus ``Helicone-Session-Id``,
  ``Helicone-Session-Path``, ``Helicone-Session-Name`` and ``Helicone-Prompt-Id`` when the request had
  them (Helicone keeps those headers among its properties); ``properties`` is the stored object alone.
* ``heliport_checks`` (not in Helicone's shape, which has no place for it): what the checks the
  request asked for found, by check name (``moderation``, ``llm_security``, ``token_limit``,
  ``posthog``), each an object; ``{}`` when none ran. A blocked request is its row with the 400.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

from heliport.api.database import ROW_COLUMNS
from heliport.api.dialect import Params, js_iso
from heliport.api.filters import compile_request_filter, compile_request_sort
from heliport.errors import RouteNotFoundError
from heliport.logs.row import RequestRow
from heliport.store.logdb import COLUMNS

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_IDS",
    "MAX_LIMIT",
    "MAX_OFFSET",
    "feedback_sql",
    "ids_sql",
    "one_sql",
    "parse_request_id",
    "property_sql",
    "query_sql",
    "scores_sql",
    "to_helicone_request",
]

DEFAULT_LIMIT: Final = 100
MAX_LIMIT: Final = 1000
MAX_OFFSET: Final = 1_000_000
MAX_IDS: Final = 1000


def parse_request_id(value: str) -> str:
    """A request id as stored (a lower-case UUID); anything else cannot be a stored request: a 404."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise RouteNotFoundError(f"No request {value!r}: request ids are UUIDs.") from None


def _listed_columns(dialect: str) -> str:
    """:data:`ROW_COLUMNS` for a page of a list: ``body_inline`` says only whether the bodies are on the
    row (``NOT_READ``, an empty value, when they are: :mod:`heliport.logs.stored_bodies`), since a list
    hands out body URLs, not bodies. ``IS NULL`` reads the null bitmap, so the bodies are never fetched
    or detoasted: measured on PostgreSQL, 100 rows with ~3.4 KB bodies on them in 1.8 ms instead of 4.1."""
    empty = "''::bytea" if dialect == "postgres" else "X''"  # both read back as NOT_READ (b"")
    flag = f"CASE WHEN body_inline IS NULL THEN NULL ELSE {empty} END AS body_inline"
    return ", ".join(flag if c == "body_inline" else c for c in COLUMNS)


_LISTED_COLUMNS: Final = {dialect: _listed_columns(dialect) for dialect in ("postgres", "sqlite")}


def _key(params: Params, request_id: str) -> str:
    placeholder = params.add(request_id)
    return f"{placeholder}::uuid" if params.dialect.name == "postgres" else placeholder


def query_sql(
    org_id: str,
    params: Params,
    *,
    filter: object,
    sort: object,
    limit: int,
    offset: int,
    cached_only: bool = False,
    scored_only: bool = False,
) -> str:
    """One page of the organisation's requests matching ``filter``, in ``sort`` order; without the bodies
    kept on the rows (see :func:`_listed_columns`): such a row's bodies are read with :func:`one_sql`."""
    org = params.add(org_id)
    where = compile_request_filter(filter, params)
    conditions = [f"org_id = {org}", f"({where})"]
    if cached_only:
        conditions.append("cache_hit = " + ("true" if params.dialect.name == "postgres" else "1"))
    if scored_only:
        conditions.append("scores <> '{}'" + ("::jsonb" if params.dialect.name == "postgres" else ""))
    order = compile_request_sort(sort, params)
    columns = _LISTED_COLUMNS[params.dialect.name]
    return (
        f"SELECT {columns} FROM requests WHERE {' AND '.join(conditions)} ORDER BY {order} "
        f"LIMIT {params.add(limit)} OFFSET {params.add(offset)}"
    )


def ids_sql(org_id: str, params: Params, request_ids: list[str]) -> str:
    """The organisation's requests among ``request_ids``, newest first."""
    org = params.add(org_id)
    if params.dialect.name == "postgres":
        members = f"request_id = ANY({params.add(request_ids)}::uuid[])"
    else:
        members = f"request_id IN ({', '.join(params.add(i) for i in request_ids)})"
    return f"SELECT {ROW_COLUMNS} FROM requests WHERE org_id = {org} AND {members} ORDER BY created_at DESC"


def one_sql(org_id: str, params: Params, request_id: str) -> str:
    return (
        f"SELECT {ROW_COLUMNS} FROM requests WHERE org_id = {params.add(org_id)} "
        f"AND request_id = {_key(params, request_id)} ORDER BY created_at LIMIT 1"
    )


def _update(set_clause: str, org_id: str, params: Params, request_id: str) -> str:
    # set_clause's values were bound first, as its placeholders come first in the text.
    org = params.add(org_id)
    return f"UPDATE requests SET {set_clause} WHERE org_id = {org} AND request_id = {_key(params, request_id)}"


def feedback_sql(org_id: str, params: Params, request_id: str, *, rating: bool, at: datetime) -> str:
    value: object = rating if params.dialect.name == "postgres" else int(rating)
    clause = f"feedback_rating = {params.add(value)}, feedback_created_at = {params.add(params.dialect.timestamp(at))}"
    return _update(clause, org_id, params, request_id)


def _merge(column: str, params: Params, values: dict[str, str] | dict[str, float]) -> str:
    """``column`` (a JSON object) with ``values`` merged in; names travel inside one bound JSON value,
    so no JSON path, and no quoting of a name, is ever involved."""
    encoded = params.add(json.dumps(values, allow_nan=False))
    if params.dialect.name == "postgres":
        return f"{column} = {column} || {encoded}::jsonb"
    return f"{column} = json_patch({column}, {encoded})"


def property_sql(org_id: str, params: Params, request_id: str, properties: dict[str, str]) -> str:
    return _update(_merge("properties", params, properties), org_id, params, request_id)


def scores_sql(org_id: str, params: Params, request_id: str, scores: dict[str, float]) -> str:
    return _update(_merge("scores", params, scores), org_id, params, request_id)


def _number(value: Decimal | None) -> float | None:
    return float(value) if value is not None else None


def _iso_or_none(value: datetime | None) -> str | None:
    return js_iso(value) if value is not None else None


def _checks(checks: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The row's checks as the API documents them (check name -> outcome object). Every check records an
    object; anything else (a row written by a future or faulty writer) is wrapped, so the answer always
    matches ``/openapi.json``."""
    return {name: value if isinstance(value, dict) else {"value": value} for name, value in checks.items()}


#: Request headers Helicone keeps among a row's properties, and the row fields heliport keeps them in.
_HEADER_PROPERTIES: Final = (
    ("Helicone-Session-Id", "session_id"),
    ("Helicone-Session-Path", "session_path"),
    ("Helicone-Session-Name", "session_name"),
    ("Helicone-Prompt-Id", "prompt_id"),
)


def _request_properties(row: RequestRow) -> dict[str, str]:
    """The custom properties as stored (header names lower-cased without ``Helicone-Property-``), plus
    the session and prompt headers under their header names when the request had them: Helicone's
    sessions cookbook reads ``request_properties["Helicone-Session-Id"]`` and its neighbours there."""
    properties = dict(row.properties)
    for name, field in _HEADER_PROPERTIES:
        value = getattr(row, field)
        if value is not None:
            properties[name] = value
    return properties


def to_helicone_request(
    row: RequestRow,
    *,
    request_body: Any = None,
    response_body: Any = None,
    signed_body_url: str | None = None,
    storage_location: str = "s3",
) -> dict[str, Any]:
    """A stored row as the documented ``HeliconeRequest`` object."""
    cost = _number(row.cost)
    created = js_iso(row.created_at)
    result: dict[str, Any] = {
        "response_id": row.request_id,
        "response_created_at": _iso_or_none(row.response_created_at),
        "response_status": row.status,
        "response_model": row.response_model,
        "request_id": row.request_id,
        "request_created_at": created,
        "request_body": request_body,
        "request_path": row.path,
        "request_user_id": row.user_id,
        "request_properties": _request_properties(row),
        "request_model": row.request_model,
        "model_override": row.model_override,
        "helicone_user": None,
        "provider": row.provider,
        "delay_ms": row.delay_ms,
        "time_to_first_token": row.time_to_first_token,
        "total_tokens": row.total_tokens,
        "prompt_tokens": row.prompt_tokens,
        "prompt_cache_write_tokens": row.prompt_cache_write_tokens,
        "prompt_cache_read_tokens": row.prompt_cache_read_tokens,
        "completion_tokens": row.completion_tokens,
        "reasoning_tokens": row.reasoning_tokens,
        "prompt_audio_tokens": row.prompt_audio_tokens,
        "completion_audio_tokens": row.completion_audio_tokens,
        "cost": cost,
        "costUSD": cost,
        "prompt_id": row.prompt_id,
        "prompt_version": None,
        "feedback_created_at": _iso_or_none(row.feedback_created_at),
        "feedback_id": row.request_id if row.feedback_rating is not None else None,
        "feedback_rating": row.feedback_rating,
        "signed_body_url": signed_body_url,
        "llmSchema": None,
        "country_code": None,
        "asset_ids": None,
        "asset_urls": None,
        "scores": row.scores,
        "properties": row.properties,
        "assets": [],
        "target_url": row.target_url,
        "model": row.model or "",
        "cache_reference_id": row.cache_reference_id,
        "cache_enabled": row.cache_hit,
        "rate_limited": row.rate_limited,
        "updated_at": _iso_or_none(row.feedback_created_at) or _iso_or_none(row.response_created_at) or created,
        "request_referrer": None,
        "ai_gateway_body_mapping": "OPENAI" if row.gateway_provider else None,
        "storage_location": storage_location,
        "heliport_checks": _checks(row.checks),
    }
    if response_body is not None:
        result["response_body"] = response_body
    return result
