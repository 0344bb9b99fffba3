"""The realtime relay end to end: real clients, heliport on loopback, the mock upstream, the SQLite log.

Clients are the official ``openai`` SDK's realtime client and plain ``websockets`` (for what the SDK
does not do: Azure's query form, raw frame ordering, close codes, subprotocol auth).
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import sqlite3
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from openai import AsyncOpenAI
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from heliport.logs.row import RequestRow
from heliport.logs.stored_bodies import stored_bodies
from heliport.store.blobs import LocalBlobStore
from heliport.store.logdb_sqlite import SqliteLogDb
from tests.harness import Gateway, start_gateway, wait_for
from tests.mock_provider.realtime import AUDIO_BYTES, RealtimeMock, UpstreamConnection

Events = list[dict[str, Any]]


def ws_base(gw: Gateway) -> str:
    return gw.url.replace("http://", "ws://") + "/v1/gateway/oai"


def stored(
    gw: Gateway, request_id: str, until: Callable[[RequestRow, Events], bool], timeout: float = 10
) -> tuple[RequestRow, Events]:
    """The session's row and logged events, once ``until`` holds for them."""
    data_dir: Path = gw.extra["data_dir"]

    async def poll() -> tuple[RequestRow, Events]:
        db = SqliteLogDb(data_dir / "logs.sqlite3")
        blobs = LocalBlobStore(data_dir / "blobs")
        deadline = time.monotonic() + timeout
        last: tuple[RequestRow, Events] | None = None
        try:
            while time.monotonic() < deadline:
                row = await db.get_request(gw.org_id, request_id)
                if row is not None and row.body_key is not None:
                    blob = await stored_bodies(row, blobs)
                    if blob is not None:
                        events = json.loads(json.loads(gzip.decompress(blob))["request"])["events"]
                        last = (row, events)
                        if until(row, events):
                            return last
                await asyncio.sleep(0.05)
        finally:
            await db.aclose()
        raise AssertionError(f"row for {request_id} never matched; last seen: {last}")

    return asyncio.run(poll())


def upstream_for(mock: RealtimeMock, marker: str, timeout: float = 5) -> UpstreamConnection:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for conn in mock.connections:
            if marker in conn.path or conn.headers.get("x-test-marker") == marker:
                return conn
        time.sleep(0.01)
    raise AssertionError(f"no upstream connection for {marker}")


def parts_of(gw: Gateway, request_id: str) -> int:
    with sqlite3.connect(gw.extra["data_dir"] / "logs.sqlite3") as conn:
        found = conn.execute("SELECT part FROM request_parts WHERE request_id = ?", (request_id,)).fetchone()
    return int(found[0]) if found else 0


def has_done(_row: RequestRow, events: Events) -> bool:
    return any(e["type"] == "response.done" for e in events)


async def until_done(ws: ClientConnection) -> list[dict[str, Any]]:
    events = []
    while True:
        event = json.loads(await asyncio.wait_for(ws.recv(), 5))
        events.append(event)
        if event["type"] == "response.done":
            return events


def test_openai_sdk_session_is_relayed_and_logged_with_events_tokens_and_cost(
    relay: Gateway, realtime_mock: RealtimeMock
) -> None:
    request_id = str(uuid.uuid4())

    async def session() -> tuple[list[str], str, Any]:
        client = AsyncOpenAI(api_key="sk-provider-secret", base_url=relay.oai_base, websocket_base_url=ws_base(relay))
        headers = {
            "Helicone-Auth": f"Bearer {relay.key}",
            "Helicone-Request-Id": request_id,
            "Helicone-User-Id": "alice",
            "Helicone-Session-Id": "call-1",
            "Helicone-Property-Channel": "voice",
            "X-Test-Marker": request_id,
        }
        kinds: list[str] = []
        text = ""
        async with client.realtime.connect(model="gpt-realtime", extra_headers=headers, max_retries=0) as conn:
            await conn.session.update(session={"type": "realtime", "instructions": "Be brief."})
            await conn.response.create()
            async for event in conn:
                kinds.append(event.type)
                if event.type == "response.output_text.delta":
                    text += event.delta
                if event.type == "response.done":
                    return kinds, text, event.response.usage
        raise AssertionError("no response.done")

    kinds, text, usage = asyncio.run(session())
    assert kinds[0] == "session.created" and "session.updated" in kinds and "response.output_audio.delta" in kinds
    assert text == "Hello" and usage is not None and usage.total_tokens == 50

    upstream = upstream_for(realtime_mock, request_id)
    assert upstream.path == "/v1/realtime?model=gpt-realtime"
    assert upstream.headers["authorization"] == "Bearer sk-provider-secret"
    assert not [h for h in upstream.headers if h.startswith("helicone-")]
    assert relay.key not in json.dumps(upstream.headers)

    row, events = stored(relay, request_id, has_done)
    assert (row.status, row.provider, row.model, row.path) == (
        200,
        "OPENAI",
        "gpt-realtime",
        "/v1/gateway/oai/realtime",
    )
    assert (row.prompt_tokens, row.completion_tokens, row.total_tokens) == (20, 30, 50)
    assert (row.prompt_audio_tokens, row.completion_audio_tokens) == (5, 20)
    assert row.cost is not None and row.cost > 0
    assert (row.user_id, row.session_id, row.properties) == ("alice", "call-1", {"channel": "voice"})
    assert row.is_stream and row.delay_ms is not None and row.delay_ms > 0
    # The SDK sends at once; heliport has accepted the frames before the upstream said hello.
    assert [e["type"] for e in events if e["from"] == "client"] == ["session.update", "response.create"]
    assert next(e["type"] for e in events if e["from"] == "target") == "session.created"
    assert {"type", "from", "timestamp", "content"} <= set(events[0])
    audio = next(e for e in events if e["type"] == "response.output_audio.delta")
    assert audio["content"]["delta"] == {"bytes": AUDIO_BYTES}
    transcript = next(e for e in events if e["type"] == "response.output_audio_transcript.delta")
    assert transcript["content"]["delta"] == "Hello"


