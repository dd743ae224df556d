from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class OpsConfig(AppConfig):
    name = "apps.bjgas_ops"
    label = "bjgas_ops"
    verbose_name = _("IT service management")

    def ready(self) -> None:
        from apps.bjgas_platform.roles import register_reference_loader

        from . import signals  # noqa: F401 (connects the receivers)
        from .reference import load_ops_reference

        register_reference_loader(load_ops_reference)
        post_migrate.connect(_load_reference, sender=self)


def _load_reference(sender, using="default", **kwargs) -> None:
    """Create roles and default workflows right after `migrate`, test databases included."""
    from apps.bjgas_platform.roles import load_reference_data

    load_reference_data()
    _install_report_triggers(using)


def _install_report_triggers(using: str) -> None:
    """(Re)install the triggers that mark changed days for the report roll-up."""
    from django.db import connections

    from .models import IncidentDayFigures, ReportDirtyDay
    from .services.report_rollup import ensure_triggers

    tables = connections[using].introspection.table_names()
    if {IncidentDayFigures._meta.db_table, ReportDirtyDay._meta.db_table} <= set(tables):
        ensure_triggers()
