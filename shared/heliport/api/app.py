"""The query API as an ASGI app: Helicone's REST routes over the log database, and ``/openapi.json``.

The route table :data:`ENDPOINTS` is the one description of the API: Starlette routes are made from
it, and so is the OpenAPI document (``api/openapi.py``, given the table), so a route cannot exist
undocumented. A route's shapes (:class:`~heliport.api.endpoint.Endpoint`, the
:class:`~heliport.api.endpoint.Call` a handler gets, body validation) live in ``api/endpoint.py``, so
the modules of handlers and the document's generator never import this one.

Every route but the signed body URL needs a heliport key, as ``Authorization: Bearer <key>`` (what
Helicone's clients send) or ``Helicone-Auth``; the key's organisation is the only one any statement
can see (``api/database.py``). Answers are Helicone's ``{data, error}``: ``error`` is null on
success, and on failure a message that names the field, header or id at fault, with the matching
4xx status (400 invalid, 401 no or bad key, 404 unknown id or route, 405 wrong method, with ``Allow``),
or 503 with ``Retry-After`` while the database is not accepting connections (Aurora resuming from pause).

Text a body may not hold, refused with a 400 naming the field before any handler runs: a lone UTF-16
surrogate (``"\\ud800"``: valid JSON, but no UTF-8 encoder, SQLite's or PostgreSQL's or our own
answer's, can write it) and NUL (``"\\u0000"``: PostgreSQL text cannot hold it, so SQLite refuses it
too, for one answer on both databases). Both checks cost a substring search of the body unless it
holds such an escape.

A literal path is never a template's parameter: ``GET /v1/request/query`` is a 405 (the path is
POST's), not a lookup of the request id ``query``.

This module is imported on the first API request (``heliport.app``), so the proxy's Lambda entry
never pays for Starlette and pydantic.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Match, Route
from starlette.types import Receive, Scope, Send

from heliport.api import aggregates as agg
from heliport.api import alerts, filters, overview, prompts, requests, webhooks
from heliport.api import assets as asset_api
from heliport.api import datasets as dataset_api
from heliport.api import evals as eval_api
from heliport.api import hql as hql_api
from heliport.api import schemas as s
from heliport.api import session_feedback as session_feedback_api
from heliport.api.bodies import BodyLinks
from heliport.api.database import QueryDb
from heliport.api.dialect import Params
from heliport.api.endpoint import Call, Endpoint, parse_body
from heliport.auth import KEY_PREFIX, Authenticator
from heliport.config import Settings
from heliport.errors import (
    AuthenticationError,
    HeliportError,
    InvalidBodyError,
    RequestError,
    RouteNotFoundError,
    deep_json_key,
    deep_json_path,
    json_depth_exceeds,
)
from heliport.headers import bearer_token
from heliport.store.logdb_postgres import DatabaseUnavailableError
from heliport.webhooks.store import QueryWebhookStore

if TYPE_CHECKING:
    from heliport.alerts.index import AlertIndex
    from heliport.outbox import Outbox
    from heliport.prompts.store import PromptStore
    from heliport.webhooks import WebhookStore

__all__ = ["ENDPOINTS", "QueryApi", "error_response"]

logger = logging.getLogger("heliport.api")


#: An aggregate endpoint's validated body: any model with a filter (compiled before its builder runs).
_Filtered = TypeVar("_Filtered", bound=s.AggregateBody)


class QueryApi:
    """Holds what the handlers need; :meth:`asgi` is the Starlette app built from :data:`ENDPOINTS`."""

    def __init__(
        self,
        db: QueryDb,
        authenticator: Authenticator,
        links: BodyLinks,
        *,
        max_json_depth: int = Settings.max_json_depth,
        max_body_bytes: int = Settings.max_query_body_bytes,
        prompts: PromptStore | None = None,
        trusted_origins: frozenset[str] | None = None,
        settings: Settings | None = None,
        webhooks: WebhookStore | None = None,
        outbox: Outbox | None = None,
        alert_index: AlertIndex | None = None,
    ) -> None:
        self.db = db
        self.authenticator = authenticator
        self.links = links
        #: The prompt store (``heliport.prompts.factory.open_prompt_store``); None: the prompt routes
        #: answer 503 ``prompts not configured`` (a deployment that wired none).
        self._prompts = prompts
        #: Origins a webhook destination may use without the address rules (``HELIPORT_TRUSTED_ORIGINS``:
        #: the deployment's; read from the environment when the caller gives none).
        #: The deployment's settings, for what the alert routes send (SMTP or SES, the public URL); read
        #: from the environment when the caller gives none.
        self.settings = Settings.from_env() if settings is None else settings
        self.trusted_origins = self.settings.trusted_origins if trusted_origins is None else trusted_origins
        #: The webhook store (``heliport.webhooks.factory.open_webhook_store``: DynamoDB in AWS); by default
        #: the SQL one over ``db``.
        self._owns_webhooks = webhooks is not None
        self.webhook_store: WebhookStore = webhooks if webhooks is not None else QueryWebhookStore(db)
        #: Where test sends go when this process has no route to the internet (AWS: the SQS outbox that the
        #: delivery function, outside the VPC, drains); None: they are sent from here.
        self.outbox = outbox
        #: AWS: which organisations may have an enabled alert (``heliport.alerts.index``), kept so the
        #: evaluator leaves an idle Aurora paused; None locally.
        self.alert_index = alert_index
        #: ``HELIPORT_MAX_JSON_DEPTH``: deeper bodies are a 400 before any handler sees them.
        self.max_json_depth = max_json_depth
        #: ``HELIPORT_MAX_QUERY_BODY_BYTES``: larger bodies are a 413, refused while they are read.
        self.max_body_bytes = max_body_bytes
        self._app: Starlette | None = None
        #: ``/openapi.json``, generated on its first request (the route table never changes).
        self._document: dict[str, Any] | None = None

    def asgi(self) -> Starlette:
        if self._app is None:
            by_path: dict[str, dict[str, Endpoint[QueryApi]]] = {}
            for endpoint in ENDPOINTS:
                by_path.setdefault(endpoint.path, {})[endpoint.method] = endpoint
            routes = [_ApiRoute(path, self._route(methods), list(methods)) for path, methods in by_path.items()]
            routes.append(_ApiRoute("/openapi.json", self._openapi, ["GET"]))
            literal = tuple(route for route in routes if not route.param_convertors)
            for route in routes:
                if route.param_convertors:
                    route.literal_siblings = literal
            self._app = Starlette(
                routes=routes,
                exception_handlers={HTTPException: _http_error, Exception: _unexpected},
            )
        return self._app

    @property
    def prompts(self) -> PromptStore:
        if self._prompts is None:
            raise _PromptsNotConfiguredError(
                "Prompts are not configured on this deployment (the query API was given no prompt store)."
            )
        return self._prompts

    async def aclose(self) -> None:
        await self.db.aclose()
        if self._prompts is not None:
            await self._prompts.aclose()
        if self._owns_webhooks:
            await self.webhook_store.aclose()
        if self.outbox is not None:
            await self.outbox.aclose()
        if self.alert_index is not None:
            await self.alert_index.aclose()

    async def _openapi(self, request: Request) -> Response:
        if self._document is None:
            from heliport.api.openapi import openapi_document  # only a client asking for it pays for it

            self._document = openapi_document(ENDPOINTS)
        return JSONResponse(self._document)

    def _route(self, endpoints: Mapping[str, Endpoint[QueryApi]]) -> Callable[[Request], Awaitable[Response]]:
        """The handler of one path, for each of its methods (the route let only those through)."""

        async def respond(request: Request) -> Response:
            endpoint = endpoints[_handling_method(request.method)]
            try:
                org_id = "" if endpoint.public else await self._organisation(request)
                body = None
                if endpoint.body is not None:
                    raw = await _json_body(request, self.max_json_depth, self.max_body_bytes)
                    body = parse_body(endpoint.body, raw)
                data = await endpoint.handler(self, Call(org_id, body, request))
            except HeliportError as error:
                return error_response(error)
            if isinstance(data, Response):
                return data
            return JSONResponse({"data": data, "error": None})

        return respond

    async def _organisation(self, request: Request) -> str:
        header = request.headers.get("authorization") or request.headers.get("helicone-auth")
        if header is None:
            raise AuthenticationError("Missing heliport key: send 'Authorization: Bearer <heliport key>'.")
        token = bearer_token(header)
        if token is None:
            token = header.strip()  # a bare key, as some of Helicone's own cookbooks send it
            if not token.startswith(KEY_PREFIX) or " " in token:
                raise AuthenticationError("Invalid Authorization header: expected 'Bearer <heliport key>'.")
        key = await self.authenticator.authenticate(token)
        return key.org_id

    # --- request endpoints -----------------------------------------------------------------------------

    async def query_requests(self, call: Call) -> list[dict[str, Any]]:
        body = call.parsed(s.RequestQueryBody)
        if body.isPartOfExperiment:
            return []  # heliport has no experiments, so no request is part of one
        params = Params(self.db.dialect)
        sql = requests.query_sql(
            call.org_id,
            params,
            filter=body.filter,
            sort=body.sort,
            limit=body.limit,
            offset=body.offset,
            cached_only=body.isCached,
            scored_only=body.isScored,
        )
        return await self._listed(call, sql, params)

    async def query_ids(self, call: Call) -> list[dict[str, Any]]:
        body = call.parsed(s.RequestIdsBody)
        ids = [requests.parse_request_id(i) for i in body.requestIds]
        if not ids:
            return []
        params = Params(self.db.dialect)
        return await self._listed(call, requests.ids_sql(call.org_id, params, ids), params)

    async def _listed(self, call: Call, sql: str, params: Params) -> list[dict[str, Any]]:
        rows = await self.db.rows(call.org_id, sql, params.values)
        base = str(call.request.base_url)
        location = self.links.storage_location
        return [
            requests.to_helicone_request(
                row, signed_body_url=await self.links.url(row, base), storage_location=location
            )
            for row in rows
        ]

    async def get_request(self, call: Call) -> dict[str, Any]:
        row = await self._one(call.org_id, call.path("requestId"))
        include = call.request.query_params.get("includeBody", "false")
        if include not in {"true", "false"}:
            raise RequestError("Invalid includeBody query parameter: must be true or false.", param="includeBody")
        request_body = response_body = None
        if include == "true":
            request_body, response_body = await self.links.read(row, max_depth=self.max_json_depth)
        return requests.to_helicone_request(
            row,
            request_body=request_body,
            response_body=response_body,
            signed_body_url=await self.links.url(row, str(call.request.base_url)),
            storage_location=self.links.storage_location,
        )

    async def _one(self, org_id: str, request_id: str) -> Any:
        key = requests.parse_request_id(request_id)
        params = Params(self.db.dialect)
        found = await self.db.rows(org_id, requests.one_sql(org_id, params, key), params.values)
        if not found:
            raise RouteNotFoundError(f"No request {request_id} in this organisation.")
        return found[0]

    async def request_body(self, call: Call) -> Response:
        query = call.request.query_params
        org_id = query.get("org", "")
        request_id = call.path("requestId")
        links = self.links
        links.verify(org_id, request_id, query.get("expires", ""), query.get("signature", ""))
        row = await self._one(org_id, request_id)
        request_body, response_body = await links.read(row, max_depth=self.max_json_depth)
        return JSONResponse({"request": request_body, "response": response_body})

    async def _update(self, call: Call, build: Callable[[Params, str], str], request_id: str | None = None) -> None:
        """Run ``build``'s UPDATE for the request in the path (or ``request_id``); 404 if no row changed."""
        named = call.path("requestId") if request_id is None else request_id
        key = requests.parse_request_id(named)
        params = Params(self.db.dialect)
        if await self.db.execute(call.org_id, build(params, key), params.values) == 0:
            raise RouteNotFoundError(f"No request {named} in this organisation.")

    async def feedback(self, call: Call) -> None:
        body = call.parsed(s.FeedbackBody)
        now = datetime.now(UTC)
        await self._update(call, lambda p, key: requests.feedback_sql(call.org_id, p, key, rating=body.rating, at=now))

    async def put_property(self, call: Call) -> None:
        body = call.parsed(s.PropertyBody)
        await self._update(call, lambda p, key: requests.property_sql(call.org_id, p, key, body.as_properties()))

    async def legacy_feedback(self, call: Call) -> None:
        body = call.parsed(s.LegacyFeedbackBody)
        now = datetime.now(UTC)
        await self._update(
            call,
            lambda p, key: requests.feedback_sql(call.org_id, p, key, rating=body.rating, at=now),
            request_id=body.helicone_id,
        )

    async def score(self, call: Call) -> None:
        body = call.parsed(s.ScoreBody)
        scores = {name: float(value) for name, value in body.scores.items()}
        await self._update(call, lambda p, key: requests.scores_sql(call.org_id, p, key, scores))

    # --- aggregates ------------------------------------------------------------------------------------

    async def _aggregate(
        self, call: Call, body: _Filtered, build: agg.Builder[_Filtered], kind: filters.AggregateKind | None
    ) -> list[dict[str, Any]]:
        """The rows of ``build``'s statement for the validated ``body``: its filter compiled first (its
        values bound first), a post-aggregation part passed to the builder when the body has one."""
        params = Params(self.db.dialect)
        where, having = filters.compile_aggregate_filter(body.filter, params, kind)
        sql = build(call.org_id, body, params, where, having=having)
        return await self.db.fetch(call.org_id, sql, params.values)

    async def sessions(self, call: Call) -> list[dict[str, Any]]:
        body = call.parsed(s.SessionQueryBody)
        return agg.to_session_query_result(await self._aggregate(call, body, agg.session_query, "session"))

    async def session_metrics(self, call: Call) -> dict[str, Any]:
        body = call.parsed(s.SessionMetricsBody)
        return agg.to_session_metrics_result(await self._aggregate(call, body, agg.session_metrics_query, "session"))

    async def users(self, call: Call) -> list[dict[str, Any]]:
        body = call.parsed(s.UserQueryBody)
        return agg.to_user_query_result(await self._aggregate(call, body, agg.user_query, None))

    async def user_metrics(self, call: Call) -> dict[str, Any]:
        body = call.parsed(s.UserMetricsBody)
        return agg.to_user_metrics_result(await self._aggregate(call, body, agg.user_metrics_query, "user"))

    async def user_metrics_overview(self, call: Call) -> dict[str, Any]:
        body = call.parsed(s.UserMetricsOverviewBody)
        rows = await self._aggregate(call, body, agg.user_metrics_overview_query, "user")
        return agg.to_user_metrics_overview_result(rows)

    async def properties(self, call: Call) -> list[dict[str, str]]:
        body = call.parsed(s.PropertyQueryBody)
        return agg.to_property_query_result(await self._aggregate(call, body, agg.property_query, None))


