"""heliport's proxy benchmark: what heliport adds on top of a provider, measured on loopback in one run.

    .venv/bin/python bench/run.py [--duration 10] [--quick]      (or: python3 dev.py bench)

Processes, each separate so none shares an event loop or a GIL with another:

* the mock provider (``python -m tests.mock_provider``), the upstream every target ends at;
* four targets:
  ``direct``: the mock itself;
  ``heliport``: ``heliport serve``, as a laptop runs it: the proxy, its SQLite log queue, and the
  in-process consumer that turns queued records into log rows and body blobs;
  ``heliport-proxy``: the proxy's Lambda entry (``functions/proxy/app.py`` under uvicorn with
  ``run.sh``'s flags): the proxy and its log-queue write, no consumer (in AWS that is another
  function), i.e. the request hot path alone;
  ``baseline``: ``bench/baseline.py``, a bare pass-through on the same server and upstream client,
  the least any proxy on this stack costs;
* wrk as the load generator (``bench/post.lua`` prints latency percentiles as JSON).

Measurements: a matrix of target x {JSON, SSE} x {1, 32 connections}; interleaved short rounds at
1 and at 32 connections (targets alternate, so the drift of a shared 2-core machine hits all alike;
a round that outside load disturbed is retried), whose medians give the headline numbers; and the
import and cold-start time of the Lambda entry.

``heliport serve``'s consumer falls behind under saturating load and catches up afterwards. After
every run against it the bench waits until the queue is empty, charges the CPU of that catch-up to
the run ("deferred" CPU), and only then measures the next target, which would otherwise share the
machine with the catch-up. Raw results go to ``bench/results/proxy-<UTC>.json``.

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
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
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
STOP_TIMEOUT_S = 10.0
DRAIN_TIMEOUT_S = 180.0
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
HELIPORTS = ("heliport", "heliport-proxy")
#: Completed requests per target over the whole run (warm-ups included), to check one log row each.
SENT: Counter[str] = Counter()

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

    def start(
        self, name: str, argv: Sequence[str], env: Mapping[str, str], log: Path, cwd: Path = ROOT
    ) -> subprocess.Popen[bytes]:
        with log.open("wb") as out:
            proc = subprocess.Popen(
                list(argv),
                cwd=cwd,
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
    """SIGTERM unwinds like Ctrl-C, through every ``finally`` that stops children."""
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


def create_key(data_dir: Path | None = None, *, env: Mapping[str, str] | None = None, timeout: float = 60) -> str:
    """A key for a target that prints none (the Lambda entry): ``heliport keys create`` in ``data_dir``,
    or wherever ``env``'s settings keep keys (the target's own data dir or DynamoDB table)."""
    argv = [str(BIN / "heliport"), "keys", "create", "--name", "bench"]
    if data_dir is not None:
        argv += ["--data-dir", str(data_dir)]
    done = subprocess.run(
        argv,
        cwd=ROOT,
        env=dict(env) if env is not None else child_env(),
        capture_output=True,
        timeout=timeout,
        check=True,
    )
    match = KEY_PATTERN.search(done.stdout)
    if match is None:
        raise RuntimeError(f"heliport keys create printed no key: {done.stdout[-500:]!r} {done.stderr[-500:]!r}")
    return match.group().decode()


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


def log_errors(path: Path) -> list[str]:
    """Error lines a server logged (its log level is warning, so a quiet run logs nothing)."""
    if not path.exists():
        return []
    lines = path.read_text(errors="replace").splitlines()
    return [line for line in lines if "Traceback" in line or "ERROR" in line or "Error:" in line][-20:]


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


def queue_rows(data_dir: Path) -> int | None:
    """Log records waiting in a heliport's SQLite queue."""
    path = data_dir / "log-queue.sqlite3"
    if not path.exists():
        return None
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM log_queue").fetchone()[0])


def logged_rows(data_dir: Path) -> int | None:
    """Rows ``heliport serve``'s consumer wrote to its log database."""
    path = data_dir / "logs.sqlite3"
    if not path.exists():
        return None
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM requests").fetchone()[0])


# -- targets and wrk ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    name: str
    url: str
    headers: tuple[str, ...]
    #: pids whose CPU a request through this target costs: the proxy (if any), then the mock.
    pids: Mapping[str, int]
    #: The serving process's output, shown when it fails to start.
    log: Path
    #: heliport's data dir (its SQLite queue), if this target is a heliport.
    data_dir: Path | None = None
    #: True when a consumer in the proxy process empties the queue (``heliport serve``): wait for it.
    drains: bool = False
    #: The heliport key in ``headers``, for a target built on another's (the AI gateway's routes).
    key: str | None = None


CHAT_PATH = "/v1/chat/completions"
#: The same request through heliport's pass-through proxy to the OpenAI-compatible upstream.
GATEWAY_CHAT_PATH = "/v1/gateway/oai" + CHAT_PATH


