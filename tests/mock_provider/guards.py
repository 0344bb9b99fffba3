"""Safety classifiers as providers serve them: Groq's Prompt Guard 2 and Llama Guard 4, Bedrock's ApplyGuardrail.

Verdicts are deterministic, driven by markers in the text (case-insensitive), so tests can say
what a classifier will find:

* a prompt attack: ``ignore previous instructions``, ``ignore all previous instructions``,
  ``developer mode``, ``jailbreak`` -> Prompt Guard scores ``0.9993896484375``, the guardrail's
  ``PROMPT_ATTACK`` filter fires (``HIGH``); anything else scores ``0.0009918212890625``;
* ``mock-guard-score-<x>``: Prompt Guard scores exactly ``x`` (thresholds);
* a hazard: ``mock-unsafe-S<n>`` (any of S1-S14, repeatable) -> Llama Guard answers
  ``unsafe\\nS<n>,...``; ``bomb`` is S9 (Indiscriminate Weapons). The guardrail maps them onto its
  content filters (:data:`_FILTER_OF`), ``bomb`` is ``VIOLENCE``;
* ``mock-guard-status-<code>``: the classifier answers that error status in its provider's error shape
  (Groq's is OpenAI's; Bedrock's ``{"message"}`` with ``x-amzn-ErrorType``);
* ``mock-guard-garbage``: the classifier answers 200 with something that is not a verdict;
* ``mock-guard-delay-ms-<n>``: the classifier answers after ``n`` ms (concurrency, timeouts).

Chat answers are Groq's chat completion shape (``x_groq``, Groq's usage timings). The guardrail
checks that the request is SigV4-signed for service ``bedrock`` (403 like AWS otherwise) and
validates the body like ``ApplyGuardrail`` does, then answers with ``action``, ``outputs``,
``assessments`` (content filters, invocation metrics) and ``usage``.
"""

from __future__ import annotations

import asyncio
import math
import os
import re
import time
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from .bedrock import bedrock_error, bedrock_headers
from .fixtures import encode

JSON_TYPE = "application/json"
ATTACK_SCORE = "0.9993896484375"
BENIGN_SCORE = "0.0009918212890625"
_ATTACKS = ("ignore previous instructions", "ignore all previous instructions", "developer mode", "jailbreak")
_SCORE = re.compile(r"mock-guard-score-([01](?:\.\d+)?)", re.IGNORECASE)
_HAZARD = re.compile(r"mock-unsafe-(S\d{1,2})\b", re.IGNORECASE)
_STATUS = re.compile(r"mock-guard-status-(\d{3})", re.IGNORECASE)
_GARBAGE = "mock-guard-garbage"
_DELAY = re.compile(r"mock-guard-delay-ms-(\d+)", re.IGNORECASE)
#: The id is one segment on the wire; an ARN's "/" arrives decoded in the path, hence ".+".
_GUARDRAIL_PATH = re.compile(r"/guardrail/(.+)/version/([^/]+)/apply")
#: Llama Guard hazard -> the Bedrock content filter that covers it.
_FILTER_OF = {
    "S1": "VIOLENCE",
    "S2": "MISCONDUCT",
    "S3": "SEXUAL",
    "S4": "SEXUAL",
    "S9": "VIOLENCE",
    "S10": "HATE",
    "S11": "VIOLENCE",
    "S12": "SEXUAL",
}
#: Guardrail ids the mock says do not exist.
MISSING_GUARDRAIL = "missingguardrail"


def _attack(text: str) -> bool:
    lowered = text.lower()
    return any(marker in lowered for marker in _ATTACKS)


def _hazards(text: str) -> list[str]:
    codes = [code.upper() for code in _HAZARD.findall(text)]
    if "bomb" in text.lower():
        codes.append("S9")
    return list(dict.fromkeys(codes))


class _Delayed(Response):
    """A response sent ``delay`` seconds late: the mock's handlers build responses synchronously."""

    def __init__(self, response: Response, delay: float) -> None:
        super().__init__(response.body, status_code=response.status_code, media_type=response.media_type)
        self.raw_headers = response.raw_headers
        self._delay = delay

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await asyncio.sleep(self._delay)
        await super().__call__(scope, receive, send)


def _paced(response: Response, text: str) -> Response:
    delay = _DELAY.search(text)
    return _Delayed(response, int(delay.group(1)) / 1000) if delay else response


