"""The desk reads through scope: out-of-scope records answer 404 and are never offered."""

import pytest
from django.urls import reverse

from apps.bjgas_platform import roles as r
from apps.bjgas_platform.models import User

from .factories import CompanyFactory, DepartmentFactory, ScopeRuleFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def north_desk(client):
    """A service-desk user who sees company NORTH only; SOUTH is outside their scope."""
    north = CompanyFactory(code="NORTH", name="北部公司")
    south = CompanyFactory(code="SOUTH", name="南部公司")
    north_dept = DepartmentFactory(code="N-OPS", name="北部运行部", company=north)
    south_dept = DepartmentFactory(code="S-OPS", name="南部运行部", company=south)
    user = UserFactory(username="scope-desk", roles=[r.SERVICE_DESK], is_staff=True)
    ScopeRuleFactory(name="北部", user=user, companies=[north])
    client.force_login(user)
    return {"user": user, "north": north, "south": south, "in": north_dept, "out": south_dept}


@pytest.mark.parametrize("view", ["change", "history", "delete"])
def test_out_of_scope_record_answers_404(client, north_desk, view):
    out = north_desk["out"]

    response = client.get(reverse(f"admin:bjgas_platform_department_{view}", args=[out.pk]))

    assert response.status_code == 404
    assert "南部运行部" not in response.content.decode()


def test_missing_record_answers_404_too(client, north_desk):
    response = client.get(reverse("admin:bjgas_platform_department_change", args=[999999]))

    assert response.status_code == 404


def test_in_scope_record_opens(client, north_desk):
    response = client.get(
        reverse("admin:bjgas_platform_department_change", args=[north_desk["in"].pk])
    )

    assert response.status_code == 200
    assert "北部运行部" in response.content.decode()


def test_list_and_search_show_only_scope(client, north_desk):
    listing = client.get(reverse("admin:bjgas_platform_department_changelist"))
    searching = client.get(reverse("admin:bjgas_platform_department_changelist"), {"q": "运行部"})

    for response in (listing, searching):
        assert [d.code for d in response.context["cl"].result_list] == ["N-OPS"]


def test_company_filter_offers_only_visible_companies(client, north_desk):
    response = client.get(reverse("admin:bjgas_platform_department_changelist"))

    content = response.content.decode()
    assert "北部公司" in content
    assert "南部公司" not in content


def test_autocomplete_offers_only_scope(client, north_desk):
    response = client.get(
        reverse("admin:autocomplete"),
        {
            "app_label": "bjgas_ops",
            "model_name": "task",
            "field_name": "department",
            "term": "运行部",
        },
    )

    assert response.status_code == 200
    # A department is shown with its company: branches have departments of the same name.
    assert [row["text"] for row in response.json()["results"]] == ["北部运行部（北部公司）"]


def test_out_of_scope_historical_version_answers_404(client, north_desk):
    out = north_desk["out"]
    version = out.history.latest()

    response = client.get(
        reverse(
            "admin:bjgas_platform_department_simple_history",
            args=[out.pk, version.history_id],
        )
    )

    assert response.status_code == 404


def test_user_page_creates_a_user_in_a_visible_department(client, north_desk):
    admin_user = UserFactory(username="scope-admin", roles=[r.ADMINISTRATOR], is_staff=True)
    client.force_login(admin_user)

    response = client.post(
        reverse("admin:bjgas_platform_user_add"),
        {
            "username": "wangwu",
            "usable_password": "true",
            "password1": "Zx-9876-long-pass",
            "password2": "Zx-9876-long-pass",
            "full_name": "王五",
            "company": str(north_desk["north"].pk),
            "department": str(north_desk["in"].pk),
        },
    )

    assert response.status_code == 302
    created = User.objects.get(username="wangwu")
    assert (created.full_name, created.department_id) == ("王五", north_desk["in"].pk)
    assert created.check_password("Zx-9876-long-pass")
