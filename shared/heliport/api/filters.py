"""Helicone's filter AST compiled to SQL over ``requests``, for PostgreSQL and SQLite.

The AST is Helicone's (``seeds/docs/rest__request__post-v1requestquery.md`` and the session/user
pages): a leaf ``{table: {field: {operator: value}}}``, a branch ``{left, operator: "and"|"or",
right}``, or ``"all"``. Public entry points::

    compile_request_filter(node, params) -> str               the WHERE fragment of a request list
    compile_aggregate_filter(node, params, kind) -> (where, having | None)   the session/user endpoints
    compile_having(node, params, kind) -> str | None           only the post-aggregation part
    split_filter(node, kind) -> (request_node, aggregate_node)  the two parts, as filter ASTs
    compile_request_sort(sort, params) -> str                  ORDER BY of a request list (SortLeafRequest)

Every value and every property or score name is a bind parameter (``Params.add``); the SQL text only
ever holds column names from the tables below, fixed keywords and placeholders. A node is parsed and
checked completely before any SQL is written, so a bad node raises :class:`FilterError` (a 400 whose
message and ``param`` name the path, e.g. ``filter.left.request_response_rmt.foo``) and leaves
``params`` untouched. Values are bound in the order their placeholders appear in the text (SQLite's
``?`` is positional).

Decisions where the documentation is silent:

* Organisation. The caller always writes its own ``org_id = <param>`` next to the fragment, which is
  returned as one parenthesisable boolean expression: every ``or`` is written in parentheses, so no
  branch can widen past the caller's condition. Filters on the organisation (``request.org_id``,
  ``request_response_rmt.organization_id``) are rejected: the organisation comes from the API key.
* ``{}`` and ``"all"`` match every row (``TRUE``); so does an empty table or field object. A leaf
  naming several fields or operators ANDs them; so does a leaf naming several tables.
* Text. ``equals`` is exact. ``not-equals`` and ``not-contains`` also match rows that have no value
  (``NULL``, or no such property): a request without a user id is "not user x" (Helicone's ClickHouse
  stores ''). ``like``/``ilike`` take the caller's pattern (``%``, ``_``, ``\\`` escapes); ``like`` is
  case-sensitive on both databases (SQLite: translated to GLOB), ``ilike`` case-insensitive (SQLite's
  LIKE folds ASCII only). ``contains``/``not-contains`` are literal, case-sensitive substrings:
  ``%``/``_`` in the value are matched as themselves (PostgreSQL: LIKE with ESCAPE; SQLite: instr).
* ``search_properties`` is ``properties`` with search semantics: every operator is case-insensitive
  and literal (``equals`` is a case-insensitive equality, ``contains`` a case-insensitive substring;
  ``like``/``ilike`` are ILIKE patterns).
* Property names (``properties``, ``search_properties``): a filter's name finds the property of
  exactly that name, or else the one named its lower-case form. Names sent as headers are stored
  lower-case (``Helicone-Property-Environment`` is ``environment``), so Helicone's docs' filter on
  ``"Environment"`` finds them in any letter case; a name given mixed-case through ``PUT
  /v1/request/{id}/property`` is found by that exact name. (SQLite's ``lower`` folds ASCII letters
  only.) ``Helicone-Session-Id``, ``-Session-Name``, ``-Session-Path``, ``Helicone-User-Id`` and
  ``Helicone-Prompt-Id`` are the row's own columns, in any letter case.
* ``property_key`` accepts only ``equals``: the row has that property name. ``scores`` compare
  numerically (number operators; a numeric string or a boolean, stored as 1/0, is accepted).
* Numbers are JSON numbers or numeric strings (the web client sends both); anything else, booleans
  included, is a 400. ``cost`` compares the exact stored decimal on PostgreSQL, a double on SQLite.
* Timestamps are ISO-8601 strings; with no offset they are UTC. They compare as instants: bound as
  ``timestamptz`` on PostgreSQL, as the stored fixed-width UTC text on SQLite.
* ``request_id`` (``request.id``) ``equals``/``not-equals`` with a UUID compares the UUID (any case);
  other operators work on its lower-case text.
* Legacy ``request.model`` and ``request_response_rmt.model`` are the row's billed ``model``
  (override > response > request); ``response.model``/``response.body_model`` the response's model.
  ``request.prompt``/``request_body`` and ``response.body_completion``/``response_body`` search the
  stored previews (the first 2000 characters), not the blob-stored bodies.
* Fields heliport does not record (``country_code``, ``prompt_version``, ``request_referrer``,
  ``node_id``, ``job_id``, ``threat``, ``is_passthrough_billing``, ``assets``, ``scores_column``,
  ``auth_hash``, ``session_tag``, feedback ``id``/``response_id``) and the ``values`` table (prompt
  inputs) are a 400 saying so, rather than silently matching everything or nothing.
* Session and user leaves (``sessions_request_response_rmt``, ``users_view``) test the aggregated
  row, so they are compiled separately (:func:`split_filter`): an ``and`` splits into a request part
  (WHERE, before grouping) and an aggregate part (the ``having`` callable of ``aggregates``); an
  ``or`` must not mix the two (a 400), since no single WHERE or HAVING could express it. Elsewhere —
  ``/v1/request/query``, ``/v1/user/query``, ``/v1/property/query`` — such leaves are a 400.
* Limits: at most :data:`MAX_DEPTH` nested branches and :data:`MAX_CONDITIONS` conditions. The value
  of a pattern or substring operator (``like``, ``ilike``, ``contains``, ``not-contains``, and every
  ``search_properties`` operator, all LIKE patterns) is at most :data:`MAX_PATTERN_LENGTH` characters:
  SQLite refuses a LIKE or GLOB pattern over 50,000 bytes. ``equals`` values are not capped.
* Sort: keys apply in the order given; ``random: true`` orders randomly; NULLs sort last either way;
  text sorts byte-wise (``COLLATE "C"`` on PostgreSQL, SQLite's default), so both databases agree;
  ``request_id`` always ends the list (in the first key's direction) so pages are stable.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Final, Literal

from heliport.api.dialect import Params
from heliport.errors import RequestError

__all__ = [
    "MAX_CONDITIONS",
    "MAX_DEPTH",
    "MAX_PATTERN_LENGTH",
    "SESSION_COLUMNS",
    "USER_COLUMNS",
    "AggregateKind",
    "FilterError",
    "Having",
    "compile_aggregate_filter",
    "compile_having",
    "compile_request_filter",
    "compile_request_sort",
    "split_filter",
]

AggregateKind = Literal["session", "user"]

#: Writes a post-aggregation condition over the aggregated row's columns, binding into the Params it
#: is given (``api/aggregates.py`` calls it where the fragment belongs in its statement).
Having = Callable[[Params], str]

#: Helicone's session-level filter fields (``sessions_request_response_rmt``) -> the column of the
#: aggregated session row (``api/aggregates.py``) a ``having`` fragment may compare. ``session_tag``
#: has no storage here.
SESSION_COLUMNS: Final[Mapping[str, str]] = {
    "session_session_id": "session_id",
    "session_session_name": "session_name",
    "session_total_cost": "total_cost",
    "session_total_tokens": "total_tokens",
    "session_prompt_tokens": "prompt_tokens",
    "session_completion_tokens": "completion_tokens",
    "session_total_requests": "total_requests",
    "session_created_at": "created_at",
    "session_latest_request_created_at": "latest_request_created_at",
}

#: Helicone's user-level filter fields (``users_view``) -> the column of the aggregated user row.
USER_COLUMNS: Final[Mapping[str, str]] = {
    "user_user_id": "user_id",
    "user_active_for": "active_for",
    "user_first_active": "first_active",
    "user_last_active": "last_active",
    "user_total_requests": "total_requests",
    "user_average_requests_per_day_active": "average_requests_per_day_active",
    "user_average_tokens_per_request": "average_tokens_per_request",
    "user_total_completion_tokens": "total_completion_tokens",
    "user_total_prompt_tokens": "total_prompt_tokens",
    "user_cost": "cost",
}

#: Deepest nesting of branches a filter may have.
MAX_DEPTH: Final = 50
#: Most conditions (field-operator pairs) a filter may have.
MAX_CONDITIONS: Final = 500
#: Longest value of a pattern or substring operator, and of the free-text search fields of the
#: session endpoints: SQLite refuses a LIKE/GLOB pattern over 50,000 bytes ("pattern too complex"),
#: and no real search needs more than a sentence.
MAX_PATTERN_LENGTH: Final = 1000


class FilterError(RequestError):
    """A filter or sort node is malformed or names something unknown; a 400 naming its path."""

    code = "invalid_filter"

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}", param=path)
        self.path = path


# --- the tables ------------------------------------------------------------------------------------

Kind = Literal["text", "number", "timestamp", "boolean"]
Scope = Literal["request", "session", "user"]
_TEXT_OPS: Final = ("equals", "not-equals", "like", "ilike", "contains", "not-contains")
_NUMBER_OPS: Final = ("equals", "not-equals", "gte", "lte", "gt", "lt")
_TIMESTAMP_OPS: Final = ("equals", "gte", "lte", "gt", "lt")
_BOOLEAN_OPS: Final = ("equals",)
_OPS: Final[Mapping[Kind, tuple[str, ...]]] = {
    "text": _TEXT_OPS,
    "number": _NUMBER_OPS,
    "timestamp": _TIMESTAMP_OPS,
    "boolean": _BOOLEAN_OPS,
}
#: Text operators whose value becomes a LIKE (or, on SQLite, GLOB) pattern, and so is length-capped.
_PATTERN_OPS: Final = frozenset(("like", "ilike", "contains", "not-contains"))
_COMPARISONS: Final[Mapping[str, str]] = {"equals": "=", "gte": ">=", "lte": "<=", "gt": ">", "lt": "<"}


@dataclass(frozen=True, slots=True)
class _Field:
    kind: Kind
    column: str
    #: "cost": exact text on SQLite; "uuid": PostgreSQL's uuid request_id.
    special: Literal["", "cost", "uuid"] = ""


#: A map field: its entries are ``{name: operators}`` (or, for property_key, operators on the name).
_Map = Literal["properties", "search_properties", "property_key", "scores"]

_UNSUPPORTED: Final = "is not recorded by heliport, so it cannot be filtered on"
_ORG: Final = "the organisation comes from the API key and cannot be filtered on"

_T = _Field
_RMT: Final[Mapping[str, _Field | _Map | str]] = {
    "latency": _T("number", "delay_ms"),
    "cost": _T("number", "cost", "cost"),
    "provider": _T("text", "provider"),
    "time_to_first_token": _T("number", "time_to_first_token"),
    "status": _T("number", "status"),
    "request_created_at": _T("timestamp", "created_at"),
    "response_created_at": _T("timestamp", "response_created_at"),
    "model": _T("text", "model"),
    "user_id": _T("text", "user_id"),
    "request_id": _T("text", "request_id", "uuid"),
    "prompt_tokens": _T("number", "prompt_tokens"),
    "completion_tokens": _T("number", "completion_tokens"),
    "prompt_cache_read_tokens": _T("number", "prompt_cache_read_tokens"),
    "prompt_cache_write_tokens": _T("number", "prompt_cache_write_tokens"),
    "total_tokens": _T("number", "total_tokens"),
    "target_url": _T("text", "target_url"),
    "request_body": _T("text", "request_preview"),
    "response_body": _T("text", "response_preview"),
    "cache_enabled": _T("boolean", "cache_hit"),
    "cached": _T("boolean", "cache_hit"),
    "cache_reference_id": _T("text", "cache_reference_id"),
    "prompt_id": _T("text", "prompt_id"),
    "helicone-score-feedback": _T("boolean", "feedback_rating"),
    "properties": "properties",
    "search_properties": "search_properties",
    "property_key": "property_key",
    "scores": "scores",
    "organization_id": _ORG,
    **dict.fromkeys(
        (
            "country_code",
            "node_id",
            "job_id",
            "threat",
            "assets",
            "prompt_version",
            "request_referrer",
            "is_passthrough_billing",
            "scores_column",
        ),
        _UNSUPPORTED,
    ),
}
_REQUEST: Final[Mapping[str, _Field | _Map | str]] = {
    "prompt": _T("text", "request_preview"),
    "created_at": _T("timestamp", "created_at"),
    "user_id": _T("text", "user_id"),
    "id": _T("text", "request_id", "uuid"),
    "model": _T("text", "model"),
    "modelOverride": _T("text", "model_override"),
    "path": _T("text", "path"),
    "prompt_id": _T("text", "prompt_id"),
    "org_id": _ORG,
    **dict.fromkeys(("auth_hash", "node_id", "country_code"), _UNSUPPORTED),
}
_RESPONSE: Final[Mapping[str, _Field | _Map | str]] = {
    "body_tokens": _T("number", "completion_tokens"),
    "body_model": _T("text", "response_model"),
    "model": _T("text", "response_model"),
    "body_completion": _T("text", "response_preview"),
    "status": _T("number", "status"),
}
_FEEDBACK: Final[Mapping[str, _Field | _Map | str]] = {
    "rating": _T("boolean", "feedback_rating"),
    "created_at": _T("timestamp", "feedback_created_at"),
    **dict.fromkeys(("id", "response_id"), _UNSUPPORTED),
}
_SESSION_KINDS: Final[Mapping[str, Kind]] = {
    "session_session_id": "text",
    "session_session_name": "text",
    "session_created_at": "timestamp",
    "session_latest_request_created_at": "timestamp",
}
_SESSIONS: Final[Mapping[str, _Field | _Map | str]] = {
    **{name: _T(_SESSION_KINDS.get(name, "number"), column) for name, column in SESSION_COLUMNS.items()},
    "session_tag": _UNSUPPORTED,
}
_USER_KINDS: Final[Mapping[str, Kind]] = {
    "user_user_id": "text",
    "user_first_active": "timestamp",
    "user_last_active": "timestamp",
}
_USERS: Final[Mapping[str, _Field | _Map | str]] = {
    name: _T(_USER_KINDS.get(name, "number"), column) for name, column in USER_COLUMNS.items()
}

#: table -> (its scope, its fields). ``properties`` is handled as a map table of its own.
_TABLES: Final[Mapping[str, tuple[Scope, Mapping[str, _Field | _Map | str]]]] = {
    "request_response_rmt": ("request", _RMT),
    "request": ("request", _REQUEST),
    "response": ("request", _RESPONSE),
    "feedback": ("request", _FEEDBACK),
    "sessions_request_response_rmt": ("session", _SESSIONS),
    "users_view": ("user", _USERS),
}
_AGGREGATE_TABLE: Final[Mapping[Scope, str]] = {
    "session": "sessions_request_response_rmt",
    "user": "users_view",
}


# --- the parsed tree -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Cond:
    """One operator of one field, its value already checked and converted."""

    scope: Scope
    #: The original leaf, for :func:`split_filter`: (table, field, property name or None, operator, raw value).
    origin: tuple[str, str, str | None, str, object]
    field: _Field | None
    #: For map fields: which map, and the property or score name.
    map: _Map | None
    name: str | None
    op: str
    value: object


@dataclass(frozen=True, slots=True)
class _Junction:
    op: Literal["and", "or"]
    parts: tuple[_Node, ...]
    path: str


_Node = _Cond | _Junction

_ALL: Final = _Junction("and", (), "filter")


@dataclass(slots=True)
class _Parser:
    allowed: frozenset[Scope]
    conditions: int = 0

    def node(self, node: object, path: str, depth: int) -> _Node:
        if depth > MAX_DEPTH:
            raise FilterError(path, f"filters may nest at most {MAX_DEPTH} branches deep")
        if node == "all":
            return _ALL
        if not isinstance(node, Mapping):
            raise FilterError(path, 'must be a filter object or "all"')
        if "left" in node or "right" in node or "operator" in node:
            return self.branch(node, path, depth)
        parts: list[_Node] = []
        for table, fields in node.items():
            parts.extend(self.table(table, fields, f"{path}.{table}"))
        return _Junction("and", tuple(parts), path)

    def branch(self, node: Mapping[object, object], path: str, depth: int) -> _Node:
        extra = [key for key in node if key not in ("left", "operator", "right")]
        if extra:
            raise FilterError(f"{path}.{extra[0]}", "a branch has only left, operator and right")
        for key in ("left", "operator", "right"):
            if key not in node:
                raise FilterError(f"{path}.{key}", "is required in a branch")
        op = node["operator"]
        if op not in ("and", "or"):
            raise FilterError(f"{path}.operator", 'must be "and" or "or"')
        left = self.node(node["left"], f"{path}.left", depth + 1)
        right = self.node(node["right"], f"{path}.right", depth + 1)
        return _Junction("and" if op == "and" else "or", (left, right), path)

    def table(self, table: object, fields: object, path: str) -> list[_Node]:
        if table == "properties":
            return self.map_field("request", "properties", "properties", fields, path)
        if table == "values":
            raise FilterError(path, "prompt input values are not recorded by heliport, so they cannot be filtered on")
        if not isinstance(table, str) or table not in _TABLES:
            raise FilterError(path, f"unknown table {_show(table)}")
        scope, columns = _TABLES[table]
        if scope not in self.allowed:
            raise FilterError(path, f"{table} filters are not supported by this endpoint")
        if not isinstance(fields, Mapping):
            raise FilterError(path, "must be an object of field: operators")
        parts: list[_Node] = []
        for name, ops in fields.items():
            field_path = f"{path}.{name}"
            spec = columns.get(name) if isinstance(name, str) else None
            if spec is None:
                raise FilterError(field_path, f"unknown field {_show(name)}")
            if isinstance(spec, _Field):
                parts.extend(self.ops(scope, (table, str(name), None), spec, None, None, ops, field_path))
            elif spec in ("properties", "search_properties", "property_key", "scores"):
                parts.extend(self.map_field(scope, table, spec, ops, field_path))  # type: ignore[arg-type]
            else:
                raise FilterError(field_path, spec)
        return parts

    def map_field(self, scope: Scope, table: str, kind: _Map, entries: object, path: str) -> list[_Node]:
        if not isinstance(entries, Mapping):
            raise FilterError(path, "must be an object")
        if kind == "property_key":
            parts: list[_Node] = []
            for op, value in entries.items():
                if op != "equals":
                    raise FilterError(f"{path}.{op}", "unknown operator; property_key accepts only equals")
                if not isinstance(value, str):
                    raise FilterError(f"{path}.{op}", "must be a string")
                parts.append(self.cond(scope, (table, kind, None, op, value), None, kind, value, op, value, path))
            return parts
        parts = []
        field = _Field("number" if kind == "scores" else "text", kind)
        for name, ops in entries.items():
            if not isinstance(name, str):
                raise FilterError(path, "names must be strings")
            parts.extend(self.ops(scope, (table, kind, name), field, kind, name, ops, f"{path}.{name}"))
        return parts

    def ops(
        self,
        scope: Scope,
        origin: tuple[str, str, str | None],
        field: _Field,
        kind: _Map | None,
        name: str | None,
        ops: object,
        path: str,
    ) -> list[_Node]:
        if not isinstance(ops, Mapping):
            raise FilterError(path, "must be an object of operator: value")
        parts: list[_Node] = []
        for op, raw in ops.items():
            op_path = f"{path}.{op}"
            if not isinstance(op, str) or op not in _OPS[field.kind]:
                raise FilterError(
                    op_path,
                    f"unknown operator {_show(op)} for a {field.kind} field;"
                    f" expected one of {', '.join(_OPS[field.kind])}",
                )
            value = _value(field, kind, op, raw, op_path)
            parts.append(self.cond(scope, (*origin, op, raw), field, kind, name, op, value, path))
        return parts

    def cond(
        self,
        scope: Scope,
        origin: tuple[str, str, str | None, str, object],
        field: _Field | None,
        kind: _Map | None,
        name: str | None,
        op: str,
        value: object,
        path: str,
    ) -> _Cond:
        self.conditions += 1
        if self.conditions > MAX_CONDITIONS:
            raise FilterError(path, f"a filter may have at most {MAX_CONDITIONS} conditions")
        return _Cond(scope, origin, field, kind, name, op, value)


#: Helicone stores these request headers as properties, and its cookbooks filter on them that way
#: (``{"properties": {"Helicone-Session-Id": {"equals": ...}}}``); heliport keeps them in columns.
_PROMOTED_PROPERTIES: Final[Mapping[str, str]] = {
    "helicone-session-id": "session_id",
    "helicone-session-name": "session_name",
    "helicone-session-path": "session_path",
    "helicone-user-id": "user_id",
    "helicone-prompt-id": "prompt_id",
}


def _value(field: _Field, kind: _Map | None, op: str, raw: object, path: str) -> object:
    """The checked value of one operator: str, float, bool or aware datetime."""
    if field.kind == "text":
        if not isinstance(raw, str):
            raise FilterError(path, "must be a string")
        if (op in _PATTERN_OPS or kind == "search_properties") and len(raw) > MAX_PATTERN_LENGTH:
            raise FilterError(path, f"a {op} value may be at most {MAX_PATTERN_LENGTH} characters")
        if op in ("like", "ilike") and _ends_with_escape(raw):
            raise FilterError(path, "a pattern cannot end with the escape character '\\'")
        return raw
    if field.kind == "number":
        if isinstance(raw, bool) and kind == "scores":
            return 1.0 if raw else 0.0
        if isinstance(raw, bool) or not isinstance(raw, int | float | str):
            raise FilterError(path, "must be a number")
        try:
            number = float(raw)
        except (ValueError, OverflowError):
            raise FilterError(path, f"must be a number, not {_show(raw)}") from None
        if not math.isfinite(number):
            raise FilterError(path, "must be a finite number")
        return number
    if field.kind == "boolean":
        if not isinstance(raw, bool):
            raise FilterError(path, "must be true or false")
        return raw
    if not isinstance(raw, str):
        raise FilterError(path, "must be an ISO-8601 timestamp string")
    try:
        at = datetime.fromisoformat(raw.strip())
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        return at.astimezone(UTC)
    except (ValueError, OverflowError):
        raise FilterError(path, f"not an ISO-8601 timestamp: {_show(raw)}") from None


def _show(value: object) -> str:
    """``value`` for an error message, cut short: the caller's input, echoed but bounded."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _ends_with_escape(pattern: str) -> bool:
    trailing = len(pattern) - len(pattern.rstrip("\\"))
    return trailing % 2 == 1


