"""Every proxy event in ``events/`` replayed as the Lambda Web Adapter replays it: an HTTP request to the
entry module's app, which answers from the mock provider."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from heliport.auth import create_key
from heliport.store.keys import SqliteKeyStore
from tests.harness import ServerThread, load_entry, wait_for
from tests.mock_provider import MockProvider

ROOT = Path(__file__).resolve().parents[2]
EVENTS = sorted((ROOT / "events").glob("proxy-*.json"))


@pytest.fixture(scope="module")
def served(mock_provider: MockProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    data_dir = tmp_path_factory.mktemp("proxy-events")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("HELIPORT_DATA_DIR", str(data_dir))
        env.setenv("AWS_LAMBDA_FUNCTION_NAME", "heliport-proxy")
        for slug in ("OAI", "ANTHROPIC"):
            env.setenv(f"HELIPORT_UPSTREAM_{slug}", mock_provider.url)
        env.setenv("ANTHROPIC_API_KEY", "sk-ant-events")
        module = load_entry("proxy")
        store = SqliteKeyStore(data_dir / "keys.sqlite3")
        from heliport.auth import bootstrap_local_org

        async def key() -> str:
            org, _ = await bootstrap_local_org(store)
            plain, _ = await create_key(store, org.id, "events")
            await store.aclose()
            return plain

        plain = asyncio.run(key())
        server = ServerThread(module.app).start()
        yield server.url, plain
        server.stop()


def _replay(url: str, key: str, event: dict[str, Any]) -> httpx.Response:
    """What the adapter does with an API Gateway proxy event (the sample key replaced by a real one)."""
    headers = {k: v.replace("sk-heliport-your-key", key) for k, v in event["headers"].items()}
    query = event.get("queryStringParameters") or {}
    return httpx.request(
        event["httpMethod"], url + event["path"], params=query, headers=headers, content=event["body"], timeout=10
    )


@pytest.mark.parametrize("path", EVENTS, ids=[p.stem for p in EVENTS])
def test_every_proxy_event_is_answered(served: tuple[str, str], mock_provider: MockProvider, path: Path) -> None:
    url, key = served
    event = json.loads(path.read_text())
    mock_provider.clear()
    response = _replay(url, key, event)
    assert response.status_code == 200, response.text
    body = json.loads(event["body"])
    if body.get("stream"):
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.text.rstrip().endswith("data: [DONE]")
    else:
        assert response.json()["choices"][0]["message"]["content"]
    if "Helicone-Cache-Enabled" in event["headers"]:
        again = _replay(url, key, event)
        assert (response.headers["helicone-cache"], again.headers["helicone-cache"]) == ("MISS", "HIT")
        assert len(mock_provider.requests) == 1
    else:
        wait_for(lambda: mock_provider.requests)
