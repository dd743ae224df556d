"""Outbox delivery against real servers: an HTTP server and an SMTP server on 127.0.0.1.

The HTTP server records every request (path, query, headers, JSON body) and answers from
a script, so that retries, signatures and exact bodies are checked as a robot would see
them; signatures are computed here from the secret, independently of the code under test.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import logging
import socket
import threading
import time
import uuid
from datetime import timedelta
from email import policy
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote_plus, urlsplit

import pytest
from aiosmtpd.controller import Controller
from celery.contrib.testing.worker import start_worker
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import connections, transaction
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone
from kombu import pools as kombu_pools

from apps.bjgas_ops.models import Task
from apps.bjgas_platform.models import (
    Channel,
    InAppNotification,
    OutboxMessage,
    OutboxStatus,
    RobotWebhook,
)
from apps.bjgas_platform.services import notifications as service
from apps.bjgas_platform.services.notifications import deliver_pending, notify
from apps.bjgas_platform.tasks import deliver_outbox
from bjgas.celery import app as celery_app

from .test_notifications import build_org, make_rule

MINUTE = timedelta(minutes=1)


# ------------------------------------------------------------------------------ servers


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on (just now)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RecordingServer:
    """An HTTP server in a thread that records requests and answers from a script."""

    def __init__(self, delay: float = 0.0):
        self.requests: list[dict] = []
        self.script: dict[str, list[tuple[int, object]]] = {}
        self.delay = delay
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length)
                parts = urlsplit(self.path)
                with server.lock:
                    server.requests.append(
                        {
                            "path": parts.path,
                            "query": parts.query,
                            "headers": dict(self.headers),
                            "raw": raw,
                            "json": json.loads(raw or b"null"),
                        }
                    )
                    answers = server.script.get(parts.path) or []
                    status, body = answers.pop(0) if answers else (200, None)
                if server.delay:
                    time.sleep(server.delay)
                if body is None:  # what the robot answers on success
                    feishu = "feishu" in parts.path
                    body = (
                        {"code": 0, "msg": "success"} if feishu else {"errcode": 0, "errmsg": "ok"}
                    )
                payload = json.dumps(body).encode() if not isinstance(body, bytes) else body
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def answer(self, path: str, *answers: tuple[int, object]) -> None:
        """Answer the next requests to `path` with these (status, JSON body) pairs."""
        self.script[path] = list(answers)

    def on(self, path: str) -> list[dict]:
        return [req for req in self.requests if req["path"] == path]


@pytest.fixture
def http_server():
    server = RecordingServer()
    server.thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


class Mailbox:
    """aiosmtpd handler that keeps every envelope it receives."""

    def __init__(self):
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server():
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    settings = {
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": port,
        "EMAIL_HOST_USER": "",
        "EMAIL_HOST_PASSWORD": "",
        "EMAIL_USE_TLS": False,
        "EMAIL_USE_SSL": False,
        "DEFAULT_FROM_EMAIL": "itsm@bjgas.test",
    }
    with override_settings(**settings):
        yield mailbox
    controller.stop()


def drop_pools() -> None:
    """Close the app's broker pools after a conf change; kombu keeps them per URL."""
    celery_app._pool = None
    celery_app.__dict__.pop("amqp", None)
    kombu_pools.reset()  # closed pools left in kombu's registry would be handed out again


@contextlib.contextmanager
def broker_unreachable():
    """Point the Celery app at a port where no broker listens, then put it back."""
    conf = celery_app.conf
    saved = (conf.broker_url, conf.broker_transport_options)

    conf.broker_url = f"redis://127.0.0.1:{free_port()}/0"
    conf.broker_transport_options = {}
    drop_pools()
    try:
        yield
    finally:
        drop_pools()
        conf.broker_url, conf.broker_transport_options = saved


# ------------------------------------------------------------------------------ helpers


@pytest.fixture
def org(db):
    return build_org()


def robot(channel: str, url: str, secret: str = "", code: str | None = None) -> RobotWebhook:
    return RobotWebhook.objects.create(
        code=code or f"{channel}-1", name=channel, channel=channel, url=url, secret=secret
    )


def notify_task(org, key="k1", **kwargs) -> int:
    with transaction.atomic():
        return notify("task.created", record=org.task, actor=org.users["desk"], key=key, **kwargs)


def subject_of(org) -> str:
    return f"{org.task.number} 打印机卡纸"


# -------------------------------------------------------------------------------- in-app


