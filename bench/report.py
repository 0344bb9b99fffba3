"""The suite's report: ratios and checks from raw results, markdown tables, and matplotlib plots.

    .venv/bin/python bench/report.py bench/results/suite-<UTC>.json     (re-renders tables and plots)

Everything here is computed from one run's raw results (``bench/suite.py``), so each ratio compares
numbers measured side by side on the same machine. Targets are reported as PASS/FAIL, never asserted.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

#: The gateways the targets are checked for: the Lambda entry (the deployed hot path) and serve.
HELIPORTS = ("heliport", "heliport-serve")
PEER = "litellm"
ADDED_P50_MS = 0.5
THROUGHPUT_VS_BASELINE = 0.70
PEER_THROUGHPUT_FACTOR = 10.0
PEER_P99_FACTOR = 10.0
TTFT_ADDED_MS = 1.0
IMPORT_MS = 400.0
RSS_MB = 80.0
MEMORY_GROWTH = 0.10
#: Plot order and colours: the references in grey, heliport in blues, the peer in orange.
COLOURS = {
    "direct": "#9e9e9e",
    "baseline": "#616161",
    "heliport": "#1565c0",
    "heliport-cache-hit": "#42a5f5",
    "heliport-ratelimit": "#0d47a1",
    "heliport-serve": "#5c6bc0",
    "litellm": "#ef6c00",
}


def _cells(matrix: Iterable[Mapping[str, Any]]) -> dict[str, dict[int, dict[str, Mapping[str, Any]]]]:
    """scenario -> connections -> target -> wrk run."""
    out: dict[str, dict[int, dict[str, Mapping[str, Any]]]] = {}
    for run in matrix:
        out.setdefault(run["scenario"], {}).setdefault(run["connections"], {})[run["target"]] = run
    return out


def _check(name: str, value: float | None, target: str, passed: bool | None, shown: str) -> dict[str, Any]:
    return {"name": name, "value": value, "target": target, "pass": passed, "shown": shown}


def summarise(results: Mapping[str, Any]) -> dict[str, Any]:
    """Ratios and target checks of one run; a phase that did not run adds nothing."""
    out: dict[str, Any] = {"ratios": {}, "checks": []}
    checks: list[dict[str, Any]] = out["checks"]
    proxy = results.get("proxy")
    if proxy:
        cells = _cells(proxy["matrix"])
        high = max(run["connections"] for run in proxy["matrix"])
        for scenario, by_conns in cells.items():
            rounds = proxy["interleaved_c1"][scenario]["targets"]
            runs = by_conns[high]
            for name in HELIPORTS:
                if name not in runs:
                    continue
                ours = runs[name]
                ratios: dict[str, float] = {
                    "added_p50_ms_c1": rounds[name]["added_p50_ms"],
                    "vs_direct_rps": ours["rps"] / runs["direct"]["rps"],
                    "vs_baseline_rps": ours["rps"] / runs["baseline"]["rps"],
                }
                if PEER in runs:
                    ratios["vs_peer_rps"] = ours["rps"] / runs[PEER]["rps"]
                    ratios["peer_p99_over_ours"] = runs[PEER]["p99_ms"] / ours["p99_ms"]
                    ratios["vs_peer_p50_c1"] = rounds[PEER]["median_p50_ms"] / rounds[name]["median_p50_ms"]
                out["ratios"][f"{name}.{scenario}"] = ratios
                label = f"{name} {scenario.upper()}"
                added = ratios["added_p50_ms_c1"]
                checks.append(
                    _check(
                        f"{label}: added p50 at 1 connection",
                        added,
                        f"<= {ADDED_P50_MS} ms",
                        added <= ADDED_P50_MS,
                        f"{added:+.3f} ms",
                    )
                )
                share = ratios["vs_baseline_rps"]
                checks.append(
                    _check(
                        f"{label}: req/s at {high} connections vs baseline",
                        share,
                        f">= {THROUGHPUT_VS_BASELINE:.0%}",
                        share >= THROUGHPUT_VS_BASELINE,
                        f"{share:.0%}",
                    )
                )
                if PEER in runs:
                    factor, p99 = ratios["vs_peer_rps"], ratios["peer_p99_over_ours"]
                    checks.append(
                        _check(
                            f"{label}: req/s at {high} connections vs LiteLLM",
                            factor,
                            f">= {PEER_THROUGHPUT_FACTOR:.0f}x",
                            factor >= PEER_THROUGHPUT_FACTOR,
                            f"{factor:.1f}x",
                        )
                    )
                    checks.append(
                        _check(
                            f"{label}: p99 at {high} connections, LiteLLM's over ours",
                            p99,
                            f">= {PEER_P99_FACTOR:.0f}x",
                            p99 >= PEER_P99_FACTOR,
                            f"{p99:.1f}x",
                        )
                    )
        errors = {
            f"{r['target']} {r['scenario']} c={r['connections']}": sum(r["errors"].values()) for r in proxy["matrix"]
        }
        out["proxy_errors"] = {case: n for case, n in errors.items() if n}
    ttft = results.get("ttft")
    if ttft:
        for name in HELIPORTS:
            if name in ttft["targets"]:
                added = ttft["targets"][name]["added_p50_ms"]
                checks.append(
                    _check(
                        f"{name}: added TTFT (first event after {ttft['delay_ms']} ms)",
                        added,
                        f"<= {TTFT_ADDED_MS} ms",
                        added <= TTFT_ADDED_MS,
                        f"{added:+.3f} ms",
                    )
                )
    cold = results.get("coldstart")
    if cold:
        proxy_entry = cold["entries"]["proxy"]
        ms, mb = proxy_entry["import_ms_median"], proxy_entry["rss_mb_median"]
        checks.append(_check("proxy entry: import", ms, f"<= {IMPORT_MS:.0f} ms", ms <= IMPORT_MS, f"{ms:.0f} ms"))
        checks.append(
            _check("proxy entry: RSS after first request", mb, f"<= {RSS_MB:.0f} MB", mb <= RSS_MB, f"{mb:.0f} MB")
        )
    memory = results.get("memory")
    if memory:
        growth = memory["growth"]
        first, last = memory["points"][0]["requests"], memory["points"][-1]["requests"]
        checks.append(
            _check(
                f"heliport serve: RSS after {last:,} requests vs after {first:,}",
                growth,
                f"<= +{MEMORY_GROWTH:.0%}",
                growth <= MEMORY_GROWTH,
                f"{growth:+.1%}",
            )
        )
    return out


# -- markdown ----------------------------------------------------------------------------------------


def _table(header: Iterable[str], rows: Iterable[Iterable[str]], align: str) -> str:
    head = list(header)
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _proxy_tables(proxy: Mapping[str, Any]) -> list[str]:
    cells = _cells(proxy["matrix"])
    rows = []
    for scenario, by_conns in cells.items():
        for conns, runs in sorted(by_conns.items()):
            direct, peer = runs["direct"], runs.get(PEER)
            for name, run in runs.items():
                cpu = run["cpu_us_per_request"].get("proxy")
                rows.append(
                    [
                        scenario.upper(),
                        str(conns),
                        name,
                        f"{run['rps']:,.0f}",
                        f"{run['p50_ms']:.2f}",
                        f"{run['p99_ms']:.2f}",
                        f"{run['rps'] / direct['rps']:.0%}",
                        f"{run['rps'] / peer['rps']:.1f}x" if peer else "-",
                        "-" if cpu is None else f"{cpu:.0f}",
                        str(sum(run["errors"].values())),
                    ]
                )
    matrix = _table(
        [
            "scenario",
            "conns",
            "target",
            "req/s",
            "p50 ms",
            "p99 ms",
            "vs direct",
            "vs LiteLLM",
            "proxy CPU µs/req",
            "errors",
        ],
        rows,
        "llllrrrrrr",
    )
    c1 = []
    for scenario, result in proxy["interleaved_c1"].items():
        for name, entry in result["targets"].items():
            added = "" if name == "direct" else f"{entry['added_p50_ms']:+.3f}"
            spread = entry["paired_added_p50_ms"]
            paired = (
                "" if name == "direct" else f"{spread['median']:+.3f} ({spread['min']:+.3f} to {spread['max']:+.3f})"
            )
            c1.append(
                [
                    scenario.upper(),
                    name,
                    f"{entry['median_p50_ms']:.3f}",
                    added,
                    paired,
                    f"{entry['median_p99_ms']:.2f}",
                ]
            )
    rounds = _table(
        ["scenario", "target", "p50 ms (median of rounds)", "added p50 ms", "per-round added (min to max)", "p99 ms"],
        c1,
        "llrrrr",
    )
    return [
        "### Proxy: every target, 1 and 32 connections (wrk, one run per case)",
        matrix,
        "### Proxy: added p50 at 1 connection (interleaved rounds)",
        rounds,
    ]


def markdown(results: Mapping[str, Any]) -> str:
    parts: list[str] = []
    summary = results.get("summary") or summarise(results)
    if summary["checks"]:
        rows = [[c["name"], c["shown"], c["target"], "PASS" if c["pass"] else "FAIL"] for c in summary["checks"]]
        parts += ["### Targets", _table(["measure", "measured", "target", ""], rows, "lrrl")]
    if results.get("proxy"):
        parts += _proxy_tables(results["proxy"])
    ttft = results.get("ttft")
    if ttft:
        base = ttft["targets"].get("baseline", {}).get("p50_ms")
        rows = [
            [
                name,
                f"{e['p50_ms']:.2f}",
                f"{e['p90_ms']:.2f}",
                "" if name == "direct" else f"{e['added_p50_ms']:+.3f}",
                "" if base is None or name in {"direct", "baseline"} else f"{e['p50_ms'] - base:+.3f}",
            ]
            for name, e in ttft["targets"].items()
        ]
        parts += [
            f"### Time to first token (mock's first event after {ttft['delay_ms']} ms; {ttft['samples']} streams each)",
            _table(["target", "TTFT p50 ms", "p90 ms", "added p50 ms", "vs baseline ms"], rows, "lrrrr"),
        ]
    cold = results.get("coldstart")
    if cold:
        rows = [
            [
                kind,
                f"{e['import_ms_median']:.0f}",
                f"{e['import_ms_min']:.0f}–{e['import_ms_max']:.0f}",
                f"{e['rss_mb_median']:.0f}",
            ]
            for kind, e in cold["entries"].items()
        ]
        parts += [
            f"### Cold start (fresh interpreter, median of {cold['runs']})",
            _table(["entry", "import ms", "range", "RSS after first request MB"], rows, "lrrr"),
        ]
    memory = results.get("memory")
    if memory:
        rows = [[f"{p['requests']:,}", f"{p['rss_mb']:.1f}", str(p["errors"])] for p in memory["points"]]
        parts += [
            f"### Memory of heliport serve ({memory['connections']} connections, JSON and SSE alternating)",
            _table(["requests", "RSS MB", "errors"], rows, "rrr"),
        ]
    consumer = results.get("consumer")
    if consumer:
        rows = [[str(c["batch"]), str(c["in_flight"]), f"{c['records_per_s_median']:,.0f}"] for c in consumer["cases"]]
        parts += [
            f"### Consumer into PostgreSQL ({consumer['records']:,} records per round, median of {consumer['rounds']})",
            _table(["batch", "batches in flight", "records/s"], rows, "rrr"),
        ]
    query = results.get("query")
    if query:
        rows = [
            [name, str(c["rows_returned"]), f"{c['p50_ms']:.1f}", f"{c['p99_ms']:.1f}"]
            for name, c in query["cases"].items()
        ]
        parts += [
            f"### Query API over {query['rows']:,} rows ({query['orgs']} organisations, {query['days']} days)",
            _table(["query", "rows", "p50 ms", "p99 ms"], rows, "lrrr"),
        ]
    return "\n\n".join(parts)


# -- plots -------------------------------------------------------------------------------------------


def plots(results: Mapping[str, Any], prefix: Path) -> list[Path]:
    """PNG files ``<prefix>-latency.png``, ``-throughput.png``, ``-ttft.png``, ``-memory.png``."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    written: list[Path] = []

    def save(fig: Any, name: str) -> None:
        path = prefix.with_name(f"{prefix.name}-{name}.png")
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)

    proxy = results.get("proxy")
    if proxy:
        cells = _cells(proxy["matrix"])
        fig, axes = plt.subplots(2, 2, figsize=(12, 8), squeeze=False)
        for row, (scenario, by_conns) in enumerate(cells.items()):
            for col, (conns, runs) in enumerate(sorted(by_conns.items())):
                ax = axes[row][col]
                for name, run in runs.items():
                    percentiles = run["raw"]["latency_us"]["percentiles"]
                    labels = list(percentiles)
                    ax.plot(
                        labels, [percentiles[p] / 1000 for p in labels], marker="o", label=name, color=COLOURS.get(name)
                    )
                ax.set_yscale("log")
                ax.set_title(f"{scenario.upper()}, {conns} connection{'s' if conns > 1 else ''}")
                ax.set_xlabel("percentile")
                ax.set_ylabel("latency, ms (log)")
                ax.grid(True, which="both", alpha=0.3)
        axes[0][0].legend(fontsize=8)
        fig.suptitle("Latency distribution per target (wrk, loopback)")
        save(fig, "latency")

        fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), squeeze=False)
        for col, conns in enumerate(sorted({c for by in cells.values() for c in by})):
            ax = axes[0][col]
            names = list(next(iter(cells.values()))[conns])
            width = 0.8 / len(cells)
            for index, (scenario, by_conns) in enumerate(cells.items()):
                values = [by_conns[conns][n]["rps"] for n in names]
                xs = [i + index * width for i in range(len(names))]
                bars = ax.bar(xs, values, width, label=scenario.upper(), alpha=0.9 if index == 0 else 0.6)
                ax.bar_label(bars, labels=[f"{v:,.0f}" for v in values], fontsize=7, rotation=90, padding=2)
            ax.set_xticks([i + width * (len(cells) - 1) / 2 for i in range(len(names))], names, rotation=30, ha="right")
            ax.set_yscale("log")
            ax.set_ylabel("requests/s (log)")
            ax.set_title(f"Throughput, {conns} connection{'s' if conns > 1 else ''}")
            ax.legend(fontsize=8)
        save(fig, "throughput")

    ttft = results.get("ttft")
    if ttft:
        fig, ax = plt.subplots(figsize=(8, 4.5))
        names = list(ttft["targets"])
        ax.boxplot([ttft["targets"][n]["values_ms"] for n in names], showfliers=False)
        ax.set_xticks(range(1, len(names) + 1), names)
        ax.set_ylabel("time to first SSE event, ms")
        ax.set_title(f"TTFT, mock's first event after {ttft['delay_ms']} ms")
        ax.grid(True, axis="y", alpha=0.3)
        save(fig, "ttft")

    memory = results.get("memory")
    if memory:
        fig, ax = plt.subplots(figsize=(8, 4))
        points = memory["points"]
        ax.plot([p["requests"] for p in points], [p["rss_mb"] for p in points], marker="o", color=COLOURS["heliport"])
        ax.axhline(points[0]["rss_mb"] * (1 + MEMORY_GROWTH), linestyle="--", color="grey", label="+10% of first point")
        ax.set_ylim(bottom=0)
        ax.set_xlabel("requests proxied (JSON and SSE alternating)")
        ax.set_ylabel("RSS, MB")
        ax.set_title("heliport serve: resident memory")
        ax.legend(fontsize=8)
        ax.grid(True, alpha=0.3)
        save(fig, "memory")
    return written


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    path = Path(argv[0])
    results = json.loads(path.read_text())
    results["summary"] = summarise(results)
    tables = markdown(results)
    path.with_suffix(".md").write_text(tables + "\n")
    written = plots(results, path.with_suffix(""))
    print(tables)
    print(f"\nplots: {', '.join(str(p) for p in written)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
