"""Logging after the response the Lambda way (heliport.lambda_extension), end to end with real processes.

The proxy's Lambda entry runs as Lambda runs it (``functions/proxy/run.sh``: uvicorn with its flags), with
the AWS adapters against moto's server, the mock provider as the upstream, and ``tests/lambda_apis.py``
as Lambda: the Extensions API the app registers with, and the Web Adapter's side that relays each
invocation over HTTP and ``SIGSTOP``s the app when Lambda would freeze it. Between the app and moto sits
:class:`SqsGate`, a plain HTTP relay that can hold or refuse SQS's ``SendMessage``: it gives ordering
evidence (when the send was answered against when the client saw its last byte) and makes a hand-off
outstanding on purpose.

What is checked: when the environment freezes, the invocation's record is already in SQS (JSON and
SSE), and the client's last byte came before SQS answered the send; the INVOKE event arriving after
the response ended, and a request without the adapter's id header, are still held for; a failed
registration falls back to sending before the last byte; on Managed Instances the record goes after
the last byte without an extension; SIGTERM with a hand-off outstanding still delivers it (here to
the S3 spool, as SQS refuses it).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import boto3
import httpx
import pytest
from aiohttp import web

from heliport.auth import create_key
from heliport.logs.backlog import LogBacklog
from heliport.store.aws import create_table
from heliport.store.keys import DynamoKeyStore, Organisation
from tests.aws import REGION
from tests.lambda_apis import Invocation, LambdaApis
from tests.mock_provider import MockProvider

ROOT = Path(__file__).resolve().parents[1]
FUNCTION = ROOT / "functions" / "proxy"
CHAT = "/v1/gateway/oai/v1/chat/completions"


# -- an HTTP relay in front of moto that can hold or refuse SendMessage ------------------------------------


@dataclass
class Send:
    """One SendMessage seen by the gate (perf_counter times, the clock the stand-in uses too)."""

    body: bytes
    arrived_at: float
    answered_at: float = 0.0
    refused: bool = False


@dataclass
class SqsGate:
    """Relays everything to moto; SendMessage waits ``delay_s`` or until :meth:`release`, then goes on or is refused."""

    target: str
    delay_s: float = 0.0
    sends: list[Send] = field(default_factory=list)
    url: str = ""

    def __post_init__(self) -> None:
        self._held = threading.Event()
        self._held.set()  # open: nothing is held until hold() is called
        self.refuse = False
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(self._serve())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, daemon=True, name="sqs-gate")
        self._thread.start()
        assert ready.wait(10)

    def hold(self, refuse: bool) -> None:
        """Hold every SendMessage from now until :meth:`release`; then answer it with an error if ``refuse``."""
        self.refuse = refuse
        self._held.clear()

    def release(self) -> None:
        self._held.set()

    async def _serve(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._relay)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        assert site._server is not None
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{port}"
        self._session = aiohttp.ClientSession()

    async def _relay(self, request: web.Request) -> web.Response:
        body = await request.read()
        target = request.headers.get("X-Amz-Target", "")
        send = None
        if target.startswith("AmazonSQS.SendMessage") or b"Action=SendMessage" in body:
            send = Send(body, time.perf_counter())
            self.sends.append(send)
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            await asyncio.get_running_loop().run_in_executor(None, self._held.wait)
            if self.refuse:
                send.refused, send.answered_at = True, time.perf_counter()
                return web.json_response(
                    {"__type": "com.amazonaws.sqs#InternalError", "message": "refused by the test"}, status=500
                )
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        async with self._session.request(
            request.method, self.target + request.path_qs, headers=headers, data=body
        ) as answer:
            data = await answer.read()
            out_headers = {
                k: v
                for k, v in answer.headers.items()
                if k.lower() not in ("content-length", "transfer-encoding", "content-encoding", "connection")
            }
            response = web.Response(status=answer.status, body=data, headers=out_headers)
        if send is not None:
            send.answered_at = time.perf_counter()
        return response

    def close(self) -> None:
        async def stop() -> None:
            await self._session.close()
            await self._runner.cleanup()

        self._held.set()
        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


# -- fixtures: the AWS resources, the key, the stand-in, the proxy process ----------------------------------


@dataclass
class Deployment:
    table: str
    bucket: str
    key: str
    endpoint: str


@pytest.fixture(scope="module")
def deployment(aws_endpoint: str) -> Deployment:
    return make_deployment(aws_endpoint)


def make_deployment(aws_endpoint: str) -> Deployment:
    """A table with an organisation and a key, and a bucket (the spool and the bodies)."""
    table = f"heliport-{uuid.uuid4().hex[:12]}"

    async def setup() -> str:
        assert await create_table(table, region=REGION, endpoint_url=aws_endpoint)
        keys = DynamoKeyStore(table, region=REGION, endpoint_url=aws_endpoint)
        org = Organisation(id=str(uuid.uuid4()), name="extension", created_at=datetime.now(UTC))
        await keys.put_org(org)
        plain, _ = await create_key(keys, org.id, "extension")
        await keys.aclose()
        return plain

    key = asyncio.run(setup())
    bucket = f"heliport-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", region_name=REGION, endpoint_url=aws_endpoint).create_bucket(Bucket=bucket)
    return Deployment(table, bucket, key, aws_endpoint)


@pytest.fixture
def sqs(deployment: Deployment) -> Iterator[tuple[Any, str]]:
    """A fresh queue per test (so what is in it is this test's), with a client to read it."""
    client = boto3.client("sqs", region_name=REGION, endpoint_url=deployment.endpoint)
    url = client.create_queue(QueueName=f"heliport-logs-{uuid.uuid4().hex[:12]}")["QueueUrl"]
    yield client, url
    client.delete_queue(QueueUrl=url)


@pytest.fixture
def gate(deployment: Deployment) -> Iterator[SqsGate]:
    gate = SqsGate(deployment.endpoint)
    yield gate
    gate.close()


@pytest.fixture
def apis() -> Iterator[LambdaApis]:
    stand_in = LambdaApis(function_name="heliport-proxy").start()
    yield stand_in
    stand_in.stop()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Proxy:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def start_proxy(
    tmp_path: Path,
    apis: LambdaApis,
    deployment: Deployment,
    queue_url: str,
    aws_endpoint: str,
    upstream: str,
    **extra: str,
) -> Proxy:
    """``run.sh`` as the Web Adapter starts it, with Lambda's variables; ready once /healthcheck answers."""
    port = _free_port()
    env = {
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "LAMBDA_TASK_ROOT": str(FUNCTION),
        "PORT": str(port),
        "AWS_LAMBDA_FUNCTION_NAME": "heliport-proxy",
        "AWS_LAMBDA_RUNTIME_API": apis.runtime_api,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "HELIPORT_AWS_REGION": REGION,
        "HELIPORT_AWS_ENDPOINT_URL": aws_endpoint,
        "HELIPORT_TABLE": deployment.table,
        "HELIPORT_QUEUE_URL": queue_url,
        "HELIPORT_BUCKET": deployment.bucket,
        "HELIPORT_DATA_DIR": str(tmp_path / "data"),
        "HELIPORT_UPSTREAM_OAI": upstream,
        "HELIPORT_LAMBDA_EXTENSION": "true",
        **extra,
    }
    if "PYTHONPATH" in os.environ:
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    log = tmp_path / "proxy.log"
    with log.open("wb") as out:
        process = subprocess.Popen(["sh", str(FUNCTION / "run.sh")], env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/healthcheck").status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "the proxy did not start serving"
        time.sleep(0.05)
    apis.attach(process)
    return Proxy(process, url, log)


@pytest.fixture
def proxies() -> Iterator[list[Proxy]]:
    """Every proxy a test starts is stopped afterwards (thawed first, in case it is frozen)."""
    started: list[Proxy] = []
    yield started
    for proxy in started:
        if proxy.process.poll() is None:
            proxy.process.send_signal(18)  # SIGCONT: a stopped process cannot act on SIGTERM
            proxy.process.terminate()
            try:
                proxy.process.wait(10)
            except subprocess.TimeoutExpired:
                proxy.process.kill()
                proxy.process.wait(10)


@pytest.fixture
def stand_in() -> Iterator[Callable[..., LambdaApis]]:
    """Lambda's APIs made with options of a test's own (``LambdaApis``'s arguments); stopped afterwards."""
    started: list[LambdaApis] = []

    def make(**options: Any) -> LambdaApis:
        started.append(LambdaApis(**options).start())
        return started[-1]

    yield make
    for api in started:
        api.stop()


@pytest.fixture
def launch(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    deployment: Deployment,
    sqs: tuple[Any, str],
    gate: SqsGate,
    mock_provider: MockProvider,
    proxies: list[Proxy],
) -> Callable[..., Proxy]:
    """Start the proxy as Lambda does (``start_proxy``) behind ``apis`` (the ``apis`` fixture when none is
    given), its queue behind the gate, upstream the mock, ``env`` added; stopped after the test."""

    def start(apis: LambdaApis | None = None, **env: str) -> Proxy:
        behind = apis if apis is not None else request.getfixturevalue("apis")
        proxy = start_proxy(tmp_path, behind, deployment, sqs[1], gate.url, mock_provider.url, **env)
        proxies.append(proxy)
        return proxy

    return start


def _chat(stream: bool, key: str, request_id: str) -> tuple[dict[str, str], bytes]:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello"}], "stream": stream}
    headers = {
        "content-type": "application/json",
        "authorization": "Bearer sk-test-openai",
        "helicone-auth": f"Bearer {key}",
        "helicone-request-id": request_id,
    }
    return headers, json.dumps(body).encode()


def _invoke(
    apis: LambdaApis, proxy: Proxy, key: str, *, stream: bool = False, **options: Any
) -> tuple[Invocation, str]:
    helicone_id = str(uuid.uuid4())
    headers, body = _chat(stream, key, helicone_id)
    invocation = apis.invoke("POST", proxy.url + CHAT, headers=headers, body=body, **options)
    assert invocation.status == 200, invocation.body
    if stream:
        assert invocation.body.rstrip().endswith(b"data: [DONE]")
    else:
        assert json.loads(invocation.body)["choices"][0]["message"]["content"]
    return invocation, helicone_id


def _queued_ids(sqs: tuple[Any, str]) -> list[str]:
    """Request ids of the records in the queue now (read without deleting; visible again at once)."""
    client, url = sqs
    ids: list[str] = []
    answer = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0, WaitTimeSeconds=0)
    for message in answer.get("Messages", []):
        ids.append(json.loads(message["Body"])["request_id"])
    return ids


# -- the tests ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_the_record_is_in_sqs_when_lambda_freezes_and_the_last_byte_came_first(
    stream: bool,
    apis: LambdaApis,
    deployment: Deployment,
    sqs: tuple[Any, str],
    gate: SqsGate,
    launch: Callable[..., Proxy],
) -> None:
    gate.delay_s = 0.5  # SQS answers slowly: a client that waited for it would see its last byte late
    proxy = launch()
    assert [e.name for e in apis.registered] == ["heliport-log-handoff"]
    assert apis.registered[0].events == {"INVOKE"}
    for _ in range(2):  # the second invoke thaws a process that was really stopped
        invocation, helicone_id = _invoke(apis, proxy, deployment.key, stream=stream)
        assert invocation.frozen_in_time
        # Frozen now (SIGSTOP): nothing more can happen in the app, and the record is already queued.
        assert helicone_id in _queued_ids(sqs)
        send = next(s for s in gate.sends if helicone_id.encode() in s.body)
        # The client had its last byte before SQS answered the send; Lambda froze only after it.
        assert invocation.last_byte_at < send.answered_at <= invocation.frozen_at


