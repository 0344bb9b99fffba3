"""Static checks of infra/terraform: structure, security facts, the SSM contract with SAM, checkov.

Nothing here needs AWS or the Terraform providers: the `.tf` files are parsed with python-hcl2, and
checkov (installed outside the project venv, see `_checkov_binary`) scans them offline.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import hcl2
import pytest

ROOT = Path(__file__).resolve().parents[2]
TERRAFORM = ROOT / "infra" / "terraform"
MODULES = {name: TERRAFORM / "modules" / name for name in ("aurora", "s3", "network")}
EXAMPLE = TERRAFORM / "examples" / "complete"
# The realtime relay's module is optional (a container beside the Lambda stack), so the example does
# not wire it; it gets the same structural, security and checkov checks as the others.
REALTIME = TERRAFORM / "modules" / "realtime"
STACKS = {
    **{f"modules/{name}": path for name, path in MODULES.items()},
    "modules/realtime": REALTIME,
    "examples/complete": EXAMPLE,
}

# The parameters template.yaml reads; the example must write every one under /<name>/.
# (aurora-cluster-arn is written for operators and the Data API; test_terraform_cli.py says so.)
SSM_PARAMETERS = {
    "bodies-bucket",
    "consumer-subnet-ids",
    "consumer-security-group-ids",
    "database-secret-arn",
    "database-endpoint",
    "database-name",
    "aurora-cluster-arn",
    # The customer managed KMS key the functions need kms:Decrypt/GenerateDataKey on, or "none".
    "kms-key-arn",
    # The SES identity alert e-mails are sent from, or "none".
    "alert-email-sender",
}

# Checkov findings accepted on purpose. Each is suppressed next to its resource with a
# `#checkov:skip=<id>:<reason>` comment; this list is where such a suppression must be justified.
CHECKOV_ALLOWED = {
    # Access logs need a second bucket (and its own logging); CloudTrail S3 data events cover audits.
    "CKV_AWS_18": "S3 server access logging",
    # Bodies are derived log data with a retention window: replicating doubles storage for no recovery need.
    "CKV_AWS_144": "S3 cross-region replication",
    # Nothing consumes bucket events: heliport enqueues its own work on SQS.
    "CKV2_AWS_62": "S3 event notifications",
    # Native automated backups (backup_retention_period) are on; AWS Backup plans are an account-level choice.
    "CKV2_AWS_8": "AWS Backup plan for the Aurora cluster",
    # Enhanced monitoring needs an IAM role and costs CloudWatch money on a cluster meant to idle at 0 ACU.
    "CKV_AWS_118": "RDS enhanced monitoring",
    # Performance Insights retention/cost is an operator choice; the postgresql log is exported.
    "CKV_AWS_353": "RDS Performance Insights",
    # A private VPC with no internet path; flow logs (log group, role, cost) are left to the operator.
    "CKV2_AWS_11": "VPC flow logs",
    # The Lambda security group is attached by the SAM template, outside Terraform.
    "CKV2_AWS_5": "security group attached to a resource",
    # The parameters hold identifiers (a secret's ARN, not its value), and CloudFormation's
    # AWS::SSM::Parameter::Value<...> parameter types cannot read SecureString.
    "CKV2_AWS_34": "SSM parameters encrypted",
    # Only the first az_count zones are used, so a zone AWS adds later creates no subnet.
    "CKV_AWS_394": "aws_availability_zones pinned by zone identity",
}

CHECKOV_INSTALL = (
    "checkov is needed for this test and must not share the project venv (it pins its own HCL parser): "
    "python3 dev.py test installs it into .venv-checkov (or: python3 -m venv .venv-checkov && "
    ".venv-checkov/bin/pip install -r infra/requirements-checkov.txt), "
    "then export HELIPORT_CHECKOV=$PWD/.venv-checkov/bin/checkov (or put checkov on PATH)."
)


def _unquote(value: Any) -> Any:
    """python-hcl2 keeps the quotes around some strings and keys depending on its version."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def _parse(path: Path) -> dict[str, Any]:
    with path.open() as handle:
        return hcl2.load(handle)


