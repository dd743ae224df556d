"""The incident reference data: loaded once, kept when edited, granted to older roles."""

import pytest
from django.contrib.auth.models import Permission

from apps.bjgas_ops.models import IncidentCategory, PriorityMatrix
from apps.bjgas_ops.reference import (
    INCIDENT_NOTIFICATION_RULES,
    SLA_NOTIFICATION_RULES,
    load_ops_reference,
)
from apps.bjgas_platform import roles as r
from apps.bjgas_platform.models import (
    NotificationRule,
    SlaEscalationLevel,
    SlaPolicy,
    User,
    Workflow,
)

pytestmark = pytest.mark.django_db


def counts() -> dict[str, int]:
    return {
        "workflows": Workflow.objects.filter(code="incident_default").count(),
        "matrix": PriorityMatrix.objects.count(),
        "categories": IncidentCategory.objects.count(),
        "policies": SlaPolicy.objects.filter(code__startswith="INC-").count(),
        "escalations": SlaEscalationLevel.objects.filter(policy__code__startswith="INC-").count(),
        "rules": NotificationRule.objects.filter(
            code__in=[spec[0] for spec in INCIDENT_NOTIFICATION_RULES + SLA_NOTIFICATION_RULES]
        ).count(),
        "system users": User.objects.filter(username="system").count(),
    }


def test_loading_again_adds_nothing_and_keeps_edits():
    # 4 priority policies × 4 levels + 3 severity policies × 2 levels = 22 escalations;
    # 5 incident rules and 3 SLA rules.
    expected = {
        "workflows": 1,
        "matrix": 16,
        "categories": 21,
        "policies": 7,
        "escalations": 22,
        "rules": 8,
        "system users": 1,
    }
    assert counts() == expected
    PriorityMatrix.objects.filter(urgency=4, impact=4).delete()
    SlaPolicy.objects.filter(code="INC-P4").update(resolution_minutes=999)
    r.load_reference_data()
    assert counts() == {**expected, "matrix": 15}
    assert SlaPolicy.objects.get(code="INC-P4").resolution_minutes == 999


def test_incident_permissions_reach_roles_that_predate_them():
    requester = r.role_group(r.REQUESTER)
    manager = r.role_group(r.IT_MANAGER)
    requester.permissions.remove(*requester.permissions.filter(content_type__model="incident"))
    manager.permissions.remove(Permission.objects.get(codename="delete_incident"))

    load_ops_reference(set())

    def codenames(group):
        return set(
            group.permissions.filter(content_type__model="incident").values_list(
                "codename", flat=True
            )
        )

    assert codenames(requester) == {"view_incident", "add_incident", "change_incident"}
    # The manager held incident permissions already: the administrator's removal stays.
    assert "delete_incident" not in codenames(manager)
    assert {"view_internal_notes", "assign_incident"} <= codenames(manager)


def test_system_account_cannot_log_in():
    system = User.objects.get(username="system")
    assert not system.has_usable_password()
    assert system.is_active and not system.is_staff and not system.is_superuser
    assert system.groups.filter(role__code="system").exists()
