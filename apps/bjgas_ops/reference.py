"""Reference data of the service-management app: role permissions, default workflows,
the priority matrix, incident categories, SLA policies, notification rules, the system
account and the auto-close schedule.

Permissions are granted only to roles created in the same run, so that what an
administrator changed afterwards in the desk is never overwritten; the incident bundle,
which came later, is granted once to an existing role that holds no incident permission
yet. Default rows (matrix cells, categories, policies, rules) are created only while none
of their kind exists, so a default an administrator deleted does not come back.
"""

from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models import Q

from apps.bjgas_platform import roles as r
from apps.bjgas_platform.models import (
    BusinessCalendar,
    NotificationRule,
    Role,
    ScopeRule,
    SlaEscalationLevel,
    SlaPolicy,
    User,
    Workflow,
    WorkflowState,
    WorkflowTransition,
)

from .models import ImportJob, Incident, IncidentCategory, PriorityMatrix, Task

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
# Staff pick requesters and assignees: they read the user directory (rows by scope).
STAFF_VIEW = ORG_MODELS + ["bjgas_platform.user"]
VIEW = ("view",)
EDIT = ("view", "add", "change")
ALL = ("view", "add", "change", "delete")

# role code -> [(models, actions)]
ROLE_PERMISSIONS: dict[str, list[tuple[list[str], tuple[str, ...]]]] = {
    r.REQUESTER: [(PROCESS_MODELS, EDIT)],
    r.SERVICE_DESK: [(PROCESS_MODELS, EDIT), (STAFF_VIEW, VIEW), (RECORD_LOGS, VIEW)],
    r.ENGINEER_T1: [(PROCESS_MODELS, EDIT), (STAFF_VIEW, VIEW), (RECORD_LOGS, VIEW)],
    r.ENGINEER_T2: [(PROCESS_MODELS, EDIT), (STAFF_VIEW, VIEW), (RECORD_LOGS, VIEW)],
    r.ENGINEER_T3: [(PROCESS_MODELS, EDIT), (STAFF_VIEW, VIEW), (RECORD_LOGS, VIEW)],
    r.VENDOR_ENGINEER: [(PROCESS_MODELS, ("view", "change"))],
    r.TEAM_LEAD: [(PROCESS_MODELS, EDIT), (STAFF_VIEW, VIEW), (RECORD_LOGS, VIEW)],
    r.DEPARTMENT_HEAD: [(PROCESS_MODELS, EDIT), (STAFF_VIEW, VIEW), (RECORD_LOGS, VIEW)],
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
# The requester role is held by department heads and others who see more than their own
# records: the requester's own decisions are for the requester, the desk or a team lead.
CONFIRMERS = "actor_is_requester or 'service_desk' in actor_roles or 'team_lead' in actor_roles"
# Taking on work: whoever it was given to (or anyone of the group while nobody was), or a lead.
ACCEPTERS = "assignee is None or actor_is_assignee or 'team_lead' in actor_roles"
ACCEPTERS_MESSAGE = "该单已派给其他处理人，只有该处理人或组长可以接单。"
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
    (
        "accept",
        "接单",
        "assigned",
        "in_progress",
        ENGINEERS + [r.TEAM_LEAD],
        ACCEPTERS,
        ACCEPTERS_MESSAGE,
        False,
        0,
    ),
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
    (
        "reject",
        "退回重办",
        "done",
        "in_progress",
        [r.REQUESTER, r.SERVICE_DESK],
        CONFIRMERS,
        "只有提出人本人、服务台或组长可以退回重办。",
        True,
        0,
    ),
    (
        "close",
        "关闭",
        "done",
        "closed",
        [r.REQUESTER, r.SERVICE_DESK, r.TEAM_LEAD],
        CONFIRMERS,
        "只有提出人本人、服务台或组长可以关闭。",
        False,
        0,
    ),
    (
        "cancel",
        "取消",
        "new,assigned",
        "cancelled",
        [r.REQUESTER, r.SERVICE_DESK, r.TEAM_LEAD],
        CONFIRMERS,
        "只有提出人本人、服务台或组长可以取消。",
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
    """Grant permissions, create the default workflows and the incident reference data."""
    from .services.import_jobs import ensure_stalled_schedule
    from .services.incidents import ensure_auto_close_schedule
    from .services.report_rollup import ensure_refresh_schedule

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
        grant_incident_permissions(new_roles)
        grant_import_permissions()
        grant_report_permission(new_roles)
        ensure_task_workflow()
        ensure_system_user()
        ensure_incident_workflow()
        ensure_priority_matrix()
        ensure_incident_categories()
        ensure_incident_sla_policies()
        ensure_incident_notification_rules()
        ensure_auto_close_schedule()
        ensure_refresh_schedule()
        ensure_stalled_schedule()


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
    add_transitions(workflow, TASK_TRANSITIONS)
    return workflow


def add_transitions(workflow: Workflow, specs) -> None:
    """Create transitions from (code, label, sources, target, role codes, condition,
    condition message, comment required[, approvals by team leads]) rows, in order."""
    for order, (code, label, sources, target, role_codes, condition, message, comment,
                *rest) in enumerate(specs):  # fmt: skip
        approvals = rest[0] if rest else 0
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


# ----------------------------------------------------------------------- incidents

INCIDENT_MODELS = ["bjgas_ops.incident"]
INCIDENT_SETUP = ["bjgas_ops.incidentcategory", "bjgas_ops.prioritymatrix"]
CATEGORY_MODELS = ["bjgas_ops.incidentcategory"]
# Rows about every incident at once (no scope of their own): for all-records roles only.
INCIDENT_FIGURES = [
    "bjgas_ops.incidentsegment",
    "bjgas_platform.slaclock",
    "bjgas_platform.slaevent",
]
SLA_SETUP = [
    "bjgas_platform.slapolicy",
    "bjgas_platform.slaescalationlevel",
    "bjgas_platform.businesscalendar",
    "bjgas_platform.workingperiod",
    "bjgas_platform.publicholiday",
    "bjgas_platform.calendarexception",
]
NOTIFICATION_SETUP = ["bjgas_platform.notificationrule", "bjgas_platform.robotwebhook"]
# Outgoing messages name records of every scope: administrators only.
OUTBOX_MODELS = [
    "bjgas_platform.outboxmessage",
    "bjgas_platform.inappnotification",
    "bjgas_platform.notificationpreference",
]
HANDLERS = [(INCIDENT_MODELS, EDIT), (INCIDENT_SETUP, VIEW), (SLA_SETUP, VIEW)]

# role code -> [(models, actions)], granted with the incident process.
INCIDENT_PERMISSIONS: dict[str, list[tuple[list[str], tuple[str, ...]]]] = {
    r.REQUESTER: [(INCIDENT_MODELS, EDIT), (CATEGORY_MODELS, VIEW)],
    r.SERVICE_DESK: HANDLERS,
    r.ENGINEER_T1: HANDLERS,
    r.ENGINEER_T2: HANDLERS,
    r.ENGINEER_T3: HANDLERS,
    r.VENDOR_ENGINEER: [(INCIDENT_MODELS, ("view", "change")), (CATEGORY_MODELS, VIEW)],
    r.TEAM_LEAD: HANDLERS,
    r.DEPARTMENT_HEAD: [(INCIDENT_MODELS, EDIT), (CATEGORY_MODELS, VIEW)],
    r.IT_MANAGER: [
        (INCIDENT_MODELS, ALL),
        (INCIDENT_SETUP, EDIT),
        (INCIDENT_FIGURES, VIEW),
        (SLA_SETUP, EDIT),
        (NOTIFICATION_SETUP, VIEW),
    ],
    r.AUDITOR: [
        (INCIDENT_MODELS, VIEW),
        (INCIDENT_SETUP, VIEW),
        (INCIDENT_FIGURES, VIEW),
        (SLA_SETUP, VIEW),
        (NOTIFICATION_SETUP, VIEW),
    ],
    r.ADMINISTRATOR: [
        (INCIDENT_MODELS, ALL),
        (INCIDENT_SETUP, ALL),
        (INCIDENT_FIGURES, VIEW),
        (SLA_SETUP, ALL),
        (NOTIFICATION_SETUP, ALL),
        (OUTBOX_MODELS, ("view", "change")),
    ],
}

# Internal notes (内部备注) are for the people who handle incidents, never for requesters.
INTERNAL_NOTES_PERMISSION = "view_internal_notes"
INTERNAL_NOTES_ROLES = [
    r.SERVICE_DESK,
    r.ENGINEER_T1,
    r.ENGINEER_T2,
    r.ENGINEER_T3,
    r.VENDOR_ENGINEER,
    r.TEAM_LEAD,
    r.IT_MANAGER,
    r.AUDITOR,
    r.ADMINISTRATOR,
]

# Giving an incident to a group or person (派单、转派、升级): the desk, engineers, leads.
ASSIGN_PERMISSION = "assign_incident"
ASSIGN_ROLES = [
    r.SERVICE_DESK,
    r.ENGINEER_T1,
    r.ENGINEER_T2,
    r.ENGINEER_T3,
    r.TEAM_LEAD,
    r.IT_MANAGER,
    r.ADMINISTRATOR,
]

SYSTEM_ROLE = "system"
SYSTEM_USERNAME = "system"

# Who may edit an incident's fields once the service desk has dispatched it.
INCIDENT_EDITORS = [
    r.SERVICE_DESK,
    r.ENGINEER_T1,
    r.ENGINEER_T2,
    r.ENGINEER_T3,
    r.VENDOR_ENGINEER,
    r.TEAM_LEAD,
    r.IT_MANAGER,
    r.ADMINISTRATOR,
]

# code, name, category, color, initial, sla_running, SLA milestone, read_only, staff-only edit
INCIDENT_STATES = [
    ("new", "新建", "open", "gray", True, True, "", False, False),
    ("dispatched", "已派单", "open", "blue", False, True, "dispatched", False, True),
    ("accepted", "已接单", "open", "purple", False, True, "accepted", False, True),
    ("in_progress", "处理中", "open", "yellow", False, True, "", False, True),
    ("waiting_requester", "等待报障人", "waiting", "orange", False, False, "", False, True),
    ("waiting_vendor", "等待服务商", "waiting", "orange", False, False, "", False, True),
    ("resolved", "已解决待关闭", "resolved", "green", False, False, "", False, True),
    ("closed", "已关闭", "closed", "gray", False, False, "", True, True),
    ("cancelled", "已取消", "cancelled", "red", False, False, "", True, True),
]
HANDLING = "accepted,in_progress,waiting_requester,waiting_vendor"
OPEN_AFTER_DISPATCH = "dispatched," + HANDLING
ENGINEERS_AND_LEAD = ENGINEERS + [r.TEAM_LEAD]
# code, label, sources, target, roles, condition, condition message, comment required
INCIDENT_TRANSITIONS = [
    (
        "dispatch",
        "服务台派单",
        "new",
        "dispatched",
        [r.SERVICE_DESK, r.TEAM_LEAD],
        "support_group is not None",
        "派单前请先选择处理组。",
        False,
    ),
    (
        "accept",
        "接单",
        "dispatched",
        "accepted",
        ENGINEERS_AND_LEAD,
        ACCEPTERS,
        ACCEPTERS_MESSAGE,
        False,
    ),
    ("start", "开始处理", "accepted", "in_progress", ENGINEERS_AND_LEAD, "", "", False),
    (
        "wait_requester",
        "等待报障人",
        "accepted,in_progress",
        "waiting_requester",
        ENGINEERS_AND_LEAD,
        "",
        "",
        True,
    ),
    (
        "wait_vendor",
        "等待服务商",
        "accepted,in_progress",
        "waiting_vendor",
        ENGINEERS_AND_LEAD,
        "",
        "",
        True,
    ),
    (
        "resume",
        "恢复处理",
        "waiting_requester,waiting_vendor",
        "in_progress",
        ENGINEERS_AND_LEAD,
        "",
        "",
        False,
    ),
    ("resolve", "解决", HANDLING, "resolved", ENGINEERS_AND_LEAD, "", "", True),
    (
        "confirm",
        "确认解决并关闭",
        "resolved",
        "closed",
        [r.REQUESTER, r.SERVICE_DESK, r.TEAM_LEAD],
        CONFIRMERS,
        "只有报障人本人、服务台或组长可以确认解决。",
        False,
    ),
    (
        "reject",
        "驳回解决",
        "resolved",
        "in_progress",
        [r.REQUESTER, r.SERVICE_DESK, r.TEAM_LEAD],
        CONFIRMERS,
        "只有报障人本人、服务台或组长可以驳回解决。",
        True,
    ),
    (
        "auto_close",
        "自动关闭",
        "resolved",
        "closed",
        [SYSTEM_ROLE],
        "auto_close_at is not None",
        "报障人已有新的反馈，自动关闭已停止。",
        False,
    ),
    (
        "escalate",
        "升级转派（一线→二线→三线）",
        OPEN_AFTER_DISPATCH,
        "dispatched",
        ENGINEERS_AND_LEAD + [r.SERVICE_DESK],
        "",
        "",
        True,
    ),
    (
        "transfer",
        "转派",
        OPEN_AFTER_DISPATCH,
        "dispatched",
        ENGINEERS_AND_LEAD + [r.SERVICE_DESK],
        "",
        "",
        True,
    ),
    (
        "cancel",
        "取消",
        "new," + OPEN_AFTER_DISPATCH,
        "cancelled",
        [r.REQUESTER, r.SERVICE_DESK, r.TEAM_LEAD],
        CONFIRMERS,
        "只有报障人本人、服务台或组长可以取消。",
        True,
    ),
]

# Urgency × impact → priority: the sum of the two levels (1 critical .. 4 low) decides.
PRIORITY_BY_LEVEL_SUM = {2: "P1", 3: "P1", 4: "P2", 5: "P3", 6: "P3", 7: "P4", 8: "P4"}

# code, name, parent code
INCIDENT_CATEGORIES = [
    ("HW", "硬件设备", None),
    ("HW-PC", "台式机与笔记本", "HW"),
    ("HW-PRINT", "打印机与扫描仪", "HW"),
    ("HW-PERIPH", "外设与耗材", "HW"),
    ("SW", "软件应用", None),
    ("SW-OFFICE", "办公软件", "SW"),
    ("SW-BIZ", "业务系统", "SW"),
    ("SW-MAIL", "邮件", "SW"),
    ("NET", "网络通信", None),
    ("NET-LAN", "有线网络", "NET"),
    ("NET-WIFI", "无线网络", "NET"),
    ("NET-VPN", "VPN 远程接入", "NET"),
    ("ACC", "账号与权限", None),
    ("ACC-PWD", "账号锁定与密码重置", "ACC"),
    ("ACC-PERM", "权限开通与变更", "ACC"),
    ("SEC", "信息安全", None),
    ("SEC-VIRUS", "病毒与恶意软件", "SEC"),
    ("DC", "机房与服务器", None),
    ("DC-SERVER", "服务器", "DC"),
    ("DC-STORAGE", "存储与备份", "DC"),
    ("OTHER", "其他", None),
]

# code, name, priority, severity, calendar, dispatch, accept, response, resolution (minutes)
INCIDENT_SLA_POLICIES = [
    ("INC-P1", "事件 P1（工作日历）", "P1", "", "standard", 15, 15, 30, 240),
    ("INC-P2", "事件 P2（工作日历）", "P2", "", "standard", 30, 30, 60, 480),
    ("INC-P3", "事件 P3（工作日历）", "P3", "", "standard", 60, 60, 120, 1440),
    ("INC-P4", "事件 P4（工作日历）", "P4", "", "standard", 120, 120, 240, 2400),
    # The service agreement's severity targets: answer within 2 h / 4 h / 8 h, on 7×24.
    ("INC-SEV-A", "服务协议 A 级（7×24，2 小时响应）", "", "A", "24x7", None, None, 120, None),
    ("INC-SEV-B", "服务协议 B 级（7×24，4 小时响应）", "", "B", "24x7", None, None, 240, None),
    ("INC-SEV-C", "服务协议 C 级（7×24，8 小时响应）", "", "C", "24x7", None, None, 480, None),
]
# metric, level, minutes after the breach, roles, relations: on every priority policy.
INCIDENT_ESCALATIONS = [
    ("response", 1, 0, [], "assignee,support_group_leader"),
    ("resolution", 1, 0, [], "assignee,support_group_leader,vendor_contact"),
    ("resolution", 2, 120, [], "requester_department_head,support_group_leader"),
    ("resolution", 3, 480, [r.IT_MANAGER], ""),
]
SEVERITY_ESCALATIONS = [
    ("response", 1, 0, [], "assignee,support_group_leader,vendor_contact"),
    ("response", 2, 60, [r.IT_MANAGER], "requester_department_head"),
]

# code, name, event, roles, relations, channels, subject, text
INCIDENT_NOTIFICATION_RULES = [
    (
        "incident-created",
        "新事件：通知服务台",
        "incident.created",
        [r.SERVICE_DESK],
        "support_group_leader",
        "in_app",
        "新事件 {{ record.number }}（{{ record.priority }}）：{{ record.title }}",
        "{{ record.requester }}（{{ record.company }}）通过{{ record.get_channel_display }}"
        "报告：{{ record.title }}。\n紧急度 {{ record.get_urgency_display }}，"
        "影响度 {{ record.get_impact_display }}，优先级 {{ record.priority }}。",
    ),
    (
        "incident-assigned",
        "派单：通知处理人",
        "incident.assigned",
        [],
        "event_recipients",
        "in_app,push",
        "请接单：{{ record.number }}（{{ record.priority }}）{{ record.title }}",
        "{{ actor }} 把事件 {{ record.number }} 派给 {{ record.support_group }}"
        "{% if record.assignee %}（{{ record.assignee }}）{% endif %}，请及时接单处理。",
    ),
    (
        "incident-supplemented",
        "报障人补充说明：通知处理人",
        "incident.supplemented",
        [],
        "event_recipients",
        "in_app,email,push",
        "{{ record.number }} 报障人补充说明",
        "{{ actor }} 对事件 {{ record.number }}「{{ record.title }}」补充说明：\n{{ text }}",
    ),
    (
        "incident-commented",
        "事件回复：通知对方",
        "incident.commented",
        [],
        "event_recipients",
        "in_app,push",
        "{{ record.number }} 有新回复",
        "{{ actor }}：{{ text }}",
    ),
    (
        "incident-resolved",
        "事件已解决：请报障人确认",
        "incident.resolved",
        [],
        "requester",
        "in_app,email,push",
        "您报告的事件 {{ record.number }} 已解决，请确认",
        "事件「{{ record.title }}」已由 {{ actor }} 解决：{{ text }}\n"
        "如问题仍在，请在 {{ record.auto_close_at|date:'Y-m-d H:i' }} 前驳回；"
        "逾期未确认将自动关闭。",
    ),
]


# The SLA engine's events, for every process: code, name, event, relations, channels,
# subject, text (the engine passes metric_name, due_at, percent, level, policy).
SLA_NOTIFICATION_RULES = [
    (
        "sla-reminder",
        "时限提醒：通知处理人",
        "sla.reminder",
        "assignee,support_group_leader",
        "in_app,push",
        "时限提醒：{{ record.number }} {{ metric_name }}已用 {{ percent }}%",
        "{{ record }}：{{ metric_name }}将于 {{ due_at }} 到期（{{ policy }}），请抓紧处理。",
    ),
    (
        "sla-breach",
        "超时：通知处理人与组长",
        "sla.breach",
        "assignee,support_group_leader",
        "in_app,email,push",
        "已超时：{{ record.number }} {{ metric_name }}",
        "{{ record }}：{{ metric_name }}已于 {{ due_at }} 超时（{{ policy }}）。",
    ),
    (
        "sla-escalation",
        "超时升级：通知升级对象",
        "sla.escalation",
        "event_recipients",
        "in_app,email,push",
        "超时升级（第 {{ level }} 级）：{{ record.number }} {{ metric_name }}",
        "{{ record }}：{{ metric_name }}已于 {{ due_at }} 超时，现升级到第 {{ level }} 级，"
        "请督办。",
    ),
]


def grant_incident_permissions(new_roles: set[str]) -> None:
    """Grant the incident bundle to new roles and once to roles that predate it."""
    incident_type = ContentType.objects.get_for_model(Incident)
    notes, _created = Permission.objects.get_or_create(
        content_type=incident_type,
        codename=INTERNAL_NOTES_PERMISSION,
        defaults={"name": "Can view internal notes of incidents"},
    )
    assign, _created = Permission.objects.get_or_create(
        content_type=incident_type,
        codename=ASSIGN_PERMISSION,
        defaults={"name": "Can assign, transfer and escalate incidents"},
    )
    for code, bundle in INCIDENT_PERMISSIONS.items():
        role = Role.objects.filter(code=code).select_related("group").first()
        if role is None:
            continue
        if (
            code not in new_roles
            and role.group.permissions.filter(content_type=incident_type).exists()
        ):
            continue  # granted before: what the administrator changed since stays
        for models, actions in bundle:
            r.grant(code, models, actions)
        if code in INTERNAL_NOTES_ROLES:
            role.group.permissions.add(notes)
        if code in ASSIGN_ROLES:
            role.group.permissions.add(assign)


# Importing ticket history (批量导入) writes incidents of every scope: managers only.
IMPORT_MODELS = ["bjgas_ops.importjob"]
IMPORT_SETUP = ["bjgas_ops.importmapping"]
IMPORT_PERMISSIONS: dict[str, list[tuple[list[str], tuple[str, ...]]]] = {
    r.IT_MANAGER: [(IMPORT_MODELS, EDIT), (IMPORT_SETUP, ALL)],
    r.ADMINISTRATOR: [(IMPORT_MODELS, ALL), (IMPORT_SETUP, ALL)],
}


def grant_import_permissions() -> None:
    """Grant the import permissions to roles that have none yet (edits since then stay)."""
    job_type = ContentType.objects.get_for_model(ImportJob)
    for code, bundle in IMPORT_PERMISSIONS.items():
        role = Role.objects.filter(code=code).select_related("group").first()
        if role is None or role.group.permissions.filter(content_type=job_type).exists():
            continue
        for models, actions in bundle:
            r.grant(code, models, actions)


# The incident reports (运维报表) count every incident a role may see: not for requesters,
# engineers or vendor engineers, who may view incidents but not the reports.
REPORT_PERMISSION = "view_incident_reports"
REPORT_ROLES = [
    r.SERVICE_DESK,
    r.TEAM_LEAD,
    r.DEPARTMENT_HEAD,
    r.IT_MANAGER,
    r.AUDITOR,
    r.ADMINISTRATOR,
]


def grant_report_permission(new_roles: set[str]) -> None:
    """Grant the report permission to the report roles created in this run, and once to
    the existing ones: while no group holds the permission yet (it has just come with
    migration 0006). After that, an administrator who takes it from a role keeps it taken;
    only taking it from every group at once brings it back at the next migrate.
    """
    permission, _created = Permission.objects.get_or_create(
        content_type=ContentType.objects.get_for_model(Incident),
        codename=REPORT_PERMISSION,
        defaults={"name": "Can view incident reports"},
    )
    first_rollout = not permission.group_set.exists()
    for code in REPORT_ROLES:
        if code not in new_roles and not first_rollout:
            continue
        role = Role.objects.filter(code=code).select_related("group").first()
        if role is not None:
            role.group.permissions.add(permission)


def ensure_system_user() -> User:
    """Create the system account that scheduled jobs act as; it cannot log in."""
    group = Group.objects.filter(role__code=SYSTEM_ROLE).first()
    if group is None:
        group, _created = Group.objects.get_or_create(name="系统（自动任务）")
        Role.objects.create(
            group=group,
            code=SYSTEM_ROLE,
            description="自动任务（如事件自动关闭、告警建单）使用的系统账号所属角色，不要分配给人员。",
        )
        group.permissions.add(
            *Permission.objects.filter(
                content_type=ContentType.objects.get_for_model(Incident),
                codename__in=[
                    "view_incident",
                    "add_incident",
                    "change_incident",
                    ASSIGN_PERMISSION,
                ],
            )
        )
    user = User.objects.filter(username=SYSTEM_USERNAME).first()
    if user is None:
        user = User(username=SYSTEM_USERNAME, full_name="系统", is_active=True)
        user.set_unusable_password()
        user.save()
        user.groups.add(group)
        ScopeRule.objects.create(name="系统账号：全部记录", user=user, all_records=True)
    return user


def ensure_incident_workflow() -> Workflow:
    """Create the default incident workflow unless one with its code exists."""
    existing = Workflow.objects.filter(code="incident_default").first()
    if existing:
        return existing
    workflow = Workflow.objects.create(
        code="incident_default",
        name="事件默认流程",
        is_default=True,
        model=ContentType.objects.get_for_model(Incident),
        description=(
            "新建 → 服务台派单 → 工程师接单 → 处理中 →（等待报障人／等待服务商，时限暂停）"
            "→ 已解决待关闭 → 已关闭；报障人可驳回解决；可升级转派（一线→二线→三线）、"
            "转派其他组或取消；报障人逾期未确认时由系统自动关闭。"
        ),
    )
    editors = [r.role_group(code) for code in INCIDENT_EDITORS]
    for order, spec in enumerate(INCIDENT_STATES):
        code, name, category, color, initial, sla, milestone, read_only, staff_only = spec
        state = WorkflowState.objects.create(
            workflow=workflow,
            code=code,
            name=name,
            category=category,
            color=color,
            is_initial=initial,
            sla_running=sla,
            sla_milestone=milestone,
            read_only=read_only,
            order=order,
        )
        if staff_only and not read_only:
            state.edit_roles.set(editors)
    add_transitions(workflow, INCIDENT_TRANSITIONS)
    return workflow


def ensure_priority_matrix() -> None:
    """Fill the urgency × impact matrix while it is empty."""
    if PriorityMatrix.objects.exists():
        return
    PriorityMatrix.objects.bulk_create(
        PriorityMatrix(urgency=u, impact=i, priority=PRIORITY_BY_LEVEL_SUM[u + i])
        for u in range(1, 5)
        for i in range(1, 5)
    )


def ensure_incident_categories() -> None:
    """Create the default incident categories while there are none."""
    if IncidentCategory.objects.exists():
        return
    created: dict[str, IncidentCategory] = {}
    for code, name, parent in INCIDENT_CATEGORIES:
        created[code] = IncidentCategory.objects.create(
            code=code, name=name, parent=created[parent] if parent else None
        )


def ensure_incident_sla_policies() -> None:
    """Create the default incident SLA policies while the incident process has none."""
    process = ContentType.objects.get_for_model(Incident)
    if SlaPolicy.objects.filter(process=process).exists():
        return
    calendars = {c.code: c for c in BusinessCalendar.objects.filter(code__in=["standard", "24x7"])}
    for spec in INCIDENT_SLA_POLICIES:
        code, name, priority, severity, calendar, dispatch, accept, response, resolution = spec
        if calendar not in calendars:
            continue  # the administrator removed the calendar: no default to hang on it
        policy = SlaPolicy.objects.create(
            code=code,
            name=name,
            process=process,
            priority=priority,
            severity=severity,
            calendar=calendars[calendar],
            dispatch_minutes=dispatch,
            accept_minutes=accept,
            response_minutes=response,
            resolution_minutes=resolution,
            reminder_percents="75",
        )
        for metric, level, after, role_codes, relations in (
            SEVERITY_ESCALATIONS if severity else INCIDENT_ESCALATIONS
        ):
            escalation = SlaEscalationLevel.objects.create(
                policy=policy,
                metric=metric,
                level=level,
                after_minutes=after,
                notify_relations=relations,
            )
            escalation.notify_roles.set([r.role_group(c) for c in role_codes])


def ensure_incident_notification_rules() -> None:
    """Create the default incident and SLA notification rules whose event has no rule yet."""
    process = ContentType.objects.get_for_model(Incident)
    for (
        code,
        name,
        event,
        role_codes,
        relations,
        channels,
        subject,
        body,
    ) in INCIDENT_NOTIFICATION_RULES:
        if NotificationRule.objects.filter(Q(event=event) | Q(code=code)).exists():
            continue
        rule = NotificationRule.objects.create(
            code=code,
            name=name,
            event=event,
            process=process,
            recipient_relations=relations,
            channels=channels,
            subject_template=subject,
            body_template=body,
        )
        rule.recipient_roles.set([r.role_group(c) for c in role_codes])
    for code, name, event, relations, channels, subject, body in SLA_NOTIFICATION_RULES:
        if NotificationRule.objects.filter(Q(event=event) | Q(code=code)).exists():
            continue
        NotificationRule.objects.create(
            code=code,
            name=name,
            event=event,
            recipient_relations=relations,
            channels=channels,
            subject_template=subject,
            body_template=body,
        )