def _blocks(parsed: dict[str, Any], kind: str) -> dict[str, Any]:
    """`variable`/`output`/`module` blocks of one parsed file, by name."""
    return {_unquote(name): body for entry in parsed.get(kind, []) for name, body in entry.items()}


def _resources(parsed: dict[str, Any], kind: str = "resource") -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (_unquote(rtype), _unquote(name), body)
        for entry in parsed.get(kind, [])
        for rtype, named in entry.items()
        for name, body in named.items()
    ]


def _first(value: Any) -> Any:
    """A nested block parses as a list of bodies (one per occurrence)."""
    return value[0] if isinstance(value, list) and value and isinstance(value[0], dict) else value


def _walk(value: Any) -> Iterator[tuple[str, Any]]:
    """Every (key, value) pair at any depth."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield _unquote(key), item
            yield from _walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item)


@pytest.fixture(scope="module")
def parsed() -> dict[Path, dict[str, Any]]:
    files = sorted(TERRAFORM.rglob("*.tf"))
    assert files, f"no .tf files under {TERRAFORM}"
    return {path: _parse(path) for path in files if ".terraform" not in path.parts}


def _stack(parsed: dict[Path, dict[str, Any]], directory: Path) -> list[dict[str, Any]]:
    return [body for path, body in parsed.items() if path.parent == directory]


def _all_resources(parsed: dict[Path, dict[str, Any]], directory: Path, rtype: str) -> list[dict[str, Any]]:
    return [body for file in _stack(parsed, directory) for kind, _, body in _resources(file) if kind == rtype]


# --- structure --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", sorted(STACKS))
def test_stack_has_the_standard_files(stack: str) -> None:
    directory = STACKS[stack]
    missing = [name for name in ("versions.tf", "variables.tf", "main.tf", "outputs.tf", "README.md")]
    missing = [name for name in missing if not (directory / name).is_file()]
    assert not missing, f"{stack} lacks {missing}"


@pytest.mark.parametrize("stack", sorted(STACKS))
def test_versions_pin_terraform_and_the_aws_provider(stack: str, parsed: dict[Path, dict[str, Any]]) -> None:
    terraform = _first(parsed[STACKS[stack] / "versions.tf"]["terraform"])
    assert _unquote(terraform["required_version"]) == ">= 1.5.7"
    providers = _first(terraform["required_providers"])
    aws = providers["aws"]
    assert _unquote(aws["source"]) == "hashicorp/aws"
    # 5.81 is the first provider with seconds_until_auto_pause (min capacity 0).
    assert _unquote(aws["version"]) == ">= 5.81"


@pytest.mark.parametrize("stack", sorted(STACKS))
def test_variables_are_typed_and_described(stack: str, parsed: dict[Path, dict[str, Any]]) -> None:
    variables = _blocks(parsed[STACKS[stack] / "variables.tf"], "variable")
    assert variables
    untyped = [name for name, body in variables.items() if "type" not in body or not body.get("description")]
    assert not untyped, f"{stack}: variables without type or description: {untyped}"
    outputs = _blocks(parsed[STACKS[stack] / "outputs.tf"], "output")
    assert outputs
    undescribed = [name for name, body in outputs.items() if not body.get("description")]
    assert not undescribed, f"{stack}: outputs without description: {undescribed}"


@pytest.mark.parametrize("stack", sorted(STACKS))
def test_readme_lists_every_input_and_output(stack: str, parsed: dict[Path, dict[str, Any]]) -> None:
    directory = STACKS[stack]
    declared = {
        "Inputs": set(_blocks(parsed[directory / "variables.tf"], "variable")),
        "Outputs": set(_blocks(parsed[directory / "outputs.tf"], "output")),
    }
    readme = (directory / "README.md").read_text()
    for section, names in declared.items():
        match = re.search(rf"^## {section}\n(.*?)(?=^## |\Z)", readme, re.MULTILINE | re.DOTALL)
        assert match, f"{stack}/README.md has no '## {section}' section"
        listed = set(re.findall(r"^\| `([A-Za-z0-9_]+)` \|", match.group(1), re.MULTILINE))
        assert listed == names, (
            f"{stack}/README.md {section}: missing {sorted(names - listed)}, stale {sorted(listed - names)}"
        )


def test_example_uses_the_local_modules(parsed: dict[Path, dict[str, Any]]) -> None:
    modules = {name: body for file in _stack(parsed, EXAMPLE) for name, body in _blocks(file, "module").items()}
    sources = {_unquote(body["source"]) for body in modules.values()}
    assert sources == {f"../../modules/{name}" for name in MODULES}
    aurora = modules["aurora"]
    assert "module.network.lambda_security_group_id" in str(aurora["allowed_security_group_ids"])
    assert "module.network.private_subnet_ids" in str(aurora["subnet_ids"])


# --- security facts ----------------------------------------------------------------------------------------


def test_s3_blocks_public_access_and_acls(parsed: dict[Path, dict[str, Any]]) -> None:
    (block,) = _all_resources(parsed, MODULES["s3"], "aws_s3_bucket_public_access_block")
    flags = ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets")
    assert {flag: block.get(flag) for flag in flags} == dict.fromkeys(flags, True)
    (ownership,) = _all_resources(parsed, MODULES["s3"], "aws_s3_bucket_ownership_controls")
    assert _unquote(_first(ownership["rule"])["object_ownership"]) == "BucketOwnerEnforced"


def test_s3_encrypts_with_sse_s3_or_kms(parsed: dict[Path, dict[str, Any]]) -> None:
    (sse,) = _all_resources(parsed, MODULES["s3"], "aws_s3_bucket_server_side_encryption_configuration")
    default = _first(_first(sse["rule"])["apply_server_side_encryption_by_default"])
    algorithm = str(default["sse_algorithm"])
    assert "AES256" in algorithm and "aws:kms" in algorithm and "var.kms_key_arn" in algorithm


def test_s3_policy_denies_non_tls(parsed: dict[Path, dict[str, Any]]) -> None:
    documents = [
        body
        for file in _stack(parsed, MODULES["s3"])
        for kind, _, body in _resources(file, "data")
        if kind == "aws_iam_policy_document"
    ]
    deny_insecure = [
        statement
        for document in documents
        for statement in document.get("statement", [])
        if _unquote(statement.get("effect")) == "Deny"
        and any(
            _unquote(condition.get("variable")) == "aws:SecureTransport"
            and [_unquote(value) for value in condition.get("values", [])] == ["false"]
            for condition in statement.get("condition", [])
        )
    ]
    assert deny_insecure, "no Deny statement on aws:SecureTransport = false"
    resources = [str(item) for item in deny_insecure[0]["resources"]]
    assert any(item.endswith("/*") for item in resources) and len(resources) == 2, "must cover bucket and objects"
    (policy,) = _all_resources(parsed, MODULES["s3"], "aws_s3_bucket_policy")
    assert "data.aws_iam_policy_document" in str(policy["policy"])


def test_s3_lifecycle_rules_per_prefix(parsed: dict[Path, dict[str, Any]]) -> None:
    (lifecycle,) = _all_resources(parsed, MODULES["s3"], "aws_s3_bucket_lifecycle_configuration")
    by_prefix: dict[str, dict[str, Any]] = {}
    whole_bucket = []
    for rule in lifecycle["rule"]:
        assert _unquote(rule["status"]) == "Enabled"
        prefix = _unquote(_first(rule.get("filter", [{}])).get("prefix")) if rule.get("filter") else None
        if prefix is None:
            whole_bucket.append(rule)
        else:
            by_prefix[prefix] = rule

    def expiration_days(prefix: str) -> str:
        return str(_first(by_prefix[prefix]["expiration"])["days"])

    assert "var.body_retention_days" in expiration_days("organizations/")
    assert "STANDARD_IA" in str(by_prefix["organizations/"].get("dynamic", ""))
    assert "var.cache_retention_days" in expiration_days("cache/")
    assert "var.claims_retention_days" in expiration_days("claims/")
    assert "var.spool_dead_retention_days" in expiration_days("spool-dead/")
    # spool/ must be kept until its records are re-enqueued: no rule may match it.
    assert not any(prefix.startswith("spool/") or "spool/".startswith(prefix) for prefix in by_prefix)
    assert not any("expiration" in rule and "days" in _first(rule["expiration"]) for rule in whole_bucket)
    multipart = [
        _first(rule["abort_incomplete_multipart_upload"])
        for rule in whole_bucket
        if "abort_incomplete_multipart_upload" in rule
    ]
    assert [item["days_after_initiation"] for item in multipart] == [7]

    variables = _blocks(parsed[MODULES["s3"] / "variables.tf"], "variable")
    defaults = {name: variables[name]["default"] for name in variables if "default" in variables[name]}
    assert defaults["body_retention_days"] == 90 and defaults["body_transition_to_ia_days"] == 30
    assert defaults["cache_retention_days"] == 365 and defaults["claims_retention_days"] == 14
    assert defaults["spool_dead_retention_days"] == 90


def test_aurora_cluster_settings(parsed: dict[Path, dict[str, Any]]) -> None:
    (cluster,) = _all_resources(parsed, MODULES["aurora"], "aws_rds_cluster")
    assert _unquote(cluster["engine"]) == "aurora-postgresql"
    assert _unquote(cluster["engine_mode"]) == "provisioned"
    assert cluster["storage_encrypted"] is True
    assert cluster["manage_master_user_password"] is True
    assert cluster["iam_database_authentication_enabled"] is True
    assert cluster["copy_tags_to_snapshot"] is True
    assert _unquote(cluster["deletion_protection"]) == "${var.deletion_protection}"
    assert "var.backup_retention_period" in str(cluster["backup_retention_period"])
    assert [_unquote(item) for item in cluster["enabled_cloudwatch_logs_exports"]] == ["postgresql"]
    assert "master_password" not in cluster, "the password must be managed by RDS, not set in Terraform"
    scaling = _first(cluster["serverlessv2_scaling_configuration"])
    assert _unquote(scaling["min_capacity"]) == "${var.min_capacity}"
    assert "var.seconds_until_auto_pause" in str(scaling["seconds_until_auto_pause"])

    (instance,) = _all_resources(parsed, MODULES["aurora"], "aws_rds_cluster_instance")
    assert _unquote(instance["instance_class"]) == "db.serverless"

    variables = _blocks(parsed[MODULES["aurora"] / "variables.tf"], "variable")
    assert variables["min_capacity"]["default"] == 0
    assert variables["deletion_protection"]["default"] is True
    assert variables["backup_retention_period"]["default"] == 7
    major = int(_unquote(variables["engine_version"]["default"]).split(".")[0])
    assert major >= 16, "pick an engine version that supports auto-pause"


def test_aurora_admits_only_security_groups(parsed: dict[Path, dict[str, Any]]) -> None:
    rules = _all_resources(parsed, MODULES["aurora"], "aws_vpc_security_group_ingress_rule")
    assert rules
    for rule in rules:
        assert "referenced_security_group_id" in rule and "cidr_ipv4" not in rule and "cidr_ipv6" not in rule
        assert rule["from_port"] == rule["to_port"]
    (group,) = _all_resources(parsed, MODULES["aurora"], "aws_security_group")
    assert "ingress" not in group and "egress" not in group


def test_nothing_is_public(parsed: dict[Path, dict[str, Any]]) -> None:
    offenders = []
    for path, file in parsed.items():
        for rtype, name, body in _resources(file):
            where = f"{path.relative_to(TERRAFORM)}: {rtype}.{name}"
            pairs = list(_walk(body))
            if any(key in ("publicly_accessible", "map_public_ip_on_launch") and value is True for key, value in pairs):
                offenders.append(f"{where} is public")
            ingress = rtype == "aws_vpc_security_group_ingress_rule" or (
                rtype == "aws_security_group_rule" and _unquote(body.get("type")) == "ingress"
            )
            bodies = [body] if ingress else [item for key, item in pairs if key == "ingress"]
            if "0.0.0.0/0" in str(bodies) or "::/0" in str(bodies):
                offenders.append(f"{where} admits the internet")
            if rtype in ("aws_internet_gateway", "aws_nat_gateway", "aws_eip"):
                offenders.append(f"{where}: no internet path is wanted")
    assert not offenders


def test_network_has_gateway_endpoints_and_a_narrow_lambda_group(parsed: dict[Path, dict[str, Any]]) -> None:
    endpoints = _all_resources(parsed, MODULES["network"], "aws_vpc_endpoint")
    gateways = [item for item in endpoints if _unquote(item["vpc_endpoint_type"]) == "Gateway"]
    assert len(gateways) == 2
    assert all("aws_route_table.private" in str(item["route_table_ids"]) for item in gateways)
    egress = _all_resources(parsed, MODULES["network"], "aws_vpc_security_group_egress_rule")
    ports = sorted((item["from_port"], item["to_port"]) for item in egress)
    assert set(ports) == {(5432, 5432), (443, 443)}
    assert not any("0.0.0.0/0" in str(item) for item in egress)


# --- the SSM contract with SAM -------------------------------------------------------------------------------


def test_example_writes_every_ssm_parameter(parsed: dict[Path, dict[str, Any]]) -> None:
    main = parsed[EXAMPLE / "main.tf"]
    (ssm,) = [body for rtype, _, body in _resources(main) if rtype == "aws_ssm_parameter"]
    assert _unquote(ssm["name"]) == "/${var.name}/${each.key}"
    assert _unquote(ssm["for_each"]) == "${local.ssm_parameters}"
    parameters = {
        _unquote(key): value for entry in main["locals"] for key, value in entry.get("ssm_parameters", {}).items()
    }
    assert set(parameters) == SSM_PARAMETERS
    types = {key: _unquote(value["type"]) for key, value in parameters.items()}
    assert types["consumer-subnet-ids"] == "StringList" and types["consumer-security-group-ids"] == "StringList"
    assert 'join(","' in str(parameters["consumer-subnet-ids"]["value"]).replace("\\", "")
    assert "master_user_secret_arn" in str(parameters["database-secret-arn"]["value"])
    assert "SecureString" not in types.values(), "CloudFormation SSM parameter types cannot read SecureString"
    # SSM refuses an empty String: no key is written as the literal "none" (the mocked apply checks the values).
    assert types["kms-key-arn"] == "String"
    assert str(parameters["kms-key-arn"]["value"]).replace("\\", "") == '${coalesce(var.kms_key_arn, "none")}'


def test_example_routes_the_vpc_lambdas_to_secrets_manager_and_sqs(parsed: dict[Path, dict[str, Any]]) -> None:
    """No NAT: the consumer and query API reach Secrets Manager (Aurora's secret) and SQS (re-enqueued spool)
    only through interface endpoints, on by default in the example and in one AZ to halve their cost."""
    variables = _blocks(parsed[EXAMPLE / "variables.tf"], "variable")
    assert variables["interface_endpoint_services"]["default"] == ["secretsmanager", "sqs"]
    assert variables["interface_endpoint_az_count"]["default"] == 1
    description = variables["interface_endpoint_az_count"]["description"]
    assert "$14.60" in description and "$29.20" in description and "single writer" in description
    modules = {name: body for file in _stack(parsed, EXAMPLE) for name, body in _blocks(file, "module").items()}
    network = modules["network"]
    assert _unquote(network["interface_endpoint_services"]) == "${var.interface_endpoint_services}"
    assert _unquote(network["interface_endpoint_az_count"]) == "${var.interface_endpoint_az_count}"

    module_variables = _blocks(parsed[MODULES["network"] / "variables.tf"], "variable")
    assert module_variables["interface_endpoint_az_count"]["default"] is None, "null must mean every AZ"
    (endpoint,) = [
        body
        for file in _stack(parsed, MODULES["network"])
        for rtype, name, body in _resources(file)
        if rtype == "aws_vpc_endpoint" and name == "interface"
    ]
    assert _unquote(endpoint["vpc_endpoint_type"]) == "Interface" and endpoint["private_dns_enabled"] is True
    assert "slice(aws_subnet.private[*].id, 0, local.interface_endpoint_az_count)" in str(endpoint["subnet_ids"])
    preconditions = _first(endpoint["lifecycle"])["precondition"]
    assert any("var.az_count" in str(item["condition"]) for item in preconditions), "az_count bounds the AZs"


def test_network_lambdas_reach_the_interface_endpoints_on_443_only(parsed: dict[Path, dict[str, Any]]) -> None:
    def rule(rtype: str, name: str) -> dict[str, Any]:
        (found,) = [
            body
            for file in _stack(parsed, MODULES["network"])
            for kind, rule_name, body in _resources(file)
            if kind == rtype and rule_name == name
        ]
        return found

    egress = rule("aws_vpc_security_group_egress_rule", "lambda_endpoints")
    ingress = rule("aws_vpc_security_group_ingress_rule", "endpoints_https")
    assert "aws_security_group.lambda.id" in str(egress["security_group_id"])
    assert "aws_security_group.endpoints[0].id" in str(egress["referenced_security_group_id"])
    assert "aws_security_group.endpoints[0].id" in str(ingress["security_group_id"])
    assert "aws_security_group.lambda.id" in str(ingress["referenced_security_group_id"])
    for body in (egress, ingress):
        assert (body["from_port"], body["to_port"], _unquote(body["ip_protocol"])) == (443, 443, "tcp")
        assert "cidr_ipv4" not in body and "cidr_ipv6" not in body and "prefix_list_id" not in body
        # The rules exist exactly when the endpoints do.
        assert _unquote(body["count"]) == "${length(var.interface_endpoint_services) > 0 ? 1 : 0}"


def test_example_provider_uses_the_region_variable(parsed: dict[Path, dict[str, Any]]) -> None:
    providers = [entry for file in _stack(parsed, EXAMPLE) for entry in file.get("provider", [])]
    assert len(providers) == 1
    assert _unquote(providers[0]["aws"]["region"]) == "${var.region}"


# --- formatting and checkov ----------------------------------------------------------------------------------


TERRAFORM_INSTALL = (
    "Install Terraform >= 1.5.7 (the roots' required_version) and put it on PATH; the style check is "
    "`terraform fmt -check -recursive -diff infra/terraform`."
)


def _terraform_unavailable(reason: str) -> NoReturn:
    """Skip loudly on a developer machine; fail in CI (CI=true), where Terraform must have run.
    (test_terraform_cli.py treats its Terraform checks the same way.)"""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and the Terraform checks cannot run: {reason}")
    pytest.skip(f"TERRAFORM NOT CHECKED: {reason}")


def _terraform_fmt_check(directory: Path) -> subprocess.CompletedProcess[str]:
    """`terraform fmt -check -recursive -diff` of ``directory``: exit 0 when nothing would change."""
    terraform = shutil.which("terraform")
    if terraform is None:
        _terraform_unavailable("terraform is not on PATH, so the .tf files' style is unchecked. " + TERRAFORM_INSTALL)
    # Nothing from the caller's environment may add arguments; no check-point call to HashiCorp.
    env = {key: value for key, value in os.environ.items() if not key.startswith("TF_CLI_ARGS")}
    env |= {"CHECKPOINT_DISABLE": "1", "TF_IN_AUTOMATION": "1"}
    command = [terraform, "fmt", "-check", "-recursive", "-diff", "-no-color", str(directory)]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, env=env, check=False)


def test_terraform_fmt() -> None:
    result = _terraform_fmt_check(TERRAFORM)
    assert result.returncode == 0, (
        f"`terraform fmt -recursive {TERRAFORM.relative_to(ROOT)}` would change (exit {result.returncode}):\n"
        f"{result.stdout}{result.stderr}"
    )


def test_terraform_fmt_check_sees_a_misformatted_file(tmp_path: Path) -> None:
    """The check above can fail: unaligned arguments in a nested directory are reported with their diff."""
    nested = tmp_path / "modules" / "demo"
    nested.mkdir(parents=True)
    (nested / "main.tf").write_text("locals {\n  a = 1\n  bbb = 2\n}\n")
    result = _terraform_fmt_check(tmp_path)
    assert result.returncode != 0 and "main.tf" in result.stdout and "+  a   = 1" in result.stdout, result


def tool_binary(name: str, env_var: str, install_hint: str) -> str:
    """A tool the tests run from outside the project venv: ``env_var`` (what dev.py sets), then
    PATH, then the ``.venv-<name>`` dev.py makes; otherwise fail with ``install_hint``."""
    configured = os.environ.get(env_var)
    if configured:
        assert Path(configured).is_file(), f"{env_var}={configured} does not exist. {install_hint}"
        return configured
    found = shutil.which(name)
    if found:
        return found
    local = ROOT / f".venv-{name}" / "bin" / name
    if local.is_file():
        return str(local)
    pytest.fail(install_hint)


def _checkov_binary() -> str:
    return tool_binary("checkov", "HELIPORT_CHECKOV", CHECKOV_INSTALL)


@pytest.fixture(scope="module")
def checkov_report() -> list[dict[str, Any]]:
    command = [_checkov_binary(), "-d", str(TERRAFORM), "--framework", "terraform"]
    command += ["--skip-download", "--compact", "--quiet", "-o", "json"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT)
    # checkov exits 1 when a check fails; anything else (or no JSON) is a broken run.
    assert result.returncode in (0, 1), f"checkov failed to run ({result.returncode}):\n{result.stderr[-4000:]}"
    report = json.loads(result.stdout)
    return report if isinstance(report, list) else [report]


def test_checkov_finds_nothing_outside_the_allow_list(checkov_report: list[dict[str, Any]]) -> None:
    assert checkov_report
    assert all(section.get("summary", {}).get("parsing_errors", 0) == 0 for section in checkov_report)
    assert sum(section.get("summary", {}).get("resource_count", 0) for section in checkov_report) > 20
    failed = [
        f"{check['check_id']} {check['resource']} ({check['file_path']}): {check['check_name']}"
        for section in checkov_report
        for check in section.get("results", {}).get("failed_checks", [])
        if check["check_id"] not in CHECKOV_ALLOWED
    ]
    assert not failed, "checkov failed checks:\n" + "\n".join(failed)


def test_every_checkov_suppression_is_allowed_and_explained() -> None:
    used: set[str] = set()
    for path in TERRAFORM.rglob("*.tf"):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if "checkov:skip" not in line:
                continue
            where = f"{path.relative_to(ROOT)}:{number}"
            match = re.fullmatch(r"\s*#checkov:skip=([A-Z0-9_]+):(.{15,})", line)
            assert match, f"{where}: write suppressions as '#checkov:skip=<id>:<reason>'"
            assert match.group(1) in CHECKOV_ALLOWED, f"{where}: {match.group(1)} is not in CHECKOV_ALLOWED"
            used.add(match.group(1))
    assert used == set(CHECKOV_ALLOWED), f"allow-list entries without a suppression: {set(CHECKOV_ALLOWED) - used}"
