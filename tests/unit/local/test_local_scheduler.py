"""The local EventBridge Scheduler dispatcher against an in-memory schedule store."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from local.scheduler import OneTimeSchedule, ScheduleDispatcher

NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:jobs"


class Schedules:
    """The few Scheduler calls the dispatcher makes, over a dict."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], dict[str, Any]] = {}

    def add(
        self,
        name: str,
        when: datetime,
        *,
        delete: bool = True,
        arn: str = MACHINE,
        expression: str | None = None,
    ) -> None:
        self.items[("g", name)] = {
            "Name": name,
            "ScheduleExpression": expression or f"at({when:%Y-%m-%dT%H:%M:%S})",
            "Target": {"Arn": arn, "RoleArn": "r", "Input": json.dumps({"detail": {"jobId": name}})},
            "ActionAfterCompletion": "DELETE" if delete else "NONE",
            "LastModificationDate": when,
        }

    def get_paginator(self, operation: str) -> Any:
        schedules = self

        class Pages:
            def paginate(self, GroupName: str) -> list[dict[str, Any]]:
                items = [dict(v) for (group, _), v in schedules.items.items() if group == GroupName]
                return [
                    {
                        "Schedules": [
                            {"Name": i["Name"], "LastModificationDate": i["LastModificationDate"]}
                            for i in items
                        ]
                    }
                ]

        return Pages()

    def get_schedule(self, GroupName: str, Name: str) -> dict[str, Any]:
        return dict(self.items[(GroupName, Name)])

    def delete_schedule(self, GroupName: str, Name: str) -> None:
        if (GroupName, Name) not in self.items:
            raise ClientError({"Error": {"Code": "ResourceNotFoundException"}}, "DeleteSchedule")
        del self.items[(GroupName, Name)]


def dispatcher(schedules: Schedules, started: list, fail: bool = False) -> ScheduleDispatcher:
    def start(arn: str, name: str, payload: str) -> str:
        if fail:
            raise ClientError({"Error": {"Code": "ThrottlingException"}}, "StartExecution")
        started.append((arn, json.loads(payload)))
        return f"{arn}:{name}"

    return ScheduleDispatcher(schedules, ["g"], start, clock=lambda: NOW)


def test_due_one_time_schedule_starts_its_target_once_and_deletes_itself() -> None:
    schedules, started = Schedules(), []
    schedules.add("due", NOW - timedelta(seconds=1))
    schedules.add("later", NOW + timedelta(minutes=5))
    fire = dispatcher(schedules, started)

    fire.tick()
    fire.tick()

    assert started == [(MACHINE, {"detail": {"jobId": "due"}})]
    assert set(name for _, name in schedules.items) == {"later"}
    assert [name for name, _ in fire.fired] == ["due"]


def test_schedule_that_stays_fires_once_until_it_is_changed() -> None:
    schedules, started = Schedules(), []
    schedules.add("kept", NOW - timedelta(seconds=1), delete=False)
    fire = dispatcher(schedules, started)
    fire.tick()
    fire.tick()
    assert len(started) == 1
    schedules.add("kept", NOW - timedelta(seconds=2), delete=False)  # updated: a new due time
    fire.tick()
    assert len(started) == 2


def test_target_that_cannot_start_is_tried_again_on_the_next_tick() -> None:
    schedules, started = Schedules(), []
    schedules.add("due", NOW - timedelta(seconds=1))
    dispatcher(schedules, started, fail=True).tick()
    assert ("g", "due") in schedules.items  # kept for the retry
    dispatcher(schedules, started).tick()
    assert len(started) == 1 and not schedules.items


def test_recurring_and_non_step_functions_schedules_are_not_fired() -> None:
    schedules, started = Schedules(), []
    schedules.add("rate", NOW, expression="rate(5 minutes)")
    schedules.add(
        "lambda", NOW - timedelta(seconds=1), arn="arn:aws:lambda:us-east-1:123456789012:function:f"
    )
    dispatcher(schedules, started).tick()
    assert started == []


def test_at_expression_honours_its_time_zone() -> None:
    schedule = OneTimeSchedule.from_api(
        "g",
        {
            "Name": "n",
            "ScheduleExpression": "at(2026-12-01T13:00:00)",
            "ScheduleExpressionTimezone": "Europe/Paris",
            "Target": {"Arn": MACHINE},
        },
    )
    assert schedule is not None and schedule.due == NOW


def test_schedule_deleted_between_listing_and_reading_is_skipped() -> None:
    class Racing(Schedules):
        def get_schedule(self, GroupName: str, Name: str) -> dict[str, Any]:
            raise ClientError({"Error": {"Code": "ResourceNotFoundException"}}, "GetSchedule")

    schedules, started = Racing(), []
    schedules.add("gone", NOW - timedelta(seconds=1))
    dispatcher(schedules, started).tick()
    assert started == []
