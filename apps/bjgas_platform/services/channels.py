"""Senders of outbox messages: the bell, e-mail, group robots and the push gateway.

Each sender either returns (the message went out) or raises `DeliveryError`, which the
outbox retries later, or `PermanentDeliveryError`, which no retry can fix (a user with no
e-mail address). Senders have no other side effect: the outbox records the outcome.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from urllib.parse import quote_plus

import httpx
from django.conf import settings
from django.core.mail import EmailMessage
from django.utils.translation import gettext as _

from ..models import Channel, InAppNotification, OutboxMessage, RobotWebhook

# WeCom refuses markdown content longer than 4096 bytes; keep a margin for the link.
WECOM_MAX_BYTES = 4000


class DeliveryError(Exception):
    """The message did not go out this time; a later attempt may succeed."""


class PermanentDeliveryError(DeliveryError):
    """The message can never go out as it is; retrying is pointless."""


def send_message(message: OutboxMessage) -> None:
    """Send one outbox message through its channel (not the bell: see `create_in_app`)."""
    senders = {
        Channel.EMAIL: send_email,
        Channel.WECOM: send_wecom,
        Channel.DINGTALK: send_dingtalk,
        Channel.FEISHU: send_feishu,
        Channel.PUSH: send_push,
    }
    sender = senders.get(message.channel)
    if sender is None:
        raise PermanentDeliveryError(
            _("Channel '%(channel)s' cannot send this message.") % {"channel": message.channel}
        )
    sender(message)


def create_in_app(message: OutboxMessage) -> InAppNotification:
    """Put the message in the recipient's bell; call inside the outbox's transaction."""
    _check_recipient(message)
    return InAppNotification.objects.create(
        user=message.recipient,
        content_type_id=message.content_type_id,
        object_id=message.object_id,
        title=message.subject,
        body=message.body,
        url=message.url,
    )


def absolute_url(path: str) -> str:
    """Return the link for readers outside the desk: SITE_URL + path when configured."""
    if not path or path.startswith(("http://", "https://")):
        return path
    base = getattr(settings, "SITE_URL", "")
    return f"{base.rstrip('/')}{path}" if base else path


def send_email(message: OutboxMessage) -> None:
    """Send the message by e-mail to the recipient's address."""
    user = _check_recipient(message)
    if not user.email:
        raise PermanentDeliveryError(
            _("User %(user)s has no e-mail address; add one to their account.") % {"user": user}
        )
    link = _public_link(message.url)
    body = f"{message.body}\n\n{link}" if link else message.body
    email = EmailMessage(message.subject, body, settings.DEFAULT_FROM_EMAIL, [user.email])
    try:
        email.send(fail_silently=False)
    except OSError as exc:  # smtplib's errors and socket errors alike
        raise DeliveryError(
            _("The mail server refused or failed: %(error)s") % {"error": exc}
        ) from exc


def send_wecom(message: OutboxMessage) -> None:
    """Post the message to a WeCom group robot as markdown."""
    robot = _robot(message)
    content = f"**{message.subject}**\n{message.body}"
    content = _truncate_bytes(content, WECOM_MAX_BYTES) + _markdown_link(message.url)
    payload = {"msgtype": "markdown", "markdown": {"content": content}}
    _check_errcode(_post(robot.url, payload), robot)


def send_dingtalk(message: OutboxMessage) -> None:
    """Post the message to a DingTalk group robot as markdown, signed when it has a secret."""
    robot = _robot(message)
    url = robot.url
    if robot.secret:
        url = dingtalk_signed_url(url, robot.secret, int(time.time() * 1000))
    # DingTalk's markdown joins single line breaks; a blank line keeps them apart.
    text = f"#### {message.subject}\n\n" + message.body.replace("\n", "\n\n")
    payload = {
        "msgtype": "markdown",
        "markdown": {"title": message.subject, "text": text + _markdown_link(message.url)},
    }
    _check_errcode(_post(url, payload), robot)


def send_feishu(message: OutboxMessage) -> None:
    """Post the message to a Feishu group robot as text, signed when it has a secret."""
    robot = _robot(message)
    link = _public_link(message.url)
    text = "\n".join(part for part in (message.subject, message.body, link) if part)
    payload: dict = {}
    if robot.secret:
        timestamp = int(time.time())
        payload = {"timestamp": str(timestamp), "sign": feishu_sign(robot.secret, timestamp)}
    payload |= {"msg_type": "text", "content": {"text": text}}
    response = _post(robot.url, payload)
    data = _json(response, robot)
    # Current Feishu answers {"code": 0, ...}; older endpoints answered {"StatusCode": 0}.
    code = data.get("code", data.get("StatusCode"))
    if code != 0:
        raise DeliveryError(
            _("Robot %(robot)s answered code %(code)s: %(msg)s")
            % {"robot": robot, "code": code, "msg": data.get("msg", data.get("StatusMessage"))}
        )