def test_the_official_sdks_through_lambda_see_complete_answers_and_every_record_is_queued_at_the_freeze(
    apis: LambdaApis,
    deployment: Deployment,
    sqs: tuple[Any, str],
    gate: SqsGate,
    mock_provider: MockProvider,
    launch: Callable[..., Proxy],
) -> None:
    """OpenAI and Anthropic SDKs, JSON and streams, through the stand-in's front door (API Gateway's place)."""
    import anthropic
    import openai

    gate.delay_s = 0.5
    proxy = launch(HELIPORT_UPSTREAM_ANTHROPIC=mock_provider.url)
    front = apis.front_door(proxy.url)
    ids = [str(uuid.uuid4()) for _ in range(4)]
    auth = {"Helicone-Auth": f"Bearer {deployment.key}"}
    oai = openai.OpenAI(base_url=f"{front}/v1/gateway/oai/v1", api_key="sk-test-openai", max_retries=0)
    ant = anthropic.Anthropic(base_url=f"{front}/v1/gateway/anthropic", api_key="sk-ant-test", max_retries=0)
    messages: Any = [{"role": "user", "content": "Say hello"}]

    def settled(count: int) -> None:
        """The front door records an invocation once Lambda would have frozen the environment."""
        deadline = time.monotonic() + 30
        while len(apis.invocations) < count:
            assert time.monotonic() < deadline, "the invocation never froze"
            time.sleep(0.01)

    answer = oai.chat.completions.create(
        model="gpt-4o-mini", messages=messages, extra_headers={**auth, "Helicone-Request-Id": ids[0]}
    )
    assert answer.choices[0].message.content
    settled(1)
    assert ids[0] in _queued_ids(sqs)  # frozen: nothing more can happen in the app, and it is queued
    stream = oai.chat.completions.create(
        model="gpt-4o-mini", messages=messages, stream=True, extra_headers={**auth, "Helicone-Request-Id": ids[1]}
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    settled(2)
    assert ids[1] in _queued_ids(sqs)
    reply = ant.messages.create(
        model="claude-3-5-haiku-latest",
        max_tokens=64,
        messages=messages,
        extra_headers={**auth, "Helicone-Request-Id": ids[2]},
    )
    assert reply.content
    settled(3)
    assert ids[2] in _queued_ids(sqs)
    with ant.messages.stream(
        model="claude-3-5-haiku-latest",
        max_tokens=64,
        messages=messages,
        extra_headers={**auth, "Helicone-Request-Id": ids[3]},
    ) as events:
        assert events.get_final_text()
    settled(4)
    assert ids[3] in _queued_ids(sqs)
    for invocation, helicone_id in zip(apis.invocations, ids, strict=True):
        assert invocation.frozen_in_time and invocation.status == 200
        send = next(s for s in gate.sends if helicone_id.encode() in s.body)
        assert invocation.last_byte_at < send.answered_at <= invocation.frozen_at


def test_a_failed_registration_falls_back_to_logging_before_the_last_byte(
    deployment: Deployment,
    sqs: tuple[Any, str],
    gate: SqsGate,
    launch: Callable[..., Proxy],
    stand_in: Callable[..., LambdaApis],
) -> None:
    apis = stand_in(refuse_register=True)
    gate.delay_s = 0.3
    proxy = launch(apis)
    assert apis.registered == []
    invocation, helicone_id = _invoke(apis, proxy, deployment.key)
    assert helicone_id in _queued_ids(sqs)
    send = next(s for s in gate.sends if helicone_id.encode() in s.body)
    # Today's order: the record was in SQS before the client's last byte.
    assert send.answered_at < invocation.last_byte_at
    assert "could not register" in proxy.output() and "before the last byte" in proxy.output()


def test_an_invoke_event_read_after_the_response_ended_still_holds_the_freeze(
    apis: LambdaApis,
    deployment: Deployment,
    sqs: tuple[Any, str],
    gate: SqsGate,
    launch: Callable[..., Proxy],
) -> None:
    gate.delay_s = 0.3
    proxy = launch()
    for stream in (False, True):
        invocation, helicone_id = _invoke(apis, proxy, deployment.key, stream=stream, event_after_response=True)
        assert invocation.frozen_in_time
        assert helicone_id in _queued_ids(sqs)


def test_a_request_without_the_lambda_context_header_is_still_held_for(
    apis: LambdaApis,
    deployment: Deployment,
    sqs: tuple[Any, str],
    gate: SqsGate,
    launch: Callable[..., Proxy],
) -> None:
    gate.delay_s = 0.3
    proxy = launch()
    invocation, helicone_id = _invoke(apis, proxy, deployment.key, stream=True, lambda_context=False)
    assert invocation.frozen_in_time
    assert helicone_id in _queued_ids(sqs)
    assert f"no request with Lambda request id {invocation.request_id} arrived" in proxy.output()


def test_on_managed_instances_the_record_goes_after_the_last_byte_without_registering(
    apis: LambdaApis,
    deployment: Deployment,
    sqs: tuple[Any, str],
    gate: SqsGate,
    launch: Callable[..., Proxy],
) -> None:
    gate.delay_s = 0.5
    proxy = launch(AWS_LAMBDA_INITIALIZATION_TYPE="lambda-managed-instances", AWS_LAMBDA_MAX_CONCURRENCY="8")
    assert apis.registered == []
    invocation, helicone_id = _invoke(apis, proxy, deployment.key, freeze=False)  # LMI never freezes
    deadline = time.monotonic() + 10
    while helicone_id not in _queued_ids(sqs):
        assert time.monotonic() < deadline, "the record never reached SQS"
        time.sleep(0.05)
    send = next(s for s in gate.sends if helicone_id.encode() in s.body)
    assert invocation.last_byte_at < send.answered_at


def test_sigterm_with_a_hand_off_outstanding_still_delivers_it(
    deployment: Deployment,
    sqs: tuple[Any, str],
    gate: SqsGate,
    launch: Callable[..., Proxy],
    stand_in: Callable[..., LambdaApis],
) -> None:
    # A short invocation deadline, and SQS holding the send past it: the extension gives up at the
    # deadline and Lambda freezes the environment with the hand-off still outstanding.
    apis = stand_in(timeout_s=1.5)
    proxy = launch(apis)
    gate.hold(refuse=True)
    invocation, helicone_id = _invoke(apis, proxy, deployment.key)
    assert invocation.frozen_in_time
    assert any(helicone_id.encode() in s.body for s in gate.sends)  # sent, not answered
    assert helicone_id not in _queued_ids(sqs)
    # Now SQS refuses it; Lambda thaws the environment only to shut it down (SIGTERM, 2 s, SIGKILL).
    gate.release()
    code = apis.shutdown()
    # uvicorn exits by re-raising the SIGTERM it caught, once its graceful shutdown is over.
    assert code in (0, -15) and not apis.killed, proxy.output()
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=deployment.endpoint)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=deployment.bucket).get("Contents", [])]
    spooled = [k for k in keys if helicone_id in k]
    assert spooled, keys
    record = json.loads(s3.get_object(Bucket=deployment.bucket, Key=spooled[0])["Body"].read())
    assert record["request_id"] == helicone_id and record["status"] == 200
    assert "log queue refused request" in proxy.output()


