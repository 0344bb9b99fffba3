"""What the unified AI gateway adds over the pass-through proxy, measured in one run.

    .venv/bin/python bench/gateway.py [--rounds 7] [--round-seconds 2] [--quick]

One heliport (the Lambda entry under uvicorn, local adapters) serves both routes against the mock
provider, with only an OpenAI key configured so ``gpt-4o-mini`` plans to exactly one provider:

* ``direct``: the mock; ``heliport``: ``/v1/gateway/oai/v1/chat/completions`` (pass-through);
* ``gateway``: ``/v1/chat/completions`` with the heliport key as the bearer token: authentication,
  the routing plan over the registry, the per-provider body filter (one JSON decode and encode),
  and for streams the injected usage request;
* ``baseline``: ``bench/baseline.py``, the bare pass-through every proxy on this stack is held to;
* ``gateway-anthropic``: the same route with ``claude-sonnet-4/anthropic``: a translated provider
  (OpenAI chat -> Anthropic Messages and back, streams re-framed event by event);
* ``gateway-together``: ``llama-3.3-70b/together``: an OpenAI-compatible host of issue 25, answered
  by the mock in Together's dialect (``<mock>/together``, usage on the finish chunk), which costs
  the mock a JSON re-encode per answer that the other targets do not pay.

The three gateway targets send the same body but for ``model`` (one body file per target and
scenario; the shared runner is told which through :func:`_own_body`).

Interleaved rounds as in ``bench/run.py``, JSON and SSE, at 1 and 32 connections. Raw results:
``bench/results/gateway-<UTC>.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import signal
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bench.run as bench_run
from bench.run import (
    Children,
    Noise,
    Target,
    interleaved,
    machine,
    raise_on_sigterm,
    scratch_dir,
    start_baseline,
    start_lambda_entry,
    start_mock,
    wait_ready,
    write_bodies,
    write_results,
)


def start(children: Children, scratch: Path) -> dict[str, Target]:
    mock = start_mock(children, scratch)
    heliport = start_lambda_entry(
        children,
        scratch,
        "heliport",
        mock,
        OPENAI_API_KEY="sk-bench-upstream-key",
        HELIPORT_UPSTREAM_ANTHROPIC=mock.url,
        ANTHROPIC_API_KEY="sk-ant-bench-upstream-key",
        HELIPORT_UPSTREAM_TOGETHER=f"{mock.url}/together",
        TOGETHER_API_KEY="together-bench-upstream-key",
    )
    gateway_url = heliport.url.replace("/v1/gateway/oai", "", 1)
    return {
        "direct": mock.direct(),
        "baseline": start_baseline(children, scratch, mock),
        "heliport": heliport,
        **{
            name: dataclasses.replace(
                heliport, name=name, url=gateway_url, headers=(f"Authorization: Bearer {heliport.key}",)
            )
            for name in ("gateway", *GATEWAY_MODELS)
        },
    }


#: The gateway targets beside OpenAI's, and the model string each sends.
GATEWAY_MODELS = {"gateway-anthropic": "claude-sonnet-4/anthropic", "gateway-together": "llama-3.3-70b/together"}


def own_bodies(bodies: Mapping[str, bytes], body_files: Mapping[str, Path]) -> dict[str, dict[str, bytes]]:
    """Per gateway target, the scenario bodies with its own model (also written beside the shared files)."""
    out: dict[str, dict[str, bytes]] = {}
    for target, model in GATEWAY_MODELS.items():
        out[target] = {}
        for scenario, body in bodies.items():
            own = json.dumps({**json.loads(body), "model": model}, separators=(",", ":")).encode()
            body_files[scenario].with_name(f"{target}-{body_files[scenario].name}").write_bytes(own)
            out[target][scenario] = own
    return out


_shared_run_wrk = bench_run.run_wrk


def _own_body(target: Target, scenario: str, body_file: Path, **kwargs: Any) -> Any:
    """``run_wrk`` with the target's own body file when it has one (the gateway targets)."""
    own = body_file.with_name(f"{target.name}-{body_file.name}")
    return _shared_run_wrk(target, scenario, own if own.exists() else body_file, **kwargs)


