"""The SLA engine: choose a record's policy, derive its clocks from history, fire on time.

Every figure is derived, never counted up: from the record's report time (`created_at`),
its state history (TransitionLog rows, read through the workflow's states: category,
whether the clock runs, milestone) and its public replies. An imported record with a past
history therefore gets the figures a live one would, and a changed policy or calendar is
applied by deriving again (`reapply_policies`).

The four limits:

- dispatch: from the report to the first entry into a dispatched or accepted milestone
  state, or into a resolved, closed or cancelled state;
- accept: from the latest entry into a dispatched milestone state to the next entry into
  an accepted one (or a resolved, closed or cancelled state); a transfer back to a
  dispatched state restarts this clock and no other;
- response: from the report to the first public reply by someone other than the requester,
  or the first entry into an accepted milestone (or a resolved, closed, cancelled state);
- resolution: from the report to the entry into the resolved (or closed, cancelled) state
  the record is still in; resolved spans that a rejected resolution left behind never
  count, like pauses.

A clock counts the business time (on the policy's calendar) of the states whose SLA clock
runs, starting at the first business moment after its start; other states pause it. A
limit is reached at the moment the counted time equals it, so a changed priority or policy
keeps the time used and the pauses taken, and the new limit counts from the report.

What a clock row holds: `status` is running or paused while the clock is open, met or
breached once it stopped, and `breached` says at any time whether the limit was used up.
`due_at` is, for a running clock, when the limit is used up if nothing pauses it; none for
a paused clock with time left; the moment of the breach once breached; and for a clock
that stopped in time, the deadline it met. When the calendar cannot answer
(CalendarError) the last valid figures are kept and the error becomes the clock's
warning; a year without holiday rows is counted as plain weekdays and named there too.

What fires: a reminder when the counted time reaches each percentage of the limit, the
breach when it reaches the limit, and each escalation level when it reaches the limit plus
the level's minutes (so waiting for the requester after a breach also holds back the
escalation). Each fires once per (clock, kind, level, deadline), enforced by SlaEvent's
unique constraint: the deadline of a reminder is the due time planned when it fired, that
of a breach or an escalation the moment of the breach. A later pause leaves those moments
alone, so nothing fires twice; a changed limit or a restarted acceptance clock moves them,
so they may fire again. Nothing fires once a clock has stopped.

Policy choice, per limit: among the active policies of the record's process that set the
limit, a policy on the record's catalog item beats one on its parent item, which beats
one on the grandparent and so on, which beats one on no item. Among equals, a policy
whose priority and severity are both set and match beats one with one of them, which
beats one with neither; a matching severity (set only where a service agreement applies)
beats a matching priority; then the lower code wins. So a severity agreement that only
limits the response leaves the other limits to the priority policies.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import FieldDoesNotExist
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.db.models.signals import post_save
from django.utils import timezone

from ..choices import StateCategory
from ..models import (
    BusinessCalendar,
    Comment,
    CommentKind,
    ServiceCatalogItem,
    SlaClock,
    SlaClockStatus,
    SlaEscalationLevel,
    SlaEvent,
    SlaEventKind,
    SlaMetric,
    SlaPolicy,
    SlaRelation,
    TransitionLog,
    User,
    VendorEngineer,
    Workflow,
    WorkflowRecord,
    WorkflowState,
)
from ..signals import clocks_refreshed, transition_applied
from .business_time import BusinessClock, CalendarError

logger = logging.getLogger(__name__)

DISPATCHED = "dispatched"
ACCEPTED = "accepted"
DONE = frozenset({StateCategory.RESOLVED, StateCategory.CLOSED, StateCategory.CANCELLED})
BREACH_LEVEL = 0
STORED_FIELDS = [
    "policy",
    "limit_seconds",
    "started_at",
    "due_at",
    "stopped_at",
    "elapsed_seconds",
    "paused_seconds",
    "status",
    "breached",
    "warning",
    "next_check_at",
    "updated_at",
]
# A clock whose check failed unexpectedly is tried again this much later.
RETRY_AFTER = timedelta(minutes=5)
# Upper bound of batches one sweep takes, so that a fault can never loop it forever.
MAX_BATCHES = 10_000
SWEEP_TASK = "apps.bjgas_platform.tasks.sla_sweep"
SWEEP_SCHEDULE_NAME = "bjgas: SLA sweep"


# ----------------------------------------------------------------------------- history


@dataclass(frozen=True)
class StateInfo:
    """What one workflow state means for the clocks."""

    category: str = StateCategory.OPEN
    running: bool = True
    milestone: str = ""

    @property
    def done(self) -> bool:
        return self.category in DONE


@dataclass
class Span:
    start: datetime
    end: datetime | None
    state: StateInfo


@dataclass
class History:
    """A record's life as spans of states, and its first public reply by staff."""

    created: datetime
    spans: list[Span]
    first_reply: datetime | None


