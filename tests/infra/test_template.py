"""template.yaml: valid SAM (`sam validate`, cfn-lint), clean under checkov, wired to what Terraform
writes, and buildable for its arm64 Lambda platform. docs/deploy-checks.md lists these checks."""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import decode
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from heliport.logs.consumer import MAX_ATTEMPTS
from tests.infra.test_terraform import SSM_PARAMETERS, _checkov_binary, tool_binary

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
# What `sam build` installs into HeliportLayer (BuildMethod python3.13, BuildArchitecture arm64).
LAYER_REQUIREMENTS = ROOT / "shared" / "requirements.txt"

SAM_INSTALL = (
    "the AWS SAM CLI is needed for this test and has its own venv (it pins its own boto3 and cfn-lint): "
    "python3 dev.py test installs it into .venv-sam (or: python3 -m venv .venv-sam && "
    ".venv-sam/bin/pip install aws-sam-cli), then export HELIPORT_SAM=$PWD/.venv-sam/bin/sam (or put sam on PATH)."
)


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


# An environment variable whose name says it holds a credential. A secret's ARN (`..._SECRET_ARN`) is
# not one: the function reads the secret itself, at run time, where the value never reaches the template.
# HELIPORT_DATABASE_URL is a DSN, which carries the password; in AWS the database is reached by its secret.
PASSWORD_NAME = re.compile(r"PASSWORD|PASSWD|PWD|PASSPHRASE|CREDENTIAL|DSN|DATABASE_URL|SECRET(?!_ARN$)", re.I)
# A value that carries one: a dynamic reference to a secret's value, a URL with a password in it, or a
# reference to a parameter or attribute named like a password (MasterUserPassword, DatabasePassword...).
PASSWORD_VALUE = re.compile(r"resolve:secretsmanager|resolve:ssm-secure|://[^/@\s:]*:[^/@\s]+@|passw(or)?d", re.I)


def _environments(node: Any, where: str = "") -> Iterator[tuple[str, str, Any]]:
    """(where, name, value) of every environment variable declared anywhere in ``node``: each
    ``Environment: {Variables: ...}`` (functions, Globals) and ECS-style ``Environment: [{Name, Value}]``."""
    if isinstance(node, dict):
        for key, item in node.items():
            here = f"{where}/{key}"
            if key == "Environment" and isinstance(item, dict) and isinstance(item.get("Variables"), dict):
                for name, value in item["Variables"].items():
                    yield here, str(name), value
            elif key == "Environment" and isinstance(item, list):
                for entry in item:
                    if isinstance(entry, dict) and "Name" in entry:
                        yield here, str(entry["Name"]), entry.get("Value")
            yield from _environments(item, here)
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _environments(item, f"{where}[{index}]")


def _walk_pairs(node: Any) -> Iterator[tuple[str, Any]]:
    """Every (key, value) pair at any depth of a decoded template."""
    if isinstance(node, dict):
        for key, item in node.items():
            yield str(key), item
            yield from _walk_pairs(item)
    elif isinstance(node, list):
        for item in node:
            yield from _walk_pairs(item)


def _password_like_environment(template: dict[str, Any]) -> list[str]:
    """Every environment variable of ``template`` (Globals included) named or valued like a credential.
    A ``Ref`` to a ``NoEcho`` parameter counts: CloudFormation hides such a value because it is secret."""
    no_echo = {
        name
        for name, spec in template.get("Parameters", {}).items()
        if str(spec.get("NoEcho", "false")).lower() == "true"
    }
    found = []
    for where, name, value in _environments(template):
        text = json.dumps(value, default=str)
        references = {str(ref) for key, ref in _walk_pairs(value) if key == "Ref"}
        if PASSWORD_NAME.search(name) or PASSWORD_VALUE.search(text) or references & no_echo:
            found.append(f"{where}: {name}={text}")
    return found


def test_no_function_receives_a_database_password() -> None:
    """No environment variable anywhere in the template (a function's, Globals') holds a password or a
    reference that CloudFormation would resolve to one: the functions read Aurora's secret themselves."""
    template = _template()
    assert len(list(_environments(template))) >= 10, "the walk must see the functions' environments"
    assert not _password_like_environment(template)


