"""Domain errors: what a service refuses and which input is at fault, with no HTTP in them.

Services raise these; each door maps them to its own answer in one place: the management API
in `api/errors.py` (400, 404, 409), the admin as a message, the console as its page, a command
as a CommandError. A plain ValueError is a bug, not a refusal, and is never turned into a 400.
"""

from __future__ import annotations


class DomainError(Exception):
    """A request a service refuses; `field` names the input at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class NotFound(DomainError):
    """What the request names does not exist (or is not visible to the caller)."""


class Conflict(DomainError):
    """The request is well formed but clashes with the current state."""
