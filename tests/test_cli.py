"""The README's promise, as a user meets it: start ``heliport serve``, copy the key, call through it;
make organisations and their keys with ``heliport orgs`` / ``heliport keys``, locally and on DynamoDB."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import msgspec
import openai
import pytest

from heliport.config import Settings
from heliport.store.aws import create_table
from heliport.store.factory import open_key_store
from heliport.store.keys import Organisation
from heliport.store.logdb import DeadLetter
from heliport.store.logdb_sqlite import SqliteLogDb
from heliport.store.queue import SqliteQueue
from tests.aws import REGION
from tests.logs.records import chat_record
from tests.mock_provider import MockProvider

HELIPORT = [sys.executable, "-m", "heliport.cli"]
KEY = re.compile(r"sk-heliport-[0-9a-f]{48}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def env_for(mock: MockProvider, data_dir: Path) -> dict[str, str]:
    return {**os.environ, "HELIPORT_UPSTREAM_OAI": mock.url, "HELIPORT_DATA_DIR": str(data_dir)}


class Served:
    def __init__(self, mock: MockProvider, data_dir: Path, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [*HELIPORT, "serve", "--port", str(self.port)],
            env=env or env_for(mock, data_dir),
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


# --- organisations ----------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "dynamo"])
def store_env(request: pytest.FixtureRequest, mock_provider: MockProvider, tmp_path: Path) -> dict[str, str]:
    """The environment of a ``heliport`` process whose key store is SQLite, or DynamoDB on moto's server."""
    if request.param == "sqlite":
        return env_for(mock_provider, tmp_path)
    # Requested first: it puts moto's fake AWS credentials in os.environ, which env_for copies.
    endpoint: str = request.getfixturevalue("aws_endpoint")
    table = f"heliport-{uuid.uuid4().hex[:12]}"
    asyncio.run(create_table(table, region=REGION, endpoint_url=endpoint))
    return {
        **env_for(mock_provider, tmp_path),
        "HELIPORT_TABLE": table,
        "HELIPORT_AWS_ENDPOINT_URL": endpoint,
        "HELIPORT_AWS_REGION": REGION,
    }


def heliport(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*HELIPORT, *args], env=env, capture_output=True, text=True, timeout=60)


def ok(env: dict[str, str], *args: str) -> str:
    done = heliport(env, *args)
    assert done.returncode == 0, f"heliport {' '.join(args)}: {done.returncode}\n{done.stdout}{done.stderr}"
    return done.stdout


def create_org(env: dict[str, str], name: str, *extra: str) -> str:
    """``heliport orgs create``: its stdout is the new id and nothing else."""
    org_id = ok(env, "orgs", "create", "--name", name, *extra).strip()
    assert str(uuid.UUID(org_id)) == org_id  # canonical, as bootstrap_local_org's str(uuid4()) ids are
    return org_id


def create_key(env: dict[str, str], *args: str) -> tuple[str, str, str]:
    """``heliport keys create ARGS``: (key id, organisation id, the plain key)."""
    out = ok(env, "keys", "create", *args)
    made = re.search(r"created key ([0-9a-f-]{36}) .* for organisation .* \(([0-9a-f-]{36})\)", out)
    plain = KEY.search(out)
    assert made and plain, out
    return made.group(1), made.group(2), plain.group(0)


def org_rows(env: dict[str, str]) -> dict[str, list[str]]:
    """``heliport orgs list`` as name -> [id, created, active keys, revoked]."""
    lines = ok(env, "orgs", "list").splitlines()
    assert lines[0].split() == ["id", "name", "created", "active", "keys", "revoked"]
    rows = [line.split() for line in lines[1:-1]]
    return {name: [org_id, created, active, revoked] for org_id, name, created, active, revoked in rows}


