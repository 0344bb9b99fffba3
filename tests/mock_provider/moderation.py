"""OpenAI's moderation endpoint (``POST /v1/moderations``), as ``omni-moderation-latest`` answers.

The request takes ``input`` as a string, a list of strings (one result each), or a list of multi-modal
parts, ``{"type": "text", "text"}`` and ``{"type": "image_url", "image_url": {"url"}}`` (one result
for them all); a malformed one gets OpenAI's 400. The answer is OpenAI's shape: ``id``, ``model``,
``results[{flagged, categories, category_scores, category_applied_input_types}]`` over the 13
categories of the omni model, of which only some apply to images.

The verdict is deterministic, steered by markers in what is screened:

* text containing ``mock-flag`` is flagged as ``violence``; ``mock-flag:<category>`` (``mock-flag:hate``,
  ``mock-flag:self-harm/intent``) names the category;
* an image is flagged (``violence``, or the category named the same way) when its URL contains the
  marker, or when it is a ``data:`` URL whose base64 payload decodes to bytes containing it;
* ``mock-moderation-status-<code>`` anywhere in the text answers that status with OpenAI's error body
  (a moderation endpoint that is down or rate limited, while the chat endpoint of the same mock
  answers normally).

The mock's usual controls apply too (``app.py``): a credential containing ``mock-status-<code>``
gets that error, and every request is recorded, so tests see exactly what was sent here.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Mapping
from typing import Any

from starlette.responses import Response

from .fixtures import encode

#: The omni model's categories, and the input types each one applies to.
CATEGORIES: dict[str, tuple[str, ...]] = {
    "harassment": ("text",),
    "harassment/threatening": ("text",),
    "hate": ("text",),
    "hate/threatening": ("text",),
    "illicit": ("text",),
    "illicit/violent": ("text",),
    "self-harm": ("text", "image"),
    "self-harm/intent": ("text", "image"),
    "self-harm/instructions": ("text", "image"),
    "sexual": ("text", "image"),
    "sexual/minors": ("text",),
    "violence": ("text", "image"),
    "violence/graphic": ("text", "image"),
}
MARKER = "mock-flag"
DEFAULT_CATEGORY = "violence"
FLAGGED_SCORE = 0.9731
#: Scores of categories nothing flagged: small, distinct, deterministic (for "the top ones" checks).
_BASELINE = {name: round(0.0001 * (index + 1), 6) for index, name in enumerate(CATEGORIES)}
_MARKED = re.compile(re.escape(MARKER) + r"(?::([a-z/\-]+))?")
_STATUS = re.compile(r"mock-moderation-status-(\d{3})")


async def moderations(payload: Mapping[str, Any], headers: Mapping[str, str]) -> Response:
    from .app import JSON_TYPE, openai_error, openai_headers  # app imports this module

    model = payload.get("model", "omni-moderation-latest")
    if not isinstance(model, str) or not model:
        return openai_error(400, "'model' must be a string.")
    inputs = _inputs(payload.get("input"))
    if isinstance(inputs, str):
        return openai_error(400, inputs)
    for texts, _ in inputs:
        forced = next((m for m in (_STATUS.search(text) for text in texts) if m is not None), None)
        if forced is not None:
            return openai_error(int(forced.group(1)))
    body = {
        "id": "modr-" + os.urandom(12).hex(),
        "model": model,
        "results": [_result(texts, images) for texts, images in inputs],
    }
    return Response(encode(body), headers=openai_headers(), media_type=JSON_TYPE)


def _inputs(raw: object) -> list[tuple[list[str], list[str]]] | str:
    """What each result is about, ``[(texts, image urls)]``, or OpenAI's reason for a 400."""
    if isinstance(raw, str):
        return [([raw], [])]
    if not isinstance(raw, list) or not raw:
        return "'input' is a required property: a string, an array of strings, or an array of input objects."
    if all(isinstance(item, str) for item in raw):
        return [([item], []) for item in raw]
    texts: list[str] = []
    images: list[str] = []
    for index, item in enumerate(raw):
        kind = item.get("type") if isinstance(item, dict) else None
        if kind == "text" and isinstance(item.get("text"), str):
            texts.append(item["text"])
        elif kind == "image_url":
            image = item.get("image_url")
            url = image.get("url") if isinstance(image, dict) else None
            if not isinstance(url, str) or not url:
                return f"Invalid value for 'input[{index}].image_url': expected an object with a 'url'."
            images.append(url)
        else:
            return f"Invalid value for 'input[{index}]': expected a text or image_url input object."
    return [(texts, images)]


def _flags(content: str) -> list[str]:
    """The categories the markers in ``content`` name (unknown names fall back to the default)."""
    return [m.group(1) if m.group(1) in CATEGORIES else DEFAULT_CATEGORY for m in _MARKED.finditer(content)]


def _image_content(url: str) -> str:
    """What a marker check reads of an image: its URL, plus a data URL's decoded payload."""
    if url.startswith("data:") and ";base64," in url:
        try:
            return url + "\n" + base64.b64decode(url.partition(";base64,")[2], validate=True).decode("latin-1")
        except (binascii.Error, ValueError):
            return url
    return url


def _result(texts: list[str], images: list[str]) -> dict[str, Any]:
    flagged: set[str] = set()
    for text in texts:
        flagged.update(_flags(text))
    for url in images:
        flagged.update(name for name in _flags(_image_content(url)) if "image" in CATEGORIES[name])
    kinds = [kind for kind, present in (("text", bool(texts)), ("image", bool(images))) if present]
    return {
        "flagged": bool(flagged),
        "categories": {name: name in flagged for name in CATEGORIES},
        "category_scores": {name: _score(name, flagged, kinds) for name in CATEGORIES},
        "category_applied_input_types": {
            name: [kind for kind in kinds if kind in applies] for name, applies in CATEGORIES.items()
        },
    }


def _score(name: str, flagged: set[str], kinds: list[str]) -> float:
    if name in flagged:
        return FLAGGED_SCORE
    # Like the real model: a category that applies to none of the input's types scores 0.
    return _BASELINE[name] if any(kind in CATEGORIES[name] for kind in kinds) else 0.0
