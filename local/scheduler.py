"""EventBridge Scheduler, locally: moto stores schedules but never fires them.

A dispatcher thread looks at the template's schedule groups once a second, fires every
one-time schedule (``at(...)``) that is due by starting its target, as Scheduler does, and
deletes it when its ``ActionAfterCompletion`` is ``DELETE``. Only Step Functions targets
(``StartExecution``) are emulated: that is all the stack schedules. A target that cannot be
started is tried again on the next tick, like Scheduler's retry policy, until the
schedule's ``MaximumEventAgeInSeconds`` has passed.
"""

from __future__ import annotations

import logging
import re
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from botocore.exceptions import BotoCoreError, ClientError

LOG = logging.getLogger(__name__)

_AT = re.compile(r"^at\((?P<when>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$")
_STATE_MACHINE_ARN = re.compile(r"^arn:[^:]+:states:[^:]+:\d{12}:stateMachine:[^:]+$")
StartExecution = Callable[[str, str, str], str]  # (state machine ARN, name, input) -> execution ARN


@dataclass(frozen=True)
class OneTimeSchedule:
    group: str
    name: str
    due: datetime
    target_arn: str
    target_input: str
    delete_after: bool
    max_age: timedelta

    @classmethod
    def from_api(cls, group: str, described: dict[str, Any]) -> OneTimeSchedule | None:
        match = _AT.match(described.get("ScheduleExpression", ""))
        if not match:
            return None
        zone = ZoneInfo(described.get("ScheduleExpressionTimezone") or "UTC")
        due = datetime.fromisoformat(match.group("when")).replace(tzinfo=zone).astimezone(UTC)
        target = described["Target"]
        retry = target.get("RetryPolicy") or {}
        return cls(
            group=group,
            name=described["Name"],
            due=due,
            target_arn=target["Arn"],
            target_input=target.get("Input") or "{}",
            delete_after=described.get("ActionAfterCompletion") == "DELETE",
            max_age=timedelta(seconds=int(retry.get("MaximumEventAgeInSeconds", 86400))),
        )


class ScheduleDispatcher:
    """Fires the due one-time schedules of ``groups``; ``fired`` lists what it started."""

    def __init__(
        self,
        scheduler: Any,
        groups: Iterable[str],
        start_execution: StartExecution,
        interval: float = 1.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._scheduler = scheduler
        self._groups = list(groups)
        self._start_execution = start_execution
        self._interval = interval
        self._clock = clock
        # (group, name) -> (LastModificationDate, parsed schedule or None): one GetSchedule per change
        self._known: dict[tuple[str, str], tuple[Any, OneTimeSchedule | None]] = {}
        self._done: set[tuple[str, str, Any]] = set()  # fired schedules that stay (no DELETE)
        self.fired: list[tuple[str, str]] = []  # (schedule name, execution ARN), the latest 1000
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="schedule-dispatcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.tick()
            except (ClientError, BotoCoreError, OSError) as exc:
                if self._stop.is_set():
                    return
                LOG.warning("schedules unreadable: %s", exc)

    def tick(self) -> None:
        """Fire what is due now (one pass; the thread calls it every ``interval``)."""
        seen: set[tuple[str, str]] = set()
        for group in self._groups:
            for page in self._scheduler.get_paginator("list_schedules").paginate(GroupName=group):
                for summary in page.get("Schedules", []):
                    key = (group, summary["Name"])
                    seen.add(key)
                    schedule = self._described(key, summary.get("LastModificationDate"))
                    if schedule is not None and summary.get("State", "ENABLED") == "ENABLED":
                        self._fire_if_due(schedule, summary.get("LastModificationDate"))
        for key in set(self._known) - seen:  # deleted by someone else
            del self._known[key]

    def _described(self, key: tuple[str, str], modified: Any) -> OneTimeSchedule | None:
        known = self._known.get(key)
        if known is None or known[0] != modified:
            try:
                described = self._scheduler.get_schedule(GroupName=key[0], Name=key[1])
            except ClientError as exc:
                if exc.response["Error"]["Code"] == "ResourceNotFoundException":
                    return None  # deleted since the listing (a job started)
                raise
            schedule = OneTimeSchedule.from_api(key[0], described)
            if schedule is None:
                LOG.warning("schedule %s/%s: only one-time at() schedules fire locally", *key)
            self._known[key] = (modified, schedule)
            return schedule
        return known[1]

    def _fire_if_due(self, schedule: OneTimeSchedule, modified: Any) -> None:
        now = self._clock()
        done_key = (schedule.group, schedule.name, modified)
        if schedule.due > now or done_key in self._done:
            return
        if now - schedule.due > schedule.max_age:
            LOG.error(
                "schedule %s/%s: dropped, older than its retry policy allows", schedule.group, schedule.name
            )
        elif not _STATE_MACHINE_ARN.match(schedule.target_arn):
            LOG.warning("schedule %s: local mode only starts Step Functions targets", schedule.name)
        else:
            try:
                execution = self._start_execution(
                    schedule.target_arn, str(uuid.uuid4()), schedule.target_input
                )
            except (ClientError, BotoCoreError, OSError) as exc:
                LOG.warning("schedule %s: target not started (retried): %s", schedule.name, exc)
                return
            self.fired = [*self.fired[-999:], (schedule.name, execution)]
        if schedule.delete_after:
            try:
                self._scheduler.delete_schedule(GroupName=schedule.group, Name=schedule.name)
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ResourceNotFoundException":
                    raise
            self._known.pop((schedule.group, schedule.name), None)
        else:
            self._done.add(done_key)
