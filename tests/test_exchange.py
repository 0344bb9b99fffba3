"""The pre-forward stage, plugged into a live heliport: both logged routes run the configured steps
after authentication and before the cache and the upstream.

Each step below acts on the request's ``Helicone-Property-Step`` header, so one heliport serves every
case: ``answer``/``refuse`` answer the request in the upstream's place, ``rewrite`` replaces the
body, ``facts`` adds facts to the log record. The three outcomes are shown on the pass-through proxy
and on the AI gateway alike.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import msgspec
import pytest

from heliport.errors import RequestError
from heliport.exchange import PROCEED, Answer, Exchange, StepResult
from heliport.steps.llm_security import LlmSecurity
from heliport.steps.moderation import Moderation
from heliport.steps.prompts import PromptCompilation
from heliport.steps.token_limit import TokenLimit
from tests.harness import Gateway, start_gateway
from tests.mock_provider import MockProvider

MESSAGES = [{"role": "user", "content": "Say hello"}]


class Refused(RequestError):
    status = 403
    code = "step_refused"


class ScriptedStep:
    """A test-defined step: what it does is named by the request's ``Helicone-Property-Step``; a
    request without that property does not ask for it."""

    def __init__(self) -> None:
        self.seen: list[bytes] = []

    def wanted(self, exchange: Exchange) -> bool:
        return "step" in exchange.options.properties

    async def __call__(self, exchange: Exchange) -> StepResult:
        self.seen.append(exchange.body)
        action = exchange.options.properties.get("step")
        if action == "answer":
            return StepResult(answer=Answer(200, {"answered": "by a step"}, ((b"x-step", b"answered"),)))
        if action == "refuse":
            raise Refused("a step refused this request")
        if action == "rewrite":
            body = msgspec.json.decode(exchange.body)
            body["messages"] = [{"role": "user", "content": "rewritten by a step"}]
            return StepResult(body=msgspec.json.encode(body), facts={"rewritten": "yes"})
        if action == "facts":
            return StepResult(facts={"verdict": "clean", "step": "scripted"})
        return PROCEED


class SecondStep:
    """Runs after :class:`ScriptedStep`: it sees the body as the first step left it."""

    def __init__(self) -> None:
        self.seen: list[bytes] = []

    def wanted(self, exchange: Exchange) -> bool:
        return "step" in exchange.options.properties

    async def __call__(self, exchange: Exchange) -> StepResult:
        self.seen.append(exchange.body)
        return StepResult(facts={"second": "ran"})


@pytest.fixture(scope="module")
def stepped(mock_provider: MockProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    first, second = ScriptedStep(), SecondStep()
    gw = start_gateway(
        tmp_path_factory.mktemp("stepped"),
        mock_provider.url,
        provider_env={"OPENAI_API_KEY": "sk-openai-test"},
        upstream_overrides={"oai": mock_provider.url, "openai": mock_provider.url},
        steps=(first, second),
    )
    gw.extra["steps"] = (first, second)
    yield gw
    gw.stop()


@pytest.fixture(autouse=True)
def _fresh(mock_provider: MockProvider) -> None:
    mock_provider.clear()


ROUTES = ["proxy", "ai-gateway"]


def call(gw: Gateway, route: str, action: str | None) -> httpx.Response:
    """One chat completion on ``route`` (the pass-through proxy or the AI gateway), naming the step's action."""
    headers = {} if action is None else {"Helicone-Property-Step": action}
    if route == "proxy":
        url = f"{gw.url}/v1/gateway/oai/v1/chat/completions"
        headers |= {"Helicone-Auth": f"Bearer {gw.key}", "Authorization": "Bearer sk-provider-secret"}
        body = {"model": "gpt-4o-mini", "messages": MESSAGES}
    else:
        url = f"{gw.url}/v1/chat/completions"
        headers |= {"Authorization": f"Bearer {gw.key}"}
        body = {"model": "gpt-4o-mini/openai", "messages": MESSAGES}
    return httpx.post(url, json=body, headers=headers, timeout=10)


