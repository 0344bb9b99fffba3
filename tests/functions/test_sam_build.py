"""``sam build`` as a user runs it (no container): the artifact ``sam deploy`` would upload.

The artifact is arm64 (Graviton), so its compiled wheels cannot load here; they are checked by their
ELF headers. That the handlers import from the artifact and the layer alone is checked on the twin
build for this machine: same template, requirements and builder, only the architecture differs.
"""

from __future__ import annotations

import ast
import re
import struct
from pathlib import Path

import pytest

from tests.lambda_sandbox import FUNCTIONS, ROOT, LambdaBuild, Sandbox, host_architecture

LAYER_REQUIREMENTS = ROOT / "shared" / "requirements.txt"
# Lambda's quota: function and layers together, unzipped.
UNZIPPED_LIMIT_BYTES = 250 * 1024 * 1024
ELF_MACHINE = {"arm64": 183, "x86_64": 62}  # EM_AARCH64, EM_X86_64


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _required() -> set[str]:
    names = set()
    for line in LAYER_REQUIREMENTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.add(_canonical(re.split(r"[<>=!~;\[ ]", line, maxsplit=1)[0]))
    return names


def _distributions(layer: Path) -> dict[str, str]:
    """name -> version of every distribution installed in a layer's python/."""
    found = {}
    for info in (layer / "python").glob("*.dist-info"):
        name, version = info.name.removesuffix(".dist-info").rsplit("-", 1)
        found[_canonical(name)] = version
    return found


def _elf_machine(path: Path) -> int:
    header = path.read_bytes()[:20]
    assert header[:4] == b"\x7fELF", f"{path} is not an ELF object"
    machine: int = struct.unpack("<H", header[18:20])[0]
    return machine


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def test_the_layer_holds_heliport_and_every_dependency(lambda_build: LambdaBuild) -> None:
    layer = lambda_build.artifact / "HeliportLayer" / "python"
    source = {p.relative_to(ROOT / "shared").as_posix() for p in (ROOT / "shared" / "heliport").rglob("*.py")}
    built = {p.relative_to(layer).as_posix() for p in (layer / "heliport").rglob("*.py")}
    assert source and built == source, "the layer's heliport package is the repository's"
    assert (layer / "heliport" / "gateway" / "models.json").is_file(), "package data travels with the code"
    installed = _distributions(lambda_build.artifact / "HeliportLayer")
    missing = _required() - installed.keys()
    assert not missing, f"not installed into the layer: {sorted(missing)}"


def test_every_compiled_module_is_for_graviton_and_python_313(lambda_build: LambdaBuild) -> None:
    layer = lambda_build.artifact / "HeliportLayer" / "python"
    objects = sorted(layer.rglob("*.so"))
    assert len(objects) >= 8, "asyncpg, msgspec, uvloop, httptools, pydantic-core, aiohttp... are compiled"
    wrong = [
        str(p.relative_to(layer))
        for p in objects
        if _elf_machine(p) != ELF_MACHINE["arm64"] or ("cpython-" in p.name and "cpython-313-" not in p.name)
    ]
    assert not wrong, f"not arm64/cp313: {wrong}"


def test_the_twin_has_the_same_distributions_as_the_artifact(lambda_build: LambdaBuild) -> None:
    """The emulation runs what AWS would, compiled for this machine instead."""
    assert _distributions(lambda_build.twin / "HeliportLayer") == _distributions(
        lambda_build.artifact / "HeliportLayer"
    )
    for compiled in (lambda_build.twin / "HeliportLayer" / "python").rglob("*.so"):
        assert _elf_machine(compiled) == ELF_MACHINE[host_architecture()], compiled


@pytest.mark.parametrize("function", FUNCTIONS)
def test_each_function_fits_lambdas_unzipped_limit_with_the_layer(lambda_build: LambdaBuild, function: str) -> None:
    total = _size(lambda_build.artifact / function) + _size(lambda_build.artifact / "HeliportLayer")
    assert total < UNZIPPED_LIMIT_BYTES, f"{function}: {total / 2**20:.0f} MiB unzipped"


def test_the_proxy_handler_is_an_executable_script(lambda_build: LambdaBuild) -> None:
    script = lambda_build.artifact / "ProxyFunction" / "run.sh"
    assert script.stat().st_mode & 0o111 == 0o111, "the adapter's bootstrap execs it"
    assert script.read_bytes().startswith(b"#!/bin/sh\n") and b"\r\n" not in script.read_bytes()


def _imports(module: Path) -> list[str]:
    """The top-level modules an entry imports (executing it would need AWS: the emulation does that)."""
    names = []
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module != "__future__":
            names.append(node.module)
    return names


@pytest.mark.parametrize(
    ("function", "extra"),
    [
        # run.sh starts uvicorn with the httptools parser and the uvloop loop.
        ("ProxyFunction", ["uvicorn", "httptools", "uvloop"]),
        ("QueryApiFunction", ["asyncpg"]),
        ("LoggerFunction", ["asyncpg", "aioboto3"]),
        ("DeliveryFunction", ["aioboto3", "aiohttp"]),
        ("AlertsFunction", ["asyncpg", "aioboto3"]),
    ],
)
def test_each_handler_imports_from_the_artifact_and_the_layer_alone(
    lambda_build: LambdaBuild, function: str, extra: list[str], tmp_path: Path
) -> None:
    sandbox = Sandbox(lambda_build, function, tmp_path, "app.handler")
    entry = sandbox.task_root / "app.py"
    if function != "ProxyFunction":  # the zip handlers' Handler is app.handler
        tree = ast.parse(entry.read_text())
        assert any(isinstance(node, ast.FunctionDef) and node.name == "handler" for node in tree.body)
    modules = [*_imports(entry), *extra]
    # Every module must come from the layer or the interpreter's standard library, nothing else.
    probe = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "stray = [m.__file__ for m in list(sys.modules.values()) if getattr(m, '__file__', None)\n"
        "         and not m.__file__.startswith(('/opt/python/', sys.base_prefix))]\n"
        "assert not stray, stray\n"
        "print('imported', len(sys.modules))\n"
    )
    log = tmp_path / "probe.log"
    process = sandbox.start(["python", "-c", probe], {"PYTHONPATH": f"{sandbox.task_root}:/opt/python"}, log)
    assert process.wait(120) == 0, log.read_text()[-4000:]
    assert log.read_text().strip().startswith("imported")
