"""The prompt store: the :class:`PromptStore` port and its SQLite and DynamoDB adapters.

Prompts live where the keys live (the lead's storage decision, see ``docs/architecture.md``):
locally ``<data_dir>/prompts.sqlite3``; in AWS the deployment's single DynamoDB table, which both the
proxy function (outside the VPC) and the query API (inside it, through the DynamoDB gateway endpoint)
reach. The AI gateway's lookup (:meth:`PromptReader.resolve`) is one key-value read in both.

Semantics both adapters share (held to one contract by ``tests/prompts/test_store_contract.py``):

* Prompt ids are Helicone-style short ids: 6 characters of ``[0-9A-Za-z]`` (never a literal segment
  of the API's paths, such as ``update``); version ids are UUIDs, as Helicone's are.
* A new prompt's first version is 0.0 ("First version.") and is production. A new major version is
  (highest major + 1).0; a new minor version is (its base version's major).(highest minor of that
  major + 1). Numbers are unique per prompt: two concurrent writers cannot both take one.
* Each environment points at one version at most; a version may hold several environments. Moving an
  environment updates the version that had it and the one that gets it together (one transaction).
* Deleting a version deletes it and the environments that pointed at it (they then resolve to
  nothing, as in Helicone, where a soft-deleted version is never served); deleting a prompt deletes
  all of it.
* Tags are trimmed, empty ones dropped, duplicates removed, order kept (Helicone's sanitising).
* Every read and write names the organisation and can reach no other: SQLite's statements all carry
  ``org_id``; DynamoDB's partition key is ``prompt#<org_id>``.

DynamoDB layout (partition ``pk = prompt#<org_id>``; nothing here is read by any other feature)::

    sk                          attributes
    p#<prompt_id>               id, name, tags (L), created_at                 the prompt
    v#<prompt_id>#<version_id>  id, prompt_id, major, minor (N), commit_message, created_at, model,
                                body (S, JSON), envs (SS), rev (N)             a version
    e#<prompt_id>#<environment> the version's attributes + environment,        an environment: a copy of
                                version_id                                     its version, so resolving
                                                                               by environment is one read
    i#<version_id>              prompt_id                                      version id -> prompt
    n#<prompt_id>#<major>.<minor>  version_id                                  claims a version number

Every write that touches several items is one ``TransactWriteItems`` with conditions on the items it
read (a version's ``rev``, an environment's ``version_id``), retried a few times when a concurrent
writer got there first. Bodies are capped (:data:`MAX_BODY_BYTES`) so that a version and its copies
fit DynamoDB's 400 KB item limit.

As in every AWS adapter (``store.aws``), nothing here imports aioboto3 or botocore at load time.
"""

from __future__ import annotations

import secrets
import sqlite3
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol

import msgspec

from heliport.prompts import PRODUCTION, Prompt, PromptReader, PromptVersion
from heliport.store.aws import LazyClient
from heliport.store.sqlite import connect

if TYPE_CHECKING:
    from botocore.exceptions import ClientError

__all__ = [
    "FIRST_COMMIT_MESSAGE",
    "MAX_BODY_BYTES",
    "PROMPT_ID_ALPHABET",
    "PROMPT_ID_LENGTH",
    "RESERVED_PROMPT_IDS",
    "DynamoPromptStore",
    "PromptConflictError",
    "PromptNotFoundError",
    "PromptStore",
    "SqlitePromptStore",
    "clean_tags",
    "new_prompt_id",
]

PROMPT_ID_LENGTH: Final = 6
PROMPT_ID_ALPHABET: Final = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
#: Literal segments of the API's paths where a prompt id could otherwise stand: an id equal to one
#: would be unreachable (``DELETE /v1/prompt-2025/update`` is the literal route's 405).
RESERVED_PROMPT_IDS: Final = frozenset({"update", "query", "id", "tags", "count", "environments"})
FIRST_COMMIT_MESSAGE: Final = "First version."
#: Largest prompt body (its JSON): a DynamoDB item holds at most 400 KB, and an environment's item
#: carries a copy of its version's body next to the other attributes.
MAX_BODY_BYTES: Final = 300_000
#: Attempts of a transaction that lost a race to a concurrent writer (or a fresh id that was taken).
_ATTEMPTS: Final = 5


