"""heliport's proxy benchmark: what heliport adds on top of a provider, measured on loopback in one run.

    .venv/bin/python bench/run.py [--duration 10] [--quick]      (or: python3 dev.py bench)

Processes, each separate so none shares an event loop or a GIL with another:

* the mock provider (``python -m tests.mock_provider``), the upstream every target ends at;
* three targets: ``direct`` (the mock itself), ``heliport`` (``heliport serve``, with its SQLite log
  queue, since that write is part of what a request costs), and ``baseline`` (``bench/baseline.py``,
  a bare pass-through on the same server and upstream client: the least any proxy on this stack
  costs);
* wrk as the load generator (``bench/post.lua`` prints latency percentiles as JSON).

Measurements: a matrix of target x {JSON, SSE} x {1, 32 connections}; interleaved short rounds at
1 connection (direct, heliport and baseline alternate, so slow drift of a shared 2-core machine hits
all alike), whose median p50s give the headline "added latency"; and the import time of the Lambda
entry (``functions/proxy/app.py``). Raw results go to ``bench/results/proxy-<UTC>.json``.

All traffic stays on 127.0.0.1; every wait has a deadline; every child is ended in ``finally``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
LUA = BENCH / "post.lua"
LAMBDA_ENTRY = ROOT / "functions" / "proxy"
BIN = Path(sys.executable).parent
HOST = "127.0.0.1"

KEY_PATTERN = re.compile(rb"sk-heliport-[0-9a-f]+")
WRK_JSON = re.compile(r"^WRK_JSON (\{.*\})\s*$", re.MULTILINE)
STARTUP_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 5.0
CLK_TCK = os.sysconf("SC_CLK_TCK")

# What a typical SDK call looks like on the wire; the mock answers with fixture bytes of real size.
REQUEST_BODY: dict[str, Any] = {
    "model": "gpt-4o-mini",
    "messages": [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Say hello in one short sentence."},
    ],
}
SCENARIOS: dict[str, dict[str, Any]] = {"json": REQUEST_BODY, "sse": {**REQUEST_BODY, "stream": True}}
SCENARIO_CHECK = {"json": b'"chat.completion"', "sse": b"data: [DONE]"}
COMMON_HEADERS = ("Authorization: Bearer sk-bench-upstream-key",)
TARGET_NAMES = ("direct", "heliport", "baseline")

# The targets heliport is held to; reported as pass/fail, never asserted.
TARGET_ADDED_P50_MS = 0.5
TARGET_THROUGHPUT_VS_BASELINE = 0.70
TARGET_IMPORT_MS = 400.0


# -- processes --------------------------------------------------------------------------------------


class Children:
    """Every server this run starts, so one ``finally`` can end them all, Ctrl-C included.

    Each child gets its own session (process group): a terminal's Ctrl-C then reaches only this
    script, which stops the servers in order instead of leaving them half torn down.
    """

    def __init__(self) -> None:
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, argv: Sequence[str], env: Mapping[str, str], log: Path) -> subprocess.Popen[bytes]:
        with log.open("wb") as out:
            proc = subprocess.Popen(
                list(argv),
                cwd=ROOT,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs[name] = proc
        return proc

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} (pid {proc.pid}) exited with {proc.returncode}")

    def stop_all(self) -> None:
        for proc in self.procs.values():
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for proc in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        for proc in self.procs.values():
            if proc.poll() is None:
                _signal_group(proc, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=STOP_TIMEOUT_S)
        self.procs.clear()


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    # The group id is the child's pid (start_new_session); it holds only what this script started.
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)


def raise_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def child_env(**extra: str) -> dict[str, str]:
    """The caller's environment without inherited ``HELIPORT_*`` settings, which would skew a run."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HELIPORT_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def wait_for_key(proc: subprocess.Popen[bytes], log: Path) -> str:
    """heliport prints its first key once, at start; the bench needs it for every request."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        match = KEY_PATTERN.search(log.read_bytes()) if log.exists() else None
        if match:
            return match.group().decode()
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    raise RuntimeError(f"heliport printed no key within {STARTUP_TIMEOUT_S:.0f}s; its log:\n{_tail(log)}")


def post(url: str, body: bytes, headers: Sequence[str], timeout: float = 5.0) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method="POST")
    request.add_header("Content-Type", "application/json")
    for header in headers:
        name, _, value = header.partition(":")
        request.add_header(name.strip(), value.strip())
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def wait_ready(target: Target, bodies: Mapping[str, bytes], children: Children) -> None:
    """Poll until the target answers every scenario correctly, so no case measures a failing path."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    last_error = "no attempt"
    while time.monotonic() < deadline:
        children.check_alive()
        try:
            for scenario, body in bodies.items():
                status, answer = post(target.url, body, target.headers)
                if status != 200 or SCENARIO_CHECK[scenario] not in answer:
                    raise RuntimeError(f"{scenario}: HTTP {status}: {answer[:200]!r}")
            return
        except (OSError, RuntimeError) as exc:
            last_error = str(exc)
            time.sleep(0.1)
    raise RuntimeError(f"{target.name} not ready in {STARTUP_TIMEOUT_S:.0f}s ({last_error}); log:\n{_tail(target.log)}")


