"""Retries of one upstream attempt (``Helicone-Retry-Enabled: true``).

Only what comes back before a single byte reached the client is retried: a 429 or 5xx status, or a
connection that failed or timed out. Once the response starts streaming it is the client's, however
it ends. Waits grow exponentially from ``Helicone-Retry-Min-Timeout`` by ``-Factor``, randomised by
up to 2x as ``async-retry`` (Helicone's library) does, capped at ``-Max-Timeout``. A provider's
``Retry-After`` (or OpenAI's ``retry-after-ms``) is honoured when it asks for longer; when it asks
for more than the cap, heliport stops and returns that answer instead of holding the request.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from heliport.errors import UpstreamError
from heliport.headers import RequestOptions
from heliport.proxy.transport import UpstreamResponse

__all__ = ["RetryPolicy", "retry_after_seconds", "send_with_retries"]


def _retryable_status(status: int) -> bool:
    return status == 429 or status >= 500


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    retries: int
    factor: float
    min_seconds: float
    max_seconds: float

    @classmethod
    def from_options(cls, options: RequestOptions) -> RetryPolicy | None:
        if not options.retry_enabled:
            return None
        return cls(
            retries=options.retry_num,
            factor=options.retry_factor,
            min_seconds=options.retry_min_timeout_ms / 1000,
            max_seconds=options.retry_max_timeout_ms / 1000,
        )

    def wait(self, retry: int, retry_after: float | None, rng: random.Random) -> float | None:
        """Seconds to wait before retry number ``retry`` (0-based); None when the provider asks for too long."""
        backoff = min(self.min_seconds * self.factor**retry * rng.uniform(1, 2), self.max_seconds)
        if retry_after is None:
            return backoff
        if retry_after > self.max_seconds:
            return None
        return max(backoff, retry_after)


def retry_after_seconds(headers: Sequence[tuple[bytes, bytes]], now: datetime | None = None) -> float | None:
    """The wait a provider asked for: ``retry-after-ms``, else ``Retry-After`` (seconds or an HTTP date)."""
    values = {name.decode("latin-1").lower(): value.decode("latin-1").strip() for name, value in headers}
    if "retry-after-ms" in values:
        try:
            return max(0.0, float(values["retry-after-ms"]) / 1000)
        except ValueError:
            pass
    raw = values.get("retry-after")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


async def send_with_retries(
    send: Callable[[], Awaitable[UpstreamResponse]],
    policy: RetryPolicy | None,
    *,
    on_retry: Callable[[str], None],
    rng: random.Random | None = None,
) -> UpstreamResponse:
    """``send()`` once, or under ``policy`` until an answer worth returning; ``on_retry(why)`` per retry.

    The last answer is returned whatever its status, and the last connection error is raised.
    """
    if policy is None:
        return await send()
    rng = rng or random.Random()
    retry = 0
    while True:
        try:
            response = await send()
        except UpstreamError as err:
            if retry >= policy.retries:
                raise
            wait = policy.wait(retry, None, rng)
            why = err.message
        else:
            if not _retryable_status(response.status) or retry >= policy.retries:
                return response
            wait = policy.wait(retry, retry_after_seconds(response.headers), rng)
            if wait is None:  # the provider asked for longer than the caller allows
                return response
            response.close()
            why = f"status {response.status}"
        assert wait is not None
        on_retry(f"retry {retry + 1} of {policy.retries} after {why} (waited {wait * 1000:.0f} ms)")
        await asyncio.sleep(wait)
        retry += 1
