"""The response cache end to end: the official SDKs through heliport over HTTP, the mock as provider."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.harness import Gateway
from tests.mock_provider import MockProvider

MESSAGES = [{"role": "user", "content": "Say hello"}]


@pytest.fixture(autouse=True)
def _fresh_mock(mock_provider: MockProvider) -> None:
    mock_provider.clear()


def _cache_headers(**extra: str) -> dict[str, str]:
    # A fresh seed per test keeps tests from hitting each other's entries in the shared gateway.
    return {"Helicone-Cache-Enabled": "true", "Helicone-Cache-Seed": uuid.uuid4().hex, **extra}


def _chat(gateway: Gateway, headers: dict[str, str], **body: object) -> httpx.Response:
    payload = {"model": "gpt-4o-mini", "messages": MESSAGES, **body}
    response = httpx.post(
        f"{gateway.oai_base}/chat/completions",
        json=payload,
        headers={"Helicone-Auth": f"Bearer {gateway.key}", "Authorization": "Bearer sk-provider-a", **headers},
        timeout=10,
    )
    # The cache write happens just after the response; its log record marks that it is done.
    gateway.record(response.headers["helicone-id"])
    return response


def test_second_identical_request_is_a_hit(gateway: Gateway, mock_provider: MockProvider) -> None:
    headers = _cache_headers()
    client = gateway.openai(default_headers=headers)
    first = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    original = gateway.record(first.headers["helicone-id"])
    assert first.headers["helicone-cache"] == "MISS"
    assert not original.cache_hit

    second = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    assert second.headers["helicone-cache"] == "HIT"
    assert second.headers["helicone-cache-bucket-idx"] == "0"
    assert int(second.headers["helicone-cache-latency"]) >= 0
    assert second.headers["helicone-id"] != first.headers["helicone-id"]
    assert second.parse().model_dump() == first.parse().model_dump()
    assert len(mock_provider.requests) == 1  # the hit never reached the provider

    hit = gateway.record(second.headers["helicone-id"])
    assert hit.cache_hit and hit.status == 200
    assert hit.cache_reference_id == original.request_id
    assert hit.cached_latency_ms is not None and hit.cached_latency_ms > 0
    assert hit.response_body == original.response_body


def test_a_stream_replays_as_a_valid_stream(gateway: Gateway, mock_provider: MockProvider) -> None:
    client = gateway.openai(default_headers=_cache_headers())

    def run() -> tuple[str, str, object]:
        with client.chat.completions.with_streaming_response.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        ) as raw:
            chunks = list(raw.parse())
            gateway.record(raw.headers["helicone-id"])
            text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            return raw.headers.get("helicone-cache", ""), text, chunks[-1].usage

    miss, text, usage = run()
    hit, replayed, replayed_usage = run()
    assert (miss, hit) == ("MISS", "HIT")
    assert text and replayed == text
    assert replayed_usage == usage and usage is not None
    assert len(mock_provider.requests) == 1


def test_anthropic_stream_replays_through_the_anthropic_sdk(gateway: Gateway, mock_provider: MockProvider) -> None:
    client = gateway.anthropic(default_headers=_cache_headers())

    def run() -> tuple[str, str]:
        with client.messages.stream(model="claude-test-model", max_tokens=64, messages=MESSAGES) as stream:
            text = "".join(stream.text_stream)
            final = stream.get_final_message()
        assert final.usage.output_tokens > 0
        return text, final.id

    first, second = run(), run()
    assert first == second and first[0]
    assert len(mock_provider.requests) == 1


def test_ignored_keys_and_key_order_do_not_split_entries(gateway: Gateway, mock_provider: MockProvider) -> None:
    headers = _cache_headers(**{"Helicone-Cache-Ignore-Keys": "user,metadata"})
    first = _chat(gateway, headers, user="alice", temperature=0.5)
    # Same request, keys in another order, a different value for an ignored key.
    reordered = {"temperature": 0.5, "user": "bob", "messages": MESSAGES, "model": "gpt-4o-mini"}
    second = httpx.post(
        f"{gateway.oai_base}/chat/completions",
        content=httpx.Request("POST", "http://x", json=reordered).content,
        headers={
            "Helicone-Auth": f"Bearer {gateway.key}",
            "Authorization": "Bearer sk-provider-a",
            "Content-Type": "application/json",
            **headers,
        },
        timeout=10,
    )
    assert first.headers["helicone-cache"] == "MISS"
    assert second.headers["helicone-cache"] == "HIT"
    assert len(mock_provider.requests) == 1


def test_credentials_seed_and_body_each_get_their_own_entry(gateway: Gateway, mock_provider: MockProvider) -> None:
    headers = _cache_headers()
    assert _chat(gateway, headers).headers["helicone-cache"] == "MISS"
    assert _chat(gateway, headers).headers["helicone-cache"] == "HIT"
    # Another provider account behind the same heliport key.
    assert _chat(gateway, {**headers, "Authorization": "Bearer sk-provider-b"}).headers["helicone-cache"] == "MISS"
    # Another seed, another body.
    assert _chat(gateway, {**headers, "Helicone-Cache-Seed": "other"}).headers["helicone-cache"] == "MISS"
    assert _chat(gateway, headers, temperature=0.1).headers["helicone-cache"] == "MISS"
    assert len(mock_provider.requests) == 4


def test_another_heliport_key_never_reads_the_entry(gateway: Gateway, mock_provider: MockProvider) -> None:
    import asyncio

    from heliport.auth import create_key

    other_key, _ = asyncio.run(create_key(gateway.store, gateway.org_id, "second key"))
    headers = _cache_headers()
    assert _chat(gateway, headers).headers["helicone-cache"] == "MISS"
    other = gateway.openai(key=other_key, default_headers=headers)
    raw = other.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    assert raw.headers["helicone-cache"] == "MISS"
    assert len(mock_provider.requests) == 2


def test_bucket_hits_only_once_every_slot_is_filled(gateway: Gateway, mock_provider: MockProvider) -> None:
    headers = _cache_headers(**{"Helicone-Cache-Bucket-Max-Size": "3"})
    states = [_chat(gateway, headers).headers["helicone-cache"] for _ in range(3)]
    assert states == ["MISS", "MISS", "MISS"]
    seen = set()
    for _ in range(30):
        response = _chat(gateway, headers)
        assert response.headers["helicone-cache"] == "HIT"
        seen.add(response.headers["helicone-cache-bucket-idx"])
    assert len(mock_provider.requests) == 3
    # Uniform picks: 30 draws miss one of 3 slots with probability 3 * (2/3)**30, about 1.6e-5.
    assert seen == {"0", "1", "2"}


def test_errors_are_not_cached(gateway: Gateway, mock_provider: MockProvider) -> None:
    headers = _cache_headers(**{"x-mock-status": "500"})
    first, second = _chat(gateway, headers), _chat(gateway, headers)
    assert (first.status_code, second.status_code) == (500, 500)
    assert second.headers["helicone-cache"] == "MISS"
    assert len(mock_provider.requests) == 2
    assert any("not cached: status 500" in e for e in gateway.record(first.headers["helicone-id"]).errors)


def test_save_only_writes_and_read_only_reads(gateway: Gateway, mock_provider: MockProvider) -> None:
    seed = uuid.uuid4().hex
    save = {"Helicone-Cache-Save": "true", "Helicone-Cache-Seed": seed}
    read = {"Helicone-Cache-Read": "true", "Helicone-Cache-Seed": seed}
    assert "helicone-cache" not in _chat(gateway, save).headers
    assert "helicone-cache" not in _chat(gateway, save).headers  # save never reads
    assert _chat(gateway, read).headers["helicone-cache"] == "HIT"
    assert len(mock_provider.requests) == 2


def test_cache_control_sets_the_lifetime_and_bad_values_are_refused(
    gateway: Gateway, mock_provider: MockProvider
) -> None:
    headers = _cache_headers(**{"Cache-Control": "max-age=abc"})
    response = httpx.post(
        f"{gateway.oai_base}/chat/completions",
        json={"model": "gpt-4o-mini", "messages": MESSAGES},
        headers={"Helicone-Auth": f"Bearer {gateway.key}", **headers},
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "Cache-Control"
    too_big = httpx.post(
        f"{gateway.oai_base}/chat/completions",
        json={"model": "gpt-4o-mini", "messages": MESSAGES},
        headers={"Helicone-Auth": f"Bearer {gateway.key}", **_cache_headers(), "Helicone-Cache-Bucket-Max-Size": "21"},
    )
    assert too_big.status_code == 400
    assert "Helicone-Cache-Bucket-Max-Size" in too_big.json()["error"]["message"]
    assert mock_provider.requests == []


def test_an_unavailable_cache_fails_open(broken_store_gateway: Gateway, mock_provider: MockProvider) -> None:
    gateway = broken_store_gateway
    client = gateway.openai(default_headers=_cache_headers())
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    assert raw.parse().choices[0].message.content
    assert raw.headers["helicone-cache"] == "MISS"
    record = gateway.record(raw.headers["helicone-id"])
    assert record.status == 200
    assert any(e.startswith("cache read failed, proxied without it") for e in record.errors)
    assert any(e.startswith("cache write failed") for e in record.errors)
    assert len(mock_provider.requests) == 1


def test_a_body_too_deep_to_canonicalise_is_cached_by_its_bytes(gateway: Gateway, mock_provider: MockProvider) -> None:
    # The cache key canonicalises JSON bodies; one deeper than msgspec goes was a plain-text 500.
    body = '{"model": "gpt-4o-mini", "x": ' + '{"a": ' * 5000 + "1" + "}" * 5001
    headers = {
        "Helicone-Auth": f"Bearer {gateway.key}",
        "Authorization": "Bearer sk-x",
        "Helicone-Cache-Enabled": "true",
    }
    first = httpx.post(f"{gateway.oai_base}/chat/completions", content=body, headers=headers, timeout=30)
    assert [r.body for r in mock_provider.requests] == [body.encode()]  # forwarded (the mock's parser then gives up)
    assert first.headers.get("helicone-cache") == "MISS"