class PromptNotFoundError(LookupError):
    """The prompt or version a write names does not exist in the organisation (the API's 404)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class PromptConflictError(RuntimeError):
    """A write kept losing races to concurrent writers (retried :data:`_ATTEMPTS` times)."""


class PromptStore(PromptReader, Protocol):
    """Everything the Prompts API needs; :meth:`resolve` (the AI gateway's read) is in the base."""

    async def create_prompt(
        self, org_id: str, *, name: str, tags: Sequence[str], body: dict[str, Any]
    ) -> tuple[Prompt, PromptVersion]:
        """A new prompt with its first version (0.0, production)."""
        ...

    async def get_prompt(self, org_id: str, prompt_id: str) -> Prompt | None: ...

    async def query_prompts(
        self, org_id: str, *, search: str = "", tags: Sequence[str] = (), offset: int = 0, limit: int = 100
    ) -> list[Prompt]:
        """Prompts whose name contains ``search`` (case-insensitive) and that have any of ``tags`` (all
        when empty), newest first, ``limit`` of them after skipping ``offset``."""
        ...

    async def count_prompts(self, org_id: str) -> int: ...

    async def all_tags(self, org_id: str) -> list[str]:
        """Every tag used by the organisation's prompts, sorted."""
        ...

    async def rename_prompt(self, org_id: str, prompt_id: str, name: str) -> bool:
        """False when there is no such prompt."""
        ...

    async def set_tags(self, org_id: str, prompt_id: str, tags: Sequence[str]) -> tuple[str, ...] | None:
        """Replace the tags (cleaned, :func:`clean_tags`); the stored tags, or None when there is no prompt."""
        ...

    async def delete_prompt(self, org_id: str, prompt_id: str) -> bool:
        """The prompt and everything under it; False when there was none."""
        ...

    async def new_version(
        self,
        org_id: str,
        prompt_id: str,
        *,
        base_version_id: str,
        major: bool,
        body: dict[str, Any],
        commit_message: str = "",
        environment: str | None = None,
    ) -> PromptVersion:
        """A new version after ``base_version_id`` (see the numbering in the module docstring), moved
        into ``environment`` when given; :class:`PromptNotFoundError` when the prompt or the base
        version (of that prompt) does not exist."""
        ...

    async def get_version(self, org_id: str, version_id: str) -> PromptVersion | None: ...

    async def list_versions(self, org_id: str, prompt_id: str, *, major: int | None = None) -> list[PromptVersion]:
        """The prompt's versions (of one major version, when given), newest first."""
        ...

    async def set_environment(self, org_id: str, prompt_id: str, version_id: str, environment: str) -> bool:
        """Point ``environment`` at the version (taking it from the version that had it); False when
        the version does not exist in that prompt."""
        ...

    async def delete_version(self, org_id: str, prompt_id: str, version_id: str) -> bool:
        """The version and the environments that pointed at it; False when there was no such version."""
        ...

    async def environments(self, org_id: str) -> list[str]:
        """The environment names that point at a version in any of the organisation's prompts, sorted."""
        ...

    async def aclose(self) -> None: ...


# --- what both adapters share ----------------------------------------------------------------------


def new_prompt_id() -> str:
    """A Helicone-style short id: 6 characters of [0-9A-Za-z] (62^6, about 5.7e10), never reserved."""
    while True:
        candidate = "".join(secrets.choice(PROMPT_ID_ALPHABET) for _ in range(PROMPT_ID_LENGTH))
        if candidate not in RESERVED_PROMPT_IDS:
            return candidate


def clean_tags(tags: Iterable[str]) -> tuple[str, ...]:
    """Trimmed, without empty ones or repeats, in the given order."""
    return tuple(dict.fromkeys(tag.strip() for tag in tags if tag.strip()))


def _model(body: dict[str, Any]) -> str | None:
    model = body.get("model")
    return model if isinstance(model, str) else None


def _now() -> datetime:
    return datetime.now(UTC)


def _newest_first(versions: Iterable[PromptVersion]) -> list[PromptVersion]:
    # created_at first (Helicone's order); the numbers break a tie between versions made in one tick.
    return sorted(versions, key=lambda v: (v.created_at, v.major_version, v.minor_version), reverse=True)


def _select(prompts: Iterable[Prompt], search: str, tags: Sequence[str], offset: int, limit: int) -> list[Prompt]:
    """One page of the query, the same in both adapters: the filtering is done here, over the
    organisation's prompts (hundreds, not millions), so both match text and tags identically."""
    needle = search.casefold()
    wanted = set(tags)
    chosen = [p for p in prompts if needle in p.name.casefold() and (not wanted or wanted.intersection(p.tags))]
    chosen.sort(key=lambda p: (p.created_at, p.id), reverse=True)
    return chosen[offset : offset + limit]


def _next_number(versions: Sequence[PromptVersion], base: PromptVersion, major: bool) -> tuple[int, int]:
    """Helicone's numbering: a major bump is (highest major + 1).0; a minor one stays on the base's
    major, after the highest minor there."""
    if major:
        return max((v.major_version for v in versions), default=0) + 1, 0
    same = [v.minor_version for v in versions if v.major_version == base.major_version]
    return base.major_version, max(same, default=0) + 1


def _encode_body(body: dict[str, Any]) -> str:
    return msgspec.json.encode(body).decode()


def _decode_body(text: str) -> dict[str, Any]:
    value = msgspec.json.decode(text)
    return value if isinstance(value, dict) else {}


# --- SQLite ------------------------------------------------------------------------------------------

_SCHEMA = """
CREATE TABLE IF NOT EXISTS prompts (
    org_id TEXT NOT NULL,
    id TEXT NOT NULL,
    name TEXT NOT NULL,
    tags TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (org_id, id)
);
CREATE TABLE IF NOT EXISTS prompt_versions (
    org_id TEXT NOT NULL,
    id TEXT NOT NULL,
    prompt_id TEXT NOT NULL,
    major_version INTEGER NOT NULL,
    minor_version INTEGER NOT NULL,
    commit_message TEXT NOT NULL,
    created_at TEXT NOT NULL,
    model TEXT,
    body TEXT NOT NULL,
    PRIMARY KEY (org_id, id),
    UNIQUE (org_id, prompt_id, major_version, minor_version)
);
CREATE INDEX IF NOT EXISTS prompt_versions_prompt ON prompt_versions(org_id, prompt_id);
CREATE TABLE IF NOT EXISTS prompt_environments (
    org_id TEXT NOT NULL,
    prompt_id TEXT NOT NULL,
    environment TEXT NOT NULL,
    version_id TEXT NOT NULL,
    PRIMARY KEY (org_id, prompt_id, environment)
);
CREATE INDEX IF NOT EXISTS prompt_environments_version ON prompt_environments(org_id, version_id);
"""

_VERSION_COLUMNS = "id, prompt_id, org_id, major_version, minor_version, commit_message, created_at, model, body"
# Every environment of the version, as one text (environment names cannot hold a newline).
_ENVS = (
    "(SELECT group_concat(environment, char(10)) FROM prompt_environments e "
    "WHERE e.org_id = v.org_id AND e.version_id = v.id)"
)


class SqlitePromptStore:
    """Prompts in ``<data_dir>/prompts.sqlite3``. Calls are synchronous inside ``async`` methods, as
    in the other local adapters (``store.sqlite``): each is a few index lookups."""

    def __init__(self, path: Path) -> None:
        self._conn = connect(path)
        self._conn.executescript(_SCHEMA)

    # -- reads

    async def resolve(
        self, org_id: str, prompt_id: str, *, version_id: str | None = None, environment: str | None = None
    ) -> PromptVersion | None:
        if environment is None and version_id is not None:
            return self._version(org_id, "v.id = ? AND v.prompt_id = ?", (version_id, prompt_id))
        return self._version(
            org_id,
            "v.id = (SELECT version_id FROM prompt_environments "
            "WHERE org_id = ? AND prompt_id = ? AND environment = ?)",
            (org_id, prompt_id, environment or PRODUCTION),
        )

    async def get_prompt(self, org_id: str, prompt_id: str) -> Prompt | None:
        row = self._conn.execute(
            "SELECT id, org_id, name, tags, created_at FROM prompts WHERE org_id = ? AND id = ?", (org_id, prompt_id)
        ).fetchone()
        return _prompt_from_row(row) if row else None

    async def query_prompts(
        self, org_id: str, *, search: str = "", tags: Sequence[str] = (), offset: int = 0, limit: int = 100
    ) -> list[Prompt]:
        return _select(self._prompts(org_id), search, tags, offset, limit)

    async def count_prompts(self, org_id: str) -> int:
        row = self._conn.execute("SELECT count(*) FROM prompts WHERE org_id = ?", (org_id,)).fetchone()
        return int(row[0])

    async def all_tags(self, org_id: str) -> list[str]:
        return sorted({tag for prompt in self._prompts(org_id) for tag in prompt.tags})

    async def get_version(self, org_id: str, version_id: str) -> PromptVersion | None:
        return self._version(org_id, "v.id = ?", (version_id,))

    async def list_versions(self, org_id: str, prompt_id: str, *, major: int | None = None) -> list[PromptVersion]:
        rows = self._conn.execute(
            f"SELECT {_VERSION_COLUMNS}, {_ENVS} FROM prompt_versions v WHERE v.org_id = ? AND v.prompt_id = ?",
            (org_id, prompt_id),
        ).fetchall()
        versions = [_version_from_row(r) for r in rows]
        if major is not None:
            versions = [v for v in versions if v.major_version == major]
        return _newest_first(versions)

    async def environments(self, org_id: str) -> list[str]:
        rows = self._conn.execute(
            "SELECT DISTINCT environment FROM prompt_environments WHERE org_id = ? ORDER BY environment", (org_id,)
        ).fetchall()
        return [r[0] for r in rows]

    def _prompts(self, org_id: str) -> list[Prompt]:
        rows = self._conn.execute(
            "SELECT id, org_id, name, tags, created_at FROM prompts WHERE org_id = ?", (org_id,)
        ).fetchall()
        return [_prompt_from_row(r) for r in rows]

    def _version(self, org_id: str, where: str, values: Sequence[object]) -> PromptVersion | None:
        row = self._conn.execute(
            f"SELECT {_VERSION_COLUMNS}, {_ENVS} FROM prompt_versions v WHERE v.org_id = ? AND {where}",
            (org_id, *values),
        ).fetchone()
        return _version_from_row(row) if row else None

    # -- writes (each a transaction: BEGIN IMMEDIATE takes the write lock before reading what it checks)

    async def create_prompt(
        self, org_id: str, *, name: str, tags: Sequence[str], body: dict[str, Any]
    ) -> tuple[Prompt, PromptVersion]:
        now = _now()
        with _transaction(self._conn):
            prompt_id = new_prompt_id()
            while self._conn.execute(
                "SELECT 1 FROM prompts WHERE org_id = ? AND id = ?", (org_id, prompt_id)
            ).fetchone():
                prompt_id = new_prompt_id()
            prompt = Prompt(id=prompt_id, org_id=org_id, name=name, tags=clean_tags(tags), created_at=now)
            self._conn.execute(
                "INSERT INTO prompts (org_id, id, name, tags, created_at) VALUES (?, ?, ?, ?, ?)",
                (org_id, prompt.id, prompt.name, msgspec.json.encode(prompt.tags).decode(), now.isoformat()),
            )
            version = self._insert_version(org_id, prompt_id, 0, 0, FIRST_COMMIT_MESSAGE, body, now)
            self._point(org_id, prompt_id, PRODUCTION, version.id)
        return prompt, msgspec.structs.replace(version, environments=(PRODUCTION,))

    async def rename_prompt(self, org_id: str, prompt_id: str, name: str) -> bool:
        cur = self._conn.execute("UPDATE prompts SET name = ? WHERE org_id = ? AND id = ?", (name, org_id, prompt_id))
        return cur.rowcount == 1

    async def set_tags(self, org_id: str, prompt_id: str, tags: Sequence[str]) -> tuple[str, ...] | None:
        cleaned = clean_tags(tags)
        cur = self._conn.execute(
            "UPDATE prompts SET tags = ? WHERE org_id = ? AND id = ?",
            (msgspec.json.encode(cleaned).decode(), org_id, prompt_id),
        )
        return cleaned if cur.rowcount == 1 else None

    async def delete_prompt(self, org_id: str, prompt_id: str) -> bool:
        with _transaction(self._conn):
            cur = self._conn.execute("DELETE FROM prompts WHERE org_id = ? AND id = ?", (org_id, prompt_id))
            for table in ("prompt_versions", "prompt_environments"):
                self._conn.execute(f"DELETE FROM {table} WHERE org_id = ? AND prompt_id = ?", (org_id, prompt_id))
        return cur.rowcount == 1

    async def new_version(
        self,
        org_id: str,
        prompt_id: str,
        *,
        base_version_id: str,
        major: bool,
        body: dict[str, Any],
        commit_message: str = "",
        environment: str | None = None,
    ) -> PromptVersion:
        now = _now()
        with _transaction(self._conn):
            if await self.get_prompt(org_id, prompt_id) is None:
                raise PromptNotFoundError(f"No prompt {prompt_id} in this organisation.")
            base = self._version(org_id, "v.id = ? AND v.prompt_id = ?", (base_version_id, prompt_id))
            if base is None:
                raise PromptNotFoundError(f"No version {base_version_id} of prompt {prompt_id} in this organisation.")
            number = _next_number(await self.list_versions(org_id, prompt_id), base, major)
            version = self._insert_version(org_id, prompt_id, *number, commit_message, body, now)
            if environment is not None:
                self._point(org_id, prompt_id, environment, version.id)
        return msgspec.structs.replace(version, environments=() if environment is None else (environment,))

    async def set_environment(self, org_id: str, prompt_id: str, version_id: str, environment: str) -> bool:
        with _transaction(self._conn):
            if self._version(org_id, "v.id = ? AND v.prompt_id = ?", (version_id, prompt_id)) is None:
                return False
            self._point(org_id, prompt_id, environment, version_id)
        return True

    async def delete_version(self, org_id: str, prompt_id: str, version_id: str) -> bool:
        with _transaction(self._conn):
            cur = self._conn.execute(
                "DELETE FROM prompt_versions WHERE org_id = ? AND prompt_id = ? AND id = ?",
                (org_id, prompt_id, version_id),
            )
            self._conn.execute(
                "DELETE FROM prompt_environments WHERE org_id = ? AND prompt_id = ? AND version_id = ?",
                (org_id, prompt_id, version_id),
            )
        return cur.rowcount == 1

    async def aclose(self) -> None:
        self._conn.close()

    def _insert_version(
        self, org_id: str, prompt_id: str, major: int, minor: int, message: str, body: dict[str, Any], now: datetime
    ) -> PromptVersion:
        version = PromptVersion(
            id=str(uuid.uuid4()),
            prompt_id=prompt_id,
            org_id=org_id,
            major_version=major,
            minor_version=minor,
            commit_message=message,
            created_at=now,
            model=_model(body),
            body=body,
        )
        self._conn.execute(
            f"INSERT INTO prompt_versions ({_VERSION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                version.id,
                prompt_id,
                org_id,
                major,
                minor,
                message,
                now.isoformat(),
                version.model,
                _encode_body(body),
            ),
        )
        return version

    def _point(self, org_id: str, prompt_id: str, environment: str, version_id: str) -> None:
        self._conn.execute(
            "INSERT INTO prompt_environments (org_id, prompt_id, environment, version_id) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (org_id, prompt_id, environment) DO UPDATE SET version_id = excluded.version_id",
            (org_id, prompt_id, environment, version_id),
        )


