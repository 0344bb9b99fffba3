"""Run heliport for real, over HTTP on loopback, the way a client meets it.

:class:`ServerThread` serves any ASGI app with uvicorn in a thread on a free port. :class:`Gateway`
is a heliport instance wired to a fresh key store, an in-memory log sink the tests can read, and
upstream overrides pointing at the mock provider.
"""

from __future__ import annotations

import asyncio
import importlib.util
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import anthropic
import openai
import uvicorn

from heliport.app import Heliport, create_app
from heliport.auth import bootstrap_local_org, create_key
from heliport.config import Settings
from heliport.exchange import RequestStep
from heliport.logs.record import LogRecord
from heliport.store.factory import open_cache_store, open_counter_store
from heliport.store.keys import SqliteKeyStore
from heliport.store.queue import MemoryQueue


class ServerThread:
    def __init__(self, app: Any) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on", server_header=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True)

    def start(self) -> ServerThread:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)


@dataclass
class Gateway:
    url: str
    key: str
    org_id: str
    queue: MemoryQueue
    store: SqliteKeyStore
    app: Heliport
    server: ServerThread
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def oai_base(self) -> str:
        return f"{self.url}/v1/gateway/oai/v1"

    def openai(self, key: str | None = None, **kwargs: Any) -> openai.OpenAI:
        headers = {"Helicone-Auth": f"Bearer {key or self.key}", **kwargs.pop("default_headers", {})}
        return openai.OpenAI(
            base_url=self.oai_base, api_key="sk-provider-secret", default_headers=headers, max_retries=0, **kwargs
        )

    def anthropic(self, **kwargs: Any) -> anthropic.Anthropic:
        headers = {"Helicone-Auth": f"Bearer {self.key}", **kwargs.pop("default_headers", {})}
        return anthropic.Anthropic(
            base_url=f"{self.url}/v1/gateway/anthropic",
            api_key="sk-ant-provider-secret",
            default_headers=headers,
            max_retries=0,
            **kwargs,
        )

    def record(self, request_id: str, timeout: float = 5.0) -> LogRecord:
        """The log record of one request, waiting for the post-response hand-off."""
        return wait_for(lambda: next((r for r in self.queue.records if r.request_id == request_id), None), timeout)

    def stop(self) -> None:
        self.server.stop()


def serve_local(settings: Settings, key_store: SqliteKeyStore) -> ServerThread:
    """heliport on loopback over local stores and a memory log sink: the query API and dashboard read
    whatever log database ``settings`` name, which the test filled itself."""
    app = Heliport(
        settings,
        key_store=key_store,
        queue=MemoryQueue(),
        cache_store=open_cache_store(settings),
        counter_store=open_counter_store(settings),
    )
    return ServerThread(app).start()


def wait_for(probe: Callable[[], Any], timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def start_gateway(
    data_dir: Path,
    upstream: str,
    *,
    pipeline: bool = False,
    provider_env: dict[str, str] | None = None,
    upstream_overrides: dict[str, str] | None = None,
    steps: Sequence[RequestStep] | None = None,
    **settings: Any,
) -> Gateway:
    """A heliport on loopback. ``pipeline``: the whole local log pipeline (queue, consumer, log
    database in ``data_dir``) as ``heliport serve`` runs it; otherwise a memory sink for records.
    ``steps``: the pre-forward stage both logged routes run (heliport's own checks by default)."""
    config = Settings(
        data_dir=data_dir,
        upstream_overrides=upstream_overrides or {"oai": upstream, "anthropic": upstream, "groq": upstream},
        **settings,
    )
    store = SqliteKeyStore(data_dir / "keys.sqlite3")

    async def bootstrap() -> tuple[str, str]:
        org, _ = await bootstrap_local_org(store)
        plain, _ = await create_key(store, org.id, "tests")
        return org.id, plain

    org_id, key = asyncio.run(bootstrap())
    queue = MemoryQueue()
    app = (
        create_app(config, local_pipeline=True, key_store=store, provider_env=provider_env or {}, steps=steps)
        if pipeline
        else Heliport(
            config,
            key_store=store,
            queue=queue,
            cache_store=open_cache_store(config),
            counter_store=open_counter_store(config),
            provider_env=provider_env or {},
            steps=steps,
        )
    )
    server = ServerThread(app).start()
    return Gateway(url=server.url, key=key, org_id=org_id, queue=queue, store=store, app=app, server=server)


def load_entry(function: str) -> ModuleType:
    """A fresh copy of ``functions/<function>/app.py``, run as Lambda imports it (module-level set-up
    included); it is not registered in ``sys.modules``, so each call builds a new one."""
    path = Path(__file__).resolve().parents[1] / "functions" / function / "app.py"
    spec = importlib.util.spec_from_file_location(f"heliport_{function}_entry", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
