"""The roles every installation has, and the reference-data loaders of the apps."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib.auth.models import Group, Permission
from django.db import transaction

REQUESTER = "requester"
SERVICE_DESK = "service_desk"
ENGINEER_T1 = "engineer_t1"
ENGINEER_T2 = "engineer_t2"
ENGINEER_T3 = "engineer_t3"
VENDOR_ENGINEER = "vendor_engineer"
TEAM_LEAD = "team_lead"
DEPARTMENT_HEAD = "department_head"
IT_MANAGER = "it_manager"
AUDITOR = "auditor"
ADMINISTRATOR = "administrator"

# (code, group name shown in the desk, description)
ROLES: list[tuple[str, str, str]] = [
    (REQUESTER, "报障人", "普通员工：提报问题、补充说明、确认解决。"),
    (SERVICE_DESK, "服务台坐席", "受理、登记、派单、回访。"),
    (ENGINEER_T1, "一线工程师", "一线支持：接单、处理、转派。"),
    (ENGINEER_T2, "二线工程师", "二线支持：专业处理。"),
    (ENGINEER_T3, "三线工程师", "三线支持：专家与研发。"),
    (VENDOR_ENGINEER, "服务商工程师", "服务商的工程师：只见本服务商的工单。"),
    (TEAM_LEAD, "组长", "支持组组长：派单、审批、督办。"),
    (DEPARTMENT_HEAD, "部门负责人", "业务部门负责人：审批本部门的申请，查看本部门报表。"),
    (IT_MANAGER, "信息中心主管", "信息中心管理者：全部记录、审批、报表。"),
    (AUDITOR, "审计员", "只读：查看全部记录与历史。"),
    (ADMINISTRATOR, "系统管理员", "维护主数据、流程、角色与权限范围。"),
]

ReferenceLoader = Callable[[set[str]], None]
_loaders: list[ReferenceLoader] = []


def register_reference_loader(loader: ReferenceLoader) -> None:
    """Register an app's loader of reference data; it gets the codes of new roles."""
    if loader not in _loaders:
        _loaders.append(loader)


def load_reference_data() -> set[str]:
    """Create missing roles, then run every app's loader; return the new role codes."""
    from .models import Role
    from .services.business_time import ensure_default_calendars, seed_public_holidays
    from .services.notifications import ensure_outbox_schedule
    from .services.sla import ensure_sla_sweep_schedule

    created: set[str] = set()
    with transaction.atomic():
        seed_public_holidays()
        ensure_default_calendars()
        ensure_outbox_schedule()
        ensure_sla_sweep_schedule()
        for code, name, description in ROLES:
            if Role.objects.filter(code=code).exists():
                continue
            group, _ = Group.objects.get_or_create(name=name)
            Role.objects.create(group=group, code=code, description=description)
            created.add(code)
        for loader in _loaders:
            loader(created)
    return created


def role_group(code: str) -> Group:
    return Group.objects.get(role__code=code)


def grant(code: str, model_labels: list[str], actions: tuple[str, ...]) -> None:
    """Give role `code` the permissions `actions` (view/add/change/delete) on the models."""
    group = role_group(code)
    codenames = []
    for label in model_labels:
        app_label, model = label.lower().split(".")
        codenames += [(app_label, f"{action}_{model}") for action in actions]
    perms = [
        Permission.objects.get(content_type__app_label=app, codename=codename)
        for app, codename in codenames
    ]
    group.permissions.add(*perms)


def has_role(user, code: str) -> bool:
    return user.is_authenticated and user.groups.filter(role__code=code).exists()
