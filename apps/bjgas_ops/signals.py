"""Receivers of the platform's signals for the service-management processes."""

from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from apps.bjgas_platform.models import SlaMetric
from apps.bjgas_platform.signals import clocks_refreshed, transition_applied

from .models import ImportJob, Incident


@receiver(transition_applied, sender=Incident, dispatch_uid="bjgas_ops.incident_transition")
def incident_transition_applied(sender, record, log, actor, **kwargs) -> None:
    """Keep an incident's assignee, resolution and segments in step with its state."""
    from .services.incidents import after_transition

    after_transition(record, log, actor)


@receiver(clocks_refreshed, sender=Incident, dispatch_uid="bjgas_ops.incident_sla_verdict")
def incident_clocks_refreshed(sender, record, clocks, **kwargs) -> None:
    """Keep the incident's SLA verdict for the reports: the resolution limit's."""
    if record.source_system:
        return  # an imported incident keeps the verdict of the system that ran it then
    clock = clocks.get(SlaMetric.RESOLUTION)
    verdict = None
    if clock is not None and (clock.breached or clock.stopped_at is not None):
        verdict = not clock.breached
    if record.sla_met != verdict:
        record.sla_met = verdict
        Incident.objects.filter(pk=record.pk).update(sla_met=verdict)


@receiver(post_delete, sender=ImportJob, dispatch_uid="bjgas_ops.import_job_file")
def import_job_deleted(sender, instance, **kwargs) -> None:
    """A deleted job takes its uploaded file with it (the file may hold personal data),
    once the deletion is committed."""
    if instance.file:
        name, storage = instance.file.name, instance.file.storage
        transaction.on_commit(lambda: storage.delete(name))
