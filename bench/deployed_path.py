"""The deployed hot path (issue 24 §2): the proxy's Lambda entry with local adapters vs AWS adapters.

    .venv/bin/python bench/deployed_path.py [--rounds 5 --round-seconds 3] [--quick] [--out FILE]

Processes, each its own, all on 127.0.0.1:

* the mock provider (``python -m tests.mock_provider``): ``direct``, the floor every target stands on;
  and ``baseline``, ``bench/baseline.py`` in front of it: the bare pass-through, what any proxy on this
  server stack costs at the same request rate;
  it answers after ``--model-delay-ms`` (20; header ``x-mock-delay-ms``, which heliport passes on), so
  every target runs at a similar request rate: CPU per request depends on it (caches go cold between
  sparse requests), and a model that answers in no time is no model;
* moto's server application with one DynamoDB table, one S3 bucket and one SQS queue per AWS target,
  created as ``tests/aws.py`` creates them, served with keep-alive (:func:`serve_moto`; ``--moto
  werkzeug`` runs ``moto_server`` itself, which closes every connection);
* the proxy's Lambda entry (``functions/proxy/app.py`` under uvicorn with ``run.sh``'s flags) as:
  ``local``: the local adapters (SQLite key store and log queue);
  ``aws-sdk``: the AWS adapters against moto, the log record sent by aioboto3's ``send_message``
  (the path before issue 24: the app is the same, only ``SqsQueue.send`` is swapped, see
  :func:`sdk_app`);
  ``aws``: the AWS adapters against moto, the record sent by the lean sender (``store/sqs_send.py``);
  ``aws-after`` (only with ``--targets``): as ``aws`` with ``HELIPORT_LOG_BEFORE_LAST_BYTE=false``;
  every AWS target runs with ``AWS_LAMBDA_FUNCTION_NAME`` set, as on Lambda;
* wrk at one connection with ``bench/post.lua``, JSON and SSE.

Per target and scenario, in interleaved rounds (order flipped each round; a round that outside
load disturbed is retried, see ``bench/run.py``'s ``Noise``): heliport's process CPU over the run
from /proc divided by requests, p50 (wrk's latency at one connection is the time to the last byte),
p99, and p50 added over ``direct`` paired per round; ratios to ``local`` paired per round. Then one
run per AWS target at ``--batch-connections`` (16) shows what batching does to CPU per request when
one environment serves many requests at once (Lambda Managed Instances). Finally every AWS target's
queue must hold exactly one message per request it served, and no record may have gone to the
spool: the check that the lighter path lost nothing. Last, the extension hand-off of §1 through a
stand-in of Lambda's Runtime and Extensions APIs (``tests/lambda_apis.py``), time to the last byte
with it off and on (:func:`extension_case`). Raw results: ``bench/results/deployed-path-<UTC>.json``
(or ``--out``).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import statistics
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.run import (
    BIN,
    CLK_TCK,
    COMMON_HEADERS,
    GATEWAY_CHAT_PATH,
    HOST,
    LAMBDA_ENTRY,
    ROOT,
    SENT,
    Children,
    Noise,
    Target,
    WrkRun,
    child_env,
    cpu_ticks,
    create_key,
    free_port,
    interleaved_rounds,
    lambda_argv,
    log_errors,
    machine,
    raise_on_sigterm,
    run_wrk,
    scratch_dir,
    start_baseline,
    start_mock,
    wait_ready,
    write_bodies,
    write_results,
)

REGION = "us-east-1"
#: The AWS targets: name -> extra environment.
AWS_TARGETS: dict[str, dict[str, str]] = {
    "aws-sdk": {},
    "aws": {},
    "aws-after": {"HELIPORT_LOG_BEFORE_LAST_BYTE": "false"},
}
#: Issue 24's target for the deployed path: CPU per JSON request, log hand-off included.
TARGET_CPU_US = 500.0
#: Per target, how many requests wrk may have left in flight when its runs ended: served (and logged)
#: by heliport but not counted by wrk. One per connection per run.
UNCOUNTED_BOUND: Counter[str] = Counter()
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION}


def sdk_app() -> Any:
    """The Lambda entry's app with the log record sent by aioboto3's ``send_message``: the path before
    the lean sender, for the side-by-side. Served with ``uvicorn --factory bench.deployed_path:sdk_app``."""
    from heliport.logs.record import LogRecord
    from heliport.store.queue import SqsQueue

    async def send(self: SqsQueue, record: LogRecord) -> None:
        body = self._encoder.encode(record).decode()
        attributes = {
            "request_id": {"DataType": "String", "StringValue": record.request_id},
            "v": {"DataType": "Number", "StringValue": str(record.v)},
        }

        async def call(client: Any) -> None:
            await client.send_message(QueueUrl=self._url, MessageBody=body, MessageAttributes=attributes)

        await self._call("SendMessage", call)

    SqsQueue.send = send  # type: ignore[method-assign]
    import app  # functions/proxy/app.py, on PYTHONPATH as run.sh puts it

    return app.app


# -- AWS stand-in -------------------------------------------------------------------------------------


def serve_moto(port: int) -> None:
    """moto's server application (the one ``moto_server`` serves) under uvicorn's WSGI interface.

    ``moto_server`` runs it on werkzeug's development server, which answers every request with
    ``Connection: close``: each SQS call would then pay a TCP connect and teardown that the real
    service, which keeps connections alive, does not. The same application behind a server that
    keeps them alive measures what heliport's process does on Lambda.
    """
    import uvicorn
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    app = DomainDispatcherApplication(create_backend_app)
    uvicorn.run(app, host=HOST, port=port, interface="wsgi", log_level="warning", http="httptools", loop="uvloop")


def start_moto(children: Children, scratch: Path, kind: str) -> tuple[str, int]:
    """moto's server; its endpoint and pid (an AWS target's requests cost moto's CPU too)."""
    port = free_port()
    if kind == "werkzeug":
        argv = [str(BIN / "moto_server"), "-H", HOST, "-p", str(port)]
    else:
        argv = [str(BIN / "python"), str(Path(__file__).resolve()), "--serve-moto", str(port)]
    proc = children.start("moto", argv, child_env(**FAKE_CREDENTIALS), scratch / "moto.log")
    url = f"http://{HOST}:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        children.check_alive()
        try:
            with urllib.request.urlopen(url + "/moto-api/", timeout=1):
                return url, proc.pid
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("moto_server did not start within 30 s")


