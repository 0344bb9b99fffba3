"""``Helicone-Stream-Force-Format: true``: every chunk a client reads ends on an SSE event boundary.

The provider here is a tiny scripted server (outside heliport, like the mock provider) that sends
its stream in exactly the pieces a test names, split mid-line and mid-terminator, with pauses so
each piece is its own read on heliport's side. The client reads heliport's answer chunk by chunk
with httpx's ``iter_raw``, as a chunk-at-a-time parser would. Both the pass-through proxy and the
AI gateway (which relays an OpenAI stream as is, and builds translated streams itself) are driven.
"""

from __future__ import annotations

import asyncio
import random
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import msgspec
import pytest

from heliport.logs.record import Status
from heliport.stream_format import SseFramer, is_event_stream, reframe_chunks
from tests.harness import Gateway, ServerThread, start_gateway
from tests.mock_provider import MockProvider

FORCE = {"Helicone-Stream-Force-Format": "true"}


# -- the scripted provider ---------------------------------------------------------------------------


class Gate:
    """A pause in a script: the provider waits here until the test calls :meth:`Upstream.release`."""


class Abort:
    """The provider drops the connection here (a failure mid-response)."""


Piece = bytes | Gate | Abort


@dataclass
class Script:
    pieces: Sequence[Piece]
    content_type: str = "text/event-stream"
    pause_s: float = 0.03

    @property
    def body(self) -> bytes:
        return b"".join(p for p in self.pieces if isinstance(p, bytes))


