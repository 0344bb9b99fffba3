"""A mock OpenAI Realtime upstream: a ``websockets`` server on loopback speaking OpenAI's event shapes.

On connect it sends ``session.created``; ``session.update`` answers ``session.updated``;
``response.create`` answers ``response.created``, two ``response.output_text.delta``, an
``response.output_audio.delta`` (3,200 bytes of PCM as base64), its transcript delta and a
``response.done`` carrying usage. Binary frames are echoed back. ``mock.close`` (``{"type":
"mock.close", "code": 4001, "reason": "bye"}``) makes it close with that code.

Query switches, so one server serves every test: ``mock_delay=<seconds>`` delays the handshake (for
frames a client sends before the upstream is open), ``mock_refuse=<status>`` refuses it with that
HTTP status and an OpenAI error body. Every connection's path, headers, subprotocol and received
frames are kept in :attr:`RealtimeMock.connections`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

__all__ = ["AUDIO_BYTES", "USAGE", "RealtimeMock", "UpstreamConnection"]

AUDIO_BYTES = 3200
#: What every ``response.done`` reports.
USAGE: dict[str, Any] = {
    "total_tokens": 50,
    "input_tokens": 20,
    "output_tokens": 30,
    "input_token_details": {
        "text_tokens": 15,
        "audio_tokens": 5,
        "cached_tokens": 0,
        "cached_tokens_details": {"text_tokens": 0, "audio_tokens": 0},
    },
    "output_token_details": {"text_tokens": 10, "audio_tokens": 20},
}


@dataclass
class UpstreamConnection:
    path: str
    headers: dict[str, str]
    subprotocol: str | None
    received: list[str | bytes] = field(default_factory=list)
    close_code: int | None = None


class RealtimeMock:
    """Start with ``with RealtimeMock() as mock:``; ``mock.url`` is ``http://127.0.0.1:<port>``."""

    def __init__(self) -> None:
        self.connections: list[UpstreamConnection] = []
        self._loop = asyncio.new_event_loop()
        self._server: Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.port = 0
        self._event_seq = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> RealtimeMock:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _start(self) -> None:
        self._server = await serve(
            self._handle,
            "127.0.0.1",
            0,
            process_request=self._process_request,
            select_subprotocol=lambda _conn, offered: "realtime" if "realtime" in offered else None,
            max_size=None,
        )
        self.port = next(iter(self._server.sockets)).getsockname()[1]

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        query = parse_qs(urlsplit(request.path).query)
        if "mock_delay" in query:
            await asyncio.sleep(float(query["mock_delay"][0]))
        if "mock_refuse" in query:
            status = int(query["mock_refuse"][0])
            body = json.dumps({"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}})
            headers = Headers([("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return Response(status, HTTPStatus(status).phrase, headers, body.encode())
        return None

    def _event(self, kind: str, **fields: Any) -> str:
        self._event_seq += 1
        return json.dumps({"type": kind, "event_id": f"event_{self._event_seq}", **fields})

    async def _handle(self, ws: ServerConnection) -> None:
        request = ws.request
        assert request is not None
        conn = UpstreamConnection(
            path=request.path,
            headers={k.lower(): v for k, v in request.headers.raw_items()},
            subprotocol=ws.subprotocol,
        )
        self.connections.append(conn)
        query = parse_qs(urlsplit(request.path).query)
        model = query.get("model", query.get("deployment", ["gpt-realtime"]))[0]
        session: dict[str, Any] = {"id": "sess_1", "object": "realtime.session", "type": "realtime", "model": model}
        await ws.send(self._event("session.created", session=session))
        try:
            async for frame in ws:
                conn.received.append(frame)
                if isinstance(frame, bytes):
                    await ws.send(frame)
                    continue
                try:
                    event = json.loads(frame)
                except json.JSONDecodeError:
                    continue  # kept in `received`; a real server would answer an error event
                kind = event.get("type")
                if kind == "session.update":
                    session = {**session, **{k: v for k, v in event.get("session", {}).items() if k != "model"}}
                    await ws.send(self._event("session.updated", session=session))
                elif kind == "response.create":
                    await self._respond(ws)
                elif kind == "mock.close":
                    await ws.close(event.get("code", 1000), event.get("reason", ""))
                    return
        finally:
            conn.close_code = ws.close_code

    async def _respond(self, ws: ServerConnection) -> None:
        rid = f"resp_{self._event_seq}"
        response = {"id": rid, "object": "realtime.response", "status": "in_progress", "output": []}
        await ws.send(self._event("response.created", response=response))
        common = {"response_id": rid, "item_id": "item_1", "output_index": 0, "content_index": 0}
        for piece in ("Hel", "lo"):
            await ws.send(self._event("response.output_text.delta", delta=piece, **common))
        audio = base64.b64encode(bytes(AUDIO_BYTES)).decode()
        await ws.send(self._event("response.output_audio.delta", delta=audio, **common))
        await ws.send(self._event("response.output_audio_transcript.delta", delta="Hello", **common))
        done = {**response, "status": "completed", "usage": USAGE}
        await ws.send(self._event("response.done", response=done))