def test_in_app_messages_land_in_the_bell_once(org):
    make_rule(recipient_relations="requester,assignee", channels="in_app")
    notify_task(org)

    assert deliver_pending() == {"sent": 2, "retry": 0, "dead": 0, "lost": 0}
    assert deliver_pending() == {"sent": 0, "retry": 0, "dead": 0, "lost": 0}
    bell = InAppNotification.objects.filter(user=org.users["req"]).get()
    assert bell.title == subject_of(org)
    assert bell.body == "desk: task.created"
    assert bell.content_type == ContentType.objects.get_for_model(Task)
    assert bell.object_id == org.task.pk
    assert bell.url == reverse("admin:bjgas_ops_task_change", args=[org.task.pk])
    assert InAppNotification.objects.count() == 2
    sent = OutboxMessage.objects.filter(status=OutboxStatus.SENT)
    assert sent.count() == 2 and all(m.sent_at and m.attempts == 1 for m in sent)


def test_an_inactive_recipient_is_given_up(org, english):
    make_rule(recipient_relations="requester", channels="in_app")
    notify_task(org)
    org.users["req"].is_active = False
    org.users["req"].save()

    assert deliver_pending()["dead"] == 1
    assert not InAppNotification.objects.exists()
    assert "no longer active" in OutboxMessage.objects.get().last_error


# ---------------------------------------------------------------------------- robots


def test_wecom_gets_markdown_and_errcode_zero_is_success(org, http_server, english):
    wecom = robot(Channel.WECOM, f"{http_server.url}/wecom?key=abc")
    make_rule(robots=[wecom])
    assert notify_task(org) == 1

    with override_settings(SITE_URL="https://itsm.bjgas.test/"):
        assert deliver_pending()["sent"] == 1

    [request] = http_server.on("/wecom")
    assert request["query"] == "key=abc"
    link = "https://itsm.bjgas.test" + reverse("admin:bjgas_ops_task_change", args=[org.task.pk])
    assert request["json"] == {
        "msgtype": "markdown",
        "markdown": {"content": f"**{subject_of(org)}**\ndesk: task.created\n\n[Open]({link})"},
    }
    assert request["headers"]["Content-Type"] == "application/json"


def test_a_robot_error_code_is_retried(org, http_server, english):
    wecom = robot(Channel.WECOM, f"{http_server.url}/wecom")
    make_rule(robots=[wecom])
    notify_task(org)
    http_server.answer("/wecom", (200, {"errcode": 93000, "errmsg": "invalid webhook url"}))

    now = timezone.now()
    assert deliver_pending(now=now)["retry"] == 1
    message = OutboxMessage.objects.get()
    assert "93000" in message.last_error and "invalid webhook url" in message.last_error
    assert deliver_pending(now=now + MINUTE)["sent"] == 1
    assert len(http_server.on("/wecom")) == 2


def test_failure_then_success_waits_the_backoff(org, http_server, english):
    wecom = robot(Channel.WECOM, f"{http_server.url}/wecom")
    make_rule(robots=[wecom])
    notify_task(org)
    http_server.answer("/wecom", (500, {"error": "busy"}), (200, {"errcode": 0}))
    t0 = timezone.now()

    assert deliver_pending(now=t0) == {"sent": 0, "retry": 1, "dead": 0, "lost": 0}
    message = OutboxMessage.objects.get()
    assert message.status == OutboxStatus.PENDING
    assert message.attempts == 1
    assert message.next_attempt_at == t0 + MINUTE
    assert "500" in message.last_error

    assert deliver_pending(now=t0 + timedelta(seconds=59))["sent"] == 0
    assert len(http_server.on("/wecom")) == 1

    assert deliver_pending(now=t0 + MINUTE)["sent"] == 1
    message.refresh_from_db()
    assert (message.status, message.attempts) == (OutboxStatus.SENT, 2)
    assert message.sent_at is not None
    assert len(http_server.on("/wecom")) == 2


def test_backoff_doubles_and_the_message_dies_after_the_last_attempt(org, http_server):
    wecom = robot(Channel.WECOM, f"{http_server.url}/wecom")
    make_rule(robots=[wecom])
    notify_task(org)
    http_server.answer("/wecom", *[(500, {})] * 20)

    now, waits = timezone.now(), []
    for _ in range(7):
        assert deliver_pending(now=now)["retry"] == 1
        message = OutboxMessage.objects.get()
        waits.append((message.next_attempt_at - now) / MINUTE)
        now = message.next_attempt_at
    assert waits == [1, 2, 4, 8, 16, 32, 64]

    assert deliver_pending(now=now)["dead"] == 1
    message = OutboxMessage.objects.get()
    assert (message.status, message.attempts) == (OutboxStatus.DEAD, 8)
    assert deliver_pending(now=now + timedelta(days=1))["sent"] == 0
    assert len(http_server.on("/wecom")) == 8


