"""template.yaml's ProxyCompute parameter: OnDemand (the default) leaves the proxy as it was; ManagedInstances
puts it on a Lambda Managed Instances capacity provider behind a published alias that API Gateway invokes.

The template is rendered for each value as CloudFormation would: the ``AWS::LanguageExtensions`` pass
resolves ProxyCompute's ``Fn::If`` (with the SAM CLI's own implementation of that pass), then the SAM
translator expands the SAM resources, both with the parameter values given. The ManagedInstances variant is
also run through ``sam validate --language-extensions --lint`` and cfn-lint, as the default is in
tests/infra/test_template.py.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.infra.test_routes import _translator_python
from tests.infra.test_template import ROOT, TEMPLATE, _sam_binary

#: LanguageExtensions pass, then SAM's, with parameter values (argv[2], JSON). Local code paths become S3
#: URIs as `sam package` makes them; no AWS call is made.
RENDER = """
import json, sys
from samcli.lib.cfn_language_extensions.models import PseudoParameterValues
from samcli.lib.cfn_language_extensions.sam_integration import process_template_for_sam_cli
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

class NoManagedPolicies:
    def load(self):
        return {}

with open(sys.argv[1]) as source:
    template = yaml_parse(source.read())
parameters = json.loads(sys.argv[2])
# A concrete account and region, as at deploy time (the local pass cannot leave ${AWS::...} unresolved).
pseudo = PseudoParameterValues(region="us-east-1", account_id="123456789012", stack_name="heliport")
template = process_template_for_sam_cli(template, parameters, pseudo)
for resource in template["Resources"].values():
    properties = resource.get("Properties") or {}
    for name in ("CodeUri", "ContentUri"):
        if isinstance(properties.get(name), str):
            properties[name] = "s3://bucket/" + properties[name]
json.dump(transform(template, parameters, NoManagedPolicies()), sys.stdout)
"""

MANAGED = {
    "ProxyCompute": "ManagedInstances",
    "ProxyCapacitySubnetIds": "subnet-0aaa1111bbbb22223,subnet-0ccc3333dddd44445",
    "ProxyCapacitySecurityGroupIds": "sg-0eee5555ffff66667",
}


def _env() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    return env | {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "SAM_CLI_TELEMETRY": "0",
    }


def _render(parameters: dict[str, str]) -> dict[str, Any]:
    command = [_translator_python(), "-c", RENDER, str(TEMPLATE), json.dumps(parameters)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=ROOT, env=_env(), check=False)
    assert result.returncode == 0, result.stderr[-4000:]
    rendered: dict[str, Any] = json.loads(result.stdout)
    return rendered


@pytest.fixture(scope="module")
def on_demand() -> dict[str, Any]:
    return _render({})


@pytest.fixture(scope="module")
def managed() -> dict[str, Any]:
    return _render(MANAGED)


def _of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: resource for name, resource in template["Resources"].items() if resource["Type"] == kind}


def _proxy_integration_uris(template: dict[str, Any]) -> dict[str, Any]:
    """The integration URI API Gateway calls for each of the proxy's routes."""
    paths = template["Resources"]["ProxyApi"]["Properties"]["Body"]["paths"]
    return {
        path: paths[path]["x-amazon-apigateway-any-method"]["x-amazon-apigateway-integration"]["uri"]
        for path in ("/{proxy+}", "/v1/{proxy+}")
    }