def test_orgs_create_list_and_keys_by_name_or_id(store_env: dict[str, str]) -> None:
    env = store_env
    assert "no organisations yet" in ok(env, "orgs", "list")
    first_id, local_id, _ = create_key(env, "--name", "first")  # no --org: bootstraps the first organisation
    acme_id = create_org(env, "acme")
    assert uuid.UUID(acme_id).version == 4
    # --id is kept to the canonical form, whatever the spelling given.
    globex_id = str(uuid.uuid4())
    assert create_org(env, "globex", "--id", globex_id.upper().replace("-", "")) == globex_id

    by_name, org_of_by_name, _ = create_key(env, "--org", "acme", "--name", "by-name")
    by_id, org_of_by_id, _ = create_key(env, "--org", acme_id, "--name", "by-id")
    assert org_of_by_name == org_of_by_id == acme_id
    acme_keys = ok(env, "keys", "list", "--org", "acme")
    assert by_name in acme_keys and by_id in acme_keys and first_id not in acme_keys
    default_keys = ok(env, "keys", "list")  # still the first organisation, however many exist
    assert first_id in default_keys and by_name not in default_keys
    assert ok(env, "keys", "list", "--org", "local") == default_keys
    assert "revoked key" in ok(env, "keys", "revoke", by_id, "--org", "acme")
    # A key is revoked only through its own organisation.
    refused = heliport(env, "keys", "revoke", by_name, "--org", "globex")
    assert refused.returncode == 1 and "has no key" in refused.stderr

    rows = org_rows(env)
    assert list(rows) == ["local", "acme", "globex"]  # oldest first
    # local: the bootstrap's own key and "first"; acme: one active, one revoked.
    assert {name: (row[0], row[2], row[3]) for name, row in rows.items()} == {
        "local": (local_id, "2", "0"),
        "acme": (acme_id, "1", "1"),
        "globex": (globex_id, "0", "0"),
    }
    assert datetime.fromisoformat(rows["acme"][1]) <= datetime.now(UTC)
    assert f"without --org, heliport keys uses the first: local ({local_id})" in ok(env, "orgs", "list")


def test_orgs_refusals(store_env: dict[str, str]) -> None:
    env = store_env
    acme_id = create_org(env, "acme")

    duplicate = heliport(env, "orgs", "create", "--name", "acme")
    assert duplicate.returncode == 1 and duplicate.stdout == ""
    assert duplicate.stderr == f"heliport: an organisation named 'acme' already exists (id {acme_id})\n"
    taken_id = heliport(env, "orgs", "create", "--name", "other", "--id", acme_id)
    assert taken_id.returncode == 1 and f"with id '{acme_id}' already exists" in taken_id.stderr
    uuid_name = heliport(env, "orgs", "create", "--name", str(uuid.uuid4()))
    assert uuid_name.returncode == 1 and "looks like an organisation id" in uuid_name.stderr
    blank = heliport(env, "orgs", "create", "--name", "  ")
    assert blank.returncode == 1 and "1 to 200 characters" in blank.stderr
    not_uuid = heliport(env, "orgs", "create", "--name", "x", "--id", "org-1")
    assert not_uuid.returncode == 2 and "not a UUID" in not_uuid.stderr

    unknown = heliport(env, "keys", "create", "--org", "nobody")
    assert unknown.returncode == 1
    assert unknown.stderr == "heliport: no organisation with id or name 'nobody' (see: heliport orgs list)\n"
    # Two organisations called alike can only predate unique names (put_org checks nothing): --org
    # refuses to guess between them, and each is still reachable by its id.
    twins = [Organisation(id=str(uuid.uuid4()), name="twin", created_at=datetime.now(UTC)) for _ in range(2)]

    async def put_twins() -> None:
        store = open_key_store(Settings.from_env(env))
        try:
            for twin in twins:
                await store.put_org(twin)
        finally:
            await store.aclose()

    asyncio.run(put_twins())
    ambiguous = heliport(env, "keys", "list", "--org", "twin")
    assert ambiguous.returncode == 1 and "'twin' matches more than one organisation" in ambiguous.stderr
    assert twins[0].id in ambiguous.stderr and twins[1].id in ambiguous.stderr
    assert create_key(env, "--org", twins[1].id)[1] == twins[1].id
    listed = ok(env, "orgs", "list").splitlines()[1:-1]
    assert [line.split()[:2] for line in listed] == [[acme_id, "acme"], [twins[0].id, "twin"], [twins[1].id, "twin"]]


def poll_request(base: str, key: str, request_id: str) -> dict[str, Any]:
    """The logged request through the query API, once the in-process consumer has written it."""
    deadline = time.monotonic() + 20
    while True:
        response = httpx.get(f"{base}/v1/request/{request_id}", headers={"Authorization": f"Bearer {key}"})
        if response.status_code == 200 or time.monotonic() > deadline:
            assert response.status_code == 200, response.text
            data: dict[str, Any] = response.json()["data"]
            return data
        assert response.status_code == 404, response.text
        time.sleep(0.1)


