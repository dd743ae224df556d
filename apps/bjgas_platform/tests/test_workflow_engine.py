"""The workflow engine on tasks and the default task workflow: transitions, refusals,
approvals and the validation of definitions."""

from types import SimpleNamespace

import pytest
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType

from apps.bjgas_ops.models import Task
from apps.bjgas_platform import roles as r
from apps.bjgas_platform.choices import ApprovalStatus, ApproverRelation
from apps.bjgas_platform.models import (
    ApprovalRequest,
    Role,
    TransitionLog,
    Workflow,
    WorkflowState,
    WorkflowTransition,
)
from apps.bjgas_platform.services.workflow import (
    WorkflowError,
    available_transitions,
    check_workflow,
    decide_approval,
    take_transition,
    validate_definition,
)

from .factories import (
    BusinessSystemFactory,
    CompanyFactory,
    DepartmentFactory,
    ScopeRuleFactory,
    SupportGroupFactory,
    TaskFactory,
    UserFactory,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("english")]


@pytest.fixture
def org():
    """HQ with its IT center; one user per acting role; every role sees HQ's records."""
    hq = CompanyFactory(code="HQ", name="集团总部")
    it = DepartmentFactory(code="HQ-IT", name="信息中心", company=hq)
    people = {}
    for username, role_code in [
        ("zhao", r.REQUESTER),
        ("desk", r.SERVICE_DESK),
        ("eng", r.ENGINEER_T1),
        ("eng2", r.ENGINEER_T1),
        ("lead", r.TEAM_LEAD),
        ("head", r.DEPARTMENT_HEAD),
    ]:
        people[username] = UserFactory(
            username=username, company=hq, department=it, roles=[role_code]
        )
    for role_code in (r.SERVICE_DESK, r.ENGINEER_T1, r.TEAM_LEAD, r.DEPARTMENT_HEAD):
        ScopeRuleFactory(name=f"{role_code} HQ", role=r.role_group(role_code), companies=[hq])
    return SimpleNamespace(
        hq=hq,
        it=it,
        group=SupportGroupFactory(code="G1", name="一线支持组"),
        workflow=Workflow.objects.get(code="task_default"),
        **people,
    )


def new_task(org, **fields) -> Task:
    return TaskFactory(requester=org.zhao, **fields)


def logs(task) -> list[TransitionLog]:
    return list(
        TransitionLog.objects.filter(
            content_type=ContentType.objects.get_for_model(Task), object_id=task.pk
        ).order_by("id")
    )


def move_to(task, state: str) -> Task:
    """Put a task in a state directly (set-up only), as if earlier steps were taken."""
    Task.objects.filter(pk=task.pk).update(state=state)
    task.refresh_from_db()
    return task


def assert_unchanged(task, state: str, version: int, log_count: int) -> None:
    fresh = Task.objects.get(pk=task.pk)
    assert (fresh.state, fresh.version, len(logs(fresh))) == (state, version, log_count)


# --------------------------------------------------------------------------- start, take


def test_start_record_puts_a_new_task_in_the_initial_state(org):
    task = new_task(org, title="打印机卡纸")

    fresh = Task.objects.get(pk=task.pk)
    assert (fresh.workflow.code, fresh.state, fresh.version) == ("task_default", "new", 0)
    assert fresh.state_changed_at is not None
    [log] = logs(task)
    assert (log.from_state, log.to_state, log.action, log.actor) == ("", "new", "Created", org.zhao)
    assert log.transition is None
    assert log.workflow == org.workflow


def test_take_transition_changes_state_and_writes_one_log_row(org):
    task = new_task(org, support_group=org.group)

    result = take_transition(task, "assign", org.desk, comment="派给一线", expected_version=0)

    fresh = Task.objects.get(pk=task.pk)
    assert (fresh.state, fresh.version) == ("assigned", 1)
    _created, assigned = logs(task)
    assert result.log == assigned
    assert not result.pending_approval
    assert (assigned.from_state, assigned.to_state) == ("new", "assigned")
    assert (assigned.actor, assigned.comment, assigned.action) == (org.desk, "派给一线", "派单")
    assert assigned.transition.code == "assign"
    assert fresh.state_changed_at == assigned.created_at


