"""SLA clocks derived from history, with every expected figure worked out by hand.

The standard calendar here works Monday to Friday 08:30–12:00 and 13:00–17:30 (8 h a
day) and observes China's public holidays; the 7×24 calendar counts every minute. Times
are Beijing time. Every test runs twice, with the host time zone set to UTC and to
Asia/Shanghai, and must give the same figures.

The test workflow (on incidents): new → dispatched (milestone) → accepted (milestone) →
in progress ⇄ waiting (clock paused) → resolved (clock stopped) → closed; a rejected
resolution goes back to in progress; transfer goes back to dispatched; cancel.
"""

from __future__ import annotations

import itertools
import os
import time as time_module
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pytest
from django.contrib.contenttypes.models import ContentType

from apps.bjgas_ops.models import Incident
from apps.bjgas_platform import roles as r
from apps.bjgas_platform.models import (
    BusinessCalendar,
    Comment,
    CommentKind,
    HolidayKind,
    NotificationRule,
    PublicHoliday,
    ServiceCatalogItem,
    SlaClock,
    SlaClockStatus,
    SlaEscalationLevel,
    SlaPolicy,
    TransitionLog,
    Workflow,
    WorkflowState,
    WorkflowTransition,
    WorkingPeriod,
)
from apps.bjgas_platform.services.business_time import seed_public_holidays
from apps.bjgas_platform.services.sla import (
    ensure_sla_sweep_schedule,
    escalation_recipients,
    find_policy,
    reapply_policies,
    refresh_clocks,
)
from apps.bjgas_platform.services.workflow import start_record, take_transition

from .factories import (
    CompanyFactory,
    DepartmentFactory,
    SupportGroupFactory,
    UserFactory,
    VendorEngineerFactory,
    VendorFactory,
)

pytestmark = pytest.mark.django_db
SH = ZoneInfo("Asia/Shanghai")
HOUR = 3600
MINUTE = 60

# code, category, clock runs, milestone, initial
STATES = [
    ("new", "open", True, "", True),
    ("dispatched", "open", True, "dispatched", False),
    ("accepted", "open", True, "accepted", False),
    ("in_progress", "open", True, "", False),
    ("waiting", "waiting", False, "", False),
    ("resolved", "resolved", False, "", False),
    ("closed", "closed", False, "", False),
    ("cancelled", "cancelled", False, "", False),
]
TRANSITIONS = [
    ("dispatch", "new", "dispatched"),
    ("accept", "dispatched", "accepted"),
    ("start", "accepted", "in_progress"),
    ("transfer", "dispatched,accepted,in_progress", "dispatched"),
    ("wait", "accepted,in_progress", "waiting"),
    ("resume", "waiting", "in_progress"),
    ("resolve", "accepted,in_progress", "resolved"),
    ("reject", "resolved", "in_progress"),
    ("close", "resolved", "closed"),
    ("cancel", "new,dispatched", "cancelled"),
]
_numbers = itertools.count(1)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SH)


@contextmanager
def host_time_zone(name: str):
    """Set the process's time zone, as the host's own setting would."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = name
    time_module.tzset()
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = before
        time_module.tzset()


@pytest.fixture(autouse=True, params=["UTC", "Asia/Shanghai"])
def host_tz(request):
    """Run the test with the host's time zone set to UTC, then to Asia/Shanghai."""
    with host_time_zone(request.param):
        yield request.param


@dataclass
class World:
    workflow: Workflow
    standard: BusinessCalendar
    always: BusinessCalendar
    actor: object
    requester: object
    engineer: object
    manager: object
    company: object