def _tail(path: Path, size: int = 2000) -> str:
    return path.read_bytes()[-size:].decode("utf-8", "replace") if path.exists() else "(no log)"


def cpu_ticks(pid: int) -> int:
    """user + system CPU of one process, in clock ticks (``/proc/<pid>/stat`` fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return int(fields[11]) + int(fields[12])


def host_busy_ticks() -> int:
    """Busy clock ticks of the whole machine (all but idle and iowait; guest time is inside user)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    return sum(values) - values[3] - values[4]


# -- wrk -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    name: str
    url: str
    headers: tuple[str, ...]
    #: pids whose CPU a request through this target costs: the proxy (if any), then the mock.
    pids: Mapping[str, int]
    #: The serving process's output, shown when it fails to start.
    log: Path


@dataclass
class WrkRun:
    """One wrk invocation, reduced to what the tables need; ``raw`` keeps wrk's own numbers."""

    target: str
    scenario: str
    connections: int
    threads: int
    duration_s: int
    requests: int
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    errors: dict[str, int]
    #: CPU microseconds per request of each process on the path (proxy, mock, wrk).
    cpu_us_per_request: dict[str, float]
    #: Cores' worth of CPU the whole machine used during the run (2.0 = both cores flat out).
    host_busy_cores: float
    #: Of those, what no process of this run used: someone else's load, the noise to watch.
    foreign_cores: float
    raw: dict[str, Any] = field(repr=False)


def run_wrk(
    target: Target,
    scenario: str,
    body_file: Path,
    *,
    connections: int,
    threads: int,
    duration_s: int,
) -> WrkRun:
    argv = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration_s}s",
        "--timeout",
        "10s",
        "--latency",
        "-s",
        str(LUA),
        target.url,
        "--",
        str(body_file),
        *target.headers,
    ]
    ticks_before = {name: cpu_ticks(pid) for name, pid in target.pids.items()}
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    host_before, wall_before = host_busy_ticks(), time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=duration_s + 30, check=False)
    host_after, wall = host_busy_ticks(), time.monotonic() - wall_before
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    ticks_after = {name: cpu_ticks(pid) for name, pid in target.pids.items()}
    match = WRK_JSON.search(done.stdout)
    if done.returncode != 0 or match is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout[-1000:]}{done.stderr[-1000:]}")
    raw = json.loads(match.group(1))
    raw["text"] = WRK_JSON.sub("", done.stdout).strip()
    requests = int(raw["requests"])
    latency = raw["latency_us"]
    percentiles = latency["percentiles"]
    per_request = max(requests, 1)
    cpu = {name: (ticks_after[name] - ticks_before[name]) / CLK_TCK * 1e6 / per_request for name in target.pids}
    wrk_cpu = (children_after.ru_utime + children_after.ru_stime) - (
        children_before.ru_utime + children_before.ru_stime
    )
    cpu["wrk"] = wrk_cpu * 1e6 / per_request
    busy = (host_after - host_before) / CLK_TCK / wall
    ours = (sum(ticks_after.values()) - sum(ticks_before.values())) / CLK_TCK + wrk_cpu
    return WrkRun(
        target=target.name,
        scenario=scenario,
        connections=connections,
        threads=threads,
        duration_s=duration_s,
        requests=requests,
        rps=requests / (raw["duration_us"] / 1e6),
        p50_ms=percentiles["50"] / 1000,
        p90_ms=percentiles["90"] / 1000,
        p99_ms=percentiles["99"] / 1000,
        mean_ms=latency["mean"] / 1000,
        max_ms=latency["max"] / 1000,
        errors={k: int(v) for k, v in raw["errors"].items()},
        cpu_us_per_request={k: round(v, 1) for k, v in cpu.items()},
        host_busy_cores=round(busy, 2),
        foreign_cores=round(max(busy - ours / wall, 0.0), 2),
        raw=raw,
    )


