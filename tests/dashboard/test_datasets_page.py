"""The dashboard's Datasets page and "Add to dataset" in a real browser: Playwright driving Debian's Chromium.

heliport runs as ``heliport serve`` does (the local log pipeline); traffic is sent with the official
``openai`` SDK against the mock provider (two answered chats and one the provider refuses). The page
is driven: a dataset created from the form, requests added from a request's detail (to it, and to a
new dataset named there) and from the table's selection, the items listed with their models and
request links, an item's bodies edited with the JSON checked as typed, the JSONL and CSV exports
downloaded through a Blob URL (the files are the API's ``content``, the refused chat listed as
skipped), an item removed, the dataset deleted after a confirm step; every step is checked back
through the API, and a second organisation sees none of it. A console error or a CSP violation
fails the test.

Screenshots go to ``$HELIPORT_SCREENSHOTS`` when set, else to the test's temporary directory.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.dashboard.test_browser import _second_org_key, _stored
from tests.dashboard.test_prompts_page import browse, shots_dir, sign_in
from tests.harness import Gateway, start_gateway
from tests.mock_provider import MockProvider

sync_api = pytest.importorskip("playwright.sync_api")
DATASETS = "/v1/helicone-dataset"


@pytest.fixture
def served(tmp_path: Path, mock_provider: MockProvider) -> Iterator[Gateway]:
    gw = start_gateway(tmp_path, mock_provider.url, pipeline=True)
    yield gw
    gw.stop()


def call(gw: Gateway, method: str, path: str, body: Any = None, key: str | None = None) -> Any:
    """One datasets API call as a client makes it; the answer's ``data`` (an error fails the test)."""
    response = httpx.request(
        method, gw.url + path, json=body, headers={"Authorization": f"Bearer {key or gw.key}"}, timeout=10
    )
    answer = response.json()
    assert response.status_code == 200 and answer["error"] is None, (path, response.status_code, answer)
    return answer["data"]


def datasets(gw: Gateway, key: str | None = None) -> dict[str, dict[str, Any]]:
    """The organisation's datasets through the API, by name."""
    return {d["name"]: d for d in call(gw, "POST", DATASETS + "/query", {}, key)}


def items(gw: Gateway, dataset_id: str) -> dict[str, dict[str, Any]]:
    """A dataset's items through the API, by their request's id."""
    found = call(gw, "POST", f"{DATASETS}/{dataset_id}/query", {"offset": 0, "limit": 100})
    return {i["origin_request_id"]: i for i in found}


