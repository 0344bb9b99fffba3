"""Time to last byte on Lambda before and after the extension hand-off (issue 24 §1), in one run.

    .venv/bin/python bench/extension_handoff.py [--rounds 5 --per-round 20]      (~1 min)

Two copies of the proxy's Lambda entry (``functions/proxy/run.sh``: uvicorn with its flags) with the AWS
adapters against moto's server (DynamoDB keys, SQS log queue, S3), the mock provider as the upstream,
each behind its own stand-in of Lambda (``tests/lambda_apis.py``: the Extensions API, and the Web
Adapter's relay that sends INVOKE, forwards the request over HTTP, and ``SIGSTOP``s the process when
every extension is back in ``next``):

* ``before``: ``HELIPORT_LAMBDA_EXTENSION=false``, today's order: the record goes to SQS before the
  response's terminating chunk;
* ``after``: ``HELIPORT_LAMBDA_EXTENSION=true``: the proxy registers as an internal extension, ends
  the response first, and holds the freeze until the record is in SQS.

Rounds interleave the two (the order flips every round) for a JSON chat completion and an SSE
stream. Per target and kind it prints the medians of time to last byte (what the client waits) and
of the post-runtime duration (last byte -> freeze: billed, not waited for), and per kind the ratio
of the median ttlb before/after. Raw samples go to ``bench/results/extension-handoff-<UTC>.json``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.run import write_results  # after the path tweak
from tests.aws import REGION
from tests.lambda_apis import LambdaApis
from tests.mock_provider import MockProvider
from tests.test_lambda_extension import CHAT, Proxy, _chat, make_deployment, start_proxy

TARGETS = {"before": "false", "after": "true"}


def _median_ms(values: list[float]) -> float:
    return round(statistics.median(values) * 1000, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--per-round", type=int, default=20, help="invokes per target, kind and round")
    args = parser.parse_args()

    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's access log, one line per call

    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        os.environ[name] = value
    os.environ["AWS_DEFAULT_REGION"] = REGION
    started = datetime.now(UTC)
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    mock = MockProvider(record_requests=False).start()
    stand_ins: dict[str, LambdaApis] = {}
    proxies: dict[str, Proxy] = {}
    samples: dict[str, dict[str, dict[str, list[float]]]] = {
        t: {k: {"ttlb": [], "post_runtime": []} for k in ("json", "sse")} for t in TARGETS
    }
    try:
        deployment = make_deployment(endpoint)
        sqs = boto3.client("sqs", region_name=REGION, endpoint_url=endpoint)
        queue = sqs.create_queue(QueueName=f"heliport-logs-{uuid.uuid4().hex[:12]}")["QueueUrl"]
        for target, flag in TARGETS.items():
            stand_ins[target] = LambdaApis().start()
            workdir = Path(tempfile.mkdtemp(prefix=f"extension-{target}-"))
            proxies[target] = start_proxy(
                workdir, stand_ins[target], deployment, queue, endpoint, mock.url, HELIPORT_LAMBDA_EXTENSION=flag
            )
        registered = {t: [e.name for e in a.registered] for t, a in stand_ins.items()}
        print(f"extensions registered: {registered}")
        for target in TARGETS:  # warm-up: connections, first-use imports
            for stream in (False, True):
                headers, body = _chat(stream, deployment.key, str(uuid.uuid4()))
                stand_ins[target].invoke("POST", proxies[target].url + CHAT, headers=headers, body=body)
        order = list(TARGETS)
        for round_no in range(args.rounds):
            for target in order:
                for kind, stream in (("json", False), ("sse", True)):
                    for _ in range(args.per_round):
                        headers, body = _chat(stream, deployment.key, str(uuid.uuid4()))
                        inv = stand_ins[target].invoke("POST", proxies[target].url + CHAT, headers=headers, body=body)
                        assert inv.status == 200 and inv.frozen_in_time, (inv.status, inv.body[:200])
                        samples[target][kind]["ttlb"].append(inv.ttlb_s)
                        samples[target][kind]["post_runtime"].append(inv.freeze_s)
            order.reverse()
            print(f"round {round_no + 1}/{args.rounds} done")
        for kind in ("json", "sse"):
            print(f"\n{kind}: median over {args.rounds * args.per_round} invokes per target")
            for target in TARGETS:
                s = samples[target][kind]
                print(
                    f"  {target:6} ttlb {_median_ms(s['ttlb']):7.2f} ms   "
                    f"post-runtime {_median_ms(s['post_runtime']):7.2f} ms"
                )
            before = statistics.median(samples["before"][kind]["ttlb"])
            after = statistics.median(samples["after"][kind]["ttlb"])
            print(f"  ttlb before/after = {before / after:.2f}x  (saved {1000 * (before - after):.2f} ms)")
        summary: dict[str, Any] = {
            t: {k: {m: _median_ms(v) for m, v in samples[t][k].items()} for k in samples[t]} for t in samples
        }
        write_results("extension-handoff", started, {"medians_ms": summary, "samples_s": samples, "args": vars(args)})
    finally:
        for target, proxy in proxies.items():
            stand_ins[target].shutdown()
            del proxy
        for stand_in in stand_ins.values():
            stand_in.stop()
        mock.stop()
        moto.stop()


if __name__ == "__main__":
    main()
