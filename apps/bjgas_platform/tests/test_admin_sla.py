"""Desk pages of the SLA engine: policy refusals, re-application after a save, clock lists.

Times are Beijing time. The calendar here works Monday to Friday 08:30–12:00 and
13:00–17:30 and observes China's public holidays; each deadline is worked out by hand.
The incidents are reported in the past, so their clocks have run out by now and each
clock's due time is the moment its limit was used up, whatever day the tests run.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import socket
import time as time_module
from datetime import date, datetime, time
from html import escape
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse
from kombu import pools as kombu_pools

from apps.bjgas_ops.models import Incident
from apps.bjgas_ops.services.incidents import create_incident
from apps.bjgas_platform import roles as r
from apps.bjgas_platform.models import (
    BusinessCalendar,
    NotificationRule,
    PublicHoliday,
    SlaClock,
    SlaEscalationLevel,
    SlaEvent,
    SlaEventKind,
    SlaPolicy,
    TransitionLog,
    WorkingPeriod,
)
from apps.bjgas_platform.services.business_time import seed_public_holidays
from apps.bjgas_platform.services.sla import refresh_clocks
from apps.bjgas_platform.tasks import reapply_sla
from bjgas.celery import app as celery_app

from .factories import CompanyFactory, ScopeRuleFactory, UserFactory

SH = ZoneInfo("Asia/Shanghai")
MORNING = ((time(8, 30), time(12)),)
FULL_DAY = ((time(8, 30), time(12)), (time(13), time(17, 30)))
_companies = itertools.count(1)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SH)


# ------------------------------------------------------------------------------ set-up


@pytest.fixture
def administrator(client):
    user = UserFactory(username="sla-admin", roles=[r.ADMINISTRATOR], is_staff=True)
    client.force_login(user)
    client.cookies["django_language"] = "en"  # the desk ignores Accept-Language
    return user


def incident_type() -> ContentType:
    return ContentType.objects.get_for_model(Incident)


def make_calendar(periods=FULL_DAY, code="T-CAL") -> BusinessCalendar:
    seed_public_holidays(range(2026, 2027))
    calendar = BusinessCalendar.objects.create(code=code, name="测试日历")
    for weekday in range(5):
        for start, end in periods:
            WorkingPeriod.objects.create(calendar=calendar, weekday=weekday, start=start, end=end)
    return calendar


def make_policy(calendar, **limits) -> SlaPolicy:
    """The only active policy: every other one (the shipped defaults) is switched off."""
    SlaPolicy.objects.update(is_active=False)
    NotificationRule.objects.update(is_active=False)
    return SlaPolicy.objects.create(
        code="P-T",
        name="测试策略",
        process=incident_type(),
        calendar=calendar,
        reminder_percents="",
        **limits,
    )


def report(when: str, company=None) -> Incident:
    """Report an incident at `when`, date its history then, and derive its clocks."""
    company = company or CompanyFactory(code=f"SLA{next(_companies):03d}")
    requester = UserFactory(username=f"sla-req-{company.code}", company=company)
    incident = create_incident(requester, channel="portal", title="测试事件", created_at=at(when))
    TransitionLog.objects.filter(content_type=incident_type(), object_id=incident.pk).update(
        created_at=at(when)
    )
    refresh_clocks(incident)
    return incident


def resolution_clock(incident) -> SlaClock:
    return SlaClock.objects.get(
        content_type=incident_type(), object_id=incident.pk, metric="resolution"
    )


def policy_data(calendar, levels=(), **fields) -> dict:
    """Return the POST data of a policy page; `levels` are dicts of an escalation's fields."""
    data = {
        "code": "P-NEW",
        "name": "新策略",
        "process": str(incident_type().pk),
        "is_active": "on",
        "catalog_item": "",
        "priority": "",
        "severity": "",
        "calendar": str(calendar.pk),
        "dispatch_minutes": "",
        "accept_minutes": "",
        "response_minutes": "",
        "resolution_minutes": "",
        "reminder_percents": "75",
        "escalations-TOTAL_FORMS": str(len(levels)),
        "escalations-INITIAL_FORMS": "0",
        "escalations-MIN_NUM_FORMS": "0",
        "escalations-MAX_NUM_FORMS": "1000",
        **fields,
    }
    for i, level in enumerate(levels):
        for name, value in level.items():
            data[f"escalations-{i}-{name}"] = value
    return data


def change_policy_data(policy: SlaPolicy, levels=(), **fields) -> dict:
    saved = {
        "code": policy.code,
        "name": policy.name,
        "reminder_percents": "",
        "resolution_minutes": str(policy.resolution_minutes or ""),
    }
    return policy_data(policy.calendar, levels, **(saved | fields))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def drop_pools() -> None:
    """Forget the app's broker connections after a conf change; kombu keeps them per URL."""
    celery_app._pool = None
    celery_app.__dict__.pop("amqp", None)
    kombu_pools.reset()


