"""Read a ServiceNow incident event log (one row per update) into one record per incident.

This is the reading half of the ticket-history import: it turns the file into plain
`SourceIncident` objects with their state history and reports bad rows with their row
numbers; writing incidents, logs, clocks and segments is a separate step.

Rules (the import issue's):
- the row with the highest `sys_mod_count` gives an incident's final attributes; on a tie,
  the later row in the file;
- `opened_at` is when the incident was reported;
- the resolution time is `resolved_at`; where that is missing (`?`), the time of the last
  update that moved the incident into Resolved; where neither exists, it is unresolved;
- times are day-first without a zone (`29/2/2016 01:16`), read in the zone given.
"""

from __future__ import annotations

import csv
import functools
import io
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from django.utils.translation import gettext as _

from .common import TableError, decode_text, last_entry
from .records import ImportedIncident, ImportEvent, ImportRefused, ImportSummary, RowError

MISSING = "?"
TIME_FORMAT = "%d/%m/%Y %H:%M"
STATES = {
    "New",
    "Active",
    "Awaiting User Info",
    "Awaiting Vendor",
    "Awaiting Problem",
    "Awaiting Evidence",
    "Resolved",
    "Closed",
}
REQUIRED_COLUMNS = ("number", "incident_state", "sys_mod_count", "opened_at", "sys_updated_at")


@dataclass
class SourceEvent:
    row: int
    state: str
    at: datetime
    mod_count: int
    updated_by: str
    group: str | None = None
    assignee: str | None = None


@dataclass
class SourceIncident:
    number: str
    attributes: dict[str, str]  # the final row's raw values
    opened_at: datetime
    resolved_at: datetime | None
    events: list[SourceEvent] = field(default_factory=list)

    @property
    def is_resolved(self) -> bool:
        return self.resolved_at is not None

    def value(self, column: str) -> str | None:
        """Return the final value of a column, None where the source says `?`."""
        raw = self.attributes.get(column, MISSING)
        return None if raw in ("", MISSING) else raw


@dataclass
class ReadResult:
    incidents: list[SourceIncident]
    errors: list[RowError]
    rows: int


def _value(raw: str | None) -> str | None:
    raw = (raw or "").strip()
    return None if raw in ("", MISSING) else raw


def open_rows(path: str | Path) -> Iterator[dict[str, str]]:
    """Yield the rows of the CSV, or of the one CSV inside a zip file.

    The text is UTF-8, or GB18030 (GBK) as Chinese Excel saves it; a file without the
    columns the import needs is refused before any row is read.
    """
    path = Path(path)
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if n.lower().endswith(".csv")]
            if len(names) != 1:
                raise ValueError(_("The zip file must hold exactly one CSV file."))
            data = archive.read(names[0])
    else:
        data = path.read_bytes()
    try:
        text = decode_text(data)
    except TableError as exc:
        raise ValueError(str(exc)) from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    headers = [h.strip() for h in (reader.fieldnames or [])]
    if not headers:
        raise ValueError(_("The file is empty: the first row must hold the column headers."))
    absent = [c for c in REQUIRED_COLUMNS if c not in headers]
    if absent:
        raise ValueError(
            _("The file lacks the column(s) %(columns)s of a ServiceNow incident event log.")
            % {"columns": ", ".join(absent)}
        )
    yield from reader


def parse_time(text: str, zone: ZoneInfo) -> datetime:
    """Read a day-first time without zone in `zone`; ValueError when it is not one."""
    return _naive_time(text.strip()).replace(tzinfo=zone)


@functools.lru_cache(maxsize=65536)
def _naive_time(text: str) -> datetime:
    # The log repeats each incident's times on every row: parse each text once.
    return datetime.strptime(text, TIME_FORMAT)


TIME_COLUMNS = ("sys_updated_at", "opened_at", "resolved_at", "closed_at")
COUNT_COLUMNS = ("sys_mod_count", "reassignment_count", "reopen_count")
MAX_COUNT_DIGITS = 9  # the count columns hold up to 2,147,483,647 on every database


