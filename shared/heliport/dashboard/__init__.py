"""The dashboard: a static single-page app served at ``/dashboard``, same origin as the query API.

:func:`serve_dashboard` is a plain ASGI callable (``scope, receive, send``) for the paths
``/dashboard`` and ``/dashboard/<asset>``. It serves only the files in ``static/`` (read once and
kept in memory), by exact name: anything else, a traversal attempt included, is a 404. Every answer
carries a strict Content-Security-Policy (only same-origin scripts, styles and API calls; no inline
code, no frames) and ``nosniff``. ``index.html`` is not cached, so a new release is picked up on the
next load; the script and stylesheet are revalidated with their ETag.

The page calls the query API (``/v1/...``) with the heliport key the user pastes in, which it keeps
only in ``sessionStorage``; nothing here reads a key or a row.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import MutableMapping
from importlib import resources
from typing import Any

__all__ = ["CSP", "assets", "serve_dashboard"]

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_TYPES = {
    ".html": b"text/html; charset=utf-8",
    ".js": b"text/javascript; charset=utf-8",
    ".css": b"text/css; charset=utf-8",
    ".svg": b"image/svg+xml",
}
#: Served by exact name; ``vendor/uplot/`` is uPlot as published (its README there says which version).
_NAMES = (
    "index.html",
    "app.js",
    "app.css",
    "favicon.svg",
    "charts.js",
    "vendor/uplot/uPlot.esm.js",
    "vendor/uplot/uPlot.min.css",
)


@functools.cache
def assets() -> dict[str, tuple[bytes, bytes, bytes]]:
    """name -> (content type, body, ETag), read from the package on first use."""
    folder = resources.files(__package__) / "static"
    assets: dict[str, tuple[bytes, bytes, bytes]] = {}
    for name in _NAMES:
        body = folder.joinpath(*name.split("/")).read_bytes()
        etag = b'"' + hashlib.sha256(body).hexdigest()[:20].encode() + b'"'
        assets[name] = (_TYPES[name[name.rindex(".") :]], body, etag)
    return assets


def _header(scope: MutableMapping[str, Any], name: bytes) -> bytes | None:
    return next((value for key, value in scope.get("headers", ()) if key.lower() == name), None)


async def serve_dashboard(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
    """ASGI: ``/dashboard`` and ``/dashboard/`` are the page; ``/dashboard/<name>`` one of its assets."""
    path: str = scope["path"]
    if path == "/dashboard":
        # The page's relative asset URLs need the trailing slash.
        await _answer(send, 308, b"", [(b"location", b"/dashboard/")])
        return
    name = path[len("/dashboard/") :] or "index.html"
    asset = assets().get(name)
    method = scope.get("method", "GET")
    if asset is None:
        await _answer(send, 404, b"Not found\n", [(b"content-type", b"text/plain; charset=utf-8")])
        return
    if method not in ("GET", "HEAD"):
        await _answer(send, 405, b"Method not allowed\n", [(b"content-type", b"text/plain"), (b"allow", b"GET, HEAD")])
        return
    content_type, body, etag = asset
    cache = b"no-cache" if name == "index.html" else b"public, max-age=300, must-revalidate"
    headers = [(b"content-type", content_type), (b"cache-control", cache), (b"etag", etag)]
    if _header(scope, b"if-none-match") == etag:
        await _answer(send, 304, b"", headers)
        return
    await _answer(send, 200, b"" if method == "HEAD" else body, headers, length=len(body))


async def _answer(
    send: Any, status: int, body: bytes, headers: list[tuple[bytes, bytes]], *, length: int | None = None
) -> None:
    common = [
        (b"content-security-policy", CSP.encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        (b"x-frame-options", b"DENY"),
    ]
    if status != 304:
        common.append((b"content-length", str(len(body) if length is None else length).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers + common})
    await send({"type": "http.response.body", "body": body})
