"""heliport's performance evidence, one command: proxy overhead beside a peer gateway, TTFT, cold
start, memory over 100,000 requests, consumer throughput and query latency, in one run.

    python3 dev.py bench [--quick] [--phases proxy,ttft,coldstart,memory,consumer,query]
    (or: make bench; or: .venv/bin/python bench/suite.py ...)

Phases, in this order (each can be left out with ``--phases``):

* ``coldstart``: ``bench/coldstart.py``: import time of each Lambda entry in fresh interpreters
  (median of 10) and the resident memory after its first request; first, on a quiet machine.
* ``proxy``: one mock provider, and in front of it, each its own process: ``baseline`` (a bare
  pass-through, ``bench/baseline.py``), ``heliport`` (the proxy's Lambda entry with local adapters,
  no feature headers), the same process with a cache hit (``heliport-cache-hit``) and with a
  rate-limit policy (``heliport-ratelimit``), ``heliport-serve`` (the laptop's ``heliport serve``,
  in-process log consumer included) and ``litellm`` (the LiteLLM proxy, installed into
  ``.venv-litellm`` by this script, ``bench/peer.py``). wrk drives JSON and SSE at 1 and 32
  connections, 20 s per case; then interleaved rounds at 1 connection (targets alternate, order
  reversed every round, median of round medians) give the added p50 over direct.
* ``ttft``: time to the first SSE event through each gateway and direct, for a stream whose mock
  sends its first event after 50 ms; the targets alternate request by request.
* ``memory``: a fresh ``heliport serve`` proxies 100,000 requests (JSON and SSE alternating); its
  RSS is read after every 10,000, once its log consumer has caught up.
* ``deployed``: ``bench/deployed_path.py``: the proxy's Lambda entry with local adapters beside the
  AWS adapters against moto's server (log record by aioboto3 vs the lean sender, before and after
  the last byte): CPU per request, added p50, time to the last byte, and every record delivered.
* ``serve_p99``: ``bench/serve_p99.py``: ``heliport serve`` (log pipeline in its own process) against
  the bare pass-through at one connection, JSON and SSE, interleaved rounds: p50, p99 and their ratio
  (issue 24: serve's p99 within 2x), beside serve with its pipeline on a thread (the before).
* ``consumer`` and ``query``: ``bench/consumer.py`` (log records into PostgreSQL) and
  ``bench/query.py`` (the query API over a 1,000,000-row table), against the local server.

Output: a table on stdout; ``bench/results/suite-<UTC>.json`` (raw), ``suite-<UTC>.md`` (the
tables) and ``suite-<UTC>-*.png`` (plots, ``bench/report.py``). Every target is on 127.0.0.1;
every wait has a deadline; every child process is ended in ``finally``. Needs wrk
(``apt-get install -y wrk``) and, for ``consumer`` and ``query``, PostgreSQL on 127.0.0.1:5432.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# The path above makes `bench` importable when this runs as a script.
from bench import features, peer, report
from bench.features import prime_cache
from bench.run import (
    BENCH,
    BIN,
    CHAT_PATH,
    HOST,
    RESULTS,
    ROOT,
    SENT,
    WRK_JSON,
    Children,
    Mock,
    Noise,
    Target,
    child_env,
    free_port,
    interleaved,
    log_errors,
    logged_rows,
    machine,
    matrix,
    queue_rows,
    raise_on_sigterm,
    scratch_dir,
    start_mock,
    start_serve,
    wait_drained,
    wait_ready,
    write_bodies,
)

PHASES = ("coldstart", "proxy", "ttft", "memory", "consumer", "query", "deployed", "serve_p99")
MIXED_LUA = BENCH / "mixed.lua"
#: The mock's wait before the first SSE event in the TTFT phase.
TTFT_DELAY_MS = 50
LITELLM_STARTUP_TIMEOUT_S = 180.0
PG_DSN = os.environ.get("HELIPORT_BENCH_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


@dataclass(frozen=True)
class Settings:
    duration_s: int = 20
    warmup_s: int = 2
    connections: int = 32
    rounds: int = 7
    round_s: int = 2
    ttft_samples: int = 100
    memory_total: int = 100_000
    memory_step: int = 10_000
    memory_connections: int = 32
    coldstart_runs: int = 10
    consumer_records: int = 3000
    query_rows: int = 1_000_000
    query_repeat: int = 200

    @classmethod
    def quick(cls) -> Settings:
        """A smoke run of the whole suite in a few minutes; its numbers are not the evidence."""
        return cls(
            duration_s=3,
            warmup_s=1,
            rounds=3,
            round_s=1,
            ttft_samples=20,
            memory_total=10_000,
            memory_step=2_000,
            coldstart_runs=3,
            consumer_records=500,
            query_rows=50_000,
            query_repeat=30,
        )


# -- processes ---------------------------------------------------------------------------------------


def start_litellm(children: Children, scratch: Path, litellm: Path, mock_url: str, mock_pid: int) -> Target:
    port, config, log = free_port(), scratch / "litellm.json", scratch / "litellm.log"
    peer.write_config(config, mock_url, TTFT_DELAY_MS)
    env, key = peer.env(child_env())
    proc = children.start("litellm", peer.argv(litellm, config, HOST, port), env, log, cwd=scratch)
    deadline = time.monotonic() + LITELLM_STARTUP_TIMEOUT_S
    while True:  # LiteLLM takes seconds to import; wait for its liveness route before the real check
        children.check_alive()
        try:
            with urllib.request.urlopen(f"http://{HOST}:{port}/health/liveliness", timeout=2) as answer:
                if answer.status == 200:
                    break
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"LiteLLM did not start within {LITELLM_STARTUP_TIMEOUT_S:.0f}s")
        time.sleep(0.2)
    headers = (f"Authorization: Bearer {key}",)
    return Target("litellm", f"http://{HOST}:{port}{CHAT_PATH}", headers, {"proxy": proc.pid, "mock": mock_pid}, log)


def start_proxy_targets(children: Children, scratch: Path, litellm: Path | None) -> dict[str, Target]:
    """The mock and every target in front of it, in measuring order.

    The mock, the baseline and the Lambda entry's plain, rate-limited and cache-hit targets are
    ``bench/features.py``'s; ``heliport serve`` and the peer join them in front of the same mock.
    """
    targets, _ = features.start(children, scratch)
    direct = targets["direct"]
    mock = Mock(direct.url.removesuffix(CHAT_PATH), direct.pids["mock"], direct.log)
    targets["heliport-serve"] = start_serve(children, scratch, "heliport-serve", mock)
    if litellm is not None:
        targets["litellm"] = start_litellm(children, scratch, litellm, mock.url, mock.pid)
    return targets


# -- phases ------------------------------------------------------------------------------------------


def proxy_phase(children: Children, targets: Mapping[str, Target], scratch: Path, settings: Settings) -> dict[str, Any]:
    bodies, body_files = write_bodies(scratch)
    for name, target in targets.items():
        if name != "heliport-cache-hit":
            wait_ready(target, bodies, children)
    prime_cache(targets["heliport-cache-hit"], targets["heliport"].data_dir or scratch, bodies)
    print(f"suite: proxy matrix, {settings.duration_s} s per case after a {settings.warmup_s} s warm-up", flush=True)
    runs = matrix(
        targets,
        body_files,
        duration_s=settings.duration_s,
        warmup_s=settings.warmup_s,
        high=settings.connections,
        threads=1,
    )
    print(f"suite: interleaved rounds at 1 connection, {settings.rounds} x {settings.round_s} s", flush=True)
    rounds = interleaved(
        targets,
        body_files,
        connections=1,
        threads=1,
        rounds=settings.rounds,
        round_s=settings.round_s,
        warmup_s=settings.warmup_s,
        noise=Noise(),
    )
    serve = targets["heliport-serve"]
    assert serve.data_dir is not None
    return {
        "matrix": [_lean(asdict(run)) for run in runs],
        "interleaved_c1": rounds,
        "request_bodies": {k: v.decode() for k, v in bodies.items()},
        "log_check": {
            "heliport_serve_completed": SENT["heliport-serve"],
            "heliport_serve_log_rows": logged_rows(serve.data_dir),
            # One process serves the plain, rate-limited and cache-hit targets; each request queues a record.
            "heliport_completed": SENT["heliport"] + SENT["heliport-ratelimit"] + SENT["heliport-cache-hit"],
            "heliport_queued_records": queue_rows(targets["heliport"].data_dir or scratch),
        },
        "server_log_errors": {name: log_errors(t.log) for name, t in targets.items() if log_errors(t.log)},
    }


def _lean(run: dict[str, Any]) -> dict[str, Any]:
    """A wrk run without wrk's text output (the JSON keeps every number of it)."""
    run["raw"] = {k: v for k, v in run["raw"].items() if k != "text"}
    return run


