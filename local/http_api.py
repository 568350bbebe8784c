"""The local HTTP API: API Gateway HTTP API (payload format 2.0) in front of the
functions' HttpApi routes from the template.

Each request becomes the v2 event API Gateway sends, the route's function runs through
the local Lambda runtime, and its v2 response (or a bare value, by API Gateway's format
inference) becomes the HTTP response. Unknown routes get API Gateway's
``404 {"message":"Not Found"}``. The IAM authorizer is not verified locally: the caller
is the access key id of a SigV4 ``Authorization`` header (or ``X-Amz-Credential``),
else ``user/local``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from .servers import BurstHTTPServer
from .template import ACCOUNT_ID, HttpRoute

LOG = logging.getLogger(__name__)

MAX_BODY = 10 * 1024 * 1024  # API Gateway's payload limit
DEFAULT_CALLER = "local"
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")
_TEXT_TYPES = re.compile(r"^(text/|application/(json|xml|javascript|x-www-form-urlencoded)|.*\+json|.*\+xml)")

# (status, headers as (name, value) pairs, body)
HttpResponse = tuple[int, list[tuple[str, str]], bytes]


@dataclass(frozen=True)
class Caller:
    access_key: str

    @property
    def user_arn(self) -> str:
        return f"arn:aws:iam::{ACCOUNT_ID}:user/{self.access_key}"

    @property
    def user_id(self) -> str:
        return "AIDA" + hashlib.sha256(self.access_key.encode()).hexdigest()[:17].upper()

    def authorizer_context(self) -> dict[str, Any]:
        return {
            "iam": {
                "accessKey": self.access_key,
                "accountId": ACCOUNT_ID,
                "callerId": self.user_id,
                "cognitoIdentity": None,
                "principalOrgId": None,
                "userArn": self.user_arn,
                "userId": self.user_id,
            }
        }


def caller_from(headers: Mapping[str, str], raw_query: str) -> Caller:
    """The SigV4 access key id of the request (not verified locally), else the default."""
    match = _CREDENTIAL.search(headers.get("authorization", ""))
    if match:
        return Caller(match.group(1))
    for name, value in parse_qsl(raw_query):
        if name == "X-Amz-Credential" and "/" in value:
            return Caller(value.split("/", 1)[0])
    return Caller(DEFAULT_CALLER)


class RouteTable:
    """API Gateway route selection: exact paths before path variables before greedy
    ones; an exact method before ANY; ``$default`` last."""

    def __init__(self, routes: Sequence[HttpRoute]) -> None:
        self._routes = [(route, _path_regex(route.path)) for route in routes if route.path != "$default"]
        self._default = next((route for route in routes if route.path == "$default"), None)

    def match(self, method: str, path: str) -> tuple[HttpRoute, dict[str, str]] | None:
        candidates = []
        for route, regex in self._routes:
            if route.method not in (method, "ANY"):
                continue
            found = regex.match(path)
            if found:
                segments = route.path.strip("/").split("/")
                literal = sum(1 for s in segments if not s.startswith("{"))
                greedy = any(s.endswith("+}") for s in segments)
                score = (not greedy, literal, len(segments), route.method != "ANY")
                params = {name: unquote(value) for name, value in found.groupdict().items()}
                candidates.append((score, route, params))
        if candidates:
            _, route, params = max(candidates, key=lambda c: c[0])
            return route, params
        if self._default:
            return self._default, {}
        return None


def _path_regex(path: str) -> re.Pattern[str]:
    parts = []
    for segment in path.strip("/").split("/"):
        if segment.startswith("{") and segment.endswith("+}"):
            parts.append(f"(?P<{_group(segment[1:-2])}>.+)")
        elif segment.startswith("{") and segment.endswith("}"):
            parts.append(f"(?P<{_group(segment[1:-1])}>[^/]+)")
        else:
            parts.append(re.escape(segment))
    return re.compile("^/" + "/".join(parts) + "/?$" if parts != [""] else "^/$")


def _group(name: str) -> str:
    if not name.isidentifier():
        raise ValueError(f"local mode needs identifier path parameters, not {name!r}")
    return name


def build_v2_event(
    *,
    route: HttpRoute,
    path_parameters: Mapping[str, str],
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Sequence[tuple[str, str]],
    body: bytes,
    source_ip: str,
    protocol: str = "HTTP/1.1",
    now: float | None = None,
    request_id: str | None = None,
) -> dict[str, Any]:
    """The API Gateway HTTP API payload format 2.0 event of one request."""
    now = time.time() if now is None else now
    lowered: dict[str, str] = {}
    for raw_name, value in headers:
        name = raw_name.lower()
        lowered[name] = f"{lowered[name]},{value}" if name in lowered else value
    cookie_header = lowered.pop("cookie", None)
    lowered.setdefault("x-forwarded-for", source_ip)
    lowered.setdefault("x-forwarded-proto", "http")
    lowered.setdefault("x-amzn-trace-id", f"Root=1-{int(now):08x}-{secrets.token_hex(12)}")
    domain = lowered.get("host", "localhost").rsplit(":", 1)[0]
    request_id = request_id or base64.b64encode(secrets.token_bytes(10)).decode()
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route.route_key,
        "rawPath": raw_path,
        "rawQueryString": raw_query,
    }
    if cookie_header:
        event["cookies"] = [c.strip() for c in cookie_header.split(";") if c.strip()]
    event["headers"] = lowered
    if raw_query:
        query: dict[str, str] = {}
        for name, value in parse_qsl(raw_query, keep_blank_values=True):
            query[name] = f"{query[name]},{value}" if name in query else value
        event["queryStringParameters"] = query
    context: dict[str, Any] = {
        "accountId": ACCOUNT_ID,
        "apiId": route.api_id,
    }
    if route.authorizer == "AWS_IAM":
        context["authorizer"] = caller_from(lowered, raw_query).authorizer_context()
    context |= {
        "domainName": domain,
        "domainPrefix": domain.split(".")[0],
        "http": {
            "method": method,
            "path": raw_path,
            "protocol": protocol,
            "sourceIp": source_ip,
            "userAgent": lowered.get("user-agent", ""),
        },
        "requestId": request_id,
        "routeKey": route.route_key,
        "stage": "$default",
        "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
        "timeEpoch": int(now * 1000),
    }
    event["requestContext"] = context
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    if body:
        content_type = lowered.get("content-type", "")
        text = _TEXT_TYPES.match(content_type) is not None or not content_type
        try:
            event["body"] = body.decode("utf-8") if text else None
        except UnicodeDecodeError:
            event["body"] = None
        if event["body"] is None:
            event["body"] = base64.b64encode(body).decode()
            event["isBase64Encoded"] = True
        else:
            event["isBase64Encoded"] = False
    else:
        event["isBase64Encoded"] = False
    return event


def response_from_v2_result(payload: bytes, function_error: str | None) -> HttpResponse:
    """The HTTP response API Gateway makes of a function's v2 result."""
    if function_error:
        return _message(500, "Internal Server Error")
    try:
        result = json.loads(payload)
    except ValueError:
        return _message(500, "Internal Server Error")
    if not isinstance(result, dict) or "statusCode" not in result:
        # Format inference: a bare value is a 200 JSON body.
        return 200, [("Content-Type", "application/json")], payload
    try:
        status = int(result["statusCode"])
        headers = [(str(k), str(v)) for k, v in (result.get("headers") or {}).items()]
        headers += [("Set-Cookie", str(cookie)) for cookie in result.get("cookies") or []]
        body = result.get("body")
        if body is None:
            raw = b""
        elif result.get("isBase64Encoded"):
            raw = base64.b64decode(body)
        else:
            raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    except (TypeError, ValueError):
        LOG.warning("malformed Lambda proxy response: %.200s", payload)
        return _message(500, "Internal Server Error")
    if not any(name.lower() == "content-type" for name, _ in headers) and raw:
        headers.append(("Content-Type", "application/json"))
    return status, headers, raw