def make_world() -> World:
    """Create the calendars, the test workflow and the people; switch off other policies."""
    SlaPolicy.objects.update(is_active=False)
    NotificationRule.objects.update(is_active=False)
    seed_public_holidays(range(2026, 2027))
    standard = BusinessCalendar.objects.create(code="T-STD", name="测试工作日")
    for weekday in range(5):
        for start, end in ((time(8, 30), time(12)), (time(13), time(17, 30))):
            WorkingPeriod.objects.create(calendar=standard, weekday=weekday, start=start, end=end)
    always = BusinessCalendar.objects.create(code="T-247", name="测试 7×24", is_24x7=True)

    workflow = Workflow.objects.create(
        code="t_sla", name="SLA 测试流程", model=ContentType.objects.get_for_model(Incident)
    )
    for order, (code, category, running, milestone, initial) in enumerate(STATES):
        WorkflowState.objects.create(
            workflow=workflow,
            code=code,
            name=code,
            category=category,
            sla_running=running,
            sla_milestone=milestone,
            is_initial=initial,
            order=order,
        )
    for order, (code, sources, target) in enumerate(TRANSITIONS):
        WorkflowTransition.objects.create(
            workflow=workflow,
            code=code,
            label=code,
            source_states=sources,
            target_state=target,
            order=order,
        )
    company = CompanyFactory()
    department = DepartmentFactory(company=company)
    head = UserFactory(username="t-head", company=company, department=department)
    department.head = head
    department.save()
    return World(
        workflow=workflow,
        standard=standard,
        always=always,
        actor=UserFactory(username="t-root", is_superuser=True, is_staff=True),
        requester=UserFactory(username="t-req", company=company, department=department),
        engineer=UserFactory(username="t-eng", company=company, roles=[r.ENGINEER_T1]),
        manager=UserFactory(username="t-mgr", company=company, roles=[r.IT_MANAGER]),
        company=company,
    )


@pytest.fixture
def world() -> World:
    return make_world()


def policy(world: World, code: str, calendar=None, **fields) -> SlaPolicy:
    fields.setdefault("reminder_percents", "")
    return SlaPolicy.objects.create(
        code=code,
        name=code,
        process=ContentType.objects.get_for_model(Incident),
        calendar=calendar or world.standard,
        **fields,
    )


def escalate(sla: SlaPolicy, metric: str, level: int, after: int, roles=(), relations=""):
    escalation = SlaEscalationLevel.objects.create(
        policy=sla, metric=metric, level=level, after_minutes=after, notify_relations=relations
    )
    escalation.notify_roles.set([r.role_group(code) for code in roles])
    return escalation


def report(world: World, when: str, **fields) -> Incident:
    """Report an incident at `when` through the workflow engine; its history starts then."""
    incident = Incident(
        number=f"T-{next(_numbers):05d}",
        title="测试事件",
        requester=world.requester,
        company=world.company,
        created_at=at(when),
        **fields,
    )
    start_record(incident, world.actor, workflow=world.workflow)
    TransitionLog.objects.filter(
        content_type=ContentType.objects.get_for_model(Incident), object_id=incident.pk
    ).update(created_at=at(when))
    refresh_clocks(incident, now=at(when))
    return incident


def move(incident: Incident, code: str, when: str, actor) -> Incident:
    """Take a transition and date it at `when`, then derive the clocks as of then."""
    result = take_transition(incident, code, actor)
    TransitionLog.objects.filter(pk=result.log.pk).update(created_at=at(when))
    refresh_clocks(result.record, now=at(when))
    return result.record


def clocks(incident: Incident, now: str) -> dict[str, SlaClock]:
    refresh_clocks(incident, now=at(now))
    return {
        c.metric: c
        for c in SlaClock.objects.filter(
            content_type=ContentType.objects.get_for_model(Incident), object_id=incident.pk
        )
    }


# -------------------------------------------------------------------------- the clocks


def test_created_outside_working_hours(world):
    policy(
        world,
        "P-STD",
        dispatch_minutes=30,
        accept_minutes=60,
        response_minutes=120,
        resolution_minutes=480,
        reminder_percents="50,75",
    )
    # Reported Friday 2026-11-27 18:00, after hours; the weekend is off.
    incident = report(world, "2026-11-27T18:00")
    c = clocks(incident, "2026-11-27T20:00")
    # Never dispatched: no acceptance clock yet.
    assert set(c) == {"dispatch", "response", "resolution"}
    dispatch = c["dispatch"]
    # Clocks start Monday 08:30; 30 min -> 09:00; nothing used yet.
    assert dispatch.started_at == at("2026-11-30T08:30")
    assert dispatch.due_at == at("2026-11-30T09:00")
    assert dispatch.elapsed_seconds == 0
    assert dispatch.status == SlaClockStatus.RUNNING
    assert not dispatch.breached
    # First to fire: the 50 % reminder, 15 business minutes in -> 08:45.
    assert dispatch.next_check_at == at("2026-11-30T08:45")
    # Response: 2 h -> 10:30. Resolution: 8 h = 3.5 h to noon + 4.5 h 13:00–17:30.
    assert c["response"].due_at == at("2026-11-30T10:30")
    assert c["resolution"].due_at == at("2026-11-30T17:30")

    # Dispatched Monday 08:50: 20 business minutes used, met; acceptance starts.
    incident = move(incident, "dispatch", "2026-11-30T08:50", world.actor)
    c = clocks(incident, "2026-11-30T09:00")
    assert c["dispatch"].stopped_at == at("2026-11-30T08:50")
    assert c["dispatch"].elapsed_seconds == 20 * MINUTE
    assert c["dispatch"].status == SlaClockStatus.MET
    assert c["dispatch"].next_check_at is None
    assert c["accept"].started_at == at("2026-11-30T08:50")
    assert c["accept"].due_at == at("2026-11-30T09:50")
    assert c["accept"].elapsed_seconds == 10 * MINUTE


