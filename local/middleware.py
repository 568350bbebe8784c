"""WSGI middleware in front of moto's server app: the parts of AWS moto does not play.

- Lambda Invoke (``POST /2015-03-31/functions/<name or ARN>/invocations``, from the Step
  Functions interpreter or from clients) goes to the local Lambda endpoint, which runs
  the project's real handlers; moto's own Lambda would need Docker.
- Presigned POST uploads to a bucket are checked against their policy (signature,
  expiration, conditions) before moto stores them; moto enforces none of it.
"""

from __future__ import annotations

import io
import logging
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from http.client import HTTPConnection
from typing import Any
from urllib.parse import quote, urlsplit

from werkzeug.datastructures import Headers
from werkzeug.http import parse_options_header
from werkzeug.sansio.multipart import (
    Data,
    Epilogue,
    Field,
    File,
    MultipartDecoder,
    MultipartEncoder,
    NeedData,
    Preamble,
)
from werkzeug.wsgi import get_input_stream

from .post_policy import PostUpload, S3Error, check_post_upload

LOG = logging.getLogger(__name__)

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
INVOKE_PATH = re.compile(r"^/2015-03-31/functions/[^/]+/invocations$")
_BUCKET_PATH = re.compile(r"^/(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/?$")
_BUCKET_HOST = re.compile(r"^(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])\.(?:s3[.-]|localhost)")
# A Lambda function may run up to 15 minutes, plus its init.
_INVOKE_TIMEOUT = 15 * 60 + 300


