"""What the header-activated features cost: a cache hit, and a rate-limit policy, measured in one run.

    .venv/bin/python bench/features.py [--rounds 7] [--round-seconds 2] [--quick]

Processes (as in ``bench/run.py``, whose machinery this reuses): the mock provider; heliport's
Lambda entry (``functions/proxy/app.py`` under uvicorn, local adapters: the SQLite log queue, cache
and counters); ``bench/baseline.py``, a bare pass-through; and ``bench/bare_cache.py``, a bare
server answering from the very entry heliport stored, reading the same SQLite file.

Targets, all measured in interleaved rounds (``bench.run.interleaved``) at 1 and at 32 connections:

* ``direct``: the mock; ``baseline``: the bare pass-through;
* ``heliport``: no feature headers;
* ``heliport-ratelimit``: ``Helicone-RateLimit-Policy`` with a quota no run can reach, so every
  request pays the limiter (one conditional write to the counter store) and is then proxied;
* ``heliport-cache-hit``: ``Helicone-Cache-Enabled`` on a primed entry: every request is a hit;
* ``bare-cache-hit``: the same entry from the same file with nothing else done.

Reported: cache hit p50 added over the bare hit (target <= 1 ms), the rate-limit policy's added p50
and its throughput against no policy. Raw results: ``bench/results/features-<UTC>.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import signal
import sqlite3
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# The path above makes `bench` importable when this runs as a script.
from bench.run import (
    BENCH,
    BIN,
    HOST,
    Children,
    Noise,
    Target,
    child_env,
    free_port,
    interleaved,
    machine,
    post,
    raise_on_sigterm,
    scratch_dir,
    start_baseline,
    start_lambda_entry,
    start_mock,
    wait_ready,
    write_bodies,
    write_results,
)

TARGET_CACHE_HIT_ADDED_MS = 1.0
#: A quota no benchmark reaches: the limiter runs on every request and never refuses.
POLICY = "Helicone-RateLimit-Policy: 1000000000;w=3600"
CACHE = ("Helicone-Cache-Enabled: true", "Helicone-Cache-Seed: bench")


def start(children: Children, scratch: Path) -> tuple[dict[str, Target], Path]:
    mock = start_mock(children, scratch)
    heliport = start_lambda_entry(children, scratch, "heliport", mock)
    assert heliport.data_dir is not None
    targets = {
        "direct": mock.direct(),
        "baseline": start_baseline(children, scratch, mock),
        "heliport": heliport,
        "heliport-ratelimit": dataclasses.replace(
            heliport, name="heliport-ratelimit", headers=(*heliport.headers, POLICY)
        ),
        # A hit never reaches the mock.
        "heliport-cache-hit": dataclasses.replace(
            heliport,
            name="heliport-cache-hit",
            headers=(*heliport.headers, *CACHE),
            pids={"proxy": heliport.pids["proxy"]},
            data_dir=None,
        ),
    }
    return targets, heliport.data_dir


def prime_cache(target: Target, data_dir: Path, bodies: Mapping[str, bytes]) -> dict[str, str]:
    """One miss per scenario stores its entry; returns each scenario's slot key in the cache file."""
    db = data_dir / "cache.sqlite3"
    keys: dict[str, str] = {}
    for scenario, body in bodies.items():
        status, _ = post(target.url, body, target.headers)
        if status != 200:
            raise RuntimeError(f"priming the cache for {scenario}: HTTP {status}")
        deadline = time.monotonic() + 10
        while True:  # the entry is written just after the response
            with sqlite3.connect(db) as conn:
                new = {row[0] for row in conn.execute("SELECT key FROM cache")} - set(keys.values())
            if new:
                keys[scenario] = new.pop()
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"no cache entry appeared for {scenario}")
            time.sleep(0.05)
        status, _ = post(target.url, body, target.headers)
        if status != 200:
            raise RuntimeError(f"cache hit for {scenario}: HTTP {status}")
    return keys


def start_bare_cache(children: Children, scratch: Path, data_dir: Path, scenario: str, key: str) -> Target:
    port, log = free_port(), scratch / f"bare-cache-{scenario}.log"
    argv = [str(BIN / "python"), str(BENCH / "bare_cache.py"), "--host", HOST, "--port", str(port)]
    proc = children.start(
        f"bare-cache-{scenario}", [*argv, "--db", str(data_dir / "cache.sqlite3"), "--key", key], child_env(), log
    )
    target = Target("bare-cache-hit", f"http://{HOST}:{port}/", (), {"proxy": proc.pid}, log)
    deadline = time.monotonic() + 30
    while True:
        children.check_alive()
        try:
            if post(target.url, b"{}", ())[0] == 200:
                return target
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("bare cache server did not start")
        time.sleep(0.05)