@dataclass(frozen=True)
class FirePoint:
    kind: str
    level: int
    deadline: datetime
    fire_at: datetime
    escalation: SlaEscalationLevel | None = None


@dataclass
class ClockFigures:
    """Everything a clock row stores, plus the moments at which something fires."""

    limit_seconds: int
    started_at: datetime
    due_at: datetime | None
    stopped_at: datetime | None
    elapsed_seconds: float
    paused_seconds: float
    status: str
    breached: bool
    warning: str = ""
    points: list[FirePoint] = field(default_factory=list)


@dataclass
class Piece:
    """A span clipped to a clock's window; `seconds` is business time up to now."""

    start: datetime
    end: datetime | None
    counts: bool
    seconds: float


def build_history(
    record: WorkflowRecord,
    logs: list[TransitionLog],
    reply_times: Iterable[datetime],
    state_of: Callable[[int, str], StateInfo],
) -> History:
    """Turn a record's log rows (oldest first) into spans starting at its report time."""
    created = getattr(record, "created_at", None) or (
        logs[0].created_at if logs else record.state_changed_at or timezone.now()
    )
    entries: list[tuple[datetime, StateInfo]] = []
    if not logs:
        entries.append((created, state_of(record.workflow_id, record.state)))
    elif logs[0].from_state:
        entries.append((created, state_of(logs[0].workflow_id, logs[0].from_state)))
    for log in logs:
        entries.append((max(log.created_at, created), state_of(log.workflow_id, log.to_state)))
    # The first state holds from the report on, even when its log row was written later.
    entries[0] = (created, entries[0][1])
    spans = [
        Span(start, entries[i + 1][0] if i + 1 < len(entries) else None, state)
        for i, (start, state) in enumerate(entries)
    ]
    replies = [max(t, created) for t in reply_times]
    return History(created=created, spans=spans, first_reply=min(replies, default=None))


def _first_entry(spans: list[Span], begin: int, test: Callable[[StateInfo], bool]):
    return next((s.start for s in spans[begin:] if test(s.state)), None)


def clock_window(metric: str, history: History):
    """Return (start, stop or None, counts(state)) of a metric, or None if it never started."""
    spans = history.spans

    def runs(state: StateInfo) -> bool:
        return state.running

    if metric == SlaMetric.DISPATCH:
        stop = _first_entry(spans, 0, lambda s: s.milestone in (DISPATCHED, ACCEPTED) or s.done)
        return history.created, stop, runs
    if metric == SlaMetric.ACCEPT:
        dispatched = [i for i, s in enumerate(spans) if s.state.milestone == DISPATCHED]
        if not dispatched:
            return None
        begin = dispatched[-1]
        stop = _first_entry(spans, begin + 1, lambda s: s.milestone == ACCEPTED or s.done)
        return spans[begin].start, stop, runs
    if metric == SlaMetric.RESPONSE:
        stops = [
            t
            for t in (
                _first_entry(spans, 0, lambda s: s.milestone == ACCEPTED or s.done),
                history.first_reply,
            )
            if t is not None
        ]
        return history.created, min(stops, default=None), runs
    if metric == SlaMetric.RESOLUTION:
        final = len(spans)
        while final > 0 and spans[final - 1].state.done:
            final -= 1
        stop = spans[final].start if final < len(spans) else None
        return history.created, stop, lambda s: s.running and not s.done
    raise ValueError(metric)


class Measure:
    """Business time of one clock's window: used, paused, and when an amount is reached."""

    def __init__(self, bclock: BusinessClock, history: History, window, now: datetime):
        start, stop, counts = window
        self.bclock, self.now, self.stop = bclock, now, stop
        self.pieces: list[Piece] = []
        for span in history.spans:
            begin = max(span.start, start)
            end = span.end
            if stop is not None:
                end = stop if end is None else min(end, stop)
            if end is not None and end <= begin:
                continue
            seconds = bclock.seconds_between(begin, min(end, now) if end else now)
            self.pieces.append(Piece(begin, end, counts(span.state), seconds))
        self.elapsed = sum(p.seconds for p in self.pieces if p.counts)
        self.paused = sum(p.seconds for p in self.pieces if not p.counts)

    @property
    def running(self) -> bool:
        """Whether the clock runs now: not stopped, and its current state counts."""
        return self.stop is None and bool(self.pieces) and self.pieces[-1].counts

    def moment_at(self, used: float) -> datetime | None:
        """Return when `used` business seconds are reached; None if it stops or pauses first."""
        total = 0.0
        for piece in self.pieces:
            if not piece.counts:
                continue
            if piece.end is None:
                return self.bclock.add(piece.start, used - total)
            if total + piece.seconds >= used:
                return self.bclock.add(piece.start, used - total)
            total += piece.seconds
        return None