@pytest.mark.parametrize(
    "variables",
    [
        {"HELIPORT_DATABASE_PASSWORD": "hunter2"},
        {"PGPASS": "{{resolve:secretsmanager:heliport-db:SecretString:password}}"},
        {"HELIPORT_DATABASE_URL": "postgresql://heliport:hunter2@db.internal:5432/heliport"},
        {"DB": {"Fn::GetAtt": ["Database", "MasterUserPassword"]}},
        {"DB": {"Fn::Sub": "${DatabasePassword}"}},
        {"DB": {"Ref": "Hidden"}},
    ],
    ids=["name", "secretsmanager", "dsn", "getatt", "sub", "no-echo-ref"],
)
def test_a_password_in_globals_is_found(variables: dict[str, Any]) -> None:
    template = copy.deepcopy(_template())
    template["Parameters"]["Hidden"] = {"Type": "String", "NoEcho": True}
    function_globals = template.setdefault("Globals", {}).setdefault("Function", {})
    function_globals.setdefault("Environment", {}).setdefault("Variables", {}).update(variables)
    found = _password_like_environment(template)
    assert len(found) == 1 and found[0].startswith("/Globals/Function/Environment: "), found


@pytest.fixture(scope="module")
def checkov_report() -> dict[str, Any]:
    # Not --quiet: the skipped checks are part of what is asserted.
    command = [_checkov_binary(), "-f", str(TEMPLATE), "--framework", "cloudformation"]
    command += ["--skip-download", "--compact", "-o", "json"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT)
    # checkov exits 1 when a check fails; anything else (or no JSON) is a broken run.
    assert result.returncode in (0, 1), f"checkov failed to run ({result.returncode}):\n{result.stderr[-4000:]}"
    report = json.loads(result.stdout)
    assert isinstance(report, dict), "one file, one framework: one report"
    return report


def _checkov_skips() -> dict[tuple[str, str], Any]:
    """(resource as checkov names it, check id) -> the comment written next to the resource."""
    skips: dict[tuple[str, str], Any] = {}
    for name, resource in _template()["Resources"].items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            skips[(f"{resource['Type']}.{name}", str(skip.get("id")))] = skip.get("comment")
    return skips


def test_checkov_finds_nothing(checkov_report: dict[str, Any]) -> None:
    summary = checkov_report["summary"]
    assert summary["parsing_errors"] == 0 and summary["resource_count"] >= 10, summary
    failed = [
        f"{check['check_id']} {check['resource']}: {check['check_name']}"
        for check in checkov_report["results"]["failed_checks"]
    ]
    assert not failed, "checkov failed checks (fix them, or skip them in the resource's Metadata with a reason):\n" + (
        "\n".join(failed)
    )


def test_every_checkov_skip_is_explained_and_used(checkov_report: dict[str, Any]) -> None:
    skips = _checkov_skips()
    assert skips, "template.yaml accepts some findings on purpose"
    for (resource, check_id), comment in skips.items():
        assert re.fullmatch(r"CKV2?_AWS_\d+", check_id), f"{resource}: {check_id} is not a checkov AWS check id"
        assert isinstance(comment, str) and len(comment.strip()) >= 20, f"{resource} {check_id}: say why it is skipped"
    # Every skip names a check checkov runs on that resource (a typo'd id would silently skip nothing).
    skipped = {(check["resource"], check["check_id"]) for check in checkov_report["results"]["skipped_checks"]}
    assert skipped == set(skips), (
        f"declared but not applied: {set(skips) - skipped}; applied but not declared: {skipped - set(skips)}"
    )


def _sam_binary() -> str:
    return tool_binary("sam", "HELIPORT_SAM", SAM_INSTALL)


