"""schemathesis holds the running server to its own ``/openapi.json``.

heliport serves the query API on loopback over a SQLite log with a few rows; schemathesis reads the
document the server publishes, generates requests for every operation (valid bodies, and values at
and past every documented bound), sends them with a real heliport key, and checks that no answer is
a 5xx and that every status, content type and body is one the document declares. A route added
without its model, or a result that drifts from its schema, fails here.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from heliport.api.app import ENDPOINTS
from heliport.auth import bootstrap_local_org
from heliport.config import Settings
from heliport.logs.row import RequestRow
from heliport.store.keys import SqliteKeyStore
from heliport.store.logdb_sqlite import SqliteLogDb
from tests.harness import serve_local


@dataclass
class Served:
    url: str
    key: str


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    data_dir: Path = tmp_path_factory.mktemp("openapi")
    store = SqliteKeyStore(data_dir / "keys.sqlite3")

    async def setup() -> str:
        org, key = await bootstrap_local_org(store)
        assert key is not None
        db = SqliteLogDb(data_dir / "logs.sqlite3")
        await db.migrate()
        now = datetime.now(UTC)
        await db.insert_requests(
            [
                RequestRow(
                    request_id=str(uuid.uuid4()),
                    org_id=org.id,
                    key_id="k",
                    created_at=now - timedelta(minutes=i),
                    status=200,
                    provider="OPENAI",
                    target_url="https://api.openai.com/v1/chat/completions",
                    path="/v1/chat/completions",
                    model="gpt-4o-mini",
                    user_id=f"u{i % 2}",
                    session_id=f"s{i % 3}",
                    properties={"env": "prod"},
                    prompt_tokens=i,
                    completion_tokens=1,
                )
                for i in range(6)
            ]
        )
        await db.aclose()
        return key

    key = asyncio.run(setup())
    server = serve_local(Settings(data_dir=data_dir), store)
    try:
        yield Served(server.url, key)
    finally:
        server.stop()


def test_the_server_keeps_to_its_openapi_document(served: Served) -> None:
    # The CLI, as an operator would run it (schemathesis' pytest plugin does not support pytest 9 yet).
    schemathesis = Path(sys.executable).parent / "schemathesis"
    result = subprocess.run(
        [
            str(schemathesis),
            "run",
            f"{served.url}/openapi.json",
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
            "--header",
            f"Authorization: Bearer {served.key}",
            "--max-examples",
            "30",
            "--seed",
            "1",
            "--phases",
            "examples,coverage,fuzzing",
            "--generation-allow-x00",
            "false",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    # Every operation was exercised, not skipped for want of a schema.
    assert f"Tested: {len(ENDPOINTS)}" in result.stdout, result.stdout[-3000:]
