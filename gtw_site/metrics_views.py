"""`GET /metrics`: the Prometheus exposition (gtw_site.metrics), for a bearer token or loopback.

With GTW_METRICS_TOKEN set, `Authorization: Bearer <token>` reads it from anywhere (401 without
a token, 403 with a wrong one). A loopback client may read it without one — but only when no
reverse proxy is in front (GTW_PROXY_HOPS = 0): behind a proxy every request arrives from the
proxy's address, loopback included, so only the token counts there.
"""

from __future__ import annotations

import hmac
import ipaddress

from django.conf import settings
from django.http import HttpResponse
from django.views.decorators.http import require_GET

from gtw_site import metrics


def _loopback(request) -> bool:
    if getattr(settings, "GTW_PROXY_HOPS", 0):
        return False
    try:
        return ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        return False


@require_GET
def metrics_view(request):
    token = getattr(settings, "GTW_METRICS_TOKEN", "")
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, given = header.partition(" ")
    if header:
        if scheme.lower() != "bearer" or not token or not hmac.compare_digest(given.strip(), token):
            return HttpResponse("forbidden: wrong metrics token\n", status=403, content_type="text/plain")
    elif not _loopback(request):
        response = HttpResponse(
            "unauthorized: send 'Authorization: Bearer <GTW_METRICS_TOKEN>' (or scrape from this machine)\n",
            status=401,
            content_type="text/plain",
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    body, content_type = metrics.exposition(settings.GTW_METRICS_DIR)
    return HttpResponse(body, content_type=content_type)