def create_resources(endpoint: str, name: str) -> dict[str, str]:
    """One table, bucket and queue for one target, as ``tests/aws.py`` makes them; their settings."""
    import asyncio

    import boto3

    from heliport.store.aws import create_table

    os.environ.update(FAKE_CREDENTIALS)
    table = f"heliport-{name}"
    asyncio.run(create_table(table, region=REGION, endpoint_url=endpoint))
    boto3.client("s3", region_name=REGION, endpoint_url=endpoint).create_bucket(Bucket=f"heliport-{name}")
    sqs = boto3.client("sqs", region_name=REGION, endpoint_url=endpoint)
    queue_url = sqs.create_queue(QueueName=f"heliport-logs-{name}")["QueueUrl"]
    return {
        "HELIPORT_TABLE": table,
        "HELIPORT_BUCKET": f"heliport-{name}",
        "HELIPORT_QUEUE_URL": queue_url,
        "HELIPORT_AWS_ENDPOINT_URL": endpoint,
        "HELIPORT_AWS_REGION": REGION,
        "AWS_LAMBDA_FUNCTION_NAME": f"heliport-proxy-{name}",
        **FAKE_CREDENTIALS,
    }


def queued_messages(endpoint: str, queue_url: str) -> int:
    import boto3

    sqs = boto3.client("sqs", region_name=REGION, endpoint_url=endpoint)
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def spooled_objects(endpoint: str, bucket: str) -> int:
    import boto3

    s3 = boto3.client("s3", region_name=REGION, endpoint_url=endpoint)
    return int(s3.list_objects_v2(Bucket=bucket, Prefix="spool/").get("KeyCount", 0))


# -- targets ----------------------------------------------------------------------------------------


