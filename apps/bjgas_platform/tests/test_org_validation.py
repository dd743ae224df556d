"""Validation of organisation data and scope rules: full_clean refuses, naming the field."""

import datetime

import pytest
from django.core.exceptions import ValidationError

from apps.bjgas_platform import roles as r
from apps.bjgas_platform.models import Company, Department, ScopeRule, User

from .factories import (
    CompanyFactory,
    DepartmentFactory,
    RegionFactory,
    UserFactory,
    VendorFactory,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("english")]


def field_errors(exc: ValidationError) -> dict[str, list[tuple[str, str | None]]]:
    """Return {field: [(message, code)]} of a ValidationError raised by full_clean."""
    return {
        name: [(e.messages[0], e.code) for e in errors] for name, errors in exc.error_dict.items()
    }


def test_department_cycle_is_refused_on_parent():
    a = DepartmentFactory(code="A", name="甲")
    b = DepartmentFactory(code="B", name="乙", parent=a)
    a.parent = b

    with pytest.raises(ValidationError) as caught:
        a.full_clean()

    assert field_errors(caught.value) == {
        "parent": [("A record cannot be its own parent or ancestor.", "tree_cycle")]
    }
    assert Department.objects.get(pk=a.pk).parent_id is None


def test_department_as_its_own_parent_is_refused():
    a = DepartmentFactory(code="A", name="甲")
    a.parent = a

    with pytest.raises(ValidationError) as caught:
        a.full_clean()

    assert field_errors(caught.value)["parent"][0][1] == "tree_cycle"


def test_company_and_region_cycles_are_refused():
    hq = CompanyFactory(code="HQ")
    branch = CompanyFactory(code="BR", parent=hq)
    hq.parent = branch
    region = RegionFactory(code="BJ")
    site = RegionFactory(code="BJ-1", parent=region)
    region.parent = site

    for record in (hq, region):
        with pytest.raises(ValidationError) as caught:
            record.full_clean()
        assert field_errors(caught.value)["parent"][0][1] == "tree_cycle"


def test_a_deeper_tree_without_cycle_is_accepted():
    a = DepartmentFactory(code="A", name="甲")
    b = DepartmentFactory(code="B", name="乙", parent=a)
    c = DepartmentFactory(code="C", name="丙", parent=b)
    c.full_clean()

    assert [d.code for d in c.ancestors()] == ["B", "A"]


def test_parent_department_of_another_company_is_refused():
    north = DepartmentFactory(code="N-OPS", company=CompanyFactory(code="NORTH"))
    south_dept = DepartmentFactory(code="S-OPS", company=CompanyFactory(code="SOUTH"))
    south_dept.parent = north

    with pytest.raises(ValidationError) as caught:
        south_dept.full_clean()

    assert field_errors(caught.value) == {
        "parent": [
            (
                "The parent department must belong to the same company.",
                "department_company_mismatch",
            )
        ]
    }


def test_duplicate_department_code_is_refused():
    DepartmentFactory(code="HQ-IT", name="信息中心")
    twin = Department(code="HQ-IT", name="另一个信息中心", company=CompanyFactory(code="X"))

    with pytest.raises(ValidationError) as caught:
        twin.full_clean()

    errors = field_errors(caught.value)
    assert list(errors) == ["code"]
    assert errors["code"][0][1] == "unique"
    assert errors["code"][0][0] == "Department with this Code already exists."


def test_duplicate_company_name_is_refused():
    CompanyFactory(code="HQ", name="集团总部")
    twin = Company(code="HQ2", name="集团总部")

    with pytest.raises(ValidationError) as caught:
        twin.full_clean()

    assert [code for _, code in field_errors(caught.value)["name"]] == ["unique"]


def test_badly_formed_code_is_refused():
    company = Company(code="-bad code", name="坏代码")

    with pytest.raises(ValidationError) as caught:
        company.full_clean()

    assert field_errors(caught.value)["code"][0][1] == "invalid_code"


def test_vendor_contract_ending_before_it_starts_is_refused():
    vendor = VendorFactory.build(
        code="VA",
        contract_start=datetime.date(2026, 3, 1),
        contract_end=datetime.date(2026, 2, 28),
    )

    with pytest.raises(ValidationError) as caught:
        vendor.full_clean()

    assert field_errors(caught.value) == {
        "contract_end": [("The contract cannot end before it starts.", "contract_dates")]
    }

    vendor.contract_end = datetime.date(2026, 3, 1)
    vendor.full_clean()


def test_user_department_of_another_company_is_refused():
    dept = DepartmentFactory(code="N-OPS", company=CompanyFactory(code="NORTH"))
    user = User(username="zhao", company=CompanyFactory(code="SOUTH"), department=dept)
    user.set_password("x-pass-2026")

    with pytest.raises(ValidationError) as caught:
        user.full_clean()

    assert field_errors(caught.value) == {
        "department": [
            ("The department must belong to the user's company.", "user_department_company")
        ]
    }


