"""Import incidents kept in a spreadsheet, or another tool's event log, from Excel or CSV.

Two layouts:

- ROWS, one row per incident (the IT center's own ledger). Without a column mapping the
  file uses the headers of the downloadable template (`template_workbook`): 编号, 标题,
  报障时间 ... Each row becomes an incident reported at 报障时间 with its group and
  engineer, resolved at 解决时间 and closed at 关闭时间 (an optional 状态 column gives
  a final state the times do not tell, e.g. 等待服务商).
- EVENT_LOG, one row per update of a case (another tool's history). A mapping names the
  columns holding the case, the time, the state, the group and the tier (and optionally
  the engineer, who acted, the title ...) and translates the tool's values (state 'Solved'
  → resolved). Rows are grouped per case; the case's last non-empty value of each
  attribute is kept, it is reported at its first update (or a mapped report time),
  resolved at its last move into a resolved or closed state if it ends there, and closed
  at its last move into a closed state.

Every incident gets the channel "batch import". Bad rows are reported with their row,
column and reason; `strict` imports nothing when any row is bad, otherwise the good rows
are imported. The bulk writer stores the incidents; re-importing a key updates.
"""

from __future__ import annotations

import io
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from itertools import pairwise
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext

from apps.bjgas_platform.choices import SupportTier
from apps.bjgas_platform.models import SupportGroup

from ..choices import Priority
from ..models import Channel, ImportFormat, ImportMapping, Incident
from ..models.incident import Level, Severity
from .common import (
    ProgressCallback,
    Table,
    TableError,
    Throttle,
    last_entry,
    open_table,
    resolve_zone,
)
from .common import parse_time as read_time
from .records import ImportedIncident, ImportEvent, ImportRefused, ImportSummary, RowError

DEFAULT_SOURCE = "spreadsheet"
MAPPING_SOURCE = "sheet"
READ_STAGE = "read"

# Kinds of value a column holds; each has its parser below.
KEY, TEXT, TIME, STATE, LEVEL, PRIORITY, SEVERITY, TIER, BOOL, COUNT = (
    "key", "text", "time", "state", "level", "priority", "severity", "tier", "bool", "count",
)  # fmt: skip


@dataclass(frozen=True)
class Field:
    """A field of ours that a column can fill: its template header, kind and meaning."""

    name: str
    header: str  # the template's header; the file format, so not translated
    kind: str
    required: bool = False
    help: Any = ""


def _f(name, header, kind, help, required=False) -> Field:
    return Field(name, header, kind, required, help)


# One row per incident: the template's columns, in order.
FIELDS: list[Field] = [
    _f(
        "key",
        "编号",
        KEY,
        gettext_lazy("The incident's number in your records; importing a number again updates it."),
        True,
    ),
    _f("title", "标题", TEXT, gettext_lazy("A short summary of the problem."), True),
    _f("description", "描述", TEXT, gettext_lazy("What happened, in detail.")),
    _f("opened_at", "报障时间", TIME, gettext_lazy("When the incident was reported."), True),
    _f(
        "resolved_at",
        "解决时间",
        TIME,
        gettext_lazy("When the service was restored; empty: the close time, else unresolved."),
    ),
    _f(
        "closed_at",
        "关闭时间",
        TIME,
        gettext_lazy("When the incident was closed; empty: not closed."),
    ),
    _f(
        "state",
        "状态",
        STATE,
        gettext_lazy("Optional final state; empty: from the times (closed, resolved, else new)."),
    ),
    _f(
        "requester",
        "报障人",
        TEXT,
        gettext_lazy("Who reported it; a user is made per name that does not exist yet."),
    ),
    _f(
        "company",
        "报障公司",
        TEXT,
        gettext_lazy(
            "Code or name of an existing company; empty: the company chosen for the import."
        ),
    ),
    _f("department", "报障部门", TEXT, gettext_lazy("Code or name of an existing department.")),
    _f(
        "business_system",
        "业务系统",
        TEXT,
        gettext_lazy("Code or name of an existing business system."),
    ),
    _f("location", "区域", TEXT, gettext_lazy("Region or site.")),
    _f("category", "分类", TEXT, gettext_lazy("Incident category; made if it does not exist.")),
    _f("subcategory", "子分类", TEXT, gettext_lazy("Subcategory below the category.")),
    _f("urgency", "紧急度", LEVEL, gettext_lazy("Urgency.")),
    _f("impact", "影响度", LEVEL, gettext_lazy("Impact.")),
    _f(
        "priority",
        "优先级",
        PRIORITY,
        gettext_lazy("Empty: from urgency × impact by the priority matrix."),
    ),
    _f("severity", "严重度", SEVERITY, gettext_lazy("The service agreement's severity.")),
    _f(
        "support_group",
        "支持组",
        TEXT,
        gettext_lazy("The support group that handled it; made if it does not exist."),
    ),
    _f("tier", "支持层级", TIER, gettext_lazy("Empty: the support group's tier.")),
    _f("assignee", "处理人", TEXT, gettext_lazy("The engineer who handled it.")),
    _f("resolved_by", "解决人", TEXT, gettext_lazy("Who resolved it; empty: the engineer.")),
    _f("resolution_code", "解决代码", TEXT, gettext_lazy("How it was resolved, as a short code.")),
    _f(
        "made_sla",
        "服务级别达标",
        BOOL,
        gettext_lazy("Whether the source judged the service level met; empty: not known."),
    ),
    _f("reassignment_count", "转派次数", COUNT, gettext_lazy("How often it was reassigned.")),
    _f("reopen_count", "重开次数", COUNT, gettext_lazy("How often it was reopened.")),
]

