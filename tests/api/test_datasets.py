"""``/v1/helicone-dataset`` over real HTTP, on SQLite and on PostgreSQL, with two organisations.

The logged rows are stored by the real log database adapters and their bodies in the real blob store
(as the consumer writes them: the text that went over the wire); heliport is reached with httpx, the
way Helicone's datasets page and cookbooks call Helicone. The exports are checked line by line: the
OpenAI fine-tuning format of a chat, a stream, an Anthropic exchange and an edited item, and the items
that have no example, with their reasons.
"""

from __future__ import annotations

import asyncio
import csv
import gzip
import io
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from heliport.api.database import PostgresQueries
from heliport.auth import create_key
from heliport.config import Settings
from heliport.logs.consumer import body_key
from heliport.logs.row import RequestRow
from heliport.store.blobs import LocalBlobStore
from heliport.store.keys import Organisation, SqliteKeyStore
from heliport.store.logdb_postgres import PostgresLogDb
from heliport.store.logdb_sqlite import SqliteLogDb
from tests.harness import serve_local
from tests.postgres import throwaway_database_sync

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
PIXEL = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="

CHAT_REQUEST = {
    "model": "gpt-4o-mini",
    "messages": [
        {"role": "developer", "content": "Be brief."},
        {"role": "user", "content": "=SUM(A1) Hello"},
    ],
    "temperature": 0.2,
}
CHAT_RESPONSE = {
    "id": "chatcmpl-1",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi there!", "refusal": None}}],
}
STREAM_REQUEST = {"model": "gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "Weather?"}]}
STREAM_RESPONSE = "".join(
    f"data: {json.dumps(event)}\n\n"
    for event in [
        {"choices": [{"index": 0, "delta": {"role": "assistant", "content": "Let me "}}]},
        {"choices": [{"index": 0, "delta": {"content": "check."}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": 0, "id": "call_1", "type": "function", "function": {"name": "weather", "arguments": '{"ci'}}]}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": 'ty":"Oslo"}'}}]}}]},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
    ]
) + "data: [DONE]\n\n"  # fmt: skip
ANTHROPIC_REQUEST = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 100,
    "system": [{"type": "text", "text": "You see images."}],
    "messages": [
        {"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PIXEL}},
            {"type": "text", "text": "What is this?"},
        ]},
    ],
}  # fmt: skip
ANTHROPIC_RESPONSE = {
    "type": "message",
    "role": "assistant",
    "content": [
        {"type": "thinking", "thinking": "hmm"},
        {"type": "text", "text": "A pixel."},
        {"type": "tool_use", "id": "toolu_1", "name": "zoom", "input": {"factor": 2}},
    ],
}
ANTHROPIC_STREAM_REQUEST = {"model": "claude-sonnet-4-5", "max_tokens": 50, "stream": True,
                            "messages": [{"role": "user", "content": "Say hi"}]}  # fmt: skip


def anthropic_sse(events: list[dict[str, Any]]) -> str:
    return "".join(f"event: {event['type']}\ndata: {json.dumps(event)}\n\n" for event in events)


ANTHROPIC_STREAM = anthropic_sse(
    [
        {"type": "message_start", "message": {"role": "assistant", "content": []}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "!"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "message_stop"},
    ]
)
EMBEDDING_REQUEST = {"model": "text-embedding-3-small", "input": ["hello"]}
EMBEDDING_RESPONSE = {"object": "list", "data": [{"embedding": [0.1, 0.2]}]}


def _row(org: str, minutes: int, **fields: Any) -> RequestRow:
    values: dict[str, Any] = {
        "request_id": str(uuid.uuid4()),
        "org_id": org,
        "key_id": "k-" + org,
        "created_at": T0 + timedelta(minutes=minutes),
        "status": 200,
        "provider": "OPENAI",
        "target_url": "https://api.openai.com/v1/chat/completions",
        "path": "/v1/chat/completions",
        "model": "gpt-4o-mini",
        "prompt_tokens": 10 + minutes,
        "completion_tokens": 5,
        "total_tokens": 15 + minutes,
        "cost": Decimal("0.0021"),
    }
    values.update(fields)
    return RequestRow(**values)


@dataclass
class Api:
    a: httpx.Client
    b: httpx.Client
    org_a: str
    org_b: str
    #: Org A's requests by name: chat, stream, anthropic, anthropic_stream, embedding, unlogged.
    req: dict[str, str]
    #: Org B's one request.
    req_b: str
    dsn: str | None


#: (request, response) bodies of org A's logged requests, by name; None: bodies not logged.
BODIES: dict[str, tuple[Any, Any] | None] = {
    "chat": (CHAT_REQUEST, CHAT_RESPONSE),
    "stream": (STREAM_REQUEST, STREAM_RESPONSE),
    "anthropic": (ANTHROPIC_REQUEST, ANTHROPIC_RESPONSE),
    "anthropic_stream": (ANTHROPIC_STREAM_REQUEST, ANTHROPIC_STREAM),
    "embedding": (EMBEDDING_REQUEST, EMBEDDING_RESPONSE),
    "unlogged": None,
}


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    data_dir: Path = tmp_path_factory.mktemp(f"datasets-{request.param}")
    if request.param == "sqlite":
        yield from _serve(data_dir, None)
    else:
        with throwaway_database_sync() as dsn:
            yield from _serve(data_dir, dsn)


def _serve(data_dir: Path, dsn: str | None) -> Iterator[Api]:
    store = SqliteKeyStore(data_dir / "keys.sqlite3")

    async def setup() -> tuple[list[str], list[str], dict[str, str], str]:
        keys, orgs = [], []
        for name in ("a", "b"):
            org = Organisation(id=f"org-{name}-{uuid.uuid4().hex[:6]}", name=name, created_at=T0)
            await store.put_org(org)
            plain, _ = await create_key(store, org.id, name)
            keys.append(plain)
            orgs.append(org.id)
        blobs = LocalBlobStore(data_dir / "blobs")
        rows: list[RequestRow] = []
        names: dict[str, str] = {}
        for minutes, (name, bodies) in enumerate(BODIES.items()):
            row = _row(orgs[0], minutes, model="claude-sonnet-4-5" if "anthropic" in name else "gpt-4o-mini")
            if bodies is not None:
                row.body_key = body_key(orgs[0], row.request_id)
                await _store_bodies(blobs, row.body_key, *bodies)
            rows.append(row)
            names[name] = row.request_id
        other = _row(orgs[1], 3)
        other.body_key = body_key(orgs[1], other.request_id)
        await _store_bodies(blobs, other.body_key, CHAT_REQUEST, {"choices": [{"message": {"content": "B secret"}}]})
        db = PostgresLogDb(dsn, max_size=1) if dsn else SqliteLogDb(data_dir / "logs.sqlite3")
        await db.migrate()
        assert await db.insert_requests([*rows, other]) == len(rows) + 1
        await db.aclose()
        return keys, orgs, names, other.request_id

    keys, orgs, names, other_id = asyncio.run(setup())
    server = serve_local(Settings(data_dir=data_dir, database_url=dsn), store)
    a = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {keys[0]}"}, timeout=10)
    b = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {keys[1]}"}, timeout=10)
    try:
        yield Api(a, b, orgs[0], orgs[1], names, other_id, dsn)
    finally:
        a.close()
        b.close()
        server.stop()


async def _store_bodies(blobs: LocalBlobStore, key: str, request: Any, response: Any) -> None:
    # As the consumer stores them: each body the text that went over the wire.
    text = {"request": json.dumps(request), "response": response if isinstance(response, str) else json.dumps(response)}
    await blobs.put(key, gzip.compress(json.dumps(text).encode()), content_encoding="gzip")


def data(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["error"] is None
    return body["data"]


def error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["data"] is None and isinstance(body["error"], str)
    message: str = body["error"]
    return message


def create(client: httpx.Client, **body: Any) -> str:
    made = data(client.post("/v1/helicone-dataset", json=body or {"name": f"set {uuid.uuid4().hex[:6]}"}))
    assert made["datasetId"] == made["id"]
    dataset_id: str = made["datasetId"]
    return dataset_id


def items(client: httpx.Client, dataset_id: str, **body: Any) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = data(client.post(f"/v1/helicone-dataset/{dataset_id}/query", json=body))
    return got


def export(client: httpx.Client, dataset_id: str, form: str) -> dict[str, Any]:
    got: dict[str, Any] = data(client.get(f"/v1/helicone-dataset/{dataset_id}/export", params={"format": form}))
    return got


# --- create, list, add, query ------------------------------------------------------------------------


def test_the_documented_calls_create_a_dataset_and_add_a_request(api: Api) -> None:
    body = {"name": "Customer Support Examples", "description": "High-quality support interactions"}
    made = data(api.a.post("/v1/helicone-dataset", json=body))
    assert set(made) == {"datasetId", "id", "name"} and made["name"] == "Customer Support Examples"
    dataset_id = made["datasetId"]
    # The docs' add sends no body at all.
    item = data(api.a.post(f"/v1/helicone-dataset/{dataset_id}/request/{api.req['chat']}"))
    assert item["origin_request_id"] == api.req["chat"] and item["dataset_id"] == dataset_id
    assert item["edited"] is False and item["request_body"] is None and item["created_at"].endswith("Z")
    # Adding it again changes nothing.
    again = data(api.a.post(f"/v1/helicone-dataset/{dataset_id}/request/{api.req['chat']}"))
    assert again["id"] == item["id"]
    assert data(api.a.post(f"/v1/helicone-dataset/{dataset_id}/count")) == 1

    listed = data(api.a.post("/v1/helicone-dataset/query", json={"datasetIds": [dataset_id]}))
    assert len(listed) == 1
    dataset = listed[0]
    assert dataset["id"] == dataset_id and dataset["name"] == "Customer Support Examples"
    assert dataset["description"] == "High-quality support interactions"
    assert dataset["dataset_type"] == "helicone" and dataset["organization"] == api.org_a
    assert dataset["requests_count"] == 1 and dataset["meta"] is None


def test_helicones_own_create_body_and_listing(api: Api) -> None:
    dataset_id = create(api.a, datasetName="From code", requestIds=[api.req["chat"], api.req["stream"]],
                        meta={"promptVersionId": "v1"})  # fmt: skip
    everything = data(api.a.post("/v1/helicone-dataset/query", json={}))
    mine = next(d for d in everything if d["id"] == dataset_id)
    assert mine["name"] == "From code" and mine["requests_count"] == 2 and mine["meta"] == {"promptVersionId": "v1"}
    # Newest first.
    assert [d["created_at"] for d in everything] == sorted((d["created_at"] for d in everything), reverse=True)
    assert data(api.a.post("/v1/helicone-dataset/query", json={"datasetIds": ["not-a-uuid"]})) == []


def test_items_come_newest_first_in_pages_with_a_working_signed_url(api: Api) -> None:
    dataset_id = create(api.a)
    for name in ("chat", "stream", "anthropic"):
        data(api.a.post(f"/v1/helicone-dataset/{dataset_id}/request/{api.req[name]}"))
    got = items(api.a, dataset_id, limit=100, offset=0)
    assert [i["origin_request_id"] for i in got] == [api.req["anthropic"], api.req["stream"], api.req["chat"]]
    assert set(got[0]) >= {"id", "origin_request_id", "dataset_id", "created_at", "signed_url"}
    page = items(api.a, dataset_id, limit=1, offset=1)
    assert [i["origin_request_id"] for i in page] == [api.req["stream"]]
    url = got[2]["signed_url"]
    assert url["error"] is None
    bodies = httpx.get(url["data"], timeout=10).json()  # no key: the URL is the proof
    assert bodies["request"] == CHAT_REQUEST and bodies["response"] == CHAT_RESPONSE
    # An item whose request logged no bodies says so.
    data(api.a.post(f"/v1/helicone-dataset/{dataset_id}/request/{api.req['unlogged']}"))
    unlogged = items(api.a, dataset_id, limit=1)[0]
    assert unlogged["signed_url"] == {"data": None, "error": "the request's bodies were not logged"}


# --- edit, remove, mutate, delete --------------------------------------------------------------------


def test_an_edited_item_keeps_its_own_copy_and_can_be_reverted(api: Api) -> None:
    dataset_id = create(api.a)
    item = data(api.a.post(f"/v1/helicone-dataset/{dataset_id}/request/{api.req['chat']}"))
    better = {"choices": [{"message": {"role": "assistant", "content": "Hello! How can I help?"}}]}
    # Helicone's edit names the item; the request's id names it too.
    for name in (item["id"], api.req["chat"]):
        edited = data(api.a.post(f"/v1/helicone-dataset/{dataset_id}/request/{name}",
                                 json={"requestBody": CHAT_REQUEST, "responseBody": better}))  # fmt: skip
        assert edited["id"] == item["id"] and edited["edited"] is True and edited["edited_at"]
        assert edited["request_body"] == CHAT_REQUEST and edited["response_body"] == better
    line = json.loads(export(api.a, dataset_id, "jsonl")["content"])
    assert line["messages"][-1] == {"role": "assistant", "content": "Hello! How can I help?"}
    # The log itself is untouched.
    assert httpx.get(items(api.a, dataset_id)[0]["signed_url"]["data"], timeout=10).json()["response"] == CHAT_RESPONSE
    reverted = data(api.a.post(f"/v1/helicone-dataset/{dataset_id}/request/{item['id']}", json={}))
    assert reverted["edited"] is False and reverted["response_body"] is None
    assert json.loads(export(api.a, dataset_id, "jsonl")["content"])["messages"][-1]["content"] == "Hi there!"


def test_editing_a_request_not_yet_in_the_dataset_adds_it(api: Api) -> None:
    dataset_id = create(api.a)
    edited = data(api.a.post(f"/v1/helicone-dataset/{dataset_id}/request/{api.req['stream']}",
                             json={"requestBody": {"messages": [{"role": "user", "content": "x"}]}}))  # fmt: skip
    assert edited["origin_request_id"] == api.req["stream"] and edited["edited"] is True
    assert edited["response_body"] is None  # the logged response is still the item's
    line = json.loads(export(api.a, dataset_id, "jsonl")["content"])
    assert line["messages"][0] == {"role": "user", "content": "x"}
    assert line["messages"][-1]["content"] == "Let me check."


def test_remove_mutate_and_delete(api: Api) -> None:
    dataset_id = create(api.a, name="curate", requestIds=[api.req["chat"], api.req["stream"]])
    first = {i["origin_request_id"]: i["id"] for i in items(api.a, dataset_id)}
    # DELETE by item id, then by request id.
    assert data(api.a.delete(f"/v1/helicone-dataset/{dataset_id}/request/{first[api.req['chat']]}")) == {
        "deleted": True
    }
    error(api.a.delete(f"/v1/helicone-dataset/{dataset_id}/request/{api.req['chat']}"), 404)
    assert data(api.a.delete(f"/v1/helicone-dataset/{dataset_id}/request/{api.req['stream']}")) == {"deleted": True}
    assert items(api.a, dataset_id) == []
    # Helicone's mutate: request ids to add; item (or request) ids to remove.
    body = {"addRequests": [api.req["chat"], api.req["anthropic"], api.req["chat"]], "removeRequests": []}
    assert data(api.a.post(f"/v1/helicone-dataset/{dataset_id}/mutate", json=body)) is None
    now = {i["origin_request_id"]: i["id"] for i in items(api.a, dataset_id)}
    assert set(now) == {api.req["chat"], api.req["anthropic"]}
    body = {"addRequests": [], "removeRequests": [now[api.req["chat"]]]}
    data(api.a.post(f"/v1/helicone-dataset/{dataset_id}/mutate", json=body))
    assert [i["origin_request_id"] for i in items(api.a, dataset_id)] == [api.req["anthropic"]]
    # Deleting the dataset takes its items with it.
    assert data(api.a.post(f"/v1/helicone-dataset/{dataset_id}/delete")) is None
    error(api.a.post(f"/v1/helicone-dataset/{dataset_id}/query", json={}), 404)
    error(api.a.post(f"/v1/helicone-dataset/{dataset_id}/delete"), 404)
    listed = data(api.a.post("/v1/helicone-dataset/query", json={}))
    assert dataset_id not in {d["id"] for d in listed}


# --- export ---------------------------------------------------------------------------------------


def test_jsonl_export_is_openais_fine_tuning_format(api: Api) -> None:
    dataset_id = create(api.a, name="Fine tune: v1/2", requestIds=list(api.req.values()))
    exported = export(api.a, dataset_id, "jsonl")
    assert exported["format"] == "jsonl" and exported["fileName"] == "Fine-tune--v1-2.jsonl"
    assert exported["contentType"] == "application/jsonl"
    lines = [json.loads(line) for line in exported["content"].splitlines()]
    assert exported["exported"] == len(lines) == 4 and exported["truncated"] is False
    assert all(set(line) == {"messages"} for line in lines)
    chat, stream, anthropic, anthropic_stream = (line["messages"] for line in lines)  # oldest first
    assert chat == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "=SUM(A1) Hello"},
        {"role": "assistant", "content": "Hi there!"},
    ]
    assert stream == [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": "Let me check.", "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Oslo"}'}}]},
    ]  # fmt: skip
    assert anthropic == [
        {"role": "system", "content": "You see images."},
        {"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PIXEL}"}},
            {"type": "text", "text": "What is this?"},
        ]},
        {"role": "assistant", "content": "A pixel.", "tool_calls": [
            {"id": "toolu_1", "type": "function", "function": {"name": "zoom", "arguments": '{"factor": 2}'}}]},
    ]  # fmt: skip
    assert anthropic_stream == [{"role": "user", "content": "Say hi"}, {"role": "assistant", "content": "Hi!"}]
    skipped = {s["requestId"]: s["reason"] for s in exported["skipped"]}
    assert skipped == {
        api.req["embedding"]: "the response has no output",
        api.req["unlogged"]: "the request body was not logged or is not JSON",
    }


