"""``bench/serve_p99.py``'s verdict from rounds of known numbers: the ratio it reports and its PASS/FAIL."""

from __future__ import annotations

from bench.run import WrkRun
from bench.serve_p99 import LOADED, TARGET_P99_RATIO, _summary


def run(target: str, p50: float, p99: float) -> WrkRun:
    return WrkRun(
        target=target,
        scenario="json",
        connections=1,
        threads=1,
        duration_s=3,
        requests=3000,
        rps=1000.0,
        p50_ms=p50,
        p90_ms=p50,
        p99_ms=p99,
        mean_ms=p50,
        max_ms=p99,
        errors={"timeout": 0},
        cpu_us_per_request={"proxy": 500.0, "pipeline": 120.0},
        deferred_cpu_us_per_request=0.0,
        drain_s=0.0,
        sustained_rps=1000.0,
        host_busy_cores=1.0,
        foreign_cores=0.0,
        raw={},
    )


def test_ratio_is_of_the_medians_over_rounds_and_pairs_each_round() -> None:
    bare = [run("baseline", 0.5, p99) for p99 in (1.0, 2.0, 9.0)]  # one round spoilt by a burst
    serve = [run("heliport-serve", 0.6, p99) for p99 in (1.5, 3.0, 4.0)]
    thread = [run("heliport-serve-thread", 0.8, p99) for p99 in (8.0, 9.0, 10.0)]
    loaded = [run(LOADED, 0.5, p99) for p99 in (5.0, 6.0, 7.0)]
    summary = _summary({"baseline": bare, "heliport-serve": serve, "heliport-serve-thread": thread, LOADED: loaded})
    assert summary["p99_ratio"] == 3.0 / 2.0  # median 3.0 over median 2.0, the spoilt round outvoted
    assert summary["paired_p99_ratio"] == {"min": 4.0 / 9.0, "median": 1.5, "max": 1.5}
    assert summary["p50_ratio"] == 0.6 / 0.5
    assert summary["pass"] is True
    assert summary["targets"]["heliport-serve-thread"]["p99_ratio"] == 9.0 / 2.0
    assert summary["targets"][LOADED]["p99_ratio"] == 6.0 / 2.0  # the control: bare beside background load
    assert summary["targets"]["heliport-serve"]["median_cpu_us"] == {"proxy": 500.0, "pipeline": 120.0}


def test_a_ratio_above_the_target_fails() -> None:
    bare = [run("baseline", 0.5, 1.0)] * 3
    serve = [run("heliport-serve", 0.6, 1.0 * TARGET_P99_RATIO + 0.01)] * 3
    assert _summary({"baseline": bare, "heliport-serve": serve})["pass"] is False
