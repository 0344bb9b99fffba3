"""The three functions started the way Lambda starts them, fed every file in ``events/``.

Each runs from the ``sam build`` twin (see ``tests/lambda_sandbox.py``) with only the template's
environment, resolved against stand-ins for what Terraform and SAM create: moto's server for DynamoDB,
SQS, S3 and Secrets Manager, a fresh PostgreSQL database for Aurora, the mock provider for the LLM
APIs. The proxy runs ``run.sh`` as the Web Adapter's bootstrap does and gets each proxy event as the
adapter forwards it (plain HTTP to uvicorn); the logger and the query API run under the Runtime
Interface Emulator and get their events over its invoke endpoint. The last test follows one request
from the proxy through SQS and the logger into PostgreSQL and back out of the query API.

What each start and first call took is printed (``pytest -s``) and reported in docs/deploy-checks.md.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import httpx
import pytest

from heliport.auth import create_key
from heliport.lambda_extension import EXTENSION_NAME
from heliport.store.aws import create_table
from heliport.store.keys import DynamoKeyStore, Organisation
from heliport.webhooks import VERSION, Webhook, WebhookConfig
from heliport.webhooks.dynamo_store import DynamoWebhookStore
from heliport.webhooks.signing import new_hmac_key, verify
from tests.aws import REGION
from tests.infra.test_template import _template
from tests.lambda_apis import LambdaApis
from tests.lambda_sandbox import ROOT, LambdaBuild, Sandbox, free_port, function_environment, stop
from tests.mock_provider import MockProvider
from tests.postgres import throwaway_database_sync
from tests.webhooks.receiver import Receiver

EVENTS = ROOT / "events"
PROXY_EVENTS = sorted(EVENTS.glob("proxy-*.json"))
PLACEHOLDER_KEY = "sk-heliport-your-key"
# The mock provider paces its stream by this much per event, so buffering would be visible.
CHUNK_DELAY_MS = 100

MEASURED: dict[str, float] = {}


@dataclass
class Stack:
    """The emulated stack's resources, as the template's !Refs resolve to them."""

    key: str
    refs: dict[str, str]
    extra: dict[str, str]
    queue_url: str
    template: dict[str, Any] = field(repr=False)
    #: The key's organisation, and the outbox queue (webhook deliveries, alert notifications).
    org_id: str = ""
    outbox_url: str = ""

    def environment(self, function: str) -> dict[str, str]:
        return {**function_environment(self.template, function, self.refs), **self.extra}


@pytest.fixture(scope="module")
def stack(aws_endpoint: str, mock_provider: MockProvider) -> Iterator[Stack]:
    template = _template()
    suffix = uuid.uuid4().hex[:10]
    table = f"heliport-{suffix}"
    assert asyncio.run(create_table(table, region=REGION, endpoint_url=aws_endpoint))
    sqs = boto3.client("sqs", region_name=REGION, endpoint_url=aws_endpoint)
    queue_url = sqs.create_queue(QueueName=f"heliport-logs-{suffix}")["QueueUrl"]
    outbox_url = sqs.create_queue(QueueName=f"heliport-outbox-{suffix}")["QueueUrl"]
    bucket = f"heliport-bodies-{suffix}"
    boto3.client("s3", region_name=REGION, endpoint_url=aws_endpoint).create_bucket(Bucket=bucket)
    secrets = boto3.client("secretsmanager", region_name=REGION, endpoint_url=aws_endpoint)
    provider_keys = secrets.create_secret(
        Name=f"heliport/providers-{suffix}",
        SecretString=json.dumps({"OPENAI_API_KEY": "sk-emulated", "ANTHROPIC_API_KEY": "sk-ant-emulated"}),
    )["ARN"]
    # What the template's BodyUrlSecret generates: 64 letters and digits, read by the query API at cold start.
    generated = secrets.get_random_password(PasswordLength=64, ExcludePunctuation=True)["RandomPassword"]
    body_url_secret = secrets.create_secret(Name=f"heliport/body-url-{suffix}", SecretString=generated)["ARN"]
    key, org_id = asyncio.run(_key(table, aws_endpoint))
    with throwaway_database_sync() as dsn:
        database = urlsplit(dsn)
        # As RDS manages it: the secret holds only the user name and the password (trust auth here).
        database_secret = secrets.create_secret(
            Name=f"heliport/aurora-{suffix}",
            SecretString=json.dumps({"username": database.username, "password": "rotated-by-rds"}),
        )["ARN"]
        refs = {
            "StateTable": table,
            "LogQueue": queue_url,
            "OutboxQueue": outbox_url,
            "BodiesBucket": bucket,
            "DatabaseSecretArn": database_secret,
            "BodyUrlSecret": body_url_secret,
            "DatabaseEndpoint": database.hostname or "127.0.0.1",
            "DatabaseName": database.path.lstrip("/"),
            "ProviderKeysSecretArn": provider_keys,
            "condition:HasProviderKeys": "true",
        }
        extra = {
            # What the execution role's credentials and the region are in AWS.
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            # Where this emulation's stand-ins live: AWS's endpoints, Aurora's port, the providers.
            "HELIPORT_AWS_ENDPOINT_URL": aws_endpoint,
            "HELIPORT_DATABASE_PORT": str(database.port or 5432),
            "HELIPORT_UPSTREAM_OAI": mock_provider.url,
            "HELIPORT_UPSTREAM_ANTHROPIC": mock_provider.url,
        }
        yield Stack(key, refs, extra, queue_url, template, org_id, outbox_url)
    if MEASURED:
        print("\nLambda emulation, measured:", json.dumps({k: round(v, 1) for k, v in MEASURED.items()}, indent=1))


async def _key(table: str, aws_endpoint: str) -> tuple[str, str]:
    keys = DynamoKeyStore(table, region=REGION, endpoint_url=aws_endpoint)
    try:
        org = Organisation(id=str(uuid.uuid4()), name="emulated", created_at=datetime.now(UTC))
        await keys.put_org(org)
        plain, _ = await create_key(keys, org.id, "lambda-emulation")
        return plain, org.id
    finally:
        await keys.aclose()


# --- the proxy: run.sh behind the Web Adapter ------------------------------------------------------


@dataclass
class Proxy:
    url: str
    log: Path


def _start_proxy(
    lambda_build: LambdaBuild, stack: Stack, workdir: Path, **environment_extra: str
) -> tuple[subprocess.Popen[bytes], Proxy, float]:
    """``run.sh`` as the Web Adapter's bootstrap starts it, once the adapter's readiness check passes;
    with the seconds it took."""
    sandbox = Sandbox(lambda_build, "ProxyFunction", workdir, handler="run.sh")
    port = free_port()
    environment = stack.environment("ProxyFunction")
    assert environment["AWS_LAMBDA_EXEC_WRAPPER"] == "/opt/bootstrap"
    assert environment["AWS_LWA_INVOKE_MODE"] == "response_stream"
    environment["PORT"] = str(port)  # the adapter's default port may be taken on a shared machine
    environment.update(environment_extra)
    log = workdir / "proxy.log"
    started = time.monotonic()
    # Lambda runs the exec wrapper with the runtime's bootstrap as its arguments; the adapter ignores them.
    process = sandbox.start(["/opt/bootstrap", "/var/runtime/bootstrap"], environment, log)
    url = f"http://127.0.0.1:{port}"
    readiness = url + environment["AWS_LWA_READINESS_CHECK_PATH"]
    try:
        while True:  # the adapter's readiness check: every 10 ms until an answer below 500
            try:
                if httpx.get(readiness, timeout=1).status_code < 500:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, f"run.sh exited ({process.returncode}):\n{log.read_text()[-4000:]}"
            assert time.monotonic() - started < 60, f"never ready:\n{log.read_text()[-4000:]}"
            time.sleep(0.01)
    except BaseException:
        stop(process)
        raise
    return process, Proxy(url, log), time.monotonic() - started


@pytest.fixture(scope="module")
def proxy(lambda_build: LambdaBuild, stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    process, started, seconds = _start_proxy(lambda_build, stack, tmp_path_factory.mktemp("proxy"))
    MEASURED["proxy_start_to_ready_ms"] = seconds * 1000
    try:
        yield started
    finally:
        stop(process)


def _adapter_request(proxy: Proxy, event: dict[str, Any], key: str, **extra_headers: str) -> httpx.Request:
    """The HTTP request the Web Adapter makes of an API Gateway REST proxy event."""
    headers: dict[str, str] = {}
    for name, values in (event.get("multiValueHeaders") or {}).items():
        headers[name] = ", ".join(values)
    headers.update(event.get("headers") or {})
    headers = {name: value.replace(PLACEHOLDER_KEY, key) for name, value in headers.items()}
    headers["x-amzn-request-context"] = json.dumps(event["requestContext"])
    headers["x-amzn-lambda-context"] = json.dumps({"request_id": str(uuid.uuid4()), "deadline": 0})
    headers.update(extra_headers)
    query = event.get("multiValueQueryStringParameters") or {
        k: [v] for k, v in (event.get("queryStringParameters") or {}).items()
    }
    body = event.get("body") or ""
    content = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode()
    return httpx.Request(
        event["httpMethod"],
        proxy.url + event["path"],
        params=[(k, v) for k, values in query.items() for v in values],
        headers=headers,
        content=content,
    )


def _load(path: Path) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(path.read_text())
    return event


@pytest.mark.parametrize("path", PROXY_EVENTS, ids=[p.stem for p in PROXY_EVENTS])
def test_the_proxy_answers_every_event_as_the_adapter_forwards_it(
    proxy: Proxy, stack: Stack, mock_provider: MockProvider, path: Path
) -> None:
    event = _load(path)
    streamed = bool(json.loads(event["body"]).get("stream"))
    pacing = {"x-mock-chunk-delay-ms": str(CHUNK_DELAY_MS)} if streamed else {}
    mock_provider.clear()
    with httpx.Client(timeout=30) as client:
        sent = time.monotonic()
        response = client.send(_adapter_request(proxy, event, stack.key, **pacing), stream=True)
        arrivals: list[tuple[float, bytes]] = [(time.monotonic(), chunk) for chunk in response.iter_raw()]
        response.close()
    body = b"".join(chunk for _, chunk in arrivals)
    assert response.status_code == 200, body[:2000]
    assert response.headers["helicone-id"], "every proxied call is logged under an id"
    if not streamed:
        assert json.loads(body)["choices"][0]["message"]["content"]
        return
    assert response.headers["content-type"].startswith("text/event-stream")
    assert body.rstrip().endswith(b"data: [DONE]")
    events = [e for e in body.split(b"\n\n") if e.strip()]
    assert len(events) >= 4, body
    # Streamed through, not buffered: the first event reached the client while the provider was still
    # pacing the rest, and the events arrived in several pieces.
    first_event = next(t for t, chunk in arrivals if b"data:" in chunk)
    assert arrivals[-1][0] - first_event >= (len(events) - 2) * CHUNK_DELAY_MS / 1000 * 0.5
    assert len(arrivals) >= len(events) // 2
    MEASURED.setdefault("proxy_first_stream_event_ms", (first_event - sent) * 1000)


def test_the_cached_event_is_answered_from_dynamodb_the_second_time(
    proxy: Proxy, stack: Stack, mock_provider: MockProvider
) -> None:
    event = _load(EVENTS / "proxy-chat-cached.json")
    # A fresh body, so the first call is a miss whichever order the tests ran in.
    body = json.loads(event["body"])
    body["messages"][0]["content"] += f" ({uuid.uuid4()})"
    event["body"] = json.dumps(body)
    mock_provider.clear()
    with httpx.Client(timeout=30) as client:
        first = client.send(_adapter_request(proxy, event, stack.key))
        second = client.send(_adapter_request(proxy, event, stack.key))
    assert (first.headers["helicone-cache"], second.headers["helicone-cache"]) == ("MISS", "HIT")
    assert second.json() == first.json()
    assert len(mock_provider.requests) == 1


def test_the_built_proxy_hands_its_record_to_sqs_after_the_last_byte_and_before_the_freeze(
    lambda_build: LambdaBuild, stack: Stack, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The extension hand-off as the template turns it on, in the built artifact under ``env -i``: the
    proxy registers with Lambda's Extensions API (the stand-in of ``tests/lambda_apis.py``) during INIT,
    and when Lambda freezes the process after an invocation (a real SIGSTOP) its record is already in SQS."""
    apis = LambdaApis(function_name="heliport-ProxyFunction").start()
    process: subprocess.Popen[bytes] | None = None
    try:
        workdir = tmp_path_factory.mktemp("proxy-extension")
        process, proxy, _ = _start_proxy(lambda_build, stack, workdir, AWS_LAMBDA_RUNTIME_API=apis.runtime_api)
        assert stack.environment("ProxyFunction")["HELIPORT_LAMBDA_EXTENSION"] == "true"
        assert [extension.name for extension in apis.registered] == [EXTENSION_NAME]
        apis.attach(process)
        request = _adapter_request(proxy, _load(EVENTS / "proxy-chat-completion.json"), stack.key)
        headers = {k: v for k, v in request.headers.items() if k not in ("x-amzn-lambda-context", "content-length")}
        invocation = apis.invoke(request.method, str(request.url), headers=headers, body=request.content)
        assert invocation.status == 200, invocation.body[:2000]
        assert invocation.frozen_in_time
        request_id = invocation.headers["helicone-id"]
        # The process is stopped now: only a record sent before the freeze can be on the queue.
        messages = _received(stack, request_id)
        (record,) = [json.loads(m["Body"]) for m in messages if json.loads(m["Body"])["request_id"] == request_id]
        assert record["status"] == 200
    finally:
        apis.shutdown()
        apis.stop()
        if process is not None:
            stop(process)


