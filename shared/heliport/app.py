"""The heliport ASGI application: one app for ``heliport serve`` and for the Lambda proxy function.

Routing is a few string checks rather than a router: the proxy prefix is the hot path and costs
nothing to find. Routes that need no heliport key are listed in :data:`PUBLIC_ROUTES`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from heliport.asgi import Message, Receive, Scope, Send, send_error, send_json
from heliport.auth import KEY_PREFIX, Authenticator
from heliport.cache import ResponseCache
from heliport.config import Settings
from heliport.dashboard import serve_dashboard
from heliport.errors import RouteNotFoundError
from heliport.exchange import ExchangeDeps, RequestStep
from heliport.gateway.handler import GATEWAY_ROUTES, GatewayHandler
from heliport.gateway.providers import load_accounts
from heliport.logs.async_log import ASYNC_LOG_ROUTES, AsyncLogHandler
from heliport.logs.backlog import SHUTDOWN_DRAIN_S, LogBacklog
from heliport.logs.otel_ingest import OTEL_ROUTES, OtelIngestHandler
from heliport.proxy.forward import ProxyHandler
from heliport.proxy.targets import TargetResolver
from heliport.proxy.transport import AiohttpTransport, UpstreamTransport
from heliport.ratelimit import RateLimiter
from heliport.realtime import RealtimeRelay
from heliport.steps import StepServices
from heliport.steps.stage import default_steps
from heliport.store.blobs import BlobStore
from heliport.store.cache_store import CacheStore
from heliport.store.counter_store import CounterStore
from heliport.store.keys import KeyStore
from heliport.store.queue import LogQueue

if TYPE_CHECKING:
    from heliport.alerts.schedule import AlertTimer
    from heliport.api.app import QueryApi
    from heliport.gateway.registry import Registry
    from heliport.logs.consumer import LocalPipeline
    from heliport.logs.pipeline_process import PipelineProcess
    from heliport.prompts.store import PromptStore

__all__ = ["PROXY_PREFIX", "PUBLIC_ROUTES", "Heliport", "create_app"]

logger = logging.getLogger("heliport")

#: The pass-through proxy's prefix (Helicone's URL, hence "gateway"); the AI gateway is heliport.gateway.
PROXY_PREFIX = "/v1/gateway/"
#: Answered without a heliport key: a load balancer's health check must not need a secret, and the
#: model registry is public, as Helicone's is.
PUBLIC_ROUTES = frozenset({"/healthcheck", "/v1/public/model-registry/models"})
_KEY_SEGMENT = "/" + KEY_PREFIX
#: Paths of the query API (``heliport.api``), which is built on its first request.
API_PREFIXES = (
    "/v1/request/", "/v1/session/", "/v1/user/", "/v1/property/", "/v1/dashboard/", "/v1/prompt-2025/", "/v1/webhooks/",
    "/v1/alerts/", "/v1/evals/", "/v1/helicone-dataset/", "/v1/helicone-sql/",
)  # fmt: skip
API_ROUTES = frozenset(
    {"/openapi.json", "/v1/feedback", "/v1/prompt-2025", "/v1/webhooks", "/v1/alerts", "/v1/helicone-dataset"}
)
#: Makes the query API; given the app's authenticator, so keys are checked (and cached) once.
ApiFactory = Callable[[Authenticator], "QueryApi"]


class Heliport:
    """The ASGI app. Stores are injected; the upstream transport is made at lifespan start.

    ``steps`` is the pre-forward stage both logged routes run (see :mod:`heliport.exchange`); by
    default the checks of :mod:`heliport.steps`, each run only when a request's header asks for it.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        key_store: KeyStore,
        queue: LogQueue,
        cache_store: CacheStore,
        counter_store: CounterStore,
        transport_factory: Callable[[], UpstreamTransport] | None = None,
        pipeline: LocalPipeline | PipelineProcess | None = None,
        alert_timer: AlertTimer | None = None,
        provider_env: Mapping[str, str] | None = None,
        api_factory: ApiFactory | None = None,
        steps: Sequence[RequestStep] | None = None,
    ) -> None:
        self.settings = settings
        self.key_store = key_store
        self.queue = queue
        self.cache_store = cache_store
        self.counter_store = counter_store
        self.pipeline = pipeline
        #: ``heliport serve``'s alert evaluator on a timer (``heliport.alerts.schedule``), run beside the
        #: local pipeline; None in AWS, where EventBridge Scheduler runs functions/alerts.
        self.alert_timer = alert_timer
        self._transport_factory = transport_factory or (lambda: AiohttpTransport(settings.timeouts))
        self._transport: UpstreamTransport | None = None
        authenticator = Authenticator(key_store, settings.auth_cache_ttl)
        self._authenticator = authenticator
        self._api_factory = api_factory or _default_api(settings)
        self._api: QueryApi | None = None
        self._prompt_store: PromptStore | None = None
        accounts = load_accounts(settings, provider_env)
        if steps is None:
            # The prompt store the AI gateway compiles prompt_id requests from (SQLite locally, the
            # DynamoDB table on AWS); imported here so an app built with its own steps never loads it.
            from heliport.prompts.factory import open_prompt_store

            self._prompt_store = open_prompt_store(settings)
            services = StepServices(
                settings,
                transport=self._upstream,
                accounts=accounts,
                registry=_registry,
                prompts=self._prompt_store,
            )
            steps = default_steps(services)
        #: Log hand-offs outstanding (one bound for both handlers: they hand records to the same queue);
        #: the Lambda extension reads and sets it, and :meth:`aclose` drains it.
        self.backlog = LogBacklog(settings.max_log_backlog)
        deps = ExchangeDeps(
            settings,
            authenticator=authenticator,
            transport=self._upstream,
            queue=queue,
            cache=ResponseCache(cache_store),
            limiter=RateLimiter(counter_store),
            backlog=self.backlog,
            steps=tuple(steps),
        )
        self._proxy = ProxyHandler(deps, targets=TargetResolver(settings))
        self._gateway = GatewayHandler(deps, accounts=accounts, registry=_registry)
        self._async_log = AsyncLogHandler(settings, authenticator=authenticator, queue=queue)
        self._otel_ingest = OtelIngestHandler(settings, authenticator=authenticator, queue=queue)
        self._realtime = RealtimeRelay(settings, authenticator=authenticator, queue=queue)

    def _upstream(self) -> UpstreamTransport:
        if self._transport is None:  # a server that skipped lifespan still gets a pooled client
            self._transport = self._transport_factory()
        return self._transport

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            path: str = scope["path"]
            if _KEY_SEGMENT in path:
                path = _move_key_to_header(scope, path)
            if path.startswith(PROXY_PREFIX):
                await self._proxy(scope, receive, send, path[len(PROXY_PREFIX) :])
            elif path in GATEWAY_ROUTES:
                await self._gateway(scope, receive, send, path)
            elif path in ASYNC_LOG_ROUTES:
                await self._async_log(scope, receive, send, ASYNC_LOG_ROUTES[path])
            elif path in OTEL_ROUTES:
                await self._otel_ingest(scope, receive, send, OTEL_ROUTES[path])
            elif path.startswith(API_PREFIXES) or path in API_ROUTES:
                await self._query_api().asgi()(scope, receive, send)
            elif path == "/dashboard" or path.startswith("/dashboard/"):
                await serve_dashboard(scope, receive, send)
            elif path == "/healthcheck":
                await send_json(send, 200, b'{"status":"ok"}')
            else:
                await send_error(send, RouteNotFoundError(f"No route for {scope['method']} {path}"))
        elif kind == "websocket":
            await self._realtime(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    def _query_api(self) -> QueryApi:
        if self._api is None:
            self._api = self._api_factory(self._authenticator)
        return self._api

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message: Message = await receive()
            if message["type"] == "lifespan.startup":
                self._upstream()
                if self.pipeline is not None:
                    await self.pipeline.start()
                if self.alert_timer is not None:
                    await self.alert_timer.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def aclose(self) -> None:
        # Hand-offs still outstanding go out before anything they use closes: on Lambda this runs in the
        # shutdown phase (SIGTERM), which ends in SIGKILL 2 s later, so the wait is bounded below that.
        if not await self.backlog.drain(SHUTDOWN_DRAIN_S):
            logger.error("%d log hand-offs still outstanding at shutdown", self.backlog.outstanding)
        if self.alert_timer is not None:
            await self.alert_timer.stop()
            self.alert_timer = None
        if self.pipeline is not None:
            await self.pipeline.stop()
        if self._transport is not None:
            await self._transport.aclose()
            self._transport = None
        if self._api is not None:
            await self._api.aclose()
            self._api = None
        await self.queue.aclose()
        await self.key_store.aclose()
        await self.cache_store.aclose()
        await self.counter_store.aclose()
        if self._prompt_store is not None:
            await self._prompt_store.aclose()


def _default_api(settings: Settings, blobs: BlobStore | None = None) -> ApiFactory:
    """The query API over the log database and blob store the settings name.

    The body-URL secret named by ``HELIPORT_BODY_URL_SECRET_ARN`` is read here, when the app is built
    (start-up), not on the first API request: an unreadable secret stops the start, and no request
    waits on Secrets Manager.
    """
    from heliport.api.body_secret import with_body_url_secret

    settings = with_body_url_secret(settings)

    def make(authenticator: Authenticator) -> QueryApi:
        from heliport.alerts.index import open_alert_index
        from heliport.api.app import QueryApi
        from heliport.api.bodies import BodyLinks
        from heliport.prompts.factory import open_prompt_store
        from heliport.store.factory import open_blobs, open_query_db
        from heliport.webhooks.factory import open_webhook_store

        links = BodyLinks(blobs or open_blobs(settings), secret=settings.body_url_secret)
        db = open_query_db(settings)
        return QueryApi(
            db,
            authenticator,
            links,
            max_json_depth=settings.max_json_depth,
            max_body_bytes=settings.max_query_body_bytes,
            prompts=open_prompt_store(settings),
            trusted_origins=settings.trusted_origins,
            # The consumer's store too: DynamoDB when a table is named, else this reader's database.
            webhooks=open_webhook_store(settings, db),
            alert_index=open_alert_index(settings),
            settings=settings,
        )

    return make


def _registry() -> Registry:
    """The model registry, read from the package on first use (a proxy-only container never pays)."""
    global _loaded_registry
    if _loaded_registry is None:
        from heliport.gateway.registry import Registry

        _loaded_registry = Registry.load()
    return _loaded_registry


_loaded_registry: Registry | None = None


def _move_key_to_header(scope: Scope, path: str) -> str:
    """``/sk-heliport-.../v1/gateway/...``: take the key out of the path, as Helicone-Auth."""
    segments = path.split("/")
    key = next(s for s in segments if s.startswith(KEY_PREFIX))
    path = "/".join(s for s in segments if s != key)
    headers: list[tuple[bytes, bytes]] = list(scope["headers"])
    if not any(name.lower() == b"helicone-auth" for name, _ in headers):
        headers.append((b"helicone-auth", b"Bearer " + key.encode()))
    scope["headers"] = headers
    scope["path"] = path
    scope["raw_path"] = path.encode()
    return path


def create_app(
    settings: Settings | None = None,
    *,
    local_pipeline: bool = False,
    pipeline_process: bool = False,
    **overrides: Any,
) -> Heliport:
    """The app with the adapters the settings name (AWS in Lambda, local files elsewhere).

    ``local_pipeline`` also runs the log consumer in-process (``heliport serve``), and the alert
    evaluator on a timer beside it; in AWS both are functions of their own. With ``pipeline_process``
    too, both run in a child process instead (:mod:`heliport.logs.pipeline_process`), where their
    CPU work never holds the proxy's interpreter: what ``heliport serve`` runs.
    """
    from heliport.store.factory import (
        open_blobs,
        open_cache_store,
        open_counter_store,
        open_inner_queue,
        open_key_store,
        open_logdb,
        open_queue,
    )

    settings = settings or Settings.from_env()
    key_store = overrides.pop("key_store", None) or open_key_store(settings)
    blobs = open_blobs(settings)
    inner = open_inner_queue(settings)
    queue = open_queue(settings, blobs, inner)
    pipeline: LocalPipeline | PipelineProcess | None = None
    alert_timer = overrides.pop("alert_timer", None)
    if local_pipeline and pipeline_process:
        from heliport.logs.pipeline_process import PipelineProcess

        pipeline = PipelineProcess(settings)  # the child runs the alert timer too
    elif local_pipeline:
        from heliport.alerts.schedule import local_timer
        from heliport.logs.consumer import LocalPipeline

        pipeline = LocalPipeline(inner, queue, open_logdb(settings), blobs, settings=settings)
        alert_timer = alert_timer or local_timer(settings)
    cache_store = overrides.pop("cache_store", None) or open_cache_store(settings, blobs)
    counter_store = overrides.pop("counter_store", None) or open_counter_store(settings)
    return Heliport(
        settings,
        key_store=key_store,
        queue=queue,
        cache_store=cache_store,
        counter_store=counter_store,
        pipeline=pipeline,
        alert_timer=alert_timer,
        api_factory=overrides.pop("api_factory", None) or _default_api(settings, blobs),
        **overrides,
    )
