"""infra/terraform checked by Terraform itself: `terraform validate` of every root, and `terraform test` (a
mocked apply, `mock_provider "aws"`) of the roots that have a tests/ directory.

Offline: the AWS provider comes from a local plugin directory (`terraform init -plugin-dir=...`, no
registry), and the mocked provider needs no account or credentials. The repository is never initialised
in place: the whole infra/terraform tree is copied to a temporary directory (so `../../modules/...` sources
still resolve) and `.terraform/` and `.terraform.lock.hcl` are written there.

Without terraform or the local provider these tests skip with the reason, except in CI (CI=true), where
they fail: a CI run must not pass without having run Terraform.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hcl2
import pytest
from packaging.version import InvalidVersion, Version

from tests.infra.test_template import _template
from tests.infra.test_terraform import EXAMPLE, SSM_PARAMETERS, STACKS, TERRAFORM, _first, _unquote

PLUGIN_DIR_ENV = "HELIPORT_TF_PLUGIN_DIR"
# The provider as a -plugin-dir lays it out (the "unpacked" filesystem-mirror layout).
PROVIDER = Path("registry.terraform.io", "hashicorp", "aws")
# Where a machine image or a user keeps a local provider mirror; searched down to two levels, e.g.
# /opt/<dir>/registry.terraform.io or /usr/share/terraform/plugins/registry.terraform.io.
PLUGIN_SEARCH_ROOTS = (
    Path("/opt"),
    Path("/usr/local/share"),
    Path("/usr/share"),
    Path.home() / ".terraform.d" / "plugins",
    Path.home() / ".local" / "share" / "terraform" / "plugins",
)
TERRAFORM_MIN = Version("1.5.7")  # required_version of every root
TERRAFORM_MIN_MOCKS = Version("1.7.0")  # mock_provider in .tftest.hcl files

# The roots with a `terraform test` suite, and the file whose SSM names must match template.yaml.
TEST_ROOTS = sorted(name for name, path in STACKS.items() if sorted((path / "tests").glob("*.tftest.hcl")))
EXAMPLE_TEST = EXAMPLE / "tests" / "complete.tftest.hcl"
# Parameters Terraform writes that template.yaml does not read, and why.
SSM_NOT_READ_BY_TEMPLATE = {
    "/heliport/aurora-cluster-arn": "written for operators / Data API (IAM policies, aws rds-data), not read by SAM",
}

# `terraform init` of one root of the workspace copy: (terraform binary, the root's directory in the copy).
Init = Callable[[str], tuple[str, Path]]

INSTALL_HINT = (
    f"Install Terraform >= {TERRAFORM_MIN_MOCKS} and put a local copy of the hashicorp/aws provider in a plugin "
    f"directory (<dir>/{PROVIDER}/<version>/<os>_<arch>/terraform-provider-aws_*), then export {PLUGIN_DIR_ENV}=<dir>. "
    "Offline machines cannot download it at `terraform init`."
)


def _unavailable(reason: str) -> None:
    """Skip loudly on a developer machine; fail in CI, where Terraform must have run."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and the Terraform checks cannot run: {reason}")
    pytest.skip(f"TERRAFORM NOT CHECKED: {reason}")


def _platform() -> str:
    """Terraform's name of this platform (linux_amd64, darwin_arm64, ...)."""
    machine = platform.machine().lower()
    machine = {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)
    return f"{platform.system().lower()}_{machine}"


def _provider_versions(plugin_dir: Path) -> list[Version]:
    """Versions of hashicorp/aws unpacked for this platform under a -plugin-dir root, newest first."""
    versions = []
    for directory in (plugin_dir / PROVIDER).glob(f"*/{_platform()}"):
        if not any(child.name.startswith("terraform-provider-aws") for child in directory.iterdir()):
            continue
        try:
            versions.append(Version(directory.parent.name))
        except InvalidVersion:
            continue
    return sorted(versions, reverse=True)


def _find_plugin_dir() -> Path | None:
    """The -plugin-dir root: the folder holding registry.terraform.io/hashicorp/aws/<version>/<platform>.
    HELIPORT_TF_PLUGIN_DIR when set (and then it must hold the provider), else a search of the usual roots."""
    configured = os.environ.get(PLUGIN_DIR_ENV)
    if configured:
        assert _provider_versions(Path(configured)), (
            f"{PLUGIN_DIR_ENV}={configured} holds no {PROVIDER}/<version>/{_platform()}/terraform-provider-aws_*"
        )
        return Path(configured)
    for root in PLUGIN_SEARCH_ROOTS:
        if not root.is_dir():
            continue
        for depth in range(3):
            pattern = "/".join(["*"] * depth + [str(PROVIDER)])
            for found in sorted(root.glob(pattern)):
                plugin_dir = found.parents[len(PROVIDER.parts) - 1]
                if _provider_versions(plugin_dir):
                    return plugin_dir
    return None