def start_targets(
    children: Children, scratch: Path, names: Sequence[str], moto: str, model_delay_ms: int = 0
) -> tuple[dict[str, Target], dict[str, Any]]:
    """The mock, moto and one Lambda entry per name; the targets in measuring order and the AWS settings."""
    mock = start_mock(children, scratch)
    mock_url = mock.url
    # heliport (and the bare pass-through) pass x-mock-delay-ms on to the mock like any other header.
    headers = (*COMMON_HEADERS, f"x-mock-delay-ms: {model_delay_ms}") if model_delay_ms else COMMON_HEADERS
    targets = {
        "direct": dataclasses.replace(mock.direct(), headers=headers),
        # The floor under any proxy on this server stack at the same request rate: no heliport at all.
        "baseline": dataclasses.replace(start_baseline(children, scratch, mock), headers=headers),
    }
    endpoint, moto_pid = start_moto(children, scratch, moto) if any(n in AWS_TARGETS for n in names) else ("", 0)
    aws: dict[str, Any] = {"endpoint": endpoint, "targets": {}}
    for name in names:
        port = free_port()
        data_dir = scratch / name
        data_dir.mkdir(parents=True, exist_ok=True)
        env = child_env(PYTHONPATH=str(LAMBDA_ENTRY), HELIPORT_DATA_DIR=str(data_dir), HELIPORT_UPSTREAM_OAI=mock_url)
        argv = lambda_argv(port)
        if name in AWS_TARGETS:
            settings = create_resources(endpoint, name)
            aws["targets"][name] = settings
            env.update(settings, **AWS_TARGETS[name])
        if name == "aws-sdk":
            env["PYTHONPATH"] = f"{LAMBDA_ENTRY}{os.pathsep}{ROOT}"
            argv[argv.index("app:app")] = "bench.deployed_path:sdk_app"
            argv.append("--factory")
        key = create_key(env=env, timeout=120)  # into the target's own key store: its data dir or its table
        log = scratch / f"{name}.log"
        proc = children.start(name, argv, env, log, cwd=LAMBDA_ENTRY)
        pids = {"proxy": proc.pid, "mock": mock.pid}
        if name in AWS_TARGETS:  # moto's CPU is the target's, not outside load that marks a round disturbed
            pids["moto"] = moto_pid
        targets[name] = Target(
            name,
            f"http://{HOST}:{port}{GATEWAY_CHAT_PATH}",
            (*headers, f"Helicone-Auth: Bearer {key}"),
            pids,
            log,
            data_dir=data_dir,
        )
    return targets, aws


# -- measurement ------------------------------------------------------------------------------------


def wrk(target: Target, scenario: str, body_file: Path, *, connections: int, seconds: int) -> WrkRun:
    UNCOUNTED_BOUND[target.name] += connections
    return run_wrk(target, scenario, body_file, connections=connections, threads=1, duration_s=seconds)


def measure(
    targets: Mapping[str, Target],
    body_files: Mapping[str, Path],
    *,
    rounds: int,
    round_s: int,
    warmup_s: int,
    noise: Noise,
) -> dict[str, Any]:
    """Interleaved rounds at one connection per scenario; medians and per-round paired ratios."""
    out: dict[str, Any] = {}
    names = list(targets)
    for scenario, body_file in body_files.items():
        for target in targets.values():
            wrk(target, scenario, body_file, connections=1, seconds=warmup_s)

        def run(name: str, seconds: int, scenario: str = scenario, body_file: Path = body_file) -> WrkRun:
            return wrk(targets[name], scenario, body_file, connections=1, seconds=seconds)

        runs, attempts, disturbed = interleaved_rounds(names, run, rounds=rounds, round_s=round_s, noise=noise)
        direct = runs["direct"]
        result: dict[str, Any] = {"attempts": attempts, "disturbed_rounds_kept": disturbed, "targets": {}}
        for name, rs in runs.items():
            entry: dict[str, Any] = {
                "cpu_us_per_request": statistics.median(r.cpu_us_per_request.get("proxy", 0.0) for r in rs),
                "p50_ms": statistics.median(r.p50_ms for r in rs),
                "p99_ms": statistics.median(r.p99_ms for r in rs),
                "added_p50_ms": statistics.median(r.p50_ms - d.p50_ms for r, d in zip(rs, direct, strict=True)),
                "rps": statistics.median(r.rps for r in rs),
                "errors": sum(sum(r.errors.values()) for r in rs),
                "rounds": [asdict(r) | {"raw": None} for r in rs],
            }
            if "local" in runs and name != "direct":
                local = runs["local"]
                entry["cpu_vs_local"] = statistics.median(
                    r.cpu_us_per_request["proxy"] / max(b.cpu_us_per_request["proxy"], 1e-9)
                    for r, b in zip(rs, local, strict=True)
                )
            result["targets"][name] = entry
        out[scenario] = result
    return out


