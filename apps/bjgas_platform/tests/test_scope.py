"""Row-level access: `Model.objects.visible_to(user)` on every scoped model.

The expected sets below were worked out by hand from `build_world()`'s description. Rows
the reference data makes (such as the system account) are outside the world and are left
out of the comparison.
"""

import pytest

from apps.bjgas_ops.models import Task
from apps.bjgas_platform import roles as r
from apps.bjgas_platform.models import (
    BusinessSystem,
    Company,
    Department,
    Region,
    ScopeRule,
    User,
    Vendor,
    VendorEngineer,
)

from .factories import ScopeRuleFactory, UserFactory, build_world

COMPANIES = {"HQ", "NORTH", "NORTH-SUB", "SOUTH"}
DEPARTMENTS = {"HQ-IT", "HQ-IT-OPS", "HQ-FIN", "N-OPS", "N-OPS-NET", "NS-ENG", "S-OPS"}
REGIONS = {"BJ", "BJ-DC1", "BJ-CY", "TJ"}
SYSTEMS = {"SCADA", "CRM", "ERP"}
VENDORS = {"VA", "VB"}
ENGINEERS = {"zhang", "li", "wang"}
USERS = {
    "req",
    "desk",
    "desk2",
    "t1",
    "vend",
    "lead",
    "head",
    "mgr",
    "aud",
    "admin",
    "root",
    "gone",
    "nsub",
    "south",
}
TASKS = {"T1", "T2", "T3", "T4", "T5", "T6", "T7"}

# The world's key of each row, per model.
KEY = {
    Company: lambda o: o.code,
    Department: lambda o: o.code,
    Region: lambda o: o.code,
    BusinessSystem: lambda o: o.code,
    Vendor: lambda o: o.code,
    VendorEngineer: lambda o: {"张工": "zhang", "李工": "li", "王工": "wang"}[o.name],
    User: lambda o: o.username,
    Task: lambda o: o.title,
}

EVERYTHING = {
    Company: COMPANIES,
    Department: DEPARTMENTS,
    Region: REGIONS,
    BusinessSystem: SYSTEMS,
    Vendor: VENDORS,
    VendorEngineer: ENGINEERS,
    User: USERS,
    Task: TASKS,
}
NOTHING = {model: set() for model in EVERYTHING}


def only_own(username: str, tasks: set[str]) -> dict:
    """No scope rule: the user sees themself and the tasks they are named on."""
    return {**NOTHING, User: {username}, Task: tasks}


# username -> model -> keys of the visible rows
VISIBLE: dict[str, dict] = {
    # No rule: only their own records; org data has no owner field, so nothing of it.
    "req": only_own("req", {"T1"}),
    "nsub": only_own("nsub", {"T4"}),
    "south": only_own("south", {"T5"}),
    # Role rule company NORTH (with NORTH-SUB below it); regions, systems and vendors are
    # not restricted by a company rule.
    "desk": {
        **EVERYTHING,
        Company: {"NORTH", "NORTH-SUB"},
        Department: {"N-OPS", "N-OPS-NET", "NS-ENG"},
        User: {"desk", "t1", "head", "nsub"},
        Task: {"T2", "T3", "T4", "T7"},
    },
    # The same role rule holds for every holder of the role.
    "desk2": {
        **EVERYTHING,
        Company: {"NORTH", "NORTH-SUB"},
        Department: {"N-OPS", "N-OPS-NET", "NS-ENG"},
        User: {"desk2", "t1", "head", "nsub"},
        Task: {"T2", "T3", "T4", "T7"},
    },
    # Company NORTH AND region BJ: T7 (Tianjin) is out, T3 (Tianjin) is in as assignee.
    "t1": {
        **EVERYTHING,
        Company: {"NORTH", "NORTH-SUB"},
        Department: {"N-OPS", "N-OPS-NET", "NS-ENG"},
        Region: {"BJ", "BJ-DC1", "BJ-CY"},
        User: {"t1", "head", "nsub"},
        Task: {"T2", "T3", "T4"},
    },
    # Vendor VA: every model without a vendor dimension is reference data for them.
    "vend": {
        **EVERYTHING,
        Vendor: {"VA"},
        VendorEngineer: {"zhang", "li"},
        Task: {"T2", "T5"},
    },
    # Department HQ-IT OR system SCADA; the inactive SOUTH rule adds nothing (T5). The
    # SCADA rule restricts no dimension of org models, so those are whole for them.
    "lead": {**EVERYTHING, Task: {"T2", "T6"}},
    # Department N-OPS with N-OPS-NET below it.
    "head": {
        **EVERYTHING,
        Department: {"N-OPS", "N-OPS-NET"},
        User: {"t1", "head"},
        Task: {"T2", "T3", "T7"},
    },
    "mgr": EVERYTHING,
    "aud": EVERYTHING,
    "admin": EVERYTHING,
    "root": EVERYTHING,
    "gone": NOTHING,
}