def test_holiday_block_then_make_up_saturday(world):
    policy(world, "P-20H", resolution_minutes=20 * 60, reminder_percents="50,75")
    assert PublicHoliday.objects.get(date=date(2026, 10, 10)).kind == HolidayKind.WORKDAY
    # Reported Wed 2026-09-30 17:00; National Day 1–7 October off; Sat 10 October worked.
    incident = report(world, "2026-09-30T17:00")
    c = clocks(incident, "2026-10-09T12:00")["resolution"]
    # Used by Fri 9 Oct 12:00: 0.5 h (30 Sep) + 8 h (8 Oct) + 3.5 h (9 Oct morning) = 12 h.
    assert c.elapsed_seconds == 12 * HOUR
    # 20 h: 16.5 h by Fri 9 Oct 17:30, 3.5 h on the make-up Saturday -> Sat 12:00.
    assert c.due_at == at("2026-10-10T12:00")
    assert c.status == SlaClockStatus.RUNNING
    # 50 % = 10 h: 8.5 h by 8 Oct, 1.5 h more on 9 Oct -> 10:00; unfired, so it is next.
    assert c.next_check_at == at("2026-10-09T10:00")
    assert c.warning == ""


def test_lunch_break_and_first_response(world):
    policy(world, "P-RESP", response_minutes=120)
    # Reported Monday 2026-11-30 11:00.
    incident = report(world, "2026-11-30T11:00")
    c = clocks(incident, "2026-11-30T12:30")["response"]
    # 1 h to noon, lunch does not count and is no pause, 1 h from 13:00 -> due 14:00.
    assert c.due_at == at("2026-11-30T14:00")
    assert c.elapsed_seconds == HOUR
    assert c.paused_seconds == 0
    assert c.status == SlaClockStatus.RUNNING

    ct = ContentType.objects.get_for_model(Incident)
    # The requester's own reply is no response; the engineer's at 13:20 is.
    for author, when in (
        (world.requester, "2026-11-30T13:10"),
        (world.engineer, "2026-11-30T13:20"),
    ):
        Comment.objects.create(
            content_type=ct,
            object_id=incident.pk,
            author=author,
            kind=CommentKind.REPLY,
            body="收到",
            created_at=at(when),
        )
    c = clocks(incident, "2026-11-30T14:30")["response"]
    # 11:00–12:00 and 13:00–13:20: 80 min, met.
    assert c.stopped_at == at("2026-11-30T13:20")
    assert c.elapsed_seconds == 80 * MINUTE
    assert c.status == SlaClockStatus.MET
    assert c.next_check_at is None


def weekend_pause(world) -> Incident:
    """Reported Thu 2026-11-26 09:00; waiting from Fri 14:00 to Mon 10:30."""
    incident = report(world, "2026-11-26T09:00", priority="P3")
    incident = move(incident, "dispatch", "2026-11-26T09:30", world.actor)
    incident = move(incident, "accept", "2026-11-26T10:00", world.actor)
    incident = move(incident, "start", "2026-11-26T10:00", world.actor)
    incident = move(incident, "wait", "2026-11-27T14:00", world.actor)
    return incident


