"""Deeply nested JSON through the realtime relay: frames are relayed untouched (the relay is opaque,
like the pass-through proxy) and logged as text; a deep refusal body from the upstream still becomes
an error event and a close. The upstream here is a plain echo server: it never decodes a frame, so a
frame deeper than any decoder goes cannot trip it."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from heliport.config import Settings
from tests.harness import Gateway, start_gateway, wait_for

LIMIT = Settings.max_json_depth
DEEP_FRAME = '{"type":"x","a":' + '{"a":' * 2000 + "1" + "}" * 2000 + "}"
#: Decodable, one level past the limit.
OVER_LIMIT_FRAME = '{"type":"x","a":' + '{"a":' * LIMIT + "1" + "}" * LIMIT + "}"
DEEP_REFUSAL = '{"error":' + '{"a":' * 2000 + "1" + "}" * 2000 + "}"


class EchoUpstream:
    """A WebSocket server that echoes every frame back; ``?refuse`` refuses the upgrade with a 400 whose
    body is :data:`DEEP_REFUSAL`."""

    def __init__(self) -> None:
        self.received: list[str | bytes] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: Server | None = None
        self.port = 0

    def __enter__(self) -> EchoUpstream:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _start(self) -> None:
        self._server = await serve(self._echo, "127.0.0.1", 0, process_request=self._refuse, max_size=None)
        self.port = next(iter(self._server.sockets)).getsockname()[1]

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _refuse(self, connection: ServerConnection, request: Request) -> Response | None:
        if "refuse" not in request.path:
            return None
        headers = Headers([("Content-Type", "application/json"), ("Content-Length", str(len(DEEP_REFUSAL)))])
        return Response(400, "Bad Request", headers, DEEP_REFUSAL.encode())

    async def _echo(self, ws: ServerConnection) -> None:
        async for frame in ws:
            self.received.append(frame)
            await ws.send(frame)


@pytest.fixture(scope="module")
def upstream() -> Iterator[EchoUpstream]:
    with EchoUpstream() as server:
        yield server


@pytest.fixture(scope="module")
def relay(upstream: EchoUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    data_dir: Path = tmp_path_factory.mktemp("realtime-deep")
    gw = start_gateway(data_dir, upstream.url, upstream_overrides={"oai": upstream.url})
    yield gw
    gw.stop()


def _url(relay: Gateway, query: str = "") -> str:
    return relay.url.replace("http://", "ws://") + "/v1/gateway/oai/realtime?model=gpt-realtime" + query


def _events(relay: Gateway, request_id: str) -> list[dict[str, Any]]:
    """The logged events of a closed session (its last part)."""
    record = wait_for(
        lambda: next((r for r in reversed(relay.queue.records) if r.request_id == request_id and r.errors == []), None)
    )
    assert record.request_body is not None
    events: list[dict[str, Any]] = json.loads(record.request_body)["events"]
    return events


@pytest.mark.parametrize("frame", [DEEP_FRAME, OVER_LIMIT_FRAME], ids=["2000-deep", "limit+1"])
def test_a_deep_frame_is_relayed_both_ways_and_logged_as_text(
    relay: Gateway, upstream: EchoUpstream, frame: str
) -> None:
    request_id = str(uuid.uuid4())
    after = json.dumps({"type": "response.create"})

    async def session() -> list[str | bytes]:
        headers = {"Helicone-Auth": f"Bearer {relay.key}", "Helicone-Request-Id": request_id}
        async with connect(_url(relay), additional_headers=headers, max_size=None) as ws:
            await ws.send(frame)
            await ws.send(after)  # the session goes on after the deep frame
            return [await asyncio.wait_for(ws.recv(), 5) for _ in range(2)]

    assert asyncio.run(session()) == [frame, after]  # echoed by the upstream, untouched both ways
    assert upstream.received[-2:] == [frame, after]
    events = _events(relay, request_id)
    # Each direction in its order; the two directions are relayed concurrently, so they interleave freely.
    for side in ("client", "target"):
        assert [e["type"] for e in events if e["from"] == side] == ["text", "response.create"], events
    assert events[0]["content"] == frame


def test_an_upstream_refusal_with_a_deep_body_is_an_error_event_and_a_close(relay: Gateway) -> None:
    request_id = str(uuid.uuid4())

    async def session() -> tuple[dict[str, Any], int]:
        headers = {"Helicone-Auth": f"Bearer {relay.key}", "Helicone-Request-Id": request_id}
        async with connect(_url(relay, "&refuse=1"), additional_headers=headers) as ws:
            event = json.loads(await asyncio.wait_for(ws.recv(), 5))
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 5)
            assert closed.value.rcvd is not None
            return event, closed.value.rcvd.code

    event, code = asyncio.run(session())
    assert event["type"] == "error" and event["error"]["code"] == "upstream_400"
    assert event["error"]["message"] == DEEP_REFUSAL[:500]
    assert code == 1008
    record = wait_for(lambda: next((r for r in relay.queue.records if r.request_id == request_id), None))
    assert record.status == 400