def batch_case(targets: Mapping[str, Target], body_file: Path, connections: int, seconds: int) -> dict[str, Any]:
    """One JSON run per heliport target at ``connections``: CPU per request when requests overlap."""
    out: dict[str, Any] = {}
    for name, target in targets.items():
        if name == "direct":
            continue
        run = wrk(target, "json", body_file, connections=connections, seconds=seconds)
        out[name] = {
            "cpu_us_per_request": run.cpu_us_per_request.get("proxy", 0.0),
            "p50_ms": run.p50_ms,
            "p99_ms": run.p99_ms,
            "rps": run.rps,
            "errors": sum(run.errors.values()),
        }
    return out


def check_delivery(aws: Mapping[str, Any]) -> dict[str, Any]:
    """Every request an AWS target served left exactly one message in its queue, and nothing was spooled.

    wrk counts the requests it completed; a run's last requests (one per connection) may be served
    after wrk stopped counting, so the queue may hold up to that many more, never fewer.
    """
    out: dict[str, Any] = {}
    endpoint = aws["endpoint"]
    for name, settings in aws["targets"].items():
        # A target that logs after the last byte (aws-after) may still be working through its backlog:
        # wait while the count still grows (moto takes longer per message as its queue fills).
        queued, last_growth, deadline = -1, time.monotonic(), time.monotonic() + 600
        while time.monotonic() < deadline and time.monotonic() - last_growth < 15:
            now = queued_messages(endpoint, settings["HELIPORT_QUEUE_URL"])
            if now > queued:
                queued, last_growth = now, time.monotonic()
            if queued >= SENT[name]:
                break
            time.sleep(1)
        spooled = spooled_objects(endpoint, settings["HELIPORT_BUCKET"])
        ok = SENT[name] <= queued <= SENT[name] + UNCOUNTED_BOUND[name] and spooled == 0
        out[name] = {"served": SENT[name], "uncounted_at_most": UNCOUNTED_BOUND[name], "queued": queued}
        out[name] |= {"spooled": spooled, "ok": ok}
    return out


