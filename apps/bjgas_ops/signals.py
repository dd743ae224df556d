"""Receivers of the platform's signals for the service-management processes."""

from django.dispatch import receiver

from apps.bjgas_platform.signals import transition_applied

from .models import Incident


@receiver(transition_applied, sender=Incident, dispatch_uid="bjgas_ops.incident_transition")
def incident_transition_applied(sender, record, log, actor, **kwargs) -> None:
    """Keep an incident's assignee, resolution and segments in step with its state."""
    from .services.incidents import after_transition

    after_transition(record, log, actor)