def test_a_bad_key_is_refused_before_any_provider_is_called(
    proxy: Proxy, stack: Stack, mock_provider: MockProvider
) -> None:
    event = _load(EVENTS / "proxy-chat-completion.json")
    mock_provider.clear()
    with httpx.Client(timeout=30) as client:
        response = client.send(_adapter_request(proxy, event, "sk-heliport-not-a-key"))
    assert response.status_code == 401
    assert response.json()["error"]["message"]
    assert not mock_provider.requests


# --- the zip handlers: the Runtime Interface Emulator with awslambdaric -----------------------------


@dataclass
class Emulated:
    """One zip function behind the emulator's invoke endpoint."""

    name: str
    invoke_url: str
    log: Path
    invocations: int = 0

    def invoke(self, event: dict[str, Any]) -> Any:
        started = time.monotonic()
        response = httpx.post(self.invoke_url, json=event, timeout=120)
        elapsed = (time.monotonic() - started) * 1000
        self.invocations += 1
        if self.invocations == 1:
            MEASURED[f"{self.name}_first_invocation_with_init_ms"] = elapsed
        elif self.invocations == 2:
            MEASURED[f"{self.name}_warm_invocation_ms"] = elapsed
        assert response.status_code == 200, f"{response.status_code} {response.text}\n{self.log.read_text()[-4000:]}"
        answer = response.json()
        assert not (isinstance(answer, dict) and "errorType" in answer), f"{answer}\n{self.log.read_text()[-4000:]}"
        return answer


