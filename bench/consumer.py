"""Consumer throughput: LogRecords -> PostgreSQL rows + gzip bodies, in records/s, and the rows' size.

Runs the real ``LogWriter`` (usage, cost, previews, gzip, blob put, one batch insert) against a
throwaway database on the local PostgreSQL server and a blob directory. Batches of 10 (what SQS
delivers by default) and 100 (the template's batch size), each one batch at a time and with 4
batches in flight (the consumer function's MaximumConcurrency).

Issue 24 §4 (small bodies on the row): the same cases run once per ``--inline`` threshold, each in a
database of its own (0 puts every body in the blob store, as before), and report beside the rate the
blob PUTs made and the bytes each row takes in PostgreSQL (heap, TOAST and indexes of the partitions).
``--sweep`` writes records whose bodies compress to a given size, on the row and in the blob store, to
show where keeping them on the row stops paying. Usage:

    .venv/bin/python bench/consumer.py [--records 4000] [--inline 0,4096] [--sweep]
        [--dsn postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import logging
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from heliport.logs.consumer import LogWriter  # after the path tweak, so tests.* imports
from heliport.logs.record import LogRecord  # as above
from heliport.logs.stored_bodies import INLINE_BODY_BYTES  # as above
from heliport.store.blobs import LocalBlobStore, S3BlobStore  # as above
from heliport.store.logdb_postgres import PostgresLogDb  # as above
from tests.logs.records import chat_record  # as above
from tests.postgres import throwaway_database  # as above

STREAM = (
    "".join(
        f"data: {json.dumps(chunk)}\n\n"
        for chunk in [
            *(
                {
                    "id": "c",
                    "object": "chat.completion.chunk",
                    "model": "gpt-4o-mini",
                    "choices": [{"index": 0, "delta": {"content": w}}],
                }
                for w in ("The ", "capital ", "of ", "France ", "is ", "Paris.")
            ),
            {
                "id": "c",
                "object": "chat.completion.chunk",
                "model": "gpt-4o-mini",
                "choices": [],
                "usage": {"prompt_tokens": 20, "completion_tokens": 6, "total_tokens": 26},
            },
        ]
    )
    + "data: [DONE]\n\n"
)


def records(n: int) -> list[LogRecord]:
    """Half plain JSON completions, half streams, all distinct requests of one month."""
    now = datetime.now(UTC)
    return [
        chat_record(request_id=str(uuid.uuid4()), started_at=now, is_stream=True, response_body=STREAM)
        if i % 2
        else chat_record(request_id=str(uuid.uuid4()), started_at=now)
        for i in range(n)
    ]


class CountingBlobs(LocalBlobStore):
    """The local blob store, counting PUTs (each one an S3 PUT in AWS) and their bytes."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.puts = 0
        self.put_bytes = 0

    async def put(
        self, key: str, data: bytes, *, content_type: str = "application/json", content_encoding: str | None = None
    ) -> None:
        self.puts += 1
        self.put_bytes += len(data)
        await super().put(key, data, content_type=content_type, content_encoding=content_encoding)


class CountingS3(S3BlobStore):
    """S3 (moto's server with ``--s3``), counting PUTs."""

    puts = 0
    put_bytes = 0

    async def put(
        self, key: str, data: bytes, *, content_type: str = "application/json", content_encoding: str | None = None
    ) -> None:
        self.puts += 1
        self.put_bytes += len(data)
        await super().put(key, data, content_type=content_type, content_encoding=content_encoding)


#: Set by ``--s3``: moto's server and a bucket on it; bodies then go to S3 over HTTP, as in AWS.
S3_TARGET: tuple[str, str] | None = None


def open_blobs(blobs_dir: str) -> CountingBlobs | CountingS3:
    if S3_TARGET is None:
        return CountingBlobs(Path(blobs_dir))
    endpoint, bucket = S3_TARGET
    return CountingS3(bucket, region="us-east-1", endpoint_url=endpoint)


def start_moto() -> tuple[str, str]:
    """moto's S3 in a thread of this process, a bucket on it; returns (endpoint, bucket)."""
    import boto3  # type: ignore[import-untyped]  # only the --s3 run needs it; no stubs installed
    from moto.server import ThreadedMotoServer

    os.environ.update(
        {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}
    )
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server logs every request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    boto3.client("s3", region_name="us-east-1", endpoint_url=endpoint).create_bucket(Bucket="bench-bodies")
    return endpoint, "bench-bodies"


