"""The SLA sweep: reminders, breaches and escalations fire once each, on time, and never
after a clock stopped; also when the scheduler catches up and when two sweeps race.

Calendars, workflow and helpers are those of test_sla; times are Beijing time.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection

from apps.bjgas_ops.models import Incident
from apps.bjgas_platform import roles as r
from apps.bjgas_platform.models import (
    NotificationRule,
    OutboxMessage,
    SlaClock,
    SlaClockStatus,
    SlaEvent,
)
from apps.bjgas_platform.services.sla import reapply_policies, refresh_clocks, sweep
from apps.bjgas_platform.tasks import sla_sweep

from .test_sla import World, at, escalate, host_time_zone, make_world, move, policy, report

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True, params=["UTC", "Asia/Shanghai"])
def host_tz(request):
    """Run the test with the host's time zone set to UTC, then to Asia/Shanghai."""
    with host_time_zone(request.param):
        yield request.param


@pytest.fixture
def world() -> World:
    return make_world()


def events(incident: Incident, metric: str | None = None) -> list[tuple]:
    """Return the incident's fired events as (metric, kind, level, planned for, deadline)."""
    rows = SlaEvent.objects.filter(
        clock__content_type=ContentType.objects.get_for_model(Incident),
        clock__object_id=incident.pk,
    ).order_by("fire_at", "kind", "level")
    if metric:
        rows = rows.filter(clock__metric=metric)
    return [(e.clock.metric, e.kind, e.level, e.fire_at, e.due_at) for e in rows]


def escalation_rule() -> NotificationRule:
    """Tell the people an escalation names, in the bell only."""
    return NotificationRule.objects.create(
        code="T-SLA-ESC",
        name="升级测试",
        event="sla.escalation",
        recipient_relations="event_recipients",
        channels="in_app",
        subject_template="{{ record.number }} {{ metric_name }} L{{ level }}",
        body_template="应于 {{ due_at }} 完成",
    )


def test_reminders_across_the_holidays_fire_once(world):
    policy(world, "P-20H", resolution_minutes=20 * 60, reminder_percents="50,75")
    incident = report(world, "2026-09-30T17:00")
    # 50 % (10 h) is reached Fri 9 Oct 10:00, 75 % (15 h) 9 Oct 16:00, the limit Sat 10 Oct
    # 12:00 (the make-up working day); see test_sla for the arithmetic.
    assert sweep(now=at("2026-10-09T12:00")) == 1
    assert sweep(now=at("2026-10-09T12:00")) == 0
    clock = SlaClock.objects.get(object_id=incident.pk, metric="resolution")
    assert clock.next_check_at == at("2026-10-09T16:00")
    assert sweep(now=at("2026-10-10T12:00")) == 2
    due = at("2026-10-10T12:00")
    assert events(incident) == [
        ("resolution", "reminder", 50, at("2026-10-09T10:00"), due),
        ("resolution", "reminder", 75, at("2026-10-09T16:00"), due),
        ("resolution", "breach", 0, due, due),
    ]
    clock.refresh_from_db()
    assert clock.breached
    assert clock.next_check_at is None  # no escalation levels: nothing more to fire