async def _ttft_once(session: Any, target: Target, body: bytes, headers: Mapping[str, str]) -> float:
    started = time.perf_counter()
    async with session.post(target.url, data=body, headers=headers) as response:
        first: float | None = None
        async for line in response.content:
            if first is None and line.startswith(b"data:"):
                first = time.perf_counter() - started
        if response.status != 200 or first is None:
            raise RuntimeError(f"TTFT via {target.name}: HTTP {response.status}, first event seen: {first is not None}")
        return first


async def _ttft(targets: Mapping[str, Target], samples: int) -> dict[str, list[float]]:
    import aiohttp  # the project's own upstream client; same client cost for every target

    stream = {"model": "gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "Say hello."}]}
    names = list(targets)
    sessions = {name: aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) for name in names}
    plan: dict[str, tuple[bytes, dict[str, str]]] = {}
    for name, target in targets.items():
        headers = dict(h.split(": ", 1) for h in target.headers) | {"Content-Type": "application/json"}
        if name == "litellm":  # LiteLLM sends no client header upstream: its delayed model sets it
            body = {**stream, "model": peer.DELAYED_MODEL}
        else:
            body, headers["x-mock-delay-ms"] = stream, str(TTFT_DELAY_MS)
        plan[name] = (json.dumps(body).encode(), headers)
    out: dict[str, list[float]] = {name: [] for name in names}
    try:
        for index in range(samples + 5):  # 5 warm-ups: connections, pools
            order = names if index % 2 == 0 else names[::-1]
            for name in order:
                seconds = await _ttft_once(sessions[name], targets[name], *plan[name])
                if index >= 5:
                    out[name].append(seconds * 1000)
    finally:
        for session in sessions.values():
            await session.close()
    return out


