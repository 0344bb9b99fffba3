"""``/v1/helicone-dataset``: Helicone's datasets API over the ``datasets`` and ``dataset_items`` tables.

The routes are Helicone's (its ``HeliconeDatasetController``), with the create body its datasets page
documents as well as the one its code reads:

* ``POST /v1/helicone-dataset`` ``{name, description}`` (or Helicone's ``{datasetName, requestIds,
  meta}``) -> ``{datasetId, id, name}``.
* ``POST /v1/helicone-dataset/query`` ``{datasetIds?}``: the datasets, newest first, with their item counts.
* ``POST /v1/helicone-dataset/{datasetId}/request/{requestId}``: with no body, add the logged request
  (again: nothing changes); with ``{requestBody, responseBody}``, edit the item (Helicone's use of the
  route), adding it first if needed. ``{requestId}`` may name the item or its logged request.
* ``DELETE`` on that path (heliport's own): remove the item.
* ``POST .../{datasetId}/mutate`` ``{addRequests, removeRequests}`` (request ids to add; item or
  request ids to remove), ``POST .../{datasetId}/query`` ``{offset, limit}`` (the items, newest first),
  ``POST .../{datasetId}/count``, ``POST .../{datasetId}/delete``.
* ``GET .../{datasetId}/export?format=jsonl|csv`` (heliport's own; Helicone exports in its web page):
  the file's text in ``data.content``, and the items left out of the JSONL with the reason.

An item refers to its logged request. An edit stores the item's own copy of the request and response
bodies (JSON text in the item's row); a body the edit leaves out, or sends as null, is the logged one,
so ``{}`` reverts an item to the log, and the log itself is never changed. Every
statement names the key's organisation, and row-level security on PostgreSQL (migration 0012) hides
every other organisation's rows, so another organisation's dataset, item or request is a 404.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

from heliport.api import requests
from heliport.api.bodies import BodyLinks
from heliport.api.database import QueryDb
from heliport.api.dialect import Params, js_iso
from heliport.api.endpoint import Call, parse_body
from heliport.datasets.export import Exported, to_csv, to_jsonl
from heliport.datasets.messages import NotConvertibleError, finetune_messages
from heliport.errors import InvalidBodyError, RequestError, RouteNotFoundError, deep_json_path, json_depth_exceeds
from heliport.logs.row import RequestRow

__all__ = [
    "DatasetContext", "add_request", "count", "create", "delete", "export", "listed", "mutate", "query",
    "remove_request",
]  # fmt: skip

#: Most items one export reads (an export is one answer; API Gateway answers at most 6 MB).
MAX_EXPORT_ITEMS: Final = 10_000
#: Items whose rows and bodies are read at once while exporting.
_EXPORT_CHUNK: Final = 200
#: Bodies read from the blob store at the same time.
_READERS: Final = 16

#: A UTF-16 surrogate in decoded text: every one left after decoding JSON is lone.
_SURROGATE: Final = re.compile("[\ud800-\udfff]")

DatasetName = Annotated[str, Field(min_length=1, max_length=200)]
RequestIds = Annotated[list[str], Field(max_length=requests.MAX_IDS)]


class _Body(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")


class DatasetCreateBody(_Body):
    """The documented ``{name, description}``, or Helicone's own ``{datasetName, requestIds, meta}``."""

    name: DatasetName | None = None
    datasetName: DatasetName | None = None
    description: Annotated[str, Field(max_length=10_000)] | None = None
    requestIds: RequestIds = []
    meta: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _named(self) -> DatasetCreateBody:
        if self.name is None and self.datasetName is None:
            raise ValueError("a dataset needs a name (name or datasetName)")
        return self

    @property
    def dataset_name(self) -> str:
        name = self.name if self.name is not None else self.datasetName
        assert name is not None  # the validator made sure
        return name


class DatasetListBody(_Body):
    datasetIds: RequestIds | None = None


class DatasetItemsBody(_Body):
    offset: Annotated[int, Field(ge=0, le=requests.MAX_OFFSET)] = 0
    limit: Annotated[int, Field(ge=0, le=requests.MAX_LIMIT)] = requests.DEFAULT_LIMIT


class DatasetMutateBody(_Body):
    addRequests: RequestIds = []
    removeRequests: RequestIds = []