@contextlib.contextmanager
def broker_unreachable():
    """Point the Celery app at a port where no broker listens, then put it back."""
    conf = celery_app.conf
    saved = (conf.broker_url, conf.broker_transport_options)
    conf.broker_url = f"redis://127.0.0.1:{free_port()}/0"
    conf.broker_transport_options = {}
    drop_pools()
    try:
        yield
    finally:
        drop_pools()
        conf.broker_url, conf.broker_transport_options = saved


def page_errors(response) -> list[str]:
    """Return every error of a refused policy page: form-wide, fields, escalation rows."""
    found = [str(e) for e in response.context["adminform"].form.non_field_errors()]
    for name, errors in response.context["adminform"].form.errors.items():
        if name != "__all__":
            found += [str(e) for e in errors]
    for inline in response.context["inline_admin_formsets"]:
        found += [str(e) for e in inline.formset.non_form_errors()]
        for errors in inline.formset.errors:
            for messages in errors.values():
                found += [str(m) for m in messages]
    return found


# ----------------------------------------------------------------------------- policies


@pytest.mark.django_db
def test_a_sound_policy_is_saved_with_its_escalation_levels(client, administrator):
    calendar = make_calendar()
    lead = r.role_group(r.TEAM_LEAD)
    data = policy_data(
        calendar,
        response_minutes="120",
        resolution_minutes="480",
        reminder_percents="90, 50,75%",
        levels=[
            {
                "metric": "resolution",
                "level": "1",
                "after_minutes": "30",
                "notify_roles": [str(lead.pk)],
                "notify_relations": "assignee， support_group_leader, assignee",
            }
        ],
    )

    response = client.post(reverse("admin:bjgas_platform_slapolicy_add"), data)

    assert response.status_code == 302, page_errors(response)
    policy = SlaPolicy.objects.get(code="P-NEW")
    assert (policy.response_minutes, policy.resolution_minutes) == (120, 480)
    assert policy.reminder_percents == "50,75,90"
    level = SlaEscalationLevel.objects.get(policy=policy)
    assert (level.metric, level.level, level.after_minutes) == ("resolution", 1, 30)
    assert level.notify_relations == "assignee,support_group_leader"
    assert list(level.notify_roles.all()) == [lead]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "levels", "expected"),
    [
        pytest.param(
            {},
            [],
            ["Fill in at least one limit: dispatch, acceptance, first response or resolution."],
            id="no-limit",
        ),
        pytest.param(
            {"resolution_minutes": "0"},
            [],
            ["A limit must be at least one minute."],
            id="zero-limit",
        ),
        pytest.param(
            {"resolution_minutes": "-5"},
            [],
            ["Ensure this value is greater than or equal to 0."],
            id="negative-limit",
        ),
        pytest.param(
            {"resolution_minutes": "480", "reminder_percents": "50,120"},
            [],
            [
                "reminders at (% of the limit): “120” is not a whole percentage between 1 "
                "and 99; write e.g. 50,75,90."
            ],
            id="reminder-over-100",
        ),
        pytest.param(
            {"resolution_minutes": "480"},
            [
                {
                    "metric": "resolution",
                    "level": "1",
                    "after_minutes": "0",
                    "notify_relations": "assignee,boss",
                }
            ],
            [
                "notify people: “boss” is not a known name; use some of: assignee, "
                "support_group_leader, requester_department_head, vendor_contact."
            ],
            id="unknown-relation",
        ),
        pytest.param(
            {"resolution_minutes": "480"},
            [
                {
                    "metric": "dispatch",
                    "level": "2",
                    "after_minutes": "0",
                    "notify_relations": "assignee",
                }
            ],
            [
                "Escalation level 2 of “Dispatch (created → dispatched)”: the policy sets no "
                "such limit; fill in the limit or remove the level."
            ],
            id="escalation-without-its-limit",
        ),
    ],
)
def test_an_unsound_policy_is_refused(client, administrator, fields, levels, expected):
    calendar = make_calendar()

    response = client.post(
        reverse("admin:bjgas_platform_slapolicy_add"), policy_data(calendar, levels, **fields)
    )

    assert response.status_code == 200, "a refused save shows the page again"
    assert page_errors(response) == expected
    content = response.content.decode()
    for message in expected:
        assert escape(message) in content
    assert not SlaPolicy.objects.filter(code="P-NEW").exists()
    assert not SlaEscalationLevel.objects.filter(policy__code="P-NEW").exists()


