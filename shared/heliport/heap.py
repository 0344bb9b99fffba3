"""Garbage-collector settings for a process that serves heliport (``heliport serve``, the proxy's
Lambda entry); tests and libraries that import heliport keep the interpreter's defaults.

A proxied request allocates thousands of short-lived objects and frees nearly all of them by
reference counting; the cycle collector still walks the heap every 700 net allocations, and a
full collection walks everything imported at start (tens of thousands of module, class and
function objects that live as long as the process). The benchmark showed it: with the collector
off, the Lambda entry served 19% more requests per second at 32 connections and its p99 fell from
50 to 32 ms. Freezing the start-up heap (``gc.freeze``: never scanned again) and collecting the
youngest generation every 10,000 allocations instead of 700 kept most of that gain
(docs/benchmarks.md) while cycles are still collected.
"""

from __future__ import annotations

import gc

#: Net allocations between collections of the youngest generation (CPython's default is 700).
YOUNG_THRESHOLD = 10_000


def tune_for_serving() -> None:
    """Call once the app is built: what exists now is frozen out of every later collection."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
