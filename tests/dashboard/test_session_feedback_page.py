"""Session feedback on the dashboard's Sessions pages: Playwright driving Debian's Chromium, headless.

heliport runs as ``heliport serve`` does (the local log pipeline); two sessions are sent with the
official ``openai`` SDK against the mock provider. The sessions list shows each session's rating
(none at first), a session's page rates it with the mouse and from the keyboard
(``POST /v1/session/{id}/feedback``, checked back through ``POST /v1/session/query``'s
``feedback_rating``), the list and a reload of the page show the stored rating, and a second
organisation can neither see nor rate the session. A console error or a CSP violation fails the test.

Screenshots go to ``$HELIPORT_SCREENSHOTS`` when set, else to the test's temporary directory.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.dashboard.test_browser import _second_org_key, _stored
from tests.dashboard.test_prompts_page import browse, shots_dir, sign_in
from tests.harness import Gateway, start_gateway
from tests.mock_provider import MockProvider

sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture
def served(tmp_path: Path, mock_provider: MockProvider) -> Iterator[Gateway]:
    gw = start_gateway(tmp_path, mock_provider.url, pipeline=True)
    yield gw
    gw.stop()


def ratings(gw: Gateway, key: str | None = None) -> dict[str, bool | None]:
    """Each session's ``feedback_rating`` through the API."""
    body = {"search": "", "timeFilter": {"startTimeUnixMs": 0, "endTimeUnixMs": 4_102_444_800_000},
            "timezoneDifference": 0, "filter": "all", "limit": 100, "offset": 0}  # fmt: skip
    response = httpx.post(
        f"{gw.url}/v1/session/query", json=body, headers={"Authorization": f"Bearer {key or gw.key}"}, timeout=10
    )
    assert response.status_code == 200, response.text
    return {s["session_id"]: s["feedback_rating"] for s in response.json()["data"]}


def test_the_list_shows_ratings_and_a_session_page_rates_it(served: Gateway, tmp_path: Path) -> None:
    gw = served
    shots = shots_dir(tmp_path)
    client = gw.openai()
    trip, other = f"trip-{uuid.uuid4().hex[:6]}", f"chat-{uuid.uuid4().hex[:6]}"
    sent = []
    for session, name, path in (
        (trip, "Trip planner", "/plan"),
        (trip, "Trip planner", "/plan/search"),
        (other, "Chat", "/"),
    ):
        request_id = str(uuid.uuid4())
        sent.append(request_id)
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": f"Step {path}"}],
            extra_headers={"Helicone-Request-Id": request_id, "Helicone-Session-Id": session,
                           "Helicone-Session-Name": name, "Helicone-Session-Path": path},
        )  # fmt: skip
    _stored(gw, sent)
    assert ratings(gw) == {trip: None, other: None}
    other_key = _second_org_key(gw, tmp_path)

    problems: list[str] = []
    expect = sync_api.expect
    with sync_api.sync_playwright() as p:
        browser, page = browse(p, problems)
        try:
            sign_in(page, gw)
            page.locator("#nav a[data-page=sessions]").click()
            cells = page.locator("#sessions-table tbody td.rating")
            expect(cells).to_have_text(["none", "none"])
            expect(cells.locator(".rating-mark").first).to_have_attribute("title", "Session rating: none")

            # rate it good from the session's page, with the mouse
            page.locator(f'tr[data-session-id="{trip}"]').click()
            up, down = page.locator("#session-rate-up"), page.locator("#session-rate-down")
            expect(page.locator("#session-feedback")).to_have_attribute("aria-label", "Rate this session")
            expect(up).to_have_attribute("aria-pressed", "false")
            expect(down).to_have_attribute("aria-pressed", "false")
            up.click()
            expect(page.locator("#session-feedback-status")).to_have_text("Saved: rated good.")
            expect(up).to_have_attribute("aria-pressed", "true")
            assert ratings(gw) == {trip: True, other: None}

            # then bad, from the keyboard
            up.focus()
            page.keyboard.press("Tab")
            expect(down).to_be_focused()
            page.keyboard.press("Enter")
            expect(page.locator("#session-feedback-status")).to_have_text("Saved: rated bad.")
            expect(down).to_have_attribute("aria-pressed", "true")
            expect(up).to_have_attribute("aria-pressed", "false")
            assert ratings(gw) == {trip: False, other: None}
            page.screenshot(path=shots / "session-feedback.png", full_page=True)

            # a reload shows the stored rating; so does the list, as a word in a badge
            page.reload()
            expect(page.locator("#session-rate-down")).to_have_attribute("aria-pressed", "true")
            page.locator("a[href='#/sessions']").first.click()
            row = page.locator(f'tr[data-session-id="{trip}"] td.rating')
            expect(row).to_have_text("bad")
            expect(row.locator(".rating-mark.badge.bad")).to_have_attribute("data-rating", "bad")
            expect(page.locator(f'tr[data-session-id="{other}"] td.rating')).to_have_text("none")
            page.emulate_media(color_scheme="dark")
            page.screenshot(path=shots / "sessions-rated-dark.png", full_page=True)
            page.emulate_media(color_scheme="light")

            # a second organisation: no sessions, and rating the first one's session is a 404 that changes nothing
            page.locator("#sign-out").click()
            page.locator("#key").fill(other_key)
            page.locator("#key").press("Enter")
            expect(page.locator("#nav")).to_be_visible()
            page.goto(f"{gw.url}/dashboard/#/sessions")
            expect(page.get_by_test_id("no-sessions")).to_be_visible()
            refused = httpx.post(
                f"{gw.url}/v1/session/{trip}/feedback",
                json={"rating": True},
                headers={"Authorization": f"Bearer {other_key}"},
                timeout=10,
            )
            assert refused.status_code == 404, refused.text
            assert ratings(gw) == {trip: False, other: None}
            assert ratings(gw, other_key) == {}
        finally:
            browser.close()
    assert problems == []