def test_azure_resource_and_deployment_reach_the_azure_realtime_url_with_api_key(
    relay: Gateway, realtime_mock: RealtimeMock
) -> None:
    request_id = str(uuid.uuid4())

    async def session() -> None:
        async with connect(
            f"{ws_base(relay)}/realtime?resource=my-resource&deployment=gpt-rt-{request_id[:8]}",
            additional_headers={
                "Authorization": "Bearer azure-secret",
                "Helicone-Auth": f"Bearer {relay.key}",
                "Helicone-Request-Id": request_id,
            },
        ) as ws:
            await ws.send(json.dumps({"type": "response.create"}))
            await until_done(ws)

    asyncio.run(session())
    upstream = upstream_for(realtime_mock, f"gpt-rt-{request_id[:8]}")
    assert upstream.path == f"/openai/realtime?api-version=2024-10-01-preview&deployment=gpt-rt-{request_id[:8]}"
    assert upstream.headers["api-key"] == "azure-secret" and "authorization" not in upstream.headers
    row, _ = stored(relay, request_id, has_done)
    assert row.provider == "AZURE" and row.total_tokens == 50


def test_frames_sent_before_the_upstream_opens_arrive_in_order(relay: Gateway, realtime_mock: RealtimeMock) -> None:
    request_id = str(uuid.uuid4())
    audio = base64.b64encode(bytes(1000)).decode()
    frames: list[str | bytes] = [
        json.dumps({"type": "session.update", "session": {"type": "realtime"}}),
        b"\x00\x01binary",
        json.dumps({"type": "input_audio_buffer.append", "audio": audio}),
        "not json at all",
        json.dumps({"type": "response.create"}),
    ]

    async def session() -> list[str | bytes]:
        async with connect(
            f"{ws_base(relay)}/realtime?model=gpt-realtime&mock_delay=0.5&marker={request_id}",
            additional_headers={"Helicone-Auth": f"Bearer {relay.key}", "Helicone-Request-Id": request_id},
        ) as ws:
            for frame in frames:  # all sent while heliport is still waiting on the upstream's handshake
                await ws.send(frame)
            received = []
            while True:
                frame = await asyncio.wait_for(ws.recv(), 5)
                received.append(frame)
                if isinstance(frame, str) and json.loads(frame)["type"] == "response.done":
                    return received

    received = asyncio.run(session())
    upstream = upstream_for(realtime_mock, request_id)
    assert upstream.received == frames
    assert b"\x00\x01binary" in received  # the mock echoes binary frames: binary stays binary both ways
    _, events = stored(relay, request_id, has_done)
    client_events = [e for e in events if e["from"] == "client"]
    assert [e["type"] for e in client_events] == [
        "session.update",
        "binary",
        "input_audio_buffer.append",
        "text",
        "response.create",
    ]
    assert client_events[1]["content"] == {"bytes": len(b"\x00\x01binary")}
    assert client_events[2]["content"]["audio"] == {"bytes": 1000}


