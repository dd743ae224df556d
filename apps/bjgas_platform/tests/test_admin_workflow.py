"""The workflow page refuses an unsound definition with the engine's messages, saving nothing."""

from html import escape

import pytest
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse

from apps.bjgas_ops.models import Task
from apps.bjgas_ops.services.tasks import create_task
from apps.bjgas_platform import roles as r
from apps.bjgas_platform.models import Workflow, WorkflowState, WorkflowTransition

from .factories import CompanyFactory, UserFactory

pytestmark = pytest.mark.django_db

STATE_FIELDS = ("order", "code", "name", "category", "color")
TRANSITION_FIELDS = ("order", "code", "label", "source_states", "target_state", "condition")


def state(code, name, *, initial=False, category="open", color="blue"):
    return {"code": code, "name": name, "category": category, "color": color, "initial": initial}


def transition(code, label, sources, target, condition=""):
    return {
        "code": code,
        "label": label,
        "source_states": sources,
        "target_state": target,
        "condition": condition,
    }


SOUND_STATES = [
    state("open", "处理中", initial=True),
    state("done", "已完成", category="closed", color="green"),
]
SOUND_TRANSITIONS = [transition("finish", "完成", "open", "done")]


def page_data(workflow_fields, states, transitions, existing=None):
    """Return the POST data of the workflow page: the workflow's fields and both tables.

    `existing` maps a state or transition code to the id of its saved row; a state or
    transition dict with `"delete": True` is a saved row ticked for deletion.
    """
    existing = existing or {}
    data = dict(workflow_fields)
    for prefix, rows, fields in (
        ("states", states, STATE_FIELDS),
        ("transitions", transitions, TRANSITION_FIELDS),
    ):
        saved = [row for row in rows if (prefix, row["code"]) in existing]
        new = [row for row in rows if (prefix, row["code"]) not in existing]
        ordered = saved + new
        data[f"{prefix}-TOTAL_FORMS"] = str(len(ordered))
        data[f"{prefix}-INITIAL_FORMS"] = str(len(saved))
        data[f"{prefix}-MIN_NUM_FORMS"] = "0"
        data[f"{prefix}-MAX_NUM_FORMS"] = "1000"
        for i, row in enumerate(ordered):
            key = f"{prefix}-{i}"
            if (prefix, row["code"]) in existing:
                data[f"{key}-id"] = str(existing[(prefix, row["code"])])
            for field in fields:
                data[f"{key}-{field}"] = row.get(field, i)
            if prefix == "states":
                data[f"{key}-sla_running"] = "on"
                if row["initial"]:
                    data[f"{key}-is_initial"] = "on"
            else:
                data[f"{key}-approver_relation"] = "role"
                data[f"{key}-approvals_required"] = "0"
            if row.get("delete"):
                data[f"{key}-DELETE"] = "on"
    return data


@pytest.fixture
def administrator(client):
    user = UserFactory(username="wf-admin", roles=[r.ADMINISTRATOR], is_staff=True)
    client.force_login(user)
    client.cookies["django_language"] = "en"  # the desk ignores Accept-Language
    return user


@pytest.fixture
def task_type():
    return ContentType.objects.get_for_model(Task)


def new_workflow_fields(task_type, code="wf_test"):
    return {"code": code, "name": "测试流程", "model": str(task_type.pk), "is_active": "on"}


def non_form_errors(response) -> list[str]:
    errors = []
    for inline in response.context["inline_admin_formsets"]:
        errors += [str(e) for e in inline.formset.non_form_errors()]
    return errors


def assert_refused(response, expected: list[str]):
    assert response.status_code == 200, "a refused save shows the page again"
    assert non_form_errors(response) == expected
    content = response.content.decode()
    for message in expected:
        assert escape(message) in content


def test_sound_new_workflow_is_saved(client, administrator, task_type):
    data = page_data(new_workflow_fields(task_type), SOUND_STATES, SOUND_TRANSITIONS)

    response = client.post(reverse("admin:bjgas_platform_workflow_add"), data)

    assert response.status_code == 302
    workflow = Workflow.objects.get(code="wf_test")
    assert [s.code for s in workflow.states.all()] == ["open", "done"]
    assert [t.code for t in workflow.transitions.all()] == ["finish"]


