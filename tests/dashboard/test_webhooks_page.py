"""The dashboard's Webhooks page in a real browser: Playwright driving Debian's Chromium, headless.

heliport runs as ``heliport serve`` does (the local log pipeline delivering webhooks); a receiver on
127.0.0.1, a trusted origin, stands in for the organisation's server. The page is driven: a refused
destination shows the API's words, two webhooks are added from the form (checked back through the
API), traffic sent with the official ``openai`` SDK against the mock provider raises their delivery
counts, a test delivery's result is shown, the HMAC key is copied (and selected where the clipboard
is refused), a refused delivery is listed as a dead letter, and a webhook is deleted after a confirm
step. A browser console error other than the expected refusal fails a test.

Screenshots go to ``$HELIPORT_SCREENSHOTS`` when set, else to the test's temporary directory.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.dashboard.test_prompts_page import browse, shots_dir, sign_in
from tests.harness import Gateway, start_gateway, wait_for
from tests.mock_provider import MockProvider
from tests.webhooks.receiver import Receiver

sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as standin:
        yield standin


@pytest.fixture
def served(
    tmp_path: Path, mock_provider: MockProvider, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Gateway]:
    """``heliport serve`` as it runs, the receiver a trusted origin (the consumer's settings; the API
    reads HELIPORT_TRUSTED_ORIGINS from the process)."""
    monkeypatch.setenv("HELIPORT_TRUSTED_ORIGINS", receiver.url)
    gw = start_gateway(
        tmp_path, mock_provider.url, pipeline=True, trusted_origins=frozenset({mock_provider.url, receiver.url})
    )
    yield gw
    gw.stop()


def listed(gw: Gateway) -> dict[str, dict[str, Any]]:
    """The organisation's webhooks through the API, by destination."""
    response = httpx.get(f"{gw.url}/v1/webhooks", headers={"Authorization": f"Bearer {gw.key}"}, timeout=10)
    assert response.status_code == 200, response.text
    return {w["destination"]: w for w in response.json()["data"]}


def ask(gw: Gateway, **headers: str) -> None:
    """One chat completion through the proxy with the official SDK (the mock provider answers)."""
    gw.openai().chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Where is my parcel?"}],
        extra_headers={"Helicone-Request-Id": str(uuid.uuid4()), **headers},
    )


