"""Fixtures shared by the tests of the pre-forward checks (``heliport.steps``).

Each check is driven end to end: a live heliport on loopback (tests/harness.py) in front of the mock
provider, called with the official SDKs. The checks differ mostly in settings (a classifier model,
fail-open, an unreachable upstream), so the fixture here is a factory: ``step_gateway(**settings)``
starts a heliport with those settings and stops it when the test module ends.

Nothing heavy is imported at module level (tests/test_conftest_is_light.py): the harness and the mock
come in with the first fixture that needs them.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tests.harness import Gateway
    from tests.mock_provider import MockProvider

#: What ``step_gateway`` returns: start a heliport in front of the mock with these settings.
StartGateway = Callable[..., "Gateway"]


@pytest.fixture(scope="module")
def step_gateway(mock_provider: MockProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartGateway]:
    """A factory of heliports in front of the mock, all stopped at the end of the module.

    ``provider_env`` defaults to an OpenAI and an Anthropic account (the AI gateway's own keys);
    ``upstream_overrides`` to the mock for every provider the tests use. Other keyword arguments are
    :class:`heliport.config.Settings` fields.
    """
    from tests.harness import start_gateway

    started: list[Gateway] = []

    def start(**settings: Any) -> Gateway:
        settings.setdefault(
            "provider_env", {"OPENAI_API_KEY": "sk-gateway-openai", "ANTHROPIC_API_KEY": "sk-ant-gateway"}
        )
        settings.setdefault(
            "upstream_overrides",
            {name: mock_provider.url for name in ("oai", "openai", "anthropic", "groq")},
        )
        gw = start_gateway(tmp_path_factory.mktemp("steps"), mock_provider.url, **settings)
        started.append(gw)
        return gw

    yield start
    for gw in started:
        gw.stop()


@pytest.fixture(scope="session")
def closed_origin() -> Iterator[str]:
    """An ``http://127.0.0.1:<port>`` origin where nothing listens: an upstream that cannot be reached.

    The port stays bound (without listening) for the session, so connections to it are refused and
    no other server in the run can take it.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