def test_audio_is_kept_when_the_caller_opts_in(relay: Gateway) -> None:
    request_id = str(uuid.uuid4())
    audio = base64.b64encode(bytes(30)).decode()

    async def session() -> None:
        async with connect(
            f"{ws_base(relay)}/realtime?model=gpt-realtime",
            additional_headers={
                "Helicone-Auth": f"Bearer {relay.key}",
                "Helicone-Request-Id": request_id,
                "Helicone-Realtime-Log-Audio": "true",
            },
        ) as ws:
            await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": audio}))
            await ws.send(json.dumps({"type": "response.create"}))
            await until_done(ws)

    asyncio.run(session())
    _, events = stored(relay, request_id, has_done)
    assert next(e for e in events if e["type"] == "input_audio_buffer.append")["content"]["audio"] == audio
    assert isinstance(next(e for e in events if e["type"] == "response.output_audio.delta")["content"]["delta"], str)


def test_upstream_close_reaches_the_client_with_its_code(relay: Gateway) -> None:
    async def session() -> tuple[int, str]:
        async with connect(
            f"{ws_base(relay)}/realtime?model=gpt-realtime", additional_headers={"Helicone-Auth": f"Bearer {relay.key}"}
        ) as ws:
            await ws.recv()  # session.created
            await ws.send(json.dumps({"type": "mock.close", "code": 4001, "reason": "bye"}))
            await ws.wait_closed()
            assert ws.close_code is not None and ws.close_reason is not None
            return ws.close_code, ws.close_reason

    assert asyncio.run(session()) == (4001, "bye")


def test_client_close_reaches_the_upstream_with_its_code(relay: Gateway, realtime_mock: RealtimeMock) -> None:
    marker = uuid.uuid4().hex

    async def session() -> None:
        async with connect(
            f"{ws_base(relay)}/realtime?model=gpt-realtime&marker={marker}",
            additional_headers={"Helicone-Auth": f"Bearer {relay.key}"},
        ) as ws:
            await ws.recv()
            await ws.close(4002, "done here")

    asyncio.run(session())
    upstream = upstream_for(realtime_mock, marker)
    deadline = time.monotonic() + 5
    while upstream.close_code is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert upstream.close_code == 4002


@pytest.mark.parametrize("key", ["sk-heliport-not-a-real-key", None])
def test_bad_or_missing_heliport_key_is_refused_with_401_before_the_upgrade(
    relay: Gateway, realtime_mock: RealtimeMock, key: str | None
) -> None:
    marker = uuid.uuid4().hex
    headers = {"Authorization": "Bearer sk-provider-secret", **({"Helicone-Auth": f"Bearer {key}"} if key else {})}

    async def attempt() -> InvalidStatus:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(f"{ws_base(relay)}/realtime?model=x&marker={marker}", additional_headers=headers):
                pass
        return refused.value

    refused = asyncio.run(attempt())
    assert refused.response.status_code == 401
    assert json.loads(refused.response.body)["error"]["code"] == "invalid_api_key"
    assert not [c for c in realtime_mock.connections if marker in c.path]  # the upstream was never called


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("resource=bad_name!&deployment=gpt-rt", "resource"),
        ("resource=my-resource", "deployment"),
        ("deployment=gpt-rt", "resource"),
        ("resource=my-resource&deployment=gpt-rt&api-version=x%20y", "api-version"),
        (f"resource={'a' * 64}&deployment=gpt-rt", "resource"),
    ],
)
def test_malformed_azure_query_is_refused_with_400_naming_the_field(relay: Gateway, query: str, field: str) -> None:
    async def attempt() -> InvalidStatus:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(
                f"{ws_base(relay)}/realtime?{query}", additional_headers={"Helicone-Auth": f"Bearer {relay.key}"}
            ):
                pass
        return refused.value

    refused = asyncio.run(attempt())
    assert refused.response.status_code == 400
    error = json.loads(refused.response.body)["error"]
    assert error["param"] == field and repr(field) in error["message"]


def test_unknown_websocket_path_is_refused_with_404(relay: Gateway) -> None:
    async def attempt() -> int:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(relay.url.replace("http", "ws") + "/v1/gateway/oai/elsewhere"):
                pass
        return refused.value.response.status_code

    assert asyncio.run(attempt()) == 404


def test_heliport_key_in_a_subprotocol_works_and_is_not_forwarded(relay: Gateway, realtime_mock: RealtimeMock) -> None:
    request_id = str(uuid.uuid4())

    async def session() -> str | None:
        async with connect(
            f"{ws_base(relay)}/realtime?model=gpt-realtime&marker={request_id}",
            subprotocols=["realtime", f"helicone-auth.{relay.key}", "openai-insecure-api-key.sk-browser"],  # type: ignore[list-item]  # plain strings are valid subprotocols
            additional_headers={"Helicone-Request-Id": request_id},
        ) as ws:
            await ws.send(json.dumps({"type": "response.create"}))
            await until_done(ws)
            return ws.subprotocol

    assert asyncio.run(session()) == "realtime"
    upstream = upstream_for(realtime_mock, request_id)
    assert upstream.subprotocol == "realtime"
    offered = upstream.headers["sec-websocket-protocol"]
    assert "openai-insecure-api-key.sk-browser" in offered and "helicone-auth" not in offered
    assert relay.key not in json.dumps(upstream.headers)
    row, _ = stored(relay, request_id, has_done)
    assert row.total_tokens == 50