def test_pause_over_a_weekend(world):
    policy(world, "P-16H", resolution_minutes=16 * 60, reminder_percents="50")
    incident = weekend_pause(world)

    c = clocks(incident, "2026-11-28T10:00")["resolution"]
    # Used: Thu 09:00–17:30 = 7.5 h, Fri 08:30–14:00 = 4.5 h -> 12 h; paused by Sat 10:00:
    # Fri 14:00–17:30 = 3.5 h (the weekend is no business time).
    assert c.elapsed_seconds == 12 * HOUR
    assert c.paused_seconds == 3.5 * HOUR
    assert c.status == SlaClockStatus.PAUSED
    assert c.due_at is None
    # The 50 % reminder (8 h: Thu 7.5 h + Fri 0.5 h -> Fri 09:00) has not fired yet.
    assert c.next_check_at == at("2026-11-27T09:00")

    incident = move(incident, "resume", "2026-11-30T10:30", world.actor)
    c = clocks(incident, "2026-11-30T11:00")["resolution"]
    # Paused Fri 3.5 h + Mon 08:30–10:30 2 h = 5.5 h; used 12 h + 0.5 h = 12.5 h.
    assert c.paused_seconds == 5.5 * HOUR
    assert c.elapsed_seconds == 12.5 * HOUR
    # 3.5 h left at 11:00: 1 h to noon, 2.5 h from 13:00 -> 15:30.
    assert c.due_at == at("2026-11-30T15:30")
    assert c.status == SlaClockStatus.RUNNING


def test_priority_change_after_a_pause(world):
    policy(world, "P3-16H", priority="P3", resolution_minutes=16 * 60)
    policy(world, "P2-14H", priority="P2", resolution_minutes=14 * 60)
    policy(world, "P1-8H", priority="P1", resolution_minutes=8 * 60)
    incident = weekend_pause(world)
    incident = move(incident, "resume", "2026-11-30T10:30", world.actor)
    assert clocks(incident, "2026-11-30T11:00")["resolution"].due_at == at("2026-11-30T15:30")

    # Raised to P2 at Mon 11:00: used 12.5 h and paused 5.5 h are kept; 14 h - 12.5 h =
    # 1.5 h from 11:00 -> 12:00 is 1 h, then 13:00 + 0.5 h -> 13:30.
    incident.priority = "P2"
    incident.save()
    c = clocks(incident, "2026-11-30T11:00")["resolution"]
    assert c.limit_seconds == 14 * HOUR
    assert c.elapsed_seconds == 12.5 * HOUR
    assert c.paused_seconds == 5.5 * HOUR
    assert c.due_at == at("2026-11-30T13:30")
    assert not c.breached

    # P1 (8 h) was used up before the pause: Thu 7.5 h + Fri 0.5 h -> breached Fri 09:00.
    incident.priority = "P1"
    incident.save()
    c = clocks(incident, "2026-11-30T11:00")["resolution"]
    assert c.due_at == at("2026-11-27T09:00")
    assert c.breached
    assert c.status == SlaClockStatus.RUNNING


def test_reassignment_restarts_only_the_acceptance_clock(world):
    policy(
        world,
        "P-ALL",
        dispatch_minutes=30,
        accept_minutes=60,
        response_minutes=120,
        resolution_minutes=480,
    )
    incident = report(world, "2026-11-30T09:00")
    incident = move(incident, "dispatch", "2026-11-30T09:10", world.actor)
    incident = move(incident, "accept", "2026-11-30T09:50", world.actor)
    incident = move(incident, "start", "2026-11-30T09:55", world.actor)
    before = clocks(incident, "2026-11-30T10:00")
    assert before["accept"].elapsed_seconds == 40 * MINUTE
    assert before["accept"].status == SlaClockStatus.MET

    incident = move(incident, "transfer", "2026-11-30T10:00", world.actor)
    c = clocks(incident, "2026-11-30T10:30")
    # Acceptance starts again at the transfer: 30 min used, due 11:00.
    assert c["accept"].started_at == at("2026-11-30T10:00")
    assert c["accept"].elapsed_seconds == 30 * MINUTE
    assert c["accept"].due_at == at("2026-11-30T11:00")
    assert c["accept"].stopped_at is None
    # The others are untouched: dispatch met at 09:10 (10 min), response met at the
    # acceptance 09:50 (50 min), resolution runs on from 09:00: 1.5 h used; 8 h is 3 h to
    # noon, 4.5 h in the afternoon, 0.5 h on Tuesday -> Tue 09:00.
    assert (c["dispatch"].stopped_at, c["dispatch"].elapsed_seconds) == (
        at("2026-11-30T09:10"),
        10 * MINUTE,
    )
    assert (c["response"].stopped_at, c["response"].elapsed_seconds) == (
        at("2026-11-30T09:50"),
        50 * MINUTE,
    )
    assert c["resolution"].elapsed_seconds == 1.5 * HOUR
    assert c["resolution"].due_at == at("2026-12-01T09:00")