class _transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on any exception) on an autocommit connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __enter__(self) -> None:
        self._conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, error: object, trace: object) -> None:
        self._conn.execute("COMMIT" if kind is None else "ROLLBACK")


def _prompt_from_row(row: tuple[str, str, str, str, str]) -> Prompt:
    prompt_id, org_id, name, tags, created_at = row
    return Prompt(
        id=prompt_id,
        org_id=org_id,
        name=name,
        tags=tuple(msgspec.json.decode(tags, type=list[str])),
        created_at=datetime.fromisoformat(created_at),
    )


def _version_from_row(row: tuple[Any, ...]) -> PromptVersion:
    version_id, prompt_id, org_id, major, minor, message, created_at, model, body, envs = row
    return PromptVersion(
        id=version_id,
        prompt_id=prompt_id,
        org_id=org_id,
        major_version=major,
        minor_version=minor,
        commit_message=message,
        environments=tuple(sorted(envs.split("\n"))) if envs else (),
        created_at=datetime.fromisoformat(created_at),
        model=model,
        body=_decode_body(body),
    )


# --- DynamoDB ----------------------------------------------------------------------------------------

#: A DynamoDB item in the low-level client's shape (attribute -> {type: value}), any attribute type.
_Item = dict[str, Any]


def _pk(org_id: str) -> str:
    return f"prompt#{org_id}"


