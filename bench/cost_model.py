"""What one million proxied requests cost on each way of running heliport, from list prices.

    .venv/bin/python -m bench.cost_model            # print the tables
    .venv/bin/python -m bench.cost_model --write    # and (re)write docs/cost.md from them

Four ways of serving the same traffic are priced, each line item by line item, for JSON requests and
for 5 s streams at 1, 10 and 100 million requests a month:

* **on-demand Lambda** behind API Gateway's REST API (template.yaml's default, ``ProxyCompute=OnDemand``),
  at the memory size template.yaml gives the proxy (read from the file);
* **Lambda Managed Instances** (``ProxyCompute=ManagedInstances``): EC2 instances plus Lambda's management
  fee plus the request charge, the instance count following from the concurrency and CPU each request
  needs and Lambda's minimum of three instances;
* the **Fargate** container of infra/terraform's realtime module (the same package under uvicorn, behind an
  ALB), at that module's task size and minimum;
* what **Cloudflare Workers** (Standard usage model, where Helicone's worker runs) would bill for the
  proxy's part of the same traffic.

Every AWS mode also pays the logging pipeline: SQS, DynamoDB key look-ups, S3 PUTs for bodies (today one
per request; with small bodies inline in the row only the large ones), the log consumer Lambda, Aurora
Serverless v2 and the interface endpoints its private subnets need. Fixed monthly charges (Aurora's
running minimum, NAT gateways, endpoints, the ALB, Managed Instances' three instances, Fargate's one
task, Workers' subscription) are spread over the month's requests, which is where each mode wins or
loses. AWS free tiers are not counted (they are per account and small); Workers' included usage is,
because it is what the plan's price buys.

Every price carries its source and the date it was read (:data:`PRICES`); every number that is not a
price is either measured (named with where it was measured) or an assumption named as one
(:data:`ASSUMPTIONS`). tests/bench/test_cost_model.py checks the arithmetic on hand-computed lines, that
each price has a source, and that docs/cost.md is what this module writes.
"""

from __future__ import annotations

import argparse
import math
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "template.yaml"
DOC = ROOT / "docs" / "cost.md"

#: When the prices below were read (US East (N. Virginia), arm64 where there is a choice).
READ = "2026-12-06"
HOURS_PER_MONTH = 730.0
MILLION = 1_000_000
VOLUMES_M = (1, 10, 100)

LAMBDA_PRICING = "https://aws.amazon.com/lambda/pricing/"
CLOUDFLARE_PRICING = "https://developers.cloudflare.com/workers/platform/pricing/"


@dataclass(frozen=True)
class Price:
    value: float
    unit: str
    source: str
    read: str = READ


@dataclass(frozen=True)
class Assumption:
    value: float
    what: str
    #: Where the number comes from: a measurement (named), a setting of this repository, or why it was chosen.
    basis: str