# One row per update of a case: what a mapping may name.
EVENT_FIELDS: list[Field] = [
    _f("key", "编号", KEY, gettext_lazy("The case: its rows become one incident."), True),
    _f("time", "时间", TIME, gettext_lazy("When the update happened."), True),
    _f("state", "状态", STATE, gettext_lazy("The state after the update."), True),
    _f("support_group", "支持组", TEXT, gettext_lazy("The support group after the update; empty: unchanged.")),  # noqa: E501
    _f("tier", "支持层级", TIER, gettext_lazy("The tier after the update; empty: unchanged.")),
    _f("assignee", "处理人", TEXT, gettext_lazy("The engineer after the update; empty: unchanged.")),  # noqa: E501
    _f("actor", "操作人", TEXT, gettext_lazy("Who made the update.")),
    _f("title", "标题", TEXT, gettext_lazy("A short summary; empty: the case number.")),
    _f("description", "描述", TEXT, gettext_lazy("What happened, in detail.")),
    _f("opened_at", "报障时间", TIME, gettext_lazy("When it was reported; empty: the case's first update.")),  # noqa: E501
    _f("resolved_at", "解决时间", TIME, gettext_lazy("Empty: the last move into a resolved or closed state.")),  # noqa: E501
    *(f for f in FIELDS if f.name in (
        "requester", "company", "department", "business_system", "location", "category",
        "subcategory", "urgency", "impact", "priority", "severity", "resolved_by",
        "resolution_code", "made_sla",
    )),
]  # fmt: skip
LAYOUT_FIELDS = {ImportFormat.ROWS: FIELDS, ImportFormat.EVENT_LOG: EVENT_FIELDS}
# Other names a mapping may use for a field.
ALIASES = {"case": "key", "group": "support_group", "at": "time", "status": "state"}
# The attributes an event log keeps per case (last non-empty value).
CASE_ATTRIBUTES = [
    f.name for f in EVENT_FIELDS if f.name not in ("key", "time", "state", "support_group",
                                                    "tier", "assignee", "actor")
]  # fmt: skip


# --------------------------------------------------------------------- mapping


@dataclass
class MappingSpec:
    """A column mapping in plain values: {field: header}, {field: {theirs: ours}}, format."""

    columns: dict[str, str] = field(default_factory=dict)
    values: dict[str, dict[str, Any]] = field(default_factory=dict)
    time_format: str = ""
    name: str = ""
    pk: int | None = None  # the saved mapping's id: the incidents' source (see source_system_for)

    @classmethod
    def of(cls, mapping: ImportMapping | MappingSpec | dict | None) -> MappingSpec:
        """The spec of a saved mapping, or of its snapshot (a dict, see `snapshot`)."""
        if mapping is None:
            return cls()
        if isinstance(mapping, MappingSpec):
            return mapping
        if isinstance(mapping, dict):
            get = mapping.get
        else:

            def get(name, default=None):
                return getattr(mapping, name, default)

        columns = {ALIASES.get(k, k): str(v) for k, v in (get("columns") or {}).items() if v}
        values = {
            ALIASES.get(k, k): {str(theirs).strip(): ours for theirs, ours in v.items()}
            for k, v in (get("values") or {}).items()
            if isinstance(v, dict)
        }
        return cls(columns, values, get("time_format") or "", get("name") or "", get("pk"))


def snapshot(mapping: ImportMapping) -> dict:
    """A mapping's settings as plain values, kept with a job so that later edits or the
    mapping's deletion do not change what the job imports."""
    return {
        "pk": mapping.pk,
        "name": mapping.name,
        "format": mapping.format,
        "columns": mapping.columns or {},
        "values": mapping.values or {},
        "time_format": mapping.time_format or "",
    }


