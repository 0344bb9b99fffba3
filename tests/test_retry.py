"""The attempts and waits every after-the-fact send shares (webhook deliveries, the PostHog export)."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import pytest

from heliport.outbox import FinalDelivery, RetryableDelivery
from heliport.retry import Sent, backoff, send_with_retries


class Script:
    """An attempt that fails as scripted (``None`` succeeds with status 200), recording what it was given."""

    def __init__(self, *outcomes: Exception | None) -> None:
        self.outcomes = list(outcomes)
        self.given: list[float | None] = []

    async def __call__(self, remaining: float | None) -> int:
        self.given.append(remaining)
        outcome = self.outcomes.pop(0) if len(self.outcomes) > 1 else self.outcomes[0]
        if outcome is not None:
            raise outcome
        return 200


def run(script: Script, **kwargs: Any) -> Sent[int]:
    options: dict[str, Any] = {"attempts": 3, "base": 0.001, "rng": random.Random(1)} | kwargs
    return asyncio.run(send_with_retries(script, **options))


def test_retryable_failures_are_tried_again_until_one_succeeds() -> None:
    script = Script(RetryableDelivery("busy", 503), RetryableDelivery("no answer"), None)
    started: list[int] = []
    sent = run(script, started=started.append)
    assert sent == Sent(200, 3) and sent.ok
    assert started == [1, 2, 3] and script.given == [None, None, None]


def test_a_final_failure_ends_the_send_at_once() -> None:
    sent = run(Script(RetryableDelivery("busy", 503), FinalDelivery("gone", 410)))
    assert sent == Sent(None, 2, 410, "gone", final=True) and not sent.ok


def test_out_of_attempts_the_last_failure_is_kept() -> None:
    sent = run(Script(RetryableDelivery("busy", 503), RetryableDelivery("down", 500)))
    assert (sent.value, sent.attempts, sent.status, sent.error, sent.final) == (None, 3, 500, "down", False)


def test_a_wait_past_the_deadline_is_not_waited() -> None:
    ends = time.monotonic() + 60
    sent = run(Script(RetryableDelivery("slow down", 429)), ends=ends, least_wait=lambda exc: 3600.0)
    assert sent.attempts == 1 and sent.error == "slow down (no time left for attempt 2 within the deadline)"


def test_each_attempt_is_given_the_time_left_and_none_starts_after_the_deadline() -> None:
    script = Script(None)
    sent = run(script, ends=time.monotonic() + 60)
    assert sent.ok and len(script.given) == 1
    given = script.given[0]
    assert given is not None and 0 < given <= 60
    late = Script(None)
    assert run(late, ends=time.monotonic() - 1) == Sent(None, 0, None, "not attempted")
    assert late.given == []


@pytest.mark.parametrize("attempt", [1, 2, 3, 4, 10])
def test_backoff_doubles_with_jitter_and_a_cap(attempt: int) -> None:
    rng = random.Random(attempt)
    for _ in range(50):
        wait = backoff(attempt, base=1.0, cap=8.0, rng=rng)
        step = min(8.0, 2.0 ** (attempt - 1))
        assert step / 2 <= wait <= step
