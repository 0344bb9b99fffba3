"""The caller's own words in a request body, whatever the wire format: what the safety checks screen.

Moderation screens the latest user message, LLM security every user message; both read them
here, from the formats heliport carries:

* OpenAI Chat Completions, and Anthropic Messages: ``messages[*]`` with ``role: "user"``, content a
  string or a list of parts (``text``; ``image_url`` in OpenAI's, ``image`` with a ``base64`` or
  ``url`` source in Anthropic's);
* OpenAI Responses: ``input`` as a string, or items with ``role: "user"`` whose content is a string
  or ``input_text`` / ``input_image`` parts;
* legacy Completions: ``prompt`` (a string or a list of strings).

Assistant, system and tool messages are not the caller's users speaking, so they are not screened
(Helicone screens user messages only). Anything else in the body is ignored: a body this module
cannot read yields no messages, and the check says so on the log instead of guessing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import msgspec

__all__ = ["UserMessage", "decode_object", "user_messages"]


@dataclass(frozen=True, slots=True)
class UserMessage:
    """One user turn: its place in the body (``messages[3]``), its text parts joined, its images."""

    path: str
    text: str
    #: Image references as the body gives them: ``https://`` URLs or ``data:`` URLs.
    images: tuple[str, ...] = field(default=())


def decode_object(body: bytes) -> dict[str, object] | None:
    """The body as a JSON object, or None when it is not one (the check then has nothing to read)."""
    try:
        parsed = msgspec.json.decode(body)
    except (msgspec.DecodeError, RecursionError):
        return None
    return parsed if isinstance(parsed, dict) else None


def user_messages(body: dict[str, object]) -> list[UserMessage]:
    """Every user message of the body, in order (empty when it has none this module can read)."""
    found: list[UserMessage] = []
    messages = body.get("messages")
    if isinstance(messages, list):
        for index, message in enumerate(messages):
            if isinstance(message, dict) and message.get("role") == "user":
                found.append(_message(f"messages[{index}]", message.get("content")))
    inputs = body.get("input")
    if isinstance(inputs, str):
        found.append(UserMessage("input", inputs))
    elif isinstance(inputs, list):
        for index, item in enumerate(inputs):
            if isinstance(item, dict) and item.get("role") == "user":
                found.append(_message(f"input[{index}]", item.get("content")))
    prompt = body.get("prompt")
    if isinstance(prompt, str):
        found.append(UserMessage("prompt", prompt))
    elif isinstance(prompt, list) and all(isinstance(p, str) for p in prompt):
        found.append(UserMessage("prompt", "\n".join(p for p in prompt if isinstance(p, str))))
    return [message for message in found if message.text or message.images]


def _message(path: str, content: object) -> UserMessage:
    if isinstance(content, str):
        return UserMessage(path, content)
    texts: list[str] = []
    images: list[str] = []
    if isinstance(content, list):
        for part in content:
            if not isinstance(part, dict):
                continue
            kind = part.get("type")
            if kind in ("text", "input_text") and isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif kind in ("image_url", "input_image"):
                image = part.get("image_url")
                url = image.get("url") if isinstance(image, dict) else image
                if isinstance(url, str) and url:
                    images.append(url)
            elif kind == "image":
                source = part.get("source")
                if isinstance(source, dict):
                    images.extend(_anthropic_image(source))
    return UserMessage(path, "\n".join(texts), tuple(images))


def _anthropic_image(source: dict[str, object]) -> list[str]:
    if source.get("type") == "url" and isinstance(source.get("url"), str):
        return [str(source["url"])]
    data, media = source.get("data"), source.get("media_type")
    if source.get("type") == "base64" and isinstance(data, str) and isinstance(media, str):
        return [f"data:{media};base64,{data}"]
    return []
