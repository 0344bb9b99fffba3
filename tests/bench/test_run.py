"""``bench/run.py``'s shared pieces that decide what a results file says."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

import bench.run
from bench.run import write_results

STARTED = datetime(2026, 12, 6, 9, 51, 29, tzinfo=UTC)


def test_results_are_named_for_the_bench_and_its_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bench.run, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(sys, "argv", ["bench/serve_p99.py", "--rounds", "5"])
    path = write_results("serve-p99", STARTED, {"machine": {"nproc": 2}, "scenarios": {}})
    assert path == tmp_path / "results" / "serve-p99-20261206T095129Z.json"
    document = json.loads(path.read_text())
    assert list(document)[:2] == ["started_at", "command"]  # what every results file opens with
    assert document["started_at"] == "2026-12-06T09:51:29+00:00"
    assert document["command"].endswith("python bench/serve_p99.py --rounds 5")
    assert document["machine"] == {"nproc": 2}


def test_an_explicit_out_wins_and_its_folder_is_made(tmp_path: Path) -> None:
    out = tmp_path / "elsewhere" / "run.json"
    assert write_results("gateway", STARTED, {"summary": {"x": 1.5}}, out) == out
    assert json.loads(out.read_text())["summary"] == {"x": 1.5}