def test_rejected_resolution_resumes_the_resolution_clock(world):
    policy(world, "P-247", calendar=world.always, resolution_minutes=120)
    incident = report(world, "2026-12-01T10:00")
    for code, when in (
        ("dispatch", "10:05"),
        ("accept", "10:10"),
        ("resolve", "11:30"),
    ):
        incident = move(incident, code, f"2026-12-01T{when}", world.actor)
    c = clocks(incident, "2026-12-01T12:00")["resolution"]
    # Stopped at 11:30 after 90 min of 120: met; the pending-close span does not count.
    assert (c.status, c.elapsed_seconds, c.stopped_at) == (
        SlaClockStatus.MET,
        90 * MINUTE,
        at("2026-12-01T11:30"),
    )
    incident = move(incident, "reject", "2026-12-01T12:40", world.actor)
    c = clocks(incident, "2026-12-01T12:50")["resolution"]
    # Resumed at 12:40 with 30 min left -> due 13:10; 11:30–12:40 is not counted (70 min).
    assert c.stopped_at is None
    assert c.elapsed_seconds == 100 * MINUTE
    assert c.paused_seconds == 70 * MINUTE
    assert c.due_at == at("2026-12-01T13:10")
    incident = move(incident, "resolve", "2026-12-01T13:00", world.actor)
    incident = move(incident, "close", "2026-12-01T14:00", world.actor)
    c = clocks(incident, "2026-12-01T15:00")["resolution"]
    # Closed after resolution: the clock stopped at the resolution, 110 min used.
    assert (c.status, c.elapsed_seconds, c.stopped_at) == (
        SlaClockStatus.MET,
        110 * MINUTE,
        at("2026-12-01T13:00"),
    )


def test_imported_history_gives_the_live_figures(world):
    policy(
        world,
        "P-IMP",
        dispatch_minutes=30,
        accept_minutes=60,
        response_minutes=120,
        resolution_minutes=16 * 60,
    )
    live = weekend_pause(world)
    live = move(live, "resume", "2026-11-30T10:30", world.actor)
    live = move(live, "resolve", "2026-11-30T16:00", world.actor)

    # The same life imported: the record and its log rows written directly.
    ct = ContentType.objects.get_for_model(Incident)
    imported = Incident.objects.create(
        number="IMP-1",
        title="导入",
        requester=world.requester,
        company=world.company,
        workflow=world.workflow,
        state="resolved",
        created_at=at("2026-11-26T09:00"),
    )
    steps = [
        ("", "new", "2026-11-26T09:00"),
        ("new", "dispatched", "2026-11-26T09:30"),
        ("dispatched", "accepted", "2026-11-26T10:00"),
        ("accepted", "in_progress", "2026-11-26T10:00"),
        ("in_progress", "waiting", "2026-11-27T14:00"),
        ("waiting", "in_progress", "2026-11-30T10:30"),
        ("in_progress", "resolved", "2026-11-30T16:00"),
    ]
    TransitionLog.objects.bulk_create(
        TransitionLog(
            content_type=ct,
            object_id=imported.pk,
            workflow=world.workflow,
            action="import",
            from_state=a,
            to_state=b,
            created_at=at(when),
        )
        for a, b, when in steps
    )
    fields = ("started_at", "due_at", "stopped_at", "elapsed_seconds", "paused_seconds", "status")
    figures = {
        key: {m: tuple(getattr(c, f) for f in fields) for m, c in clocks(i, "2026-12-01").items()}
        for key, i in (("live", live), ("imported", imported))
    }
    assert figures["live"] == figures["imported"]
    # Resolution: 12 h before the pause + Mon 10:30–12:00 1.5 h + 13:00–16:00 3 h = 16.5 h
    # of 16 h: breached when 16 h were used, Mon 15:30.
    resolution = clocks(imported, "2026-12-01")["resolution"]
    assert resolution.elapsed_seconds == 16.5 * HOUR
    assert resolution.due_at == at("2026-11-30T15:30")
    assert resolution.status == SlaClockStatus.BREACHED


