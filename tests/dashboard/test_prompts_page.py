"""The dashboard's Prompts page in a real browser: Playwright driving Debian's Chromium, headless.

heliport runs as ``heliport serve`` does (the local log pipeline, the local prompt store); prompts are
seeded through the Prompts API over HTTP, then the page is driven: the list with search and tag
filters, a prompt's versions and environments, a version's variables and partials marked, the diff
of two versions, a new version and an environment move (each checked back through the API), the
forms' refusals showing the API's message, and the request detail linking to the version the AI
gateway compiled (a real ``prompt_id`` request through the official ``openai`` SDK against the mock
provider). A browser console error or a CSP violation fails a test.

Screenshots go to ``$HELIPORT_SCREENSHOTS`` when set, else to the test's temporary directory.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.harness import Gateway, start_gateway, wait_for
from tests.mock_provider import MockProvider

sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
TIMEOUT_MS = 15_000
sync_api.expect.set_options(timeout=TIMEOUT_MS)
PROMPTS = "/v1/prompt-2025"


@pytest.fixture
def served(tmp_path: Path, mock_provider: MockProvider) -> Iterator[Gateway]:
    url = mock_provider.url
    gw = start_gateway(
        tmp_path,
        url,
        pipeline=True,
        provider_env={"OPENAI_API_KEY": "sk-openai-test"},
        upstream_overrides={"oai": url, "openai": url},  # the proxy's oai, the AI gateway's openai
    )
    yield gw
    gw.stop()


def call(gw: Gateway, method: str, path: str, body: Any = None, key: str | None = None) -> Any:
    """One Prompts API call as a client makes it; the answer's ``data`` (an error fails the test)."""
    response = httpx.request(
        method, gw.url + path, json=body, headers={"Authorization": f"Bearer {key or gw.key}"}, timeout=10
    )
    answer = response.json()
    assert response.status_code == 200 and answer["error"] is None, (path, response.status_code, answer)
    return answer["data"]


def chat(system: str, user: str = "{{hc:question:string}}") -> dict[str, Any]:
    return {
        "model": "gpt-4o-mini",
        "temperature": 0.3,
        "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
    }


def shots_dir(tmp_path: Path) -> Path:
    shots = Path(os.environ.get("HELIPORT_SCREENSHOTS") or tmp_path / "shots")
    shots.mkdir(parents=True, exist_ok=True)
    return shots


class Seeded:
    """Three prompts: ``support`` with three versions (0.0 production, 0.1 staging, 1.0) whose bodies use
    variables and a partial of ``greeting``; ``greeting`` and ``sales`` with one version each."""

    def __init__(self, gw: Gateway) -> None:
        greeting = call(gw, "POST", PROMPTS, {"name": "greeting", "tags": ["shared"], "promptBody": chat("Be warm.")})
        self.greeting: str = greeting["id"]
        sales = call(gw, "POST", PROMPTS, {"name": "sales-pitch", "tags": ["sales"], "promptBody": chat("Sell.")})
        self.sales: str = sales["id"]
        first = chat(f"{{{{hcp:{self.greeting}:0}}}} You support {{{{hc:company:string}}}} customers.")
        support = call(
            gw, "POST", PROMPTS, {"name": "support-agent", "tags": ["support", "shared"], "promptBody": first}
        )
        self.support: str = support["id"]
        self.v00: str = support["versionId"]
        second = chat(
            f"{{{{hcp:{self.greeting}:0}}}} You support {{{{hc:company:string}}}} customers "
            "on the {{hc:tier:number}} tier."
        )
        self.v01: str = call(gw, "POST", PROMPTS + "/update", {
            "promptId": self.support, "promptVersionId": self.v00, "newMajorVersion": False,
            "environment": "staging", "commitMessage": "Mention the tier", "promptBody": second,
        })["id"]  # fmt: skip
        self.v10: str = call(gw, "POST", PROMPTS + "/update", {
            "promptId": self.support, "promptVersionId": self.v01, "newMajorVersion": True,
            "commitMessage": "Rewrite for the new brand", "promptBody": chat("You are Acme's assistant."),
        })["id"]  # fmt: skip


