"""Rate-limit counters (the :class:`~heliport.store.counter_store.CounterStore` port): SQLite locally, DynamoDB in AWS.

A counter is a number under a key with an expiry set by its first add. Both adapters enforce that
expiry themselves (DynamoDB's TTL deletes items lazily, often days late; SQLite rows are swept now
and then): an expired counter reads 0, and the next add starts it afresh with a new expiry.

``add`` with ``at_most`` is the rate limiter's admission: the check and the increment are one
atomic step for every process or instance sharing the store, so N concurrent adds against a limit
of L apply exactly min(N, L) times.

As in every AWS adapter (``store.aws``), nothing here imports aioboto3 or botocore at load time.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from heliport.store.aws import LazyClient
from heliport.store.sqlite import connect

__all__ = ["CounterStore", "DynamoCounterStore", "SqliteCounterStore"]

#: A clock in epoch seconds; injectable so tests can step past an expiry instead of sleeping.
Clock = Callable[[], float]


class CounterStore(Protocol):
    """Numeric counters shared by every proxy instance: the rate limiter's windows.

    Keys name one window of one limit, so a counter is never reset, only left to expire.
    """

    async def get(self, key: str) -> float:
        """The counter's value; 0 when it does not exist or has expired."""
        ...

    async def add(
        self, key: str, amount: float, *, ttl_seconds: int, at_most: float | None = None
    ) -> tuple[bool, float]:
        """Atomically add ``amount``; with ``at_most``, only when the result stays at or under it.

        Returns (applied, value): the value after the add when applied, else the value that stopped it.
        The first add sets the expiry ``ttl_seconds`` from now; later adds keep it. One conditional write.
        """
        ...

    async def aclose(self) -> None: ...


def _check(amount: float, ttl_seconds: int) -> None:
    if not math.isfinite(amount):
        raise ValueError(f"amount must be a finite number, got {amount!r}")
    if ttl_seconds <= 0:
        raise ValueError(f"ttl_seconds must be positive, got {ttl_seconds}")


# --- SQLite -------------------------------------------------------------------------------------

_SCHEMA = """
CREATE TABLE IF NOT EXISTS counters (
    key TEXT PRIMARY KEY,
    n REAL NOT NULL,
    expires_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS counters_expires_at ON counters(expires_at);
"""


class SqliteCounterStore:
    """Counters in one SQLite file (``<data_dir>/counters.sqlite3``), shareable between processes.

    ``add`` runs in a ``BEGIN IMMEDIATE`` transaction, which takes the file's write lock before it
    reads: the read, the limit check and the write cannot interleave with another connection's,
    in this process or another. Nothing awaits inside it, so coroutines sharing the connection
    cannot interleave either. Expired rows are swept every ``sweep_every`` writes.
    """

    def __init__(self, path: Path, *, clock: Clock = time.time, sweep_every: int = 1024) -> None:
        self._conn = connect(path)
        self._conn.executescript(_SCHEMA)
        self._clock = clock
        self._sweep_every = max(1, sweep_every)
        self._writes = 0

    async def get(self, key: str) -> float:
        row = self._conn.execute(
            "SELECT n FROM counters WHERE key = ? AND expires_at > ?", (key, self._clock())
        ).fetchone()
        return float(row[0]) if row else 0.0

    async def add(
        self, key: str, amount: float, *, ttl_seconds: int, at_most: float | None = None
    ) -> tuple[bool, float]:
        _check(amount, ttl_seconds)
        now = self._clock()
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            if self._writes % self._sweep_every == 0:
                conn.execute("DELETE FROM counters WHERE expires_at <= ?", (now,))
            self._writes += 1
            row = conn.execute("SELECT n, expires_at FROM counters WHERE key = ?", (key,)).fetchone()
            live = row is not None and row[1] > now
            current = float(row[0]) if live else 0.0
            if at_most is not None and not (current + amount <= at_most):
                conn.execute("ROLLBACK")
                return False, current
            if live:
                conn.execute("UPDATE counters SET n = ? WHERE key = ?", (current + amount, key))
            else:
                conn.execute(
                    "INSERT OR REPLACE INTO counters (key, n, expires_at) VALUES (?, ?, ?)",
                    (key, amount, now + ttl_seconds),
                )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return True, current + amount

    async def aclose(self) -> None:
        self._conn.close()


# --- DynamoDB -----------------------------------------------------------------------------------

_PK_PREFIX = "rl#"
_SK = "rl"
#: Rounds of "the item had expired: start it afresh" before giving up (each loses only to a racing restart).
_RESTART_ATTEMPTS = 3


def _n(value: float) -> dict[str, str]:
    """A DynamoDB number: the float's shortest round-tripping decimal, never in exponent form."""
    return {"N": format(Decimal(repr(float(value))), "f")}


