"""The desk's task pages: list badges, creation by the service, workflow buttons, scope."""

import pytest
from django.conf import settings
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from apps.bjgas_ops.models import Task
from apps.bjgas_ops.services.tasks import create_task
from apps.bjgas_platform import roles as r
from apps.bjgas_platform.models import ApprovalRequest, TransitionLog
from apps.bjgas_platform.tests.factories import (
    CompanyFactory,
    DepartmentFactory,
    ScopeRuleFactory,
    SupportGroupFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def staff(username, role, company=None, department=None):
    return UserFactory(
        username=username,
        full_name=username,
        roles=[role],
        is_staff=True,
        company=company,
        department=department,
    )


@pytest.fixture
def org():
    north = CompanyFactory(code="NORTH", name="北部公司")
    south = CompanyFactory(code="SOUTH", name="南部公司")
    return {
        "north": north,
        "south": south,
        "north_dept": DepartmentFactory(code="N-OPS", name="北部运行部", company=north),
        "group": SupportGroupFactory(code="APP", name="应用运维组"),
    }


@pytest.fixture
def people(org):
    desk = staff("desk", r.SERVICE_DESK, org["north"])
    ScopeRuleFactory(name="服务台：北部", user=desk, companies=[org["north"]])
    engineer = staff("eng", r.ENGINEER_T2, org["north"])
    ScopeRuleFactory(name="二线：北部", user=engineer, companies=[org["north"]])
    lead = staff("lead", r.TEAM_LEAD, org["north"])
    ScopeRuleFactory(name="组长：北部", user=lead, companies=[org["north"]])
    requester = staff("req", r.REQUESTER, org["north"], org["north_dept"])
    return {"desk": desk, "engineer": engineer, "lead": lead, "requester": requester}


@pytest.fixture
def task(org, people):
    return create_task(people["requester"], title="打印机卡纸", support_group=org["group"])


def change_url(task):
    return reverse("admin:bjgas_ops_task_change", args=[task.pk])


def transition_url(task, code):
    return reverse("admin:bjgas_ops_task_transition", args=[task.pk, code])


def last_message(response) -> str:
    """Return the newest message the response left for the next page."""
    return [str(m) for m in get_messages(response.wsgi_request)][-1]


def login(client, user):
    client.force_login(user)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"  # the desk ignores Accept-Language


def test_list_shows_state_badge(client, people, task):
    login(client, people["desk"])

    response = client.get(reverse("admin:bjgas_ops_task_changelist"))

    assert response.status_code == 200
    content = response.content.decode()
    assert '<span class="bjgas-state bjgas-state-gray">新建</span>' in content
    assert task.number in content


def test_list_filters_by_state(client, people, org, task):
    other = create_task(people["requester"], title="网络中断", support_group=org["group"])
    Task.objects.filter(pk=other.pk).update(state="assigned")
    login(client, people["desk"])

    response = client.get(reverse("admin:bjgas_ops_task_changelist"), {"state": "assigned"})

    assert [t.pk for t in response.context["cl"].result_list] == [other.pk]


def test_add_page_creates_through_the_service(client, people, org):
    login(client, people["desk"])

    response = client.post(
        reverse("admin:bjgas_ops_task_add"),
        {"title": "新电脑领用", "priority": "P3", "support_group": str(org["group"].pk)},
    )

    assert response.status_code == 302
    task = Task.objects.get(title="新电脑领用")
    assert task.number.startswith("TSK-")
    assert (task.state, task.version) == ("new", 0)
    assert task.requester == people["desk"]
    assert task.created_by == people["desk"]
    assert task.company == org["north"]
    log = TransitionLog.objects.get(object_id=task.pk)
    assert (log.from_state, log.to_state, log.actor) == ("", "new", people["desk"])


def test_add_form_offers_only_visible_companies(client, people):
    login(client, people["desk"])

    response = client.get(reverse("admin:bjgas_ops_task_add"))

    companies = response.context["adminform"].form.fields["company"].queryset
    assert [c.code for c in companies] == ["NORTH"]


def test_change_page_shows_actions_and_history(client, people, task):
    login(client, people["desk"])

    response = client.get(change_url(task))

    assert response.status_code == 200
    panel = response.context["workflow_panel"]
    assert [a["code"] for a in panel["actions"]] == ["assign", "cancel"]
    assert panel["version"] == 0
    content = response.content.decode()
    assert f'formaction="{transition_url(task, "assign")}"' in content
    assert 'name="expected_version" value="0"' in content
    history = panel["history"]["rows"]
    assert len(history) == 1
    assert history[0][3] == "req"
    assert 'bjgas-state-gray">新建</span>' in str(history[0][2])


def test_action_button_takes_the_transition(client, people, task):
    login(client, people["desk"])

    response = client.post(
        transition_url(task, "assign"), {"expected_version": "0", "comment": "交给应用组"}
    )

    assert response.status_code == 302
    assert response["Location"] == change_url(task)
    task.refresh_from_db()
    assert (task.state, task.version) == ("assigned", 1)
    log = TransitionLog.objects.filter(object_id=task.pk).last()
    assert (log.action, log.comment, log.actor) == ("派单", "交给应用组", people["desk"])
    assert last_message(response) == f"派单: {task} is now '已派单'."


def test_refused_action_shows_the_engine_message(client, people, org):
    task = create_task(people["requester"], title="没有处理组")
    login(client, people["desk"])

    response = client.post(transition_url(task, "assign"), {"expected_version": "0"})

    assert response.status_code == 302
    assert last_message(response) == "派单前请先选择处理组。"
    task.refresh_from_db()
    assert (task.state, task.version) == ("new", 0)


def test_action_needing_a_comment_is_refused_without_one(client, people, task):
    login(client, people["desk"])

    client.post(transition_url(task, "cancel"), {"expected_version": "0"})

    task.refresh_from_db()
    assert task.state == "new"


def test_stale_page_is_refused(client, people, task):
    login(client, people["desk"])
    client.post(transition_url(task, "assign"), {"expected_version": "0"})

    response = client.post(
        transition_url(task, "cancel"), {"expected_version": "0", "comment": "重复了"}
    )

    assert last_message(response) == (
        "The record was changed by someone else meanwhile (it is now in state '已派单'); "
        "reload it and try again."
    )
    task.refresh_from_db()
    assert (task.state, task.version) == ("assigned", 1)


def test_action_needs_post(client, people, task):
    login(client, people["desk"])

    assert client.get(transition_url(task, "assign")).status_code == 405


def test_approval_is_asked_then_granted_from_the_page(client, people, task):
    login(client, people["desk"])
    client.post(transition_url(task, "assign"), {"expected_version": "0"})
    login(client, people["engineer"])
    client.post(transition_url(task, "accept"), {"expected_version": "1"})

    asked = client.post(
        transition_url(task, "abort"), {"expected_version": "2", "comment": "需求取消"}
    )

    assert last_message(asked) == (
        "'中止（需审批）' needs approval; the request went to the approvers."
    )
    approval = ApprovalRequest.objects.get(object_id=task.pk)
    login(client, people["lead"])
    page = client.get(change_url(task))
    panel = page.context["workflow_panel"]["approval"]
    assert panel["request"] == approval
    assert panel["can_vote"] is True
    approve_url = reverse("admin:bjgas_ops_task_approval", args=[task.pk, approval.pk, "approve"])
    assert f'formaction="{approve_url}"' in page.content.decode()

    client.post(approve_url, {"comment": "同意"})

    task.refresh_from_db()
    assert task.state == "cancelled"


def test_who_asked_cannot_approve_their_own_request(client, people, task):
    login(client, people["desk"])
    client.post(transition_url(task, "assign"), {"expected_version": "0"})
    login(client, people["engineer"])
    client.post(transition_url(task, "accept"), {"expected_version": "1"})
    client.post(transition_url(task, "abort"), {"expected_version": "2", "comment": "需求取消"})
    approval = ApprovalRequest.objects.get(object_id=task.pk)

    page = client.get(change_url(task))
    response = client.post(
        reverse("admin:bjgas_ops_task_approval", args=[task.pk, approval.pk, "approve"])
    )

    assert page.context["workflow_panel"]["approval"]["can_vote"] is False
    assert last_message(response) == (
        "You asked for this approval and may not approve it yourself."
    )
    task.refresh_from_db()
    assert task.state == "in_progress"


def test_out_of_scope_task_answers_404_everywhere(client, people, org):
    south_user = staff("south", r.REQUESTER, org["south"])
    hidden = create_task(south_user, title="南部的任务")
    login(client, people["desk"])

    for url in (
        change_url(hidden),
        reverse("admin:bjgas_ops_task_history", args=[hidden.pk]),
        reverse("admin:bjgas_ops_task_delete", args=[hidden.pk]),
    ):
        assert client.get(url).status_code == 404
    assert client.post(transition_url(hidden, "cancel"), {"comment": "x"}).status_code == 404
    hidden.refresh_from_db()
    assert hidden.state == "new"


def test_read_only_state_locks_the_form_but_not_the_page(client, people, task):
    Task.objects.filter(pk=task.pk).update(state="closed")
    login(client, people["desk"])

    page = client.get(change_url(task))
    edit = client.post(change_url(task), {"title": "改标题"})

    assert page.status_code == 200
    assert page.context["has_change_permission"] is False
    assert edit.status_code == 403
    task.refresh_from_db()
    assert task.title == "打印机卡纸"


def form_data(page) -> dict:
    """Return what the change page's form would post as it was loaded."""
    form = page.context["adminform"].form
    data = {}
    for name in form.fields:
        value = form[name].value()
        data[name] = "" if value is None else value
    return data


def test_editing_fields_raises_the_version_and_keeps_the_workflow_fields(client, people, org, task):
    login(client, people["desk"])
    data = form_data(client.get(change_url(task)))
    assert data["loaded_version"] == 0
    data["title"] = "打印机卡纸（二楼）"

    response = client.post(change_url(task), data)

    assert response.status_code == 302
    task.refresh_from_db()
    assert (task.title, task.state, task.version) == ("打印机卡纸（二楼）", "new", 1)


def test_workflow_action_taken_meanwhile_makes_the_page_stale(client, people, org, task):
    login(client, people["desk"])
    data = form_data(client.get(change_url(task)))
    data["title"] = "打印机卡纸（二楼）"
    Task.objects.filter(pk=task.pk).update(state="assigned", version=1)  # someone acts meanwhile

    response = client.post(change_url(task), data)

    assert response.status_code == 200
    assert response.context["adminform"].form.non_field_errors() == [
        f"{task} was changed by someone else meanwhile; reload it and redo your change."
    ]
    task.refresh_from_db()
    assert (task.title, task.state, task.version) == ("打印机卡纸", "assigned", 1)


def test_state_edit_roles_decide_who_edits(client, people, task):
    state = task.workflow.state("new")
    state.edit_roles.set([r.role_group(r.TEAM_LEAD)])
    url = change_url(task)

    login(client, people["desk"])
    desk_page = client.get(url)
    login(client, people["lead"])
    lead_page = client.get(url)

    assert desk_page.context["has_change_permission"] is False
    assert lead_page.context["has_change_permission"] is True


def test_state_changes_list_shows_only_records_in_scope(client, people, org, task):
    south_user = staff("south", r.REQUESTER, org["south"])
    hidden = create_task(south_user, title="南部的任务")
    login(client, people["desk"])

    response = client.get(reverse("admin:bjgas_platform_transitionlog_changelist"))

    assert response.status_code == 200
    shown = {log.object_id for log in response.context["cl"].result_list}
    assert shown == {task.pk}
    assert hidden.pk not in shown


def test_current_value_outside_scope_stays_selectable(client, people, org, task):
    south_dept = DepartmentFactory(code="S-OPS", name="南部运行部", company=org["south"])
    Task.objects.filter(pk=task.pk).update(department=south_dept)
    login(client, people["desk"])

    page = client.get(change_url(task))
    departments = page.context["adminform"].form.fields["department"].queryset

    assert sorted(d.code for d in departments) == ["N-OPS", "S-OPS"]


def test_list_queries_do_not_grow_with_rows(client, people, org, django_assert_max_num_queries):
    login(client, people["desk"])
    url = reverse("admin:bjgas_ops_task_changelist")
    create_task(people["requester"], title="第一条", support_group=org["group"])
    client.get(url)  # warm the content-type cache
    with django_assert_max_num_queries(30) as few:
        client.get(url)
    for n in range(8):
        create_task(people["requester"], title=f"任务{n}", support_group=org["group"])

    with django_assert_max_num_queries(len(few.captured_queries)):
        client.get(url)


def test_action_held_back_by_a_condition_is_shown_with_its_reason(client, people):
    task = create_task(people["requester"], title="没有处理组")
    login(client, people["desk"])

    panel = client.get(change_url(task)).context["workflow_panel"]

    assert [a["code"] for a in panel["actions"]] == ["cancel"]
    assert panel["blocked"] == [{"label": "派单", "reason": "派单前请先选择处理组。"}]


def test_second_of_two_simultaneous_desk_edits_is_refused(people, task):
    first, second = Client(), Client()
    login(first, people["desk"])
    login(second, people["lead"])
    first_data = form_data(first.get(change_url(task)))
    second_data = form_data(second.get(change_url(task)))
    first_data["title"] = "打印机卡纸（二楼）"
    second_data["priority"] = "P1"

    saved = first.post(change_url(task), first_data)
    refused = second.post(change_url(task), second_data)

    assert saved.status_code == 302
    assert refused.status_code == 200
    message = (
        f"{task.number} 打印机卡纸（二楼） was changed by someone else meanwhile; "
        "reload it and redo your change."
    )
    assert refused.context["adminform"].form.non_field_errors() == [message]
    assert message in refused.content.decode()
    task.refresh_from_db()
    assert (task.title, task.priority, task.version) == ("打印机卡纸（二楼）", "P3", 1)


def test_read_only_state_forbids_deleting_on_the_desk(client, task):
    Task.objects.filter(pk=task.pk).update(state="closed")
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    login(client, root)

    page = client.get(reverse("admin:bjgas_ops_task_delete", args=[task.pk]))

    assert page.status_code == 403
    assert Task.objects.filter(pk=task.pk).exists()
