"""What the incident importers share: opening a table, reading times, the resolution rule.

- `open_table` reads the rows of an Excel workbook (.xlsx, first sheet), a CSV file or the
  one CSV inside a zip file. CSV is read as UTF-8 (with or without BOM) and, when that
  fails, as GB18030, the superset of GBK in which Chinese Excel saves "CSV".
- `parse_time` reads a time cell: an Excel date, ISO text or a given strptime format, in
  the import's zone when the value carries none.
- `last_entry` finds the last update that moved a case into a state (a case is resolved at
  its last move into Resolved), the rule of every event-log reader.
- `Throttle` calls a progress callback at most a few times a second.
"""

from __future__ import annotations

import csv
import io
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.utils import timezone
from django.utils.translation import gettext as _

E = TypeVar("E")
ProgressCallback = Callable[[str, int, int], None]

# Texts tried after ISO 8601 when no format is given, the common spellings in spreadsheets.
TIME_FORMATS = (
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y/%m/%d",
    "%Y-%m-%d %H:%M",
    "%Y年%m月%d日 %H:%M:%S",
    "%Y年%m月%d日 %H:%M",
    "%Y年%m月%d日 %H时%M分",
    "%Y年%m月%d日",
    "%Y.%m.%d %H:%M",
    "%Y%m%d %H:%M",
)
ENCODINGS = ("utf-8-sig", "gb18030")


class TableError(ValueError):
    """The file cannot be read as a table at all (wrong type, encoding, no header)."""


@dataclass
class Table:
    """The header row and the data rows of a file; `rows` yields (line, cells)."""

    headers: list[str]
    rows: Iterator[tuple[int, Sequence[Any]]]
    total: int  # data rows, for progress (CSV: counted by line breaks, may be a little high)


def resolve_zone(zone: tzinfo | str | None) -> tzinfo:
    """Return the zone to read times without zone in: the given one, else the site's."""
    if zone is None or zone == "":
        return timezone.get_default_timezone()
    if isinstance(zone, str):
        try:
            return ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise TableError(_("Unknown time zone '%(zone)s'.") % {"zone": zone}) from None
    return zone


def open_table(path: str | Path) -> Table:
    """Open an .xlsx workbook's first sheet, a CSV file, or the one CSV in a zip file."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        return _excel_table(path)
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if n.lower().endswith(".csv")]
            if len(names) != 1:
                raise TableError(_("The zip file must hold exactly one CSV file."))
            return _csv_table(archive.read(names[0]))
    if suffix in (".xls", ".et"):
        raise TableError(
            _("Old Excel files (.xls) cannot be read: save the file as .xlsx or CSV and retry.")
        )
    return _csv_table(path.read_bytes())


def decode_text(data: bytes) -> str:
    """Decode a CSV file saved as UTF-8 or, by Chinese Excel, as GBK/GB18030."""
    for encoding in ENCODINGS:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise TableError(_("The file is neither UTF-8 nor GBK text: save it as CSV UTF-8 and retry."))


def _csv_table(data: bytes) -> Table:
    text = decode_text(data)
    reader = csv.reader(io.StringIO(text, newline=""))
    headers = next(reader, None)
    if not headers or not any(h.strip() for h in headers):
        raise TableError(_("The file is empty: the first row must hold the column headers."))
    total = max(0, text.count("\n") - 1 + (0 if text.endswith("\n") else 1))
    rows = ((line, cells) for line, cells in enumerate(reader, start=2) if any(cells))
    return Table(headers=[h.strip() for h in headers], rows=rows, total=total)


def _excel_table(path: Path) -> Table:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises zipfile, KeyError or its own errors
        raise TableError(
            _("The file is not a readable Excel workbook (%(error)s).") % {"error": exc}
        ) from None
    sheet = workbook.worksheets[0]
    values = sheet.iter_rows(values_only=True)
    headers = next(values, None)
    if not headers or not any(h not in (None, "") for h in headers):
        workbook.close()
        raise TableError(_("The file is empty: the first row must hold the column headers."))
    total = max(0, (sheet.max_row or 1) - 1)

    def rows():
        try:
            for line, cells in enumerate(values, start=2):
                if any(c not in (None, "") for c in cells):
                    yield line, cells
        finally:
            workbook.close()

    return Table(
        headers=["" if h is None else str(h).strip() for h in headers], rows=rows(), total=total
    )


def parse_time(value: Any, zone: tzinfo, time_format: str = "") -> datetime:
    """Read a time cell in `zone` unless it carries a zone; ValueError when it is not one."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        from openpyxl.utils.datetime import from_excel

        moment = from_excel(value)  # a date cell Excel kept as its serial number
    else:
        moment = _parse_text(str(value).strip(), time_format)
    if timezone.is_naive(moment):
        return moment.replace(tzinfo=zone)
    return moment


def _parse_text(text: str, time_format: str) -> datetime:
    if time_format:
        return datetime.strptime(text, time_format)
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        pass
    for candidate in TIME_FORMATS:
        try:
            return datetime.strptime(text, candidate)
        except ValueError:
            continue
    raise ValueError(text)


def last_entry(history: Sequence[E], inside: Callable[[E], bool]) -> E | None:
    """Return the last event of `history` that moved the case into a state `inside` accepts.

    An event counts when the event before it (if any) was outside: repeated updates in
    Resolved keep the time the case got there, and a case reopened and resolved again is
    resolved at the second time.
    """
    found = None
    before = None
    for event in history:
        if inside(event) and (before is None or not inside(before)):
            found = event
        before = event
    return found


class Throttle:
    """Pass progress on to `callback` at most every `seconds`, and always at the end."""

    def __init__(self, callback: ProgressCallback | None, seconds: float = 0.25):
        self.callback = callback
        self.seconds = seconds
        self._last = 0.0

    def __call__(self, stage: str, done: int, total: int, *, force: bool = False) -> None:
        if self.callback is None:
            return
        now = time.monotonic()
        if force or done >= total or now - self._last >= self.seconds:
            self._last = now
            self.callback(stage, done, total)