def test_metric_without_limit_has_no_clock(world):
    sla = policy(world, "P-DROP", dispatch_minutes=30, resolution_minutes=480)
    incident = report(world, "2026-11-30T09:00")
    assert set(clocks(incident, "2026-11-30T09:05")) == {"dispatch", "resolution"}
    sla.dispatch_minutes = None
    sla.save()
    assert set(clocks(incident, "2026-11-30T09:05")) == {"resolution"}


# ------------------------------------------------------------------ calendar problems


def test_year_without_holidays_gives_a_warning(world):
    PublicHoliday.objects.filter(date__year=2027).delete()
    policy(world, "P-2027", resolution_minutes=480)
    # Mon 2027-01-04 09:00 + 8 h as plain weekdays: 3 h + 4.5 h, 0.5 h on Tue -> 09:00.
    incident = report(world, "2027-01-04T09:00")
    c = clocks(incident, "2027-01-04T10:00")["resolution"]
    assert c.due_at == at("2027-01-05T09:00")
    assert "2027" in c.warning


def test_calendar_without_working_time_keeps_the_last_due_time(world, english):
    policy(world, "P-EMPTY", resolution_minutes=480)
    incident = report(world, "2026-11-30T09:00")
    due = clocks(incident, "2026-11-30T10:00")["resolution"].due_at
    assert due == at("2026-12-01T09:00")
    WorkingPeriod.objects.filter(calendar=world.standard).delete()
    c = clocks(incident, "2026-11-30T10:30")["resolution"]
    assert c.due_at == due
    assert "has no working time" in c.warning
    # The kept due time still plans the breach.
    assert c.next_check_at == due


# -------------------------------------------------------------------------- policies


def test_most_specific_policy_wins(world):
    root = ServiceCatalogItem.objects.create(code="T-IT", name="IT 服务")
    child = ServiceCatalogItem.objects.create(code="T-NET", name="网络", parent=root)
    leaf = ServiceCatalogItem.objects.create(code="T-VPN", name="VPN", parent=child)
    general = policy(world, "A-GENERAL", resolution_minutes=600)
    p2 = policy(world, "B-P2", priority="P2", resolution_minutes=500)
    p2_a = policy(world, "C-P2-A", priority="P2", severity="A", resolution_minutes=400)
    on_root = policy(world, "D-ROOT", catalog_item=root, resolution_minutes=300)
    on_child = policy(world, "E-CHILD", catalog_item=child, resolution_minutes=200)
    child_p1 = policy(world, "F-CHILD-P1", catalog_item=child, priority="P1", response_minutes=9)
    policy(world, "G-OFF", catalog_item=leaf, resolution_minutes=50, is_active=False)
    p3 = policy(world, "H-P3", priority="P3", resolution_minutes=700)
    severity_b = policy(world, "I-SEV-B", severity="B", response_minutes=240)

    def chosen(metric=None, **fields):
        return find_policy(Incident(workflow=world.workflow, **fields), metric)

    assert chosen(priority="P4") == general
    assert chosen(priority="P2") == p2
    # Priority and severity both matching beat one of them; a policy for another
    # severity never applies.
    assert chosen(priority="P2", severity="A") == p2_a
    assert chosen(priority="P2", severity="C") == p2
    # One match each: the severity (a service agreement) beats the priority.
    assert chosen(priority="P3", severity="B") == severity_b
    # Per limit: the agreement sets only the response; the resolution stays with P3.
    assert chosen("response", priority="P3", severity="B") == severity_b
    assert chosen("resolution", priority="P3", severity="B") == p3
    # An item's own policy beats its parent's, which beats none; inactive ones are skipped.
    assert chosen(priority="P2", severity="A", catalog_item=root) == on_root
    assert chosen(priority="P2", catalog_item=leaf) == on_child
    assert chosen(priority="P1", catalog_item=leaf) == child_p1
    assert chosen("resolution", priority="P1", catalog_item=leaf) == on_child
    assert chosen("dispatch", priority="P1", catalog_item=leaf) is None