def test_create_add_edit_export_remove_and_delete(served: Gateway, tmp_path: Path) -> None:
    gw = served
    shots = shots_dir(tmp_path)
    client = gw.openai()
    lisbon, museums, refused = (str(uuid.uuid4()) for _ in range(3))
    client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "system", "content": "You plan trips."}, {"role": "user", "content": "A weekend in Lisbon"}],
        extra_headers={"Helicone-Request-Id": lisbon},
    )
    client.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "Find museums"}],
        extra_headers={"Helicone-Request-Id": museums},
    )
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "This one fails"}],
            extra_headers={"Helicone-Request-Id": refused, "x-mock-status": "500"},
        )
    _stored(gw, [lisbon, museums, refused])
    other_key = _second_org_key(gw, tmp_path)

    problems: list[str] = []
    expect = sync_api.expect
    with sync_api.sync_playwright() as p:
        browser, page = browse(p, problems)
        try:
            sign_in(page, gw)
            page.locator("#nav a[data-page=datasets]").click()
            expect(page.locator("#nav a[data-page=datasets]")).to_have_attribute("aria-current", "page")
            expect(page.get_by_test_id("no-datasets")).to_be_visible()
            expect(page.locator("#range-label")).to_be_hidden()  # datasets are not in a time range

            # a dataset from the form: its page opens, and the API has it
            page.locator("#nd-name").fill("support-ft")
            page.locator("#nd-description").fill("Answers worth fine-tuning on")
            page.locator("#new-dataset-form button[type=submit]").click()
            expect(page.locator("#dataset-flash")).to_contain_text("Created the dataset support-ft.")
            made = datasets(gw)["support-ft"]
            assert made["description"] == "Answers worth fine-tuning on" and made["requests_count"] == 0
            assert page.url.endswith(f"#/datasets/{made['id']}")
            expect(page.get_by_test_id("no-items")).to_be_visible()
            expect(page.locator("#export-jsonl")).to_be_disabled()  # nothing to export yet

            # from a request's detail: to the dataset, then to a new one named there
            page.goto(f"{gw.url}/dashboard/#/requests/{lisbon}")
            picker = page.locator("#detail-dataset")
            expect(picker.locator("#detail-dataset-select option")).to_have_text(["support-ft (0)", "New dataset…"])
            picker.locator("#detail-dataset-add").click()
            expect(picker.locator("#detail-dataset-status")).to_have_text(
                "Added the request to support-ft: 1 item now. Open the dataset"
            )
            assert set(items(gw, made["id"])) == {lisbon}
            picker.locator("#detail-dataset-select").select_option(label="New dataset…")
            picker.locator("#detail-dataset-add").click()
            expect(picker.locator("#detail-dataset-status")).to_have_text("Name the new dataset first.")
            picker.locator("#detail-dataset-name").fill("scratch")
            picker.locator("#detail-dataset-add").click()
            expect(picker.locator("#detail-dataset-status")).to_contain_text(
                "Added the request to scratch: 1 item now."
            )
            scratch = datasets(gw)["scratch"]
            assert set(items(gw, scratch["id"])) == {lisbon}
            expect(picker.locator("#detail-dataset-select")).to_have_value(scratch["id"])
            page.screenshot(path=shots / "request-add-to-dataset.png")
            page.keyboard.press("Escape")
            expect(page.locator("#detail")).to_be_hidden()

            # the table's selection: two requests at once (the refused one too), by keyboard for one of them
            page.locator(f'tr[data-request-id="{museums}"] input.select-request').check()
            box = page.locator(f'tr[data-request-id="{refused}"] input.select-request')
            box.focus()
            page.keyboard.press("Space")  # ticks the box and does not open the detail
            expect(box).to_be_checked()
            expect(page.locator("#detail")).to_be_hidden()
            expect(page.locator("#selected-count")).to_have_text("2 selected")
            page.locator("#bulk-select").select_option(made["id"])
            page.locator("#bulk-add").click()
            expect(page.locator("#bulk-status")).to_contain_text("Added 2 requests to support-ft: 3 items now.")
            assert set(items(gw, made["id"])) == {lisbon, museums, refused}
            page.locator("#bulk-status a.open-dataset").click()

            # the items: request links, models, no edit yet
            rows = page.locator("#items-table tbody tr")
            expect(rows).to_have_count(3)
            expect(page.locator("#dataset-count")).to_have_text("3")
            row = page.locator(f'#items-table tr[data-request-id="{museums}"]')
            expect(row.locator(".item-model")).to_have_text("gpt-4o")
            expect(row.locator("a.item-request")).to_have_attribute("href", f"#/requests/{museums}")
            expect(page.locator("#items-table .item-edited")).to_have_text(["–", "–", "–"])

            # edit the Lisbon item: the logged bodies are the starting point, bad JSON is refused as typed
            page.locator(f'#items-table tr[data-request-id="{lisbon}"] button.item-edit').click()
            editor = page.locator("#item-request")
            expect(editor).to_be_focused()
            logged = json.loads(editor.input_value())
            assert logged["messages"][1] == {"role": "user", "content": "A weekend in Lisbon"}
            editor.fill('{"messages": [')
            expect(page.locator("#item-request-check")).to_contain_text("Not valid JSON")
            expect(editor).to_have_attribute("aria-invalid", "true")
            page.locator("#item-form button[type=submit]").click()
            expect(page.locator("#item-error")).to_have_text("Fix the JSON first.")
            editor.fill("[1, 2]")
            expect(page.locator("#item-request-check")).to_have_text("The request body must be a JSON object.")
            edited = {**logged, "messages": [{"role": "user", "content": "Two days in Lisbon, please"}]}
            editor.fill(json.dumps(edited))
            expect(page.locator("#item-request-check")).to_have_text("Valid JSON · 1 message")
            page.locator("#item-form button[type=submit]").click()
            expect(page.locator("#dataset-flash")).to_have_text(
                "Saved the item's edit (the logged request is unchanged)."
            )
            expect(page.locator(f'#items-table tr[data-request-id="{lisbon}"] .chip.edited')).to_have_text("edited")
            stored = items(gw, made["id"])[lisbon]
            assert stored["edited"] is True and stored["request_body"] == edited
            assert stored["response_body"]["choices"][0]["message"]["role"] == "assistant"  # the logged one, kept

            # JSONL: a file downloaded from a Blob URL, the API's content; the refused chat skipped
            with page.expect_download() as jsonl_download:
                page.locator("#export-jsonl").click()
            jsonl = jsonl_download.value
            assert jsonl.suggested_filename == "support-ft.jsonl"
            answer = call(gw, "GET", f"{DATASETS}/{made['id']}/export?format=jsonl")
            assert Path(jsonl.path()).read_bytes().decode() == answer["content"]
            lines = [json.loads(line) for line in answer["content"].splitlines()]
            assert len(lines) == 2 and {"role": "user", "content": "Two days in Lisbon, please"} in lines[0]["messages"]
            result = page.locator("#export-result")
            expect(result).to_contain_text("Exported 2 fine-tuning examples to support-ft.jsonl.")
            skipped = page.locator("#export-skipped tbody tr")
            expect(skipped).to_have_count(1)
            expect(skipped.locator("a")).to_have_attribute("href", f"#/requests/{refused}")
            expect(skipped).to_contain_text(answer["skipped"][0]["reason"])
            page.screenshot(path=shots / "datasets.png", full_page=True)

            # CSV: every item, one line each after the header
            with page.expect_download() as csv_download:
                page.locator("#export-csv").click()
            csv = csv_download.value
            assert csv.suggested_filename == "support-ft.csv"
            csv_text = Path(csv.path()).read_bytes().decode()  # CRLF lines, as written
            assert csv_text == call(gw, "GET", f"{DATASETS}/{made['id']}/export?format=csv")["content"]
            assert csv_text.splitlines()[0].startswith("request_id,") and len(csv_text.strip().splitlines()) == 4
            expect(result).to_contain_text("Exported 3 rows to support-ft.csv.")

            # remove an item
            page.locator(f'#items-table tr[data-request-id="{museums}"] button.item-remove').click()
            expect(page.locator("#dataset-flash")).to_have_text(f"Removed request {museums} from the dataset.")
            expect(rows).to_have_count(2)
            assert set(items(gw, made["id"])) == {lisbon, refused}

            # the list, dark
            page.locator("a[href='#/datasets']").first.click()
            listed = page.locator(f'#datasets-table tr[data-dataset-id="{made["id"]}"]')
            expect(listed.locator(".items")).to_have_text("2")
            expect(listed).to_contain_text("Answers worth fine-tuning on")
            page.emulate_media(color_scheme="dark")
            page.screenshot(path=shots / "datasets-list-dark.png", full_page=True)
            page.emulate_media(color_scheme="light")
            listed.focus()
            page.keyboard.press("Enter")

            # delete: cancelled, then confirmed
            page.locator(".dataset-actions button.delete").click()
            expect(page.locator(".confirm-question")).to_have_text("Delete the dataset support-ft and its 2 items?")
            page.locator(".confirm-no").click()
            assert "support-ft" in datasets(gw)
            page.locator(".dataset-actions button.delete").click()
            page.locator(".confirm-yes").click()
            expect(page.locator("#dataset-flash")).to_have_text("Deleted the dataset support-ft.")
            assert set(datasets(gw)) == {"scratch"}
            expect(page.locator("#datasets-table tbody tr")).to_have_count(1)

            # a second organisation sees no dataset, and not the first one's by its address
            page.locator("#sign-out").click()
            page.locator("#key").fill(other_key)
            page.locator("#key").press("Enter")
            expect(page.locator("#nav")).to_be_visible()
            page.goto(f"{gw.url}/dashboard/#/datasets")
            expect(page.get_by_test_id("no-datasets")).to_be_visible()
            page.goto(f"{gw.url}/dashboard/#/datasets/{scratch['id']}")
            expect(page.get_by_test_id("no-dataset")).to_be_visible()
            assert datasets(gw, other_key) == {}
        finally:
            browser.close()
    assert problems == []


