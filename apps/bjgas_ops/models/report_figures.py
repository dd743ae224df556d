"""Daily roll-up of the incident report figures, kept by the database itself.

`IncidentDayFigures` holds, per local day an incident was reported on, per report
dimension and per value of it, per workflow state, the counts and sums the reports add
up. A report over a range then reads a few thousand of these rows instead of every
incident. Database triggers on the incident and segment tables note each day whose
incidents changed in `ReportDirtyDay`, whatever wrote them (a workflow step, an import,
a queryset update, a cascade); `services.report_rollup` recomputes those days before a
report reads them, so a report is never older than its data.
"""

from django.db import models
from django.utils.translation import gettext_lazy as _

# The dimension of the rows that count all incidents of a day, and that of the time per
# support tier, read from the segments: count = incidents handled in the tier, resolved =
# those of them that left it, handling_sum / business_sum = their seconds in it.
ALL = ""
TIER_TIME = "tier_time"


class IncidentDayFigures(models.Model):
    day = models.DateField(_("reported on"))
    dimension = models.CharField(_("dimension"), max_length=20)
    value = models.CharField(_("value"), max_length=64, blank=True)
    state = models.CharField(_("state"), max_length=40, blank=True)
    count = models.PositiveIntegerField(_("incidents"), default=0)
    resolved = models.PositiveIntegerField(_("resolved"), default=0)
    imported = models.PositiveIntegerField(_("batch-imported"), default=0)
    handling_sum = models.FloatField(_("handling seconds"), default=0)
    handling_n = models.PositiveIntegerField(_("incidents with a handling time"), default=0)
    business_sum = models.FloatField(_("business seconds"), default=0)
    business_n = models.PositiveIntegerField(_("incidents with a business time"), default=0)
    sla_met = models.PositiveIntegerField(_("SLA met"), default=0)
    sla_breached = models.PositiveIntegerField(_("SLA breached"), default=0)

    class Meta:
        verbose_name = _("incident figures of a day")
        verbose_name_plural = _("incident figures per day")
        constraints = [
            models.UniqueConstraint(
                fields=["dimension", "day", "value", "state"], name="incident_day_figures_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.dimension}={self.value} {self.state}: {self.count}"


class ReportDirtyDay(models.Model):
    """A day whose incidents changed since its figures were computed (set by triggers)."""

    day = models.DateField(_("reported on"), primary_key=True)

    class Meta:
        verbose_name = _("day to recount")
        verbose_name_plural = _("days to recount")

    def __str__(self) -> str:
        return self.day.isoformat()


class ReportMarkPause(models.Model):
    """While a row exists, the triggers mark no day. A bulk import adds one inside its own
    transaction, so that only its own writes go unmarked (no other connection sees the
    uncommitted row), and marks the days of what it wrote itself, in one statement."""

    class Meta:
        verbose_name = _("pause of the day marks")
        verbose_name_plural = _("pauses of the day marks")

    def __str__(self) -> str:
        return f"pause {self.pk}"
