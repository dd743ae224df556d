"""Scope through the desk: each role's lists, forms and searches show exactly its rows.

The world and the rows each user may see are those of the queryset-level scope tests
(`apps/bjgas_platform/tests/test_scope.py`, worked out by hand); this table adds which
roles may open each model's desk pages at all (their model permissions).
"""

import re

import pytest
from django.db import transaction
from django.urls import reverse

from apps.bjgas_ops.models import Task
from apps.bjgas_platform.models import (
    BusinessSystem,
    Company,
    Department,
    Region,
    User,
    Vendor,
    VendorEngineer,
)
from apps.bjgas_platform.tests.factories import build_world
from apps.bjgas_platform.tests.test_scope import EVERYTHING, KEY, VISIBLE

ORG = {Company, Department, Region, BusinessSystem, Vendor, VendorEngineer}
MODELS = [Company, Department, Region, BusinessSystem, Vendor, VendorEngineer, User, Task]

# username (role) -> models whose desk pages the role may view
VIEWABLE = {
    "req": {Task},  # requester
    "desk": ORG | {User, Task},  # service desk agent: picks requesters and assignees
    "t1": ORG | {User, Task},  # tier-1 engineer: picks requesters and assignees
    "vend": {Task},  # vendor engineer
    "lead": ORG | {User, Task},  # team lead: picks requesters and assignees
    "head": ORG | {User, Task},  # department head: picks requesters and assignees
    "mgr": ORG | {User, Task},  # IT manager
    "aud": ORG | {User, Task},  # auditor
    "admin": ORG | {User, Task},  # administrator
}

# The text a desk search for a record uses: a name no other row of the world contains.
SEARCH_TEXT = {
    Company: lambda o: o.name,
    Department: lambda o: o.name,
    Region: lambda o: o.name,
    BusinessSystem: lambda o: o.code,
    Vendor: lambda o: o.name,
    VendorEngineer: lambda o: o.name,
    User: lambda o: o.username,
    Task: lambda o: o.number,
}

CASES = [(username, model) for username in VIEWABLE for model in MODELS]


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    """Build the world once for the module, inside a transaction rolled back at its end."""
    with django_db_blocker.unblock():
        atomic = transaction.atomic()
        atomic.__enter__()
        try:
            yield build_world()
        finally:
            transaction.set_rollback(True)
            atomic.__exit__(None, None, None)


def url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def listed_keys(model, html: str) -> set[str]:
    """Return the keys of the world's records whose change page the page links to."""
    prefix = re.escape(url(model, "changelist"))
    pks = {int(pk) for pk in re.findall(rf'href="{prefix}(\d+)/change/', html)}
    return {KEY[model](obj) for obj in model._base_manager.filter(pk__in=pks)} & EVERYTHING[model]


@pytest.mark.django_db
@pytest.mark.parametrize(("username", "model"), CASES, ids=[f"{u}-{m.__name__}" for u, m in CASES])
def test_desk_shows_exactly_the_rows_in_scope(client, world, username, model):
    client.force_login(world.users[username])

    response = client.get(url(model, "changelist"))

    if model not in VIEWABLE[username]:
        assert response.status_code == 403
        return
    assert response.status_code == 200
    allowed = VISIBLE[username][model]
    assert listed_keys(model, response.content.decode()) == allowed

    rows = [obj for obj in model._base_manager.all() if KEY[model](obj) in EVERYTHING[model]]
    for obj in rows:
        status = client.get(url(model, "change", obj.pk)).status_code
        assert status == (200 if KEY[model](obj) in allowed else 404), KEY[model](obj)

    for obj in rows:
        if KEY[model](obj) in allowed:
            continue
        found = client.get(url(model, "changelist"), {"q": SEARCH_TEXT[model](obj)})
        assert found.status_code == 200
        assert listed_keys(model, found.content.decode()) == set(), KEY[model](obj)


@pytest.mark.django_db
def test_search_finds_an_allowed_record(client, world):
    client.force_login(world.users["t1"])

    found = client.get(url(Task, "changelist"), {"q": world.tasks["T2"].number})

    assert listed_keys(Task, found.content.decode()) == {"T2"}
