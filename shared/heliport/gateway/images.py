"""Image generation through Gemini's image models: OpenAI chat <-> Gemini ``generateContent``, streams included.

Helicone's gateway serves Nano Banana Pro (``gemini-3-pro-image-preview``) on Google AI Studio
through the OpenAI chat shape (``gateway/concepts/image-generation``): an optional
``image_generation: {aspect_ratio, image_size}`` on the request, and the pictures on the answer as
``choices[].message.images[]`` (``delta.images[]`` when streaming), each ``{"type": "image_url",
"image_url": {"url": "data:image/png;base64,..."}}``. Gemini's OpenAI-compatible endpoint has no
place for the image settings nor for image output, so Gemini image models are called natively:
``POST /v1beta/models/{model}:generateContent`` (``:streamGenerateContent?alt=sse`` to stream) with
``generationConfig.responseModalities: ["TEXT", "IMAGE"]`` and ``generationConfig.imageConfig:
{aspectRatio, imageSize}``; the answer's ``inlineData`` parts become data: URLs.

The request side covers what an image prompt uses: system/developer messages (``systemInstruction``),
user and assistant turns of text and images (``data:`` URLs as ``inlineData``, an earlier picture
can be edited), the token limit, temperature, top_p and stop sequences. Tools, ``n`` > 1 and http(s)
image links (generateContent takes pictures inline or from Google's file store) are 400s naming the
field. Parts marked ``thought`` (the model's drafts) become ``reasoning_content``; their images are
drafts too and are not returned.

``image_generation`` anywhere else (a model without image output) is a 400 naming it, and on the
image models both ``aspect_ratio`` and ``image_size`` are required, as the doc says.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from heliport.errors import InvalidBodyError, UpstreamError
from heliport.gateway.chat import JsonObj, ProviderStreamError, StreamTranslator, chat_completion, finish_reason
from heliport.gateway.chat import usage_object as _usage_object
from heliport.gateway.chat_request import (
    ChatRequest,
    Dialect,
    FilePart,
    ImagePart,
    Part,
    TextPart,
    Turn,
    data_url,
)

__all__ = [
    "FIELD",
    "GEMINI",
    "GenerateContentStreamTranslator",
    "ImageGeneration",
    "chat_to_generate_content",
    "generate_content_to_chat",
    "generate_content_url",
    "is_image_model",
    "read_image_generation",
    "refuse_image_generation",
]

#: The request field, as Helicone names it.
FIELD: Final = "image_generation"

GEMINI: Final = Dialect(
    provider="Gemini",
    non_function_tool="Gemini image models take no tools here.",
    part_param_names_type=True,
    checks_tool_call_type=True,
)

_FINISH_REASONS: Final = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "IMAGE_PROHIBITED_CONTENT": "content_filter",
    "IMAGE_RECITATION": "content_filter",
}
_KEYS: Final = frozenset({"aspect_ratio", "image_size"})


@dataclass(frozen=True, slots=True)
class ImageGeneration:
    """``image_generation`` as read: Gemini's ``imageConfig``."""

    aspect_ratio: str
    image_size: str


def is_image_model(model: str) -> bool:
    """Whether a Gemini model id is one with native image output (``gemini-3-pro-image-preview``,
    ``gemini-2.5-flash-image``): those are called through :func:`chat_to_generate_content`."""
    name = model.rsplit("/", 1)[-1].lower()
    return name.startswith("gemini-") and "-image" in name


def read_image_generation(chat: JsonObj) -> ImageGeneration | None:
    """The request's ``image_generation``, validated; None when absent."""
    raw = chat.get(FIELD)
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise InvalidBodyError("image_generation must be an object with aspect_ratio and image_size.", param=FIELD)
    for key in raw:
        if key not in _KEYS:
            raise InvalidBodyError(
                f"Unknown field {key!r} in image_generation (known: aspect_ratio, image_size).", param=f"{FIELD}.{key}"
            )
    values: list[str] = []
    for key in ("aspect_ratio", "image_size"):
        value = raw.get(key)
        if not isinstance(value, str) or not value:
            raise InvalidBodyError(
                f"image_generation.{key} is required (a string such as "
                f"{'16:9' if key == 'aspect_ratio' else '2K'}) when image_generation is given.",
                param=f"{FIELD}.{key}",
            )
        values.append(value)
    return ImageGeneration(*values)