def reminder_percents(policy: SlaPolicy) -> list[int]:
    """Return the policy's reminder percentages strictly between 0 and 100, in order."""
    found = set()
    for part in (policy.reminder_percents or "").split(","):
        part = part.strip().rstrip("%")
        if part.isdigit() and 0 < int(part) < 100:
            found.add(int(part))
    return sorted(found)


def derive_clock(
    metric: str,
    history: History,
    policy: SlaPolicy,
    levels: list[SlaEscalationLevel],
    bclock: BusinessClock,
    now: datetime,
) -> ClockFigures | None:
    """Compute one clock from history; None when the metric has no limit or never started."""
    minutes = policy.limit_minutes(metric)
    window = clock_window(metric, history)
    if not minutes or window is None:
        return None
    limit = minutes * 60
    bclock.warnings.clear()
    measure = Measure(bclock, history, window, now)
    stop = window[1]
    breach_at = measure.moment_at(limit)
    if stop is not None:
        breached = breach_at is not None and breach_at < stop
        status = SlaClockStatus.BREACHED if breached else SlaClockStatus.MET
        due_at = breach_at if breached else bclock.add(stop, max(0.0, limit - measure.elapsed))
    else:
        breached = breach_at is not None and breach_at <= now
        status = SlaClockStatus.RUNNING if measure.running else SlaClockStatus.PAUSED
        # A paused clock that has not used its limit has no due time until it runs again.
        due_at = breach_at
    figures = ClockFigures(
        limit_seconds=limit,
        started_at=bclock.next_working_moment(window[0]),
        due_at=due_at,
        stopped_at=stop,
        elapsed_seconds=measure.elapsed,
        paused_seconds=measure.paused,
        status=status,
        breached=breached,
        warning=" ".join(sorted(bclock.warnings))[:300],
    )
    if stop is None:
        figures.points = _fire_points(measure, limit, policy, levels, breach_at)
    bclock.warnings.clear()
    return figures


def _fire_points(measure, limit, policy, levels, breach_at) -> list[FirePoint]:
    points = []
    for percent in reminder_percents(policy):
        used = limit * percent / 100
        moment = measure.moment_at(used)
        if moment is not None:
            deadline = measure.bclock.add(moment, limit - used)
            points.append(FirePoint(SlaEventKind.REMINDER, percent, deadline, moment))
    if breach_at is not None:
        points.append(FirePoint(SlaEventKind.BREACH, BREACH_LEVEL, breach_at, breach_at))
        for level in levels:
            moment = measure.moment_at(limit + level.after_minutes * 60)
            if moment is not None:
                points.append(
                    FirePoint(SlaEventKind.ESCALATION, level.level, breach_at, moment, level)
                )
    return points


def kept_figures(clock: SlaClock | None, limit: int, start: datetime, error: str) -> ClockFigures:
    """Keep a clock's last valid figures when its calendar cannot answer; only the breach
    at the kept due time can still fire."""
    if clock is None or clock.pk is None:
        return ClockFigures(
            limit, start, None, None, 0.0, 0.0, SlaClockStatus.RUNNING, False, error
        )
    figures = ClockFigures(
        limit_seconds=limit,
        started_at=clock.started_at,
        due_at=clock.due_at,
        stopped_at=clock.stopped_at,
        elapsed_seconds=clock.elapsed_seconds,
        paused_seconds=clock.paused_seconds,
        status=clock.status,
        breached=clock.breached,
        warning=error[:300],
    )
    if clock.stopped_at is None and clock.due_at is not None:
        figures.points = [FirePoint(SlaEventKind.BREACH, BREACH_LEVEL, clock.due_at, clock.due_at)]
    return figures


# ---------------------------------------------------------------------------- policies