class DatasetItemEditBody(BaseModel):
    """Helicone's edit: the item's own request and response bodies (any JSON; null reverts to the log)."""

    model_config = ConfigDict(extra="ignore")

    requestBody: Any = None
    responseBody: Any = None


class DatasetCreated(BaseModel):
    #: Helicone's answer field.
    datasetId: str
    #: The same id, as Helicone's datasets page reads it (``dataset.id``).
    id: str
    name: str


class HeliconeDataset(BaseModel):
    id: str
    name: str
    description: str | None
    created_at: str
    updated_at: str
    dataset_type: Literal["helicone"]
    meta: dict[str, Any] | None
    organization: str
    requests_count: int


class SignedUrl(BaseModel):
    """Helicone's ``Result<string, string>``: the logged bodies' URL, or why there is none."""

    data: str | None
    error: str | None


class DatasetItem(BaseModel):
    id: str
    origin_request_id: str
    dataset_id: str
    created_at: str
    #: The logged request's bodies (``signed_body_url``'s link), even for an edited item.
    signed_url: SignedUrl
    edited: bool
    edited_at: str | None
    #: The item's own copies, when edited (null: the logged body is the item's).
    request_body: Any = None
    response_body: Any = None


class SkippedItem(BaseModel):
    itemId: str
    requestId: str
    reason: str


class DatasetExport(BaseModel):
    format: Literal["jsonl", "csv"]
    fileName: str
    contentType: str
    #: The file's text.
    content: str
    #: Items in the file (JSONL: those with messages; CSV: all of them).
    exported: int
    #: Items with no fine-tuning example, and why (left out of the JSONL; in the CSV with ``note``).
    skipped: list[SkippedItem]
    #: The dataset has more than MAX_EXPORT_ITEMS items: the file holds the oldest ones.
    truncated: bool


class DatasetContext(Protocol):
    """What these handlers use of the API: the log database, the body reader and the body limits."""

    @property
    def db(self) -> QueryDb: ...

    @property
    def links(self) -> BodyLinks: ...

    @property
    def max_json_depth(self) -> int: ...

    @property
    def max_body_bytes(self) -> int: ...


# --- ids and rows ----------------------------------------------------------------------------------


def _uuid(value: str, what: str) -> str:
    """A dataset or item id as stored (a lower-case UUID); anything else names nothing stored: a 404."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise RouteNotFoundError(f"No {what} {value!r} in this organisation.") from None


def _request_key(params: Params, request_id: str) -> str:
    placeholder = params.add(request_id)
    return f"{placeholder}::uuid" if params.dialect.name == "postgres" else placeholder


def _now(ctx: DatasetContext) -> object:
    return ctx.db.dialect.timestamp(datetime.now(UTC))


async def _dataset(ctx: DatasetContext, org_id: str, dataset_id: str) -> dict[str, Any]:
    """The dataset's answer, with its item count; a 404 when the organisation has no such dataset."""
    found = await _datasets(ctx, org_id, [_uuid(dataset_id, "dataset")])
    if not found:
        raise RouteNotFoundError(f"No dataset {dataset_id} in this organisation.")
    return found[0]


async def _datasets(ctx: DatasetContext, org_id: str, ids: Sequence[str] | None) -> list[dict[str, Any]]:
    p = Params(ctx.db.dialect)
    org = p.add(org_id)
    where = f"d.org_id = {org}"
    if ids is not None:
        where += f" AND d.id IN ({', '.join(p.add(i) for i in ids)})" if ids else " AND FALSE"
    sql = (
        "SELECT d.id, d.name, d.description, d.meta, d.created_at, d.updated_at, "
        "(SELECT count(*) FROM dataset_items i WHERE i.org_id = d.org_id AND i.dataset_id = d.id) AS items "
        f"FROM datasets d WHERE {where} ORDER BY d.created_at DESC, d.id"
    )
    return [
        {
            "id": r["id"],
            "name": r["name"],
            "description": r["description"],
            "created_at": js_iso(r["created_at"]),
            "updated_at": js_iso(r["updated_at"]),
            "dataset_type": "helicone",
            "meta": None if r["meta"] is None else json.loads(r["meta"]),
            "organization": org_id,
            "requests_count": int(r["items"]),
        }
        for r in await ctx.db.fetch(org_id, sql, p.values)
    ]