def refuse_image_generation(chat: JsonObj, provider: str, model: str) -> None:
    """A 400 naming ``image_generation`` when it is given (well-formed or not) for a model without image output."""
    if chat.get(FIELD) is not None:
        read_image_generation(chat)  # a malformed one names its own field first
        raise InvalidBodyError(
            f"image_generation is supported only for Gemini image models on Google AI Studio "
            f"(such as gemini-3-pro-image-preview); {model} on {provider} does not generate images.",
            param=FIELD,
        )


def generate_content_url(base_url: str, model: str, *, stream: bool) -> str:
    """Gemini's native endpoint for ``model``; the stream variant speaks SSE (``alt=sse``)."""
    if stream:
        return f"{base_url}/v1beta/models/{model}:streamGenerateContent?alt=sse"
    return f"{base_url}/v1beta/models/{model}:generateContent"


# -- request: OpenAI chat -> generateContent ---------------------------------------------------------


def chat_to_generate_content(chat: JsonObj) -> JsonObj:
    """An OpenAI chat request as a ``generateContent`` body for a Gemini image model.

    Raises :class:`InvalidBodyError` naming the field for anything malformed or that this path cannot express.
    """
    n = chat.get("n")
    if n is not None and n != 1:
        raise InvalidBodyError("Gemini image models return one choice per request here; n must be 1.", param="n")
    # What would change the answer's kind is refused; the settings that ask for a plain answer pass.
    refused = {
        "tools": bool(chat.get("tools")),
        "tool_choice": chat.get("tool_choice") not in (None, "none", "auto"),
        "functions": chat.get("functions") is not None,
        "response_format": chat.get("response_format") is not None and not _is_text_format(chat["response_format"]),
        "audio": chat.get("audio") is not None,
    }
    for field, refuse in refused.items():
        if refuse:
            raise InvalidBodyError(f"{field} is not supported for Gemini image models.", param=field)
    config = read_image_generation(chat)
    request = ChatRequest(chat, GEMINI)
    if not request.turns:
        raise InvalidBodyError("messages needs at least one user or assistant message.", param="messages")
    body: JsonObj = {"contents": [_content(turn) for turn in request.turns]}
    system = [{"text": part.text} for message in request.system for part in message]
    if system:
        body["systemInstruction"] = {"parts": system}
    generation: JsonObj = {"responseModalities": ["TEXT", "IMAGE"]}
    if request.max_tokens is not None:
        generation["maxOutputTokens"] = request.max_tokens
    if request.temperature is not None:
        generation["temperature"] = request.temperature
    if request.top_p is not None:
        generation["topP"] = request.top_p
    if request.stop:
        generation["stopSequences"] = request.stop
    if config is not None:
        generation["imageConfig"] = {"aspectRatio": config.aspect_ratio, "imageSize": config.image_size}
    body["generationConfig"] = generation
    return body


def _is_text_format(value: object) -> bool:
    return isinstance(value, dict) and value.get("type") == "text"


def _content(turn: Turn) -> JsonObj:
    return {"role": "model" if turn.role == "assistant" else "user", "parts": [_part(part) for part in turn.parts]}


def _part(part: Part) -> JsonObj:
    if isinstance(part, TextPart):
        return {"text": part.text}
    if isinstance(part, ImagePart | FilePart):
        url, param = (part.url, part.param) if isinstance(part, ImagePart) else (part.file_data, part.param)
        parsed = data_url(url)
        if parsed is None:
            raise InvalidBodyError(
                "Gemini image models take pictures inline here: send a base64 data: URL, not a link.", param=param
            )
        return {"inlineData": {"mimeType": parsed.media_type.lower(), "data": parsed.data}}
    raise InvalidBodyError("Tool calls and tool results are not supported for Gemini image models.", param="messages")


# -- response: GenerateContentResponse -> OpenAI chat ------------------------------------------------


@dataclass(slots=True)
class _Read:
    texts: list[str]
    thoughts: list[str]
    images: list[JsonObj]
    finish: str | None