def browse(p: Any, problems: list[str]) -> tuple[Any, Any]:
    browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
    page = browser.new_page(viewport={"width": 1360, "height": 900}, color_scheme="light")
    page.set_default_timeout(TIMEOUT_MS)
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    return browser, page


def sign_in(page: Any, gw: Gateway, hash_: str = "") -> None:
    page.goto(f"{gw.url}/dashboard/")
    page.locator("#key").fill(gw.key)
    page.locator("#key").press("Enter")
    sync_api.expect(page.locator("#nav")).to_be_visible()
    if hash_:
        page.goto(f"{gw.url}/dashboard/{hash_}")


def test_list_search_tags_versions_variables_and_diff(served: Gateway, tmp_path: Path) -> None:
    gw = served
    seeded = Seeded(gw)
    shots = shots_dir(tmp_path)
    problems: list[str] = []
    expect = sync_api.expect
    with sync_api.sync_playwright() as p:
        browser, page = browse(p, problems)
        try:
            sign_in(page, gw)
            page.locator("#nav a[data-page=prompts]").click()
            expect(page.locator("#nav a[data-page=prompts]")).to_have_attribute("aria-current", "page")
            rows = page.locator("#prompts-table tbody tr")
            expect(rows).to_have_count(3)
            support_row = page.locator(f'tr[data-prompt-id="{seeded.support}"]')
            expect(support_row).to_contain_text("support-agent")
            expect(support_row.locator(".chip[data-tag]")).to_have_text(["support", "shared"])
            page.screenshot(path=shots / "prompts.png", full_page=True)

            # search by name, then clear it
            page.locator("#prompt-search").fill("SUPPORT")
            page.locator("#prompt-search").press("Enter")
            expect(rows).to_have_count(1)
            expect(support_row).to_be_visible()
            page.locator("#prompt-search").fill("no such prompt")
            page.locator("#prompt-search").press("Enter")
            expect(page.get_by_test_id("no-prompt-results")).to_be_visible()
            page.locator("#prompt-search").fill("")
            page.locator("#prompt-search").press("Enter")
            expect(rows).to_have_count(3)

            # tags: one, then a second (any of them), then none again
            page.locator('#prompt-tags button[data-tag="sales"]').click()
            expect(rows).to_have_count(1)
            expect(page.locator(f'tr[data-prompt-id="{seeded.sales}"]')).to_be_visible()
            expect(page.locator('#prompt-tags button[data-tag="sales"]')).to_have_attribute("aria-pressed", "true")
            page.locator('#prompt-tags button[data-tag="shared"]').click()
            expect(rows).to_have_count(3)
            page.locator('#prompt-tags button[data-tag="sales"]').click()
            expect(rows).to_have_count(2)
            expect(page.locator(f'tr[data-prompt-id="{seeded.sales}"]')).to_have_count(0)
            page.locator('#prompt-tags button[data-tag="shared"]').click()
            expect(rows).to_have_count(3)

            # a prompt's versions, newest first, with environments and commit messages
            support_row.click()
            expect(page.locator("#view h1")).to_have_text("support-agent")
            versions = page.locator("#versions-table tbody tr")
            expect(versions).to_have_count(3)
            expect(versions.nth(0)).to_have_attribute("data-version", "v1.0")
            expect(versions.nth(1)).to_have_attribute("data-version", "v0.1")
            expect(versions.nth(2)).to_have_attribute("data-version", "v0.0")
            expect(versions.nth(0)).to_contain_text("Rewrite for the new brand")
            expect(versions.nth(1)).to_contain_text("Mention the tier")
            expect(versions.nth(2)).to_contain_text("First version.")
            expect(versions.nth(1).locator(".env")).to_have_text(["staging"])
            expect(versions.nth(2).locator(".env")).to_have_text(["production"])
            expect(versions.nth(0).locator(".env")).to_have_count(0)

            # the production version is shown first, its variables and partial marked in the body
            expect(page.locator("#version")).to_have_attribute("data-version-id", seeded.v00)
            expect(versions.nth(2)).to_have_attribute("aria-selected", "true")
            company = page.locator('#prompt-body mark.var[data-var="company"]')
            expect(company).to_have_text("{{hc:company:string}}")
            expect(company).to_have_attribute("data-type", "string")
            expect(page.locator(f'#prompt-body mark.partial[data-partial="{seeded.greeting}"]')).to_have_text(
                f"{{{{hcp:{seeded.greeting}:0}}}}"
            )
            expect(page.locator("#variables .var-chip")).to_have_text(["company: string", "question: string"])
            expect(page.locator("#partials")).to_contain_text(f"{seeded.greeting} message 0, production")
            # text around the marks is kept as it is (no text lost or doubled)
            body_text = page.locator("#prompt-body").inner_text()
            assert json.loads(body_text)["messages"][0]["content"].endswith(
                "You support {{hc:company:string}} customers."
            )
            page.screenshot(path=shots / "prompt-version.png", full_page=True)
            page.emulate_media(color_scheme="dark")
            page.screenshot(path=shots / "prompt-version-dark.png", full_page=True)
            page.emulate_media(color_scheme="light")
            # the first version is compared with the one after it
            expect(page.locator("#diff-from")).to_have_value(seeded.v00)
            expect(page.locator("#diff-to")).to_have_value(seeded.v01)
            expect(page.locator("#diff-summary")).to_have_text("+1 −1 lines")
            expect(page.locator("#range-label")).to_be_hidden()  # prompts are not in a time range

            # another version: its own variables; the diff from the one before it
            versions.nth(1).click()
            expect(page.locator("#version")).to_have_attribute("data-version-id", seeded.v01)
            expect(page.locator('#prompt-body mark.var[data-var="tier"]')).to_have_attribute("data-type", "number")
            expect(page.locator("#diff-from")).to_have_value(seeded.v00)
            expect(page.locator("#diff-to")).to_have_value(seeded.v01)
            expect(page.locator("#diff-summary")).to_have_text("+1 −1 lines")
            expect(page.locator("#diff-view .diff-line.del")).to_contain_text("customers.")
            expect(page.locator("#diff-view .diff-line.add")).to_contain_text("on the {{hc:tier:number}} tier.")
            expect(page.locator('#diff-view .diff-line[data-op=" "]').first).to_contain_text("{")
            page.screenshot(path=shots / "prompt-diff.png", full_page=True)
            page.locator("#diff-to").select_option(seeded.v10)
            expect(page.locator("#diff-view .diff-line.add")).to_contain_text(["You are Acme's assistant."])
            page.locator("#diff-to").select_option(seeded.v00)
            expect(page.locator("#diff-summary")).to_have_text("No differences")
            expect(page.locator("#diff-view .diff-line.add, #diff-view .diff-line.del")).to_have_count(0)

            # a link to a version that does not exist shows the production one and says so
            page.goto(f"{gw.url}/dashboard/#/prompts/{seeded.support}/{uuid.uuid4()}")
            expect(page.locator("#version-missing")).to_contain_text("showing v0.0")
            expect(page.locator("#version")).to_have_attribute("data-version-id", seeded.v00)
            # an unknown prompt: the API's 404 message, not a blank page
            page.goto(f"{gw.url}/dashboard/#/prompts/zzzzzz")
            expect(page.locator("#prompt-error")).to_contain_text("No prompt 'zzzzzz'")
        finally:
            browser.close()
    # the unknown prompt's 404 is the one expected console error
    unexpected = [m for m in problems if "404" not in m]
    assert not unexpected, unexpected


