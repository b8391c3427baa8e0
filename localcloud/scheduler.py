"""Fires the template's schedules on the local cloud's emulated clock.

Sources (read from the transformed template, no hand-kept list):

- ``AWS::Events::Rule`` with a ``ScheduleExpression``: each target gets the canonical "Scheduled Event"
  (``version``, ``id``, ``detail-type``, ``source`` aws.events, ``account``, ``time``, ``region``,
  ``resources`` [rule ARN], ``detail`` {}), or the target's ``Input`` / ``InputPath`` /
  ``InputTransformer`` result. A rule whose state is DISABLED (in the template, or live in the embedded
  EventBridge when an events client is available) does not fire.
- ``AWS::Scheduler::Schedule``: the target gets ``Target.Input`` (``{}`` when absent). ``State``
  DISABLED does not fire. ``StartDate``/``EndDate``/``FlexibleTimeWindow`` are not emulated.

Schedules created at run time through the Scheduler API (CreateSchedule, in any group of the embedded
Scheduler) fire too, on the same clock: seen within a tenth of a real second of being created, changed
or deleted. A one-time ``at()`` schedule whose time has already passed when it is seen fires at once,
once; with ``ActionAfterCompletion`` DELETE it is then deleted, as Scheduler does. In a Scheduler
target's input the context attributes ``<aws.scheduler.schedule-arn>``,
``<aws.scheduler.scheduled-time>``, ``<aws.scheduler.execution-id>`` and
``<aws.scheduler.attempt-number>`` are replaced as Scheduler replaces them.

Expressions: ``rate(N minute|minutes|hour|hours|day|days)``, ``at(yyyy-mm-ddThh:mm:ss)`` (Scheduler)
and AWS's six-field ``cron(minutes hours day-of-month month day-of-week year)`` with ``*``, ``?``,
lists, ranges, ``/`` increments, month and weekday names (1 = SUN ... 7 = SAT), ``L`` (last day of
month) and ``nW`` / ``LW`` (nearest weekday) in day-of-month, ``nL`` (last weekday n of the month) and
``n#k`` (k-th weekday n) in day-of-week. ``ScheduleExpressionTimezone`` is honoured for cron.

Timing: a rate schedule first fires one interval after ``start()``; a schedule that fell behind (the
clock was advanced by more than an interval) fires once and is rescheduled from now, never in a burst.
Lambda targets are invoked asynchronously (InvocationType Event) and Step Functions targets started
through the local cloud's APIs; other target services are logged and skipped.
"""

from __future__ import annotations

import calendar
import heapq
import json
import logging
import re
import threading
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import boto3

from localcloud.clock import Clock, get_clock
from localcloud.eventbridge import target_payload
from localcloud.stack import DeployedStack, ScheduleSpec, ScheduleTarget

__all__ = [
    "CronExpression",
    "FiredSchedule",
    "ScheduleError",
    "ScheduleSpec",
    "ScheduleTarget",
    "Scheduler",
    "next_fire_time",
    "parse_schedules",
    "shape_target_payload",
]

logger = logging.getLogger(__name__)


class ScheduleError(ValueError):
    """A schedule expression the local cloud cannot parse."""


# ---------------------------------------------------------------------------------------------------
# Expressions

_MONTHS = {name: index for index, name in enumerate(calendar.month_abbr) if name}
_MONTHS = {name.upper(): index for name, index in _MONTHS.items()}
_WEEKDAYS = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}


def _aws_weekday(day: datetime) -> int:
    """AWS numbering: 1 = Sunday ... 7 = Saturday."""
    return (day.weekday() + 1) % 7 + 1