def _check_values(row: dict[str, str], zone: ZoneInfo) -> tuple[str, str] | None:
    """Return (column, reason) of the first value of a row that cannot be read."""
    for column in TIME_COLUMNS:
        raw = (row.get(column) or MISSING).strip()
        if raw == MISSING:
            continue
        try:
            parse_time(raw, zone)
        except ValueError:
            return column, _("'%(value)s' is not a time like 29/2/2016 01:16") % {"value": raw}
    for column in COUNT_COLUMNS:
        raw = (row.get(column) or MISSING).strip()
        if raw != MISSING and not raw.isdigit():
            return column, _("'%(value)s' is not a whole number") % {"value": raw}
        if raw != MISSING and len(raw.lstrip("0")) > MAX_COUNT_DIGITS:
            return column, _("'%(value)s' is too large for a count") % {"value": raw}
    return None


def read_event_log(rows: Iterable[dict[str, str]], zone: ZoneInfo) -> ReadResult:
    """Group the update rows by incident and apply the import rules."""
    final: dict[str, tuple[int, int, dict[str, str]]] = {}
    events: dict[str, list[SourceEvent]] = {}
    errors: list[RowError] = []
    count = 0
    for count, row in enumerate(rows, start=1):
        line = count + 1
        number = (row.get("number") or "").strip()
        missing = [c for c in REQUIRED_COLUMNS if row.get(c) in (None, "")]
        if missing:
            errors.append(RowError(line, number, _("empty column(s): %(columns)s")
                                   % {"columns": ", ".join(missing)},
                                   column=", ".join(missing)))  # fmt: skip
            continue
        state = row["incident_state"].strip()
        if state not in STATES:
            errors.append(
                RowError(line, number, _("unknown state '%(state)s'") % {"state": state},
                         column="incident_state")
            )  # fmt: skip
            continue
        problem = _check_values(row, zone)
        if problem:
            errors.append(RowError(line, number, problem[1], column=problem[0]))
            continue
        mod_count = int(row["sys_mod_count"])
        at = parse_time(row["sys_updated_at"], zone)
        event = SourceEvent(
            line,
            state,
            at,
            mod_count,
            _value(row.get("sys_updated_by")) or "",
            _value(row.get("assignment_group")),
            _value(row.get("assigned_to")),
        )
        events.setdefault(number, []).append(event)
        best = final.get(number)
        if best is None or mod_count >= best[0]:
            final[number] = (mod_count, line, row)
    incidents = []
    for number, (_mod, _line, row) in final.items():
        history = sorted(events[number], key=lambda e: (e.at, e.mod_count, e.row))
        incidents.append(
            SourceIncident(
                number=number,
                attributes=row,
                opened_at=parse_time(row["opened_at"], zone),
                resolved_at=_resolution_time(row, history, zone),
                events=history,
            )
        )
    return ReadResult(incidents=incidents, errors=errors, rows=count)


def _resolution_time(row: dict[str, str], history: list[SourceEvent], zone: ZoneInfo):
    raw = (row.get("resolved_at") or MISSING).strip()
    if raw != MISSING:
        return parse_time(raw, zone)  # checked when the row was read
    moved_in = last_entry(history, lambda event: event.state == "Resolved")
    return moved_in.at if moved_in else None


# ------------------------------------------------------------------------ to incidents

PRIORITIES = {"1": "P1", "2": "P2", "3": "P3", "4": "P4"}
CHANNELS = {"phone": "phone", "email": "email", "self service": "portal", "ivr": "phone"}
# ServiceNow's states in this product's incident workflow. An incident with an
# assignment group is dispatched from its first update on; the first move into Active is
# an engineer taking it (accepted), later ones are work resumed after a wait. Waiting for
# the caller's information or evidence pauses like waiting for the requester; waiting for
# a vendor or for a problem to be fixed pauses like waiting for the vendor.
WAITING_STATES = {
    "Awaiting User Info": "waiting_requester",
    "Awaiting Evidence": "waiting_requester",
    "Awaiting Vendor": "waiting_vendor",
    "Awaiting Problem": "waiting_vendor",
}
SOURCE_SYSTEM = "servicenow"


