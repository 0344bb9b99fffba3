"""The dispatcher on its own: matching, the payload, retries and dead letters, over the real SQLite store
and a real receiver on 127.0.0.1 (the only thing outside heliport)."""

from __future__ import annotations

import asyncio
import random
import socket
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest

from heliport.api.database import SqliteQueries
from heliport.config import Settings
from heliport.logs.consumer import build_row
from heliport.logs.record import LogRecord
from heliport.logs.row import RequestRow
from heliport.webhooks import PropertyFilter, Webhook, WebhookConfig
from heliport.webhooks.delivery import BODY_LIMIT, DeliveryLimits, WebhookDispatcher, build_payload, matches
from heliport.webhooks.signing import link_signature, new_hmac_key, sign, verify
from heliport.webhooks.store import QueryWebhookStore
from tests.logs.records import ORG, chat_record
from tests.webhooks.receiver import Receiver

FAST = DeliveryLimits(attempts=3, backoff=0.01, attempt_timeout=5)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as standin:
        yield standin


def _webhook(destination: str, **overrides: Any) -> Webhook:
    fields: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "org_id": ORG,
        "created_at": datetime.now(UTC),
        "destination": destination,
        "version": "v",
        "config": WebhookConfig(),
        "include_data": False,
        "hmac_key": new_hmac_key(),
        "base_url": "http://127.0.0.1:1",
    }
    return Webhook(**(fields | overrides))


def _stored(**overrides: Any) -> tuple[LogRecord, RequestRow]:
    record = chat_record(**overrides)
    row, _ = build_row(record)
    return record, row


async def _dispatch(
    tmp_path: Path, hooks: list[Webhook], stored: list[tuple[LogRecord, RequestRow]], **kwargs: Any
) -> tuple[WebhookDispatcher, QueryWebhookStore]:
    store = QueryWebhookStore(SqliteQueries(tmp_path / "logs.sqlite3"))
    for hook in hooks:
        await store.create(hook)
    settings = kwargs.pop("settings", Settings(data_dir=tmp_path))
    dispatcher = WebhookDispatcher(settings, store, limits=kwargs.pop("limits", FAST), **kwargs)
    dispatcher.submit(stored)
    await dispatcher.settle()
    await dispatcher.aclose()
    return dispatcher, store


def test_signing_is_hmac_sha256_hex_of_the_exact_bytes() -> None:
    key = new_hmac_key()
    assert len(key) == 64 and key != new_hmac_key()
    body = b'{"request_id":"a"}'
    signature = sign(key, body)
    assert signature == signature.lower() and len(signature) == 64
    assert verify(key, body, signature) and verify(key, body, signature.upper())
    assert not verify(key, body + b" ", signature) and not verify(new_hmac_key(), body, signature)
    assert link_signature(key, "o", "w", "r", 1) != link_signature(key, "o", "w", "r", 2)


def test_the_payload_has_helicones_fields_and_notes_long_bodies() -> None:
    hook = _webhook("https://hooks.example.com", include_data=True)
    long_request = msgspec.json.encode(
        {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "y" * BODY_LIMIT}]}
    )
    record, row = _stored(request_body=long_request.decode())
    body = msgspec.json.decode(build_payload(hook, record, row))
    assert body["request_id"] == row.request_id and body["user_id"] == "user-7"
    assert body["response_body"] == record.response_body
    assert body["request_body"].startswith(f"[request_body omitted: {len(long_request)} bytes")
    assert body["provider"] == "OPENAI" and body["model"] == row.model
    assert body["metadata"] == {
        "cost": float(row.cost) if row.cost is not None else None,
        "promptTokens": 1200,
        "completionTokens": 300,
        "totalTokens": 1500,
        "latencyMs": 420.25,
    }
    assert body["request_response_url"].startswith(f"http://127.0.0.1:1/v1/webhooks/{hook.id}/bodies/{row.request_id}?")
    # A body of exactly the limit is sent whole; an omitted one is null.
    record, row = _stored(request_body="z" * BODY_LIMIT, omit_response=True, user_id=None)
    body = msgspec.json.decode(build_payload(_webhook("https://h.example"), record, row))
    assert body == {"request_id": row.request_id, "request_body": "z" * BODY_LIMIT, "response_body": None}


def test_matching_takes_every_filter_and_the_sample_rate() -> None:
    _, row = _stored(properties={"team": "search", "tier": "gold"})
    rng = random.Random(7)
    filters = (PropertyFilter("Team", "search"), PropertyFilter("tier", "gold"))
    assert matches(_webhook("x", config=WebhookConfig(property_filters=filters)), row, rng)
    wrong = (PropertyFilter("team", "search"), PropertyFilter("tier", "silver"))
    assert not matches(_webhook("x", config=WebhookConfig(property_filters=wrong)), row, rng)
    assert not matches(_webhook("x", config=WebhookConfig(sample_rate=0)), row, rng)
    half = _webhook("x", config=WebhookConfig(sample_rate=25))
    sampled = sum(matches(half, row, rng) for _ in range(4000))
    assert 800 < sampled < 1200