PRICES: dict[str, Price] = {
    "lambda_gb_s": Price(
        0.0000133334, "USD per GB-second of on-demand duration, arm64 (first 7.5 billion GB-s a month)", LAMBDA_PRICING
    ),
    "lambda_request": Price(0.20 / MILLION, "USD per request (on-demand and Managed Instances alike)", LAMBDA_PRICING),
    "lmi_management_fee": Price(
        0.15, "Managed Instances management fee, as a fraction of the instance's EC2 on-demand price", LAMBDA_PRICING
    ),
    "ec2_m7g_large_hour": Price(
        0.0816,
        "USD per hour, m7g.large (2 vCPU, 8 GiB, Graviton3), Linux on-demand",
        "https://aws.amazon.com/ec2/pricing/on-demand/",
    ),
    "fargate_vcpu_hour": Price(
        0.03238, "USD per vCPU-hour, Fargate Linux/ARM", "https://aws.amazon.com/fargate/pricing/"
    ),
    "fargate_gb_hour": Price(0.00356, "USD per GB-hour, Fargate Linux/ARM", "https://aws.amazon.com/fargate/pricing/"),
    "apigw_rest_request": Price(
        3.50 / MILLION,
        "USD per REST API request (first 333 million a month); a streamed response counts one per 10 MB sent",
        "https://aws.amazon.com/api-gateway/pricing/",
    ),
    "alb_hour": Price(0.0225, "USD per ALB-hour", "https://aws.amazon.com/elasticloadbalancing/pricing/"),
    "alb_lcu_hour": Price(0.008, "USD per LCU-hour", "https://aws.amazon.com/elasticloadbalancing/pricing/"),
    "sqs_request": Price(
        0.40 / MILLION,
        "USD per standard-queue request (each 64 KB of payload is one request)",
        "https://aws.amazon.com/sqs/pricing/",
    ),
    "dynamodb_read": Price(
        0.125 / MILLION, "USD per on-demand read request unit", "https://aws.amazon.com/dynamodb/pricing/on-demand/"
    ),
    "s3_put": Price(0.005 / 1000, "USD per PUT request, S3 Standard", "https://aws.amazon.com/s3/pricing/"),
    "aurora_acu_hour": Price(
        0.12, "USD per ACU-hour, Aurora Serverless v2 (Aurora Standard)", "https://aws.amazon.com/rds/aurora/pricing/"
    ),
    "aurora_io": Price(
        0.20 / MILLION, "USD per I/O request, Aurora Standard", "https://aws.amazon.com/rds/aurora/pricing/"
    ),
    "vpce_az_hour": Price(
        0.01, "USD per interface endpoint per AZ-hour", "https://aws.amazon.com/privatelink/pricing/"
    ),
    "vpce_gb": Price(
        0.01, "USD per GB processed by an interface endpoint", "https://aws.amazon.com/privatelink/pricing/"
    ),
    "nat_hour": Price(0.045, "USD per NAT gateway-hour", "https://aws.amazon.com/vpc/pricing/"),
    "nat_gb": Price(0.045, "USD per GB processed by a NAT gateway", "https://aws.amazon.com/vpc/pricing/"),
    "workers_month": Price(5.0, "USD per month, Workers Paid (Standard usage model) minimum", CLOUDFLARE_PRICING),
    "workers_included_requests": Price(
        10 * MILLION, "requests a month included in the subscription", CLOUDFLARE_PRICING
    ),
    "workers_included_cpu_ms": Price(30 * MILLION, "CPU milliseconds a month included", CLOUDFLARE_PRICING),
    "workers_request": Price(0.30 / MILLION, "USD per request beyond the included ones", CLOUDFLARE_PRICING),
    "workers_cpu_ms": Price(0.02 / MILLION, "USD per CPU millisecond beyond the included ones", CLOUDFLARE_PRICING),
}

ISSUE_24 = (
    "issue 24 section 2, measured: the proxy's Lambda entry under uvicorn, wrk at one connection, "
    "process CPU / requests"
)

