from .imports import ImportFormat, ImportJob, ImportMapping, ImportStatus
from .incident import (
    Channel,
    Incident,
    IncidentCategory,
    IncidentSegment,
    Level,
    PriorityMatrix,
    Severity,
)
from .report_figures import IncidentDayFigures, ReportDirtyDay, ReportMarkPause
from .task import Task

__all__ = [
    "Channel",
    "ImportFormat",
    "ImportJob",
    "ImportMapping",
    "ImportStatus",
    "Incident",
    "IncidentCategory",
    "IncidentDayFigures",
    "IncidentSegment",
    "Level",
    "PriorityMatrix",
    "ReportDirtyDay",
    "ReportMarkPause",
    "Severity",
    "Task",
]
