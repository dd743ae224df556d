"""Desk pages of notifications: rule refusals, write-only robot secrets, the outbox for
administrators only and its "retry now" action."""

from __future__ import annotations

from datetime import timedelta
from html import escape

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.bjgas_platform import roles as r
from apps.bjgas_platform.models import (
    Channel,
    InAppNotification,
    NotificationPreference,
    NotificationRule,
    OutboxMessage,
    OutboxStatus,
    RobotWebhook,
)

from .factories import UserFactory

pytestmark = pytest.mark.django_db

SECRET = "SEC-0123456789abcdef-very-secret"
TOKEN_URL = "https://oapi.dingtalk.com/robot/send?access_token=tok-abcdef123456"


def login(client, username: str, role: str):
    user = UserFactory(username=username, roles=[role], is_staff=True)
    client.force_login(user)
    client.cookies["django_language"] = "en"  # the desk ignores Accept-Language
    return user


@pytest.fixture
def administrator(client):
    return login(client, "note-admin", r.ADMINISTRATOR)


@pytest.fixture
def robot():
    return RobotWebhook.objects.create(
        code="ding-ops", name="运维群", channel=Channel.DINGTALK, url=TOKEN_URL, secret=SECRET
    )


# ---------------------------------------------------------------------------- rules


def rule_data(**fields) -> dict:
    return {
        "code": "rule-new",
        "name": "新规则",
        "event": "incident.created",
        "process": "",
        "is_active": "on",
        "recipient_relations": "requester",
        "channels": "in_app,email",
        "subject_template": "{{ record }} 已创建",
        "body_template": "事件 {{ record.number }} 已创建。",
        **fields,
    }


def form_errors(response) -> list[str]:
    form = response.context["adminform"].form
    return [str(e) for errors in form.errors.values() for e in errors]


def test_a_sound_rule_is_saved_with_its_names_tidied(client, administrator, robot):
    data = rule_data(
        recipient_relations=" assignee, requester_department_head ,assignee",
        channels="email， in_app",
        robots=[str(robot.pk)],
        recipient_roles=[str(r.role_group(r.TEAM_LEAD).pk)],
    )

    response = client.post(reverse("admin:bjgas_platform_notificationrule_add"), data)

    assert response.status_code == 302, form_errors(response)
    rule = NotificationRule.objects.get(code="rule-new")
    assert rule.recipient_relations == "assignee,requester_department_head"
    assert rule.channels == "email,in_app"
    assert list(rule.robots.all()) == [robot]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        pytest.param(
            {"recipient_relations": "requester,boss,owner"},
            [
                "people: “boss”、“owner” are not known names; use some of: requester, "
                "assignee, support_group_members, support_group_leader, "
                "requester_department_head, vendor_contact, event_recipients."
            ],
            id="unknown-relations",
        ),
        pytest.param(
            {"channels": "in_app,sms"},
            ["personal channels: “sms” is not a known name; use some of: in_app, email, push."],
            id="unknown-channel",
        ),
        pytest.param(
            {"channels": "email,wecom"},
            [
                "personal channels: wecom is a group robot, not a personal channel; choose the "
                "robot under “group robots”."
            ],
            id="robot-as-channel",
        ),
        pytest.param(
            {"subject_template": "{% if record %}没有结束"},
            [
                "subject: the template does not compile: Unclosed tag on line 1: 'if'. "
                "Looking for one of: elif, else, endif."
            ],
            id="broken-template",
        ),
        pytest.param(
            {"recipient_relations": ""},
            ["The rule names nobody: choose roles or people, or a group robot."],
            id="names-nobody",
        ),
    ],
)
def test_an_unsound_rule_is_refused(client, administrator, fields, expected):
    response = client.post(
        reverse("admin:bjgas_platform_notificationrule_add"), rule_data(**fields)
    )

    assert response.status_code == 200
    assert form_errors(response) == expected
    for message in expected:
        assert escape(message) in response.content.decode()
    assert not NotificationRule.objects.filter(code="rule-new").exists()


