"""One upstream request per routing candidate, and how to read its answer back as OpenAI chat.

Four families: OpenAI-compatible providers get the chat body as is, minus the parameters each one
rejects (Gemini's image models excepted: they are called natively, :mod:`.images`); Azure OpenAI
the same body at its deployment URL with an ``api-key`` header; Anthropic and
Bedrock get a translated body and their answers are translated back (:mod:`.anthropic`,
:mod:`.bedrock`; Bedrock's URL, signing and stream framing are :mod:`.bedrock_wire`). Vertex AI
sends Claude as Anthropic Messages and Gemini to its OpenAI-compatible endpoint (:mod:`.vertex`). A
:class:`Prepared` says which: ``to_chat``/``chunks`` are ``None`` when the answer already is OpenAI
chat and can be relayed byte for byte.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote

import msgspec

from heliport.errors import json_depth_exceeds
from heliport.gateway.chat import JsonObj, ProviderStreamError
from heliport.gateway.providers import Account
from heliport.gateway.routing import Candidate
from heliport.gateway.sse import SseDecoder
from heliport.proxy.transport import UpstreamRequest

if TYPE_CHECKING:
    from botocore.credentials import Credentials

__all__ = ["ChunkReader", "Prepared", "chat_chunks", "error_message", "prepare", "prepare_responses"]

_decode = msgspec.json.decode
_encode = msgspec.json.encode
#: Deeper provider error bodies are shown as text: real ones nest a few levels (``{"error": {...}}``).
_ERROR_BODY_DEPTH = 32

#: OpenAI parameters each OpenAI-compatible provider rejects (or answers 400/422 to); dropped before
#: sending. OpenAI-only bookkeeping (store, metadata, service_tier, prompt_cache_key, ...) never
#: leaves for another provider.
_OPENAI_ONLY = frozenset(
    {"store", "metadata", "service_tier", "prompt_cache_key", "safety_identifier", "prediction", "modalities", "audio"}
)
#: Helicone's gateway-only request fields: rendered natively for the providers that honour them
#: (:mod:`.context_editing`, :mod:`.images`), refused with a 400 for the others, never forwarded as is.
_GATEWAY_ONLY = frozenset({"context_editing", "image_generation"})
_UNSUPPORTED: dict[str, frozenset[str]] = {
    "openai": frozenset(),
    "openrouter": frozenset({"store", "service_tier", "prompt_cache_key", "safety_identifier"}),
    "google": _OPENAI_ONLY
    | {"logit_bias", "logprobs", "top_logprobs", "parallel_tool_calls", "user", "frequency_penalty"},
    "xai": _OPENAI_ONLY | {"logit_bias"},
    "groq": _OPENAI_ONLY | {"logit_bias", "logprobs", "top_logprobs"},
    "deepseek": _OPENAI_ONLY | {"logit_bias", "parallel_tool_calls", "user"},
    "mistral": _OPENAI_ONLY | {"logit_bias", "logprobs", "top_logprobs", "user", "stream_options"},
    "azure": frozenset({"prompt_cache_key", "safety_identifier"}),
    # The OpenAI-compatible hosts, each from its own API reference / compatibility page.
    "together": _OPENAI_ONLY | {"parallel_tool_calls"},
    "fireworks": _OPENAI_ONLY | {"logit_bias"},
    # Cerebras answers 400 to these (its OpenAI-compatibility page).
    "cerebras": _OPENAI_ONLY | {"frequency_penalty", "presence_penalty", "logit_bias", "parallel_tool_calls"},
    "perplexity": _OPENAI_ONLY | {"logit_bias", "logprobs", "top_logprobs", "n", "parallel_tool_calls", "user"},
    "deepinfra": _OPENAI_ONLY | {"logit_bias", "parallel_tool_calls"},
    "nebius": _OPENAI_ONLY | {"parallel_tool_calls"},
    "novita": _OPENAI_ONLY | {"parallel_tool_calls"},
    "hyperbolic": _OPENAI_ONLY | {"logit_bias", "parallel_tool_calls"},
    "nvidia": _OPENAI_ONLY | {"logit_bias", "parallel_tool_calls", "n", "user"},
    "llama": _OPENAI_ONLY
    | {"logit_bias", "logprobs", "top_logprobs", "n", "parallel_tool_calls", "user", "frequency_penalty", "seed"},
}
#: Providers that know OpenAI's newer ``max_completion_tokens``. Every other OpenAI-compatible host
#: documents ``max_tokens`` and not all of them know the newer name, so they get ``max_tokens``: a new
#: host needs only its ``_UNSUPPORTED`` entry.
_TAKES_MAX_COMPLETION_TOKENS = frozenset({"openai", "azure", "openrouter", "xai"})
_MAX_TOKENS_ONLY = frozenset(_UNSUPPORTED) - _TAKES_MAX_COMPLETION_TOKENS
#: Headers that are the caller's business with heliport, or describe the hop, never the provider's.
_NOT_FORWARDED = frozenset(
    {
        "host",
        "content-length",
        "content-type",
        "accept-encoding",
        "connection",
        "authorization",
        "api-key",
        "x-api-key",
        "cookie",
        "openai-organization",
        "openai-project",
    }
)

_ANTHROPIC_VERSION = "2023-06-01"


class ChunkReader(Protocol):
    """Native stream bytes in, OpenAI ``chat.completion.chunk`` objects out."""

    def feed(self, data: bytes) -> list[JsonObj]: ...


@dataclass(frozen=True, slots=True)
class Prepared:
    request: UpstreamRequest
    #: Native JSON answer -> OpenAI chat completion; None when the answer is OpenAI chat already.
    to_chat: Callable[[bytes], JsonObj] | None
    #: A fresh reader of the native stream; None when the stream is OpenAI chat already.
    chunks: Callable[[], ChunkReader] | None


def _headers(forward: Sequence[tuple[str, str]], own: dict[str, str]) -> list[tuple[str, str]]:
    kept = [(n, v) for n, v in forward if n not in _NOT_FORWARDED and n not in own]
    return [*kept, ("content-type", "application/json"), *own.items()]


def _openai_body(chat: JsonObj, candidate: Candidate, *, stream: bool) -> JsonObj:
    dropped = _UNSUPPORTED.get(candidate.provider, _OPENAI_ONLY)
    body = {k: v for k, v in chat.items() if k not in dropped and k not in _GATEWAY_ONLY}
    body["model"] = candidate.provider_model
    if candidate.provider in _MAX_TOKENS_ONLY and "max_completion_tokens" in body:
        body.setdefault("max_tokens", body.pop("max_completion_tokens"))
    if stream and "stream_options" not in _UNSUPPORTED.get(candidate.provider, frozenset()):
        # The log needs the usage chunk whether or not the caller asked for it (as Helicone's gateway does).
        options = body.get("stream_options")
        body["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
    return body


def prepare(
    account: Account,
    candidate: Candidate,
    chat: JsonObj,
    *,
    stream: bool,
    forward: Sequence[tuple[str, str]],
    credentials: Credentials | None = None,
    access_token: str | None = None,
) -> Prepared:
    """The request for ``candidate`` (raises InvalidBodyError when the body cannot be translated)."""
    created = int(time.time())
    if account.family in ("openai", "azure"):
        from heliport.gateway.context_editing import refuse_context_editing
        from heliport.gateway.images import is_image_model, refuse_image_generation

        refuse_context_editing(chat, candidate.provider)
        if account.provider == "google" and is_image_model(candidate.provider_model):
            return _gemini_image(account, candidate, chat, stream=stream, forward=forward, created=created)
        refuse_image_generation(chat, candidate.provider, candidate.provider_model)
    if account.family == "openai":
        body = _encode(_openai_body(chat, candidate, stream=stream))
        headers = _headers(forward, {"authorization": f"Bearer {account.api_key}"})
        return Prepared(UpstreamRequest("POST", account.base_url + account.chat_path, headers, body), None, None)
    if account.family == "azure":
        deployment = quote(candidate.deployment or candidate.provider_model, safe="")
        url = f"{account.base_url}/openai/deployments/{deployment}/chat/completions?api-version={account.api_version}"
        payload = _openai_body(chat, candidate, stream=stream)
        body = _encode(payload)
        headers = _headers(forward, {"api-key": account.api_key or ""})
        return Prepared(UpstreamRequest("POST", url, headers, body), None, None)
    if account.family == "anthropic":
        from heliport.gateway import anthropic

        native = anthropic.chat_to_messages(chat, model=candidate.provider_model)
        native["stream"] = stream
        from heliport.gateway.context_editing import merge_beta_header, required_betas

        own = {"x-api-key": account.api_key or "", "anthropic-version": _ANTHROPIC_VERSION}
        betas = required_betas(native)
        if betas:
            # Context editing is an Anthropic beta; the caller's own beta flags are kept beside it.
            caller = ",".join(v for n, v in forward if n == "anthropic-beta") or None
            own["anthropic-beta"] = merge_beta_header(caller, betas)
        headers = _headers(forward, own)
        request = UpstreamRequest("POST", account.base_url + account.chat_path, headers, _encode(native))
        model = candidate.provider_model
        return Prepared(
            request,
            lambda raw: anthropic.messages_to_chat(_decode(raw), model=model, created=created),
            lambda: _AnthropicReader(model, created),
        )
    if account.family == "vertex":
        return _vertex(account, candidate, chat, stream=stream, forward=forward, token=access_token or "")
    from heliport.gateway import bedrock, bedrock_wire

    model_id = candidate.deployment or candidate.provider_model
    native = bedrock.chat_to_converse(chat, model_id=model_id)
    url = bedrock_wire.converse_url(account.region or "", model_id, stream=stream, endpoint=account.base_url or None)
    body = _encode(native)
    signed = bedrock_wire.sign(
        "POST", url, {"content-type": "application/json"}, body, region=account.region or "", credentials=credentials
    )
    completion_id = f"chatcmpl-{int(time.time() * 1000)}"
    return Prepared(
        UpstreamRequest("POST", url, list(signed.items()), body),
        lambda raw: bedrock.converse_to_chat(
            _decode(raw), model=model_id, created=created, completion_id=completion_id
        ),
        lambda: _BedrockReader(model_id, created, completion_id),
    )


def _gemini_image(
    account: Account,
    candidate: Candidate,
    chat: JsonObj,
    *,
    stream: bool,
    forward: Sequence[tuple[str, str]],
    created: int,
) -> Prepared:
    """A Gemini image model, called natively: its OpenAI-compatible endpoint returns no images."""
    from heliport.gateway import images

    model = candidate.provider_model
    url = images.generate_content_url(account.base_url, quote(model, safe=""), stream=stream)
    headers = _headers(forward, {"x-goog-api-key": account.api_key or ""})
    body = _encode(images.chat_to_generate_content(chat))
    completion_id = f"chatcmpl-{int(time.time() * 1000)}"
    return Prepared(
        UpstreamRequest("POST", url, headers, body),
        lambda raw: images.generate_content_to_chat(
            _decode(raw), model=model, created=created, completion_id=completion_id
        ),
        lambda: _GeminiReader(model, created, completion_id),
    )


def _vertex(
    account: Account,
    candidate: Candidate,
    chat: JsonObj,
    *,
    stream: bool,
    forward: Sequence[tuple[str, str]],
    token: str,
) -> Prepared:
    """Vertex AI with the service account's access token: Claude as Anthropic Messages at rawPredict
    (translated both ways), other publishers at the OpenAI-compatible endpoint (relayed as is)."""
    import msgspec.structs

    from heliport.gateway import anthropic, vertex

    target = vertex.target(
        candidate.deployment or candidate.provider_model,
        project=account.project or "",
        location=account.region,
        override=account.base_url or None,
        stream=stream,
    )
    # Vertex takes Anthropic's beta flags only in the body (anthropic_beta), not as a header.
    headers = _headers([(n, v) for n, v in forward if n != "anthropic-beta"], {"authorization": f"Bearer {token}"})
    if target.publisher == "anthropic":
        caller_betas = ",".join(v for n, v in forward if n == "anthropic-beta") or None
        native = vertex.claude_body(chat, target.model, stream=stream, caller_betas=caller_betas)
        model, created = target.model, int(time.time())
        return Prepared(
            UpstreamRequest("POST", target.url, headers, _encode(native)),
            lambda raw: anthropic.messages_to_chat(_decode(raw), model=model, created=created),
            lambda: _AnthropicReader(model, created),
        )
    from heliport.gateway.context_editing import refuse_context_editing
    from heliport.gateway.images import refuse_image_generation

    refuse_context_editing(chat, candidate.provider)
    refuse_image_generation(chat, candidate.provider, candidate.provider_model)
    # The OpenAI-compatible endpoint takes what Gemini's own one takes: google's parameter filter.
    wire = msgspec.structs.replace(candidate, provider="google", provider_model=target.model)
    body = _encode(_openai_body(chat, wire, stream=stream))
    return Prepared(UpstreamRequest("POST", target.url, headers, body), None, None)


def prepare_responses(
    account: Account, candidate: Candidate, request: JsonObj, *, forward: Sequence[tuple[str, str]]
) -> UpstreamRequest:
    """A Responses request to OpenAI itself: passed through with the provider's model id (Helicone's
    gateway-only fields are refused: OpenAI cannot honour them and would reject them as unknown)."""
    from heliport.gateway.context_editing import refuse_context_editing
    from heliport.gateway.images import refuse_image_generation

    refuse_context_editing(request, candidate.provider)
    refuse_image_generation(request, candidate.provider, candidate.provider_model)
    body = {k: v for k, v in request.items() if k not in _GATEWAY_ONLY}
    body["model"] = candidate.provider_model
    headers = _headers(forward, {"authorization": f"Bearer {account.api_key}"})
    return UpstreamRequest("POST", account.base_url + "/v1/responses", headers, _encode(body))


def _readable(feed: Callable[[Any, bytes], list[JsonObj]]) -> Callable[[Any, bytes], list[JsonObj]]:
    """A provider stream heliport cannot parse is the provider's failure (a 502 event), never a crash."""

    def guarded(self: Any, data: bytes) -> list[JsonObj]:
        try:
            return feed(self, data)
        except ProviderStreamError:
            raise
        except Exception as exc:
            raise ProviderStreamError(502, f"unreadable stream: {type(exc).__name__}: {exc}"[:300]) from exc

    return guarded


