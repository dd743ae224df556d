"""notify(): which rules fire, who is told through which channel, and each message once.

The organisation below is small enough to work out by hand who may see the task:
the task belongs to company HQ; eng_in's scope is HQ, eng_out's is NORTH; the requester,
the assignee and the registering desk user see it as owners; the vendor engineer sees
the tasks of vendor VA (the task's vendor).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.urls import reverse
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from apps.bjgas_ops.models import Incident, Task
from apps.bjgas_platform import roles as r
from apps.bjgas_platform.models import (
    Channel,
    NotificationPreference,
    NotificationRule,
    OutboxMessage,
    OutboxStatus,
    RobotWebhook,
    User,
)
from apps.bjgas_platform.services.notifications import (
    DELIVER_TASK,
    SCHEDULE_NAME,
    ensure_outbox_schedule,
    idempotency_key,
    notify,
)
from bjgas.celery import app as celery_app

from .factories import (
    CompanyFactory,
    DepartmentFactory,
    ScopeRuleFactory,
    SupportGroupFactory,
    TaskFactory,
    UserFactory,
    VendorEngineerFactory,
    VendorFactory,
)


@dataclass
class Org:
    task: Task
    users: dict[str, User]


def build_org() -> Org:
    """Make the organisation of the module docstring and one task in it."""
    hq = CompanyFactory(code="HQ", name="集团总部")
    north = CompanyFactory(code="NORTH", name="北部分公司")
    finance = DepartmentFactory(code="HQ-FIN", name="财务部", company=hq)
    u: dict[str, User] = {}

    def user(name, roles, company=None, department=None, email=None, **extra):
        u[name] = UserFactory(
            username=name,
            full_name=extra.pop("full_name", name),
            company=company,
            department=department,
            email=f"{name}@bjgas.test" if email is None else email,
            roles=roles,
            is_staff=True,
            **extra,
        )
        return u[name]

    user("head", [r.DEPARTMENT_HEAD], hq, finance)
    finance.head = u["head"]
    finance.save()
    user("req", [r.REQUESTER], hq, finance)
    user("desk", [r.SERVICE_DESK], hq)
    user("eng_in", [r.ENGINEER_T1], hq)
    user("eng_out", [r.ENGINEER_T1], north)
    user("leader", [r.TEAM_LEAD], hq)
    user("vend", [r.VENDOR_ENGINEER], email="zhang@va.test")
    user("vend2", [r.VENDOR_ENGINEER])
    user("gone", [r.ENGINEER_T1], hq, is_active=False)
    ScopeRuleFactory(name="eng_in: HQ", user=u["eng_in"], companies=[hq])
    ScopeRuleFactory(name="gone: HQ", user=u["gone"], companies=[hq])
    ScopeRuleFactory(name="eng_out: NORTH", user=u["eng_out"], companies=[north])
    ScopeRuleFactory(name="leader: HQ", user=u["leader"], companies=[hq])
    ScopeRuleFactory(name="head: finance", user=u["head"], departments=[finance])

    vendor = VendorFactory(code="VA", name="华信运维", contact_email="Zhang@VA.test")
    ScopeRuleFactory(name="VA", role=r.role_group(r.VENDOR_ENGINEER), vendors=[vendor])
    VendorEngineerFactory(vendor=vendor, name="张工", user=u["vend"])
    VendorEngineerFactory(vendor=vendor, name="李工", user=u["vend2"])

    group = SupportGroupFactory(code="G-DESKTOP", name="桌面组", leader=u["leader"])
    group.members.set([u["eng_in"], u["eng_out"], u["gone"]])
    task = TaskFactory(
        title="打印机卡纸",
        requester=u["req"],
        created_by=u["desk"],
        company=hq,
        department=finance,
        support_group=group,
        vendor=vendor,
        assignee=u["eng_in"],
    )
    return Org(task=task, users=u)


def make_rule(code="task-new", event="task.created", *, roles=(), robots=(), **fields):
    """Create an active rule on tasks; the fields override the defaults."""
    defaults = {
        "name": code,
        "event": event,
        "process": ContentType.objects.get_for_model(Task),
        "recipient_relations": "",
        "channels": "in_app,email",
        "subject_template": "{{ record.number }} {{ record.title }}",
        "body_template": "{{ actor }}: {{ event }}",
    }
    rule = NotificationRule.objects.create(code=code, **{**defaults, **fields})
    rule.recipient_roles.set([r.role_group(role) for role in roles])
    rule.robots.set(robots)
    return rule


def rows(**filters) -> set[tuple[str, str]]:
    """Return (recipient username or robot code, channel) of the outbox rows."""
    return {
        (m.recipient.username if m.recipient_id else m.robot.code, m.channel)
        for m in OutboxMessage.objects.filter(**filters).select_related("recipient", "robot")
    }


@pytest.fixture
def org(db) -> Org:
    return build_org()


def test_one_row_per_person_and_channel_and_never_the_actor(org):
    make_rule(recipient_relations="requester, assignee")
    with transaction.atomic():
        written = notify("task.created", record=org.task, actor=org.users["req"], key="k1")

    assert written == 2
    assert rows() == {("eng_in", "in_app"), ("eng_in", "email")}
    message = OutboxMessage.objects.get(channel="email")
    assert message.idempotency_key == f"k1:task-new:email:{org.users['eng_in'].pk}"
    assert message.status == OutboxStatus.PENDING and message.attempts == 0
    assert message.content_type == ContentType.objects.get_for_model(Task)
    assert message.object_id == org.task.pk
    assert message.url == f"/desk/bjgas_ops/task/{org.task.pk}/change/"
    assert message.url == reverse("admin:bjgas_ops_task_change", args=[org.task.pk])


def test_relations_resolve_to_the_people_of_the_record(org):
    make_rule(
        channels="in_app",
        recipient_relations=(
            "requester,assignee,support_group_members,support_group_leader,"
            "requester_department_head,vendor_contact"
        ),
    )
    notify("task.created", record=org.task, actor=org.users["desk"], key="k1")

    # eng_out is a member but outside the task's company; gone is inactive; vend matches
    # the vendor's contact e-mail (case aside), so vend2 is not told.
    assert rows() == {
        ("req", "in_app"),
        ("eng_in", "in_app"),
        ("leader", "in_app"),
        ("head", "in_app"),
        ("vend", "in_app"),
    }


def test_vendor_contact_without_a_matching_account_reaches_the_vendors_engineers(org):
    org.task.vendor.contact_email = "office@va.test"
    org.task.vendor.save()
    make_rule(channels="in_app", recipient_relations="vendor_contact")
    notify("task.created", record=org.task, actor=org.users["desk"], key="k1")
    assert rows() == {("vend", "in_app"), ("vend2", "in_app")}


def test_roles_are_filtered_by_the_scope_of_each_person(org):
    make_rule(channels="in_app", roles=[r.ENGINEER_T1, r.TEAM_LEAD])
    notify("task.created", record=org.task, actor=org.users["desk"], key="k1")
    # eng_out (NORTH) may not see an HQ task; gone is inactive.
    assert rows() == {("eng_in", "in_app"), ("leader", "in_app")}


def test_event_recipients_come_from_the_caller_and_obey_scope(org):
    make_rule(channels="in_app", recipient_relations="event_recipients")
    u = org.users
    written = notify(
        "task.created",
        record=org.task,
        actor=u["desk"],
        recipients=[u["eng_out"], u["leader"].pk, u["desk"]],
        key="k1",
    )
    assert written == 1
    assert rows() == {("leader", "in_app")}


def test_each_persons_switches_apply(org):
    make_rule(recipient_relations="requester,assignee", channels="in_app,email,push")
    NotificationPreference.objects.create(user=org.users["req"], email=False, push=False)
    NotificationPreference.objects.create(user=org.users["eng_in"], in_app=False)
    notify("task.created", record=org.task, actor=org.users["desk"], key="k1")
    assert rows() == {("req", "in_app"), ("eng_in", "email"), ("eng_in", "push")}


def test_the_same_key_writes_each_message_once(org):
    make_rule(recipient_relations="requester,assignee")
    kwargs = {"record": org.task, "actor": org.users["desk"]}

    assert notify("task.created", key="task:1:created", **kwargs) == 4
    first = sorted(OutboxMessage.objects.values_list("pk", "idempotency_key"))
    assert notify("task.created", key="task:1:created", **kwargs) == 0
    assert sorted(OutboxMessage.objects.values_list("pk", "idempotency_key")) == first
    assert notify("task.created", key="task:1:created-again", **kwargs) == 4
    assert OutboxMessage.objects.count() == 8


def test_a_very_long_key_is_hashed_and_still_unique():
    long_key = "x" * 300
    one = idempotency_key(long_key, "rule", "email", 1)
    assert one.startswith("sha256:") and len(one) == len("sha256:") + 64
    assert one == idempotency_key(long_key, "rule", "email", 1)
    assert one != idempotency_key(long_key, "rule", "email", 2)
    assert idempotency_key("k", "rule", "email", 1) == "k:rule:email:1"


def test_rules_choose_by_event_process_and_activity(org):
    make_rule(code="any-process", process=None, recipient_relations="requester", channels="email")
    make_rule(code="tasks", recipient_relations="requester", channels="in_app")
    make_rule(
        code="incidents",
        process=ContentType.objects.get_for_model(Incident),
        recipient_relations="requester",
        channels="push",
    )
    make_rule(code="off", recipient_relations="requester", channels="push", is_active=False)
    make_rule(code="other-event", event="task.closed", recipient_relations="requester")

    notify("task.created", record=org.task, actor=org.users["desk"], key="k1")

    assert rows() == {("req", "email"), ("req", "in_app")}
    assert set(OutboxMessage.objects.values_list("idempotency_key", flat=True)) == {
        f"k1:any-process:email:{org.users['req'].pk}",
        f"k1:tasks:in_app:{org.users['req'].pk}",
    }


def test_no_rule_writes_nothing(org):
    assert notify("task.created", record=org.task, actor=org.users["desk"], key="k1") == 0
    assert not OutboxMessage.objects.exists()


def test_templates_render_as_plain_text_with_the_callers_context(org):
    make_rule(
        recipient_relations="requester",
        channels="in_app",
        subject_template="【{{ level }}】{{ record.number }}\n<{{ record.title }}> & more",
        body_template="{{ actor.full_name }} 处理：{{ record.title }} <b>{{ event }}</b>",
    )
    notify(
        "task.created",
        record=org.task,
        actor=org.users["desk"],
        context={"level": "一级"},
        key="k1",
    )
    message = OutboxMessage.objects.get()
    # Line breaks in a subject become spaces; nothing is HTML-escaped.
    assert message.subject == f"【一级】{org.task.number} <打印机卡纸> & more"
    assert message.body == "desk 处理：打印机卡纸 <b>task.created</b>"


def test_a_broken_template_falls_back_and_logs(org, caplog, english):
    make_rule(
        recipient_relations="requester",
        channels="in_app",
        subject_template="{% if %}",
        body_template="ok",
    )
    with caplog.at_level(logging.ERROR, logger="apps.bjgas_platform.services.notifications"):
        assert notify("task.created", record=org.task, actor=org.users["desk"], key="k1") == 1
    message = OutboxMessage.objects.get()
    assert str(org.task) in message.subject and "task.created" in message.subject
    assert message.body
    assert any("task-new" in rec.getMessage() for rec in caplog.records)


def test_group_robots_get_one_message_each_and_the_gateway_carries_push(org):
    wecom = RobotWebhook.objects.create(
        code="wecom-ops", name="运维群", channel=Channel.WECOM, url="http://127.0.0.1:9/w"
    )
    ding_off = RobotWebhook.objects.create(
        code="ding-off",
        name="停用",
        channel=Channel.DINGTALK,
        url="http://127.0.0.1:9/d",
        is_active=False,
    )
    gateway = RobotWebhook.objects.create(
        code="app-push", name="移动端", channel=Channel.PUSH, url="http://127.0.0.1:9/p"
    )
    make_rule(recipient_relations="requester", channels="push", robots=[wecom, ding_off, gateway])
    assert notify("task.created", record=org.task, actor=org.users["desk"], key="k1") == 2

    assert rows() == {("req", "push"), ("wecom-ops", "wecom")}
    push = OutboxMessage.objects.get(channel="push")
    assert push.robot == gateway
    robot_row = OutboxMessage.objects.get(channel="wecom")
    assert robot_row.recipient is None
    assert robot_row.idempotency_key == "k1:task-new:wecom:wecom-ops"


def test_outbox_rows_roll_back_with_the_change(org):
    make_rule(recipient_relations="requester")
    with pytest.raises(RuntimeError), transaction.atomic():
        notify("task.created", record=org.task, actor=org.users["desk"], key="k1")
        raise RuntimeError("the change failed")
    assert not OutboxMessage.objects.exists()


def test_delivery_is_asked_for_after_commit_only(org, django_capture_on_commit_callbacks):
    make_rule(recipient_relations="requester")
    with django_capture_on_commit_callbacks() as callbacks:
        notify("task.created", record=org.task, actor=org.users["desk"], key="k1")
        notify("task.created", record=org.task, actor=org.users["desk"], key="k1")
    # One kick for the first call; the repeat wrote nothing and asks for nothing.
    assert [c.__name__ for c in callbacks] == ["kick_delivery"]


@pytest.mark.django_db
def test_the_delivery_schedule_exists_once():
    # The reference data (loaded after migrate) made it; running again changes nothing.
    ensure_outbox_schedule()
    ensure_outbox_schedule()
    task = PeriodicTask.objects.get(name=SCHEDULE_NAME)
    assert PeriodicTask.objects.filter(task=DELIVER_TASK).count() == 1
    assert (task.interval.every, task.interval.period) == (1, IntervalSchedule.MINUTES)
    assert task.enabled
    assert DELIVER_TASK in celery_app.tasks


@pytest.mark.django_db
def test_the_schedule_an_administrator_paused_stays_paused():
    PeriodicTask.objects.filter(name=SCHEDULE_NAME).update(enabled=False)
    ensure_outbox_schedule()
    assert PeriodicTask.objects.get(name=SCHEDULE_NAME).enabled is False