def extension_case(
    children: Children, scratch: Path, endpoint: str, mock_url: str, model_delay_ms: int, samples: int, body: bytes
) -> dict[str, Any]:
    """Time to the last byte through Lambda's runtime side, without and with the extension hand-off (§1).

    Two Lambda entries on the AWS adapters, each behind its own stand-in of Lambda's Runtime and
    Extensions APIs (``tests/lambda_apis.py``): ``ext-off`` sends the record before the last byte
    (today's default); ``ext-on`` runs with ``HELIPORT_LAMBDA_EXTENSION=true``, so it registers as an
    internal extension and sends the record after the last byte, before it asks for the next event.
    Invocations alternate between the two; each is frozen (SIGSTOP) when Lambda would freeze it. Per
    target: ttlb (what the client waits), post-runtime time (last byte to freeze: billed, not
    waited for), heliport's CPU per invocation, and every record in its queue.
    """
    from tests.lambda_apis import LambdaApis

    names = {"ext-off": "false", "ext-on": "true"}
    apis: dict[str, LambdaApis] = {}
    procs: dict[str, Any] = {}
    urls: dict[str, str] = {}
    queues: dict[str, dict[str, str]] = {}
    headers: dict[str, str] = {"Authorization": "Bearer sk-bench-upstream-key", "Content-Type": "application/json"}
    if model_delay_ms:
        headers["x-mock-delay-ms"] = str(model_delay_ms)
    keys: dict[str, str] = {}
    try:
        for name, flag in names.items():
            api = apis[name] = LambdaApis(function_name=f"heliport-proxy-{name}")
            api.start()
            settings = queues[name] = create_resources(endpoint, name)
            port = free_port()
            env = child_env(
                PYTHONPATH=str(LAMBDA_ENTRY),
                HELIPORT_DATA_DIR=str(scratch / name),
                HELIPORT_UPSTREAM_OAI=mock_url,
                HELIPORT_LAMBDA_EXTENSION=flag,
                AWS_LAMBDA_RUNTIME_API=api.runtime_api,
                **settings,
            )
            keys[name] = create_key(env=env, timeout=120)
            procs[name] = children.start(name, lambda_argv(port), env, scratch / f"{name}.log", cwd=LAMBDA_ENTRY)
            urls[name] = f"http://{HOST}:{port}"
            deadline = time.monotonic() + 30
            while True:
                children.check_alive()
                try:
                    with urllib.request.urlopen(urls[name] + "/healthcheck", timeout=1):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{name} did not answer /healthcheck") from None
                    time.sleep(0.1)
            api.attach(procs[name])

        def invoke(name: str) -> Any:
            call_headers = {**headers, "Helicone-Auth": f"Bearer {keys[name]}"}
            invocation = apis[name].invoke("POST", urls[name] + GATEWAY_CHAT_PATH, headers=call_headers, body=body)
            if invocation.status != 200:
                raise RuntimeError(f"{name}: HTTP {invocation.status}: {invocation.body[:200]!r}")
            return invocation

        for _ in range(20):  # warm-up: connections, caches, the first SQS client
            for name in names:
                invoke(name)
        cpu_before = {name: cpu_ticks(proc.pid) for name, proc in procs.items()}
        ttlb: dict[str, list[float]] = {name: [] for name in names}
        post_runtime: dict[str, list[float]] = {name: [] for name in names}
        order = list(names)
        for index in range(samples):
            for name in order if index % 2 == 0 else order[::-1]:
                invocation = invoke(name)
                ttlb[name].append(invocation.ttlb_s * 1000)
                post_runtime[name].append(invocation.freeze_s * 1000)
        cpu_after = {name: cpu_ticks(proc.pid) for name, proc in procs.items()}
        out: dict[str, Any] = {"samples": samples, "targets": {}}
        for name in names:
            values = sorted(ttlb[name])
            queued = queued_messages(endpoint, queues[name]["HELIPORT_QUEUE_URL"])
            out["targets"][name] = {
                "ttlb_p50_ms": statistics.median(values),
                "ttlb_p90_ms": values[int(len(values) * 0.9)],
                "post_runtime_p50_ms": statistics.median(post_runtime[name]),
                "cpu_us_per_invocation": (cpu_after[name] - cpu_before[name]) / CLK_TCK * 1e6 / samples,
                "invocations": samples + 20,
                "queued": queued,
                "delivered": queued == samples + 20,
            }
        return out
    finally:
        for name, api in apis.items():
            if name in procs:
                api.shutdown()
            api.stop()


