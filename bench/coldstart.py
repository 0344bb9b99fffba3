"""Cold start of each Lambda entry: import time in a fresh interpreter, and resident memory.

For ``functions/proxy``, ``functions/api`` and ``functions/logger``: the module is imported by a new
``python`` process (the same work a Lambda init does before the first invocation), ``--runs`` times;
the median and the spread are reported. Each process then serves one request the way its function
would (the proxy a ``/healthcheck`` through its ASGI app, the API a query through its handler, the
logger an empty SQS batch) and reports its peak resident memory (``ru_maxrss``). Local adapters
(SQLite in a temporary data directory) stand in for AWS; the proxy's upstream client is created, as
at its lifespan start. Targets from the performance issue: proxy import <= 400 ms, <= 80 MB.

    .venv/bin/python bench/coldstart.py [--runs 10]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: Run in the child: import the entry (timed), serve one request, print JSON.
CHILD = r"""
import json, resource, sys, time, importlib.util, asyncio
started = time.perf_counter()
spec = importlib.util.spec_from_file_location("entry", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
imported = time.perf_counter() - started
kind = sys.argv[2]
if kind == "proxy":
    import httpx

    async def one() -> int:
        module.app._upstream()  # the pooled client, made at lifespan start on Lambda
        transport = httpx.ASGITransport(app=module.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://entry") as client:
            return (await client.get("/healthcheck")).status_code

    status = asyncio.run(one())
elif kind == "api":
    event = {"resource": "/{proxy+}", "path": "/v1/request/query", "httpMethod": "POST",
             "headers": {"content-type": "application/json"}, "multiValueHeaders": {},
             "queryStringParameters": None, "multiValueQueryStringParameters": None,
             "requestContext": {"resourcePath": "/{proxy+}", "httpMethod": "POST", "path": "/v1/request/query",
                                "stage": "v1", "requestId": "r", "identity": {"sourceIp": "127.0.0.1"}},
             "body": '{"filter": "all"}', "isBase64Encoded": False}
    status = module.handler(event, None)["statusCode"]  # 401: no key, but the whole stack ran
else:
    status = len(module.handler({"Records": []}, None)["batchItemFailures"])
rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"import_ms": imported * 1000, "rss_mb": rss_kb / 1024, "status": status}))
"""

ENTRIES = {
    "proxy": ROOT / "functions" / "proxy" / "app.py",
    "api": ROOT / "functions" / "api" / "app.py",
    "logger": ROOT / "functions" / "logger" / "app.py",
}


def measure(kind: str, runs: int) -> dict[str, float]:
    imports: list[float] = []
    rss: list[float] = []
    status = None
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as data_dir:
            env = {"HELIPORT_DATA_DIR": data_dir, "PATH": "/usr/bin:/bin", "AWS_LAMBDA_FUNCTION_NAME": kind}
            out = subprocess.run(
                [sys.executable, "-c", CHILD, str(ENTRIES[kind]), kind],
                capture_output=True,
                text=True,
                env=env,
                cwd=ROOT,
                check=True,
            )
        result = json.loads(out.stdout.strip().splitlines()[-1])
        imports.append(result["import_ms"])
        rss.append(result["rss_mb"])
        status = result["status"]
    return {
        "import_ms_median": round(statistics.median(imports), 1),
        "import_ms_min": round(min(imports), 1),
        "import_ms_max": round(max(imports), 1),
        "rss_mb_median": round(statistics.median(rss), 1),
        "first_request_result": status,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--out", type=Path, help="also write the results here as JSON (bench/suite.py)")
    args = parser.parse_args()
    entries: dict[str, dict[str, float]] = {}
    for kind in ENTRIES:
        got = entries[kind] = measure(kind, args.runs)
        print(
            f"{kind:7s} import {got['import_ms_median']:6.1f} ms (min {got['import_ms_min']:.1f}, "
            f"max {got['import_ms_max']:.1f})  peak RSS {got['rss_mb_median']:5.1f} MB  "
            f"first request -> {got['first_request_result']}"
        )
    if args.out:
        args.out.write_text(json.dumps({"runs": args.runs, "entries": entries}, indent=2) + "\n")


if __name__ == "__main__":
    main()
