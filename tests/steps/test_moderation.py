"""``Helicone-Moderations-Enabled: true``, end to end: the official SDKs call a live heliport (the
pass-through proxy and the AI gateway), which screens the latest user message with the mock provider's
``POST /v1/moderations`` (OpenAI's wire format) before the model is called, or instead of it.

The mock flags text containing ``mock-flag`` and images whose URL or data carries it, and answers
``mock-moderation-status-<code>`` with that error (tests/mock_provider/moderation.py); it records
every request, so each test sees exactly what heliport sent to the moderation endpoint, with which key,
and whether the model was called at all.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import anthropic
import httpx
import msgspec
import openai
import pytest

from tests.harness import Gateway
from tests.mock_provider import MockProvider, RecordedRequest

#: tests/steps/conftest.py's ``step_gateway``: a heliport in front of the mock with these settings.
StartGateway = Callable[..., Gateway]

CALLER_KEY = "sk-caller-openai"
GATEWAY_KEY = "sk-gateway-openai"
HEADER = "Helicone-Moderations-Enabled"
ROUTES = ["proxy", "ai-gateway"]
FLAGGED = "Tell me how to mock-flag the neighbours"
MODERATION = "/v1/moderations"


def data_url(content: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(content).decode()


CLEAN_IMAGE = data_url(b"\x89PNG a cat on a sofa")
FLAGGED_IMAGE = data_url(b"\x89PNG mock-flag")


@pytest.fixture(scope="module")
def gw(step_gateway: StartGateway) -> Gateway:
    """Both routes in front of the mock, with a deployment OpenAI account (and an Anthropic one)."""
    return step_gateway()


@pytest.fixture(autouse=True)
def _fresh(mock_provider: MockProvider) -> None:
    mock_provider.clear()


def sdk(
    gateway: Gateway, route: str, *, api_key: str = CALLER_KEY, headers: dict[str, str | None] | None = None
) -> openai.OpenAI:
    """The OpenAI SDK on ``route``, asking for moderation unless ``headers`` say otherwise (None: not sent)."""
    wanted: dict[str, str | None] = {HEADER: "true", **(headers or {})}
    extra = {name: value for name, value in wanted.items() if value is not None}
    if route == "proxy":
        return openai.OpenAI(
            base_url=gateway.oai_base,
            api_key=api_key,
            default_headers={"Helicone-Auth": f"Bearer {gateway.key}", **extra},
            max_retries=0,
        )
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=gateway.key, default_headers=extra, max_retries=0)


def model(route: str) -> str:
    return "gpt-4o-mini" if route == "proxy" else "gpt-4o-mini/openai"


def expected_key(route: str) -> str:
    """The OpenAI key the moderation call carries: the caller's on the proxy, the deployment's on the gateway."""
    return CALLER_KEY if route == "proxy" else GATEWAY_KEY


def moderation_calls(mock: MockProvider) -> list[RecordedRequest]:
    return [r for r in mock.requests if r.path == MODERATION]


def model_calls(mock: MockProvider) -> list[RecordedRequest]:
    return [r for r in mock.requests if r.path != MODERATION]


def flagged_body(gateway: Gateway, request_id: str) -> dict[str, Any]:
    return {
        "success": False,
        "error": {
            "code": "PROMPT_FLAGGED_FOR_MODERATION",
            "message": "The given prompt was flagged by the OpenAI Moderation endpoint.",
            "details": f"See your Helicone request page for more info: {gateway.url}/dashboard/#/requests/{request_id}",
        },
    }


def error_of(raised: pytest.ExceptionInfo[Any]) -> tuple[int, dict[str, Any], str]:
    """(status, body, Helicone-Id) of an error the SDK raised ("" for a request refused before it had an id)."""
    response = raised.value.response
    return response.status_code, response.json(), response.headers.get("helicone-id", "")


# -- flagged / clean --------------------------------------------------------------------------------


@pytest.mark.parametrize("route", ROUTES)
def test_a_flagged_prompt_is_refused_with_helicones_body_and_the_model_is_never_called(
    gw: Gateway, mock_provider: MockProvider, route: str
) -> None:
    conversation = [
        {"role": "system", "content": "You are helpful."},
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "Hi, how can I help?"},
        {"role": "user", "content": FLAGGED},
    ]
    with pytest.raises(openai.BadRequestError) as raised:
        sdk(gw, route).chat.completions.create(model=model(route), messages=conversation)
    status, body, request_id = error_of(raised)
    assert status == 400
    assert body == flagged_body(gw, request_id)

    (call,) = mock_provider.requests  # the moderation call, and nothing else
    assert (call.method, call.path) == ("POST", MODERATION)
    assert call.json == {"model": "omni-moderation-latest", "input": [{"type": "text", "text": FLAGGED}]}
    assert call.header("authorization") == f"Bearer {expected_key(route)}"
    assert call.header("content-type") == "application/json"

    record = gw.record(request_id)
    assert record.status == 400
    assert record.response_body is not None and msgspec.json.decode(record.response_body) == body
    facts = record.facts["moderation"]
    assert isinstance(facts, dict)
    assert facts["screened"] is True and facts["flagged"] is True
    assert facts["categories"] == ["violence"]
    assert facts["top_scores"]["violence"] == 0.9731 and len(facts["top_scores"]) == 3
    assert facts["message"] == "messages[3]"  # the latest user message, not the first
    assert facts["model"] == "omni-moderation-latest"
    assert facts["credential"] == ("caller" if route == "proxy" else "gateway")
    assert (facts["images"], facts["calls"]) == (0, 1)
    assert isinstance(facts["latency_ms"], float) and facts["latency_ms"] >= 0
    assert expected_key(route) not in msgspec.json.encode(record).decode()  # the key is not logged


@pytest.mark.parametrize("route", ROUTES)
def test_a_clean_prompt_is_forwarded_and_the_verdict_logged(
    gw: Gateway, mock_provider: MockProvider, route: str
) -> None:
    raw = sdk(gw, route).chat.completions.with_raw_response.create(
        model=model(route),
        messages=[
            {"role": "user", "content": "mock-flag in an old turn is not screened"},
            {"role": "user", "content": "Say hello"},
        ],
    )
    completion = raw.parse()
    assert raw.status_code == 200 and completion.choices[0].message.content

    moderation, chat = mock_provider.requests  # moderation first, then the model
    assert moderation.path == MODERATION and moderation.json["input"] == [{"type": "text", "text": "Say hello"}]
    assert chat.path.endswith("/chat/completions")
    assert chat.header("authorization") == f"Bearer {expected_key(route)}"  # the model call is unchanged

    record = gw.record(raw.headers["helicone-id"])
    assert record.status == 200
    facts = record.facts["moderation"]
    assert isinstance(facts, dict)
    assert (facts["screened"], facts["flagged"], facts["categories"]) == (True, False, [])
    assert facts["message"] == "messages[1]"
    # The three highest scores of the mock's baseline (all categories apply to text).
    assert facts["top_scores"] == {"violence/graphic": 0.0013, "violence": 0.0012, "sexual/minors": 0.0011}


def test_a_flagged_streaming_request_gets_the_400_before_any_stream(gw: Gateway, mock_provider: MockProvider) -> None:
    client = sdk(gw, "proxy")
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": FLAGGED}], stream=True
        )
    _, body, request_id = error_of(raised)
    assert body == flagged_body(gw, request_id)
    assert model_calls(mock_provider) == []

    mock_provider.clear()
    chunks = list(
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}], stream=True)
    )
    assert chunks and [r.path for r in mock_provider.requests] == [MODERATION, "/v1/chat/completions"]


# -- images -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("route", ROUTES)
def test_images_are_screened_with_the_text(gw: Gateway, mock_provider: MockProvider, route: str) -> None:
    parts = [
        {"type": "text", "text": "What is in this picture?"},
        {"type": "image_url", "image_url": {"url": FLAGGED_IMAGE}},
    ]
    with pytest.raises(openai.BadRequestError) as raised:
        sdk(gw, route).chat.completions.create(model=model(route), messages=[{"role": "user", "content": parts}])  # type: ignore[misc, list-item]
    status, body, request_id = error_of(raised)
    assert (status, body["error"]["code"]) == (400, "PROMPT_FLAGGED_FOR_MODERATION")
    (call,) = mock_provider.requests
    assert call.json["input"] == [
        {"type": "text", "text": "What is in this picture?"},
        {"type": "image_url", "image_url": {"url": FLAGGED_IMAGE}},
    ]
    facts = gw.record(request_id).facts["moderation"]
    assert isinstance(facts, dict)
    assert (facts["flagged"], facts["images"], facts["categories"]) == (True, 1, ["violence"])


@pytest.mark.parametrize("flagged_index", [None, 0, 1])
def test_each_image_is_screened_in_its_own_call(
    gw: Gateway, mock_provider: MockProvider, flagged_index: int | None
) -> None:
    images = [CLEAN_IMAGE, "https://images.example.com/beach.jpg"]
    if flagged_index is not None:
        images[flagged_index] = FLAGGED_IMAGE if flagged_index == 0 else "https://images.example.com/mock-flag.jpg"
    parts: list[dict[str, Any]] = [{"type": "text", "text": "Compare these"}]
    parts += [{"type": "image_url", "image_url": {"url": url}} for url in images]
    client = sdk(gw, "proxy")
    messages: Any = [{"role": "user", "content": parts}]
    if flagged_index is None:
        raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=messages)
        request_id = raw.headers["helicone-id"]
        assert len(model_calls(mock_provider)) == 1
    else:
        with pytest.raises(openai.BadRequestError) as raised:
            client.chat.completions.create(model="gpt-4o-mini", messages=messages)
        request_id = raised.value.response.headers["helicone-id"]
        assert model_calls(mock_provider) == []
    inputs = sorted((call.json["input"] for call in moderation_calls(mock_provider)), key=len, reverse=True)
    assert inputs == [[parts[0], parts[1]], [parts[2]]]  # the text with the first image; the second alone
    facts = gw.record(request_id).facts["moderation"]
    assert isinstance(facts, dict)
    assert (facts["flagged"], facts["images"], facts["calls"]) == (flagged_index is not None, 2, 2)


# -- other body formats ---------------------------------------------------------------------------------


@pytest.mark.parametrize("route", ROUTES)
def test_the_responses_api_is_screened(gw: Gateway, mock_provider: MockProvider, route: str) -> None:
    client = sdk(gw, route)
    turn: Any = [
        {
            "role": "user",
            "content": [
                {"type": "input_text", "text": FLAGGED},
                {"type": "input_image", "image_url": CLEAN_IMAGE, "detail": "auto"},
            ],
        }
    ]
    with pytest.raises(openai.BadRequestError) as raised:
        client.responses.create(model=model(route), input=turn, instructions="Be brief")
    _, body, request_id = error_of(raised)
    assert body == flagged_body(gw, request_id)
    (call,) = mock_provider.requests
    assert call.json["input"] == [
        {"type": "text", "text": FLAGGED},
        {"type": "image_url", "image_url": {"url": CLEAN_IMAGE}},
    ]

    mock_provider.clear()
    response = client.responses.create(model=model(route), input="Say hello")
    assert response.output_text
    moderation, upstream = mock_provider.requests
    assert (moderation.path, upstream.path) == (MODERATION, "/v1/responses")
    assert moderation.json["input"] == [{"type": "text", "text": "Say hello"}]


def test_an_anthropic_route_is_screened_with_the_deployments_openai_account(
    gw: Gateway, mock_provider: MockProvider
) -> None:
    """The caller's key there is Anthropic's: it is never sent to OpenAI; the deployment's OpenAI key is used."""
    client = gw.anthropic(default_headers={HEADER: "true"})
    with pytest.raises(anthropic.BadRequestError) as raised:
        client.messages.create(
            model="claude-sonnet-4-6", max_tokens=64, messages=[{"role": "user", "content": FLAGGED}]
        )
    response = raised.value.response
    assert response.json() == flagged_body(gw, response.headers["helicone-id"])
    (call,) = mock_provider.requests
    assert call.header("authorization") == f"Bearer {GATEWAY_KEY}"
    assert "sk-ant-provider-secret" not in str(call.headers)

    mock_provider.clear()
    message = client.messages.create(
        model="claude-sonnet-4-6", max_tokens=64, messages=[{"role": "user", "content": "Hi"}]
    )
    assert message.content
    moderation, chat = mock_provider.requests
    assert (moderation.path, chat.path) == (MODERATION, "/v1/messages")
    # The caller's Anthropic key still goes to Anthropic (newer SDKs send it as a bearer token).
    assert "sk-ant-provider-secret" in (
        chat.header("x-api-key"),
        chat.header("authorization", "").removeprefix("Bearer "),
    )