@pytest.mark.parametrize("lint", [False, True], ids=["translator", "lint"])
def test_sam_validate(lint: bool) -> None:
    """`sam validate` runs the SAM translator (it catches, say, an unknown event type, which cfn-lint lets
    through); `--lint` runs cfn-lint. Both offline: no credentials, no profile, a made-up region."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env |= {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "SAM_CLI_TELEMETRY": "0",
    }
    # --language-extensions: the template's AWS::LanguageExtensions pass (ProxyCompute's Fn::If) runs locally
    # before SAM's, as CloudFormation runs it before SAM's at deploy time.
    command = [_sam_binary(), "validate", "--language-extensions", "--template", str(TEMPLATE)]
    command += ["--lint"] if lint else []
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=ROOT, env=env, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_layer_dependencies_have_arm64_python313_wheels(tmp_path: Path) -> None:
    """`sam build` of HeliportLayer for arm64 needs a manylinux aarch64 (or pure) wheel of every dependency
    for CPython 3.13. Resolved from PyPI (network), without downloading the wheels' bodies where PyPI
    serves their metadata."""
    report_path = tmp_path / "report.json"
    command = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--quiet", "--dry-run"]
    command += ["--ignore-installed", "--target", str(tmp_path / "target"), "--report", str(report_path)]
    command += ["--only-binary=:all:", "--platform", "manylinux2014_aarch64", "--python-version", "3.13"]
    command += ["--implementation", "cp", "-r", str(LAYER_REQUIREMENTS)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, f"no arm64/python3.13 wheel set resolves:\n{result.stdout}{result.stderr[-4000:]}"
    installed = {
        canonicalize_name(item["metadata"]["name"]): item["download_info"]["url"].rsplit("/", 1)[-1]
        for item in json.loads(report_path.read_text())["install"]
    }
    requirements = [
        canonicalize_name(Requirement(line).name)
        for line in (raw.split("#", 1)[0].strip() for raw in LAYER_REQUIREMENTS.read_text().splitlines())
        if line
    ]
    assert requirements and not set(requirements) - set(installed), set(requirements) - set(installed)
    for name, wheel in installed.items():
        assert wheel.endswith(".whl"), f"{name}: {wheel} is not a wheel"
        assert wheel.endswith("-none-any.whl") or "aarch64" in wheel, f"{name}: {wheel} is not for arm64"


# API Gateway ends a streamed response after this long without a byte (regional and private endpoints).
API_GATEWAY_STREAM_IDLE_SECONDS = 300


def _statements(function: str) -> list[Any]:
    """The inline policy statements of one function, with the ``!If`` wrappers as written."""
    policies = _template()["Resources"][function]["Properties"]["Policies"]
    return [statement for policy in policies if "Statement" in policy for statement in policy["Statement"]]


def _kms_statement(function: str) -> dict[str, Any]:
    """The statement a function gets only when a customer managed key is given."""
    for statement in _statements(function):
        conditional = statement.get("Fn::If") if isinstance(statement, dict) else None
        if conditional and conditional[0] == "HasKmsKey":
            assert conditional[2] == {"Ref": "AWS::NoValue"}, f"{function}: nothing is granted without a key"
            return conditional[1]
    raise AssertionError(f"{function} cannot use the customer managed key")


def test_the_proxy_gives_up_on_a_silent_upstream_before_api_gateway_does() -> None:
    variables = _template()["Resources"]["ProxyFunction"]["Properties"]["Environment"]["Variables"]
    assert 0 < float(variables["HELIPORT_READ_TIMEOUT"]) < API_GATEWAY_STREAM_IDLE_SECONDS


@pytest.mark.parametrize(
    ("function", "actions"),
    [
        ("ProxyFunction", {"kms:GenerateDataKey", "kms:Decrypt"}),
        ("QueryApiFunction", {"kms:GenerateDataKey", "kms:Decrypt"}),  # writes request assets (SSE-KMS)
        ("LoggerFunction", {"kms:GenerateDataKey", "kms:Decrypt"}),
        ("AlertsFunction", {"kms:Decrypt"}),
    ],
)
def test_a_customer_managed_key_is_usable_by_each_function_through_its_services(
    function: str, actions: set[str]
) -> None:
    statement = _kms_statement(function)
    assert statement["Effect"] == "Allow" and set(statement["Action"]) == actions
    assert statement["Resource"] == {"Ref": "KmsKeyArn"}
    assert "kms:ViaService" in statement["Condition"]["StringEquals"], "only through S3 / Secrets Manager"
    condition = _template()["Conditions"]["HasKmsKey"]
    assert condition == {"Fn::Not": [{"Fn::Equals": [{"Ref": "KmsKeyArn"}, "none"]}]}, "Terraform writes 'none'"


def test_the_dead_letter_alarm_tells_someone() -> None:
    resources = _template()["Resources"]
    alarm = resources["DeadLetterAlarm"]["Properties"]
    assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]
    assert resources["AlarmTopic"]["Type"] == "AWS::SNS::Topic"
    subscription = resources["AlarmEmailSubscription"]
    assert subscription["Condition"] == "HasAlarmEmail" and subscription["Properties"]["Protocol"] == "email"
    assert subscription["Properties"]["TopicArn"] == {"Ref": "AlarmTopic"}


def test_stack_deletion_keeps_the_table_of_keys() -> None:
    table = _template()["Resources"]["StateTable"]
    assert table["DeletionPolicy"] == "Retain" and table["UpdateReplacePolicy"] == "Retain"


def test_the_sam_local_env_file_fills_every_reference_sam_local_cannot_resolve() -> None:
    """`sam local invoke --env-vars events/sam-local-env.json`: SAM CLI resolves neither SSM parameters
    nor the stack's own resources (a !Ref becomes a logical id), and overrides only variables the
    template declares; so the file must name each such variable, and no other."""
    overrides = json.loads((ROOT / "events" / "sam-local-env.json").read_text())
    resources = _template()["Resources"]
    functions = {name for name, r in resources.items() if r["Type"] == "AWS::Serverless::Function"}
    assert set(overrides) == functions
    for function, variables in overrides.items():
        declared = resources[function]["Properties"]["Environment"]["Variables"]
        assert set(variables) <= set(declared), f"{function}: SAM CLI ignores undeclared variables"
        unresolved = {name for name, value in declared.items() if isinstance(value, dict) and "Ref" in value}
        assert unresolved <= set(variables), f"{function}: {sorted(unresolved - set(variables))} left as logical ids"
    # The emulator cannot stream: the proxy's answer comes back whole, as sam local invoke prints it.
    assert overrides["ProxyFunction"]["AWS_LWA_INVOKE_MODE"] == "buffered"


def test_the_consumer_sets_a_refused_record_aside_before_sqs_moves_it_to_the_dlq() -> None:
    """A record the database refuses is kept with its reason (log_dead_letters) on its MAX_ATTEMPTS-th
    receive; SQS's redrive to the reasonless DLQ must come later, for outages only."""
    redrive = _template()["Resources"]["LogQueue"]["Properties"]["RedrivePolicy"]
    assert int(redrive["maxReceiveCount"]) > MAX_ATTEMPTS