def check_mapping(layout: str, columns: dict, values: dict) -> list[str]:
    """Return what is wrong with a mapping's JSON (unknown fields, wrong shapes), translated."""
    fields = {f.name: f for f in LAYOUT_FIELDS[layout]}
    problems = []
    if not isinstance(columns, dict) or not all(isinstance(v, str) for v in columns.values()):
        problems.append(_("Columns must be an object of field → column header (text)."))
        columns = {}
    if not isinstance(values, dict) or not all(isinstance(v, dict) for v in values.values()):
        problems.append(_("Value translations must be an object of field → {their value: ours}."))
        values = {}
    for name in [*columns, *values]:
        if ALIASES.get(name, name) not in fields:
            problems.append(
                _("Unknown field '%(field)s'; the fields are: %(fields)s.")
                % {"field": name, "fields": ", ".join(fields)}
            )
    return problems


def source_system_for(mapping: ImportMapping | MappingSpec | dict | None) -> str:
    """The source recorded on the incidents: 'spreadsheet' without a mapping, else
    'sheet-<the mapping's id>'. Renaming a mapping keeps its incidents' source, and no
    name can make it another importer's ('servicenow')."""
    pk = MappingSpec.of(mapping).pk
    return f"{MAPPING_SOURCE}-{pk}" if pk else DEFAULT_SOURCE


def _norm(header: str) -> str:
    text = re.sub(r"[(（][^)）]*[)）]$", "", str(header).strip())  # "编号（必填）"
    return text.strip().rstrip("*＊").strip().casefold()


@dataclass
class Columns:
    """Where each field sits in the file: its index and the header the user sees."""

    index: dict[str, int]
    header: dict[str, str]


def locate_columns(headers: list[str], fields: list[Field], spec: MappingSpec):
    """Find each field's column; return (Columns, errors for missing columns, whether a
    required one is missing)."""
    position = {}
    for i, header in enumerate(headers):
        position.setdefault(_norm(header), i)
    index, shown, errors, fatal = {}, {}, [], False
    for f in fields:
        wanted = [spec.columns[f.name]] if f.name in spec.columns else [f.header, f.name]
        found = next((position[_norm(w)] for w in wanted if _norm(w) in position), None)
        if found is not None:
            index[f.name] = found
            shown[f.name] = headers[found]
        elif f.required or f.name in spec.columns:
            fatal = fatal or f.required
            errors.append(
                RowError(
                    1,
                    "",
                    _("the file has no column '%(column)s' (field %(field)s)")
                    % {"column": wanted[0], "field": f.name},
                    column=wanted[0],
                )
            )
    return Columns(index, shown), errors, fatal


# ---------------------------------------------------------------------- values


@dataclass
class StateInfo:
    """The incident workflow's states: code → (name, category), and the initial code."""

    names: dict[str, str]
    categories: dict[str, str]
    initial: str

    @classmethod
    def load(cls) -> StateInfo:
        from apps.bjgas_platform.services.workflow import WorkflowError, default_workflow

        try:
            workflow = default_workflow(Incident)
            rows = [(s.code, s.name, s.category, s.is_initial) for s in workflow.states.all()]
        except WorkflowError:
            rows = []
        if not rows:
            from ..reference import INCIDENT_STATES

            rows = [(s[0], s[1], s[2], s[4]) for s in INCIDENT_STATES]
        initial = next((code for code, *_rest, first in rows if first), rows[0][0])
        return cls(
            names={code: name for code, name, *_rest in rows},
            categories={code: category for code, _name, category, _i in rows},
            initial=initial,
        )

    def of_category(self, category: str) -> str:
        """The state of a category, preferring the one whose code is the category's name."""
        if self.categories.get(category) == category:
            return category
        return next((c for c, cat in self.categories.items() if cat == category), category)

    def code_of(self, text: str) -> str | None:
        lowered = text.casefold()
        for code, name in self.names.items():
            if lowered in (code.casefold(), name.casefold()):
                return code
        return None


def _choice_labels(choices) -> dict[str, Any]:
    """Map each choice's value and its label in every site language to the value."""
    labels = {str(value).casefold(): value for value, _label in choices}
    for language, _name in settings.LANGUAGES:
        with translation.override(language):
            labels.update({str(label).casefold(): value for value, label in choices})
    return labels