def test_csv_export_has_the_documented_columns_and_every_item(api: Api) -> None:
    dataset_id = create(api.a, name="sheet", requestIds=[api.req["chat"], api.req["anthropic"], api.req["unlogged"]])
    exported = export(api.a, dataset_id, "csv")
    assert exported["fileName"] == "sheet.csv" and exported["contentType"] == "text/csv"
    assert exported["exported"] == 3 and [s["requestId"] for s in exported["skipped"]] == [api.req["unlogged"]]
    rows = list(csv.DictReader(io.StringIO(exported["content"])))
    assert list(rows[0])[:8] == ["request_id", "created_at", "model", "prompt_tokens", "completion_tokens", "cost",
                                 "user_message", "assistant_response"]  # fmt: skip
    chat, anthropic, unlogged = rows
    assert chat["request_id"] == api.req["chat"] and chat["created_at"] == "2026-05-01T09:00:00.000Z"
    assert chat["model"] == "gpt-4o-mini" and chat["prompt_tokens"] == "10" and chat["completion_tokens"] == "5"
    assert chat["cost"] == "0.0021" and chat["assistant_response"] == "Hi there!"
    assert chat["user_message"] == "'=SUM(A1) Hello"  # a spreadsheet reads it as text, not a formula
    assert anthropic["user_message"] == "What is this?" and anthropic["assistant_response"] == "A pixel."
    assert unlogged["user_message"] == "" and unlogged["note"] == "the request body was not logged or is not JSON"


