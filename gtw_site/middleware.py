from django.db import InterfaceError, OperationalError
from django.http import HttpResponse


class DatabaseUnavailableMiddleware:
    """A dead database gets a clear 503, not a traceback. The server recovers on its own once
    PostgreSQL is back (CONN_HEALTH_CHECKS reopens the connection)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, OperationalError | InterfaceError):
            return HttpResponse(
                "The game database is unavailable right now. If you run gtw yourself, it restarts "
                "PostgreSQL automatically; try again in a few seconds.",
                status=503,
                content_type="text/plain",
            )
        return None


class DomainErrorMiddleware:
    """Pages: a domain error (not found, forbidden, gone…) renders a friendly page with its status."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        from django.shortcuts import render

        from campaigns.errors import DomainError

        if isinstance(exception, DomainError):
            return render(request, "error.html", {"error": exception}, status=exception.status)
        return None
