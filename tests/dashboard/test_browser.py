"""The dashboard in a real browser: Playwright driving Debian's Chromium, headless.

heliport runs as ``heliport serve`` does (the local log pipeline); requests are made through the
OpenAI SDK; the test then signs in, finds them, filters, opens the conversation, gives feedback
(checked through the API), follows the session tree, and signs in as a second organisation that
must see none of it. A browser console error or a CSP violation fails the test.

Screenshots go to ``$HELIPORT_SCREENSHOTS`` when set (``docs/screenshots`` is made that way), else
to the test's temporary directory.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from heliport.auth import create_key
from heliport.store.keys import Organisation, SqliteKeyStore
from heliport.store.logdb import DeadLetter
from heliport.store.logdb_sqlite import SqliteLogDb
from tests.harness import Gateway, start_gateway, wait_for
from tests.mock_provider import MockProvider

sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
TIMEOUT_MS = 15_000
sync_api.expect.set_options(timeout=TIMEOUT_MS)


@pytest.fixture
def served(tmp_path: Path, mock_provider: MockProvider) -> Iterator[Gateway]:
    gw = start_gateway(tmp_path, mock_provider.url, pipeline=True)
    yield gw
    gw.stop()


def _second_org_key(gw: Gateway, tmp_path: Path) -> str:
    async def make() -> str:
        store = SqliteKeyStore(tmp_path / "keys.sqlite3")
        org = Organisation(id=f"org-other-{uuid.uuid4().hex[:8]}", name="other", created_at=datetime.now(UTC))
        await store.put_org(org)
        plain, _ = await create_key(store, org.id, "other")
        await store.aclose()
        return plain

    return asyncio.run(make())


def _stored(gw: Gateway, request_ids: list[str]) -> None:
    def probe() -> bool:
        body = {"filter": "all", "limit": 100}
        response = httpx.post(f"{gw.url}/v1/request/query", json=body, headers={"Authorization": f"Bearer {gw.key}"})
        found = {r["request_id"] for r in response.json()["data"] or []}
        return set(request_ids) <= found

    wait_for(probe, timeout=20)


def test_sign_in_find_filter_detail_feedback_session_and_isolation(served: Gateway, tmp_path: Path) -> None:
    gw = served
    shots = Path(os.environ.get("HELIPORT_SCREENSHOTS") or tmp_path / "shots")
    shots.mkdir(parents=True, exist_ok=True)
    client = gw.openai()
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    session = f"trip-{uuid.uuid4().hex[:6]}"
    common = {"Helicone-Session-Id": session, "Helicone-Session-Name": "Trip planner", "Helicone-User-Id": "alice"}
    client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            {"role": "system", "content": "You plan trips."},
            {"role": "user", "content": "Plan a weekend in Lisbon"},
        ],
        extra_headers={**common, "Helicone-Request-Id": first, "Helicone-Session-Path": "/plan",
                       "Helicone-Property-Env": "browser-test"},
    )  # fmt: skip
    client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Find museums"}],
        extra_headers={**common, "Helicone-Request-Id": second, "Helicone-Session-Path": "/plan/search",
                       "Helicone-Property-Env": "other"},
    )  # fmt: skip
    _stored(gw, [first, second])
    other_key = _second_org_key(gw, tmp_path)

    problems: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1360, "height": 860}, color_scheme="light")
            page.set_default_timeout(TIMEOUT_MS)
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            expect = sync_api.expect

            # sign in
            page.goto(f"{gw.url}/dashboard")
            page.locator("#key").fill(gw.key)
            page.locator("#sign-in-form button[type=submit]").click()
            expect(page.get_by_test_id("card-requests")).to_contain_text("2")
            expect(page.locator("#overview-property")).to_have_value("env")
            page.screenshot(path=shots / "overview.png", full_page=True)
            page.emulate_media(color_scheme="dark")
            page.screenshot(path=shots / "overview-dark.png", full_page=True)
            page.emulate_media(color_scheme="light")

            # the requests made a moment ago, then filtered by a property
            page.locator("#nav a[data-page=requests]").click()
            expect(page.locator(f'tr[data-request-id="{first}"]')).to_be_visible()
            expect(page.locator(f'tr[data-request-id="{second}"]')).to_be_visible()
            page.locator("#f-propKey").select_option("env")
            page.locator("#f-propValue").fill("browser-test")
            page.locator("#f-propValue").press("Enter")
            expect(page.locator(f'tr[data-request-id="{second}"]')).to_have_count(0)
            expect(page.locator(f'tr[data-request-id="{first}"]')).to_be_visible()
            expect(page.locator("#requests-table tbody tr")).to_have_count(1)
            page.screenshot(path=shots / "requests.png", full_page=True)

            # the detail, opened from the keyboard: the conversation, then feedback
            page.locator(f'tr[data-request-id="{first}"]').focus()
            page.keyboard.press("Enter")
            conversation = page.locator("#conversation")
            expect(conversation.locator('[data-role="system"]')).to_contain_text("You plan trips.")
            expect(conversation.locator('[data-role="user"]')).to_contain_text("Plan a weekend in Lisbon")
            expect(conversation.locator('[data-role="assistant"]')).to_have_count(1)
            expect(page.locator("#detail")).to_contain_text("browser-test")
            page.locator("#feedback-up").click()
            expect(page.locator("#feedback-status")).to_have_text("Saved")
            expect(page.locator("#feedback-up")).to_have_attribute("aria-pressed", "true")
            page.screenshot(path=shots / "request-detail.png")
            stored = httpx.get(f"{gw.url}/v1/request/{first}", headers={"Authorization": f"Bearer {gw.key}"})
            assert stored.json()["data"]["feedback_rating"] is True
            page.keyboard.press("Escape")
            expect(page.locator("#detail")).to_be_hidden()

            # the session, as a tree by path
            page.locator("#nav a[data-page=sessions]").click()
            row = page.locator(f'tr[data-session-id="{session}"]')
            expect(row).to_contain_text("Trip planner")
            page.screenshot(path=shots / "sessions.png", full_page=True)
            row.click()
            tree = page.locator("#session-tree")
            plan = tree.locator('li[data-path="/plan"]')
            expect(plan.locator(f'.call[data-request-id="{first}"]')).to_have_count(1)
            expect(plan.locator(f'li[data-path="/plan/search"] .call[data-request-id="{second}"]')).to_have_count(1)
            page.screenshot(path=shots / "session-tree.png", full_page=True)

            page.locator("#nav a[data-page=users]").click()
            expect(page.locator('tr[data-user-id="alice"]')).to_contain_text("2")
            page.screenshot(path=shots / "users.png", full_page=True)

            # another organisation's key sees none of it
            page.locator("#sign-out").click()
            expect(page.locator("#sign-in")).to_be_visible()
            page.locator("#key").fill(other_key)
            page.locator("#key").press("Enter")
            expect(page.get_by_test_id("empty-state")).to_contain_text("No requests yet")
            page.screenshot(path=shots / "empty-state.png", full_page=True)
            page.locator("#nav a[data-page=requests]").click()
            expect(page.get_by_test_id("empty-state")).to_be_visible()
            page.locator("#nav a[data-page=sessions]").click()
            expect(page.get_by_test_id("no-sessions")).to_be_visible()
            page.locator("#nav a[data-page=users]").click()
            expect(page.get_by_test_id("no-users")).to_be_visible()
            page.goto(f"{gw.url}/dashboard/#/sessions/{session}")
            expect(page.locator("#view")).to_contain_text("No such session")
            page.goto(f"{gw.url}/dashboard/#/requests/{first}")
            expect(page.locator("#detail-body [role=alert]")).to_contain_text("No request")
            for secret in ("Lisbon", "browser-test", "Trip planner", "alice", second):
                assert secret not in page.locator("body").inner_text()
            # the key lives in the tab's session storage only
            assert page.evaluate("() => localStorage.length") == 0
            assert page.evaluate("() => sessionStorage.getItem('heliport-key')") == other_key
        finally:
            browser.close()
    # 404 of the other organisation's request is the one expected console error
    unexpected = [m for m in problems if "404" not in m]
    assert not unexpected, unexpected


def test_a_wrong_key_is_refused_at_sign_in(served: Gateway) -> None:
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(f"{served.url}/dashboard/")
            page.locator("#key").fill("sk-heliport-not-a-key")
            page.locator("#key").press("Enter")
            sync_api.expect(page.locator("#sign-in-error")).to_contain_text("Sign-in failed")
            sync_api.expect(page.locator("#nav")).to_be_hidden()
            assert page.evaluate("() => sessionStorage.length") == 0
        finally:
            browser.close()


def test_the_overview_warns_of_records_set_aside(served: Gateway, tmp_path: Path) -> None:
    gw = served
    request_id = str(uuid.uuid4())
    gw.openai().chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "hi"}],
        extra_headers={"Helicone-Request-Id": request_id},
    )
    _stored(gw, [request_id])

    async def set_aside() -> None:  # as the log writer does with a record the database refused
        db = SqliteLogDb(tmp_path / "logs.sqlite3")
        letter = DeadLetter(
            org_id=gw.org_id, request_id=None, failed_at=datetime.now(UTC), attempts=3, error="refused", record=b"{}"
        )
        await db.add_dead_letters([letter])
        await db.aclose()

    asyncio.run(set_aside())
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(f"{gw.url}/dashboard/")
            page.locator("#key").fill(gw.key)
            page.locator("#key").press("Enter")
            sync_api.expect(page.locator("#dead-letters")).to_contain_text("1 log record could not be stored")
            sync_api.expect(page.locator("#dead-letters")).to_contain_text("heliport logs dead-letters list")
        finally:
            browser.close()


def test_the_request_detail_shows_each_check_and_a_blocked_request_reads_as_blocked(
    served: Gateway, tmp_path: Path
) -> None:
    # Rows with checks as the log writer stores them from records whose pre-forward checks ran (the
    # checks themselves are tested against the mock provider in tests/steps).
    import json

    from heliport.logs.consumer import LogWriter
    from heliport.store.blobs import LocalBlobStore
    from tests.logs.records import chat_record

    gw = served
    flagged = {
        "success": False,
        "error": {
            "code": "PROMPT_FLAGGED_FOR_MODERATION",
            "message": "The given prompt was flagged by the OpenAI Moderation endpoint.",
            "details": "See your Helicone request page for more info",
        },
    }
    blocked = chat_record(
        org_id=gw.org_id,
        status=400,
        request_body=json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "a threat"}]}),
        response_body=json.dumps(flagged),
        facts={
            "moderation": {
                "screened": True,
                "flagged": True,
                "categories": ["harassment/threatening", "violence"],
                "top_scores": {"violence": 0.97, "harassment/threatening": 0.61, "sexual": 0.001},
                "model": "omni-moderation-latest",
                "message": "messages[0]",
                "images": 0,
                "calls": 1,
                "credential": "caller",
                "latency_ms": 41.2,
            }
        },
    )
    passed = chat_record(
        org_id=gw.org_id,
        facts={
            "llm_security": {
                "threat": False,
                "tiers": ["prompt_injection"],
                "messages": [
                    {
                        "path": "messages[0]",
                        "verdict": "safe",
                        "checks": [
                            {
                                "tier": "prompt_injection",
                                "classifier": "prompt-guard",
                                "model": "meta-llama/llama-prompt-guard-2-86m",
                                "verdict": "safe",
                                "score": 0.012,
                                "categories": [],
                                "latency_ms": 3.1,
                            }
                        ],
                    }
                ],
                "latency_ms": 3.2,
            },
            "token_limit": {
                "strategy": "middle-out",
                "model": "gpt-4o-mini",
                "context_length": 128000,
                "output_reserve": 4096,
                "budget": 122624,
                "tokens_before": 130000,
                "estimate": "heuristic",
                "removed_messages": 6,
                "cut_texts": 0,
                "tokens_after": 120500,
                "fits": True,
                "changed": True,
            },
        },
    )

    async def store() -> None:
        db = SqliteLogDb(tmp_path / "logs.sqlite3")
        await db.migrate()
        written = await LogWriter(db, LocalBlobStore(tmp_path / "blobs")).write([blocked, passed])
        assert written.written == 2
        # Delivered to PostHog after the row was stored, as the consumer records it.
        assert await db.merge_checks(
            gw.org_id, passed.request_id, {"posthog": {"delivered": True, "status": 200, "attempts": 2}}
        )
        await db.aclose()

    asyncio.run(store())
    shots = Path(os.environ.get("HELIPORT_SCREENSHOTS") or tmp_path / "shots")
    shots.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1360, "height": 860}, color_scheme="light")
            page.set_default_timeout(TIMEOUT_MS)
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            expect = sync_api.expect
            page.goto(f"{gw.url}/dashboard/")
            page.locator("#key").fill(gw.key)
            page.locator("#key").press("Enter")
            expect(page.locator("#nav")).to_be_visible()

            # In the list, the blocked request says so next to its 400; the other does not.
            page.locator("#nav a[data-page=requests]").click()
            expect(page.locator(f'tr[data-request-id="{blocked.request_id}"]')).to_contain_text("400")
            expect(page.locator(f'tr[data-request-id="{blocked.request_id}"] .blocked-chip')).to_have_text("blocked")
            expect(page.locator(f'tr[data-request-id="{passed.request_id}"] .blocked-chip')).to_have_count(0)

            # The blocked request: a banner naming the check and the code, and the verdict itself.
            page.locator(f'tr[data-request-id="{blocked.request_id}"]').click()
            expect(page.locator("#detail-title")).to_contain_text("400 · blocked")
            expect(page.locator("#blocked")).to_contain_text("Blocked by Moderation")
            expect(page.locator("#blocked")).to_contain_text("PROMPT_FLAGGED_FOR_MODERATION")
            moderation = page.locator('#checks [data-check="moderation"]')
            expect(moderation.locator("[data-outcome]")).to_have_text("flagged")
            expect(moderation).to_contain_text("Categories: harassment/threatening, violence")
            expect(moderation).to_contain_text("violence 0.970")
            expect(moderation).to_contain_text("omni-moderation-latest")
            expect(moderation).to_contain_text("Screened: messages[0]")
            expect(page.locator("#checks [data-check]")).to_have_count(1)
            page.screenshot(path=shots / "request-blocked.png")

            # A request that passed its checks: each check's outcome, and no banner.
            page.goto(f"{gw.url}/dashboard/#/requests/{passed.request_id}")
            security = page.locator('#checks [data-check="llm_security"]')
            expect(security.locator("[data-outcome]")).to_have_text("no threat")
            expect(security).to_contain_text("messages[0] · safe")
            expect(security).to_contain_text(
                "prompt_injection · prompt-guard (meta-llama/llama-prompt-guard-2-86m) · safe · score 0.012"
            )
            limit = page.locator('#checks [data-check="token_limit"]')
            expect(limit.locator("[data-outcome]")).to_have_text("middle-out · applied")
            expect(limit).to_contain_text("130,000 → 120,500")
            expect(limit).to_contain_text("Messages removed: 6")
            expect(limit).to_contain_text("Context length: 128,000")
            posthog = page.locator('#checks [data-check="posthog"]')
            expect(posthog.locator("[data-outcome]")).to_have_text("delivered")
            expect(posthog).to_contain_text("Attempts: 2")
            expect(page.locator("#blocked")).to_have_count(0)
            stray = (
                "() => [...document.getElementById('detail-body').childNodes].filter((n) => n.nodeType === 3).length"
            )
            assert page.evaluate(stray) == 0  # nothing but elements in the detail (no stray "null")
            expect(page.locator("#detail-title")).not_to_contain_text("blocked")
            # Every field is there too, behind "All fields".
            limit.locator("summary").click()
            expect(limit.locator("dl.facts")).to_contain_text("tokens_before")
            page.screenshot(path=shots / "request-checks.png")
        finally:
            browser.close()
    assert not problems, problems
