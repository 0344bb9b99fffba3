"""``heliport smoke``, run as a user runs it after ``sam deploy``: a subprocess against a deployment.

The deployment here is heliport as ``heliport serve`` runs it (the whole local log pipeline and the
query API over its SQLite log database), with the mock provider as OpenAI, behind a stage prefix as
API Gateway puts one in front of it: the URL the command gets ends in ``/v1`` like ``GatewayUrl``.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from heliport.app import create_app
from heliport.asgi import Receive, Scope, Send
from heliport.auth import bootstrap_local_org, create_key
from heliport.config import Settings
from heliport.smoke import STEPS
from heliport.store.keys import SqliteKeyStore
from tests.harness import ServerThread
from tests.mock_provider import MockProvider

HELIPORT = [sys.executable, "-m", "heliport.cli"]
STAGE = "v1"
#: The user's own OpenAI key (pass-through) and the deployment's (AI gateway): the mock records which arrived.
USER_OPENAI_KEY = "sk-user-openai"
DEPLOYMENT_OPENAI_KEY = "sk-deployment-openai"
LINE = re.compile(r"^(PASS|FAIL|SKIP) ([a-z-]+)(.*)$")


class Stage:
    """API Gateway's stage in front of heliport: requests arrive as ``/<stage>/<path>`` and heliport
    sees ``/<path>``; anything outside the stage gets API Gateway's 403."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], name: str) -> None:
        self._app = app
        self._prefix = f"/{name}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            if not path.startswith(self._prefix + "/"):
                body = b'{"message":"Missing Authentication Token"}'
                await send(
                    {"type": "http.response.start", "status": 403, "headers": [(b"content-type", b"application/json")]}
                )
                await send({"type": "http.response.body", "body": body})
                return
            inner = path[len(self._prefix) :]
            scope = {**scope, "path": inner, "raw_path": inner.encode()}
        await self._app(scope, receive, send)


@dataclass(frozen=True)
class Deployment:
    gateway_url: str  # origin + stage, as the GatewayUrl output
    key: str


