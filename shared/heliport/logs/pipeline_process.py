"""``heliport serve``'s log pipeline in a process of its own, so it never holds the proxy's interpreter.

The pipeline (:class:`heliport.logs.consumer.LocalPipeline`: the consumer that turns queued records
into rows, the respool of spooled records, the webhook deliveries and the PostHog exports) and the
alert timer used to run on a thread of the proxy's process. Turning records into rows is CPU work in
Python (usage, cost, gzip), and while that thread held the GIL every request waited: serve's p99 at
one connection was several times the bare pass-through's. In a child process the two share nothing
but the SQLite queue file (WAL), which the proxy appends to and the child reads, deletes from and,
on respool, appends to; SQLite's file locks order those writes across processes.

The parent side, :class:`PipelineProcess`, has :class:`LocalPipeline`'s ``start``/``stop``, so the
app runs either. Its protocol with the child is small:

* the parent starts ``python -m heliport.logs.pipeline_process`` and writes the :class:`Settings` to
  its stdin (pickled: they are the parent's own object, trusted, with nested dataclasses and paths
  a JSON form would have to rebuild), then keeps stdin open;
* the child migrates the log database, starts the pipeline and writes ``ready`` on stdout;
* SIGTERM, or end of file on stdin (the parent is gone, however it died), makes the child stop
  consuming, drain what is queued, settle exports and deliveries, and exit 0. SIGINT is ignored: a
  terminal's Ctrl-C reaches the whole process group, and the parent stops the child once the
  proxy has finished its requests in flight, so their records are drained too;
* a child that exits while the parent still runs is reported on the log at ERROR and started again
  (with a growing delay while it keeps failing). Nothing is lost meanwhile: records stay in the
  queue file until a consumer has stored them, and the row insert is idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

from heliport.background import share_cores
from heliport.config import Settings

__all__ = ["PipelineProcess", "main"]

logger = logging.getLogger("heliport.logs.pipeline_process")

#: What the child writes on stdout once its pipeline runs.
READY = b"ready\n"
#: Seconds the child may take to start (the log database's migrations run first).
START_TIMEOUT = 120.0
#: Seconds ``stop`` waits for the child to drain the queue and settle (webhook grace included) before
#: it is killed; what is still queued then stays in the file for the next start.
STOP_TIMEOUT = 60.0
#: Delay before restarting a child that exited; doubled while it keeps failing, up to the cap.
RESTART_DELAY = 1.0
RESTART_DELAY_CAP = 30.0
#: A child that ran this long before exiting was healthy: the next restart waits the initial delay.
HEALTHY_RUN = 60.0
#: Exit code of a child whose pipeline could not start (the log database refused, say).
EXIT_START_FAILED = 3
#: The child's niceness increment (``nice(2)``): lower CPU priority than the proxy's.
NICENESS = 10
_LENGTH = struct.Struct(">I")


class PipelineProcess:
    """Runs the log pipeline and the alert timer in a child process; ``start`` returns once it is ready."""

    def __init__(
        self,
        settings: Settings,
        *,
        start_timeout: float = START_TIMEOUT,
        stop_timeout: float = STOP_TIMEOUT,
        restart_delay: float = RESTART_DELAY,
        restart_delay_cap: float = RESTART_DELAY_CAP,
    ) -> None:
        self.settings = settings
        self._payload = pickle.dumps(settings)
        self._start_timeout = start_timeout
        self._stop_timeout = stop_timeout
        self._restart_delay = restart_delay
        self._restart_delay_cap = restart_delay_cap
        self._proc: subprocess.Popen[bytes] | None = None
        # Held while a child is spawned or the stop begins, so a restart never outlives ``stop``.
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._monitor: threading.Thread | None = None
        #: Times a child that exited unexpectedly was started again.
        self.restarts = 0
        #: The last child's exit code once ``stop`` has ended it (0: it drained and exited on SIGTERM).
        self.exit_code: int | None = None

    @property
    def pid(self) -> int | None:
        """The running child's pid (None before ``start`` and after ``stop``)."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    async def start(self) -> None:
        await asyncio.to_thread(self._start)

    def _start(self) -> None:
        with self._lock:
            proc = self._spawn()
            self._proc = proc
        if not self._await_ready(proc):
            self._end(proc)
            raise RuntimeError(f"the log pipeline process could not start (exit code {proc.returncode})")
        self._monitor = threading.Thread(target=self._watch, name="heliport-pipeline-monitor", daemon=True)
        self._monitor.start()

    def _spawn(self) -> subprocess.Popen[bytes]:
        env = dict(os.environ)
        # The child imports heliport from where this process did, whatever its working directory.
        root = str(Path(__file__).resolve().parent.parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
        proc = subprocess.Popen(
            [sys.executable, "-m", "heliport.logs.pipeline_process"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            close_fds=True,
        )
        assert proc.stdin is not None
        proc.stdin.write(_LENGTH.pack(len(self._payload)) + self._payload)
        proc.stdin.flush()
        return proc

    def _await_ready(self, proc: subprocess.Popen[bytes]) -> bool:
        """True once the child says ``ready``; False if it exits first or stays silent too long."""
        assert proc.stdout is not None
        deadline = time.monotonic() + self._start_timeout
        while True:
            readable, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
            if not readable:
                logger.error("the log pipeline process (pid %d) was not ready in %.0f s", proc.pid, self._start_timeout)
                return False
            line = proc.stdout.readline()
            if line == READY:
                return True
            if not line:  # it exited (its own log says why, on the shared stderr)
                proc.wait()
                return False
            logger.warning("log pipeline process: %s", line.decode(errors="replace").rstrip())

    def _watch(self) -> None:
        """Restart the child whenever it exits on its own, until ``stop``."""
        delay = self._restart_delay
        while True:
            proc = self._proc
            assert proc is not None
            began = time.monotonic()
            code = proc.wait()
            if self._stopping.is_set():
                return
            if time.monotonic() - began >= HEALTHY_RUN:
                delay = self._restart_delay
            logger.error(
                "heliport's log pipeline process (pid %d) exited with code %s; queued records wait for it; "
                "restarting in %.0f s",
                proc.pid,
                code,
                delay,
            )
            _close_pipes(proc)
            if self._stopping.wait(delay):
                return
            with self._lock:
                if self._stopping.is_set():
                    return
                try:
                    proc = self._spawn()
                except OSError:
                    logger.exception("could not start the log pipeline process again")
                    delay = min(delay * 2, self._restart_delay_cap)
                    continue
                self._proc = proc
                self.restarts += 1
            if self._await_ready(proc):
                logger.warning("the log pipeline process is running again (pid %d)", proc.pid)
            else:
                self._end(proc)
                delay = min(delay * 2, self._restart_delay_cap)

    async def stop(self) -> None:
        await asyncio.to_thread(self._stop)

    def _stop(self) -> None:
        with self._lock:
            self._stopping.set()
            proc = self._proc
        if proc is not None:
            self._end(proc)
            self.exit_code = proc.returncode
        if self._monitor is not None:
            self._monitor.join()
            self._monitor = None
        self._proc = None

    def _end(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGTERM (drain and exit), then SIGKILL if it has not exited within the stop timeout."""
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                proc.wait(self._stop_timeout)
            except subprocess.TimeoutExpired:
                logger.error(
                    "the log pipeline process (pid %d) did not finish in %.0f s; killed (what it had not "
                    "stored stays queued for the next start)",
                    proc.pid,
                    self._stop_timeout,
                )
                proc.kill()
                proc.wait()
        _close_pipes(proc)


def _close_pipes(proc: subprocess.Popen[bytes]) -> None:
    for pipe in (proc.stdin, proc.stdout):
        if pipe is not None:
            with contextlib.suppress(OSError):
                pipe.close()


# --- the child ------------------------------------------------------------------------------------


def _read_exact(fd: int, size: int) -> bytes:
    chunks: list[bytes] = []
    while size > 0:
        chunk = os.read(fd, size)
        if not chunk:
            break
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _read_settings(fd: int) -> Settings:
    # Read from the descriptor, not sys.stdin's buffer: the parent watch below blocks on the same
    # descriptor in a daemon thread, and a buffered reader's lock held there aborts interpreter exit.
    header = _read_exact(fd, _LENGTH.size)
    if len(header) != _LENGTH.size:
        raise SystemExit("heliport log pipeline: no settings on stdin (it is started by heliport serve)")
    (length,) = _LENGTH.unpack(header)
    settings = pickle.loads(_read_exact(fd, length))
    if not isinstance(settings, Settings):
        raise SystemExit("heliport log pipeline: stdin did not hold heliport settings")
    return settings


def _watch_parent(fd: int, loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    """Block on stdin until it ends, which means the parent closed it or died: then stop."""
    while os.read(fd, 4096):
        pass
    with contextlib.suppress(RuntimeError):  # the loop already closed: the process is ending anyway
        loop.call_soon_threadsafe(stop.set)


async def _run(settings: Settings, stdin: int, stdout: IO[bytes]) -> int:
    from heliport.alerts.schedule import local_timer
    from heliport.logs.consumer import LocalPipeline
    from heliport.store.factory import open_blobs, open_inner_queue, open_logdb, open_queue

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    threading.Thread(target=_watch_parent, args=(stdin, loop, stop), name="heliport-parent", daemon=True).start()

    blobs = open_blobs(settings)
    inner = open_inner_queue(settings)  # SQLite: a writer thread only if respool sends
    queue = open_queue(settings, blobs, inner)
    pipeline = LocalPipeline(inner, queue, open_logdb(settings), blobs, settings=settings)
    try:
        await pipeline.start()
    except Exception:
        logger.exception("the log pipeline could not start")
        await queue.aclose()
        return EXIT_START_FAILED
    timer = local_timer(settings)
    await timer.start()
    stdout.write(READY)
    stdout.flush()
    # From now on the parent reads nothing from the pipe: anything printed goes to stderr instead of
    # filling the pipe's buffer until a print blocks.
    os.dup2(2, 1)
    try:
        await stop.wait()
    finally:
        await timer.stop()
        await pipeline.stop()  # stops consuming, drains what is queued, settles exports and webhooks
        await queue.aclose()
    return 0


def main() -> int:
    # The parent decides when this process stops (see the module's docstring), not a terminal's Ctrl-C.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    settings = _read_settings(sys.stdin.fileno())
    level = getattr(logging, os.environ.get("HELIPORT_LOG_LEVEL", "warning").upper(), logging.WARNING)
    logging.basicConfig(
        level=level if isinstance(level, int) else logging.WARNING,
        format="heliport log pipeline [%(process)d] %(levelname)s %(name)s: %(message)s",
    )
    # Background work: where the proxy and this process both want a core, the scheduler favours the
    # proxy, whose requests are waiting; the records wait in the queue file at no one's expense.
    with contextlib.suppress(OSError):
        os.nice(NICENESS)
    # Niceness shares CPU over time; how soon a woken proxy runs needs the core handed back often.
    share_cores()
    from heliport.heap import tune_for_serving

    tune_for_serving()
    return asyncio.run(_run(settings, sys.stdin.fileno(), sys.stdout.buffer))


if __name__ == "__main__":
    raise SystemExit(main())
