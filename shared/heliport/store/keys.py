"""The key store port: organisations and the hashes of their heliport keys; SQLite locally, DynamoDB in AWS.

A key is stored only as its SHA-256 hash (``ApiKey.key_hash``); the key itself is shown once, when
it is made, and never kept. Both adapters make each write that touches two records atomic (a
SQLite transaction; one ``TransactWriteItems``), so an organisation's name claim and its record, or
a key and its listing entry, never disagree. The DynamoDB item layout is in ``store.aws``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import msgspec

from heliport.store.aws import Item, LazyClient
from heliport.store.sqlite import connect

if TYPE_CHECKING:
    from botocore.exceptions import ClientError

__all__ = ["ApiKey", "DynamoKeyStore", "KeyStore", "Organisation", "SqliteKeyStore"]


class Organisation(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    created_at: datetime


class ApiKey(msgspec.Struct, frozen=True, kw_only=True):
    """A heliport key as stored: only its SHA-256 hash, never the key itself."""

    id: str
    org_id: str
    name: str
    key_hash: str
    #: The first characters of the key, so a person can tell keys apart in a list.
    prefix: str
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class KeyStore(Protocol):
    async def put_org(self, org: Organisation) -> None:
        """Store ``org``, replacing any organisation with its id; no check on the name (see ``create_org``)."""
        ...

    async def create_org(self, org: Organisation) -> None:
        """Store a new organisation; ValueError if its id or its name is already taken.

        Names are unique per store (``heliport keys --org`` accepts a name), and the check and the
        write are one atomic step, so two concurrent creates of one name cannot both succeed.
        """
        ...

    async def get_org(self, org_id: str) -> Organisation | None: ...

    async def find_orgs(self, name: str) -> list[Organisation]:
        """The organisations called exactly ``name``, oldest first.

        At most one when every organisation came through ``create_org``; ``put_org`` does not check
        names, so a store written before names were unique may answer several.
        """
        ...

    async def list_orgs(self) -> list[Organisation]:
        """Every organisation, oldest first (the first is the default of ``bootstrap_local_org``)."""
        ...

    async def put_key(self, key: ApiKey) -> None: ...

    async def get_key(self, key_hash: str) -> ApiKey | None:
        """The key with this hash, revoked or not; None if there is none."""
        ...

    async def list_keys(self, org_id: str) -> list[ApiKey]: ...

    async def revoke_key(self, org_id: str, key_id: str) -> bool:
        """Mark the key revoked; False if the organisation has no such key."""
        ...

    async def aclose(self) -> None: ...


# --- SQLite -------------------------------------------------------------------------------------

_KEYS_SCHEMA = """
CREATE TABLE IF NOT EXISTS organisations (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL
);
-- Not UNIQUE: stores from before names were unique may hold duplicates, and a unique index would
-- fail to build on them. create_org enforces uniqueness for new organisations instead.
CREATE INDEX IF NOT EXISTS organisations_name ON organisations(name);
CREATE TABLE IF NOT EXISTS api_keys (
    key_hash TEXT PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    org_id TEXT NOT NULL REFERENCES organisations(id),
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
CREATE INDEX IF NOT EXISTS api_keys_org ON api_keys(org_id);
"""


def _key_from_row(row: tuple[str, str, str, str, str, str, str | None]) -> ApiKey:
    key_hash, key_id, org_id, name, prefix, created_at, revoked_at = row
    return ApiKey(
        id=key_id,
        org_id=org_id,
        name=name,
        key_hash=key_hash,
        prefix=prefix,
        created_at=datetime.fromisoformat(created_at),
        revoked_at=datetime.fromisoformat(revoked_at) if revoked_at else None,
    )


_KEY_COLUMNS = "key_hash, id, org_id, name, prefix, created_at, revoked_at"


def _org_from_row(row: tuple[str, str, str]) -> Organisation:
    return Organisation(id=row[0], name=row[1], created_at=datetime.fromisoformat(row[2]))


class SqliteKeyStore:
    """Organisations and key hashes in ``<data_dir>/keys.sqlite3``."""

    def __init__(self, path: Path) -> None:
        self._conn = connect(path)
        self._conn.executescript(_KEYS_SCHEMA)

    async def put_org(self, org: Organisation) -> None:
        self._conn.execute(
            "INSERT OR REPLACE INTO organisations (id, name, created_at) VALUES (?, ?, ?)",
            (org.id, org.name, org.created_at.isoformat()),
        )

    async def create_org(self, org: Organisation) -> None:
        # BEGIN IMMEDIATE takes the write lock before the check, so another process creating the same
        # name (or id) waits for this transaction and then sees the row: check and insert are atomic.
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            taken = self._conn.execute(
                "SELECT id FROM organisations WHERE id = ? OR name = ? LIMIT 1", (org.id, org.name)
            ).fetchone()
            if taken is not None:
                if taken[0] == org.id:
                    raise ValueError(f"an organisation with id {org.id!r} already exists")
                raise ValueError(f"an organisation named {org.name!r} already exists (id {taken[0]})")
            self._conn.execute(
                "INSERT INTO organisations (id, name, created_at) VALUES (?, ?, ?)",
                (org.id, org.name, org.created_at.isoformat()),
            )
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    async def get_org(self, org_id: str) -> Organisation | None:
        row = self._conn.execute("SELECT id, name, created_at FROM organisations WHERE id = ?", (org_id,)).fetchone()
        return _org_from_row(row) if row else None

    async def find_orgs(self, name: str) -> list[Organisation]:
        rows = self._conn.execute(
            "SELECT id, name, created_at FROM organisations WHERE name = ? ORDER BY created_at", (name,)
        ).fetchall()
        return [_org_from_row(r) for r in rows]

    async def list_orgs(self) -> list[Organisation]:
        rows = self._conn.execute("SELECT id, name, created_at FROM organisations ORDER BY created_at").fetchall()
        return [_org_from_row(r) for r in rows]

    async def put_key(self, key: ApiKey) -> None:
        self._conn.execute(
            f"INSERT INTO api_keys ({_KEY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                key.key_hash,
                key.id,
                key.org_id,
                key.name,
                key.prefix,
                key.created_at.isoformat(),
                key.revoked_at.isoformat() if key.revoked_at else None,
            ),
        )

    async def get_key(self, key_hash: str) -> ApiKey | None:
        row = self._conn.execute(f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE key_hash = ?", (key_hash,)).fetchone()
        return _key_from_row(row) if row else None

    async def list_keys(self, org_id: str) -> list[ApiKey]:
        rows = self._conn.execute(
            f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE org_id = ? ORDER BY created_at", (org_id,)
        ).fetchall()
        return [_key_from_row(r) for r in rows]

    async def revoke_key(self, org_id: str, key_id: str) -> bool:
        cur = self._conn.execute(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE org_id = ? AND id = ?",
            (datetime.now(UTC).isoformat(), org_id, key_id),
        )
        return cur.rowcount == 1

    async def aclose(self) -> None:
        self._conn.close()


# --- DynamoDB -----------------------------------------------------------------------------------


def _org_item(org: Organisation, pk: str, sk: str) -> Item:
    return {
        "pk": {"S": pk},
        "sk": {"S": sk},
        "id": {"S": org.id},
        "name": {"S": org.name},
        "created_at": {"S": org.created_at.isoformat()},
    }


def _org_from_item(item: Item) -> Organisation:
    return Organisation(
        id=item["id"]["S"], name=item["name"]["S"], created_at=datetime.fromisoformat(item["created_at"]["S"])
    )


def _key_item(key: ApiKey, pk: str, sk: str) -> Item:
    item: Item = {
        "pk": {"S": pk},
        "sk": {"S": sk},
        "id": {"S": key.id},
        "org_id": {"S": key.org_id},
        "name": {"S": key.name},
        "key_hash": {"S": key.key_hash},
        "prefix": {"S": key.prefix},
        "created_at": {"S": key.created_at.isoformat()},
    }
    if key.revoked_at is not None:
        item["revoked_at"] = {"S": key.revoked_at.isoformat()}
    return item


def _key_from_item(item: Item) -> ApiKey:
    revoked = item.get("revoked_at")
    return ApiKey(
        id=item["id"]["S"],
        org_id=item["org_id"]["S"],
        name=item["name"]["S"],
        key_hash=item["key_hash"]["S"],
        prefix=item["prefix"]["S"],
        created_at=datetime.fromisoformat(item["created_at"]["S"]),
        revoked_at=datetime.fromisoformat(revoked["S"]) if revoked else None,
    )


def _org_pk(org_id: str) -> str:
    return f"org#{org_id}"


def _key_pk(key_hash: str) -> str:
    return f"apikey#{key_hash}"


def _org_name_pk(name: str) -> str:
    return f"orgname#{name}"


_ORG_SK = "org"
_ORGS_PK = "orgs"
_ORG_NAME_SK = "orgname"
_KEY_SK = "apikey"


def _cancelled_by_condition(error: ClientError) -> bool:
    """Whether a cancelled transaction failed a condition (rather than conflicting or throttling)."""
    if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
        return False
    reasons = error.response.get("CancellationReasons") or []
    if reasons:
        return any(r.get("Code") == "ConditionalCheckFailed" for r in reasons)
    # Some endpoints only put the reasons in the message.
    return "ConditionalCheckFailed" in str(error)


class DynamoKeyStore:
    """Organisations and key hashes in the deployment's DynamoDB table (see the module docstring).

    The key item is addressed by hash so authentication is one GetItem; the listing item under the
    organisation repeats every field so ``list_keys`` is one Query with no follow-up reads.
    """

    def __init__(self, table_name: str, *, region: str | None = None, endpoint_url: str | None = None) -> None:
        self._table = table_name
        # botocore's standard retry mode: backoff with jitter on throttles and transient failures.
        self._client = LazyClient(
            "dynamodb",
            region=region,
            endpoint_url=endpoint_url,
            config={"retries": {"mode": "standard", "max_attempts": 3}, "connect_timeout": 5, "read_timeout": 10},
        )

    async def put_org(self, org: Organisation) -> None:
        client = await self._client.get()
        await client.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": self._table, "Item": _org_item(org, _org_pk(org.id), _ORG_SK)}},
                {"Put": {"TableName": self._table, "Item": _org_item(org, _ORGS_PK, _org_pk(org.id))}},
            ]
        )

    async def create_org(self, org: Organisation) -> None:
        """Both organisation items and a claim on the name, in one transaction that fails if any exists.

        The claim item makes a name unique even against a concurrent create. Organisations stored by
        ``put_org`` (the bootstrap) have no claim, so their names are looked up in the listing first.
        """
        from botocore.exceptions import ClientError

        named = await self.find_orgs(org.name)
        if named:
            raise ValueError(f"an organisation named {org.name!r} already exists (id {named[0].id})")
        client = await self._client.get()
        absent = "attribute_not_exists(pk)"
        claim: Item = {"pk": {"S": _org_name_pk(org.name)}, "sk": {"S": _ORG_NAME_SK}, "id": {"S": org.id}}
        puts = [
            _org_item(org, _org_pk(org.id), _ORG_SK),
            _org_item(org, _ORGS_PK, _org_pk(org.id)),
            claim,
        ]
        try:
            await client.transact_write_items(
                TransactItems=[
                    {"Put": {"TableName": self._table, "Item": item, "ConditionExpression": absent}} for item in puts
                ]
            )
        except ClientError as exc:
            if not _cancelled_by_condition(exc):
                raise
            # The reasons come in the order of the items: the third is the name's claim.
            reasons = exc.response.get("CancellationReasons") or []
            if len(reasons) == 3 and reasons[2].get("Code") == "ConditionalCheckFailed":
                raise ValueError(f"an organisation named {org.name!r} already exists") from exc
            if len(reasons) == 3:
                raise ValueError(f"an organisation with id {org.id!r} already exists") from exc
            raise ValueError(f"an organisation with id {org.id!r} or name {org.name!r} already exists") from exc

    async def get_org(self, org_id: str) -> Organisation | None:
        client = await self._client.get()
        # Consistent: only the CLI reads organisations by id, and it may do so right after creating one.
        response = await client.get_item(
            TableName=self._table, Key={"pk": {"S": _org_pk(org_id)}, "sk": {"S": _ORG_SK}}, ConsistentRead=True
        )
        item = response.get("Item")
        return _org_from_item(item) if item else None

    async def find_orgs(self, name: str) -> list[Organisation]:
        # One Query of the listing partition (one small item per organisation), not a table scan;
        # consistent, so a name created a moment ago is found (and refused a second time).
        items = await self._query(_ORGS_PK, _org_pk(""), consistent=True)
        named = (_org_from_item(item) for item in items if item["name"]["S"] == name)
        return sorted(named, key=lambda o: o.created_at.isoformat())

    async def list_orgs(self) -> list[Organisation]:
        items = await self._query(_ORGS_PK, _org_pk(""))
        # The SQLite store's order (its ORDER BY on the ISO text), so both list alike.
        return sorted((_org_from_item(item) for item in items), key=lambda o: o.created_at.isoformat())

    async def put_key(self, key: ApiKey) -> None:
        """Store both items of a new key; ValueError if its hash, or its id within its organisation, is taken."""
        from botocore.exceptions import ClientError

        client = await self._client.get()
        absent = "attribute_not_exists(pk)"
        try:
            await client.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": _key_item(key, _key_pk(key.key_hash), _KEY_SK),
                            "ConditionExpression": absent,
                        }
                    },
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": _key_item(key, _org_pk(key.org_id), f"{_KEY_SK}#{key.id}"),
                            "ConditionExpression": absent,
                        }
                    },
                ]
            )
        except ClientError as exc:
            if _cancelled_by_condition(exc):
                raise ValueError(f"a key with id {key.id!r} or the same hash already exists") from exc
            raise

    async def get_key(self, key_hash: str) -> ApiKey | None:
        client = await self._client.get()
        # An eventually consistent read is half the cost and is what every request pays; a key made
        # a moment ago is readable within a second, and misses are only cached briefly.
        response = await client.get_item(
            TableName=self._table, Key={"pk": {"S": _key_pk(key_hash)}, "sk": {"S": _KEY_SK}}
        )
        item = response.get("Item")
        return _key_from_item(item) if item else None

    async def list_keys(self, org_id: str) -> list[ApiKey]:
        items = await self._query(_org_pk(org_id), f"{_KEY_SK}#")
        return sorted((_key_from_item(item) for item in items), key=lambda k: k.created_at.isoformat())

    async def revoke_key(self, org_id: str, key_id: str) -> bool:
        from botocore.exceptions import ClientError

        client = await self._client.get()
        listing_key = {"pk": {"S": _org_pk(org_id)}, "sk": {"S": f"{_KEY_SK}#{key_id}"}}
        response = await client.get_item(
            TableName=self._table, Key=listing_key, ConsistentRead=True, ProjectionExpression="key_hash"
        )
        item = response.get("Item")
        if not item:
            return False
        # if_not_exists keeps the first revocation time when a key is revoked twice; the condition
        # stops the update from creating a stray item if the key vanished since the read.
        update = {
            "TableName": self._table,
            "UpdateExpression": "SET revoked_at = if_not_exists(revoked_at, :now)",
            "ConditionExpression": "attribute_exists(pk)",
            "ExpressionAttributeValues": {":now": {"S": datetime.now(UTC).isoformat()}},
        }
        try:
            await client.transact_write_items(
                TransactItems=[
                    {"Update": {**update, "Key": listing_key}},
                    {"Update": {**update, "Key": {"pk": {"S": _key_pk(item["key_hash"]["S"])}, "sk": {"S": _KEY_SK}}}},
                ]
            )
        except ClientError as exc:
            if _cancelled_by_condition(exc):
                return False
            raise
        return True

    async def _query(self, pk: str, sk_prefix: str, *, consistent: bool = False) -> list[Item]:
        """Every item in partition ``pk`` whose sort key starts with ``sk_prefix``, across pages."""
        client = await self._client.get()
        params: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {":pk": {"S": pk}, ":prefix": {"S": sk_prefix}},
            "ConsistentRead": consistent,
        }
        items: list[Item] = []
        while True:
            response = await client.query(**params)
            items.extend(response.get("Items", []))
            last = response.get("LastEvaluatedKey")
            if not last:
                return items
            params["ExclusiveStartKey"] = last

    async def aclose(self) -> None:
        await self._client.aclose()