# -- measurements -----------------------------------------------------------------------------------


def matrix(
    targets: Mapping[str, Target],
    body_files: Mapping[str, Path],
    *,
    duration_s: int,
    warmup_s: int,
    high: int,
    threads: int,
) -> list[WrkRun]:
    """Every target x scenario x {1, high} connections; targets run back to back per cell."""
    runs: list[WrkRun] = []
    for scenario, body_file in body_files.items():
        for connections in (1, high):
            for target in targets.values():
                run_wrk(target, scenario, body_file, connections=connections, threads=1, duration_s=warmup_s)
                run = run_wrk(
                    target,
                    scenario,
                    body_file,
                    connections=connections,
                    threads=1 if connections == 1 else threads,
                    duration_s=duration_s,
                )
                _print_run(run)
                runs.append(run)
    return runs


def interleaved(
    targets: Mapping[str, Target],
    body_files: Mapping[str, Path],
    *,
    connections: int,
    threads: int,
    rounds: int,
    round_s: int,
    warmup_s: int,
) -> dict[str, Any]:
    """Alternate the targets in short rounds; medians over rounds resist a shared machine's noise.

    The order flips every round (d-h-b, b-h-d, ...), so a trend over the run (a neighbour's job, CPU
    frequency, the SQLite file growing) lands on every target about equally, and heliport is always
    next to both references. Ratios are paired per round (heliport vs its neighbours in time), then
    the median is taken: a burst of someone else's load spoils a round, not the result.
    """
    out: dict[str, Any] = {}
    names = list(targets)
    for scenario, body_file in body_files.items():
        for target in targets.values():
            run_wrk(target, scenario, body_file, connections=connections, threads=threads, duration_s=warmup_s)
        runs: dict[str, list[WrkRun]] = {name: [] for name in names}
        for index in range(rounds):
            for name in names if index % 2 == 0 else names[::-1]:
                run = run_wrk(
                    targets[name], scenario, body_file, connections=connections, threads=threads, duration_s=round_s
                )
                runs[name].append(run)
        p50 = {name: [r.p50_ms for r in rs] for name, rs in runs.items()}
        rps = {name: [r.rps for r in rs] for name, rs in runs.items()}
        median_p50 = {name: statistics.median(v) for name, v in p50.items()}
        added = [h - d for h, d in zip(p50["heliport"], p50["direct"], strict=True)]
        vs_baseline = [h / b for h, b in zip(rps["heliport"], rps["baseline"], strict=True)]
        out[scenario] = {
            "connections": connections,
            "median_p50_ms": median_p50,
            "median_rps": {name: statistics.median(v) for name, v in rps.items()},
            "heliport_added_p50_ms": median_p50["heliport"] - median_p50["direct"],
            "baseline_added_p50_ms": median_p50["baseline"] - median_p50["direct"],
            "paired_heliport_added_p50_ms": _spread(added),
            "paired_heliport_vs_baseline_rps": _spread(vs_baseline),
            "paired_heliport_vs_direct_rps": _spread(
                [h / d for h, d in zip(rps["heliport"], rps["direct"], strict=True)]
            ),
            "median_proxy_cpu_us_per_request": {
                name: statistics.median(r.cpu_us_per_request["proxy"] for r in rs)
                for name, rs in runs.items()
                if name != "direct"
            },
            "median_foreign_cores": statistics.median(r.foreign_cores for rs in runs.values() for r in rs),
            "runs": [
                {
                    "round": index,
                    "target": name,
                    "p50_ms": r.p50_ms,
                    "p99_ms": r.p99_ms,
                    "rps": round(r.rps, 1),
                    "errors": sum(r.errors.values()),
                    "cpu_us_per_request": r.cpu_us_per_request,
                    "foreign_cores": r.foreign_cores,
                }
                for name, rs in runs.items()
                for index, r in enumerate(rs)
            ],
        }
        result = out[scenario]
        print(
            f"  {scenario} c={connections}: median p50 "
            + ", ".join(f"{n} {v:.3f} ms" for n, v in median_p50.items())
            + "; median req/s "
            + ", ".join(f"{n} {v:,.0f}" for n, v in result["median_rps"].items())
            + f"; other load {result['median_foreign_cores']:.2f} cores",
            flush=True,
        )
    return out