def test_a_chain_of_transitions_counts_versions(org):
    task = new_task(org, support_group=org.group)

    take_transition(task, "assign", org.desk)
    take_transition(task, "accept", org.eng, expected_version=1)
    take_transition(task, "wait", org.eng, comment="等备件", expected_version=2)
    take_transition(task, "resume", org.eng, expected_version=3)
    take_transition(task, "complete", org.eng, comment="已更换", expected_version=4)
    take_transition(task, "close", org.zhao, expected_version=5)

    fresh = Task.objects.get(pk=task.pk)
    assert (fresh.state, fresh.version) == ("closed", 6)
    assert [(log.from_state, log.to_state) for log in logs(task)] == [
        ("", "new"),
        ("new", "assigned"),
        ("assigned", "in_progress"),
        ("in_progress", "waiting"),
        ("waiting", "in_progress"),
        ("in_progress", "done"),
        ("done", "closed"),
    ]


def test_refused_without_the_role(org):
    task = new_task(org, support_group=org.group)

    with pytest.raises(WorkflowError) as caught:
        take_transition(task, "assign", org.eng)

    assert caught.value.code == "transition_refused"
    assert caught.value.message == "Only 服务台坐席、组长 may take '派单'."
    assert_unchanged(task, "new", 0, 1)


def test_refused_when_the_condition_fails(org):
    task = new_task(org)

    with pytest.raises(WorkflowError) as caught:
        take_transition(task, "assign", org.desk)

    assert caught.value.code == "transition_refused"
    assert caught.value.message == "派单前请先选择处理组。"
    assert_unchanged(task, "new", 0, 1)


def test_condition_without_its_own_message_says_which(org):
    WorkflowTransition.objects.filter(workflow=org.workflow, code="assign").update(
        condition_message=""
    )
    task = new_task(org)

    with pytest.raises(WorkflowError) as caught:
        take_transition(task, "assign", org.desk)

    assert caught.value.message == (
        "The condition of '派单' does not hold for this record: support_group is not None"
    )


def test_broken_condition_is_refused_with_a_message(org):
    WorkflowTransition.objects.filter(workflow=org.workflow, code="assign").update(
        condition="severity == 'A'"
    )
    task = new_task(org, support_group=org.group)

    with pytest.raises(WorkflowError) as caught:
        take_transition(task, "assign", org.desk)

    assert caught.value.message == (
        "The condition of '派单' is broken ('task' has no field 'severity'.); "
        "tell an administrator."
    )
    assert_unchanged(task, "new", 0, 1)


@pytest.mark.parametrize("comment", ["", "   \n"])
def test_comment_required(org, comment):
    task = move_to(new_task(org), "assigned")

    with pytest.raises(WorkflowError) as caught:
        take_transition(task, "transfer", org.desk, comment=comment)

    assert caught.value.message == "'转派' needs a comment: say why."
    assert_unchanged(task, "assigned", 0, 1)


def test_stale_expected_version_is_refused(org):
    task = new_task(org, support_group=org.group)
    take_transition(task, "assign", org.desk, expected_version=0)

    with pytest.raises(WorkflowError) as caught:
        take_transition(task, "accept", org.eng, expected_version=0)

    assert caught.value.code == "stale_record"
    assert caught.value.message == (
        "The record was changed by someone else meanwhile (it is now in state '已派单'); "
        "reload it and try again."
    )
    assert_unchanged(task, "assigned", 1, 2)


def test_transition_not_allowed_from_the_current_state(org):
    task = new_task(org)

    with pytest.raises(WorkflowError) as caught:
        take_transition(task, "complete", org.eng, comment="done")

    assert caught.value.code == "transition_refused"
    assert caught.value.message == "'完成' cannot be taken in state '新建'."
    assert_unchanged(task, "new", 0, 1)


def test_any_state_transition_skips_final_states(org):
    WorkflowTransition.objects.create(
        workflow=org.workflow,
        code="note",
        label="备注",
        source_states="*",
        target_state="waiting",
    )
    task = new_task(org)
    take_transition(task, "note", org.eng)
    assert Task.objects.get(pk=task.pk).state == "waiting"

    closed = move_to(new_task(org), "closed")
    with pytest.raises(WorkflowError) as caught:
        take_transition(closed, "note", org.eng)
    assert caught.value.message == "'备注' cannot be taken in state '已关闭'."