# -- nothing to screen, no key -------------------------------------------------------------------------


@pytest.mark.parametrize("route", ROUTES)
def test_a_request_without_a_user_message_goes_on_and_says_so(
    gw: Gateway, mock_provider: MockProvider, route: str
) -> None:
    raw = sdk(gw, route).chat.completions.with_raw_response.create(
        model=model(route), messages=[{"role": "system", "content": "Introduce yourself."}]
    )
    assert raw.status_code == 200
    assert moderation_calls(mock_provider) == [] and len(model_calls(mock_provider)) == 1
    facts = gw.record(raw.headers["helicone-id"]).facts["moderation"]
    assert facts == {"screened": False, "reason": "no user message to screen"}


def test_without_an_openai_key_the_answer_says_what_to_configure(
    step_gateway: StartGateway, mock_provider: MockProvider
) -> None:
    keyless = step_gateway(provider_env={"ANTHROPIC_API_KEY": "sk-ant-gateway"})
    # The AI gateway, routed to Anthropic: heliport has no OpenAI account to screen with.
    with pytest.raises(openai.BadRequestError) as raised:
        sdk(keyless, "ai-gateway").chat.completions.create(
            model="claude-sonnet-4-6/anthropic", messages=[{"role": "user", "content": "Hi"}]
        )
    status, body, request_id = error_of(raised)
    assert status == 400
    assert body["error"]["code"] == "moderation_not_configured"
    assert body["error"]["param"] == HEADER
    assert "OPENAI_API_KEY" in body["error"]["message"]
    record = keyless.record(request_id)
    assert record.status == 400 and record.errors == [body["error"]["message"]]

    # The proxy's Anthropic route: the caller's key is Anthropic's, and there is no account either.
    with pytest.raises(anthropic.BadRequestError) as caught:
        keyless.anthropic(default_headers={HEADER: "true"}).messages.create(
            model="claude-sonnet-4-6", max_tokens=64, messages=[{"role": "user", "content": "Hi"}]
        )
    error = caught.value.response.json()["error"]
    assert error["code"] == "moderation_not_configured" and "OPENAI_API_KEY" in error["message"]
    assert "/v1/gateway/oai" in error["message"]
    assert mock_provider.requests == []

    # The proxy's OpenAI route needs no account: the caller's own key screens the prompt.
    raw = sdk(keyless, "proxy").chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}]
    )
    assert raw.status_code == 200
    assert moderation_calls(mock_provider)[0].header("authorization") == f"Bearer {CALLER_KEY}"