class ValueReader:
    """Turns cells into our values, applying the mapping's value translations first."""

    def __init__(self, fields: list[Field], spec: MappingSpec, zone: tzinfo, states: StateInfo):
        self.fields = {f.name: f for f in fields}
        self.spec = spec
        self.zone = zone
        self.states = states
        self.levels = _choice_labels(Level.choices)
        self.priorities = _choice_labels(Priority.choices)
        self.severities = _choice_labels(Severity.choices)
        self.tiers = {
            **_choice_labels(SupportTier.choices),
            **{f"l{n}": n for n in (1, 2, 3)},
            **{f"t{n}": n for n in (1, 2, 3)},
            **{f"{word}线支持": n for n, word in ((1, "一"), (2, "二"), (3, "三"))},
        }
        self.limits = text_limits()

    def read(self, f: Field, raw: Any) -> Any:
        """Return the value of a cell (None when empty); ValueError with a reason when bad."""
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            return None
        translated = self._translate(f.name, raw)
        if translated is None:
            return None
        return getattr(self, f"_{f.kind}")(translated, raw)

    def _translate(self, name: str, raw: Any) -> Any:
        table = self.spec.values.get(name)
        if not table:
            return raw
        text = _text(raw)
        if text in table:
            return table[text]
        lowered = {str(k).casefold(): v for k, v in table.items()}
        return lowered.get(text.casefold(), raw)

    def _key(self, value, raw) -> str:
        text = _text(value)
        longest = Incident._meta.get_field("number").max_length
        if len(text) > longest:
            raise ValueError(
                _("the number '%(value)s' is longer than %(max)s characters")
                % {"value": text, "max": longest}
            )
        return text

    def _text(self, value, raw) -> str:
        return _text(value)

    def check_length(self, name: str, value: Any) -> None:
        """ValueError when a text is longer than the column it is stored in."""
        limit = self.limits.get(name)
        if limit and isinstance(value, str) and len(value) > limit:
            from .writer import too_long_reason

            raise ValueError(too_long_reason(len(value), limit))

    def _time(self, value, raw) -> datetime:
        try:
            return read_time(value, self.zone, self.spec.time_format)
        except (ValueError, OverflowError, TypeError):
            if self.spec.time_format:
                raise ValueError(
                    _("'%(value)s' is not a time in the format %(format)s")
                    % {"value": _text(raw), "format": self.spec.time_format}
                ) from None
            raise ValueError(
                _("'%(value)s' is not a time (write e.g. 2026-03-03 09:00)") % {"value": _text(raw)}
            ) from None

    def _state(self, value, raw) -> str:
        code = self.states.code_of(_text(value))
        if code is None:
            raise ValueError(
                _("unknown state '%(value)s'; the states are: %(states)s")
                % {
                    "value": _text(raw),
                    "states": ", ".join(f"{n} ({c})" for c, n in self.states.names.items()),
                }
            )
        return code

    def _lookup(self, labels: dict, value, raw, message: str):
        text = _text(value).casefold()
        if text in labels:
            return labels[text]
        leading = re.match(r"^\s*p?([1-4])(\b|\s|-|$)", text)  # "1 - Critical", "P1 紧急"
        if leading and leading.group(1) in labels:
            return labels[leading.group(1)]
        raise ValueError(message % {"value": _text(raw)})

    def _level(self, value, raw) -> int:
        return self._lookup(
            self.levels, value, raw, _("unknown level '%(value)s'; write 1, 2, 3 or 4")
        )

    def _priority(self, value, raw) -> str:
        labels = {**self.priorities, **{str(n): f"P{n}" for n in (1, 2, 3, 4)}}
        return self._lookup(
            labels, value, raw, _("unknown priority '%(value)s'; write P1, P2, P3 or P4")
        )

    def _severity(self, value, raw) -> str:
        text = _text(value)
        if text.casefold() in self.severities:
            return self.severities[text.casefold()]
        leading = re.match(r"^([ABC])(?![A-Za-z])", text.upper())  # "B", "B级", "B (4 h)"
        if leading:
            return leading.group(1)
        raise ValueError(_("unknown severity '%(value)s'; write A, B or C") % {"value": _text(raw)})

    def _tier(self, value, raw) -> int:
        return self._lookup(
            self.tiers, value, raw, _("unknown tier '%(value)s'; write 1, 2 or 3 (一线/二线/三线)")
        )

    def _bool(self, value, raw) -> bool:
        if isinstance(value, bool):
            return value
        text = _text(value).casefold()
        if text in ("是", "达标", "y", "yes", "true", "1", "√", "✓"):
            return True
        if text in ("否", "未达标", "不达标", "n", "no", "false", "0", "×", "✗"):
            return False
        raise ValueError(_("'%(value)s' is not yes or no; write 是 or 否") % {"value": _text(raw)})

    def _count(self, value, raw) -> int:
        text = _text(value)
        if not re.fullmatch(r"\d{1,9}(\.0*)?", text):
            raise ValueError(
                _("'%(value)s' is not a whole number of 0 or more") % {"value": _text(raw)}
            )
        return int(float(text))


