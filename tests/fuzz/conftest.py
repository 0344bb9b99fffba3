"""The fuzzed heliport: every route family served by one process, as ``heliport serve`` runs it.

* Upstream is :class:`RefusingProvider`, which answers every request with a 400 in the provider's
  own error shape (OpenAI's, Anthropic's, Bedrock's) without reading what it was sent, and closes
  every WebSocket. So any 5xx a case sees is heliport's own, never a provider's reaction to junk
  (the shared mock provider parses bodies and answers a deeply nested one with its own 500).
* The whole local log pipeline runs (SQLite queue, consumer, log database): async-log records go
  through the same encoding as in production, and the query API reads what the consumer wrote.
* The AI gateway has an account for every provider, all pointing at the refusing upstream.
* ``Settings.max_request_bytes`` is :data:`corpus.REQUEST_CAP` (1 MiB instead of 32 MiB), so the
  over-cap cases stay fast.
* The query and dashboard API run over SQLite and over PostgreSQL (``api_heliport``), each with
  stored requests to read (written by the log database adapter, not the consumer): one with a
  session, a user and a property, and one whose stored response body is JSON nested 1,000 deep;
  and a dataset holding the first (made through the API), for the dataset routes' cases.
"""

from __future__ import annotations

import asyncio
import gzip
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import msgspec
import pytest

from heliport.logs.consumer import body_key
from heliport.logs.row import RequestRow
from heliport.store.blobs import LocalBlobStore
from heliport.store.logdb_postgres import PostgresLogDb
from heliport.store.logdb_sqlite import SqliteLogDb
from tests.fuzz import corpus
from tests.harness import Gateway, ServerThread, start_gateway
from tests.logs.records import chat_row
from tests.postgres import throwaway_database_sync

PROVIDERS = ("openai", "anthropic", "google", "x", "groq", "deepseek", "mistral", "openrouter", "azure", "bedrock")
PROVIDER_ENV = {
    "OPENAI_API_KEY": "sk-openai-fuzz",
    "ANTHROPIC_API_KEY": "sk-ant-fuzz",
    "GEMINI_API_KEY": "gemini-fuzz",
    "XAI_API_KEY": "xai-fuzz",
    "GROQ_API_KEY": "gsk-fuzz",
    "DEEPSEEK_API_KEY": "sk-deepseek-fuzz",
    "MISTRAL_API_KEY": "mistral-fuzz",
    "OPENROUTER_API_KEY": "sk-or-fuzz",
    "AZURE_OPENAI_API_KEY": "azure-fuzz",
    "AZURE_OPENAI_ENDPOINT": "https://unused.openai.azure.com",
    "AZURE_OPENAI_DEPLOYMENTS": "eu-frankfurt",
    "HELIPORT_BEDROCK_REGION": "us-east-1",
}


class RefusingProvider:
    """An upstream that refuses everything in the provider's error shape, without parsing anything."""

    def __init__(self) -> None:
        self.requests = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] == "websocket":
            await receive()
            await send({"type": "websocket.close", "code": 1008})
            return
        while True:
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body"):
                break
        self.requests += 1
        path: str = scope["path"]
        if path.endswith("/messages"):
            body: Any = {"type": "error", "error": {"type": "invalid_request_error", "message": "refused (fuzz)"}}
        elif path.startswith("/model/"):
            body = {"message": "refused (fuzz)"}
        else:
            body = {
                "error": {"message": "refused (fuzz)", "type": "invalid_request_error", "param": None, "code": None}
            }
        data = msgspec.json.encode(body)
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
        await send({"type": "http.response.start", "status": 400, "headers": headers})
        await send({"type": "http.response.body", "body": data})


@dataclass
class Fuzzed:
    """A running heliport and what the cases need to know about it."""

    gateway: Gateway
    #: A stored request with a session, user and property.
    request_id: str
    #: A stored request whose response body is JSON nested 1,000 deep.
    deep_request_id: str
    #: The signed body URL (path and query) of the deep request.
    deep_body_url: str
    #: A stored dataset holding the first request.
    dataset_id: str
    database: str
    upstream: str

    @property
    def url(self) -> str:
        return self.gateway.url

    @property
    def key(self) -> str:
        return self.gateway.key

    def markers(self) -> dict[bytes, bytes]:
        """What the corpus's markers stand for in this heliport."""
        return {
            corpus.KEY.encode(): self.key.encode(),
            corpus.RID.encode(): self.request_id.encode(),
            corpus.DEEP.encode(): self.deep_request_id.encode(),
            corpus.DEEP_URL.encode(): self.deep_body_url.encode(),
            corpus.UPSTREAM.encode(): self.upstream.encode(),
            corpus.DATASET.encode(): self.dataset_id.encode(),
        }


