"""Factories for organisation data, users with roles, scope rules and tasks.

`build_world()` makes a small organisation like the demo's, with one user per standard
role and their scope rules; the scope tests work out by hand what each user sees in it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import factory
from django.contrib.auth.models import Group

from apps.bjgas_ops.models import Task
from apps.bjgas_ops.services.tasks import create_task
from apps.bjgas_platform import roles as r
from apps.bjgas_platform.choices import CompanyKind, RegionKind
from apps.bjgas_platform.models import (
    BusinessSystem,
    Company,
    Department,
    Region,
    ScopeRule,
    SupportGroup,
    User,
    Vendor,
    VendorEngineer,
)

PASSWORD = "test-pass-2026"


class CompanyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Company
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"C{n:03d}")
    name = factory.Sequence(lambda n: f"公司{n:03d}")
    kind = CompanyKind.BRANCH


class DepartmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Department
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"D{n:03d}")
    name = factory.Sequence(lambda n: f"部门{n:03d}")
    company = factory.LazyAttribute(
        lambda o: o.parent.company if o.parent else CompanyFactory.create()
    )
    parent = None


class RegionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Region
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"R{n:03d}")
    name = factory.Sequence(lambda n: f"区域{n:03d}")
    kind = RegionKind.REGION


class BusinessSystemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = BusinessSystem
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"BS{n:03d}")
    name = factory.Sequence(lambda n: f"业务系统{n:03d}")


class VendorFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Vendor
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"V{n:03d}")
    name = factory.Sequence(lambda n: f"服务商{n:03d}")


class VendorEngineerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = VendorEngineer

    vendor = factory.SubFactory(VendorFactory)
    name = factory.Sequence(lambda n: f"工程师{n:03d}")


class SupportGroupFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SupportGroup
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"G{n:03d}")
    name = factory.Sequence(lambda n: f"支持组{n:03d}")


class UserFactory(factory.django.DjangoModelFactory):
    """A user; `roles=[role codes]` puts them in the roles' groups."""

    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n:03d}")
    full_name = factory.LazyAttribute(lambda o: o.username)
    company = None
    department = None
    password = factory.django.Password(PASSWORD)

    @factory.post_generation
    def roles(self, create, extracted, **kwargs):
        if create and extracted:
            self.groups.add(*[r.role_group(code) for code in extracted])


class ScopeRuleFactory(factory.django.DjangoModelFactory):
    """A scope rule; pass the dimensions as lists: `companies=[...]`, `vendors=[...]`."""

    class Meta:
        model = ScopeRule
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"rule {n:03d}")

    @factory.post_generation
    def companies(self, create, extracted, **kwargs):
        if create and extracted:
            self.companies.set(extracted)

    @factory.post_generation
    def departments(self, create, extracted, **kwargs):
        if create and extracted:
            self.departments.set(extracted)

    @factory.post_generation
    def regions(self, create, extracted, **kwargs):
        if create and extracted:
            self.regions.set(extracted)

    @factory.post_generation
    def business_systems(self, create, extracted, **kwargs):
        if create and extracted:
            self.business_systems.set(extracted)

    @factory.post_generation
    def vendors(self, create, extracted, **kwargs):
        if create and extracted:
            self.vendors.set(extracted)


class TaskFactory(factory.django.DjangoModelFactory):
    """A task made by the service `create_task`; `created_by` is the acting user."""

    class Meta:
        model = Task

    title = factory.Sequence(lambda n: f"任务{n:03d}")
    requester = factory.SubFactory(UserFactory, company=factory.SubFactory(CompanyFactory))

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        actor = kwargs.pop("created_by", None) or kwargs["requester"]
        return create_task(actor, **kwargs)


@dataclass
class World:
    """The demo-like organisation: objects by code (users by username)."""

    companies: dict[str, Company] = field(default_factory=dict)
    departments: dict[str, Department] = field(default_factory=dict)
    regions: dict[str, Region] = field(default_factory=dict)
    systems: dict[str, BusinessSystem] = field(default_factory=dict)
    vendors: dict[str, Vendor] = field(default_factory=dict)
    engineers: dict[str, VendorEngineer] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)
    tasks: dict[str, Task] = field(default_factory=dict)
    rules: dict[str, ScopeRule] = field(default_factory=dict)