class _ChatReader:
    """An OpenAI-compatible chat stream, decoded (needed when it is translated to Responses)."""

    def __init__(self) -> None:
        self._sse = SseDecoder()

    @_readable
    def feed(self, data: bytes) -> list[JsonObj]:
        out: list[JsonObj] = []
        for _, payload in self._sse.feed(data):
            if payload.strip() == "[DONE]":
                continue
            parsed = _decode(payload)
            if isinstance(parsed, dict):
                if isinstance(parsed.get("error"), dict):
                    error = parsed["error"]
                    raise ProviderStreamError(500, str(error.get("message") or error), kind=str(error.get("type")))
                out.append(parsed)
        return out


def chat_chunks(prepared: Prepared) -> ChunkReader:
    return prepared.chunks() if prepared.chunks is not None else _ChatReader()


class _AnthropicReader:
    def __init__(self, model: str, created: int) -> None:
        from heliport.gateway.anthropic import MessagesStreamTranslator

        self._sse = SseDecoder()
        self._translator = MessagesStreamTranslator(model=model, created=created, include_usage=True)

    @_readable
    def feed(self, data: bytes) -> list[JsonObj]:
        out: list[JsonObj] = []
        for event, payload in self._sse.feed(data):
            parsed = _decode(payload)
            if isinstance(parsed, dict):
                out.extend(self._translator.feed(event, parsed))
        return out