@pytest.fixture(scope="session")
def refusing_provider() -> Iterator[str]:
    server = ServerThread(RefusingProvider()).start()
    yield server.url
    server.stop()


def _start(data_dir: Path, upstream: str, database_url: str | None) -> Gateway:
    return start_gateway(
        data_dir,
        upstream,
        pipeline=True,
        provider_env=PROVIDER_ENV,
        upstream_overrides={"oai": upstream, **{p: upstream for p in PROVIDERS}},
        max_request_bytes=corpus.REQUEST_CAP,
        database_url=database_url,
        # Fallback targets may name the upstream (an exact origin heliport trusts).
        trusted_origins=frozenset({upstream}),
    )


def _seed(gw: Gateway, data_dir: Path, database_url: str | None, upstream: str) -> Fuzzed:
    """Two stored requests for the query API to read, written by the log database's own adapter (so
    the API cases do not depend on the consumer): one with a session, a user, a property and
    bodies; one whose stored response body is JSON nested 1,000 deep."""
    now = datetime.now(UTC)
    ids = [str(uuid.uuid4()), str(uuid.uuid4())]

    def row(request_id: str) -> RequestRow:
        return chat_row(
            gw.org_id,
            request_id=request_id,
            key_id="fuzz",
            created_at=now,
            response_created_at=now,
            user_id="fuzz-user",
            properties={"env": "fuzz"},
            session_id="fuzz-session",
            session_path="/a",
            session_name="fuzz",
            delay_ms=100.0,
            prompt_tokens=1,
            completion_tokens=1,
            total_tokens=2,
            cost=Decimal("0.001"),
            body_key=body_key(gw.org_id, request_id),
        )

    bodies = {
        ids[0]: {"request": '{"model":"gpt-4o-mini"}', "response": '{"choices":[]}'},
        ids[1]: {"request": '{"model":"gpt-4o-mini"}', "response": "[" * 1000 + "]" * 1000},
    }

    async def store() -> None:
        db = PostgresLogDb(database_url, max_size=1) if database_url else SqliteLogDb(data_dir / "logs.sqlite3")
        try:
            await db.migrate()
            assert await db.insert_requests([row(i) for i in ids]) == len(ids)
        finally:
            await db.aclose()
        blobs = LocalBlobStore(data_dir / "blobs")
        for request_id, pair in bodies.items():
            data = gzip.compress(msgspec.json.encode(pair))
            await blobs.put(body_key(gw.org_id, request_id), data, content_encoding="gzip")

    asyncio.run(store())
    with httpx.Client(base_url=gw.url, headers={"Authorization": f"Bearer {gw.key}"}, timeout=30) as client:
        listed = client.post("/v1/request/query-ids", json={"requestIds": [ids[1]]})
        assert listed.status_code == 200, listed.text
        signed = urlsplit(listed.json()["data"][0]["signed_body_url"])
        dataset = client.post("/v1/helicone-dataset", json={"name": "fuzz", "requestIds": [ids[0]]})
        assert dataset.status_code == 200, dataset.text
    return Fuzzed(
        gw,
        ids[0],
        ids[1],
        f"{signed.path}?{signed.query}",
        dataset.json()["data"]["datasetId"],
        "postgres" if database_url else "sqlite",
        upstream,
    )


@pytest.fixture(scope="session")
def fuzzed(refusing_provider: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    """heliport over SQLite: every family's cases run against it."""
    with pytest.MonkeyPatch.context() as env:
        # Bedrock requests are signed with the process's own credentials; these are what botocore finds.
        # heliport finds them once per process (gateway.adapters.bedrock_credentials), so they are the
        # same ones the gateway tests set and check: whichever suite signs first fixes them for both.
        env.setenv("AWS_ACCESS_KEY_ID", "AKIDGATEWAYTEST")
        env.setenv("AWS_SECRET_ACCESS_KEY", "gateway-test-secret")
        env.delenv("AWS_SESSION_TOKEN", raising=False)
        data_dir = tmp_path_factory.mktemp("fuzz-sqlite")
        gw = _start(data_dir, refusing_provider, None)
        try:
            yield _seed(gw, data_dir, None, refusing_provider)
        finally:
            gw.stop()


@pytest.fixture(scope="session")
def fuzzed_postgres(refusing_provider: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    """heliport whose log database is PostgreSQL: the query and dashboard API's cases run here too."""
    with throwaway_database_sync() as dsn:
        data_dir = tmp_path_factory.mktemp("fuzz-postgres")
        gw = _start(data_dir, refusing_provider, dsn)
        try:
            yield _seed(gw, data_dir, dsn, refusing_provider)
        finally:
            gw.stop()


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def api_heliport(request: pytest.FixtureRequest) -> Fuzzed:
    fixture = "fuzzed" if request.param == "sqlite" else "fuzzed_postgres"
    value: Fuzzed = request.getfixturevalue(fixture)
    return value
