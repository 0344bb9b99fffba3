"""What handing the log record over before the response's last byte costs a client (issue 18).

    .venv/bin/python bench/log_handoff.py [--rounds 5 --round-seconds 3]      (~4-5 min)

heliport's proxy finishes a request's log hand-off (the commit to its SQLite queue) before it sends
the terminating chunk, so a client that saw a complete answer saw a durable record
(``HELIPORT_LOG_BEFORE_LAST_BYTE=true``, the default). The old order sent the last byte first and
queued the record after. This bench measures both orders in one run:

* the mock provider (``python -m tests.mock_provider``);
* ``before``: ``heliport serve`` with ``HELIPORT_LOG_BEFORE_LAST_BYTE=true``;
* ``after``: ``heliport serve`` with ``HELIPORT_LOG_BEFORE_LAST_BYTE=false``;
* wrk with ``bench/post.lua``, at 1 and at 16 connections, for a JSON chat completion and an SSE
  stream.

Each case is a set of short interleaved rounds (the order flips every round, so a trend over the
run lands on both alike); after every run the bench waits for that serve's consumer to empty its
queue and charges the catch-up CPU to the run (``bench/run.py``'s ``run_wrk``). Per target it
prints the medians over rounds of p50/p90/p99 latency, req/s (during the load, and including the
consumer's catch-up) and proxy CPU per request (catch-up included), and per case the median of
the per-round ratios before/after. Raw results go to
``bench/results/log-handoff-<UTC>.json``. Processes, readiness checks and the wrk driver come from
``bench/run.py``; every child is stopped in ``finally``.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import statistics
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.run import (
    SENT,
    Children,
    Target,
    WrkRun,
    _print_run,
    _spread,
    log_errors,
    logged_rows,
    machine,
    raise_on_sigterm,
    run_wrk,
    scratch_dir,
    start_mock,
    start_serve,
    wait_quiet,
    wait_ready,
    write_bodies,
    write_results,
)

#: target name -> HELIPORT_LOG_BEFORE_LAST_BYTE
ORDERS = {"before": "true", "after": "false"}
#: What each round compares, as new / old: > 1 means the new order is higher (slower, for latency).
METRICS = ("p50_ms", "p90_ms", "p99_ms", "rps", "sustained_rps", "proxy_cpu_us")


def start(children: Children, scratch: Path) -> dict[str, Target]:
    """The mock and one ``heliport serve`` per order, all on 127.0.0.1."""
    mock = start_mock(children, scratch)
    return {
        name: start_serve(children, scratch, name, mock, HELIPORT_LOG_BEFORE_LAST_BYTE=flag)
        for name, flag in ORDERS.items()
    }


def metric(run: WrkRun, name: str) -> float:
    return run.total_proxy_cpu_us if name == "proxy_cpu_us" else float(getattr(run, name))


def measure(
    targets: Mapping[str, Target], scenario: str, body_file: Path, connections: int, args: argparse.Namespace
) -> dict[str, Any]:
    """One case: a warm-up per target, then ``args.rounds`` rounds with the order flipped each round."""
    for target in targets.values():
        run_wrk(target, scenario, body_file, connections=connections, threads=1, duration_s=args.warmup_seconds)
    runs: dict[str, list[WrkRun]] = {name: [] for name in targets}
    for index in range(args.rounds):
        wait_quiet(args.quiet_threshold, args.max_quiet_wait)
        for name in list(targets)[:: 1 if index % 2 == 0 else -1]:
            run = run_wrk(
                targets[name], scenario, body_file, connections=connections, threads=1, duration_s=args.round_seconds
            )
            _print_run(run)
            runs[name].append(run)
    medians = {
        name: {
            **{m: statistics.median(metric(r, m) for r in rs) for m in METRICS},
            "proxy_cpu_us_during_load": statistics.median(r.cpu_us_per_request["proxy"] for r in rs),
            "proxy_cpu_us_after_load": statistics.median(r.deferred_cpu_us_per_request for r in rs),
            "foreign_cores": statistics.median(r.foreign_cores for r in rs),
            "errors": sum(sum(r.errors.values()) for r in rs),
        }
        for name, rs in runs.items()
    }
    pairs = list(zip(runs["before"], runs["after"], strict=True))
    return {
        "scenario": scenario,
        "connections": connections,
        "medians": medians,
        "ratio_before_over_after": {m: _spread([metric(b, m) / metric(a, m) for b, a in pairs]) for m in METRICS},
        "added_p50_ms": _spread([b.p50_ms - a.p50_ms for b, a in pairs]),
        "disturbed_rounds": sum(max(b.foreign_cores, a.foreign_cores) > args.quiet_threshold for b, a in pairs),
        "runs": {name: [asdict(r) for r in rs] for name, rs in runs.items()},
    }


def table(cases: Sequence[Mapping[str, Any]]) -> str:
    lines = [
        "| case | log hand-off | p50 ms | p90 ms | p99 ms | req/s | incl. catch-up | proxy CPU µs/req "
        "| of it after load | errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for case in cases:
        label = f"{case['scenario'].upper()}, {case['connections']} conn"
        for name, m in case["medians"].items():
            lines.append(
                f"| {label} | {name} last byte | {m['p50_ms']:.3f} | {m['p90_ms']:.3f} | {m['p99_ms']:.3f} | "
                f"{m['rps']:,.0f} | {m['sustained_rps']:,.0f} | {m['proxy_cpu_us']:.0f} | "
                f"{m['proxy_cpu_us_after_load']:.0f} | {m['errors']} |"
            )
    lines += [
        "",
        "| case | p50 | p90 | p99 | req/s | incl. catch-up | proxy CPU | added p50 ms (range) | disturbed |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for case in cases:
        ratio = case["ratio_before_over_after"]
        added = case["added_p50_ms"]
        lines.append(
            f"| {case['scenario'].upper()}, {case['connections']} conn | "
            + " | ".join(f"{ratio[m]['median']:.3f}" for m in METRICS)
            + f" | {added['median']:+.3f} ({added['min']:+.3f} to {added['max']:+.3f}) | {case['disturbed_rounds']} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per case (default 5)")
    parser.add_argument("--round-seconds", type=int, default=3, help="seconds per target per round (default 3)")
    parser.add_argument("--warmup-seconds", type=int, default=1, help="warm-up per target and case (default 1)")
    parser.add_argument("--connections", type=int, default=16, help="the concurrent case (default 16)")
    parser.add_argument("--quiet-threshold", type=float, default=0.25, help="outside load (cores) that disturbs")
    parser.add_argument("--max-quiet-wait", type=float, default=5.0, help="longest wait for a quiet machine (s)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch dir (logs, SQLite files)")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("bench: wrk is not installed; on Debian/Ubuntu: sudo apt-get install -y wrk")
        return 2
    signal.signal(signal.SIGTERM, raise_on_sigterm)
    started = datetime.now(UTC)
    machine_info = machine()
    children = Children()
    with scratch_dir(args.keep) as scratch:
        try:
            bodies, body_files = write_bodies(scratch)
            print(f"bench: starting the mock and two heliport serve ({scratch})", flush=True)
            targets = start(children, scratch)
            for target in targets.values():
                wait_ready(target, bodies, children)
            cases = []
            for connections in (1, args.connections):
                for scenario, body_file in body_files.items():
                    print(f"bench: {scenario} at {connections} connections, {args.rounds} rounds", flush=True)
                    cases.append(measure(targets, scenario, body_file, connections, args))
            children.check_alive()
            logs = {name: {"completed": SENT[name], "log_rows": logged_rows(scratch / name)} for name in targets}
            server_errors = {name: log_errors(t.log) for name, t in targets.items() if log_errors(t.log)}
        finally:
            children.stop_all()

    print("\n## Medians over rounds, then the median of per-round ratios before/after (> 1: the default is higher)")
    print("(before: HELIPORT_LOG_BEFORE_LAST_BYTE=true, the default; after: =false, the old order;")
    print(" incl. catch-up: requests / (load + the time serve's consumer took to empty the queue after it))\n")
    print(table(cases))
    print("\nlog check (rows may exceed completed requests: wrk cuts requests in flight, logged as cancelled):")
    for name, counts in logs.items():
        print(f"  {name}: {counts['completed']} completed requests, {counts['log_rows']} log rows")
    for name, lines in server_errors.items():
        print(f"{name} logged {len(lines)} error lines; last: {lines[-1]}")
    result = {
        "finished_at": datetime.now(UTC).isoformat(),
        "machine": machine_info,
        "settings": {**vars(args), "orders": ORDERS, "request_bodies": {k: v.decode() for k, v in bodies.items()}},
        "cases": cases,
        "logs": logs,
        "server_log_errors": server_errors,
    }
    write_results("log-handoff", started, result)
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:
        print("bench: interrupted; every child process was stopped", file=sys.stderr)
        raise SystemExit(130) from None
