"""Run the mock provider over real HTTP in a background thread for tests.

Real sockets (not an in-process transport) matter here: the point is to test a
gateway's actual HTTP client path, streaming flushes and connection failures.
"""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType

import uvicorn

from .app import create_app, install_log_filter
from .recorder import RecordedRequest, Recorder

_STARTUP_TIMEOUT_S = 10.0


class MockProvider:
    """A mock LLM provider on ``127.0.0.1:<free port>``.

    Use as ``with MockProvider() as mock: ...`` or ``mock.start()`` / ``mock.stop()``.
    ``mock.url`` is the origin; OpenAI SDKs want ``mock.url + "/v1"``, the
    Anthropic SDK wants ``mock.url``.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, record_requests: bool = True) -> None:
        self.host = host
        self._requested_port = port
        self.recorder = Recorder(record_requests=record_requests)
        self.app = create_app(self.recorder)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> MockProvider:
        """Bind, serve in a daemon thread, and return once connections are accepted."""
        if self._thread is not None:
            return self
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._requested_port))
        sock.listen(1024)
        sock.setblocking(False)
        self._port = sock.getsockname()[1]

        config = uvicorn.Config(
            self.app,
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=2,
        )
        install_log_filter()
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name=f"mock-provider-{self._port}", daemon=True
        )
        self._thread.start()
        self._wait_until_ready()
        return self

    def _wait_until_ready(self) -> None:
        assert self._server is not None
        assert self._thread is not None
        assert self._port is not None
        deadline = time.monotonic() + _STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if not self._thread.is_alive():
                raise RuntimeError("mock provider thread exited during startup")
            if self._server.started:
                try:
                    with socket.create_connection((self.host, self._port), timeout=0.5):
                        return
                except OSError:
                    pass
            time.sleep(0.01)
        raise RuntimeError(f"mock provider did not start within {_STARTUP_TIMEOUT_S}s")

    def stop(self) -> None:
        """Shut down; parked gates are unblocked so shutdown is quick."""
        if self._server is None or self._thread is None:
            return
        self.recorder.close()
        self._server.should_exit = True
        self._thread.join(timeout=10)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> MockProvider:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- addresses ------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("mock provider is not started")
        return self._port

    @property
    def url(self) -> str:
        """Origin such as ``http://127.0.0.1:43121`` (no trailing slash)."""
        return f"http://{self.host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        return self.url + "/v1"

    @property
    def anthropic_base_url(self) -> str:
        return self.url

    # -- recorded requests -------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Snapshot of every request received so far, oldest first."""
        return self.recorder.requests

    @property
    def last_request(self) -> RecordedRequest:
        """The most recent request (raises if none arrived)."""
        requests = self.recorder.requests
        if not requests:
            raise AssertionError("the mock provider has not received any request")
        return requests[-1]

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> list[RecordedRequest]:
        """Block until ``count`` requests arrived (useful when a proxy calls upstream asynchronously)."""
        return self.recorder.wait_for_requests(count, timeout)

    def clear(self) -> None:
        """Forget recorded requests and gate state."""
        self.recorder.clear()

    # -- gates ----------------------------------------------------------------------

    def release(self, name: str) -> None:
        """Let streams waiting at gate ``name`` (``x-mock-gate: name``) continue."""
        self.recorder.release(name)

    def wait_for_gate(self, name: str, timeout: float = 5.0) -> bool:
        """True once a stream is parked at gate ``name``."""
        return self.recorder.wait_for_gate(name, timeout)

    @property
    def gate_results(self) -> dict[str, str]:
        """``{name: "released" | "timeout"}`` for gates a stream has passed."""
        return self.recorder.gate_results