@dataclass
class Upstream:
    """An ASGI provider that answers each request with the script its ``x-script`` header names."""

    scripts: dict[str, Script] = field(default_factory=dict)
    gates: dict[str, threading.Event] = field(default_factory=dict)
    #: Request bodies received, by script name.
    received: dict[str, bytes] = field(default_factory=dict)

    def add(self, script: Script) -> str:
        name = uuid.uuid4().hex
        self.scripts[name] = script
        self.gates[name] = threading.Event()
        return name

    def release(self, name: str) -> None:
        self.gates[name].set()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        name = dict(scope["headers"]).get(b"x-script", b"").decode()
        self.received[name] = body
        script = self.scripts[name]
        headers = [(b"content-type", script.content_type.encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for index, piece in enumerate(script.pieces):
            if isinstance(piece, Gate):
                await asyncio.to_thread(self.gates[name].wait, 10)
                continue
            if isinstance(piece, Abort):
                raise ConnectionAbortedError("scripted provider failure")
            if index:
                await asyncio.sleep(script.pause_s)
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[Upstream, str]]:
    app = Upstream()
    server = ServerThread(app).start()
    yield app, server.url
    server.stop()


@pytest.fixture(scope="module")
def heliport(
    upstream: tuple[Upstream, str], mock_provider: MockProvider, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    """Pass-through ``oai`` and the gateway's OpenAI account at the scripted provider; the gateway's
    Anthropic account at the mock provider (a stream the gateway translates)."""
    url = upstream[1]
    gw = start_gateway(
        tmp_path_factory.mktemp("stream-format"),
        url,
        provider_env={"OPENAI_API_KEY": "sk-openai-test", "ANTHROPIC_API_KEY": "sk-ant-test"},
        upstream_overrides={"oai": url, "openai": url, "anthropic": mock_provider.url},
    )
    yield gw
    gw.stop()


# -- streams -----------------------------------------------------------------------------------------


def chat_events(words: Sequence[str], *, sep: bytes = b"\n\n") -> list[bytes]:
    """An OpenAI chat completion stream, one event per word, then ``[DONE]``."""
    events = []
    for index, word in enumerate(words):
        chunk = {
            "id": "chatcmpl-frame",
            "object": "chat.completion.chunk",
            "created": 1_700_000_000,
            "model": "gpt-4o-mini",
            "choices": [
                {
                    "index": 0,
                    "delta": {"role": "assistant", "content": word} if index == 0 else {"content": word},
                    "finish_reason": None,
                }
            ],
        }
        events.append(b"data: " + msgspec.json.encode(chunk) + sep)
    return [*events, b"data: [DONE]" + sep]


WORDS = ["Hello", " there", ",", " world", "!"]


def split_awkwardly(data: bytes, seed: int) -> list[bytes]:
    """``data`` cut at places a relay meets in practice: mid-line, mid-``data:``, between the two
    newlines of a boundary, one byte at a time; never only on boundaries."""
    rnd = random.Random(seed)
    cuts: set[int] = set()
    for index in range(len(data) - 1):
        if data[index : index + 2] in (b"\n\n", b"\r\n"):
            cuts.add(index + 1)  # between the two bytes of a boundary or of a CRLF
    cuts.update(rnd.sample(range(1, len(data)), 8))
    ordered = sorted(cuts)
    return [data[a:b] for a, b in zip([0, *ordered], [*ordered, len(data)], strict=True)]


def read_chunks(
    url: str,
    headers: dict[str, str],
    body: dict[str, Any],
    *,
    on_first: Callable[[], None] | None = None,
    into: list[bytes] | None = None,
) -> tuple[httpx.Response, list[bytes]]:
    """POST and read the answer as it arrives, one raw chunk at a time (``on_first`` runs after the
    first; ``into`` keeps what arrived when the read fails)."""
    chunks: list[bytes] = [] if into is None else into
    with httpx.Client(timeout=20) as client, client.stream("POST", url, json=body, headers=headers) as response:
        for chunk in response.iter_raw():
            chunks.append(chunk)
            if on_first is not None and len(chunks) == 1:
                on_first()
    return response, chunks


def ends_on_boundary(chunk: bytes) -> bool:
    return chunk.endswith((b"\n\n", b"\r\n\r\n", b"\r\r"))


def proxy_call(gw: Gateway, script: str, extra: dict[str, str] | None = None) -> tuple[dict[str, str], dict[str, Any]]:
    headers = {
        "Helicone-Auth": f"Bearer {gw.key}",
        "Authorization": "Bearer sk-provider-secret",
        "Helicone-Request-Id": str(uuid.uuid4()),
        "x-script": script,
        **(extra or {}),
    }
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    return headers, body


# -- the pass-through proxy ----------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_each_chunk_ends_on_an_event_boundary(heliport: Gateway, upstream: tuple[Upstream, str], seed: int) -> None:
    app, _ = upstream
    data = b"".join(chat_events(WORDS))
    name = app.add(Script(split_awkwardly(data, seed), pause_s=0.01))
    headers, body = proxy_call(heliport, name, FORCE)
    response, chunks = read_chunks(f"{heliport.oai_base}/chat/completions", headers, body)
    assert response.status_code == 200
    assert b"".join(chunks) == data  # the bytes are the provider's, only the breaks moved
    assert all(ends_on_boundary(chunk) for chunk in chunks), chunks
    record = heliport.record(headers["Helicone-Request-Id"])
    assert record.status == 200
    assert record.response_body == data.decode()  # the log copy saw the same bytes
    assert not [e for e in record.errors if "Stream-Force-Format" in e]


@pytest.mark.parametrize("value", [None, "false"])
def test_without_the_header_chunks_pass_as_they_come(
    heliport: Gateway, upstream: tuple[Upstream, str], value: str | None
) -> None:
    app, _ = upstream
    data = b"".join(chat_events(WORDS))
    name = app.add(Script(split_awkwardly(data, 7), pause_s=0.03))
    headers, body = proxy_call(heliport, name, {} if value is None else {"Helicone-Stream-Force-Format": value})
    _, chunks = read_chunks(f"{heliport.oai_base}/chat/completions", headers, body)
    assert b"".join(chunks) == data
    assert any(not ends_on_boundary(chunk) for chunk in chunks), chunks


def test_an_unfinished_event_is_held_only_until_its_end_arrives(
    heliport: Gateway, upstream: tuple[Upstream, str]
) -> None:
    """The provider stops mid-event until the client has read: a relay that buffered more than the
    unfinished event would deadlock, one that held nothing would send half an event first."""
    app, _ = upstream
    name = app.add(Script([b'data: {"n":1}\n\ndata: {"n"', Gate(), b':2}\n\ndata: {"n":3}\n', b"\ndata: [DONE]\n\n"]))
    headers, body = proxy_call(heliport, name, FORCE)
    _, chunks = read_chunks(f"{heliport.oai_base}/chat/completions", headers, body, on_first=lambda: app.release(name))
    assert chunks[0] == b'data: {"n":1}\n\n'
    assert b"".join(chunks) == app.scripts[name].body
    assert all(ends_on_boundary(chunk) for chunk in chunks), chunks


def test_crlf_stream_is_never_cut_between_cr_and_lf(heliport: Gateway, upstream: tuple[Upstream, str]) -> None:
    app, _ = upstream
    data = b"".join(chat_events(WORDS, sep=b"\r\n\r\n"))
    # Every piece boundary sits inside a CRLF or between the two CRLFs of a boundary.
    name = app.add(Script(split_awkwardly(data, 11), pause_s=0.01))
    headers, body = proxy_call(heliport, name, FORCE)
    _, chunks = read_chunks(f"{heliport.oai_base}/chat/completions", headers, body)
    assert b"".join(chunks) == data
    assert all(chunk.endswith(b"\r\n\r\n") for chunk in chunks), chunks


def test_a_last_event_without_its_blank_line_is_sent_at_the_end(
    heliport: Gateway, upstream: tuple[Upstream, str]
) -> None:
    app, _ = upstream
    name = app.add(Script([b"data: {}\n\ndata: [DO", b"NE]"]))
    headers, body = proxy_call(heliport, name, FORCE)
    _, chunks = read_chunks(f"{heliport.oai_base}/chat/completions", headers, body)
    assert chunks == [b"data: {}\n\n", b"data: [DONE]"]


def test_a_response_that_is_not_sse_passes_untouched(heliport: Gateway, upstream: tuple[Upstream, str]) -> None:
    app, _ = upstream
    pieces = [b'{"object": "chat.com', b'pletion",\n\n "choices"', b": []}"]
    name = app.add(Script(pieces, content_type="application/json", pause_s=0.05))
    headers, body = proxy_call(heliport, name, FORCE)
    _, chunks = read_chunks(f"{heliport.oai_base}/chat/completions", headers, body)
    assert chunks == pieces


def test_an_event_past_the_hold_limit_is_sent_unaligned_and_noted(
    heliport: Gateway, upstream: tuple[Upstream, str]
) -> None:
    """A stream that never ends an event still flows: past 1 MiB what is held goes out as it is."""
    app, _ = upstream
    line = b"data: " + b"x" * (64 * 1024 - 7) + b"\n"
    pieces = [b"data: {}\n\n", *([line] * 20), b"\n", b"data: [DONE]\n\n"]  # one 1.25 MiB event
    name = app.add(Script(pieces, pause_s=0.005))
    headers, body = proxy_call(heliport, name, FORCE)
    _, chunks = read_chunks(f"{heliport.oai_base}/chat/completions", headers, body)
    assert b"".join(chunks) == app.scripts[name].body
    assert any(not ends_on_boundary(chunk) for chunk in chunks)  # the overflow went out unaligned
    assert chunks[-1].endswith(b"data: [DONE]\n\n")
    errors = heliport.record(headers["Helicone-Request-Id"]).errors
    assert any("outgrew 1048576 bytes" in e for e in errors), errors


def test_a_provider_failure_mid_event_never_sends_half_an_event(
    heliport: Gateway, upstream: tuple[Upstream, str]
) -> None:
    app, _ = upstream
    name = app.add(Script([b'data: {}\n\ndata: {"half', Abort()]))
    headers, body = proxy_call(heliport, name, FORCE)
    chunks: list[bytes] = []
    with pytest.raises(httpx.HTTPError):
        read_chunks(f"{heliport.oai_base}/chat/completions", headers, body, into=chunks)
    assert chunks == [b"data: {}\n\n"]
    record = heliport.record(headers["Helicone-Request-Id"])
    assert record.status == Status.STREAM_FAILED
    assert record.response_body == "data: {}\n\n"
    assert any("12 bytes of an unfinished event were not sent" in e for e in record.errors), record.errors


def test_the_openai_sdk_streams_through_a_reframed_stream(heliport: Gateway, upstream: tuple[Upstream, str]) -> None:
    app, _ = upstream
    name = app.add(Script(split_awkwardly(b"".join(chat_events(WORDS)), 5), pause_s=0.005))
    client = heliport.openai(default_headers={**FORCE, "x-script": name})
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "".join(WORDS)


def test_the_openai_sdk_against_the_mock_provider_with_the_header(gateway: Gateway) -> None:
    def text(headers: dict[str, str]) -> str:
        stream = gateway.openai(default_headers=headers).chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "Say hello"}],
            stream=True,
            extra_headers={"x-mock-chunk-delay-ms": "2"},
        )
        return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)

    with_header = text(FORCE)
    assert with_header
    assert with_header == text({})


