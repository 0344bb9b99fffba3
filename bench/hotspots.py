"""Where a request's CPU goes in heliport versus the bare baseline, sampled with py-spy under wrk load.

    .venv/bin/pip install py-spy      # once
    .venv/bin/python bench/hotspots.py [--scenario json|sse] [--connections 32] [--seconds 12]
                                       [--targets heliport-proxy,baseline]

``bench/run.py`` says *how much* heliport costs; this says *where*. Each proxy gets the same wrk load
while py-spy samples it (targets as in run.py: ``heliport-proxy`` is the request hot path alone,
``heliport`` is ``heliport serve`` with its in-process log consumer, sampled during the load only).
Each sample is charged to the deepest frame that names a step (header parsing, auth, upstream
client, log queue, ...), and a step's share of samples times the process's
measured CPU per request gives microseconds per request. Samples count time a thread was not idle,
which on a contended machine includes waiting for a core, so the µs are estimates; the shares are the
finding. Threads parked in ``Condition.wait`` (heliport's idle queue writer) are left out.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import run  # bench/run.py: the same processes, readiness checks and wrk driver

# Deepest matching frame wins, so ``uuid4`` inside ``parse_headers`` counts as "request id", not "headers";
# within one frame, the first step listed wins. A pattern ending in "." matches a class's methods.
STEPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("idle wait (not CPU)", ("Condition.wait",)),
    (
        "log consumer (heliport serve only)",
        (
            "LocalConsumer.",
            "LocalPipeline.",
            "LogWriter.",
            "SqliteQueue.receive",
            "SqliteQueue.delete",
            "SqliteLogDb.",
            "LocalBlobStore.",
            "build_row",
            "extract_usage",
        ),
    ),
    ("request id: uuid4 (os.urandom)", ("uuid4", "UUID.__init__")),
    ("header parsing", ("parse_headers",)),
    ("auth: sha256 + cache", ("Authenticator.authenticate", "hash_key")),
    ("routing", ("TargetResolver.resolve",)),
    ("request body read", ("_read_body", "Request.body", "Request.stream")),
    ("body peek (msgspec)", ("peek_body", "_with_stream_usage")),
    ("log record build", ("Exchange.record",)),
    (
        "queue hand-off: msgspec encode + notify",
        ("SpoolingQueue.send", "SqliteQueue.send", "ProxyHandler._send_record", "ProxyHandler._log"),
    ),
    ("SQLite group commit (writer thread)", ("SqliteQueue._run",)),
    ("exchange + tee + header copy", ("Exchange.__init__", "Tee.", "ProxyHandler._response_headers")),
    ("disconnect watcher", ("DisconnectWatch.",)),
    (
        "task creation + anyio cancel scopes",
        (
            "create_task",
            "ensure_future",
            "_ensure_future",
            "TaskGroup.",
            "create_collapsing_task_group",
            "CancelScope.",
        ),
    ),
    (
        "upstream body relay (aiohttp)",
        ("_AiohttpResponse.chunks", "AsyncStreamIterator.", "StreamReader.", "forward.<locals>.relay"),
    ),
    (
        "upstream request (aiohttp)",
        ("ClientSession.", "AiohttpTransport.send", "ClientRequest.", "ClientResponse.", "BaseConnector."),
    ),
    ("upstream socket reads (aiohttp)", ("ResponseHandler.",)),
    (
        "response send (uvicorn)",
        (
            "RequestResponseCycle.send",
            "wrap_app_handling_exceptions.<locals>.wrapped_app.<locals>.sender",
            "ServerErrorMiddleware.__call__.<locals>._send",
        ),
    ),
    ("request parse (uvicorn/httptools)", ("HttpToolsProtocol.", "RequestResponseCycle.receive")),
    ("Starlette streaming response", ("StreamingResponse.",)),
    (
        "Starlette routing + middleware",
        (
            "Starlette.",
            "ServerErrorMiddleware.",
            "ExceptionMiddleware.",
            "Router.",
            "Route.",
            "wrap_app_handling_exceptions.",
            "request_response.",
        ),
    ),
    ("proxy glue (heliport app / baseline handler)", ("ProxyHandler.", "Heliport.__call__", "forward")),
)
OTHER = "event loop + other"


def classify(frames: Sequence[str]) -> str:
    for frame in reversed(frames):
        function = frame.split(" (", 1)[0]
        for step, names in STEPS:
            if any(function == p or (p.endswith(".") and function.startswith(p)) for p in names):
                return step
    return OTHER


def steps_of(raw: Path) -> Counter[str]:
    """Samples per step from py-spy's ``raw`` (collapsed stack) output."""
    counts: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            counts[classify(stack.split(";")[1:])] += int(count)
    return counts