def _expand(field_text: str, low: int, high: int, names: Mapping[str, int], what: str) -> frozenset[int]:
    values: set[int] = set()
    for part in field_text.upper().split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            step = int(step_text)
            if step <= 0:
                raise ScheduleError(f"bad increment in {what}: {field_text}")
        if part in ("*", ""):
            start, end = low, high
        elif "-" in part:
            start_text, end_text = part.split("-", 1)
            start, end = names.get(start_text) or int(start_text), names.get(end_text) or int(end_text)
        else:
            start = names.get(part) or int(part)
            end = high if "/" in field_text else start
        if not (low <= start <= high and low <= end <= high):
            raise ScheduleError(f"{what} out of range {low}-{high}: {field_text}")
        values.update(range(start, end + 1, step))
    return frozenset(values)


@dataclass(frozen=True)
class CronExpression:
    """An AWS six-field cron expression, evaluated in ``timezone``."""

    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days_of_month: str
    months: frozenset[int]
    days_of_week: str
    years: frozenset[int]
    timezone: str = "UTC"

    @classmethod
    def parse(cls, text: str, timezone: str = "UTC") -> CronExpression:
        fields = text.split()
        if len(fields) != 6:
            raise ScheduleError(f"cron needs 6 fields (min hour dom month dow year): {text!r}")
        minute, hour, dom, month, dow, year = fields
        if (dom == "?") == (dow == "?"):
            raise ScheduleError(f"exactly one of day-of-month and day-of-week must be '?': {text!r}")
        expression = cls(
            text=text,
            minutes=_expand(minute, 0, 59, {}, "minutes"),
            hours=_expand(hour, 0, 23, {}, "hours"),
            days_of_month=dom.upper(),
            months=_expand(month, 1, 12, _MONTHS, "month"),
            days_of_week=dow.upper(),
            years=_expand(year, 1970, 2199, {}, "year"),
            timezone=timezone,
        )
        # Validate the day fields once, on an arbitrary day.
        expression.matches_day(datetime(2024, 1, 1, tzinfo=UTC))
        return expression

    def matches_day(self, day: datetime) -> bool:
        if self.days_of_month != "?":
            return self._matches_day_of_month(day)
        return self._matches_day_of_week(day)

    def _matches_day_of_month(self, day: datetime) -> bool:
        last = calendar.monthrange(day.year, day.month)[1]
        text = self.days_of_month
        if text == "L":
            return day.day == last
        if text.endswith("W"):
            target = last if text == "LW" else int(text[:-1])
            return day.day == _nearest_weekday(day.year, day.month, min(target, last))
        return day.day in _expand(text, 1, 31, {}, "day-of-month")

    def _matches_day_of_week(self, day: datetime) -> bool:
        text = self.days_of_week
        weekday = _aws_weekday(day)
        if "#" in text:
            name, nth = text.split("#", 1)
            wanted = _WEEKDAYS.get(name) or int(name)
            return weekday == wanted and (day.day - 1) // 7 + 1 == int(nth)
        if text.endswith("L") and len(text) > 1:
            wanted = _WEEKDAYS.get(text[:-1]) or int(text[:-1])
            last = calendar.monthrange(day.year, day.month)[1]
            return weekday == wanted and day.day + 7 > last
        if text == "L":
            return weekday == 7
        return weekday in _expand(text, 1, 7, _WEEKDAYS, "day-of-week")

    def next_after(self, moment: datetime) -> datetime:
        """The first matching minute strictly after ``moment``."""
        zone = ZoneInfo(self.timezone)
        candidate = moment.astimezone(zone).replace(second=0, microsecond=0) + timedelta(minutes=1)
        limit = candidate + timedelta(days=366 * 5)
        while candidate < limit:
            if candidate.year not in self.years:
                candidate = candidate.replace(year=candidate.year + 1, month=1, day=1, hour=0, minute=0)
                if candidate.year > max(self.years):
                    break
                continue
            if candidate.month not in self.months or not self.matches_day(candidate):
                candidate = (candidate + timedelta(days=1)).replace(hour=0, minute=0)
                continue
            if candidate.hour not in self.hours:
                candidate = (candidate + timedelta(hours=1)).replace(minute=0)
                continue
            if candidate.minute not in self.minutes:
                candidate += timedelta(minutes=1)
                continue
            return candidate.astimezone(UTC)
        raise ScheduleError(f"cron({self.text}) never fires again after {moment.isoformat()}")


