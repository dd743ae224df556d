"""The bell: the list page, read marks by POST with CSRF, the JSON count and the header."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from apps.bjgas_platform import roles as r
from apps.bjgas_platform.models import InAppNotification, NotificationPreference

from .factories import PASSWORD, UserFactory


@pytest.fixture
def alice(db):
    return UserFactory(username="alice", full_name="王丽", is_staff=True, roles=[r.ENGINEER_T1])


@pytest.fixture
def bob(db):
    return UserFactory(username="bob", is_staff=True, roles=[r.ENGINEER_T1])


def bell(user, title, minutes_ago=0, read=False, url=""):
    """Create a notification `minutes_ago` minutes old; read ones were read just now."""
    n = InAppNotification.objects.create(
        user=user, title=title, url=url, read_at=timezone.now() if read else None
    )
    InAppNotification.objects.filter(pk=n.pk).update(
        created_at=timezone.now() - timedelta(minutes=minutes_ago)
    )
    return n


def csrf_client(user) -> tuple[Client, str]:
    """Log the user in on a client that checks CSRF; return it with a valid token."""
    client = Client(enforce_csrf_checks=True)
    assert client.login(username=user.username, password=PASSWORD)
    client.get(reverse("notifications:list"))
    return client, client.cookies["csrftoken"].value


def test_the_list_shows_own_notifications_unread_first(alice, bob):
    bell(alice, "已读-最新", minutes_ago=1, read=True)
    bell(alice, "未读-较早", minutes_ago=30)
    bell(alice, "未读-最新", minutes_ago=2)
    bell(bob, "别人的通知")
    client = Client()
    client.force_login(alice)

    page = client.get(reverse("notifications:list"))

    assert page.status_code == 200
    titles = [n.title for n in page.context["page"]]
    assert titles == ["未读-最新", "未读-较早", "已读-最新"]
    assert page.context["unread_count"] == 2
    assert "别人的通知" not in page.content.decode()


def test_anonymous_visitors_are_sent_to_the_login(db):
    response = Client().get(reverse("notifications:list"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_marking_read_needs_post_and_csrf(alice):
    n = bell(alice, "派单通知", url="/desk/")
    client, token = csrf_client(alice)
    url = reverse("notifications:read", args=[n.pk])

    assert client.get(url).status_code == 405
    assert client.post(url).status_code == 403  # no CSRF token
    n.refresh_from_db()
    assert n.read_at is None

    response = client.post(url, {"csrfmiddlewaretoken": token, "next": n.url})
    assert response.status_code == 302 and response["Location"] == "/desk/"
    n.refresh_from_db()
    assert n.read_at is not None


def test_nobody_marks_another_users_notification(alice, bob):
    n = bell(bob, "别人的通知")
    client, token = csrf_client(alice)
    response = client.post(
        reverse("notifications:read", args=[n.pk]), {"csrfmiddlewaretoken": token}
    )
    assert response.status_code == 404
    n.refresh_from_db()
    assert n.read_at is None


def test_next_must_stay_on_this_site(alice):
    n = bell(alice, "通知")
    client, token = csrf_client(alice)
    response = client.post(
        reverse("notifications:read", args=[n.pk]),
        {"csrfmiddlewaretoken": token, "next": "https://evil.example/steal"},
    )
    assert response["Location"] == reverse("notifications:list")


def test_mark_all_read_touches_only_own_unread(alice, bob):
    earlier = timezone.now() - timedelta(days=1)
    read_before = bell(alice, "早已读过", read=True)
    InAppNotification.objects.filter(pk=read_before.pk).update(read_at=earlier)
    for n in range(3):
        bell(alice, f"未读{n}")
    other = bell(bob, "别人的通知")
    client, token = csrf_client(alice)

    response = client.post(reverse("notifications:read_all"), {"csrfmiddlewaretoken": token})

    assert response.status_code == 302
    assert not InAppNotification.objects.filter(user=alice, read_at__isnull=True).exists()
    read_before.refresh_from_db()
    assert read_before.read_at == earlier
    other.refresh_from_db()
    assert other.read_at is None


def test_unread_json_gives_the_count_and_the_latest_ten(alice, bob):
    for n in range(12):
        bell(alice, f"通知{n:02d}", minutes_ago=n)
    bell(alice, "已读", read=True)
    bell(bob, "别人的通知")
    client = Client()
    client.force_login(alice)

    data = json.loads(client.get(reverse("notifications:unread")).content)

    assert data["count"] == 12
    assert [item["title"] for item in data["items"]] == [f"通知{n:02d}" for n in range(10)]
    first = data["items"][0]
    assert first["read_url"] == reverse("notifications:read", args=[first["id"]])


def test_unread_json_refuses_anonymous_visitors(db):
    response = Client().get(reverse("notifications:unread"))
    assert response.status_code == 401


def test_a_user_saves_their_own_channel_switches(alice):
    client, token = csrf_client(alice)
    response = client.post(
        reverse("notifications:preferences"),
        {"csrfmiddlewaretoken": token, "in_app": "on", "push": "on"},
    )
    assert response.status_code == 302
    preference = NotificationPreference.objects.get(user=alice)
    assert (preference.in_app, preference.email, preference.push) == (True, False, True)

    client.post(reverse("notifications:preferences"), {"csrfmiddlewaretoken": token})
    preference.refresh_from_db()
    assert (preference.in_app, preference.email, preference.push) == (False, False, False)
    assert NotificationPreference.objects.count() == 1


def test_the_page_shows_the_switches_as_saved(alice):
    NotificationPreference.objects.create(user=alice, email=False)
    client = Client()
    client.force_login(alice)
    form = client.get(reverse("notifications:list")).context["form"]
    assert form.initial == {"in_app": True, "email": False, "push": True}


def test_the_desk_header_shows_the_bell_with_the_unread_count(alice):
    for n in range(3):
        bell(alice, f"未读{n}")
    bell(alice, "已读", read=True)
    client = Client()
    client.force_login(alice)

    html = client.get(reverse("admin:index")).content.decode()

    assert 'id="notification-bell"' in html
    assert 'data-unread-count="3"' in html
    assert f'href="{reverse("notifications:list")}"' in html