@pytest.mark.parametrize("route", ["proxy", "gateway"])
def test_a_bad_header_value_is_a_400_naming_the_header(heliport: Gateway, route: str) -> None:
    if route == "proxy":
        url, auth = f"{heliport.oai_base}/chat/completions", {"Helicone-Auth": f"Bearer {heliport.key}"}
    else:
        url, auth = f"{heliport.url}/v1/chat/completions", {"Authorization": f"Bearer {heliport.key}"}
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    response = httpx.post(url, json=body, headers={**auth, "Helicone-Stream-Force-Format": "yes"}, timeout=10)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == "Helicone-Stream-Force-Format"
    assert "Helicone-Stream-Force-Format" in error["message"]


# -- the AI gateway ------------------------------------------------------------------------------------


def gateway_call(gw: Gateway, script: str, extra: dict[str, str]) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {gw.key}",
        "Helicone-Request-Id": str(uuid.uuid4()),
        "x-script": script,
        **extra,
    }


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/responses"])
def test_gateway_relayed_openai_stream_is_reframed(
    heliport: Gateway, upstream: tuple[Upstream, str], path: str
) -> None:
    """OpenAI's own streams go through the gateway as bytes, so they are re-framed like the proxy's."""
    app, _ = upstream
    if path == "/v1/responses":
        events = [
            b'event: response.created\ndata: {"type":"response.created","sequence_number":0}\n\n',
            b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","delta":"Hi"}\n\n',
            b'event: response.completed\ndata: {"type":"response.completed","sequence_number":2}\n\n',
        ]
        body: dict[str, Any] = {"model": "gpt-4o-mini/openai", "input": "hi", "stream": True}
    else:
        events = chat_events(WORDS)
        body = {"model": "gpt-4o-mini/openai", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    data = b"".join(events)
    name = app.add(Script(split_awkwardly(data, 3), pause_s=0.01))
    headers = gateway_call(heliport, name, FORCE)
    response, chunks = read_chunks(heliport.url + path, headers, body)
    assert response.status_code == 200, b"".join(chunks)
    assert b"".join(chunks) == data
    assert all(ends_on_boundary(chunk) for chunk in chunks), chunks
    assert heliport.record(headers["Helicone-Request-Id"]).response_body == data.decode()

    unframed = app.add(Script(split_awkwardly(data, 3), pause_s=0.03))
    _, chunks = read_chunks(heliport.url + path, gateway_call(heliport, unframed, {}), body)
    assert b"".join(chunks) == data
    assert any(not ends_on_boundary(chunk) for chunk in chunks), chunks


@pytest.mark.parametrize("extra", [FORCE, {}])
def test_gateway_translated_stream_is_event_aligned_anyway(heliport: Gateway, extra: dict[str, str]) -> None:
    """An Anthropic stream the gateway translates goes out one whole event (or several) per chunk,
    with the header or without: there is nothing for the header to do."""
    body = {
        "model": "claude-sonnet-4-5-20250929",
        "messages": [{"role": "user", "content": "Say hello"}],
        "stream": True,
        "max_tokens": 50,
    }
    headers = gateway_call(heliport, "", {**extra, "x-mock-chunk-delay-ms": "10"})
    response, chunks = read_chunks(f"{heliport.url}/v1/chat/completions", headers, body)
    assert response.status_code == 200, b"".join(chunks)
    assert len(chunks) > 2
    assert all(chunk.endswith(b"\n\n") for chunk in chunks), chunks
    assert chunks[-1].endswith(b"data: [DONE]\n\n")


# -- the framer on its own -------------------------------------------------------------------------------


def spec_boundaries(data: bytes) -> set[int]:
    """Where the SSE spec's line reader finds a blank line: the end of each event (reference)."""
    ends: set[int] = set()
    index, line_start, after_terminator = 0, 0, False
    while index < len(data):
        if data[index] in b"\r\n":
            end = index + 2 if data[index : index + 2] == b"\r\n" else index + 1
            if index == line_start and after_terminator:
                ends.add(end)
            after_terminator, line_start, index = True, end, end
        else:
            index += 1
    return ends


def test_framer_against_the_spec_on_random_streams() -> None:
    rnd = random.Random(20)
    for _ in range(2000):
        style = rnd.choice([b"\n", b"\r\n", b"\r"])
        events = [
            style.join(
                b"data: " + rnd.randbytes(rnd.randint(0, 6)).replace(b"\r", b"").replace(b"\n", b"")
                for _ in range(rnd.randint(1, 3))
            )
            + style * 2
            for _ in range(rnd.randint(0, 6))
        ]
        data = b"".join(events) + (b"data: tail" if rnd.random() < 0.3 else b"")
        cuts = sorted(rnd.sample(range(1, len(data)), min(len(data) - 1, rnd.randint(0, 12)))) if len(data) > 1 else []
        chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
        framer = SseFramer()
        out = [ready for ready in map(framer.feed, chunks) if ready]
        rest = framer.flush()
        assert b"".join(out) + rest == data
        ends = spec_boundaries(data)
        position = 0
        for ready in out:
            position += len(ready)
            assert position in ends, (data, chunks, out)
        # Nothing complete is kept back, except behind a last CR that may still become a CRLF.
        complete = max(ends, default=0)
        assert position == complete or (complete == len(data) and data.endswith(b"\r")), (data, chunks, out)


def test_framer_holds_a_trailing_cr_until_the_next_byte() -> None:
    framer = SseFramer()
    assert framer.feed(b"data: a\r\n\r") == b""  # CRLF, then a CR that may be half of a CRLF
    assert framer.feed(b"\ndata: b\r\n\r\n") == b"data: a\r\n\r\n" + b"data: b\r\n\r\n"
    assert framer.feed(b"data: c\r\r") == b""
    assert framer.feed(b"data: d") == b"data: c\r\r"  # a bare CR after all: the event ended there
    assert framer.flush() == b"data: d"


def test_framer_limit_and_notes() -> None:
    framer = SseFramer(limit=10)
    assert framer.feed(b"data: 12345") == b"data: 12345"  # past the limit: sent unaligned
    assert framer.feed(b"6\n\ndata: x") == b"6\n\n"
    assert framer.held == len(b"data: x")
    assert framer.notes(failed=True) == [
        "Helicone-Stream-Force-Format: 7 bytes of an unfinished event were not sent",
        "Helicone-Stream-Force-Format: 1 event(s) outgrew 10 bytes and were sent unaligned",
    ]


def test_reframe_chunks_and_content_type() -> None:
    assert reframe_chunks([b"data: 1\n", b"\ndata: 2", b"\n\n"]) == [b"data: 1\n\n", b"data: 2\n\n"]
    assert is_event_stream([(b"Content-Type", b"text/event-stream; charset=utf-8")])
    assert not is_event_stream([(b"content-type", b"application/json")])
    assert not is_event_stream([])


def test_a_cache_hit_is_reframed_when_the_header_asks(heliport: Gateway, upstream: tuple[Upstream, str]) -> None:
    """The cache key does not hold this header: a stream stored without it replays re-framed with it."""
    app, _ = upstream
    data = b"".join(chat_events(WORDS))
    name = app.add(Script(split_awkwardly(data, 7), pause_s=0.01))
    cache = {"Helicone-Cache-Enabled": "true"}
    headers, body = proxy_call(heliport, name, cache)
    response, stored = read_chunks(f"{heliport.oai_base}/chat/completions", headers, body)
    assert response.headers["helicone-cache"] == "MISS"
    assert not all(ends_on_boundary(chunk) for chunk in stored)  # what the cache keeps is unaligned

    headers, body = proxy_call(heliport, name, {**cache, **FORCE})
    response, chunks = read_chunks(f"{heliport.oai_base}/chat/completions", headers, body)
    assert response.headers["helicone-cache"] == "HIT"
    assert b"".join(chunks) == data
    assert all(ends_on_boundary(chunk) for chunk in chunks), chunks
    headers, body = proxy_call(heliport, name, cache)
    response, plain = read_chunks(f"{heliport.oai_base}/chat/completions", headers, body)
    assert response.headers["helicone-cache"] == "HIT"
    assert b"".join(plain) == data  # without the header the replay is as stored
