"""Notifications: write outbox messages with the change, deliver them afterwards.

`notify()` runs inside the transaction of the change that caused the event and only
writes `OutboxMessage` rows, so the messages exist exactly when the change does. After
commit it asks a worker to deliver them; if the broker is down at that moment nothing is
lost, because the periodic `deliver_outbox` task picks up every pending row.

Delivery claims one row at a time in a short transaction (a lease: the row's next attempt
is pushed past the longest send, and its attempt counter is raised), sends it with no
transaction or lock open, then records the outcome only if the claim is still its own.
No lock is held while a slow webhook or mail server answers (on SQLite a write lock is the
whole database), two workers never send one row at the same time, and a worker that dies
mid-send leaves a row that is tried again once the lease ends. The bell's rows are
written in the same transaction that marks the outbox row sent, so they appear once.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models import F, Q
from django.template import Context, Engine, Template
from django.urls import NoReverseMatch, reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from ..models import (
    Channel,
    NotificationPreference,
    NotificationRule,
    OutboxMessage,
    OutboxStatus,
    User,
)
from ..models.notifications import PERSONAL_CHANNELS, ROBOT_CHANNELS
from .channels import DeliveryError, PermanentDeliveryError, create_in_app, send_message

logger = logging.getLogger(__name__)

RELATIONS = (
    "requester",
    "assignee",
    "support_group_members",
    "support_group_leader",
    "requester_department_head",
    "vendor_contact",
    "event_recipients",
)
KEY_MAX_LENGTH = OutboxMessage._meta.get_field("idempotency_key").max_length
SUBJECT_MAX_LENGTH = OutboxMessage._meta.get_field("subject").max_length
DEFAULT_MAX_ATTEMPTS = 8
DEFAULT_BACKOFF_SECONDS = 60
DEFAULT_BACKOFF_MAX_SECONDS = 6 * 3600
DEFAULT_LEASE_SECONDS = 300
SCHEDULE_NAME = "bjgas: deliver the notification outbox"
DELIVER_TASK = "apps.bjgas_platform.tasks.deliver_outbox"


# -------------------------------------------------------------------------------- notify


def notify(
    event: str,
    *,
    record=None,
    actor: User | None = None,
    recipients: Iterable[User | int] = (),
    context: dict | None = None,
    key: str,
) -> int:
    """Write the outbox messages the active rules ask for on `event`; return how many.

    Call inside the transaction of the change. `key` names this occurrence of the event
    (e.g. "incident:42:created" or "sla:17:escalation:2:<deadline>"): the same key
    notified twice writes each message once.
    """
    rules = list(_rules_for(event, record))
    if not rules:
        return 0
    recipients = list(recipients)

    template_context = {"record": record, "actor": actor, "event": event, **(context or {})}
    common = {
        "content_type": ContentType.objects.get_for_model(record) if record is not None else None,
        "object_id": record.pk if record is not None else None,
        "url": (context or {}).get("url") or record_url(record),
        "next_attempt_at": timezone.now(),
    }
    rows: list[OutboxMessage] = []
    for rule in rules:
        subject, body = render_message(rule, template_context)
        people = resolve_recipients(rule, record, actor=actor, recipients=recipients)
        rows += _rule_messages(rule, key, people, subject=subject, body=body, **common)

    written = _write(rows)
    if written:
        transaction.on_commit(kick_delivery)
    return written


def _rule_messages(rule: NotificationRule, key: str, people: list[User], **fields):
    """Return one unsaved message per person and allowed channel, and one per group robot."""
    preferences = {p.user_id: p for p in NotificationPreference.objects.filter(user__in=people)}
    robots = [robot for robot in rule.robots.all() if robot.is_active]
    # A push-gateway robot on the rule carries the rule's push messages.
    gateway = next((robot for robot in robots if robot.channel == Channel.PUSH), None)
    rows = []
    for user in people:
        for channel in rule_channels(rule):
            if channel_allowed(preferences.get(user.pk), channel):
                rows.append(
                    OutboxMessage(
                        idempotency_key=idempotency_key(key, rule.code, channel, user.pk),
                        channel=channel,
                        recipient=user,
                        robot=gateway if channel == Channel.PUSH else None,
                        **fields,
                    )
                )
    for robot in robots:
        if robot.channel in ROBOT_CHANNELS:
            rows.append(
                OutboxMessage(
                    idempotency_key=idempotency_key(key, rule.code, robot.channel, robot.code),
                    channel=robot.channel,
                    robot=robot,
                    **fields,
                )
            )
    return rows


def idempotency_key(key: str, rule_code: str, channel: str, target) -> str:
    """Return the outbox key of one message; a hash stands in for keys too long to store."""
    full = f"{key}:{rule_code}:{channel}:{target}"
    if len(full) <= KEY_MAX_LENGTH:
        return full
    return "sha256:" + hashlib.sha256(full.encode()).hexdigest()


def _rules_for(event: str, record):
    rules = NotificationRule.objects.filter(event=event, is_active=True)
    if record is not None:
        content_type = ContentType.objects.get_for_model(record)
        rules = rules.filter(Q(process__isnull=True) | Q(process=content_type))
    else:
        rules = rules.filter(process__isnull=True)
    return rules.prefetch_related("recipient_roles", "robots").order_by("code")


def _write(rows: list[OutboxMessage]) -> int:
    """Insert the rows whose key is new; a key written before (or at once) is skipped."""
    if not rows:
        return 0
    keys = [row.idempotency_key for row in rows]
    existing = set(
        OutboxMessage.objects.filter(idempotency_key__in=keys).values_list(
            "idempotency_key", flat=True
        )
    )
    fresh: dict[str, OutboxMessage] = {}
    for row in rows:
        if row.idempotency_key not in existing:
            fresh.setdefault(row.idempotency_key, row)
    # A second writer racing this one may insert the same key between the read and the
    # insert: the unique key and ignore_conflicts keep one row.
    OutboxMessage.objects.bulk_create(fresh.values(), ignore_conflicts=True)
    return len(fresh)


def kick_delivery() -> None:
    """Ask a worker to deliver the outbox now; if the broker is down, the schedule will."""
    from ..tasks import deliver_outbox

    try:
        deliver_outbox.delay()
    except Exception:
        logger.warning(
            "Could not queue outbox delivery; the periodic run will send the messages.",
            exc_info=True,
        )


def record_url(record) -> str:
    """Return the record's page: its own URL, else its page in the desk, else nothing."""
    if record is None or record.pk is None:
        return ""
    if hasattr(record, "get_absolute_url"):
        return record.get_absolute_url()
    opts = record._meta
    try:
        return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[record.pk])
    except NoReverseMatch:
        return ""