def _prompt_sk(prompt_id: str) -> str:
    return f"p#{prompt_id}"


def _version_sk(prompt_id: str, version_id: str) -> str:
    return f"v#{prompt_id}#{version_id}"


def _env_sk(prompt_id: str, environment: str) -> str:
    return f"e#{prompt_id}#{environment}"


def _index_sk(version_id: str) -> str:
    return f"i#{version_id}"


def _number_sk(prompt_id: str, major: int, minor: int) -> str:
    return f"n#{prompt_id}#{major}.{minor}"


def _prompt_item(prompt: Prompt) -> _Item:
    return {
        "pk": {"S": _pk(prompt.org_id)},
        "sk": {"S": _prompt_sk(prompt.id)},
        "id": {"S": prompt.id},
        "name": {"S": prompt.name},
        "tags": {"L": [{"S": tag} for tag in prompt.tags]},
        "created_at": {"S": prompt.created_at.isoformat()},
    }


def _prompt_from_item(org_id: str, item: _Item) -> Prompt:
    return Prompt(
        id=item["id"]["S"],
        org_id=org_id,
        name=item["name"]["S"],
        tags=tuple(tag["S"] for tag in item.get("tags", {}).get("L", [])),
        created_at=datetime.fromisoformat(item["created_at"]["S"]),
    )