ASSUMPTIONS: dict[str, Assumption] = {
    "cpu_json_s": Assumption(
        2178e-6,
        "heliport CPU per JSON request, deployed path (AWS adapters, record to SQS by the lean sender)",
        "bench/deployed_path.py, bench/results/deployed-path-20261206T072629Z.json: the proxy's Lambda entry "
        "against moto's server, wrk at one connection, the model answering after 20 ms (1,333 us with the local "
        "adapters and 3,125 us with the SDK's send in the same run; issue 24 measured 1,460 us for the SDK path "
        "without the model's wait)",
    ),
    "cpu_sse_s": Assumption(
        2241e-6,
        "heliport CPU per streamed request, deployed path",
        "bench/deployed_path.py, same run (1,591 us local adapters, 3,333 us SDK send)",
    ),
    "wall_json_s": Assumption(
        1.0, "seconds the proxy waits on the model for a JSON answer", "assumption: a short answer"
    ),
    "wall_sse_s": Assumption(5.0, "seconds a stream lasts", "the issue's 5 s stream"),
    "provider_bytes_json": Assumption(8_000, "bytes to and from the provider per JSON request", "assumption"),
    "provider_bytes_sse": Assumption(24_000, "bytes to and from the provider per stream", "assumption"),
    "record_bytes": Assumption(6_000, "bytes of one log record on SQS (bodies inline up to SQS's size)", "assumption"),
    "lambda_mb_per_vcpu": Assumption(
        1769,
        "MB of Lambda memory that buys one vCPU",
        "https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html",
    ),
    "handoff_s": Assumption(
        0.010,
        "seconds of billed duration for the log hand-off (one SQS round trip; before the last byte, or after it "
        "with the extension, billed either way)",
        "assumption: an in-region SQS SendMessage",
    ),
    "key_miss_fraction": Assumption(
        0.01, "key look-ups per request that miss the per-process cache and read DynamoDB", "assumption (cache TTL)"
    ),
    "sqs_requests_per_record": Assumption(
        1.2,
        "SQS requests per record: one send, a tenth of a ReceiveMessage and of a DeleteMessageBatch",
        "batches of 10",
    ),
    "large_body_fraction": Assumption(
        0.05,
        "requests whose bodies are too large to stay in the row (inline bodies), so still one S3 PUT",
        "assumption until the inline-bodies measurement (issue 24 section 4) gives the threshold's share",
    ),
    "consumer_s_per_record": Assumption(
        0.002, "log consumer Lambda seconds per record at 1,024 MB (batches of up to 100)", "assumption"
    ),
    "consumer_records_per_invoke": Assumption(50, "records per consumer invocation", "assumption (BatchSize 100)"),
    "aurora_min_acu": Assumption(
        0.5,
        "ACUs Aurora runs at while awake: with any traffic in each hour it never reaches its 1 h auto-pause",
        "infra/terraform/modules/aurora (min_capacity 0, seconds_until_auto_pause 3600); 0.5 the smallest running size",
    ),
    "aurora_rows_per_acu_s": Assumption(200, "rows a second one ACU stores", "assumption"),
    "aurora_io_per_row": Assumption(0.5, "billed I/O requests per stored row (batched commits)", "assumption"),
    "az_count": Assumption(
        2, "availability zones of the VPC (NAT gateways, endpoints)", "infra/terraform network az_count"
    ),
    "consumer_endpoints": Assumption(
        2,
        "interface endpoints the consumer's private subnets need (Secrets Manager, SQS)",
        "no NAT in the Terraform VPC",
    ),
    "lmi_concurrency": Assumption(
        64,
        "requests one Managed Instances environment serves at once",
        "template.yaml PerExecutionEnvironmentMaxConcurrency",
    ),
    "lmi_env_vcpu": Assumption(1, "vCPU per environment (2 GB at 2 GiB per vCPU)", "template.yaml MemorySize 2048"),
    "lmi_envs_per_instance": Assumption(
        2, "environments on one m7g.large (2 vCPU)", "vCPU-bound; Lambda picks the type"
    ),
    "lmi_min_instances": Assumption(3, "instances Managed Instances keeps for AZ resilience", LAMBDA_PRICING),
    "cpu_target": Assumption(0.6, "CPU utilisation the scalers aim at", "template.yaml and the realtime module"),
    "fargate_task_vcpu": Assumption(0.5, "vCPU per Fargate task", "infra/terraform/modules/realtime cpu 512"),
    "fargate_task_gb": Assumption(1.0, "GB per Fargate task", "infra/terraform/modules/realtime memory 1024"),
    "fargate_min_tasks": Assumption(1, "tasks the service keeps", "infra/terraform/modules/realtime min_capacity"),
    "fargate_concurrency": Assumption(
        64, "requests one task serves at once (one uvicorn process)", "the Managed Instances setting, per process"
    ),
}


def price(name: str) -> float:
    return PRICES[name].value


def assume(name: str) -> float:
    return ASSUMPTIONS[name].value