def send_push(message: OutboxMessage) -> None:
    """Post the message to the mobile-app push gateway for one user."""
    user = _check_recipient(message)
    gateway = message.robot or push_gateway()
    if gateway is None:
        raise DeliveryError(_("No active push gateway is configured among the robot webhooks."))
    if not gateway.is_active:
        raise PermanentDeliveryError(
            _("The push gateway %(robot)s is switched off.") % {"robot": gateway}
        )
    payload = {
        "user": user.get_username(),
        "title": message.subject,
        "body": message.body,
        "url": absolute_url(message.url),
        "key": message.idempotency_key,
    }
    headers = {"Authorization": f"Bearer {gateway.secret}"} if gateway.secret else {}
    _post(gateway.url, payload, headers=headers)


def push_gateway() -> RobotWebhook | None:
    """Return the active push gateway (the first by code when there are several)."""
    return RobotWebhook.objects.filter(channel=Channel.PUSH, is_active=True).first()


def dingtalk_signed_url(url: str, secret: str, timestamp_ms: int) -> str:
    """Append DingTalk's timestamp and signature: HMAC-SHA256(secret, "ts\\nsecret")."""
    to_sign = f"{timestamp_ms}\n{secret}".encode()
    digest = hmac.new(secret.encode(), to_sign, hashlib.sha256).digest()
    sign = quote_plus(base64.b64encode(digest).decode())
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}timestamp={timestamp_ms}&sign={sign}"


def feishu_sign(secret: str, timestamp: int) -> str:
    """Return Feishu's signature: the key is "ts\\nsecret" and the signed message is empty."""
    # Unlike DingTalk, Feishu uses the string to sign as the HMAC key (open.feishu.cn docs,
    # custom bot guide, "signature verification").
    key = f"{timestamp}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()


def _check_recipient(message: OutboxMessage):
    user = message.recipient
    if user is None:
        raise PermanentDeliveryError(_("The message has no recipient."))
    if not user.is_active:
        raise PermanentDeliveryError(
            _("User %(user)s is no longer active; the message is dropped.") % {"user": user}
        )
    return user


def _robot(message: OutboxMessage) -> RobotWebhook:
    robot = message.robot
    if robot is None:
        raise PermanentDeliveryError(_("The message names no robot webhook."))
    if not robot.is_active:
        raise PermanentDeliveryError(_("Robot %(robot)s is switched off.") % {"robot": robot})
    return robot


def _post(url: str, payload: dict, headers: dict | None = None) -> httpx.Response:
    timeout = getattr(settings, "NOTIFY_HTTP_TIMEOUT", 10)
    try:
        response = httpx.post(url, json=payload, headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        raise DeliveryError(
            _("The webhook could not be reached: %(error)s") % {"error": exc}
        ) from exc
    if not response.is_success:
        raise DeliveryError(
            _("The webhook answered HTTP %(status)s: %(text)s")
            % {"status": response.status_code, "text": response.text[:300]}
        )
    return response


def _json(response: httpx.Response, robot: RobotWebhook) -> dict:
    try:
        data = response.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise DeliveryError(
            _("Robot %(robot)s answered something other than a JSON object: %(text)s")
            % {"robot": robot, "text": response.text[:300]}
        )
    return data


def _check_errcode(response: httpx.Response, robot: RobotWebhook) -> None:
    data = _json(response, robot)
    if data.get("errcode") != 0:
        raise DeliveryError(
            _("Robot %(robot)s answered error %(code)s: %(msg)s")
            % {"robot": robot, "code": data.get("errcode"), "msg": data.get("errmsg")}
        )


def _public_link(path: str) -> str:
    """Return the absolute link, or nothing: a bare path means nothing in a chat or mail."""
    link = absolute_url(path)
    return link if link.startswith(("http://", "https://")) else ""


def _markdown_link(path: str) -> str:
    link = _public_link(path)
    return f"\n\n[{_('Open')}]({link})" if link else ""


def _truncate_bytes(text: str, limit: int) -> str:
    encoded = text.encode()
    if len(encoded) <= limit:
        return text
    return encoded[: limit - 3].decode(errors="ignore") + "..."
