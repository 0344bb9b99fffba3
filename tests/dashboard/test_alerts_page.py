"""The dashboard's Alerts page in a real browser: Playwright driving Debian's Chromium, headless.

heliport runs as ``heliport serve`` does: the local log pipeline, and the local alert evaluator on a
short timer (``HELIPORT_ALERT_INTERVAL``). Traffic is seeded with the official ``openai`` SDK against
the mock provider (two users, one of them seeing errors); a receiver on 127.0.0.1, a trusted origin,
stands in for Slack. The page is driven: the new-alert form previews the metric over the window as it
is edited (grouped, thresholds, minimum requests, filter), the API's refusal is shown, the alert is
created, the evaluator fires it and its history links to the requests it counted, a test
notification shows each channel's result, and the list enables, disables and deletes (checked back
through the API). A browser console error other than the expected refusals fails a test.

Screenshots go to ``$HELIPORT_SCREENSHOTS`` when set, else to the test's temporary directory.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.dashboard.test_prompts_page import browse, shots_dir, sign_in
from tests.harness import Gateway, start_gateway, wait_for
from tests.mock_provider import MockProvider
from tests.webhooks.receiver import Receiver

sync_api = pytest.importorskip("playwright.sync_api")
SLACK_PATH = "/services/T0001/B0001/abcdWXYZ"


@pytest.fixture
def slack() -> Iterator[Receiver]:
    """The Slack stand-in: keeps every incoming-webhook POST."""
    with Receiver() as standin:
        yield standin


@pytest.fixture
def served(
    tmp_path: Path, mock_provider: MockProvider, slack: Receiver, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Gateway]:
    """``heliport serve`` as it runs, evaluating alerts every half second; the Slack stand-in a trusted
    origin."""
    monkeypatch.setenv("HELIPORT_TRUSTED_ORIGINS", slack.url)
    gw = start_gateway(
        tmp_path,
        mock_provider.url,
        pipeline=True,
        trusted_origins=frozenset({mock_provider.url, slack.url}),
        alert_interval=0.5,  # HELIPORT_ALERT_INTERVAL
    )
    yield gw
    gw.stop()


def call(gw: Gateway, method: str, path: str, body: Any = None) -> Any:
    response = httpx.request(
        method, gw.url + path, json=body, headers={"Authorization": f"Bearer {gw.key}"}, timeout=10
    )
    answer = response.json()
    assert response.status_code == 200 and answer["error"] is None, (path, response.status_code, answer)
    return answer["data"]


def seed(gw: Gateway) -> None:
    """alice: three answered requests; bob: one answered, two the provider fails (500)."""
    client = gw.openai()

    def ask(user: str, **headers: str) -> None:
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "Hello"}],
            extra_headers={"Helicone-User-Id": user, "Helicone-Request-Id": str(uuid.uuid4()), **headers},
        )

    for _ in range(3):
        ask("alice")
    ask("bob")
    for _ in range(2):
        with pytest.raises(openai.InternalServerError):
            ask("bob", **{"x-mock-status": "500"})
    wait_for(lambda: len(call(gw, "POST", "/v1/request/query", {"filter": "all", "limit": 10})) == 6, 20)


def test_create_with_preview_history_test_notification_toggle_and_delete(
    served: Gateway, slack: Receiver, tmp_path: Path
) -> None:
    gw = served
    seed(gw)
    shots = shots_dir(tmp_path)
    problems: list[str] = []
    expect = sync_api.expect
    with sync_api.sync_playwright() as p:
        browser, page = browse(p, problems)
        try:
            sign_in(page, gw)
            page.locator("#nav a[data-page=alerts]").click()
            expect(page.locator("#nav a[data-page=alerts]")).to_have_attribute("aria-current", "page")
            expect(page.get_by_test_id("no-alerts")).to_be_visible()
            expect(page.locator("#range-label")).to_be_hidden()

            # the preview of the default (error rate over 1 h, threshold 5 %): all six requests, 2 failed
            preview = page.locator("#preview-table tbody tr")
            expect(preview).to_have_count(1)
            expect(preview.locator(".preview-value")).to_have_text("33.33%")
            expect(preview.locator(".preview-requests")).to_have_text("6")
            expect(preview).to_have_attribute("data-over", "true")
            expect(page.locator("#na-unit")).to_have_text("%")
            expect(page.locator("#na-aggregation")).to_be_disabled()  # not for a rate

            # per user, threshold 50 %: bob over, alice under
            page.locator("#na-name").fill("Errors per user")
            page.locator("#na-group").select_option("user")
            page.locator("#na-threshold").fill("50")
            bob, alice = (
                page.locator('#preview-table tr[data-group="bob"]'),
                page.locator('#preview-table tr[data-group="alice"]'),
            )
            expect(bob.locator(".preview-value")).to_have_text("66.67%")
            expect(bob.locator(".preview-requests")).to_have_text("3")
            expect(bob).to_have_attribute("data-over", "true")
            expect(alice.locator(".preview-value")).to_have_text("0.00%")
            expect(alice).to_have_attribute("data-over", "false")
            expect(page.locator("#preview-summary")).to_have_text("1 of 2 groups over the threshold now.")
            # a group with fewer requests than the minimum is never over
            page.locator("#na-minimum").fill("4")
            expect(bob).to_have_attribute("data-over", "false")
            page.locator("#na-minimum").fill("2")
            expect(bob).to_have_attribute("data-over", "true")
            # another metric takes an aggregation and its unit; the window can be any number of minutes
            page.locator("#na-metric").select_option("latency")
            expect(page.locator("#na-unit")).to_have_text("ms")
            expect(page.locator("#na-aggregation")).to_be_enabled()
            page.locator("#na-aggregation").select_option("pN")
            expect(page.locator("#na-percentile")).to_be_visible()
            page.locator("#na-percentile").fill("90")
            expect(page.locator("#preview-window")).to_contain_text("p90 of latency over 1 h, per user")
            page.locator("#na-metric").select_option("error_rate")
            page.locator("#na-window").select_option("custom")
            page.locator("#na-window-minutes").fill("120")
            expect(page.locator("#preview-window")).to_contain_text("Error rate over 2 h, per user")
            # the filter: no request of another model; then back to every request
            page.locator("#na-f-model").fill("claude")
            expect(page.locator("#preview-empty")).to_be_visible()
            page.locator("#na-f-model").fill("")
            expect(bob).to_have_attribute("data-over", "true")

            # channels: an e-mail address and the Slack stand-in; a private Slack address is refused first
            page.locator("#na-channels .channel-target").fill("ops@example.com")
            page.locator("#na-add-slack").click()
            slack_input = page.locator('#na-channels .channel-target[data-type="slack"]')
            expect(slack_input).to_be_focused()
            slack_input.fill(slack.url + SLACK_PATH)
            page.evaluate("window.scrollTo(0, 0)")  # the sticky header at the top of a full-page shot
            page.screenshot(path=shots / "alert-new.png", full_page=True)
            slack_input.fill("http://10.0.0.7/services/x")
            page.locator("#new-alert-form button[type=submit]").click()
            expect(page.locator("#na-error")).to_have_text("channels[1].url must use https, got 'http'")
            assert call(gw, "GET", "/v1/alerts") == []
            slack_input.fill(slack.url + SLACK_PATH)
            page.locator("#new-alert-form button[type=submit]").click()

            # the alert's page: its configuration, the Slack URL masked
            expect(page.locator("#alert-flash")).to_have_text("Created the alert Errors per user.")
            alert_id = page.url.rsplit("/", 1)[1]
            stored = call(gw, "GET", f"/v1/alerts/{alert_id}")
            assert (stored["metric"], stored["threshold"], stored["windowMinutes"], stored["minimumRequests"]) == (
                "error_rate",
                50,
                120,
                2,
            )
            assert (stored["groupBy"], stored["filter"], stored["enabled"]) == ("user", "all", True)
            assert stored["channels"][0] == {"type": "email", "address": "ops@example.com"}
            assert stored["channels"][1]["url"].endswith("WXYZ") and "abcd" not in stored["channels"][1]["url"]
            expect(page.locator("#alert-config")).to_contain_text("Error rate ≥ 50.00% over 2 h, per user")
            expect(page.locator("#alert-channels li")).to_have_text(
                ["E-mail ops@example.com", "Slack " + stored["channels"][1]["url"]]
            )

            # the evaluator fires it for bob: Slack hears of it, the history shows it
            slack.wait_for(SLACK_PATH, 1)
            wait_for(lambda: call(gw, "GET", f"/v1/alerts/{alert_id}/history"), 20)
            page.locator("#alert-reload").click()
            entry = page.locator('#alert-history tbody tr[data-state="triggered"]')
            expect(entry).to_have_count(1)
            expect(entry).to_have_attribute("data-group", "bob")
            expect(entry.locator(".history-value")).to_have_text("66.67%")
            expect(entry).to_contain_text("50.00%")
            expect(page.locator("#alert-status .alert-state")).to_have_text("triggered: bob")

            # a test notification: each channel's result
            page.locator("#alert-test").click()
            results = page.locator("#test-results-table tbody tr")
            expect(results).to_have_count(2)
            expect(page.locator('#test-results-table tr[data-channel="slack"]')).to_have_attribute("data-ok", "true")
            # no SMTP server configured here: the e-mail channel's failure, in the API's words
            email = page.locator('#test-results-table tr[data-channel="email"]')
            expect(email).to_have_attribute("data-ok", "false")
            expect(email).to_contain_text("ops@example.com")
            expect(email).to_contain_text("failed: e-mail is not configured")
            slack.wait_for(SLACK_PATH, 2)
            page.screenshot(path=shots / "alert.png", full_page=True)

            # the requests behind the history entry: bob's three in the alert's window
            entry.locator(".history-requests").click()
            expect(page.locator("#requests-scope")).to_be_visible()
            rows = page.locator("#requests-table tbody tr")
            expect(rows).to_have_count(3)
            expect(rows.locator("td:nth-child(5)")).to_have_text(["bob", "bob", "bob"])
            expect(page.locator("#f-user")).to_have_value("bob")  # the group, in the page's own filter
            expect(page.locator("#range-label")).to_be_hidden()  # the window replaces the time range
            page.locator("#requests-scope-clear").click()
            expect(page.locator("#requests-scope")).to_have_count(0)
            expect(page.locator("#range-label")).to_be_visible()
            expect(rows).to_have_count(3)
            page.locator("#request-filters button", has_text="Reset").click()
            expect(rows).to_have_count(6)

            # the list: state, disable (and enable) from the keyboard-reachable toggle, delete with a confirm step
            page.locator("#nav a[data-page=alerts]").click()
            row = page.locator(f'#alerts-table tr[data-alert-id="{alert_id}"]')
            expect(row.locator(".alert-state")).to_have_text("triggered: bob")
            expect(row).to_contain_text("Error rate ≥ 50.00% over 2 h, per user")
            expect(page.locator("#new-alert")).not_to_have_attribute("open", "")  # folded once there is an alert
            page.screenshot(path=shots / "alerts.png", full_page=True)
            row.locator(".toggle-enabled").click()
            expect(row.locator(".toggle-enabled")).to_have_attribute("aria-pressed", "false")
            expect(row.locator(".alert-state")).to_have_text("disabled")
            assert call(gw, "GET", f"/v1/alerts/{alert_id}")["enabled"] is False
            row.locator(".toggle-enabled").press("Enter")
            expect(row.locator(".toggle-enabled")).to_have_attribute("aria-pressed", "true")
            assert call(gw, "GET", f"/v1/alerts/{alert_id}")["enabled"] is True
            row.locator(".delete").click()
            expect(row.locator(".confirm-question")).to_have_text("Delete the alert Errors per user?")
            row.locator(".confirm-yes").click()
            expect(page.locator("#alert-flash")).to_have_text("Deleted the alert Errors per user.")
            expect(page.get_by_test_id("no-alerts")).to_be_visible()
            assert call(gw, "GET", "/v1/alerts") == []

            # an alert that does not exist (or is another organisation's): the API's 404, not a blank page
            page.goto(f"{gw.url}/dashboard/#/alerts/{alert_id}")
            expect(page.locator("#alert-missing")).to_contain_text(alert_id)
        finally:
            browser.close()
    # The browser logs the refused channel (400) and the deleted alert (404); nothing else.
    assert len([m for m in problems if "status of 400" in m]) == 1, problems
    assert len([m for m in problems if "status of 404" in m]) == 1, problems
    assert len(problems) == 2, problems
