"""The least a proxy can do: a bare pass-through with heliport's server and upstream client.

``bench/run.py`` starts this as a separate process, next to heliport, to answer "how much of
heliport's cost is the stack (uvicorn + httptools + uvloop + aiohttp) and how much is heliport's own
work" (header parsing, auth, routing, tee, log record, SQLite queue). It does none of that own work:
it reads the body, forwards method, path, body and headers to one fixed upstream through one pooled
``aiohttp.ClientSession``, and streams the answer back chunk by chunk with Starlette's
``StreamingResponse``. Server options match ``heliport serve``: httptools, uvloop, no access log,
no server header.

    python bench/baseline.py --port 9200 --upstream http://127.0.0.1:9100
"""

from __future__ import annotations

import argparse
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

UPSTREAM = os.environ.get("BENCH_UPSTREAM", "http://127.0.0.1:9100").rstrip("/")

# The same hop-by-hop sets heliport drops, so both send the upstream and the client the same headers.
_DROP_REQUEST = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"host",
        b"content-length",
    }
)
_DROP_RESPONSE = frozenset({"connection", "keep-alive", "transfer-encoding", "date", "server"})

#: The one upstream client, made at startup inside the running loop (aiohttp requires one).
session: aiohttp.ClientSession | None = None


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    """Open the pooled session once; heliport's transport uses the same connector settings."""
    global session
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=256, keepalive_timeout=60)
    session = aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=None), skip_auto_headers=("User-Agent",)
    )
    try:
        yield
    finally:
        await session.close()
        session = None


async def forward(request: Request) -> Response:
    """Forward one request and relay the response as it arrives (an SSE stream is never buffered)."""
    assert session is not None, "lifespan did not run"
    body = await request.body()
    headers = [
        (name.decode("latin-1"), value.decode("latin-1"))
        for name, value in request.headers.raw
        if name not in _DROP_REQUEST
    ]
    upstream = await session.request(
        request.method, UPSTREAM + request.url.path, headers=headers, data=body or None, allow_redirects=False
    )
    response_headers = {name: value for name, value in upstream.headers.items() if name.lower() not in _DROP_RESPONSE}

    async def relay() -> AsyncIterator[bytes]:
        try:
            async for chunk in upstream.content.iter_any():
                yield chunk
        finally:
            upstream.release()

    return StreamingResponse(relay(), status_code=upstream.status, headers=response_headers)


app = Starlette(routes=[Route("/{path:path}", forward, methods=["GET", "POST"])], lifespan=lifespan)


def main() -> None:
    global UPSTREAM
    parser = argparse.ArgumentParser(description="Bare pass-through proxy for the heliport benchmark.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9200)
    parser.add_argument("--upstream", default=UPSTREAM, help="origin to forward to (default: $BENCH_UPSTREAM)")
    args = parser.parse_args()
    UPSTREAM = args.upstream.rstrip("/")
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        http="httptools",
        loop="uvloop",
        access_log=False,
        server_header=False,
        log_level="warning",
        lifespan="on",
    )


if __name__ == "__main__":
    main()
