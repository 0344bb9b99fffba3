"""A local webhook receiver: keeps every POST with its exact body bytes, answers as scripted.

It stands in for the organisation's server (outside heliport), so its raw bytes are what the
signature is checked against. Each path has its own script of statuses (the last one repeats).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any


@dataclass(frozen=True)
class Delivery:
    path: str
    headers: dict[str, str]
    raw: bytes
    status: int

    @property
    def body(self) -> Any:
        return json.loads(self.raw)


class Receiver:
    """``with Receiver() as receiver:``; ``receiver.url`` is its origin (``http://127.0.0.1:<port>``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._received: list[Delivery] = []
        self._scripts: dict[str, list[int]] = {}
        self._delays: dict[str, float] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                status = receiver._record(self.path, {k.lower(): v for k, v in self.headers.items()}, raw)
                time.sleep(receiver._delays.get(self.path, 0.0))
                answer = b'{"ok": true}' if status < 300 else b'{"error": "scripted"}'
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                except OSError:
                    pass  # the client gave up first

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhook-receiver", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def script(self, path: str, statuses: Sequence[int], *, delay: float = 0.0) -> None:
        """Answer POSTs to ``path`` with ``statuses`` (the last one repeating), each after ``delay`` seconds."""
        with self._lock:
            self._scripts[path] = list(statuses)
            self._delays[path] = delay

    def _record(self, path: str, headers: dict[str, str], raw: bytes) -> int:
        with self._lock:
            script = self._scripts.get(path) or [200]
            status = script.pop(0) if len(script) > 1 else script[0]
            self._received.append(Delivery(path, headers, raw, status))
            return status

    def received(self, path: str | None = None) -> list[Delivery]:
        with self._lock:
            return [d for d in self._received if path is None or d.path == path]

    def wait_for(self, path: str, count: int, timeout: float = 20.0) -> list[Delivery]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.received(path)
            if len(got) >= count:
                return got
            time.sleep(0.02)
        raise AssertionError(f"{path}: {len(self.received(path))} deliveries, expected {count}")

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()
