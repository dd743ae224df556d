"""Store imported incidents in bulk, with the history a live incident would have.

For every `ImportedIncident` the writer stores the incident row, its state log
(`TransitionLog`, one row per change of state, at the source's times), one history row
per change of state or assignment (django-simple-history, `history_date` = the source's
time), its segments and its SLA clocks. Segments and clocks are computed by the same
functions that compute them for live incidents, from the same rows, so an imported
incident's figures are those it would have had if it had been worked here.

Everything is computed in memory first and written with bulk inserts in one transaction:
an import stores every incident or none. An incident already imported from the same
source (same `source_system` and key) is updated in place: its number, primary key,
comments and attachments stay, its log, history, segments and clocks are replaced.

People, support groups, categories and sites the source names are created once each,
marked as coming from the import; people match existing accounts by user name or full
name first. Imported accounts cannot log in.

Incidents naming a company, department or business system that does not exist, holding a
text longer than its column, or whose number another incident already uses are left out
and reported as row errors (the rest is written); with `strict`, any of them refuses the
whole import (`ImportRefused`) and nothing is written.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

from django.contrib.auth.hashers import make_password
from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from apps.bjgas_platform.models import (
    BusinessCalendar,
    BusinessSystem,
    Company,
    Department,
    Region,
    SlaClock,
    SlaEvent,
    SupportGroup,
    TransitionLog,
    User,
    Workflow,
    WorkflowState,
)
from apps.bjgas_platform.services.business_time import BusinessClock, seed_public_holidays
from apps.bjgas_platform.services.sla import Context as SlaContext
from apps.bjgas_platform.services.sla import derive_history_clocks

from ..models import Incident, IncidentCategory, IncidentSegment, Level, PriorityMatrix
from ..models.incident import REPORT_FIGURES, local_day
from ..services import report_rollup
from ..services.segments import STANDARD_CALENDAR, Assignment, build_segments, handling_figures
from .records import ImportedIncident, ImportRefused, ImportSummary, RowError

Progress = Callable[[str, int, int], None]
BATCH = 2000
MAX_NAME = 50  # a person's full name
UNKNOWN_PERSON = "未知报障人"


def write_incidents(
    incidents: Iterable[ImportedIncident],
    *,
    source_system: str,
    company: Company | None = None,
    actor: User | None = None,
    progress: Progress | None = None,
    now=None,
    strict: bool = False,
) -> ImportSummary:
    """Store the incidents in one transaction; bad incidents are left out and reported in
    `errors` (with `strict`: ImportRefused with all of them, and nothing is written)."""
    started = time.monotonic()
    items = list(incidents)
    summary = ImportSummary(incidents=len(items))
    if not items:
        return summary
    step = progress or (lambda stage, done, total: None)
    _check_escaping()
    with transaction.atomic(), report_rollup.marks_paused(source_system):
        plan = _Plan(source_system, company, actor, now or timezone.now())
        items, errors = plan.check(items)
        if errors and strict:
            raise ImportRefused(errors)
        summary.errors = errors
        summary.incidents = len(items)
        if not items:
            summary.seconds = time.monotonic() - started
            return summary
        plan.resolve_references(items)
        _create_changes_table()
        step("prepare", 0, len(items))
        existing = plan.existing(items)
        with _Sender() as plan.send:
            for start in range(0, len(items), BATCH):
                chunk = items[start : start + BATCH]
                plan.write(chunk, existing, summary)
                step("write", min(start + BATCH, len(items)), len(items))
        plan.write_history()
    summary.seconds = time.monotonic() - started
    return summary


def _check_escaping() -> None:
    """Refuse to write where the MariaDB session reads backslashes literally.

    The statements are escaped with backslashes (see `_mysql_inserts`); settings.py sets
    the session's sql_mode without NO_BACKSLASH_ESCAPES, and this keeps it so.
    """
    if connection.vendor != "mysql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT @@SESSION.sql_mode")
        mode = (cursor.fetchone()[0] or "").upper()
    if "NO_BACKSLASH_ESCAPES" in mode:
        raise ValueError(
            _(
                "The database session has sql_mode NO_BACKSLASH_ESCAPES, with which the "
                "import cannot write text safely; remove it from the database settings."
            )
        )


def field_label(name: str) -> str:
    """The name of an `ImportedIncident` field as the writer's errors show it (column)."""
    model_names = {
        "company": Company,
        "department": Department,
        "business_system": BusinessSystem,
    }
    if name in model_names:
        return str(model_names[name]._meta.verbose_name)
    incident_fields = {
        "key": "number",
        "title": "title",
        "resolution_code": "resolution_code",
        "category": "category",
        "location": "region",
        "support_group": "support_group",
        "requester": "requester",
        "assignee": "assignee",
    }
    if name in incident_fields:
        return str(Incident._meta.get_field(incident_fields[name]).verbose_name)
    return {
        "subcategory": pgettext("import column", "subcategory"),
        "opened_by": pgettext("import column", "opened by"),
        "resolved_by": pgettext("import column", "resolved by"),
    }.get(name, name)


