"""The overview's charts in a real browser: Playwright driving Debian's Chromium, headless.

heliport runs as ``heliport serve`` does (the local log pipeline). Traffic is two requests through the
official ``openai`` SDK against the mock provider, plus rows of the past day written by the real log
database adapter (errors, cache hits, latencies and TTFTs hours apart), and a second organisation's
rows. The browser runs in India's time zone (UTC+5:30), so the hourly-and-longer buckets start at :30
UTC. The test checks that every chart is drawn (a canvas and a legend naming its series), that each
caption and data table states what ``/v1/dashboard/timeseries`` answers for the same range, that the
charts follow the colour scheme and the range, that the keyboard passes through them, and that the
second organisation's charts hold only its own rows. A console error or CSP violation fails the test.

Screenshots go to ``$HELIPORT_SCREENSHOTS`` when set, else to the test's temporary directory.
"""

from __future__ import annotations

import asyncio
import math
import os
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from heliport.auth import create_key
from heliport.dashboard import CSP
from heliport.logs.row import RequestRow
from heliport.store.keys import Organisation, SqliteKeyStore
from heliport.store.logdb_sqlite import SqliteLogDb
from tests.harness import Gateway, start_gateway, wait_for
from tests.mock_provider import MockProvider

sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
TIMEOUT_MS = 15_000
sync_api.expect.set_options(timeout=TIMEOUT_MS)
TIMEZONE = "Asia/Kolkata"
#: Date.getTimezoneOffset() in Kolkata (local = UTC - minutes).
TZ_OFFSET = -330
CHARTS = {
    "requests": ["Requests", "Errors"],
    "cost": ["Cost"],
    "tokens": ["Prompt tokens", "Completion tokens"],
    "latency": ["p50", "p95"],
    "ttft": ["p50", "p95"],
    "cache": ["Cache hits"],
    "scores": ["accuracy", "helpfulness"],
}


@pytest.fixture
def served(tmp_path: Path, mock_provider: MockProvider) -> Iterator[Gateway]:
    gw = start_gateway(tmp_path, mock_provider.url, pipeline=True)
    yield gw
    gw.stop()


def _row(org: str, ago: timedelta, **fields: Any) -> RequestRow:
    values: dict[str, Any] = {
        "request_id": str(uuid.uuid4()),
        "org_id": org,
        "key_id": "seed",
        "created_at": datetime.now(UTC) - ago,
        "status": 200,
        "provider": "OPENAI",
        "target_url": "https://api.openai.com/v1/chat/completions",
        "path": "/v1/chat/completions",
        "model": "gpt-4o-mini",
        "prompt_tokens": 100,
        "completion_tokens": 40,
        "total_tokens": 140,
        "delay_ms": 800.0,
        "time_to_first_token": 150.0,
        "cost": Decimal("0.002"),
    }
    values.update(fields)
    return RequestRow(**values)


def _seed(gw: Gateway, tmp_path: Path) -> str:
    """A day of organisation A's traffic and a little of B's, stored as the log writer stores rows; B's key."""

    async def seed() -> str:
        store = SqliteKeyStore(tmp_path / "keys.sqlite3")
        other = Organisation(id=f"org-other-{uuid.uuid4().hex[:8]}", name="other", created_at=datetime.now(UTC))
        await store.put_org(other)
        other_key, _ = await create_key(store, other.id, "other")
        await store.aclose()
        hours = timedelta(hours=1)
        rows = [
            *(_row(gw.org_id, h * hours, delay_ms=400.0 + 60 * h, time_to_first_token=90.0 + 10 * h)
              for h in range(2, 22, 3)),
            _row(gw.org_id, 3 * hours + timedelta(minutes=5), status=500, cost=None, prompt_tokens=None,
                 completion_tokens=None, time_to_first_token=None),
            _row(gw.org_id, 6 * hours + timedelta(minutes=1), status=429, cost=None, time_to_first_token=None),
            _row(gw.org_id, 9 * hours, cache_hit=True, cost=Decimal(0), delay_ms=4.0, time_to_first_token=None),
            _row(gw.org_id, 9 * hours + timedelta(minutes=2), cache_hit=True, cost=Decimal(0), delay_ms=6.0),
            _row(gw.org_id, 2 * hours + timedelta(minutes=1), scores={"accuracy": 0.9}),
            _row(gw.org_id, 5 * hours + timedelta(minutes=1), scores={"accuracy": 0.5, "helpfulness": 1.0}),
            _row(other.id, 4 * hours, cost=Decimal("5"), prompt_tokens=7, completion_tokens=3),
        ]  # fmt: skip
        db = SqliteLogDb(tmp_path / "logs.sqlite3")
        assert await db.insert_requests(rows) == len(rows)
        await db.aclose()
        return other_key

    return asyncio.run(seed())