def _chat_text(payload: Mapping[str, Any]) -> str:
    """Every text of every message of a chat request (strings or text parts)."""
    texts: list[str] = []
    messages = payload.get("messages")
    for message in messages if isinstance(messages, list) else ():
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts.extend(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return "\n".join(texts)


# -- Groq chat completions: Prompt Guard 2, Llama Guard 4 ------------------------------------------


def classifier_reply(payload: Mapping[str, Any]) -> Response | None:
    """The verdict of a classifier model in Groq's chat completion shape; None for any other model."""
    model = str(payload.get("model", ""))
    lowered = model.lower()
    if "prompt-guard" not in lowered and "llama-guard" not in lowered:
        return None
    text = _chat_text(payload)
    forced = _STATUS.search(text)
    if forced is not None:
        from .app import openai_error  # the app imports this module: late, to avoid the cycle

        return _paced(openai_error(int(forced.group(1))), text)
    if _GARBAGE in text.lower():
        content = "I'm sorry, I can't help with classifying that."
    elif "prompt-guard" in lowered:
        score = _SCORE.search(text)
        content = score.group(1) if score else ATTACK_SCORE if _attack(text) else BENIGN_SCORE
    else:
        hazards = _hazards(text)
        content = f"unsafe\n{','.join(hazards)}" if hazards else "safe"
    answer = Response(encode(_groq_completion(model, content, text)), headers=_groq_headers(), media_type=JSON_TYPE)
    return _paced(answer, text)


def _groq_completion(model: str, content: str, text: str) -> dict[str, Any]:
    prompt_tokens = max(1, len(text) // 4) + 5
    completion_tokens = 1 if content[:1].isdigit() else len(content.split()) + 1
    return {
        "id": f"chatcmpl-{uuid.uuid4()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "queue_time": 0.01,
            "prompt_tokens": prompt_tokens,
            "prompt_time": 0.002,
            "completion_tokens": completion_tokens,
            "completion_time": 0.001,
            "total_tokens": prompt_tokens + completion_tokens,
            "total_time": 0.003,
        },
        "usage_breakdown": None,
        "system_fingerprint": "fp_mockguard",
        "x_groq": {"id": f"req_{os.urandom(13).hex()}"},
        "service_tier": "on_demand",
    }


def _groq_headers() -> dict[str, str]:
    return {"x-request-id": f"req_{os.urandom(13).hex()}", "x-groq-region": "mock"}


# -- Bedrock ApplyGuardrail -------------------------------------------------------------------------


def guardrail_route(path: str) -> tuple[str, str] | None:
    """(guardrail id, version) of an ``ApplyGuardrail`` path; the id may be a percent-encoded ARN."""
    match = _GUARDRAIL_PATH.fullmatch(path)
    if match is None:
        return None
    return unquote(match.group(1)), unquote(match.group(2))


async def apply_guardrail(route: tuple[str, str], payload: Mapping[str, Any], headers: Mapping[str, str]) -> Response:
    """``ApplyGuardrail``'s answer for the guardrail at ``route``, or its error."""
    authorization = headers.get("authorization", "")
    if not (
        authorization.startswith("AWS4-HMAC-SHA256 Credential=")
        and "/bedrock/aws4_request" in authorization
        and "Signature=" in authorization
        and headers.get("x-amz-date")
    ):
        response = bedrock_error(403, "Missing Authentication Token")
        response.headers["x-amzn-ErrorType"] = "MissingAuthenticationTokenException:"
        return response
    guardrail_id, version = route
    if not re.fullmatch(r"[1-9][0-9]{0,7}|DRAFT", version):
        return bedrock_error(400, f"1 validation error detected: Value '{version}' at 'guardrailVersion' failed.")
    if guardrail_id.rsplit("/", 1)[-1] == MISSING_GUARDRAIL:
        return bedrock_error(404, "The guardrail identifier or version is not valid.")
    source, content = payload.get("source"), payload.get("content")
    if source not in ("INPUT", "OUTPUT") or not isinstance(content, list) or not content:
        return bedrock_error(400, "1 validation error detected: 'source' and a non-empty 'content' are required.")
    texts: list[str] = []
    images = 0
    for block in content:
        if (
            isinstance(block, dict)
            and isinstance(block.get("text"), dict)
            and isinstance(block["text"].get("text"), str)
        ):
            texts.append(block["text"]["text"])
        elif isinstance(block, dict) and isinstance(block.get("image"), dict):
            images += 1
        else:
            return bedrock_error(400, "1 validation error detected: a content block must be text or image.")
    text = "\n".join(texts)
    delay = _DELAY.search(text)
    if delay is not None:
        await asyncio.sleep(int(delay.group(1)) / 1000)
    forced = _STATUS.search(text)
    if forced is not None:
        return bedrock_error(int(forced.group(1)))
    if _GARBAGE in text.lower():
        return Response(encode({"unexpected": True}), headers=bedrock_headers(), media_type=JSON_TYPE)
    return Response(encode(_guardrail_answer(text, images)), headers=bedrock_headers(), media_type=JSON_TYPE)


def _guardrail_answer(text: str, images: int) -> dict[str, Any]:
    filters: list[dict[str, Any]] = []
    if _attack(text):
        filters.append(_filter("PROMPT_ATTACK"))
    for kind in dict.fromkeys(_FILTER_OF[code] for code in _hazards(text) if code in _FILTER_OF):
        filters.append(_filter(kind))
    units = max(1, math.ceil(len(text) / 1000))
    usage = {
        "topicPolicyUnits": 0,
        "contentPolicyUnits": units,
        "wordPolicyUnits": 0,
        "sensitiveInformationPolicyUnits": 0,
        "sensitiveInformationPolicyFreeUnits": 0,
        "contextualGroundingPolicyUnits": 0,
        "contentPolicyImageUnits": images,
    }
    coverage = {
        "textCharacters": {"guarded": len(text), "total": len(text)},
        **({"images": {"guarded": images, "total": images}} if images else {}),
    }
    assessment: dict[str, Any] = {
        "invocationMetrics": {"guardrailProcessingLatency": 87, "usage": usage, "guardrailCoverage": coverage}
    }
    if filters:
        assessment["contentPolicy"] = {"filters": filters}
    intervened = bool(filters)
    return {
        "usage": usage,
        "action": "GUARDRAIL_INTERVENED" if intervened else "NONE",
        "actionReason": "Guardrail blocked." if intervened else "No action.",
        "outputs": [{"text": "Sorry, the model cannot answer this question."}] if intervened else [],
        "assessments": [assessment],
        "guardrailCoverage": coverage,
    }


def _filter(kind: str) -> dict[str, Any]:
    return {"type": kind, "confidence": "HIGH", "filterStrength": "HIGH", "action": "BLOCKED", "detected": True}