@override_settings(NOTIFY_MAX_ATTEMPTS=2)
def test_the_number_of_attempts_is_a_setting(org, http_server):
    make_rule(robots=[robot(Channel.WECOM, f"{http_server.url}/wecom")])
    notify_task(org)
    http_server.answer("/wecom", (500, {}), (500, {}))
    now = timezone.now()
    assert deliver_pending(now=now)["retry"] == 1
    assert deliver_pending(now=now + MINUTE)["dead"] == 1


def test_an_unreachable_webhook_is_retried(org, english):
    make_rule(robots=[robot(Channel.WECOM, f"http://127.0.0.1:{free_port()}/wecom")])
    notify_task(org)
    assert deliver_pending()["retry"] == 1
    assert "could not be reached" in OutboxMessage.objects.get().last_error


def test_dingtalk_is_signed_with_the_secret(org, http_server):
    secret = "SEC0123456789abcdef+/="
    ding = robot(Channel.DINGTALK, f"{http_server.url}/dingtalk?access_token=tok", secret)
    make_rule(robots=[ding], body_template="第一行\n第二行")
    notify_task(org)

    before = int(time.time() * 1000)
    assert deliver_pending()["sent"] == 1
    after = int(time.time() * 1000)

    [request] = http_server.on("/dingtalk")
    query = parse_qs(request["query"])
    assert query["access_token"] == ["tok"]
    timestamp = query["timestamp"][0]
    assert before <= int(timestamp) <= after
    to_sign = f"{timestamp}\n{secret}".encode()
    expected = base64.b64encode(hmac.new(secret.encode(), to_sign, hashlib.sha256).digest())
    assert query["sign"] == [expected.decode()]
    assert f"sign={quote_plus(expected.decode())}" in request["query"]  # URL-encoded
    assert request["json"] == {
        "msgtype": "markdown",
        "markdown": {
            "title": subject_of(org),
            "text": f"#### {subject_of(org)}\n\n第一行\n\n第二行",
        },
    }


def test_dingtalk_without_a_secret_is_not_signed(org, http_server):
    ding = robot(Channel.DINGTALK, f"{http_server.url}/dingtalk?access_token=tok")
    make_rule(robots=[ding])
    notify_task(org)
    assert deliver_pending()["sent"] == 1
    assert http_server.on("/dingtalk")[0]["query"] == "access_token=tok"


def test_feishu_is_signed_in_the_body(org, http_server):
    secret = "feishu-secret"
    feishu = robot(Channel.FEISHU, f"{http_server.url}/feishu/hook", secret)
    make_rule(robots=[feishu])
    notify_task(org)

    before = int(time.time())
    assert deliver_pending()["sent"] == 1
    after = int(time.time())

    [request] = http_server.on("/feishu/hook")
    body = request["json"]
    timestamp = body["timestamp"]
    assert isinstance(timestamp, str) and before <= int(timestamp) <= after
    key = f"{timestamp}\n{secret}".encode()
    expected = base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
    assert body == {
        "timestamp": timestamp,
        "sign": expected,
        "msg_type": "text",
        "content": {"text": f"{subject_of(org)}\ndesk: task.created"},
    }


def test_feishu_error_code_is_retried(org, http_server, english):
    make_rule(robots=[robot(Channel.FEISHU, f"{http_server.url}/feishu/hook", "s")])
    notify_task(org)
    http_server.answer("/feishu/hook", (200, {"code": 19021, "msg": "sign match fail"}))
    assert deliver_pending()["retry"] == 1
    assert "19021" in OutboxMessage.objects.get().last_error


def test_push_gateway_gets_the_user_and_a_bearer_token(org, http_server):
    robot(Channel.PUSH, f"{http_server.url}/push", "gateway-token")
    make_rule(recipient_relations="requester", channels="push")
    notify_task(org)

    assert deliver_pending()["sent"] == 1
    [request] = http_server.on("/push")
    assert request["headers"]["Authorization"] == "Bearer gateway-token"
    assert request["json"] == {
        "user": "req",
        "title": subject_of(org),
        "body": "desk: task.created",
        "url": reverse("admin:bjgas_ops_task_change", args=[org.task.pk]),
        "key": f"k1:task-new:push:{org.users['req'].pk}",
    }