def test_unknown_transition(org):
    task = new_task(org)

    with pytest.raises(WorkflowError) as caught:
        take_transition(task, "teleport", org.desk)

    assert caught.value.code == "unknown_transition"
    assert caught.value.message == "Workflow '任务默认流程' has no action 'teleport'."


def test_record_outside_the_actors_scope_is_not_found(org):
    outsider = UserFactory(username="outsider", roles=[r.SERVICE_DESK])
    task = new_task(org, support_group=org.group)
    ScopeRuleFactory(
        name="elsewhere", user=outsider, companies=[CompanyFactory(code="FAR", name="远方公司")]
    )
    # The role rule on HQ applies to every service desk agent: remove it from this one.
    outsider.groups.clear()
    outsider.groups.add(Group.objects.create(name="临时服务台"))

    with pytest.raises(WorkflowError) as caught:
        take_transition(task, "assign", outsider)

    assert caught.value.code == "not_found"
    assert caught.value.message == f"task {task.pk} does not exist or is outside your scope."


def test_available_transitions_per_actor(org):
    task = new_task(org, support_group=org.group)

    def codes(actor):
        return [t.code for t in available_transitions(Task.objects.get(pk=task.pk), actor)]

    assert codes(org.desk) == ["assign", "cancel"]
    assert codes(org.zhao) == ["cancel"]
    assert codes(org.eng) == []

    take_transition(task, "assign", org.desk)

    assert codes(org.eng) == ["accept", "transfer"]
    assert codes(org.lead) == ["accept", "transfer", "cancel"]


# ------------------------------------------------------------------------------ approvals


def start_abort(org, actor=None):
    """A task in progress whose 'abort' (one team lead approval) has been asked for."""
    task = move_to(new_task(org, support_group=org.group), "in_progress")
    result = take_transition(task, "abort", actor or org.eng, comment="需求取消")
    return task, result


def test_one_approval_by_a_team_lead(org):
    task, result = start_abort(org)

    assert result.pending_approval
    request = result.approval
    assert (request.status, request.approvals_required, request.from_state) == (
        ApprovalStatus.PENDING,
        1,
        "in_progress",
    )
    # Asking for approval raises the version (so stale screens notice) but not the state.
    assert_unchanged(task, "in_progress", 1, 1)

    decided = decide_approval(request.pk, org.lead, approve=True, comment="同意")

    assert decided.status == ApprovalStatus.APPROVED
    assert decided.decided_at is not None
    assert_unchanged(task, "cancelled", 2, 2)
    last = logs(task)[-1]
    assert (last.from_state, last.to_state, last.action) == (
        "in_progress",
        "cancelled",
        "中止（需审批）",
    )
    assert (last.actor, last.comment) == (org.eng, "需求取消")


def test_only_approvers_vote(org):
    _, result = start_abort(org)

    with pytest.raises(WorkflowError) as caught:
        decide_approval(result.approval.pk, org.eng2, approve=True)

    assert caught.value.code == "not_an_approver"
    assert caught.value.message == "You are not one of the approvers of this request."
    assert ApprovalRequest.objects.get(pk=result.approval.pk).status == ApprovalStatus.PENDING


def test_a_second_request_waits_for_the_first(org):
    task, _ = start_abort(org)

    with pytest.raises(WorkflowError) as caught:
        take_transition(task, "abort", org.eng2, comment="再次申请")

    assert caught.value.code == "approval_pending"


def test_reject_needs_a_comment_and_closes_the_request(org):
    task, result = start_abort(org)

    with pytest.raises(WorkflowError) as caught:
        decide_approval(result.approval.pk, org.lead, approve=False)
    assert caught.value.code == "comment_required"

    decided = decide_approval(result.approval.pk, org.lead, approve=False, comment="继续处理")

    assert decided.status == ApprovalStatus.REJECTED
    assert_unchanged(task, "in_progress", 1, 1)
    with pytest.raises(WorkflowError) as caught:
        decide_approval(result.approval.pk, org.lead, approve=True)
    assert caught.value.code == "approval_closed"
    assert caught.value.message == "This approval request is already Rejected."