@contextlib.contextmanager
def _emulated(
    lambda_build: LambdaBuild, stack: Stack, function: str, workdir: Path, extra: dict[str, str] | None = None
) -> Iterator[Emulated]:
    """``function`` behind its own emulator, stopped (with its runtime) on exit; ``extra`` variables added."""
    properties = stack.template["Resources"][function]["Properties"]
    handler = properties["Handler"]
    sandbox = Sandbox(lambda_build, function, workdir, handler=handler)
    port = free_port()
    environment = {**stack.environment(function), **(extra or {})}
    # What the Python runtime's bootstrap puts on sys.path: the function, the layers, the runtime.
    environment["PYTHONPATH"] = f"{sandbox.task_root}:/opt/python:{lambda_build.runtime_dir}"
    environment["AWS_LAMBDA_FUNCTION_TIMEOUT"] = str(properties["Timeout"])
    log = workdir / f"{function}.log"
    # Both addresses free ones: two emulators (and whatever else runs here) must not share port 9001.
    rie = [str(lambda_build.rie), "--runtime-interface-emulator-address", f"127.0.0.1:{port}"]
    rie += ["--runtime-api-address", f"127.0.0.1:{free_port()}"]
    process = sandbox.start([*rie, "python", "-m", "awslambdaric", handler], environment, log)
    url = f"http://127.0.0.1:{port}/2015-03-31/functions/function/invocations"
    try:
        deadline = time.monotonic() + 30
        while True:  # the emulator listens at once; the runtime starts (INIT) on the first invoke
            try:
                httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None, log.read_text()[-4000:]
                assert time.monotonic() < deadline, log.read_text()[-4000:]
                time.sleep(0.05)
        yield Emulated(function.removesuffix("Function").lower(), url, log)
    finally:
        stop(process)


