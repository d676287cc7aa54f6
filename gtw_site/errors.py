"""Domain errors: the shared base's one hierarchy, raised by every app and mapped once to HTTP
responses (gtw_site/api.py, gtw_site/middleware.py) and to websocket error frames
(realtime/consumers.py). campaigns.errors re-exports these same classes."""


class DomainError(Exception):
    status = 400
    code = "invalid"

    def __init__(self, message: str, *, code: str | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code


class NotFound(DomainError):
    """Also what a non-member gets for a campaign that exists: no existence leak."""

    status = 404
    code = "not_found"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"


class Invalid(DomainError):
    status = 422
    code = "invalid"


class Conflict(DomainError):
    status = 409
    code = "conflict"


class Gone(DomainError):
    status = 410
    code = "gone"


class RateLimited(DomainError):
    """Too many requests of one kind from one user (gtw_site.ratelimit)."""

    status = 429
    code = "rate_limited"