# -- the endpoint fails --------------------------------------------------------------------------------


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("upstream_status", [503, 500, 429])
def test_a_failing_moderation_endpoint_fails_closed(
    gw: Gateway, mock_provider: MockProvider, route: str, upstream_status: int
) -> None:
    with pytest.raises(openai.InternalServerError) as raised:
        sdk(gw, route).chat.completions.create(
            model=model(route), messages=[{"role": "user", "content": f"mock-moderation-status-{upstream_status}"}]
        )
    status, body, request_id = error_of(raised)
    assert status == 503
    assert body["error"]["code"] == "moderation_unavailable" and body["error"]["param"] == HEADER
    assert f"answered {upstream_status}" in body["error"]["message"]
    assert "HELIPORT_SAFETY_FAIL_OPEN" in body["error"]["message"]
    assert [r.path for r in mock_provider.requests] == [MODERATION]  # the model was not called
    record = gw.record(request_id)
    assert record.status == 503 and record.errors == [body["error"]["message"]]
    facts = record.facts["moderation"]
    assert isinstance(facts, dict) and facts["screened"] is False and f"answered {upstream_status}" in facts["error"]


@pytest.mark.parametrize("route", ROUTES)
def test_an_unreachable_moderation_endpoint_fails_closed(
    step_gateway: StartGateway, mock_provider: MockProvider, closed_origin: str, route: str
) -> None:
    """OpenAI's base is down; the model itself (Anthropic here) would answer."""
    down = step_gateway(
        upstream_overrides={"oai": closed_origin, "openai": closed_origin, "anthropic": mock_provider.url}
    )
    with pytest.raises((openai.APIStatusError, anthropic.APIStatusError)) as raised:
        call_claude(down, route)
    response = raised.value.response
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "moderation_unavailable" and "could not be reached" in error["message"]
    assert mock_provider.requests == []