def _level(raw: str | None) -> int | None:
    head = (raw or "").split(" ", 1)[0]
    return int(head) if head in ("1", "2", "3", "4") else None


def to_imported(source: SourceIncident) -> ImportedIncident:
    """Translate one ServiceNow incident into this product's values."""
    events = []
    accepted = False
    for event in source.events:
        if event.state == "New":
            state = "dispatched" if event.group else "new"
        elif event.state == "Active":
            state = "in_progress" if accepted else "accepted"
            accepted = True
        elif event.state == "Resolved":
            state = "resolved"
        elif event.state == "Closed":
            state = "closed"
        else:
            state = WAITING_STATES[event.state]
        events.append(
            ImportEvent(
                at=event.at,
                state=state,
                support_group=event.group,
                assignee=event.assignee,
                actor=event.updated_by,
                source_state=event.state,
                row=event.row,
            )
        )
    value = source.value
    symptom, category, subcategory = value("u_symptom"), value("category"), value("subcategory")
    title = " / ".join(p for p in (category, subcategory, symptom) if p) or source.number
    closed = value("closed_at")
    made_sla = (value("made_sla") or "").lower()
    return ImportedIncident(
        key=source.number,
        opened_at=source.opened_at,
        title=title,
        resolved_at=source.resolved_at,
        closed_at=parse_time(closed, source.opened_at.tzinfo) if closed else None,
        requester=value("caller_id"),
        opened_by=value("opened_by"),
        resolved_by=value("resolved_by"),
        channel=CHANNELS.get((value("contact_type") or "").lower(), "import"),
        urgency=_level(value("urgency")),
        impact=_level(value("impact")),
        priority=PRIORITIES.get((value("priority") or "")[:1], ""),
        category=category,
        subcategory=subcategory,
        location=value("location"),
        resolution_code=value("closed_code") or "",
        made_sla={"true": True, "false": False}.get(made_sla),
        reassignment_count=int(value("reassignment_count") or 0),
        reopen_count=int(value("reopen_count") or 0),
        row=max(e.row for e in source.events),
        events=events,
    )


def import_servicenow(
    path: str | Path,
    *,
    zone: ZoneInfo | None = None,
    strict: bool = False,
    company=None,
    actor=None,
    progress: Callable[[str, int, int], None] | None = None,
) -> ImportSummary:
    """Read a ServiceNow event log and store its incidents; with `strict`, none if a row is bad."""
    from django.utils import timezone

    from .writer import write_incidents

    started = time.monotonic()
    zone = zone or ZoneInfo(timezone.get_current_timezone_name())
    rows = _counting(open_rows(path), progress)
    result = read_event_log(rows, zone)
    summary = ImportSummary(rows=result.rows, incidents=len(result.incidents))
    summary.errors = result.errors
    if strict and result.errors:
        summary.refused = True
        summary.seconds = time.monotonic() - started
        return summary
    try:
        written = write_incidents(
            [to_imported(s) for s in result.incidents],
            source_system=SOURCE_SYSTEM,
            company=company,
            actor=actor,
            progress=progress,
            strict=strict,
        )
    except ImportRefused as refused:
        summary.errors = summary.errors + refused.errors
        summary.refused = True
    else:
        summary.created, summary.updated = written.created, written.updated
        summary.events = written.events
        summary.errors = summary.errors + written.errors
    summary.seconds = time.monotonic() - started
    return summary


def _counting(rows: Iterator[dict[str, str]], progress) -> Iterator[dict[str, str]]:
    """Pass the rows on, telling `progress` every 5,000 rows."""
    count = 0
    for count, row in enumerate(rows, start=1):
        if progress and count % 5000 == 0:
            progress("read", count, 0)
        yield row
    if progress:
        progress("read", count, count)