async def _request_rows(ctx: DatasetContext, org_id: str, request_ids: Sequence[str]) -> dict[str, RequestRow]:
    """The organisation's logged rows among ``request_ids``, by id."""
    found: dict[str, RequestRow] = {}
    unique = list(dict.fromkeys(request_ids))
    for start in range(0, len(unique), requests.MAX_IDS):
        p = Params(ctx.db.dialect)
        sql = requests.ids_sql(org_id, p, unique[start : start + requests.MAX_IDS])
        found.update((row.request_id, row) for row in await ctx.db.rows(org_id, sql, p.values))
    return found


def _known_requests(field: str, given: Sequence[str]) -> list[str]:
    """``given`` request ids as stored; a 400 naming ``field[i]`` for one that is not a UUID."""
    ids = []
    for index, value in enumerate(given):
        try:
            ids.append(str(uuid.UUID(value)))
        except ValueError:
            raise RequestError(f"Invalid {field}[{index}]: request ids are UUIDs.", param=f"{field}[{index}]") from None
    return ids


async def _insert_items(ctx: DatasetContext, org_id: str, dataset_id: str, field: str, given: Sequence[str]) -> None:
    """Add the logged requests ``given`` (a body's ``field``); each must be the organisation's (a 400
    naming ``field[i]`` otherwise); one already in the dataset stays as it is."""
    ids = _known_requests(field, given)
    rows = await _request_rows(ctx, org_id, ids)
    for index, request_id in enumerate(ids):
        if request_id not in rows:
            raise RequestError(
                f"Invalid {field}[{index}]: no request {request_id} in this organisation.", param=f"{field}[{index}]"
            )
    unique = list(dict.fromkeys(ids))
    if not unique:
        return
    # One statement for the lot; each item a microsecond after the one before, so the dataset keeps
    # the order they were given in (exports list items oldest first).
    now = datetime.now(UTC)
    p = Params(ctx.db.dialect)
    values = ", ".join(
        f"({p.add(str(uuid.uuid4()))}, {p.add(org_id)}, {p.add(dataset_id)}, {_request_key(p, request_id)}, "
        f"{p.add(ctx.db.dialect.timestamp(now + timedelta(microseconds=index)))})"
        for index, request_id in enumerate(unique)
    )
    await ctx.db.execute(
        org_id,
        "INSERT INTO dataset_items (id, org_id, dataset_id, request_id, created_at) "
        f"VALUES {values} ON CONFLICT (dataset_id, request_id) DO NOTHING",
        p.values,
    )
    await _touch(ctx, org_id, dataset_id)


async def _touch(ctx: DatasetContext, org_id: str, dataset_id: str) -> None:
    p = Params(ctx.db.dialect)
    now = p.add(_now(ctx))
    sql = f"UPDATE datasets SET updated_at = {now} WHERE org_id = {p.add(org_id)} AND id = {p.add(dataset_id)}"
    await ctx.db.execute(org_id, sql, p.values)


_ITEM_COLUMNS: Final = "id, dataset_id, request_id, created_at, edited_at, edited_request, edited_response"


def _item_match(p: Params, org_id: str, dataset_id: str, item_or_request: str) -> str:
    """The WHERE of the dataset's item named by its own id or its logged request's id (both UUIDs)."""
    return (
        f"org_id = {p.add(org_id)} AND dataset_id = {p.add(dataset_id)} "
        f"AND (id = {p.add(item_or_request)} OR request_id = {_request_key(p, item_or_request)})"
    )


async def _item(ctx: DatasetContext, org_id: str, dataset_id: str, item_or_request: str) -> dict[str, Any] | None:
    p = Params(ctx.db.dialect)
    sql = f"SELECT {_ITEM_COLUMNS} FROM dataset_items WHERE {_item_match(p, org_id, dataset_id, item_or_request)}"
    found = await ctx.db.fetch(org_id, sql, p.values)
    return found[0] if found else None


