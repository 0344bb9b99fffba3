"""The consumer against real stores: PostgreSQL or SQLite for rows, S3 (moto) or a directory for bodies."""

from __future__ import annotations

import gzip
import json
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

from heliport.logs.consumer import LogWriter, body_key, build_row, handle_sqs_batch
from heliport.logs.cost import compute_cost
from heliport.logs.stored_bodies import stored_bodies
from heliport.logs.usage import Usage, extract_usage
from heliport.store.blobs import BlobStore
from heliport.store.logdb import LogDb
from tests.logs.records import CHAT_RESPONSE, ORG, chat_record
from tests.mock_provider.fixtures import FIXTURES_DIR

pytestmark = pytest.mark.anyio


async def test_writer_stores_row_with_usage_cost_and_bodies(stores: tuple[LogDb, BlobStore]) -> None:
    logdb, blobs = stores
    record = chat_record()
    assert (await LogWriter(logdb, blobs).write([record])).written == 1

    row = await logdb.get_request(ORG, record.request_id)
    assert row is not None
    assert (row.prompt_tokens, row.completion_tokens, row.total_tokens) == (1200, 300, 1500)
    assert row.prompt_cache_read_tokens == 1024
    assert row.usage_source == "response"
    assert row.model == "gpt-4o-mini-2024-07-18"  # the response's model wins over the request's
    expected = compute_cost(
        model=row.model,
        provider="OPENAI",
        usage=extract_usage(
            provider="OPENAI", path="/v1/chat/completions", response_body=record.response_body, is_stream=False
        ),
        at=record.started_at,
    )
    assert row.cost == expected.amount and isinstance(row.cost, Decimal) and row.cost > 0
    assert row.cost_source is not None and row.cost_source.startswith("genai-prices@")
    assert row.delay_ms == 420.25 and row.time_to_first_token is None  # TTFT is for streams
    assert row.properties == {"environment": "test", "feature": "géographie"}
    assert (row.user_id, row.session_id, row.session_path) == ("user-7", "sess-1", "/trip/plan")
    assert row.request_preview == "What is the capital of France?"
    assert row.response_preview == "Paris is the capital of France."

    assert row.body_key == body_key(ORG, record.request_id)
    stored = json.loads(gzip.decompress(await stored_bodies(row, blobs) or b""))
    assert stored == {"request": record.request_body, "response": record.response_body}


async def test_duplicate_delivery_leaves_one_row(stores: tuple[LogDb, BlobStore]) -> None:
    logdb, blobs = stores
    writer = LogWriter(logdb, blobs)
    record = chat_record()
    assert (await writer.write([record])).written == 1
    assert (await writer.write([record, record])).written == 0
    assert (await logdb.get_request(ORG, record.request_id)) is not None


async def test_streamed_anthropic_usage_and_stream_error_status(tmp_path: Path) -> None:
    stream = (FIXTURES_DIR / "anthropic" / "message_stream.jsonl").read_text()
    events = [json.loads(line) for line in stream.splitlines() if line.strip()]
    sse = "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events)
    record = chat_record(
        provider="ANTHROPIC",
        target_url="https://api.anthropic.com/v1/messages",
        is_stream=True,
        request_model="claude-sonnet-4-5",
        response_body=sse,
    )
    row, _ = build_row(record)
    assert row.usage_source == "stream"
    assert row.prompt_tokens and row.completion_tokens
    assert row.time_to_first_token == 180.5

    failed = chat_record(
        provider="ANTHROPIC",
        target_url="https://api.anthropic.com/v1/messages",
        is_stream=True,
        response_body=sse.split("event: content_block_delta")[0]
        + 'event: error\ndata: {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}\n\n',
    )
    row, _ = build_row(failed)
    assert row.status == 529  # logged from the stream's content, not its HTTP 200
    assert any("overloaded" in e for e in row.errors)


async def test_stream_without_usage_says_so() -> None:
    chunk = {
        "id": "c",
        "object": "chat.completion.chunk",
        "model": "gpt-4o",
        "choices": [{"index": 0, "delta": {"content": "Hi"}}],
    }
    sse = f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n"
    row, _ = build_row(chat_record(is_stream=True, response_body=sse))
    assert row.usage_source == "absent"
    assert row.prompt_tokens is None and row.completion_tokens is None
    assert row.cost is None


async def test_omitted_bodies_are_never_written_but_usage_is_kept(stores: tuple[LogDb, BlobStore]) -> None:
    logdb, blobs = stores
    usage = extract_usage(
        provider="OPENAI", path="/v1/chat/completions", response_body=json.dumps(CHAT_RESPONSE), is_stream=False
    )
    both = chat_record(omit_request=True, omit_response=True, request_body=None, response_body=None, usage=usage)
    only_request = chat_record(omit_request=True, request_body=None)
    await LogWriter(logdb, blobs).write([both, only_request])

    row = await logdb.get_request(ORG, both.request_id)
    assert row is not None and row.body_key is None
    assert row.request_preview is None and row.response_preview is None
    assert row.total_tokens == 1500 and row.cost is not None
    assert await blobs.list(f"organizations/{ORG}/requests/{both.request_id}") == []

    row = await logdb.get_request(ORG, only_request.request_id)
    assert row is not None and row.body_key is not None
    stored = json.loads(gzip.decompress(await stored_bodies(row, blobs) or b""))
    assert stored["request"] is None and stored["response"] == only_request.response_body


async def test_undecodable_messages_become_dead_letters_and_the_rest_is_stored(
    stores: tuple[LogDb, BlobStore],
) -> None:
    logdb, blobs = stores
    good = chat_record()
    event = {
        "Records": [
            {"messageId": "m-1", "body": msgspec.json.encode(good).decode()},
            {"messageId": "m-2", "body": '{"not": "a log record"}'},
            {"messageId": "m-3", "body": "not even json"},
        ]
    }
    # Decoding cannot succeed on a later receive: kept at once, with the reason, and acknowledged.
    result = await handle_sqs_batch(event, LogWriter(logdb, blobs))
    assert result == {"batchItemFailures": []}
    assert await logdb.get_request(ORG, good.request_id) is not None
    letters = await logdb.list_dead_letters()
    assert [letter.record for letter in letters] == [b'{"not": "a log record"}', b"not even json"]
    assert "request_id" in letters[0].error and "malformed" in letters[1].error
    assert all(letter.org_id is None and letter.attempts == 1 for letter in letters)


def test_cache_hit_costs_nothing() -> None:
    row, _ = build_row(chat_record(cache_hit=True, cache_reference_id="ref"))
    assert row.cost == Decimal(0) and row.cost_source == "cache hit"
    assert row.total_tokens == 1500


def test_usage_struct_round_trips_on_the_record() -> None:
    usage = Usage(prompt_tokens=3, completion_tokens=4, total_tokens=7, source="stream")
    record = chat_record(usage=usage)
    decoded = msgspec.json.decode(msgspec.json.encode(record), type=type(record))
    assert decoded.usage == usage