def text_limits() -> dict[str, int]:
    """The longest text of each field (a person's name: the longest full name)."""
    from .writer import MAX_NAME, _limits

    limits = {n: v for n, v in _limits().items() if n != "key"}  # the key has its own message
    return {**limits, "requester": MAX_NAME, "assignee": MAX_NAME, "resolved_by": MAX_NAME}


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # Excel keeps numbers as floats: 1001.0 is the number 1001
    if isinstance(value, datetime | date):
        return value.isoformat(sep=" ")
    return str(value).strip()


# ---------------------------------------------------------------------- reading


@dataclass
class SheetRead:
    """What reading a file gave: incidents, bad rows, rows read; `fatal`: nothing usable."""

    incidents: list[ImportedIncident]
    errors: list[RowError]
    rows: int
    fatal: bool = False
    headers: dict[str, str] = field(default_factory=dict)  # field -> the file's header


class _Row:
    """One data row's parsed values, the raw cells they came from, and its errors."""

    def __init__(self, line: int, cells: Sequence[Any], columns: Columns, reader: ValueReader):
        self.line = line
        self.values: dict[str, Any] = {}
        self.raw: dict[str, Any] = {}
        self.errors: list[RowError] = []
        self.columns = columns
        key_at = columns.index.get("key")
        key = cells[key_at] if key_at is not None and key_at < len(cells) else None
        self.key = "" if key is None else _text(key)  # an empty Excel cell is None
        for name, at in columns.index.items():
            f = reader.fields[name]
            raw = self.raw[name] = cells[at] if at < len(cells) else None
            try:
                value = reader.read(f, raw)
                reader.check_length(name, value)
            except ValueError as exc:
                self.fail(name, str(exc))
                continue
            if value is None and f.required:
                self.fail(name, _("a value is required"))
            self.values[name] = value

    def fail(self, name: str, reason: str) -> None:
        self.errors.append(RowError(self.line, self.key, reason, column=self.columns.header[name]))


def read_file(
    path: str | Path,
    *,
    layout: str,
    mapping: ImportMapping | MappingSpec | None = None,
    zone: tzinfo | str | None = None,
    progress: ProgressCallback | None = None,
) -> SheetRead:
    """Read a spreadsheet of `layout` into incidents and bad rows; nothing is written."""
    if layout not in LAYOUT_FIELDS:
        raise TableError(_("Unknown file layout '%(layout)s'.") % {"layout": layout})
    spec = MappingSpec.of(mapping)
    table = open_table(path)
    fields = LAYOUT_FIELDS[layout]
    columns, missing, fatal = locate_columns(table.headers, fields, spec)
    if fatal:
        return SheetRead([], missing, 0, fatal=True)
    reader = ValueReader(fields, spec, resolve_zone(zone), StateInfo.load())
    rows = _parsed_rows(table, columns, reader, Throttle(progress))
    if layout == ImportFormat.ROWS:
        result = _incidents_from_rows(rows, reader.states)
    else:
        result = _incidents_from_events(rows, reader.states)
    result.errors[:0] = missing
    result.headers = columns.header
    _fill_group_tiers(result.incidents)
    return result


def _fill_group_tiers(incidents: list[ImportedIncident]) -> None:
    """Give events without a tier the tier of their support group, if it exists here."""
    untiered = [e for i in incidents for e in i.events if e.tier is None and e.support_group]
    names = {e.support_group for e in untiered}
    if not names:
        return
    tiers = dict(SupportGroup.objects.filter(name__in=names).values_list("name", "tier"))
    for event in untiered:
        event.tier = tiers.get(event.support_group)


def _parsed_rows(table: Table, columns: Columns, reader: ValueReader, progress: Throttle):
    """Yield each data row parsed; report reading progress."""
    done = 0
    for line, cells in table.rows:
        done += 1
        progress(READ_STAGE, done, max(done, table.total))
        yield _Row(line, cells, columns, reader)
    progress(READ_STAGE, done, done, force=True)


def _incidents_from_rows(rows, states: StateInfo) -> SheetRead:
    incidents, errors, seen = [], [], {}
    count = 0
    for row in rows:
        count += 1
        if not row.errors:
            if row.key in seen:
                row.fail("key", _("the number %(key)s is already on row %(row)s")
                         % {"key": row.key, "row": seen[row.key]})  # fmt: skip
            else:
                incident = _incident_of_row(row, states)
                if incident is not None:
                    seen[row.key] = row.line
                    incidents.append(incident)
        errors.extend(row.errors)
    return SheetRead(incidents, errors, count)