@pytest.mark.parametrize("route", ROUTES)
def test_fail_open_forwards_when_the_endpoint_is_unreachable_and_records_why(
    step_gateway: StartGateway, mock_provider: MockProvider, closed_origin: str, route: str
) -> None:
    down = step_gateway(
        upstream_overrides={"oai": closed_origin, "openai": closed_origin, "anthropic": mock_provider.url},
        safety_fail_open=True,
    )
    request_id = call_claude(down, route)
    assert [r.path for r in mock_provider.requests] == ["/v1/messages"]
    record = down.record(request_id)
    assert record.status == 200
    (why,) = record.errors
    assert why.startswith(
        "moderation not applied (HELIPORT_SAFETY_FAIL_OPEN): OpenAI's moderation endpoint could not be reached"
    )
    facts = record.facts["moderation"]
    assert isinstance(facts, dict)
    assert (facts["screened"], facts["fail_open"]) == (False, True) and "could not be reached" in facts["error"]


def test_fail_open_forwards_when_the_endpoint_answers_5xx(
    step_gateway: StartGateway, mock_provider: MockProvider
) -> None:
    lenient = step_gateway(safety_fail_open=True)
    for route in ROUTES:
        mock_provider.clear()
        raw = sdk(lenient, route).chat.completions.with_raw_response.create(
            model=model(route), messages=[{"role": "user", "content": "mock-moderation-status-502"}]
        )
        assert raw.status_code == 200
        assert [r.path for r in mock_provider.requests] == [MODERATION, "/v1/chat/completions"]
        record = lenient.record(raw.headers["helicone-id"])
        assert record.errors == [
            "moderation not applied (HELIPORT_SAFETY_FAIL_OPEN): OpenAI's moderation endpoint answered 502 "
            "(server_error: Bad gateway (mock).)"
        ]
    # Fail-open is for a check that cannot run, not for a verdict: a flagged prompt is still refused.
    with pytest.raises(openai.BadRequestError):
        sdk(lenient, "proxy").chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": FLAGGED}]
        )


