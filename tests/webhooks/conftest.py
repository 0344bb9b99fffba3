"""Fixtures shared by the webhook tests: a receiver on 127.0.0.1 and a heliport that trusts it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import Gateway, start_gateway
from tests.mock_provider import MockProvider
from tests.webhooks.receiver import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as standin:
        yield standin


@pytest.fixture
def served(
    tmp_path: Path, mock_provider: MockProvider, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Gateway]:
    """``heliport serve`` as it runs: the local log pipeline, the receiver a trusted origin (for the
    consumer's settings, and for the API, which reads HELIPORT_TRUSTED_ORIGINS from the process)."""
    monkeypatch.setenv("HELIPORT_TRUSTED_ORIGINS", receiver.url)
    gw = start_gateway(
        tmp_path, mock_provider.url, pipeline=True, trusted_origins=frozenset({mock_provider.url, receiver.url})
    )
    yield gw
    gw.stop()
