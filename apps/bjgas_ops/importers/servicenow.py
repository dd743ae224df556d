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
import io
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from django.utils.translation import gettext as _

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
class RowError:
    row: int  # 1-based line number in the file, the header being line 1
    number: str
    reason: str

    def __str__(self) -> str:
        return _("row %(row)s (%(number)s): %(reason)s") % {
            "row": self.row,
            "number": self.number or "-",
            "reason": self.reason,
        }


@dataclass
class SourceEvent:
    row: int
    state: str
    at: datetime
    mod_count: int
    updated_by: str


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


def open_rows(path: str | Path) -> Iterator[dict[str, str]]:
    """Yield the rows of the CSV, or of the one CSV inside a zip file."""
    path = Path(path)
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if n.lower().endswith(".csv")]
            if len(names) != 1:
                raise ValueError(_("The zip file must hold exactly one CSV file."))
            with archive.open(names[0]) as raw:
                yield from csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8-sig"))
    else:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            yield from csv.DictReader(handle)


def parse_time(text: str, zone: ZoneInfo) -> datetime:
    """Read a day-first time without zone in `zone`; ValueError when it is not one."""
    return datetime.strptime(text.strip(), TIME_FORMAT).replace(tzinfo=zone)


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
                                   % {"columns": ", ".join(missing)}))  # fmt: skip
            continue
        state = row["incident_state"].strip()
        if state not in STATES:
            errors.append(RowError(line, number, _("unknown state '%(state)s'") % {"state": state}))
            continue
        try:
            mod_count = int(row["sys_mod_count"])
            at = parse_time(row["sys_updated_at"], zone)
            parse_time(row["opened_at"], zone)
            if (row.get("resolved_at") or MISSING).strip() != MISSING:
                parse_time(row["resolved_at"], zone)
        except ValueError as exc:
            errors.append(RowError(line, number, _("unreadable value: %(error)s") % {"error": exc}))
            continue
        event = SourceEvent(line, state, at, mod_count, row.get("sys_updated_by", ""))
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
    moved_in = [
        event.at
        for before, event in zip([None, *history[:-1]], history, strict=True)
        if event.state == "Resolved" and (before is None or before.state != "Resolved")
    ]
    return moved_in[-1] if moved_in else None