def test_new_version_environment_move_new_prompt_and_refusals(served: Gateway, tmp_path: Path) -> None:
    gw = served
    seeded = Seeded(gw)
    shots = shots_dir(tmp_path)
    problems: list[str] = []
    expect = sync_api.expect

    def versions_via_api() -> list[dict[str, Any]]:
        listed: list[dict[str, Any]] = call(gw, "POST", PROMPTS + "/query/versions", {"promptId": seeded.support})
        return listed

    with sync_api.sync_playwright() as p:
        browser, page = browse(p, problems)
        try:
            sign_in(page, gw, f"#/prompts/{seeded.support}/{seeded.v01}")
            expect(page.locator("#version")).to_have_attribute("data-version-id", seeded.v01)

            # move production to v0.1
            page.locator("#env-name").fill("production")
            page.locator("#env-form button[type=submit]").click()
            expect(page.locator("#prompt-flash")).to_have_text("production now points at v0.1.")
            row01 = page.locator(f'tr[data-version-id="{seeded.v01}"]')
            expect(row01.locator(".env")).to_have_text(["production", "staging"])
            expect(page.locator(f'tr[data-version-id="{seeded.v00}"] .env')).to_have_count(0)
            production = call(gw, "POST", PROMPTS + "/query/production-version", {"promptId": seeded.support})
            assert production["id"] == seeded.v01

            # a new minor version from v0.1, in development; the number offered is the one the API gives
            expect(page.locator("label.choice").filter(has_text="Minor")).to_have_text("Minor (v0.2)")
            expect(page.locator("label.choice").filter(has_text="Major")).to_have_text("Major (v2.0)")
            edited = chat("You support {{hc:company:string}}; close with {{hc:sign_off:string}}.")
            page.locator("#nv-body").fill(json.dumps(edited, indent=2))
            expect(page.locator("#nv-body-check")).to_contain_text("variables: company (string), sign_off (string)")
            page.locator("#nv-message").fill("Add a sign-off")
            page.locator("#nv-env").fill("development")
            page.screenshot(path=shots / "prompt-new-version.png", full_page=True)
            page.locator("#new-version-form button[type=submit]").click()
            expect(page.locator("#prompt-flash")).to_have_text("Created v0.2 in development.")
            newest = page.locator("#versions-table tbody tr").first
            expect(newest).to_have_attribute("data-version", "v0.2")
            expect(newest).to_contain_text("Add a sign-off")
            expect(newest.locator(".env")).to_have_text(["development"])
            expect(newest).to_have_attribute("aria-selected", "true")
            expect(page.locator('#prompt-body mark.var[data-var="sign_off"]')).to_be_visible()
            made = versions_via_api()[0]
            assert (made["major_version"], made["minor_version"], made["environments"]) == (0, 2, ["development"])
            stored = call(gw, "POST", PROMPTS + "/query/version", {"promptVersionId": made["id"]})
            assert stored["prompt_body"] == edited and stored["commit_message"] == "Add a sign-off"

            # a major version (no environment)
            page.locator("#nv-major").check()
            page.locator("#nv-message").fill("Major rewrite")
            page.locator("#new-version-form button[type=submit]").click()
            expect(page.locator("#prompt-flash")).to_have_text("Created v2.0.")
            expect(page.locator("#versions-table tbody tr").first).to_have_attribute("data-version", "v2.0")
            assert len(versions_via_api()) == 5

            # refusals: JSON that does not parse never leaves the page ...
            page.locator("#nv-body").fill('{"model": "gpt-4o-mini", "messages": [')
            expect(page.locator("#nv-body-check")).to_contain_text("Not valid JSON")
            expect(page.locator("#nv-body")).to_have_attribute("aria-invalid", "true")
            page.locator("#new-version-form button[type=submit]").click()
            expect(page.locator("#nv-error")).to_contain_text("Fix the body first: Not valid JSON")
            # ... a body the API refuses shows the API's message, naming the field
            page.locator("#nv-body").fill('{"model": 3, "messages": []}')
            expect(page.locator("#nv-body-check")).to_contain_text("Valid JSON")
            page.locator("#new-version-form button[type=submit]").click()
            expect(page.locator("#nv-error")).to_contain_text("promptBody")
            expect(page.locator("#nv-error")).to_contain_text("model must be a string")
            page.locator("#nv-body").fill(json.dumps(chat("Fine.")))
            page.locator("#nv-env").fill("not an environment!")
            page.locator("#new-version-form button[type=submit]").click()
            expect(page.locator("#nv-error")).to_contain_text("environment")
            page.locator("#env-name").fill("has:colon")
            page.locator("#env-form button[type=submit]").click()
            expect(page.locator("#env-error")).to_contain_text("environment")
            page.evaluate("window.scrollTo(0, 0)")  # the sticky header at the top of a full-page shot
            page.screenshot(path=shots / "prompt-refused.png", full_page=True)
            assert len(versions_via_api()) == 5  # nothing refused was stored

            # a new prompt from the list page; a refused one shows why
            page.locator("#nav a[data-page=prompts]").click()
            page.locator("#new-prompt summary").click()
            page.locator("#np-name").fill("from-the-dashboard")
            page.locator("#np-tags").fill("ui, ui , drafts")
            page.locator("#np-body").fill('{"messages": [1]}')
            page.locator("#new-prompt-form button[type=submit]").click()
            expect(page.locator("#np-error")).to_contain_text("messages[0] must be an object with a string role")
            page.locator("#np-body").fill(json.dumps(chat("Draft for {{hc:team:string}}.")))
            page.locator("#new-prompt-form button[type=submit]").click()
            expect(page.locator("#view h1")).to_have_text("from-the-dashboard")
            expect(page.locator("#prompt-flash")).to_contain_text("(v0.0, in production)")
            expect(page.locator("#versions-table tbody tr .env")).to_have_text(["production"])
            expect(page.locator('#prompt-body mark.var[data-var="team"]')).to_be_visible()
            new_id = page.locator("#prompt-id").inner_text()
            assert call(gw, "GET", f"{PROMPTS}/id/{new_id}")["tags"] == ["ui", "drafts"]
        finally:
            browser.close()
    # The browser logs each refused call: the four the API refused, and not the JSON that never left.
    refused = [m for m in problems if "status of 400" in m]
    assert len(refused) == 4, problems
    assert len(problems) == len(refused), problems


