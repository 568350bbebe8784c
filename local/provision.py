"""Create the template's resources in moto, from their template properties.

Each resource type translates its CloudFormation properties to the API calls that create
it (as CloudFormation would); properties local mode cannot use are logged, not ignored
silently. Lambda functions, layers and the HTTP API are not moto resources: the local
Lambda runtime and HTTP API serve them.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .template import (
    SERVERLESS_FUNCTION,
    SERVERLESS_HTTP_API,
    SERVERLESS_LAYER,
    SERVERLESS_STATE_MACHINE,
    Stack,
)

LOG = logging.getLogger(__name__)

ClientFactory = Callable[[str], Any]
# Served by local mode itself, or only permissions/metadata that local mode does not enforce.
_NOT_MOTO = {
    SERVERLESS_FUNCTION,
    SERVERLESS_LAYER,
    SERVERLESS_HTTP_API,
    SERVERLESS_STATE_MACHINE,
    "AWS::IAM::Role",
}
# Kept as files in local mode: the functions' logs are <state dir>/logs/<function>.log.
_LOCAL_FILES = {"AWS::Logs::LogGroup"}
S3_EVENT_QUEUE_SUFFIX = "-eventbridge"
# What S3 sends to EventBridge for a bucket with EventBridge enabled (that local mode maps).
_S3_EVENTBRIDGE_EVENTS = ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]


@dataclass
class Provisioned:
    physical_ids: dict[str, dict[str, str]] = field(default_factory=dict)
    # Bucket physical name -> URL of the queue that carries its EventBridge events.
    s3_event_queues: dict[str, str] = field(default_factory=dict)
    # EventBridge Scheduler groups: moto stores their schedules, local mode fires them.
    schedule_groups: list[str] = field(default_factory=list)


def provision_secrets(stack: Stack, client: ClientFactory, state_dir: Path | None = None) -> Provisioned:
    """The secrets first: their ARNs (random suffix) are in functions' env vars.

    A generated value is kept in ``<state_dir>/secrets/<LogicalId>`` and used again at the
    next start, as a deployed secret outlives its functions (e.g. the webhook master key:
    callers' receivers keep verifying across restarts).
    """
    result = Provisioned()
    for logical_id in stack.resources_of_type("AWS::SecretsManager::Secret"):
        _secret(stack, logical_id, client, result, state_dir)
    return result


def provision_storage(
    stack: Stack, client: ClientFactory, result: Provisioned, state_dir: Path | None = None
) -> Provisioned:
    """Tables, buckets (+ policies and their EventBridge switch): all but secrets and state
    machines. Tables marked ``Metadata: LocalMode: PersistItems`` get back the items saved
    at the last stop (``save_persisted_items``)."""
    creators = {
        "AWS::DynamoDB::Table": _table,
        "AWS::S3::Bucket": _bucket,
        "AWS::S3::BucketPolicy": _bucket_policy,
        "AWS::Scheduler::ScheduleGroup": _schedule_group,
    }
    for resource_type, create in creators.items():
        for logical_id in stack.resources_of_type(resource_type):
            create(stack, logical_id, client, result)
    if state_dir is not None:
        for logical_id in persisted_tables(stack):
            _restore_items(stack, logical_id, client, state_dir)
    handled = {*creators, "AWS::SecretsManager::Secret", *_NOT_MOTO, *_LOCAL_FILES}
    for logical_id, resource in stack.resources.items():
        if resource["Type"] not in handled:
            LOG.warning("%s (%s) is not emulated in local mode", logical_id, resource["Type"])
    return result


def provision_state_machines(stack: Stack, client: ClientFactory) -> dict[str, str]:
    """Create the state machines (after ``POST /moto-api/config`` enabled execution)."""
    sfn = client("stepfunctions")
    arns = {}
    for logical_id, machine in stack.state_machines().items():
        response = sfn.create_state_machine(
            name=machine.name,
            definition=machine.definition,
            roleArn=machine.role_arn,
            type=machine.type,
            tracingConfiguration={"enabled": machine.tracing},
        )
        arns[logical_id] = response["stateMachineArn"]
    return arns


def _props(stack: Stack, logical_id: str) -> dict[str, Any]:
    return stack.resolve(stack.resources[logical_id].get("Properties", {}))


def _unused(logical_id: str, props: Mapping[str, Any], used: set[str]) -> None:
    rest = sorted(set(props) - used)
    if rest:
        LOG.info("%s: not emulated locally: %s", logical_id, ", ".join(rest))


# --- Secrets Manager ---------------------------------------------------------------------


def _secret(
    stack: Stack, logical_id: str, client: ClientFactory, result: Provisioned, state_dir: Path | None
) -> None:
    sm = client("secretsmanager")
    props = _props(stack, logical_id)
    kept = state_dir / "secrets" / logical_id if state_dir is not None else None
    if "SecretString" in props:
        value = props["SecretString"]
    elif kept is not None and kept.is_file():
        value = kept.read_text(encoding="utf-8")
    else:
        generate = dict(props.get("GenerateSecretString", {}))
        template, key = generate.pop("SecretStringTemplate", None), generate.pop("GenerateStringKey", None)
        # The same generator CloudFormation uses for GenerateSecretString: GetRandomPassword.
        value = sm.get_random_password(**generate)["RandomPassword"]
        if template is not None and key is not None:
            value = json.dumps({**json.loads(template), key: value})
        if kept is not None:
            _write_private(kept, value)
    args = {"Name": stack.physical_name(logical_id), "SecretString": value}
    if "Description" in props:
        args["Description"] = props["Description"]
    arn = sm.create_secret(**args)["ARN"]
    result.physical_ids[logical_id] = {"Ref": arn, "Arn": arn}
    _unused(logical_id, props, {"SecretString", "GenerateSecretString", "Description", "Name"})


def _write_private(path: Path, text: str) -> None:
    """A file only its owner can read (0600 from the start, not chmod-ed afterwards)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        out.write(text)


# --- DynamoDB ----------------------------------------------------------------------------


def persisted_tables(stack: Stack) -> list[str]:
    """Tables whose items local mode keeps across restarts (``Metadata: LocalMode: PersistItems``)."""
    return [
        logical_id
        for logical_id, resource in stack.resources_of_type("AWS::DynamoDB::Table").items()
        if resource.get("Metadata", {}).get("LocalMode", {}).get("PersistItems") is True
    ]


def _items_file(state_dir: Path, logical_id: str) -> Path:
    return state_dir / "tables" / f"{logical_id}.json"


def _restore_items(stack: Stack, logical_id: str, client: ClientFactory, state_dir: Path) -> None:
    path = _items_file(state_dir, logical_id)
    if not path.is_file():
        return
    ddb = client("dynamodb")
    items = json.loads(path.read_text(encoding="utf-8"))
    for item in items:
        ddb.put_item(TableName=stack.physical_name(logical_id), Item=item)
    LOG.info("%s: %d items restored from %s", logical_id, len(items), path)


def save_persisted_items(stack: Stack, client: ClientFactory, state_dir: Path) -> None:
    """Write the items of the persisted tables to the state dir (at stop)."""
    ddb = client("dynamodb")
    for logical_id in persisted_tables(stack):
        items: list[dict[str, Any]] = []
        for page in ddb.get_paginator("scan").paginate(TableName=stack.physical_name(logical_id)):
            items.extend(page.get("Items", []))
        _write_private(_items_file(state_dir, logical_id), json.dumps(items))


_INDEX_KEYS = ("IndexName", "KeySchema", "Projection", "ProvisionedThroughput", "OnDemandThroughput")


def _table(stack: Stack, logical_id: str, client: ClientFactory, result: Provisioned) -> None:
    ddb = client("dynamodb")
    props = _props(stack, logical_id)
    name = stack.physical_name(logical_id)
    args: dict[str, Any] = {
        "TableName": name,
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": props.get("BillingMode", "PROVISIONED"),
    }
    for index_kind in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        if index_kind in props:
            args[index_kind] = [
                {k: v for k, v in index.items() if k in _INDEX_KEYS} for index in props[index_kind]
            ]
    if "ProvisionedThroughput" in props:
        args["ProvisionedThroughput"] = _ints(props["ProvisionedThroughput"])
    if "StreamSpecification" in props:
        args["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
    if "SSESpecification" in props:
        sse = props["SSESpecification"]
        args["SSESpecification"] = {"Enabled": bool(sse.get("SSEEnabled"))} | {
            k: v for k, v in sse.items() if k in ("SSEType", "KMSMasterKeyId")
        }
    for key in ("TableClass", "DeletionProtectionEnabled", "Tags"):
        if key in props:
            args[key] = props[key]
    ddb.create_table(**args)
    if ttl := props.get("TimeToLiveSpecification"):
        # Accepted, but moto never deletes expired items.
        ddb.update_time_to_live(
            TableName=name,
            TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": ttl["Enabled"]},
        )
    if pitr := props.get("PointInTimeRecoverySpecification"):
        ddb.update_continuous_backups(
            TableName=name,
            PointInTimeRecoverySpecification={
                "PointInTimeRecoveryEnabled": bool(pitr["PointInTimeRecoveryEnabled"])
            },
        )
    _unused(
        logical_id, props, {*args, "TableName", "TimeToLiveSpecification", "PointInTimeRecoverySpecification"}
    )


def _ints(value: Mapping[str, Any]) -> dict[str, int]:
    return {k: int(v) for k, v in value.items()}


# --- S3 ------------------------------------------------------------------------------------


def _bucket(stack: Stack, logical_id: str, client: ClientFactory, result: Provisioned) -> None:
    s3 = client("s3")
    props = _props(stack, logical_id)
    name = stack.physical_name(logical_id)
    s3.create_bucket(Bucket=name)
    if "PublicAccessBlockConfiguration" in props:
        s3.put_public_access_block(
            Bucket=name, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"]
        )
    if "BucketEncryption" in props:
        rules = [
            {
                "ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"],
                **({"BucketKeyEnabled": rule["BucketKeyEnabled"]} if "BucketKeyEnabled" in rule else {}),
            }
            for rule in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        ]
        s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
    if "OwnershipControls" in props:
        s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls=props["OwnershipControls"])
    if "VersioningConfiguration" in props:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration=props["VersioningConfiguration"])
    if "LifecycleConfiguration" in props:
        # Stored; moto does not expire objects.
        rules = [_lifecycle_rule(rule) for rule in props["LifecycleConfiguration"]["Rules"]]
        s3.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration={"Rules": rules})
    if "CorsConfiguration" in props:
        s3.put_bucket_cors(
            Bucket=name,
            CORSConfiguration={"CORSRules": [_cors_rule(r) for r in props["CorsConfiguration"]["CorsRules"]]},
        )
    notifications = props.get("NotificationConfiguration", {})
    if notifications.get("EventBridgeConfiguration", {}).get("EventBridgeEnabled"):
        result.s3_event_queues[name] = _eventbridge_queue(name, client)
    for kind in ("LambdaConfigurations", "QueueConfigurations", "TopicConfigurations"):
        if kind in notifications:
            LOG.warning("%s: NotificationConfiguration.%s is not emulated locally", logical_id, kind)
    _unused(
        logical_id,
        props,
        {
            "BucketName",
            "PublicAccessBlockConfiguration",
            "BucketEncryption",
            "OwnershipControls",
            "VersioningConfiguration",
            "LifecycleConfiguration",
            "CorsConfiguration",
            "NotificationConfiguration",
        },
    )