def test_retries_then_a_dead_letter_with_the_body(tmp_path: Path, receiver: Receiver) -> None:
    receiver.script("/down", [500])
    receiver.script("/busy", [429, 200])
    settings = Settings(data_dir=tmp_path, trusted_origins=frozenset({receiver.url}))
    down, busy = _webhook(f"{receiver.url}/down"), _webhook(f"{receiver.url}/busy")
    stored = [_stored()]

    async def run() -> None:
        _, store = await _dispatch(tmp_path, [down, busy], stored, settings=settings)
        assert len(receiver.received("/down")) == FAST.attempts
        assert [d.status for d in receiver.received("/busy")] == [429, 200]
        hooks = {h.id: h for h in await store.list(ORG)}
        assert hooks[down.id].log.failed == 1 and hooks[down.id].log.delivered == 0
        assert hooks[busy.id].log.delivered == 1 and hooks[busy.id].log.last_status == 200
        [letter] = await store.list_dead_letters(ORG, down.id)
        assert letter.attempts == FAST.attempts and letter.status == 500
        assert letter.payload == receiver.received("/down")[0].raw
        assert verify(down.hmac_key, letter.payload, receiver.received("/down")[0].headers["helicone-signature"])
        await store.aclose()

    asyncio.run(run())


def test_connection_errors_are_retried(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port with nothing listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    origin = f"http://127.0.0.1:{port}"
    hook = _webhook(f"{origin}/x")

    async def run() -> None:
        settings = Settings(data_dir=tmp_path, trusted_origins=frozenset({origin}))
        dispatcher, store = await _dispatch(tmp_path, [hook], [_stored()], settings=settings)
        [outcome] = dispatcher.outcomes
        assert not outcome.delivered and outcome.attempts == FAST.attempts and outcome.status is None
        assert len(await store.list_dead_letters(ORG, hook.id)) == 1
        await store.aclose()

    asyncio.run(run())


def test_a_destination_that_is_not_trusted_is_refused_without_a_connection(tmp_path: Path, receiver: Receiver) -> None:
    hook = _webhook(f"{receiver.url}/private")  # loopback, and not a trusted origin here

    async def run() -> None:
        dispatcher, store = await _dispatch(tmp_path, [hook], [_stored()])
        [outcome] = dispatcher.outcomes
        assert not outcome.delivered and outcome.attempts == 0 and "destination" in (outcome.error or "")
        [letter] = await store.list_dead_letters(ORG, hook.id)
        assert "destination" in letter.error
        await store.aclose()

    asyncio.run(run())
    assert receiver.received() == []


def test_past_the_waiting_bound_deliveries_become_dead_letters_at_once(tmp_path: Path, receiver: Receiver) -> None:
    settings = Settings(data_dir=tmp_path, trusted_origins=frozenset({receiver.url}))
    hook = _webhook(f"{receiver.url}/slow")
    limits = DeliveryLimits(attempts=1, attempt_timeout=5, concurrency=1, max_pending=2)

    async def run() -> None:
        dispatcher, store = await _dispatch(
            tmp_path, [hook], [_stored() for _ in range(5)], settings=settings, limits=limits
        )
        delivered = [o for o in dispatcher.outcomes if o.delivered]
        skipped = [o for o in dispatcher.outcomes if not o.delivered]
        assert len(delivered) == 2 and len(skipped) == 3
        assert all("skipped" in (o.error or "") for o in skipped)
        assert len(await store.list_dead_letters(ORG, hook.id)) == 3
        await store.aclose()

    asyncio.run(run())
    assert len(receiver.received("/slow")) == 2


def test_other_organisations_requests_are_not_delivered(tmp_path: Path, receiver: Receiver) -> None:
    settings = Settings(data_dir=tmp_path, trusted_origins=frozenset({receiver.url}))
    hook = _webhook(f"{receiver.url}/mine")
    theirs = _stored(org_id=str(uuid.uuid4()))
    mine = _stored()

    async def run() -> None:
        _, store = await _dispatch(tmp_path, [hook], [theirs, mine], settings=settings)
        await store.aclose()

    asyncio.run(run())
    assert [d.body["request_id"] for d in receiver.received("/mine")] == [mine[1].request_id]


def test_stopping_interrupts_slow_deliveries_into_dead_letters(tmp_path: Path, receiver: Receiver) -> None:
    receiver.script("/hang", [200], delay=5.0)
    settings = Settings(data_dir=tmp_path, trusted_origins=frozenset({receiver.url}))
    hook = _webhook(f"{receiver.url}/hang")

    async def run() -> None:
        store = QueryWebhookStore(SqliteQueries(tmp_path / "logs.sqlite3"))
        await store.create(hook)
        dispatcher = WebhookDispatcher(settings, store, limits=FAST)
        dispatcher.submit([_stored()])
        started = asyncio.get_running_loop().time()
        await dispatcher.settle(grace=0.5)
        assert asyncio.get_running_loop().time() - started < 2.0
        [letter] = await store.list_dead_letters(ORG, hook.id)
        assert letter.error.startswith("interrupted")
        await dispatcher.aclose()
        await store.aclose()

    asyncio.run(run())
