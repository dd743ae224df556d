"""Who may take the default workflows' transitions: the requester's own decisions, taking on
work given to someone else, and the conditions of the defaults being valid."""

import pytest

from apps.bjgas_ops.models import Task
from apps.bjgas_ops.reference import ACCEPTERS, CONFIRMERS
from apps.bjgas_ops.services.incidents import assign
from apps.bjgas_platform import roles as r
from apps.bjgas_platform.models import Workflow, WorkflowTransition
from apps.bjgas_platform.services.workflow import (
    WorkflowError,
    available_transitions,
    check_workflow,
    take_transition,
)
from apps.bjgas_platform.tests.factories import (
    CompanyFactory,
    DepartmentFactory,
    ScopeRuleFactory,
    SupportGroupFactory,
    TaskFactory,
    UserFactory,
)

from .incident_fixtures import *  # noqa: F403
from .incident_fixtures import act, report

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("english")]


@pytest.mark.parametrize("code", ["task_default", "incident_default"])
def test_default_workflows_are_valid(code):
    assert check_workflow(Workflow.objects.get(code=code)) == []


@pytest.mark.parametrize(
    ("workflow", "transitions", "condition"),
    [
        ("task_default", ["reject", "close", "cancel"], CONFIRMERS),
        ("task_default", ["accept"], ACCEPTERS),
        ("incident_default", ["confirm", "reject", "cancel"], CONFIRMERS),
        ("incident_default", ["accept"], ACCEPTERS),
    ],
)
def test_default_conditions(workflow, transitions, condition):
    stored = WorkflowTransition.objects.filter(workflow__code=workflow, code__in=transitions)
    assert {t.code: t.condition for t in stored} == {code: condition for code in transitions}
    assert all(t.condition_message for t in stored)


@pytest.fixture
def office():
    """HQ's IT center: a requester, a department head who also requests, the desk, two
    engineers and a lead, all seeing HQ's records."""
    hq = CompanyFactory(code="HQ", name="集团总部")
    it = DepartmentFactory(code="HQ-IT", name="信息中心", company=hq)
    people = {}
    for username, role_codes in [
        ("zhao", [r.REQUESTER]),
        ("head", [r.DEPARTMENT_HEAD, r.REQUESTER]),
        ("desk", [r.SERVICE_DESK]),
        ("eng", [r.ENGINEER_T1]),
        ("eng2", [r.ENGINEER_T1]),
        ("lead", [r.TEAM_LEAD]),
    ]:
        people[username] = UserFactory(
            username=username, company=hq, department=it, roles=role_codes
        )
    for role_code in (r.SERVICE_DESK, r.ENGINEER_T1, r.TEAM_LEAD, r.DEPARTMENT_HEAD):
        ScopeRuleFactory(name=f"{role_code} HQ", role=r.role_group(role_code), companies=[hq])
    group = SupportGroupFactory(code="G1", name="一线支持组")
    return type("Office", (), {"group": group, **people})


def codes(task, actor) -> list[str]:
    return [t.code for t in available_transitions(Task.objects.get(pk=task.pk), actor)]


def test_a_head_who_also_requests_cannot_cancel_someone_elses_task(office):
    task = TaskFactory(requester=office.zhao, support_group=office.group)

    assert Task.objects.visible_to(office.head).filter(pk=task.pk).exists()
    assert codes(task, office.head) == []
    with pytest.raises(WorkflowError) as caught:
        take_transition(task, "cancel", office.head, "不需要了")
    assert caught.value.message == "只有提出人本人、服务台或组长可以取消。"

    assert codes(task, office.zhao) == ["cancel"]
    assert "cancel" in codes(task, office.desk)
    take_transition(task, "cancel", office.zhao, "不需要了")
    task.refresh_from_db()
    assert task.state == "cancelled"


def test_a_head_who_requests_may_cancel_own_task(office):
    task = TaskFactory(requester=office.head)

    take_transition(task, "cancel", office.head, "重复提交")
    task.refresh_from_db()
    assert task.state == "cancelled"


def test_only_the_requester_desk_or_lead_close_or_reject_a_done_task(office):
    task = TaskFactory(requester=office.zhao, support_group=office.group, assignee=office.eng)
    take_transition(task, "assign", office.desk)
    take_transition(task, "accept", office.eng)
    take_transition(task, "complete", office.eng, "已处理")

    assert codes(task, office.head) == []
    for code in ("close", "reject"):
        with pytest.raises(WorkflowError):
            take_transition(Task.objects.get(pk=task.pk), code, office.head, "x")
    assert codes(task, office.zhao) == ["reject", "close"]
    take_transition(Task.objects.get(pk=task.pk), "reject", office.zhao, "没修好")
    assert Task.objects.get(pk=task.pk).state == "in_progress"


def test_a_task_given_to_one_engineer_is_accepted_by_that_engineer_or_a_lead(office):
    task = TaskFactory(requester=office.zhao, support_group=office.group, assignee=office.eng)
    take_transition(task, "assign", office.desk)

    assert "accept" not in codes(task, office.eng2)
    with pytest.raises(WorkflowError) as caught:
        take_transition(Task.objects.get(pk=task.pk), "accept", office.eng2)
    assert caught.value.message == "该单已派给其他处理人，只有该处理人或组长可以接单。"
    assert "accept" in codes(task, office.eng)
    assert "accept" in codes(task, office.lead)

    take_transition(Task.objects.get(pk=task.pk), "accept", office.eng)
    assert Task.objects.get(pk=task.pk).state == "in_progress"


def test_a_task_given_to_nobody_is_accepted_by_any_engineer(office):
    task = TaskFactory(requester=office.zhao, support_group=office.group)
    take_transition(task, "assign", office.desk)

    assert "accept" in codes(task, office.eng)
    take_transition(Task.objects.get(pk=task.pk), "accept", office.eng2)
    assert Task.objects.get(pk=task.pk).state == "in_progress"


def test_an_incident_assigned_to_one_engineer_is_not_accepted_by_another(world):
    incident = report(world, catalog_item=world.pc)
    incident = act(incident, "dispatch", world.desk)
    assign(incident, world.desk, world.g1, assignee=world.li)
    incident.refresh_from_db()
    assert incident.assignee == world.li

    with pytest.raises(WorkflowError) as caught:
        take_transition(incident, "accept", world.zhou)
    assert caught.value.message == "该单已派给其他处理人，只有该处理人或组长可以接单。"

    incident = act(incident, "accept", world.li)
    assert (incident.state, incident.assignee) == ("accepted", world.li)


def test_an_incident_is_cancelled_only_by_its_requester_the_desk_or_a_lead(world):
    head = UserFactory(
        username="fin-head",
        company=world.hq,
        department=world.fin,
        roles=[r.DEPARTMENT_HEAD, r.REQUESTER],
    )
    ScopeRuleFactory(name="财务部负责人", user=head, departments=[world.fin])
    incident = report(world, catalog_item=world.pc)
    assert type(incident).objects.visible_to(head).filter(pk=incident.pk).exists()

    with pytest.raises(WorkflowError) as caught:
        take_transition(incident, "cancel", head, "误报")
    assert caught.value.message == "只有报障人本人、服务台或组长可以取消。"
    incident = act(incident, "cancel", world.zhang, "误报")
    assert incident.state == "cancelled"
