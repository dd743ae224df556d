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
from .task import Task

__all__ = [
    "Channel",
    "ImportFormat",
    "ImportJob",
    "ImportMapping",
    "ImportStatus",
    "Incident",
    "IncidentCategory",
    "IncidentSegment",
    "Level",
    "PriorityMatrix",
    "Severity",
    "Task",
]
