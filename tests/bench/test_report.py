"""The benchmark report turns one run's raw numbers into ratios, PASS/FAIL lines, tables and plots.

The suite itself needs minutes and a peer gateway; these tests feed the report a run of known
numbers and check what it concludes from them, so a wrong ratio or a check that cannot fail shows.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

from bench import report

PERCENTILES = ("50", "75", "90", "99", "99.9")


def wrk_run(target: str, scenario: str, connections: int, rps: float, p50: float, p99: float) -> dict[str, Any]:
    """A matrix entry shaped as ``bench.run.WrkRun`` serialises it."""
    steps = [p50, p50 * 1.1, p50 * 1.3, p99, p99 * 1.5]
    return {
        "target": target,
        "scenario": scenario,
        "connections": connections,
        "rps": rps,
        "p50_ms": p50,
        "p99_ms": p99,
        "errors": {"connect": 0, "read": 0, "write": 0, "status": 0, "timeout": 0},
        "cpu_us_per_request": {} if target == "direct" else {"proxy": 500.0},
        "raw": {"latency_us": {"percentiles": {p: int(v * 1000) for p, v in zip(PERCENTILES, steps, strict=True)}}},
    }


def rounds(p50: dict[str, float]) -> dict[str, Any]:
    """An ``interleaved`` result at 1 connection with these median p50s."""
    direct = p50["direct"]
    return {
        "targets": {
            name: {
                "median_p50_ms": value,
                "median_p99_ms": value * 3,
                "added_p50_ms": value - direct,
                "paired_added_p50_ms": {"min": value - direct, "median": value - direct, "max": value - direct},
            }
            for name, value in p50.items()
        }
    }


def run_results(*, heliport_rps: float, litellm_rps: float, heliport_p99: float) -> dict[str, Any]:
    matrix = []
    for scenario in ("json", "sse"):
        matrix += [
            wrk_run("direct", scenario, 1, 4000, 0.2, 1.0),
            wrk_run("baseline", scenario, 1, 800, 1.0, 3.0),
            wrk_run("heliport", scenario, 1, 700, 1.1, 4.0),
            wrk_run("litellm", scenario, 1, 100, 9.0, 40.0),
            wrk_run("direct", scenario, 32, 6000, 5.0, 10.0),
            wrk_run("baseline", scenario, 32, 1500, 20.0, 50.0),
            wrk_run("heliport", scenario, 32, heliport_rps, 22.0, heliport_p99),
            wrk_run("litellm", scenario, 32, litellm_rps, 280.0, 420.0),
        ]
    c1 = rounds({"direct": 0.2, "baseline": 1.0, "heliport": 1.1, "litellm": 9.0})
    return {
        "proxy": {"matrix": matrix, "interleaved_c1": {"json": c1, "sse": c1}},
        "ttft": {
            "delay_ms": 50,
            "samples": 3,
            "targets": {
                "direct": {"p50_ms": 50.5, "p90_ms": 51.0, "added_p50_ms": 0.0, "values_ms": [50.4, 50.5, 51.0]},
                "heliport": {"p50_ms": 52.0, "p90_ms": 52.5, "added_p50_ms": 1.5, "values_ms": [51.9, 52.0, 52.5]},
            },
        },
        "coldstart": {
            "runs": 3,
            "entries": {
                "proxy": {"import_ms_median": 90.0, "import_ms_min": 85.0, "import_ms_max": 99.0, "rss_mb_median": 45.0}
            },
        },
        "memory": {
            "connections": 32,
            "growth": 0.25,
            "points": [
                {"requests": 10_000, "rss_mb": 60.0, "errors": 0},
                {"requests": 100_000, "rss_mb": 75.0, "errors": 0},
            ],
        },
    }


def checks(results: dict[str, Any]) -> dict[str, bool]:
    return {c["name"]: c["pass"] for c in report.summarise(results)["checks"]}


def test_ratios_come_from_the_same_runs_numbers() -> None:
    summary = report.summarise(run_results(heliport_rps=1200, litellm_rps=100, heliport_p99=30.0))

    ratios = summary["ratios"]["heliport.json"]
    assert ratios["vs_baseline_rps"] == 1200 / 1500
    assert ratios["vs_direct_rps"] == 1200 / 6000
    assert ratios["vs_peer_rps"] == 12.0
    assert ratios["peer_p99_over_ours"] == 14.0
    assert ratios["added_p50_ms_c1"] == 1.1 - 0.2


def test_each_target_passes_or_fails_on_its_own_threshold() -> None:
    good = checks(run_results(heliport_rps=1200, litellm_rps=100, heliport_p99=30.0))
    bad = checks(run_results(heliport_rps=900, litellm_rps=100, heliport_p99=60.0))

    assert good["heliport JSON: req/s at 32 connections vs baseline"] is True  # 80% >= 70%
    assert bad["heliport JSON: req/s at 32 connections vs baseline"] is False  # 60%
    assert good["heliport JSON: req/s at 32 connections vs LiteLLM"] is True  # 12x
    assert bad["heliport JSON: req/s at 32 connections vs LiteLLM"] is False  # 9x
    assert good["heliport SSE: p99 at 32 connections, LiteLLM's over ours"] is True  # 14x
    assert bad["heliport SSE: p99 at 32 connections, LiteLLM's over ours"] is False  # 7x
    # The same in both runs: 0.9 ms added p50, 1.5 ms added TTFT, 25% growth, a 90 ms import.
    assert good["heliport JSON: added p50 at 1 connection"] is False
    assert good["heliport: added TTFT (first event after 50 ms)"] is False
    assert good["heliport serve: RSS after 100,000 requests vs after 10,000"] is False
    assert good["proxy entry: import"] is True


def test_a_phase_that_did_not_run_adds_no_check() -> None:
    results = run_results(heliport_rps=1200, litellm_rps=100, heliport_p99=30.0)
    del results["memory"], results["ttft"]
    for run in results["proxy"]["matrix"]:
        run["target"] = run["target"].replace("litellm", "other")

    names = checks(results)

    assert not [n for n in names if "LiteLLM" in n or "TTFT" in n or "requests vs after" in n]
    assert "heliport JSON: added p50 at 1 connection" in names


def test_markdown_shows_the_measured_values_and_verdicts() -> None:
    results = run_results(heliport_rps=1200, litellm_rps=100, heliport_p99=30.0)

    text = report.markdown(results)

    assert "| heliport JSON: req/s at 32 connections vs LiteLLM | 12.0x | >= 10x | PASS |" in text
    assert "| heliport serve: RSS after 100,000 requests vs after 10,000 | +25.0% | <= +10% | FAIL |" in text
    assert "| JSON | 32 | heliport | 1,200 | 22.00 | 30.00 | 20% | 12.0x | 500 | 0 |" in text


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path.name} is not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_plots_are_written_as_pngs(tmp_path: Path) -> None:
    results = run_results(heliport_rps=1200, litellm_rps=100, heliport_p99=30.0)

    written = report.plots(results, tmp_path / "suite-test")

    assert sorted(p.name for p in written) == [
        "suite-test-latency.png",
        "suite-test-memory.png",
        "suite-test-throughput.png",
        "suite-test-ttft.png",
    ]
    for path in written:
        width, height = png_size(path)
        assert width > 400 and height > 300
