"""Shared set-up of the incident tests: a small IT center, a settable clock, helpers.

The clock replaces `django.utils.timezone.now`, which the workflow engine, the history
rows, the numbering and the services all read, so a test can act at 09:00, then 09:05,
and compare the stored times with values worked out by hand.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone

from apps.bjgas_ops.models import Incident
from apps.bjgas_ops.services.incidents import create_incident
from apps.bjgas_platform import roles as r
from apps.bjgas_platform.models import ServiceCatalogItem, TransitionLog, Vendor
from apps.bjgas_platform.services.workflow import take_transition
from apps.bjgas_platform.tests.factories import (
    CompanyFactory,
    DepartmentFactory,
    ScopeRuleFactory,
    SupportGroupFactory,
    UserFactory,
)

# What `from .incident_fixtures import *` gives a test module: the fixtures.
__all__ = ["clock", "world"]

SHANGHAI = ZoneInfo("Asia/Shanghai")


def local(*args) -> datetime:
    """Return an aware datetime in Beijing time: local(2026, 3, 3, 9, 0)."""
    return datetime(*args, tzinfo=SHANGHAI)


class Clock:
    """A clock that stands still until a test moves it."""

    def __init__(self, start: datetime):
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def set(self, moment: datetime) -> datetime:
        self.now = moment
        return moment

    def advance(self, **delta) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Clock:
    """Freeze `timezone.now` at Tuesday 2026-03-03 09:00 Beijing time (a working day)."""
    frozen = Clock(local(2026, 3, 3, 9, 0))
    monkeypatch.setattr(timezone, "now", frozen)
    return frozen


@pytest.fixture
def world():
    """HQ with its IT center, a requester, the desk, engineers of tiers 1-3 and a lead."""
    hq = CompanyFactory(code="HQ", name="集团总部")
    it = DepartmentFactory(code="HQ-IT", name="信息中心", company=hq)
    fin = DepartmentFactory(code="HQ-FIN", name="财务部", company=hq)
    branch = CompanyFactory(code="EAST", name="城东分公司", parent=hq)
    people = {}
    for username, role_code, department in [
        ("desk", r.SERVICE_DESK, it),
        ("li", r.ENGINEER_T1, it),
        ("zhou", r.ENGINEER_T1, it),
        ("wang", r.ENGINEER_T2, it),
        ("chen", r.ENGINEER_T2, it),
        ("sun", r.ENGINEER_T3, it),
        ("lead", r.TEAM_LEAD, it),
        ("aud", r.AUDITOR, it),
    ]:
        people[username] = UserFactory(
            username=username, company=hq, department=department, roles=[role_code]
        )
    people["zhang"] = UserFactory(
        username="zhang",
        full_name="张会计",
        company=hq,
        department=fin,
        phone="13800000001",
        extension="6021",
        roles=[r.REQUESTER],
    )
    people["other"] = UserFactory(
        username="other", company=branch, department=None, roles=[r.REQUESTER]
    )
    for role_code in (r.SERVICE_DESK, r.ENGINEER_T1, r.ENGINEER_T2, r.ENGINEER_T3, r.TEAM_LEAD):
        ScopeRuleFactory(name=f"{role_code} HQ", role=r.role_group(role_code), companies=[hq])
    g1 = SupportGroupFactory(code="G1", name="桌面运维一线", tier=1)
    g1.members.set([people["li"], people["zhou"]])
    g2 = SupportGroupFactory(code="G2", name="应用运维二线", tier=2)
    g2.members.set([people["wang"]])
    g2b = SupportGroupFactory(code="G2B", name="网络运维二线", tier=2)
    g2b.members.set([people["chen"]])
    g3 = SupportGroupFactory(code="G3", name="研发三线", tier=3, leader=people["lead"])
    g3.members.set([people["sun"]])
    pc = ServiceCatalogItem.objects.create(
        code="PC", name="办公电脑", default_support_group=g1, auto_close_minutes=1
    )
    erp = ServiceCatalogItem.objects.create(code="ERP", name="ERP 系统", default_support_group=g2)
    vendor = Vendor.objects.create(code="HX", name="华信运维", contact_name="张工")
    return SimpleNamespace(
        hq=hq, it=it, fin=fin, branch=branch, g1=g1, g2=g2, g2b=g2b, g3=g3, pc=pc, erp=erp,
        vendor=vendor, **people,
    )  # fmt: skip


def report(world, actor=None, **fields) -> Incident:
    """Report an incident through the service; by default zhang reports it on the portal."""
    fields.setdefault("title", "电脑无法开机")
    return create_incident(actor or world.zhang, channel=fields.pop("channel", "portal"), **fields)


def act(incident: Incident, code: str, actor, comment: str = "") -> Incident:
    """Take a transition and return the incident as stored afterwards."""
    take_transition(incident, code, actor, comment)
    incident.refresh_from_db()
    return incident


def logs(incident: Incident) -> list[tuple[str, str, str]]:
    """Return the incident's state changes as (from, to, action)."""
    return list(
        TransitionLog.objects.filter(
            content_type=ContentType.objects.get_for_model(Incident), object_id=incident.pk
        )
        .order_by("created_at", "id")
        .values_list("from_state", "to_state", "action")
    )