def test_items_are_paged(served: Gateway, tmp_path: Path) -> None:
    """26 items: a page of 25 (newest first), then the last one, and back."""
    gw = served
    client = gw.openai()
    sent = [str(uuid.uuid4()) for _ in range(26)]
    for n, request_id in enumerate(sent):
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": f"Question {n}"}],
            extra_headers={"Helicone-Request-Id": request_id},
        )
    _stored(gw, sent)
    made = call(gw, "POST", DATASETS, {"datasetName": "many", "requestIds": sent})  # Helicone's own create body
    problems: list[str] = []
    expect = sync_api.expect
    with sync_api.sync_playwright() as p:
        browser, page = browse(p, problems)
        try:
            sign_in(page, gw, f"#/datasets/{made['datasetId']}")
            rows = page.locator("#items-table tbody tr")
            expect(rows).to_have_count(25)
            expect(page.locator(".pager .muted")).to_have_text("1–25 of 26")
            expect(rows.first).to_have_attribute("data-request-id", sent[-1])  # added last: newest
            page.get_by_role("button", name="Next").click()
            expect(rows).to_have_count(1)
            expect(rows.first).to_have_attribute("data-request-id", sent[0])
            expect(page.locator(".pager .muted")).to_have_text("26–26 of 26")
            expect(page.get_by_role("button", name="Next")).to_be_disabled()
            page.get_by_role("button", name="Previous").click()
            expect(rows).to_have_count(25)
        finally:
            browser.close()
    assert problems == []
