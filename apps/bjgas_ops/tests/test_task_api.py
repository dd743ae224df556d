"""The REST API answers only within scope and takes transitions through the engine."""

from datetime import UTC, datetime

import pytest
from django.conf import settings
from django.utils import timezone
from rest_framework.test import APIClient

from apps.bjgas_ops.models import Task
from apps.bjgas_ops.services.tasks import create_task
from apps.bjgas_platform import roles
from apps.bjgas_platform.models import (
    ApprovalRequest,
    BusinessSystem,
    Company,
    Department,
    ScopeRule,
    SupportGroup,
    TransitionLog,
    User,
)

pytestmark = pytest.mark.django_db


def make_user(username, *role_codes, company=None, department=None):
    user = User.objects.create_user(
        username, password="pw-123456", company=company, department=department
    )
    for code in role_codes:
        user.groups.add(roles.role_group(code))
    return user


@pytest.fixture
def org():
    hq = Company.objects.create(code="HQ", name="集团总部", kind="hq")
    east = Company.objects.create(code="EAST", name="城东分公司", parent=hq)
    west = Company.objects.create(code="WEST", name="城西分公司", parent=hq)
    d_east = Department.objects.create(code="E-CS", name="客服部", company=east)
    d_west = Department.objects.create(code="W-CS", name="客服部", company=west)
    crm = BusinessSystem.objects.create(code="CRM", name="客户服务系统")
    group = SupportGroup.objects.create(code="DESK", name="桌面运维组", tier=1)
    alice = make_user("alice", roles.REQUESTER, company=east, department=d_east)
    bob = make_user("bob", roles.REQUESTER, company=west, department=d_west)
    eng = make_user("eng", roles.ENGINEER_T1, company=hq)
    ScopeRule.objects.create(name="城东", user=eng).companies.add(east)
    t_east = create_task(alice, title="东区打印机卡纸", business_system=crm, support_group=group)
    t_west = create_task(bob, title="西区电脑蓝屏")
    return {
        "hq": hq,
        "east": east,
        "west": west,
        "alice": alice,
        "bob": bob,
        "eng": eng,
        "t_east": t_east,
        "t_west": t_west,
        "group": group,
    }


def client_for(user):
    client = APIClient()
    client.force_login(user)
    return client


def test_task_list_and_detail_follow_scope(org):
    eng = client_for(org["eng"])
    listed = {row["number"] for row in eng.get("/api/v1/tasks/").json()["results"]}
    assert listed == {org["t_east"].number}
    response = eng.get(f"/api/v1/tasks/{org['t_west'].pk}/")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert org["t_west"].title not in response.content.decode()

    # A requester with no rules sees only what they asked for.
    bob = client_for(org["bob"])
    assert [r["title"] for r in bob.get("/api/v1/tasks/").json()["results"]] == ["西区电脑蓝屏"]


def test_company_scope_includes_sub_companies(org):
    ScopeRule.objects.create(name="总部", user=org["bob"]).companies.add(org["hq"])
    # bob has no view permission on companies as a requester: the role decides the model.
    assert client_for(org["bob"]).get("/api/v1/companies/").status_code == 403
    # eng's rule names 城东分公司: its own sub-company comes with it, 城西 and HQ do not.
    Company.objects.create(code="EAST-LNG", name="城东液化气站", parent=org["east"])
    codes = {c["code"] for c in client_for(org["eng"]).get("/api/v1/companies/").json()["results"]}
    assert codes == {"EAST", "EAST-LNG"}


def test_transition_through_api_and_stale_version(org):
    task = org["t_east"]
    desk = make_user("agent", roles.SERVICE_DESK)
    ScopeRule.objects.create(name="all", user=desk, all_records=True)
    client = client_for(desk)
    actions = {t["code"] for t in client.get(f"/api/v1/tasks/{task.pk}/transitions/").json()}
    assert actions == {"assign", "cancel"}

    ok = client.post(
        f"/api/v1/tasks/{task.pk}/transition/",
        {"code": "assign", "expected_version": 0},
        format="json",
    )
    assert ok.status_code == 200, ok.content
    assert ok.json()["record"]["state"] == "assigned"
    assert ok.json()["record"]["version"] == 1

    stale = client.post(
        f"/api/v1/tasks/{task.pk}/transition/",
        {"code": "cancel", "comment": "重复", "expected_version": 0},
        format="json",
    )
    assert stale.status_code == 409
    assert stale.json()["code"] == "stale_record"
    task.refresh_from_db()
    assert task.state == "assigned"
    history = client.get(f"/api/v1/tasks/{task.pk}/history/").json()
    assert [(h["from_state"], h["to_state"]) for h in history] == [("", "new"), ("new", "assigned")]


