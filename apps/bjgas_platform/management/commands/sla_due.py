"""Check a business calendar: when a limit falls due, how much business time lies between."""

from datetime import datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from ...models import BusinessCalendar
from ...services.business_time import BusinessClock, CalendarError, parse_duration


def _moment(text: str, option: str) -> datetime:
    value = parse_datetime(text.strip())
    if value is None:
        raise CommandError(f"{option}: '{text}' is not a time; write YYYY-MM-DD HH:MM.")
    if timezone.is_naive(value):
        value = timezone.make_aware(value)
    return value


class Command(BaseCommand):
    help = "Show when a limit on a business calendar falls due, or the business time between."

    def add_arguments(self, parser):
        parser.add_argument("--calendar", required=True, help="the calendar's code")
        parser.add_argument("--start", required=True, help="YYYY-MM-DD HH:MM, local time")
        parser.add_argument("--limit", help="e.g. 4h, 90m, 1d2h (business time)")
        parser.add_argument("--end", help="YYYY-MM-DD HH:MM: print the business time until then")
        parser.add_argument(
            "--pause", action="append", default=[], help="START/END, a span the clock stops"
        )

    def handle(self, *args, **options):
        try:
            calendar = BusinessCalendar.objects.get(code=options["calendar"])
        except BusinessCalendar.DoesNotExist as exc:
            codes = ", ".join(BusinessCalendar.objects.values_list("code", flat=True))
            raise CommandError(
                f"--calendar: no calendar '{options['calendar']}'; known: {codes}"
            ) from exc
        if not options["limit"] and not options["end"]:
            raise CommandError("give --limit, --end or both")
        clock = BusinessClock.for_calendar(calendar)
        start = _moment(options["start"], "--start")
        pauses = []
        for text in options["pause"]:
            begin, sep, end = text.partition("/")
            if not sep:
                raise CommandError(f"--pause: '{text}' must be START/END")
            pauses.append((_moment(begin, "--pause"), _moment(end, "--pause")))
        local = timezone.localtime
        try:
            self.stdout.write(f"calendar: {calendar.code} {calendar.name}")
            self.stdout.write(f"start:    {local(start):%Y-%m-%d %H:%M:%S %Z}")
            first = clock.next_working_moment(start)
            self.stdout.write(f"clock starts: {local(first):%Y-%m-%d %H:%M:%S %Z}")
            if options["limit"]:
                seconds = parse_duration(options["limit"])
                due = clock.add_with_pauses(start, seconds, pauses)
                self.stdout.write(f"limit:    {options['limit']} = {seconds:.0f} s")
                self.stdout.write(f"due:      {local(due):%Y-%m-%d %H:%M:%S %Z}")
            if options["end"]:
                end = _moment(options["end"], "--end")
                total = clock.seconds_between(start, end) - sum(
                    clock.seconds_between(max(a, start), min(b, end)) for a, b in pauses
                )
                hours, rest = divmod(int(total), 3600)
                self.stdout.write(
                    f"business time to {local(end):%Y-%m-%d %H:%M}: {total:.0f} s "
                    f"({hours}h{rest // 60:02d}m)"
                )
        except CalendarError as exc:
            raise CommandError(str(exc)) from exc
        for warning in sorted(clock.warnings):
            self.stderr.write(f"warning: {warning}")