def _message(status: int, message: str) -> HttpResponse:
    return status, [("Content-Type", "application/json")], json.dumps({"message": message}).encode()


Invoke = Callable[[str, bytes], tuple[bytes, str | None]]


class LocalHttpApi:
    """A threaded HTTP server on loopback serving the template's HttpApi routes."""

    def __init__(
        self,
        routes: Sequence[HttpRoute],
        *,
        function_names: Mapping[str, str],
        invoke: Invoke,
        host: str = "127.0.0.1",
        port: int = 0,
        on_event: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.routes = RouteTable(routes)
        self.function_names = dict(function_names)
        self.invoke = invoke
        self.on_event = on_event
        api = self

        class Handler(_ApiRequestHandler):
            server_api = api

        self._server = BurstHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-http-api", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def handle(
        self,
        method: str,
        target: str,
        *,
        headers: Sequence[tuple[str, str]],
        body: bytes,
        source_ip: str,
        protocol: str,
    ) -> HttpResponse:
        url = urlsplit(target)
        found = self.routes.match(method, unquote(url.path))
        if found is None:
            return _message(404, "Not Found")
        route, params = found
        if len(body) > MAX_BODY:
            return _message(413, "Request Entity Too Large")
        event = build_v2_event(
            route=route,
            path_parameters=params,
            method=method,
            raw_path=url.path,
            raw_query=url.query,
            headers=headers,
            body=body,
            source_ip=source_ip,
            protocol=protocol,
        )
        if self.on_event:
            self.on_event(event)
        payload, function_error = self.invoke(self.function_names[route.function], json.dumps(event).encode())
        return response_from_v2_result(payload, function_error)


class _ApiRequestHandler(BaseHTTPRequestHandler):
    server_api: LocalHttpApi
    protocol_version = "HTTP/1.1"
    server_version = "local-http-api"

    def log_message(self, format: str, *args: Any) -> None:
        LOG.info("http api: " + format, *args)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))
        chunks = []
        while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
            chunks.append(self.rfile.read(size))
            self.rfile.readline()
        while self.rfile.readline().strip():  # trailers
            pass
        return b"".join(chunks)

    def _serve(self) -> None:
        body = self._read_body()
        status, headers, raw = self.server_api.handle(
            self.command,
            self.path,
            headers=list(self.headers.items()),
            body=body,
            source_ip=self.client_address[0],
            protocol=self.request_version,
        )
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("Apigw-Requestid", base64.b64encode(secrets.token_bytes(10)).decode())
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(raw)

    # every method API Gateway would take (it routes unknown ones to a 404, not a 501)
    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_TRACE = do_QUERY = _serve
