"""ASGI entry point: HTTP through Django (static files served too, so `gtw up` needs no
proxy), websockets through Channels with session auth and an Origin check."""

import gc
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gtw_site.settings")

from django.core.asgi import get_asgi_application

django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402
from django.core.exceptions import SuspiciousOperation  # noqa: E402
from django.http import Http404  # noqa: E402

from gtw_site.auth import TokenAuthMiddleware  # noqa: E402
from gtw_site.bodylimit import RequestBodyLimit, install_in_daphne  # noqa: E402
from realtime.routing import websocket_urlpatterns  # noqa: E402


class StaticFilesHandler(ASGIStaticFilesHandler):
    """Django's static files handler, where a path that climbs out of the static folders
    (`/static/../gtw_site/settings.py`, `%2e%2e`, `..%2f`) is a plain 404 like any missing file.
    Django's raises SuspiciousFileOperation there, which this handler does not catch: "Exception
    inside application" and a traceback in the log for every such probe."""

    def serve(self, request):
        try:
            return super().serve(request)
        except SuspiciousOperation:
            raise Http404("No such file.") from None


# Bodies over GTW_MAX_REQUEST_BYTES are refused before anything stores them (gtw_site.bodylimit).
install_in_daphne()
http_app = RequestBodyLimit(StaticFilesHandler(django_asgi_app) if settings.STATIC_URL else django_asgi_app)

application = ProtocolTypeRouter(
    {
        "http": http_app,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(TokenAuthMiddleware(URLRouter(websocket_urlpatterns)))
        ),
    }
)

# Move everything loaded so far out of the collector's reach: with 50 sockets a full
# collection paused Daphne for 40-110 ms about once a second (docs/BENCHMARKS.md).
gc.freeze()
