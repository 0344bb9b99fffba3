"""Request assets: the images inside a logged request's bodies, each served by its own short-lived URL.

Helicone takes images out of a body when it logs it and answers ``POST /v1/request/{id}/assets/{assetId}``
with ``{assetUrl}``, a signed URL of the stored image. heliport keeps the bodies whole and extracts an
image on the first request for it:

* An asset is an image a body holds inline: a ``data:image/...;base64,`` URL anywhere (OpenAI's
  ``image_url`` parts, the Responses API's ``input_image``, a streamed body's text), an Anthropic
  ``{"type": "base64", "media_type": "image/...", "data": ...}`` source, or an images answer's
  ``b64_json``. Images given by http(s) URL are the provider's to serve, not assets.
* Its id is the first 32 hex digits of the SHA-256 of the image's bytes: the same image is the same
  asset wherever it appears, and a client holding the image can name it. ``GET /v1/request/{id}/assets``
  (heliport's own) lists a request's assets.
* The bytes are stored beside the bodies, under the organisation's prefix
  (``organizations/<org>/requests/<request>/assets/<assetId>``); the answer is a presigned S3 URL
  in AWS and, locally, a URL of ``GET /v1/request/{id}/assets/{assetId}`` signed like the body links
  (``api/bodies.py``): no key needed until it expires.

Everything is confined to the key's organisation: another organisation's request, or an id that is
not an image of the request, is a 404.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final, Protocol
from urllib.parse import urlencode

from pydantic import BaseModel
from starlette.responses import Response

from heliport.api import requests
from heliport.api.bodies import URL_LIFETIME, BodyLinks
from heliport.api.database import QueryDb
from heliport.api.dialect import Params
from heliport.api.endpoint import Call
from heliport.errors import RouteNotFoundError
from heliport.logs.row import RequestRow

__all__ = ["AssetContext", "AssetUrl", "RequestAsset", "asset_url", "find_images", "listed", "served"]

#: An inline image in text: a data: URL with base64 image bytes.
_DATA_URL: Final = re.compile(r"data:(image/[A-Za-z0-9.+-]+);base64,([A-Za-z0-9+/]+={0,2})")
_ASSET_ID: Final = re.compile(r"[0-9a-f]{32}")
#: Media types served as themselves from the local URL; anything else (SVG above all, which can hold
#: script) is served as a download.
_RASTER: Final = {
    b"\x89PNG\r\n\x1a\n": "image/png",
    b"\xff\xd8\xff": "image/jpeg",
    b"GIF87a": "image/gif",
    b"GIF89a": "image/gif",
}


class AssetUrl(BaseModel):
    """Helicone's ``HeliconeRequestAsset``."""

    assetUrl: str


class RequestAsset(BaseModel):
    assetId: str
    mediaType: str
    bytes: int


@dataclass(frozen=True, slots=True)
class Image:
    asset_id: str
    media_type: str
    data: bytes


class AssetContext(Protocol):
    """What these handlers use of the API: the log database and the body store's links."""

    @property
    def db(self) -> QueryDb: ...

    @property
    def links(self) -> BodyLinks: ...

    @property
    def max_json_depth(self) -> int: ...


def find_images(*bodies: Any) -> dict[str, Image]:
    """Every inline image of the bodies (decoded JSON, or text), by asset id, in order of appearance."""
    found: dict[str, Image] = {}
    for body in bodies:
        for media_type, encoded in _inline(body):
            try:
                data = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                continue
            if data:
                asset_id = hashlib.sha256(data).hexdigest()[:32]
                found.setdefault(asset_id, Image(asset_id, media_type, data))
    return found


def _inline(body: Any) -> Iterator[tuple[str, str]]:
    """(media type, base64) of each inline image in ``body``; iterative, as bodies may nest deep."""
    stack: list[Any] = [body]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if "data:image/" in node:
                yield from ((m.group(1), m.group(2)) for m in _DATA_URL.finditer(node))
        elif isinstance(node, dict):
            media_type, data = node.get("media_type"), node.get("data")
            if node.get("type") == "base64" and isinstance(media_type, str) and isinstance(data, str):
                if media_type.startswith("image/"):
                    yield media_type, data
                continue
            if isinstance(node.get("b64_json"), str):
                yield f"image/{node.get('output_format') or 'png'}", node["b64_json"]
            stack.extend(reversed(list(node.values())))
        elif isinstance(node, list):
            stack.extend(reversed(node))