class _PromptsNotConfiguredError(HeliportError):
    status = 503
    code = "prompts_not_configured"


async def _read_capped(request: Request, limit: int) -> bytes:
    """The body, refused with a 413 as soon as it passes ``limit`` bytes (never buffered whole first)."""
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
    return b"".join(chunks)


async def _json_body(request: Request, max_depth: int, max_bytes: int) -> Mapping[str, Any]:
    """The body as a JSON object nested at most ``max_depth`` deep; a 400 naming the field otherwise."""
    data = await _read_capped(request, max_bytes)
    try:
        value = json.loads(data) if data.strip() else None
    except RecursionError:  # the decoder gives up near the interpreter's recursion limit, far past max_depth
        field = deep_json_key(data, max_depth)
        raise InvalidBodyError(_too_deep(field, max_depth), param=field) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidBodyError(f"Invalid body: not JSON ({exc}).") from None
    if not isinstance(value, dict):
        raise InvalidBodyError("Invalid body: expected a JSON object.")
    if json_depth_exceeds(value, max_depth):
        field = deep_json_path(value, max_depth, segments=1)
        raise InvalidBodyError(_too_deep(field, max_depth), param=field)
    _refuse_untextual(data, value)
    return value


def _too_deep(field: str | None, max_depth: int) -> str:
    return f"Invalid {field or 'body'}: JSON nested more than {max_depth} levels deep (HELIPORT_MAX_JSON_DEPTH)."