def micro(scratch: Path, response: bytes, request: bytes) -> list[tuple[str, float]]:
    """heliport's own per-request steps timed in isolation (best of 5): what contention cannot inflate.

    Uses heliport's internals read-only (``Exchange`` and ``Tee`` are private, and that is the point:
    they are what the proxy runs per request).
    """
    import asyncio
    import timeit
    import uuid

    from heliport import exchange as core
    from heliport.auth import Authenticator, bootstrap_local_org
    from heliport.config import Settings
    from heliport.headers import parse_headers
    from heliport.logs.record import LogRecord
    from heliport.proxy.targets import TargetResolver
    from heliport.store.keys import SqliteKeyStore
    from heliport.store.queue import SqliteQueue

    settings = Settings(data_dir=scratch / "micro", upstream_overrides={"oai": "http://127.0.0.1:9"})
    loop = asyncio.new_event_loop()
    store = SqliteKeyStore(settings.data_dir / "keys.sqlite3")
    _, plain = loop.run_until_complete(bootstrap_local_org(store))
    assert plain is not None
    auth = Authenticator(store, ttl=600)
    raw_headers = [
        (b"host", b"127.0.0.1:8585"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(request)).encode()),
        (b"authorization", b"Bearer sk-bench-upstream-key"),
        (b"helicone-auth", b"Bearer " + plain.encode()),
    ]
    options, _ = parse_headers(raw_headers)
    key = loop.run_until_complete(auth.authenticate(plain))
    resolver = TargetResolver(settings)
    target = resolver.resolve("oai/v1/chat/completions", b"", options)
    scope = {"method": "POST", "path": "/v1/gateway/oai/v1/chat/completions"}

    def exchange_and_record() -> LogRecord:
        exchange = core.Exchange(scope, options, key, core.Tee(settings.max_logged_body_bytes))
        exchange.body, exchange.peek, exchange.target, exchange.status = (
            request,
            core.peek_body(request),
            target,
            200,
        )
        exchange.tee.add(response)
        return exchange.record()

    record = exchange_and_record()
    encoder = core.msgspec.json.Encoder()

    def authenticate_cached() -> None:
        coroutine = auth.authenticate(plain)
        with contextlib.suppress(StopIteration):  # a cache hit never suspends: drive it by hand
            coroutine.send(None)

    def best(fn: object) -> float:
        timer = timeit.Timer(fn)  # type: ignore[arg-type]  # timeit takes any zero-argument callable
        number, _ = timer.autorange()
        return min(timer.repeat(5, number)) / number * 1e6

    rows = [
        ("uuid4 request id (inside header parsing)", best(uuid.uuid4)),
        ("parse_headers (5 headers, incl. uuid4)", best(lambda: parse_headers(raw_headers))),
        ("authenticate, cached (sha256 + dict)", best(authenticate_cached)),
        ("TargetResolver.resolve", best(lambda: resolver.resolve("oai/v1/chat/completions", b"", options))),
        ("peek_body (msgspec)", best(lambda: core.peek_body(request))),
        ("Exchange + tee + LogRecord build", best(exchange_and_record)),
        ("LogRecord msgspec encode", best(lambda: encoder.encode(record))),
    ]
    queue = SqliteQueue(settings.data_dir / "log-queue.sqlite3")

    async def sends(total: int, concurrent: int) -> float:
        started = time.process_time()
        for _ in range(total // concurrent):
            await asyncio.gather(*(queue.send(record) for _ in range(concurrent)))
        return (time.process_time() - started) / total * 1e6

    for concurrent in (1, 32):
        rows.append(
            (
                f"SqliteQueue.send, {concurrent} at a time (process CPU)",
                loop.run_until_complete(sends(2048, concurrent)),
            )
        )
    loop.run_until_complete(queue.aclose())
    loop.run_until_complete(store.aclose())
    loop.close()
    return rows


def profile(target: run.Target, scenario: str, body_file: Path, args: argparse.Namespace, out: Path) -> run.WrkRun:
    pyspy = shutil.which("py-spy", path=str(run.BIN)) or shutil.which("py-spy")
    assert pyspy is not None
    spy_argv = [pyspy, "record", "-p", str(target.pids["proxy"]), "-d", str(args.seconds + 1)]
    spy_argv += ["-r", str(args.rate), "-f", "raw", "-o", str(out), "--threads"]
    spy = subprocess.Popen(spy_argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        time.sleep(0.5)  # py-spy attaches before the load starts
        result = run.run_wrk(
            target, scenario, body_file, connections=args.connections, threads=1, duration_s=args.seconds
        )
        _, err = spy.communicate(timeout=args.seconds + 30)
        if spy.returncode != 0:
            raise RuntimeError(f"py-spy failed: {err.decode(errors='replace')[-500:]}")
        return result
    finally:
        if spy.poll() is None:
            spy.kill()
            spy.wait(timeout=5)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--scenario", choices=sorted(run.SCENARIOS), default="json")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=int, default=12)
    parser.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    parser.add_argument("--keep", action="store_true", help="keep the raw stacks (flamegraph.pl-ready)")
    parser.add_argument("--micro-only", action="store_true", help="only time heliport's steps in isolation")
    parser.add_argument("--targets", default="heliport-proxy,baseline", help="proxies to sample, comma-separated")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None or (shutil.which("py-spy", path=str(run.BIN)) or shutil.which("py-spy")) is None:
        print("bench: needs wrk (apt-get install -y wrk) and py-spy (.venv/bin/pip install py-spy)")
        return 2
    signal.signal(signal.SIGTERM, run.raise_on_sigterm)
    children = run.Children()
    shares: dict[str, dict[str, float]] = {}
    per_request: dict[str, float] = {}
    with run.scratch_dir(args.keep) as scratch:
        try:
            bodies = {k: json.dumps(v, separators=(",", ":")).encode() for k, v in run.SCENARIOS.items()}
            body_file = scratch / f"{args.scenario}.json"
            body_file.write_bytes(bodies[args.scenario])
            targets = run.start_all(children, scratch)
            for target in targets.values():
                run.wait_ready(target, bodies, children)
            direct = targets["direct"]
            _, response = run.post(direct.url, bodies[args.scenario], direct.headers)
            micro_rows = micro(scratch, response, bodies[args.scenario])
            names = [] if args.micro_only else [n.strip() for n in args.targets.split(",") if n.strip()]
            for name in names:
                target = targets[name]
                run.run_wrk(target, args.scenario, body_file, connections=args.connections, threads=1, duration_s=2)
                result = profile(target, args.scenario, body_file, args, scratch / f"{name}.stacks")
                counts = steps_of(scratch / f"{name}.stacks")
                counts.pop("idle wait (not CPU)", None)
                total = sum(counts.values()) or 1
                shares[name] = {step: n / total for step, n in counts.most_common()}
                per_request[name] = result.cpu_us_per_request["proxy"]
                print(f"{name}: {result.rps:,.0f} req/s, {per_request[name]:.0f} µs CPU/request, {total} samples")
        finally:
            children.stop_all()
    print(f"\nheliport's own steps in isolation ({args.scenario.upper()} bodies; µs per call, best of 5)\n")
    print("| step | µs |\n|---|---:|")
    for step, us in micro_rows:
        print(f"| {step} | {us:.1f} |")
    if args.micro_only:
        return 0
    steps = sorted({s for v in shares.values() for s in v}, key=lambda s: -shares[names[0]].get(s, 0.0))
    print(f"\n{args.scenario.upper()} at {args.connections} connections; µs = share x measured CPU per request\n")
    print("| step | " + " | ".join(f"{n} share | {n} µs/req" for n in names) + " |")
    print("|---|" + "---:|---:|" * len(names))
    for step in steps:
        cells = []
        for name in names:
            share = shares[name].get(step, 0.0)
            cells += [f"{share:.1%}", f"{share * per_request[name]:.0f}"] if share else ["-", "-"]
        print(f"| {step} | {' | '.join(cells)} |")
    return 0


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
