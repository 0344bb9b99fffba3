"""The README's promise, as a user meets it: start ``heliport serve``, copy the key, call through it."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.mock_provider import MockProvider

HELIPORT = [sys.executable, "-m", "heliport.cli"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def env_for(mock: MockProvider, data_dir: Path) -> dict[str, str]:
    return {**os.environ, "HELIPORT_UPSTREAM_OAI": mock.url, "HELIPORT_DATA_DIR": str(data_dir)}


class Served:
    def __init__(self, mock: MockProvider, data_dir: Path) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [*HELIPORT, "serve", "--port", str(self.port)],
            env=env_for(mock, data_dir),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.output = ""
        assert self.process.stdout is not None
        deadline = time.monotonic() + 20
        while "Any provider:" not in self.output:
            line = self.process.stdout.readline()
            if not line or time.monotonic() > deadline:
                raise AssertionError(f"heliport serve did not start:\n{self.output}")
            self.output += line
        while True:  # printed before the socket is bound: wait for it
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


@pytest.fixture
def served(mock_provider: MockProvider, tmp_path: Path) -> Iterator[Served]:
    server = Served(mock_provider, tmp_path)
    yield server
    server.stop()


def test_first_start_prints_a_working_key_and_base_url(served: Served, mock_provider: MockProvider) -> None:
    key = re.search(r"sk-heliport-[0-9a-f]{48}", served.output)
    base = re.search(r'base_url="(http://[^"]+/v1/gateway/oai/v1)"', served.output)
    assert key and base
    client = openai.OpenAI(
        base_url=base.group(1), api_key="sk-provider", default_headers={"Helicone-Auth": f"Bearer {key.group(0)}"}
    )
    completion = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert completion.choices[0].message.content


def test_keys_create_list_revoke(mock_provider: MockProvider, tmp_path: Path) -> None:
    env = env_for(mock_provider, tmp_path)

    def run(*args: str) -> str:
        return subprocess.run([*HELIPORT, "keys", *args], env=env, check=True, capture_output=True, text=True).stdout

    created = run("create", "--name", "ci-bot")
    plain = re.search(r"sk-heliport-[0-9a-f]{48}", created)
    key_id = re.search(r"created key ([0-9a-f-]{36})", created)
    assert plain and key_id
    listing = run("list")
    assert key_id.group(1) in listing and "ci-bot" in listing
    assert plain.group(0) not in listing  # only a prefix is ever shown again
    assert "revoked key" in run("revoke", key_id.group(1))
    revoked_line = next(line for line in run("list").splitlines() if key_id.group(1) in line)
    assert not revoked_line.rstrip().endswith("-")

    missing = subprocess.run([*HELIPORT, "keys", "revoke", "no-such-key"], env=env, capture_output=True, text=True)
    assert missing.returncode == 1 and "no key" in missing.stderr

    server = Served(mock_provider, tmp_path)
    try:
        assert "sk-heliport-" not in server.output  # not a first start: no new key
        client = openai.OpenAI(
            base_url=f"http://127.0.0.1:{server.port}/v1/gateway/oai/v1",
            api_key="sk-provider",
            default_headers={"Helicone-Auth": f"Bearer {plain.group(0)}"},
            max_retries=0,
        )
        with pytest.raises(openai.AuthenticationError, match="revoked"):
            client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    finally:
        server.stop()