def test_add_list_deliveries_test_copy_dead_letters_and_delete(
    served: Gateway, receiver: Receiver, tmp_path: Path
) -> None:
    gw = served
    shots = shots_dir(tmp_path)
    problems: list[str] = []
    expect = sync_api.expect
    search, every, gone = f"{receiver.url}/search", f"{receiver.url}/all", f"{receiver.url}/gone"
    receiver.script("/gone", [410])  # not retryable: the first refusal makes a dead letter
    with sync_api.sync_playwright() as p:
        browser, page = browse(p, problems)
        try:
            page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=gw.url)
            sign_in(page, gw)
            page.locator("#nav a[data-page=webhooks]").click()
            expect(page.locator("#nav a[data-page=webhooks]")).to_have_attribute("aria-current", "page")
            expect(page.get_by_test_id("no-webhooks")).to_be_visible()
            expect(page.locator("#range-label")).to_be_hidden()  # webhooks are not in a time range

            # a private destination is refused by the API, in its words, naming the field
            page.locator("#nw-destination").fill("http://10.1.2.3/hook")
            page.locator("#new-webhook-form button[type=submit]").click()
            expect(page.locator("#nw-error")).to_contain_text("destination")
            assert listed(gw) == {}

            # a webhook with a property filter and the bodies included, from the keyboard-reachable form
            page.locator("#nw-destination").fill(search)
            page.locator("#nw-rate").fill("100")
            page.locator("#nw-add-filter").click()
            page.locator("#nw-filters .pair-key").fill("team")
            page.locator("#nw-filters .pair-value").fill("search")
            page.locator("#nw-add-filter").click()  # an empty row is left out
            page.locator("#nw-include").check()
            page.locator("#new-webhook-form button[type=submit]").click()
            expect(page.locator("#webhook-flash")).to_have_text(
                f"Added the webhook to {search}. Its HMAC key is below."
            )
            made = listed(gw)[search]
            assert json.loads(made["config"]) == {
                "sampleRate": 100.0,
                "propertyFilters": [{"key": "team", "value": "search"}],
            }
            assert made["includeData"] is True
            card = page.locator(f'section.webhook[data-webhook-id="{made["id"]}"]')
            expect(card.locator("h2")).to_have_text(search)
            expect(card.locator(".filters-cell .chip")).to_have_text(["team = search"])
            expect(card).to_contain_text("yes (bodies in the payload)")
            expect(card.locator(".delivered")).to_have_text("0")
            expect(card.locator(".hmac-key")).to_have_value(made["hmac_key"])

            # two more: every request (sampled at 100%), and one whose receiver refuses
            for destination in (every, gone):
                page.locator("#new-webhook summary").click()
                page.locator("#nw-destination").fill(destination)
                page.locator("#new-webhook-form button[type=submit]").click()
                expect(page.locator("#webhook-flash")).to_contain_text(destination)
            hooks = listed(gw)
            assert set(hooks) == {search, every, gone}
            assert json.loads(hooks[every]["config"]) == {"sampleRate": 100.0, "propertyFilters": []}
            cards = {d: page.locator(f'section.webhook[data-webhook-id="{hooks[d]["id"]}"]') for d in hooks}
            expect(page.locator("section.webhook")).to_have_count(3)

            # traffic: two requests, one of them for the search team; the counts rise on reload
            ask(gw, **{"Helicone-Property-Team": "search"})
            ask(gw)
            receiver.wait_for("/all", 2)
            receiver.wait_for("/search", 1)
            wait_for(
                lambda: (listed(gw)[every]["delivery"]["delivered"], listed(gw)[gone]["delivery"]["failed"]) == (2, 2),
                20,
            )
            page.locator("#webhooks-reload").click()
            expect(cards[every].locator(".delivered")).to_have_text("2")
            expect(cards[search].locator(".delivered")).to_have_text("1")
            expect(cards[search].locator(".last-status")).to_have_text("200")
            expect(cards[gone].locator(".failed")).to_have_text("2")
            expect(cards[gone].locator(".last-status")).to_have_text("410")
            assert len(receiver.received("/search")) == 1  # the filter held

            # the dead letters of the refusing webhook: both requests, with the exact body sent
            cards[gone].locator(".show-dead-letters").click()
            letters = cards[gone].locator(".dead-letters tbody tr")
            expect(letters).to_have_count(2)
            expect(letters.first).to_contain_text("410")
            cards[every].locator(".show-dead-letters").click()
            expect(cards[every].locator(".no-dead-letters")).to_be_visible()

            # the HMAC key, copied to the clipboard
            cards[search].locator(".copy-key").click()
            expect(cards[search].locator(".copy-status")).to_have_text("Copied to the clipboard.")
            assert page.evaluate("navigator.clipboard.readText()") == made["hmac_key"]

            # delete: asked first; Cancel keeps it, Yes deletes it
            cards[every].locator(".delete").click()
            expect(cards[every].locator(".confirm-question")).to_contain_text("Delete this webhook")
            cards[every].locator(".confirm-no").click()
            expect(cards[every].locator(".delete")).to_be_focused()
            assert every in listed(gw)
            cards[every].locator(".delete").press("Enter")
            expect(cards[every].locator(".confirm-no")).to_be_focused()
            cards[every].locator(".confirm-yes").click()
            expect(page.locator("#webhook-flash")).to_have_text(f"Deleted the webhook to {every}.")
            expect(page.locator("section.webhook")).to_have_count(2)
            assert set(listed(gw)) == {search, gone}

            # a test delivery: delivered, and then one a receiver refuses
            before = len(receiver.received("/search"))
            cards[search].locator(".send-test").click()
            expect(cards[search].locator(".test-result")).to_have_text("Test delivered (HTTP 200).")
            receiver.wait_for("/search", before + 1)
            cards[gone].locator(".send-test").click()
            expect(cards[gone].locator(".test-result")).to_contain_text("Test failed (HTTP 410)")
            expect(cards[gone].locator(".test-result")).to_have_attribute("data-ok", "false")
            cards[gone].locator(".show-dead-letters").click()
            expect(letters).to_have_count(2)
            page.evaluate("window.scrollTo(0, 0)")  # the sticky header at the top of a full-page shot
            page.screenshot(path=shots / "webhooks.png", full_page=True)
            # a test is not a logged request: the delivery log is unchanged
            page.locator("#webhooks-reload").click()
            expect(cards[search].locator(".test-result")).to_have_text("")
            expect(cards[search].locator(".delivered")).to_have_text("1")
            expect(cards[gone].locator(".failed")).to_have_text("2")
        finally:
            browser.close()
    # The one refused call the browser logs: the private destination.
    refused = [m for m in problems if "status of 400" in m]
    assert len(refused) == 1, problems
    assert len(problems) == len(refused), problems


def test_copy_falls_back_to_selecting_the_key_where_the_clipboard_is_refused(
    served: Gateway, receiver: Receiver, tmp_path: Path
) -> None:
    gw = served
    made = httpx.post(
        f"{gw.url}/v1/webhooks",
        json={"destination": f"{receiver.url}/hooks"},
        headers={"Authorization": f"Bearer {gw.key}"},
        timeout=10,
    ).json()["data"]
    problems: list[str] = []
    expect = sync_api.expect
    with sync_api.sync_playwright() as p:
        browser, page = browse(p, problems)
        try:
            # A browser that refuses clipboard writes (as one without the permission does).
            page.add_init_script(
                "navigator.clipboard.writeText = () => Promise.reject(new DOMException('denied', 'NotAllowedError'));"
            )
            sign_in(page, gw, "#/webhooks")
            card = page.locator(f'section.webhook[data-webhook-id="{made["id"]}"]')
            card.locator(".copy-key").click()
            expect(card.locator(".copy-status")).to_contain_text("the key is selected, press Ctrl+C")
            expect(card.locator(".hmac-key")).to_be_focused()
            selection = "(() => { const i = document.activeElement; "
            selection += "return i.value.slice(i.selectionStart, i.selectionEnd); })()"
            selected = page.evaluate(selection)
            assert selected == made["hmac_key"]
        finally:
            browser.close()
    assert not problems, problems