# --------------------------------------------------------------------------- robots


def robot_data(robot: RobotWebhook, **fields) -> dict:
    return {
        "code": robot.code,
        "name": robot.name,
        "channel": robot.channel,
        "url": robot.url,
        "secret": "",
        "is_active": "on",
        **fields,
    }


def test_the_secret_is_never_shown(client, administrator, robot):
    listing = client.get(reverse("admin:bjgas_platform_robotwebhook_changelist"))
    page = client.get(reverse("admin:bjgas_platform_robotwebhook_change", args=[robot.pk]))

    for response in (listing, page):
        assert response.status_code == 200
        assert SECRET not in response.content.decode()
    assert "https://oapi.dingtalk.com/…" in listing.content.decode()
    assert "tok-abcdef123456" not in listing.content.decode()
    assert "A secret is stored and never shown." in page.content.decode()


def test_an_empty_secret_keeps_the_stored_one(client, administrator, robot):
    url = reverse("admin:bjgas_platform_robotwebhook_change", args=[robot.pk])

    response = client.post(url, robot_data(robot, name="运维群（改名）"))

    assert response.status_code == 302
    robot.refresh_from_db()
    assert (robot.name, robot.secret) == ("运维群（改名）", SECRET)


def test_a_new_secret_replaces_and_a_tick_removes_it(client, administrator, robot):
    url = reverse("admin:bjgas_platform_robotwebhook_change", args=[robot.pk])

    assert client.post(url, robot_data(robot, secret="NEW-SECRET")).status_code == 302
    robot.refresh_from_db()
    assert robot.secret == "NEW-SECRET"

    assert client.post(url, robot_data(robot, clear_secret="on")).status_code == 302
    robot.refresh_from_db()
    assert robot.secret == ""


def test_viewers_see_neither_the_secret_nor_the_token(client, robot):
    login(client, "note-auditor", r.AUDITOR)  # may view robots, not change them

    page = client.get(reverse("admin:bjgas_platform_robotwebhook_change", args=[robot.pk]))
    history = client.get(reverse("admin:bjgas_platform_robotwebhook_history", args=[robot.pk]))

    assert page.status_code == 200
    content = page.content.decode()
    assert SECRET not in content and "tok-abcdef123456" not in content
    assert "https://oapi.dingtalk.com/…" in content
    assert history.status_code == 403


# --------------------------------------------------------------------------- outbox


def message(key: str, status: str, **fields) -> OutboxMessage:
    defaults = {
        "channel": Channel.EMAIL,
        "subject": f"主题 {key}",
        "body": "正文",
        "next_attempt_at": timezone.now() + timedelta(hours=1),
    }
    return OutboxMessage.objects.create(idempotency_key=key, status=status, **defaults | fields)


@pytest.mark.parametrize(
    "url_name",
    [
        "admin:bjgas_platform_outboxmessage_changelist",
        "admin:bjgas_platform_inappnotification_changelist",
        "admin:bjgas_platform_notificationpreference_changelist",
    ],
)
@pytest.mark.parametrize("role", [r.IT_MANAGER, r.AUDITOR, r.ENGINEER_T1, r.REQUESTER])
def test_outbox_bells_and_preferences_are_for_administrators_only(client, role, url_name):
    login(client, f"note-{role}", role)

    response = client.get(reverse(url_name))

    assert response.status_code == 403
    index = client.get(reverse("admin:index"))
    models = {m["object_name"] for app in index.context["app_list"] for m in app["models"]}
    assert not models & {"OutboxMessage", "InAppNotification", "NotificationPreference"}


