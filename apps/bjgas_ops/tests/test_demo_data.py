"""The demo data command: it loads a working installation and is safe to run twice."""

from collections import Counter

import pytest
from django.core.management import call_command

from apps.bjgas_ops.models import Task
from apps.bjgas_platform.choices import ApprovalStatus
from apps.bjgas_platform.models import ApprovalRequest, Department, TransitionLog, User

pytestmark = pytest.mark.django_db

ROLE_CODES = {
    "admin": {"administrator"},
    "manager": {"it_manager"},
    "auditor": {"auditor"},
    "agent": {"service_desk"},
    "eng1": {"engineer_t1"},
    "eng2": {"engineer_t2"},
    "neteng": {"engineer_t2"},
    "eng3": {"engineer_t3"},
    "vendor": {"vendor_engineer"},
    "lead": {"team_lead", "engineer_t2"},
    "head": {"department_head", "requester"},
    "user1": {"requester"},
    "user2": {"requester"},
    "user3": {"requester"},
}


def load():
    call_command("load_demo_data", verbosity=0)


def test_every_role_has_a_demo_user_who_can_log_in():
    load()

    for username, roles in ROLE_CODES.items():
        user = User.objects.get(username=username)
        assert set(user.groups.values_list("role__code", flat=True)) == roles
        assert user.check_password("bjgas-demo-2026")
        assert user.is_staff and user.full_name
    assert User.objects.get(username="admin").is_superuser
    assert Department.objects.get(code="HQ-CSC").head.username == "head"
    assert User.objects.get(username="vendor").vendor_engineer.vendor.code == "HXNET"


def test_tasks_are_spread_over_the_workflow_with_history():
    load()

    states = Counter(Task.objects.values_list("state", flat=True))
    assert states == {
        "new": 3,
        "assigned": 3,
        "in_progress": 5,
        "waiting": 2,
        "done": 2,
        "closed": 4,
        "cancelled": 2,
    }
    mail = Task.objects.get(title="邮件系统收不到外部邮件")
    steps = list(
        TransitionLog.objects.filter(object_id=mail.pk, workflow=mail.workflow)
        .order_by("created_at", "id")
        .values_list("to_state", flat=True)
    )
    assert steps == ["new", "assigned", "in_progress", "done", "in_progress", "done", "closed"]
    statuses = Counter(ApprovalRequest.objects.values_list("status", flat=True))
    assert statuses == {ApprovalStatus.PENDING: 1, ApprovalStatus.APPROVED: 1}


def test_running_twice_adds_nothing():
    load()
    counts = (User.objects.count(), Task.objects.count(), TransitionLog.objects.count())
    user = User.objects.get(username="user1")
    user.set_password("changed-by-the-user")
    user.save()

    load()

    assert (User.objects.count(), Task.objects.count(), TransitionLog.objects.count()) == counts
    assert User.objects.get(username="user1").check_password("changed-by-the-user")


def test_scope_rules_give_each_user_their_share():
    load()

    def titles(username):
        return set(
            Task.objects.visible_to(User.objects.get(username=username)).values_list(
                "title", flat=True
            )
        )

    assert titles("vendor") == {"城西分公司办公楼三层有线网络中断", "灾备中心至主数据中心专线丢包"}
    assert len(titles("manager")) == len(titles("agent")) == Task.objects.count() == 21
    # A requester sees only the tasks they asked for.
    assert titles("user3") == set(
        Task.objects.filter(requester__username="user3").values_list("title", flat=True)
    )
    assert len(titles("user3")) == 4
    # The department head sees every task of the customer-service center, sub-units included.
    assert titles("head") == set(
        Task.objects.filter(department__code__startswith="HQ-CSC").values_list("title", flat=True)
    )


def test_demo_incidents_are_worked_like_real_ones():
    from apps.bjgas_ops.models import Incident
    from apps.bjgas_platform.models import Comment, SlaClock

    load()

    states = Counter(Incident.objects.values_list("state", flat=True))
    assert states == {
        "in_progress": 2,
        "waiting_requester": 1,
        "dispatched": 1,
        "resolved": 1,
        "closed": 1,
        "new": 1,
    }
    scada = Incident.objects.get(title="SCADA 调度画面数据不刷新")
    # Urgency 1 × impact 1 is P1 in the default matrix; severity A as reported.
    assert (scada.priority, scada.severity, scada.assignee.username) == ("P1", "A", "eng2")
    assert SlaClock.objects.filter(object_id=scada.pk, metric="resolution").exists()
    assert Comment.objects.filter(kind="supplement").count() == 1
    resolved = Incident.objects.get(state="resolved")
    assert resolved.auto_close_at is not None and resolved.resolved_at is not None
    load()
    assert Incident.objects.count() == 7