def catalog_chain(item_id: int | None) -> list[int]:
    """Return the catalog item's id and its ancestors' ids, nearest first."""
    chain: list[int] = []
    while item_id is not None and item_id not in chain:
        chain.append(item_id)
        item_id = (
            ServiceCatalogItem._base_manager.filter(pk=item_id)
            .values_list("parent_id", flat=True)
            .first()
        )
    return chain


def candidate_policies(record: WorkflowRecord) -> list[tuple[tuple, SlaPolicy]]:
    """Return the active policies that may apply to the record, most specific first."""
    chain = catalog_chain(getattr(record, "catalog_item_id", None))
    priority = getattr(record, "priority", "") or ""
    severity = getattr(record, "severity", "") or ""
    policies = (
        SlaPolicy.objects.filter(
            process=ContentType.objects.get_for_model(record),
            is_active=True,
            priority__in={"", priority},
            severity__in={"", severity},
        )
        .filter(Q(catalog_item__isnull=True) | Q(catalog_item__in=chain))
        .select_related("calendar")
    )

    def rank(policy: SlaPolicy) -> tuple:
        depth = chain.index(policy.catalog_item_id) if policy.catalog_item_id else len(chain)
        matches = bool(policy.priority) + bool(policy.severity)
        return (depth, -matches, not policy.severity, policy.code)

    return sorted(((rank(p), p) for p in policies), key=lambda pair: pair[0])


def find_policy(record: WorkflowRecord, metric: str | None = None) -> SlaPolicy | None:
    """Return the most specific active policy for the record; with `metric`, one setting it."""
    return _pick(candidate_policies(record), metric)


def _pick(candidates: list[tuple[tuple, SlaPolicy]], metric: str | None) -> SlaPolicy | None:
    return next((p for _rank, p in candidates if metric is None or p.limit_minutes(metric)), None)


# ------------------------------------------------------------------------------ context


class Context:
    """What many records share during one refresh, sweep or re-application: loaded once."""

    def __init__(self, now: datetime):
        self.now = now
        self._states: dict[int, dict[str, StateInfo]] = {}
        self._bclocks: dict[int, BusinessClock] = {}
        self._levels: dict[int, dict[str, list[SlaEscalationLevel]]] = {}
        self._policies: dict[tuple, list[tuple[tuple, SlaPolicy]]] = {}
        self._logs: dict[tuple[int, int], list[TransitionLog]] = {}
        self._replies: dict[tuple[int, int], list[tuple[int | None, datetime]]] = {}
        self._role_users: dict[int, list[User]] = {}

    @staticmethod
    def key(record) -> tuple[int, int]:
        return ContentType.objects.get_for_model(record).pk, record.pk

    def state_of(self, workflow_id: int, code: str) -> StateInfo:
        if workflow_id not in self._states:
            self._states[workflow_id] = {
                s.code: StateInfo(s.category, s.sla_running, s.sla_milestone)
                for s in WorkflowState.objects.filter(workflow_id=workflow_id)
            }
        return self._states[workflow_id].get(code, StateInfo())

    def business_clock(self, calendar: BusinessCalendar) -> BusinessClock:
        if calendar.pk not in self._bclocks:
            self._bclocks[calendar.pk] = BusinessClock.for_calendar(calendar)
        return self._bclocks[calendar.pk]

    def levels(self, policy: SlaPolicy, metric: str) -> list[SlaEscalationLevel]:
        if policy.pk not in self._levels:
            by_metric: dict[str, list[SlaEscalationLevel]] = {}
            for level in SlaEscalationLevel.objects.filter(policy=policy).order_by("level"):
                by_metric.setdefault(level.metric, []).append(level)
            self._levels[policy.pk] = by_metric
        return self._levels[policy.pk].get(metric, [])

    def role_users(self, level: SlaEscalationLevel) -> list[User]:
        if level.pk not in self._role_users:
            self._role_users[level.pk] = level_role_users(level)
        return self._role_users[level.pk]

    def policy(self, record, metric: str) -> SlaPolicy | None:
        """Return the policy that sets `metric` for the record (candidates loaded once)."""
        key = (
            ContentType.objects.get_for_model(record).pk,
            getattr(record, "catalog_item_id", None),
            getattr(record, "priority", "") or "",
            getattr(record, "severity", "") or "",
        )
        if key not in self._policies:
            self._policies[key] = candidate_policies(record)
        return _pick(self._policies[key], metric)

    def prefetch(self, records: list) -> None:
        """Load the log rows and replies of many records of one kind in two queries."""
        if not records:
            return
        ct = ContentType.objects.get_for_model(records[0])
        ids = [r.pk for r in records]
        for pk in ids:
            self._logs[(ct.pk, pk)] = []
            self._replies[(ct.pk, pk)] = []
        logs = TransitionLog.objects.filter(
            content_type=ct, object_id__in=ids, created_at__lte=self.now
        ).only("object_id", "workflow_id", "from_state", "to_state", "created_at")
        for log in logs.order_by("object_id", "created_at", "id"):
            self._logs[(ct.pk, log.object_id)].append(log)
        replies = Comment.objects.filter(
            content_type=ct,
            object_id__in=ids,
            kind=CommentKind.REPLY,
            author__isnull=False,
            created_at__lte=self.now,
        ).values_list("object_id", "author_id", "created_at")
        for object_id, author_id, created_at in replies:
            self._replies[(ct.pk, object_id)].append((author_id, created_at))

    def history(self, record) -> History:
        key = self.key(record)
        if key not in self._logs:
            self.prefetch([record])
        requester_id = getattr(record, "requester_id", None)
        replies = [t for author, t in self._replies[key] if author != requester_id]
        return build_history(record, self._logs[key], replies, self.state_of)

    def derive(self, metric: str, record, history: History, policy, clock) -> ClockFigures | None:
        """Derive one clock; keep the last valid figures when the calendar cannot answer."""
        try:
            return derive_clock(
                metric,
                history,
                policy,
                self.levels(policy, metric),
                self.business_clock(policy.calendar),
                self.now,
            )
        except CalendarError as exc:
            window = clock_window(metric, history)
            minutes = policy.limit_minutes(metric)
            if window is None or not minutes:
                return None
            logger.warning("SLA clock %s of %s %s: %s", metric, record._meta.label, record.pk, exc)
            return kept_figures(clock, minutes * 60, window[0], str(exc))