@dataclass(frozen=True)
class Mock:
    """The mock provider every bench proxies to: where it listens, and its process (whose CPU a
    request through any target costs too)."""

    url: str
    pid: int
    log: Path

    def direct(self, path: str = CHAT_PATH) -> Target:
        """wrk straight to the mock: the floor under every target."""
        return Target("direct", self.url + path, COMMON_HEADERS, {"mock": self.pid}, self.log)


def start_mock(children: Children, scratch: Path, name: str = "mock") -> Mock:
    port, log = free_port(), scratch / f"{name}.log"
    argv = [str(BIN / "python"), "-m", "tests.mock_provider", "--host", HOST, "--port", str(port)]
    proc = children.start(name, argv, child_env(), log)
    return Mock(f"http://{HOST}:{port}", proc.pid, log)


def start_baseline(children: Children, scratch: Path, mock: Mock, path: str = CHAT_PATH) -> Target:
    """``bench/baseline.py``, the bare pass-through, in front of ``mock``.

    The mock's CPU is the target's as it is for every proxy: left out, it would count as outside load
    and mark every round of the baseline disturbed.
    """
    port, log = free_port(), scratch / "baseline.log"
    argv = [str(BIN / "python"), str(BENCH / "baseline.py"), "--host", HOST, "--port", str(port)]
    proc = children.start("baseline", [*argv, "--upstream", mock.url], child_env(), log)
    return Target("baseline", f"http://{HOST}:{port}{path}", COMMON_HEADERS, {"proxy": proc.pid, "mock": mock.pid}, log)


def start_lambda_entry(
    children: Children, scratch: Path, name: str, mock: Mock, path: str = GATEWAY_CHAT_PATH, **env: str
) -> Target:
    """The proxy's Lambda entry (``lambda_argv``) with the local adapters in a data dir of its own,
    upstream the mock, ``env`` added to its environment; the target carries a key made for it."""
    port, data_dir, log = free_port(), scratch / name, scratch / f"{name}.log"
    key = create_key(data_dir)
    settings = child_env(
        PYTHONPATH=str(LAMBDA_ENTRY), HELIPORT_DATA_DIR=str(data_dir), HELIPORT_UPSTREAM_OAI=mock.url, **env
    )
    proc = children.start(name, lambda_argv(port), settings, log, cwd=LAMBDA_ENTRY)
    return Target(
        name,
        f"http://{HOST}:{port}{path}",
        (*COMMON_HEADERS, f"Helicone-Auth: Bearer {key}"),
        {"proxy": proc.pid, "mock": mock.pid},
        log,
        data_dir=data_dir,
        key=key,
    )


def start_serve(children: Children, scratch: Path, name: str, mock: Mock, *extra: str, **env: str) -> Target:
    """``heliport serve`` as a laptop runs it, in a data dir of its own, upstream the mock; ``extra`` is
    added to its command line and ``env`` to its environment.

    The target's pids include the log pipeline's own process (unless ``--pipeline thread`` keeps it in
    the proxy's): its CPU is part of what serve costs, not outside load.
    """
    port, data_dir, log = free_port(), scratch / name, scratch / f"{name}.log"
    argv = [str(BIN / "heliport"), "serve", "--host", HOST, "--port", str(port), "--data-dir", str(data_dir), *extra]
    proc = children.start(name, argv, child_env(HELIPORT_UPSTREAM_OAI=mock.url, **env), log)
    key = wait_for_key(proc, log)
    pids = {"proxy": proc.pid, "mock": mock.pid}
    if "thread" not in extra:
        pids["pipeline"] = pipeline_pid(proc.pid)
    return Target(
        name,
        f"http://{HOST}:{port}{GATEWAY_CHAT_PATH}",
        (*COMMON_HEADERS, f"Helicone-Auth: Bearer {key}"),
        pids,
        log,
        data_dir=data_dir,
        drains=True,
        key=key,
    )


def command_line() -> str:
    """How this bench was started, as one would type it from the repository's root."""
    return " ".join([os.path.relpath(sys.executable, ROOT), *sys.argv])