def _nearest_weekday(year: int, month: int, day_number: int) -> int:
    day = datetime(year, month, day_number)
    last = calendar.monthrange(year, month)[1]
    if day.weekday() == 5:  # Saturday -> Friday, unless that leaves the month
        return day_number - 1 if day_number > 1 else day_number + 2
    if day.weekday() == 6:  # Sunday -> Monday, unless that leaves the month
        return day_number + 1 if day_number < last else day_number - 2
    return day_number


_RATE = re.compile(r"^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$", re.I)
_CRON = re.compile(r"^cron\((.*)\)$", re.I)
_AT = re.compile(r"^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$", re.I)
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def next_fire_time(
    expression: str, after: datetime, *, started: datetime | None = None, timezone: str = "UTC"
) -> datetime | None:
    """When ``expression`` next fires after ``after`` (None: never again).

    For ``rate`` the sequence is ``started + k * interval``; ``started`` defaults to ``after``.
    """
    text = expression.strip()
    if match := _RATE.match(text):
        interval = int(match.group(1)) * _UNIT_SECONDS[match.group(2).lower().rstrip("s")]
        if interval <= 0:
            raise ScheduleError(f"rate must be positive: {expression}")
        origin = started or after
        elapsed = (after - origin).total_seconds()
        steps = int(elapsed // interval) + 1 if elapsed >= 0 else 1
        return origin + timedelta(seconds=steps * interval)
    if match := _CRON.match(text):
        return CronExpression.parse(match.group(1), timezone).next_after(after)
    if match := _AT.match(text):
        moment = datetime.fromisoformat(match.group(1)).replace(tzinfo=ZoneInfo(timezone)).astimezone(UTC)
        return moment if moment > after else None
    raise ScheduleError(f"unsupported schedule expression: {expression!r}")


# ---------------------------------------------------------------------------------------------------
# Reading schedules from the transformed template


def _role(value: Any) -> str | None:
    return str(value) if value else None


def parse_schedules(
    template: Mapping[str, Any],
    resolve: Callable[[Any], Any],
    physical_ids: Mapping[str, str],
    region: str,
    account_id: str,
) -> list[ScheduleSpec]:
    """Every scheduled EventBridge rule and EventBridge Scheduler schedule of a transformed template."""
    schedules: list[ScheduleSpec] = []
    for logical_id, resource in (template.get("Resources") or {}).items():
        properties = resource.get("Properties") or {}
        if resource.get("Type") == "AWS::Events::Rule" and properties.get("ScheduleExpression"):
            name = physical_ids.get(logical_id, logical_id)
            targets = tuple(
                ScheduleTarget(
                    arn=str(resolve(target.get("Arn"))),
                    target_id=str(target.get("Id", "")),
                    input=resolve(target.get("Input")),
                    input_path=target.get("InputPath"),
                    input_transformer=resolve(target.get("InputTransformer")),
                    role_arn=_role(resolve(target.get("RoleArn"))),
                )
                for target in properties.get("Targets") or []
            )
            schedules.append(
                ScheduleSpec(
                    logical_id=logical_id,
                    name=name,
                    kind="events-rule",
                    expression=str(resolve(properties["ScheduleExpression"])),
                    enabled=str(properties.get("State", "ENABLED")).upper() == "ENABLED",
                    arn=f"arn:aws:events:{region}:{account_id}:rule/{name}",
                    targets=targets,
                )
            )
        elif resource.get("Type") == "AWS::Scheduler::Schedule":
            name = physical_ids.get(logical_id, logical_id)
            target = properties.get("Target") or {}
            group = properties.get("GroupName") or "default"
            schedules.append(
                ScheduleSpec(
                    logical_id=logical_id,
                    name=name,
                    kind="scheduler",
                    expression=str(resolve(properties.get("ScheduleExpression"))),
                    enabled=str(properties.get("State", "ENABLED")).upper() == "ENABLED",
                    arn=f"arn:aws:scheduler:{region}:{account_id}:schedule/{group}/{name}",
                    targets=(
                        ScheduleTarget(
                            arn=str(resolve(target.get("Arn"))),
                            input=resolve(target.get("Input")),
                            role_arn=_role(resolve(target.get("RoleArn"))),
                        ),
                    ),
                    timezone=str(properties.get("ScheduleExpressionTimezone") or "UTC"),
                )
            )
    return schedules


# ---------------------------------------------------------------------------------------------------
# Firing


@dataclass(frozen=True)
class FiredSchedule:
    """One delivery of a schedule to a target."""

    schedule: str
    target_arn: str
    payload: Any
    fired_at: datetime


def shape_target_payload(target: ScheduleTarget, event: dict[str, Any]) -> Any:
    """Apply a rule target's Input / InputPath / InputTransformer to ``event``, as EventBridge does."""
    return target_payload(
        {"Input": target.input, "InputPath": target.input_path, "InputTransformer": target.input_transformer},
        event,
    )


Deliver = Callable[[str, bytes], None]
FIRED_HISTORY = 1000
RUNTIME_POLL_SECONDS = 0.1  # real seconds between looks at the schedules created through the API


@dataclass(frozen=True)
class _RuntimeSchedule:
    """A schedule created through the Scheduler API: what identifies one version of it, and what to do
    once a one-time schedule has fired."""

    spec: ScheduleSpec
    group: str
    version: tuple[str, str, float]  # (ARN, expression, last modified)
    delete_after_completion: bool


def runtime_schedules(account_id: str, region: str) -> list[_RuntimeSchedule]:
    """Every schedule of the embedded Scheduler (moto's backend, in this process), by group and name."""
    try:
        from moto.scheduler.models import scheduler_backends
    except ImportError:  # pragma: no cover - moto is the local cloud's own dependency
        return []
    backend = scheduler_backends[account_id][region]
    for _ in range(5):  # the server thread may change the dictionaries while they are read
        try:
            found = []
            for group in list(backend.schedule_groups.values()):
                for schedule in list(group.schedules.values()):
                    target = dict(schedule.target or {})
                    found.append(
                        _RuntimeSchedule(
                            spec=ScheduleSpec(
                                logical_id=str(schedule.name),
                                name=str(schedule.name),
                                kind="scheduler",
                                expression=str(schedule.schedule_expression),
                                enabled=str(schedule.state or "ENABLED").upper() == "ENABLED",
                                arn=str(schedule.arn),
                                targets=(
                                    ScheduleTarget(
                                        arn=str(target.get("Arn", "")),
                                        input=target.get("Input"),
                                        role_arn=_role(target.get("RoleArn")),
                                    ),
                                ),
                                timezone=str(schedule.schedule_expression_timezone or "UTC"),
                            ),
                            group=str(group.name),
                            version=(
                                str(schedule.arn),
                                str(schedule.schedule_expression),
                                float(schedule.last_modified_date or 0),
                            ),
                            delete_after_completion=str(schedule.action_after_completion or "").upper()
                            == "DELETE",
                        )
                    )
            return sorted(found, key=lambda item: item.spec.arn)
        except RuntimeError:
            continue
    return []


def _delete_runtime_schedule(account_id: str, region: str, runtime: _RuntimeSchedule) -> None:
    """Delete a fired schedule from the embedded Scheduler, as its ActionAfterCompletion DELETE asks;
    one deleted or changed meanwhile is left alone."""
    from moto.scheduler.models import scheduler_backends

    backend = scheduler_backends[account_id][region]
    group = backend.schedule_groups.get(runtime.group)
    if group is None:
        return
    current = group.schedules.get(runtime.spec.name)
    if current is not None and float(current.last_modified_date or 0) == runtime.version[2]:
        group.schedules.pop(runtime.spec.name, None)


def _with_context_attributes(text: str, schedule: ScheduleSpec, moment: datetime) -> str:
    """Scheduler's context attributes in a target's input, filled in for this delivery."""
    values = {
        "<aws.scheduler.schedule-arn>": schedule.arn,
        "<aws.scheduler.scheduled-time>": moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "<aws.scheduler.execution-id>": str(uuid.uuid4()),
        "<aws.scheduler.attempt-number>": "1",
    }
    for placeholder, value in values.items():
        text = text.replace(placeholder, value)
    return text


class Scheduler:
    """Fires schedules on the emulated clock in a background thread; ``fire_now`` fires one at once.

    Schedules come from deployed stacks (``add_stack``, also while running; a redeploy replaces that
    stack's schedules and keeps the cadence of those that still exist) or directly from ``schedules``.
    """

    def __init__(
        self,
        schedules: list[ScheduleSpec] | None = None,
        *,
        endpoint_url: str,
        region: str = "us-east-1",
        account_id: str = "123456789012",
        clock: Clock | None = None,
        deliver: Deliver | None = None,
        check_live_rule_state: bool = True,
    ) -> None:
        self.region = region
        self.account_id = account_id
        # The latest deliveries (bounded: a long `cvpn local up` fires every emulated minute).
        self.fired: deque[FiredSchedule] = deque(maxlen=FIRED_HISTORY)
        self._by_stack: dict[str, list[ScheduleSpec]] = {"": list(schedules or [])}
        self._clock = clock
        self._session = boto3.session.Session(region_name=region)
        self._endpoint_url = endpoint_url
        self._deliver = deliver or self._deliver_through_local_cloud
        self._check_live_rule_state = check_live_rule_state
        self._executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="localcloud-schedule")
        self._stop = threading.Event()
        self._changed = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._clients: dict[str, Any] = {}
        # (role ARN, session name, principal) -> the role's credentials, or None to deliver with the
        # session's own credentials; set by the local cloud when it enforces IAM.
        self.role_credentials: Callable[[str, str, str], Mapping[str, str] | None] | None = None
        # Schedules created through the API: the latest seen by ARN, and the versions of one-time
        # schedules that have fired (never again).
        self._runtime: dict[str, _RuntimeSchedule] = {}
        self._fired_runtime: set[tuple[str, str, float]] = set()
        self._watcher: threading.Thread | None = None

    @property
    def clock(self) -> Clock:
        """The clock schedules run on: the one given, else the local cloud's current clock."""
        return self._clock or get_clock()

    @property
    def schedules(self) -> list[ScheduleSpec]:
        """Every schedule known: the stacks' in the order the stacks were added, then those created
        through the Scheduler API."""
        with self._lock:
            from_stacks = [schedule for schedules in self._by_stack.values() for schedule in schedules]
            return from_stacks + [item.spec for item in self._runtime.values()]

    def _refresh_runtime(self) -> bool:
        """Read the schedules created through the API; True when they changed since the last read."""
        found = {item.spec.arn: item for item in runtime_schedules(self.account_id, self.region)}
        with self._lock:
            changed = {arn: item.version for arn, item in found.items()} != {
                arn: item.version for arn, item in self._runtime.items()
            } or any(
                found[arn].spec.enabled != self._runtime[arn].spec.enabled
                for arn in found.keys() & self._runtime.keys()
            )
            self._runtime = found
        return changed

    def _watch_runtime(self) -> None:
        while not self._stop.wait(RUNTIME_POLL_SECONDS):
            try:
                if self._refresh_runtime():
                    self._changed.set()
            except Exception:
                logger.exception("reading the schedules created through the API failed")

    def add_stack(self, stack: DeployedStack) -> None:
        """Fire the schedules of ``stack`` (replacing those of an earlier deploy of the same stack)."""
        with self._lock:
            self._by_stack[stack.stack_name] = list(stack.schedules)
        self._changed.set()

    def remove_stack(self, stack_name: str) -> None:
        """Stop firing the schedules of ``stack_name``."""
        with self._lock:
            self._by_stack.pop(stack_name, None)
        self._changed.set()

    def _client(self, service: str) -> Any:
        with self._lock:
            if service not in self._clients:
                self._clients[service] = self._session.client(
                    service,  # type: ignore[call-overload]
                    endpoint_url=self._endpoint_url,
                )
            return self._clients[service]

    # -- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> Scheduler:
        """Start firing in a background thread; returns self."""
        self._stop.clear()
        self._refresh_runtime()
        self._thread = threading.Thread(target=self._run, name="localcloud-scheduler", daemon=True)
        self._thread.start()
        self._watcher = threading.Thread(
            target=self._watch_runtime, name="localcloud-scheduler-api", daemon=True
        )
        self._watcher.start()
        return self

    def stop(self) -> None:
        """Stop firing and wait for deliveries in flight (a stopped scheduler cannot be restarted)."""
        self._stop.set()
        self._changed.set()
        if self._thread:
            self._thread.join(timeout=5)
        if self._watcher:
            self._watcher.join(timeout=5)
        self._executor.shutdown(wait=True)

    def __enter__(self) -> Scheduler:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _plan(self, origins: dict[str, datetime]) -> list[tuple[datetime, int, ScheduleSpec]]:
        """The next fire time of every schedule; a new schedule's rate cadence starts now."""
        now = self.clock.now()
        queue: list[tuple[datetime, int, ScheduleSpec]] = []
        with self._lock:
            runtime = dict(self._runtime)
        for order, schedule in enumerate(self.schedules):
            origin = origins.setdefault(schedule.arn, now)
            one_time = _AT.match(schedule.expression.strip())
            if schedule.arn in runtime and one_time:
                # A one-time schedule fires at its time, or at once when that has passed unseen.
                if runtime[schedule.arn].version not in self._fired_runtime:
                    due = datetime.fromisoformat(one_time.group(1)).replace(
                        tzinfo=ZoneInfo(schedule.timezone)
                    )
                    heapq.heappush(queue, (due.astimezone(UTC), order, schedule))
                continue
            try:
                upcoming = next_fire_time(
                    schedule.expression, now, started=origin, timezone=schedule.timezone
                )
            except ScheduleError:
                logger.exception("schedule %s is skipped", schedule.name)
                continue
            if upcoming is not None:
                heapq.heappush(queue, (upcoming, order, schedule))
        return queue

    def _run(self) -> None:
        origins: dict[str, datetime] = {}
        while not self._stop.is_set():
            self._changed.clear()
            queue = self._plan(origins)
            while queue and not self._changed.is_set():
                due = queue[0][0]
                if not self.clock.sleep((due - self.clock.now()).total_seconds(), self._changed):
                    break
                now = self.clock.now()
                while queue and queue[0][0] <= now:
                    due, order, schedule = heapq.heappop(queue)
                    try:
                        self._fire(schedule, due)
                    except Exception:
                        logger.exception("firing schedule %s failed", schedule.name)
                    self._completed(schedule)
                    try:
                        upcoming = next_fire_time(
                            schedule.expression,
                            now,
                            started=origins.get(schedule.arn, now),
                            timezone=schedule.timezone,
                        )
                    except ScheduleError:
                        logger.exception("schedule %s is skipped", schedule.name)
                        upcoming = None
                    if upcoming is not None:
                        heapq.heappush(queue, (upcoming, order, schedule))
            if not queue:
                self._changed.wait(timeout=1.0)

    # -- firing -------------------------------------------------------------------------------------

    def _completed(self, schedule: ScheduleSpec) -> None:
        """After a schedule created through the API fired: a one-time one never fires again, and is
        deleted when it asked for that (ActionAfterCompletion DELETE)."""
        with self._lock:
            runtime = self._runtime.get(schedule.arn)
        if runtime is None or not _AT.match(schedule.expression.strip()):
            return
        self._fired_runtime.add(runtime.version)
        if runtime.delete_after_completion:
            _delete_runtime_schedule(self.account_id, self.region, runtime)

    def find(self, name: str) -> ScheduleSpec:
        """The schedule whose logical id, name or ARN is ``name``."""
        for schedule in self.schedules:
            if name in (schedule.logical_id, schedule.name, schedule.arn):
                return schedule
        raise KeyError(f"no schedule named {name!r}; known: {[s.logical_id for s in self.schedules]}")

    def fire_now(self, name: str, *, force: bool = False) -> list[FiredSchedule]:
        """Fire schedule ``name`` now (a disabled one only with ``force``); returns the deliveries."""
        return self._fire(self.find(name), self.clock.now(), force=force)

    def is_enabled(self, schedule: ScheduleSpec) -> bool:
        """The schedule's state; for EventBridge rules the live state in the embedded EventBridge."""
        if schedule.kind == "events-rule" and self._check_live_rule_state:
            try:
                state = self._client("events").describe_rule(Name=schedule.name)["State"]
                return str(state).upper() == "ENABLED"
            except Exception:
                logger.debug("rule %s not readable live; using the template state", schedule.name)
        return schedule.enabled

    def _fire(self, schedule: ScheduleSpec, moment: datetime, *, force: bool = False) -> list[FiredSchedule]:
        if not force and not self.is_enabled(schedule):
            logger.debug("schedule %s is disabled", schedule.name)
            return []
        deliveries: list[FiredSchedule] = []
        scheduled_event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": self.account_id,
            "time": moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": self.region,
            "resources": [schedule.arn],
            "detail": {},
        }
        for target in schedule.targets:
            if schedule.kind == "scheduler":
                text = _with_context_attributes(target.input, schedule, moment) if target.input else ""
                payload: Any = json.loads(text) if text else {}
            else:
                payload = shape_target_payload(target, dict(scheduled_event))
            body = (payload if isinstance(payload, str) else json.dumps(payload)).encode()
            fired = FiredSchedule(schedule.name, target.arn, payload, moment)
            self.fired.append(fired)
            deliveries.append(fired)
            logger.info("schedule %s fires %s", schedule.name, target.arn)
            self._executor.submit(self._deliver_logged, target.arn, body, target.role_arn, schedule.name)
        return deliveries

    def _deliver_logged(self, arn: str, body: bytes, role_arn: str | None = None, name: str = "") -> None:
        try:
            if role_arn and self._deliver == self._deliver_through_local_cloud:
                self._deliver_through_local_cloud(arn, body, role_arn=role_arn, session_name=name)
            else:
                self._deliver(arn, body)
        except Exception:
            logger.exception("delivery to %s failed", arn)

    def _role_client(self, service: str, role_arn: str | None, session_name: str) -> Any:
        """A client signing with the target's role when the local cloud hands roles out (an
        EventBridge rule's Lambda target has none: Lambda's resource policy lets the service in)."""
        provider = self.role_credentials
        credentials = (
            provider(role_arn, session_name or "schedule", f"scheduler:{session_name}")
            if (provider is not None and role_arn)
            else None
        )
        if not credentials:
            return self._client(service)
        return self._session.client(
            service,  # type: ignore[call-overload]
            endpoint_url=self._endpoint_url,
            aws_access_key_id=credentials["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=credentials["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=credentials["AWS_SESSION_TOKEN"],
        )

    def _deliver_through_local_cloud(
        self, arn: str, body: bytes, role_arn: str | None = None, session_name: str = ""
    ) -> None:
        service = arn.split(":")[2] if arn.count(":") >= 5 else ""
        if service == "lambda":
            client = self._role_client("lambda", role_arn, session_name)
            client.invoke(FunctionName=arn, InvocationType="Event", Payload=body)
        elif service == "states":
            client = self._role_client("stepfunctions", role_arn, session_name)
            client.start_execution(stateMachineArn=arn, input=body.decode())
        elif service == "sqs":
            queue_name = arn.rsplit(":", 1)[-1]
            sqs = self._role_client("sqs", role_arn, session_name)
            queue_url = sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
            sqs.send_message(QueueUrl=queue_url, MessageBody=body.decode())
        else:
            logger.warning("schedule target %s: service %r is not delivered locally", arn, service)