def template_memory_mb(template: Path = TEMPLATE) -> int:
    """The proxy's on-demand memory size: ProxyFunction's own MemorySize (a number, or the on-demand branch of
    its ``!If`` on ProxyCompute), else the Globals'."""
    text = template.read_text(encoding="utf-8")
    proxy = re.search(r"\n  ProxyFunction:\n(?P<body>(?:(?:    .*)?\n)+?)  \S", text)
    if proxy is not None:
        own = re.search(r"^      MemorySize: (\d+)\s*$", proxy["body"], re.MULTILINE)
        if own is not None:
            return int(own[1])
        # ``!If [ProxyOnManagedInstances, <managed>, <on demand>]``: the on-demand branch.
        chosen = re.search(
            r"^      MemorySize: !If \[ProxyOnManagedInstances, \d+, (\d+)\]\s*$", proxy["body"], re.MULTILINE
        )
        if chosen is not None:
            return int(chosen[1])
    globals_ = re.search(r"\nGlobals:\n  Function:\n(?P<body>(?:    .*\n)+)", text)
    assert globals_ is not None, "template.yaml has no Globals.Function"
    size = re.search(r"^    MemorySize: (\d+)\s*$", globals_["body"], re.MULTILINE)
    assert size is not None, "template.yaml's Globals give no MemorySize"
    return int(size[1])


@dataclass(frozen=True)
class Workload:
    key: str
    title: str
    wall_s: float
    cpu_s: float
    provider_bytes: float


def workloads() -> tuple[Workload, Workload]:
    return (
        Workload("json", "JSON requests", assume("wall_json_s"), assume("cpu_json_s"), assume("provider_bytes_json")),
        Workload("sse", "5 s streams", assume("wall_sse_s"), assume("cpu_sse_s"), assume("provider_bytes_sse")),
    )


@dataclass(frozen=True)
class Line:
    item: str
    monthly: float
    #: "proxy" (compute, front door, egress) or "pipeline" (the logging path every AWS mode shares).
    tier: str
    #: Which S3 variant a line belongs to: "" both, "today" one PUT per request, "inline" large bodies only.
    variant: str = ""


@dataclass(frozen=True)
class Mode:
    key: str
    title: str
    lines: tuple[Line, ...]
    note: str = ""

    def total(self, variant: str = "today", tier: str | None = None) -> float:
        return sum(
            line.monthly for line in self.lines if line.variant in ("", variant) and (tier is None or line.tier == tier)
        )


def _rate(requests: float) -> float:
    """Requests a second, spread evenly over the month."""
    return requests / (HOURS_PER_MONTH * 3600)


def pipeline_lines(requests: float) -> list[Line]:
    """The logging path every AWS mode pays: queue, key look-ups, bodies, consumer, database, endpoints."""
    rows_per_s = _rate(requests)
    acu = max(assume("aurora_min_acu"), rows_per_s / assume("aurora_rows_per_acu_s"))
    consumer_gb_s = requests * assume("consumer_s_per_record") * 1.0  # at 1,024 MB = 1 GB
    record_gb = requests * assume("record_bytes") / 1e9
    return [
        Line(
            "SQS (send, receive, delete)",
            requests * assume("sqs_requests_per_record") * price("sqs_request"),
            "pipeline",
        ),
        Line(
            "DynamoDB (key look-ups missing the cache)",
            requests * assume("key_miss_fraction") * 0.5 * price("dynamodb_read"),
            "pipeline",
        ),
        Line("S3 PUTs, bodies (today: one per request)", requests * price("s3_put"), "pipeline", "today"),
        Line(
            "S3 PUTs, bodies (inline: large bodies only)",
            requests * assume("large_body_fraction") * price("s3_put"),
            "pipeline",
            "inline",
        ),
        Line(
            "Log consumer Lambda",
            consumer_gb_s * price("lambda_gb_s")
            + requests / assume("consumer_records_per_invoke") * price("lambda_request"),
            "pipeline",
        ),
        Line(
            "Aurora Serverless v2 (ACU-hours, I/O)",
            acu * HOURS_PER_MONTH * price("aurora_acu_hour")
            + requests * assume("aurora_io_per_row") * price("aurora_io"),
            "pipeline",
        ),
        Line(
            "Interface endpoints (consumer: Secrets Manager, SQS)",
            assume("consumer_endpoints") * assume("az_count") * HOURS_PER_MONTH * price("vpce_az_hour")
            + record_gb * price("vpce_gb"),
            "pipeline",
        ),
    ]


