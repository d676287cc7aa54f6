from csp.constants import SELF, UNSAFE_INLINE
from csp.middleware import CSPMiddleware, PolicyParts
from django.core.exceptions import DisallowedHost
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse
from django.urls import NoReverseMatch, reverse


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
        from gtw_site.reconnect import redis_down

        if redis_down(exception):  # issue 23: Redis restarting is an outage too, not a crash
            return HttpResponse(
                "The game server is reconnecting to its message broker (Redis); nothing was recorded. "
                "Try again in a few seconds.",
                status=503,
                content_type="text/plain",
                headers={"Retry-After": "2"},
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

        from gtw_site.errors import DomainError

        if isinstance(exception, DomainError):
            return render(request, "error.html", {"error": exception}, status=exception.status)
        return None


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    """django-csp's header (settings.CONTENT_SECURITY_POLICY), plus two things a static policy
    cannot say:

    - connect-src names the page's own websocket origin (ws:// or wss:// + the request's host).
      CSP Level 3 lets 'self' match it, but older browsers (Safari before 15.4) do not, and a
      live page without its socket is dead.
    - The Django admin (staff only) may use inline styles: Django's change list writes a
      <style> block and our admin columns use style attributes. Its scripts stay as strict as
      everywhere else (Django 5.2's admin has no inline script).
    """

    def get_policy_parts(self, request, response, report_only: bool = False) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        update = dict(parts.update or {})
        origin = _ws_origin(request)
        if origin:
            update["connect-src"] = [*_as_list(update.get("connect-src")), origin]
        if _is_admin(request.path_info):
            parts.replace = {**(parts.replace or {}), "style-src": [SELF, UNSAFE_INLINE]}
        parts.update = update
        return parts


def _as_list(value) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple | set) else [value]


def _ws_origin(request) -> str | None:
    try:
        host = request.get_host()
    except DisallowedHost:
        return None  # Django refuses the request anyway; 'self' still covers same-origin sockets
    return f"{'wss' if request.is_secure() else 'ws'}://{host}"


def _is_admin(path: str) -> bool:
    # The staff admin and the GM admin (/gm/, issue 22) render the same Django admin templates.
    for name in ("admin:index", "gm:index"):
        try:
            if path.startswith(reverse(name)):
                return True
        except NoReverseMatch:
            continue
    return False