def test_an_export_past_its_cap_says_it_is_truncated(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    from heliport.api import datasets

    monkeypatch.setattr(datasets, "MAX_EXPORT_ITEMS", 2)  # the server runs in this process
    dataset_id = create(api.a, name="big", requestIds=[api.req["chat"], api.req["stream"], api.req["anthropic"]])
    exported = export(api.a, dataset_id, "jsonl")
    assert exported["truncated"] is True and exported["exported"] == 2
    assert [json.loads(line)["messages"][-1]["content"] for line in exported["content"].splitlines()] == [
        "Hi there!", "Let me check."]  # the oldest  # fmt: skip


# --- organisations --------------------------------------------------------------------------------


def test_another_organisation_sees_nothing_and_changes_nothing(api: Api) -> None:
    dataset_id = create(api.a, name="private", requestIds=[api.req["chat"]])
    item = items(api.a, dataset_id)[0]
    assert dataset_id not in {d["id"] for d in data(api.b.post("/v1/helicone-dataset/query", json={}))}
    assert data(api.b.post("/v1/helicone-dataset/query", json={"datasetIds": [dataset_id]})) == []
    base = f"/v1/helicone-dataset/{dataset_id}"
    error(api.b.post(f"{base}/query", json={}), 404)
    error(api.b.post(f"{base}/count"), 404)
    error(api.b.get(f"{base}/export"), 404)
    error(api.b.post(f"{base}/request/{api.req_b}"), 404)
    error(api.b.post(f"{base}/request/{item['id']}", json={"requestBody": {"x": 1}}), 404)
    error(api.b.delete(f"{base}/request/{item['id']}"), 404)
    error(api.b.post(f"{base}/mutate", json={"addRequests": [], "removeRequests": [item["id"]]}), 404)
    error(api.b.post(f"{base}/delete"), 404)
    # B's own dataset cannot take A's request, by path or body.
    other = create(api.b)
    error(api.b.post(f"/v1/helicone-dataset/{other}/request/{api.req['chat']}"), 404)
    theirs = {"name": "x", "requestIds": [api.req["chat"]]}
    assert "requestIds[0]" in error(api.b.post("/v1/helicone-dataset", json=theirs), 400)
    assert "addRequests[1]" in error(
        api.b.post(f"/v1/helicone-dataset/{other}/mutate", json={"addRequests": [api.req_b, api.req["chat"]]}), 400
    )
    assert data(api.b.post(f"/v1/helicone-dataset/{other}/count")) == 0  # the refused mutate added nothing
    # A's dataset is as it was (the body link is signed afresh on each answer: its expiry moves with the clock).
    assert [_unsigned(i) for i in items(api.a, dataset_id)] == [_unsigned(item)]
    assert data(api.a.post(f"{base}/count")) == 1
    if api.dsn is not None:  # PostgreSQL: row-level security hides A's rows even from a careless statement
        assert asyncio.run(_unconfined_counts(api.dsn, api.org_b)) == (1, 0)  # B's own empty dataset only
        assert asyncio.run(_unconfined_counts(api.dsn, api.org_a))[1] >= 1


def _unsigned(item: dict[str, Any]) -> dict[str, Any]:
    """An item without its body link's expiry and signature, which depend on when it was answered."""
    link = item["signed_url"]["data"]
    return item | {"signed_url": item["signed_url"] | {"data": None if link is None else link.split("?", 1)[0]}}


async def _unconfined_counts(dsn: str, org_id: str) -> tuple[int, int]:
    """(datasets, items) a statement naming no organisation sees when run for ``org_id``."""
    db = PostgresQueries(dsn)
    try:
        sets = await db.fetch(org_id, "SELECT count(*) AS n FROM datasets", [])
        entries = await db.fetch(org_id, "SELECT count(*) AS n FROM dataset_items", [])
    finally:
        await db.aclose()
    return int(sets[0]["n"]), int(entries[0]["n"])


# --- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("", {}, "body"),
        ("", {"name": ""}, "name"),
        ("", {"name": 5}, "name"),
        ("", {"name": "x" * 201}, "name"),
        ("", {"datasetName": None}, "body"),
        ("", {"name": "x", "description": 3}, "description"),
        ("", {"name": "x", "requestIds": "abc"}, "requestIds"),
        ("", {"name": "x", "requestIds": ["not-a-uuid"]}, "requestIds[0]"),
        ("", {"name": "x", "meta": "m"}, "meta"),
        ("/query", {"datasetIds": "x"}, "datasetIds"),
        ("/{d}/query", {"limit": -1}, "limit"),
        ("/{d}/query", {"limit": 1001}, "limit"),
        ("/{d}/query", {"offset": "0"}, "offset"),
        ("/{d}/mutate", {"addRequests": ["zz"]}, "addRequests[0]"),
        ("/{d}/mutate", {"removeRequests": [1]}, "removeRequests.0"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(api: Api, path: str, body: dict[str, Any], field: str) -> None:
    dataset_id = create(api.a)
    message = error(api.a.post("/v1/helicone-dataset" + path.replace("{d}", dataset_id), json=body), 400)
    assert field in message


def test_bad_edits_and_formats_are_400s_and_unknown_ids_404s(api: Api) -> None:
    dataset_id = create(api.a)
    route = f"/v1/helicone-dataset/{dataset_id}/request/{api.req['chat']}"
    assert "JSON object" in error(api.a.post(route, json=[1]), 400)
    assert "not JSON" in error(api.a.post(route, content=b"{nope"), 400)
    assert "requestBody" in error(api.a.post(route, content=b'{"requestBody": "\\ud800"}'), 400)
    assert "requestBody" in error(api.a.post(route, content=b'{"requestBody": {"a": "\\u0000"}}'), 400)
    deep = "[" * 200 + "]" * 200
    assert "requestBody" in error(api.a.post(route, content=f'{{"requestBody": {deep}}}'.encode()), 400)
    assert data(api.a.post(f"/v1/helicone-dataset/{dataset_id}/count")) == 0  # nothing was added
    assert "format" in error(api.a.get(f"/v1/helicone-dataset/{dataset_id}/export", params={"format": "xml"}), 400)
    for path in ("/v1/helicone-dataset/nope/query", f"/v1/helicone-dataset/{uuid.uuid4()}/query"):
        error(api.a.post(path, json={}), 404)
    error(api.a.post(f"/v1/helicone-dataset/{dataset_id}/request/nope"), 404)
    error(api.a.post(f"/v1/helicone-dataset/{dataset_id}/request/{uuid.uuid4()}"), 404)
    error(api.a.delete(f"/v1/helicone-dataset/{dataset_id}/request/{uuid.uuid4()}"), 404)
    error(httpx.post(str(api.a.base_url).rstrip("/") + "/v1/helicone-dataset", json={"name": "x"}, timeout=10), 401)
