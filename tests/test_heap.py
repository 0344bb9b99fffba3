"""The serving processes tune the garbage collector; anything else that imports heliport does not.

Each check runs in a fresh interpreter: the settings are process-wide, and this test process must
keep its own.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from heliport.heap import YOUNG_THRESHOLD

ROOT = Path(__file__).resolve().parent.parent
REPORT = "import gc, json; print(json.dumps([gc.get_threshold()[0], gc.get_freeze_count()]))"


def gc_state(code: str, cwd: Path, tmp_path: Path) -> tuple[int, int]:
    env = {"PATH": "/usr/bin:/bin", "HELIPORT_DATA_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", f"{code}\n{REPORT}"], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    threshold, frozen = json.loads(done.stdout.strip().splitlines()[-1])
    return threshold, frozen


def test_the_proxy_lambda_entry_freezes_its_start_up_heap(tmp_path: Path) -> None:
    threshold, frozen = gc_state("import app", ROOT / "functions" / "proxy", tmp_path)

    assert threshold == YOUNG_THRESHOLD
    assert frozen > 10_000  # the modules, classes and functions imported to build the app


def test_importing_heliport_leaves_the_collector_alone(tmp_path: Path) -> None:
    threshold, frozen = gc_state("import heliport.app, heliport.heap", ROOT, tmp_path)

    assert (threshold, frozen) == (700, 0)
