"""The signing secrets' adapter against moto in-process: rows created on first use,
conditional rotations (none lost under concurrency), the master key's cache."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local.template import Stack
from segjob_core.signing import SigningKeyInvalid, derive_secret
from segjob_core.signing_store import MasterKey, RotationConflict, SigningSecrets

ROOT = Path(__file__).resolve().parents[3]
ALICE = "arn:aws:iam::123456789012:user/alice"
MASTER = "m" * 64


@pytest.fixture
def aws() -> Iterator[dict[str, Any]]:
    with mock_aws():
        table = Stack(ROOT / "template.yaml").resources["WebhookSecretStateTable"]["Properties"]
        boto3.client("dynamodb", region_name="us-east-1").create_table(
            TableName="state",
            KeySchema=table["KeySchema"],
            AttributeDefinitions=table["AttributeDefinitions"],
            BillingMode=table["BillingMode"],
        )
        sm = boto3.client("secretsmanager", region_name="us-east-1")
        arn = sm.create_secret(Name="master", SecretString=MASTER)["ARN"]
        yield {
            "table": boto3.resource("dynamodb", region_name="us-east-1").Table("state"),
            "sm": sm,
            "arn": arn,
        }


def signing(aws: dict[str, Any], table: Any = None) -> SigningSecrets:
    return SigningSecrets(MasterKey(aws["arn"], client=aws["sm"]), "state", table=table or aws["table"])


def test_first_use_writes_the_row_once(aws) -> None:
    secrets = signing(aws)

    first = secrets.current(ALICE)
    row = aws["table"].get_item(Key={"owner": ALICE})["Item"]
    again = secrets.current(ALICE)

    assert first == again
    assert first.secret == derive_secret(MASTER.encode(), ALICE, 1)
    assert row["generation"] == 1 and row["createdAt"] == first.created_at
    assert "secret" not in str(row).lower()  # nothing secret is stored


def test_signing_without_a_row_writes_nothing(aws) -> None:
    assert signing(aws).active_secrets(ALICE) == [derive_secret(MASTER.encode(), ALICE, 1)]
    assert "Item" not in aws["table"].get_item(Key={"owner": ALICE})


def test_rotation_of_a_caller_without_a_row(aws) -> None:
    rotated = signing(aws).rotate(ALICE, 60)

    assert rotated.generation == 2
    assert signing(aws).active_secrets(ALICE) == [
        derive_secret(MASTER.encode(), ALICE, 2),
        derive_secret(MASTER.encode(), ALICE, 1),
    ]


class RacingTable:
    """The state table, with another rotation landing just before each of our writes."""

    def __init__(self, table: Any, rival: SigningSecrets, races: int) -> None:
        self._table = table
        self._rival = rival
        self.races = races

    def get_item(self, **kwargs: Any) -> Any:
        return self._table.get_item(**kwargs)

    def update_item(self, **kwargs: Any) -> Any:
        if self.races:
            self.races -= 1
            self._rival.rotate(ALICE, 60)
        return self._table.update_item(**kwargs)


def test_concurrent_rotations_are_all_applied(aws) -> None:
    signing(aws).current(ALICE)
    racing = RacingTable(aws["table"], signing(aws), races=1)

    rotated = signing(aws, table=racing).rotate(ALICE, 60)

    # the rival's rotation (to 2) and ours (to 3): none lost, none skipped
    assert rotated.generation == 3
    assert aws["table"].get_item(Key={"owner": ALICE})["Item"]["generation"] == 3


def test_endless_races_end_in_a_conflict(aws) -> None:
    signing(aws).current(ALICE)
    racing = RacingTable(aws["table"], signing(aws), races=10)

    with pytest.raises(RotationConflict):
        signing(aws, table=racing).rotate(ALICE, 60)


def test_master_key_is_cached_and_read_again_after_its_max_age(aws) -> None:
    reads: list[str] = []
    aws["sm"].meta.events.register(
        "provide-client-params.secretsmanager.GetSecretValue",
        lambda **kw: reads.append(kw["params"]["SecretId"]),
    )
    cached = MasterKey(aws["arn"], client=aws["sm"])
    expiring = MasterKey(aws["arn"], client=aws["sm"], max_age=0)

    values = {cached.value(), cached.value(), expiring.value(), expiring.value()}

    assert values == {MASTER.encode()}
    assert len(reads) == 3
    assert MASTER not in repr(cached)


def test_an_empty_master_key_is_a_deployment_error(aws) -> None:
    aws["sm"].put_secret_value(SecretId=aws["arn"], SecretString=" ")

    with pytest.raises(SigningKeyInvalid):
        MasterKey(aws["arn"], client=aws["sm"]).value()