def _spread(values: Sequence[float]) -> dict[str, float]:
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


IMPORT_CODE = "import time; t = time.perf_counter(); import app; print(time.perf_counter() - t)"


def import_times(runs: int, scratch: Path) -> dict[str, Any]:
    """Cold import of the Lambda entry, which builds the app (and opens its stores) at import.

    Each run gets a fresh data dir, as a cold sandbox would. ``python -c pass`` is measured the
    same way so the module's own cost is not confused with interpreter start-up.
    """
    python = str(BIN / "python")

    def env(run: int) -> dict[str, str]:
        return child_env(PYTHONPATH=str(LAMBDA_ENTRY), HELIPORT_DATA_DIR=str(scratch / f"import-{run}"))

    def wall(argv: list[str], run: int) -> tuple[float, str]:
        started = time.perf_counter()
        done = subprocess.run(argv, cwd=LAMBDA_ENTRY, env=env(run), capture_output=True, text=True, timeout=60)
        elapsed = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(f"{argv} failed: {done.stderr[-1500:]}")
        return elapsed, done.stdout

    start_walls = [wall([python, "-c", "pass"], i)[0] for i in range(runs)]
    module_s: list[float] = []
    import_walls: list[float] = []
    for i in range(runs):
        elapsed, stdout = wall([python, "-c", IMPORT_CODE], runs + i)
        import_walls.append(elapsed)
        module_s.append(float(stdout.strip()))
    profile = subprocess.run(
        [python, "-X", "importtime", "-c", "import app"],
        cwd=LAMBDA_ENTRY,
        env=env(2 * runs),
        capture_output=True,
        text=True,
        timeout=60,
    )
    return {
        "runs": runs,
        "module_import_ms_median": statistics.median(module_s) * 1000,
        "module_import_ms_min": min(module_s) * 1000,
        "module_import_ms": [round(s * 1000, 2) for s in module_s],
        "process_with_import_ms_median": statistics.median(import_walls) * 1000,
        "interpreter_start_ms_median": statistics.median(start_walls) * 1000,
        "interpreter_start_ms_min": min(start_walls) * 1000,
        "top_imports": _top_imports(profile.stderr),
    }


def _top_imports(stderr: str, limit: int = 10) -> list[dict[str, Any]]:
    """Self import time summed per top-level package (``-X importtime``): where the import goes."""
    totals: dict[str, int] = {}
    for line in stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) != 3 or not parts[0].strip().isdigit():
            continue
        package = parts[2].strip().split(".")[0]
        totals[package] = totals.get(package, 0) + int(parts[0])
    ranked = sorted(totals.items(), key=lambda item: item[1], reverse=True)[:limit]
    return [{"package": name, "self_ms": round(us / 1000, 1)} for name, us in ranked]


def queue_rows(data_dir: Path) -> int | None:
    """Log records heliport committed, to show that every proxied request was really logged."""
    path = data_dir / "log-queue.sqlite3"
    if not path.exists():
        return None
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM log_queue").fetchone()[0])


# -- report -----------------------------------------------------------------------------------------


def _print_run(run: WrkRun) -> None:
    errors = sum(run.errors.values())
    print(
        f"  {run.target:8} {run.scenario:4} c={run.connections:<3} {run.rps:9.0f} req/s  p50 {run.p50_ms:7.3f} ms  "
        f"p99 {run.p99_ms:7.3f} ms  cpu/req {_cpu(run)}  busy {run.host_busy_cores:.2f} cores"
        f" (other {run.foreign_cores:.2f})" + (f"  ERRORS {run.errors}" if errors else ""),
        flush=True,
    )