def visible(model, user) -> set[str]:
    """Return the keys of the world's rows `user` sees (reference rows are left out)."""
    return {KEY[model](o) for o in model.objects.visible_to(user)} & EVERYTHING[model]


@pytest.mark.django_db
@pytest.mark.parametrize("username", sorted(VISIBLE))
def test_visible_rows_per_user(username):
    world = build_world()
    user = User.objects.get(username=username)

    seen = {model.__name__: visible(model, user) for model in EVERYTHING}

    assert seen == {model.__name__: keys for model, keys in VISIBLE[username].items()}
    assert len(world.tasks) == len(TASKS)


@pytest.mark.django_db
def test_rule_on_a_role_follows_membership():
    world = build_world()
    newcomer = UserFactory(username="newcomer", company=world.companies["SOUTH"])
    assert visible(Task, newcomer) == set()

    newcomer.groups.add(r.role_group(r.SERVICE_DESK))
    newcomer = User.objects.get(pk=newcomer.pk)  # scope rules are cached per user object

    assert visible(Task, newcomer) == {"T2", "T3", "T4", "T7"}


@pytest.mark.django_db
def test_activating_a_rule_widens_the_scope():
    world = build_world()
    ScopeRule.objects.filter(pk=world.rules["lead-old"].pk).update(is_active=True)
    lead = User.objects.get(username="lead")

    assert visible(Task, lead) == {"T2", "T5", "T6"}
    assert visible(Company, lead) == COMPANIES


@pytest.mark.django_db
def test_rule_with_no_dimension_allows_nothing():
    world = build_world()
    user = UserFactory(username="empty", roles=[r.ENGINEER_T2])
    ScopeRuleFactory(name="empty rule", user=user)

    assert visible(Task, user) == set()
    assert visible(Company, user) == set()
    assert visible(User, user) == set()
    assert list(User.objects.visible_to(user)) == [user]
    assert world.users["root"].is_superuser


@pytest.mark.django_db
def test_two_dimensions_of_one_rule_both_apply():
    world = build_world()
    user = UserFactory(username="both")
    ScopeRuleFactory(
        name="south ERP",
        user=user,
        companies=[world.companies["HQ"]],
        business_systems=[world.systems["ERP"]],
    )

    # Company HQ covers every company; only T1 and T5 are on ERP.
    assert visible(Task, user) == {"T1", "T5"}
    assert visible(BusinessSystem, user) == {"ERP"}
    assert visible(Company, user) == COMPANIES


@pytest.mark.django_db
def test_anonymous_sees_nothing():
    from django.contrib.auth.models import AnonymousUser

    build_world()

    assert not Task.objects.visible_to(AnonymousUser()).exists()
    assert not Task.objects.visible_to(None).exists()


@pytest.mark.django_db
def test_deactivated_user_loses_everything():
    build_world()
    mgr = User.objects.get(username="mgr")
    assert visible(Task, mgr) == TASKS

    User.objects.filter(pk=mgr.pk).update(is_active=False)
    mgr.refresh_from_db()

    assert visible(Task, mgr) == set()


@pytest.mark.django_db
def test_owner_fields_without_rules():
    world = build_world()
    helper = UserFactory(username="helper", roles=[r.ENGINEER_T2])
    Task.objects.filter(pk=world.tasks["T1"].pk).update(assignee=helper)
    Task.objects.filter(pk=world.tasks["T4"].pk).update(created_by=helper)
    Task.objects.filter(pk=world.tasks["T5"].pk).update(requester=helper)

    assert visible(Task, helper) == {"T1", "T4", "T5"}
