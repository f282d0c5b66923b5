"""Maeul's one error tree. Domain code raises these; one middleware maps them to replies.

::

    MaeulError
    ├── ConfigError                 start-up: a setting is missing or malformed (never an HTTP reply)
    └── AppError                    anything a request can run into; carries status + stable code
        ├── BadRequest              400  malformed input (bad JSON, unknown field, wrong type)
        ├── AuthenticationRequired  401  no valid session / device token
        ├── Forbidden               403  authenticated, but the role may not do this
        │   └── CsrfFailed          403  unsafe request without a valid CSRF token
        ├── NotFound                404
        ├── Conflict                409  state does not allow it (e.g. code already used)
        ├── PayloadTooLarge         413
        ├── TooManyRequests         429  throttled (login, PIN); carries retry_after seconds
        └── ServiceUnavailable      503  a dependency (the database) is down

API requests (``/api/…`` or ``Accept: application/json``) get
``{"error": {"code": …, "message": …, "details": …}}``; pages get a friendly localized page.
``message`` is an English sentence for logs and developers; pages translate ``code`` instead.
"""

from __future__ import annotations

from typing import Any


class MaeulError(Exception):
    """Root of every error Maeul raises on purpose."""


class ConfigError(MaeulError):
    """A setting is missing or malformed; raised at start-up with a message for the operator."""


class AppError(MaeulError):
    status: int = 500
    code: str = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        details: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            body["details"] = self.details
        return {"error": body}


class BadRequest(AppError):
    status = 400
    code = "bad_request"


class AuthenticationRequired(AppError):
    status = 401
    code = "authentication_required"


class Forbidden(AppError):
    status = 403
    code = "forbidden"


class CsrfFailed(Forbidden):
    code = "csrf_failed"


class NotFound(AppError):
    status = 404
    code = "not_found"


class Conflict(AppError):
    status = 409
    code = "conflict"


class PayloadTooLarge(AppError):
    status = 413
    code = "payload_too_large"


class TooManyRequests(AppError):
    status = 429
    code = "too_many_requests"

    def __init__(self, message: str, *, retry_after: int, code: str | None = None) -> None:
        super().__init__(message, code=code, details={"retry_after": retry_after})
        self.retry_after = retry_after


class ServiceUnavailable(AppError):
    status = 503
    code = "service_unavailable"