def _fired_keys(clock_ids: list[int]) -> set[tuple]:
    if not clock_ids:
        return set()
    return set(
        SlaEvent.objects.filter(clock_id__in=clock_ids).values_list(
            "clock_id", "kind", "level", "due_at"
        )
    )


def history_until(record) -> datetime | None:
    """Return the moment before which the record's SLA moments are history, if any.

    A record that came from another system (an import) says when, as `sla_history_until`:
    what fell due there was not ours to announce, so it never fires here; what falls due
    after does, like on any record.
    """
    return getattr(record, "sla_history_until", None)


def _store(
    clock: SlaClock,
    policy: SlaPolicy,
    figures: ClockFigures,
    fired: set,
    until: datetime | None = None,
) -> None:
    """Copy figures onto the clock and plan its next check: the earliest unfired moment
    (after `until`, the record's history horizon)."""
    clock.policy = policy
    clock.limit_seconds = figures.limit_seconds
    clock.started_at = figures.started_at
    clock.due_at = figures.due_at
    clock.stopped_at = figures.stopped_at
    clock.elapsed_seconds = figures.elapsed_seconds
    clock.paused_seconds = figures.paused_seconds
    clock.status = figures.status
    clock.breached = figures.breached
    clock.warning = figures.warning
    pending = [
        p.fire_at
        for p in figures.points
        if (clock.pk, p.kind, p.level, p.deadline) not in fired
        and (until is None or p.fire_at > until)
    ]
    clock.next_check_at = min(pending, default=None)


# ----------------------------------------------------------------------------- refresh


def refresh_clocks(record: WorkflowRecord, now: datetime | None = None) -> dict[str, SlaClock]:
    """Derive every clock of a record from its history and store them; fire nothing."""
    return _refresh(record, Context(now or timezone.now()))


def _refresh(record: WorkflowRecord, ctx: Context) -> dict[str, SlaClock]:
    ct = ContentType.objects.get_for_model(record)
    with transaction.atomic():
        existing = {
            c.metric: c
            for c in SlaClock.objects.select_for_update().filter(
                content_type=ct, object_id=record.pk
            )
        }
        fired = _fired_keys([c.pk for c in existing.values()])
        history = ctx.history(record)
        clocks: dict[str, SlaClock] = {}
        for metric in SlaMetric.values:
            clock = existing.get(metric)
            policy = ctx.policy(record, metric)
            figures = None
            if policy is not None:
                figures = ctx.derive(metric, record, history, policy, clock)
            if figures is None:
                if clock is not None:
                    clock.delete()
                continue
            if clock is None:
                clock = SlaClock(content_type=ct, object_id=record.pk, metric=metric)
            _store(clock, policy, figures, fired, history_until(record))
            clocks[metric] = _save(clock)
        clocks_refreshed.send(sender=type(record), record=record, clocks=clocks)
    return clocks


