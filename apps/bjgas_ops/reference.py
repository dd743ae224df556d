"""Reference data of the service-management app: role permissions and default workflows.

Permissions are granted only to roles created in the same run, so that what an
administrator changed afterwards in the desk is never overwritten.
"""

from django.contrib.contenttypes.models import ContentType
from django.db import transaction

from apps.bjgas_platform import roles as r
from apps.bjgas_platform.models import Workflow, WorkflowState, WorkflowTransition

from .models import Task

ORG_MODELS = [
    "bjgas_platform.company",
    "bjgas_platform.department",
    "bjgas_platform.region",
    "bjgas_platform.businesssystem",
    "bjgas_platform.supportgroup",
    "bjgas_platform.vendor",
    "bjgas_platform.vendorcategory",
    "bjgas_platform.vendorengineer",
    "bjgas_platform.servicecatalogitem",
]
ACCESS_MODELS = [
    "bjgas_platform.user",
    "bjgas_platform.role",
    "bjgas_platform.scoperule",
    "auth.group",
]
WORKFLOW_MODELS = [
    "bjgas_platform.workflow",
    "bjgas_platform.workflowstate",
    "bjgas_platform.workflowtransition",
]
RECORD_LOGS = [
    "bjgas_platform.transitionlog",
    "bjgas_platform.approvalrequest",
    "bjgas_platform.approvalvote",
]
PROCESS_MODELS = ["bjgas_ops.task"]
VIEW = ("view",)
EDIT = ("view", "add", "change")
ALL = ("view", "add", "change", "delete")

# role code -> [(models, actions)]
ROLE_PERMISSIONS: dict[str, list[tuple[list[str], tuple[str, ...]]]] = {
    r.REQUESTER: [(PROCESS_MODELS, EDIT)],
    r.SERVICE_DESK: [(PROCESS_MODELS, EDIT), (ORG_MODELS, VIEW), (RECORD_LOGS, VIEW)],
    r.ENGINEER_T1: [(PROCESS_MODELS, EDIT), (ORG_MODELS, VIEW), (RECORD_LOGS, VIEW)],
    r.ENGINEER_T2: [(PROCESS_MODELS, EDIT), (ORG_MODELS, VIEW), (RECORD_LOGS, VIEW)],
    r.ENGINEER_T3: [(PROCESS_MODELS, EDIT), (ORG_MODELS, VIEW), (RECORD_LOGS, VIEW)],
    r.VENDOR_ENGINEER: [(PROCESS_MODELS, ("view", "change"))],
    r.TEAM_LEAD: [(PROCESS_MODELS, EDIT), (ORG_MODELS, VIEW), (RECORD_LOGS, VIEW)],
    r.DEPARTMENT_HEAD: [(PROCESS_MODELS, EDIT), (ORG_MODELS, VIEW), (RECORD_LOGS, VIEW)],
    r.IT_MANAGER: [
        (PROCESS_MODELS, ALL),
        (ORG_MODELS, VIEW),
        (RECORD_LOGS, VIEW),
        (WORKFLOW_MODELS, VIEW),
        (ACCESS_MODELS, VIEW),
    ],
    r.AUDITOR: [
        (PROCESS_MODELS, VIEW),
        (ORG_MODELS, VIEW),
        (RECORD_LOGS, VIEW),
        (WORKFLOW_MODELS, VIEW),
        (ACCESS_MODELS, VIEW),
    ],
    r.ADMINISTRATOR: [
        (PROCESS_MODELS, ALL),
        (ORG_MODELS, ALL),
        (RECORD_LOGS, VIEW),
        (WORKFLOW_MODELS, ALL),
        (ACCESS_MODELS, ALL),
        (
            [
                "django_celery_beat.periodictask",
                "django_celery_beat.crontabschedule",
                "django_celery_beat.intervalschedule",
            ],
            ALL,
        ),
    ],
}

# Who sees every record regardless of dimensions: a scope rule on the role itself.
ALL_RECORDS_ROLES = [r.IT_MANAGER, r.AUDITOR, r.ADMINISTRATOR]