def _nat_lines(requests: float, workload: Workload) -> list[Line]:
    """A NAT gateway per AZ: the VPC's only way to the providers (and to CloudWatch Logs)."""
    gateways = assume("az_count") * HOURS_PER_MONTH * price("nat_hour")
    data = requests * workload.provider_bytes / 1e9 * price("nat_gb")
    return [Line("NAT gateways (per AZ) and their data", gateways + data, "proxy")]


def on_demand(requests: float, workload: Workload, memory_mb: int) -> Mode:
    gb = memory_mb / 1024
    # Lambda gives CPU in proportion to memory: below one vCPU the CPU work stretches by that share.
    cpu_wall = workload.cpu_s * max(1.0, assume("lambda_mb_per_vcpu") / memory_mb)
    billed_s = workload.wall_s + cpu_wall + assume("handoff_s")
    lines = [
        Line(
            f"Lambda duration ({memory_mb} MB, {billed_s:.3f} s billed)",
            requests * billed_s * gb * price("lambda_gb_s"),
            "proxy",
        ),
        Line("Lambda requests", requests * price("lambda_request"), "proxy"),
        Line("API Gateway REST API", requests * price("apigw_rest_request"), "proxy"),
        *pipeline_lines(requests),
    ]
    return Mode(
        "on_demand", f"On-demand Lambda ({memory_mb} MB)", tuple(lines), "billed for wall time: the model's wait"
    )


def lmi_instances(requests: float, workload: Workload) -> int:
    """Managed Instances: environments for the concurrency (Little's law) and the CPU, at least three instances."""
    rate = _rate(requests)
    concurrency = rate * workload.wall_s
    by_concurrency = math.ceil(concurrency / assume("lmi_concurrency"))
    by_cpu = math.ceil(rate * workload.cpu_s / (assume("lmi_env_vcpu") * assume("cpu_target")))
    environments = max(by_concurrency, by_cpu, 1)
    return max(int(assume("lmi_min_instances")), math.ceil(environments / assume("lmi_envs_per_instance")))


def managed_instances(requests: float, workload: Workload) -> Mode:
    instances = lmi_instances(requests, workload)
    ec2 = instances * HOURS_PER_MONTH * price("ec2_m7g_large_hour")
    lines = [
        Line(f"EC2 instances ({instances} x m7g.large)", ec2, "proxy"),
        Line("Managed Instances management fee (15 %)", ec2 * price("lmi_management_fee"), "proxy"),
        Line("Lambda requests", requests * price("lambda_request"), "proxy"),
        Line("API Gateway REST API", requests * price("apigw_rest_request"), "proxy"),
        *_nat_lines(requests, workload),
        *pipeline_lines(requests),
    ]
    return Mode("lmi", "Lambda Managed Instances", tuple(lines), "billed for instances: the wait is nearly free")


def fargate_tasks(requests: float, workload: Workload) -> int:
    rate = _rate(requests)
    by_concurrency = math.ceil(rate * workload.wall_s / assume("fargate_concurrency"))
    by_cpu = math.ceil(rate * workload.cpu_s / (assume("fargate_task_vcpu") * assume("cpu_target")))
    return max(int(assume("fargate_min_tasks")), by_concurrency, by_cpu)


def alb_lcus(requests: float, workload: Workload) -> float:
    """Average LCUs: the largest of new connections (25/s), active connections (3,000/min), bytes (1 GB/h)."""
    rate = _rate(requests)
    new = rate / 25
    active = rate * workload.wall_s / 3000
    processed = rate * 3600 * workload.provider_bytes / 1e9
    return max(new, active, processed)