class DynamoCounterStore:
    """Counters in the deployment's DynamoDB table, one item each::

        pk              sk      attributes
        rl#<key>        rl      n (N), expires_at (N, whole epoch seconds; the table's TTL attribute)

    ``add`` is one ``UpdateItem``: ``ADD n :amount SET expires_at = if_not_exists(expires_at, :exp)``,
    conditional on the item being absent or live and, with ``at_most``, on ``n <= at_most - amount``
    (a condition cannot do arithmetic, so the threshold is computed here; when it is negative an
    absent item must fail too, so the condition then requires the item to exist). A refusal comes
    back with the item as it stood (``ReturnValuesOnConditionCheckFailure=ALL_OLD``), which gives
    the blocking value without a second read. Only an expired item that TTL has not yet deleted
    takes more: a conditional ``PutItem`` restarts it, as if it had been deleted.

    Numbers go over the wire as decimal strings and DynamoDB adds them in decimal, so cents add
    up exactly. ``get`` is a strongly consistent ``GetItem``: the limiter decides on what it reads
    (a cents window's spend) or caches it for the rest of a window (a closed window's count), so the
    read must include every write acknowledged before it. That costs one read unit instead of half
    of one, on reads that are rare for ``u=request`` (a closed window, once per instance).

    **Not idempotent.** Timeouts are short and botocore retries once (this is on the request path:
    a slow store must fail fast so the caller can fail open). A write that timed out after DynamoDB
    applied it and is then retried counts twice, and a retried conditional add may even be refused
    by its own first attempt. Both err on the strict side: the count can only be too high.
    """

    def __init__(
        self,
        table_name: str,
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
        clock: Clock = time.time,
        connect_timeout: float = 1.0,
        read_timeout: float = 2.0,
        max_attempts: int = 2,
    ) -> None:
        self._table = table_name
        self._clock = clock
        self._client = LazyClient(
            "dynamodb",
            region=region,
            endpoint_url=endpoint_url,
            config={
                "retries": {"mode": "standard", "max_attempts": max_attempts},
                "connect_timeout": connect_timeout,
                "read_timeout": read_timeout,
            },
        )

    async def get(self, key: str) -> float:
        item = await self._item(key)
        if not item or "n" not in item or not self._live(item):
            return 0.0
        return float(item["n"]["N"])

    async def _item(self, key: str) -> dict[str, Any] | None:
        client = await self._client.get()
        response = await client.get_item(
            TableName=self._table,
            Key=_item_key(key),
            ConsistentRead=True,
            ProjectionExpression="n, expires_at",
        )
        item: dict[str, Any] | None = response.get("Item")
        return item

    async def add(
        self, key: str, amount: float, *, ttl_seconds: int, at_most: float | None = None
    ) -> tuple[bool, float]:
        from botocore.exceptions import ClientError

        _check(amount, ttl_seconds)
        client = await self._client.get()
        for _ in range(_RESTART_ATTEMPTS):
            now = self._clock()
            values: dict[str, Any] = {
                ":amount": _n(amount),
                ":exp": {"N": str(math.ceil(now + ttl_seconds))},
                ":now": _n(now),
            }
            if at_most is None:
                condition = "attribute_not_exists(n) OR expires_at > :now"
            else:
                threshold = at_most - amount
                values[":threshold"] = _n(threshold)
                live_and_under = "(expires_at > :now AND n <= :threshold)"
                condition = f"attribute_not_exists(n) OR {live_and_under}" if threshold >= 0 else live_and_under
            try:
                response = await client.update_item(
                    TableName=self._table,
                    Key=_item_key(key),
                    UpdateExpression="ADD n :amount SET expires_at = if_not_exists(expires_at, :exp)",
                    ConditionExpression=condition,
                    ExpressionAttributeValues=values,
                    ReturnValues="UPDATED_NEW",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
                return True, float(response["Attributes"]["n"]["N"])
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                    raise
                old = exc.response.get("Item")
            if old is None and (at_most is None or at_most - amount >= 0):
                # Only an existing item can fail this condition, yet none came back: an endpoint
                # without ALL_OLD. Read it instead.
                old = await self._item(key)
                if old is None:
                    continue  # deleted since: try again
            if not old or "n" not in old:
                return False, 0.0  # absent, and even a first add would be over the limit
            if self._live(old):
                return False, float(old["n"]["N"])
            # Expired but not yet deleted by TTL: it counts as 0, so start it afresh.
            if at_most is not None and not (amount <= at_most):
                return False, 0.0
            try:
                await client.put_item(
                    TableName=self._table,
                    Item={**_item_key(key), "n": _n(amount), "expires_at": values[":exp"]},
                    ConditionExpression="attribute_not_exists(n) OR expires_at <= :now",
                    ExpressionAttributeValues={":now": values[":now"]},
                )
                return True, float(amount)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                    raise
                # Another writer restarted it first: add to theirs on the next round.
        raise RuntimeError(f"counter {key!r} kept changing under a restart; gave up after {_RESTART_ATTEMPTS} rounds")

    def _live(self, item: dict[str, Any]) -> bool:
        expires = item.get("expires_at")
        return expires is None or float(expires["N"]) > self._clock()

    async def aclose(self) -> None:
        await self._client.aclose()


def _item_key(key: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": f"{_PK_PREFIX}{key}"}, "sk": {"S": _SK}}