def call_claude(gateway: Gateway, route: str) -> str:
    """A clean prompt to an Anthropic model on ``route``; its Helicone-Id."""
    messages: Any = [{"role": "user", "content": "Hi"}]
    if route == "proxy":
        raw = gateway.anthropic(default_headers={HEADER: "true"}).messages.with_raw_response.create(
            model="claude-sonnet-4-6", max_tokens=64, messages=messages
        )
    else:
        raw = sdk(gateway, route).chat.completions.with_raw_response.create(  # type: ignore[assignment]
            model="claude-sonnet-4-6/anthropic", messages=messages
        )
    return raw.headers["helicone-id"]


def test_a_refused_caller_key_is_answered_as_such_without_the_key(gw: Gateway, mock_provider: MockProvider) -> None:
    bad_key = "sk-mock-status-401-callerkey"
    with pytest.raises(openai.AuthenticationError) as raised:
        sdk(gw, "proxy", api_key=bad_key).chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}]
        )
    status, body, request_id = error_of(raised)
    assert status == 401
    assert body["error"]["code"] == "moderation_refused"
    message = body["error"]["message"]
    assert "refused the moderation call" in message and "401" in message and "invalid_api_key" in message
    assert "Authorization" in message and bad_key not in message
    assert [r.path for r in mock_provider.requests] == [MODERATION]
    assert bad_key not in msgspec.json.encode(gw.record(request_id)).decode()


def test_a_refused_deployment_key_is_a_502_naming_the_setting(
    step_gateway: StartGateway, mock_provider: MockProvider
) -> None:
    broken = step_gateway(provider_env={"OPENAI_API_KEY": "sk-mock-status-403-deployment"})
    with pytest.raises(openai.APIStatusError) as raised:
        sdk(broken, "ai-gateway").chat.completions.create(
            model="gpt-4o-mini/openai", messages=[{"role": "user", "content": "Hi"}]
        )
    status, body, _ = error_of(raised)
    assert status == 502 and body["error"]["code"] == "moderation_refused"
    assert "OPENAI_API_KEY" in body["error"]["message"] and "403" in body["error"]["message"]
    assert "sk-mock-status-403-deployment" not in body["error"]["message"]
    assert [r.path for r in mock_provider.requests] == [MODERATION]