def _version_attributes(version: PromptVersion, envs: Iterable[str]) -> _Item:
    """A version's attributes, as its own item and every environment item's copy hold them."""
    item: _Item = {
        "id": {"S": version.id},
        "prompt_id": {"S": version.prompt_id},
        "major": {"N": str(version.major_version)},
        "minor": {"N": str(version.minor_version)},
        "commit_message": {"S": version.commit_message},
        "created_at": {"S": version.created_at.isoformat()},
        "body": {"S": _encode_body(version.body)},
    }
    if version.model is not None:
        item["model"] = {"S": version.model}
    names = sorted(set(envs))
    if names:
        item["envs"] = {"SS": names}
    return item


def _version_from_item(org_id: str, item: _Item) -> PromptVersion:
    return PromptVersion(
        id=item["id"]["S"],
        prompt_id=item["prompt_id"]["S"],
        org_id=org_id,
        major_version=int(item["major"]["N"]),
        minor_version=int(item["minor"]["N"]),
        commit_message=item["commit_message"]["S"],
        environments=tuple(sorted(item.get("envs", {}).get("SS", []))),
        created_at=datetime.fromisoformat(item["created_at"]["S"]),
        model=item["model"]["S"] if "model" in item else None,
        body=_decode_body(item["body"]["S"]),
    )


def _condition_failed(error: ClientError) -> bool:
    """A cancelled transaction or a conditional write that lost to another writer (worth a retry)."""
    code = error.response.get("Error", {}).get("Code")
    return code in {"TransactionCanceledException", "ConditionalCheckFailedException", "TransactionConflictException"}


