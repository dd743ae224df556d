"""Excel import of master data: all or nothing, errors by sheet row and column, by code."""

import io

import pytest
from django.urls import reverse
from openpyxl import Workbook, load_workbook

from apps.bjgas_platform import roles as r
from apps.bjgas_platform.models import Company, Department, User

from .factories import CompanyFactory, DepartmentFactory, UserFactory

pytestmark = pytest.mark.django_db

DEPARTMENT_HEADERS = ["编码", "名称", "公司编码", "上级部门编码", "负责人用户名", "启用"]
XLSX = "0"  # the first of the admin's formats


def xlsx(headers: list[str], rows: list[list]) -> io.BytesIO:
    book = Workbook()
    sheet = book.active
    sheet.append(headers)
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    buffer.seek(0)
    buffer.name = "departments.xlsx"
    return buffer


@pytest.fixture
def administrator(client):
    user = UserFactory(username="imp-admin", roles=[r.ADMINISTRATOR], is_staff=True)
    client.force_login(user)
    client.cookies["django_language"] = "en"  # the desk ignores Accept-Language
    return user


@pytest.fixture
def org():
    """Company HQ with departments IT (root) and OPS (under IT)."""
    hq = CompanyFactory(code="HQ", name="集团总部")
    it = DepartmentFactory(code="IT", name="信息中心", company=hq)
    ops = DepartmentFactory(code="OPS", name="运维科", company=hq, parent=it)
    return hq, it, ops


def upload(client, url_name: str, content: io.BytesIO):
    return client.post(reverse(url_name), {"import_file": content, "format": XLSX, "resource": "0"})


def confirm(client, url_name: str, response):
    form = response.context["confirm_form"]
    return client.post(reverse(url_name), {name: form[name].value() for name in form.fields})


def test_valid_file_creates_and_updates_by_code(client, administrator, org):
    hq, it, _ops = org
    content = xlsx(
        DEPARTMENT_HEADERS,
        [
            ["NET", "网络科", "HQ", "IT", "", "是"],
            ["IT", "信息技术中心", "HQ", "", "", "是"],
        ],
    )

    checked = upload(client, "admin:bjgas_platform_department_import", content)
    assert checked.status_code == 200
    assert checked.context["confirm_form"] is not None
    assert not Department.objects.filter(code="NET").exists(), "the check saves nothing"

    done = confirm(client, "admin:bjgas_platform_department_process_import", checked)

    assert done.status_code == 302
    net = Department.objects.get(code="NET")
    assert (net.name, net.company_id, net.parent_id) == ("网络科", hq.pk, it.pk)
    assert Department.objects.filter(code="IT").count() == 1
    it.refresh_from_db()
    assert it.name == "信息技术中心"


def test_invalid_row_refuses_the_whole_file(client, administrator, org):
    _hq, it, _ops = org
    content = xlsx(
        DEPARTMENT_HEADERS,
        [
            ["NET", "网络科", "HQ", "IT", "", "是"],
            ["IT", "信息中心", "HQ", "OPS", "", "是"],  # IT under its own child: a cycle
            ["BAD", "坏部门", "NOPE", "", "", "是"],  # a company code that does not exist
        ],
    )

    response = upload(client, "admin:bjgas_platform_department_import", content)

    assert response.status_code == 200
    assert "confirm_form" not in response.context or not response.context["confirm_form"]
    table = response.context["validation_table"]
    assert table["rows"] == [
        [3, "上级部门编码", "A record cannot be its own parent or ancestor."],
        [
            4,
            "公司编码",
            "No company has code 'NOPE' (or it is outside your scope).",
        ],
    ]
    content_text = response.content.decode()
    assert "上级部门编码" in content_text
    assert not Department.objects.filter(code__in=["NET", "BAD"]).exists()
    it.refresh_from_db()
    assert it.parent_id is None


def test_code_twice_in_one_file_is_refused_with_both_rows(client, administrator, org):
    content = xlsx(
        DEPARTMENT_HEADERS,
        [
            ["NET", "网络科", "HQ", "IT", "", "是"],
            ["SEC", "安全科", "HQ", "IT", "", "是"],
            ["NET", "网络二科", "HQ", "IT", "", "是"],
        ],
    )

    response = upload(client, "admin:bjgas_platform_department_import", content)

    rows = response.context["validation_table"]["rows"]
    assert rows == [
        [4, "编码", "'NET' is already in row 2 of this file; each may appear once."],
    ]
    assert not Department.objects.filter(code__in=["NET", "SEC"]).exists()