def test_escalation_catches_up_after_the_scheduler_stopped(world):
    escalation_rule()
    sla = policy(world, "P-ESC", calendar=world.always, response_minutes=60, reminder_percents="50")
    for level, after in ((1, 0), (2, 10), (3, 20)):
        escalate(sla, "response", level, after, roles=[r.IT_MANAGER])
    incident = report(world, "2026-12-01T10:00")

    # The scheduler sweeps every minute from 10:00 to 10:50: only the 50 % reminder (10:30).
    fired_by_minute = {
        minute: sweep(now=at("2026-12-01T10:00") + timedelta(minutes=minute))
        for minute in range(51)
    }
    assert {m: n for m, n in fired_by_minute.items() if n} == {30: 1}
    # Stopped from 10:50 to 11:20 (breach 11:00, levels at 11:00, 11:10, 11:20); the first
    # sweep after it fires each once, and the following sweeps nothing.
    assert sweep(now=at("2026-12-01T11:21")) == 4
    for minute in range(22, 41):
        assert sweep(now=at(f"2026-12-01T11:{minute:02d}")) == 0
    due = at("2026-12-01T11:00")
    assert events(incident) == [
        ("response", "reminder", 50, at("2026-12-01T10:30"), due),
        ("response", "breach", 0, due, due),
        ("response", "escalation", 1, due, due),
        ("response", "escalation", 2, at("2026-12-01T11:10"), due),
        ("response", "escalation", 3, at("2026-12-01T11:20"), due),
    ]
    # One bell message per level for the IT manager, who sees every incident.
    messages = OutboxMessage.objects.filter(recipient=world.manager, channel="in_app")
    assert messages.count() == 3
    clock = SlaClock.objects.get(object_id=incident.pk, metric="response")
    assert clock.next_check_at is None


def test_nothing_fires_after_resolution(world):
    sla = policy(world, "P-RES", calendar=world.always, resolution_minutes=120)
    sla.reminder_percents = "50"
    sla.save()
    escalate(sla, "resolution", 1, 10, roles=[r.IT_MANAGER])
    incident = report(world, "2026-12-01T10:00")
    assert sweep(now=at("2026-12-01T11:01")) == 1  # the 50 % reminder at 11:00
    incident = move(incident, "dispatch", "2026-12-01T11:10", world.actor)
    incident = move(incident, "accept", "2026-12-01T11:20", world.actor)
    incident = move(incident, "resolve", "2026-12-01T11:30", world.actor)
    clock = SlaClock.objects.get(object_id=incident.pk, metric="resolution")
    assert clock.next_check_at is None
    # Even a stale check time (as if the resolution's refresh had been lost) fires nothing.
    SlaClock.objects.filter(pk=clock.pk).update(next_check_at=at("2026-12-01T11:00"))
    assert sweep(now=at("2026-12-01T12:30")) == 0
    clock.refresh_from_db()
    assert (clock.status, clock.next_check_at) == (SlaClockStatus.MET, None)
    assert len(events(incident)) == 1


def test_pause_after_a_reminder_does_not_repeat_it(world):
    policy(world, "P-16H", resolution_minutes=16 * 60, reminder_percents="50")
    incident = report(world, "2026-11-26T09:00")
    # 50 % of 16 h: Thu 09:00–17:30 is 7.5 h, 0.5 h more on Friday -> Fri 09:00.
    assert sweep(now=at("2026-11-27T09:01")) == 1
    incident = move(incident, "dispatch", "2026-11-27T09:30", world.actor)
    incident = move(incident, "accept", "2026-11-27T10:00", world.actor)
    incident = move(incident, "wait", "2026-11-27T14:00", world.actor)
    incident = move(incident, "resume", "2026-11-30T10:30", world.actor)
    # The pause moved the due time, not the moment the reminder was reached.
    assert sweep(now=at("2026-11-30T11:00")) == 0
    assert [e[1:3] for e in events(incident)] == [("reminder", 50)]


def test_reassignment_fires_the_acceptance_reminder_again(world):
    policy(world, "P-ACC", accept_minutes=60, reminder_percents="50")
    incident = report(world, "2026-11-30T09:00")
    incident = move(incident, "dispatch", "2026-11-30T09:10", world.actor)
    assert sweep(now=at("2026-11-30T09:41")) == 1  # 30 min after 09:10
    incident = move(incident, "accept", "2026-11-30T09:50", world.actor)
    incident = move(incident, "start", "2026-11-30T09:55", world.actor)
    incident = move(incident, "transfer", "2026-11-30T10:00", world.actor)
    assert sweep(now=at("2026-11-30T10:31")) == 1  # 30 min after the transfer
    assert events(incident, "accept") == [
        ("accept", "reminder", 50, at("2026-11-30T09:40"), at("2026-11-30T10:10")),
        ("accept", "reminder", 50, at("2026-11-30T10:30"), at("2026-11-30T11:00")),
    ]


