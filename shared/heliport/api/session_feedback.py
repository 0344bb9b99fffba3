"""A session's feedback: ``POST /v1/session/{sessionId}/feedback`` ``{rating}``.

The shape is Helicone's (``seeds/docs/rest__session__post-v1session-feedback.md``): a boolean rating,
answered with ``null``. Helicone writes it as the property ``Helicone-Session-Feedback`` (``"1"`` or
``"0"``) of the session's first request; heliport keeps one row per (organisation, session) in
``session_feedback`` (migration 0011), the last rating given, and the session query
(``POST /v1/session/query``, ``api/aggregates.py``) answers it as ``feedback_rating`` (true, false, or
null when the session has none).

A session is the organisation's requests with that ``Helicone-Session-Id``: rating an id none of its
requests carries is a 404, as rating an unknown request is. The check and the write are one statement
(an upsert whose SELECT has the existence test), so no rating can outlive a concurrent check.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol

from pydantic import BaseModel, ConfigDict

from heliport.api.database import QueryDb
from heliport.api.dialect import Params
from heliport.api.endpoint import Call
from heliport.errors import RouteNotFoundError

__all__ = ["Reader", "SessionFeedbackBody", "feedback_sql", "session_feedback"]


class Reader(Protocol):
    """What the handler uses of the API: its database (``QueryApi`` has one)."""

    @property
    def db(self) -> QueryDb: ...


class SessionFeedbackBody(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")

    rating: bool


def feedback_sql(org_id: str, params: Params, session_id: str, *, rating: bool, at: datetime) -> str:
    """Insert or replace the session's rating, only if the organisation has a request in the session."""
    postgres = params.dialect.name == "postgres"
    # SQLite's placeholders are positional: each value is bound where its placeholder is written.
    org = params.add(org_id)
    session = params.add(session_id)
    value = params.add(rating if postgres else int(rating))
    stamp = params.dialect.timestamp(at)
    created = params.add(stamp)
    updated = params.add(stamp)
    in_org = params.add(org_id)
    exists = f"EXISTS (SELECT 1 FROM requests WHERE org_id = {in_org} AND session_id = {params.add(session_id)})"
    if postgres:  # a bare parameter in a SELECT list has no type for PostgreSQL to infer
        org, session = f"CAST({org} AS text)", f"CAST({session} AS text)"
        value = f"CAST({value} AS boolean)"
        created, updated = f"CAST({created} AS timestamptz)", f"CAST({updated} AS timestamptz)"
    return (
        "INSERT INTO session_feedback (org_id, session_id, rating, created_at, updated_at)"
        f" SELECT {org}, {session}, {value}, {created}, {updated} WHERE {exists}"
        " ON CONFLICT (org_id, session_id) DO UPDATE SET rating = excluded.rating, updated_at = excluded.updated_at"
    )


async def session_feedback(api: Reader, call: Call) -> None:
    body = call.parsed(SessionFeedbackBody)
    session_id = call.path("sessionId")
    missing = RouteNotFoundError(f"No session {session_id!r} in this organisation.")
    if "\x00" in session_id:
        raise missing  # no stored session id holds NUL (PostgreSQL text cannot)
    params = Params(api.db.dialect)
    sql = feedback_sql(call.org_id, params, session_id, rating=body.rating, at=datetime.now(UTC))
    if await api.db.execute(call.org_id, sql, params.values) == 0:
        raise missing