LABELLED = (
    "key", "title", "resolution_code", "category", "subcategory", "location", "support_group",
    "requester", "opened_by", "resolved_by", "assignee", "company", "department",
    "business_system",
)  # fmt: skip


def _limits() -> dict[str, int]:
    """The longest text each field may hold, from the columns it is stored in."""
    category = IncidentCategory._meta.get_field("name").max_length
    return {
        "key": Incident._meta.get_field("number").max_length,
        "title": Incident._meta.get_field("title").max_length,
        "resolution_code": Incident._meta.get_field("resolution_code").max_length,
        "category": category,
        "subcategory": category,
        "location": Region._meta.get_field("name").max_length,
        "support_group": SupportGroup._meta.get_field("name").max_length,
    }


def too_long_reason(length: int, limit: int) -> str:
    return _("the text is %(length)s characters long; at most %(max)s are allowed") % {
        "length": length,
        "max": limit,
    }


def _code(source: str, *names: str, limit: int = 40) -> str:
    """A unique code of a name (below its parents' names) made by an import, at most `limit`
    characters: readable when it fits, else the source and a hash of the names."""
    code = ".".join([source, *(_slug(n) for n in names)])
    if len(code) <= limit:
        return code
    digest = hashlib.sha1(
        "\x1f".join([source, *names]).encode(), usedforsecurity=False
    ).hexdigest()[:20]
    return f"{source[: limit - len(digest) - 1]}.{digest}"


def _slug(text: str) -> str:
    """A code-safe form of a name: ASCII words kept, anything else replaced by a hash."""
    ascii_part = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    if ascii_part and ascii_part.isascii() and len(ascii_part) <= 24 and text.isascii():
        return ascii_part
    return (ascii_part[:12] + "_" if ascii_part else "") + hashlib.sha1(
        text.encode(), usedforsecurity=False
    ).hexdigest()[:10]


@dataclass
class _Log:
    """A state change as the SLA and segment functions read it, before it has a row."""

    workflow_id: int
    action: str
    from_state: str
    to_state: str
    comment: str
    created_at: datetime


LOG_COLUMNS = ("workflow_id", "action", "from_state", "to_state", "comment", "created_at")


@dataclass
class _Built:
    incident: Incident
    logs: list[_Log]
    history: list
    snapshots: list[tuple]
    clocks: list[SlaClock]
    segments: list[IncidentSegment]