@pytest.mark.django_db
def test_the_process_choices_are_the_workflow_driven_models(client, administrator):
    response = client.get(reverse("admin:bjgas_platform_slapolicy_add"))

    choices = response.context["adminform"].form.fields["process"].queryset
    models = {ct.model_class() for ct in choices}
    assert Incident in models
    assert SlaPolicy not in models and BusinessCalendar not in models


# ---------------------------------------------------------------- re-application


@pytest.mark.django_db(transaction=True)
def test_a_saved_policy_is_reapplied_by_a_worker(client, administrator, celery_worker):
    calendar = make_calendar()
    policy = make_policy(calendar, resolution_minutes=240)
    # Monday 2026-11-30 09:00 + 4 h: 09:00–12:00 (3 h), 13:00 + 1 h -> 14:00.
    incident = report("2026-11-30T09:00")
    assert resolution_clock(incident).due_at == at("2026-11-30T14:00")

    with celery_worker(reapply_sla):
        response = client.post(
            reverse("admin:bjgas_platform_slapolicy_change", args=[policy.pk]),
            change_policy_data(policy, resolution_minutes="480"),
        )
        assert response.status_code == 302, page_errors(response)
        # 8 h: Monday 09:00–12:00 and 13:00–17:30 (7.5 h), Tuesday 08:30 + 0.5 h -> 09:00.
        deadline = time_module.monotonic() + 30
        while time_module.monotonic() < deadline:
            clock = resolution_clock(incident)
            if clock.limit_seconds == 480 * 60:
                break
            time_module.sleep(0.2)

    assert clock.limit_seconds == 480 * 60
    assert clock.due_at == at("2026-12-01T09:00")
    assert clock.breached


@pytest.mark.django_db(transaction=True)
def test_without_a_broker_the_change_is_applied_at_once(client, administrator, caplog):
    calendar = make_calendar(periods=MORNING)
    make_policy(calendar, resolution_minutes=240)
    # Mornings only: Monday 2026-11-30 09:00–12:00 (3 h), Tuesday 08:30 + 1 h -> 09:30.
    incident = report("2026-11-30T09:00")
    assert resolution_clock(incident).due_at == at("2026-12-01T09:30")
    periods = list(calendar.periods.order_by("weekday", "start"))
    data = {
        "code": calendar.code,
        "name": calendar.name,
        "observes_public_holidays": "on",
        "makeup_day_weekday": "0",
        "description": "",
        "periods-TOTAL_FORMS": str(len(periods) + 5),
        "periods-INITIAL_FORMS": str(len(periods)),
        "periods-MIN_NUM_FORMS": "0",
        "periods-MAX_NUM_FORMS": "1000",
        "exceptions-TOTAL_FORMS": "0",
        "exceptions-INITIAL_FORMS": "0",
        "exceptions-MIN_NUM_FORMS": "0",
        "exceptions-MAX_NUM_FORMS": "1000",
    }
    for i, period in enumerate(periods):
        data |= {
            f"periods-{i}-id": str(period.pk),
            f"periods-{i}-weekday": str(period.weekday),
            f"periods-{i}-start": "08:30",
            f"periods-{i}-end": "12:00",
        }
    for day in range(5):  # the afternoons are added
        i = len(periods) + day
        data |= {
            f"periods-{i}-weekday": str(day),
            f"periods-{i}-start": "13:00",
            f"periods-{i}-end": "17:30",
        }

    with (
        broker_unreachable(),
        caplog.at_level(logging.WARNING, logger="apps.bjgas_platform.admin.sla"),
    ):
        response = client.post(
            reverse("admin:bjgas_platform_businesscalendar_change", args=[calendar.pk]),
            data,
            follow=True,
        )

    assert response.status_code == 200
    assert calendar.periods.count() == 10
    # With the afternoons: Monday 09:00–12:00 (3 h), 13:00 + 1 h -> 14:00.
    assert resolution_clock(incident).due_at == at("2026-11-30T14:00")
    assert (
        "The task queue could not be reached, so the deadlines of 1 open record were "
        "recalculated now." in response.content.decode()
    )
    [warning] = [rec for rec in caplog.records if "Could not queue" in rec.getMessage()]
    assert warning.exc_info is not None