# -- LLM security: the optional Bedrock guardrail ------------------------------------------------------

GUARDRAIL_FILTERS = {"PROMPT_ATTACK", "HATE", "INSULTS", "SEXUAL", "VIOLENCE", "MISCONDUCT"}


def test_the_guardrail_is_optional_and_screens_inputs_for_prompt_attacks_and_harmful_content() -> None:
    template = _template()
    assert template["Conditions"]["CreatesGuardrail"] == {"Fn::Equals": [{"Ref": "CreateGuardrail"}, "true"]}
    assert template["Parameters"]["CreateGuardrail"]["Default"] == "false"
    guardrail = template["Resources"]["Guardrail"]
    assert guardrail["Type"] == "AWS::Bedrock::Guardrail" and guardrail["Condition"] == "CreatesGuardrail"
    filters = {f["Type"]: f for f in guardrail["Properties"]["ContentPolicyConfig"]["FiltersConfig"]}
    assert set(filters) == GUARDRAIL_FILTERS
    assert all(f["InputStrength"] == "HIGH" for f in filters.values()), "heliport screens inputs"
    assert filters["PROMPT_ATTACK"]["OutputStrength"] == "NONE", "Bedrock allows prompt attacks on inputs only"
    # The proxy applies a published version, never the mutable DRAFT.
    version = template["Resources"]["GuardrailVersion"]
    assert version["Type"] == "AWS::Bedrock::GuardrailVersion" and version["Condition"] == "CreatesGuardrail"
    assert version["Properties"]["GuardrailIdentifier"] == {"Fn::GetAtt": ["Guardrail", "GuardrailId"]}