def _read(response: JsonObj) -> _Read:
    read = _Read([], [], [], None)
    candidates = response.get("candidates")
    candidate = candidates[0] if isinstance(candidates, list) and candidates and isinstance(candidates[0], dict) else {}
    if isinstance(candidate.get("finishReason"), str):
        read.finish = candidate["finishReason"]
    content = candidate.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    for part in parts if isinstance(parts, list) else []:
        if not isinstance(part, dict):
            continue
        thought = part.get("thought") is True
        if isinstance(part.get("text"), str):
            (read.thoughts if thought else read.texts).append(part["text"])
        inline = part.get("inlineData")
        if not thought and isinstance(inline, dict) and isinstance(inline.get("data"), str):
            mime = inline.get("mimeType") if isinstance(inline.get("mimeType"), str) else "image/png"
            read.images.append({"type": "image_url", "image_url": {"url": f"data:{mime};base64,{inline['data']}"}})
    return read


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _usage(metadata: object) -> JsonObj:
    if not isinstance(metadata, dict):
        return _usage_object(0, 0)
    thoughts = _count(metadata.get("thoughtsTokenCount"))
    cached = metadata.get("cachedContentTokenCount")
    # Gemini's promptTokenCount includes cached input, as OpenAI's prompt_tokens does; thinking is billed
    # as output and OpenAI counts reasoning inside completion_tokens.
    return _usage_object(
        _count(metadata.get("promptTokenCount")),
        _count(metadata.get("candidatesTokenCount")) + thoughts,
        cached_tokens=_count(cached) if cached is not None else None,
        reasoning_tokens=thoughts or None,
    )


def _completion_id(response: JsonObj, fallback: str) -> str:
    rid = response.get("responseId")
    return f"chatcmpl-{rid}" if isinstance(rid, str) and rid else fallback


def generate_content_to_chat(response: JsonObj, *, model: str, created: int, completion_id: str) -> JsonObj:
    """A ``GenerateContentResponse`` as an OpenAI ``chat.completion`` with ``message.images``."""
    if not isinstance(response, dict) or not isinstance(response.get("candidates"), list):
        feedback = response.get("promptFeedback") if isinstance(response, dict) else None
        if isinstance(feedback, dict) and feedback.get("blockReason"):
            # A prompt Gemini refused answers no candidates; OpenAI's way to say so is content_filter.
            return chat_completion(
                _completion_id(response, completion_id),
                created,
                model,
                content=None,
                reasoning=[],
                tool_calls=[],
                finish_reason="content_filter",
                usage=_usage(response.get("usageMetadata")),
            )
        raise UpstreamError("Gemini returned a response without candidates.")
    read = _read(response)
    completion = chat_completion(
        _completion_id(response, completion_id),
        created,
        model,
        content="".join(read.texts),
        reasoning=read.thoughts,
        tool_calls=[],
        finish_reason=finish_reason(read.finish, _FINISH_REASONS),
        usage=_usage(response.get("usageMetadata")),
    )
    if read.images:
        completion["choices"][0]["message"]["images"] = read.images
    return completion


# -- stream: streamGenerateContent SSE -> OpenAI chunks ----------------------------------------------


class GenerateContentStreamTranslator(StreamTranslator):
    """``streamGenerateContent?alt=sse`` payloads, one at a time, as OpenAI ``chat.completion.chunk`` objects.

    Each payload is a partial ``GenerateContentResponse``; text arrives in pieces, images whole (a
    payload's pictures in one ``delta.images`` chunk). ``usageMetadata`` is cumulative, so the last
    one counts; the payload with ``finishReason`` is the last one, so it also closes the answer.
    """

    def __init__(self, *, model: str, created: int, completion_id: str, include_usage: bool) -> None:
        super().__init__(model=model, created=created, completion_id=completion_id, include_usage=include_usage)
        self._started = False

    def feed(self, payload: JsonObj) -> list[JsonObj]:
        """The chunks one payload produces; an ``error`` payload raises :class:`ProviderStreamError`."""
        error = payload.get("error")
        if isinstance(error, dict):
            status = error.get("code")
            raise ProviderStreamError(
                status if isinstance(status, int) and 400 <= status < 600 else 500,
                str(error.get("message") or error),
                kind=str(error.get("status") or "api_error"),
            )
        chunks: list[JsonObj] = []
        if not self._started:
            self._started = True
            self._id = _completion_id(payload, self._id)
            chunks.append(self._chunk({"role": "assistant", "content": ""}))
        read = _read(payload)
        for thought in read.thoughts:
            if thought:
                chunks.append(self._chunk({"reasoning_content": thought}))
        text = "".join(read.texts)
        if text:
            chunks.append(self._chunk({"content": text}))
        if read.images:
            chunks.append(self._chunk({"images": read.images}))
        if isinstance(payload.get("usageMetadata"), dict):
            self.usage = _usage(payload["usageMetadata"])
        if read.finish is not None:
            # Gemini's last payload carries finishReason (and the final usage); no event follows it.
            self.finish_reason = finish_reason(read.finish, _FINISH_REASONS)
            chunks.append(self._chunk({}, finish_reason=self.finish_reason))
            if self._include_usage:
                chunks.append(self._chunk(None, usage=self.usage or _usage_object(0, 0)))
        return chunks
