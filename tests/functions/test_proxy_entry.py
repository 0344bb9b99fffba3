"""The proxy's Lambda entry: the module the Lambda Web Adapter's uvicorn loads, and its handler script."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from heliport.app import Heliport
from tests.harness import ServerThread, load_entry

FUNCTION = Path(__file__).resolve().parents[2] / "functions" / "proxy"


def test_entry_module_builds_the_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HELIPORT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "heliport-proxy")
    module = load_entry("proxy")
    assert isinstance(module.app, Heliport)
    # In Lambda the log must be handed off before the last byte: the sandbox freezes after it.
    assert module.app.settings.log_before_last_byte is True
    server = ServerThread(module.app).start()
    try:
        assert httpx.get(f"{server.url}/healthcheck").json() == {"status": "ok"}
    finally:
        server.stop()


def test_run_script_serves_the_app_on_the_adapter_port(tmp_path: Path) -> None:
    """What the Lambda Web Adapter does at init: run the handler script, then poll its readiness path."""
    script = FUNCTION / "run.sh"
    assert script.stat().st_mode & stat.S_IXUSR
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "LAMBDA_TASK_ROOT": str(FUNCTION),
        "PORT": str(port),
        "HELIPORT_DATA_DIR": str(tmp_path),
    }
    process = subprocess.Popen(["sh", str(script)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/healthcheck")
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stdout.read() if process.stdout else ""
                assert time.monotonic() < deadline, "run.sh did not start serving"
                time.sleep(0.1)
        assert response.json() == {"status": "ok"}
    finally:
        process.terminate()
        process.wait(10)