@pytest.mark.parametrize("route", ROUTES)
def test_a_step_answers_early_and_the_provider_is_never_called(
    stepped: Gateway, mock_provider: MockProvider, route: str
) -> None:
    response = call(stepped, route, "answer")
    assert response.status_code == 200
    assert response.json() == {"answered": "by a step"}
    assert response.headers["content-type"] == "application/json"
    assert response.headers["content-length"] == str(len(response.content))
    assert response.headers["x-step"] == "answered"
    record = stepped.record(response.headers["helicone-id"])
    assert mock_provider.requests == []
    assert record.status == 200
    assert record.response_body == response.text
    assert record.properties == {"step": "answer"}
    assert stepped.extra["steps"][1].seen == []  # the stage stops at the answer


@pytest.mark.parametrize("route", ROUTES)
def test_a_step_refuses_with_an_error_and_the_provider_is_never_called(
    stepped: Gateway, mock_provider: MockProvider, route: str
) -> None:
    response = call(stepped, route, "refuse")
    assert response.status_code == 403
    assert response.headers["helicone-error"] == "step_refused"
    assert response.json()["error"]["message"] == "a step refused this request"
    record = stepped.record(response.headers["helicone-id"])
    assert mock_provider.requests == []
    assert (record.status, record.errors) == (403, ["a step refused this request"])


@pytest.mark.parametrize("route", ROUTES)
def test_a_step_rewrites_the_body_the_provider_receives(
    stepped: Gateway, mock_provider: MockProvider, route: str
) -> None:
    first, second = stepped.extra["steps"]
    first.seen.clear()
    second.seen.clear()
    response = call(stepped, route, "rewrite")
    assert response.status_code == 200, response.text
    (request,) = mock_provider.requests
    assert msgspec.json.decode(request.body)["messages"] == [{"role": "user", "content": "rewritten by a step"}]
    assert b"Say hello" in first.seen[0]
    assert b"rewritten by a step" in second.seen[0]  # later steps see the rewrite
    record = stepped.record(response.headers["helicone-id"])
    assert record.request_body is not None and "rewritten by a step" in record.request_body
    assert record.facts == {"rewritten": "yes", "second": "ran"}


@pytest.mark.parametrize("route", ROUTES)
def test_a_step_adds_facts_to_the_log_record(stepped: Gateway, mock_provider: MockProvider, route: str) -> None:
    response = call(stepped, route, "facts")
    assert response.status_code == 200, response.text
    assert len(mock_provider.requests) == 1
    record = stepped.record(response.headers["helicone-id"])
    assert record.status == 200
    assert record.facts == {"verdict": "clean", "step": "scripted", "second": "ran"}


@pytest.mark.parametrize("route", ROUTES)
def test_a_step_the_request_does_not_ask_for_is_skipped(
    stepped: Gateway, mock_provider: MockProvider, route: str
) -> None:
    first, second = stepped.extra["steps"]
    first.seen.clear()
    second.seen.clear()
    response = call(stepped, route, None)
    assert response.status_code == 200, response.text
    assert (first.seen, second.seen) == ([], [])
    assert stepped.record(response.headers["helicone-id"]).facts == {}


def test_default_checks_run_only_when_asked_and_leave_no_facts(gateway: Gateway, tmp_path: Path) -> None:
    """heliport's own checks are configured by default, in order; a request that asks for none runs none."""
    for handler in (gateway.app._proxy, gateway.app._gateway):
        assert [type(step) for step in handler._steps] == [PromptCompilation, Moderation, LlmSecurity, TokenLimit]
    response = httpx.post(
        f"{gateway.oai_base}/chat/completions",
        json={"model": "gpt-4o-mini", "messages": MESSAGES},
        headers={"Helicone-Auth": f"Bearer {gateway.key}", "Authorization": "Bearer sk-provider-secret"},
        timeout=10,
    )
    assert response.status_code == 200
    record = gateway.record(response.headers["helicone-id"])
    assert record.facts == {}
    assert b'"facts"' not in msgspec.json.encode(record)  # the record's wire format is unchanged