def summarise(results: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for label, result in results.items():
        t = result["targets"]
        p50 = {name: entry["median_p50_ms"] for name, entry in t.items()}
        rps = {name: entry["median_rps"] for name, entry in t.items()}
        out[label] = {
            "p50_ms": p50,
            "rps": rps,
            "gateway_added_over_proxy_ms": p50["gateway"] - p50["heliport"],
            "gateway_rps_vs_proxy": rps["gateway"] / rps["heliport"],
            # What a provider adds over OpenAI behind the same route: translation (Anthropic), or a
            # host's filter and usage placement (Together).
            "anthropic_over_openai_ms": p50["gateway-anthropic"] - p50["gateway"],
            "together_over_openai_ms": p50["gateway-together"] - p50["gateway"],
            "anthropic_rps_vs_openai": rps["gateway-anthropic"] / rps["gateway"],
            "together_rps_vs_openai": rps["gateway-together"] / rps["gateway"],
        }
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--round-seconds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--quick", action="store_true", help="3 rounds of 1 s")
    parser.add_argument("--retries", type=int, default=2, help="extra attempts at a disturbed round")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("bench: wrk is not installed; on Debian/Ubuntu: sudo apt-get install -y wrk")
        return 2
    rounds, round_s = (3, 1) if args.quick else (args.rounds, args.round_seconds)
    signal.signal(signal.SIGTERM, raise_on_sigterm)
    started = datetime.now(UTC)
    children = Children()
    results: dict[str, Any] = {}
    with scratch_dir(False) as scratch:
        try:
            bodies, body_files = write_bodies(scratch)
            targets = start(children, scratch)
            per_target = own_bodies(bodies, body_files)
            bench_run.run_wrk = _own_body
            for target in targets.values():
                wait_ready(target, per_target.get(target.name, bodies), children)
            for scenario, path in body_files.items():
                for connections in (1, args.connections):
                    print(f"bench: {scenario}, {connections} connection(s), {rounds} rounds x {round_s} s", flush=True)
                    results[f"{scenario}-c{connections}"] = interleaved(
                        targets,
                        {scenario: path},
                        connections=connections,
                        threads=1,
                        rounds=rounds,
                        round_s=round_s,
                        warmup_s=1,
                        noise=Noise(retries=args.retries),
                    )[scenario]
            children.check_alive()
        finally:
            children.stop_all()
            bench_run.run_wrk = _shared_run_wrk
    summary = summarise(results)
    print("\n| case | direct p50 | proxy p50 | gateway p50 | gateway over proxy | gateway req/s vs proxy |")
    print("|---|---|---|---|---|---|")
    for label, s in summary.items():
        p = s["p50_ms"]
        print(
            f"| {label} | {p['direct']:.3f} ms | {p['heliport']:.3f} ms | {p['gateway']:.3f} ms "
            f"| {s['gateway_added_over_proxy_ms']:+.3f} ms | {s['gateway_rps_vs_proxy']:.0%} |"
        )
    print(
        "\n| case | gateway: openai p50 | anthropic p50 | together p50 | anthropic over openai | together over openai "
        "| anthropic req/s vs openai | together req/s vs openai |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for label, s in summary.items():
        p = s["p50_ms"]
        print(
            f"| {label} | {p['gateway']:.3f} ms | {p['gateway-anthropic']:.3f} ms | {p['gateway-together']:.3f} ms "
            f"| {s['anthropic_over_openai_ms']:+.3f} ms | {s['together_over_openai_ms']:+.3f} ms "
            f"| {s['anthropic_rps_vs_openai']:.0%} | {s['together_rps_vs_openai']:.0%} |"
        )
    document = {
        "machine": machine(),
        "settings": {"rounds": rounds, "round_s": round_s, "connections": [1, args.connections]},
        "interleaved": results,
        "summary": summary,
    }
    write_results("gateway", started, document)
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:
        print("bench: interrupted; every child process was stopped", file=sys.stderr)
        raise SystemExit(130) from None