def _cpu(run: WrkRun) -> str:
    return " ".join(f"{name} {us:.0f}us" for name, us in run.cpu_us_per_request.items())


def table(runs: Sequence[WrkRun]) -> str:
    header = (
        "| target | scenario | conns | req/s | p50 ms | p99 ms | proxy CPU µs/req | mock CPU µs/req "
        "| other load (cores) | errors |"
    )
    lines = [header, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for run in runs:
        proxy = run.cpu_us_per_request.get("proxy")
        lines.append(
            f"| {run.target} | {run.scenario.upper()} | {run.connections} | {run.rps:,.0f} | {run.p50_ms:.3f} | "
            f"{run.p99_ms:.3f} | {'-' if proxy is None else f'{proxy:.0f}'} | "
            f"{run.cpu_us_per_request['mock']:.0f} | {run.foreign_cores:.2f} | {sum(run.errors.values())} |"
        )
    return "\n".join(lines)


def ratios(
    runs: Sequence[WrkRun], low: Mapping[str, Any], high: Mapping[str, Any], imports: Mapping[str, Any]
) -> dict[str, Any]:
    """The headline numbers, from the interleaved rounds; the matrix's one-shot ratios ride along."""
    connections = max(r.connections for r in runs)

    def matrix_rps(target: str, scenario: str) -> float:
        return next(
            r.rps for r in runs if r.target == target and r.scenario == scenario and r.connections == connections
        )

    out: dict[str, Any] = {"checks": {}}
    for scenario in SCENARIOS:
        out[f"added_p50_ms_{scenario}_c1"] = low[scenario]["heliport_added_p50_ms"]
        out[f"baseline_added_p50_ms_{scenario}_c1"] = low[scenario]["baseline_added_p50_ms"]
        for other in ("baseline", "direct"):
            out[f"heliport_vs_{other}_rps_{scenario}_c{connections}"] = high[scenario][
                f"paired_heliport_vs_{other}_rps"
            ]["median"]
            out[f"matrix_heliport_vs_{other}_rps_{scenario}_c{connections}"] = matrix_rps(
                "heliport", scenario
            ) / matrix_rps(other, scenario)
    added = out["added_p50_ms_json_c1"]
    out["checks"]["added_p50_json_c1"] = {
        "value": added,
        "target": f"<= {TARGET_ADDED_P50_MS} ms",
        "pass": added <= TARGET_ADDED_P50_MS,
    }
    for scenario in SCENARIOS:
        share = out[f"heliport_vs_baseline_rps_{scenario}_c{connections}"]
        out["checks"][f"throughput_vs_baseline_{scenario}_c{connections}"] = {
            "value": share,
            "target": f">= {TARGET_THROUGHPUT_VS_BASELINE:.0%}",
            "pass": share >= TARGET_THROUGHPUT_VS_BASELINE,
        }
    module = imports["module_import_ms_median"]
    out["checks"]["import_ms"] = {
        "value": module,
        "target": f"<= {TARGET_IMPORT_MS:.0f} ms",
        "pass": module <= TARGET_IMPORT_MS,
    }
    return out


def print_report(
    runs: Sequence[WrkRun],
    low: Mapping[str, Any],
    high: Mapping[str, Any],
    imports: Mapping[str, Any],
    summary: Mapping[str, Any],
) -> None:
    connections = max(r.connections for r in runs)
    print("\n## Matrix (one run per case; CPU per request from /proc)\n")
    print(table(runs))
    print("\n## Interleaved rounds (medians over rounds; 'other load' = CPU no process of this run used)\n")
    print(
        "| scenario | conns | direct p50 ms | heliport p50 ms | baseline p50 ms | heliport − direct p50 ms "
        "| heliport/baseline req/s | heliport/direct req/s | heliport CPU µs/req | baseline CPU µs/req | other load |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for result_set in (low, high):
        for scenario, r in result_set.items():
            m, cpu = r["median_p50_ms"], r["median_proxy_cpu_us_per_request"]
            vs_baseline, vs_direct = r["paired_heliport_vs_baseline_rps"], r["paired_heliport_vs_direct_rps"]
            print(
                f"| {scenario.upper()} | {r['connections']} | {m['direct']:.3f} | {m['heliport']:.3f} | "
                f"{m['baseline']:.3f} | {r['heliport_added_p50_ms']:+.3f} | "
                f"{vs_baseline['median']:.0%} | {vs_direct['median']:.0%} | "
                f"{cpu['heliport']:.0f} | {cpu['baseline']:.0f} | {r['median_foreign_cores']:.2f} |"
            )
    print("\n## Import of functions/proxy/app.py\n")
    module, module_min = imports["module_import_ms_median"], imports["module_import_ms_min"]
    start, start_min = imports["interpreter_start_ms_median"], imports["interpreter_start_ms_min"]
    print(
        f"module import median {module:.1f} ms (min {module_min:.1f}); interpreter start (python -c pass) "
        f"median {start:.1f} ms (min {start_min:.1f}); start + import median "
        f"{imports['process_with_import_ms_median']:.1f} ms"
    )
    top = ", ".join(f"{e['package']} {e['self_ms']:.0f}" for e in imports["top_imports"][:8])
    print(f"import time by package (ms, -X importtime self time summed): {top}")
    print("\n## Ratios and targets\n")
    for scenario in SCENARIOS:
        print(
            f"{scenario.upper()}: heliport added p50 at c=1 {summary[f'added_p50_ms_{scenario}_c1']:+.3f} ms "
            f"(bare baseline {summary[f'baseline_added_p50_ms_{scenario}_c1']:+.3f} ms); at c={connections} "
            f"heliport/baseline {summary[f'heliport_vs_baseline_rps_{scenario}_c{connections}']:.0%}, "
            f"heliport/direct {summary[f'heliport_vs_direct_rps_{scenario}_c{connections}']:.0%} "
            f"(one-shot matrix: {summary[f'matrix_heliport_vs_baseline_rps_{scenario}_c{connections}']:.0%}, "
            f"{summary[f'matrix_heliport_vs_direct_rps_{scenario}_c{connections}']:.0%})"
        )
    for name, check in summary["checks"].items():
        value = check["value"]
        shown = f"{value:.0%}" if "throughput" in name else f"{value:.3f} ms" if "added" in name else f"{value:.0f} ms"
        print(f"{'PASS' if check['pass'] else 'FAIL'}  {name}: {shown} (target {check['target']})")


def machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")), "")
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False).stdout.splitlines()
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "wrk": wrk_version[0] if wrk_version else "",
        "loadavg_at_start": os.getloadavg(),
    }