def test_duplicate_name_in_one_company_is_refused(client, administrator, org):
    content = xlsx(DEPARTMENT_HEADERS, [["IT2", "运维科", "HQ", "IT", "", "是"]])

    response = upload(client, "admin:bjgas_platform_department_import", content)

    rows = response.context["validation_table"]["rows"]
    assert len(rows) == 1
    assert rows[0][0] == 2
    assert not Department.objects.filter(code="IT2").exists()


def test_confirmed_import_rolls_back_when_a_row_became_invalid(client, administrator, org):
    content = xlsx(
        DEPARTMENT_HEADERS,
        [["NET", "网络科", "HQ", "IT", "", "是"], ["SEC", "安全科", "HQ", "GONE", "", "是"]],
    )
    gone = DepartmentFactory(code="GONE", name="待撤销", company=org[0])
    checked = upload(client, "admin:bjgas_platform_department_import", content)
    assert checked.context["confirm_form"] is not None
    gone.delete()  # between the check and the confirmation

    done = confirm(client, "admin:bjgas_platform_department_process_import", checked)

    assert done.status_code == 302
    assert done["Location"] == reverse("admin:bjgas_platform_department_import")
    assert not Department.objects.filter(code__in=["NET", "SEC"]).exists()


def test_unknown_column_is_refused(client, administrator, org):
    content = xlsx(["编码", "名称", "公司编码", "部门经理"], [["NET", "网络科", "HQ", "x"]])

    response = upload(client, "admin:bjgas_platform_department_import", content)

    assert response.status_code == 200
    result = response.context["result"]
    assert result.has_errors()
    assert "Unknown columns: 部门经理." in str(result.base_errors[0].error)
    assert not Department.objects.filter(code="NET").exists()
    # The page says what is wrong, never how the server failed.
    page = response.content.decode()
    assert "Unknown columns: 部门经理." in page
    assert "Traceback" not in page and "site-packages" not in page


def test_users_import_by_user_name_and_department_code(client, administrator, org):
    hq, _it, ops = org
    headers = ["用户名", "姓名", "工号", "邮箱", "公司编码", "部门编码", "手机", "分机", "启用"]
    content = xlsx(headers, [["zhangsan", "张三", "E001", "", "", "OPS", "13800000000", "", "是"]])
    content.name = "users.xlsx"

    checked = upload(client, "admin:bjgas_platform_user_import", content)
    done = confirm(client, "admin:bjgas_platform_user_process_import", checked)

    assert done.status_code == 302
    user = User.objects.get(username="zhangsan")
    assert (user.full_name, user.department_id, user.company_id) == ("张三", ops.pk, hq.pk)
    assert not user.has_usable_password()


def test_empty_template_has_the_import_columns(client, administrator):
    response = client.get(reverse("admin:bjgas_platform_department_import_template"))

    assert response.status_code == 200
    assert "attachment" in response["Content-Disposition"]
    sheet = load_workbook(io.BytesIO(response.content)).active
    assert [cell.value for cell in sheet[1]] == DEPARTMENT_HEADERS
    assert sheet.max_row == 1


def test_template_link_is_on_the_list_and_import_pages(client, administrator):
    link = reverse("admin:bjgas_platform_company_import_template")

    listing = client.get(reverse("admin:bjgas_platform_company_changelist"))
    importing = client.get(reverse("admin:bjgas_platform_company_import"))

    assert link in listing.content.decode()
    assert link in importing.content.decode()


def test_import_needs_add_and_change_permissions(client):
    auditor = UserFactory(username="imp-aud", roles=[r.AUDITOR], is_staff=True)
    client.force_login(auditor)

    assert client.get(reverse("admin:bjgas_platform_company_import")).status_code == 403
    assert client.get(reverse("admin:bjgas_platform_company_import_template")).status_code == 403
    assert Company.objects.count() == 0
