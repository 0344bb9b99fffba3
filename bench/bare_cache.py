"""The least a cache hit can cost: one entry read from heliport's local cache file and sent back.

``bench/features.py`` runs this next to heliport to answer "how much does a cache hit through
heliport add over the store read itself". Per request it does only what any cache hit must: one
SELECT of the entry from the SQLite file (checking its expiry), decompress, decode, and send the
stored status, headers and chunks. No header parsing, no auth, no key hashing, no log record. It
reads the entry format directly and imports nothing from heliport, so it cannot share its costs.

    python bench/bare_cache.py --port 9300 --db <data_dir>/cache.sqlite3 --key <slot key>
"""

from __future__ import annotations

import argparse
import sqlite3
import time
import zlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import msgspec
import uvicorn

Message = MutableMapping[str, Any]


class Entry(msgspec.Struct, kw_only=True):
    """The fields of heliport's cache entry a replay needs (the rest are ignored on decode)."""

    status: int
    headers: list[tuple[str, str]]
    chunks: list[bytes]


def make_app(db: str, key: str) -> Callable[..., Awaitable[None]]:
    conn = sqlite3.connect(db, check_same_thread=False)
    decoder = msgspec.msgpack.Decoder(Entry)

    async def app(
        scope: Message, receive: Callable[[], Awaitable[Message]], send: Callable[[Message], Awaitable[None]]
    ) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        row = conn.execute("SELECT value FROM cache WHERE key = ? AND expires_at > ?", (key, time.time())).fetchone()
        if row is None:
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        entry = decoder.decode(zlib.decompress(row[0]))
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in entry.headers]
        await send({"type": "http.response.start", "status": entry.status, "headers": headers})
        for chunk in entry.chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="Bare cache-hit server for the heliport feature benchmark.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--db", required=True, help="heliport's cache.sqlite3")
    parser.add_argument("--key", required=True, help="the slot key of the entry to serve")
    args = parser.parse_args()
    uvicorn.run(
        make_app(args.db, args.key),
        host=args.host,
        port=args.port,
        http="httptools",
        loop="uvloop",
        access_log=False,
        server_header=False,
        log_level="warning",
        lifespan="off",
    )


if __name__ == "__main__":
    main()