def _eventbridge_queue(bucket: str, client: ClientFactory) -> str:
    """The bucket's EventBridge switch, locally: all object events to one SQS queue."""
    sqs = client("sqs")
    queue_url = sqs.create_queue(
        QueueName=f"{bucket}{S3_EVENT_QUEUE_SUFFIX}", Attributes={"VisibilityTimeout": "5"}
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    client("s3").put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": queue_arn, "Events": _S3_EVENTBRIDGE_EVENTS}]
        },
    )
    return queue_url


def _lifecycle_rule(rule: Mapping[str, Any]) -> dict[str, Any]:
    converted: dict[str, Any] = {"ID": rule.get("Id", ""), "Status": rule["Status"]}
    converted["Filter"] = {"Prefix": rule.get("Prefix", "")}
    if "ExpirationInDays" in rule:
        converted["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    if "AbortIncompleteMultipartUpload" in rule:
        converted["AbortIncompleteMultipartUpload"] = _ints(rule["AbortIncompleteMultipartUpload"])
    if "NoncurrentVersionExpiration" in rule:
        converted["NoncurrentVersionExpiration"] = {
            "NoncurrentDays": int(rule["NoncurrentVersionExpiration"]["NoncurrentDays"])
        }
    return converted


def _cors_rule(rule: Mapping[str, Any]) -> dict[str, Any]:
    names = {"ExposedHeaders": "ExposeHeaders", "MaxAge": "MaxAgeSeconds", "Id": "ID"}
    return {names.get(key, key): value for key, value in rule.items()}


def _bucket_policy(stack: Stack, logical_id: str, client: ClientFactory, result: Provisioned) -> None:
    props = _props(stack, logical_id)
    document = dict(props["PolicyDocument"])
    # moto evaluates bucket policies for object reads but ignores their Condition blocks:
    # a conditional Deny (e.g. aws:SecureTransport=false) would refuse every request.
    kept: list[dict[str, Any]] = []
    dropped: list[dict[str, Any]] = []
    for statement in document.get("Statement", []):
        conditional_deny = statement.get("Effect") == "Deny" and "Condition" in statement
        (dropped if conditional_deny else kept).append(statement)
    for statement in dropped:
        LOG.info("%s: conditional Deny %s not applied locally", logical_id, statement.get("Sid", statement))
    if kept:
        document["Statement"] = kept
        client("s3").put_bucket_policy(Bucket=props["Bucket"], Policy=json.dumps(document))


# --- EventBridge Scheduler -------------------------------------------------------------------


def _schedule_group(stack: Stack, logical_id: str, client: ClientFactory, result: Provisioned) -> None:
    props = _props(stack, logical_id)
    name = stack.physical_name(logical_id)
    client("scheduler").create_schedule_group(Name=name)
    result.schedule_groups.append(name)
    _unused(logical_id, props, {"Name"})