def test_each_limit_comes_from_its_own_policy(world):
    policy(world, "P3-STD", priority="P3", response_minutes=120, resolution_minutes=480)
    policy(world, "SEV-A", calendar=world.always, severity="A", response_minutes=120)
    incident = report(world, "2026-11-27T18:00", priority="P3", severity="A")
    c = clocks(incident, "2026-11-27T18:30")
    # Response on 7×24 from the agreement: 18:00 + 2 h; resolution on working days from P3:
    # Monday 08:30 + 8 h -> 17:30.
    assert (c["response"].policy.code, c["response"].due_at) == ("SEV-A", at("2026-11-27T20:00"))
    assert (c["resolution"].policy.code, c["resolution"].due_at) == (
        "P3-STD",
        at("2026-11-30T17:30"),
    )


def test_reapply_after_a_policy_change(world):
    sla = policy(world, "P-RE", resolution_minutes=480)
    open_one = report(world, "2026-11-30T09:00")
    closed_one = report(world, "2026-11-30T09:00")
    for code, when in (("dispatch", "09:10"), ("accept", "09:20"), ("resolve", "10:00")):
        closed_one = move(closed_one, code, f"2026-11-30T{when}", world.actor)
    closed_one = move(closed_one, "close", "2026-11-30T10:10", world.actor)
    assert clocks(open_one, "2026-11-30T09:30")["resolution"].due_at == at("2026-12-01T09:00")

    sla.resolution_minutes = 240
    sla.save()
    assert reapply_policies(sla, now=at("2026-11-30T09:30")) == 1
    ct = ContentType.objects.get_for_model(Incident)
    clock = SlaClock.objects.get(content_type=ct, object_id=open_one.pk, metric="resolution")
    # 4 h from 09:00: 3 h to noon, 1 h after lunch -> 14:00.
    assert clock.due_at == at("2026-11-30T14:00")
    closed = SlaClock.objects.get(content_type=ct, object_id=closed_one.pk, metric="resolution")
    assert closed.limit_seconds == 480 * MINUTE


def test_clocks_follow_transitions_by_themselves(world):
    policy(world, "P-SIG", calendar=world.always, dispatch_minutes=30)
    incident = report(world, "2026-12-03T09:00")
    take_transition(incident, "dispatch", world.actor)
    clock = SlaClock.objects.get(object_id=incident.pk, metric="dispatch")
    assert clock.stopped_at is not None
    assert clock.next_check_at is None


# ---------------------------------------------------------------------- escalation


def test_escalation_recipients(world):
    leader = UserFactory(username="t-lead", company=world.company)
    group = SupportGroupFactory(leader=leader)
    vendor = VendorFactory(contact_name="张工", contact_email="zhang@vendor.example")
    vendor_user = UserFactory(username="t-vend", email="zhang@vendor.example")
    VendorEngineerFactory(vendor=vendor, name="张工", user=vendor_user)
    sla = policy(world, "P-ESC", resolution_minutes=60)
    level = escalate(
        sla,
        "resolution",
        1,
        0,
        roles=[r.IT_MANAGER],
        relations="assignee, support_group_leader, requester_department_head, vendor_contact",
    )
    incident = report(
        world, "2026-11-30T09:00", assignee=world.engineer, support_group=group, vendor=vendor
    )
    users, emails = escalation_recipients(level, incident)
    assert {u.username for u in users} == {"t-mgr", "t-eng", "t-lead", "t-head", "t-vend"}
    assert emails == ["zhang@vendor.example"]


def test_sweep_schedule_is_created_once(world):
    from django_celery_beat.models import PeriodicTask

    ensure_sla_sweep_schedule()
    ensure_sla_sweep_schedule()
    tasks = PeriodicTask.objects.filter(task="apps.bjgas_platform.tasks.sla_sweep")
    assert tasks.count() == 1
    assert (tasks[0].interval.every, tasks[0].interval.period) == (1, "minutes")


def test_reapply_task_by_calendar_and_for_a_deleted_policy(world):
    from apps.bjgas_platform.tasks import reapply_sla

    policy(world, "P-TASK", resolution_minutes=480)
    report(world, "2026-11-30T09:00")
    report(world, "2026-11-30T09:30")
    assert reapply_sla(calendar_id=world.standard.pk) == 2
    assert reapply_sla(policy_id=999_999) == 0