# -- the shutdown drain, in process ------------------------------------------------------------------------


@pytest.mark.anyio
async def test_drain_waits_for_the_hand_offs_outstanding_now_and_is_bounded() -> None:
    backlog = LogBacklog(limit=10)
    assert await backlog.drain(0.01)  # nothing outstanding: done at once
    slow: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    quick: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    backlog.track(slow)
    backlog.track(quick)
    asyncio.get_running_loop().call_soon(quick.set_result, None)
    assert not await backlog.drain(0.05)  # the slow one is still running: bounded, and not cancelled
    assert quick.done() and not slow.cancelled() and backlog.outstanding == 1
    draining = asyncio.ensure_future(backlog.drain(5))
    await asyncio.sleep(0)  # the drain has begun and taken its snapshot
    later: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    backlog.track(later)  # tracked after the drain began: not waited for
    slow.set_result(None)
    assert await draining
    assert backlog.outstanding == 1
    later.set_result(None)


@pytest.mark.anyio
async def test_aclose_sends_outstanding_hand_offs_before_the_queue_closes(tmp_path: Path) -> None:
    """A hand-off still running at shutdown reaches the queue: ``aclose`` drains before it closes it."""
    from heliport.app import create_app
    from heliport.config import Settings
    from heliport.store.queue import SqliteQueue
    from tests.logs.records import chat_record

    app = create_app(Settings(data_dir=tmp_path))
    record = chat_record()

    async def late_handoff() -> None:
        await asyncio.sleep(0.2)  # still on its way when the shutdown begins
        await app.queue.send(record)

    handoff = asyncio.ensure_future(late_handoff())
    app.backlog.track(handoff)
    await app.aclose()
    assert handoff.done() and handoff.exception() is None
    queue = SqliteQueue(tmp_path / "log-queue.sqlite3")
    try:
        assert [q.request_id for q in queue.receive()] == [record.request_id]
    finally:
        await queue.aclose()