async def run_case(writer: LogWriter, batch: int, in_flight: int, total: int, make: Any = None) -> float:
    items = (make or records)(total)
    batches = [items[i : i + batch] for i in range(0, total, batch)]
    queue: asyncio.Queue[list[LogRecord]] = asyncio.Queue()
    for b in batches:
        queue.put_nowait(b)

    async def worker() -> None:
        while not queue.empty():
            await writer.write(queue.get_nowait())

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return total / (time.perf_counter() - started)


#: The size of the partitions' tables (heap + TOAST + indexes), their TOAST alone, and the rows.
_SIZES = """
SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) AS total,
       coalesce(sum(pg_relation_size(c.oid)), 0) AS heap,
       coalesce(sum(CASE WHEN c.reltoastrelid <> 0 THEN pg_total_relation_size(c.reltoastrelid) END), 0)
           AS toast,
       (SELECT count(*) FROM requests) AS rows,
       (SELECT coalesce(avg(pg_column_size(r.*)), 0) FROM requests r) AS tuple,
       (SELECT count(*) FROM requests WHERE body_inline IS NOT NULL) AS inline
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'requests'::regclass
"""


async def sizes(dsn: str) -> dict[str, float]:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("VACUUM ANALYZE requests")  # settle the free-space map before measuring
        r = await conn.fetchrow(_SIZES)
    finally:
        await conn.close()
    rows = max(int(r["rows"]), 1)
    return {
        "rows": int(r["rows"]),
        "inline_rows": int(r["inline"]),
        "bytes_per_row": round(int(r["total"]) / rows, 1),
        "heap_bytes_per_row": round(int(r["heap"]) / rows, 1),
        "toast_bytes_per_row": round(int(r["toast"]) / rows, 1),
        "tuple_bytes_avg": round(float(r["tuple"]), 1),
    }


async def threshold_run(inline: int, total: int, rounds: int) -> dict[str, Any]:
    """Every case at one threshold, in a database of its own; the rates, the PUTs and the row sizes."""
    async with throwaway_database() as dsn:
        logdb = PostgresLogDb(dsn, max_size=8)
        await logdb.migrate()
        await logdb.ensure_partitions(datetime.now(UTC))
        with tempfile.TemporaryDirectory() as blobs_dir:
            blobs = open_blobs(blobs_dir)
            writer = LogWriter(logdb, blobs, inline_bytes=inline)
            await run_case(writer, 100, 1, 500)  # warm-up: pool, price lookups, partitions
            cases: list[dict[str, Any]] = []
            for batch in (10, 100):
                for in_flight in (1, 4):
                    rates = [await run_case(writer, batch, in_flight, total) for _ in range(rounds)]
                    cases.append(
                        {
                            "batch": batch,
                            "in_flight": in_flight,
                            "records_per_s_median": statistics.median(rates),
                            "records_per_s": [round(r, 1) for r in rates],
                        }
                    )
            written = 500 + 4 * rounds * total
            result = {
                "inline_bytes": inline,
                "cases": cases,
                "puts_per_record": round(blobs.puts / written, 3),
                **await sizes(dsn),
            }
            await blobs.aclose()
        await logdb.aclose()
    return result


_WORDS = [
    "".join(random.Random(i).choices("abcdefghijklmnopqrstuvwxyz", k=random.Random(-i).randint(2, 9)))
    for i in range(2000)
]


def sized_record(target: int, rng: random.Random) -> LogRecord:
    """A chat record whose bodies' gzip JSON is about ``target`` bytes: a conversation of prose-like
    words (English compresses ~3x; these do about the same)."""
    words = max(8, target // 2)
    text = " ".join(rng.choice(_WORDS) for _ in range(words))
    half = len(text) // 2
    request = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text[:half]}]}
    response = {
        "id": "chatcmpl-x",
        "object": "chat.completion",
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text[half:]}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 100, "total_tokens": 200},
    }
    return chat_record(
        request_id=str(uuid.uuid4()),
        started_at=datetime.now(UTC),
        request_body=json.dumps(request),
        response_body=json.dumps(response),
    )


def compressed_size(record: LogRecord) -> int:
    return len(gzip.compress(json.dumps({"request": record.request_body, "response": record.response_body}).encode()))


