"""The log queue's send path to SQS without the SDK's per-call machinery: one signed POST per batch.

aioboto3's ``send_message`` costs about 1.2 ms of CPU per call (measured in ``bench/deployed_path.py``):
parameter validation, the event hooks, serialisation, signing, aiobotocore's HTTP layer and the
response parser. The proxy sends one record per request, so that was most of the deployed hot
path. This module sends the same thing for a fraction of it:

* the request is SQS's JSON protocol (``AmazonSQS.SendMessageBatch``, ``application/x-amz-json-1.0``,
  as botocore itself speaks it since 1.31), its body built once with msgspec;
* it is signed by **botocore's** ``SigV4Auth`` (never a signer of our own), with credentials
  resolved once by botocore's provider chain; refreshable credentials are refreshed (off the event
  loop) when botocore says they need it;
* it goes over one pooled aiohttp session, kept for the sender's life;
* records that arrive while earlier sends are in flight go together in the next batch (group
  commit, as ``SqliteQueue`` does with its commits): at most ``MAX_BATCH_ENTRIES`` entries and
  ``MAX_BATCH_BYTES`` per batch (SQS's limits). A record never waits for company: with a free slot
  it goes at once, alone.

The semantics are the SDK path's: :meth:`SqsSender.send` returns only once SQS answered that it
stored the record; transient failures (connection errors, 5xx, throttling codes) are retried a
bounded number of times with the caller's backoff, per entry for a batch's partial failures; errors
no retry can fix raise :class:`SendRefusedError` at once, exhausted retries :class:`SendUnavailableError`.
A connection that dropped under a request (a keep-alive connection that died while Lambda froze the
environment) is retried once without the backoff: the retry dials a new one.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

import msgspec

from heliport.store.aws import retryable_code

if TYPE_CHECKING:
    import aiohttp
    from botocore.credentials import Credentials

__all__ = ["MAX_BATCH_BYTES", "MAX_BATCH_ENTRIES", "SendRefusedError", "SendUnavailableError", "SqsSender"]

_log = logging.getLogger(__name__)

#: SendMessageBatch's limits: ten entries, and 1 MiB for all of their bodies and attributes together.
MAX_BATCH_ENTRIES: Final = 10
MAX_BATCH_BYTES: Final = 1024 * 1024
#: Bytes the two attributes (``request_id``, ``v``) add to an entry beyond the request id itself:
#: names, data types and the version number, counted generously.
_ATTRIBUTE_OVERHEAD: Final = 64

_TARGET: Final = "AmazonSQS.SendMessageBatch"
_CONTENT_TYPE: Final = "application/x-amz-json-1.0"


class SendRefusedError(Exception):
    """SQS refused the record for a reason no retry can fix (a missing queue, an invalid message)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class SendUnavailableError(Exception):
    """SQS did not store the record within the attempts allowed; ``__cause__`` holds the last error."""


class _Transient(Exception):
    """One attempt failed in a way another attempt may not: an error code worth retrying."""

    def __init__(self, message: str, *, dropped: bool = False) -> None:
        super().__init__(message)
        #: The connection went away under the request (no answer came): worth one retry at once.
        self.dropped = dropped


# --- the wire records (SQS JSON protocol) ---------------------------------------------------------


class _Attribute(msgspec.Struct):
    DataType: str
    StringValue: str


class _Entry(msgspec.Struct):
    Id: str
    MessageBody: str
    MessageAttributes: dict[str, _Attribute]


class _SendMessageBatch(msgspec.Struct):
    QueueUrl: str
    Entries: list[_Entry]


class _Succeeded(msgspec.Struct):
    Id: str


class _Failed(msgspec.Struct):
    Id: str
    SenderFault: bool = False
    Code: str = ""
    Message: str = ""


class _BatchResult(msgspec.Struct):
    Successful: list[_Succeeded] = []
    Failed: list[_Failed] = []


class _ErrorBody(msgspec.Struct, rename={"kind": "__type"}):
    """A JSON-protocol error: ``{"__type": "com.amazonaws.sqs#QueueDoesNotExist", "message": ...}``."""

    kind: str = ""


_encoder: Final = msgspec.json.Encoder()
_result_decoder: Final = msgspec.json.Decoder(_BatchResult)
_error_decoder: Final = msgspec.json.Decoder(_ErrorBody)


class _Pending:
    """One record waiting for its batch, and the future its sender awaits."""

    __slots__ = ("entry", "future", "size")

    def __init__(self, entry: _Entry, size: int, future: asyncio.Future[None]) -> None:
        self.entry = entry
        self.size = size
        self.future = future


class _Endpoint:
    """What every send needs and is worth resolving only once: credentials, region, URL, HTTP session."""

    def __init__(self, credentials: Credentials, region: str, url: str, session: aiohttp.ClientSession) -> None:
        self.credentials = credentials
        self.region = region
        self.url = url
        self.session = session