def _incident_of_row(row: _Row, states: StateInfo) -> ImportedIncident | None:
    """Build one incident with its events from a ROWS row; None (and errors) when bad."""
    v = row.values
    opened, resolved, closed = v["opened_at"], v.get("resolved_at"), v.get("closed_at")
    state = v.get("state")
    category = states.categories.get(state, "") if state else ""
    if resolved and resolved < opened:
        row.fail("resolved_at", _("resolved before it was reported"))
    if closed and closed < opened:
        row.fail("closed_at", _("closed before it was reported"))
    if closed and resolved and closed < resolved:
        row.fail("closed_at", _("closed before it was resolved"))
    if category in ("open", "waiting", "draft") and (resolved or closed):
        row.fail("state", _("the state %(state)s does not fit a resolution or close time")
                 % {"state": states.names[state]})  # fmt: skip
    if category == "resolved" and not resolved:
        row.fail("resolved_at", _("a value is required when the state is %(state)s")
                 % {"state": states.names[state]})  # fmt: skip
    if category == "resolved" and closed:
        row.fail("state", _("the state %(state)s does not fit a close time")
                 % {"state": states.names[state]})  # fmt: skip
    if category == "closed" and not closed:
        row.fail("closed_at", _("a value is required when the state is %(state)s")
                 % {"state": states.names[state]})  # fmt: skip
    if category == "cancelled" and resolved:
        row.fail("state", _("the state %(state)s does not fit a resolution time")
                 % {"state": states.names[state]})  # fmt: skip
    if row.errors:
        return None

    if category != "cancelled" and closed and not resolved:
        resolved = closed  # closing implies the service was restored
    assigned = {"support_group": v.get("support_group"), "assignee": v.get("assignee"),
                "tier": v.get("tier")}  # fmt: skip
    source_state = _text(row.raw.get("state") or "")
    events = [ImportEvent(opened, states.initial, actor=v.get("requester"), row=row.line,
                          **assigned)]  # fmt: skip
    if state and category in ("open", "waiting") and state != states.initial:
        events.append(ImportEvent(opened, state, source_state=source_state, row=row.line,
                                  **assigned))  # fmt: skip
    if resolved and category != "cancelled":
        actor = v.get("resolved_by") or v.get("assignee")
        events.append(ImportEvent(resolved, states.of_category("resolved"), actor=actor,
                                  row=row.line, **assigned))  # fmt: skip
    if category == "cancelled":
        events.append(ImportEvent(closed or opened, state, source_state=source_state,
                                  row=row.line, **assigned))  # fmt: skip
    elif closed:
        events.append(ImportEvent(closed, states.of_category("closed"), row=row.line,
                                  **assigned))  # fmt: skip
    return ImportedIncident(
        key=row.key,
        opened_at=opened,
        title=v.get("title") or row.key,
        description=v.get("description") or "",
        resolved_at=resolved if category != "cancelled" else None,
        closed_at=closed,
        requester=v.get("requester"),
        opened_by=v.get("requester"),
        resolved_by=(v.get("resolved_by") or v.get("assignee")) if resolved else None,
        channel=Channel.IMPORT,
        urgency=v.get("urgency"),
        impact=v.get("impact"),
        priority=v.get("priority") or "",
        severity=v.get("severity") or "",
        category=v.get("category"),
        subcategory=v.get("subcategory"),
        location=v.get("location"),
        company=v.get("company"),
        department=v.get("department"),
        business_system=v.get("business_system"),
        resolution_code=v.get("resolution_code") or "",
        made_sla=v.get("made_sla"),
        reassignment_count=v.get("reassignment_count") or 0,
        reopen_count=v.get("reopen_count") or 0,
        row=row.line,
        events=events,
    )


def _incidents_from_events(rows, states: StateInfo) -> SheetRead:
    cases: dict[str, list[_Row]] = {}
    errors: list[RowError] = []
    count = 0
    for row in rows:
        count += 1
        if row.errors:
            errors.extend(row.errors)
        else:
            cases.setdefault(row.key, []).append(row)
    incidents = []
    for key, case in cases.items():
        incident = _incident_of_case(key, case, states, errors)
        if incident is not None:
            incidents.append(incident)
    errors.sort(key=lambda e: e.row)
    return SheetRead(incidents, errors, count)