def derive_history_clocks(
    pairs: list[tuple[WorkflowRecord, list[TransitionLog]]],
    now: datetime,
    make=SlaClock,
    context: Context | None = None,
) -> list[list[SlaClock]]:
    """Return unsaved clocks for records whose whole past arrives at once (an import).

    Each pair is a record (saved or not) with its log rows, oldest first; the caller sets
    the clocks' `object_id` once the records have keys. The clocks carry their figures
    and plan only what falls due after `now`: reminders, breaches and escalations that
    fell due before are history, not news, so the sweep never fires them (the records say
    so with `sla_history_until`, for later refreshes too). `make` builds each clock from its
    first values (a bulk writer may pass a lighter class than the model). A writer of many
    batches passes one `context` for all, so policies and calendars load once.
    """
    ctx = context or Context(now)
    result = []
    for record, logs in pairs:
        ct_id = ContentType.objects.get_for_model(record).pk
        history = build_history(record, logs, [], ctx.state_of)
        clocks = []
        for metric in SlaMetric.values:
            policy = ctx.policy(record, metric)
            figures = ctx.derive(metric, record, history, policy, None) if policy else None
            if figures is None:
                continue
            clock = make(content_type_id=ct_id, object_id=record.pk, metric=metric, pk=None)
            _store(clock, policy, figures, set(), until=now)
            clock.policy_id = policy.pk
            clocks.append(clock)
        result.append(clocks)
    return result


def _save(clock: SlaClock) -> SlaClock:
    if clock.pk is not None:
        clock.save()
        return clock
    try:
        with transaction.atomic():
            clock.save()
        return clock
    except IntegrityError:
        # Another refresh created it meanwhile: take that row and write our figures on it.
        row = SlaClock.objects.select_for_update().get(
            content_type_id=clock.content_type_id, object_id=clock.object_id, metric=clock.metric
        )
        clock.pk = row.pk
        clock.save()
        return clock


def has_policies(model) -> bool:
    """Whether any SLA policy names this process (one indexed query)."""
    return SlaPolicy.objects.filter(process=ContentType.objects.get_for_model(model)).exists()


def reapply_policies(
    target: SlaPolicy | BusinessCalendar | None = None, now: datetime | None = None
) -> int:
    """Derive again the clocks of the open records a policy or calendar touches; all if None.

    Open means not closed and not cancelled: resolved records are included, since their
    verdict depends on the limit. Each record is locked and refreshed in its own transaction.
    """
    policies = SlaPolicy.objects.all()
    if isinstance(target, SlaPolicy):
        policies = policies.filter(pk=target.pk)
    elif isinstance(target, BusinessCalendar):
        policies = policies.filter(calendar=target)
    ctx = Context(now or timezone.now())
    count = 0
    process_ids = set(policies.values_list("process_id", flat=True))
    for ct in ContentType.objects.filter(pk__in=process_ids):
        model = ct.model_class()
        if model is None or not issubclass(model, WorkflowRecord):
            continue
        for pk in _open_record_ids(model, ct):
            with transaction.atomic():
                record = model._base_manager.select_for_update().filter(pk=pk).first()
                if record is not None:
                    _refresh(record, ctx)
                    count += 1
    return count


def _open_record_ids(model, ct: ContentType) -> list[int]:
    condition = Q()
    for workflow in Workflow.objects.filter(model=ct).prefetch_related("states"):
        codes = [s.code for s in workflow.states.all() if not s.is_final]
        if codes:
            condition |= Q(workflow=workflow, state__in=codes)
    if not condition:
        return []
    return list(model._base_manager.filter(condition).order_by("pk").values_list("pk", flat=True))


def _on_transition(sender, record, **kwargs) -> None:
    if has_policies(sender):
        refresh_clocks(record)


def _on_comment(sender, instance: Comment, created: bool, **kwargs) -> None:
    """A public reply may be the first response: derive the record's clocks again."""
    if not created or instance.kind != CommentKind.REPLY:
        return
    model = ContentType.objects.get_for_id(instance.content_type_id).model_class()
    if model is None or not issubclass(model, WorkflowRecord) or not has_policies(model):
        return
    record = model._base_manager.filter(pk=instance.object_id).first()
    if record is not None:
        refresh_clocks(record)


