"""Headers that steer the pass-through proxy's upstream are refused on the AI gateway with a 400 naming
them, never silently ignored: there the model string decides where a request goes."""

from __future__ import annotations

import openai
import pytest

from tests.gateway.conftest import client
from tests.harness import Gateway
from tests.mock_provider import MockProvider

FALLBACKS = '[{"target-url": "https://api.openai.com", "headers": {}, "onCodes": [429]}]'


@pytest.mark.parametrize(
    ("header", "value", "hint"),
    [
        ("Helicone-Fallbacks", FALLBACKS, '"model": "gpt-4o-mini,claude-3-5-haiku/anthropic"'),
        ("Helicone-Target-Url", "https://api.openai.com", "pass-through proxy"),
        ("Helicone-OpenAI-Api-Base", "https://example.openai.azure.com", "model/azure/<deployment>"),
    ],
)
def test_a_proxy_only_header_is_a_400_naming_it(
    ai_gateway: Gateway, mock_provider: MockProvider, header: str, value: str, hint: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client(ai_gateway).chat.completions.create(
            model="gpt-4o-mini/openai",
            messages=[{"role": "user", "content": "hi"}],
            extra_headers={header: value},
        )
    error = caught.value.body
    assert isinstance(error, dict)
    assert error["param"] == header
    assert header in error["message"] and hint in error["message"]
    assert mock_provider.requests == []


def test_the_same_request_without_them_is_served(ai_gateway: Gateway, mock_provider: MockProvider) -> None:
    answer = client(ai_gateway).chat.completions.create(
        model="gpt-4o-mini/openai", messages=[{"role": "user", "content": "hi"}]
    )
    assert answer.choices[0].message.content
    assert len(mock_provider.requests) == 1
