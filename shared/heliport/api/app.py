"""The query API as an ASGI app: Helicone's REST routes over the log database, and ``/openapi.json``.

The route table :data:`ENDPOINTS` is the one description of the API: Starlette routes are made from
it, and so is the OpenAPI document (``api/openapi.py``), so a route cannot exist undocumented.

Every route but the signed body URL needs a heliport key, as ``Authorization: Bearer <key>`` (what
Helicone's clients send) or ``Helicone-Auth``; the key's organisation is the only one any statement
can see (``api/database.py``). Answers are Helicone's ``{data, error}``: ``error`` is null on
success, and on failure a message that names the field, header or id at fault, with the matching
4xx status (400 invalid, 401 no or bad key, 404 unknown id or route, 405 wrong method), or 503 with
``Retry-After`` while the database is not accepting connections (Aurora resuming from pause).

This module is imported on the first API request (``heliport.app``), so the proxy's Lambda entry
never pays for Starlette and pydantic.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from heliport.api import aggregates as agg
from heliport.api import filters, overview, requests
from heliport.api import schemas as s
from heliport.api.bodies import BodyLinks
from heliport.api.database import QueryDb
from heliport.api.dialect import Params
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

__all__ = ["ENDPOINTS", "Call", "Endpoint", "QueryApi", "error_response"]

logger = logging.getLogger("heliport.api")

#: The largest body a query may have: filters are small, and a cap keeps a parser from being a target.
MAX_BODY_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class Call:
    """One authenticated API call, as a handler sees it."""

    org_id: str
    body: BaseModel | None
    raw: Mapping[str, Any]
    request: Request

    def path(self, name: str) -> str:
        return str(self.request.path_params[name])


Handler = Callable[["QueryApi", Call], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Endpoint:
    method: str
    path: str
    operation_id: str
    summary: str
    tag: str
    handler: Handler
    #: The JSON body's model (validated before the handler runs), or None for no body.
    body: type[BaseModel] | None
    #: The type of ``data`` in a successful answer, for the OpenAPI document.
    result: Any
    #: Documented query parameters: name -> JSON schema.
    query: Mapping[str, Mapping[str, Any]] | None = None
    #: Needs no heliport key (the signed body URL carries its own proof).
    public: bool = False


class QueryApi:
    """Holds what the handlers need; :meth:`asgi` is the Starlette app built from :data:`ENDPOINTS`."""

    def __init__(
        self,
        db: QueryDb,
        authenticator: Authenticator,
        links: BodyLinks,
        *,
        max_json_depth: int = Settings.max_json_depth,
    ) -> None:
        self.db = db
        self.authenticator = authenticator
        self.links = links
        #: ``HELIPORT_MAX_JSON_DEPTH``: deeper bodies are a 400 before any handler sees them.
        self.max_json_depth = max_json_depth
        self._app: Starlette | None = None

    def asgi(self) -> Starlette:
        if self._app is None:
            routes = [Route(e.path, self._route(e), methods=[e.method]) for e in ENDPOINTS]
            routes.append(Route("/openapi.json", self._openapi, methods=["GET"]))
            self._app = Starlette(
                routes=routes,
                exception_handlers={HTTPException: _http_error, Exception: _unexpected},  # type: ignore[dict-item]
            )
        return self._app

    async def aclose(self) -> None:
        await self.db.aclose()

    async def _openapi(self, request: Request) -> Response:
        from heliport.api.openapi import openapi_document

        return JSONResponse(openapi_document())

    def _route(self, endpoint: Endpoint) -> Callable[[Request], Awaitable[Response]]:
        async def respond(request: Request) -> Response:
            try:
                org_id = "" if endpoint.public else await self._organisation(request)
                raw: Mapping[str, Any] = {}
                body = None
                if endpoint.body is not None:
                    raw = await _json_body(request, self.max_json_depth)
                    body = _validate(endpoint.body, raw)
                data = await endpoint.handler(self, Call(org_id, body, raw, request))
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
        body = _as(call.body, s.RequestQueryBody)
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
        body = _as(call.body, s.RequestIdsBody)
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
            request_body, response_body = await self.links.read(row)
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
        request_body, response_body = await links.read(row)
        return JSONResponse({"request": request_body, "response": response_body})

    async def _update(self, call: Call, build: Callable[[Params, str], str], request_id: str | None = None) -> None:
        """Run ``build``'s UPDATE for the request in the path (or ``request_id``); 404 if no row changed."""
        named = call.path("requestId") if request_id is None else request_id
        key = requests.parse_request_id(named)
        params = Params(self.db.dialect)
        if await self.db.execute(call.org_id, build(params, key), params.values) == 0:
            raise RouteNotFoundError(f"No request {named} in this organisation.")

    async def feedback(self, call: Call) -> None:
        body = _as(call.body, s.FeedbackBody)
        now = datetime.now(UTC)
        await self._update(call, lambda p, key: requests.feedback_sql(call.org_id, p, key, rating=body.rating, at=now))

    async def put_property(self, call: Call) -> None:
        body = _as(call.body, s.PropertyBody)
        await self._update(call, lambda p, key: requests.property_sql(call.org_id, p, key, body.as_properties()))

    async def legacy_feedback(self, call: Call) -> None:
        body = _as(call.body, s.LegacyFeedbackBody)
        now = datetime.now(UTC)
        await self._update(
            call,
            lambda p, key: requests.feedback_sql(call.org_id, p, key, rating=body.rating, at=now),
            request_id=body.helicone_id,
        )

    async def score(self, call: Call) -> None:
        body = _as(call.body, s.ScoreBody)
        scores = {name: float(value) for name, value in body.scores.items()}
        await self._update(call, lambda p, key: requests.scores_sql(call.org_id, p, key, scores))

    # --- aggregates ------------------------------------------------------------------------------------

    async def _aggregate(
        self,
        call: Call,
        builder: Callable[..., str],
        mapper: Callable[[list[dict[str, Any]], Mapping[str, Any]], Any],
        kind: filters.AggregateKind | None,
    ) -> Any:
        params = Params(self.db.dialect)
        where, having = filters.compile_aggregate_filter(call.raw.get("filter", "all"), params, kind)
        extra = {"having": having} if having is not None else {}
        sql = builder(call.org_id, call.raw, params, where, **extra)
        return mapper(await self.db.fetch(call.org_id, sql, params.values), call.raw)

    async def sessions(self, call: Call) -> Any:
        return await self._aggregate(call, agg.session_query, agg.to_session_query_result, "session")

    async def session_metrics(self, call: Call) -> Any:
        return await self._aggregate(call, agg.session_metrics_query, agg.to_session_metrics_result, "session")

    async def users(self, call: Call) -> Any:
        return await self._aggregate(call, agg.user_query, agg.to_user_query_result, None)

    async def user_metrics(self, call: Call) -> Any:
        return await self._aggregate(call, agg.user_metrics_query, agg.to_user_metrics_result, "user")

    async def user_metrics_overview(self, call: Call) -> Any:
        return await self._aggregate(call, agg.user_metrics_overview_query, agg.to_user_metrics_overview_result, "user")

    async def properties(self, call: Call) -> Any:
        return await self._aggregate(call, agg.property_query, agg.to_property_query_result, None)


