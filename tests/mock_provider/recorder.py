"""Request recording and stream gates shared between the mock app and the test thread.

The mock app runs on an event loop in a background thread while the test body
runs in the main thread, so everything here is guarded by a lock and gate waits
poll a ``threading.Event`` instead of blocking the event loop.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

GATE_RELEASED = "released"
GATE_TIMEOUT = "timeout"
_GATE_POLL_S = 0.005


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request exactly as it reached the mock, so tests can assert what a proxy forwarded."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes = field(repr=False)

    @property
    def json(self) -> Any:
        """The body parsed as JSON (``None`` for an empty body)."""
        if not self.body:
            return None
        return json.loads(self.body)

    def header(self, name: str, default: str | None = None) -> str | None:
        """Case-insensitive header lookup (names are stored lower-cased)."""
        return self.headers.get(name.lower(), default)


class Recorder:
    """Thread-safe store of recorded requests plus named gates for stream pacing.

    ``record_requests=False`` is meant for load benchmarks, where keeping every
    request body would grow memory without bound.
    """

    def __init__(self, *, record_requests: bool = True) -> None:
        self.record_requests = record_requests
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._request_added = threading.Condition(self._lock)
        self._gates: dict[str, threading.Event] = {}
        self._gates_reached: dict[str, threading.Event] = {}
        self._gate_results: dict[str, str] = {}
        self._closing = threading.Event()

    # -- requests -------------------------------------------------------------

    def record(self, request: RecordedRequest) -> None:
        """Store a request (called by the app before it replies)."""
        if not self.record_requests:
            return
        with self._request_added:
            self._requests.append(request)
            self._request_added.notify_all()

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot copy, safe to iterate while the server keeps appending."""
        with self._lock:
            return list(self._requests)

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> list[RecordedRequest]:
        """Block until at least ``count`` requests were recorded (or the timeout passes)."""
        deadline = time.monotonic() + timeout
        with self._request_added:
            while len(self._requests) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._request_added.wait(remaining)
            return list(self._requests)

    def clear(self) -> None:
        """Forget recorded requests and gate state between test phases."""
        with self._lock:
            self._requests.clear()
            self._gates.clear()
            self._gates_reached.clear()
            self._gate_results.clear()

    # -- gates ----------------------------------------------------------------

    def _gate(self, name: str) -> threading.Event:
        with self._lock:
            return self._gates.setdefault(name, threading.Event())

    def _reached(self, name: str) -> threading.Event:
        with self._lock:
            return self._gates_reached.setdefault(name, threading.Event())

    def release(self, name: str) -> None:
        """Let a stream parked at gate ``name`` continue (may be called before it arrives)."""
        self._gate(name).set()

    def wait_for_gate(self, name: str, timeout: float = 5.0) -> bool:
        """Block until some stream is parked at gate ``name``; True if it got there in time."""
        return self._reached(name).wait(timeout)

    @property
    def gate_results(self) -> dict[str, str]:
        """``{gate name: "released" | "timeout"}`` for every gate a stream has passed."""
        with self._lock:
            return dict(self._gate_results)

    async def wait_gate(self, name: str, *, limit_s: float) -> str:
        """Park the calling stream until the gate is released, without blocking the loop."""
        gate = self._gate(name)
        self._reached(name).set()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit_s
        result = GATE_RELEASED
        while not gate.is_set():
            if self._closing.is_set() or loop.time() >= deadline:
                result = GATE_TIMEOUT
                break
            await asyncio.sleep(_GATE_POLL_S)
        with self._lock:
            self._gate_results[name] = result
        return result

    def close(self) -> None:
        """Unblock parked streams so server shutdown does not wait for gate timeouts."""
        self._closing.set()