@pytest.fixture(scope="module")
def logger(lambda_build: LambdaBuild, stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulated]:
    with _emulated(lambda_build, stack, "LoggerFunction", tmp_path_factory.mktemp("logger")) as emulated:
        yield emulated


@pytest.fixture(scope="module")
def query_api(lambda_build: LambdaBuild, stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulated]:
    with _emulated(lambda_build, stack, "QueryApiFunction", tmp_path_factory.mktemp("api")) as emulated:
        yield emulated


def test_the_logger_stores_the_sample_batch_and_keeps_the_poison_message(logger: Emulated) -> None:
    event = _load(EVENTS / "logger-sqs-batch.json")
    # The undecodable message becomes a dead letter (kept with its reason) and is acknowledged.
    assert logger.invoke(event) == {"batchItemFailures": []}
    # SQS delivers at least once: the same batch again stores nothing twice and answers the same.
    assert logger.invoke(event) == {"batchItemFailures": []}


def test_the_query_api_answers_the_sample_query_for_its_key_only(query_api: Emulated, stack: Stack) -> None:
    event = json.loads((EVENTS / "api-request-query.json").read_text().replace(PLACEHOLDER_KEY, stack.key))
    answer = query_api.invoke(event)
    assert answer["statusCode"] == 200, answer
    assert json.loads(answer["body"]) == {"data": [], "error": None}, "no row of another organisation"
    refused = query_api.invoke(_load(EVENTS / "api-request-query.json"))
    assert refused["statusCode"] == 401


