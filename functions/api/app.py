"""Lambda entry of the query API and the dashboard: Helicone's REST routes over Aurora, and the
``/dashboard`` page that calls them from the same origin, behind API Gateway, via Mangum.

Only these are served here (no proxy, no upstream client): the function sits in the VPC next
to Aurora, and its cold start imports Starlette, pydantic and asyncpg but never aiohttp. Mangum runs
every invocation on one event loop that lives as long as the execution environment, so the asyncpg
pool and the key cache are reused by warm invocations. The first invocation of an environment
brings the schema up to date, as the consumer does (an API deployed before any request was logged
still answers, with empty lists).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from mangum import Mangum

from heliport.api.app import QueryApi
from heliport.api.bodies import BodyLinks
from heliport.auth import Authenticator
from heliport.config import Settings
from heliport.dashboard import serve_dashboard
from heliport.store.aurora import database_url_from_environment
from heliport.store.factory import open_blobs, open_key_store, open_logdb, open_query_db

logger = logging.getLogger("heliport.api")

_settings = dataclasses.replace(Settings.from_env(), database_url=database_url_from_environment())
_api = QueryApi(
    open_query_db(_settings),
    Authenticator(open_key_store(_settings), _settings.auth_cache_ttl),
    BodyLinks(open_blobs(_settings), secret=_settings.body_url_secret),
)
_routes = _api.asgi()


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    path: str = scope.get("path", "")
    if path == "/dashboard" or path.startswith("/dashboard/"):
        await serve_dashboard(scope, receive, send)
    else:
        await _routes(scope, receive, send)


_asgi = Mangum(_app, lifespan="off")
_migrated = False


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    global _migrated
    if not _migrated:
        import asyncio

        async def migrate() -> list[str]:
            logdb = open_logdb(_settings)
            try:
                return await logdb.migrate()
            finally:
                await logdb.aclose()

        applied = asyncio.get_event_loop().run_until_complete(migrate())
        if applied:
            logger.warning("applied migrations %s", ", ".join(applied))
        _migrated = True
    response: dict[str, Any] = _asgi(event, context)
    return response
