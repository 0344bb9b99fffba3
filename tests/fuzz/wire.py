"""Sending a fuzz case to heliport and judging the answer.

Well-formed HTTP goes through httpx. Bytes httpx will not send (control characters or raw non-ASCII
octets in a header value or the request line, dot segments and percent junk httpx would normalise,
unknown methods) go through :func:`raw_request`: one HTTP/1.1 request written to a socket as given,
and the answer read back with a small parser (status line, headers, a Content-Length or chunked
body, or everything up to the close).

The verdict is the same for every route: never a 5xx, and every 4xx a JSON body (Content-Type
``application/json``, a body that parses, with the error in the shape of that surface).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

__all__ = [
    "Reply",
    "Target",
    "api_error",
    "check",
    "client",
    "from_httpx",
    "openai_error",
    "raw_request",
    "send_case",
]


@dataclass
class Reply:
    """One answer, however it was obtained."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes
    #: The request's method: a HEAD answer has no body by definition.
    method: str = "GET"

    def header(self, name: str) -> str | None:
        name = name.lower()
        return next((v for n, v in self.headers if n.lower() == name), None)

    def describe(self) -> str:
        shown = self.body[:600].decode("utf-8", "replace")
        more = f" (+{len(self.body) - 600} bytes)" if len(self.body) > 600 else ""
        return f"{self.status} content-type={self.header('content-type')!r} body={shown!r}{more}"


def from_httpx(response: httpx.Response) -> Reply:
    return Reply(
        status=response.status_code,
        headers=[(n.decode("latin-1"), v.decode("latin-1")) for n, v in response.headers.raw],
        body=response.content,
        method=response.request.method,
    )


def raw_request(
    base_url: str,
    method: bytes,
    target: bytes,
    headers: Iterable[tuple[bytes, bytes]] = (),
    body: bytes | None = None,
    *,
    upgrade: bool = False,
    timeout: float = 20.0,
) -> Reply:
    """Write one request exactly as given; ``Host``, ``Content-Length`` (when there is a body) and
    ``Connection: close`` are added unless the headers name them. With ``upgrade`` the answer may be
    a 101, after which the socket is closed without reading further."""
    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    names = set()
    lines = [method + b" " + target + b" HTTP/1.1"]
    for name, value in headers:
        names.add(name.lower())
        lines.append(name + b": " + value)
    if b"host" not in names:
        lines.append(b"Host: " + f"{host}:{port}".encode())
    if body is not None and b"content-length" not in names and b"transfer-encoding" not in names:
        lines.append(b"Content-Length: " + str(len(body)).encode())
    if b"connection" not in names:
        lines.append(b"Connection: close")
    data = b"\r\n".join(lines) + b"\r\n\r\n" + (body or b"")
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(data)
        reader = _Reader(sock)
        status, answer_headers = reader.head()
        if upgrade and status == 101:
            return Reply(status, answer_headers, b"", method.decode("latin-1"))
        return Reply(status, answer_headers, reader.body(answer_headers, method == b"HEAD"), method.decode("latin-1"))


class _Reader:
    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buffer = b""
        self._eof = False

    def _fill(self) -> bool:
        if self._eof:
            return False
        try:
            chunk = self._sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self._eof = True
            return False
        self._buffer += chunk
        return True

    def _until(self, marker: bytes) -> bytes:
        while marker not in self._buffer:
            if not self._fill():
                raise AssertionError(f"connection closed before {marker!r}; got {self._buffer[:300]!r}")
        line, self._buffer = self._buffer.split(marker, 1)
        return line

    def _exactly(self, size: int) -> bytes:
        while len(self._buffer) < size:
            if not self._fill():
                raise AssertionError(f"connection closed after {len(self._buffer)} of {size} body bytes")
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def head(self) -> tuple[int, list[tuple[str, str]]]:
        block = self._until(b"\r\n\r\n")
        status_line, *header_lines = block.split(b"\r\n")
        version, _, rest = status_line.partition(b" ")
        assert version.startswith(b"HTTP/1."), f"not an HTTP answer: {block[:300]!r}"
        status = int(rest.split(b" ", 1)[0])
        headers = []
        for line in header_lines:
            name, _, value = line.partition(b":")
            headers.append((name.decode("latin-1").strip(), value.decode("latin-1").strip()))
        return status, headers

    def body(self, headers: list[tuple[str, str]], head: bool) -> bytes:
        fields = {n.lower(): v for n, v in headers}
        if head:
            return b""
        if "chunked" in fields.get("transfer-encoding", "").lower():
            out = b""
            while True:
                size = int(self._until(b"\r\n").split(b";")[0], 16)
                if size == 0:
                    return out
                out += self._exactly(size)
                self._until(b"\r\n")
        if "content-length" in fields:
            return self._exactly(int(fields["content-length"]))
        while self._fill():
            pass
        data, self._buffer = self._buffer, b""
        return data


