"""Error pages speak Chinese, whatever the browser asks for, and disclose nothing."""

import pytest

from apps.bjgas_platform import roles as r
from apps.bjgas_platform.tests.factories import TaskFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def engineer(client, settings):
    settings.DEBUG = False
    user = UserFactory(username="li", full_name="李强", is_staff=True, roles=[r.ENGINEER_T1])
    client.force_login(user)
    return user


def test_out_of_scope_record_gives_a_chinese_404(client, engineer):
    task = TaskFactory(title="别人的任务")
    response = client.get(
        f"/desk/bjgas_ops/task/{task.pk}/change/", HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9"
    )
    assert response.status_code == 404
    page = response.content.decode()
    assert "记录不存在或不在您的权限范围内" in page
    assert "别人的任务" not in page
    assert 'lang="zh-hans"' in page


def test_forbidden_page_is_chinese(client, engineer):
    response = client.get("/desk/bjgas_platform/scoperule/", HTTP_ACCEPT_LANGUAGE="en-US")
    assert response.status_code == 403
    assert "您的角色不能打开此页面" in response.content.decode()


def test_english_only_when_chosen(client, engineer):
    client.cookies["django_language"] = "en"
    response = client.get("/desk/no-such-page/")
    assert response.status_code == 404
    assert "outside your scope" in response.content.decode()


def test_full_name_is_family_name_first(engineer):
    assert engineer.get_full_name() == "李强"
