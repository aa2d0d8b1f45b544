"""Domain errors that the API and views turn into messages a person can act on."""


class DomainError(Exception):
    """Base class. `field` names the input at fault where there is one."""

    status_code = 400

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidInput(DomainError):
    status_code = 400


class NotAllowed(DomainError):
    status_code = 403


class TransitionNotAllowed(DomainError):
    status_code = 409


class StaleVersion(DomainError):
    status_code = 409


class NotVisible(DomainError):
    status_code = 404
