"""shared/requirements.txt (what `sam build` installs into the Lambda layer) is pyproject.toml's runtime
dependencies plus the extras the functions import, as pip would resolve them on Lambda.

The functions need every runtime extra: `aws` (all three: DynamoDB, SQS, S3), `postgres` (the consumer
and the query API write and read Aurora) and `lambda` (the query API's Mangum entry). Only `dev` is not
for the layer. Each requirement must match name, extras, version specifier and marker, after evaluating
pyproject's markers for the Lambda runtime that template.yaml names (a marker that excludes Lambda, such
as uvloop's ``sys_platform != 'win32'`` does not, leaves the requirement out of the layer).
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"
LAYER_REQUIREMENTS = ROOT / "shared" / "requirements.txt"
TEMPLATE = ROOT / "template.yaml"
# The extras the Lambda layer installs, and those it must not.
LAYER_EXTRAS = ("aws", "postgres", "lambda")
NOT_FOR_THE_LAYER = {"dev": "test and lint tools"}


def _lambda_environment() -> dict[str, str]:
    """The marker environment of the functions' runtime: template.yaml's Globals (pythonX.Y, arm64)."""
    template = TEMPLATE.read_text()
    runtime = re.search(r"^\s+Runtime:\s*python(3\.\d+)\s*$", template, re.MULTILINE)
    architectures = re.search(r"^\s+Architectures:\s*\[\s*(\w+)\s*\]\s*$", template, re.MULTILINE)
    assert runtime and architectures, "template.yaml's Globals name the runtime and the architecture"
    machine = {"arm64": "aarch64", "x86_64": "x86_64"}[architectures.group(1)]
    environment = {key: str(value) for key, value in default_environment().items()}
    environment |= {
        "python_version": runtime.group(1),
        "python_full_version": f"{runtime.group(1)}.0",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "sys_platform": "linux",
        "os_name": "posix",
        "platform_system": "Linux",
        "platform_machine": machine,
    }
    return environment


def _for_lambda(requirements: list[Requirement]) -> dict[NormalizedName, str]:
    """Requirement strings by normalised name, those whose marker holds on Lambda, without the marker."""
    environment = _lambda_environment()
    chosen: dict[NormalizedName, str] = {}
    for requirement in requirements:
        if requirement.marker is not None and not requirement.marker.evaluate(environment):
            continue
        name = canonicalize_name(requirement.name)
        assert name not in chosen, f"{requirement.name} is required twice"
        extras = f"[{','.join(sorted(requirement.extras))}]" if requirement.extras else ""
        chosen[name] = f"{name}{extras}{requirement.specifier}"
    return chosen


def _layer_requirements() -> list[Requirement]:
    lines = (raw.split("#", 1)[0].strip() for raw in LAYER_REQUIREMENTS.read_text().splitlines())
    return [Requirement(line) for line in lines if line]


def _pyproject() -> dict[str, object]:
    with PYPROJECT.open("rb") as handle:
        project: dict[str, object] = tomllib.load(handle)["project"]
    return project


def test_every_runtime_extra_is_in_the_layer_or_said_not_to_be() -> None:
    extras = _pyproject()["optional-dependencies"]
    assert isinstance(extras, dict)
    assert set(extras) == set(LAYER_EXTRAS) | set(NOT_FOR_THE_LAYER), (
        "a new extra: add it to LAYER_EXTRAS (and shared/requirements.txt) or say in NOT_FOR_THE_LAYER why not"
    )
    # dev installs the package with exactly the layer's extras, so the tests run what Lambda runs.
    (itself,) = [Requirement(item) for item in extras["dev"] if canonicalize_name(Requirement(item).name) == "heliport"]
    assert itself.extras == set(LAYER_EXTRAS)


def test_the_layer_requirements_are_pyprojects_dependencies_and_runtime_extras() -> None:
    project = _pyproject()
    dependencies, extras = project["dependencies"], project["optional-dependencies"]
    assert isinstance(dependencies, list) and isinstance(extras, dict)
    expected = [Requirement(item) for item in dependencies]
    expected += [Requirement(item) for extra in LAYER_EXTRAS for item in extras[extra]]
    wanted, layer = _for_lambda(expected), _for_lambda(_layer_requirements())
    assert layer == wanted, (
        f"shared/requirements.txt and pyproject.toml differ: only in requirements.txt "
        f"{sorted(set(layer.values()) - set(wanted.values()))}, only in pyproject "
        f"{sorted(set(wanted.values()) - set(layer.values()))}"
    )


def test_the_layer_requirements_all_hold_on_lambda() -> None:
    """No requirement of the layer is silently dropped on its own runtime by a marker."""
    requirements = _layer_requirements()
    assert requirements
    assert len(_for_lambda(requirements)) == len(requirements), "a marker excludes Lambda: remove the line"


def test_the_lambda_runtime_satisfies_requires_python() -> None:
    requires = _pyproject()["requires-python"]
    assert isinstance(requires, str)
    assert Requirement(f"heliport{requires}").specifier.contains(_lambda_environment()["python_full_version"])
