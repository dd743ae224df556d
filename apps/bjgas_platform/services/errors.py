"""The error every service raises when it refuses an action."""


class PlatformError(Exception):
    """A refusal with a translated message for the user, a stable code, and the field."""

    def __init__(self, message: str, code: str = "error", field: str | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.field = field

    def __str__(self) -> str:
        return str(self.message)
