"""The ASGI plumbing every surface shares: here, what the disconnect watch leaves behind."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator

import pytest

from heliport.asgi import Message, cancel_on_disconnect

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def collector_off() -> Iterator[None]:
    """With the cycle collector off, only reference counting frees: what a cycle holds stays."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _silent_client() -> tuple[asyncio.Event, object]:
    """A ``receive`` that waits as a server's does once the body is read: until the client goes away."""
    gone = asyncio.Event()

    async def receive() -> Message:
        await gone.wait()
        return {"type": "http.disconnect"}

    return gone, receive


def _watcher_of(before: set[asyncio.Task[object]]) -> weakref.ref[asyncio.Task[object]]:
    (watcher,) = asyncio.all_tasks() - before
    return weakref.ref(watcher)


async def test_a_request_that_ends_normally_leaves_no_cycle(collector_off: None) -> None:
    """The watcher is cancelled when the block ends. A cancelled task keeps its CancelledError, whose
    traceback holds the watcher's frames, the watch, the handler's task and the server's request:
    one reference cycle per request, each found only by a collection that paused the proxy for
    2-12 ms (docs/benchmarks.md). With the collector off, the watcher must be freed all the same."""
    gone, receive = _silent_client()
    before = asyncio.all_tasks()
    async with cancel_on_disconnect(receive) as watch:  # type: ignore[arg-type]
        await asyncio.sleep(0)
        watcher = _watcher_of(before)
    for _ in range(3):  # the cancel is delivered, then the done callbacks run
        await asyncio.sleep(0)
    assert not watch.cancelled
    del watch
    assert watcher() is None
    gone.set()


async def test_a_disconnect_still_cuts_the_block_short_and_leaves_no_cycle(collector_off: None) -> None:
    gone, receive = _silent_client()
    before = asyncio.all_tasks()
    reached_end = False
    async with cancel_on_disconnect(receive) as watch:  # type: ignore[arg-type]
        await asyncio.sleep(0)
        watcher = _watcher_of(before)
        gone.set()
        await asyncio.sleep(10)  # the disconnect cancels this
        reached_end = True
    for _ in range(3):
        await asyncio.sleep(0)
    assert watch.disconnected and watch.cancelled and not reached_end
    del watch
    assert watcher() is None


async def test_a_cancel_from_elsewhere_propagates(collector_off: None) -> None:
    """Only the watch's own cancel is absorbed: a server shutting down still cancels the handler."""
    _, receive = _silent_client()

    async def handler() -> None:
        async with cancel_on_disconnect(receive):  # type: ignore[arg-type]
            await asyncio.sleep(10)

    task = asyncio.get_running_loop().create_task(handler())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