# --- text a body may not hold ----------------------------------------------------------------------------

#: A ``\\uD800``-``\\uDFFF`` escape, either case: the only way a UTF-8 body spells a surrogate that the
#: decoder keeps (a valid pair becomes one character; an unpaired one stays a surrogate).
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
#: Bytes that decode to a surrogate in a body that is not UTF-8: ``json.loads`` decodes UTF-8 with
#: ``surrogatepass`` (so CESU-8's ``ED A0 80`` is a surrogate), and it also reads UTF-16 and UTF-32.
_SURROGATE_BYTES = re.compile(rb"\xed[\xa0-\xbf]")
#: A surrogate code point in decoded text: every one left after decoding is lone.
_SURROGATE = re.compile(r"[\ud800-\udfff]")
#: What a path segment shows escaped in a message: control characters and surrogates.
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
#: Longest path segment (a key) shown in a message.
_SEGMENT_SHOWN = 64


def _refuse_untextual(data: bytes, value: object) -> None:
    """A 400 naming the field when ``value`` (decoded from ``data``) holds a lone surrogate or NUL, in a
    string or an object key. The decoded value is walked only when the raw bytes could hold one of
    them, so an ordinary body costs a few substring searches."""
    other_encoding = _not_utf8(data)
    surrogates = other_encoding or bool(_SURROGATE_ESCAPE.search(data) or _SURROGATE_BYTES.search(data))
    nul = other_encoding or b"\\u0000" in data
    if not (surrogates or nul):
        return
    for field, text in _strings(value):
        if surrogates and (found := _SURROGATE.search(text)):
            escape = f"\\u{ord(found.group()):04x}"
            raise InvalidBodyError(
                f"Invalid {field}: the body holds a lone UTF-16 surrogate ({escape}) there, which is not text; "
                "a surrogate escape must be half of a pair.",
                param=field,
            )
        if nul and "\x00" in text:
            raise InvalidBodyError(
                f"Invalid {field}: NUL (\\u0000) is not allowed in text (PostgreSQL cannot store it).", param=field
            )


