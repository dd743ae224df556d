"""Business calendars: working hours per weekday, public holidays, make-up working days."""

from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from .org import code_validator

PERIOD_ORDER = _("A working period must end after it starts (same day).")


class Weekday(models.IntegerChoices):
    MONDAY = 0, _("Monday")
    TUESDAY = 1, _("Tuesday")
    WEDNESDAY = 2, _("Wednesday")
    THURSDAY = 3, _("Thursday")
    FRIDAY = 4, _("Friday")
    SATURDAY = 5, _("Saturday")
    SUNDAY = 6, _("Sunday")


class HolidayKind(models.TextChoices):
    DAY_OFF = "off", _("Public holiday (day off)")
    WORKDAY = "workday", _("Make-up working day (调休上班)")


class BusinessCalendar(models.Model):
    """When the clock of a service agreement runs: working periods, holidays, exceptions."""

    code = models.CharField(_("code"), max_length=40, unique=True, validators=[code_validator])
    name = models.CharField(_("name"), max_length=100)
    is_24x7 = models.BooleanField(
        _("7×24"), default=False, help_text=_("Every minute counts; periods and holidays ignored.")
    )
    observes_public_holidays = models.BooleanField(
        _("observes public holidays"),
        default=True,
        help_text=_("Public holidays are days off and make-up working days are working days."),
    )
    makeup_day_weekday = models.PositiveSmallIntegerField(
        _("make-up days work like"),
        choices=Weekday.choices,
        default=Weekday.MONDAY,
        help_text=_("Whose working periods a make-up working day (调休上班) uses."),
    )
    description = models.TextField(_("description"), blank=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("business calendar")
        verbose_name_plural = _("business calendars")
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name


class WorkingPeriod(models.Model):
    """One working interval on one weekday, e.g. Monday 08:30–12:00."""

    calendar = models.ForeignKey(
        BusinessCalendar, models.CASCADE, related_name="periods", verbose_name=_("calendar")
    )
    weekday = models.PositiveSmallIntegerField(_("weekday"), choices=Weekday.choices)
    start = models.TimeField(_("from"))
    end = models.TimeField(_("to"))

    class Meta:
        verbose_name = _("working period")
        verbose_name_plural = _("working periods")
        ordering = ["calendar", "weekday", "start"]

    def __str__(self) -> str:
        return f"{self.get_weekday_display()} {self.start:%H:%M}–{self.end:%H:%M}"

    def clean(self) -> None:
        super().clean()
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValidationError({"end": ValidationError(PERIOD_ORDER, code="period_order")})


class PublicHoliday(models.Model):
    """A national day off or make-up working day; seeded from a package, edited by admins."""

    date = models.DateField(_("date"), unique=True)
    kind = models.CharField(_("kind"), max_length=10, choices=HolidayKind.choices)
    name = models.CharField(_("name"), max_length=50, blank=True)
    source = models.CharField(_("source"), max_length=30, default="manual", editable=False)
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("public holiday / make-up day")
        verbose_name_plural = _("public holidays and make-up days")
        ordering = ["date"]

    def __str__(self) -> str:
        return f"{self.date} {self.get_kind_display()} {self.name}"


class CalendarException(models.Model):
    """A local exception for one calendar on one date: closed, or open at other hours."""

    calendar = models.ForeignKey(
        BusinessCalendar, models.CASCADE, related_name="exceptions", verbose_name=_("calendar")
    )
    date = models.DateField(_("date"))
    is_working = models.BooleanField(_("working day"), default=False)
    start = models.TimeField(_("from"), null=True, blank=True)
    end = models.TimeField(_("to"), null=True, blank=True)
    name = models.CharField(_("reason"), max_length=100, blank=True)

    class Meta:
        verbose_name = _("calendar exception")
        verbose_name_plural = _("calendar exceptions")
        ordering = ["calendar", "date"]
        constraints = [
            models.UniqueConstraint(fields=["calendar", "date"], name="calendar_exception_once")
        ]

    def __str__(self) -> str:
        return f"{self.date} {self.name}"

    def clean(self) -> None:
        super().clean()
        if self.is_working:
            if self.start is None or self.end is None:
                raise ValidationError(
                    {
                        "start": ValidationError(
                            _("A working exception needs its hours: fill in from and to."),
                            code="exception_hours",
                        )
                    }
                )
            if self.end <= self.start:
                raise ValidationError({"end": ValidationError(PERIOD_ORDER, code="period_order")})
