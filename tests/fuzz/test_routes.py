"""The request routes: pass-through proxy, AI gateway and async log. Every malformed input is a 4xx
JSON error in OpenAI's shape (``{"error": {"message": ...}}``), never a 5xx.

* proxy: ``/v1/gateway/oai/...``, ``/v1/gateway/anthropic/...`` and the key-in-path form. Upstream
  refuses everything with a 400 in its own shape, so every answer is a 4xx: heliport's own or the
  provider's, relayed.
* gateway: ``/v1/chat/completions`` and ``/v1/responses`` (translated to OpenAI, Anthropic and
  Bedrock), ``/v1/models``, ``/v1/models/multimodal`` and the public model registry. Every provider
  account points at an upstream that refuses everything with a 400, so a body heliport accepts ends
  in the gateway's own 4xx; a 5xx is always heliport's.
* async-log: ``/custom/v1/log``, ``/v1/trace/custom/log``, ``/oai/v1/log``, ``/anthropic/v1/log``. A
  payload heliport accepts is a 200 ``{"ok": true, "id"}`` and its record goes through the real
  queue.
* otel: OpenTelemetry ingest, ``/v1/trace/log`` (OTLP JSON) and ``/v1/trace/log-python`` (OTLP
  protobuf, or JSON when sent as JSON), with the key as the exporter sends it (``Authorization:
  Bearer``). An export heliport accepts is a 204 (JSON route) or an OTLP 200, and its LLM spans go
  through the real queue.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fuzz import corpus
from tests.fuzz.conftest import Fuzzed
from tests.fuzz.wire import Target, check, client, openai_error, send_case

FAMILIES = (
    ("proxy", corpus.PROXY_ROUTES, corpus.proxy_cases()),
    ("gateway", corpus.GATEWAY_ROUTES, corpus.gateway_cases()),
    ("async-log", corpus.ASYNC_LOG_ROUTES, corpus.async_log_cases()),
    ("otel", corpus.OTEL_ROUTES, corpus.otel_cases()),
)
PARAMS = [
    pytest.param(family, route, case, id=f"{family}:{route.name}|{case.id}")
    for family, routes, cases in FAMILIES
    for route in routes
    for case in cases[route.name]
]


@pytest.fixture(scope="module")
def target(fuzzed: Fuzzed) -> Iterator[Target]:
    with client(fuzzed.url) as http:
        yield Target(fuzzed.url, http, fuzzed.markers())


def credential(family: str, route: corpus.Route) -> tuple[bytes, bytes] | None:
    if family == "proxy":  # Helicone's header; the key-in-path route carries its key in the path
        return None if route.name == "key-in-path" else (b"Helicone-Auth", b"Bearer @KEY@")
    return (b"Authorization", b"Bearer @KEY@")  # what the SDKs send: the heliport key as their API key


@pytest.mark.parametrize(("family", "route", "case"), PARAMS)
def test_malformed_input_is_a_4xx_json_error_never_a_5xx(
    target: Target, family: str, route: corpus.Route, case: corpus.Case
) -> None:
    reply = send_case(
        target,
        case,
        method=route.method,
        path=route.path,
        credential=credential(family, route),
        route_headers=route.headers,
    )
    check(reply, openai_error, case.expect, wire=case.id.startswith("wire:"))