class LocalAwsMiddleware:
    def __init__(
        self,
        app: WSGIApp,
        lambda_endpoint: str,
        credentials: Mapping[str, str],
        region: str,
    ) -> None:
        self.app = app
        self.lambda_endpoint = urlsplit(lambda_endpoint)
        self.credentials = dict(credentials)
        self.region = region

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        path = environ.get("PATH_INFO", "")
        if method == "POST" and INVOKE_PATH.match(path):
            return self._forward_invoke(environ, start_response)
        if method == "POST" and (bucket := self._post_upload_bucket(environ)):
            return self._post_upload(bucket, environ, start_response)
        return self.app(environ, start_response)

    # --- Lambda ---------------------------------------------------------------------------

    def _forward_invoke(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        body = get_input_stream(environ).read()
        # PATH_INFO is decoded; the function may be an ARN with ':' that must stay encoded.
        target = quote(environ.get("PATH_INFO", ""), safe="/")
        if environ.get("QUERY_STRING"):
            target += "?" + environ["QUERY_STRING"]
        headers = {
            key[5:].replace("_", "-").title(): value
            for key, value in environ.items()
            if key.startswith("HTTP_X_AMZ") and key not in ("HTTP_X_AMZ_CONTENT_SHA256", "HTTP_X_AMZ_DATE")
        }
        headers["Content-Type"] = "application/json"
        connection = HTTPConnection(
            self.lambda_endpoint.hostname or "127.0.0.1", self.lambda_endpoint.port, timeout=_INVOKE_TIMEOUT
        )
        try:
            connection.request("POST", target, body=body, headers=headers)
            response = connection.getresponse()
            payload = response.read()
        except OSError as exc:
            LOG.error("local Lambda endpoint unreachable: %s", exc)
            start_response(
                "502 Bad Gateway",
                [("Content-Type", "application/json"), ("X-Amzn-ErrorType", "ServiceException")],
            )
            return [b'{"Type": "Service", "message": "local Lambda endpoint unreachable"}']
        finally:
            connection.close()
        passed = [
            (name, value)
            for name, value in response.getheaders()
            if name.lower() not in ("content-length", "connection", "date", "server", "transfer-encoding")
        ]
        start_response(
            f"{response.status} {response.reason}", [*passed, ("Content-Length", str(len(payload)))]
        )
        return [payload]

    # --- S3 presigned POST ----------------------------------------------------------------

    @staticmethod
    def _post_upload_bucket(environ: dict[str, Any]) -> str | None:
        content_type, _ = parse_options_header(environ.get("CONTENT_TYPE", ""))
        if content_type != "multipart/form-data" or environ.get("QUERY_STRING"):
            return None
        host = environ.get("HTTP_HOST", "").split(":")[0]
        if match := _BUCKET_HOST.match(host):
            return match.group("bucket") if environ.get("PATH_INFO", "/") == "/" else None
        match = _BUCKET_PATH.match(environ.get("PATH_INFO", ""))
        return match.group("bucket") if match else None

    def _post_upload(
        self, bucket: str, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        _, options = parse_options_header(environ.get("CONTENT_TYPE", ""))
        body = get_input_stream(environ).read()
        try:
            upload = parse_post_upload(bucket, options.get("boundary", ""), body)
            check_post_upload(upload, self.credentials.get, self.region)
        except S3Error as error:
            LOG.info("POST upload to %s refused: %s", bucket, error)
            xml = error.to_xml()
            start_response(
                f"{error.status} {error.code}",
                [("Content-Type", "application/xml"), ("Content-Length", str(len(xml)))],
            )
            return [xml]
        boundary, rebuilt = encode_post_upload(upload)
        forwarded = dict(environ)
        forwarded["wsgi.input"] = io.BytesIO(rebuilt)
        forwarded["CONTENT_LENGTH"] = str(len(rebuilt))
        forwarded["CONTENT_TYPE"] = f"multipart/form-data; boundary={boundary}"
        forwarded.pop("HTTP_TRANSFER_ENCODING", None)
        forwarded["wsgi.input_terminated"] = False
        return self.app(forwarded, start_response)


def parse_post_upload(bucket: str, boundary: str, body: bytes) -> PostUpload:
    """The form fields before the file, and the file (S3 ignores fields after it)."""
    if not boundary:
        raise S3Error(
            400,
            "MalformedPOSTRequest",
            "The body of your POST request is not well-formed multipart/form-data.",
        )
    decoder = MultipartDecoder(boundary.encode())
    decoder.receive_data(body)
    decoder.receive_data(None)
    fields: list[tuple[str, str]] = []
    current: Field | File | None = None
    chunks: list[bytes] = []
    try:
        while True:
            event = decoder.next_event()
            if isinstance(event, (Epilogue, NeedData)):
                break
            if isinstance(event, (Field, File)):
                current, chunks = event, []
            elif isinstance(event, Data) and current is not None:
                chunks.append(event.data)
                if event.more_data:
                    continue
                if current.name.lower() == "file":
                    return PostUpload(
                        bucket=bucket,
                        fields=fields,
                        file_content=b"".join(chunks),
                        file_name=getattr(current, "filename", None),
                        file_content_type=current.headers.get("Content-Type"),
                    )
                fields.append((current.name, b"".join(chunks).decode("utf-8", "replace")))
                current = None
    except ValueError as exc:
        raise S3Error(
            400,
            "MalformedPOSTRequest",
            "The body of your POST request is not well-formed multipart/form-data.",
        ) from exc
    raise S3Error(
        400, "InvalidArgument", "POST requires exactly one file upload per request.", {"ArgumentName": "file"}
    )


def encode_post_upload(upload: PostUpload) -> tuple[str, bytes]:
    """The checked upload as a multipart body again, for moto."""
    boundary = f"----local-post-upload-{uuid.uuid4().hex}"
    encoder = MultipartEncoder(boundary.encode())
    parts = [encoder.send_event(Preamble(data=b""))]
    for name, value in upload.fields:
        if name.lower().startswith("x-ignore-"):
            continue
        parts.append(encoder.send_event(Field(name=name, headers=Headers())))
        parts.append(encoder.send_event(Data(data=value.encode(), more_data=False)))
    file_headers = Headers()
    if upload.file_content_type:
        file_headers["Content-Type"] = upload.file_content_type
    parts.append(
        encoder.send_event(File(name="file", filename=upload.file_name or "file", headers=file_headers))
    )
    parts.append(encoder.send_event(Data(data=upload.file_content, more_data=False)))
    parts.append(encoder.send_event(Epilogue(data=b"")))
    return boundary, b"".join(parts)
