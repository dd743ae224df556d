from .task import Task

__all__ = ["Task"]