def test_push_waits_for_a_gateway_to_be_configured(org, http_server, english):
    make_rule(recipient_relations="requester", channels="push")
    notify_task(org)
    now = timezone.now()
    assert deliver_pending(now=now)["retry"] == 1
    assert "push gateway" in OutboxMessage.objects.get().last_error

    robot(Channel.PUSH, f"{http_server.url}/push")
    assert deliver_pending(now=now + MINUTE)["sent"] == 1
    assert "Authorization" not in http_server.on("/push")[0]["headers"]


def test_push_gateway_errors_are_retried(org, http_server):
    robot(Channel.PUSH, f"{http_server.url}/push")
    make_rule(recipient_relations="requester", channels="push")
    notify_task(org)
    http_server.answer("/push", (503, b"maintenance"))
    now = timezone.now()
    assert deliver_pending(now=now)["retry"] == 1
    assert deliver_pending(now=now + MINUTE)["sent"] == 1


# ------------------------------------------------------------------------------- e-mail


def test_email_arrives_once_through_a_real_smtp_server(org, smtp_server):
    make_rule(recipient_relations="requester", channels="email")
    notify_task(org)

    assert deliver_pending()["sent"] == 1
    assert deliver_pending()["sent"] == 0
    [envelope] = smtp_server.envelopes
    assert envelope.mail_from == "itsm@bjgas.test"
    assert envelope.rcpt_tos == ["req@bjgas.test"]
    mail = BytesParser(policy=policy.default).parsebytes(envelope.original_content)
    assert mail["Subject"] == subject_of(org)
    assert mail["To"] == "req@bjgas.test"
    assert mail.get_content().strip() == "desk: task.created"


def test_email_carries_the_link_when_the_site_address_is_known(org, smtp_server):
    make_rule(recipient_relations="requester", channels="email")
    notify_task(org)
    with override_settings(SITE_URL="https://itsm.bjgas.test"):
        deliver_pending()
    mail = BytesParser(policy=policy.default).parsebytes(smtp_server.envelopes[0].original_content)
    link = "https://itsm.bjgas.test" + reverse("admin:bjgas_ops_task_change", args=[org.task.pk])
    assert mail.get_content().strip().splitlines() == ["desk: task.created", "", link]


def test_a_user_without_email_is_given_up_with_a_clear_error(org, smtp_server, english):
    org.users["req"].email = ""
    org.users["req"].save()
    make_rule(recipient_relations="requester", channels="email")
    notify_task(org)

    assert deliver_pending()["dead"] == 1
    message = OutboxMessage.objects.get()
    assert message.status == OutboxStatus.DEAD and message.attempts == 1
    assert message.last_error == "User req has no e-mail address; add one to their account."
    assert smtp_server.envelopes == []


def test_a_mail_server_outage_delays_but_loses_nothing(org, smtp_server):
    make_rule(recipient_relations="requester", channels="email")
    notify_task(org)
    now = timezone.now()
    with override_settings(EMAIL_PORT=free_port()):
        assert deliver_pending(now=now)["retry"] == 1
    assert smtp_server.envelopes == []
    assert deliver_pending(now=now + MINUTE)["sent"] == 1
    assert len(smtp_server.envelopes) == 1


# ----------------------------------------------------------------- claims and the broker


def test_a_worker_that_died_mid_send_is_replaced_after_its_lease(org, http_server):
    make_rule(robots=[robot(Channel.WECOM, f"{http_server.url}/wecom")])
    notify_task(org)
    t0 = timezone.now()

    dead_worker_claim = service._claim_next(t0)  # claimed, then the worker vanished
    assert dead_worker_claim.attempts == 1
    assert deliver_pending(now=t0 + MINUTE)["sent"] == 0  # still leased

    assert deliver_pending(now=t0 + timedelta(minutes=5))["sent"] == 1
    message = OutboxMessage.objects.get()
    assert (message.status, message.attempts) == (OutboxStatus.SENT, 2)
    # The first worker's late report is refused: the claim is no longer its own.
    assert service._finish(dead_worker_claim, status=OutboxStatus.DEAD) is False
    assert OutboxMessage.objects.get().status == OutboxStatus.SENT
    assert len(http_server.on("/wecom")) == 1