def _satisfies(version: Version, constraints: str) -> bool:
    """Terraform version-constraint syntax: comma-separated `op version`, op in = != > >= < <= ~>."""
    for constraint in constraints.split(","):
        match = re.fullmatch(r"\s*(=|!=|>=|<=|>|<|~>)?\s*v?([0-9][0-9A-Za-z.\-+]*)\s*", constraint)
        assert match, f"cannot read the version constraint {constraint!r}"
        operator, bound_text = match.group(1) or "=", match.group(2)
        bound = Version(bound_text)
        if operator == "~>":
            # ~> 5.81 allows 5.x from 5.81; ~> 5.81.0 allows 5.81.x: the last given part may grow.
            parts = [int(part) for part in bound_text.split("-")[0].split(".")]
            upper = Version(".".join(map(str, [*parts[:-2], parts[-2] + 1]))) if len(parts) > 1 else None
            if version < bound or (upper is not None and version >= upper):
                return False
            continue
        compare: dict[str, Callable[[Version, Version], bool]] = {
            "=": lambda left, right: left == right,
            "!=": lambda left, right: left != right,
            ">": lambda left, right: left > right,
            ">=": lambda left, right: left >= right,
            "<": lambda left, right: left < right,
            "<=": lambda left, right: left <= right,
        }
        if not compare[operator](version, bound):
            return False
    return True


def _aws_constraint(stack: str) -> str:
    with (STACKS[stack] / "versions.tf").open() as handle:
        terraform = _first(hcl2.load(handle)["terraform"])
    return _unquote(_first(terraform["required_providers"])["aws"]["version"])


# --- environment -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def plugin_dir() -> Path:
    found = _find_plugin_dir()
    if found is None:
        searched = ", ".join(str(root) for root in PLUGIN_SEARCH_ROOTS)
        _unavailable(f"no local hashicorp/aws provider for {_platform()} (searched {searched}). " + INSTALL_HINT)
    return found


@pytest.fixture(scope="module")
def terraform() -> tuple[str, Version]:
    binary = shutil.which("terraform")
    if binary is None:
        _unavailable("terraform is not on PATH. " + INSTALL_HINT)
    result = subprocess.run([binary, "version", "-json"], capture_output=True, text=True, timeout=60, env=_env())
    assert result.returncode == 0, result.stderr
    version = Version(json.loads(result.stdout)["terraform_version"])
    if version < TERRAFORM_MIN:
        _unavailable(f"terraform {version} is older than the roots' required_version >= {TERRAFORM_MIN}")
    return binary, version