def fargate(requests: float, workload: Workload) -> Mode:
    tasks = fargate_tasks(requests, workload)
    task_hour = assume("fargate_task_vcpu") * price("fargate_vcpu_hour") + assume("fargate_task_gb") * price(
        "fargate_gb_hour"
    )
    alb = HOURS_PER_MONTH * (price("alb_hour") + alb_lcus(requests, workload) * price("alb_lcu_hour"))
    lines = [
        Line(f"Fargate tasks ({tasks} x 0.5 vCPU / 1 GB)", tasks * HOURS_PER_MONTH * task_hour, "proxy"),
        Line("Application Load Balancer (hours, LCUs)", alb, "proxy"),
        *_nat_lines(requests, workload),
        *pipeline_lines(requests),
    ]
    return Mode("fargate", "Fargate (realtime module's task)", tuple(lines), "one task by default: no AZ redundancy")


def workers(requests: float, workload: Workload) -> Mode:
    cpu_ms = requests * workload.cpu_s * 1000
    lines = [
        Line("Workers Paid subscription", price("workers_month"), "proxy"),
        Line(
            "Workers requests beyond the included",
            max(0.0, requests - price("workers_included_requests")) * price("workers_request"),
            "proxy",
        ),
        Line(
            "Workers CPU time beyond the included",
            max(0.0, cpu_ms - price("workers_included_cpu_ms")) * price("workers_cpu_ms"),
            "proxy",
        ),
    ]
    return Mode("workers", "Cloudflare Workers (proxy only)", tuple(lines), "billed for CPU time, never for the wait")


def modes(requests: float, workload: Workload, memory_mb: int) -> list[Mode]:
    return [
        on_demand(requests, workload, memory_mb),
        managed_instances(requests, workload),
        fargate(requests, workload),
        workers(requests, workload),
    ]


# --- the report -----------------------------------------------------------------------------------------


def _usd(value: float) -> str:
    return f"${value:,.2f}" if value >= 0.995 or value == 0 else f"${value:,.3f}"


def _mode_table(workload: Workload, memory_mb: int, key: str) -> list[str]:
    by_volume = {
        volume: next(m for m in modes(volume * MILLION, workload, memory_mb) if m.key == key) for volume in VOLUMES_M
    }
    first = by_volume[VOLUMES_M[0]]
    header = "| Line item, USD per 1M requests | " + " | ".join(f"{v}M/month" for v in VOLUMES_M) + " |"
    out = [f"**{first.title}**: {first.note}.", "", header, "|---|" + "---:|" * len(VOLUMES_M)]
    for index, line in enumerate(first.lines):
        # Item names may carry counts that change with the volume (instances, tasks): name them generically.
        item = re.sub(r" \((\d+ x [^)]*|[\d.]+ s billed[^)]*|\d+ MB, [^)]*)\)", "", line.item)
        cells = [_usd(by_volume[v].lines[index].monthly / v) for v in VOLUMES_M]
        out.append(f"| {item} | " + " | ".join(cells) + " |")
    if key != "workers":
        for variant, label in (("today", "bodies in S3"), ("inline", "small bodies inline")):
            cells = [_usd(by_volume[v].total(variant) / v) for v in VOLUMES_M]
            out.append(f"| **Total ({label})** | " + " | ".join(f"**{c}**" for c in cells) + " |")
        cells = [_usd(by_volume[v].total("inline", "proxy") / v) for v in VOLUMES_M]
        out.append("| of which the proxy tier | " + " | ".join(cells) + " |")
        sizes = [re.search(r"\((\d+) x", line.item) for line in (by_volume[v].lines[0] for v in VOLUMES_M)]
        if all(sizes):
            out += [
                "",
                "Instances or tasks: "
                + ", ".join(f"{v}M: {s[1]}" for v, s in zip(VOLUMES_M, sizes, strict=True) if s)
                + ".",
            ]
    else:
        cells = [_usd(by_volume[v].total() / v) for v in VOLUMES_M]
        out.append("| **Total** | " + " | ".join(f"**{c}**" for c in cells) + " |")
    return out


