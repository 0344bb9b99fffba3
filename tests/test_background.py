"""Background processes hand their core back between units of work; everything else never does."""

from __future__ import annotations

import os
import time

import pytest

from heliport import background


@pytest.fixture
def yields(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The kernel's ``sched_yield`` (outside heliport), counted; and the module's switch restored."""
    calls: list[float] = []
    monkeypatch.setattr(os, "sched_yield", lambda: calls.append(time.perf_counter()))
    monkeypatch.setattr(background, "_slice", None)
    monkeypatch.setattr(background, "_last_pause", 0.0)
    return calls


def _work(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def test_a_process_that_did_not_ask_never_yields(yields: list[float]) -> None:
    for _ in range(50):
        _work(0.0005)
        background.pause_point()
    assert list(background.paced(range(5))) == [0, 1, 2, 3, 4]
    assert yields == []


def test_a_background_process_yields_once_per_slice_of_work(yields: list[float]) -> None:
    background.share_cores(0.001)
    for _ in range(20):
        _work(0.0011)  # more than a slice each time: a yield at every pause point
        background.pause_point()
    assert len(yields) == 20
    yields.clear()
    for _ in range(20):
        background.pause_point()  # no work in between: at most the first finds a slice gone by
    assert len(yields) <= 1


def test_paced_pauses_between_the_items_a_c_loop_pulls(yields: list[float]) -> None:
    background.share_cores(0.0001)
    pulled: list[int] = []
    for item in background.paced(range(10)):
        _work(0.0002)
        pulled.append(item)
    assert pulled == list(range(10))
    assert len(yields) == 10


def test_a_slice_must_be_positive(yields: list[float]) -> None:
    with pytest.raises(ValueError, match="slice_seconds"):
        background.share_cores(0)