# ------------------------------------------------------------------------------ messages

_engine: Engine | None = None


def render_message(rule: NotificationRule, context: dict) -> tuple[str, str]:
    """Render a rule's subject and text as plain text; a broken template gives a default."""
    global _engine
    if _engine is None:
        _engine = Engine.get_default()
    try:
        with translation.override(settings.LANGUAGE_CODE):
            plain = Context(context, autoescape=False)
            subject = Template(rule.subject_template, engine=_engine).render(plain)
            body = Template(rule.body_template, engine=_engine).render(plain)
    except Exception:
        logger.exception(
            "Notification rule %s has a template that does not render; sent a default text.",
            rule.code,
        )
        subject, body = default_message(context)
    subject = " ".join(subject.split())[:SUBJECT_MAX_LENGTH]
    return subject, body.strip()


def default_message(context: dict) -> tuple[str, str]:
    """Return the plain subject and text used when a rule's template is broken."""
    record, event = context.get("record"), context.get("event", "")
    with translation.override(settings.LANGUAGE_CODE):
        if record is None:
            return _("Notification: %(event)s") % {"event": event}, ""
        subject = _("%(record)s: %(event)s") % {"record": record, "event": event}
        body = _("Event %(event)s on %(record)s.") % {"event": event, "record": record}
    return subject, body


# ---------------------------------------------------------------------------- recipients