def write_results(kind: str, started: datetime, document: Mapping[str, Any], out: Path | None = None) -> Path:
    """Write a run's results to ``out``, by default ``bench/results/<kind>-<UTC start>.json``.

    Every results file starts with when the run started and the command that ran it; the rest is the
    bench's own. Prints where it went and returns the path.
    """
    path = out or RESULTS / f"{kind}-{started:%Y%m%dT%H%M%SZ}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    stamped = {"started_at": started.isoformat(), "command": command_line(), **document}
    path.write_text(json.dumps(stamped, indent=2) + "\n")
    print(f"results: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return path


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
                SENT[target.name] += 1
            if target.drains:
                wait_drained(target)
            return
        except (OSError, RuntimeError) as exc:
            last_error = str(exc)
            time.sleep(0.1)
    raise RuntimeError(f"{target.name} not ready in {STARTUP_TIMEOUT_S:.0f}s ({last_error}); log:\n{_tail(target.log)}")


def wait_drained(target: Target) -> tuple[float, int]:
    """Wait until the target's consumer has emptied its queue; (seconds waited, proxy CPU ticks used)."""
    assert target.data_dir is not None
    # ``heliport serve`` drains in its log pipeline process (``pipeline``), the old form in the proxy's.
    pids = [target.pids[name] for name in ("proxy", "pipeline") if name in target.pids]
    started, ticks = time.monotonic(), sum(cpu_ticks(pid) for pid in pids)
    deadline = started + DRAIN_TIMEOUT_S
    while (queue_rows(target.data_dir) or 0) > 0:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{target.name} did not drain its log queue within {DRAIN_TIMEOUT_S:.0f}s")
        time.sleep(0.05)
    return time.monotonic() - started, sum(cpu_ticks(pid) for pid in pids) - ticks


def child_pids(pid: int) -> list[int]:
    """The direct children of ``pid`` (Linux ``/proc``): ``heliport serve``'s log pipeline process."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(p) for p in (task / "children").read_text().split()]
    return found


def pipeline_pid(pid: int, timeout_s: float = 30.0) -> int:
    """The log pipeline process ``heliport serve`` (``pid``) starts; its CPU is part of what serve costs."""
    deadline = time.monotonic() + timeout_s
    while not (found := child_pids(pid)):
        if time.monotonic() > deadline:
            raise RuntimeError(f"heliport serve (pid {pid}) started no log pipeline process")
        time.sleep(0.1)
    return found[0]


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
    #: CPU microseconds per request of each process on the path (proxy, mock, wrk), during the load.
    cpu_us_per_request: dict[str, float]
    #: Proxy CPU per request spent after the load, while ``heliport serve``'s consumer caught up.
    deferred_cpu_us_per_request: float
    #: How long that catch-up took; requests / (load + catch-up) is the rate it can keep up.
    drain_s: float
    sustained_rps: float
    #: Cores' worth of CPU the whole machine used during the run (2.0 = both cores flat out).
    host_busy_cores: float
    #: Of those, what no process of this run used: someone else's load, the noise to watch.
    foreign_cores: float
    raw: dict[str, Any] = field(repr=False)

    @property
    def total_proxy_cpu_us(self) -> float:
        return self.cpu_us_per_request.get("proxy", 0.0) + self.deferred_cpu_us_per_request


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
    drain_s, drain_ticks = wait_drained(target) if target.drains else (0.0, 0)
    match = WRK_JSON.search(done.stdout)
    if done.returncode != 0 or match is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout[-1000:]}{done.stderr[-1000:]}")
    raw = json.loads(match.group(1))
    raw["text"] = WRK_JSON.sub("", done.stdout).strip()
    requests = int(raw["requests"])
    SENT[target.name] += requests
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
    load_s = raw["duration_us"] / 1e6
    return WrkRun(
        target=target.name,
        scenario=scenario,
        connections=connections,
        threads=threads,
        duration_s=duration_s,
        requests=requests,
        rps=requests / load_s,
        p50_ms=percentiles["50"] / 1000,
        p90_ms=percentiles["90"] / 1000,
        p99_ms=percentiles["99"] / 1000,
        mean_ms=latency["mean"] / 1000,
        max_ms=latency["max"] / 1000,
        errors={k: int(v) for k, v in raw["errors"].items()},
        cpu_us_per_request={k: round(v, 1) for k, v in cpu.items()},
        deferred_cpu_us_per_request=round(drain_ticks / CLK_TCK * 1e6 / per_request, 1),
        drain_s=round(drain_s, 2),
        sustained_rps=requests / (load_s + drain_s),
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
            wrk_threads = 1 if connections == 1 else threads
            for target in targets.values():
                kwargs = {"connections": connections, "threads": wrk_threads}
                run_wrk(target, scenario, body_file, duration_s=warmup_s, **kwargs)
                run = run_wrk(target, scenario, body_file, duration_s=duration_s, **kwargs)
                _print_run(run)
                runs.append(run)
    return runs


def wait_quiet(threshold: float, max_wait_s: float) -> float:
    """Wait (bounded) until the machine is idle between rounds; returns the last load seen, in cores.

    Between rounds nothing of this run is busy (``heliport serve`` has drained), so any busy CPU is
    someone else's. Starting a round in a lull makes it less likely that a burst lands in it.
    """
    deadline = time.monotonic() + max_wait_s
    load = 0.0
    while True:
        before = host_busy_ticks()
        time.sleep(0.5)
        load = (host_busy_ticks() - before) / CLK_TCK / 0.5
        if load <= threshold or time.monotonic() >= deadline:
            return load


@dataclass(frozen=True)
class Noise:
    """How hard to try for rounds that no outside load disturbed."""

    #: Cores of outside load above which a round counts as disturbed.
    threshold: float = 0.25
    #: Extra attempts at a disturbed round; the least disturbed attempt is kept.
    retries: int = 2
    #: Longest wait for a quiet machine before each attempt.
    max_wait_s: float = 10.0


def interleaved_rounds(
    names: Sequence[str],
    run: Callable[[str, int], WrkRun],
    *,
    rounds: int,
    round_s: int,
    noise: Noise,
) -> tuple[dict[str, list[WrkRun]], int, int]:
    """``rounds`` rounds of ``run(name, round_s)`` over every name, the order flipped each round.

    A round that other load disturbed (see :class:`Noise`) is run again, a bounded number of times,
    and the least disturbed attempt is kept. Returns each name's runs (one per round), the attempts
    made and how many kept rounds were still disturbed.
    """
    runs: dict[str, list[WrkRun]] = {name: [] for name in names}
    attempts, disturbed = 0, 0
    for index in range(rounds):
        best: dict[str, WrkRun] | None = None
        for _ in range(1 + noise.retries):
            wait_quiet(noise.threshold, noise.max_wait_s)
            attempts += 1
            attempt = {name: run(name, round_s) for name in (names if index % 2 == 0 else names[::-1])}
            worst = max(r.foreign_cores for r in attempt.values())
            if best is None or worst < max(r.foreign_cores for r in best.values()):
                best = attempt
            if worst <= noise.threshold:
                break
        assert best is not None
        disturbed += max(r.foreign_cores for r in best.values()) > noise.threshold
        for name in names:
            runs[name].append(best[name])
    return runs, attempts, disturbed


@dataclass(frozen=True)
class Case:
    """One request measured in :func:`measure_cases`: a target, a body (a key of ``body_files``) and
    the name of ``base``, the same request without what is measured (None: a base itself)."""

    name: str
    target: Target
    body: str
    base: str | None = None
    #: What the answer must contain besides the body's check (the model a fallback chose).
    expect: bytes = b""


def measure_cases(
    cases: Sequence[Case],
    body_files: Mapping[str, Path],
    *,
    rounds: int,
    round_s: int,
    warmup_s: int,
    noise: Noise,
) -> dict[str, Any]:
    """Interleaved rounds over ``cases`` (one connection); medians, and each case against its base
    measured in the same rounds (paired per round, then the median)."""
    by_name = {case.name: case for case in cases}

    def run(name: str, seconds: int) -> WrkRun:
        case = by_name[name]
        return run_wrk(case.target, case.body, body_files[case.body], connections=1, threads=1, duration_s=seconds)

    for case in cases:
        run(case.name, warmup_s)
    runs, attempts, disturbed = interleaved_rounds(list(by_name), run, rounds=rounds, round_s=round_s, noise=noise)
    out: dict[str, Any] = {"attempts": attempts, "disturbed_rounds_kept": disturbed, "cases": {}}
    for case in cases:
        rs = runs[case.name]
        entry: dict[str, Any] = {
            "heliport": case.target.name,
            "body": case.body,
            "headers": [
                h for h in case.target.headers if h.lower().startswith("helicone-") and "auth" not in h.lower()
            ],
            "median_p50_ms": statistics.median(r.p50_ms for r in rs),
            "median_p99_ms": statistics.median(r.p99_ms for r in rs),
            "median_rps": statistics.median(r.rps for r in rs),
            "median_proxy_cpu_us": statistics.median(r.cpu_us_per_request.get("proxy", 0.0) for r in rs),
            "errors": sum(sum(r.errors.values()) for r in rs),
            "rounds": [
                {
                    "p50_ms": r.p50_ms,
                    "p99_ms": r.p99_ms,
                    "rps": round(r.rps, 1),
                    "proxy_cpu_us": r.cpu_us_per_request.get("proxy", 0.0),
                    "foreign_cores": r.foreign_cores,
                }
                for r in rs
            ],
        }
        if case.base is not None:
            base = runs[case.base]
            base_p50 = statistics.median(b.p50_ms for b in base)
            entry["base"] = case.base
            # The headline: median of this case's round p50s minus the base's, from the same rounds.
            entry["added_p50_ms"] = entry["median_p50_ms"] - base_p50
            entry["p50_ratio"] = entry["median_p50_ms"] / base_p50
            entry["rps_ratio"] = entry["median_rps"] / statistics.median(b.rps for b in base)
            entry["paired_added_p50_ms"] = _spread([r.p50_ms - b.p50_ms for r, b in zip(rs, base, strict=True)])
            entry["paired_p50_ratio"] = _spread([r.p50_ms / b.p50_ms for r, b in zip(rs, base, strict=True)])
            entry["added_proxy_cpu_us"] = entry["median_proxy_cpu_us"] - statistics.median(
                b.cpu_us_per_request.get("proxy", 0.0) for b in base
            )
            entry["paired_added_proxy_cpu_us"] = _spread(
                [
                    r.cpu_us_per_request.get("proxy", 0.0) - b.cpu_us_per_request.get("proxy", 0.0)
                    for r, b in zip(rs, base, strict=True)
                ]
            )
        out["cases"][case.name] = entry
    return out


def interleaved(
    targets: Mapping[str, Target],
    body_files: Mapping[str, Path],
    *,
    connections: int,
    threads: int,
    rounds: int,
    round_s: int,
    warmup_s: int,
    noise: Noise,
) -> dict[str, Any]:
    """Alternate the targets in short rounds; medians over rounds resist a shared machine's noise.

    The order flips every round (d-h-p-b, b-p-h-d, ...), so a trend over the run (a neighbour's
    job, CPU frequency, the SQLite files growing) lands on every target about equally. Ratios are
    paired per round (each heliport against the references measured next to it), then the median is
    taken: a burst of someone else's load spoils a round, not the result. A round that other load
    disturbed anyway (see :class:`Noise`) is run again, a bounded number of times.
    """
    out: dict[str, Any] = {}
    names = list(targets)
    for scenario, body_file in body_files.items():
        for target in targets.values():
            run_wrk(target, scenario, body_file, connections=connections, threads=threads, duration_s=warmup_s)

        def run(name: str, seconds: int, scenario: str = scenario, body_file: Path = body_file) -> WrkRun:
            return run_wrk(
                targets[name], scenario, body_file, connections=connections, threads=threads, duration_s=seconds
            )

        runs, attempts_made, disturbed = interleaved_rounds(names, run, rounds=rounds, round_s=round_s, noise=noise)
        result: dict[str, Any] = {
            "connections": connections,
            "attempts": attempts_made,
            "disturbed_rounds_kept": disturbed,
            "targets": {},
        }
        direct, baseline = runs["direct"], runs["baseline"]
        for name, rs in runs.items():
            entry: dict[str, Any] = {
                "median_p50_ms": statistics.median(r.p50_ms for r in rs),
                "median_p99_ms": statistics.median(r.p99_ms for r in rs),
                "median_rps": statistics.median(r.rps for r in rs),
                "median_sustained_rps": statistics.median(r.sustained_rps for r in rs),
                "paired_added_p50_ms": _spread([r.p50_ms - d.p50_ms for r, d in zip(rs, direct, strict=True)]),
                "paired_vs_baseline_rps": _spread([r.rps / b.rps for r, b in zip(rs, baseline, strict=True)]),
                "paired_sustained_vs_baseline_rps": _spread(
                    [r.sustained_rps / b.rps for r, b in zip(rs, baseline, strict=True)]
                ),
                "paired_vs_direct_rps": _spread([r.rps / d.rps for r, d in zip(rs, direct, strict=True)]),
                "median_proxy_cpu_us": statistics.median(r.cpu_us_per_request.get("proxy", 0.0) for r in rs),
                "median_deferred_cpu_us": statistics.median(r.deferred_cpu_us_per_request for r in rs),
                "median_foreign_cores": statistics.median(r.foreign_cores for r in rs),
                "errors": sum(sum(r.errors.values()) for r in rs),
                "rounds": [
                    {
                        "p50_ms": r.p50_ms,
                        "p99_ms": r.p99_ms,
                        "rps": round(r.rps, 1),
                        "errors": r.errors,
                        "cpu_us_per_request": r.cpu_us_per_request,
                        "deferred_cpu_us_per_request": r.deferred_cpu_us_per_request,
                        "drain_s": r.drain_s,
                        "foreign_cores": r.foreign_cores,
                    }
                    for r in rs
                ],
            }
            # The headline definition: median of heliport's round p50s minus median of direct's.
            entry["added_p50_ms"] = entry["median_p50_ms"] - statistics.median(d.p50_ms for d in direct)
            result["targets"][name] = entry
        out[scenario] = result
        print(
            f"  {scenario} c={connections} ({rounds} rounds in {attempts_made} attempts, {disturbed} disturbed): "
            + "; ".join(
                f"{n} p50 {e['median_p50_ms']:.3f} ms, {e['median_rps']:,.0f} req/s"
                for n, e in result["targets"].items()
            ),
            flush=True,
        )
    return out


def _spread(values: Sequence[float]) -> dict[str, float]:
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


IMPORT_CODE = "import time; t = time.perf_counter(); import app; print(time.perf_counter() - t)"
# What the first request also needs: heliport imports aiohttp lazily, when the lifespan starts.
IMPORT_WITH_CLIENT_CODE = (
    "import time; t = time.perf_counter(); import app; import aiohttp; print(time.perf_counter() - t)"
)


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
    with_client_s = [float(wall([python, "-c", IMPORT_WITH_CLIENT_CODE], 2 * runs + i)[1]) for i in range(runs)]
    profile = subprocess.run(
        [python, "-X", "importtime", "-c", "import app"],
        cwd=LAMBDA_ENTRY,
        env=env(3 * runs),
        capture_output=True,
        text=True,
        timeout=60,
    )
    cold = [cold_start(scratch / f"cold-{i}") for i in range(max(3, runs // 2))]
    return {
        "runs": runs,
        "module_import_ms_median": statistics.median(module_s) * 1000,
        "module_import_ms_min": min(module_s) * 1000,
        "module_import_ms": [round(s * 1000, 2) for s in module_s],
        "process_with_import_ms_median": statistics.median(import_walls) * 1000,
        "import_app_and_aiohttp_ms_median": statistics.median(with_client_s) * 1000,
        "cold_start_to_healthcheck_ms_median": statistics.median(cold) * 1000,
        "cold_start_to_healthcheck_ms": [round(s * 1000, 1) for s in cold],
        "interpreter_start_ms_median": statistics.median(start_walls) * 1000,
        "interpreter_start_ms_min": min(start_walls) * 1000,
        "top_imports": _top_imports(profile.stderr),
    }


def lambda_argv(port: int) -> list[str]:
    """``functions/proxy/run.sh``'s command line, minus the Lambda Web Adapter in front of it."""
    argv = [str(BIN / "python"), "-m", "uvicorn", "app:app", "--host", HOST, "--port", str(port)]
    argv += ["--http", "httptools", "--loop", "uvloop", "--lifespan", "on"]
    return [*argv, "--no-access-log", "--no-server-header", "--log-level", "warning"]


def cold_start(data_dir: Path) -> float:
    """Seconds from launching the Lambda entry to its first ``/healthcheck`` answer.

    This is what the Lambda Web Adapter waits for before the first invocation, so it includes
    what ``import app`` leaves out: uvicorn's import and the lifespan start (aiohttp's import).
    """
    port = free_port()
    children = Children()
    data_dir.mkdir(parents=True, exist_ok=True)
    env = child_env(PYTHONPATH=str(LAMBDA_ENTRY), HELIPORT_DATA_DIR=str(data_dir))
    started = time.perf_counter()
    try:
        children.start("cold-start", lambda_argv(port), env, data_dir / "log", cwd=LAMBDA_ENTRY)
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            children.check_alive()
            url = f"http://{HOST}:{port}/healthcheck"
            with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return time.perf_counter() - started
            time.sleep(0.005)
        raise RuntimeError(f"the Lambda entry did not answer /healthcheck within {STARTUP_TIMEOUT_S:.0f}s")
    finally:
        children.stop_all()


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


# -- report -----------------------------------------------------------------------------------------


def _print_run(run: WrkRun) -> None:
    errors = sum(run.errors.values())
    cpu = " ".join(f"{name} {us:.0f}us" for name, us in run.cpu_us_per_request.items())
    deferred = f" (+{run.deferred_cpu_us_per_request:.0f}us after, {run.drain_s:.1f}s)" if run.drain_s else ""
    print(
        f"  {run.target:14} {run.scenario:4} c={run.connections:<3} {run.rps:7.0f} req/s  p50 {run.p50_ms:7.3f} ms  "
        f"p99 {run.p99_ms:7.3f} ms  cpu/req {cpu}{deferred}  other load {run.foreign_cores:.2f} cores"
        + (f"  ERRORS {run.errors}" if errors else ""),
        flush=True,
    )


def matrix_table(runs: Sequence[WrkRun]) -> str:
    lines = [
        "| target | scenario | conns | req/s | p50 ms | p99 ms | proxy CPU µs/req | + after load | mock CPU µs/req "
        "| other load (cores) | errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        proxy = run.cpu_us_per_request.get("proxy")
        lines.append(
            f"| {run.target} | {run.scenario.upper()} | {run.connections} | {run.rps:,.0f} | {run.p50_ms:.3f} | "
            f"{run.p99_ms:.3f} | {'-' if proxy is None else f'{proxy:.0f}'} | "
            f"{f'{run.deferred_cpu_us_per_request:.0f}' if run.drain_s else '-'} | "
            f"{run.cpu_us_per_request['mock']:.0f} | {run.foreign_cores:.2f} | {sum(run.errors.values())} |"
        )
    return "\n".join(lines)


def rounds_table(low: Mapping[str, Any], high: Mapping[str, Any]) -> str:
    lines = [
        "| scenario | conns | target | p50 ms | added p50 vs direct | req/s | vs baseline req/s | proxy CPU µs/req "
        "| + after load | other load | errors |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for result_set in (low, high):
        for scenario, result in result_set.items():
            for name, e in result["targets"].items():
                proxy = "-" if name == "direct" else f"{e['median_proxy_cpu_us']:.0f}"
                after = f"{e['median_deferred_cpu_us']:.0f}" if e["median_deferred_cpu_us"] else "-"
                lines.append(
                    f"| {scenario.upper()} | {result['connections']} | {name} | {e['median_p50_ms']:.3f} | "
                    f"{e['added_p50_ms']:+.3f} | {e['median_rps']:,.0f} | "
                    f"{e['paired_vs_baseline_rps']['median']:.0%} | {proxy} | {after} | "
                    f"{e['median_foreign_cores']:.2f} | {e['errors']} |"
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
    for name in (*HELIPORTS, "baseline"):
        for scenario in SCENARIOS:
            out[f"{name}.added_p50_ms.{scenario}.c1"] = low[scenario]["targets"][name]["added_p50_ms"]
            entry = high[scenario]["targets"][name]
            out[f"{name}.vs_baseline_rps.{scenario}.c{connections}"] = entry["paired_vs_baseline_rps"]["median"]
            out[f"{name}.sustained_vs_baseline_rps.{scenario}.c{connections}"] = entry[
                "paired_sustained_vs_baseline_rps"
            ]["median"]
            out[f"{name}.vs_direct_rps.{scenario}.c{connections}"] = entry["paired_vs_direct_rps"]["median"]
            out[f"{name}.matrix_vs_baseline_rps.{scenario}.c{connections}"] = matrix_rps(name, scenario) / matrix_rps(
                "baseline", scenario
            )
    module = imports["module_import_ms_median"]
    for name in HELIPORTS:
        added = out[f"{name}.added_p50_ms.json.c1"]
        checks: dict[str, Any] = {
            "added_p50_json_c1": {"value": added, "target": f"<= {TARGET_ADDED_P50_MS} ms"},
        }
        checks["added_p50_json_c1"]["pass"] = added <= TARGET_ADDED_P50_MS
        for scenario in SCENARIOS:
            share = out[f"{name}.vs_baseline_rps.{scenario}.c{connections}"]
            checks[f"throughput_vs_baseline_{scenario}_c{connections}"] = {
                "value": share,
                "target": f">= {TARGET_THROUGHPUT_VS_BASELINE:.0%}",
                "pass": share >= TARGET_THROUGHPUT_VS_BASELINE,
            }
        out["checks"][name] = checks
    out["checks"]["import"] = {
        "import_ms": {"value": module, "target": f"<= {TARGET_IMPORT_MS:.0f} ms", "pass": module <= TARGET_IMPORT_MS}
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
    print(matrix_table(runs))
    print("\n## Interleaved rounds (medians over rounds; 'vs baseline' is the median of per-round ratios)\n")
    print(rounds_table(low, high))
    print("\n## Import of functions/proxy/app.py\n")
    module, module_min = imports["module_import_ms_median"], imports["module_import_ms_min"]
    start, start_min = imports["interpreter_start_ms_median"], imports["interpreter_start_ms_min"]
    print(
        f"module import median {module:.1f} ms (min {module_min:.1f}); interpreter start (python -c pass) "
        f"median {start:.1f} ms (min {start_min:.1f}); start + import median "
        f"{imports['process_with_import_ms_median']:.1f} ms"
    )
    print(
        f"import app + aiohttp (the lifespan imports it) median {imports['import_app_and_aiohttp_ms_median']:.1f} ms; "
        f"cold start, launch to first /healthcheck, median {imports['cold_start_to_healthcheck_ms_median']:.0f} ms"
    )
    top = ", ".join(f"{e['package']} {e['self_ms']:.0f}" for e in imports["top_imports"][:8])
    print(f"import time by package (ms, -X importtime self time summed): {top}")
    print("\n## Ratios and targets\n")
    for name in (*HELIPORTS, "baseline"):
        for scenario in SCENARIOS:
            key = f"{scenario}.c{connections}"
            print(
                f"{name} {scenario.upper()}: added p50 at c=1 {summary[f'{name}.added_p50_ms.{scenario}.c1']:+.3f} ms; "
                f"at c={connections} {summary[f'{name}.vs_baseline_rps.{key}']:.0%} of baseline req/s "
                f"(sustained incl. log catch-up {summary[f'{name}.sustained_vs_baseline_rps.{key}']:.0%}; "
                f"one-shot matrix {summary[f'{name}.matrix_vs_baseline_rps.{key}']:.0%}), "
                f"{summary[f'{name}.vs_direct_rps.{key}']:.0%} of direct"
            )
    for group, checks in summary["checks"].items():
        for check_name, check in checks.items():
            value = check["value"]
            shown = (
                f"{value:.0%}"
                if "throughput" in check_name
                else f"{value:.3f} ms"
                if "added" in check_name
                else f"{value:.0f} ms"
            )
            print(f"{'PASS' if check['pass'] else 'FAIL'}  {group}: {check_name} {shown} (target {check['target']})")


def machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")), "")
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False).stdout.splitlines()
    git = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False)
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "shared", "functions"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "wrk": wrk_version[0] if wrk_version else "",
        "loadavg_at_start": os.getloadavg(),
        "git_commit": git.stdout.strip(),
        "heliport_tree_dirty": bool(dirty.stdout.strip()),
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


def start_all(children: Children, scratch: Path) -> dict[str, Target]:
    """Start the mock and the three proxies; the returned targets are in measuring order."""
    mock = start_mock(children, scratch)
    return {
        "direct": mock.direct(),
        "heliport": start_serve(children, scratch, "heliport", mock),
        "heliport-proxy": start_lambda_entry(children, scratch, "heliport-proxy", mock),
        "baseline": start_baseline(children, scratch, mock),
    }


def write_bodies(scratch: Path) -> tuple[dict[str, bytes], dict[str, Path]]:
    bodies = {name: json.dumps(body, separators=(",", ":")).encode() for name, body in SCENARIOS.items()}
    files = {name: scratch / f"{name}.json" for name in SCENARIOS}
    for name, path in files.items():
        path.write_bytes(bodies[name])
    return bodies, files


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
    parser.add_argument(
        "--quiet-threshold", type=float, default=0.25, help="outside load (cores) that makes a round disturbed"
    )
    parser.add_argument("--retries", type=int, default=2, help="extra attempts at a disturbed round (default 2)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch dir (logs, heliport's SQLite files)")
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
            bodies, body_files = write_bodies(scratch)
            print(f"bench: starting mock, heliport serve, heliport's Lambda entry and baseline ({scratch})", flush=True)
            targets = start_all(children, scratch)
            for target in targets.values():
                wait_ready(target, bodies, children)
            print(f"bench: matrix, {duration} s per case after a {warmup} s warm-up", flush=True)
            runs = matrix(
                targets, body_files, duration_s=duration, warmup_s=warmup, high=args.connections, threads=args.threads
            )
            print(f"bench: interleaved rounds, {rounds} x {args.round_seconds} s per target", flush=True)
            noise = Noise(threshold=args.quiet_threshold, retries=args.retries)
            low, high = (
                interleaved(
                    targets,
                    body_files,
                    connections=connections,
                    threads=threads,
                    rounds=rounds,
                    round_s=args.round_seconds,
                    warmup_s=warmup,
                    noise=noise,
                )
                for connections, threads in ((1, 1), (args.connections, args.threads))
            )
            children.check_alive()
            serve_dir = targets["heliport"].data_dir
            lambda_dir = targets["heliport-proxy"].data_dir
            assert serve_dir is not None and lambda_dir is not None
            server_errors = {name: log_errors(t.log) for name, t in targets.items() if log_errors(t.log)}
            logs = {
                "heliport_completed_requests": SENT["heliport"],
                "heliport_log_rows": logged_rows(serve_dir),
                "heliport_proxy_completed_requests": SENT["heliport-proxy"],
                "heliport_proxy_queued_records": queue_rows(lambda_dir),
            }
        finally:
            children.stop_all()
        print(f"bench: import time, {import_runs} fresh interpreters", flush=True)
        imports = import_times(import_runs, scratch)

    summary = ratios(runs, low, high, imports)
    print_report(runs, low, high, imports, summary)
    print(
        f"\nlog check (rows may exceed completed requests: wrk cuts requests in flight at the end of a run, "
        f"and heliport logs those as cancelled): heliport serve {logs['heliport_completed_requests']} completed, "
        f"{logs['heliport_log_rows']} log rows; Lambda entry {logs['heliport_proxy_completed_requests']} completed, "
        f"{logs['heliport_proxy_queued_records']} queued records"
    )
    for name, lines in server_errors.items():
        print(f"{name} logged {len(lines)} error lines; last: {lines[-1]}")
    result = {
        "machine": machine_info,
        "settings": {
            "duration_s": duration,
            "warmup_s": warmup,
            "connections": [1, args.connections],
            "wrk_threads_high": args.threads,
            "rounds": rounds,
            "round_s": args.round_seconds,
            "noise": asdict(noise),
            "request_bodies": {k: v.decode() for k, v in bodies.items()},
        },
        "matrix": [asdict(run) for run in runs],
        "interleaved": {"c1": low, f"c{args.connections}": high},
        "import": imports,
        "summary": summary,
        "logs": logs,
        "server_log_errors": server_errors,
    }
    write_results("proxy", started, result)
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:
        print("bench: interrupted; every child process was stopped", file=sys.stderr)
        raise SystemExit(130) from None
