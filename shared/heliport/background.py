"""Background work that shares the machine's cores with the proxy hands its core back often.

``heliport serve`` turns queued records into rows in a process of its own (the log pipeline), so the
proxy's interpreter never waits for it. The cores are still shared, and a busy background process
delays the proxy in the kernel's scheduler instead: measured on two vCPUs (Linux 6.18, EEVDF,
``PREEMPT_NONE``, HZ=250), a process burning a quarter of a core at niceness +10, or even under
``SCHED_IDLE``, raised the bare pass-through's p99 at one connection from 1.3 to 4.7 ms. The woken
proxy, its upstream or wrk waits for the busy task's slice to end or the next tick (4 ms); niceness
only changes how much CPU each gets over time, not how soon a waking task runs. The same burner calling
``sched_yield`` every 0.2 ms of work left the proxy's p99 at 2.0 ms against 5.7 without it
(docs/benchmarks.md, "serve's tail").

So a process that does only background work calls :func:`share_cores` once, and its CPU loops call
:func:`pause_point` between units of work (a record turned into a row, ~0.2 ms; :func:`paced` does it
between the items a loop in C pulls, such as SQLite's ``executemany``): after each slice of
CPU the core goes to whatever waits for it, at the cost of one system call. Everywhere else (the
proxy, the Lambda functions, tests) :func:`pause_point` does nothing.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

__all__ = ["SLICE_SECONDS", "paced", "pause_point", "share_cores"]

_T = TypeVar("_T")

#: CPU a background process may use before it offers its core to others (about one record's work).
SLICE_SECONDS = 0.0002

_slice: float | None = None
_last_pause = 0.0


def share_cores(slice_seconds: float = SLICE_SECONDS) -> None:
    """From now on :func:`pause_point` yields this process's core every ``slice_seconds`` of work."""
    global _slice
    if not hasattr(os, "sched_yield"):  # not on Windows; there the scheduler is left as it is
        return
    if slice_seconds <= 0:
        raise ValueError("slice_seconds must be positive")
    _slice = slice_seconds


def pause_point() -> None:
    """Between two units of CPU work: offer the core to waiting tasks if a slice has passed."""
    global _last_pause
    if _slice is None:
        return
    now = time.perf_counter()
    if now - _last_pause >= _slice:
        os.sched_yield()
        _last_pause = time.perf_counter()


def paced(items: Iterable[_T]) -> Iterator[_T]:
    """``items``, with a :func:`pause_point` after each: for loops that run in C and pull from Python."""
    for item in items:
        yield item
        pause_point()