@pytest.mark.parametrize("holder", ["none", "both"])
def test_scope_rule_needs_exactly_one_holder(holder):
    user = UserFactory(username="li")
    rule = ScopeRule(name="规则")
    if holder == "both":
        rule.user = user
        rule.role = r.role_group(r.TEAM_LEAD)

    with pytest.raises(ValidationError) as caught:
        rule.full_clean()

    errors = caught.value.error_dict["__all__"]
    assert [(e.messages[0], e.code) for e in errors] == [
        (
            "A scope rule applies to exactly one user or one role: choose one of the two.",
            "scope_rule_holder",
        )
    ]


@pytest.mark.parametrize("holder", ["user", "role"])
def test_scope_rule_with_one_holder_is_accepted(holder):
    rule = ScopeRule(name="规则")
    if holder == "user":
        rule.user = UserFactory(username="li")
    else:
        rule.role = r.role_group(r.TEAM_LEAD)

    rule.full_clean()


def test_department_with_members_cannot_move_to_another_company():
    east = CompanyFactory(code="EAST", name="城东分公司")
    west = CompanyFactory(code="WEST", name="城西分公司")
    pipe = DepartmentFactory(code="E-PIPE", name="管网运行部", company=east)
    team = DepartmentFactory(code="E-PIPE-1", name="巡线班", parent=pipe)
    pipe.company = west

    with pytest.raises(ValidationError) as caught:
        pipe.full_clean()

    message = (
        "This department still has sub-departments or users: move them to another "
        "department first, then change its company."
    )
    assert field_errors(caught.value) == {"company": [(message, "department_has_members")]}

    team.delete()
    UserFactory(username="liu", company=east, department=pipe)
    with pytest.raises(ValidationError) as caught:
        pipe.full_clean()
    assert field_errors(caught.value) == {"company": [(message, "department_has_members")]}
    assert Department.objects.get(pk=pipe.pk).company == east


def test_empty_department_may_move_and_members_do_not_block_other_changes():
    east = CompanyFactory(code="EAST", name="城东分公司")
    west = CompanyFactory(code="WEST", name="城西分公司")
    empty = DepartmentFactory(code="E-NEW", name="新建部门", company=east)
    empty.company = west
    empty.full_clean()

    pipe = DepartmentFactory(code="E-PIPE", name="管网运行部", company=east)
    UserFactory(username="liu", company=east, department=pipe)
    pipe.name = "管网运行一部"
    pipe.full_clean()


def test_same_name_top_level_departments_of_one_company_are_refused():
    east = CompanyFactory(code="EAST", name="城东分公司")
    DepartmentFactory(code="E-PIPE", name="管网运行部", company=east)
    twin = Department(code="E-PIPE2", name="管网运行部", company=east)

    with pytest.raises(ValidationError) as caught:
        twin.full_clean()

    assert field_errors(caught.value) == {
        "name": [
            (
                "The company already has a department named '管网运行部' at this level: "
                "choose another name or another parent department.",
                "department_duplicate_name",
            )
        ]
    }


def test_same_name_sub_departments_are_refused_once_on_name():
    east = CompanyFactory(code="EAST", name="城东分公司")
    pipe = DepartmentFactory(code="E-PIPE", name="管网运行部", company=east)
    DepartmentFactory(code="E-PIPE-1", name="巡线班", parent=pipe)
    twin = Department(code="E-PIPE-2", name="巡线班", company=east, parent=pipe)

    with pytest.raises(ValidationError) as caught:
        twin.full_clean()

    assert list(field_errors(caught.value)) == ["name"]
    assert field_errors(caught.value)["name"][0][1] == "department_duplicate_name"


def test_same_name_is_allowed_elsewhere_and_on_the_record_itself():
    east = CompanyFactory(code="EAST", name="城东分公司")
    west = CompanyFactory(code="WEST", name="城西分公司")
    pipe = DepartmentFactory(code="E-PIPE", name="管网运行部", company=east)
    pipe.full_clean()  # itself is no duplicate
    Department(code="W-PIPE", name="管网运行部", company=west).full_clean()
    Department(code="E-PIPE-X", name="管网运行部", company=east, parent=pipe).full_clean()


def test_department_names_its_company():
    east = CompanyFactory(code="EAST", name="城东分公司")
    west = CompanyFactory(code="WEST", name="城西分公司")
    assert str(DepartmentFactory(code="E-PIPE", name="管网运行部", company=east)) == (
        "管网运行部（城东分公司）"
    )
    assert str(DepartmentFactory(code="W-PIPE", name="管网运行部", company=west)) == (
        "管网运行部（城西分公司）"
    )