def _parse(node: object, allowed: frozenset[Scope]) -> _Node:
    if node is None:
        raise FilterError("filter", 'is required (use "all" for every request)')
    return _Parser(allowed).node(node, "filter", 0)


def _scopes(node: _Node) -> set[Scope]:
    if isinstance(node, _Cond):
        return {node.scope}
    return set().union(*(_scopes(part) for part in node.parts)) if node.parts else set()


def _split(node: _Node) -> tuple[_Node | None, _Node | None]:
    """(request part, aggregate part): ``and`` splits; a mixed ``or`` is a FilterError."""
    if isinstance(node, _Cond):
        return (node, None) if node.scope == "request" else (None, node)
    scopes = _scopes(node)
    if not scopes:
        return node, None
    if scopes == {"request"}:
        return node, None
    if "request" not in scopes:
        return None, node
    if node.op == "or":
        raise FilterError(
            node.path, "an or cannot mix request filters with session or user filters (they apply after grouping)"
        )
    request_parts: list[_Node] = []
    aggregate_parts: list[_Node] = []
    for part in node.parts:
        request, aggregate = _split(part)
        if request is not None:
            request_parts.append(request)
        if aggregate is not None:
            aggregate_parts.append(aggregate)
    return _Junction("and", tuple(request_parts), node.path), _Junction("and", tuple(aggregate_parts), node.path)


