"""Fixtures for the realtime relay: the mock upstream, and a heliport with the whole log pipeline."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import Gateway, start_gateway
from tests.mock_provider.realtime import RealtimeMock


@pytest.fixture(scope="module")
def realtime_mock() -> Iterator[RealtimeMock]:
    with RealtimeMock() as mock:
        yield mock


@pytest.fixture(scope="module")
def relay(realtime_mock: RealtimeMock, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """heliport as ``heliport serve`` runs it (queue, consumer, SQLite log database), OpenAI and Azure
    pointed at the mock, a 0.2 s log interval so sessions are written in several parts."""
    data_dir: Path = tmp_path_factory.mktemp("realtime")
    gw = start_gateway(
        data_dir,
        realtime_mock.url,
        pipeline=True,
        upstream_overrides={"oai": realtime_mock.url, "azure": realtime_mock.url},
        realtime_log_interval=0.2,
    )
    gw.extra["data_dir"] = data_dir
    yield gw
    gw.stop()