# code, name, category, color, initial, sla_running, read_only
TASK_STATES = [
    ("new", "新建", "open", "gray", True, True, False),
    ("assigned", "已派单", "open", "blue", False, True, False),
    ("in_progress", "处理中", "open", "yellow", False, True, False),
    ("waiting", "等待中", "waiting", "orange", False, False, False),
    ("done", "已完成", "resolved", "green", False, False, False),
    ("closed", "已关闭", "closed", "gray", False, False, True),
    ("cancelled", "已取消", "cancelled", "red", False, False, True),
]
ENGINEERS = [r.ENGINEER_T1, r.ENGINEER_T2, r.ENGINEER_T3, r.VENDOR_ENGINEER]
# code, label, sources, target, roles, condition, condition message, comment, approvals
TASK_TRANSITIONS = [
    (
        "assign",
        "派单",
        "new",
        "assigned",
        [r.SERVICE_DESK, r.TEAM_LEAD],
        "support_group is not None",
        "派单前请先选择处理组。",
        False,
        0,
    ),
    ("accept", "接单", "assigned", "in_progress", ENGINEERS + [r.TEAM_LEAD], "", "", False, 0),
    (
        "transfer",
        "转派",
        "assigned,in_progress",
        "assigned",
        ENGINEERS + [r.SERVICE_DESK, r.TEAM_LEAD],
        "",
        "",
        True,
        0,
    ),
    ("wait", "挂起等待", "in_progress", "waiting", ENGINEERS, "", "", True, 0),
    ("resume", "恢复处理", "waiting", "in_progress", ENGINEERS + [r.TEAM_LEAD], "", "", False, 0),
    ("complete", "完成", "in_progress", "done", ENGINEERS + [r.TEAM_LEAD], "", "", True, 0),
    ("reject", "退回重办", "done", "in_progress", [r.REQUESTER, r.SERVICE_DESK], "", "", True, 0),
    (
        "close",
        "关闭",
        "done",
        "closed",
        [r.REQUESTER, r.SERVICE_DESK, r.TEAM_LEAD],
        "",
        "",
        False,
        0,
    ),
    (
        "cancel",
        "取消",
        "new,assigned",
        "cancelled",
        [r.REQUESTER, r.SERVICE_DESK, r.TEAM_LEAD],
        "",
        "",
        True,
        0,
    ),
    (
        "abort",
        "中止（需审批）",
        "in_progress,waiting",
        "cancelled",
        ENGINEERS + [r.TEAM_LEAD],
        "",
        "",
        True,
        1,
    ),
]


def load_ops_reference(new_roles: set[str]) -> None:
    """Grant permissions to newly created roles and create the default task workflow."""
    from apps.bjgas_platform.models import ScopeRule

    with transaction.atomic():
        for code in new_roles:
            for models, actions in ROLE_PERMISSIONS.get(code, []):
                r.grant(code, models, actions)
            if code in ALL_RECORDS_ROLES:
                ScopeRule.objects.create(
                    name=f"{r.role_group(code).name}：全部记录",
                    role=r.role_group(code),
                    all_records=True,
                )
        ensure_task_workflow()


def ensure_task_workflow() -> Workflow:
    """Create the default task workflow unless one with its code exists."""
    existing = Workflow.objects.filter(code="task_default").first()
    if existing:
        return existing
    workflow = Workflow.objects.create(
        code="task_default",
        name="任务默认流程",
        is_default=True,
        model=ContentType.objects.get_for_model(Task),
        description="新建 → 派单 → 接单处理 →（等待）→ 完成 → 关闭；中止需组长审批。",
    )
    for order, (code, name, category, color, initial, sla, read_only) in enumerate(TASK_STATES):
        WorkflowState.objects.create(
            workflow=workflow,
            code=code,
            name=name,
            category=category,
            color=color,
            is_initial=initial,
            sla_running=sla,
            read_only=read_only,
            order=order,
        )
    for order, spec in enumerate(TASK_TRANSITIONS):
        code, label, sources, target, role_codes, condition, message, comment, approvals = spec
        transition = WorkflowTransition.objects.create(
            workflow=workflow,
            code=code,
            label=label,
            source_states=sources,
            target_state=target,
            condition=condition,
            condition_message=message,
            comment_required=comment,
            approvals_required=approvals,
            order=order,
            approver_role=r.role_group(r.TEAM_LEAD) if approvals else None,
        )
        transition.roles.set([r.role_group(c) for c in role_codes])
    return workflow
