"""An encoder for AWS's ``application/vnd.amazon.eventstream`` framing, so the mock can speak Bedrock.

Each message on the wire is::

    total length (u32) | headers length (u32) | prelude CRC32 (u32)
    headers: name length (u8), name, value type (u8, 7 = string), value length (u16), value
    payload
    message CRC32 (u32, over everything before it)

all big-endian. Only string headers are written: that is all Bedrock's ConverseStream uses
(``:event-type``, ``:content-type``, ``:message-type``, and ``:exception-type`` on exceptions).
Written independently of botocore's decoder so that tests decoding these bytes with it check two
implementations against each other.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Mapping
from typing import Any

import msgspec

_STRING = 7
_PRELUDE = struct.Struct(">II")
_U32 = struct.Struct(">I")
_ENCODER = msgspec.json.Encoder()


def _crc(data: bytes, previous: int = 0) -> int:
    return zlib.crc32(data, previous) & 0xFFFFFFFF


def encode_headers(headers: Mapping[str, str]) -> bytes:
    """Headers as string-typed header records, in the mapping's order."""
    out = bytearray()
    for name, value in headers.items():
        raw_name, raw_value = name.encode("utf-8"), value.encode("utf-8")
        if len(raw_name) > 255 or len(raw_value) > 0xFFFF:
            raise ValueError(f"event-stream header {name!r} is too long")
        out += bytes((len(raw_name),)) + raw_name + bytes((_STRING,)) + struct.pack(">H", len(raw_value)) + raw_value
    return bytes(out)


def encode_message(headers: Mapping[str, str], payload: bytes) -> bytes:
    """One complete event-stream message."""
    raw_headers = encode_headers(headers)
    total = _PRELUDE.size + _U32.size + len(raw_headers) + len(payload) + _U32.size
    prelude = _PRELUDE.pack(total, len(raw_headers))
    head = prelude + _U32.pack(_crc(prelude)) + raw_headers + payload
    return head + _U32.pack(_crc(head))


def event_message(event_type: str, payload: Mapping[str, Any]) -> bytes:
    """A ConverseStream event (``messageStart``, ``contentBlockDelta``, ...) with a JSON payload."""
    headers = {":event-type": event_type, ":content-type": "application/json", ":message-type": "event"}
    return encode_message(headers, _ENCODER.encode(payload))


def exception_message(exception_type: str, payload: Mapping[str, Any]) -> bytes:
    """A modelled stream exception (``throttlingException``, ...); ``payload`` holds at least ``message``."""
    headers = {":exception-type": exception_type, ":content-type": "application/json", ":message-type": "exception"}
    return encode_message(headers, _ENCODER.encode(payload))
