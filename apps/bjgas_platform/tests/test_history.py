"""History: every change to tasks, workflows, scope rules and role membership is kept
with who made it and the old and new values."""

import pytest
from django.http import HttpResponse
from django.urls import path

from apps.bjgas_ops.models import Task
from apps.bjgas_platform import roles as r
from apps.bjgas_platform.models import Workflow
from apps.bjgas_platform.services.workflow import take_transition

from .factories import (
    CompanyFactory,
    DepartmentFactory,
    ScopeRuleFactory,
    SupportGroupFactory,
    TaskFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def retitle(request, pk: int):
    """Change a task's title as the logged-in user, the way a desk form would."""
    task = Task.objects.visible_to(request.user).get(pk=pk)
    task.title = request.POST["title"]
    task.save()
    return HttpResponse("ok")


urlpatterns = [path("retitle/<int:pk>/", retitle)]


def changes(record) -> dict[str, tuple]:
    """Return {field: (old, new)} between a record's last two history rows."""
    new, old = record.history.all()[:2]
    return {c.field: (c.old, c.new) for c in new.diff_against(old).changes}


@pytest.fixture
def admin_user():
    return UserFactory(username="admin", roles=[r.ADMINISTRATOR])


@pytest.fixture
def task():
    hq = CompanyFactory(code="HQ", name="集团总部")
    requester = UserFactory(username="zhao", company=hq, roles=[r.REQUESTER])
    return TaskFactory(title="打印机卡纸", requester=requester, priority="P3")


def test_creating_a_task_records_its_creator(task):
    [created] = task.history.all()

    assert (created.history_type, created.history_user) == ("+", task.requester)


def test_task_field_change_with_explicit_user(task, admin_user):
    task.priority = "P1"
    task._history_user = admin_user
    task.save()

    latest = task.history.first()
    assert (latest.history_type, latest.history_user) == ("~", admin_user)
    assert changes(task) == {"priority": ("P3", "P1")}


@pytest.mark.urls(__name__)
def test_task_field_change_in_a_request_names_the_logged_in_user(client, task):
    client.force_login(task.requester)

    response = client.post(f"/retitle/{task.pk}/", {"title": "打印机不出纸"})

    assert response.status_code == 200
    latest = task.history.first()
    assert latest.history_user == task.requester
    assert changes(task) == {"title": ("打印机卡纸", "打印机不出纸")}


def test_transition_records_the_actor_and_the_action(task):
    desk = UserFactory(username="desk", roles=[r.SERVICE_DESK])
    ScopeRuleFactory(name="desk", user=desk, companies=[task.company])
    task.support_group = SupportGroupFactory(code="G1")
    task.save()

    take_transition(task, "assign", desk)

    latest = task.history.first()
    assert (latest.history_user, latest.history_change_reason) == (desk, "派单")
    assert changes(task)["state"] == ("new", "assigned")
    assert changes(task)["version"] == (0, 1)


def test_workflow_state_and_transition_changes(admin_user):
    workflow = Workflow.objects.get(code="task_default")
    workflow.name = "任务流程（新）"
    workflow._history_user = admin_user
    workflow.save()

    new_state = workflow.states.get(code="new")
    new_state.name = "待受理"
    new_state._history_user = admin_user
    new_state.save()

    close = workflow.transitions.get(code="close")
    close.label = "关闭工单"
    close._history_user = admin_user
    close.save()

    assert changes(workflow) == {"name": ("任务默认流程", "任务流程（新）")}
    assert changes(new_state) == {"name": ("新建", "待受理")}
    assert changes(close) == {"label": ("关闭", "关闭工单")}
    for record in (workflow, new_state, close):
        assert record.history.first().history_user == admin_user


def test_transition_roles_change_is_kept(admin_user):
    close = Workflow.objects.get(code="task_default").transitions.get(code="close")
    before = sorted(close.roles.values_list("pk", flat=True))
    auditor = r.role_group(r.AUDITOR)

    close._history_user = admin_user
    close.roles.add(auditor)

    latest = close.history.first()
    assert latest.history_user == admin_user
    old, new = changes(close)["roles"]
    assert sorted(row["group"] for row in old) == before
    assert sorted(row["group"] for row in new) == sorted(before + [auditor.pk])


def test_scope_rule_field_and_dimension_changes(admin_user):
    north = CompanyFactory(code="NORTH", name="北部分公司")
    south = CompanyFactory(code="SOUTH", name="南部分公司")
    dept = DepartmentFactory(code="N-OPS", company=north)
    rule = ScopeRuleFactory(name="一线：北部", role=r.role_group(r.ENGINEER_T1), companies=[north])

    rule.name = "一线：北部与南部"
    rule._history_user = admin_user
    rule.save()
    assert changes(rule) == {"name": ("一线：北部", "一线：北部与南部")}

    rule.companies.add(south)
    old, new = changes(rule)["companies"]
    assert sorted(row["company"] for row in old) == [north.pk]
    assert sorted(row["company"] for row in new) == sorted([north.pk, south.pk])

    rule.departments.add(dept)
    old, new = changes(rule)["departments"]
    assert (old, [row["department"] for row in new]) == ([], [dept.pk])
    assert rule.history.first().history_user == admin_user

    rule.is_active = False
    rule.save()
    assert changes(rule) == {"is_active": (True, False)}


def test_role_membership_change_is_kept(admin_user):
    user = UserFactory(username="li")
    lead = r.role_group(r.TEAM_LEAD)

    user._history_user = admin_user
    user.groups.add(lead)

    latest = user.history.first()
    assert latest.history_user == admin_user
    old, new = changes(user)["groups"]
    assert (old, [row["group"] for row in new]) == ([], [lead.pk])

    user.groups.remove(lead)
    old, new = changes(user)["groups"]
    assert ([row["group"] for row in old], new) == ([lead.pk], [])