def _key(row: RequestRow, asset_id: str) -> str:
    return f"organizations/{row.org_id}/requests/{row.request_id}/assets/{asset_id}"


async def _row(ctx: AssetContext, org_id: str, request_id: str) -> RequestRow:
    key = requests.parse_request_id(request_id)
    params = Params(ctx.db.dialect)
    found = await ctx.db.rows(org_id, requests.one_sql(org_id, params, key), params.values)
    if not found:
        raise RouteNotFoundError(f"No request {request_id} in this organisation.")
    return found[0]


async def _images(ctx: AssetContext, row: RequestRow) -> dict[str, Image]:
    request_body, response_body = await ctx.links.read(row, max_depth=ctx.max_json_depth)
    return find_images(request_body, response_body)


async def listed(ctx: AssetContext, call: Call) -> list[dict[str, Any]]:
    row = await _row(ctx, call.org_id, call.path("requestId"))
    return [
        {"assetId": image.asset_id, "mediaType": image.media_type, "bytes": len(image.data)}
        for image in (await _images(ctx, row)).values()
    ]


async def asset_url(ctx: AssetContext, call: Call) -> dict[str, str]:
    row = await _row(ctx, call.org_id, call.path("requestId"))
    asset_id = call.path("assetId")
    if not _ASSET_ID.fullmatch(asset_id):
        raise RouteNotFoundError(f"No asset {asset_id!r} in request {row.request_id}: asset ids are 32 hex digits.")
    links = ctx.links
    blobs = links._blobs  # the body store; assets live beside the bodies
    key = _key(row, asset_id)
    # The image is taken from the bodies and written on every call, never read back first: the key is
    # the content's hash, so a rewrite stores the same bytes, and without a read-before-write the role
    # needs no s3:ListBucket (without it S3 answers a missing object with 403, not 404).
    image = (await _images(ctx, row)).get(asset_id)
    if image is None:
        raise RouteNotFoundError(f"No asset {asset_id} in request {row.request_id}.")
    # S3 serves the object with this type: script-capable images (SVG) only ever as a download.
    safe = image.media_type in _RASTER.values() or image.media_type == "image/webp"
    await blobs.put(key, image.data, content_type=image.media_type if safe else "application/octet-stream")
    if links.storage_location == "s3":
        url = await blobs.presign_get(key, URL_LIFETIME)
        assert url is not None  # S3 always presigns
        return {"assetUrl": url}
    expires = int(time.time()) + URL_LIFETIME
    signature = links._sign(row.org_id, _signed_name(row.request_id, asset_id), expires)
    query = urlencode({"org": row.org_id, "expires": expires, "signature": signature})
    base = str(call.request.base_url).rstrip("/")
    return {"assetUrl": f"{base}/v1/request/{row.request_id}/assets/{asset_id}?{query}"}


def _signed_name(request_id: str, asset_id: str) -> str:
    """What the local URL signs in place of a request id: a body link's request id is one path
    segment, so it can never be this, and neither URL can stand for the other."""
    return f"{request_id}/assets/{asset_id}"


async def served(ctx: AssetContext, call: Call) -> Response:
    """The local signed URL: the stored image, no key needed until the URL expires."""
    query = call.request.query_params
    org_id = query.get("org", "")
    request_id = call.path("requestId")
    asset_id = call.path("assetId")
    ctx.links.verify(org_id, _signed_name(request_id, asset_id), query.get("expires", ""), query.get("signature", ""))
    row = await _row(ctx, org_id, request_id)
    data = await ctx.links._blobs.get(_key(row, asset_id))
    if data is None:
        raise RouteNotFoundError(f"No asset {asset_id} in request {request_id}.")
    media_type = next((kind for magic, kind in _RASTER.items() if data.startswith(magic)), None)
    if media_type is None and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        media_type = "image/webp"
    headers = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox; default-src 'none'",
               "Cache-Control": "private, max-age=300"}  # fmt: skip
    if media_type is None:
        headers["Content-Disposition"] = f'attachment; filename="{asset_id}"'
    return Response(data, media_type=media_type or "application/octet-stream", headers=headers)
