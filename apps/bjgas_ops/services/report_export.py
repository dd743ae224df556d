"""Write an incident report as an Excel workbook, for the command line and the desk.

Counts are integer cells, seconds are number cells, mean times are also written as Excel
durations ([h]:mm:ss, hours without days: business time counts working hours) and period
rows carry real date cells; a period the range cuts is labelled '(partial period)' and has
no change ratio. No text a user typed (a
business system's name, a reporter's name) can become a formula: text that Excel or
another spreadsheet would read as one is stored as a plain string marked as text.
"""

from __future__ import annotations

import io

from django.utils.translation import gettext as _
from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from .reports import Report, ReportRow, day_label

# Leading characters with which a spreadsheet may start a formula (or hide one).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
DATE_FORMAT = "yyyy-mm-dd"
DURATION_FORMAT = "[h]:mm:ss"
SECONDS_FORMAT = "0"
RATIO_FORMAT = "0.0%"
SECONDS_PER_DAY = 86400
BOLD = Font(bold=True)


def build_workbook(report: Report) -> Workbook:
    """Return a workbook with the report's table, its total and its definitions.

    Headers and labels are in the active language; call it inside
    `translation.override()` to choose another.
    """
    book = Workbook()
    sheet = book.active
    sheet.title = _sheet_title(report.title)
    write_text(sheet.cell(1, 1), report.title).font = Font(bold=True, size=14)
    write_text(
        sheet.cell(2, 1),
        _("Reported from %(start)s to %(end)s")
        % {"start": day_label(report.filter.start), "end": day_label(report.filter.end)},
    )

    columns = _columns(report)
    header_row = 4
    for index, (title, _value, _format) in enumerate(columns, start=1):
        write_text(sheet.cell(header_row, index), title).font = BOLD
    row_number = header_row
    for row in report.rows:
        row_number += 1
        _write_row(sheet, row_number, columns, row)
    row_number += 1
    total = ReportRow(
        key="",
        label=_("Total"),
        figures=report.total,
        start=report.filter.start,
        end=report.filter.end,
    )
    _write_row(sheet, row_number, columns, total, total_row=True)

    row_number += 2
    write_text(sheet.cell(row_number, 1), _("Definitions")).font = BOLD
    for sentence in report.definitions:
        row_number += 1
        write_text(sheet.cell(row_number, 1), sentence)

    sheet.freeze_panes = sheet.cell(header_row + 1, 2)
    for index, (title, _value, _format) in enumerate(columns, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = max(12, len(title) * 2)
    sheet.column_dimensions["A"].width = 24
    return book


def workbook_bytes(report: Report) -> bytes:
    """Return the report's workbook as the bytes of an .xlsx file (for a download)."""
    buffer = io.BytesIO()
    build_workbook(report).save(buffer)
    return buffer.getvalue()


def write_text(cell, text: str):
    """Store `text` in `cell` as a string, never as a formula; return the cell."""
    cell.value = text
    if isinstance(text, str) and text.startswith(FORMULA_STARTS):
        # openpyxl takes a string starting with '=' for a formula: store it as a string,
        # and mark it as text (Excel's leading apostrophe) so that editing keeps it one.
        cell.data_type = "s"
        cell.quotePrefix = True
    return cell


def _sheet_title(title: str) -> str:
    cleaned = "".join(" " if ch in "[]:*?/\\" else ch for ch in title).strip("' ")
    return cleaned[:31] or "Report"


def _duration(seconds: float | None) -> float | None:
    return None if seconds is None else seconds / SECONDS_PER_DAY


def _columns(report: Report) -> list[tuple[str, object, str | None]]:
    """Return (header, value getter or name, number format) per column.

    A getter takes the row and whether it is the total row.
    """
    if report.kind == "period":
        first = [
            (_("Period"), _period_label, None),
            (_("First day"), lambda row, total: row.start, DATE_FORMAT),
            (_("Last day"), lambda row, total: row.end, DATE_FORMAT),
        ]
    else:
        first = [(_("Tier") if report.kind == "tier" else _("Group"), _label, None)]

    def figure(name):
        return lambda row, total: getattr(row.figures, name)

    def duration(name):
        return lambda row, total: _duration(getattr(row.figures, name))

    if report.kind == "tier":
        handling, business = _("Mean time in the tier"), _("Mean business time in the tier")
    else:
        handling, business = _("Mean handling time"), _("Mean business time")
    in_seconds = _("%(column)s (s)")
    times = [
        (handling, duration("mean_handling_seconds"), DURATION_FORMAT),
        (in_seconds % {"column": handling}, figure("mean_handling_seconds"), SECONDS_FORMAT),
        (business, duration("mean_business_seconds"), DURATION_FORMAT),
        (in_seconds % {"column": business}, figure("mean_business_seconds"), SECONDS_FORMAT),
    ]
    if report.kind == "tier":
        # Tier rows describe time spent in a tier: no counts of resolved or open incidents.
        return [*first, (_("Incidents"), figure("count"), None), *times]
    columns = [
        *first,
        (_("Incidents"), figure("count"), None),
        (_("Resolved"), figure("resolved"), None),
        (_("Still open"), figure("open"), None),
        (_("Batch-imported"), figure("imported"), None),
        *times,
        (_("Met the SLA"), figure("sla_met"), None),
        (_("Breached the SLA"), figure("sla_breached"), None),
        (_("SLA met ratio"), figure("sla_met_ratio"), RATIO_FORMAT),
    ]
    if report.kind == "period":
        columns += [
            (_("Previous period"), _previous_count, None),
            (_("Change"), lambda row, total: None if total else row.count_change, None),
            (
                _("Change ratio"),
                lambda row, total: None if total else row.count_change_ratio,
                RATIO_FORMAT,
            ),
        ]
    if report.dimension == "business_system":
        columns.append((_("Top reporters"), _top_reporters, None))
    return columns


def _label(row: ReportRow, total: bool) -> str:
    return row.label


def _period_label(row: ReportRow, total: bool) -> str:
    """A bucket the range cuts says so: its figures cover fewer days than a whole one."""
    if row.partial:
        return _("%(label)s (partial period)") % {"label": row.label}
    return row.label


def _previous_count(row: ReportRow, total: bool) -> int | None:
    return None if total or row.previous is None else row.previous.count


def _top_reporters(row: ReportRow, total: bool) -> str | None:
    reporters = row.extra.get("top_reporters")
    if not reporters:
        return None
    return _("; ").join(
        _("%(name)s (%(count)d)") % {"name": name, "count": count} for name, count in reporters
    )


def _write_row(
    sheet: Worksheet, row_number: int, columns: list, row: ReportRow, total_row: bool = False
) -> None:
    for index, (_title, getter, number_format) in enumerate(columns, start=1):
        value = getter(row, total_row)
        cell = sheet.cell(row_number, index)
        if isinstance(value, str):
            write_text(cell, value)
        else:
            cell.value = value
            if number_format and value is not None:
                cell.number_format = number_format
        if total_row:
            cell.font = BOLD