def print_report(results: Mapping[str, Any]) -> None:
    for scenario, result in results["rounds"].items():
        print(
            f"\n{scenario}, 1 connection ({result['attempts']} attempts, {result['disturbed_rounds_kept']} disturbed)"
        )
        print(f"  {'target':<10} {'CPU µs/req':>10} {'vs local':>9} {'p50 ms':>8} {'+p50 ms':>8} {'p99 ms':>8}")
        for name, e in result["targets"].items():
            ratio = f"{e['cpu_vs_local']:.2f}x" if "cpu_vs_local" in e else "-"
            print(
                f"  {name:<10} {e['cpu_us_per_request']:>10.0f} {ratio:>9} {e['p50_ms']:>8.3f} "
                f"{e['added_p50_ms']:>8.3f} {e['p99_ms']:>8.3f}"
            )
    batch = results.get("batch")
    if batch:
        print(f"\njson, {results['settings']['batch_connections']} connections (one run each)")
        for name, e in batch.items():
            print(
                f"  {name:<10} {e['cpu_us_per_request']:>10.0f} µs/req {e['rps']:>8.0f} req/s p50 {e['p50_ms']:.3f} ms"
            )
    extension = results.get("extension")
    if extension:
        print(f"\nthrough Lambda's runtime side ({extension['samples']} alternating invocations each, json)")
        print(f"  {'target':<10} {'ttlb p50':>9} {'ttlb p90':>9} {'post-runtime p50':>17} {'CPU µs/inv':>11}")
        for name, e in extension["targets"].items():
            print(
                f"  {name:<10} {e['ttlb_p50_ms']:>9.2f} {e['ttlb_p90_ms']:>9.2f} {e['post_runtime_p50_ms']:>17.2f} "
                f"{e['cpu_us_per_invocation']:>11.0f}  queued {e['queued']} of {e['invocations']}"
            )
    print("\ndelivery (queue messages == requests served, nothing spooled):")
    for name, e in results["delivery"].items():
        print(
            f"  {name:<10} served {e['served']}, queued {e['queued']}, spooled {e['spooled']}: "
            + ("ok" if e["ok"] else "LOST")
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--round-seconds", type=int, default=3)
    parser.add_argument("--warmup-seconds", type=int, default=2)
    parser.add_argument("--batch-connections", type=int, default=16, help="0 leaves the batching run out")
    parser.add_argument(
        "--targets",
        default="local,aws-sdk,aws",
        help="comma-separated, of local, aws-sdk, aws and aws-after (left out by default: at one connection "
        "its records share batches, which one request per environment on Lambda never does)",
    )
    parser.add_argument(
        "--model-delay-ms",
        type=int,
        default=20,
        help="the mock model's wait before answering (x-mock-delay-ms); 0 answers at once",
    )
    parser.add_argument(
        "--extension-samples", type=int, default=200, help="invocations per target through Lambda's APIs (0: none)"
    )
    parser.add_argument("--quick", action="store_true", help="2 rounds of 1 s: a smoke run, not evidence")
    parser.add_argument("--out", type=Path, help="where the raw JSON goes (default bench/results/...)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch dir (logs)")
    parser.add_argument(
        "--moto",
        choices=("keepalive", "werkzeug"),
        default="keepalive",
        help="moto's app behind a keep-alive server (default), or moto_server itself (a connect per call)",
    )
    parser.add_argument("--serve-moto", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_moto:
        serve_moto(args.serve_moto)
        return 0
    if args.quick:
        args.rounds, args.round_seconds, args.warmup_seconds = 2, 1, 1
        args.extension_samples = min(args.extension_samples, 30)
    names = [n for n in args.targets.split(",") if n]
    signal.signal(signal.SIGTERM, raise_on_sigterm)
    started = datetime.now(UTC)
    results: dict[str, Any] = {
        "machine": machine(),
        "settings": {
            "rounds": args.rounds,
            "round_s": args.round_seconds,
            "warmup_s": args.warmup_seconds,
            "batch_connections": args.batch_connections,
            "targets": names,
            "moto": args.moto,
            "model_delay_ms": args.model_delay_ms,
        },
        "target_cpu_us_per_json_request": TARGET_CPU_US,
    }
    children = Children()
    with scratch_dir(args.keep) as scratch:
        try:
            targets, aws = start_targets(children, scratch, names, args.moto, args.model_delay_ms)
            bodies, files = write_bodies(scratch)
            for target in targets.values():
                wait_ready(target, bodies, children)
            noise = Noise(retries=1, max_wait_s=5.0)
            results["rounds"] = measure(
                targets,
                files,
                rounds=args.rounds,
                round_s=args.round_seconds,
                warmup_s=args.warmup_seconds,
                noise=noise,
            )
            if args.batch_connections:
                results["batch"] = batch_case(targets, files["json"], args.batch_connections, args.round_seconds * 2)
            children.check_alive()
            results["delivery"] = check_delivery(aws)
            if args.extension_samples and aws["endpoint"]:
                mock_url = targets["direct"].url.removesuffix("/v1/chat/completions")
                results["extension"] = extension_case(
                    children,
                    scratch,
                    aws["endpoint"],
                    mock_url,
                    args.model_delay_ms,
                    args.extension_samples,
                    bodies["json"],
                )
            results["server_errors"] = {name: log_errors(t.log) for name, t in targets.items()}
        finally:
            children.stop_all()
    results["finished_at"] = datetime.now(UTC).isoformat()
    print_report(results)
    write_results("deployed-path", started, results, args.out)
    delivered = all(e["ok"] for e in results["delivery"].values())
    delivered &= all(e["delivered"] for e in results.get("extension", {}).get("targets", {}).values())
    return 0 if delivered else 1


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:
        print("deployed_path: interrupted; every child process was stopped", file=sys.stderr)
        raise SystemExit(130) from None