class DynamoPromptStore:
    """Prompts in the deployment's DynamoDB table (layout in the module docstring)."""

    def __init__(self, table_name: str, *, region: str | None = None, endpoint_url: str | None = None) -> None:
        self._table = table_name
        self._client = LazyClient(
            "dynamodb",
            region=region,
            endpoint_url=endpoint_url,
            config={"retries": {"mode": "standard", "max_attempts": 3}, "connect_timeout": 5, "read_timeout": 10},
        )

    # -- reads

    async def resolve(
        self, org_id: str, prompt_id: str, *, version_id: str | None = None, environment: str | None = None
    ) -> PromptVersion | None:
        # One GetItem, eventually consistent (half the cost; the gateway caches the answer briefly anyway).
        if environment is None and version_id is not None:
            sk = _version_sk(prompt_id, version_id)
        else:
            sk = _env_sk(prompt_id, environment or PRODUCTION)
        item = await self._get(org_id, sk, consistent=False)
        return _version_from_item(org_id, item) if item else None

    async def get_prompt(self, org_id: str, prompt_id: str) -> Prompt | None:
        item = await self._get(org_id, _prompt_sk(prompt_id))
        return _prompt_from_item(org_id, item) if item else None

    async def query_prompts(
        self, org_id: str, *, search: str = "", tags: Sequence[str] = (), offset: int = 0, limit: int = 100
    ) -> list[Prompt]:
        return _select(await self._prompts(org_id), search, tags, offset, limit)

    async def count_prompts(self, org_id: str) -> int:
        return len(await self._query(org_id, "p#", projection="sk"))

    async def all_tags(self, org_id: str) -> list[str]:
        return sorted({tag for prompt in await self._prompts(org_id) for tag in prompt.tags})

    async def get_version(self, org_id: str, version_id: str) -> PromptVersion | None:
        index = await self._get(org_id, _index_sk(version_id))
        if not index:
            return None
        item = await self._get(org_id, _version_sk(index["prompt_id"]["S"], version_id))
        return _version_from_item(org_id, item) if item else None

    async def list_versions(self, org_id: str, prompt_id: str, *, major: int | None = None) -> list[PromptVersion]:
        versions = [_version_from_item(org_id, i) for i in await self._query(org_id, f"v#{prompt_id}#")]
        if major is not None:
            versions = [v for v in versions if v.major_version == major]
        return _newest_first(versions)

    async def environments(self, org_id: str) -> list[str]:
        items = await self._query(org_id, "e#", projection="environment")
        return sorted({item["environment"]["S"] for item in items})

    async def _prompts(self, org_id: str) -> list[Prompt]:
        return [_prompt_from_item(org_id, item) for item in await self._query(org_id, "p#")]

    async def _get(self, org_id: str, sk: str, *, consistent: bool = True) -> _Item | None:
        client = await self._client.get()
        response = await client.get_item(
            TableName=self._table, Key={"pk": {"S": _pk(org_id)}, "sk": {"S": sk}}, ConsistentRead=consistent
        )
        item: _Item | None = response.get("Item")
        return item

    async def _query(self, org_id: str, sk_prefix: str, *, projection: str | None = None) -> list[_Item]:
        """Every item of the organisation's partition whose sort key starts with ``sk_prefix``."""
        client = await self._client.get()
        params: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {":pk": {"S": _pk(org_id)}, ":prefix": {"S": sk_prefix}},
            "ConsistentRead": True,  # the API reads what it has just written
        }
        if projection is not None:
            params["ProjectionExpression"] = "#a"
            params["ExpressionAttributeNames"] = {"#a": projection}
        items: list[_Item] = []
        while True:
            response = await client.query(**params)
            items.extend(response.get("Items", []))
            last = response.get("LastEvaluatedKey")
            if not last:
                return items
            params["ExclusiveStartKey"] = last

    # -- writes

    async def create_prompt(
        self, org_id: str, *, name: str, tags: Sequence[str], body: dict[str, Any]
    ) -> tuple[Prompt, PromptVersion]:
        now = _now()
        for _ in range(_ATTEMPTS):
            prompt = Prompt(id=new_prompt_id(), org_id=org_id, name=name, tags=clean_tags(tags), created_at=now)
            version = PromptVersion(
                id=str(uuid.uuid4()),
                prompt_id=prompt.id,
                org_id=org_id,
                major_version=0,
                minor_version=0,
                commit_message=FIRST_COMMIT_MESSAGE,
                environments=(PRODUCTION,),
                created_at=now,
                model=_model(body),
                body=body,
            )
            # The prompt's own item must be new (a taken id is retried with another); the rest follow it.
            ops = [self._put(_prompt_item(prompt), "attribute_not_exists(pk)")]
            ops += self._new_version_ops(version, envs=(PRODUCTION,))
            ops.append(self._put(self._env_item(version, PRODUCTION, (PRODUCTION,))))
            if await self._transact(ops):
                return prompt, version
        raise PromptConflictError("could not find a free prompt id")

    async def rename_prompt(self, org_id: str, prompt_id: str, name: str) -> bool:
        return await self._update_prompt(org_id, prompt_id, "SET #v = :v", "name", {"S": name})

    async def set_tags(self, org_id: str, prompt_id: str, tags: Sequence[str]) -> tuple[str, ...] | None:
        cleaned = clean_tags(tags)
        updated = await self._update_prompt(
            org_id, prompt_id, "SET #v = :v", "tags", {"L": [{"S": t} for t in cleaned]}
        )
        return cleaned if updated else None

    async def _update_prompt(self, org_id: str, prompt_id: str, expression: str, name: str, value: _Item) -> bool:
        from botocore.exceptions import ClientError

        client = await self._client.get()
        try:
            await client.update_item(
                TableName=self._table,
                Key={"pk": {"S": _pk(org_id)}, "sk": {"S": _prompt_sk(prompt_id)}},
                UpdateExpression=expression,
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeNames={"#v": name},
                ExpressionAttributeValues={":v": value},
            )
        except ClientError as exc:
            if _condition_failed(exc):
                return False
            raise
        return True

    async def delete_prompt(self, org_id: str, prompt_id: str) -> bool:
        # First, in one transaction, the prompt and its environments: from then on the gateway can no
        # longer resolve it by environment (nor the API find it). Then the versions and their claims.
        pk = _pk(org_id)
        envs = await self._query(org_id, f"e#{prompt_id}#", projection="sk")
        first = [self._delete(_prompt_sk(prompt_id), pk, "attribute_exists(pk)")]
        first += [self._delete(item["sk"]["S"], pk) for item in envs]
        if not await self._transact(first[:100]):
            return False
        rest = [item["sk"]["S"] for item in envs[99:]]
        for item in await self._query(org_id, f"v#{prompt_id}#", projection="id"):
            rest += [_version_sk(prompt_id, item["id"]["S"]), _index_sk(item["id"]["S"])]
        rest += [item["sk"]["S"] for item in await self._query(org_id, f"n#{prompt_id}#", projection="sk")]
        for start in range(0, len(rest), 100):
            await self._transact([self._delete(sk, pk) for sk in rest[start : start + 100]])
        return True

    async def new_version(
        self,
        org_id: str,
        prompt_id: str,
        *,
        base_version_id: str,
        major: bool,
        body: dict[str, Any],
        commit_message: str = "",
        environment: str | None = None,
    ) -> PromptVersion:
        for _ in range(_ATTEMPTS):
            if await self.get_prompt(org_id, prompt_id) is None:
                raise PromptNotFoundError(f"No prompt {prompt_id} in this organisation.")
            revisions = await self._revisions(org_id, prompt_id)
            base = next((v for v, _ in revisions.values() if v.id == base_version_id), None)
            if base is None:
                raise PromptNotFoundError(f"No version {base_version_id} of prompt {prompt_id} in this organisation.")
            number = _next_number([v for v, _ in revisions.values()], base, major)
            envs = () if environment is None else (environment,)
            version = PromptVersion(
                id=str(uuid.uuid4()),
                prompt_id=prompt_id,
                org_id=org_id,
                major_version=number[0],
                minor_version=number[1],
                commit_message=commit_message,
                environments=envs,
                created_at=_now(),
                model=_model(body),
                body=body,
            )
            # The number's claim makes a concurrent writer that computed the same number fail and retry.
            ops = self._new_version_ops(version, envs=envs)
            if environment is not None:
                ops += await self._take_environment(org_id, prompt_id, environment, version, revisions)
            if await self._transact(ops):
                return version
        raise PromptConflictError(f"prompt {prompt_id} kept changing while a version was added")

    async def set_environment(self, org_id: str, prompt_id: str, version_id: str, environment: str) -> bool:
        for _ in range(_ATTEMPTS):
            revisions = await self._revisions(org_id, prompt_id)
            if version_id not in revisions:
                return False
            target, rev = revisions[version_id]
            if environment in target.environments:
                return True
            ops = await self._take_environment(org_id, prompt_id, environment, target, revisions)
            # The target gains the environment: its item, and the copies its other environments hold.
            gained = (*target.environments, environment)
            ops.append(self._revise(target, rev, gained))
            ops += [self._set_envs(org_id, prompt_id, env, target.id, gained) for env in target.environments]
            if await self._transact(ops):
                return True
        raise PromptConflictError(f"prompt {prompt_id} kept changing while {environment} was moved")

    async def delete_version(self, org_id: str, prompt_id: str, version_id: str) -> bool:
        pk = _pk(org_id)
        for _ in range(_ATTEMPTS):
            item = await self._get(org_id, _version_sk(prompt_id, version_id))
            if not item:
                return False
            version = _version_from_item(org_id, item)
            # Conditioned on the revision read: an environment moved onto it meanwhile is deleted too.
            ops = [
                self._delete(_version_sk(prompt_id, version_id), pk, "rev = :rev", {":rev": {"N": item["rev"]["N"]}}),
                self._delete(_index_sk(version_id), pk),
                self._delete(_number_sk(prompt_id, version.major_version, version.minor_version), pk),
            ]
            ops += [self._delete(_env_sk(prompt_id, env), pk) for env in version.environments]
            if await self._transact(ops):
                return True
        raise PromptConflictError(f"prompt {prompt_id} kept changing while version {version_id} was deleted")

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _revisions(self, org_id: str, prompt_id: str) -> dict[str, tuple[PromptVersion, int]]:
        """The prompt's versions by id, each with the revision its item had when read."""
        items = await self._query(org_id, f"v#{prompt_id}#")
        return {item["id"]["S"]: (_version_from_item(org_id, item), int(item["rev"]["N"])) for item in items}

    # -- transaction parts

    def _new_version_ops(self, version: PromptVersion, *, envs: Sequence[str]) -> list[dict[str, Any]]:
        """A new version's item, its id's index and its number's claim: all three must be new."""
        pk = {"S": _pk(version.org_id)}
        item = {"pk": pk, "sk": {"S": _version_sk(version.prompt_id, version.id)}, "rev": {"N": "0"}}
        item.update(_version_attributes(version, envs))
        index = {"pk": pk, "sk": {"S": _index_sk(version.id)}, "prompt_id": {"S": version.prompt_id}}
        claim = {
            "pk": pk,
            "sk": {"S": _number_sk(version.prompt_id, version.major_version, version.minor_version)},
            "version_id": {"S": version.id},
        }
        absent = "attribute_not_exists(pk)"
        return [self._put(item, absent), self._put(index, absent), self._put(claim, absent)]

    def _env_item(self, version: PromptVersion, environment: str, envs: Sequence[str]) -> _Item:
        item: _Item = {
            "pk": {"S": _pk(version.org_id)},
            "sk": {"S": _env_sk(version.prompt_id, environment)},
            "environment": {"S": environment},
            "version_id": {"S": version.id},
        }
        item.update(_version_attributes(version, envs))
        return item

    async def _take_environment(
        self,
        org_id: str,
        prompt_id: str,
        environment: str,
        target: PromptVersion,
        revisions: dict[str, tuple[PromptVersion, int]],
    ) -> list[dict[str, Any]]:
        """The writes that point ``environment`` at ``target``: its environment item (a copy of the
        target, conditioned on still pointing where it was read to point), and, when another version
        had it, that version (its revision checked) and the copies its other environments hold."""
        current = await self._get(org_id, _env_sk(prompt_id, environment))
        holder_id = current["version_id"]["S"] if current else None
        put = self._env_item(target, environment, (*target.environments, environment))
        ops: list[dict[str, Any]]
        if holder_id is None:
            ops = [self._put(put, "attribute_not_exists(pk)")]
        else:
            ops = [self._put(put, "version_id = :was", {":was": {"S": holder_id}})]
        if holder_id is not None and holder_id != target.id and holder_id in revisions:
            holder, rev = revisions[holder_id]
            left = tuple(e for e in holder.environments if e != environment)
            ops.append(self._revise(holder, rev, left))
            ops += [self._set_envs(org_id, prompt_id, env, holder.id, left) for env in left]
        return ops

    def _revise(self, version: PromptVersion, rev: int, envs: Sequence[str]) -> dict[str, Any]:
        """A version item's environments replaced, if its revision is still ``rev`` (nobody moved an
        environment to or from it since it was read); the revision goes up by one."""
        names = sorted(set(envs))
        values: dict[str, Any] = {":rev": {"N": str(rev)}, ":next": {"N": str(rev + 1)}}
        if names:
            expression = "SET envs = :envs, rev = :next"
            values[":envs"] = {"SS": names}
        else:
            expression = "SET rev = :next REMOVE envs"
        return {
            "Update": {
                "TableName": self._table,
                "Key": {"pk": {"S": _pk(version.org_id)}, "sk": {"S": _version_sk(version.prompt_id, version.id)}},
                "UpdateExpression": expression,
                "ConditionExpression": "rev = :rev",
                "ExpressionAttributeValues": values,
            }
        }

    def _set_envs(self, org_id: str, prompt_id: str, env: str, version_id: str, envs: Sequence[str]) -> dict[str, Any]:
        """An environment item's copy of its version's environments, if it still points at that version."""
        names = sorted(set(envs))
        values: dict[str, Any] = {":vid": {"S": version_id}}
        if names:
            expression = "SET envs = :envs"
            values[":envs"] = {"SS": names}
        else:
            expression = "REMOVE envs"
        return {
            "Update": {
                "TableName": self._table,
                "Key": {"pk": {"S": _pk(org_id)}, "sk": {"S": _env_sk(prompt_id, env)}},
                "UpdateExpression": expression,
                "ConditionExpression": "version_id = :vid",
                "ExpressionAttributeValues": values,
            }
        }

    def _put(self, item: _Item, condition: str | None = None, values: dict[str, Any] | None = None) -> dict[str, Any]:
        put: dict[str, Any] = {"TableName": self._table, "Item": item}
        if condition is not None:
            put["ConditionExpression"] = condition
        if values:
            put["ExpressionAttributeValues"] = values
        return {"Put": put}

    def _delete(
        self, sk: str, pk: str, condition: str | None = None, values: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        delete: dict[str, Any] = {"TableName": self._table, "Key": {"pk": {"S": pk}, "sk": {"S": sk}}}
        if condition is not None:
            delete["ConditionExpression"] = condition
        if values:
            delete["ExpressionAttributeValues"] = values
        return {"Delete": delete}

    async def _transact(self, ops: list[dict[str, Any]]) -> bool:
        """Run ``ops`` as one transaction; False when a condition failed (or another transaction
        conflicted): the caller reads again and retries, or reports the absence it implies."""
        from botocore.exceptions import ClientError

        if not ops:
            return True
        client = await self._client.get()
        try:
            await client.transact_write_items(TransactItems=ops)
        except ClientError as exc:
            if _condition_failed(exc):
                return False
            raise
        return True