def rule_channels(rule: NotificationRule) -> list[str]:
    """Return the rule's personal channels, in order, without unknown names."""
    channels = []
    for name in _split(rule.channels):
        if name in PERSONAL_CHANNELS and name not in channels:
            channels.append(name)
        elif name not in PERSONAL_CHANNELS:
            logger.warning("Notification rule %s names an unknown channel %r.", rule.code, name)
    return channels


def channel_allowed(preference: NotificationPreference | None, channel: str) -> bool:
    """Tell whether a user's switches let `channel` through; no switches means yes."""
    if preference is None:
        return True
    return bool(getattr(preference, channel, True))


def resolve_recipients(
    rule: NotificationRule, record, *, actor: User | None = None, recipients=()
) -> list[User]:
    """Return the active users a rule names for a record, who may see it, never the actor."""
    found: dict[int, User] = {}

    def add(users) -> None:
        for user in users:
            if user is not None and user.is_active:
                found.setdefault(user.pk, user)

    roles = list(rule.recipient_roles.all())
    if roles:
        add(User.objects.filter(is_active=True, groups__in=roles).distinct())
    for relation in _split(rule.recipient_relations):
        if relation == "event_recipients":
            add(_users(recipients))
        elif relation in RELATIONS:
            if record is not None:
                add(_related_people(relation, record))
        else:
            logger.warning(
                "Notification rule %s names an unknown relation %r.", rule.code, relation
            )

    if actor is not None:
        found.pop(actor.pk, None)
    people = sorted(found.values(), key=lambda u: u.pk)
    if record is None:
        return people
    return [user for user in people if can_see(user, record)]


def can_see(user: User, record) -> bool:
    """Tell whether the record lies within the user's scope (`visible_to`)."""
    manager = type(record)._default_manager
    if not hasattr(manager, "visible_to"):
        return user.is_active
    return manager.visible_to(user).filter(pk=record.pk).exists()


def _related_people(relation: str, record) -> list[User | None]:
    if relation in ("requester", "assignee"):
        return [getattr(record, relation, None)]
    group = getattr(record, "support_group", None)
    if relation == "support_group_members":
        return list(group.members.filter(is_active=True)) if group else []
    if relation == "support_group_leader":
        return [group.leader] if group else []
    if relation == "requester_department_head":
        requester = getattr(record, "requester", None)
        department = (requester.department if requester else None) or getattr(
            record, "department", None
        )
        return [department.head] if department else []
    if relation == "vendor_contact":
        vendor = getattr(record, "vendor", None)
        return vendor_contacts(vendor) if vendor else []
    return []


def vendor_contacts(vendor) -> list[User]:
    """Return the vendor's contact among its engineers with a login.

    The vendor's contact is a name and address, not an account: the engineer whose
    account e-mail (or name) matches it is the contact; when none matches, every active
    engineer of the vendor with a login is told, so that an escalation reaches the vendor.
    """
    users = [
        engineer.user
        for engineer in vendor.engineers.filter(is_active=True, user__is_active=True)
        .select_related("user")
        .order_by("pk")
    ]
    email = (vendor.contact_email or "").lower()
    name = vendor.contact_name or ""
    matching = [
        u
        for u in users
        if (email and u.email.lower() == email) or (name and name in (u.full_name, u.username))
    ]
    return matching or users


def _users(values: Iterable[User | int]) -> list[User]:
    ids = [v.pk if isinstance(v, User) else int(v) for v in values if v is not None]
    return list(User.objects.filter(pk__in=ids)) if ids else []


def _split(text: str) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


# ------------------------------------------------------------------------------ delivery


def max_attempts() -> int:
    return int(getattr(settings, "NOTIFY_MAX_ATTEMPTS", DEFAULT_MAX_ATTEMPTS))


def backoff(attempts: int) -> timedelta:
    """Return the wait after the `attempts`-th failure: 1, 2, 4, 8... minutes, capped."""
    base = getattr(settings, "NOTIFY_BACKOFF_SECONDS", DEFAULT_BACKOFF_SECONDS)
    cap = getattr(settings, "NOTIFY_BACKOFF_MAX_SECONDS", DEFAULT_BACKOFF_MAX_SECONDS)
    return timedelta(seconds=min(base * 2 ** max(attempts - 1, 0), cap))


