"""template.yaml: valid SAM (cfn-lint, which is what `sam validate --lint` runs), and wired to what
Terraform writes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from cfnlint.decode import decode

from tests.infra.test_terraform import SSM_PARAMETERS

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"


def _template() -> dict[str, Any]:
    template, errors = decode(str(TEMPLATE))
    assert not errors and template is not None
    return template


def test_cfn_lint_finds_nothing() -> None:
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    result = subprocess.run([str(cfn_lint), str(TEMPLATE)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_ssm_parameter_is_one_terraform_writes() -> None:
    parameters = _template()["Parameters"]
    read = {
        name: spec["Default"]
        for name, spec in parameters.items()
        if str(spec["Type"]).startswith("AWS::SSM::Parameter::Value")
    }
    assert read, "SAM reads its infrastructure from SSM"
    for name, default in read.items():
        prefix, _, key = str(default).rpartition("/")
        assert prefix == "/heliport" and key in SSM_PARAMETERS, name


def test_no_function_receives_a_database_password() -> None:
    for name, resource in _template()["Resources"].items():
        variables = resource.get("Properties", {}).get("Environment", {}).get("Variables", {})
        for value in variables.values():
            assert "resolve:secretsmanager" not in str(value), name