def summary(memory_mb: int) -> list[tuple[str, str, int, dict[str, float]]]:
    """(workload, tier, volume, {mode title: USD per 1M}) for the comparison table."""
    rows: list[tuple[str, str, int, dict[str, float]]] = []
    for workload in workloads():
        for volume in VOLUMES_M:
            found = modes(volume * MILLION, workload, memory_mb)
            proxy = {m.title: (m.total() if m.key == "workers" else m.total("inline", "proxy")) / volume for m in found}
            rows.append((workload.title, "proxy tier", volume, proxy))
    return rows


def _winner(costs: dict[str, float]) -> str:
    aws = {title: cost for title, cost in costs.items() if not title.startswith("Cloudflare")}
    return min(aws, key=aws.__getitem__)


def render(memory_mb: int | None = None) -> str:
    memory_mb = memory_mb or template_memory_mb()
    json_load, sse_load = workloads()
    out = [
        "# What heliport costs to run",
        "",
        "<!-- Generated by bench/cost_model.py (`.venv/bin/python -m bench.cost_model --write`): edit that. -->",
        "",
        f"Cost per million proxied requests, from list prices read on {READ} (US East (N. Virginia), arm64),",
        "for JSON requests and 5 s streams at 1, 10 and 100 million requests a month, for the ways heliport",
        f"can run: on-demand Lambda at template.yaml's memory size ({memory_mb} MB), Lambda Managed Instances",
        "(`ProxyCompute=ManagedInstances`), the Fargate task of infra/terraform's realtime module, and what",
        "Cloudflare Workers would bill for the proxy's part of the same traffic (Helicone's platform). Fixed",
        "monthly charges are spread over the month's requests. AWS free tiers are left out; Workers' included",
        "usage is counted, since the plan's price buys it.",
        "",
        "## Where each mode wins",
        "",
    ]
    out += _prose(memory_mb)
    out += ["", "## Comparison: the proxy tier, USD per 1M requests", ""]
    titles = [m.title for m in modes(MILLION, json_load, memory_mb)]
    out += [
        "| Workload | Requests/month | " + " | ".join(titles) + " | Cheapest on AWS |",
        "|---|---:|" + "---:|" * len(titles) + "---|",
    ]
    for workload_title, _, volume, costs in summary(memory_mb):
        cells = " | ".join(_usd(costs[title]) for title in titles)
        out.append(f"| {workload_title} | {volume}M | {cells} | {_winner(costs)} |")
    out += [
        "",
        "The proxy tier is compute, the front door (API Gateway or the ALB) and the way out to the providers",
        "(NAT). Every AWS mode adds the logging pipeline below; Workers' figure leaves out Helicone's own log",
        "pipeline, which is not priced here.",
        "",
    ]
    for workload in (json_load, sse_load):
        out += [
            f"## {workload.title}: line items",
            "",
            f"{workload.wall_s:g} s of waiting on the model, {workload.cpu_s * 1e6:,.0f} us of heliport CPU "
            "per request.",
            "",
        ]
        for key in ("on_demand", "lmi", "fargate", "workers"):
            out += [*_mode_table(workload, memory_mb, key), ""]
    out += ["## Prices", "", "| Price | Value | Unit | Source | Read |", "|---|---:|---|---|---|"]
    for name, item in PRICES.items():
        out.append(f"| `{name}` | {item.value:.10g} | {item.unit} | <{item.source}> | {item.read} |")
    out += [
        "",
        "The AWS figures are the pages' US East (N. Virginia) list prices; the on-demand EC2 page and Lambda's",
        "page render their tables in the browser, so those figures were read from stored copies of the pages",
        "and checked against second sources on the same date.",
        "",
        "## Measured numbers and assumptions",
        "",
        "| Name | Value | What | Basis |",
        "|---|---:|---|---|",
    ]
    for name, assumption in ASSUMPTIONS.items():
        out.append(f"| `{name}` | {assumption.value:.6g} | {assumption.what} | {assumption.basis} |")
    out += [
        "",
        "Storage is left out: it grows with retention, not with a month's traffic. Inline bodies move bytes",
        "from S3 Standard into Aurora's storage, which costs more per GB-month; what they save is the PUT.",
        "",
    ]
    return "\n".join(out)


