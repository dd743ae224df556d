"""Print or write an incident report for automation (运维报表).

    python manage.py incident_report --from 2016-03-01 --to 2016-03-31 --period week
    python manage.py incident_report --from 2016-03-01 --to 2016-03-31 --group-by priority \\
        --format xlsx --output report.xlsx [--user head] [--language en]

One of --period, --group-by or --tiers chooses the report. JSON goes to standard output
(or --output); each group carries count, resolved, open, imported, mean_handling_seconds,
mean_business_seconds, sla_met, sla_breached and sla_met_ratio, period rows also the
previous period's figures and the change, and "partial": true when the range cuts the
bucket (no change ratio is given then, nor for the bucket after it). With --user the report
counts only what that user may see; without it, every incident.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import translation
from django.utils.translation import gettext as _

from apps.bjgas_platform.models import BusinessSystem, Company, User

from ...choices import Priority
from ...models import Channel
from ...services.report_export import build_workbook
from ...services.reports import (
    GROUP_FIELDS,
    PERIODS,
    Report,
    ReportError,
    ReportFilter,
    ReportRow,
    group_report,
    narrative,
    period_report,
    tier_report,
)

FORMATS = ("json", "xlsx")
# The option that a report error's field comes from.
ERROR_OPTIONS = {"start": "--from", "end": "--to", "period": "--period", "group_by": "--group-by"}


class Command(BaseCommand):
    help = _("Print or write incident counts and handling times per period or group.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--from", dest="start", required=True, help=_("First day, YYYY-MM-DD."))
        parser.add_argument("--to", dest="end", required=True, help=_("Last day, YYYY-MM-DD."))
        parser.add_argument("--period", help=" | ".join(PERIODS))
        parser.add_argument("--group-by", dest="group_by", help=" | ".join(GROUP_FIELDS))
        parser.add_argument(
            "--tiers",
            action="store_true",
            help=_("Time spent per support tier, from the incidents' segments."),
        )
        parser.add_argument("--format", default="json", help=" | ".join(FORMATS))
        parser.add_argument("--output", help=_("Write to this file (required for xlsx)."))
        parser.add_argument("--user", help=_("Count only what this user may see (username)."))
        parser.add_argument(
            "--language",
            default=settings.LANGUAGE_CODE,
            help=" | ".join(code for code, _name in settings.LANGUAGES),
        )
        parser.add_argument(
            "--business-system",
            dest="business_systems",
            action="append",
            default=[],
            help=_("Only this business system (code); repeat for more."),
        )
        parser.add_argument(
            "--company",
            dest="companies",
            action="append",
            default=[],
            help=_("Only this reporting company (code); repeat for more."),
        )
        parser.add_argument(
            "--priority",
            dest="priorities",
            action="append",
            default=[],
            help=_("Only this priority (P1-P4); repeat for more."),
        )
        parser.add_argument(
            "--channel",
            dest="channels",
            action="append",
            default=[],
            help=_("Only this channel; repeat for more."),
        )
        imported = parser.add_mutually_exclusive_group()
        imported.add_argument(
            "--imported", action="store_const", const=True, help=_("Only batch-imported incidents.")
        )
        imported.add_argument(
            "--native",
            dest="imported",
            action="store_const",
            const=False,
            help=_("Only incidents reported here."),
        )

    def handle(self, *args, **options) -> None:
        language = options["language"]
        if language not in dict(settings.LANGUAGES):
            raise CommandError(
                _bad_choice("--language", language, [code for code, _n in settings.LANGUAGES])
            )
        with translation.override(language):
            try:
                self._run(options, language)
            except ReportError as exc:
                option = ERROR_OPTIONS.get(exc.field)
                raise CommandError(f"{option}: {exc}" if option else str(exc)) from None

    def _run(self, options: dict, language: str) -> None:
        flt = _report_filter(options)
        user = _user(options["user"])
        output_format = options["format"]
        if output_format not in FORMATS:
            raise CommandError(_bad_choice("--format", output_format, FORMATS))
        if output_format == "xlsx" and not options["output"]:
            raise CommandError(_("--format xlsx writes a file: give its path with --output."))

        report = _report(user, flt, options)
        if output_format == "xlsx":
            try:
                build_workbook(report).save(options["output"])
            except OSError as exc:
                raise CommandError(_cannot_write(options["output"], exc)) from None
            self.stderr.write(_("Wrote %(path)s.") % {"path": options["output"]})
            return
        document = report_document(report, user, narrative(user, flt, language))
        text = json.dumps(document, ensure_ascii=False, indent=2)
        if options["output"]:
            try:
                Path(options["output"]).write_text(text + "\n", encoding="utf-8")
            except OSError as exc:
                raise CommandError(_cannot_write(options["output"], exc)) from None
            self.stderr.write(_("Wrote %(path)s.") % {"path": options["output"]})
        else:
            self.stdout.write(text)


def report_document(report: Report, user: User | None, summary: str) -> dict:
    """Return the report as the JSON document the command prints."""
    document = {
        "title": report.title,
        "from": report.filter.start.isoformat(),
        "to": report.filter.end.isoformat(),
    }
    if report.kind == "period":
        document["period"] = report.dimension
    elif report.kind == "group":
        document["group_by"] = report.dimension
    else:
        document["report"] = "tiers"
    document.update(
        user=user.username if user else None,
        definitions=report.definitions,
        groups=[_row_document(row) for row in report.rows],
        total=report.total.as_dict(),
        narrative=summary,
    )
    return document


def _row_document(row: ReportRow) -> dict:
    item = {"key": row.key, "label": row.label, **row.figures.as_dict()}
    if row.start is not None:
        item.update(start=row.start.isoformat(), end=row.end.isoformat(), partial=row.partial)
    if row.previous is not None:
        item.update(
            previous=row.previous.as_dict(),
            count_change=row.count_change,
            count_change_ratio=row.count_change_ratio,
            handling_change_seconds=row.handling_change_seconds,
        )
    if "top_reporters" in row.extra:
        item["top_reporters"] = [
            {"name": name, "count": count} for name, count in row.extra["top_reporters"]
        ]
    return item


def _report(user: User | None, flt: ReportFilter, options: dict) -> Report:
    period, group_by, tiers = options["period"], options["group_by"], options["tiers"]
    chosen = [name for name, value in (("--period", period), ("--group-by", group_by),
                                       ("--tiers", tiers)) if value]  # fmt: skip
    if len(chosen) != 1:
        raise CommandError(
            _("Choose exactly one of --period, --group-by and --tiers (given: %(given)s).")
            % {"given": ", ".join(chosen) or "-"}
        )
    if period is not None:
        if period not in PERIODS:
            raise CommandError(_bad_choice("--period", period, PERIODS))
        return period_report(user, flt, period)
    if group_by is not None:
        if group_by not in GROUP_FIELDS:
            raise CommandError(_bad_choice("--group-by", group_by, GROUP_FIELDS))
        return group_report(user, flt, group_by)
    return tier_report(user, flt)


def _report_filter(options: dict) -> ReportFilter:
    start = _day("--from", options["start"])
    end = _day("--to", options["end"])
    if end < start:
        raise CommandError(
            _("--to %(end)s is before --from %(start)s.")
            % {"start": start.isoformat(), "end": end.isoformat()}
        )
    for priority in options["priorities"]:
        if priority not in Priority.values:
            raise CommandError(_bad_choice("--priority", priority, Priority.values))
    for channel in options["channels"]:
        if channel not in Channel.values:
            raise CommandError(_bad_choice("--channel", channel, Channel.values))
    return ReportFilter(
        start=start,
        end=end,
        business_systems=_ids("--business-system", BusinessSystem, options["business_systems"]),
        companies=_ids("--company", Company, options["companies"]),
        priorities=tuple(options["priorities"]),
        channels=tuple(options["channels"]),
        imported=options["imported"],
    )


def _day(option: str, text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CommandError(
            _("%(option)s: '%(value)s' is not a date; write it as YYYY-MM-DD, e.g. 2016-03-01.")
            % {"option": option, "value": text}
        ) from None


def _ids(option: str, model, codes: list[str]) -> tuple[int, ...]:
    found = dict(model.objects.filter(code__in=codes).values_list("code", "pk"))
    for code in codes:
        if code not in found:
            raise CommandError(
                _("%(option)s: nothing has the code '%(code)s'.") % {"option": option, "code": code}
            )
    return tuple(found[code] for code in codes)


def _user(username: str | None) -> User | None:
    if not username:
        return None
    user = User.objects.filter(username=username).first()
    if user is None:
        raise CommandError(_("--user: no user is called '%(name)s'.") % {"name": username})
    if not user.is_active:
        raise CommandError(
            _("--user: '%(name)s' is inactive and sees no incident.") % {"name": username}
        )
    return user


def _cannot_write(path: str, exc: OSError) -> str:
    return _("--output: cannot write %(path)s (%(reason)s).") % {
        "path": path,
        "reason": exc.strerror or exc,
    }


def _bad_choice(option: str, value: str, allowed) -> str:
    return _("%(option)s: unknown value '%(value)s'; choose one of: %(allowed)s.") % {
        "option": option,
        "value": value,
        "allowed": ", ".join(allowed),
    }