def test_request_detail_links_to_the_prompt_version_it_used(
    served: Gateway, tmp_path: Path, mock_provider: MockProvider
) -> None:
    gw = served
    seeded = Seeded(gw)
    request_id = str(uuid.uuid4())
    client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key=gw.key, max_retries=0)
    completion = client.chat.completions.create(
        model="gpt-4o-mini/openai",
        messages=[{"role": "user", "content": "And my invoice?"}],
        extra_body={
            "prompt_id": seeded.support,
            "environment": "staging",
            "inputs": {"company": "Acme", "tier": 3, "question": "Where?"},
        },
        extra_headers={"Helicone-Request-Id": request_id},
    )
    assert completion.choices[0].message.content

    def stored() -> bool:
        response = httpx.get(f"{gw.url}/v1/request/{request_id}", headers={"Authorization": f"Bearer {gw.key}"})
        return response.status_code == 200 and "prompt" in (response.json()["data"].get("heliport_checks") or {})

    wait_for(stored, timeout=20)
    shots = shots_dir(tmp_path)
    problems: list[str] = []
    expect = sync_api.expect
    with sync_api.sync_playwright() as p:
        browser, page = browse(p, problems)
        try:
            sign_in(page, gw, f"#/requests/{request_id}")
            check = page.locator('#checks [data-check="prompt"]')
            expect(check.locator(".check-name")).to_have_text("Prompt")
            expect(check.locator("[data-outcome]")).to_have_text("v0.1 · staging")
            expect(check).to_contain_text(f"Prompt: {seeded.support}")
            expect(check).to_contain_text('Inputs: company = "Acme", tier = 3, question = "Where?"')
            expect(check).to_contain_text(f"Partials: {seeded.greeting}:0:production")
            link = page.locator("#prompt-link")
            expect(link).to_have_text(f"Open prompt {seeded.support} v0.1")
            page.screenshot(path=shots / "request-prompt.png")
            link.click()
            expect(page.locator("#detail")).to_be_hidden()
            expect(page.locator("#view h1")).to_have_text("support-agent")
            expect(page.locator("#version")).to_have_attribute("data-version-id", seeded.v01)
            expect(page.locator(f'tr[data-version-id="{seeded.v01}"]')).to_have_attribute("aria-selected", "true")
            # with the inputs that request compiled it with (the Prompts API's /inputs route)
            inputs = page.locator("#request-inputs")
            expect(inputs.locator("dt")).to_have_text(["company", "tier", "question"])
            expect(inputs.locator("dd")).to_have_text(["Acme", "3", "Where?"])
            expect(inputs).to_contain_text("Chosen by environment staging")
            page.screenshot(path=shots / "prompt-from-request.png", full_page=True)
            inputs.locator(f'a[href="#/requests/{request_id}"]').click()
            expect(page.locator("#detail-body")).to_contain_text(request_id)
        finally:
            browser.close()
    assert not problems, problems