def test_two_tenants_through_serve(store_env: dict[str, str], mock_provider: MockProvider, tmp_path: Path) -> None:
    """Organisation B, made with the CLI while heliport serves A: B's traffic is B's, and A's is not B's."""
    env = store_env
    server = Served(mock_provider, tmp_path, env)
    try:
        first_key = KEY.search(server.output)
        assert first_key, server.output
        key_a = first_key.group(0)
        org_b = create_org(env, "B")
        key_b_id, org_of_key_b, key_b = create_key(env, "--org", "B", "--name", "tenant-b")
        assert org_of_key_b == org_b

        request_ids: dict[str, str] = {}
        for tenant, key in (("A", key_a), ("B", key_b)):
            request_ids[tenant] = str(uuid.uuid4())
            client = openai.OpenAI(
                base_url=f"{server.url}/v1/gateway/oai/v1",
                api_key="sk-provider",
                default_headers={"Helicone-Auth": f"Bearer {key}", "Helicone-Request-Id": request_ids[tenant]},
                max_retries=0,
            )
            client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": tenant}])

        # Each key reads its own organisation's request...
        assert poll_request(server.url, key_b, request_ids["B"])["request_id"] == request_ids["B"]
        assert poll_request(server.url, key_a, request_ids["A"])["request_id"] == request_ids["A"]
        # ...and never the other's, by id or by query.
        for key, other in ((key_b, request_ids["A"]), (key_a, request_ids["B"])):
            denied = httpx.get(f"{server.url}/v1/request/{other}", headers={"Authorization": f"Bearer {key}"})
            assert denied.status_code == 404, denied.text
        listed = httpx.post(
            f"{server.url}/v1/request/query", json={"filter": "all"}, headers={"Authorization": f"Bearer {key_b}"}
        )
        assert [row["request_id"] for row in listed.json()["data"]] == [request_ids["B"]]
        # The row itself: logged under B's organisation, by B's key.
        with sqlite3.connect(tmp_path / "logs.sqlite3") as logs:
            stored = logs.execute("SELECT org_id, key_id FROM requests WHERE request_id = ?", (request_ids["B"],))
            assert stored.fetchall() == [(org_b, key_b_id)]
    finally:
        server.stop()


def test_logs_dead_letters_list_retry_drop(tmp_path: Path) -> None:
    env = {**os.environ, "HELIPORT_DATA_DIR": str(tmp_path)}
    env.pop("HELIPORT_DATABASE_URL", None)
    record = chat_record()

    async def keep() -> None:
        logdb = SqliteLogDb(tmp_path / "logs.sqlite3")
        await logdb.migrate()
        at = datetime.now(UTC)
        await logdb.add_dead_letters(
            [
                DeadLetter(
                    org_id=record.org_id,
                    request_id=record.request_id,
                    failed_at=at,
                    attempts=3,
                    error="refused",
                    record=msgspec.json.encode(record),
                ),
                DeadLetter(org_id=None, request_id=None, failed_at=at, attempts=1, error="garbled", record=b"{"),
            ]
        )
        await logdb.aclose()

    asyncio.run(keep())
    listed = heliport(env, "logs", "dead-letters", "list")
    assert listed.returncode == 0 and record.request_id in listed.stdout and "garbled" in listed.stdout
    assert heliport(env, "logs", "dead-letters", "retry").returncode == 2  # neither ids nor --all

    retried = heliport(env, "logs", "dead-letters", "retry", "--all")
    assert retried.returncode == 1 and "not a log record" in retried.stderr  # the garbled one stays
    queue = SqliteQueue(tmp_path / "log-queue.sqlite3")
    try:
        assert [q.record for q in queue.receive()] == [record]  # back in the queue serve drains
    finally:
        asyncio.run(queue.aclose())
    left = heliport(env, "logs", "dead-letters", "list").stdout.splitlines()[1:]
    assert len(left) == 1 and "garbled" in left[0]
    assert heliport(env, "logs", "dead-letters", "drop", "999").returncode == 1
    assert heliport(env, "logs", "dead-letters", "drop", left[0].split()[0]).returncode == 0
    assert heliport(env, "logs", "dead-letters", "list").stdout.splitlines()[1:] == []
