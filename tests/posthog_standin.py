"""A local stand-in for PostHog's capture API: records what it receives, answers as scripted.

PostHog's ingestion endpoints (``POST /capture/``, ``POST /batch/``) take a JSON body with the project
key in ``api_key`` and answer 200 ``{"status": 1}``. This server accepts any path, keeps each request
(path, headers, decoded JSON body) and answers with the next status of its script (the last status
repeats), optionally after a delay, so tests can make PostHog fail, recover or hang.
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
class Received:
    path: str
    headers: dict[str, str]
    body: Any


class PostHogStandIn:
    """``with PostHogStandIn() as posthog:``; ``posthog.url`` is its origin (``http://127.0.0.1:<port>``)."""

    def __init__(self, statuses: Sequence[int] = (200,), *, delay: float = 0.0) -> None:
        self._lock = threading.Lock()
        self._received: list[Received] = []
        self._statuses = list(statuses) or [200]
        self.delay = delay
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out as two writes

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length)
                try:
                    body: Any = json.loads(raw)
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                status = standin._record(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                if standin.delay:
                    time.sleep(standin.delay)
                answer = json.dumps({"status": 1} if status == 200 else {"error": f"scripted {status}"}).encode()
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                except OSError:
                    pass  # the client gave up first (a test of deadlines)

            def log_message(self, format: str, *args: Any) -> None:  # silence: the stdlib prints every request
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="posthog-standin", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def script(self, statuses: Sequence[int], *, delay: float = 0.0) -> None:
        """Answer the next requests with ``statuses`` (the last one repeating), after ``delay`` seconds."""
        with self._lock:
            self._statuses = list(statuses) or [200]
            self.delay = delay

    def _record(self, received: Received) -> int:
        with self._lock:
            self._received.append(received)
            return self._statuses.pop(0) if len(self._statuses) > 1 else self._statuses[0]

    @property
    def received(self) -> list[Received]:
        with self._lock:
            return list(self._received)

    def events(self) -> list[dict[str, Any]]:
        """Every event received, in order, each with the ``api_key`` of its request added."""
        out: list[dict[str, Any]] = []
        for request in self.received:
            body = request.body
            if not isinstance(body, dict):
                continue
            if "batch" in body:
                out.extend({**event, "api_key": body.get("api_key")} for event in body["batch"])
            else:
                out.append(body)
        return out

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            received = self.received
            if len(received) >= count:
                return received
            time.sleep(0.01)
        raise AssertionError(f"the PostHog stand-in received {len(self.received)} requests, not {count}")

    def start(self) -> PostHogStandIn:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> PostHogStandIn:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