# -- main ---------------------------------------------------------------------------------------------


@contextlib.contextmanager
def scratch_dir(keep: bool) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="heliport-bench-"))
    try:
        yield path
    finally:
        if keep:
            print(f"kept scratch dir {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)


def start_all(children: Children, scratch: Path) -> tuple[dict[str, Target], Path]:
    python = str(BIN / "python")
    mock_port, heliport_port, baseline_port = free_port(), free_port(), free_port()
    mock_url = f"http://{HOST}:{mock_port}"
    mock = children.start(
        "mock",
        [python, "-m", "tests.mock_provider", "--host", HOST, "--port", str(mock_port)],
        child_env(),
        scratch / "mock.log",
    )
    data_dir = scratch / "heliport-data"
    heliport_log = scratch / "heliport.log"
    heliport = children.start(
        "heliport",
        [str(BIN / "heliport"), "serve", "--host", HOST, "--port", str(heliport_port), "--data-dir", str(data_dir)],
        child_env(HELIPORT_UPSTREAM_OAI=mock_url),
        heliport_log,
    )
    baseline = children.start(
        "baseline",
        [python, str(BENCH / "baseline.py"), "--host", HOST, "--port", str(baseline_port), "--upstream", mock_url],
        child_env(),
        scratch / "baseline.log",
    )
    key = wait_for_key(heliport, heliport_log)
    path = "/v1/chat/completions"
    targets = {
        "direct": Target("direct", mock_url + path, COMMON_HEADERS, {"mock": mock.pid}, scratch / "mock.log"),
        "heliport": Target(
            "heliport",
            f"http://{HOST}:{heliport_port}/v1/gateway/oai{path}",
            (*COMMON_HEADERS, f"Helicone-Auth: Bearer {key}"),
            {"proxy": heliport.pid, "mock": mock.pid},
            heliport_log,
        ),
        "baseline": Target(
            "baseline",
            f"http://{HOST}:{baseline_port}{path}",
            COMMON_HEADERS,
            {"proxy": baseline.pid, "mock": mock.pid},
            scratch / "baseline.log",
        ),
    }
    return targets, data_dir


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=int, default=10, help="seconds per matrix case (default 10)")
    parser.add_argument("--quick", action="store_true", help="3 s cases, 1 s warm-ups, 3 rounds, 5 import runs")
    parser.add_argument("--connections", type=int, default=32, help="the high-concurrency case (default 32)")
    parser.add_argument(
        "--threads", type=int, default=1, help="wrk threads at high concurrency (default 1: leave CPU to the proxy)"
    )
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per scenario (default 5)")
    parser.add_argument("--round-seconds", type=int, default=2, help="seconds per target per round (default 2)")
    parser.add_argument("--import-runs", type=int, default=10, help="fresh interpreters for the import time")
    parser.add_argument("--keep", action="store_true", help="keep the scratch dir (logs, heliport's SQLite queue)")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("bench: wrk is not installed; on Debian/Ubuntu: sudo apt-get update && sudo apt-get install -y wrk")
        return 2
    duration, warmup = (3, 1) if args.quick else (args.duration, 2)
    rounds = 3 if args.quick else args.rounds
    import_runs = 5 if args.quick else args.import_runs
    signal.signal(signal.SIGTERM, raise_on_sigterm)

    children = Children()
    started = datetime.now(UTC)
    machine_info = machine()
    with scratch_dir(args.keep) as scratch:
        try:
            body_files: dict[str, Path] = {}
            bodies: dict[str, bytes] = {}
            for scenario, body in SCENARIOS.items():
                bodies[scenario] = json.dumps(body, separators=(",", ":")).encode()
                body_files[scenario] = scratch / f"{scenario}.json"
                body_files[scenario].write_bytes(bodies[scenario])
            print(f"bench: starting mock, heliport and baseline (scratch {scratch})", flush=True)
            targets, data_dir = start_all(children, scratch)
            for target in targets.values():
                wait_ready(target, bodies, children)
            print(f"bench: matrix, {duration} s per case after a {warmup} s warm-up", flush=True)
            runs = matrix(
                targets, body_files, duration_s=duration, warmup_s=warmup, high=args.connections, threads=args.threads
            )
            print(f"bench: interleaved rounds, {rounds} x {args.round_seconds} s per target", flush=True)
            common = {"rounds": rounds, "round_s": args.round_seconds, "warmup_s": warmup}
            low = interleaved(targets, body_files, connections=1, threads=1, **common)
            high = interleaved(targets, body_files, connections=args.connections, threads=args.threads, **common)
            children.check_alive()
            logged = queue_rows(data_dir)
            queue_bytes = sum(p.stat().st_size for p in data_dir.glob("log-queue.sqlite3*"))
        finally:
            children.stop_all()
        print(f"bench: import time, {import_runs} fresh interpreters", flush=True)
        imports = import_times(import_runs, scratch)

    summary = ratios(runs, low, high, imports)
    print_report(runs, low, high, imports, summary)
    print(f"\nheliport's SQLite queue holds {logged} records ({queue_bytes / 1e6:.0f} MB incl. WAL)")
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / f"proxy-{stamp}.json"
    result = {
        "started_at": started.isoformat(),
        "command": " ".join([os.path.relpath(sys.executable, ROOT), *sys.argv]),
        "machine": machine_info,
        "settings": {
            "duration_s": duration,
            "warmup_s": warmup,
            "connections": [1, args.connections],
            "wrk_threads_high": args.threads,
            "rounds": rounds,
            "round_s": args.round_seconds,
            "request_bodies": {k: v.decode() for k, v in bodies.items()},
        },
        "matrix": [asdict(run) for run in runs],
        "interleaved": {"c1": low, f"c{args.connections}": high},
        "import": imports,
        "summary": summary,
        "heliport_queue": {"records": logged, "bytes": queue_bytes},
    }
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"results: {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:
        print("bench: interrupted; every child process was stopped", file=sys.stderr)
        raise SystemExit(130) from None
