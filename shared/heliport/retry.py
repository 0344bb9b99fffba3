"""Retrying a send made after the fact (a webhook delivery, a PostHog export): the attempts and the waits.

Whatever is sent after a request's row is stored may fail in two ways: for now
(:class:`~heliport.outbox.RetryableDelivery`: a 5xx, 429, no answer, a connection failure) or for good
(:class:`~heliport.outbox.FinalDelivery`: any other answer, a refused address). :func:`send_with_retries`
makes the attempts of one send: after a retryable failure it waits :func:`backoff` (exponential,
jittered) and tries again, up to a number of attempts and, optionally, within a deadline; a final
failure ends it at once. The outcome says how many attempts were made and how the last one ended.

The in-process webhook dispatcher and the PostHog exporter retry this way. The AWS delivery function
makes one attempt per receive and lets SQS do the waiting, with the same :func:`backoff` as the message's
visibility timeout.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from heliport.outbox import FinalDelivery, RetryableDelivery

__all__ = ["Sent", "backoff", "send_with_retries"]

_T = TypeVar("_T")


def backoff(attempt: int, *, base: float, cap: float = math.inf, rng: random.Random | None = None) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1 for the first): ``base`` doubled for each
    further attempt, at most ``cap``, with jitter (50-100 %) so that receivers that recover are not hit
    by every waiting send at once."""
    step: float = min(cap, base * 2 ** (attempt - 1))
    return step * (rng.uniform(0.5, 1.0) if rng is not None else random.uniform(0.5, 1.0))


@dataclass(frozen=True, slots=True)
class Sent(Generic[_T]):
    """How a send ended: ``value`` is the successful attempt's result (None when none succeeded)."""

    value: _T | None
    #: Attempts made; 0 when the deadline had passed before the first.
    attempts: int
    #: The last failure's status (None when no answer came, or on success).
    status: int | None = None
    #: The last failure's message (None on success).
    error: str | None = None
    #: The send ended on a final failure (not by running out of attempts or time).
    final: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None


async def send_with_retries(
    attempt: Callable[[float | None], Awaitable[_T]],
    *,
    attempts: int,
    base: float,
    cap: float = math.inf,
    ends: float | None = None,
    rng: random.Random | None = None,
    least_wait: Callable[[RetryableDelivery], float | None] | None = None,
    started: Callable[[int], None] | None = None,
) -> Sent[_T]:
    """Up to ``attempts`` calls of ``attempt``, each given the seconds left before ``ends`` (a
    ``time.monotonic()`` instant; None: no deadline, and the argument is None).

    ``least_wait`` may raise the wait after a retryable failure (a server's ``Retry-After``); a wait that
    would reach past ``ends`` is not waited: the send ends there, saying so. ``started`` is told the
    number of each attempt as it starts (for a caller that may be cancelled mid-attempt).
    """
    status: int | None = None
    error = "not attempted"
    made = 0
    for number in range(1, attempts + 1):
        remaining = None if ends is None else ends - time.monotonic()
        if remaining is not None and remaining <= 0:
            break
        made = number
        if started is not None:
            started(number)
        try:
            return Sent(await attempt(remaining), number)
        except FinalDelivery as exc:
            return Sent(None, number, exc.status, str(exc), final=True)
        except RetryableDelivery as exc:
            status, error = exc.status, str(exc)
            if number == attempts:
                break
            wait = backoff(number, base=base, cap=cap, rng=rng)
            floor = least_wait(exc) if least_wait is not None else None
            if floor is not None:
                wait = max(wait, floor)
            if ends is not None and wait >= ends - time.monotonic():
                error += f" (no time left for attempt {number + 1} within the deadline)"
                break
            await asyncio.sleep(wait)
    return Sent(None, made, status, error)
