"""Issue 11 hole 9 (static files): `GET /static/../gtw_site/settings.py` raised
SuspiciousFileOperation inside the static files handler — "Exception inside application" and a
traceback in the log. Every traversal spelling is now a plain 404, through the real ASGI app."""

from __future__ import annotations

import logging

import pytest
from asgiref.sync import async_to_sync
from asgiref.testing import ApplicationCommunicator


def get(path: str) -> dict:
    """A GET through gtw_site.asgi.application, as Daphne would send it. (Channels'
    HttpCommunicator trips over a file response's last, body-less message.)"""
    from gtw_site.asgi import application

    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode("utf-8", "surrogateescape"),
        "query_string": b"",
        "headers": [(b"host", b"localhost")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }

    async def go():
        app = ApplicationCommunicator(application, scope)
        await app.send_input({"type": "http.request", "body": b""})
        start = await app.receive_output(timeout=10)
        body, more = b"", True
        while more:
            chunk = await app.receive_output(timeout=10)
            body += chunk.get("body", b"")
            more = chunk.get("more_body", False)
        return {"status": start["status"], "body": body}

    return async_to_sync(go)()


# Daphne hands the app the path percent-decoded once; the static handler decodes it again.
TRAVERSALS = [
    "/static/../gtw_site/settings.py",
    "/static/css/../../gtw_site/settings.py",
    "/static/%2e%2e/gtw_site/settings.py",
    "/static/..%2fgtw_site/settings.py",
    "/static/%2e%2e%2f%2e%2e%2fetc/passwd",
    "/static/..\\gtw_site\\settings.py",
    "/static/%2e%2e%5cgtw_site%5csettings.py",
    "/static//etc/passwd",
    "/static/gtw.css\x00.py",
    "/static/%00../gtw_site/settings.py",
    "/static/..%00/gtw_site/settings.py",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_a_path_out_of_the_static_folder_is_a_clean_404(path, caplog):
    """issue 11 hole 9: a 404, nothing disclosed, and no exception or error logged."""
    caplog.set_level(logging.INFO)
    response = get(path)
    assert response["status"] == 404
    assert b"SECRET_KEY" not in response["body"] and b"import" not in response["body"]
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert errors == []


def test_real_static_files_are_still_served():
    response = get("/static/gtw.css")
    assert response["status"] == 200
    assert response["body"]