def test_heliport_key_in_the_path_works(relay: Gateway) -> None:
    request_id = str(uuid.uuid4())
    url = relay.url.replace("http://", "ws://") + f"/{relay.key}/v1/gateway/oai/realtime?model=gpt-realtime"

    async def session() -> None:
        async with connect(url, additional_headers={"Helicone-Request-Id": request_id}) as ws:
            await ws.send(json.dumps({"type": "response.create"}))
            await until_done(ws)

    asyncio.run(session())
    assert stored(relay, request_id, has_done)[0].status == 200


def test_upstream_refusal_is_relayed_as_an_error_event_and_close(relay: Gateway) -> None:
    request_id = str(uuid.uuid4())

    async def session() -> tuple[dict[str, Any], int]:
        async with connect(
            f"{ws_base(relay)}/realtime?model=gpt-realtime&mock_refuse=401",
            additional_headers={"Helicone-Auth": f"Bearer {relay.key}", "Helicone-Request-Id": request_id},
        ) as ws:
            event = json.loads(await asyncio.wait_for(ws.recv(), 5))
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 5)
            assert closed.value.rcvd is not None
            return event, closed.value.rcvd.code

    event, code = asyncio.run(session())
    assert event["type"] == "error" and event["error"]["message"] == "Incorrect API key provided"
    assert code == 1008
    row, _ = stored(relay, request_id, lambda row, events: True)
    assert row.status == 401 and any("HTTP 401" in e for e in row.errors)


def test_a_session_longer_than_the_interval_is_logged_in_parts_under_one_id(relay: Gateway) -> None:
    request_id = str(uuid.uuid4())
    seen: dict[str, Any] = {}

    async def session() -> None:
        async with connect(
            f"{ws_base(relay)}/realtime?model=gpt-realtime",
            additional_headers={"Helicone-Auth": f"Bearer {relay.key}", "Helicone-Request-Id": request_id},
        ) as ws:
            await ws.send(json.dumps({"type": "session.update", "session": {"type": "realtime"}}))
            await ws.recv()
            await ws.recv()
            # Still open: the interval writes must already show the first events.
            row, events = await asyncio.to_thread(
                stored, relay, request_id, lambda row, events: any(e["type"] == "session.updated" for e in events)
            )
            seen["early"] = (row, events)
            await ws.send(json.dumps({"type": "response.create"}))
            await until_done(ws)
            await asyncio.sleep(0.5)  # at least one more interval write while open

    asyncio.run(session())
    early_row, early_events = seen["early"]
    assert not has_done(early_row, early_events) and early_row.total_tokens is None
    # At least: one interval write before response.create, one in the 0.5 s after it, one on close.
    row, events = stored(relay, request_id, lambda r, e: has_done(r, e) and parts_of(relay, request_id) >= 3)
    assert row.total_tokens == 50 and len(events) > len(early_events)
    assert events[: len(early_events)] == early_events
    assert row.delay_ms is not None and early_row.delay_ms is not None and row.delay_ms > early_row.delay_ms + 500


def test_idle_session_is_closed_on_both_sides(realtime_mock: RealtimeMock, tmp_path: Path) -> None:
    gw = start_gateway(
        tmp_path, realtime_mock.url, upstream_overrides={"oai": realtime_mock.url}, realtime_idle_timeout=0.3
    )
    marker = uuid.uuid4().hex
    try:

        async def session() -> int:
            async with connect(
                f"{ws_base(gw)}/realtime?model=gpt-realtime&marker={marker}",
                additional_headers={"Helicone-Auth": f"Bearer {gw.key}"},
            ) as ws:
                await ws.recv()
                with pytest.raises(ConnectionClosed) as closed:
                    await asyncio.wait_for(ws.recv(), 5)
                assert closed.value.rcvd is not None
                return closed.value.rcvd.code

        assert asyncio.run(session()) == 1001
        upstream = upstream_for(realtime_mock, marker)
        deadline = time.monotonic() + 5
        while upstream.close_code is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert upstream.close_code == 1001
        record = wait_for(
            lambda: next((r for r in gw.queue.records if any("without a frame" in e for e in r.errors)), None)
        )
        assert record.part is not None and record.status == 200
    finally:
        gw.stop()