class _Plan:
    """The reference data one import resolves once, and the writing of its batches."""

    def __init__(self, source: str, company: Company | None, actor: User | None, now):
        self.source = source
        self.actor = actor
        self.now = now
        self.ct = ContentType.objects.get_for_model(Incident)
        self.workflow = Workflow.objects.get(model=self.ct, is_default=True, is_active=True)
        self.states = {s.code: s for s in WorkflowState.objects.filter(workflow=self.workflow)}
        self.initial = next(s.code for s in self.states.values() if s.is_initial)
        self.company = company or self._default_company()
        self.matrix = {
            (c.urgency, c.impact): c.priority for c in PriorityMatrix.objects.all()
        }  # fmt: skip
        self.history_model = Incident.history.model
        self.history_fields = [
            f.attname
            for f in Incident._meta.concrete_fields
            if f.name not in REPORT_FIGURES and f.attname != "id"
        ]
        self.history_columns = [
            f.attname for f in self.history_model._meta.concrete_fields if f.attname != "history_id"
        ]
        standard = BusinessCalendar.objects.filter(code=STANDARD_CALENDAR).first()
        self.standard_clock = BusinessClock.for_calendar(standard) if standard else None
        self._clocks: dict[int, BusinessClock] = {}
        self.send: _Sender | None = None  # set while the batches are written
        self.sla = SlaContext(now)

    # ------------------------------------------------------------------ references

    def _default_company(self) -> Company:
        roots = list(Company.objects.filter(parent__isnull=True, is_active=True)[:2])
        if len(roots) != 1:
            raise ImportRefused(
                [RowError(0, "", _("Choose the company the imported incidents belong to."))]
            )
        return roots[0]

    def check(self, items: list[ImportedIncident]) -> tuple[list[ImportedIncident], list[RowError]]:
        """Split the incidents into those that can be written and errors about the others:
        unknown companies, departments and systems, texts longer than their column, names
        longer than a person's name, numbers another incident already uses."""
        errors: list[RowError] = []
        bad: set[int] = set()

        def fail(item: ImportedIncident, name: str, reason: str) -> None:
            errors.append(RowError(item.row, item.key, reason, column=field_label(name)))
            bad.add(id(item))

        self.companies = self._lookup(Company, items, "company", fail)
        self.departments = self._lookup(Department, items, "department", fail)
        self.systems = self._lookup(BusinessSystem, items, "business_system", fail)
        limits = _limits()
        for item in items:
            texts = [(n, getattr(item, n)) for n in limits if n != "support_group"]
            texts += [("support_group", e.support_group) for e in item.events]
            reported = set()
            for name, value in texts:
                if value and len(value) > limits[name] and name not in reported:
                    reported.add(name)
                    fail(item, name, too_long_reason(len(value), limits[name]))
        self._check_names(items, fail)
        self._check_numbers(items, fail)
        errors.sort(key=lambda e: e.row)
        return [i for i in items if id(i) not in bad], errors

    def _check_names(self, items: list[ImportedIncident], fail) -> None:
        """Names longer than a person's name, unless they are an existing user name."""

        def names(item):
            yield from (
                ("requester", item.requester),
                ("opened_by", item.opened_by),
                ("resolved_by", item.resolved_by),
            )
            yield from (("assignee", e.assignee) for e in item.events)

        long = {n for i in items for _f, n in names(i) if n and len(n) > MAX_NAME}
        if not long:
            return
        known = set(User.objects.filter(username__in=long).values_list("username", flat=True))
        for item in items:
            reported = set()
            for name, value in names(item):
                if value in long and value not in known and value not in reported:
                    reported.add(value)
                    fail(
                        item,
                        name,
                        _("The name '%(name)s' is longer than %(max)s characters.")
                        % {"name": value, "max": MAX_NAME},
                    )

    def _check_numbers(self, items: list[ImportedIncident], fail) -> None:
        """Incidents whose number another incident (not imported from here) already uses."""
        keys = [i.key for i in items]
        taken: set[str] = set()
        for start in range(0, len(keys), BATCH):
            chunk = keys[start : start + BATCH]
            ours = set(
                Incident.objects.filter(source_system=self.source, source_key__in=chunk)
                .values_list("source_key", flat=True)
            )  # fmt: skip
            taken.update(
                Incident.objects.filter(number__in=[k for k in chunk if k not in ours])
                .values_list("number", flat=True)
            )  # fmt: skip
        for item in items:
            if item.key in taken:
                fail(item, "key", _("The number is already used by another incident."))

    def resolve_references(self, items: list[ImportedIncident]) -> None:
        """Find or create every person, group, category and site the rows name."""
        years = {i.opened_at.year for i in items} | {
            e.at.year for i in items for e in i.events[-1:]
        }
        seed_public_holidays(range(min(years), max(years) + 1))
        if self.standard_clock:
            self.standard_clock = BusinessClock.for_calendar(self.standard_clock.calendar)
        people = set()
        groups = set()
        for item in items:
            people.update((item.requester, item.opened_by, item.resolved_by))
            for event in item.events:
                people.add(event.assignee)
                groups.add(event.support_group)
        people.discard(None)
        groups.discard(None)
        self.users = self._people(people | {UNKNOWN_PERSON})
        self.groups = self._groups(groups)
        self.categories = self._categories(items)
        self.regions = self._regions({i.location for i in items} - {None})

    def _lookup(self, model, items, field: str, fail) -> dict[str, int]:
        names = {getattr(i, field) for i in items} - {None, ""}
        if not names:
            return {}
        found: dict[str, int] = {}
        for pk, code, name in model.objects.filter(
            Q(code__in=names) | Q(name__in=names)
        ).values_list("pk", "code", "name"):
            found.setdefault(code, pk)
            found.setdefault(name, pk)
        for item in items:
            value = getattr(item, field)
            if value and value not in found:
                fail(
                    item,
                    field,
                    _("No %(model)s has the code or name '%(value)s'.")
                    % {"model": model._meta.verbose_name, "value": value},
                )
        return found

    def _people(self, names: set[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        prefix = f"{self.source}."
        usernames = {prefix + _slug(n): n for n in names}
        for pk, username, full_name in User.objects.filter(
            Q(username__in=names) | Q(username__in=usernames) | Q(full_name__in=names)
        ).values_list("pk", "username", "full_name"):
            if username in usernames:
                found[usernames[username]] = pk
            elif username in names:
                found.setdefault(username, pk)
            elif full_name in names:
                found.setdefault(full_name, pk)
        missing = sorted(names - found.keys())  # all fit: check() left out longer names
        password = make_password(None)
        User.objects.bulk_create(
            [
                User(
                    username=prefix + _slug(n),
                    full_name=n,
                    is_active=False,
                    password=password,
                    company_id=self.company.pk,
                )
                for n in missing
            ],
            batch_size=BATCH,
        )
        for pk, username in User.objects.filter(
            username__in=[prefix + _slug(n) for n in missing]
        ).values_list("pk", "username"):
            found[usernames[username]] = pk
        return found

    def _groups(self, names: set[str]) -> dict[str, int]:
        # Groups kept here carry their own tier; those an import made do not (their tier
        # is the order in which an incident reached them).
        self.group_tiers = {}
        found = {}
        for name, pk, code, tier in SupportGroup.objects.filter(name__in=names).values_list(
            "name", "pk", "code", "tier"
        ):
            found[name] = pk
            if not code.startswith(f"{self.source}."):
                self.group_tiers[pk] = tier
        missing = sorted(names - found.keys())
        SupportGroup.objects.bulk_create(
            [SupportGroup(code=_code(self.source, n), name=n) for n in missing]
        )
        found.update(SupportGroup.objects.filter(name__in=missing).values_list("name", "pk"))
        return found

    def _regions(self, names: set[str]) -> dict[str, int]:
        found = dict(Region.objects.filter(name__in=names).values_list("name", "pk"))
        missing = sorted(names - found.keys())
        Region.objects.bulk_create([Region(code=_code(self.source, n), name=n) for n in missing])
        found.update(Region.objects.filter(name__in=missing).values_list("name", "pk"))
        return found

    def _categories(self, items: list[ImportedIncident]) -> dict[tuple, int]:
        """Categories by (name,) and subcategories by (category name, name)."""
        found: dict[tuple, int] = {}
        for pk, name, parent in IncidentCategory.objects.values_list("pk", "name", "parent__name"):
            found.setdefault((parent, name) if parent else (name,), pk)
        tops = sorted({(i.category,) for i in items if i.category} - found.keys())
        IncidentCategory.objects.bulk_create(
            [IncidentCategory(code=_code(self.source, n), name=n) for (n,) in tops]
        )
        for pk, name in IncidentCategory.objects.filter(
            parent__isnull=True, name__in=[n for (n,) in tops]
        ).values_list("pk", "name"):
            found.setdefault((name,), pk)
        subs = sorted(
            {(i.category, i.subcategory) for i in items if i.category and i.subcategory}
            - found.keys()
        )
        IncidentCategory.objects.bulk_create(
            [
                IncidentCategory(
                    code=_code(self.source, parent, name),
                    name=name,
                    parent_id=found[(parent,)],
                )
                for parent, name in subs
            ]
        )
        for pk, name, parent in IncidentCategory.objects.filter(
            parent__isnull=False, name__in=[n for _p, n in subs]
        ).values_list("pk", "name", "parent__name"):
            found.setdefault((parent, name), pk)
        return found

    # ----------------------------------------------------------------------- build

    def build(self, item: ImportedIncident, existing: tuple[int, str] | None) -> _Built:
        """Return the incident of one imported record with its log, history and figures."""
        user = self.users
        events = sorted(item.events, key=lambda e: e.at)
        opened = item.opened_at
        final = events[-1] if events else None
        state = final.state if final else self.initial
        priority = item.priority or self.matrix.get(
            (item.urgency or Level.MEDIUM, item.impact or Level.MEDIUM), "P3"
        )
        incident = Incident(
            workflow_id=self.workflow.pk,
            state=state,
            number=existing[1] if existing else item.key,
            title=item.title or item.key,
            description=item.description,
            requester_id=user[item.requester or UNKNOWN_PERSON],
            company_id=self.companies.get(item.company, self.company.pk),
            department_id=self.departments.get(item.department),
            region_id=self.regions.get(item.location),
            business_system_id=self.systems.get(item.business_system),
            category_id=self._category_id(item),
            channel=item.channel or "import",
            urgency=item.urgency or Level.MEDIUM,
            impact=item.impact or Level.MEDIUM,
            priority=priority,
            severity=item.severity,
            resolution_code=item.resolution_code,
            created_at=opened,
            created_day=local_day(opened),
            resolved_at=item.resolved_at,
            closed_at=item.closed_at,
            reassignment_count=item.reassignment_count,
            reopen_count=item.reopen_count,
            source_system=self.source,
            source_key=item.key,
            source_made_sla=item.made_sla,
            sla_met=item.made_sla,
            imported_at=self.now,
            created_by_id=user.get(item.opened_by) if item.opened_by else None,
        )
        if existing:
            incident.pk = existing[0]
            incident.updated_at = self.now

        logs: list[_Log] = []
        snapshots: list[tuple] = []
        history = []
        current = ""
        tiers: dict[int, int] = {}
        assignment = None
        points = [(opened, self.initial, None, "", "")] + [
            (max(e.at, opened), e.state, e, e.source_state, e.actor or "") for e in events
        ]
        for at, code, event, source_state, who in points:
            if event is not None:
                group = self.groups.get(event.support_group) if event.support_group else None
                tier = event.tier
                if tier is None and group is not None:
                    tier = tiers.setdefault(
                        group, self.group_tiers.get(group) or min(len(tiers) + 1, 3)
                    )
                assignment = Assignment(
                    group, tier, user.get(event.assignee) if event.assignee else None, None,
                    incident.channel,
                )  # fmt: skip
            if code != current:
                logs.append(
                    _Log(
                        self.workflow.pk,
                        (source_state or _("Imported"))[:50],
                        current,
                        code,
                        f"{self.source}: {who}" if who else self.source,
                        at,
                    )
                )
            if assignment is not None and not snapshots and at > opened:
                # Created with the assignment its first update shows: the history starts
                # at the report, like a live incident's.
                snapshots.append((opened, assignment))
                history.append((opened, self.initial, assignment))
            if assignment is not None and (
                not snapshots or (code != current) or snapshots[-1][1] != assignment
            ):
                snapshots.append((at, assignment))
                history.append((at, code, assignment))
            current = code
        if assignment is not None:
            incident.support_group_id = assignment.support_group_id
            incident.tier = assignment.tier
            incident.assignee_id = assignment.assignee_id
        incident.state = current
        incident.state_changed_at = logs[-1].created_at
        incident.version = len(logs)
        if incident.state == "closed" and incident.closed_at is None:
            incident.closed_at = logs[-1].created_at
        return _Built(incident, logs, history, snapshots, [], [])

    def _category_id(self, item: ImportedIncident) -> int | None:
        if item.category and item.subcategory:
            return self.categories.get((item.category, item.subcategory))
        if item.category:
            return self.categories.get((item.category,))
        return None

    def _calendar_clock(self, clocks: list[SlaClock]) -> BusinessClock | None:
        """The business clock of the resolution limit's calendar, else the standard one."""
        chosen = next((c for c in clocks if c.metric == "resolution"), None) or next(
            iter(clocks), None
        )
        if chosen is None:
            return self.standard_clock
        calendar = chosen.policy.calendar
        if calendar.pk not in self._clocks:
            self._clocks[calendar.pk] = BusinessClock.for_calendar(calendar)
        return self._clocks[calendar.pk]

    # ----------------------------------------------------------------------- write

    def existing(self, items: list[ImportedIncident]) -> dict[str, tuple[int, str]]:
        """The key, number and primary key of the incidents imported before, by source key."""
        found = {}
        for start in range(0, len(items), BATCH):
            keys = [i.key for i in items[start : start + BATCH]]
            rows = Incident.objects.filter(source_system=self.source, source_key__in=keys)
            for pk, key, number in rows.values_list("pk", "source_key", "number"):
                found[key] = (pk, number)
        return found

    def write(self, chunk: list[ImportedIncident], existing: dict, summary: ImportSummary) -> None:
        built = [self.build(item, existing.get(item.key)) for item in chunk]
        clock_lists = derive_history_clocks(
            [(b.incident, b.logs) for b in built], self.now, make=_Row, context=self.sla
        )
        for b, clocks in zip(built, clock_lists, strict=True):
            b.clocks = clocks
            bclock = self._calendar_clock(clocks)
            log_points = [(log.created_at, log.to_state) for log in b.logs]
            b.segments = build_segments(
                b.incident, self.states, log_points, b.snapshots, bclock, make=_Row
            )
            wall, business = handling_figures(b.incident, b.segments, bclock)
            b.incident.handling_seconds, b.incident.business_seconds = wall, business

        updates = [b for b in built if b.incident.pk is not None]
        if updates:
            self._clear([b.incident.pk for b in updates])
            self._replace_rows(updates)
        news = [b for b in built if b.incident.pk is None]
        if news:
            self._insert_incidents(news)
        self._write_dependents(built)
        summary.created += len(news)
        summary.updated += len(updates)
        summary.events += sum(len(item.events) for item in chunk)

    def _clear(self, pks: list[int]) -> None:
        """Remove what an earlier import of these incidents derived from their history."""
        TransitionLog.objects.filter(content_type=self.ct, object_id__in=pks).delete()
        # The clocks' events go first, then the clocks in one statement: the ORM would
        # load every clock to cascade to its events.
        SlaEvent.objects.filter(clock__content_type=self.ct, clock__object_id__in=pks).delete()
        marks = ", ".join(["%s"] * len(pks))
        with connection.cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {connection.ops.quote_name(SlaClock._meta.db_table)} "  # noqa: S608
                f"WHERE content_type_id = %s AND object_id IN ({marks})",
                [self.ct.pk, *pks],
            )
        IncidentSegment.objects.filter(incident_id__in=pks).delete()
        self.history_model.objects.filter(id__in=pks, history_change_reason="import").delete()

    def _replace_rows(self, updates: list[_Built]) -> None:
        """Update incidents imported before, all columns but their key and number.

        One multi-row upsert per batch instead of one UPDATE per incident: every row
        exists (found in this transaction), so each insert turns into the update of its
        row, sent in order with the batch's other rows.
        """
        for b in updates:
            b.incident.updated_at = self.now
        columns = [f.attname for f in Incident._meta.concrete_fields]
        rows = [_values(Incident, b.incident, columns) for b in updates]
        kept = [c for c in columns if c not in ("id", "number")]
        self.send(_statements(Incident._meta.db_table, columns, rows, update=kept))

    def _insert_incidents(self, news: list[_Built]) -> None:
        for b in news:
            b.incident.updated_at = self.now
        columns = [f.attname for f in Incident._meta.concrete_fields if f.attname != "id"]
        _insert(
            Incident._meta.db_table, columns, [_values(Incident, b.incident, columns) for b in news]
        )
        keys = dict(
            Incident.objects.filter(
                source_system=self.source, source_key__in=[b.incident.source_key for b in news]
            ).values_list("source_key", "pk")
        )
        for b in news:
            b.incident.pk = keys[b.incident.source_key]

    def _write_dependents(self, built: list[_Built]) -> None:
        """Insert the logs, clocks, segments and history rows of a batch."""
        ct = self.ct.pk
        logs, history, clocks, segments = [], [], [], []
        clock_columns = [
            f.attname
            for f in SlaClock._meta.concrete_fields
            if f.attname not in ("id", "object_id", "updated_at")
        ]
        segment_columns = [
            f.attname
            for f in IncidentSegment._meta.concrete_fields
            if f.attname not in ("id", "incident_id")
        ]
        for b in built:
            pk = b.incident.pk
            logs.extend((ct, pk, *_values(TransitionLog, log, LOG_COLUMNS)) for log in b.logs)
            clocks.extend(
                [pk, _db(self.now), *_values(SlaClock, c, clock_columns)] for c in b.clocks
            )
            segments.extend([pk, *_values(IncidentSegment, s, segment_columns)] for s in b.segments)
            history.extend(self._history_rows(b))
        for table, columns, rows in (
            (TransitionLog._meta.db_table, ["content_type_id", "object_id", *LOG_COLUMNS], logs),
            (SlaClock._meta.db_table, ["object_id", "updated_at", *clock_columns], clocks),
            (IncidentSegment._meta.db_table, ["incident_id", *segment_columns], segments),
            (CHANGES_TABLE, list(CHANGE_COLUMNS), history),
        ):
            self.send(_statements(table, columns, rows))

    def _history_rows(self, b: _Built) -> list[tuple]:
        """The changes of one incident: (id, when, type, state, group, tier, assignee)."""
        return [
            (
                b.incident.pk,
                _db(at),
                "+" if index == 0 else "~",
                code,
                assignment.support_group_id,
                assignment.tier,
                assignment.assignee_id,
            )
            for index, (at, code, assignment) in enumerate(b.history)
        ]

    def write_history(self) -> None:
        """Copy each incident's row into its history rows, one per change (one statement).

        A history row repeats the whole incident; sending ~45 values per row to the
        database would be most of an import's time, so the changes go to a temporary
        table and the database copies the rest from the incident rows.
        """
        quote = connection.ops.quote_name
        changed = dict(zip(CHANGE_COLUMNS[1:], range(1, len(CHANGE_COLUMNS)), strict=True))
        select = []
        params: list = []
        for column in self.history_columns:
            if column in changed:
                select.append(f"c.{quote(column)}")
            elif column == "history_change_reason":
                select.append("%s")
                params.append("import")
            elif column == "history_user_id":
                select.append("%s")
                params.append(self.actor.pk if self.actor else None)
            else:
                select.append(f"i.{quote(column)}")
        sql = (
            f"INSERT INTO {quote(self.history_model._meta.db_table)} "  # noqa: S608 (names are ours)
            f"({', '.join(quote(c) for c in self.history_columns)}) "
            f"SELECT {', '.join(select)} FROM {quote(Incident._meta.db_table)} i "
            f"JOIN {CHANGES_TABLE} c ON c.{quote('id')} = i.{quote('id')}"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            cursor.execute(f"DELETE FROM {CHANGES_TABLE}")  # noqa: S608


# The temporary table of one import's history changes (see _Plan.write_history).
CHANGES_TABLE = "bjgas_import_changes"
CHANGE_COLUMNS = (
    "id", "history_date", "history_type", "state", "support_group_id", "tier", "assignee_id"
)  # fmt: skip


def _create_changes_table() -> None:
    datetime_type = "datetime(6)" if connection.vendor == "mysql" else "datetime"
    with connection.cursor() as cursor:
        if connection.vendor == "mysql":
            cursor.execute(f"DROP TEMPORARY TABLE IF EXISTS {CHANGES_TABLE}")
        else:
            cursor.execute(f"DROP TABLE IF EXISTS temp.{CHANGES_TABLE}")
        cursor.execute(
            f"CREATE TEMPORARY TABLE {CHANGES_TABLE} (id bigint NOT NULL, "
            f"history_date {datetime_type} NOT NULL, history_type varchar(1) NOT NULL, "
            "state varchar(40) NOT NULL, support_group_id bigint NULL, tier smallint NULL, "
            "assignee_id bigint NULL)"
        )


def _db(value, _utc=UTC, _datetime=datetime):
    """A time as text in UTC, the form both SQLite and MariaDB take without conversion."""
    if isinstance(value, _datetime):
        return value.astimezone(_utc).replace(tzinfo=None).isoformat(" ")
    return value.isoformat() if value is not None else None


_TIME_COLUMNS: dict[tuple, list[int]] = {}


def _values(model, obj, columns) -> list:
    """The object's values of `columns`; the model's date and time columns as text."""
    values = [getattr(obj, c) for c in columns]
    key = (model, tuple(columns))
    times = _TIME_COLUMNS.get(key)
    if times is None:
        kinds = {f.attname: f.get_internal_type() for f in model._meta.concrete_fields}
        times = _TIME_COLUMNS[key] = [
            i for i, c in enumerate(columns) if kinds.get(c) in ("DateTimeField", "DateField")
        ]
    for i in times:
        values[i] = _db(values[i])
    return values


class _Row:
    """A row about to be inserted: plain attributes, no model machinery."""

    def __init__(self, **values):
        self.__dict__.update(values)


def _insert(table: str, columns: list[str], rows: list) -> None:
    """Insert rows (value lists in `columns` order) now, on this thread's connection.

    The ORM's bulk_create prepares every value of every row through its field classes,
    which is most of an import's time; the writer already holds database-ready values.
    """
    with connection.cursor() as cursor:
        for sql, params in _statements(table, columns, rows):
            if params is None:
                cursor.execute(sql)
            else:
                cursor.executemany(sql, params)


Statement = tuple[str | bytes, list | None]


def _statements(
    table: str, columns: list[str], rows: list, update: list[str] | None = None
) -> list[Statement]:
    """The statements that insert `rows`: (SQL, None) whole, or (SQL, rows) for executemany.

    With `update`, a row whose primary key exists has those columns updated instead.
    SQL with parameters uses the DB-API's own marker (the raw connection's, since a
    `_Sender` runs them past Django's cursor).
    """
    if not rows:
        return []
    quote = connection.ops.quote_name
    head = "INSERT INTO {} ({})".format(quote(table), ", ".join(quote(c) for c in columns))
    if connection.vendor == "mysql":
        tail = b""
        if update:
            tail = " ON DUPLICATE KEY UPDATE {}".format(
                ", ".join(f"{quote(c)} = VALUES({quote(c)})" for c in update)
            ).encode()
        return [(sql + tail, None) for sql in _mysql_inserts(head, rows)]
    sql = "{} VALUES ({})".format(head, ", ".join(["?"] * len(columns)))
    if update:
        sql += " ON CONFLICT (id) DO UPDATE SET {}".format(
            ", ".join(f"{quote(c)} = excluded.{quote(c)}" for c in update)
        )
    return [(sql, rows[start : start + BATCH]) for start in range(0, len(rows), BATCH)]


class _Sender:
    """Runs insert statements on the import's connection in a thread of its own.

    The database driver lets go of the interpreter while the server works, so the next
    batch is computed meanwhile: on MariaDB that hides most of the time the server spends
    on the log, clock, segment and history rows. One connection serves both threads, never
    at once: every query this thread sends through Django waits first for what was sent
    (an execute wrapper), and leaving the block waits too and raises what failed, inside
    the import's transaction, which then rolls back whole.
    """

    def __init__(self):
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bjgas-import")
        self._pending = []
        self._raw = None
        self._wrapper = None

    def __enter__(self) -> _Sender:
        connection.ensure_connection()
        self._raw = connection.connection
        self._wrapper = connection.execute_wrapper(self._wait_first)
        self._wrapper.__enter__()
        return self

    def __call__(self, statements: list[Statement]) -> None:
        if statements:
            self._pending.append(self._pool.submit(self._run, statements))

    def _run(self, statements: list[Statement]) -> None:
        cursor = self._raw.cursor()
        try:
            for sql, params in statements:
                if params is None:
                    cursor.execute(sql)
                else:
                    cursor.executemany(sql, params)
        finally:
            cursor.close()

    def wait(self) -> None:
        """Block until everything sent is done; raise the first failure."""
        pending, self._pending = self._pending, []
        failure = None
        for future in pending:
            error = future.exception()
            failure = failure or error
        if failure is not None:
            with connection.wrap_database_errors:  # the driver's error as Django's
                raise failure

    def _wait_first(self, execute, sql, params, many, context):
        self.wait()
        return execute(sql, params, many, context)

    def __exit__(self, *exc) -> None:
        try:
            self.wait()
        finally:
            self._wrapper.__exit__(*exc)
            self._pool.shutdown(wait=True)


PACKET = 4 * 1024 * 1024  # bytes per statement, well under MariaDB's max_allowed_packet


def _mysql_inserts(head: str, rows: list) -> list[bytes]:
    """Multi-row INSERTs with the values written by the driver's C escaping.

    MySQLdb's executemany formats every value through Python-level dispatch (a third of a
    MariaDB import's time); here the common types take a short path, the rest the
    driver's own conversions, and the statements stay under PACKET bytes. The escaping is
    the driver module's, not the connection's: a `_Sender` may be using the connection.
    The connection speaks utf8mb4 (settings.py), where escaping needs no character set:
    no byte of a multi-byte UTF-8 character is a quote or a backslash.
    """
    from MySQLdb import _mysql
    from MySQLdb.converters import conversions

    string_literal = _mysql.string_literal

    def literal(value) -> bytes:
        out = _mysql.escape(value, conversions)  # str for numbers such as Decimal
        return out.encode() if isinstance(out, str) else out

    def text(value) -> bytes:
        kind = type(value)
        if value is None:
            return b"NULL"
        if kind is str:
            return string_literal(value.encode())
        if kind is int or kind is float:
            return repr(value).encode()
        if kind is bool:
            return b"1" if value else b"0"
        return literal(value)

    start = head.encode() + b" VALUES "
    statements: list[bytes] = []
    parts: list[bytes] = []
    size = 0
    for row in rows:
        part = b"(" + b",".join([text(value) for value in row]) + b")"
        if parts and size + len(part) > PACKET:
            statements.append(start + b",".join(parts))
            parts, size = [], 0
        parts.append(part)
        size += len(part) + 1
    if parts:
        statements.append(start + b",".join(parts))
    return statements