_M = TypeVar("_M", bound=BaseModel)


def _as(body: BaseModel | None, model: type[_M]) -> _M:
    if not isinstance(body, model):
        raise TypeError(f"endpoint declared no {model.__name__} body")
    return body


async def _read_capped(request: Request) -> bytes:
    """The body, refused with a 413 as soon as it passes :data:`MAX_BODY_BYTES` (never buffered whole first)."""
    too_large = InvalidBodyError(f"Body too large: at most {MAX_BODY_BYTES} bytes.", status=413)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


async def _json_body(request: Request, max_depth: int) -> Mapping[str, Any]:
    """The body as a JSON object nested at most ``max_depth`` deep; a 400 naming the field otherwise."""
    data = await _read_capped(request)
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
    return value


def _too_deep(field: str | None, max_depth: int) -> str:
    return f"Invalid {field or 'body'}: JSON nested more than {max_depth} levels deep (HELIPORT_MAX_JSON_DEPTH)."


def _validate(model: type[BaseModel], raw: Mapping[str, Any]) -> BaseModel:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "body"
        raise InvalidBodyError(f"Invalid {field}: {first['msg']}.", param=field) from None


def _failure(status: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"data": None, "error": message}, status_code=status, headers=headers)


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
        return _failure(405, f"{request.method} is not allowed on {request.url.path}.")
    return _failure(exc.status_code, str(exc.detail))


async def _unexpected(request: Request, exc: Exception) -> Response:
    logger.exception("query API failure on %s %s", request.method, request.url.path)
    return _failure(500, "Internal error; the server log has the details.")


_REQUEST = "Request"
ENDPOINTS: tuple[Endpoint, ...] = (
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
)  # fmt: skip