def summarise(results: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The headline numbers from each scenario x connections result of ``interleaved``."""
    out: dict[str, Any] = {}
    for label, result in results.items():
        t = result["targets"]
        p50 = {name: entry["median_p50_ms"] for name, entry in t.items()}
        rps = {name: entry["median_rps"] for name, entry in t.items()}
        out[label] = {
            "p50_ms": p50,
            "rps": rps,
            "cache_hit_added_over_bare_hit_ms": p50["heliport-cache-hit"] - p50["bare-cache-hit"],
            "ratelimit_added_p50_ms": p50["heliport-ratelimit"] - p50["heliport"],
            "ratelimit_rps_vs_none": rps["heliport-ratelimit"] / rps["heliport"],
            "heliport_added_over_direct_ms": p50["heliport"] - p50["direct"],
        }
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds (default 7)")
    parser.add_argument("--round-seconds", type=int, default=2, help="seconds per target per round (default 2)")
    parser.add_argument("--connections", type=int, default=32, help="the high-concurrency case (default 32)")
    parser.add_argument("--quick", action="store_true", help="3 rounds of 1 s")
    parser.add_argument("--retries", type=int, default=2, help="extra attempts at a disturbed round (default 2)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch dir")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("bench: wrk is not installed; on Debian/Ubuntu: sudo apt-get install -y wrk")
        return 2
    rounds, round_s = (3, 1) if args.quick else (args.rounds, args.round_seconds)
    signal.signal(signal.SIGTERM, raise_on_sigterm)
    started = datetime.now(UTC)
    children = Children()
    results: dict[str, Any] = {}
    with scratch_dir(args.keep) as scratch:
        try:
            bodies, body_files = write_bodies(scratch)
            targets, data_dir = start(children, scratch)
            for name, target in targets.items():
                if name != "heliport-cache-hit":
                    wait_ready(target, bodies, children)
            keys = prime_cache(targets["heliport-cache-hit"], data_dir, bodies)
            for scenario, key in keys.items():
                scenario_targets = {
                    **targets,
                    "bare-cache-hit": start_bare_cache(children, scratch, data_dir, scenario, key),
                }
                for connections in (1, args.connections):
                    print(f"bench: {scenario}, {connections} connection(s), {rounds} rounds x {round_s} s", flush=True)
                    results[f"{scenario}-c{connections}"] = interleaved(
                        scenario_targets,
                        {scenario: body_files[scenario]},
                        connections=connections,
                        threads=1,
                        rounds=rounds,
                        round_s=round_s,
                        warmup_s=1,
                        noise=Noise(retries=args.retries),
                    )[scenario]
            children.check_alive()
        finally:
            children.stop_all()
    summary = summarise(results)
    print(
        "\n| case | heliport over direct | cache hit over bare hit | rate limit added p50 | rate limit req/s vs none |"
    )
    print("|---|---|---|---|---|")
    for label, s in summary.items():
        print(
            f"| {label} | {s['heliport_added_over_direct_ms']:+.3f} ms "
            f"| {s['cache_hit_added_over_bare_hit_ms']:+.3f} ms "
            f"| {s['ratelimit_added_p50_ms']:+.3f} ms | {s['ratelimit_rps_vs_none']:.0%} |"
        )
    worst = max(s["cache_hit_added_over_bare_hit_ms"] for label, s in summary.items() if label.endswith("-c1"))
    print(
        f"\ncache hit added p50 at 1 connection (worst scenario): {worst:.3f} ms "
        f"(target <= {TARGET_CACHE_HIT_ADDED_MS} ms)"
    )
    document = {
        "machine": machine(),
        "settings": {
            "rounds": rounds,
            "round_s": round_s,
            "connections": [1, args.connections],
            "retries": args.retries,
        },
        "interleaved": results,
        "summary": summary,
    }
    write_results("features", started, document)
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:
        print("bench: interrupted; every child process was stopped", file=sys.stderr)
        raise SystemExit(130) from None