def _prose(memory_mb: int) -> list[str]:
    json_load, sse_load = workloads()
    low = {m.key: m for m in modes(1 * MILLION, sse_load, memory_mb)}
    high = {m.key: m for m in modes(100 * MILLION, sse_load, memory_mb)}
    json_low = {m.key: m for m in modes(1 * MILLION, json_load, memory_mb)}
    json_high = {m.key: m for m in modes(100 * MILLION, json_load, memory_mb)}

    def per_m(mode: Mode, volume: int) -> str:
        return _usd(mode.total("inline", "proxy") / volume)

    crossover = next(
        (
            volume
            for volume in (1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 70, 100)
            if managed_instances(volume * MILLION, sse_load).total("inline", "proxy")
            < on_demand(volume * MILLION, sse_load, memory_mb).total("inline", "proxy")
        ),
        None,
    )
    s3_today = low["on_demand"].total("today") - low["on_demand"].total("inline")
    return [
        f"- **Low volume (about 1M a month): on-demand Lambda.** It has no floor: JSON requests cost "
        f"{per_m(json_low['on_demand'], 1)} per 1M in the proxy tier and 5 s streams {per_m(low['on_demand'], 1)}, "
        f"while Managed Instances' three instances and NAT gateways cost {per_m(low['lmi'], 1)} per 1M at that "
        f"volume and Fargate's task, ALB and NAT {per_m(low['fargate'], 1)}.",
        f"- **Streams: anything but on-demand once the volume is steady.** On-demand Lambda bills the "
        f"{sse_load.wall_s:g} s the proxy waits on the model, {per_m(high['on_demand'], 100)} per 1M streams at "
        f"any volume. Managed Instances serve {int(assume('lmi_concurrency'))} streams per environment and cost "
        f"{per_m(high['lmi'], 100)} per 1M at 100M a month"
        + (f"; they are cheaper than on-demand from about {crossover}M streams a month" if crossover else "")
        + f". The Fargate task behind its ALB is cheaper still ({per_m(high['fargate'], 100)} at 100M): no "
        "per-request front door. But the realtime module keeps one task (no AZ redundancy) and is a container "
        "service to run, while Managed Instances keep three instances across the subnets' AZs and the template's API "
        "Gateway front door. Traffic that more than doubles within five minutes can be throttled on Managed "
        "Instances while they scale.",
        f"- **JSON requests at high volume:** on-demand Lambda costs {per_m(json_high['on_demand'], 100)} per 1M "
        f"in the proxy tier ({json_load.wall_s:g} s of waiting billed), Managed Instances "
        f"{per_m(json_high['lmi'], 100)} (more than half of it API Gateway's $3.50 per 1M) and Fargate "
        f"{per_m(json_high['fargate'], 100)}, since its ALB charges for capacity, not per request.",
        f"- **Cloudflare Workers** bills CPU time only, never the wait: {per_m(low['workers'], 1)} per 1M at 1M "
        f"requests (the $5 minimum) and {per_m(high['workers'], 100)} per 1M streams at 100M, at heliport's "
        "measured CPU per request. No AWS mode comes near it for long streams; the difference is the price of "
        "running in one's own AWS account, next to one's own data.",
        f"- **The logging pipeline** is the same for every AWS mode. Aurora's running minimum and the consumer's "
        f"interface endpoints dominate it at low volume; per request, the S3 PUT for bodies is its largest line "
        f"({_usd(s3_today)} per 1M requests saved by keeping small bodies in the row).",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="write docs/cost.md")
    args = parser.parse_args(argv)
    text = render()
    if args.write:
        DOC.write_text(text, encoding="utf-8")
        print(f"wrote {DOC.relative_to(ROOT)}")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