@pytest.mark.parametrize(
    ("states", "transitions", "expected"),
    [
        pytest.param(
            [state("open", "处理中"), state("done", "已完成", category="closed")],
            SOUND_TRANSITIONS,
            ["The workflow has no initial state: mark exactly one state as initial."],
            id="no-initial-state",
        ),
        pytest.param(
            [state("open", "处理中", initial=True), state("done", "已完成", initial=True)],
            SOUND_TRANSITIONS,
            ["Only one state may be initial; now 处理中、已完成 are."],
            id="two-initial-states",
        ),
        pytest.param(
            SOUND_STATES,
            SOUND_TRANSITIONS + [transition("lost", "迷路", "open", "nowhere")],
            ["Transition '迷路' leads to state 'nowhere', which does not exist."],
            id="missing-target-state",
        ),
        pytest.param(
            SOUND_STATES + [state("island", "孤岛")],
            SOUND_TRANSITIONS,
            ["State '孤岛' cannot be reached from the initial state."],
            id="unreachable-state",
        ),
        pytest.param(
            SOUND_STATES,
            [transition("finish", "完成", "open", "done", condition="priority ==")],
            ["Condition of transition '完成': "],
            id="bad-condition-syntax",
        ),
    ],
)
def test_unsound_new_workflow_is_refused(
    client, administrator, task_type, states, transitions, expected
):
    data = page_data(new_workflow_fields(task_type), states, transitions)

    response = client.post(reverse("admin:bjgas_platform_workflow_add"), data)

    assert response.status_code == 200
    errors = non_form_errors(response)
    assert len(errors) == 1
    if expected[0].endswith(": "):
        # The parser's own wording follows the prefix; an unfinished expression has no
        # column to point at, and none is made up.
        assert errors[0].startswith(expected[0])
        assert errors[0].endswith("invalid syntax")
        assert "column" not in errors[0]
    else:
        assert_refused(response, expected)
    assert not Workflow.objects.filter(code="wf_test").exists()
    assert not WorkflowState.objects.filter(workflow__code="wf_test").exists()


@pytest.fixture
def used_workflow(task_type):
    """A saved workflow open → doing → done with one task now in 'doing'."""
    workflow = Workflow.objects.create(code="wf_used", name="在用流程", model=task_type)
    open_ = WorkflowState.objects.create(
        workflow=workflow, code="open", name="新建", is_initial=True, order=0
    )
    doing = WorkflowState.objects.create(workflow=workflow, code="doing", name="处理中", order=1)
    done = WorkflowState.objects.create(
        workflow=workflow, code="done", name="已完成", category="closed", order=2
    )
    start = WorkflowTransition.objects.create(
        workflow=workflow, code="start", label="开始", source_states="open", target_state="doing"
    )
    finish = WorkflowTransition.objects.create(
        workflow=workflow, code="finish", label="完成", source_states="doing", target_state="done"
    )
    skip = WorkflowTransition.objects.create(
        workflow=workflow, code="skip", label="直接完成", source_states="open", target_state="done"
    )
    requester = UserFactory(username="wf-req", company=CompanyFactory())
    task = create_task(requester, title="在流程中", workflow=workflow)
    Task.objects.filter(pk=task.pk).update(state="doing")
    ids = {
        ("states", "open"): open_.pk,
        ("states", "doing"): doing.pk,
        ("states", "done"): done.pk,
        ("transitions", "start"): start.pk,
        ("transitions", "finish"): finish.pk,
        ("transitions", "skip"): skip.pk,
    }
    return workflow, ids


def test_removing_a_state_in_use_is_refused(client, administrator, task_type, used_workflow):
    workflow, ids = used_workflow
    states = [
        state("open", "新建", initial=True),
        {**state("doing", "处理中"), "delete": True},
        state("done", "已完成", category="closed"),
    ]
    transitions = [
        {**transition("start", "开始", "open", "doing"), "delete": True},
        {**transition("finish", "完成", "doing", "done"), "delete": True},
        transition("skip", "直接完成", "open", "done"),
    ]
    data = page_data(
        {"code": "wf_used", "name": "在用流程", "model": str(task_type.pk), "is_active": "on"},
        states,
        transitions,
        existing=ids,
    )

    response = client.post(
        reverse("admin:bjgas_platform_workflow_change", args=[workflow.pk]), data
    )

    assert_refused(
        response, ["State 'doing' is still used by records; move them before removing it."]
    )
    assert sorted(workflow.states.values_list("code", flat=True)) == ["doing", "done", "open"]
    assert workflow.transitions.count() == 3


def test_renaming_a_saved_workflow_soundly_is_saved(
    client, administrator, task_type, used_workflow
):
    workflow, ids = used_workflow
    states = [
        state("open", "新建", initial=True),
        state("doing", "正在处理"),
        state("done", "已完成", category="closed"),
    ]
    transitions = [
        transition("start", "开始", "open", "doing"),
        transition("finish", "完成", "doing", "done"),
        transition("skip", "直接完成", "open", "done"),
    ]
    data = page_data(
        {"code": "wf_used", "name": "在用流程", "model": str(task_type.pk), "is_active": "on"},
        states,
        transitions,
        existing=ids,
    )

    response = client.post(
        reverse("admin:bjgas_platform_workflow_change", args=[workflow.pk]), data
    )

    assert response.status_code == 302
    assert workflow.states.get(code="doing").name == "正在处理"


def test_problems_of_a_saved_workflow_are_listed_on_its_page(client, administrator, used_workflow):
    workflow, _ids = used_workflow
    WorkflowTransition.objects.filter(workflow=workflow, code="start").delete()

    response = client.get(reverse("admin:bjgas_platform_workflow_change", args=[workflow.pk]))

    assert response.status_code == 200
    assert escape("State '处理中' cannot be reached from the initial state.") in (
        response.content.decode()
    )
