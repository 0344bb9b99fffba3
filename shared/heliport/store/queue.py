"""The log queue port: where the proxy hands each log record; SQLite (or memory) locally, SQS in AWS.

``send`` returns only once the record is durable, because the proxy acknowledges nothing it could
still lose; when the queue cannot take it, ``QueueUnavailableError`` sends the caller to its
fallback (the spool, ``logs/spool.py``).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, Protocol, TypeVar

import msgspec

from heliport.background import paced
from heliport.errors import HeliportError
from heliport.logs.record import LogRecord
from heliport.store.aws import SqsAdapter, retryable_error
from heliport.store.sqlite import Checkpointer, connect
from heliport.store.sqs_send import SendRefusedError, SendUnavailableError, SqsSender

__all__ = ["LogQueue", "MemoryQueue", "QueueUnavailableError", "Queued", "SqliteQueue", "SqsQueue"]

_log = logging.getLogger(__name__)

_T = TypeVar("_T")


class LogQueue(Protocol):
    async def send(self, record: LogRecord) -> None:
        """Return only once the record is durably accepted; raise if it could not be."""
        ...

    async def aclose(self) -> None: ...


class QueueUnavailableError(HeliportError):
    """The log queue did not accept a record: retries ran out, or the queue refused it outright."""

    status = 503
    code = "queue_unavailable"


# --- local ----------------------------------------------------------------------------------------


class MemoryQueue:
    """A queue that keeps records in a list: the test sink, and nothing more."""

    def __init__(self) -> None:
        self.records: list[LogRecord] = []

    async def send(self, record: LogRecord) -> None:
        self.records.append(record)

    async def aclose(self) -> None:
        return None


# ``seq`` is the rowid without AUTOINCREMENT: a new row's is one above the largest present, so the queue
# stays in order, and a commit writes one page less (AUTOINCREMENT updates ``sqlite_sequence`` every time).
# A seq is only reused once its row and every later one are gone, and the consumer deletes only rows it
# has read. Files made before keep their AUTOINCREMENT; both behave the same here.
_QUEUE_SCHEMA = """
CREATE TABLE IF NOT EXISTS log_queue (
    seq INTEGER PRIMARY KEY,
    request_id TEXT NOT NULL,
    body BLOB NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0
);
"""


class Queued(msgspec.Struct, frozen=True, kw_only=True):
    """One record as the local queue holds it: decoded when it can be, with the bytes either way."""

    seq: int
    request_id: str
    #: Times the consumer has already tried and failed to store it.
    attempts: int
    body: bytes
    #: None when ``body`` cannot be decoded; ``error`` then says why.
    record: LogRecord | None
    error: str | None = None


class SqliteQueue:
    """A durable in-process queue: ``send`` returns once the record is committed to SQLite.

    A record sent while nothing else is being written is committed at once, on the caller's thread
    (about 0.1 ms without a hop to a thread and back, which cost as much again; see ``send``).
    Otherwise one writer thread drains whatever has accumulated and commits it in one transaction
    (group commit), so concurrent requests share a commit instead of queueing behind one each. A
    crash loses nothing ``send`` has returned for.

    The writer thread starts on the first ``send``: a process that only reads the queue (``heliport
    serve``'s log pipeline process, :mod:`heliport.logs.pipeline_process`) never runs one. Any number
    of processes may open the same file (WAL; SQLite's locks order their writes).
    """

    def __init__(self, path: Path) -> None:
        self._conn = connect(path)
        self._conn.executescript(_QUEUE_SCHEMA)
        columns = {row[1] for row in self._conn.execute("PRAGMA table_info(log_queue)")}
        if "attempts" not in columns:  # a queue file from before attempts were counted
            self._conn.execute("ALTER TABLE log_queue ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0")
        # The consumer reads through its own connection; the writer thread owns ``_conn``.
        self._reader = connect(path)
        # The writer's commits sit on every request's path: checkpoints happen beside them, never in them,
        # and a lock held by the pipeline's deletes is waited out in steps finer than SQLite's (_commit).
        self._checkpointer = Checkpointer(path)
        self._checkpointer.adopt(self._conn)
        self._conn.execute("PRAGMA busy_timeout=0")
        self._pending: deque[tuple[bytes, str, asyncio.Future[None]]] = deque()
        self._wake = threading.Condition()
        # Held by whoever writes through ``_conn``: the writer thread, or ``send`` committing directly.
        self._writing = threading.Lock()
        self._closed = False
        self._encoder = msgspec.json.Encoder()
        self._thread: threading.Thread | None = None

    async def send(self, record: LogRecord) -> None:
        body = self._encoder.encode(record)
        if self._closed:
            raise RuntimeError("queue is closed")
        if self._commit_now(record.request_id, body):
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        with self._wake:
            if self._closed:
                raise RuntimeError("queue is closed")
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="heliport-log-queue", daemon=True)
                self._thread.start()
            self._pending.append((body, record.request_id, future))
            self._wake.notify()
        await future

    def _commit_now(self, request_id: str, body: bytes) -> bool:
        """Commit one record on the calling thread if that costs no waiting; False sends it to the writer.

        Under ``heliport serve`` the commit sits before every response's last byte, and handing it to
        the writer thread and back (two wake-ups, the GIL passed twice) cost about as much CPU as the
        commit itself: 110-140 µs more per request and a longer tail at one connection
        (``docs/benchmarks.md``). The direct commit is taken only when no batch waits and the writer is
        idle, and only if the write lock is free at once (``busy_timeout`` is 0 on this connection):
        it never blocks the event loop on another process. Under load the writer's group commit still
        does the work.
        """
        if self._pending or not self._writing.acquire(blocking=False):
            return False
        try:
            self._insert([(request_id, body)])
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc):
                raise
            return False
        finally:
            self._writing.release()
        self._checkpointer.committed()
        return True

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._pending and not self._closed:
                    self._wake.wait()
                if not self._pending:
                    return
                batch = list(self._pending)
                self._pending.clear()
            error: BaseException | None = None
            try:
                self._commit([(request_id, body) for body, request_id, _ in batch])
            except sqlite3.Error as exc:
                error = exc
            else:
                self._checkpointer.committed()
            for _, _, future in batch:
                future.get_loop().call_soon_threadsafe(_settle, future, error)

    def _commit(self, rows: list[tuple[str, bytes]]) -> None:
        """Insert ``rows`` in one transaction, waiting out another connection's write lock in short steps.

        The log pipeline's deletes (another process, under ``heliport serve``) take the queue's write
        lock many times a second. SQLite's own busy handler sleeps 1, 2, 5, ... ms when it finds the
        lock taken, and every request waits for this commit: with it, those sleeps were most of what
        was left of serve's p99. The lock is held for well under a millisecond, so this loop retries
        after 0.1 ms, doubling up to 2 ms, for as long as ``connect``'s busy timeout would have.
        """
        deadline = time.monotonic() + _BUSY_WAIT_S
        delay = _BUSY_FIRST_DELAY
        while True:
            try:
                with self._writing:
                    self._insert(rows)
                return
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or time.monotonic() >= deadline:
                    raise
            time.sleep(delay)
            delay = min(delay * 2, _BUSY_MAX_DELAY)

    def _insert(self, rows: list[tuple[str, bytes]]) -> None:
        """One transaction on ``_conn``; the caller holds ``_writing``."""
        with self._conn:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.executemany(_INSERT, rows)

    def receive(self, limit: int = 100) -> list[Queued]:
        """The oldest records still queued. One that cannot be decoded comes back with its error
        instead of failing the others (the consumer keeps it as a dead letter)."""
        rows = self._reader.execute(
            "SELECT seq, request_id, attempts, body FROM log_queue ORDER BY seq LIMIT ?", (limit,)
        ).fetchall()
        received: list[Queued] = []
        for seq, request_id, attempts, body in paced(rows):
            body = bytes(body)
            try:
                record, error = _queued_decoder.decode(body), None
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                record, error = None, str(exc)
            received.append(
                Queued(seq=seq, request_id=request_id, attempts=attempts, body=body, record=record, error=error)
            )
        return received

    def delete(self, seqs: list[int]) -> None:
        self._update("DELETE FROM log_queue WHERE seq IN ({})", seqs)

    def retry_later(self, seqs: list[int]) -> None:
        """Count a failed attempt at each of these records; they stay at the head of the queue."""
        self._update("UPDATE log_queue SET attempts = attempts + 1 WHERE seq IN ({})", seqs)

    def _update(self, statement: str, seqs: list[int]) -> None:
        """One statement per chunk of seqs, all in one transaction: the queue's write lock is taken
        once per batch, not once per record. The proxy's writer (possibly another process) waits for
        that lock, and SQLite's busy handler sleeps at least a millisecond each time it finds it taken."""
        if not seqs:
            return
        with self._reader:
            self._reader.execute("BEGIN IMMEDIATE")
            for start in range(0, len(seqs), _SEQS_PER_STATEMENT):
                chunk = seqs[start : start + _SEQS_PER_STATEMENT]
                self._reader.execute(statement.format(",".join("?" * len(chunk))), chunk)

    async def aclose(self) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify()
            thread = self._thread
        if thread is not None:
            await asyncio.to_thread(thread.join)
        await asyncio.to_thread(self._checkpointer.close)
        self._conn.close()
        self._reader.close()


_queued_decoder = msgspec.json.Decoder(LogRecord)
_INSERT = "INSERT INTO log_queue (request_id, body) VALUES (?, ?)"
#: The writer's wait for the queue's write lock (``SqliteQueue._commit``): first step, longest step, total.
_BUSY_FIRST_DELAY = 0.0001
_BUSY_MAX_DELAY = 0.002
_BUSY_WAIT_S = 5.0
#: Bound parameters per statement, well below SQLite's limit (32,766; 999 in builds before 3.32).
_SEQS_PER_STATEMENT = 500


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    """Another connection holds the write lock (SQLITE_BUSY, any extended code)."""
    return getattr(exc, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_BUSY


def _settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


# --- SQS ----------------------------------------------------------------------------------------


class SqsQueue(SqsAdapter):
    """The log queue on SQS: ``send`` returns once SQS has stored the record.

    ``send`` goes through :class:`~heliport.store.sqs_send.SqsSender` (a signed ``SendMessageBatch``
    without the SDK client's per-call cost; records sent while others are in flight share a batch),
    with the same attempts, backoff and errors as below; ``receive`` and ``delete`` use aioboto3.

    botocore's own retries are off so that this class's are the only ones: a bounded number of
    attempts with exponential backoff and jitter, after which :class:`QueueUnavailableError` tells
    the caller to fall back (spool) instead of holding a response open. Errors no retry can fix (a
    missing queue, a refused message) raise it at once.

    ``read_timeout`` bounds every call, so ``receive`` clamps its long-poll wait to below it; a
    consumer that wants 20 s polls makes its queue with a longer ``read_timeout``.
    """

    _encoder = msgspec.json.Encoder()
    _decoder = msgspec.json.Decoder(LogRecord)

    @functools.cached_property
    def _sender(self) -> SqsSender:
        """``send``'s path (sqs_send.py): the SDK's send_message cost about 1.2 ms of CPU per record, most
        of the deployed hot path. receive and delete stay on aioboto3."""
        return SqsSender(
            self._url,
            region=self._region,
            endpoint_url=self._endpoint_url,
            attempts=self._attempts,
            backoff=self._backoff,
            connect_timeout=self._connect_timeout,
            read_timeout=self._read_timeout,
        )

    async def send(self, record: LogRecord) -> None:
        """Return once SQS stored ``record`` (attributes ``request_id`` and ``v``); records sent while
        others are in flight share a ``SendMessageBatch``."""
        encoded = self._encoder.encode(record)
        try:
            await self._sender.send(encoded.decode(), len(encoded), record.request_id, record.v)
        except SendRefusedError as exc:
            raise QueueUnavailableError(f"log queue refused SendMessage: {exc.code}") from exc
        except SendUnavailableError as exc:
            raise QueueUnavailableError(
                f"log queue unavailable for SendMessage after {self._attempts} attempts"
            ) from exc.__cause__

    async def aclose(self) -> None:
        await self._sender.aclose()
        await super().aclose()

    async def receive(self, max_messages: int = 10, wait_seconds: float = 0) -> list[tuple[str, LogRecord]]:
        """Up to ``max_messages`` (at most 10, SQS's limit) records, each with its receipt handle.

        A message that does not decode as a :class:`LogRecord` is logged and left alone: it comes
        back after its visibility timeout until the queue's redrive policy moves it to the DLQ.
        """
        wait = int(max(0, min(wait_seconds, 20, self._read_timeout - 1)))

        async def call(client: Any) -> dict[str, Any]:
            response: dict[str, Any] = await client.receive_message(
                QueueUrl=self._url,
                MaxNumberOfMessages=max(1, min(max_messages, 10)),
                WaitTimeSeconds=wait,
                MessageAttributeNames=["All"],
            )
            return response

        response = await self._call("ReceiveMessage", call)
        received: list[tuple[str, LogRecord]] = []
        for message in response.get("Messages", []):
            try:
                received.append((message["ReceiptHandle"], self._decoder.decode(message["Body"])))
            except msgspec.DecodeError:
                _log.warning("undecodable log queue message %s left for the DLQ", message.get("MessageId"))
        return received

    async def delete(self, receipt_handles: Iterable[str]) -> None:
        """Delete received messages, ten per call (SQS's batch limit).

        A handle SQS refuses (expired, say) is logged, not raised: its message comes back and is
        handled again, which consumers must tolerate anyway since SQS delivers at least once.
        """
        handles = list(receipt_handles)
        for start in range(0, len(handles), 10):
            entries = [{"Id": str(i), "ReceiptHandle": h} for i, h in enumerate(handles[start : start + 10])]

            async def call(client: Any, entries: list[dict[str, str]] = entries) -> dict[str, Any]:
                response: dict[str, Any] = await client.delete_message_batch(QueueUrl=self._url, Entries=entries)
                return response

            response = await self._call("DeleteMessageBatch", call)
            for failed in response.get("Failed", []):
                _log.warning("log queue delete failed: %s %s", failed.get("Code"), failed.get("Message"))

    async def _call(self, operation: str, call: Callable[[Any], Awaitable[_T]]) -> _T:
        """Run ``call`` with the client, retrying transient failures, else raise QueueUnavailableError."""
        from botocore.exceptions import ClientError, HTTPClientError
        from botocore.exceptions import ConnectionError as BotoConnectionError

        client = await self._client.get()
        error: Exception | None = None
        for attempt in range(self._attempts):
            try:
                return await call(client)
            except (BotoConnectionError, HTTPClientError) as exc:
                error = exc
            except ClientError as exc:
                if not retryable_error(exc):
                    code = exc.response.get("Error", {}).get("Code", "?")
                    raise QueueUnavailableError(f"log queue refused {operation}: {code}") from exc
                error = exc
            if attempt + 1 < self._attempts:
                await asyncio.sleep(self._backoff(attempt))
        raise QueueUnavailableError(f"log queue unavailable for {operation} after {self._attempts} attempts") from error
