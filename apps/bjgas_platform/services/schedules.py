"""Periodic jobs in Celery beat's database schedule."""

from __future__ import annotations


def ensure_every_minute(name: str, task: str, **options) -> None:
    """Schedule `task` every minute under `name`, once.

    An existing schedule of that name is left alone: an administrator may have changed or
    paused it. `options` are further PeriodicTask fields (expire_seconds, description).
    """
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    if PeriodicTask.objects.filter(name=name).exists():
        return
    every_minute = IntervalSchedule.objects.filter(
        every=1, period=IntervalSchedule.MINUTES
    ).first() or IntervalSchedule.objects.create(every=1, period=IntervalSchedule.MINUTES)
    PeriodicTask.objects.get_or_create(
        name=name, defaults={"task": task, "interval": every_minute, **options}
    )