def test_too_few_approvers_is_refused_before_asking(org):
    org.lead.groups.clear()

    with pytest.raises(WorkflowError) as caught:
        start_abort(org)

    assert caught.value.code == "too_few_approvers"
    assert caught.value.message == (
        "'中止（需审批）' needs 1 approvals but only 0 people may approve it; "
        "tell an administrator."
    )
    assert not ApprovalRequest.objects.exists()


@pytest.fixture
def board(org):
    """A role with exactly three members and a transition needing two of them."""
    group = Group.objects.create(name="变更评审组")
    Role.objects.create(group=group, code="cab")
    members = [
        UserFactory(username=name, company=org.hq, department=org.it) for name in ("m1", "m2", "m3")
    ]
    for member in members:
        member.groups.add(group)
    ScopeRuleFactory(name="cab HQ", role=group, companies=[org.hq])
    transition = WorkflowTransition.objects.create(
        workflow=org.workflow,
        code="escalate",
        label="升级",
        source_states="in_progress",
        target_state="waiting",
        approvals_required=2,
        approver_role=group,
    )
    transition.roles.set([r.role_group(r.ENGINEER_T1)])
    return SimpleNamespace(group=group, members=members)


def ask_escalation(org):
    task = move_to(new_task(org, support_group=org.group), "in_progress")
    return task, take_transition(task, "escalate", org.eng, comment="需要二线").approval


def test_quorum_two_of_three_applies_once(org, board):
    m1, m2, m3 = board.members
    task, request = ask_escalation(org)

    first = decide_approval(request.pk, m1, approve=True)

    assert first.status == ApprovalStatus.PENDING
    assert_unchanged(task, "in_progress", 1, 1)

    second = decide_approval(request.pk, m2, approve=True)

    assert second.status == ApprovalStatus.APPROVED
    assert_unchanged(task, "waiting", 2, 2)
    with pytest.raises(WorkflowError) as caught:
        decide_approval(request.pk, m3, approve=True)
    assert caught.value.code == "approval_closed"
    assert_unchanged(task, "waiting", 2, 2)


def test_quorum_two_rejects_of_three_reject(org, board):
    m1, m2, _ = board.members
    task, request = ask_escalation(org)

    # 3 - 1 = 2 approvals still possible: the request stays open.
    assert decide_approval(request.pk, m1, approve=False, comment="不必").status == "pending"
    # 3 - 2 = 1 < 2: it can no longer pass.
    assert decide_approval(request.pk, m2, approve=False, comment="不必").status == "rejected"

    assert_unchanged(task, "in_progress", 1, 1)


def test_quorum_one_yes_one_no_then_yes(org, board):
    m1, m2, m3 = board.members
    task, request = ask_escalation(org)

    decide_approval(request.pk, m1, approve=True)
    decide_approval(request.pk, m2, approve=False, comment="风险大")
    assert ApprovalRequest.objects.get(pk=request.pk).status == ApprovalStatus.PENDING

    assert decide_approval(request.pk, m3, approve=True).status == ApprovalStatus.APPROVED
    assert_unchanged(task, "waiting", 2, 2)


def test_voting_twice_is_refused(org, board):
    m1, _, _ = board.members
    _, request = ask_escalation(org)
    decide_approval(request.pk, m1, approve=True)

    with pytest.raises(WorkflowError) as caught:
        decide_approval(request.pk, m1, approve=True)

    assert caught.value.code == "already_voted"
    assert request.votes.count() == 1


def test_self_approval_refused_when_not_allowed(org):
    lead2 = UserFactory(username="lead2", company=org.hq, roles=[r.TEAM_LEAD])
    task, result = start_abort(org, actor=org.lead)

    with pytest.raises(WorkflowError) as caught:
        decide_approval(result.approval.pk, org.lead, approve=True)

    assert caught.value.code == "not_an_approver"
    assert caught.value.message == "You asked for this approval and may not approve it yourself."
    assert_unchanged(task, "in_progress", 1, 1)

    decide_approval(result.approval.pk, lead2, approve=True)
    assert_unchanged(task, "cancelled", 2, 2)


