"""Cost per 1,000 images of a deployed stack, by service: `make cost`.

Inputs, each from one place:
- template.yaml: memory sizes and timeouts of the functions, the state machine types,
  retention (through local.template, as local mode reads it);
- statemachine/job.asl.json: the states a job enters on the common path (walked here), which
  is what a Standard workflow would bill as transitions;
- bench/results/segment_lambda.json: measured segment durations (median, ms) and init time
  by Lambda memory size (the segment bench writes it; a size without a measurement is
  estimated from the nearest one, see ``segment_ms``);
- bench/cost/prices-us-east-1.json: published us-east-1 prices, dated, with sources;
- ASSUMPTIONS below: what a job does besides segmenting (request counts, sizes, the small
  functions' durations), each with where the number comes from.

The common path is a job with a webhook that is delivered at the first attempt and whose
client downloads both results once. Idle cost is zero: nothing runs or is provisioned
between jobs (storage of results ends with their retention).

    python bench/cost.py                 # the README table (markdown)
    python bench/cost.py --json          # every line item, for scripts
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from local.template import Stack  # noqa: E402 - the template as local mode resolves it

PRICES = ROOT / "bench" / "cost" / "prices-us-east-1.json"
MEASURED = ROOT / "bench" / "results" / "segment_lambda.json"
LAMBDA_MB_PER_VCPU = 1769  # Lambda gives a full vCPU per 1,769 MB
MEMORY_SIZES = (1024, 1769, 2048, 3008, 3538, 4096, 6144, 8192, 10240)
# Choice states on the common path: which branch it takes (the walk follows Next otherwise).
COMMON_PATH_BRANCHES = {
    "RouteEvent": "ParseUploadEvent",
    "HasExpirySchedule": "DeleteExpirySchedule",
    "ChooseFlow": "Segment",
    "HasWebhook": "Notify",
}

# The batch flow's states on its common path (a batch with a webhook delivered at once).
BATCH_COMMON_PATH = (
    "BatchSettings", "RunItems", "FinalizeBatch", "HasWebhook", "Notify", "RecordWebhookDelivered", "Done",
)  # fmt: skip

ASSUMPTIONS: dict[str, Any] = {
    # milliseconds the segment function spends on S3 (GET the upload, PUT two results) on
    # Lambda, beyond the bench's in-memory store: not measurable without an AWS account
    "segment_s3_ms": 30,
    # one cold start per this many jobs (steady traffic keeps containers warm); billed init
    "jobs_per_cold_start": 1000,
    # API function: POST /jobs (put item, schedule expiry, presign) and one GET of the job;
    # local mode: median 23 ms over 411 API invocations (REPORT lines, moto on loopback)
    "api_invocations": 2,
    "api_ms_per_invocation": 25,
    # notify: one signed POST over the internet (6 ms median to a loopback receiver locally)
    "notify_ms": 120,
    # the Express job execution besides Segment: 3 DynamoDB writes, a schedule delete, two
    # Lambda invokes' overhead and the webhook's round trip
    "express_other_ms": 250,
    # HTTP API requests: POST /jobs and one GET (the webhook carries the result links)
    "http_api_requests": 2,
    # S3: POST upload + PUT result.json + PUT annotated.jpg; GET by segment + 2 downloads
    "s3_puts": 3,
    "s3_gets": 3,
    "upload_kb": 61,  # samples/shapes-1.jpg
    "results_kb": 70,  # its annotated.jpg and result.json
    # DynamoDB: item sizes (KB, rounded up per write) measured from local-mode job items:
    # created, started, succeeded (with the result summary), webhook recorded. The ByOwner
    # index projects ALL attributes, so each write is written twice.
    "item_kb_writes": [1, 1, 2, 2],
    "gsi_copies": 2,
    "strong_reads": 1,  # the GET (item < 4 KB)
    # CloudWatch Logs per job (KB): Powertools lines of api/segment/notify, START/END/
    # REPORT lines, two HTTP API access log lines; the flows log at ERROR only
    "log_kb": 4.0,
    # X-Ray: traces recorded per job (API calls and the flow) and the sampled share (the
    # default rule: 1 request a second, then 5%)
    "traces_per_job": 3,
    "trace_sampled_share": 0.05,
    # batches (statemachine/batch.asl.json): an item's Express child besides Segment (3
    # DynamoDB writes: start, result; no webhook); the batch function's time per item (reads
    # result.json 16 at a time, writes the manifest and COCO); images per batch
    "batch_item_other_ms": 100,
    "batch_finalize_ms_per_item": 5,
    "batch_items": 1000,
}


@dataclass(frozen=True)
class Line:
    service: str
    item: str
    per_1000: float  # USD per 1,000 images
    orchestration: bool = False


def load_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def common_path_states(definition: dict[str, Any]) -> list[str]:
    """The states a job enters on the common path, in order (its Standard transitions)."""
    states, name, entered = definition["States"], definition["StartAt"], []
    while name:
        entered.append(name)
        state = states[name]
        if state["Type"] == "Choice":
            name = COMMON_PATH_BRANCHES[name]
        elif state.get("End") or state["Type"] in ("Succeed", "Fail"):
            name = ""
        else:
            name = state["Next"]
        if len(entered) > len(states):
            raise ValueError("the common path loops: check COMMON_PATH_BRANCHES")
    return entered


def segment_ms(measured: dict[str, Any], memory_mb: int) -> tuple[float, float, bool]:
    """(median ms, init ms, measured?) of the segment function at ``memory_mb``.

    A size without a measurement takes the nearest measured one: below it, time grows as
    the CPU share shrinks (Lambda gives CPU in proportion to memory); above it, no speed-up
    is assumed (an upper bound: more vCPUs help inference, not decode or encode). A size is
    never slower than a smaller measured one: Lambda gives a larger size at least the CPU of
    a smaller one, so such a measurement is contention on the bench machine (its second
    core busy) and the smaller size's time is taken instead (not marked measured).
    """
    sizes = {int(size): figures for size, figures in measured["by_memory_mb"].items()}
    if memory_mb in sizes:
        figures, factor, was_measured = sizes[memory_mb], 1.0, True
    else:
        nearest = min(sizes, key=lambda size: abs(size - memory_mb))
        figures, factor, was_measured = sizes[nearest], max(1.0, nearest / memory_mb), False
    ms, init_ms = figures["median_ms"] * factor, figures["init_ms"] * factor
    faster = [sizes[size] for size in sizes if size < memory_mb and sizes[size]["median_ms"] < ms]
    if faster:
        best = min(faster, key=lambda f: f["median_ms"])
        return best["median_ms"], best["init_ms"], False
    return ms, init_ms, was_measured


def lambda_cost(prices: dict[str, Any], memory_mb: int, ms: float, invocations: float = 1.0) -> float:
    """USD of ``invocations`` invocations billed at 1 ms granularity."""
    gb_seconds = memory_mb / 1024 * math.ceil(ms) / 1000
    return invocations * (gb_seconds * prices["lambda_gb_second"] + prices["lambda_request"])


def line_items(
    stack: Stack, prices: dict[str, Any], measured: dict[str, Any], memory_mb: int, flow: str
) -> list[Line]:
    a = ASSUMPTIONS
    functions = stack.functions()
    seg_ms, init_ms, _ = segment_ms(measured, memory_mb)
    seg_billed_ms = seg_ms + a["segment_s3_ms"]
    ephemeral_gb = (
        max(
            0,
            int(stack.resolve(stack.resources["SegmentFunction"]["Properties"]["EphemeralStorage"]["Size"]))
            - 512,
        )
        / 1024
    )
    k = 1000.0
    lines = [
        Line(
            "Lambda",
            f"segment ({memory_mb} MB, {seg_billed_ms:.0f} ms)",
            k * lambda_cost(prices, memory_mb, seg_billed_ms),
        ),
        Line(
            "Lambda",
            f"segment init, 1 per {a['jobs_per_cold_start']} jobs ({init_ms / 1000:.1f} s)",
            k / a["jobs_per_cold_start"] * memory_mb / 1024 * init_ms / 1000 * prices["lambda_gb_second"],
        ),
        Line(
            "Lambda",
            "segment /tmp beyond 512 MB",
            k * ephemeral_gb * seg_billed_ms / 1000 * prices["lambda_ephemeral_gb_second"],
        ),
        Line(
            "Lambda",
            f"api ({functions['ApiFunction'].memory_size} MB) x{a['api_invocations']}",
            k
            * lambda_cost(
                prices, functions["ApiFunction"].memory_size, a["api_ms_per_invocation"], a["api_invocations"]
            ),
        ),
        Line(
            "Lambda",
            f"notify ({functions['NotifyFunction'].memory_size} MB)",
            k * lambda_cost(prices, functions["NotifyFunction"].memory_size, a["notify_ms"]),
        ),
    ]
    definition = json.loads(stack.state_machines()["JobStateMachine"].definition)
    transitions = len(common_path_states(definition))
    if flow == "EXPRESS":
        billed_s = (
            math.ceil((seg_billed_ms + a["express_other_ms"]) / prices["sfn_express_billing_ms"])
            * prices["sfn_express_billing_ms"]
            / 1000
        )
        lines += [
            Line("Step Functions", "Express request", k * prices["sfn_express_request"], True),
            Line(
                "Step Functions",
                f"Express duration ({billed_s:.1f} s x 64 MB)",
                k * billed_s * prices["sfn_express_memory_gb"] * prices["sfn_express_gb_second"],
                True,
            ),
        ]
    else:
        lines.append(
            Line(
                "Step Functions",
                f"Standard, {transitions} transitions",
                k * transitions * prices["sfn_standard_transition"],
                True,
            )
        )
    lines += [
        Line(
            "EventBridge",
            "S3 Object Created event and rule (AWS service events are free)",
            k * prices["eventbridge_aws_service_event"],
            True,
        ),
        Line(
            "EventBridge Scheduler", "expiry schedule (deleted when the job starts: never invoked)", 0.0, True
        ),
        Line(
            "S3",
            f"{a['s3_puts']} PUT/POST, {a['s3_gets']} GET",
            k * (a["s3_puts"] * prices["s3_put_request"] + a["s3_gets"] * prices["s3_get_request"]),
        ),
        Line(
            "S3",
            f"storage for {stack.parameters['ResultRetentionDays']} days",
            k
            * (a["upload_kb"] + a["results_kb"])
            / 1024**2
            * int(stack.parameters["ResultRetentionDays"])
            / 30
            * prices["s3_storage_gb_month"],
        ),
        Line(
            "DynamoDB",
            f"{len(a['item_kb_writes'])} writes ({sum(a['item_kb_writes']) * a['gsi_copies']} WRU with the index), {a['strong_reads']} read",
            k
            * (
                sum(a["item_kb_writes"]) * a["gsi_copies"] * prices["dynamodb_write_request_unit"]
                + a["strong_reads"] * prices["dynamodb_read_request_unit"]
            ),
        ),
        Line(
            "API Gateway",
            f"HTTP API, {a['http_api_requests']} requests",
            k * a["http_api_requests"] * prices["http_api_request"],
        ),
        Line(
            "CloudWatch",
            f"logs, {a['log_kb']:.0f} KB",
            k * a["log_kb"] / 1024**2 * prices["cloudwatch_logs_ingest_gb"],
        ),
        Line(
            "X-Ray",
            f"{a['traces_per_job']} traces, {a['trace_sampled_share']:.0%} sampled",
            k * a["traces_per_job"] * a["trace_sampled_share"] * prices["xray_trace_recorded"],
        ),
    ]
    return lines


def batch_lines(stack: Stack, prices: dict[str, Any], measured: dict[str, Any], memory_mb: int) -> list[Line]:
    """Orchestration per 1,000 images run as batches: an Express child execution per item
    (Distributed Map, ExecutionType EXPRESS), the parent's Standard transitions and the batch
    function once per batch. A batch's files are uploaded outside uploads/: their S3 events
    start no job flow."""
    a = ASSUMPTIONS
    seg_ms = segment_ms(measured, memory_mb)[0] + a["segment_s3_ms"]
    per_batch = 1000.0 / a["batch_items"]
    parent = json.loads(stack.state_machines()["BatchStateMachine"].definition)
    transitions = len([name for name in BATCH_COMMON_PATH if name in parent["States"]])
    billing = prices["sfn_express_billing_ms"]

    def express(ms: float) -> float:
        billed_s = math.ceil(ms / billing) * billing / 1000
        return (
            prices["sfn_express_request"]
            + billed_s * prices["sfn_express_memory_gb"] * prices["sfn_express_gb_second"]
        )

    batch_mb = stack.functions()["BatchFunction"].memory_size
    finalize_ms = a["batch_finalize_ms_per_item"] * a["batch_items"]
    return [
        Line(
            "Step Functions",
            "Express child per item (Distributed Map)",
            1000 * express(seg_ms + a["batch_item_other_ms"]),
            True,
        ),
        Line(
            "Step Functions",
            f"parent, {transitions} Standard transitions per batch",
            per_batch * transitions * prices["sfn_standard_transition"],
            True,
        ),
        Line(
            "Lambda",
            f"batch function ({batch_mb} MB, {finalize_ms / 1000:.0f} s per batch)",
            per_batch * lambda_cost(prices, batch_mb, finalize_ms),
            True,
        ),
    ]


def sagemaker_line(prices: dict[str, Any], measured: dict[str, Any], images_per_day: int) -> dict[str, float]:
    """SageMaker Asynchronous Inference on its smallest CPU instance, serving the same images:
    per 1,000 images at full use and at ``images_per_day`` (one instance kept up), idle/month."""
    vcpus = prices["sagemaker_instance_vcpus"]
    ms = segment_ms(measured, vcpus * LAMBDA_MB_PER_VCPU)[0] + ASSUMPTIONS["segment_s3_ms"]
    hour = prices["sagemaker_instance_hour"]
    full = hour / (3600 * 1000 / ms) * 1000
    steady = hour * 24 / images_per_day * 1000
    return {
        "full_use_per_1000": full,
        "steady_per_1000": steady,
        "idle_per_month": hour * 730,
        "images_per_day": images_per_day,
    }


def money(value: float) -> str:
    return f"${value:.4f}" if value >= 0.0001 or value == 0 else f"${value:.6f}"


def report(stack: Stack, prices: dict[str, Any], measured: dict[str, Any], images_per_day: int) -> str:
    default_mb = int(stack.parameters["SegmentMemorySize"])
    flow = stack.state_machines()["JobStateMachine"].type
    out = [
        f"Cost per 1,000 images, us-east-1 prices compiled {prices['compiled']}; segment durations measured "
        f"{measured['measured']} ({measured['image']}). Template defaults: SegmentMemorySize {default_mb} MB, "
        f"job flow {flow}.",
        "",
        "| service | item | per 1,000 images |",
        "|---|---|---|",
    ]
    lines = line_items(stack, prices, measured, default_mb, flow)
    for line in lines:
        out.append(f"| {line.service} | {line.item} | {money(line.per_1000)} |")
    total = sum(line.per_1000 for line in lines)
    orchestration = sum(line.per_1000 for line in lines if line.orchestration)
    out += [
        f"| **total** | | **{money(total)}** |",
        f"| orchestration | Step Functions, EventBridge, Scheduler | {money(orchestration)} ({orchestration / total:.0%} of the total) |",
        "",
        "By SegmentMemorySize, job path on Express (now) and on Standard (as before):",
        "",
        "| SegmentMemorySize | segment ms | segment | total, Express | orchestration share | total, Standard | orchestration share |",
        "|---|---|---|---|---|---|---|",
    ]
    for memory_mb in MEMORY_SIZES:
        ms, _, was_measured = segment_ms(measured, memory_mb)
        rows = {}
        for kind in ("EXPRESS", "STANDARD"):
            items = line_items(stack, prices, measured, memory_mb, kind)
            rows[kind] = (sum(i.per_1000 for i in items), sum(i.per_1000 for i in items if i.orchestration))
        segment = sum(
            i.per_1000
            for i in line_items(stack, prices, measured, memory_mb, "EXPRESS")
            if i.item.startswith("segment")
        )
        label = f"{memory_mb}" + (" (default)" if memory_mb == default_mb else "")
        out.append(
            f"| {label} | {ms:.0f}{'' if was_measured else '*'} | {money(segment)} | {money(rows['EXPRESS'][0])} | "
            f"{rows['EXPRESS'][1] / rows['EXPRESS'][0]:.0%} | {money(rows['STANDARD'][0])} | {rows['STANDARD'][1] / rows['STANDARD'][0]:.0%} |"
        )
    batch = batch_lines(stack, prices, measured, default_mb)
    single = sum(line.per_1000 for line in lines if line.orchestration) + next(
        line.per_1000 for line in lines if line.item.startswith("notify")
    )
    out += [
        "",
        f"Batches of {ASSUMPTIONS['batch_items']:,} images (POST /batches): the same segment and storage lines; "
        "orchestration per 1,000 images:",
        "",
        "| service | item | per 1,000 images |",
        "|---|---|---|",
        *(f"| {line.service} | {line.item} | {money(line.per_1000)} |" for line in batch),
        f"| **batch orchestration** | | **{money(sum(line.per_1000 for line in batch))}** (single jobs: "
        f"{money(single)} with their webhooks) |",
    ]
    sm = sagemaker_line(prices, measured, images_per_day)
    out += [
        "",
        "\\* estimated: from the nearest measured size, never slower than a smaller one (bench/cost.py `segment_ms`).",
        "",
        f"Idle: $0 per month (no instance, no provisioned capacity; S3 and DynamoDB storage of jobs within their "
        f"{stack.parameters['ResultRetentionDays']}-day retention only). SageMaker Asynchronous Inference on "
        f"{prices['sagemaker_instance']} (${prices['sagemaker_instance_hour']}/h), same per-image time: "
        f"{money(sm['full_use_per_1000'])} per 1,000 images at full use, {money(sm['steady_per_1000'])} at "
        f"{images_per_day:,} images a day on one instance kept up, ${sm['idle_per_month']:.2f} a month idle "
        "(or scaled to zero, with minutes of cold start per burst).",
    ]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--images-per-day", type=int, default=10_000, help="traffic of the SageMaker comparison"
    )
    parser.add_argument(
        "--param", action="append", default=[], metavar="Key=Value", help="template parameter override"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    stack = Stack(ROOT / "template.yaml", dict(p.split("=", 1) for p in args.param))
    prices, measured = load_json(PRICES), load_json(MEASURED)
    if args.json:
        memory_mb = int(stack.parameters["SegmentMemorySize"])
        flow = stack.state_machines()["JobStateMachine"].type
        items = [line.__dict__ for line in line_items(stack, prices, measured, memory_mb, flow)]
        print(
            json.dumps(
                {"lines": items, "sagemaker": sagemaker_line(prices, measured, args.images_per_day)}, indent=2
            )
        )
    else:
        print(report(stack, prices, measured, args.images_per_day))
    return 0


if __name__ == "__main__":
    sys.exit(main())
