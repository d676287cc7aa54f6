"""Security review of issue 11 (hole 10, "no quotas", one level down): the upload caps (413 for a
memory import past GTW_MEMORY_IMPORT_MAX_BYTES) are checked by the view, but Daphne (Twisted)
writes a whole request body to a temporary file before it calls the application, and Django's
ASGI handler spools it again before any view or sign-in check runs. So one anonymous POST of many
gigabytes to any URL (`/healthz` will do) filled the server's disk. gtw_site.bodylimit refuses a
body over GTW_MAX_REQUEST_BYTES with 413 in both places, before it is stored: Daphne's own
protocol over an in-memory transport, and the real ASGI app as Daphne would call it."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from asgiref.testing import ApplicationCommunicator

LIMIT = 50_000


@pytest.fixture(autouse=True)
def _small_limit(settings):
    settings.GTW_MAX_REQUEST_BYTES = LIMIT


def post(
    path: str,
    chunks: list[bytes],
    *,
    content_length: int | None = None,
    more_after: bool = False,
    token: str | None = None,
):
    """POST `chunks` (one http.request message each) through gtw_site.asgi.application; with
    `more_after` the last chunk says more is coming (a client still sending). The response's
    status and body."""
    from gtw_site.asgi import application

    headers = [(b"host", b"localhost"), (b"content-type", b"application/json")]
    if token is not None:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    if content_length is not None:
        headers.append((b"content-length", str(content_length).encode()))
    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }

    async def go():
        app = ApplicationCommunicator(application, scope)
        for i, chunk in enumerate(chunks):
            last = i == len(chunks) - 1
            await app.send_input({"type": "http.request", "body": chunk, "more_body": more_after or not last})
        start = await app.receive_output(timeout=10)
        body, more = b"", True
        while more:
            message = await app.receive_output(timeout=10)
            body += message.get("body", b"")
            more = message.get("more_body", False)
        return {"status": start["status"], "body": body}

    return async_to_sync(go)()


def test_a_declared_body_over_the_cap_is_refused_before_it_is_read(db):
    """Content-Length says 10 GB; nothing of the body is sent, and the answer comes anyway."""
    response = post("/healthz", [b""], content_length=10 * 2**30, more_after=True)
    assert response["status"] == 413
    assert b"too large" in response["body"]


def test_a_streamed_body_is_refused_once_it_passes_the_cap(db):
    """No Content-Length (chunked): refused when the running total passes the cap, while the
    client is still sending — not after the whole body has been spooled."""
    response = post("/api/tokens", [b"x" * 20_000] * 3, more_after=True)
    assert response["status"] == 413


@pytest.mark.django_db(transaction=True)
def test_a_body_within_the_cap_reaches_the_site_unchanged(content, gm):
    """A body under the cap, sent in pieces, is read whole as before: the GM's script creates a
    campaign with a request padded to 30 KB."""
    from campaigns.models import Campaign
    from gtw_site.tokens import token_issue

    _, raw = token_issue(user=gm, name="script")
    body = b'{"name": "Padded", "pack": "starter", "pad": "' + b"a" * 30_000 + b'"}'
    pieces = [body[:10_000], body[10_000:20_000], body[20_000:]]
    response = post("/api/campaigns", pieces, content_length=len(body), token=raw)
    assert response["status"] == 201, response
    assert Campaign.objects.filter(name="Padded", created_by=gm).exists()


# ---- Daphne: Twisted stores the body before it calls the application --------------------------


class _Server:
    """What Daphne's request object asks of its server before the application runs."""

    def protocol_connected(self, protocol):
        pass

    def protocol_disconnected(self, protocol):
        pass


def daphne_connection(request_class=None):
    """A connection to Daphne's HTTP protocol over an in-memory transport: (channel, transport)."""
    from daphne.http_protocol import HTTPFactory
    from twisted.internet.task import Clock
    from twisted.internet.testing import StringTransport

    from gtw_site.bodylimit import install_in_daphne

    install_in_daphne()
    channel = HTTPFactory(_Server()).buildProtocol(("127.0.0.1", 50000))
    if request_class is not None:
        channel.requestFactory = request_class
    channel.callLater = Clock().callLater  # its idle timeout, on a clock nobody advances
    transport = StringTransport()
    channel.makeConnection(transport)
    return channel, transport


def test_daphne_answers_a_declared_oversized_body_before_reading_it():
    """Daphne (Twisted) wrote the whole body to a temporary file before the application could
    refuse it. Now a Content-Length over the cap is a 413 and the connection closes."""
    channel, transport = daphne_connection()
    channel.dataReceived(b"POST /healthz HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10737418240\r\n\r\n")
    channel.dataReceived(b"x" * 10_000)
    assert transport.value().startswith(b"HTTP/1.1 413 ")
    assert b"too large" in transport.value()
    assert transport.disconnecting


def test_daphne_stops_a_chunked_body_once_it_passes_the_cap():
    channel, transport = daphne_connection()
    channel.dataReceived(b"POST /healthz HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"x" * 20_000
    for _ in range(3):
        channel.dataReceived(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
    assert transport.value().startswith(b"HTTP/1.1 413 ")
    assert transport.disconnecting


def test_daphne_passes_a_body_within_the_cap_to_the_application():
    from daphne import http_protocol

    from gtw_site.bodylimit import install_in_daphne

    install_in_daphne()
    seen = []

    class Recording(http_protocol.WebRequest):
        def process(self):  # where Daphne would start the application
            self.content.seek(0)
            seen.append(self.content.read())

    channel, transport = daphne_connection(Recording)
    body = b"a" * 30_000
    channel.dataReceived(
        b"POST /healthz HTTP/1.1\r\nHost: localhost\r\nContent-Length: 30000\r\n\r\n" + body[:10_000]
    )
    channel.dataReceived(body[10_000:])
    assert seen == [body]
    assert not transport.value().startswith(b"HTTP/1.1 413")