def _not_utf8(data: bytes) -> bool:
    """True for a body ``json.loads`` reads as UTF-16 or UTF-32 (a BOM, or NUL bytes among the first
    four), where neither problem can be found in the raw bytes. Valid JSON in UTF-8 has no NUL byte."""
    return data[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in data[:4]


def _strings(value: object) -> Iterator[tuple[str, str]]:
    """Every string of decoded JSON ``value``, object keys included, with the path naming it
    (``filter.left.model``, ``userIds[1]``; a key's own path ends with the key), in document order.
    Iterative: the value was checked against HELIPORT_MAX_JSON_DEPTH, but a stack costs nothing."""
    stack: list[tuple[str, object]] = [("", value)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, str):
            yield path or "body", node
        elif isinstance(node, dict):
            children: list[tuple[str, object]] = []
            for key, child in node.items():
                named = f"{path}.{_segment(key)}" if path else _segment(key)
                children.append((named, key))
                children.append((named, child))
            stack.extend(reversed(children))
        elif isinstance(node, list):
            stack.extend(reversed([(f"{path}[{index}]", child) for index, child in enumerate(node)]))


def _segment(key: str) -> str:
    """An object key as a path segment of a message: control characters and surrogates escaped (the
    message must be writable, and readable), cut to :data:`_SEGMENT_SHOWN` characters."""
    shown = key if len(key) <= _SEGMENT_SHOWN else key[: _SEGMENT_SHOWN - 3] + "..."
    return _UNPRINTABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", shown)


def _failure(status: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    # A message may echo the caller's input, and a lone surrogate in it cannot be written as UTF-8:
    # it is shown as its escape, so writing the error can never be the next error.
    writable = message.encode("utf-8", "backslashreplace").decode("utf-8")
    return JSONResponse({"data": None, "error": writable}, status_code=status, headers=headers)


def error_response(error: HeliportError) -> JSONResponse:
    """A failure in the API's ``{data: null, error}`` shape. A database that is not accepting
    connections yet (Aurora resuming from pause) is a 503 with ``Retry-After``: clients and API
    Gateway see a transient failure to retry, never a 500 or API Gateway's own 504."""
    if isinstance(error, DatabaseUnavailableError):
        return _failure(error.status, error.message, {"Retry-After": str(error.retry_after)})
    return _failure(error.status, error.message)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return _failure(404, f"No route for {request.method} {request.url.path}.")
    if exc.status_code == 405:
        return _failure(405, f"{request.method} is not allowed on {request.url.path}.", exc.headers)
    return _failure(exc.status_code, str(exc.detail))


async def _unexpected(request: Request, exc: Exception) -> Response:
    logger.exception("query API failure on %s %s", request.method, request.url.path)
    return _failure(500, "Internal error; the server log has the details.")


def _handling_method(method: str) -> str:
    """The endpoint method that answers ``method``: HEAD is answered as GET (Starlette lets HEAD
    through wherever GET is allowed, and the server sends no body)."""
    return "GET" if method == "HEAD" else method


class _ApiRoute(Route):
    """A route of the API: one path with all of its methods.

    Two things differ from Starlette's Route. A template route (``/v1/request/{requestId}``) does not
    match a path that is one of :attr:`literal_siblings` (``/v1/request/query``): such a path is the
    literal route's, so a method it does not take is a 405 from that route, not a request id
    ``query``. And a 405's ``Allow`` lists the methods in a fixed order (Starlette's comes from a set).
    """

    def __init__(self, path: str, endpoint: Callable[[Request], Awaitable[Response]], methods: Sequence[str]) -> None:
        super().__init__(path, endpoint, methods=list(methods))
        allowed: list[str] = []
        for method in methods:
            allowed += [method, "HEAD"] if method == "GET" else [method]
        self.allow = ", ".join(dict.fromkeys(allowed))
        #: The literal (parameterless) routes of the API, set on template routes only.
        self.literal_siblings: tuple[Route, ...] = ()

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if any(sibling.matches(scope)[0] is not Match.NONE for sibling in self.literal_siblings):
            return Match.NONE, {}
        return super().matches(scope)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.methods and scope["method"] not in self.methods:
            raise HTTPException(status_code=405, headers={"Allow": self.allow})
        await super().handle(scope, receive, send)


_REQUEST = "Request"
_PROMPT = "Prompt"
_WEBHOOK = "Webhooks"
_ALERT = "Alerts"
ENDPOINTS: tuple[Endpoint[QueryApi], ...] = (
    Endpoint("POST", "/v1/request/query", "GetRequests", "Requests matching a filter, one page",
             _REQUEST, QueryApi.query_requests, s.RequestQueryBody, list[s.HeliconeRequest]),
    Endpoint("POST", "/v1/request/query-clickhouse", "GetRequestsClickhouse",
             "Requests matching a filter (the same engine as /v1/request/query)",
             _REQUEST, QueryApi.query_requests, s.RequestQueryBody, list[s.HeliconeRequest]),
    Endpoint("POST", "/v1/request/query-ids", "GetRequestsByIds", "Requests by id",
             _REQUEST, QueryApi.query_ids, s.RequestIdsBody, list[s.HeliconeRequest]),
    Endpoint("GET", "/v1/request/{requestId}", "GetRequestById", "One request, its bodies inline with includeBody",
             _REQUEST, QueryApi.get_request, None, s.HeliconeRequest,
             query={"includeBody": {"type": "boolean", "default": False}}),
    Endpoint("GET", "/v1/request/{requestId}/body", "GetRequestBody",
             "A request's bodies through a signed URL (signed_body_url), no key needed until it expires",
             _REQUEST, QueryApi.request_body, None, dict[str, Any], public=True,
             query={"org": {"type": "string"}, "expires": {"type": "string"}, "signature": {"type": "string"}}),
    Endpoint("POST", "/v1/webhooks/{webhookId}/test", "TestWebhook",
             "Send one signed sample delivery to the destination now (queued for the delivery function in AWS)",
             _WEBHOOK, webhooks.test_delivery, None, webhooks.WebhookTestResult),
    Endpoint("POST", "/v1/request/{requestId}/feedback", "FeedbackRequest", "Rate a request",
             _REQUEST, QueryApi.feedback, s.FeedbackBody, None),
    Endpoint("PUT", "/v1/request/{requestId}/property", "PutProperty", "Add or replace a property of a request",
             _REQUEST, QueryApi.put_property, s.PropertyBody, None),
    Endpoint("POST", "/v1/request/{requestId}/score", "AddScores", "Add or replace scores of a request",
             _REQUEST, QueryApi.score, s.ScoreBody, None),
    Endpoint("POST", "/v1/feedback", "LegacyFeedback", "Rate a request named in the body (Helicone's older route)",
             _REQUEST, QueryApi.legacy_feedback, s.LegacyFeedbackBody, None),
    Endpoint("POST", "/v1/session/query", "GetSessions", "Sessions with their totals",
             "Session", QueryApi.sessions, s.SessionQueryBody, list[s.SessionResult]),
    Endpoint("POST", "/v1/session/metrics/query", "GetSessionMetrics", "Histograms of session size, duration, cost",
             "Session", QueryApi.session_metrics, s.SessionMetricsBody, s.SessionMetrics),
    Endpoint("POST", "/v1/user/query", "GetUsers", "Requests, tokens and cost per user",
             "User", QueryApi.users, s.UserQueryBody, list[s.UserQueryRow]),
    Endpoint("POST", "/v1/user/metrics/query", "GetUserMetrics", "Per-user metrics, one page",
             "User", QueryApi.user_metrics, s.UserMetricsBody, s.UserMetrics),
    Endpoint("POST", "/v1/user/metrics-overview/query", "GetUserMetricsOverview",
             "Histograms of per-user requests and cost",
             "User", QueryApi.user_metrics_overview, s.UserMetricsOverviewBody, s.UserMetricsOverview),
    Endpoint("POST", "/v1/property/query", "GetProperties", "The custom property keys in use",
             "Property", QueryApi.properties, s.PropertyQueryBody, list[s.Property]),
    Endpoint("POST", "/v1/dashboard/overview", "GetDashboardOverview", "Totals, percentiles, breakdowns (dashboard)",
             "Dashboard", overview.overview, overview.OverviewBody, overview.Overview),
    Endpoint("POST", "/v1/dashboard/session-tree", "GetSessionTree", "A session's requests with their paths",
             "Dashboard", overview.session_tree, overview.SessionTreeBody, list[overview.SessionTreeRow]),
    # Helicone's Prompts API (api/prompts.py), in its reference's order.
    Endpoint("POST", "/v1/prompt-2025", "CreatePrompt2025", "Create a prompt with its first version (0.0, production)",
             _PROMPT, prompts.create, s.PromptCreateBody, s.PromptCreated),
    Endpoint("POST", "/v1/prompt-2025/update", "UpdatePrompt2025",
             "A new minor or major version of a prompt, optionally moved into an environment",
             _PROMPT, prompts.update, s.PromptUpdateBody, s.PromptVersionCreated),
    Endpoint("POST", "/v1/prompt-2025/query", "GetPrompts2025", "Prompts by name and tags, newest first, one page",
             _PROMPT, prompts.query, s.PromptQueryBody, list[s.Prompt2025]),
    Endpoint("POST", "/v1/prompt-2025/query/version", "GetPrompt2025Version", "One version, with its body",
             _PROMPT, prompts.version, s.PromptVersionIdBody, s.Prompt2025Version),
    Endpoint("POST", "/v1/prompt-2025/query/versions", "GetPrompt2025Versions",
             "A prompt's versions (of one major version), newest first",
             _PROMPT, prompts.versions, s.PromptVersionsBody, list[s.Prompt2025Version]),
    Endpoint("POST", "/v1/prompt-2025/query/production-version", "GetPrompt2025ProductionVersion",
             "The production version, with its body",
             _PROMPT, prompts.production_version, s.PromptIdBody, s.Prompt2025Version),
    Endpoint("POST", "/v1/prompt-2025/query/environment-version", "GetPrompt2025EnvironmentVersion",
             "The version an environment points at, with its body",
             _PROMPT, prompts.environment_version, s.PromptEnvironmentBody, s.Prompt2025Version),
    Endpoint("POST", "/v1/prompt-2025/query/total-versions", "GetPrompt2025VersionCounts",
             "How many versions, and the highest major version",
             _PROMPT, prompts.total_versions, s.PromptIdBody, s.PromptVersionCounts),
    Endpoint("POST", "/v1/prompt-2025/update/environment", "SetPrompt2025VersionEnvironment",
             "Point an environment at a version", _PROMPT, prompts.set_environment, s.PromptSetEnvironmentBody, None),
    Endpoint("GET", "/v1/prompt-2025/id/{promptId}", "GetPrompt2025", "One prompt",
             _PROMPT, prompts.get_prompt, None, s.Prompt2025),
    Endpoint("PATCH", "/v1/prompt-2025/id/{promptId}/tags", "UpdatePrompt2025Tags", "Replace a prompt's tags",
             _PROMPT, prompts.set_tags, s.PromptTagsBody, list[str]),
    Endpoint("POST", "/v1/prompt-2025/id/{promptId}/rename", "RenamePrompt2025", "Rename a prompt",
             _PROMPT, prompts.rename, s.PromptRenameBody, None),
    Endpoint("GET", "/v1/prompt-2025/id/{promptId}/{versionId}/inputs", "GetPrompt2025Inputs",
             "The inputs a logged request compiled this version with",
             _PROMPT, prompts.inputs, None, s.Prompt2025Inputs, query={"requestId": {"type": "string"}}),
    Endpoint("DELETE", "/v1/prompt-2025/{promptId}", "DeletePrompt2025", "Delete a prompt and all its versions",
             _PROMPT, prompts.delete_prompt, None, None),
    Endpoint("DELETE", "/v1/prompt-2025/{promptId}/{versionId}", "DeletePrompt2025Version",
             "Delete one version (and the environments pointing at it)",
             _PROMPT, prompts.delete_version, None, None),
    Endpoint("GET", "/v1/prompt-2025/tags", "GetPrompt2025Tags", "Every tag in use", _PROMPT, prompts.tags, None,
             list[str]),
    Endpoint("GET", "/v1/prompt-2025/environments", "GetPrompt2025Environments", "Every environment in use",
             _PROMPT, prompts.environments, None, list[str]),
    Endpoint("GET", "/v1/prompt-2025/count", "GetPrompt2025Count", "How many prompts", _PROMPT, prompts.count, None,
             int),
    # Helicone's Webhooks API (api/webhooks.py), then heliport's dead letters and the signed body link.
    Endpoint("POST", "/v1/webhooks", "NewWebhook", "Create a webhook (its hmac_key is generated)",
             _WEBHOOK, webhooks.create, s.WebhookCreateBody, s.Webhook),
    Endpoint("GET", "/v1/webhooks", "GetWebhooks", "The organisation's webhooks, with their delivery logs",
             _WEBHOOK, webhooks.listed, None, list[s.Webhook]),
    Endpoint("DELETE", "/v1/webhooks/{webhookId}", "DeleteWebhook", "Delete a webhook and its dead letters",
             _WEBHOOK, webhooks.delete, None, None),
    Endpoint("GET", "/v1/webhooks/{webhookId}/dead-letters", "GetWebhookDeadLetters",
             "Deliveries given up on, newest first, with the body that was sent",
             _WEBHOOK, webhooks.dead_letters, None, list[s.WebhookDeadLetter]),
    Endpoint("GET", "/v1/webhooks/{webhookId}/bodies/{requestId}", "GetWebhookBodies",
             "A delivery's request_response_url: the full bodies, no key needed until it expires",
             _WEBHOOK, webhooks.bodies, None, s.WebhookBodies, public=True,
             query={"org": {"type": "string"}, "expires": {"type": "string"}, "signature": {"type": "string"}}),
    # heliport's alerts (api/alerts.py): Helicone configures alerts in its UI only.
    Endpoint("POST", "/v1/alerts", "NewAlert", "Create an alert", _ALERT, alerts.create, s.AlertCreateBody, s.Alert),
    Endpoint("GET", "/v1/alerts", "GetAlerts", "The organisation's alerts, oldest first, with their state",
             _ALERT, alerts.listed, None, list[s.Alert]),
    Endpoint("POST", "/v1/alerts/preview", "PreviewAlert",
             "An alert's metric per group over its window now, nothing stored",
             _ALERT, alerts.preview, s.AlertPreviewBody, s.AlertPreview),
    Endpoint("GET", "/v1/alerts/{alertId}", "GetAlert", "One alert, with its state", _ALERT, alerts.get, None, s.Alert),
    Endpoint("PATCH", "/v1/alerts/{alertId}", "UpdateAlert", "Change any of an alert's fields",
             _ALERT, alerts.patch, s.AlertPatchBody, s.Alert),
    Endpoint("DELETE", "/v1/alerts/{alertId}", "DeleteAlert", "Delete an alert, its state and its history",
             _ALERT, alerts.delete, None, s.Deleted),
    Endpoint("GET", "/v1/alerts/{alertId}/history", "GetAlertHistory",
             "The alert's triggers and resolutions, newest first",
             _ALERT, alerts.history, None, list[s.AlertHistoryEntry],
             query={"limit": {"type": "integer", "minimum": 1, "maximum": alerts.MAX_HISTORY, "default": 50}}),
    Endpoint("POST", "/v1/alerts/{alertId}/test", "TestAlert", "Send a test notification to every channel now",
             _ALERT, alerts.test, None, list[s.AlertTestResult]),
    # --- issue 23: evals and scores ---
    Endpoint("POST", "/v1/evals/query", "QueryEvals",
             "Per score name: mean, min, max, count and their course over the time range",
             "Evals", eval_api.query_evals, eval_api.EvalQueryParams, list[eval_api.Eval]),
    Endpoint("GET", "/v1/evals/scores", "GetEvalScores", "Every score name in use", "Evals", eval_api.eval_scores, None,
             list[str]),
    Endpoint("POST", "/v1/evals/score-distributions/query", "QueryScoreDistributions",
             "Per score name: 10 equal-width buckets of its scores in the time range",
             "Evals", eval_api.score_distributions, eval_api.EvalQueryParams, list[eval_api.ScoreDistribution]),
    Endpoint("POST", "/v1/evals/{requestId}", "AddEval", "Add or replace one score of a request (as /score does)",
             "Evals", eval_api.add_eval, eval_api.AddEvalBody, None),
    Endpoint("POST", "/v1/dashboard/scores/query", "GetScoresOverTime", "Mean score per name and time bucket",
             "Dashboard", eval_api.scores_over_time, eval_api.ScoresOverTimeBody, list[eval_api.ScoreOverTimeRow]),
    # --- issue 23: session feedback ---
    Endpoint("POST", "/v1/session/{sessionId}/feedback", "UpdateSessionFeedback", "Rate a session",
             "Session", session_feedback_api.session_feedback, session_feedback_api.SessionFeedbackBody, None),
    # --- issue 23: datasets ---
    Endpoint("POST", "/v1/helicone-dataset", "AddHeliconeDataset",
             "Create a dataset ({name, description}, or {datasetName, requestIds, meta})",
             "Dataset", dataset_api.create, dataset_api.DatasetCreateBody, dataset_api.DatasetCreated),
    Endpoint("POST", "/v1/helicone-dataset/query", "QueryHeliconeDataset",
             "The datasets (or those of datasetIds), newest first, with their item counts",
             "Dataset", dataset_api.listed, dataset_api.DatasetListBody, list[dataset_api.HeliconeDataset]),
    Endpoint("POST", "/v1/helicone-dataset/{datasetId}/query", "QueryHeliconeDatasetRows",
             "A dataset's items, newest first, one page",
             "Dataset", dataset_api.query, dataset_api.DatasetItemsBody, list[dataset_api.DatasetItem]),
    Endpoint("POST", "/v1/helicone-dataset/{datasetId}/count", "CountHeliconeDatasetRows", "How many items",
             "Dataset", dataset_api.count, None, int),
    Endpoint("POST", "/v1/helicone-dataset/{datasetId}/mutate", "MutateHeliconeDataset",
             "Add logged requests (addRequests) and remove items (removeRequests: item or request ids)",
             "Dataset", dataset_api.mutate, dataset_api.DatasetMutateBody, None),
    Endpoint("POST", "/v1/helicone-dataset/{datasetId}/request/{requestId}", "UpdateHeliconeDatasetRequest",
             "No body: add a logged request; {requestBody, responseBody}: edit the item (null: the logged body)",
             "Dataset", dataset_api.add_request, None, dataset_api.DatasetItem),
    Endpoint("DELETE", "/v1/helicone-dataset/{datasetId}/request/{requestId}", "RemoveHeliconeDatasetRequest",
             "Remove an item (named by its id or its request's)",
             "Dataset", dataset_api.remove_request, None, s.Deleted),
    Endpoint("POST", "/v1/helicone-dataset/{datasetId}/delete", "DeleteHeliconeDataset",
             "Delete a dataset and its items", "Dataset", dataset_api.delete, None, None),
    Endpoint("GET", "/v1/helicone-dataset/{datasetId}/export", "ExportHeliconeDataset",
             "The dataset as OpenAI fine-tuning JSONL or CSV (the file's text), with the items left out and why",
             "Dataset", dataset_api.export, None, dataset_api.DatasetExport,
             query={"format": {"type": "string", "enum": ["jsonl", "csv"], "default": "jsonl"}}),
    # --- issue 23: assets ---
    Endpoint("POST", "/v1/request/{requestId}/assets/{assetId}", "GetRequestAssetById",
             "A short-lived URL of an image in the request's bodies",
             _REQUEST, asset_api.asset_url, None, asset_api.AssetUrl),
    Endpoint("GET", "/v1/request/{requestId}/assets/{assetId}", "GetRequestAsset",
             "An asset through its signed URL (assetUrl), no key needed until it expires",
             _REQUEST, asset_api.served, None, None, public=True,
             query={"org": {"type": "string"}, "expires": {"type": "string"}, "signature": {"type": "string"}}),
    Endpoint("GET", "/v1/request/{requestId}/assets", "GetRequestAssets", "The images in the request's bodies",
             _REQUEST, asset_api.listed, None, list[asset_api.RequestAsset]),
    # --- issue 23: HQL ---
    Endpoint("POST", "/v1/helicone-sql/execute", "ExecuteSql",
             "Run one HQL (ClickHouse SQL) SELECT over request_response_rmt, confined to the organisation",
             "HeliconeSql", hql_api.execute, hql_api.ExecuteSqlBody, hql_api.ExecuteSqlResult),
    Endpoint("GET", "/v1/helicone-sql/schema", "GetClickHouseSchema", "The HQL tables and their columns",
             "HeliconeSql", hql_api.schema, None, list[hql_api.TableSchema]),
    Endpoint("POST", "/v1/helicone-sql/download", "DownloadCsv",
             "Run an HQL statement; a signed URL of its result as CSV",
             "HeliconeSql", hql_api.download, hql_api.ExecuteSqlBody, str),
    Endpoint("GET", "/v1/helicone-sql/download/csv", "GetCsvDownload",
             "The CSV of a download URL (no key needed until it expires)",
             "HeliconeSql", hql_api.download_csv, None, str, public=True,
             query={"org": {"type": "string"}, "expires": {"type": "string"}, "sql": {"type": "string"},
                    "signature": {"type": "string"}}),
    Endpoint("GET", "/v1/helicone-sql/saved-queries", "GetSavedQueries", "The organisation's saved HQL queries",
             "HeliconeSql", hql_api.list_saved, None, list[hql_api.SavedQuery]),
    Endpoint("POST", "/v1/helicone-sql/saved-queries/bulk-delete", "BulkDeleteSavedQueries",
             "Delete saved queries by id", "HeliconeSql", hql_api.bulk_delete_saved, hql_api.BulkDeleteBody, None),
    Endpoint("POST", "/v1/helicone-sql/saved-query", "CreateSavedQuery", "Save an HQL query (answered in an array)",
             "HeliconeSql", hql_api.create_saved, hql_api.SavedQueryBody, list[hql_api.SavedQuery]),
    Endpoint("GET", "/v1/helicone-sql/saved-query/{queryId}", "GetSavedQuery", "One saved query",
             "HeliconeSql", hql_api.get_saved, None, hql_api.SavedQuery),
    Endpoint("PUT", "/v1/helicone-sql/saved-query/{queryId}", "UpdateSavedQuery", "Rename or rewrite a saved query",
             "HeliconeSql", hql_api.update_saved, hql_api.SavedQueryBody, hql_api.SavedQuery),
    Endpoint("DELETE", "/v1/helicone-sql/saved-query/{queryId}", "DeleteSavedQuery", "Delete a saved query",
             "HeliconeSql", hql_api.delete_saved, None, None),
    # --- issue 23: charts ---
    Endpoint("POST", "/v1/dashboard/timeseries", "GetDashboardTimeseries",
             "Requests, cost, tokens, errors, latency and TTFT percentiles, cache hits per time bucket (dashboard)",
             "Dashboard", overview.timeseries, overview.TimeseriesBody, overview.Timeseries),
)  # fmt: skip