def ttft_phase(targets: Mapping[str, Target], settings: Settings) -> dict[str, Any]:
    chosen = {n: t for n, t in targets.items() if n in {"direct", "baseline", "heliport", "heliport-serve", "litellm"}}
    print(f"suite: TTFT, {settings.ttft_samples} streams per target, first event after {TTFT_DELAY_MS} ms", flush=True)
    samples = asyncio.run(_ttft(chosen, settings.ttft_samples))
    for target in chosen.values():
        if target.drains:
            wait_drained(target)
    direct = samples["direct"]
    result: dict[str, Any] = {"delay_ms": TTFT_DELAY_MS, "samples": settings.ttft_samples, "targets": {}}
    for name, values in samples.items():
        ordered = sorted(values)
        result["targets"][name] = {
            "p50_ms": statistics.median(values),
            "p90_ms": ordered[int(len(ordered) * 0.9) - 1],
            "added_p50_ms": statistics.median(values) - statistics.median(direct),
            "paired_added_ms_median": statistics.median(v - d for v, d in zip(values, direct, strict=True)),
            "values_ms": [round(v, 3) for v in values],
        }
        print(f"  {name:15} TTFT p50 {result['targets'][name]['p50_ms']:7.2f} ms", flush=True)
    return result


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def run_to_limit(argv: Sequence[str], timeout_s: float = 660.0) -> str:
    """Run wrk with ``mixed.lua`` until it prints ``WRK_LIMIT``, then SIGINT it; its whole stdout."""
    proc = subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    timer = threading.Timer(timeout_s, proc.kill)
    timer.start()
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("WRK_LIMIT"):
                proc.send_signal(signal.SIGINT)
        if proc.wait() != 0:
            raise RuntimeError(f"wrk failed ({proc.returncode}): {''.join(lines)[-800:]}")
    finally:
        timer.cancel()
        if proc.poll() is None:
            proc.kill()
    return "".join(lines)