def _sqs_event(messages: list[dict[str, Any]], queue_url: str) -> dict[str, Any]:
    """The event an SQS event source mapping hands the logger for these received messages."""
    arn = f"arn:aws:sqs:{REGION}:123456789012:{queue_url.rsplit('/', 1)[1]}"
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {
                    name: {"stringValue": value.get("StringValue"), "dataType": value["DataType"]}
                    for name, value in m.get("MessageAttributes", {}).items()
                },
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": arn,
                "awsRegion": REGION,
            }
            for m in messages
        ]
    }


def _received(stack: Stack, request_id: str) -> list[dict[str, Any]]:
    """Messages from the log queue until the one for ``request_id`` has come (or 30 s passed)."""
    sqs = boto3.client("sqs", region_name=REGION, endpoint_url=stack.extra["HELIPORT_AWS_ENDPOINT_URL"])
    messages: list[dict[str, Any]] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        batch = sqs.receive_message(
            QueueUrl=stack.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1, MessageAttributeNames=["All"]
        ).get("Messages", [])
        messages += batch
        if any(json.loads(m["Body"]).get("request_id") == request_id for m in messages):
            return messages
    raise AssertionError(f"no log record for {request_id} on the queue")


def test_a_proxied_call_travels_through_sqs_and_the_logger_to_the_query_api(
    proxy: Proxy, logger: Emulated, query_api: Emulated, stack: Stack
) -> None:
    event = _load(EVENTS / "proxy-chat-stream.json")
    with httpx.Client(timeout=30) as client:
        response = client.send(_adapter_request(proxy, event, stack.key, **{"Helicone-Property-Trip": "emulated"}))
    assert response.status_code == 200
    request_id = response.headers["helicone-id"]

    messages = _received(stack, request_id)
    assert logger.invoke(_sqs_event(messages, stack.queue_url)) == {"batchItemFailures": []}

    lookup = _load(EVENTS / "api-request-query.json")
    lookup.update(
        path=f"/v1/request/{request_id}",
        httpMethod="GET",
        body=None,
        headers={"Authorization": f"Bearer {stack.key}"},
        queryStringParameters={"includeBody": "true"},
        multiValueQueryStringParameters={"includeBody": ["true"]},
        resource="/v1/request/{proxy+}",
        pathParameters={"proxy": request_id},
    )
    lookup["requestContext"] = dict(lookup["requestContext"], httpMethod="GET", path=f"/v1/v1/request/{request_id}")
    answer = query_api.invoke(lookup)
    assert answer["statusCode"] == 200, answer
    row = json.loads(answer["body"])["data"]
    assert row["request_id"] == request_id
    assert row["properties"] == {"trip": "emulated"}
    assert row["model"].startswith("gpt-4o-mini")
    assert row["completion_tokens"] > 0, "usage was read from the stream"