def test_the_proxy_is_told_which_guardrail_to_apply() -> None:
    variables = _template()["Resources"]["ProxyFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["HELIPORT_BEDROCK_GUARDRAIL"] == {
        "Fn::If": [
            "CreatesGuardrail",
            {"Fn::Sub": "${GuardrailVersion.GuardrailId}:${GuardrailVersion.Version}"},
            {"Fn::If": ["HasExistingGuardrail", {"Ref": "BedrockGuardrail"}, {"Ref": "AWS::NoValue"}]},
        ]
    }


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("", True),
        ("abcd1234efgh:1", True),
        ("abcd1234efgh:DRAFT", True),
        ("abcd1234efgh:12345678", True),
        ("abcd1234efgh", False),
        ("abcd1234efgh:0", False),
        ("arn:aws:bedrock:us-east-1:123456789012:guardrail/abcd1234efgh:1", False),
        ("ABCD:1", False),
    ],
)
def test_an_existing_guardrail_is_an_id_and_version_of_this_region(value: str, accepted: bool) -> None:
    """The IAM grant builds the guardrail's ARN from the id, so an ARN (or a missing version) is refused
    at deploy time rather than granting the wrong resource; what is accepted is what the proxy reads."""
    from heliport.config import Settings

    pattern = _template()["Parameters"]["BedrockGuardrail"]["AllowedPattern"]
    assert bool(re.fullmatch(pattern, value)) is accepted
    if accepted and value:
        assert Settings.from_env({"HELIPORT_BEDROCK_GUARDRAIL": value}).bedrock_guardrail == value


def test_creating_and_naming_a_guardrail_at_once_is_refused() -> None:
    rule = _template()["Rules"]["OneGuardrail"]
    assert rule["RuleCondition"] == {"Fn::Equals": [{"Ref": "CreateGuardrail"}, "true"]}
    assert rule["Assertions"][0]["Assert"] == {"Fn::Equals": [{"Ref": "BedrockGuardrail"}, ""]}


def test_the_proxy_may_apply_that_guardrail_and_nothing_else() -> None:
    """Least privilege: bedrock:ApplyGuardrail alone, on the created guardrail's ARN or the named one's."""
    grants = [
        s["Fn::If"]
        for s in _statements("ProxyFunction")
        if isinstance(s, dict) and s.get("Fn::If", [""])[0] == "HasGuardrail"
    ]
    assert len(grants) == 1
    _, statement, otherwise = grants[0]
    assert otherwise == {"Ref": "AWS::NoValue"}
    assert statement["Effect"] == "Allow" and statement["Action"] == ["bedrock:ApplyGuardrail"]
    assert statement["Resource"] == {
        "Fn::If": [
            "CreatesGuardrail",
            {"Fn::GetAtt": ["Guardrail", "GuardrailArn"]},
            {
                "Fn::Sub": [
                    "arn:${AWS::Partition}:bedrock:${AWS::Region}:${AWS::AccountId}:guardrail/${Id}",
                    {"Id": {"Fn::Select": [0, {"Fn::Split": [":", {"Ref": "BedrockGuardrail"}]}]}},
                ]
            },
        ]
    }
    # No other statement of any function mentions guardrails.
    functions = [n for n, r in _template()["Resources"].items() if r["Type"] == "AWS::Serverless::Function"]
    mentions = sum(json.dumps(_statements(function)).count("Guardrail") for function in functions)
    assert mentions == json.dumps(grants[0]).count("Guardrail")
    condition = _template()["Conditions"]["HasGuardrail"]
    assert condition == {"Fn::Or": [{"Condition": "CreatesGuardrail"}, {"Condition": "HasExistingGuardrail"}]}


# -- webhooks and alerts (issue 22): the outbox queue, the delivery function, the evaluator -------------