@pytest.mark.django_db
def test_a_new_public_holiday_moves_open_deadlines(
    client, administrator, django_capture_on_commit_callbacks
):
    calendar = make_calendar()
    make_policy(calendar, resolution_minutes=240)
    # Friday 2026-11-27 18:00 + 4 h -> Monday 2026-11-30 13:30.
    incident = report("2026-11-27T18:00")
    assert resolution_clock(incident).due_at == at("2026-11-30T13:30")

    with broker_unreachable(), django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(
            reverse("admin:bjgas_platform_publicholiday_add"),
            {"date": "2026-11-30", "kind": "off", "name": "临时放假"},
        )

    assert response.status_code == 302
    assert len(callbacks) == 1
    # Monday off: Tuesday 2026-12-01 08:30–12:00 (3.5 h), 13:00 + 0.5 h -> 13:30.
    assert resolution_clock(incident).due_at == at("2026-12-01T13:30")
    assert PublicHoliday.objects.get(date=date(2026, 11, 30)).source == "manual"


@pytest.mark.django_db
def test_one_save_queues_one_reapplication(
    client, administrator, django_capture_on_commit_callbacks
):
    calendar = make_calendar()
    policy = make_policy(calendar, resolution_minutes=240)
    levels = [
        {"metric": "resolution", "level": str(n), "after_minutes": str(n * 10)} for n in (1, 2)
    ]

    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(
            reverse("admin:bjgas_platform_slapolicy_change", args=[policy.pk]),
            change_policy_data(policy, levels=levels),
        )

    assert response.status_code == 302, page_errors(response)
    assert len(callbacks) == 1


# ------------------------------------------------------------------ clocks and events


@pytest.mark.django_db
def test_clock_list_shows_only_records_in_scope(client):
    calendar = make_calendar()
    make_policy(calendar, resolution_minutes=240)
    north, south = CompanyFactory(code="SLA-N"), CompanyFactory(code="SLA-S")
    seen = report("2026-11-30T09:00", company=north)
    hidden = report("2026-11-30T09:00", company=south)
    viewer = UserFactory(username="sla-viewer", is_staff=True, company=north)
    viewer.user_permissions.add(Permission.objects.get(codename="view_slaclock"))
    ScopeRuleFactory(user=viewer, companies=[north])
    client.force_login(viewer)

    response = client.get(reverse("admin:bjgas_platform_slaclock_changelist"))

    assert response.status_code == 200
    listed = {(c.object_id, c.metric) for c in response.context["cl"].result_list}
    assert listed == {(seen.pk, "resolution")}
    assert hidden.number not in response.content.decode()
    clock = resolution_clock(hidden)
    page = client.get(reverse("admin:bjgas_platform_slaclock_change", args=[clock.pk]))
    assert page.status_code == 404


@pytest.mark.django_db
def test_clocks_and_events_are_read_only(client, administrator):
    calendar = make_calendar()
    make_policy(calendar, resolution_minutes=240)
    incident = report("2026-11-30T09:00")
    clock = resolution_clock(incident)
    SlaEvent.objects.create(
        clock=clock,
        kind=SlaEventKind.REMINDER,
        level=75,
        due_at=clock.due_at,
        fire_at=at("2026-11-30T13:00"),
    )

    listing = client.get(reverse("admin:bjgas_platform_slaclock_changelist"))
    events = client.get(reverse("admin:bjgas_platform_slaevent_changelist"))
    detail = client.get(reverse("admin:bjgas_platform_slaclock_change", args=[clock.pk]))
    add = client.get(reverse("admin:bjgas_platform_slaclock_add"))
    edit = client.post(
        reverse("admin:bjgas_platform_slaclock_change", args=[clock.pk]), {"warning": "x"}
    )

    assert listing.status_code == events.status_code == detail.status_code == 200
    assert incident.number in listing.content.decode()
    assert "Breached" in listing.content.decode()
    assert ">75%<" in events.content.decode()
    assert add.status_code == 403
    assert edit.status_code == 403
    clock.refresh_from_db()
    assert clock.warning == ""


@pytest.mark.django_db
def test_requesters_do_not_see_clocks(client):
    requester = UserFactory(username="sla-req", roles=[r.REQUESTER], is_staff=True)
    client.force_login(requester)

    assert client.get(reverse("admin:bjgas_platform_slaclock_changelist")).status_code == 403
    assert client.get(reverse("admin:bjgas_platform_slapolicy_changelist")).status_code == 403


@pytest.mark.django_db
def test_a_deleted_policy_leaves_its_records_to_the_others(
    client, administrator, django_capture_on_commit_callbacks
):
    calendar = make_calendar()
    policy = make_policy(calendar, resolution_minutes=240)
    incident = report("2026-11-30T09:00")
    assert resolution_clock(incident).due_at == at("2026-11-30T14:00")

    with broker_unreachable(), django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:bjgas_platform_slapolicy_delete", args=[policy.pk]), {"post": "yes"}
        )

    assert response.status_code == 302
    # Every other policy is switched off: no limit applies to the incident any more.
    assert not SlaClock.objects.filter(content_type=incident_type(), object_id=incident.pk)