class _GeminiReader:
    def __init__(self, model: str, created: int, completion_id: str) -> None:
        from heliport.gateway.images import GenerateContentStreamTranslator

        self._sse = SseDecoder()
        self._translator = GenerateContentStreamTranslator(
            model=model, created=created, completion_id=completion_id, include_usage=True
        )

    @_readable
    def feed(self, data: bytes) -> list[JsonObj]:
        out: list[JsonObj] = []
        for _, payload in self._sse.feed(data):
            parsed = _decode(payload)
            if isinstance(parsed, dict):
                out.extend(self._translator.feed(parsed))
        return out


class _BedrockReader:
    def __init__(self, model: str, created: int, completion_id: str) -> None:
        from heliport.gateway.bedrock import ConverseStreamTranslator
        from heliport.gateway.bedrock_wire import EventStreamDecoder

        self._frames = EventStreamDecoder()
        self._translator = ConverseStreamTranslator(
            model=model, created=created, completion_id=completion_id, include_usage=True
        )

    @_readable
    def feed(self, data: bytes) -> list[JsonObj]:
        out: list[JsonObj] = []
        for event_type, payload in self._frames.feed(data):
            out.extend(self._translator.feed(event_type, payload))
        return out


def error_message(family: str, raw: bytes) -> str:
    """The human part of a provider's error body (each family nests it differently)."""
    text = raw.decode("utf-8", "replace")[:500] or "no error body"
    try:
        body = _decode(raw)
    except (msgspec.DecodeError, RecursionError):  # RecursionError: nested deeper than msgspec goes
        return text
    # Error bodies are shallow; a deep one is shown as text, since str() of it would recurse as deep.
    if json_depth_exceeds(body, _ERROR_BODY_DEPTH):
        return text
    if family == "vertex":  # Google's error shape (sometimes in a list) or, from Claude, Anthropic's
        from heliport.gateway.vertex import error_message as vertex_message

        return vertex_message(body)
    if not isinstance(body, dict):
        return str(body)[:500]
    if family == "anthropic":
        from heliport.gateway.anthropic import error_message as anthropic_message

        return anthropic_message(body)
    if family == "bedrock":
        from heliport.gateway.bedrock_wire import error_message as bedrock_message

        return bedrock_message(body)
    error = body.get("error")
    if isinstance(error, dict) and error.get("message"):
        message = str(error["message"])
        # Some hosts say "context length" only in the code (failover reads the message for it).
        code = error.get("code")
        if code == "context_length_exceeded" and code not in message:
            message = f"{message} ({code})"
        return message
    if isinstance(error, str):
        return error
    # Nebius and NVIDIA answer FastAPI / RFC 9457 problem bodies: {"detail": ...} (with "title").
    detail = body.get("detail")
    if isinstance(detail, str) and detail:
        return detail
    if isinstance(detail, dict | list):
        return str(detail)[:500]
    top = body.get("message")  # Cerebras, Novita and Hyperbolic put it at the top level
    if top and body.get("code") == "context_length_exceeded":
        return f"{top} (context_length_exceeded)"
    return str(top or body)[:500]


async def bedrock_credentials() -> Credentials:
    """The function role's credentials, found once (botocore refreshes them as they near expiry)."""
    global _credentials
    if _credentials is None:
        from heliport.gateway.bedrock_wire import role_credentials

        _credentials = await asyncio.to_thread(role_credentials)
    return _credentials


_credentials: Credentials | None = None