def test_a_broken_extensions_api_is_reported_and_logging_goes_back_before_the_last_byte(
    deployment: Deployment,
    sqs: tuple[Any, str],
    launch: Callable[..., Proxy],
    stand_in: Callable[..., LambdaApis],
) -> None:
    apis = stand_in(timeout_s=2.0)
    proxy = launch(apis)
    apis.fail_next = True  # the INVOKE gets through; the extension's next call after it fails
    invocation, helicone_id = _invoke(apis, proxy, deployment.key, freeze=False)
    assert not invocation.frozen_in_time  # the extension never came back: Lambda would time this out
    assert helicone_id in _queued_ids(sqs)  # held for until then all the same
    assert [(e.kind, e.extension, e.error_type) for e in apis.errors] == [
        ("exit", "heliport-log-handoff", "Extension.EventLoopFailed")
    ]
    assert "logging before the last byte from now on" in proxy.output()


# -- start-up choices and the id header, in process ----------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("environ", "mode", "after_last_byte"),
    [
        ({}, "before-last-byte", False),  # no Runtime API: not on Lambda, or a broken one
        ({"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9"}, "before-last-byte", False),  # nothing listens on port 9
        ({"AWS_LAMBDA_INITIALIZATION_TYPE": "lambda-managed-instances"}, "after-last-byte", True),
        ({"AWS_LAMBDA_MAX_CONCURRENCY": "32", "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9"}, "after-last-byte", True),
    ],
    ids=["no-runtime-api", "unreachable", "lmi-init-type", "lmi-concurrency"],
)
async def test_start_up_chooses_the_order_the_platform_allows(
    tmp_path: Path, environ: dict[str, str], mode: str, after_last_byte: bool
) -> None:
    from heliport.app import create_app
    from heliport.config import Settings
    from heliport.lambda_extension import LambdaExtensionApp, with_lambda_extension

    app = create_app(Settings(data_dir=tmp_path, lambda_extension=True))
    wrapped = with_lambda_extension(app, environ)
    assert isinstance(wrapped, LambdaExtensionApp)
    await wrapped.start()
    try:
        assert (wrapped.mode, app.backlog.after_last_byte, wrapped.extension) == (mode, after_last_byte, None)
    finally:
        await wrapped.aclose()
        await app.aclose()


def test_with_the_setting_off_the_entry_app_is_the_bare_app(tmp_path: Path) -> None:
    from heliport.app import create_app
    from heliport.config import Settings
    from heliport.lambda_extension import with_lambda_extension

    app = create_app(Settings(data_dir=tmp_path))
    assert with_lambda_extension(app, {"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001"}) is app
    asyncio.run(app.aclose())


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([(b"x-amzn-lambda-context", b'{"request_id":"abc","deadline":1,"env_config":{}}')], "abc"),
        ([(b"accept", b"*/*")], None),
        ([(b"x-amzn-lambda-context", b"not json")], None),
        ([(b"x-amzn-lambda-context", b'{"deadline":1}')], None),
        ([(b"x-amzn-lambda-context", b'{"request_id":""}')], None),
    ],
    ids=["adapter", "absent", "garbled", "no-id", "empty-id"],
)
def test_the_lambda_request_id_comes_from_the_adapters_context_header(
    headers: list[tuple[bytes, bytes]], expected: str | None
) -> None:
    from heliport.lambda_extension import lambda_request_id

    assert lambda_request_id(headers) == expected