def test_administrators_see_the_outbox_read_only(client, administrator):
    row = message("k-1", OutboxStatus.PENDING, last_error="SMTP 421 try later")

    listing = client.get(reverse("admin:bjgas_platform_outboxmessage_changelist"))
    detail = client.get(reverse("admin:bjgas_platform_outboxmessage_change", args=[row.pk]))
    edit = client.post(
        reverse("admin:bjgas_platform_outboxmessage_change", args=[row.pk]), {"subject": "x"}
    )

    assert listing.status_code == detail.status_code == 200
    assert "主题 k-1" in listing.content.decode()
    assert "SMTP 421 try later" in listing.content.decode()
    assert edit.status_code == 403
    assert client.get(reverse("admin:bjgas_platform_outboxmessage_add")).status_code == 403
    row.refresh_from_db()
    assert row.subject == "主题 k-1"


def test_outbox_filters_by_status_and_channel(client, administrator):
    message("k-1", OutboxStatus.DEAD)
    message("k-2", OutboxStatus.SENT)
    message("k-3", OutboxStatus.DEAD, channel=Channel.IN_APP)

    response = client.get(
        reverse("admin:bjgas_platform_outboxmessage_changelist"),
        {"status": OutboxStatus.DEAD, "channel": Channel.EMAIL},
    )

    assert [m.idempotency_key for m in response.context["cl"].result_list] == ["k-1"]


def test_retry_now_makes_pending_and_given_up_messages_due(
    client, administrator, django_capture_on_commit_callbacks
):
    later = timezone.now() + timedelta(hours=3)
    waiting = message("k-wait", OutboxStatus.PENDING, attempts=2, next_attempt_at=later)
    dead = message("k-dead", OutboxStatus.DEAD, attempts=8, last_error="HTTP 500")
    sent_at = timezone.now() - timedelta(days=1)
    sent = message("k-sent", OutboxStatus.SENT, attempts=1, sent_at=sent_at)
    before = timezone.now()

    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(
            reverse("admin:bjgas_platform_outboxmessage_changelist"),
            {
                "action": "retry_now",
                "_selected_action": [str(waiting.pk), str(dead.pk), str(sent.pk)],
            },
            follow=True,
        )

    after = timezone.now()
    assert response.status_code == 200
    for row in (waiting, dead, sent):
        row.refresh_from_db()
    assert waiting.status == OutboxStatus.PENDING and waiting.attempts == 2
    assert before <= waiting.next_attempt_at <= after
    assert dead.status == OutboxStatus.PENDING and dead.attempts == 0
    assert before <= dead.next_attempt_at <= after
    assert dead.last_error == "HTTP 500"
    assert (sent.status, sent.attempts, sent.sent_at) == (OutboxStatus.SENT, 1, sent_at)
    assert len(callbacks) == 1  # a worker is asked to deliver now
    content = response.content.decode()
    assert "2 messages will be sent again now." in content
    assert "1 message was sent already and was left alone." in content


def test_retry_now_needs_an_administrator(client):
    row = message("k-dead", OutboxStatus.DEAD, attempts=8)
    login(client, "note-mgr", r.IT_MANAGER)

    response = client.post(
        reverse("admin:bjgas_platform_outboxmessage_changelist"),
        {"action": "retry_now", "_selected_action": [str(row.pk)]},
    )

    assert response.status_code == 403
    row.refresh_from_db()
    assert row.status == OutboxStatus.DEAD


def test_superusers_see_bells_and_preferences(client):
    root = UserFactory(username="note-root", is_staff=True, is_superuser=True)
    other = UserFactory(username="note-other")
    InAppNotification.objects.create(user=other, title="您有新的事件")
    NotificationPreference.objects.create(user=other, email=False)
    client.force_login(root)

    bells = client.get(reverse("admin:bjgas_platform_inappnotification_changelist"))
    preferences = client.get(reverse("admin:bjgas_platform_notificationpreference_changelist"))

    assert "您有新的事件" in bells.content.decode()
    assert [p.user for p in preferences.context["cl"].result_list] == [other]
