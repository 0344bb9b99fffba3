"""Consumer throughput: LogRecords -> PostgreSQL rows + gzip bodies in the blob store, in records/s.

Runs the real ``LogWriter`` (usage, cost, previews, gzip, blob put, one batch insert) against a
throwaway database on the local PostgreSQL server and a blob directory. Batches of 10 (what SQS
delivers by default) and 100 (the template's batch size), each one batch at a time and with 4
batches in flight (the consumer function's MaximumConcurrency). Usage:

    .venv/bin/python bench/consumer.py [--records 4000] [--dsn postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from heliport.logs.consumer import LogWriter  # after the path tweak, so tests.* imports
from heliport.logs.record import LogRecord  # as above
from heliport.store.blobs import LocalBlobStore  # as above
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


async def run_case(writer: LogWriter, batch: int, in_flight: int, total: int) -> float:
    items = records(total)
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


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dsn", help="a PostgreSQL server to make the throwaway database on")
    parser.add_argument("--out", type=Path, help="also write the results here as JSON (bench/suite.py)")
    args = parser.parse_args()
    cases: list[dict[str, object]] = []
    if args.dsn:  # the throwaway database is made on the server this names
        os.environ["HELIPORT_TEST_PG_DSN"] = args.dsn
    async with throwaway_database() as dsn:
        logdb = PostgresLogDb(dsn, max_size=8)
        await logdb.migrate()
        await logdb.ensure_partitions(datetime.now(UTC))
        with tempfile.TemporaryDirectory() as blobs_dir:
            writer = LogWriter(logdb, LocalBlobStore(Path(blobs_dir)))
            await run_case(writer, 100, 1, 500)  # warm-up: pool, price lookups, partitions
            print(f"{'batch':>5} {'in flight':>9} {'records/s (median of ' + str(args.rounds) + ')':>28}  rounds")
            for batch in (10, 100):
                for in_flight in (1, 4):
                    rates = [await run_case(writer, batch, in_flight, args.records) for _ in range(args.rounds)]
                    rounds = ", ".join(f"{r:,.0f}" for r in rates)
                    print(f"{batch:>5} {in_flight:>9} {statistics.median(rates):>28,.0f}  {rounds}")
                    cases.append(
                        {
                            "batch": batch,
                            "in_flight": in_flight,
                            "records_per_s_median": statistics.median(rates),
                            "records_per_s": [round(r, 1) for r in rates],
                        }
                    )
        await logdb.aclose()
    if args.out:
        summary = {"records": args.records, "rounds": args.rounds, "cases": cases}
        args.out.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