def _series(gw: Gateway, key: str, start_ms: float | None) -> dict[str, Any]:
    body: dict[str, Any] = {"filter": "all", "timeZoneDifference": TZ_OFFSET}
    if start_ms is not None:
        body["timeFilter"] = {
            "startTimeUnixMs": start_ms,
            "endTimeUnixMs": datetime.now(UTC).timestamp() * 1000 + 60_000,
        }
    response = httpx.post(
        f"{gw.url}/v1/dashboard/timeseries", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=10
    )
    assert response.status_code == 200, response.text
    return response.json()["data"]  # type: ignore[no-any-return]


def _scores(gw: Gateway, start: str, end: str) -> list[dict[str, Any]]:
    body = {"timeFilter": {"start": start, "end": end}, "userFilter": "all", "dbIncrement": "hour",
            "timeZoneDifference": TZ_OFFSET}  # fmt: skip
    response = httpx.post(
        f"{gw.url}/v1/dashboard/scores/query", json=body, headers={"Authorization": f"Bearer {gw.key}"}, timeout=10
    )
    assert response.status_code == 200, response.text
    return response.json()["data"]  # type: ignore[no-any-return]


def _count(n: float) -> str:
    return f"{int(n):,}"


def _ms(n: float) -> str:
    """As the dashboard writes a duration (JavaScript's Math.round, not Python's round half to even)."""
    return f"{n / 1000:.2f} s" if n >= 1000 else f"{math.floor(n + 0.5)} ms"


def _table(page: Any, chart: str, field: str) -> dict[str, str]:
    """One column of a chart's data table: bucket start -> the cell's text."""
    cells = page.locator(f"#chart-{chart} .chart-data tbody tr")
    return {
        cells.nth(i).get_attribute("data-time"): cells.nth(i).locator(f'td[data-field="{field}"]').inner_text()
        for i in range(cells.count())
    }