def test_self_approval_accepted_when_allowed(org):
    WorkflowTransition.objects.filter(workflow=org.workflow, code="abort").update(
        allow_self_approval=True
    )
    task, result = start_abort(org, actor=org.lead)

    decided = decide_approval(result.approval.pk, org.lead, approve=True)

    assert decided.status == ApprovalStatus.APPROVED
    assert_unchanged(task, "cancelled", 2, 2)


def test_requesters_department_head_approves(org):
    org.it.head = org.head
    org.it.save()
    WorkflowTransition.objects.filter(workflow=org.workflow, code="abort").update(
        approver_relation=ApproverRelation.REQUESTER_DEPARTMENT_HEAD, approver_role=None
    )
    task, result = start_abort(org)

    with pytest.raises(WorkflowError):
        decide_approval(result.approval.pk, org.lead, approve=True)
    decide_approval(result.approval.pk, org.head, approve=True)

    assert_unchanged(task, "cancelled", 2, 2)


def test_requester_without_department_head_cannot_ask(org):
    WorkflowTransition.objects.filter(workflow=org.workflow, code="abort").update(
        approver_relation=ApproverRelation.REQUESTER_DEPARTMENT_HEAD, approver_role=None
    )

    with pytest.raises(WorkflowError) as caught:
        start_abort(org)

    assert caught.value.code == "too_few_approvers"


def test_business_system_owner_approves(org):
    owner = UserFactory(username="owner", company=org.hq)
    system = BusinessSystemFactory(code="SCADA", name="SCADA 调度系统", owner=owner)
    ScopeRuleFactory(name="owner SCADA", user=owner, business_systems=[system])
    WorkflowTransition.objects.filter(workflow=org.workflow, code="abort").update(
        approver_relation=ApproverRelation.BUSINESS_SYSTEM_OWNER, approver_role=None
    )
    task = move_to(new_task(org, support_group=org.group, business_system=system), "in_progress")
    request = take_transition(task, "abort", org.eng, comment="系统下线").approval

    with pytest.raises(WorkflowError):
        decide_approval(request.pk, org.lead, approve=True)
    decide_approval(request.pk, owner, approve=True)

    assert_unchanged(task, "cancelled", 2, 2)


def test_support_group_leader_approves(org):
    org.group.leader = org.lead
    org.group.save()
    WorkflowTransition.objects.filter(workflow=org.workflow, code="abort").update(
        approver_relation=ApproverRelation.SUPPORT_GROUP_LEADER, approver_role=None
    )
    task, result = start_abort(org)

    decide_approval(result.approval.pk, org.lead, approve=True)

    assert_unchanged(task, "cancelled", 2, 2)


def test_approval_after_the_record_moved_on_is_withdrawn(org):
    task, result = start_abort(org)
    take_transition(task, "wait", org.eng, comment="等用户确认", expected_version=1)

    decided = decide_approval(result.approval.pk, org.lead, approve=True)

    assert decided.status == ApprovalStatus.WITHDRAWN
    assert decided.decided_at is not None
    assert_unchanged(task, "waiting", 2, 2)
    assert [log.to_state for log in logs(task)] == ["new", "waiting"]


# ----------------------------------------------------------------------------- definition


def state(code, name=None, initial=False, category="open"):
    return WorkflowState(code=code, name=name or code, is_initial=initial, category=category)


def transition(code, sources, target, label=None, **fields):
    return WorkflowTransition(
        code=code, label=label or code, source_states=sources, target_state=target, **fields
    )


SOUND_STATES = [
    state("new", "新建", initial=True),
    state("doing", "处理中"),
    state("closed", "已关闭", category="closed"),
]
SOUND_TRANSITIONS = [
    transition("start", "new", "doing", "开始"),
    transition("close", "doing", "closed", "关闭", condition="priority in ('P1', 'P2')"),
]


def test_a_sound_definition_has_no_errors():
    assert validate_definition(Task, SOUND_STATES, SOUND_TRANSITIONS) == []