def _allowed(kind: AggregateKind | None) -> frozenset[Scope]:
    return frozenset(("request", kind)) if kind is not None else frozenset(("request",))


# --- SQL -------------------------------------------------------------------------------------------


def _like_literal(text: str) -> str:
    """``text`` as a LIKE pattern (ESCAPE '\\') that matches only itself."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _like_to_glob(pattern: str) -> str:
    """A LIKE pattern (``%``, ``_``, ``\\`` escapes) as the equivalent, case-sensitive, SQLite GLOB."""
    out: list[str] = []
    chars = iter(pattern)
    for char in chars:
        if char == "\\":
            char = next(chars, "\\")
            out.append({"*": "[*]", "?": "[?]", "[": "[[]"}.get(char, char))
        elif char == "%":
            out.append("*")
        elif char == "_":
            out.append("?")
        else:
            out.append({"*": "[*]", "?": "[?]", "[": "[[]"}.get(char, char))
    return "".join(out)


@dataclass(slots=True)
class _Writer:
    params: Params

    @property
    def postgres(self) -> bool:
        return self.params.dialect.name == "postgres"

    def node(self, node: _Node) -> str:
        if isinstance(node, _Cond):
            return self.cond(node)
        if not node.parts:
            return "TRUE"
        parts = [self.node(part) for part in node.parts]
        if len(parts) == 1:
            return parts[0] if isinstance(node.parts[0], _Junction) else f"({parts[0]})"
        # Conditions are wrapped; a nested junction already is. The whole is always parenthesised,
        # so an OR can never bind looser than the caller's ``org_id = ...`` beside it.
        wrapped = [
            part if isinstance(child, _Junction) else f"({part})" for child, part in zip(node.parts, parts, strict=True)
        ]
        return "(" + f" {node.op.upper()} ".join(wrapped) + ")"

    def distinct(self, expr: str, placeholder: str) -> str:
        return f"{expr} IS DISTINCT FROM {placeholder}" if self.postgres else f"{expr} IS NOT {placeholder}"

    def cond(self, cond: _Cond) -> str:
        if cond.map == "property_key":
            key = self.params.add(self.params.dialect.property_key(str(cond.value)))
            if self.postgres:
                return f"(properties ? {key})"
            return f"EXISTS (SELECT 1 FROM json_each(properties) AS j WHERE j.key = {key})"
        field = cond.field
        assert field is not None
        if cond.map is not None:
            assert cond.name is not None
            column = "scores" if cond.map == "scores" else "properties"
            promoted = _PROMOTED_PROPERTIES.get(cond.name.lower()) if column == "properties" else None
            if promoted is not None:
                expr = promoted
            elif column == "properties":
                expr = self.property_named(cond.name)
            else:
                expr = self.params.dialect.property(
                    column, self.params.add(self.params.dialect.property_key(cond.name))
                )
            if cond.map == "scores":
                expr = f"CAST({expr} AS {'double precision' if self.postgres else 'REAL'})"
            elif cond.map == "search_properties":
                return self.search_text(expr, cond.op, str(cond.value))
        elif field.special == "cost" and not self.postgres:
            expr = "CAST(cost AS REAL)"
        elif field.special == "uuid":
            return self.request_id(cond.op, str(cond.value))
        else:
            expr = field.column
        if field.kind == "text":
            return self.text(expr, cond.op, str(cond.value))
        if field.kind == "number":
            assert isinstance(cond.value, float)
            number: object = Decimal(repr(cond.value)) if self.postgres else cond.value
            placeholder = self.params.add(number)
            if self.postgres:
                placeholder = f"CAST({placeholder} AS numeric)"
            if cond.op == "not-equals":
                return self.distinct(expr, placeholder)
            return f"{expr} {_COMPARISONS[cond.op]} {placeholder}"
        if field.kind == "boolean":
            if self.postgres:
                return f"{expr} = CAST({self.params.add(bool(cond.value))} AS boolean)"
            return f"{expr} = {self.params.add(1 if cond.value else 0)}"
        assert isinstance(cond.value, datetime)
        if self.postgres:
            return f"{expr} {_COMPARISONS[cond.op]} CAST({self.params.add(cond.value)} AS timestamptz)"
        return f"{expr} {_COMPARISONS[cond.op]} {self.params.add(self.params.dialect.timestamp(cond.value))}"

    def property_named(self, name: str) -> str:
        """The value of the property named ``name``, or else of the one named its lower-case form: every
        name sent as a header is stored lower-case, so ``Environment`` finds ``environment``. (A scan of
        each row's keys for any letter case costs about ten times as much on a large table.)"""
        if self.postgres:
            key = self.params.add(name)
            return f"coalesce(properties ->> {key}, properties ->> lower({key}))"
        exact = self.params.add(name)
        lowered = self.params.add(name)
        first = self.params.add(name)
        return (
            f"(SELECT j.value FROM json_each(properties) AS j WHERE j.key IN ({exact}, lower({lowered}))"
            f" ORDER BY j.key = {first} DESC LIMIT 1)"
        )

    def text(self, expr: str, op: str, value: str) -> str:
        params = self.params
        if op == "equals":
            return f"{expr} = {params.add(value)}"
        if op == "not-equals":
            return self.distinct(expr, params.add(value))
        if op == "like":
            if self.postgres:
                return f"{expr} LIKE {params.add(value)} ESCAPE '\\'"
            return f"{expr} GLOB {params.add(_like_to_glob(value))}"
        if op == "ilike":
            return f"{expr} {'ILIKE' if self.postgres else 'LIKE'} {params.add(value)} ESCAPE '\\'"
        contains = (
            f"{expr} LIKE {params.add('%' + _like_literal(value) + '%')} ESCAPE '\\'"
            if self.postgres
            else f"instr({expr}, {params.add(value)}) > 0"
        )
        return contains if op == "contains" else f"NOT coalesce({contains}, FALSE)"

    def search_text(self, expr: str, op: str, value: str) -> str:
        """Case-insensitive text operators (``search_properties``)."""
        ilike = "ILIKE" if self.postgres else "LIKE"
        if op in ("like", "ilike"):
            return f"{expr} {ilike} {self.params.add(value)} ESCAPE '\\'"
        pattern = _like_literal(value)
        if op in ("contains", "not-contains"):
            pattern = f"%{pattern}%"
        test = f"{expr} {ilike} {self.params.add(pattern)} ESCAPE '\\'"
        return test if op in ("equals", "contains") else f"NOT coalesce({test}, FALSE)"

    def request_id(self, op: str, value: str) -> str:
        try:
            canonical: str | None = str(uuid.UUID(value))
        except ValueError:
            canonical = None
        if canonical is not None and op in ("equals", "not-equals"):
            placeholder = self.params.add(canonical)
            if self.postgres:
                placeholder = f"CAST({placeholder} AS uuid)"
            return f"request_id {'=' if op == 'equals' else '<>'} {placeholder}"
        return self.text("CAST(request_id AS text)" if self.postgres else "request_id", op, value)


# --- public API ------------------------------------------------------------------------------------


def compile_request_filter(node: object, params: Params) -> str:
    """The request-level filter ``node`` as a boolean SQL expression over ``requests``.

    Session and user leaves are refused here (they need an aggregate; see :func:`compile_aggregate_filter`).
    """
    tree = _parse(node, frozenset(("request",)))
    return _Writer(params).node(tree)


def split_filter(node: object, kind: AggregateKind | None = None) -> tuple[object, object]:
    """``node`` as two filter ASTs: the request-level part and the ``kind`` aggregate part.

    Each is ``"all"`` when it has no condition; ANDed together they mean ``node``. Raises
    :class:`FilterError` for a malformed node, an ``or`` mixing the two, or leaves of another kind.
    """
    request, aggregate = _split(_parse(node, _allowed(kind)))
    return _to_json(request), _to_json(aggregate)


def compile_having(node: object, params: Params, kind: AggregateKind) -> str | None:
    """The ``kind`` aggregate part of ``node`` over :data:`SESSION_COLUMNS` / :data:`USER_COLUMNS`;
    None when it has none. Request leaves are skipped."""
    _, aggregate = _split(_parse(node, _allowed(kind)))
    if aggregate is None or not _scopes(aggregate):
        return None
    return _Writer(params).node(aggregate)


def compile_aggregate_filter(node: object, params: Params, kind: AggregateKind | None) -> tuple[str, Having | None]:
    """(where, having) for an aggregate endpoint: ``where`` is written now, into ``params``;
    ``having`` (None when the filter has no ``kind`` leaves) writes the aggregate part when the
    builder calls it, at its place in the text. The whole filter is checked before either."""
    request, aggregate = _split(_parse(node, _allowed(kind)))
    where = _Writer(params).node(request) if request is not None else "TRUE"
    if aggregate is None or not _scopes(aggregate):
        return where, None
    tree = aggregate

    def having(into: Params) -> str:
        return _Writer(into).node(tree)

    return where, having


def _to_json(node: _Node | None) -> object:
    if node is None or not _scopes(node):
        return "all"
    if isinstance(node, _Cond):
        table, field, name, op, value = node.origin
        ops = {op: value}
        if table == "properties":
            return {"properties": {name: ops}}
        inner: object = {name: ops} if name is not None else ops
        return {table: {field: inner}}
    parts = [_to_json(part) for part in node.parts if _scopes(part)]
    result = parts[0]
    for part in parts[1:]:
        result = {"left": result, "operator": node.op, "right": part}
    return result


# --- sort ------------------------------------------------------------------------------------------

_SORT_TEXT: Final = frozenset(("user_id", "model", "request_preview", "response_preview"))
_SORT_COLUMNS: Final[Mapping[str, str]] = {
    "created_at": "created_at",
    "latency": "delay_ms",
    "total_tokens": "total_tokens",
    "completion_tokens": "completion_tokens",
    "prompt_tokens": "prompt_tokens",
    "user_id": "user_id",
    "body_model": "model",
    "is_cached": "cache_hit",
    "cost": "cost",
    "time_to_first_token": "time_to_first_token",
    "request_prompt": "request_preview",
    "response_text": "response_preview",
}
_SORT_UNSUPPORTED: Final = frozenset(("cache_created_at", "last_active", "values"))


def _direction(value: object, path: str) -> str:
    if not isinstance(value, str) or value.lower() not in ("asc", "desc"):
        raise FilterError(path, "direction must be 'asc' or 'desc'")
    return value.upper()


def compile_request_sort(sort: object, params: Params) -> str:
    """ORDER BY terms (without the keywords) for a ``SortLeafRequest``; property names are bound."""
    postgres = params.dialect.name == "postgres"
    collate = ' COLLATE "C"' if postgres else ""
    if sort is None:
        sort = {}
    if not isinstance(sort, Mapping):
        raise FilterError("sort", "must be an object of field: 'asc' | 'desc'")
    terms: list[str] = []
    first: str | None = None
    for key, raw in sort.items():
        path = f"sort.{key}"
        if raw is None:
            continue
        if key == "random":
            if raw is not True:
                raise FilterError(path, "must be true")
            terms.append("random()")
            first = first or "ASC"
        elif key == "properties":
            if not isinstance(raw, Mapping):
                raise FilterError(path, "must be an object of property name: 'asc' | 'desc'")
            for name, value in raw.items():
                if not isinstance(name, str):
                    raise FilterError(path, "property names must be strings")
                direction = _direction(value, f"{path}.{name}")
                expr = params.dialect.property("properties", params.add(params.dialect.property_key(name)))
                terms.append(f"{expr}{collate} {direction} NULLS LAST")
                first = first or direction
        elif isinstance(key, str) and key in _SORT_COLUMNS:
            direction = _direction(raw, path)
            column = _SORT_COLUMNS[key]
            if column == "cost" and not postgres:
                column = "CAST(cost AS REAL)"
            elif column in _SORT_TEXT:
                column += collate
            terms.append(f"{column} {direction} NULLS LAST")
            first = first or direction
        elif key in _SORT_UNSUPPORTED:
            raise FilterError(path, "heliport cannot sort by this field")
        else:
            raise FilterError(
                path, f"unknown sort field; expected one of random, properties, {', '.join(_SORT_COLUMNS)}"
            )
    if not terms:
        terms.append("created_at DESC")
        first = "DESC"
    terms.append(f"request_id {first}")
    return ", ".join(terms)
