"""The root conftest imports nothing heavy, so one unit test file runs without the whole dev environment.

moto, the AWS SDKs, asyncpg, playwright, the SDK-driven harness and the mock provider are imported by the
fixtures that need them (tests/conftest.py), never when pytest loads the conftest. Checked in a fresh
interpreter with ``-X importtime``, which lists every module imported.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Top-level modules (and modules of this suite) that a unit test must not pay for.
HEAVY = (
    "moto",
    "boto3",
    "botocore",
    "aioboto3",
    "aiobotocore",
    "asyncpg",
    "playwright",
    "openai",
    "anthropic",
    "uvicorn",
    "tests.aws",
    "tests.postgres",
    "tests.harness",
    "tests.mock_provider",
)


def _imported(arguments: list[str]) -> set[str]:
    """Every module a fresh ``python -X importtime <arguments>`` imports."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", *arguments],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    # "import time:  self [us] | cumulative | <indent>module"
    return {match.group(1) for match in re.finditer(r"^import time:[^|]*\|[^|]*\|\s*(\S+)$", result.stderr, re.M)}


def _heavy(modules: set[str]) -> list[str]:
    """The entries of HEAVY that ``modules`` imported (themselves or any of their submodules)."""
    return sorted(heavy for heavy in HEAVY if any(name == heavy or name.startswith(heavy + ".") for name in modules))


def test_importing_the_root_conftest_imports_nothing_heavy() -> None:
    modules = _imported(["-c", "import tests.conftest"])
    assert "tests.conftest" in modules and "pytest" in modules, "the import did not happen"
    assert not _heavy(modules), f"tests/conftest.py imports at module level: {_heavy(modules)}"


def test_collecting_a_unit_test_file_imports_nothing_heavy() -> None:
    """The whole of pytest's start-up (plugins, the root conftest) for one light file: this one. pytest
    imports conftests and test files through its own loader, which -X importtime does not see, so the
    modules are read from ``sys.modules`` after the collection."""
    script = (
        "import sys, pytest\n"
        f"code = pytest.main(['--collect-only', '-q', '-p', 'no:cacheprovider', {__file__!r}])\n"
        "print('MODULES', *sorted(sys.modules))\n"
        "sys.exit(code)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT, check=False
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("MODULES ")]
    modules = set(line.split()[1:])
    assert "tests.conftest" in modules, "the root conftest was not loaded"
    assert not _heavy(modules), f"pytest imports for one unit test file: {_heavy(modules)}"


def test_every_fixture_of_tests_aws_has_its_lazy_stand_in() -> None:
    """tests/conftest.py stands in for the fixtures of tests/aws.py (importing that module imports moto):
    each with the same name, scope and parameters, so none goes missing or changes shape."""

    def fixtures(path: Path) -> dict[str, str]:
        found: dict[str, str] = {}
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                for decorator in node.decorator_list:
                    if "pytest.fixture" in ast.unparse(decorator):
                        keywords = decorator.keywords if isinstance(decorator, ast.Call) else []
                        found[node.name] = ", ".join(sorted(ast.unparse(keyword) for keyword in keywords))
        return found

    aws = fixtures(ROOT / "tests" / "aws.py")
    assert aws, "tests/aws.py defines the AWS fixtures"
    stand_ins = fixtures(ROOT / "tests" / "conftest.py")
    assert {name: stand_ins.get(name) for name in aws} == aws
