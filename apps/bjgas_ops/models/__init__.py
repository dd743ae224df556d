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
    "Incident",
    "IncidentCategory",
    "IncidentSegment",
    "Level",
    "PriorityMatrix",
    "Severity",
    "Task",
]