def build_world() -> World:
    """Create the demo-like organisation, users of every role, their rules and seven tasks.

    Companies: HQ > NORTH > NORTH-SUB, HQ > SOUTH.
    Departments: HQ-IT > HQ-IT-OPS, HQ-FIN (HQ); N-OPS > N-OPS-NET (NORTH); NS-ENG
    (NORTH-SUB); S-OPS (SOUTH). Regions: BJ > BJ-DC1, BJ > BJ-CY; TJ.
    Rules: service desk role -> company NORTH; t1 -> company NORTH AND region BJ;
    vend -> vendor VA; lead -> department HQ-IT, and business system SCADA, and an inactive
    rule on company SOUTH; head -> department N-OPS; IT manager, auditor, administrator
    roles -> all records (made by the reference data); nobody else has a rule.
    Tasks (requester, created by, company, department, region, system, vendor):
    T1 req req HQ HQ-FIN BJ-CY ERP -; T2 head desk NORTH N-OPS BJ-DC1 SCADA VA;
    T3 desk desk NORTH N-OPS-NET TJ CRM VB, assigned to t1; T4 nsub nsub NORTH-SUB NS-ENG
    BJ-CY - -; T5 south south SOUTH S-OPS TJ ERP VA; T6 mgr mgr HQ HQ-IT-OPS BJ-DC1 CRM -;
    T7 desk2 desk2 NORTH N-OPS TJ - -.
    """
    w = World()
    c = w.companies
    c["HQ"] = CompanyFactory(code="HQ", name="集团总部", kind=CompanyKind.HEADQUARTERS)
    c["NORTH"] = CompanyFactory(code="NORTH", name="北部分公司", parent=c["HQ"])
    c["NORTH-SUB"] = CompanyFactory(
        code="NORTH-SUB", name="北部燃气工程公司", kind=CompanyKind.SUBSIDIARY, parent=c["NORTH"]
    )
    c["SOUTH"] = CompanyFactory(code="SOUTH", name="南部分公司", parent=c["HQ"])

    d = w.departments
    d["HQ-IT"] = DepartmentFactory(code="HQ-IT", name="信息中心", company=c["HQ"])
    d["HQ-IT-OPS"] = DepartmentFactory(code="HQ-IT-OPS", name="运维科", parent=d["HQ-IT"])
    d["HQ-FIN"] = DepartmentFactory(code="HQ-FIN", name="财务部", company=c["HQ"])
    d["N-OPS"] = DepartmentFactory(code="N-OPS", name="北部运行部", company=c["NORTH"])
    d["N-OPS-NET"] = DepartmentFactory(code="N-OPS-NET", name="北部网络组", parent=d["N-OPS"])
    d["NS-ENG"] = DepartmentFactory(code="NS-ENG", name="工程部", company=c["NORTH-SUB"])
    d["S-OPS"] = DepartmentFactory(code="S-OPS", name="南部运行部", company=c["SOUTH"])

    g = w.regions
    g["BJ"] = RegionFactory(code="BJ", name="北京")
    g["BJ-DC1"] = RegionFactory(
        code="BJ-DC1", name="亦庄数据中心", kind=RegionKind.DATA_CENTER, parent=g["BJ"]
    )
    g["BJ-CY"] = RegionFactory(code="BJ-CY", name="朝阳站点", kind=RegionKind.SITE, parent=g["BJ"])
    g["TJ"] = RegionFactory(code="TJ", name="天津")

    s = w.systems
    s["SCADA"] = BusinessSystemFactory(code="SCADA", name="SCADA 调度系统", company=c["HQ"])
    s["CRM"] = BusinessSystemFactory(code="CRM", name="客服系统", company=c["HQ"])
    s["ERP"] = BusinessSystemFactory(code="ERP", name="ERP 系统", company=c["HQ"])

    v = w.vendors
    v["VA"] = VendorFactory(code="VA", name="华信运维")
    v["VB"] = VendorFactory(code="VB", name="恒通网络")

    u = w.users

    def user(username, role_codes, company=None, department=None, **extra):
        u[username] = UserFactory(
            username=username,
            company=c[company] if company else None,
            department=d[department] if department else None,
            roles=role_codes,
            **extra,
        )

    user("req", [r.REQUESTER], "HQ", "HQ-FIN")
    user("desk", [r.SERVICE_DESK], "HQ", "HQ-IT-OPS")
    user("desk2", [r.SERVICE_DESK], "SOUTH", "S-OPS")
    user("t1", [r.ENGINEER_T1], "NORTH", "N-OPS-NET")
    user("vend", [r.VENDOR_ENGINEER])
    user("lead", [r.TEAM_LEAD], "HQ", "HQ-IT")
    user("head", [r.DEPARTMENT_HEAD], "NORTH", "N-OPS")
    user("mgr", [r.IT_MANAGER], "HQ", "HQ-IT")
    user("aud", [r.AUDITOR], "HQ", "HQ-FIN")
    user("admin", [r.ADMINISTRATOR], "HQ", "HQ-IT")
    user("root", [], is_superuser=True, is_staff=True)
    user("gone", [r.IT_MANAGER], "SOUTH", "S-OPS", is_active=False)
    user("nsub", [r.REQUESTER], "NORTH-SUB", "NS-ENG")
    user("south", [r.REQUESTER], "SOUTH", "S-OPS")
    for name, account in u.items():
        if name != "gone":
            account.is_staff = True
            account.save(update_fields=["is_staff"])

    e = w.engineers
    e["zhang"] = VendorEngineerFactory(vendor=v["VA"], name="张工", user=u["vend"])
    e["li"] = VendorEngineerFactory(vendor=v["VA"], name="李工")
    e["wang"] = VendorEngineerFactory(vendor=v["VB"], name="王工")

    rules = w.rules
    rules["desk"] = ScopeRuleFactory(
        name="服务台：北部", role=r.role_group(r.SERVICE_DESK), companies=[c["NORTH"]]
    )
    rules["t1"] = ScopeRuleFactory(
        name="一线：北部北京", user=u["t1"], companies=[c["NORTH"]], regions=[g["BJ"]]
    )
    rules["vend"] = ScopeRuleFactory(name="服务商 VA", user=u["vend"], vendors=[v["VA"]])
    rules["lead-it"] = ScopeRuleFactory(
        name="组长：信息中心", user=u["lead"], departments=[d["HQ-IT"]]
    )
    rules["lead-scada"] = ScopeRuleFactory(
        name="组长：SCADA", user=u["lead"], business_systems=[s["SCADA"]]
    )
    rules["lead-old"] = ScopeRuleFactory(
        name="组长：南部（停用）", user=u["lead"], companies=[c["SOUTH"]], is_active=False
    )
    rules["head"] = ScopeRuleFactory(
        name="部门负责人：北部运行部", user=u["head"], departments=[d["N-OPS"]]
    )

    t = w.tasks

    def task(key, requester, actor, company, department, region, system, vendor, **extra):
        t[key] = TaskFactory(
            title=key,
            requester=u[requester],
            created_by=u[actor],
            company=c[company],
            department=d[department],
            region=g[region],
            business_system=s[system] if system else None,
            vendor=v[vendor] if vendor else None,
            **extra,
        )

    task("T1", "req", "req", "HQ", "HQ-FIN", "BJ-CY", "ERP", None)
    task("T2", "head", "desk", "NORTH", "N-OPS", "BJ-DC1", "SCADA", "VA")
    task("T3", "desk", "desk", "NORTH", "N-OPS-NET", "TJ", "CRM", "VB", assignee=u["t1"])
    task("T4", "nsub", "nsub", "NORTH-SUB", "NS-ENG", "BJ-CY", None, None)
    task("T5", "south", "south", "SOUTH", "S-OPS", "TJ", "ERP", "VA")
    task("T6", "mgr", "mgr", "HQ", "HQ-IT-OPS", "BJ-DC1", "CRM", None)
    task("T7", "desk2", "desk2", "NORTH", "N-OPS", "TJ", None, None)
    return w


def role(code: str) -> Group:
    """Return the permission group of a standard role."""
    return r.role_group(code)