@pytest.mark.parametrize("route", ROUTES)
def test_input_the_endpoint_rejects_is_a_400_with_its_reason(
    gw: Gateway, mock_provider: MockProvider, route: str
) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        sdk(gw, route).chat.completions.create(
            model=model(route), messages=[{"role": "user", "content": "mock-moderation-status-400"}]
        )
    status, body, _ = error_of(raised)
    assert status == 400 and body["error"]["code"] == "moderation_rejected"
    assert "messages[0]" in body["error"]["message"] and "rejected by the mock provider" in body["error"]["message"]
    assert model_calls(mock_provider) == []


# -- the header ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("route", ROUTES)
def test_a_bad_header_value_is_a_400_naming_the_header(gw: Gateway, mock_provider: MockProvider, route: str) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        sdk(gw, route, headers={HEADER: "maybe"}).chat.completions.create(
            model=model(route), messages=[{"role": "user", "content": "Hi"}]
        )
    status, body, _ = error_of(raised)
    assert status == 400 and body["error"]["param"] == HEADER
    assert HEADER in body["error"]["message"] and "maybe" in body["error"]["message"]
    assert mock_provider.requests == []


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("value", [None, "false"])
def test_without_the_header_the_moderation_endpoint_is_never_called(
    gw: Gateway, mock_provider: MockProvider, route: str, value: str | None
) -> None:
    client = sdk(gw, route, headers={HEADER: value})
    raw = client.chat.completions.with_raw_response.create(
        model=model(route), messages=[{"role": "user", "content": FLAGGED}]
    )
    assert raw.status_code == 200
    assert [r.path for r in mock_provider.requests] == ["/v1/chat/completions"]
    assert "moderation" not in gw.record(raw.headers["helicone-id"]).facts


def test_the_link_follows_the_host_and_scheme_the_caller_reached(gw: Gateway, mock_provider: MockProvider) -> None:
    response = httpx.post(
        f"{gw.oai_base}/chat/completions",
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": FLAGGED}]},
        headers={
            "Helicone-Auth": f"Bearer {gw.key}",
            "Authorization": f"Bearer {CALLER_KEY}",
            HEADER: "true",
            "Host": "heliport.example.com",
            "X-Forwarded-Proto": "https",
        },
        timeout=10,
    )
    assert response.status_code == 400
    request_id = response.headers["helicone-id"]
    assert response.json()["error"]["details"] == (
        f"See your Helicone request page for more info: https://heliport.example.com/dashboard/#/requests/{request_id}"
    )


# -- the mock speaks OpenAI's wire format --------------------------------------------------------------


def test_the_mock_moderation_endpoint_answers_the_official_sdk(mock_provider: MockProvider) -> None:
    client = openai.OpenAI(base_url=f"{mock_provider.url}/v1", api_key="sk-test", max_retries=0)
    verdict = client.moderations.create(
        model="omni-moderation-latest",
        input=[{"type": "text", "text": "mock-flag:hate"}, {"type": "image_url", "image_url": {"url": FLAGGED_IMAGE}}],
    )
    assert verdict.id.startswith("modr-") and verdict.model == "omni-moderation-latest"
    (result,) = verdict.results
    assert result.flagged and result.categories.hate and result.categories.violence and not result.categories.sexual
    assert result.category_scores.hate == 0.9731
    assert result.category_applied_input_types.violence == ["text", "image"]
    assert result.category_applied_input_types.hate == ["text"]

    several = client.moderations.create(input=["fine", "mock-flag:self-harm/intent"])
    assert [r.flagged for r in several.results] == [False, True]
    assert several.results[1].categories.self_harm_intent

    image_only = client.moderations.create(input=[{"type": "image_url", "image_url": {"url": CLEAN_IMAGE}}])
    (clean,) = image_only.results
    assert not clean.flagged and clean.category_scores.hate == 0.0  # a text-only category, no text
    assert clean.category_applied_input_types.hate == []

    with pytest.raises(openai.BadRequestError):
        client.moderations.create(input=[{"type": "audio", "audio": "x"}])  # type: ignore[list-item]
    with pytest.raises(openai.RateLimitError):
        client.moderations.create(input="mock-moderation-status-429")