# --- webhooks in AWS: the logger puts deliveries on the outbox, the delivery function sends them ---------


@pytest.fixture(scope="module")
def webhook_receiver() -> Iterator[Receiver]:
    with Receiver() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def delivery(
    lambda_build: LambdaBuild, stack: Stack, webhook_receiver: Receiver, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Emulated]:
    # The receiver is on loopback: a trusted origin here, where in AWS a receiver is a public https host.
    extra = {"HELIPORT_TRUSTED_ORIGINS": webhook_receiver.url}
    workdir = tmp_path_factory.mktemp("delivery")
    with _emulated(lambda_build, stack, "DeliveryFunction", workdir, extra) as emulated:
        yield emulated


async def _webhook(stack: Stack, destination: str) -> Webhook:
    store = DynamoWebhookStore(
        stack.refs["StateTable"], region=REGION, endpoint_url=stack.extra["HELIPORT_AWS_ENDPOINT_URL"]
    )
    hook = Webhook(
        id=str(uuid.uuid4()),
        org_id=stack.org_id,
        created_at=datetime.now(UTC),
        destination=destination,
        version=VERSION,
        config=WebhookConfig(),
        include_data=True,
        hmac_key=new_hmac_key(),
        base_url="https://api.example.com/v1",
    )
    try:
        await store.create(hook)
        return hook
    finally:
        await store.aclose()


async def _delivery_log(stack: Stack, hook: Webhook) -> Webhook | None:
    store = DynamoWebhookStore(
        stack.refs["StateTable"], region=REGION, endpoint_url=stack.extra["HELIPORT_AWS_ENDPOINT_URL"]
    )
    try:
        return await store.get(hook.org_id, hook.id)
    finally:
        await store.aclose()


def test_a_proxied_call_reaches_its_webhook_through_the_outbox_and_the_delivery_function(
    proxy: Proxy, logger: Emulated, delivery: Emulated, stack: Stack, webhook_receiver: Receiver
) -> None:
    hook = asyncio.run(_webhook(stack, f"{webhook_receiver.url}/emulated"))
    event = _load(EVENTS / "proxy-chat-completion.json")
    with httpx.Client(timeout=30) as client:
        response = client.send(_adapter_request(proxy, event, stack.key))
    assert response.status_code == 200
    request_id = response.headers["helicone-id"]
    assert logger.invoke(_sqs_event(_received(stack, request_id), stack.queue_url)) == {"batchItemFailures": []}

    sqs = boto3.client("sqs", region_name=REGION, endpoint_url=stack.extra["HELIPORT_AWS_ENDPOINT_URL"])
    queued = sqs.receive_message(
        QueueUrl=stack.outbox_url, MaxNumberOfMessages=10, WaitTimeSeconds=2, AttributeNames=["All"]
    )["Messages"]
    mine = [m for m in queued if json.loads(m["Body"])["webhook_id"] == hook.id]
    assert [json.loads(json.loads(m["Body"])["body"])["request_id"] for m in mine] == [request_id]
    assert delivery.invoke(_sqs_event(mine, stack.outbox_url)) == {"batchItemFailures": []}

    [received] = webhook_receiver.received("/emulated")
    assert verify(hook.hmac_key, received.raw, received.headers["helicone-signature"])
    assert received.body["request_id"] == request_id and received.body["model"].startswith("gpt-4o-mini")
    logged = asyncio.run(_delivery_log(stack, hook))
    assert logged is not None and (logged.log.delivered, logged.log.last_status) == (1, 200)