transition_applied.connect(_on_transition, dispatch_uid="sla_refresh_on_transition")
post_save.connect(_on_comment, sender=Comment, dispatch_uid="sla_refresh_on_reply")


# ------------------------------------------------------------------------------- sweep


def sweep(now: datetime | None = None, batch: int = 500) -> int:
    """Fire the reminders, breaches and escalations that are due; return how many fired.

    Takes the clocks whose next check has come, oldest first, in batches, each batch locked
    (rows other sweeps hold are skipped where the database can), so the cost follows the
    number of due clocks. Safe to run twice and side by side.
    """
    now = now or timezone.now()
    fired = 0
    for _batch in range(MAX_BATCHES):
        with transaction.atomic():
            clocks = list(_due_clocks(now, batch))
            fired += _check(clocks, Context(now))
        if len(clocks) < batch:
            break
    return fired


def _due_clocks(now: datetime, batch: int):
    clocks = SlaClock.objects.filter(next_check_at__lte=now).order_by("next_check_at")
    features = connection.features
    if features.has_select_for_update:
        clocks = clocks.select_for_update(skip_locked=features.has_select_for_update_skip_locked)
    return clocks[:batch]


def _check(clocks: list[SlaClock], ctx: Context) -> int:
    records = _load_records(clocks, ctx)
    fired_keys = _fired_keys([c.pk for c in clocks])
    fired = 0
    checked: list[SlaClock] = []
    for clock in clocks:
        record = records.get((clock.content_type_id, clock.object_id))
        try:
            with transaction.atomic():
                if record is None:
                    clock.delete()
                    continue
                fired += _check_clock(clock, record, ctx, fired_keys, checked)
        except Exception:
            # One broken record must not hold up the others: try it again later.
            logger.exception("SLA check of clock %s failed", clock.pk)
            SlaClock.objects.filter(pk=clock.pk).update(next_check_at=ctx.now + RETRY_AFTER)
    SlaClock.objects.bulk_update(checked, STORED_FIELDS)
    return fired


def _load_records(clocks: list[SlaClock], ctx: Context) -> dict[tuple[int, int], WorkflowRecord]:
    ids_by_type: dict[int, set[int]] = {}
    for clock in clocks:
        ids_by_type.setdefault(clock.content_type_id, set()).add(clock.object_id)
    records = {}
    for ct_id, ids in ids_by_type.items():
        model = ContentType.objects.get_for_id(ct_id).model_class()
        if model is None:
            continue
        found = list(model._base_manager.filter(pk__in=ids).select_related(*related_paths(model)))
        ctx.prefetch(found)
        records.update({(ct_id, r.pk): r for r in found})
    return records


def related_paths(model) -> list[str]:
    """Return the paths to the people escalations name that `model` has, for one join."""
    paths = []
    for path in ("assignee", "support_group__leader", "requester__department__head", "vendor"):
        current = model
        for name in path.split("__"):
            try:
                field = current._meta.get_field(name)
            except FieldDoesNotExist:
                break
            if not (field.many_to_one or field.one_to_one) or field.related_model is None:
                break
            current = field.related_model
        else:
            paths.append(path)
    return paths


def _check_clock(clock: SlaClock, record, ctx: Context, fired_keys: set, checked: list) -> int:
    """Fire what is due on one locked clock; queue its new figures for one bulk update."""
    policy = ctx.policy(record, clock.metric)
    figures = None
    if policy is not None:
        figures = ctx.derive(clock.metric, record, ctx.history(record), policy, clock)
    if figures is None:
        clock.delete()
        return 0
    until = history_until(record)
    due = [
        point
        for point in figures.points
        if point.fire_at <= ctx.now
        and (until is None or point.fire_at > until)
        and (clock.pk, point.kind, point.level, point.deadline) not in fired_keys
    ]
    new = _record_events(clock, due)
    for point in new:
        _notify(clock, record, policy, point, ctx)
    fired_keys.update((clock.pk, p.kind, p.level, p.deadline) for p in due)
    _store(clock, policy, figures, fired_keys, until)
    clock.updated_at = ctx.now
    checked.append(clock)
    return len(new)


