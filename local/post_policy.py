"""S3 browser-based uploads (presigned POST): the checks S3 makes and moto does not.

``check_post_upload`` verifies the policy's signature (SigV4, or the legacy V2), its
expiration and every condition, and that every form field is covered by a condition
(except ``x-amz-signature``, ``file``, ``policy`` and ``x-ignore-*``), as documented in
"Creating a POST policy" of the S3 API reference. A refusal is an ``S3Error`` that
renders as S3's XML error document.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from xml.sax.saxutils import escape

# Form fields that need no condition (S3: "except x-amz-signature, file, policy, and
# field names that have an x-ignore- prefix").
EXEMPT_FIELDS = {"x-amz-signature", "file", "policy", "signature", "awsaccesskeyid"}


@dataclass(frozen=True)
class PostUpload:
    """A parsed multipart POST: the form fields before the file, in order, and the file.
    Field names are matched case-insensitively, as S3 does."""

    bucket: str
    fields: list[tuple[str, str]]
    file_content: bytes
    file_name: str | None = None
    file_content_type: str | None = None

    def field(self, name: str) -> str | None:
        for key, value in self.fields:
            if key.lower() == name:
                return value
        return None

    @property
    def field_names(self) -> list[str]:
        return list(dict.fromkeys(key.lower() for key, _ in self.fields))


@dataclass
class S3Error(Exception):
    status: int
    code: str
    message: str
    extra: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.message}"

    def to_xml(self) -> bytes:
        parts = [f"<Code>{escape(self.code)}</Code>", f"<Message>{escape(self.message)}</Message>"]
        parts += [f"<{key}>{escape(value)}</{key}>" for key, value in self.extra.items()]
        request_id = uuid.uuid4().hex[:16].upper()
        parts += [f"<RequestId>{request_id}</RequestId>", f"<HostId>{request_id}</HostId>"]
        return ('<?xml version="1.0" encoding="UTF-8"?>\n<Error>' + "".join(parts) + "</Error>").encode()


def _access_denied(message: str) -> S3Error:
    return S3Error(403, "AccessDenied", f"Invalid according to Policy: {message}")


def _missing_field(name: str) -> S3Error:
    return S3Error(
        400,
        "InvalidArgument",
        f"Bucket POST must contain a field named '{name}'.  "
        "If it is specified, please check the order of the fields.",
        {"ArgumentName": name, "ArgumentValue": ""},
    )


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def sigv4_signing_key(secret_key: str, date: str, region: str, service: str) -> bytes:
    key = _hmac(("AWS4" + secret_key).encode(), date)
    key = _hmac(key, region)
    key = _hmac(key, service)
    return _hmac(key, "aws4_request")


def check_post_upload(
    upload: PostUpload,
    secret_for: Callable[[str], str | None],
    region: str,
    now: datetime | None = None,
) -> None:
    """Raise ``S3Error`` unless S3 would accept this POST upload."""
    now = now or datetime.now(UTC)
    policy_b64 = upload.field("policy")
    if upload.field("key") is None:
        raise _missing_field("key")
    if policy_b64 is None:
        # Without a policy the upload is anonymous: this bucket allows no public writes.
        raise S3Error(403, "AccessDenied", "Access Denied")
    _check_signature(upload, policy_b64, secret_for, region)
    policy = _decode_policy(policy_b64)
    _check_expiration(policy, now)
    covered = _check_conditions(upload, policy["conditions"])
    extra = [
        name
        for name in upload.field_names
        if name not in covered and name not in EXEMPT_FIELDS and not name.startswith("x-ignore-")
    ]
    if extra:
        raise _access_denied(f"Extra input fields: {', '.join(extra)}")


def _check_signature(
    upload: PostUpload, policy_b64: str, secret_for: Callable[[str], str | None], region: str
) -> None:
    if upload.field("x-amz-algorithm") is None and upload.field("awsaccesskeyid") is not None:
        access_key = upload.field("awsaccesskeyid") or ""
        secret = _known_secret(access_key, secret_for)
        expected = base64.b64encode(
            hmac.new(secret.encode(), policy_b64.encode(), hashlib.sha1).digest()
        ).decode()
        provided = upload.field("signature")
        if provided is None:
            raise _missing_field("signature")
    else:
        for name in ("x-amz-algorithm", "x-amz-credential", "x-amz-date", "x-amz-signature"):
            if upload.field(name) is None:
                raise _missing_field(name)
        if upload.field("x-amz-algorithm") != "AWS4-HMAC-SHA256":
            raise S3Error(400, "InvalidArgument", "Only AWS4-HMAC-SHA256 is supported as x-amz-algorithm")
        credential = upload.field("x-amz-credential") or ""
        parts = credential.split("/")
        if len(parts) != 5 or parts[3] != "s3" or parts[4] != "aws4_request":
            raise S3Error(400, "InvalidArgument", f"Invalid X-Amz-Credential: {credential}")
        access_key, date, credential_region = parts[0], parts[1], parts[2]
        if credential_region != region:
            raise S3Error(
                400,
                "AuthorizationQueryParametersError",
                f"Error parsing the X-Amz-Credential parameter; the region '{credential_region}' is wrong;"
                f" expecting '{region}'",
            )
        secret = _known_secret(access_key, secret_for)
        signing_key = sigv4_signing_key(secret, date, credential_region, "s3")
        expected = hmac.new(signing_key, policy_b64.encode(), hashlib.sha256).hexdigest()
        provided = upload.field("x-amz-signature")
    if not hmac.compare_digest(expected, provided or ""):
        raise S3Error(
            403,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided."
            " Check your key and signing method.",
        )


def _known_secret(access_key: str, secret_for: Callable[[str], str | None]) -> str:
    secret = secret_for(access_key)
    if secret is None:
        raise S3Error(
            403,
            "InvalidAccessKeyId",
            "The AWS Access Key Id you provided does not exist in our records.",
            {"AWSAccessKeyId": access_key},
        )
    return secret


def _decode_policy(policy_b64: str) -> dict:
    try:
        policy = json.loads(base64.b64decode(policy_b64, validate=True))
    except (binascii.Error, ValueError):
        raise S3Error(400, "InvalidPolicyDocument", "Invalid Policy: Invalid JSON.") from None
    if (
        not isinstance(policy, dict)
        or "expiration" not in policy
        or not isinstance(policy.get("conditions"), list)
    ):
        raise S3Error(
            400, "InvalidPolicyDocument", "Invalid Policy: Policy missing expiration or conditions."
        )
    return policy


def _check_expiration(policy: Mapping, now: datetime) -> None:
    raw = str(policy["expiration"])
    try:
        expiration = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise S3Error(
            400, "InvalidPolicyDocument", f"Invalid Policy: Invalid 'expiration' value: '{raw}'"
        ) from None
    if expiration.tzinfo is None:
        expiration = expiration.replace(tzinfo=UTC)
    if now >= expiration:
        raise _access_denied("Policy expired.")


def _check_conditions(upload: PostUpload, conditions: list) -> set[str]:
    """Check each condition in order; return the (lower-case) field names they cover."""
    covered: set[str] = set()
    for condition in conditions:
        if isinstance(condition, dict):
            if len(condition) != 1:
                raise S3Error(
                    400, "InvalidPolicyDocument", f"Invalid Policy: Invalid Simple-Condition: {condition}"
                )
            (name, expected), *_ = condition.items()
            # S3 reports an exact-match condition in its long form.
            shown = json.dumps(["eq", f"${name}", expected])
            operator, name = "eq", name.lower()
        elif isinstance(condition, list) and len(condition) == 3:
            operator = str(condition[0]).lower()
            shown = json.dumps(condition)
            if operator == "content-length-range":
                _check_length(len(upload.file_content), int(condition[1]), int(condition[2]))
                continue
            name, expected = str(condition[1]), condition[2]
            if not name.startswith("$"):
                raise S3Error(400, "InvalidPolicyDocument", f"Invalid Policy: Invalid Condition: {shown}")
            name = name[1:].lower()
        else:
            raise S3Error(400, "InvalidPolicyDocument", f"Invalid Policy: Invalid Condition: {condition}")
        covered.add(name)
        actual = upload.bucket if name == "bucket" else upload.field(name)
        if not _condition_holds(name, operator, actual, str(expected)):
            raise _access_denied(f"Policy Condition failed: {shown}")
    return covered


def _condition_holds(name: str, operator: str, actual: str | None, expected: str) -> bool:
    if operator == "eq":
        return actual == expected
    if operator == "starts-with":
        if actual is None:
            return expected == ""
        if name == "content-type":
            # S3: each of a comma-separated list of content types must match.
            return all(part.strip().startswith(expected) for part in actual.split(","))
        return actual.startswith(expected)
    raise S3Error(400, "InvalidPolicyDocument", f"Invalid Policy: unknown condition operator '{operator}'")


def _check_length(size: int, minimum: int, maximum: int) -> None:
    if size > maximum:
        raise S3Error(
            400,
            "EntityTooLarge",
            "Your proposed upload exceeds the maximum allowed size",
            {"ProposedSize": str(size), "MaxSizeAllowed": str(maximum)},
        )
    if size < minimum:
        raise S3Error(
            400,
            "EntityTooSmall",
            "Your proposed upload is smaller than the minimum allowed size",
            {"ProposedSize": str(size), "MinSizeAllowed": str(minimum)},
        )