@pytest.fixture(scope="module")
def deployment(mock_provider: MockProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    data_dir: Path = tmp_path_factory.mktemp("smoke")
    settings = Settings(data_dir=data_dir, upstream_overrides={"oai": mock_provider.url})
    store = SqliteKeyStore(data_dir / "keys.sqlite3")

    async def bootstrap() -> str:
        org, _ = await bootstrap_local_org(store)
        plain, _ = await create_key(store, org.id, "smoke")
        return plain

    key = asyncio.run(bootstrap())
    app = create_app(
        settings, local_pipeline=True, key_store=store, provider_env={"OPENAI_API_KEY": DEPLOYMENT_OPENAI_KEY}
    )
    server = ServerThread(Stage(app, STAGE)).start()
    yield Deployment(gateway_url=f"{server.url}/{STAGE}", key=key)
    server.stop()


def smoke(deployment: Deployment, *args: str, key: str | None = None, openai_env: str | None = None) -> tuple[int, str]:
    """Runs the command; ``openai_env`` is OPENAI_API_KEY in its environment (unset when None)."""
    env = {name: value for name, value in os.environ.items() if name != "OPENAI_API_KEY"}
    if openai_env is not None:
        env["OPENAI_API_KEY"] = openai_env
    command = [*HELIPORT, "smoke", deployment.gateway_url, "--key", key or deployment.key, "--log-timeout", "20"]
    result = subprocess.run([*command, *args], env=env, capture_output=True, text=True, timeout=180, check=False)
    return result.returncode, result.stdout + result.stderr


def steps(output: str) -> dict[str, tuple[str, str]]:
    """``{step: (PASS|FAIL|SKIP, rest of the line)}``, checking every step printed exactly one line, in order."""
    found = [match.groups() for match in map(LINE.match, output.splitlines()) if match]
    assert [step for _, step, _ in found] == list(STEPS), output
    return {step: (status, rest) for status, step, rest in found}


def test_a_working_deployment_passes_every_step(deployment: Deployment, mock_provider: MockProvider) -> None:
    mock_provider.clear()
    code, output = smoke(deployment, openai_env=USER_OPENAI_KEY)  # the key comes from OPENAI_API_KEY

    assert code == 0, output
    result = steps(output)
    assert {status for status, _ in result.values()} == {"PASS"}, output
    assert re.match(r" \(\d+ ms; Helicone-Id [0-9a-f-]{36}\)", result["passthrough-json"][1]), output
    assert "row visible after" in result["log-readback"][1]
    # Pass-through carried the user's key to the provider; the AI gateway used the deployment's own.
    sent = [r.header("authorization") for r in mock_provider.requests if r.path == "/v1/chat/completions"]
    assert sent == [f"Bearer {USER_OPENAI_KEY}"] * 2 + [f"Bearer {DEPLOYMENT_OPENAI_KEY}"] * 2
    assert all(r.header("helicone-auth") is None for r in mock_provider.requests)  # never sent upstream


def test_a_wrong_heliport_key_fails_every_step(deployment: Deployment) -> None:
    code, output = smoke(deployment, "--openai-key", USER_OPENAI_KEY, key="sk-heliport-" + "0" * 48)

    assert code == 1, output
    result = steps(output)
    assert {status for status, _ in result.values()} == {"FAIL"}, output
    for step in ("passthrough-json", "passthrough-stream", "gateway-json", "gateway-stream"):
        assert result[step][1].startswith(": HTTP 401"), output
    assert "no Helicone-Id to look up" in result["log-readback"][1]


def test_a_provider_error_fails_the_passthrough_steps_naming_the_status(deployment: Deployment) -> None:
    # The mock answers 500 to any credential containing mock-status-500.
    code, output = smoke(deployment, "--openai-key", "sk-mock-status-500")

    assert code == 1, output
    result = steps(output)
    assert result["passthrough-json"][0] == "FAIL" and result["passthrough-json"][1].startswith(": HTTP 500"), output
    assert result["passthrough-stream"][0] == "FAIL" and result["passthrough-stream"][1].startswith(": HTTP 500")
    assert (result["gateway-json"][0], result["gateway-stream"][0]) == ("PASS", "PASS"), output
    # The failed call is logged too: its row is what the read-back finds.
    assert result["log-readback"][0] == "PASS", output


def test_skipped_passthrough_reads_back_the_gateway_call(deployment: Deployment) -> None:
    code, output = smoke(deployment, "--skip-passthrough")

    assert code == 0, output
    statuses = {step: status for step, (status, _) in steps(output).items()}
    assert statuses == {
        "passthrough-json": "SKIP",
        "passthrough-stream": "SKIP",
        "gateway-json": "PASS",
        "gateway-stream": "PASS",
        "log-readback": "PASS",
    }, output


def test_a_missing_openai_key_fails_the_passthrough_steps_naming_the_option(deployment: Deployment) -> None:
    code, output = smoke(deployment, "--skip-gateway")  # no --openai-key, no OPENAI_API_KEY

    assert code == 1, output
    result = steps(output)
    assert result["passthrough-json"][0] == "FAIL" and "--openai-key" in result["passthrough-json"][1], output
    assert (result["gateway-json"][0], result["gateway-stream"][0]) == ("SKIP", "SKIP")
    assert result["log-readback"][0] == "FAIL", output


def test_a_wrong_stage_is_reported_as_no_route(deployment: Deployment) -> None:
    wrong_stage = deployment.gateway_url.removesuffix(f"/{STAGE}") + "/prod"
    env = {name: value for name, value in os.environ.items() if name != "OPENAI_API_KEY"}
    command = [*HELIPORT, "smoke", wrong_stage, "--key", deployment.key, "--skip-passthrough", "--log-timeout", "5"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)

    assert result.returncode == 1, result.stdout
    gateway = steps(result.stdout)["gateway-json"]
    assert gateway[0] == "FAIL" and "HTTP 403: Missing Authentication Token" in gateway[1]
    assert "stage included" in gateway[1]


def test_the_key_may_come_from_the_environment_and_is_required(deployment: Deployment) -> None:
    env = {name: value for name, value in os.environ.items() if name not in ("HELIPORT_KEY", "OPENAI_API_KEY")}
    command = [*HELIPORT, "smoke", deployment.gateway_url, "--skip-passthrough", "--log-timeout", "20"]
    missing = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert missing.returncode == 2 and "--key or HELIPORT_KEY" in missing.stderr
    given = subprocess.run(
        command, env={**env, "HELIPORT_KEY": deployment.key}, capture_output=True, text=True, timeout=180, check=False
    )
    assert given.returncode == 0, given.stdout + given.stderr
    assert steps(given.stdout)["gateway-json"][0] == "PASS"
