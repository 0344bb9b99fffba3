"""Realtime relay handshake: ``/v1/gateway/oai/realtime`` WebSocket upgrades with bad heliport keys,
queries, paths, subprotocols and headers.

Whatever is the caller's fault is refused before the upgrade as an HTTP answer (the ASGI
denial-response extension): a 4xx with heliport's ``{"error": {...}}``, a 401 for a bad key. A
handshake heliport accepts is a 101 (the upstream then refuses the session, which is not this
test's concern). Never a 5xx.
"""

from __future__ import annotations

import asyncio

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.fuzz import corpus
from tests.fuzz.conftest import Fuzzed
from tests.fuzz.wire import Reply, check, openai_error, raw_request

CASES = corpus.realtime_cases()
#: Non-ASCII bytes in Sec-WebSocket-Protocol: the websockets library (uvicorn's WebSocket server)
#: fails while writing its own refusal (UnicodeEncodeError in ServerProtocol.reject) and closes the
#: connection without an answer. No heliport code runs; the test pins that this stays a dropped
#: connection and never becomes a 5xx or takes the server down.
LIBRARY_DROPS = frozenset({"wire:subprotocol-invalid-utf8", "wire:subprotocol-latin1"})

_UPGRADE = (
    (b"Upgrade", b"websocket"),
    (b"Connection", b"Upgrade"),
    (b"Sec-WebSocket-Key", b"dGhlIHNhbXBsZSBub25jZQ=="),
    (b"Sec-WebSocket-Version", b"13"),
)


def _fill(fuzzed: Fuzzed, data: bytes) -> bytes:
    for marker, value in fuzzed.markers().items():
        data = data.replace(marker, value)
    return data


def _headers(fuzzed: Fuzzed, case: corpus.WsCase) -> list[tuple[bytes, bytes]]:
    headers = [(b"Helicone-Auth", b"Bearer " + fuzzed.key.encode())] if case.auth else []
    return headers + [(name, _fill(fuzzed, value)) for name, value in case.headers]


def _raw(fuzzed: Fuzzed, case: corpus.WsCase) -> Reply:
    headers = [*_UPGRADE, *_headers(fuzzed, case)]
    if case.subprotocols:
        headers.append((b"Sec-WebSocket-Protocol", _fill(fuzzed, ", ".join(case.subprotocols).encode())))
    return raw_request(fuzzed.url, b"GET", _fill(fuzzed, case.target), headers, upgrade=True)


async def _client(fuzzed: Fuzzed, case: corpus.WsCase) -> Reply:
    uri = fuzzed.url.replace("http://", "ws://") + _fill(fuzzed, case.target).decode("ascii")
    headers = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in _headers(fuzzed, case)]
    try:
        async with connect(
            uri,
            additional_headers=headers,
            subprotocols=[_fill(fuzzed, p.encode()).decode() for p in case.subprotocols] or None,  # type: ignore[misc]
            open_timeout=10,
            max_size=None,
        ) as ws:
            await ws.close()
            return Reply(101, [], b"")
    except InvalidStatus as refused:
        response = refused.response
        return Reply(response.status_code, list(response.headers.raw_items()), response.body or b"")


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES])
def test_bad_handshake_is_a_4xx_json_error_never_a_5xx(fuzzed: Fuzzed, case: corpus.WsCase) -> None:
    if case.id in LIBRARY_DROPS:
        with pytest.raises(AssertionError, match="connection closed before"):
            _raw(fuzzed, case)
        # The drop is the WebSocket library's, before heliport runs; the server itself stays up.
        assert raw_request(fuzzed.url, b"GET", b"/healthcheck").status == 200
        return
    reply = _raw(fuzzed, case) if case.raw else asyncio.run(_client(fuzzed, case))
    check(reply, openai_error, case.expect, wire=case.id.startswith("wire:"))