class SqsSender:
    """Sends log records to one SQS queue, batching those that arrive while earlier sends are in flight.

    ``max_in_flight`` batches go at once: with one, a slow or retrying batch would hold up every
    record behind it; with many, records would rarely share a batch. Two keeps both in check.
    """

    def __init__(
        self,
        queue_url: str,
        *,
        region: str | None,
        endpoint_url: str | None,
        attempts: int,
        backoff: Callable[[int], float],
        connect_timeout: float,
        read_timeout: float,
        max_in_flight: int = 2,
    ) -> None:
        self._queue_url = queue_url
        self._region = region
        self._endpoint_url = endpoint_url
        self._attempts = attempts
        self._backoff = backoff
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._max_in_flight = max_in_flight
        self._pending: deque[_Pending] = deque()
        self._in_flight = 0
        self._flights: set[asyncio.Task[None]] = set()
        self._endpoint: _Endpoint | None = None
        self._opening = asyncio.Lock()
        self._closed = False
        #: ``send`` calls not yet returned: ``aclose`` waits for them.
        self._active = 0

    async def send(self, body: str, size: int, request_id: str, version: int) -> None:
        """Return once SQS stored the message ``body`` (``size`` bytes as UTF-8) with its attributes."""
        if self._closed:
            raise RuntimeError("sender is closed")
        self._active += 1
        try:
            await self._send(body, size, request_id, version)
        finally:
            self._active -= 1

    async def _send(self, body: str, size: int, request_id: str, version: int) -> None:
        if self._endpoint is None:
            await self._open()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = _Entry(
            Id="",  # numbered when its batch is made
            MessageBody=body,
            MessageAttributes={
                "request_id": _Attribute(DataType="String", StringValue=request_id),
                "v": _Attribute(DataType="Number", StringValue=str(version)),
            },
        )
        item = _Pending(entry, size + len(request_id) + _ATTRIBUTE_OVERHEAD, future)
        if not self._pending and self._in_flight < self._max_in_flight:
            # Nobody waiting and a slot free (always so at one request at a time): send it from this
            # task, without a task or a hand-over per record.
            self._in_flight += 1
            try:
                await self._send_batch([item])
            except Exception as exc:  # settled already unless something unexpected broke
                _settle(future, exc)
            finally:
                self._in_flight -= 1
                self._launch()  # after close too: records already accepted still go
        else:
            self._pending.append(item)
            self._launch()
        await future

    def _launch(self) -> None:
        """Start a batch of what is pending for every free slot."""
        while self._pending and self._in_flight < self._max_in_flight:
            batch = [self._pending.popleft()]
            total = batch[0].size
            while self._pending and len(batch) < MAX_BATCH_ENTRIES and total + self._pending[0].size <= MAX_BATCH_BYTES:
                item = self._pending.popleft()
                batch.append(item)
                total += item.size
            self._in_flight += 1
            task = asyncio.get_running_loop().create_task(self._fly(batch))
            self._flights.add(task)
            task.add_done_callback(self._flights.discard)

    async def _fly(self, batch: list[_Pending]) -> None:
        try:
            await self._send_batch(batch)
        except BaseException as exc:  # never leave a sender waiting, whatever went wrong
            for item in batch:
                _settle(item.future, exc if isinstance(exc, Exception) else RuntimeError("send cancelled"))
            if not isinstance(exc, Exception):
                raise
        finally:
            self._in_flight -= 1
            self._launch()  # after close too: records already accepted still go

    async def _send_batch(self, batch: list[_Pending]) -> None:
        """Send ``batch`` until every entry is stored or refused, or the attempts run out."""
        remaining: dict[str, _Pending] = {}
        for number, item in enumerate(batch):
            item.entry.Id = str(number)
            remaining[item.entry.Id] = item
        error: Exception | None = None
        redialled = False
        for attempt in range(self._attempts):
            try:
                result = await self._post([item.entry for item in remaining.values()])
            except _Transient as exc:
                error = exc
                if exc.dropped and not redialled and attempt + 1 < self._attempts:
                    # A pooled connection that died while idle, as keep-alive connections do while
                    # Lambda freezes the environment: the next attempt dials afresh, so it need not
                    # wait a backoff (50-100 ms, billed after the response). Once per batch.
                    redialled = True
                    continue
            except SendRefusedError as exc:
                for item in remaining.values():
                    _settle(item.future, SendRefusedError(exc.code))
                return
            else:
                for succeeded in result.Successful:
                    item_done = remaining.pop(succeeded.Id, None)
                    if item_done is not None:
                        _settle(item_done.future, None)
                for failed in result.Failed:
                    item_failed = remaining.get(failed.Id)
                    if item_failed is None:
                        continue
                    if failed.SenderFault and not retryable_code(failed.Code, 0):
                        # The sender's fault (an invalid body, say): the same entry would fail again.
                        del remaining[failed.Id]
                        _settle(item_failed.future, SendRefusedError(failed.Code or "SenderFault"))
                    else:
                        error = _Transient(f"entry failed: {failed.Code} {failed.Message}")
                if not remaining:
                    return
                if error is None:  # neither stored nor failed: SQS said nothing of them, so try again
                    error = _Transient("entries missing from SendMessageBatch's answer")
            if attempt + 1 < self._attempts:
                await asyncio.sleep(self._backoff(attempt))
        for item in remaining.values():
            unavailable = SendUnavailableError(f"not stored after {self._attempts} attempts")
            # The error underneath (the connection error, say), as the SDK path reported it.
            unavailable.__cause__ = error.__cause__ if error is not None and error.__cause__ is not None else error
            _settle(item.future, unavailable)

    async def _post(self, entries: list[_Entry]) -> _BatchResult:
        """One signed ``SendMessageBatch``; its result, or ``_Transient`` / ``SendRefusedError``."""
        import aiohttp

        endpoint = self._endpoint
        assert endpoint is not None
        body = _encoder.encode(_SendMessageBatch(QueueUrl=self._queue_url, Entries=entries))
        headers = await self._sign(endpoint, body)
        try:
            async with endpoint.session.post(endpoint.url, data=body, headers=headers) as response:
                payload = await response.read()
                status = response.status
                query_error = response.headers.get("x-amzn-query-error", "")
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
            # Refused connects are not a dropped connection: the queue is down, so back off.
            dropped = not isinstance(exc, aiohttp.ClientConnectorError)
            raise _Transient(f"{type(exc).__name__}: {exc}", dropped=dropped) from exc
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise _Transient(f"{type(exc).__name__}: {exc}") from exc
        if status == 200:
            try:
                return _result_decoder.decode(payload)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                raise _Transient(f"undecodable SendMessageBatch answer: {exc}") from exc
        code = _error_code(status, payload, query_error)
        if retryable_code(code, status):
            raise _Transient(f"HTTP {status} {code}")
        raise SendRefusedError(code)

    async def _sign(self, endpoint: _Endpoint, body: bytes) -> dict[str, str]:
        """The request's headers, signed by botocore's SigV4 signer with current credentials."""
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        credentials = endpoint.credentials
        refresh_needed = getattr(credentials, "refresh_needed", None)
        if refresh_needed is not None and refresh_needed():
            # A refresh may call STS or the container credentials endpoint: not on the event loop.
            frozen = await asyncio.to_thread(credentials.get_frozen_credentials)
        else:
            frozen = credentials.get_frozen_credentials()
        request = AWSRequest(
            method="POST",
            url=endpoint.url,
            data=body,
            # As botocore sends it: SQS is "query compatible", so errors keep their query-protocol codes.
            headers={"Content-Type": _CONTENT_TYPE, "X-Amz-Target": _TARGET, "x-amzn-query-mode": "true"},
        )
        SigV4Auth(frozen, "sqs", endpoint.region).add_auth(request)
        return dict(request.headers.items())

    async def _open(self) -> None:
        """Resolve region, credentials and endpoint as botocore's client would, and open the session."""
        async with self._opening:
            if self._endpoint is not None:
                return
            import aiohttp

            credentials, region, url = await asyncio.to_thread(self._resolve)
            timeout = aiohttp.ClientTimeout(sock_connect=self._connect_timeout, sock_read=self._read_timeout)
            session = aiohttp.ClientSession(
                timeout=timeout,
                connector=aiohttp.TCPConnector(limit=max(10, self._max_in_flight * 2)),
                skip_auto_headers=("User-Agent",),
                auto_decompress=False,
            )
            self._endpoint = _Endpoint(credentials, region, url, session)

    def _resolve(self) -> tuple[Credentials, str, str]:
        """(credentials, region, endpoint URL) from botocore's session and its endpoint rules (a thread)."""
        import botocore.session

        session = botocore.session.get_session()
        credentials = session.get_credentials()
        if credentials is None:
            raise SendRefusedError("NoCredentials")
        region = self._region or session.get_config_variable("region")
        if not region:
            raise SendRefusedError("NoRegion")
        url = self._endpoint_url
        if not url:
            # botocore's own endpoint rules (partitions, FIPS, dual-stack settings) name the endpoint.
            client = session.create_client(
                "sqs",
                region_name=region,
                aws_access_key_id=credentials.access_key,
                aws_secret_access_key=credentials.secret_key,
                aws_session_token=credentials.token,
            )
            url = str(client.meta.endpoint_url)
            client.close()
        return credentials, region, url

    async def aclose(self) -> None:
        """Wait for batches in flight, then close the HTTP session."""
        self._closed = True
        # Records already accepted still go: wait for every send not yet returned and every batch
        # in flight (each bounded by the timeouts and the attempts).
        while self._flights or self._active:
            if self._flights:
                await asyncio.gather(*list(self._flights), return_exceptions=True)
            else:
                await asyncio.sleep(0.005)
        endpoint, self._endpoint = self._endpoint, None
        if endpoint is not None:
            await endpoint.session.close()


def _error_code(status: int, payload: bytes, query_error: str) -> str:
    """The error code as botocore reports it: the query-compatible code when SQS sends one."""
    code, _, _ = query_error.partition(";")
    if code:
        return code
    try:
        kind = _error_decoder.decode(payload).kind
    except (msgspec.DecodeError, msgspec.ValidationError):
        kind = ""
    return kind.rpartition("#")[2].partition(":")[0] or f"HTTP{status}"


def _settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():  # its sender was cancelled: nothing waits for the answer
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)