def _leading_keys(function: str) -> dict[str, set[str]]:
    """DynamoDB actions of ``function`` by the partitions (LeadingKeys) they are confined to."""
    confined: dict[str, set[str]] = {}
    for statement in _statements(function):
        if not isinstance(statement, dict) or "Action" not in statement:
            continue
        actions = [a for a in statement["Action"] if str(a).startswith("dynamodb:")]
        if not actions:
            continue
        keys = statement["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
        for key in keys:
            confined.setdefault(key, set()).update(actions)
    return confined


def test_the_delivery_function_runs_outside_the_vpc_and_judges_the_last_receive_itself() -> None:
    from heliport.outbound import MAX_RECEIVES

    resources = _template()["Resources"]
    function = resources["DeliveryFunction"]["Properties"]
    assert "VpcConfig" not in function, "receivers are on the internet; nothing private may be reachable"
    queue = resources["OutboxQueue"]["Properties"]
    assert int(queue["RedrivePolicy"]["maxReceiveCount"]) == MAX_RECEIVES
    assert int(queue["VisibilityTimeout"]) >= 6 * int(function["Timeout"])
    assert int(function["Timeout"]) > 120, "one attempt may wait 2 minutes"
    source = function["Events"]["Outbox"]["Properties"]
    assert source["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert source["Queue"] == {"Fn::GetAtt": ["OutboxQueue", "Arn"]}
    alarm = resources["OutboxDeadLetterAlarm"]["Properties"]
    assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]
    assert alarm["Dimensions"][0]["Value"] == {"Fn::GetAtt": ["OutboxDeadLetterQueue", "QueueName"]}


def test_webhook_items_are_the_only_ones_the_new_paths_touch() -> None:
    assert _leading_keys("DeliveryFunction") == {
        "webhook#*": {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"}
    }
    assert _leading_keys("LoggerFunction") == {"webhook#*": {"dynamodb:GetItem", "dynamodb:Query"}}
    assert "dynamodb:Scan" not in _leading_keys("QueryApiFunction")["webhook#*"]


def test_the_delivery_function_sends_email_as_the_configured_sender_only() -> None:
    template = _template()
    assert template["Conditions"]["HasAlertEmailSender"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "AlertEmailSender"}, "none"]}]
    }
    [ses] = [s["Fn::If"] for s in _statements("DeliveryFunction") if isinstance(s, dict) and "Fn::If" in s]
    assert ses[0] == "HasAlertEmailSender" and ses[2] == {"Ref": "AWS::NoValue"}
    statement = ses[1]
    assert statement["Action"] == ["ses:SendEmail"]
    assert statement["Condition"] == {"StringEquals": {"ses:FromAddress": {"Ref": "AlertEmailSender"}}}
    assert all("identity/" in str(resource) for resource in statement["Resource"])
    variables = template["Resources"]["DeliveryFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["HELIPORT_ALERT_EMAIL_FROM"]["Fn::If"][0] == "HasAlertEmailSender"


def test_the_evaluator_runs_every_minute_in_the_vpc_one_at_a_time() -> None:
    function = _template()["Resources"]["AlertsFunction"]["Properties"]
    assert function["VpcConfig"] == {
        "SubnetIds": {"Ref": "ConsumerSubnetIds"},
        "SecurityGroupIds": {"Ref": "ConsumerSecurityGroupIds"},
    }
    schedule = function["Events"]["EveryMinute"]
    assert schedule["Type"] == "ScheduleV2" and schedule["Properties"]["ScheduleExpression"] == "rate(1 minute)"
    assert int(function["Timeout"]) < 60 and function["ReservedConcurrentExecutions"] == 1
    assert function["EventInvokeConfig"]["MaximumRetryAttempts"] == 0
    assert set(function["Environment"]["Variables"]) >= {"HELIPORT_OUTBOX_QUEUE_URL", "HELIPORT_PUBLIC_URL"}


def test_otlp_protobuf_request_bodies_reach_the_proxy_as_binary() -> None:
    """helicone-async's exporter POSTs OTLP protobuf to /v1/trace/log-python: API Gateway must treat that
    content type as binary (base64 to the function), or the bytes arrive re-encoded as UTF-8 text. SAM
    spells the slash of a media type as ~1."""
    api = _template()["Resources"]["ProxyApi"]["Properties"]
    assert "application~1x-protobuf" in api["BinaryMediaTypes"]