def _env() -> dict[str, str]:
    """The caller's environment without what would change a run: TF_VAR_* (variable values), TF_CLI_ARGS*,
    TF_DATA_DIR/TF_WORKSPACE (where init writes), AWS_* (nothing here may reach an account)."""
    dropped = ("TF_VAR_", "TF_CLI_ARGS", "TF_DATA_DIR", "TF_WORKSPACE", "AWS_")
    env = {key: value for key, value in os.environ.items() if not key.startswith(dropped)}
    # No version check-point call to HashiCorp (there is no network), no interactive prompt.
    env |= {"CHECKPOINT_DISABLE": "1", "TF_IN_AUTOMATION": "1", "TF_INPUT": "0"}
    return env


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of infra/terraform (modules and examples side by side), without anything a local init left."""
    copy = tmp_path_factory.mktemp("infra") / "terraform"
    ignore = shutil.ignore_patterns(".terraform", ".terraform.lock.hcl", "*.tfstate", "*.tfstate.*", "*.tfplan")
    shutil.copytree(TERRAFORM, copy, ignore=ignore)
    return copy


@pytest.fixture(scope="module")
def initialised(terraform: tuple[str, Version], plugin_dir: Path, workspace: Path) -> Init:
    """`terraform init` of one root of the copy, once per root: (terraform binary, root directory)."""
    done: dict[str, Path] = {}

    def init(stack: str) -> tuple[str, Path]:
        directory = workspace / STACKS[stack].relative_to(TERRAFORM)
        if stack not in done:
            command = [terraform[0], "init", "-backend=false", f"-plugin-dir={plugin_dir}", "-input=false"]
            result = _run([*command, "-no-color"], directory, timeout=300)
            assert result.returncode == 0, f"terraform init failed in {stack}:\n{result.stdout}\n{result.stderr}"
            done[stack] = directory
        return terraform[0], done[stack]

    return init


def _run(command: list[str], cwd: Path, timeout: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=cwd, env=_env(), check=False)


def _describe(diagnostics: list[dict[str, Any]]) -> str:
    lines = []
    for item in diagnostics:
        where = item.get("range") or {}
        place = f"{where.get('filename')}:{where.get('start', {}).get('line')}" if where else "-"
        lines.append(f"{item.get('severity')}: {item.get('summary')} ({place})\n    {item.get('detail', '')}")
    return "\n".join(lines)


# --- the local provider ------------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", sorted(STACKS))
def test_local_provider_satisfies_the_version_constraint(stack: str, plugin_dir: Path) -> None:
    constraint = _aws_constraint(stack)
    versions = _provider_versions(plugin_dir)
    assert any(_satisfies(version, constraint) for version in versions), (
        f"{stack} wants hashicorp/aws {constraint}; {plugin_dir} has {[str(version) for version in versions]}"
    )


def test_version_constraint_reading() -> None:
    # The checker above must be able to say no, or the test would pass on any provider.
    assert _satisfies(Version("5.100.0"), ">= 5.81")
    assert not _satisfies(Version("5.80.0"), ">= 5.81")
    assert _satisfies(Version("5.100.0"), "~> 5.81") and not _satisfies(Version("6.0.0"), "~> 5.81")
    assert not _satisfies(Version("5.82.0"), "~> 5.81.0") and _satisfies(Version("5.81.3"), "~> 5.81.0")
    assert not _satisfies(Version("5.100.0"), ">= 5.81, != 5.100.0")


# --- terraform validate ------------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", sorted(STACKS))
def test_terraform_validate(stack: str, initialised: Init) -> None:
    binary, directory = initialised(stack)
    result = _run([binary, "validate", "-json", "-no-color"], directory, timeout=300)
    assert result.stdout.strip(), f"terraform validate of {stack} wrote no report:\n{result.stderr}"
    report = json.loads(result.stdout)
    diagnostics = report.get("diagnostics", [])
    assert report["valid"] is True and report["error_count"] == 0 and result.returncode == 0, (
        f"terraform validate of {stack}:\n{_describe(diagnostics)}\n{result.stderr}"
    )


# --- terraform test (mocked AWS provider) ----------------------------------------------------------------


def test_the_roots_that_matter_have_terraform_tests() -> None:
    # Guards the parametrisation below: a renamed tests/ folder must not silently test nothing.
    assert {"examples/complete", "modules/network"} <= set(TEST_ROOTS)


@pytest.mark.parametrize("stack", TEST_ROOTS)
def test_terraform_test(stack: str, terraform: tuple[str, Version], initialised: Init) -> None:
    if terraform[1] < TERRAFORM_MIN_MOCKS:
        _unavailable(f"terraform {terraform[1]} cannot mock providers (needs >= {TERRAFORM_MIN_MOCKS})")
    runs = 0
    for path in sorted((STACKS[stack] / "tests").glob("*.tftest.hcl")):
        with path.open() as handle:
            runs += sum(len(entry) for entry in hcl2.load(handle).get("run", []))
    assert runs, f"{stack}/tests has no run block"
    binary, directory = initialised(stack)
    result = _run([binary, "test", "-no-color"], directory, timeout=600)
    output = f"{result.stdout}\n{result.stderr}"
    assert result.returncode == 0, f"terraform test of {stack} failed:\n{output}"
    # Every run block ran and passed (none skipped after an earlier error).
    assert f"Success! {runs} passed, 0 failed." in result.stdout, output


# --- the SSM contract, as the mocked apply asserts it ---------------------------------------------------------


def _asserted_ssm_names() -> set[str]:
    with EXAMPLE_TEST.open() as handle:
        parsed = hcl2.load(handle)
    (names,) = [entry["expected_ssm_parameter_names"] for entry in parsed.get("variables", [])]
    return {_unquote(name) for name in names}


def test_tftest_ssm_names_are_what_template_yaml_reads() -> None:
    asserted = _asserted_ssm_names()
    assert asserted == {f"/heliport/{key}" for key in SSM_PARAMETERS}, "complete.tftest.hcl and SSM_PARAMETERS differ"
    read = {
        str(spec["Default"])
        for spec in _template()["Parameters"].values()
        if str(spec["Type"]).startswith("AWS::SSM::Parameter::Value")
    }
    expected = read | set(SSM_NOT_READ_BY_TEMPLATE)
    assert asserted == expected, (
        f"template.yaml reads but the example's test does not assert: {sorted(expected - asserted)}; "
        f"the test asserts but template.yaml does not read: {sorted(asserted - expected)}"
    )