def _incident_of_case(key: str, case: list[_Row], states: StateInfo, errors: list[RowError]):
    """Group one case's update rows into an incident (the rows are good ones)."""
    case.sort(key=lambda r: (r.values["time"], r.line))
    attrs: dict[str, Any] = {}
    for row in case:
        attrs.update({n: row.values[n] for n in CASE_ATTRIBUTES if row.values.get(n) is not None})
    opened = attrs.get("opened_at") or case[0].values["time"]
    early = [r for r in case if r.values["time"] < opened]
    for row in early:
        reason = (
            _("resolved before it was reported")
            if states.categories.get(row.values["state"]) in ("resolved", "closed")
            else _("the update is earlier than the report time")
        )
        row.fail("time", reason)
        errors.extend(row.errors)
    case = [r for r in case if r not in early]
    if not case:
        return None

    events, current = [], {"support_group": None, "assignee": None, "tier": None}
    for row in case:
        for name in current:
            if row.values.get(name) is not None:
                current[name] = row.values[name]
        events.append(
            ImportEvent(
                at=row.values["time"],
                state=row.values["state"],
                actor=row.values.get("actor"),
                source_state=_text(row.raw.get("state") or ""),
                row=row.line,
                **current,
            )
        )
    final = states.categories.get(events[-1].state)
    done = last_entry(events, lambda e: states.categories.get(e.state) in ("resolved", "closed"))
    shut = last_entry(events, lambda e: states.categories.get(e.state) == "closed")
    resolved = None
    if final in ("resolved", "closed"):
        resolved = attrs.get("resolved_at") or (done.at if done else None)
    if resolved is not None and resolved < opened:
        case[-1].fail("resolved_at" if "resolved_at" in attrs else "time",
                      _("resolved before it was reported"))  # fmt: skip
        errors.extend(case[-1].errors)
        return None
    return ImportedIncident(
        key=key,
        opened_at=opened,
        title=attrs.get("title") or key,
        description=attrs.get("description") or "",
        resolved_at=resolved,
        closed_at=shut.at if shut is not None and final == "closed" else None,
        requester=attrs.get("requester"),
        opened_by=case[0].values.get("actor") or attrs.get("requester"),
        resolved_by=(attrs.get("resolved_by") or (done.actor if done else None))
        if resolved
        else None,
        channel=Channel.IMPORT,
        urgency=attrs.get("urgency"),
        impact=attrs.get("impact"),
        priority=attrs.get("priority") or "",
        severity=attrs.get("severity") or "",
        category=attrs.get("category"),
        subcategory=attrs.get("subcategory"),
        location=attrs.get("location"),
        company=attrs.get("company"),
        department=attrs.get("department"),
        business_system=attrs.get("business_system"),
        resolution_code=attrs.get("resolution_code") or "",
        made_sla=attrs.get("made_sla"),
        reassignment_count=_reassignments(events),
        reopen_count=_reopenings(events, states),
        row=case[-1].line,
        events=events,
    )


def _reopenings(events: list[ImportEvent], states: StateInfo) -> int:
    done = [states.categories.get(e.state) in ("resolved", "closed") for e in events]
    return sum(1 for before, now in pairwise(done) if before and not now)


def _reassignments(events: list[ImportEvent]) -> int:
    groups = [e.support_group for e in events if e.support_group]
    return sum(1 for a, b in pairwise(groups) if a != b)


# ---------------------------------------------------------------------- import


def import_spreadsheet(
    file_path: str | Path,
    *,
    layout: str,
    mapping: ImportMapping | None = None,
    company=None,
    actor=None,
    strict: bool = False,
    zone: tzinfo | str | None = None,
    progress: ProgressCallback | None = None,
) -> ImportSummary:
    """Read a spreadsheet of incidents or an event log and store it through the writer.

    Bad rows are reported in the summary; with `strict`, or when the file cannot be used
    at all (a required column is missing), nothing is written and `refused` is set.
    Raises TableError when the file is not a readable table.
    """
    from .writer import write_incidents

    started = time.monotonic()
    read = read_file(file_path, layout=layout, mapping=mapping, zone=zone, progress=progress)
    if read.fatal or (strict and read.errors):
        return ImportSummary(
            rows=read.rows, errors=read.errors, refused=True, seconds=time.monotonic() - started
        )
    try:
        summary = write_incidents(
            read.incidents,
            source_system=source_system_for(mapping),
            company=company,
            actor=actor,
            progress=progress,
            strict=strict,
        )
    except ImportRefused as exc:
        _name_columns(exc.errors, read.headers)
        return ImportSummary(
            rows=read.rows,
            errors=sorted([*read.errors, *exc.errors], key=lambda e: e.row),
            refused=True,
            seconds=time.monotonic() - started,
        )
    summary.rows = read.rows
    _name_columns(summary.errors, read.headers)
    summary.errors = sorted([*read.errors, *summary.errors], key=lambda e: e.row)
    summary.seconds = time.monotonic() - started
    return summary


