"""Lambda entry of the log consumer: an SQS batch in, request rows and bodies out.

The event source mapping sets ``ReportBatchItemFailures``, so only the messages listed in
``batchItemFailures`` come back. One event loop lives for the whole execution environment: the
database pool and the S3 client belong to it and are reused by every warm invocation.
"""

from __future__ import annotations

import asyncio
from typing import Any

from heliport.config import Settings
from heliport.logs.consumer import BatchResponse, LogWriter, handle_sqs_batch
from heliport.store.factory import open_blobs, open_logdb

_loop = asyncio.new_event_loop()
_settings = Settings.from_env()
_writer = LogWriter(open_logdb(_settings), open_blobs(_settings))


def handler(event: dict[str, Any], context: object) -> BatchResponse:
    return _loop.run_until_complete(handle_sqs_batch(event, _writer))