def deliver_pending(now: datetime | None = None, batch: int = 100) -> dict[str, int]:
    """Send up to `batch` due outbox messages, one by one; return the counts by outcome."""
    now = now or timezone.now()
    counts = {"sent": 0, "retry": 0, "dead": 0, "lost": 0}
    for _n in range(batch):
        message = _claim_next(now)
        if message is None:
            break
        counts[_deliver(message, now)] += 1
    return counts


def _claim_next(now: datetime) -> OutboxMessage | None:
    """Take the next due message for this worker: raise its attempt, extend its lease."""
    lease = timedelta(seconds=getattr(settings, "NOTIFY_LEASE_SECONDS", DEFAULT_LEASE_SECONDS))
    while True:
        with transaction.atomic():
            # No join here: with SKIP LOCKED, MariaDB fills a locked joined row with NULLs.
            message = (
                OutboxMessage.objects.select_for_update(skip_locked=True)
                .filter(status=OutboxStatus.PENDING, next_attempt_at__lte=now)
                .order_by("next_attempt_at", "pk")
                .first()
            )
            if message is None:
                return None
            if message.attempts >= max_attempts():
                # Its last attempt was claimed but never finished (the worker stopped).
                _finish(
                    message,
                    status=OutboxStatus.DEAD,
                    last_error=_("Gave up after %(n)s attempts; the last one did not finish.")
                    % {"n": message.attempts},
                )
                continue
            # The compare-and-set keeps the claim single even where the row lock is absent.
            claimed = OutboxMessage.objects.filter(
                pk=message.pk, status=OutboxStatus.PENDING, attempts=message.attempts
            ).update(attempts=F("attempts") + 1, next_attempt_at=now + lease)
            if not claimed:
                continue
        return OutboxMessage.objects.select_related("recipient", "robot").get(pk=message.pk)


def _deliver(message: OutboxMessage, now: datetime) -> str:
    """Send one claimed message and record the outcome; return the outcome's name."""
    try:
        if message.channel == Channel.IN_APP:
            with transaction.atomic():
                if not _finish(message, status=OutboxStatus.SENT, sent_at=timezone.now()):
                    return "lost"
                create_in_app(message)
            return "sent"
        send_message(message)
    except PermanentDeliveryError as exc:
        logger.warning("Outbox message %s cannot be delivered: %s", message.pk, exc)
        return "dead" if _finish(message, status=OutboxStatus.DEAD, last_error=str(exc)) else "lost"
    except Exception as exc:
        if not isinstance(exc, DeliveryError):
            logger.exception("Outbox message %s failed unexpectedly.", message.pk)
        return _failed(message, now, exc)
    return "sent" if _finish(message, status=OutboxStatus.SENT, sent_at=timezone.now()) else "lost"


def _failed(message: OutboxMessage, now: datetime, exc: Exception) -> str:
    error = str(exc) or exc.__class__.__name__
    if message.attempts >= max_attempts():
        logger.warning(
            "Outbox message %s gave up after %s attempts: %s", message.pk, message.attempts, error
        )
        done = _finish(message, status=OutboxStatus.DEAD, last_error=error)
        return "dead" if done else "lost"
    retry_at = now + backoff(message.attempts)
    logger.info("Outbox message %s failed (%s); next attempt at %s.", message.pk, error, retry_at)
    done = _finish(message, last_error=error, next_attempt_at=retry_at)
    return "retry" if done else "lost"


def _finish(message: OutboxMessage, **changes) -> bool:
    """Record an outcome if this worker still holds the claim; tell whether it did."""
    if "last_error" in changes:
        changes["last_error"] = changes["last_error"][:2000]
    updated = OutboxMessage.objects.filter(
        pk=message.pk, status=OutboxStatus.PENDING, attempts=message.attempts
    ).update(**changes)
    if not updated:
        logger.warning("Outbox message %s was taken over by another worker.", message.pk)
    return bool(updated)


def ensure_outbox_schedule() -> None:
    """Schedule `deliver_outbox` every minute in the beat database, once."""
    from .schedules import ensure_every_minute

    ensure_every_minute(SCHEDULE_NAME, DELIVER_TASK)