def _name_columns(errors: list[RowError], headers: dict[str, str]) -> None:
    """Name the file's column (its header) in the writer's errors."""
    from .writer import LABELLED, field_label

    headers = {**headers, "opened_by": headers.get("actor") or headers.get("requester")}
    shown = {field_label(name): headers.get(name) for name in LABELLED}
    for error in errors:
        if shown.get(error.column):
            error.column = shown[error.column]


# ---------------------------------------------------------------------- template


def template_workbook(mapping: ImportMapping | None = None) -> bytes:
    """Return the ROWS template: an empty sheet with the headers and a sheet explaining them."""
    from openpyxl import Workbook
    from openpyxl.comments import Comment
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    spec = MappingSpec.of(mapping)
    states = StateInfo.load()
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = pgettext("sheet title", "Incidents")
    bold = Font(bold=True)
    required_font = Font(bold=True, color="C00000")
    head_fill = PatternFill("solid", fgColor="DDEBF7")
    for column, f in enumerate(FIELDS, start=1):
        header = spec.columns.get(f.name, f.header)
        cell = sheet.cell(1, column, header)
        cell.font = required_font if f.required else bold
        cell.fill = head_fill
        cell.comment = Comment(_text(_allowed(f, states)) or str(f.help), "BJGas")
        letter = get_column_letter(column)
        sheet.column_dimensions[letter].width = 22 if f.kind in (TIME, TEXT) else 12
        if f.kind == TIME:
            sheet.column_dimensions[letter].number_format = "yyyy-mm-dd hh:mm"
        choices = _dropdown(f, states)
        if choices:
            rule = DataValidation(type="list", formula1=f'"{",".join(choices)}"', allow_blank=True)
            rule.add(f"{letter}2:{letter}5000")
            sheet.add_data_validation(rule)
    sheet.freeze_panes = "A2"

    guide = workbook.create_sheet(_("Instructions"))
    guide.append([_("Column"), _("Required"), _("Meaning"), _("Allowed values")])
    for cell in guide[1]:
        cell.font = bold
        cell.fill = head_fill
    for f in FIELDS:
        guide.append(
            [
                spec.columns.get(f.name, f.header),
                _("required") if f.required else "",
                str(f.help),
                _allowed(f, states),
            ]
        )
        if f.required:
            guide.cell(guide.max_row, 1).font = required_font
    guide.append([])
    for note in (
        _("Fill one row per incident on the first sheet, from row 2; keep the header row."),
        _("Columns in red are required. Columns may be left out or put in any order."),
        _("Times are read in the time zone chosen for the import (default: the site's)."),
        _("Every imported incident gets the channel Batch import."),
        _("Importing the same number again updates that incident instead of adding one."),
    ):
        guide.append([note])
    for letter, width in zip("ABCD", (16, 8, 60, 60), strict=True):
        guide.column_dimensions[letter].width = width
    for row in guide.iter_rows(min_row=2):
        for cell in row:
            cell.alignment = Alignment(wrap_text=True, vertical="top")
            cell.data_type = "s" if isinstance(cell.value, str) else cell.data_type
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _allowed(f: Field, states: StateInfo) -> str:
    if f.kind == STATE:
        return "、".join(f"{name}（{code}）" for code, name in states.names.items())
    if f.kind == LEVEL:
        return "、".join(str(label) for _v, label in Level.choices)
    if f.kind == PRIORITY:
        return "、".join(str(label) for _v, label in Priority.choices)
    if f.kind == SEVERITY:
        return "、".join(str(label) for _v, label in Severity.choices)
    if f.kind == TIER:
        return "1、2、3（" + "、".join(str(label) for _v, label in SupportTier.choices) + "）"
    if f.kind == BOOL:
        return "是、否"
    if f.kind == TIME:
        return _("e.g. 2026-03-03 09:00, or an Excel date cell")
    if f.kind == COUNT:
        return _("a whole number of 0 or more")
    return ""


def _dropdown(f: Field, states: StateInfo) -> list[str]:
    if f.kind == LEVEL:
        return [str(label) for _v, label in Level.choices]
    if f.kind == PRIORITY:
        return [str(v) for v, _l in Priority.choices]
    if f.kind == SEVERITY:
        return ["A", "B", "C"]
    if f.kind == TIER:
        return [str(label) for _v, label in SupportTier.choices]
    if f.kind == BOOL:
        return ["是", "否"]
    if f.kind == STATE:
        return list(states.names.values())
    return []


__all__ = [
    "EVENT_FIELDS",
    "FIELDS",
    "MappingSpec",
    "check_mapping",
    "import_spreadsheet",
    "read_file",
    "source_system_for",
    "template_workbook",
]