def test_a_moved_deadline_fires_again(world):
    sla = policy(world, "P-MOVE", calendar=world.always, resolution_minutes=60)
    incident = report(world, "2026-12-01T10:00")
    assert sweep(now=at("2026-12-01T11:01")) == 1  # breach at 11:00
    sla.resolution_minutes = 90
    sla.save()
    reapply_policies(sla, now=at("2026-12-01T11:05"))
    clock = SlaClock.objects.get(object_id=incident.pk, metric="resolution")
    assert (clock.due_at, clock.breached) == (at("2026-12-01T11:30"), False)
    assert sweep(now=at("2026-12-01T11:31")) == 1
    assert [(e[1], e[4]) for e in events(incident)] == [
        ("breach", at("2026-12-01T11:00")),
        ("breach", at("2026-12-01T11:30")),
    ]


def test_the_task_run_twice_fires_once(world):
    policy(world, "P-TWICE", calendar=world.always, response_minutes=60)
    incident = report(world, "2026-12-01T10:00")
    refresh_clocks(incident)  # as of the real now, long after the due time
    assert sla_sweep() == 1
    assert sla_sweep() == 0
    assert len(events(incident)) == 1


@pytest.mark.django_db(transaction=True)
def test_two_sweeps_at_once_fire_each_effect_once():
    w = make_world()
    escalation_rule()
    sla = policy(w, "P-RACE", calendar=w.always, response_minutes=60)
    sla.reminder_percents = "50"
    sla.save()
    escalate(sla, "response", 1, 0, roles=[r.IT_MANAGER])
    escalate(sla, "response", 2, 10, roles=[r.IT_MANAGER])
    incidents = [report(w, "2026-12-01T10:00") for _n in range(12)]
    # Each clock owes a reminder (10:30), the breach (11:00) and two levels (11:00, 11:10).
    now = at("2026-12-01T11:30")
    start = threading.Barrier(2)
    results: list[int] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            start.wait()
            results.append(sweep(now=now, batch=5))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    assert sum(results) == 12 * 4
    assert SlaEvent.objects.count() == 12 * 4
    for incident in incidents:
        assert len(events(incident)) == 4
    assert OutboxMessage.objects.filter(recipient=w.manager).count() == 12 * 2
    assert sweep(now=now) == 0


def test_an_event_written_meanwhile_is_not_fired_again(world):
    from apps.bjgas_platform.services.sla import FirePoint, _record_events

    policy(world, "P-META", calendar=world.always, response_minutes=60)
    incident = report(world, "2026-12-01T10:00")
    clock = SlaClock.objects.get(object_id=incident.pk, metric="response")
    due = at("2026-12-01T11:00")
    breach = FirePoint("breach", 0, due, due)
    reminder = FirePoint("reminder", 50, due, at("2026-12-01T10:30"))
    # A sweep that could not lock the row wrote the breach between our read and our write:
    # the unique constraint refuses it and only the reminder is new.
    SlaEvent.objects.create(clock=clock, kind="breach", level=0, due_at=due, fire_at=due)
    assert _record_events(clock, [breach, reminder]) == [reminder]
    assert SlaEvent.objects.filter(clock=clock).count() == 2


def test_a_clock_of_a_deleted_record_is_dropped(world):
    policy(world, "P-GONE", calendar=world.always, response_minutes=60)
    incident = report(world, "2026-12-01T10:00")
    pk = incident.pk
    Incident.objects.filter(pk=pk).delete()
    assert sweep(now=at("2026-12-01T12:00")) == 0
    assert not SlaClock.objects.filter(object_id=pk).exists()
