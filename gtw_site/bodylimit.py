"""A cap on HTTP request bodies (settings.GTW_MAX_REQUEST_BYTES), enforced before anything stores
the body.

Without it one anonymous POST of many gigabytes to any URL fills the server's disk: Daphne
(Twisted) writes a whole body to a temporary file before it calls the application, and Django's
ASGI handler spools it once more before any view, sign-in or size check runs. The upload caps
the views check (a memory import's 413) come after both.

Two layers, one limit:

- `CappedWebRequest`, Daphne's request class with the cap, installed by `install_in_daphne()`
  (gtw_site.asgi calls it; Daphne imports the application before it accepts connections). A
  declared Content-Length over the cap is answered 413 at once, and a chunked body when its
  running total passes it; either way the connection closes and nothing more is read.
- `RequestBodyLimit`, the same rule as ASGI middleware, for any other ASGI server.
"""

from __future__ import annotations

from django.conf import settings


def limit() -> int:
    return settings.GTW_MAX_REQUEST_BYTES


def refusal(cap: int) -> bytes:
    return f"This request is too large: the server takes at most {cap / 1_000_000:.1f} MB.\n".encode()


class RequestBodyLimit:
    """ASGI middleware: 413 for a body over the cap, before the application reads it. A body
    within the cap is passed on unchanged (held in memory meanwhile, as Django would hold it)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        cap = limit()
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.strip().isdigit() and int(declared) > cap:
            return await self._too_large(send, cap)
        held, size = [], 0
        while True:
            message = await receive()
            held.append(message)
            if message["type"] != "http.request":
                break  # the client went away: let the app see it
            size += len(message.get("body", b""))
            if size > cap:
                return await self._too_large(send, cap)
            if not message.get("more_body", False):
                break

        async def replay():
            return held.pop(0) if held else await receive()

        return await self.app(scope, replay, send)

    @staticmethod
    async def _too_large(send, cap: int) -> None:
        headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"connection", b"close")]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": refusal(cap)})


def capped_request_class(base):
    """Daphne's request class (a twisted.web Request) with the cap on what it reads."""

    class CappedWebRequest(base):
        refused = False
        received = 0

        def gotLength(self, length):
            if length is not None and length > limit():
                self._refuse()
                length = 0  # nothing of the body will be kept
            super().gotLength(length)

        def handleContentChunk(self, data):
            if self.refused:
                return
            self.received += len(data)
            if self.received > limit():
                self._refuse()
                return
            super().handleContentChunk(data)

        def requestReceived(self, command, path, version):
            if self.refused:
                return  # answered already; the connection is closing
            super().requestReceived(command, path, version)

        def _refuse(self) -> None:
            self.refused = True
            body = refusal(limit())
            transport = self.channel.transport
            transport.write(
                b"HTTP/1.1 413 Request Entity Too Large\r\n"
                b"Content-Type: text/plain; charset=utf-8\r\n"
                b"Content-Length: " + str(len(body)).encode() + b"\r\n"
                b"Connection: close\r\n\r\n" + body
            )
            transport.loseConnection()

    CappedWebRequest.__name__ = CappedWebRequest.__qualname__ = "CappedWebRequest"
    return CappedWebRequest


def install_in_daphne() -> None:
    """Make Daphne build capped requests (its HTTPFactory reads the module's WebRequest for each
    connection). Does nothing where Daphne isn't installed, and only once."""
    try:
        from daphne import http_protocol
    except ImportError:
        return
    if getattr(http_protocol.WebRequest, "gtw_capped", False):
        return
    capped = capped_request_class(http_protocol.WebRequest)
    capped.gtw_capped = True
    http_protocol.WebRequest = capped