@override_settings(NOTIFY_MAX_ATTEMPTS=1)
def test_an_unfinished_last_attempt_gives_up(org, http_server, english):
    make_rule(robots=[robot(Channel.WECOM, f"{http_server.url}/wecom")])
    notify_task(org)
    t0 = timezone.now()
    service._claim_next(t0)
    assert deliver_pending(now=t0 + timedelta(minutes=5))["sent"] == 0
    message = OutboxMessage.objects.get()
    assert message.status == OutboxStatus.DEAD and "did not finish" in message.last_error
    assert http_server.requests == []


def test_a_broker_outage_at_commit_loses_nothing(org, caplog, django_capture_on_commit_callbacks):
    make_rule(recipient_relations="requester", channels="in_app")
    with (
        broker_unreachable(),
        caplog.at_level(logging.WARNING, logger="apps.bjgas_platform.services.notifications"),
        django_capture_on_commit_callbacks(execute=True) as callbacks,
    ):
        assert notify("task.created", record=org.task, actor=org.users["desk"], key="k1") == 1
    assert len(callbacks) == 1  # the kick ran, failed on the dead broker, and said so
    [warning] = [rec for rec in caplog.records if "Could not queue" in rec.getMessage()]
    assert warning.exc_info is not None
    assert OutboxMessage.objects.get().status == OutboxStatus.PENDING

    deliver_outbox.apply()  # the periodic run, as beat starts it
    assert OutboxMessage.objects.get().status == OutboxStatus.SENT
    assert InAppNotification.objects.filter(user=org.users["req"]).count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_workers_at_once_send_each_message_once():
    server = RecordingServer(delay=0.02)
    server.thread.start()
    try:
        org = build_org()
        wecom = robot(Channel.WECOM, f"{server.url}/wecom")
        make_rule(robots=[wecom], subject_template="第{{ n }}条")
        for n in range(12):
            notify(
                "task.created",
                record=org.task,
                actor=org.users["desk"],
                context={"n": n},
                key=f"k{n}",
            )
        assert OutboxMessage.objects.count() == 12

        now = timezone.now()
        barrier = threading.Barrier(2)
        results, errors = [], []

        def worker():
            try:
                barrier.wait()
                results.append(deliver_pending(now=now))
            except Exception as exc:  # report in the main thread
                errors.append(exc)
            finally:
                connections.close_all()

        threads = [threading.Thread(target=worker) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)

        assert errors == []
        assert sum(r["sent"] for r in results) == 12
        assert sum(r["lost"] for r in results) == 0
        contents = sorted(req["json"]["markdown"]["content"] for req in server.on("/wecom"))
        assert contents == sorted(f"**第{n}条**\ndesk: task.created" for n in range(12))
        assert OutboxMessage.objects.filter(status=OutboxStatus.SENT).count() == 12
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()


@pytest.fixture
def delivery_worker(tmp_path):
    """Run a Celery worker thread that takes `deliver_outbox` from a queue of its own.

    The broker is the configured one: Redis when REDIS_URL is set, else the file-system
    transport, here in a private folder.
    """
    queue = f"test-notify-{uuid.uuid4().hex[:12]}"
    keys = ("task_routes", "broker_transport_options")
    saved = {key: celery_app.conf[key] for key in keys}

    if not settings.REDIS_URL:
        celery_app.conf.broker_transport_options = {
            **(saved["broker_transport_options"] or {}),
            "data_folder_in": str(tmp_path),
            "data_folder_out": str(tmp_path),
            "processed_folder": str(tmp_path),
        }
    celery_app.conf.task_routes = {deliver_outbox.name: {"queue": queue}}
    drop_pools()
    try:
        with start_worker(
            celery_app, pool="solo", perform_ping_check=False, queues=[queue], shutdown_timeout=30
        ):
            yield
    finally:
        celery_app.conf.update(saved)
        drop_pools()


@pytest.mark.django_db(transaction=True)
def test_the_commit_asks_a_real_worker_to_deliver(delivery_worker):
    org = build_org()
    make_rule(recipient_relations="requester", channels="in_app")

    with transaction.atomic():
        notify("task.created", record=org.task, actor=org.users["desk"], key="k1")
        time.sleep(0.5)  # a worker would have had time; nothing is visible before commit
        assert not InAppNotification.objects.exists()

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not InAppNotification.objects.exists():
        time.sleep(0.1)
    bell = InAppNotification.objects.get()
    assert bell.user == org.users["req"]
    assert OutboxMessage.objects.get().status == OutboxStatus.SENT