def _references(node: Any) -> set[str]:
    """Every resource named by Ref, Fn::GetAtt or ${...} in a Fn::Sub under ``node``."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt":
                found.add(value[0] if isinstance(value, list) else str(value).split(".")[0])
            elif key == "Fn::Sub":
                text = value[0] if isinstance(value, list) else value
                found |= {name.split(".")[0] for name in re.findall(r"\$\{([^}!]+)\}", text)}
            found |= _references(value)
    elif isinstance(node, list):
        for item in node:
            found |= _references(item)
    return found


def test_on_demand_is_the_default_and_has_no_managed_instances_parts(on_demand: dict[str, Any]) -> None:
    parameter = on_demand["Parameters"]["ProxyCompute"]
    assert parameter["Default"] == "OnDemand" and parameter["AllowedValues"] == ["OnDemand", "ManagedInstances"]
    proxy = on_demand["Resources"]["ProxyFunction"]["Properties"]
    assert "CapacityProviderConfig" not in proxy
    assert "HELIPORT_LOG_BEFORE_LAST_BYTE" not in proxy["Environment"]["Variables"]
    # No version or alias: API Gateway invokes $LATEST as before.
    assert not _of_type(on_demand, "AWS::Lambda::Alias") and not _of_type(on_demand, "AWS::Lambda::Version")
    for path, uri in _proxy_integration_uris(on_demand).items():
        assert "ProxyFunction" in _references(uri) and "ProxyFunctionAliaslive" not in _references(uri), path
    # The capacity provider and its role exist only under the condition that is false here.
    for name in ("ProxyCapacityProvider", "ProxyCapacityProviderOperatorRole"):
        assert on_demand["Resources"][name]["Condition"] == "ProxyOnManagedInstances"


def test_memory_size_per_compute_mode(on_demand: dict[str, Any], managed: dict[str, Any]) -> None:
    # OnDemand: 512 MB, chosen from the measured CPU per request (docs/architecture.md); the other
    # functions keep the Globals' size.
    assert on_demand["Resources"]["ProxyFunction"]["Properties"]["MemorySize"] == 512
    assert on_demand["Resources"]["QueryApiFunction"]["Properties"]["MemorySize"] == 1024
    # ManagedInstances: 2 GB, Lambda Managed Instances' smallest execution environment (1 vCPU at 2 GiB/vCPU).
    assert managed["Resources"]["ProxyFunction"]["Properties"]["MemorySize"] == 2048


def test_managed_instances_runs_the_proxy_on_a_capacity_provider_in_the_given_subnets(
    managed: dict[str, Any],
) -> None:
    providers = _of_type(managed, "AWS::Lambda::CapacityProvider")
    assert list(providers) == ["ProxyCapacityProvider"]
    provider = providers["ProxyCapacityProvider"]["Properties"]
    assert provider["VpcConfig"]["SubnetIds"] == MANAGED["ProxyCapacitySubnetIds"].split(",")
    assert provider["VpcConfig"]["SecurityGroupIds"] == MANAGED["ProxyCapacitySecurityGroupIds"].split(",")
    assert provider["InstanceRequirements"]["Architectures"] == ["arm64"]
    scaling = provider["CapacityProviderScalingConfig"]
    assert scaling["MaxVCpuCount"] == 64 and scaling["ScalingMode"] == "Manual"
    assert scaling["ScalingPolicies"] == [
        {"PredefinedMetricType": "LambdaCapacityProviderAverageCPUUtilization", "TargetValue": 60.0}
    ]
    assert provider["PermissionsConfig"]["CapacityProviderOperatorRoleArn"] == {
        "Fn::GetAtt": ["ProxyCapacityProviderOperatorRole", "Arn"]
    }
    role = managed["Resources"]["ProxyCapacityProviderOperatorRole"]["Properties"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "lambda.amazonaws.com"}
    assert role["ManagedPolicyArns"] == ["arn:aws:iam::aws:policy/AWSLambdaManagedEC2ResourceOperator"]

    proxy = managed["Resources"]["ProxyFunction"]["Properties"]
    config = proxy["CapacityProviderConfig"]["LambdaManagedInstancesCapacityProviderConfig"]
    assert config["CapacityProviderArn"] == {"Fn::GetAtt": ["ProxyCapacityProvider", "Arn"]}
    assert config["PerExecutionEnvironmentMaxConcurrency"] == 64
    assert proxy["Runtime"] == "python3.13" and proxy["Architectures"] == ["arm64"]
    # No freeze on Managed Instances: the record goes out after the last byte, bounded by the backlog.
    assert proxy["Environment"]["Variables"]["HELIPORT_LOG_BEFORE_LAST_BYTE"] == "false"


def test_managed_instances_api_gateway_invokes_the_published_alias(managed: dict[str, Any]) -> None:
    aliases = _of_type(managed, "AWS::Lambda::Alias")
    versions = _of_type(managed, "AWS::Lambda::Version")
    assert list(aliases) == ["ProxyFunctionAliaslive"] and len(versions) == 1
    alias = aliases["ProxyFunctionAliaslive"]["Properties"]
    assert alias["Name"] == "live" and _references(alias["FunctionVersion"]) == set(versions)
    for path, uri in _proxy_integration_uris(managed).items():
        assert "ProxyFunctionAliaslive" in _references(uri), (path, uri)
    # ...and API Gateway may invoke that alias (SAM's permissions name the alias, not the function).
    permissions = [
        resource["Properties"]
        for resource in _of_type(managed, "AWS::Lambda::Permission").values()
        if "ProxyFunction" in _references(resource["Properties"]["FunctionName"])
        or "ProxyFunctionAliaslive" in _references(resource["Properties"]["FunctionName"])
    ]
    assert permissions and all(p["FunctionName"] == {"Ref": "ProxyFunctionAliaslive"} for p in permissions)


def test_managed_instances_needs_subnets_and_security_groups() -> None:
    """CloudFormation refuses ManagedInstances without them (a template rule), before creating anything."""
    text = TEMPLATE.read_text()
    rule = re.search(r"\n  ManagedInstancesNeedSubnets:\n(?P<body>(?:    .*\n)+)", text)
    assert rule is not None
    body = rule["body"]
    assert "RuleCondition: !Equals [!Ref ProxyCompute, ManagedInstances]" in body
    assert "!Ref ProxyCapacitySubnetIds" in body and "!Ref ProxyCapacitySecurityGroupIds" in body


@pytest.fixture(scope="module")
def managed_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """template.yaml with ManagedInstances and its subnets as the parameters' defaults (what linters read)."""
    text = TEMPLATE.read_text()
    for name, value in MANAGED.items():
        pattern = rf"(\n  {name}:\n(?:    .*\n)*?    Default: )(\S*)\n"
        found = re.search(pattern, text)
        assert found is not None, name
        text = f'{text[: found.start()]}{found[1]}"{value}"\n{text[found.end() :]}'
    path = tmp_path_factory.mktemp("lmi") / "template.yaml"
    # Relative CodeUri/ContentUri paths resolve against the template's directory.
    path.write_text(text.replace("CodeUri: ", f"CodeUri: {ROOT}/").replace("ContentUri: ", f"ContentUri: {ROOT}/"))
    return path


@pytest.mark.parametrize("lint", [False, True], ids=["translator", "lint"])
def test_managed_instances_passes_sam_validate(managed_template: Path, lint: bool) -> None:
    command = [_sam_binary(), "validate", "--language-extensions", "--template", str(managed_template)]
    command += ["--lint"] if lint else []
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, env=_env(), check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_managed_instances_passes_cfn_lint(managed_template: Path) -> None:
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    result = subprocess.run([str(cfn_lint), str(managed_template)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
