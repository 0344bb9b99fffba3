"""helicone-helpers' ``HeliconeManualLogger`` sending a text response (``providerResponse.textBody``).

Given a string, ``send_log`` posts ``"json": {}`` beside ``"textBody": <the string>``. As in Helicone,
the text is then the response body, and its usage is read as for any body: a JSON document or an SSE
stream. ``HeliconeLogBuilder`` sends JSON lines (one chunk per line), which are read as a stream.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import pytest
from helicone_helpers import HeliconeManualLogger

from heliport.logs.consumer import build_row
from heliport.logs.row import RequestRow
from tests.harness import Gateway

MODEL = "gpt-4o-mini-2024-07-18"
COMPLETION = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": MODEL,
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello!"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
}
CHUNKS: list[dict[str, Any]] = [
    {
        "id": "chatcmpl-2",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": MODEL,
        "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hel"}, "finish_reason": None}],
    },
    {
        "id": "chatcmpl-2",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": MODEL,
        "choices": [{"index": 0, "delta": {"content": "lo!"}, "finish_reason": "stop"}],
    },
    {
        "id": "chatcmpl-2",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": MODEL,
        "choices": [],
        "usage": {"prompt_tokens": 13, "completion_tokens": 2, "total_tokens": 15},
    },
]
SSE = "".join(f"data: {json.dumps(chunk)}\n\n" for chunk in CHUNKS) + "data: [DONE]\n\n"
REQUEST = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello"}]}


def _row(gateway: Gateway, request_id: str) -> RequestRow:
    row, _ = build_row(gateway.record(request_id))
    return row


def _send(gateway: Gateway, text: str, provider: str | None) -> str:
    request_id = str(uuid.uuid4())
    logger = HeliconeManualLogger(api_key=gateway.key, logging_endpoint=gateway.url)
    now = time.time()
    options = {"start_time": now - 1, "end_time": now, "additional_headers": {"Helicone-Request-Id": request_id}}
    logger.send_log(provider, REQUEST, text, options)  # type: ignore[arg-type]  # the helper's TypedDict
    return request_id


@pytest.mark.parametrize("provider", [None, "openai"])  # /custom/v1/log and /oai/v1/log
@pytest.mark.parametrize(
    ("text", "tokens"),
    [(json.dumps(COMPLETION), (11, 7, 18)), (SSE, (13, 2, 15))],
    ids=["json-completion", "sse-stream"],
)
def test_a_text_response_is_read_for_usage(
    gateway: Gateway, provider: str | None, text: str, tokens: tuple[int, int, int]
) -> None:
    request_id = _send(gateway, text, provider)
    assert gateway.record(request_id).response_body == text  # the text is the body, not the helper's "{}"
    row = _row(gateway, request_id)
    assert (row.prompt_tokens, row.completion_tokens, row.total_tokens) == tokens
    assert row.usage_source == "manual" and row.model == MODEL
    assert row.response_preview == "Hello!"


def test_plain_text_is_kept_and_has_no_usage(gateway: Gateway) -> None:
    request_id = _send(gateway, "Why did the chicken cross the road?", None)
    assert gateway.record(request_id).response_body == "Why did the chicken cross the road?"
    row = _row(gateway, request_id)
    assert row.prompt_tokens is None and row.usage_source == "absent"


def test_the_log_builder_stream_of_chunks_is_read_for_usage(gateway: Gateway) -> None:
    """``log_builder().add_chunk(dict)`` sends the chunks as JSON lines."""
    request_id = str(uuid.uuid4())
    logger = HeliconeManualLogger(api_key=gateway.key, logging_endpoint=gateway.url)
    builder = logger.log_builder(REQUEST, {"Helicone-Request-Id": request_id})
    for chunk in CHUNKS:
        builder.add_chunk(chunk)
    asyncio.run(builder.send_log())
    row = _row(gateway, request_id)
    assert (row.prompt_tokens, row.completion_tokens, row.total_tokens) == (13, 2, 15)
    assert row.model == MODEL
