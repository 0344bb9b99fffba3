"""Requests logged in parts: the LogWriter's upsert keeps the highest part, whatever the delivery order.

Also the pure helpers of the relay: audio redaction, usage summing, upstream resolution.
"""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from heliport.config import Settings
from heliport.logs.consumer import LogWriter
from heliport.logs.record import LogRecord
from heliport.logs.row import RequestRow
from heliport.logs.stored_bodies import stored_bodies
from heliport.realtime import RealtimeQueryError, redact_audio, resolve_upstream, sum_usage
from heliport.store.blobs import LocalBlobStore
from heliport.store.logdb import LogDb
from heliport.store.logdb_postgres import PostgresLogDb
from heliport.store.logdb_sqlite import SqliteLogDb
from tests.mock_provider.realtime import USAGE
from tests.postgres import throwaway_database

pytestmark = pytest.mark.anyio

ORG = "org-realtime"


@pytest.fixture(params=["sqlite", "postgres"])
async def logdb(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[LogDb]:
    if request.param == "sqlite":
        db: LogDb = SqliteLogDb(tmp_path / "logs.sqlite3")
        await db.migrate()
        yield db
        await db.aclose()
    else:
        async with throwaway_database() as dsn:
            db = PostgresLogDb(dsn)
            await db.migrate()
            await db.ensure_partitions(datetime.now(UTC))
            yield db
            await db.aclose()


def part(request_id: str, started: datetime, number: int, events: int, **fields: object) -> LogRecord:
    body = {"model": "gpt-realtime", "events": [{"type": f"e{i}", "from": "client"} for i in range(events)]}
    return LogRecord(
        request_id=request_id,
        org_id=ORG,
        key_id="key-1",
        started_at=started,
        duration_ms=1000.0 * number,
        method="GET",
        path="/v1/gateway/oai/realtime",
        provider="OPENAI",
        target_url="wss://api.openai.com/v1/realtime?model=gpt-realtime",
        status=200,
        is_stream=True,
        request_model="gpt-realtime",
        request_body=json.dumps(body),
        response_body="{}",
        part=number,
        **fields,  # type: ignore[arg-type]  # LogRecord fields chosen by the test
    )


async def events_of(blobs: LocalBlobStore, row: RequestRow) -> int:
    assert row.body_key is not None
    blob = await stored_bodies(row, blobs)
    assert blob is not None
    return len(json.loads(json.loads(gzip.decompress(blob))["request"])["events"])


async def test_a_later_part_wins_even_when_an_earlier_one_is_redelivered_after_it(logdb: LogDb, tmp_path: Path) -> None:
    blobs = LocalBlobStore(tmp_path / "blobs")
    writer = LogWriter(logdb, blobs)
    request_id, started = str(uuid.uuid4()), datetime.now(UTC)

    assert (await writer.write([part(request_id, started, 1, 2)])).written == 1
    assert (await writer.write([part(request_id, started, 3, 6, properties={"a": "1"})])).written == 1
    assert (await writer.write([part(request_id, started, 2, 4)])).written == 0  # late redelivery: ignored
    assert (
        await writer.write([part(request_id, started, 3, 6, properties={"a": "1"})])
    ).written == 1  # same part: rewritten
    # A batch holding several parts of one session stores only the highest.
    assert (await writer.write([part(request_id, started, 5, 10), part(request_id, started, 4, 8)])).written == 1

    row = await logdb.get_request(ORG, request_id)
    assert row is not None
    assert row.delay_ms == 5000.0 and await events_of(blobs, row) == 10
    assert row.properties == {"a": "1"}  # merged: what an earlier part or the API added stays


async def test_normal_records_are_still_inserted_once_beside_parts(logdb: LogDb, tmp_path: Path) -> None:
    writer = LogWriter(logdb, LocalBlobStore(tmp_path / "blobs"))
    started = datetime.now(UTC)
    normal = part(str(uuid.uuid4()), started, 1, 1)
    normal = LogRecord(**{**{f: getattr(normal, f) for f in normal.__struct_fields__}, "part": None})
    live = part(str(uuid.uuid4()), started, 1, 1)
    assert (await writer.write([normal, live])).written == 2
    assert (await writer.write([normal])).written == 0


def test_audio_payloads_become_byte_lengths_and_transcripts_stay() -> None:
    audio = "AAAA" * 10  # 30 bytes
    assert redact_audio({"type": "input_audio_buffer.append", "audio": audio}) == {
        "type": "input_audio_buffer.append",
        "audio": {"bytes": 30},
    }
    assert redact_audio({"type": "response.output_audio.delta", "delta": audio})["delta"] == {"bytes": 30}
    assert redact_audio({"type": "response.audio.delta", "delta": audio})["delta"] == {"bytes": 30}
    assert redact_audio({"type": "response.output_audio_transcript.delta", "delta": "hi"})["delta"] == "hi"
    item = {"type": "conversation.item.create", "item": {"content": [{"type": "input_audio", "audio": audio}]}}
    assert redact_audio(item)["item"]["content"][0]["audio"] == {"bytes": 30}


def test_usage_is_summed_over_response_done_events() -> None:
    done = {"type": "response.done", "response": {"usage": USAGE}}
    usage = sum_usage([done, done], "gpt-realtime")
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (40, 60, 100)
    assert (usage.prompt_audio_tokens, usage.completion_audio_tokens, usage.prompt_cache_read_tokens) == (10, 40, 0)
    assert usage.source == "stream" and usage.response_model == "gpt-realtime"
    assert sum_usage([], None).source == "absent"


def test_upstream_urls_and_headers() -> None:
    settings = Settings()
    forward = [("authorization", "Bearer sk-x"), ("sec-websocket-key", "k"), ("cookie", "c"), ("user-agent", "ua")]
    openai = resolve_upstream(settings, b"model=gpt-realtime", forward, ["realtime", "helicone-auth.sk-heliport-1"])
    assert openai.url == "wss://api.openai.com/v1/realtime?model=gpt-realtime"
    assert openai.headers == [("authorization", "Bearer sk-x"), ("user-agent", "ua")]
    assert openai.subprotocols == ["realtime"]
    azure = resolve_upstream(settings, b"resource=Contoso&deployment=rt", forward, [])
    assert azure.url == "wss://contoso.openai.azure.com/openai/realtime?api-version=2024-10-01-preview&deployment=rt"
    assert ("api-key", "sk-x") in azure.headers and all(n != "authorization" for n, _ in azure.headers)
    for query, name in (
        (b"resource=evil.com%2Fx&deployment=rt", "resource"),
        (b"resource=a&deployment=", "deployment"),
    ):
        with pytest.raises(RealtimeQueryError) as refused:
            resolve_upstream(settings, query, forward, [])
        assert refused.value.param == name and refused.value.status == 400