# --- the verdict -------------------------------------------------------------------------------------

Shape = Callable[[Any], None]


def openai_error(body: Any) -> None:
    """heliport's proxy, AI gateway, async log and realtime errors: ``{"error": {"message": ...}}``
    (OpenAI's shape; an Anthropic error relayed by the proxy, ``{"type": "error", "error": {...}}``,
    has the same ``error`` object)."""
    assert isinstance(body, dict), f"error body is not a JSON object: {body!r}"
    error = body.get("error")
    assert isinstance(error, dict), f"no error object: {body!r}"
    assert isinstance(error.get("message"), str) and error["message"], f"error object without a message: {body!r}"


def api_error(body: Any) -> None:
    """The query and dashboard API's ``{"data": null, "error": "<message>"}``."""
    assert isinstance(body, dict), f"error body is not a JSON object: {body!r}"
    assert body.get("data") is None and "data" in body, f"error answer with data: {body!r}"
    assert isinstance(body.get("error"), str) and body["error"], f"no error message: {body!r}"


#: What the server stack itself answers, before any heliport code runs, to bytes that are not a valid
#: HTTP/1.1 request (uvicorn over httptools) or WebSocket handshake (the websockets library). heliport
#: cannot shape these: no ASGI call happens. They are still 4xx, never 5xx.
SERVER_REFUSALS = (b"Invalid HTTP request received.", b"Failed to open a WebSocket connection:")


def check(reply: Reply, shape: Shape, expect: int | None = None, *, wire: bool = False) -> None:
    """No 5xx; the exact status where the contract names one; every 4xx a JSON error of ``shape``.

    ``wire``: a case the HTTP or WebSocket server parses before heliport (``wire:`` cases); its own
    plain-text 400 (:data:`SERVER_REFUSALS`) is accepted there, and only there.
    """
    assert reply.status < 500, f"server error: {reply.describe()}"
    if wire and reply.status == 400 and reply.body.strip().startswith(SERVER_REFUSALS):
        return
    if expect is not None:
        assert reply.status == expect, f"expected {expect}: {reply.describe()}"
    if 400 <= reply.status < 500:
        content_type = (reply.header("content-type") or "").split(";")[0].strip().lower()
        assert content_type == "application/json", f"4xx without a JSON content type: {reply.describe()}"
        if reply.method == "HEAD":
            return  # a HEAD answer carries the headers of the GET answer and no body
        try:
            body = json.loads(reply.body)
        except ValueError as exc:
            raise AssertionError(f"4xx body is not JSON ({exc}): {reply.describe()}") from None
        try:
            shape(body)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; answer: {reply.describe()}") from None


# --- sending a case ----------------------------------------------------------------------------------


def client(base_url: str) -> httpx.Client:
    """An httpx client that opens a connection per request: after a 5xx the server may close the
    connection it answered on, and a reused one would fail the next case instead of this one."""
    return httpx.Client(base_url=base_url, timeout=30, headers={"Connection": "close"})


@dataclass
class Target:
    """What a case is sent to: the running heliport and the values standing behind the markers."""

    url: str
    client: httpx.Client
    markers: dict[bytes, bytes]

    def fill(self, data: bytes) -> bytes:
        for marker, value in self.markers.items():
            if marker in data:
                data = data.replace(marker, value)
        return data


def send_case(
    target: Target,
    case: Any,
    *,
    method: str,
    path: str,
    credential: tuple[bytes, bytes] | None,
    route_headers: Iterable[tuple[bytes, bytes]] = (),
) -> Reply:
    """Send a :class:`tests.fuzz.corpus.Case` to ``method path`` (the route's own, unless the case
    names others), with the family's credential unless the case brings its own."""
    fill = target.fill
    request_target = fill(case.target) if case.target is not None else fill(path.encode() + case.suffix)
    headers = list(route_headers)
    if case.auth and credential is not None:
        headers.append((credential[0], fill(credential[1])))
    if case.body is not None and case.content_type is not None:
        headers.append((b"Content-Type", case.content_type))
    headers += [(name, fill(value)) for name, value in case.headers]
    body = fill(case.body) if case.body is not None else None
    verb = case.method or method
    if case.raw:
        if case.chunked and body is not None:
            headers.append((b"Transfer-Encoding", b"chunked"))
            body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
        return raw_request(target.url, verb.encode(), request_target, headers, body)
    content: Any = body
    if case.chunked and body is not None:
        half = len(body) // 2
        content = iter([body[:half], body[half:]])
    response = target.client.request(verb, request_target.decode("ascii"), headers=headers, content=content)
    return from_httpx(response)
