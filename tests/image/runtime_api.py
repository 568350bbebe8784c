"""The image test's other side: local mode's S3 and a Lambda Runtime API, on loopback.

Run inside the network namespace that the function's container will share (see
test_image.py), so the container reaches these two endpoints on 127.0.0.1 and nothing
else. It starts moto's server (S3, and the jobs table the function checks for cancel and
writes progress to, made from template.yaml with the job RUNNING as the flow's StartJob
leaves it), uploads the image with a presigned POST (as a client does), serves one invocation to the runtime interface client in the container (AWS's
Runtime API: GET next, POST response or error), then reads result.json and annotated.jpg
back from S3 and writes a report. Standard output: one JSON line when ready, one when the report is written; it then
waits for its standard input to close.

    python tests/image/runtime_api.py --image samples/shapes-1.jpg --report out.json
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import requests
from moto.server import ThreadedMotoServer

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from local.template import Stack, load_template  # noqa: E402 - the repository's root, above

S3_PORT = 5000  # a private network namespace: fixed ports are free
API_PORT = 9001
BUCKET = "segjob-image-test"
API = "/2018-06-01/runtime"


class Invocation:
    """One event for the runtime client, and what it answered."""

    def __init__(self, event: dict[str, Any], function_arn: str, timeout_s: float) -> None:
        self.event = event
        self.function_arn = function_arn
        self.timeout_s = timeout_s
        self.request_id = str(uuid.uuid4())
        self.served = threading.Event()
        self.answered = threading.Event()
        self.first_poll_at: float | None = None
        self.answered_at: float | None = None
        self.outcome: str | None = None  # "response", "error" or "initError"
        self.body: Any = None

    def answer(self, outcome: str, body: bytes) -> None:
        self.outcome, self.answered_at = outcome, time.time()
        try:
            self.body = json.loads(body)
        except ValueError:
            self.body = body.decode(errors="replace")
        self.answered.set()


def runtime_api(invocation: Invocation) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _reply(self, status: int, body: bytes = b"{}", headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path != f"{API}/invocation/next":
                self._reply(404)
                return
            if invocation.served.is_set():  # one invocation: the next poll waits, as Lambda's does
                invocation.answered.wait()
                time.sleep(invocation.timeout_s)
                self._reply(500)
                return
            invocation.first_poll_at = time.time()
            invocation.served.set()
            deadline = int((time.time() + invocation.timeout_s) * 1000)
            self._reply(
                200,
                json.dumps(invocation.event).encode(),
                {
                    "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
                    "Lambda-Runtime-Deadline-Ms": str(deadline),
                    "Lambda-Runtime-Invoked-Function-Arn": invocation.function_arn,
                    "Lambda-Runtime-Trace-Id": "Root=1-00000000-000000000000000000000000;Parent=0000000000000000;Sampled=0",
                },
            )

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path == f"{API}/invocation/{invocation.request_id}/response":
                invocation.answer("response", body)
            elif self.path == f"{API}/invocation/{invocation.request_id}/error":
                invocation.answer("error", body)
            elif self.path == f"{API}/init/error":
                invocation.answer("initError", body)
            else:
                self._reply(404)
                return
            self._reply(202, b'{"status":"OK"}')

    server = ThreadingHTTPServer(("127.0.0.1", API_PORT), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="runtime-api", daemon=True).start()
    return server


def moto_client(service: str, endpoint: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def create_running_job(endpoint: str, job_id: str) -> None:
    """The function's jobs table (its name from the function's environment, its key from the
    template) holding the job as StartJob leaves it: RUNNING."""
    table = Stack(ROOT / "template.yaml").function("SegmentFunction").environment["JOBS_TABLE"]
    properties = load_template(ROOT / "template.yaml")["Resources"]["JobsTable"]["Properties"]
    keys = {key["AttributeName"] for key in properties["KeySchema"]}
    dynamodb = moto_client("dynamodb", endpoint)
    dynamodb.create_table(
        TableName=table,
        KeySchema=properties["KeySchema"],
        AttributeDefinitions=[a for a in properties["AttributeDefinitions"] if a["AttributeName"] in keys],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.put_item(TableName=table, Item={"jobId": {"S": job_id}, "status": {"S": "RUNNING"}})


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--image", type=Path, required=True)
    parser.add_argument("--report", type=Path, required=True)
    parser.add_argument("--params", default="{}", help="the job's params (JSON)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the answer")
    args = parser.parse_args()

    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=S3_PORT, verbose=False)
    moto.start()
    endpoint = f"http://127.0.0.1:{S3_PORT}"
    s3 = moto_client("s3", endpoint)
    s3.create_bucket(Bucket=BUCKET)
    job_id = f"job_{uuid.uuid4().hex}"
    create_running_job(endpoint, job_id)
    key = f"uploads/{job_id}/input"
    form = s3.generate_presigned_post(BUCKET, key, Conditions=[["content-length-range", 1, 50 * 2**20]])
    upload = requests.post(
        form["url"], data=form["fields"], files={"file": ("input", args.image.read_bytes())}, timeout=30
    )
    upload.raise_for_status()

    event = json.loads((ROOT / "tests" / "events" / "segment_request.json").read_text())
    event.update({"jobId": job_id, "bucket": BUCKET, "key": key, "params": json.loads(args.params)})
    invocation = Invocation(
        event, "arn:aws:lambda:us-east-1:123456789012:function:SegmentFunction", args.timeout
    )
    api = runtime_api(invocation)
    print(
        json.dumps({"runtimeApi": f"127.0.0.1:{API_PORT}", "s3": endpoint, "readyAt": time.time()}),
        flush=True,
    )

    answered = invocation.answered.wait(args.timeout)
    report: dict[str, Any] = {
        "answered": answered,
        "outcome": invocation.outcome,
        "body": invocation.body,
        "firstPollAt": invocation.first_poll_at,
        "answeredAt": invocation.answered_at,
        "objects": {},
    }
    for item in s3.list_objects_v2(Bucket=BUCKET, Prefix="results/").get("Contents", []):
        obj = s3.get_object(Bucket=BUCKET, Key=item["Key"])
        body = obj["Body"].read()
        entry: dict[str, Any] = {"contentType": obj["ContentType"], "bytes": len(body)}
        if item["Key"].endswith(".json"):
            entry["document"] = json.loads(body)
        else:
            import cv2
            import numpy as np

            pixels = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
            entry["shape"] = None if pixels is None else list(pixels.shape)
        report["objects"][item["Key"].rsplit("/", 1)[-1]] = entry
    args.report.write_text(json.dumps(report, indent=2))
    print(json.dumps({"done": True}), flush=True)
    sys.stdin.read()  # the test reads the container's figures meanwhile, then closes our stdin
    api.shutdown()
    moto.stop()
    sys.exit(0)


if __name__ == "__main__":
    main()
