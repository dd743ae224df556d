"""Auto-close: a resolved incident closes by itself after its catalog item's delay, as the
system account, once; requester activity in the pending-close span stops it."""

from datetime import timedelta

import pytest
from django.contrib.contenttypes.models import ContentType
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from apps.bjgas_ops.models import Incident
from apps.bjgas_ops.services.incidents import (
    AUTO_CLOSE_SCHEDULE,
    AUTO_CLOSE_TASK,
    add_comment,
    supplement_incident,
)
from apps.bjgas_ops.tasks import auto_close_incidents
from apps.bjgas_platform.models import Comment, TransitionLog
from apps.bjgas_platform.services.workflow import WorkflowError, take_transition

from .incident_fixtures import *  # noqa: F403 (the fixtures clock and world)
from .incident_fixtures import act, local, report

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("english")]


@pytest.fixture
def resolved(world, clock):
    """An office-PC incident (auto-close after 1 minute) resolved at 09:30:00."""
    incident = report(world, catalog_item=world.pc)
    clock.advance(minutes=10)
    incident = act(incident, "dispatch", world.desk)
    incident = act(incident, "accept", world.li)
    clock.set(local(2026, 3, 3, 9, 30))
    return act(incident, "resolve", world.li, "已更换电源")


def test_closes_after_one_minute_and_handling_time_ends_at_resolution(resolved, clock):
    incident = resolved
    resolution = local(2026, 3, 3, 9, 30)
    assert incident.auto_close_at == resolution + timedelta(minutes=1)

    clock.set(resolution + timedelta(seconds=59))
    assert auto_close_incidents() == 0
    incident.refresh_from_db()
    assert incident.state == "resolved"

    clock.set(resolution + timedelta(seconds=61))
    assert auto_close_incidents() == 1
    incident.refresh_from_db()
    assert incident.state == "closed"
    assert incident.closed_at == resolution + timedelta(seconds=61)
    assert incident.auto_close_at is None
    # Handling time is fixed at the resolution: 09:00 → 09:30, closing does not move it.
    assert incident.resolved_at == resolution
    assert incident.resolved_at - incident.created_at == timedelta(minutes=30)

    last = TransitionLog.objects.filter(
        content_type=ContentType.objects.get_for_model(Incident), object_id=incident.pk
    ).latest("id")
    assert (last.from_state, last.to_state, last.action) == ("resolved", "closed", "自动关闭")
    assert last.actor.username == "system"

    # A second run (or a second scheduler) finds nothing left to do.
    clock.advance(minutes=5)
    assert auto_close_incidents() == 0
    assert TransitionLog.objects.filter(object_id=incident.pk, to_state="closed").count() == 1


def test_requester_supplement_stops_the_auto_close(resolved, world, clock):
    clock.set(local(2026, 3, 3, 9, 30, 30))
    supplement_incident(resolved, world.zhang, "换了电源还是偶尔黑屏")
    resolved.refresh_from_db()
    assert resolved.auto_close_at is None
    why = Comment.objects.get(object_id=resolved.pk, kind="system")
    assert why.body == (
        "Auto-close stopped: the requester added a supplement at 2026-03-03 09:30. The "
        "incident stays resolved until the requester confirms or rejects the resolution, "
        "or the service desk closes it."
    )

    clock.set(local(2026, 3, 3, 9, 31, 1))
    assert auto_close_incidents() == 0
    resolved.refresh_from_db()
    assert resolved.state == "resolved"
    assert resolved.resolved_at == local(2026, 3, 3, 9, 30)


def test_requester_reply_stops_it_but_an_engineer_reply_does_not(resolved, world, clock):
    clock.set(local(2026, 3, 3, 9, 30, 10))
    add_comment(resolved, world.li, "如有问题请随时反馈", "reply")
    resolved.refresh_from_db()
    assert resolved.auto_close_at == local(2026, 3, 3, 9, 31)

    clock.set(local(2026, 3, 3, 9, 30, 20))
    add_comment(resolved, world.zhang, "我下午再观察一下", "reply")
    resolved.refresh_from_db()
    assert resolved.auto_close_at is None
    clock.set(local(2026, 3, 3, 9, 40))
    assert auto_close_incidents() == 0


def test_a_stopped_auto_close_is_refused_even_to_a_run_that_read_it_before(resolved, world):
    version = resolved.version
    supplement_incident(resolved, world.zhang, "还有问题")
    from apps.bjgas_ops.services.incidents import system_user

    with pytest.raises(WorkflowError) as refused:
        take_transition(resolved, "auto_close", system_user(), expected_version=version)
    assert refused.value.message == "报障人已有新的反馈，自动关闭已停止。"


def test_people_cannot_take_the_system_action(resolved, world):
    with pytest.raises(WorkflowError) as refused:
        take_transition(resolved, "auto_close", world.desk)
    assert refused.value.code == "transition_refused"


def test_a_reopened_and_resolved_again_incident_waits_for_its_new_deadline(resolved, world, clock):
    read_before = list(Incident.objects.values_list("pk", "version"))
    clock.set(local(2026, 3, 3, 9, 30, 40))
    incident = act(resolved, "reject", world.zhang, "没修好")
    clock.set(local(2026, 3, 3, 9, 50))
    incident = act(incident, "resolve", world.li, "换了主板")
    assert incident.auto_close_at == local(2026, 3, 3, 9, 51)
    assert incident.version > dict(read_before)[incident.pk]

    clock.set(local(2026, 3, 3, 9, 50, 59))
    assert auto_close_incidents() == 0
    clock.set(local(2026, 3, 3, 9, 51, 1))
    assert auto_close_incidents() == 1


def test_the_job_is_scheduled_every_minute():
    task = PeriodicTask.objects.get(name=AUTO_CLOSE_SCHEDULE)
    assert task.task == AUTO_CLOSE_TASK == auto_close_incidents.name
    assert (task.interval.every, task.interval.period) == (1, IntervalSchedule.MINUTES)
    assert task.enabled