def memory_phase(scratch: Path, settings: Settings) -> dict[str, Any]:
    """RSS of a fresh ``heliport serve`` every ``memory_step`` requests, its consumer caught up each time."""
    children = Children()
    try:
        target = start_serve(children, scratch, "memory-serve", start_mock(children, scratch, "memory-mock"))
        bodies, files = write_bodies(scratch)
        wait_ready(target, bodies, children)
        points: list[dict[str, float]] = []
        done = 0
        print(
            f"suite: memory, {settings.memory_total:,} requests through heliport serve "
            f"(JSON and SSE alternating, {settings.memory_connections} connections)",
            flush=True,
        )
        while done < settings.memory_total:
            argv = ["wrk", "-t1", f"-c{settings.memory_connections}", "-d600s", "--timeout", "10s", "-s"]
            argv += [str(MIXED_LUA), target.url, "--", str(settings.memory_step), str(files["json"]), str(files["sse"])]
            stdout = run_to_limit([*argv, *target.headers])
            match = WRK_JSON.search(stdout)
            if match is None:
                raise RuntimeError(f"wrk printed no summary: {stdout[-800:]}")
            raw = json.loads(match.group(1))
            errors = sum(raw["errors"].values())
            done += int(raw["requests"])
            drain_s, _ = wait_drained(target)
            time.sleep(0.5)
            point = {"requests": done, "rss_mb": round(rss_mb(target.pids["proxy"]), 1), "errors": errors}
            points.append(point | {"drain_s": round(drain_s, 2)})
            print(f"  after {done:7,} requests: RSS {point['rss_mb']:.1f} MB (errors {errors})", flush=True)
        children.check_alive()
        assert target.data_dir is not None
        first, last = points[0], points[-1]
        return {
            "connections": settings.memory_connections,
            "points": points,
            "rss_first_mb": first["rss_mb"],
            "rss_last_mb": last["rss_mb"],
            "growth": last["rss_mb"] / first["rss_mb"] - 1,
            "log_rows": logged_rows(target.data_dir),
            "server_log_errors": log_errors(target.log),
        }
    finally:
        children.stop_all()