def _record_events(clock: SlaClock, points: list[FirePoint]) -> list[FirePoint]:
    """Write one SlaEvent per point; return the points that had not fired before.

    The unique constraint decides: all of them go in one savepoint, and should one of them
    exist already (a racing sweep where rows cannot be locked), each is tried in its own.
    """

    def event(point: FirePoint) -> SlaEvent:
        return SlaEvent(
            clock=clock,
            kind=point.kind,
            level=point.level,
            due_at=point.deadline,
            fire_at=point.fire_at,
        )

    if not points:
        return []
    try:
        with transaction.atomic():
            SlaEvent.objects.bulk_create([event(p) for p in points])
        return points
    except IntegrityError:
        pass
    new = []
    for point in points:
        try:
            with transaction.atomic():
                event(point).save()
            new.append(point)
        except IntegrityError:
            continue  # fired already
    return new


def _notify(clock: SlaClock, record, policy: SlaPolicy, point: FirePoint, ctx: Context) -> None:
    """Hand one fired event to the notifications, keyed by the event itself."""
    from .notifications import notify

    recipients: list[User] = []
    emails: list[str] = []
    if point.escalation is not None:
        recipients, emails = escalation_recipients(
            point.escalation, record, ctx.role_users(point.escalation)
        )
    tz = timezone.get_default_timezone()
    context = {
        "metric": clock.metric,
        "metric_name": str(SlaMetric(clock.metric).label),
        "kind": point.kind,
        "level": point.level,
        "policy": policy.name,
        "due_at": f"{point.deadline.astimezone(tz):%Y-%m-%d %H:%M}",
        "fire_at": f"{point.fire_at.astimezone(tz):%Y-%m-%d %H:%M}",
        "limit_minutes": clock.limit_seconds // 60,
        "emails": emails,
    }
    if point.kind == SlaEventKind.REMINDER:
        context["percent"] = point.level
    deadline = point.deadline.astimezone(UTC)
    notify(
        f"sla.{point.kind}",
        record=record,
        recipients=recipients,
        context=context,
        key=f"sla:{clock.pk}:{point.kind}:{point.level}:{deadline:%Y%m%dT%H%M%S.%f}",
    )


def escalation_recipients(
    level: SlaEscalationLevel, record, role_users: list[User] | None = None
) -> tuple[list[User], list[str]]:
    """Return the active users an escalation level names for a record, and extra e-mails.

    The vendor's contact is a person only when one of the vendor's engineers with a user
    account has the contact's e-mail or name; the contact's e-mail is passed on anyway.
    """
    if role_users is None:
        role_users = level_role_users(level)
    users = {u.pk: u for u in role_users}
    emails: list[str] = []
    for relation in (r.strip() for r in level.notify_relations.split(",")):
        person = None
        if relation == SlaRelation.ASSIGNEE:
            person = getattr(record, "assignee", None)
        elif relation == SlaRelation.SUPPORT_GROUP_LEADER:
            group = getattr(record, "support_group", None)
            person = group.leader if group else None
        elif relation == SlaRelation.REQUESTER_DEPARTMENT_HEAD:
            requester = getattr(record, "requester", None)
            department = requester.department if requester else None
            person = department.head if department else None
        elif relation == SlaRelation.VENDOR_CONTACT:
            vendor = getattr(record, "vendor", None)
            if vendor is not None:
                if vendor.contact_email:
                    emails.append(vendor.contact_email)
                person = _vendor_contact_user(vendor)
        if person is not None and person.is_active:
            users[person.pk] = person
    return list(users.values()), emails


def level_role_users(level: SlaEscalationLevel) -> list[User]:
    """Return the active members of the roles an escalation level notifies."""
    return list(User.objects.filter(groups__in=level.notify_roles.all(), is_active=True).distinct())


def _vendor_contact_user(vendor) -> User | None:
    match = Q()
    if vendor.contact_email:
        match |= Q(email__iexact=vendor.contact_email) | Q(user__email__iexact=vendor.contact_email)
    if vendor.contact_name:
        match |= Q(name=vendor.contact_name)
    if not match:
        return None
    engineer = (
        VendorEngineer.objects.filter(match, vendor=vendor, is_active=True, user__is_active=True)
        .select_related("user")
        .order_by("pk")
        .first()
    )
    return engineer.user if engineer else None


# ---------------------------------------------------------------------------- schedule


def ensure_sla_sweep_schedule() -> None:
    """Schedule the SLA sweep every minute in Celery beat unless a schedule exists."""
    from .schedules import ensure_every_minute

    ensure_every_minute(
        SWEEP_SCHEDULE_NAME,
        SWEEP_TASK,
        # A sweep left in the queue while the worker was down is dropped: the next one
        # catches up with everything that came due meanwhile.
        expire_seconds=300,
        description="每分钟一次：发出到期的 SLA 提醒、超时通知和升级通知。",
    )
