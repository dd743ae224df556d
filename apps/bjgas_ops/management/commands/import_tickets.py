"""Import the incident history of another ticket system (批量导入).

    python manage.py import_tickets --format servicenow PATH [--tz ZONE] [--strict]
        [--company CODE] [--errors FILE]

Re-running an import updates the incidents it made before, never duplicates them. Bad
rows are listed with their line numbers; with --strict nothing is imported when any row
is bad.
"""

from __future__ import annotations

import csv
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from tqdm import tqdm

from apps.bjgas_platform.models import Company

from ...importers.servicenow import import_servicenow

SHOWN_ERRORS = 20


class Command(BaseCommand):
    help = _("Import incidents with their history from another ticket system's export.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("path", help=_("The export file (csv, or a zip holding one csv)."))
        parser.add_argument("--format", required=True, choices=["servicenow"])
        parser.add_argument(
            "--tz", help=_("Zone the file's times are written in (default: the site's zone).")
        )
        parser.add_argument(
            "--strict", action="store_true", help=_("Import nothing if any row is bad.")
        )
        parser.add_argument(
            "--company",
            help=_("Code of the company the incidents belong to (default: the top one)."),
        )
        parser.add_argument("--errors", help=_("Write every bad row to this CSV file."))
        parser.add_argument("--no-progress", action="store_true", help=_("Hide the progress bar."))

    def handle(self, *args, **options) -> None:
        path = Path(options["path"])
        if not path.is_file():
            raise CommandError(_("File not found: %(path)s") % {"path": path})
        zone = None
        if options["tz"]:
            try:
                zone = ZoneInfo(options["tz"])
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise CommandError(
                    _("--tz: unknown time zone '%(zone)s'.") % {"zone": options["tz"]}
                ) from exc
        company = None
        if options["company"]:
            company = Company.objects.filter(code=options["company"]).first()
            if company is None:
                raise CommandError(
                    _("--company: no company has the code '%(code)s'.")
                    % {"code": options["company"]}
                )
        bar = _ProgressBar(self.stderr, hidden=options["no_progress"])
        try:
            summary = import_servicenow(
                path, zone=zone, strict=options["strict"], company=company, progress=bar
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        finally:
            bar.close()

        for error in summary.errors[:SHOWN_ERRORS]:
            self.stderr.write(str(error))
        if len(summary.errors) > SHOWN_ERRORS:
            self.stderr.write(
                _("… and %(count)s more bad rows.") % {"count": len(summary.errors) - SHOWN_ERRORS}
            )
        if options["errors"]:
            _write_errors(Path(options["errors"]), summary.errors)
        if summary.rows == 0:
            raise CommandError(_("The file holds no rows below its header: nothing to import."))
        if summary.refused:
            raise CommandError(
                _("Nothing was imported: %(count)s bad rows (see above).")
                % {"count": len(summary.errors)}
            )
        self.stdout.write(
            _(
                "Read %(rows)s rows: %(created)s incidents created, %(updated)s updated, "
                "%(events)s events, %(bad)s bad rows skipped, in %(seconds).1f s "
                "(%(rate).0f events/s)."
            )
            % {
                "rows": summary.rows,
                "created": summary.created,
                "updated": summary.updated,
                "events": summary.events,
                "bad": len(summary.errors),
                "seconds": summary.seconds,
                "rate": summary.events_per_second,
            }
        )


class _ProgressBar:
    """A tqdm bar per stage: rows read, then incidents written; rate and time left."""

    LABELS = {"read": "rows", "write": "incidents"}

    def __init__(self, stream, hidden: bool):
        self.stream, self.hidden = stream, hidden
        self.stage = None
        self.bar = None

    def __call__(self, stage: str, done: int, total: int) -> None:
        if self.hidden or stage == "prepare":
            return  # preparing takes no time worth a bar of its own
        if stage != self.stage:
            self.close()
            self.stage = stage
            self.bar = tqdm(
                total=total or None,
                desc=_("reading") if stage == "read" else _("writing"),
                unit=" " + self.LABELS.get(stage, ""),
                file=self.stream._out,
                dynamic_ncols=True,
            )
        if total and self.bar.total != total:
            self.bar.total = total
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _write_errors(path: Path, errors) -> None:
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([_("row"), _("number"), _("column"), _("reason")])
        for error in errors:
            writer.writerow(
                [error.row, _as_text(error.number), _as_text(error.column), _as_text(error.reason)]
            )


def _as_text(value: str) -> str:
    """Keep a spreadsheet from reading a value as a formula (the file's own text)."""
    value = value or ""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value