async def sweep(total: int) -> list[dict[str, Any]]:
    """For bodies compressing to about each size: batch-100 rate and bytes per row, on the row vs in blobs."""
    out: list[dict[str, Any]] = []
    rng = random.Random(24)
    for target in (512, 1024, 2048, 4096, 8192, 16384):
        probe = [sized_record(target, rng) for _ in range(20)]
        size = statistics.median(compressed_size(r) for r in probe)
        entry: dict[str, Any] = {"target": target, "compressed_bytes_median": size}

        def make(n: int, target: int = target) -> list[LogRecord]:
            return [sized_record(target, rng) for _ in range(n)]

        for label, inline in (("blob", 0), ("row", 1024 * 1024)):
            async with throwaway_database() as dsn:
                logdb = PostgresLogDb(dsn, max_size=8)
                await logdb.migrate()
                await logdb.ensure_partitions(datetime.now(UTC))
                with tempfile.TemporaryDirectory() as blobs_dir:
                    writer = LogWriter(logdb, open_blobs(blobs_dir), inline_bytes=inline)
                    await run_case(writer, 100, 1, 200, make)
                    rate = await run_case(writer, 100, 1, total, make)
                    measured = await sizes(dsn)
                    await writer.blobs.aclose()
                await logdb.aclose()
            entry[label] = {"records_per_s": round(rate, 1), **measured}
        out.append(entry)
        blob, row = entry["blob"], entry["row"]
        print(
            f"{target:>6} {size:>10,.0f} {blob['records_per_s']:>10,.0f} {row['records_per_s']:>10,.0f}"
            f" {blob['bytes_per_row']:>10,.0f} {row['bytes_per_row']:>10,.0f} {row['toast_bytes_per_row']:>10,.0f}"
        )
    return out


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--inline", default=f"0,{INLINE_BODY_BYTES}", help="thresholds to compare (bytes)")
    parser.add_argument("--sweep", action="store_true", help="also compare body sizes on the row vs in blobs")
    parser.add_argument("--s3", action="store_true", help="bodies to S3 on moto's server instead of a directory")
    parser.add_argument("--dsn", help="a PostgreSQL server to make the throwaway databases on")
    parser.add_argument("--out", type=Path, help="also write the results here as JSON (bench/suite.py)")
    args = parser.parse_args()
    if args.dsn:  # the throwaway databases are made on the server this names
        os.environ["HELIPORT_TEST_PG_DSN"] = args.dsn
    thresholds = [int(t) for t in args.inline.split(",") if t.strip()]
    global S3_TARGET
    if args.s3:
        S3_TARGET = start_moto()
    runs: list[dict[str, Any]] = []
    print(f"{'inline':>6} {'batch':>5} {'in flight':>9} {'records/s (median of ' + str(args.rounds) + ')':>28}  rounds")
    for inline in thresholds:
        run = await threshold_run(inline, args.records, args.rounds)
        runs.append(run)
        for c in run["cases"]:
            rounds = ", ".join(f"{r:,.0f}" for r in c["records_per_s"])
            print(f"{inline:>6} {c['batch']:>5} {c['in_flight']:>9} {c['records_per_s_median']:>28,.0f}  {rounds}")
    print(f"\n{'inline':>6} {'PUTs/record':>11} {'on the row':>11} {'bytes/row':>9}", end="")
    print(f" {'heap':>7} {'TOAST':>7} {'tuple':>7}")
    for run in runs:
        print(f"{run['inline_bytes']:>6} {run['puts_per_record']:>11} {run['inline_rows']:>11,}", end="")
        print(
            f" {run['bytes_per_row']:>9,.0f} {run['heap_bytes_per_row']:>7,.0f} {run['toast_bytes_per_row']:>7,.0f}",
            end="",
        )
        print(f" {run['tuple_bytes_avg']:>7,.0f}")
    swept: list[dict[str, Any]] = []
    if args.sweep:
        print(f"\n{'target':>6} {'gzip size':>10} {'blob r/s':>10} {'row r/s':>10}", end="")
        print(f" {'blob B/row':>10} {'row B/row':>10} {'TOAST':>10}")
        swept = await sweep(min(args.records, 2000))
    if args.out:
        # "cases" stays the default threshold's (bench/report.py reads it); "inline" has every threshold.
        chosen = next((r for r in runs if r["inline_bytes"] == INLINE_BODY_BYTES), runs[-1])
        summary = {"records": args.records, "rounds": args.rounds, "cases": chosen["cases"], "inline": runs}
        if swept:
            summary["sweep"] = swept
        args.out.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
