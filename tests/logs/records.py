"""Realistic LogRecords for consumer tests: bodies in the providers' real wire formats."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec

from heliport.logs.record import LogRecord
from heliport.logs.row import RequestRow

ORG = str(uuid.uuid4())

CHAT_REQUEST = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "What is the capital of France?"}]}
CHAT_RESPONSE = {
    "id": "chatcmpl-abc",
    "object": "chat.completion",
    "created": 1763790000,
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Paris is the capital of France."},
            "finish_reason": "stop",
        }
    ],
    "usage": {
        "prompt_tokens": 1200,
        "completion_tokens": 300,
        "total_tokens": 1500,
        "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    },
}


def chat_record(**overrides: Any) -> LogRecord:
    fields: dict[str, Any] = {
        "request_id": str(uuid.uuid4()),
        "org_id": ORG,
        "key_id": str(uuid.uuid4()),
        "started_at": datetime.now(UTC),
        "ttfb_ms": 180.5,
        "duration_ms": 420.25,
        "method": "POST",
        "path": "/v1/gateway/oai/v1/chat/completions",
        "provider": "OPENAI",
        "target_url": "https://api.openai.com/v1/chat/completions",
        "status": 200,
        "request_model": "gpt-4o-mini",
        "user_id": "user-7",
        "properties": {"environment": "test", "feature": "géographie"},
        "session_id": "sess-1",
        "session_path": "/trip/plan",
        "request_body": msgspec.json.encode(CHAT_REQUEST).decode(),
        "response_body": msgspec.json.encode(CHAT_RESPONSE).decode(),
    }
    fields.update(overrides)
    return LogRecord(**fields)


def chat_row(org_id: str, **overrides: Any) -> RequestRow:
    """A stored row of a plain OpenAI chat call of ``org_id``, now, with a new id."""
    fields: dict[str, Any] = {
        "request_id": str(uuid.uuid4()),
        "org_id": org_id,
        "key_id": "k",
        "created_at": datetime.now(UTC),
        "status": 200,
        "provider": "OPENAI",
        "target_url": "https://api.openai.com/v1/chat/completions",
        "path": "/v1/chat/completions",
        "model": "gpt-4o-mini",
    }
    return RequestRow(**(fields | overrides))
