"""Split an incident's life into stored segments for the reports.

A segment is a span in which the incident's state, support group, tier, assignee, vendor
and channel stay the same. The spans are derived from the incident's history only: the
state changes are its `TransitionLog` rows, the assignment changes its history rows
(django-simple-history), so an imported incident with a past history gets the same
segments as a live one. Handling time per tier, engineer, vendor or channel is then a
plain aggregate over `IncidentSegment`.

The segment the incident is in now has no end and counts no seconds yet; a final state
(closed, cancelled) ends the life and has no segment of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.contrib.contenttypes.models import ContentType
from django.db import transaction

from apps.bjgas_platform.models import (
    BusinessCalendar,
    SlaClock,
    SlaMetric,
    TransitionLog,
    WorkflowState,
)
from apps.bjgas_platform.services.business_time import BusinessClock

from ..models import Incident, IncidentSegment

STANDARD_CALENDAR = "standard"
ASSIGNMENT_FIELDS = ("support_group_id", "tier", "assignee_id", "vendor_id", "channel")


@dataclass(frozen=True)
class Assignment:
    support_group_id: int | None
    tier: int | None
    assignee_id: int | None
    vendor_id: int | None
    channel: str


def rebuild_segments(incident: Incident) -> list[IncidentSegment]:
    """Replace the incident's segments with those its history gives; call in its transaction."""
    states = {s.code: s for s in WorkflowState.objects.filter(workflow_id=incident.workflow_id)}
    logs = list(
        TransitionLog.objects.filter(
            content_type=ContentType.objects.get_for_model(Incident), object_id=incident.pk
        )
        .order_by("created_at", "id")
        .values_list("created_at", "to_state")
    )
    snapshots = [
        (row[0], Assignment(*row[1:]))
        for row in incident.history.order_by("history_date", "history_id").values_list(
            "history_date", *ASSIGNMENT_FIELDS
        )
    ]
    clock = business_clock(incident)
    segments = build_segments(incident, states, logs, snapshots, clock)
    with transaction.atomic():
        IncidentSegment.objects.filter(incident=incident).delete()
        IncidentSegment.objects.bulk_create(segments)
        store_figures(incident, segments, clock)
    return segments


def build_segments(
    incident: Incident,
    states: dict[str, WorkflowState],
    logs: list[tuple[datetime, str]],
    snapshots: list[tuple[datetime, Assignment]],
    clock: BusinessClock | None,
    make=IncidentSegment,
) -> list[IncidentSegment]:
    """Return the unsaved segments of an incident's log and assignment snapshots.

    `make` builds each segment from its field values (a bulk writer may pass a lighter
    class than the model)."""
    segments = []
    for state, assignment, start, end in spans(states, logs, snapshots, incident):
        wall = business = 0.0
        if end is not None:
            wall = (end - start).total_seconds()
            business = clock.seconds_between(start, end) if clock else wall
        segments.append(
            make(
                incident=incident,
                state=state.code,
                state_category=state.category,
                sla_running=state.sla_running,
                support_group_id=assignment.support_group_id,
                tier=assignment.tier,
                assignee_id=assignment.assignee_id,
                vendor_id=assignment.vendor_id,
                channel=assignment.channel,
                started_at=start,
                ended_at=end,
                wall_seconds=wall,
                business_seconds=business,
            )
        )
    return segments


def handling_figures(
    incident: Incident, segments: list[IncidentSegment], clock: BusinessClock | None
) -> tuple[float | None, float | None]:
    """Return (wall, business) handling seconds: reported → resolved, business without pauses.

    Wall time runs from the report to the resolution, so the span waiting for the
    requester's confirmation after it never counts. Business time is measured on the
    incident's SLA calendar over the same window, less the spans in which the SLA clock
    did not run (waiting for the requester or a vendor, an earlier resolution).
    """
    start, end = incident.created_at, incident.resolved_at
    if end is None or start is None:
        return None, None
    wall = max(0.0, (end - start).total_seconds())
    if clock is None:
        return wall, wall
    business = clock.seconds_between(start, end) if end > start else 0.0
    for segment in segments:
        if segment.sla_running or segment.state_category in ("closed", "cancelled"):
            continue
        begin = max(segment.started_at, start)
        stop = min(segment.ended_at or end, end)
        if stop > begin:
            business -= clock.seconds_between(begin, stop)
    return wall, max(0.0, business)


def store_figures(
    incident: Incident, segments: list[IncidentSegment], clock: BusinessClock | None
) -> None:
    """Write the incident's handling figures for the reports, without touching its history."""
    wall, business = handling_figures(incident, segments, clock)
    if (incident.handling_seconds, incident.business_seconds) != (wall, business):
        incident.handling_seconds, incident.business_seconds = wall, business
        Incident.objects.filter(pk=incident.pk).update(
            handling_seconds=wall, business_seconds=business
        )


def spans(states, logs, snapshots, incident: Incident):
    """Return (state, assignment, start, end) spans; the current one ends with None."""
    if not logs:
        return []
    # Before its first history row the incident had the values it was created with.
    assignment = snapshots[0][1] if snapshots else current_assignment(incident)

    # Events at one moment are applied together: a transition and the assignment change
    # it carries (a transfer) share their time and make one boundary, not two.
    events: dict[datetime, list] = {}
    for at, to_state in logs:
        events.setdefault(at, []).append(("state", to_state))
    for at, snapshot in snapshots:
        if at >= logs[0][0]:
            events.setdefault(at, []).append(("assignment", snapshot))

    found: list[list] = []
    state_code = None
    for at in sorted(events):
        for kind, value in events[at]:
            if kind == "state":
                state_code = value
            else:
                assignment = value
        state = states.get(state_code) or _unknown_state(state_code)
        if found and found[-1][3] is None:
            if (found[-1][0].code, found[-1][1]) == (state.code, assignment):
                continue
            found[-1][3] = at
        if not state.is_final:
            found.append([state, assignment, at, None])
    return [tuple(span) for span in found]


def _unknown_state(code: str | None) -> WorkflowState:
    """Stand in for a state the workflow no longer defines (renamed after the fact)."""
    return WorkflowState(code=code or "", category="", sla_running=False)


def current_assignment(incident: Incident) -> Assignment:
    return Assignment(*(getattr(incident, name) for name in ASSIGNMENT_FIELDS))


def business_clock(incident: Incident) -> BusinessClock | None:
    """Return the clock of the incident's SLA calendar, else of the standard calendar."""
    clocks = {
        clock.metric: clock
        for clock in SlaClock.objects.filter(
            content_type=ContentType.objects.get_for_model(Incident),
            object_id=incident.pk,
            policy__isnull=False,
        ).select_related("policy__calendar")
    }
    # The resolution clock's calendar is the one handling time is measured on.
    clock = clocks.get(SlaMetric.RESOLUTION) or next(iter(clocks.values()), None)
    calendar = clock.policy.calendar if clock else None
    if calendar is None:
        calendar = BusinessCalendar.objects.filter(code=STANDARD_CALENDAR).first()
    return BusinessClock.for_calendar(calendar) if calendar else None