def test_default_task_workflow_passes_the_check():
    assert check_workflow(Workflow.objects.get(code="task_default")) == []


def test_no_initial_state():
    states = [state("new", "新建"), state("doing", "处理中")]

    errors = validate_definition(Task, states, [transition("start", "new", "doing")])

    assert errors == ["The workflow has no initial state: mark exactly one state as initial."]


def test_two_initial_states():
    states = [state("new", "新建", initial=True), state("draft", "草稿", initial=True)]

    errors = validate_definition(Task, states, [transition("go", "draft", "new")])

    assert errors == ["Only one state may be initial; now 新建、草稿 are."]


def test_transition_into_a_missing_state():
    errors = validate_definition(
        Task, SOUND_STATES, SOUND_TRANSITIONS + [transition("lost", "doing", "nowhere", "迷路")]
    )

    assert errors == ["Transition '迷路' leads to state 'nowhere', which does not exist."]


def test_transition_from_a_missing_state():
    errors = validate_definition(
        Task, SOUND_STATES, SOUND_TRANSITIONS + [transition("back", "new,ghost", "doing", "回来")]
    )

    assert errors == ["Transition '回来' starts from state 'ghost', which does not exist."]


def test_transition_without_a_source():
    errors = validate_definition(
        Task, SOUND_STATES, SOUND_TRANSITIONS + [transition("void", " , ", "doing", "空")]
    )

    assert errors == ["Transition '空' has no from-state."]


def test_unreachable_state():
    states = SOUND_STATES + [state("island", "孤岛")]

    errors = validate_definition(Task, states, SOUND_TRANSITIONS)

    assert errors == ["State '孤岛' cannot be reached from the initial state."]


def test_final_states_do_not_lead_on_through_any_state_transitions():
    # From 'closed' (final) '*' does not apply, so 'archived' stays unreachable.
    states = [
        state("new", "新建", initial=True),
        state("closed", "已关闭", category="closed"),
        state("archived", "已归档"),
    ]
    transitions = [
        transition("close", "new", "closed"),
        transition("archive", "closed", "archived"),
        transition("reopen", "*", "new"),
    ]
    assert validate_definition(Task, states, transitions) == []

    errors = validate_definition(Task, states, transitions[:1] + transitions[2:])
    assert errors == ["State '已归档' cannot be reached from the initial state."]


@pytest.mark.parametrize(
    ("condition", "error"),
    [
        ("priority = 1", "The condition is not a valid expression (column 10): invalid syntax"),
        ("__import__('os')", "'__import__('os')' is not allowed in a condition"),
        ("severity == 'A'", "'task' has no field 'severity'."),
    ],
)
def test_bad_condition(condition, error):
    errors = validate_definition(
        Task,
        SOUND_STATES,
        SOUND_TRANSITIONS + [transition("odd", "new", "closed", "怪", condition=condition)],
    )

    assert len(errors) == 1
    assert errors[0].startswith(f"Condition of transition '怪': {error}")


def test_duplicate_codes():
    errors = validate_definition(
        Task,
        SOUND_STATES + [state("doing", "处理中2")],
        SOUND_TRANSITIONS + [transition("start", "doing", "new", "再开始")],
    )

    assert errors == [
        "State code 'doing' is used twice.",
        "Transition code 'start' is used twice.",
    ]


def test_approvals_need_an_approver_role():
    errors = validate_definition(
        Task,
        SOUND_STATES,
        SOUND_TRANSITIONS + [transition("stop", "doing", "closed", "终止", approvals_required=1)],
    )

    assert errors == ["Transition '终止' needs approvals: choose the approver role."]


def test_state_still_in_use():
    errors = validate_definition(Task, SOUND_STATES, SOUND_TRANSITIONS, in_use={"new", "legacy"})

    assert errors == ["State 'legacy' is still used by records; move them before removing it."]


def test_check_workflow_sees_records_in_a_removed_state(org):
    task = new_task(org)
    Task.objects.filter(pk=task.pk).update(state="legacy")

    assert check_workflow(org.workflow) == [
        "State 'legacy' is still used by records; move them before removing it."
    ]