async def _item_answers(ctx: DatasetContext, call: Call, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = await _request_rows(ctx, call.org_id, [str(i["request_id"]) for i in items])
    base = str(call.request.base_url)
    answers = []
    for item in items:
        request_id = str(item["request_id"])
        row = rows.get(request_id)
        url = None if row is None else await ctx.links.url(row, base)
        reason = "the logged request no longer exists" if row is None else "the request's bodies were not logged"
        answers.append(
            {
                "id": item["id"],
                "origin_request_id": request_id,
                "dataset_id": item["dataset_id"],
                "created_at": js_iso(item["created_at"]),
                "signed_url": {"data": url, "error": None if url is not None else reason},
                "edited": item["edited_at"] is not None,
                "edited_at": None if item["edited_at"] is None else js_iso(item["edited_at"]),
                "request_body": _stored(item["edited_request"]),
                "response_body": _stored(item["edited_response"]),
            }
        )
    return answers


def _stored(text: str | None) -> Any:
    return None if text is None else json.loads(text)


# --- handlers --------------------------------------------------------------------------------------


async def create(ctx: DatasetContext, call: Call) -> dict[str, Any]:
    body = call.parsed(DatasetCreateBody)
    if body.meta is not None:
        _refuse_untextual({"meta": body.meta})
    _known_requests("requestIds", body.requestIds)  # a bad id is a 400 before anything is stored
    dataset_id = str(uuid.uuid4())
    now = _now(ctx)
    p = Params(ctx.db.dialect)
    values = [dataset_id, call.org_id, body.dataset_name, body.description,
              None if body.meta is None else json.dumps(body.meta, ensure_ascii=False), now, now]  # fmt: skip
    placeholders = ", ".join(p.add(v) for v in values)
    await ctx.db.execute(
        call.org_id,
        f"INSERT INTO datasets (id, org_id, name, description, meta, created_at, updated_at) VALUES ({placeholders})",
        p.values,
    )
    try:
        await _insert_items(ctx, call.org_id, dataset_id, "requestIds", body.requestIds)
    except RequestError:
        await _drop(ctx, call.org_id, dataset_id)  # a create that is refused leaves nothing behind
        raise
    return {"datasetId": dataset_id, "id": dataset_id, "name": body.dataset_name}


async def listed(ctx: DatasetContext, call: Call) -> list[dict[str, Any]]:
    body = call.parsed(DatasetListBody)
    ids = None
    if body.datasetIds is not None:
        ids = []
        for value in body.datasetIds:
            try:
                ids.append(str(uuid.UUID(value)))
            except ValueError:
                continue  # not an id of any dataset: it matches nothing
    return await _datasets(ctx, call.org_id, ids)


async def query(ctx: DatasetContext, call: Call) -> list[dict[str, Any]]:
    body = call.parsed(DatasetItemsBody)
    dataset = await _dataset(ctx, call.org_id, call.path("datasetId"))
    p = Params(ctx.db.dialect)
    sql = (
        f"SELECT {_ITEM_COLUMNS} FROM dataset_items WHERE org_id = {p.add(call.org_id)} "
        f"AND dataset_id = {p.add(dataset['id'])} ORDER BY created_at DESC, id "
        f"LIMIT {p.add(body.limit)} OFFSET {p.add(body.offset)}"
    )
    return await _item_answers(ctx, call, await ctx.db.fetch(call.org_id, sql, p.values))


async def count(ctx: DatasetContext, call: Call) -> int:
    dataset = await _dataset(ctx, call.org_id, call.path("datasetId"))
    return int(dataset["requests_count"])


async def mutate(ctx: DatasetContext, call: Call) -> None:
    body = call.parsed(DatasetMutateBody)
    dataset = await _dataset(ctx, call.org_id, call.path("datasetId"))
    removed = _known_requests("removeRequests", body.removeRequests)
    await _insert_items(ctx, call.org_id, dataset["id"], "addRequests", body.addRequests)
    for item_or_request in removed:
        p = Params(ctx.db.dialect)
        sql = f"DELETE FROM dataset_items WHERE {_item_match(p, call.org_id, dataset['id'], item_or_request)}"
        await ctx.db.execute(call.org_id, sql, p.values)
    await _touch(ctx, call.org_id, dataset["id"])


async def add_request(ctx: DatasetContext, call: Call) -> dict[str, Any]:
    """Add the request (no body), or edit the item (``{requestBody, responseBody}``)."""
    edit = await _optional_body(ctx, call)
    dataset = await _dataset(ctx, call.org_id, call.path("datasetId"))
    named = call.path("requestId")
    key = _uuid(named, "dataset item or request")
    item = await _item(ctx, call.org_id, dataset["id"], key)
    if item is None:
        if key not in await _request_rows(ctx, call.org_id, [key]):
            raise RouteNotFoundError(f"No request {named} in this organisation.")
        await _insert_items(ctx, call.org_id, dataset["id"], "requestId", [key])
        item = await _item(ctx, call.org_id, dataset["id"], key)
        assert item is not None  # just inserted (or inserted by a concurrent call), never deleted in between
    if edit is not None:
        now = _now(ctx)
        p = Params(ctx.db.dialect)
        copies = (edit.requestBody, edit.responseBody)
        edited = [p.add(None if v is None else json.dumps(v, ensure_ascii=False)) for v in copies]
        reverted = edit.requestBody is None and edit.responseBody is None
        sql = (
            f"UPDATE dataset_items SET edited_request = {edited[0]}, edited_response = {edited[1]}, "
            f"edited_at = {p.add(None if reverted else now)} "
            f"WHERE org_id = {p.add(call.org_id)} AND id = {p.add(item['id'])}"
        )
        await ctx.db.execute(call.org_id, sql, p.values)
        await _touch(ctx, call.org_id, dataset["id"])
        item = await _item(ctx, call.org_id, dataset["id"], item["id"])
        if item is None:
            raise RouteNotFoundError(f"No item {named} in dataset {dataset['id']}: it was removed meanwhile.")
    return (await _item_answers(ctx, call, [item]))[0]


async def remove_request(ctx: DatasetContext, call: Call) -> dict[str, bool]:
    dataset = await _dataset(ctx, call.org_id, call.path("datasetId"))
    named = call.path("requestId")
    p = Params(ctx.db.dialect)
    sql = f"DELETE FROM dataset_items WHERE {_item_match(p, call.org_id, dataset['id'], _uuid(named, 'dataset item'))}"
    if await ctx.db.execute(call.org_id, sql, p.values) == 0:
        raise RouteNotFoundError(f"No item {named} in dataset {dataset['id']}.")
    await _touch(ctx, call.org_id, dataset["id"])
    return {"deleted": True}


async def delete(ctx: DatasetContext, call: Call) -> None:
    dataset = await _dataset(ctx, call.org_id, call.path("datasetId"))
    await _drop(ctx, call.org_id, dataset["id"])


async def _drop(ctx: DatasetContext, org_id: str, dataset_id: str) -> None:
    for table, column in (("dataset_items", "dataset_id"), ("datasets", "id")):
        p = Params(ctx.db.dialect)
        sql = f"DELETE FROM {table} WHERE org_id = {p.add(org_id)} AND {column} = {p.add(dataset_id)}"
        await ctx.db.execute(org_id, sql, p.values)


async def export(ctx: DatasetContext, call: Call) -> dict[str, Any]:
    form = call.request.query_params.get("format", "jsonl")
    if form not in ("jsonl", "csv"):
        raise RequestError("Invalid format query parameter: must be jsonl or csv.", param="format")
    dataset = await _dataset(ctx, call.org_id, call.path("datasetId"))
    p = Params(ctx.db.dialect)
    sql = (
        f"SELECT {_ITEM_COLUMNS} FROM dataset_items WHERE org_id = {p.add(call.org_id)} "
        f"AND dataset_id = {p.add(dataset['id'])} ORDER BY created_at, id LIMIT {p.add(MAX_EXPORT_ITEMS)}"
    )
    items = await ctx.db.fetch(call.org_id, sql, p.values)
    exported: list[Exported] = []
    readers = asyncio.Semaphore(_READERS)
    for start in range(0, len(items), _EXPORT_CHUNK):
        chunk = items[start : start + _EXPORT_CHUNK]
        rows = await _request_rows(ctx, call.org_id, [str(i["request_id"]) for i in chunk])
        exported += await asyncio.gather(*(_exported(ctx, item, rows, readers) for item in chunk))
    skipped = [
        {"itemId": e.item_id, "requestId": e.request_id, "reason": e.skipped} for e in exported if e.skipped is not None
    ]
    content = to_jsonl(exported) if form == "jsonl" else to_csv(exported)
    return {
        "format": form,
        "fileName": f"{_file_stem(dataset['name'])}.{form}",
        "contentType": "application/jsonl" if form == "jsonl" else "text/csv",
        "content": content,
        "exported": len(exported) - len(skipped) if form == "jsonl" else len(exported),
        "skipped": skipped,
        "truncated": int(dataset["requests_count"]) > len(items),
    }


async def _exported(
    ctx: DatasetContext, item: dict[str, Any], rows: dict[str, RequestRow], readers: asyncio.Semaphore
) -> Exported:
    request_id = str(item["request_id"])
    row = rows.get(request_id)
    request_body = _stored(item["edited_request"])
    response_body = _stored(item["edited_response"])
    messages: list[dict[str, Any]] | None = None
    skipped: str | None = None
    if row is None and (request_body is None or response_body is None):
        skipped = "the logged request no longer exists"
    else:
        if row is not None and (request_body is None or response_body is None):
            async with readers:
                logged_request, logged_response = await ctx.links.read(row, max_depth=ctx.max_json_depth)
            request_body = logged_request if request_body is None else request_body
            response_body = logged_response if response_body is None else response_body
        try:
            messages = finetune_messages(request_body, response_body)
        except NotConvertibleError as reason:
            skipped = str(reason)
    return Exported(
        item_id=str(item["id"]),
        request_id=request_id,
        created_at=js_iso(row.created_at if row is not None else item["created_at"]),
        model=None if row is None else row.model,
        prompt_tokens=None if row is None else row.prompt_tokens,
        completion_tokens=None if row is None else row.completion_tokens,
        cost=None if row is None else row.cost,
        messages=messages,
        skipped=skipped,
    )


def _file_stem(name: str) -> str:
    stem = "".join(c if c.isalnum() or c in "-_" else "-" for c in name).strip("-")
    return stem[:100] or "dataset"


# --- the optional body of the add/edit route -------------------------------------------------------


async def _optional_body(ctx: DatasetContext, call: Call) -> DatasetItemEditBody | None:
    """The edit in the body, or None for no body (the documented add sends none).

    The route declares no body (an empty one must pass), so the app's checks run here: the size cap
    while reading, then JSON, an object, the depth limit, text a database can store, the model.
    """
    request = call.request
    limit = ctx.max_body_bytes
    too_large = InvalidBodyError(f"Body too large: at most {limit} bytes.", status=413)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    data = b"".join(chunks)
    if not data.strip():
        return None
    try:
        value = json.loads(data)
    except RecursionError:
        raise InvalidBodyError(f"Invalid body: JSON nested more than {ctx.max_json_depth} levels deep.") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidBodyError(f"Invalid body: not JSON ({exc}).") from None
    if not isinstance(value, dict):
        raise InvalidBodyError("Invalid body: expected a JSON object.")
    if json_depth_exceeds(value, ctx.max_json_depth):
        field = deep_json_path(value, ctx.max_json_depth, segments=1) or "body"
        raise InvalidBodyError(
            f"Invalid {field}: JSON nested more than {ctx.max_json_depth} levels deep (HELIPORT_MAX_JSON_DEPTH).",
            param=field,
        )
    _refuse_untextual(value)
    return parse_body(DatasetItemEditBody, value)


def _refuse_untextual(value: object) -> None:
    """A 400 naming the field for a lone UTF-16 surrogate or a NUL in any string or key of ``value``: what
    the app refuses in every declared body (no UTF-8 encoder can write the first, PostgreSQL text cannot
    hold the second), checked here for this route's own body; and for NaN or an infinity (``NaN``,
    ``1e400``), which Python's JSON reader takes but no JSON answer can hold (the fuzzer found an item
    stored that way and every later answer for it a 500). Iterative, as the value may nest deep."""
    stack: list[tuple[str, object]] = [("", value)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, float) and not math.isfinite(node):
            field = path or "body"
            raise InvalidBodyError(f"Invalid {field}: NaN and infinities are not JSON numbers.", param=field)
        if isinstance(node, str):
            if "\x00" in node or _SURROGATE.search(node):
                field = path or "body"
                raise InvalidBodyError(
                    f"Invalid {field}: the text holds NUL or a lone UTF-16 surrogate, which cannot be stored.",
                    param=field,
                )
        elif isinstance(node, dict):
            for key, child in node.items():
                named = f"{path}.{key}" if path else str(key)
                stack += [(named, key), (named, child)]
        elif isinstance(node, list):
            stack += [(f"{path}[{index}]", child) for index, child in enumerate(node)]