def test_charts_draw_the_series_the_api_answers(served: Gateway, tmp_path: Path) -> None:
    gw = served
    shots = Path(os.environ.get("HELIPORT_SCREENSHOTS") or tmp_path / "shots")
    shots.mkdir(parents=True, exist_ok=True)
    client = gw.openai()
    ids = [str(uuid.uuid4()), str(uuid.uuid4())]
    for request_id in ids:
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "Hello"}],
            extra_headers={"Helicone-Request-Id": request_id},
        )

    def stored() -> bool:
        body = {"filter": "all", "limit": 100}
        response = httpx.post(f"{gw.url}/v1/request/query", json=body, headers={"Authorization": f"Bearer {gw.key}"})
        return set(ids) <= {r["request_id"] for r in response.json()["data"] or []}

    wait_for(stored, timeout=20)
    for request_id, score in zip(ids, (0.6, 0.8), strict=True):
        scored = httpx.post(f"{gw.url}/v1/request/{request_id}/score", json={"scores": {"accuracy": score}},
                            headers={"Authorization": f"Bearer {gw.key}"})  # fmt: skip
        assert scored.status_code == 200, scored.text
    other_key = _seed(gw, tmp_path)

    problems: list[str] = []
    expect = sync_api.expect
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page(
                viewport={"width": 1360, "height": 1480}, color_scheme="light", timezone_id=TIMEZONE
            )
            page.set_default_timeout(TIMEOUT_MS)
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.goto(f"{gw.url}/dashboard/")
            page.locator("#key").fill(gw.key)
            page.locator("#key").press("Enter")

            # every chart drawn: a canvas, and a legend naming its series
            charts = page.locator("figure.chart")
            expect(charts).to_have_count(len(CHARTS))
            for chart, labels in CHARTS.items():
                figure = page.locator(f"#chart-{chart}")
                expect(figure.locator("canvas")).to_have_count(1)
                legend = figure.locator(".u-legend .u-series th")
                expect(legend).to_have_count(len(labels) + 1)  # uPlot's first row is the time
                for label in labels:
                    expect(figure.locator(".u-legend")).to_contain_text(label)
                assert figure.locator("canvas").bounding_box()["width"] > 300
            assert page.evaluate("new Date().getTimezoneOffset()") == TZ_OFFSET
            expect(page.locator("section.charts")).to_have_attribute("data-increment", "15m")
            page.screenshot(path=shots / "overview-charts.png")

            # what the charts say is what the API answers for the last 24 hours
            series = _series(gw, gw.key, datetime.now(UTC).timestamp() * 1000 - 86_460_000)
            buckets = [b for b in series["buckets"] if b["requests"]]
            requests, errors = sum(b["requests"] for b in buckets), sum(b["errors"] for b in buckets)
            assert (requests, errors) == (15, 2)
            caption = page.locator("#chart-requests figcaption")
            expect(caption).to_contain_text(f"Requests: {_count(requests)} in total")
            expect(caption).to_contain_text(f"Errors: {_count(errors)} in total")
            expect(page.locator("#chart-cache figcaption")).to_contain_text("Cache hits: 2 in total")
            tokens = sum(b["prompt_tokens"] for b in buckets)
            expect(page.locator("#chart-tokens figcaption")).to_contain_text(
                f"Prompt tokens: {_count(tokens)} in total"
            )
            # scores: the means per local hour, as the scores query answers for the same range
            scores = _scores(gw, series["start"], series["end"])
            accuracy = [r["score_sum"] for r in scores if r["score_key"] == "accuracy"]
            assert (min(accuracy), max(accuracy)) == (0.5, 0.9) and len(accuracy) >= 3
            expect(page.locator("#chart-scores figcaption")).to_contain_text(
                "Scores per hour, last 24 hours. accuracy: from 0.5 to 0.9"
            )
            expect(page.locator("#chart-scores figcaption")).to_contain_text("helpfulness: from 1 to 1")
            page.locator("#chart-scores .chart-data summary").click()
            table = _table(page, "scores", "score:accuracy")
            assert table == {
                r["created_at_trunc"]: str(round(r["score_sum"], 3)) for r in scores if r["score_key"] == "accuracy"
            }
            page.locator("#chart-scores .chart-data summary").click()

            page.locator("#chart-requests .chart-data summary").click()
            assert _table(page, "requests", "requests") == {b["time"]: _count(b["requests"]) for b in buckets}
            assert _table(page, "requests", "errors") == {b["time"]: _count(b["errors"]) for b in buckets}
            # buckets start on local quarter hours: UTC minutes 00, 15, 30, 45 in a +5:30 zone
            assert {b["time"][14:16] for b in buckets} <= {"00", "15", "30", "45"}
            page.locator("#chart-latency .chart-data summary").click()
            p95 = _table(page, "latency", "latency_p95")
            assert p95 == {b["time"]: _ms(b["latency_p95"]) for b in buckets if b["latency_p95"] is not None}

            for chart in ("requests", "latency"):
                page.locator(f"#chart-{chart} .chart-data summary").click()  # closed again

            # the keyboard passes through the charts: from one chart's data toggle to the next one's
            page.locator("#chart-cost .chart-data summary").focus()
            page.keyboard.press("Tab")
            expect(page.locator("#chart-tokens .chart-data summary")).to_be_focused()

            # the colour scheme: the charts are drawn again in the dark palette
            expect(page.locator("section.charts")).to_have_attribute("data-scheme", "light")
            page.evaluate("document.activeElement.blur()")
            page.emulate_media(color_scheme="dark")
            expect(page.locator("section.charts")).to_have_attribute("data-scheme", "dark")
            expect(page.locator("#chart-latency canvas")).to_have_count(1)
            page.screenshot(path=shots / "overview-charts-dark.png")
            page.emulate_media(color_scheme="light")

            # another range: the last hour in minutes holds only the SDK's two requests
            page.locator("#range").select_option("3600000")
            expect(page.locator("section.charts")).to_have_attribute("data-increment", "1m")
            expect(page.locator("#chart-requests figcaption")).to_contain_text("Requests: 2 in total")
            expect(page.locator("#chart-latency figcaption")).to_contain_text("per minute, last hour")

            # another organisation's charts hold only its own row
            page.locator("#sign-out").click()
            page.locator("#key").fill(other_key)
            page.locator("#key").press("Enter")
            page.locator("#range").select_option("86400000")
            expect(page.locator("#chart-requests figcaption")).to_contain_text("Requests: 1 in total")
            expect(page.locator("#chart-cost figcaption")).to_contain_text("Cost: $5.0000 in total")
            expect(page.locator("#chart-scores")).to_contain_text("No scores in this range")
            other = _series(gw, other_key, None)
            assert sum(b["requests"] for b in other["buckets"]) == 1
        finally:
            browser.close()
    assert problems == []


@pytest.mark.parametrize(
    ("path", "content_type", "marker"),
    [
        ("/dashboard/charts.js", "text/javascript; charset=utf-8", b'from "./vendor/uplot/uPlot.esm.js"'),
        ("/dashboard/vendor/uplot/uPlot.esm.js", "text/javascript; charset=utf-8", b"export { uPlot as default }"),
        ("/dashboard/vendor/uplot/uPlot.min.css", "text/css; charset=utf-8", b".uplot"),
    ],
)
def test_charts_and_vendored_uplot_are_served_under_the_strict_csp(
    gateway: Gateway, path: str, content_type: str, marker: bytes
) -> None:
    response = httpx.get(gateway.url + path)
    assert response.status_code == 200 and response.headers["content-type"] == content_type
    assert marker in response.content
    assert response.headers["content-security-policy"] == CSP
    # the library writes no HTML and no style attribute: the CSP's style-src 'self' holds without 'unsafe-inline'
    text = response.text
    assert "innerHTML" not in text and 'setAttribute("style"' not in text and "insertRule" not in text
    for name in ("README.md", "LICENSE"):  # documentation beside the files, not served
        assert httpx.get(f"{gateway.url}/dashboard/vendor/uplot/{name}").status_code == 404
