"""Lambda entry of the query API and the dashboard: Helicone's REST routes over Aurora, and the
``/dashboard`` page that calls them from the same origin, behind API Gateway, via Mangum.

Only these are served here (no proxy, no upstream client): the function sits in the VPC next
to Aurora, and its cold start imports Starlette, pydantic and asyncpg but never aiohttp. The module
owns one event loop that lives as long as the execution environment: the migration runs on it, and
it is the current loop of every invocation, so Mangum (which runs the app on the current loop) uses
it too, and the asyncpg pool and the key cache are reused by warm invocations. The first invocation
of an environment brings the schema up to date, as the consumer does (an API deployed before any
request was logged still answers, with empty lists).

At import (the cold start) one thing reaches the network: the body-URL signing secret
(``HELIPORT_BODY_URL_SECRET_ARN``, :mod:`heliport.api.bodies`), which every environment must share for
a ``signed_body_url`` issued by one to be accepted by another; a secret that cannot be read fails the
start, loudly, rather than signing with a per-process key. The Aurora secret is read when the first
connection opens.
The first call after Aurora Serverless paused at 0 ACU waits 15-30 s for it to resume, longer than
``HELIPORT_DATABASE_CONNECT_TIMEOUT`` (10 s): that call, whether it was migrating or querying, is
answered 503 with ``Retry-After`` in the API's ``{data, error}`` shape (the attempt has started the
resume), and the next invocation migrates again.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from mangum import Mangum
from starlette.responses import Response

from heliport.alerts.index import open_alert_index
from heliport.api.app import QueryApi, error_response
from heliport.api.bodies import BodyLinks
from heliport.api.body_secret import with_body_url_secret
from heliport.auth import Authenticator
from heliport.config import Settings
from heliport.dashboard import serve_dashboard
from heliport.errors import HeliportError
from heliport.outbox_sqs import open_outbox
from heliport.prompts.factory import open_prompt_store
from heliport.store.aurora import database_credentials
from heliport.store.factory import open_blobs, open_key_store, open_logdb, open_query_db
from heliport.store.logdb_postgres import DatabaseUnavailableError
from heliport.webhooks.factory import open_webhook_store

logger = logging.getLogger("heliport.api")

#: Created, not looked up: ``asyncio.get_event_loop()`` outside a running loop is deprecated.
_loop = asyncio.new_event_loop()
asyncio.set_event_loop(_loop)  # before Mangum(...) below, which adopts the current loop
# Before anything is built from the settings: the links and the HQL downloads sign with its secret.
_settings = with_body_url_secret(Settings.from_env())
#: One source for the reader and the migrating writer: one secret read per cold start.
_credentials = database_credentials(_settings)
_api = QueryApi(
    open_query_db(_settings, _credentials),
    Authenticator(open_key_store(_settings), _settings.auth_cache_ttl),
    BodyLinks(open_blobs(_settings), secret=_settings.body_url_secret),
    max_json_depth=_settings.max_json_depth,
    max_body_bytes=_settings.max_query_body_bytes,
    prompts=open_prompt_store(_settings),
    trusted_origins=_settings.trusted_origins,
    settings=_settings,
    webhooks=open_webhook_store(_settings),
    outbox=open_outbox(_settings),
    alert_index=open_alert_index(_settings),
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


async def _migrate() -> list[str]:
    # The API's own connect bound, not the consumer's: this runs inside a 29 s invocation.
    logdb = open_logdb(_settings, _credentials, connect_timeout=_settings.database_connect_timeout)
    try:
        return await logdb.migrate()
    finally:
        await logdb.aclose()


def _answer(response: Response, event: dict[str, Any], context: Any) -> dict[str, Any]:
    """``response`` in the shape the event's source expects (Mangum knows API Gateway's and ALB's)."""
    answered: dict[str, Any] = Mangum(response, lifespan="off")(event, context)
    return answered


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    global _migrated
    # Mangum runs the app on the current loop: make it ours whatever ran in between (an asyncio.run()
    # leaves no current loop), so the pools opened by earlier invocations stay usable.
    asyncio.set_event_loop(_loop)
    if not _migrated:
        try:
            applied = _loop.run_until_complete(_migrate())
        except DatabaseUnavailableError as error:
            logger.warning("could not migrate the log database yet; answering 503: %s", error.message)
            return _answer(error_response(error), event, context)
        except Exception:
            # Not a crash of the invocation (API Gateway would answer its opaque 502): a 500 in the API's
            # shape, and the next invocation tries again.
            logger.exception("could not migrate the log database; trying again on the next invocation")
            failure = HeliportError("Internal error; the server log has the details.")
            return _answer(error_response(failure), event, context)
        if applied:
            logger.warning("applied migrations %s", ", ".join(applied))
        _migrated = True
    response: dict[str, Any] = _asgi(event, context)
    return response
