"""The neutral shape every incident import produces before the bulk writer stores it.

Each source format (ServiceNow's event log, a spreadsheet of incidents, another tool's
event log mapped column by column) is read into `ImportedIncident` objects with their
ordered `ImportEvent`s, already translated to this product's values (state codes of the
incident workflow, channel values, P1–P4). `importers.writer.write_incidents` then
stores them in bulk, with their state log, history rows, segments and SLA clocks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.utils.translation import gettext as _


@dataclass
class RowError:
    """A bad row: its 1-based line in the file (header = line 1), the key and why."""

    row: int
    number: str
    reason: str
    column: str = ""

    def __str__(self) -> str:
        if not self.row:
            return self.reason  # about the whole file, not one row
        where = _("row %(row)s") % {"row": self.row}
        if self.column:
            where += _(", column %(column)s") % {"column": self.column}
        return f"{where} ({self.number or '-'}): {self.reason}"

    def as_dict(self) -> dict:
        return {
            "row": self.row,
            "number": self.number,
            "column": self.column,
            "reason": self.reason,
        }


@dataclass
class ImportEvent:
    """One update of an incident in the source: its time, state and assignment after it."""

    at: datetime
    state: str  # a state code of the incident workflow (new, in_progress, resolved ...)
    support_group: str | None = None  # the group's name in the source
    assignee: str | None = None  # the engineer's name in the source
    tier: int | None = None  # 1/2/3; None: derived from the order of the groups
    actor: str | None = None  # who made the update, as the source names them
    source_state: str = ""  # the state as the source spells it, kept in the log
    row: int = 0


@dataclass
class ImportedIncident:
    """One incident as a source describes it, in this product's values."""

    key: str  # the number in the source; re-imports update by it
    opened_at: datetime
    title: str = ""
    description: str = ""
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    requester: str | None = None  # names as the source gives them; users are made per name
    opened_by: str | None = None
    resolved_by: str | None = None
    channel: str = ""  # a Channel value; empty: batch import
    urgency: int | None = None  # 1..4
    impact: int | None = None
    priority: str = ""  # P1..P4; empty: from urgency × impact
    severity: str = ""  # A/B/C or empty
    category: str | None = None
    subcategory: str | None = None
    location: str | None = None  # becomes a region / site
    company: str | None = None  # code or name; empty: the import's company
    department: str | None = None  # code or name
    business_system: str | None = None  # code or name
    resolution_code: str = ""
    made_sla: bool | None = None  # the source system's verdict
    reassignment_count: int = 0
    reopen_count: int = 0
    row: int = 0  # the row that gave the final attributes
    events: list[ImportEvent] = field(default_factory=list)


@dataclass
class ImportSummary:
    """What an import did: rows read, incidents created/updated, events written, bad rows."""

    rows: int = 0
    incidents: int = 0
    created: int = 0
    updated: int = 0
    events: int = 0
    errors: list[RowError] = field(default_factory=list)
    seconds: float = 0.0
    refused: bool = False  # True: nothing was written (--strict with bad rows, or bad references)

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


class ImportRefused(Exception):
    """Raised by the writer when rows name things that do not exist; nothing was written."""

    def __init__(self, errors: list[RowError]):
        super().__init__("; ".join(str(e) for e in errors[:5]))
        self.errors = errors