def test_condition_refusal_changes_nothing(org):
    task = org["t_west"]  # no support group: the default workflow refuses to dispatch it
    desk = make_user("agent", roles.SERVICE_DESK)
    ScopeRule.objects.create(name="all", user=desk, all_records=True)
    response = client_for(desk).post(
        f"/api/v1/tasks/{task.pk}/transition/", {"code": "assign"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["detail"] == "派单前请先选择处理组。"
    task.refresh_from_db()
    assert (task.state, task.version) == ("new", 0)
    assert TransitionLog.objects.filter(object_id=task.pk).count() == 1


def test_create_task_through_api_with_token(org):
    token = (
        APIClient()
        .post("/api/v1/auth/token/", {"username": "alice", "password": "pw-123456"})
        .json()["token"]
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    response = client.post("/api/v1/tasks/", {"title": "VPN 连不上"}, format="json")
    assert response.status_code == 201, response.content
    task = Task.objects.get(pk=response.json()["id"])
    assert (task.requester, task.company, task.state) == (org["alice"], org["east"], "new")
    assert task.number.startswith("TSK-")
    # A link to a record outside the user's scope is refused, not stored.
    other = client.post("/api/v1/tasks/", {"title": "x", "company": org["west"].pk}, format="json")
    assert other.status_code == 400
    assert "company" in other.json()


def test_approval_through_api(org):
    task = org["t_east"]
    lead = make_user("lead", roles.TEAM_LEAD)
    ScopeRule.objects.create(name="东", user=lead).companies.add(org["east"])
    Task.objects.filter(pk=task.pk).update(state="in_progress", assignee=org["eng"])
    eng = client_for(org["eng"])
    response = eng.post(
        f"/api/v1/tasks/{task.pk}/transition/",
        {"code": "abort", "comment": "需求取消"},
        format="json",
    )
    assert response.status_code == 200, response.content
    approval_id = response.json()["approval"]["id"]
    assert response.json()["record"]["state"] == "in_progress"

    # The engineer who asked may not approve; the team lead sees and approves it.
    refused = eng.post(f"/api/v1/approvals/{approval_id}/decide/", {"approve": True}, format="json")
    assert refused.status_code in (400, 404)
    lead_client = client_for(lead)
    assert [a["id"] for a in lead_client.get("/api/v1/approvals/").json()["results"]] == [
        approval_id
    ]
    decided = lead_client.post(
        f"/api/v1/approvals/{approval_id}/decide/", {"approve": True}, format="json"
    )
    assert decided.status_code == 200, decided.content
    assert decided.json()["status"] == "approved"
    task.refresh_from_db()
    assert task.state == "cancelled"
    assert ApprovalRequest.objects.get(pk=approval_id).votes.count() == 1
    # Bob (another company, no rule) cannot see the approval at all.
    assert client_for(org["bob"]).get(f"/api/v1/approvals/{approval_id}/").status_code == 404


def test_vendor_engineer_acts_with_the_change_right_alone(org):
    from apps.bjgas_platform.models import Vendor

    vendor = Vendor.objects.create(code="HX", name="华信运维")
    engineer = make_user("hx", roles.VENDOR_ENGINEER)
    ScopeRule.objects.create(name="华信", user=engineer).vendors.add(vendor)
    task = org["t_east"]
    Task.objects.filter(pk=task.pk).update(vendor=vendor, state="assigned")
    # The role may view and change tasks but not add them: acting is a change.
    assert not engineer.has_perm("bjgas_ops.add_task")
    client = client_for(engineer)
    assert client.post("/api/v1/tasks/", {"title": "x"}, format="json").status_code == 403
    response = client.post(
        f"/api/v1/tasks/{task.pk}/transition/", {"code": "accept"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["record"]["state"] == "in_progress"


def english_client(user):
    client = client_for(user)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"  # the API ignores Accept-Language
    return client


def close_task(task):
    Task.objects.filter(pk=task.pk).update(state="closed")


def test_closed_task_refuses_edits_and_deletion_through_the_api(org):
    task = org["t_east"]
    close_task(task)
    lead = make_user("lead", roles.TEAM_LEAD)
    ScopeRule.objects.create(name="东", user=lead).companies.add(org["east"])
    url = f"/api/v1/tasks/{task.pk}/"
    expected = (
        f"{task.number} 东区打印机卡纸 is in state '已关闭', in which it cannot be edited; "
        "only workflow actions may change it."
    )

    by_requester = english_client(org["alice"]).patch(
        url, {"title": "改个标题", "priority": "P1"}, format="json"
    )
    by_lead = english_client(lead).patch(url, {"assignee": org["alice"].pk}, format="json")
    root = User.objects.create_superuser("root", password="pw-123456")
    deleted = english_client(root).delete(url)

    for response in (by_requester, by_lead, deleted):
        assert response.status_code == 400, response.content
        assert response.json() == {"code": "read_only_state", "detail": expected}
    task.refresh_from_db()
    assert (task.title, task.priority, task.assignee, task.version) == (
        "东区打印机卡纸",
        org["t_east"].priority,
        None,
        0,
    )


def test_state_edit_roles_apply_to_the_api(org):
    task = org["t_east"]
    task.workflow.state("new").edit_roles.set([roles.role_group(roles.TEAM_LEAD)])

    refused = client_for(org["alice"]).patch(
        f"/api/v1/tasks/{task.pk}/", {"title": "改个标题"}, format="json"
    )

    assert refused.status_code == 400
    assert refused.json()["code"] == "read_only_state"
    task.refresh_from_db()
    assert task.title == "东区打印机卡纸"


def test_api_edit_raises_the_version_and_refuses_a_stale_one(org):
    task = org["t_east"]
    client = english_client(org["alice"])
    url = f"/api/v1/tasks/{task.pk}/"

    first = client.patch(url, {"title": "东区打印机卡纸（二楼）", "version": 0}, format="json")
    unversioned = client.patch(url, {"description": "三台都卡"}, format="json")
    stale = client.patch(url, {"priority": "P1", "version": 0}, format="json")
    bad = client.patch(url, {"priority": "P1", "version": "two"}, format="json")

    assert first.status_code == 200, first.content
    assert first.json()["version"] == 1
    assert unversioned.status_code == 200
    assert unversioned.json()["version"] == 2
    assert stale.status_code == 409
    assert stale.json() == {
        "code": "stale_record",
        "detail": f"{task.number} 东区打印机卡纸（二楼） was changed by someone else meanwhile; "
        "reload it and redo your change.",
        "field": "version",
    }
    assert bad.status_code == 400
    assert list(bad.json()) == ["version"]
    task.refresh_from_db()
    assert (task.title, task.description, task.priority, task.version) == (
        "东区打印机卡纸（二楼）",
        "三台都卡",
        org["t_east"].priority,
        2,
    )


def test_api_edit_keeps_a_transition_taken_after_loading(org):
    task = org["t_east"]
    desk = make_user("agent", roles.SERVICE_DESK)
    ScopeRule.objects.create(name="all", user=desk, all_records=True)
    client = client_for(desk)
    client.post(f"/api/v1/tasks/{task.pk}/transition/", {"code": "assign"}, format="json")

    edited = client.patch(f"/api/v1/tasks/{task.pk}/", {"title": "换打印机"}, format="json")

    assert edited.status_code == 200
    task.refresh_from_db()
    assert (task.title, task.state, task.version) == ("换打印机", "assigned", 2)


def test_state_change_moves_updated_at(org):
    task = org["t_east"]
    Task.objects.filter(pk=task.pk).update(updated_at=datetime(2020, 1, 1, tzinfo=UTC))
    desk = make_user("agent", roles.SERVICE_DESK)
    ScopeRule.objects.create(name="all", user=desk, all_records=True)
    before = timezone.now()

    client_for(desk).post(f"/api/v1/tasks/{task.pk}/transition/", {"code": "assign"})

    task.refresh_from_db()
    assert task.state == "assigned"
    assert task.updated_at >= before


def test_approvals_name_their_record_and_pending_ones_hide_the_action(org):
    task = org["t_east"]
    lead = make_user("lead", roles.TEAM_LEAD)
    ScopeRule.objects.create(name="东", user=lead).companies.add(org["east"])
    Task.objects.filter(pk=task.pk).update(state="in_progress", assignee=org["eng"])
    eng = client_for(org["eng"])
    actions_url = f"/api/v1/tasks/{task.pk}/transitions/"
    assert "abort" in {t["code"] for t in eng.get(actions_url).json()}

    eng.post(f"/api/v1/tasks/{task.pk}/transition/", {"code": "abort", "comment": "需求取消"})

    assert "abort" not in {t["code"] for t in eng.get(actions_url).json()}
    assert {t["code"] for t in eng.get(actions_url).json()} >= {"complete", "wait"}
    listed = client_for(lead).get("/api/v1/approvals/").json()["results"]
    assert [a["record"] for a in listed] == [
        {"model": "bjgas_ops.Task", "id": task.pk, "name": f"{task.number} 东区打印机卡纸"}
    ]


def test_api_schema_and_docs_need_a_login(org):
    anonymous = APIClient()
    signed_in = client_for(org["alice"])

    for url in ("/api/schema/", "/api/docs/"):
        assert anonymous.get(url).status_code in (401, 403)
        assert signed_in.get(url).status_code == 200
