"""bench/cost_model.py: a few lines worked out by hand, every price sourced and dated, the proxy's memory
size read from template.yaml, and docs/cost.md being what the model writes today."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest

from bench import cost_model
from bench.cost_model import MILLION, Line, Mode, managed_instances, on_demand, pipeline_lines, workers, workloads

JSON, SSE = workloads()


def _line(lines: Mode | list[Line], prefix: str) -> float:
    """The monthly USD of the one line whose item starts with ``prefix``."""
    found = [line for line in (lines.lines if isinstance(lines, Mode) else lines) if line.item.startswith(prefix)]
    assert len(found) == 1, prefix
    return found[0].monthly


def test_on_demand_bills_the_wait_at_the_templates_memory_size() -> None:
    # 5 s stream, 2,241 us CPU stretched by 1769/1024 (1,024 MB is 0.58 vCPU), 10 ms hand-off, 1 GB, $0.0000133334/GB-s.
    billed_s = 5.0 + 0.002241 * 1769 / 1024 + 0.010
    mode = on_demand(1 * MILLION, SSE, 1024)
    assert _line(mode, "Lambda duration") == pytest.approx(1_000_000 * billed_s * 1.0 * 0.0000133334)
    assert _line(mode, "Lambda duration") == pytest.approx(66.852, abs=0.001)
    assert _line(mode, "Lambda requests") == pytest.approx(0.20)
    assert _line(mode, "API Gateway REST API") == pytest.approx(3.50)
    # At 2,048 MB (more than one vCPU) the CPU work is not stretched and a GB-second costs twice as much.
    assert _line(on_demand(1 * MILLION, SSE, 2048), "Lambda duration") == pytest.approx(
        1_000_000 * (5.0 + 0.002241 + 0.010) * 2.0 * 0.0000133334
    )


def test_managed_instances_pay_three_instances_and_the_fee_whatever_the_volume_below_their_capacity() -> None:
    # 100M streams a month (730 h): 38.1 a second, 190 in flight, 3 environments of 64, 2 instances: the minimum 3.
    assert cost_model.lmi_instances(100 * MILLION, SSE) == 3
    mode = managed_instances(100 * MILLION, SSE)
    assert _line(mode, "EC2 instances") == pytest.approx(3 * 730 * 0.0816)  # $178.704
    assert _line(mode, "Managed Instances management fee") == pytest.approx(3 * 730 * 0.0816 * 0.15)  # $26.806
    assert _line(mode, "Lambda requests") == pytest.approx(100 * 0.20)
    # 1,000M streams: 1,903 in flight, 30 environments, 15 instances.
    assert cost_model.lmi_instances(1000 * MILLION, SSE) == 15


def test_workers_bill_cpu_and_requests_beyond_what_the_subscription_includes() -> None:
    # 100M streams at 2.241 ms: 224.1M CPU ms, 194.1M beyond the 30M included at $0.02/M; 90M requests at $0.30/M.
    mode = workers(100 * MILLION, SSE)
    assert mode.total() == pytest.approx(5.0 + 90 * 0.30 + 194.1 * 0.02)  # $35.88
    # 1M requests: the $5 minimum and nothing else.
    assert workers(1 * MILLION, JSON).total() == pytest.approx(5.0)


def test_the_pipeline_lines() -> None:
    lines = pipeline_lines(1 * MILLION)
    assert _line(lines, "SQS") == pytest.approx(1.2 * 0.40)
    assert _line(lines, "S3 PUTs, bodies (today") == pytest.approx(5.00)
    assert _line(lines, "S3 PUTs, bodies (inline") == pytest.approx(0.05 * 5.00)
    # Aurora at its 0.5 ACU running minimum all month, plus 0.5 I/O per row at $0.20/M.
    assert _line(lines, "Aurora") == pytest.approx(0.5 * 730 * 0.12 + 0.5 * 0.20)
    # Two interface endpoints in two AZs all month, plus 6 KB per record (6 GB for 1M) at $0.01/GB.
    assert _line(lines, "Interface endpoints") == pytest.approx(2 * 2 * 730 * 0.01 + 6 * 0.01)


def test_totals_add_their_lines_and_the_s3_variants_differ_by_the_puts_saved() -> None:
    mode = on_demand(10 * MILLION, JSON, 1024)
    assert mode.total("today") == pytest.approx(sum(line.monthly for line in mode.lines if line.variant != "inline"))
    assert mode.total("today") - mode.total("inline") == pytest.approx(10 * 5.00 * (1 - 0.05))


def test_every_price_has_a_source_and_the_date_it_was_read() -> None:
    assert cost_model.PRICES
    for name, price in cost_model.PRICES.items():
        assert re.fullmatch(r"https://[\w.-]+\.(com|aws)/\S*", price.source), name
        assert date.fromisoformat(price.read) <= date.today(), name
        assert price.value > 0 and price.unit, name
    for name, assumption in cost_model.ASSUMPTIONS.items():
        assert assumption.what and assumption.basis, name


def test_the_memory_size_is_read_from_the_template(tmp_path: Path) -> None:
    text = cost_model.TEMPLATE.read_text(encoding="utf-8")
    # The proxy's own size: the on-demand branch of its Fn::If on ProxyCompute.
    chosen = re.search(r"\n      MemorySize: !If \[ProxyOnManagedInstances, 2048, (\d+)\]\n", text)
    assert chosen is not None
    assert cost_model.template_memory_mb() == int(chosen[1]) == 512
    # Without a size of its own, the Globals' applies.
    globals_size = re.search(r"\nGlobals:\n  Function:\n(?:    .*\n)*?    MemorySize: (\d+)\n", text)
    assert globals_size is not None
    bare = text.replace(chosen[0], "\n", 1)
    (tmp_path / "bare.yaml").write_text(bare, encoding="utf-8")
    assert cost_model.template_memory_mb(tmp_path / "bare.yaml") == int(globals_size[1])
    # A plain number wins too.
    own = bare.replace("      Handler: run.sh\n", "      Handler: run.sh\n      MemorySize: 1536\n", 1)
    assert own != text
    (tmp_path / "template.yaml").write_text(own, encoding="utf-8")
    assert cost_model.template_memory_mb(tmp_path / "template.yaml") == 1536


def test_docs_cost_md_is_what_the_model_writes() -> None:
    assert cost_model.DOC.read_text(encoding="utf-8") == cost_model.render(), (
        "docs/cost.md is stale: .venv/bin/python -m bench.cost_model --write"
    )
