"""Rows to measure, and what each metric and aggregation should be over them, computed in Python."""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from heliport.alerts import Alert, AlertQuery, SlackChannel
from heliport.logs.row import RequestRow
from tests.logs.records import chat_row

ORG = "org-alerts-a"
OTHER = "org-alerts-b"
METRICS = (
    "error_rate",
    "cost",
    "latency",
    "total_tokens",
    "prompt_tokens",
    "completion_tokens",
    "prompt_cache_read_tokens",
    "prompt_cache_write_tokens",
    "count",
)
AGGREGATIONS = ("sum", "avg", "min", "max", "p50", "p95", "p1")
_COLUMNS = {
    "cost": "cost",
    "latency": "delay_ms",
    "total_tokens": "total_tokens",
    "prompt_tokens": "prompt_tokens",
    "completion_tokens": "completion_tokens",
    "prompt_cache_read_tokens": "prompt_cache_read_tokens",
    "prompt_cache_write_tokens": "prompt_cache_write_tokens",
}


def rows(org_id: str, now: datetime) -> list[RequestRow]:
    """Nine rows a minute old: model a (3), model b (5), model c (1, no user, no team, nothing priced)."""
    spec: list[dict[str, Any]] = [
        {"model": "a", "user_id": "u1", "status": 200, "delay_ms": 120.0, "tokens": (10, 5, 0, 2), "cost": "0.001"},
        {"model": "a", "user_id": "u1", "status": 500, "delay_ms": 900.5, "tokens": (40, 2, 8, 0), "cost": "0.004"},
        {"model": "a", "user_id": "u2", "status": 200, "delay_ms": 330.0, "tokens": (7, 70, 1, 1), "cost": None},
        {"model": "b", "user_id": "u2", "status": 429, "delay_ms": 45.0, "tokens": (3, 0, 0, 0), "cost": "0.0002"},
        {
            "model": "b",
            "user_id": "u2",
            "status": 200,
            "delay_ms": 2000.0,
            "tokens": (900, 300, 500, 9),
            "cost": "0.25",
        },
        {"model": "b", "user_id": "u3", "status": 200, "delay_ms": 610.0, "tokens": (15, 15, 0, 0), "cost": "0.003"},
        {
            "model": "b",
            "user_id": "u3",
            "status": 404,
            "delay_ms": None,
            "tokens": (None, None, None, None),
            "cost": None,
        },
        {"model": "b", "user_id": "u1", "status": 200, "delay_ms": 75.25, "tokens": (60, 6, 30, 3), "cost": "0.0125"},
        {"model": "c", "user_id": None, "status": 200, "delay_ms": 50.0, "tokens": (1, 1, 0, 0), "cost": None},
    ]
    made: list[RequestRow] = []
    for index, row in enumerate(spec):
        prompt, completion, read, write = row["tokens"]
        made.append(
            chat_row(
                org_id,
                created_at=now - timedelta(seconds=60 + index),
                model=row["model"],
                user_id=row["user_id"],
                status=row["status"],
                delay_ms=row["delay_ms"],
                prompt_tokens=prompt,
                completion_tokens=completion,
                total_tokens=None if prompt is None else prompt + completion,
                prompt_cache_read_tokens=read,
                prompt_cache_write_tokens=write,
                cost=None if row["cost"] is None else Decimal(row["cost"]),
                properties={} if row["model"] == "c" else {"team": "red" if index % 2 else "blue"},
            )
        )
    return made


def group_of(row: RequestRow, group_by: str | None) -> str | None:
    if group_by is None:
        return "*"
    if group_by == "user":
        return row.user_id
    if group_by == "model":
        return row.model
    if group_by == "provider":
        return row.provider
    return row.properties.get(group_by.removeprefix("property:"))


def expected(rows: Sequence[RequestRow], metric: str, aggregation: str) -> float | None:
    if metric == "count":
        return float(len(rows))
    if metric == "error_rate":
        return 100.0 * sum(1 for r in rows if r.status >= 400) / len(rows)
    values = sorted(float(v) for r in rows if (v := getattr(r, _COLUMNS[metric])) is not None)
    if aggregation == "sum":
        return math.fsum(values)
    if not values:
        return None
    if aggregation == "avg":
        return math.fsum(values) / len(values)
    if aggregation == "min":
        return values[0]
    if aggregation == "max":
        return values[-1]
    position = int(aggregation[1:]) / 100 * (len(values) - 1)
    low = math.floor(position)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (position - low)


def expected_groups(
    rows: Sequence[RequestRow], metric: str, aggregation: str, group_by: str | None
) -> dict[str, tuple[int, float | None]]:
    """group -> (requests, value), as the evaluator should find them (rows without the group left out)."""
    grouped: dict[str, list[RequestRow]] = {}
    for row in rows:
        key = group_of(row, group_by)
        if key is not None:
            grouped.setdefault(key, []).append(row)
    return {key: (len(members), expected(members, metric, aggregation)) for key, members in grouped.items()}


def alert_for(org_id: str, url: str, threshold: float, **query: Any) -> Alert:
    """An alert of ``org_id`` over a 10-minute window, notifying one Slack URL."""
    now = datetime.now(UTC) - timedelta(hours=1)
    return Alert(
        id=str(uuid.uuid4()),
        org_id=org_id,
        created_at=now,
        updated_at=now,
        name=f"alert {query}",
        query=AlertQuery(window_minutes=10, **query),
        threshold=threshold,
        channels=(SlackChannel(url),),
    )