def script_phase(name: str, argv: Sequence[str], out: Path) -> dict[str, Any]:
    """Run one of the bench scripts that measure on their own; it writes its results to ``out``."""
    print(f"suite: {name}: {' '.join(Path(a).name if a.startswith('/') else a for a in argv)}", flush=True)
    done = subprocess.run([str(BIN / "python"), *argv, "--out", str(out)], cwd=ROOT, env=child_env(), check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{name} failed with {done.returncode}")
    return json.loads(out.read_text())


# -- main --------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a smoke run of every phase (minutes, not evidence)")
    parser.add_argument("--phases", default=",".join(PHASES), help=f"comma-separated subset of {','.join(PHASES)}")
    parser.add_argument("--no-peer", action="store_true", help="leave LiteLLM out (no install, no peer ratios)")
    parser.add_argument("--duration", type=int, help="seconds per proxy case (default 20)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch dir (logs, SQLite files)")
    args = parser.parse_args(argv)
    phases = [p for p in args.phases.split(",") if p]
    unknown = set(phases) - set(PHASES)
    if unknown:
        parser.error(f"--phases: unknown {sorted(unknown)}; choose from {','.join(PHASES)}")
    if shutil.which("wrk") is None and {"proxy", "ttft", "memory", "serve_p99"} & set(phases):
        print("suite: wrk is not installed; on Debian/Ubuntu: apt-get update && apt-get install -y wrk")
        return 2
    settings = Settings.quick() if args.quick else Settings()
    if args.duration:
        settings = Settings(**{**asdict(settings), "duration_s": args.duration})
    signal.signal(signal.SIGTERM, raise_on_sigterm)

    started = datetime.now(UTC)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    RESULTS.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "started_at": started.isoformat(),
        "command": " ".join(["bench/suite.py", *(argv if argv is not None else sys.argv[1:])]),
        "machine": machine(),
        "settings": asdict(settings) | {"quick": args.quick, "phases": phases},
    }
    litellm = None
    if not args.no_peer and {"proxy", "ttft"} & set(phases):
        print(f"suite: peer gateway {peer.version()} in {peer.VENV.name}", flush=True)
        litellm = peer.ensure_installed()
        results["peer"] = {"name": "litellm", "requirement": peer.version()}
    with scratch_dir(args.keep) as scratch:
        if "coldstart" in phases:
            runs = ["bench/coldstart.py", "--runs", str(settings.coldstart_runs)]
            results["coldstart"] = script_phase("coldstart", runs, scratch / "coldstart.json")
        if {"proxy", "ttft"} & set(phases):
            children = Children()
            try:
                print("suite: starting the mock, the baseline, heliport (x2) and the peer", flush=True)
                targets = start_proxy_targets(children, scratch, litellm)
                if "proxy" in phases:
                    results["proxy"] = proxy_phase(children, targets, scratch, settings)
                if "ttft" in phases:
                    results["ttft"] = ttft_phase(targets, settings)
                children.check_alive()
            finally:
                children.stop_all()
        if "memory" in phases:
            results["memory"] = memory_phase(scratch, settings)
        if "consumer" in phases:
            cmd = ["bench/consumer.py", "--records", str(settings.consumer_records), "--dsn", PG_DSN]
            results["consumer"] = script_phase("consumer", cmd, scratch / "consumer.json")
        if "query" in phases:
            cmd = ["bench/query.py", "--rows", str(settings.query_rows), "--repeat", str(settings.query_repeat)]
            results["query"] = script_phase("query", [*cmd, "--dsn", PG_DSN], scratch / "query.json")
        if "deployed" in phases:
            cmd = ["bench/deployed_path.py", *(["--quick"] if args.quick else [])]
            results["deployed"] = script_phase("deployed", cmd, scratch / "deployed.json")
        if "serve_p99" in phases:
            cmd = ["bench/serve_p99.py", "--with-thread", *(["--quick"] if args.quick else [])]
            results["serve_p99"] = script_phase("serve_p99", cmd, scratch / "serve_p99.json")

    results["finished_at"] = datetime.now(UTC).isoformat()
    results["summary"] = report.summarise(results)
    out = RESULTS / f"suite-{stamp}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    tables = report.markdown(results)
    (RESULTS / f"suite-{stamp}.md").write_text(tables + "\n")
    plots = report.plots(results, RESULTS / f"suite-{stamp}")
    print("\n" + tables)
    print(f"\nresults: {out.relative_to(ROOT)}; plots: {', '.join(str(p.relative_to(ROOT)) for p in plots)}")
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:
        print("suite: interrupted; every child process was stopped", file=sys.stderr)
        raise SystemExit(130) from None
