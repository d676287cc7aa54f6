"""Helpers every HTTP/SDK adapter shares, whatever its kind: an address fit for an error
message, the secrets to blank out of a vendor's reply, and a time limit for a whole call.

Pure: no Django; httpx is imported only when a deadline is first armed, so the offline
providers never load the HTTP stack.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from functools import cache
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit


def safe_url(url: str) -> str:
    """`url` fit for an error message: no user:password@, no query string or fragment
    (servers take keys as `?api_key=…`), since the message reaches players and telemetry."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "the configured server address"
    netloc = parts.netloc.rpartition("@")[2]
    # Without a scheme urlsplit takes "user:pass@host/…" for a path: cut the userinfo there too.
    path = parts.path.rpartition("@")[2] if not netloc else parts.path
    return urlunsplit((parts.scheme, netloc, path, "", ""))


def url_secrets(url: str | None, *extra: str | None) -> tuple[str, ...]:
    """The credentials a base URL (and any `extra` keys) carry, for `scrub` to blank out of
    text a server echoed back. Very short values are left alone: blanking "u" would mangle
    every message."""
    found: list[str] = [value for value in extra if value]
    if url:
        if safe_url(url) != url:
            found.append(url)
        try:
            parts = urlsplit(url)
        except ValueError:
            parts = None
        if parts is not None:
            userinfo = parts.netloc.rpartition("@")[0] or parts.path.rpartition("@")[0]
            for piece in userinfo.split(":"):
                found += [piece, unquote(piece)]
            for value in (parts.query, parts.fragment):
                found.append(value)
                found += [v for _, v in parse_qsl(value, keep_blank_values=True)]
    # Longest first, so a key is blanked whole before any part of it.
    return tuple(sorted({s for s in found if len(s) >= 6}, key=len, reverse=True))


def scrub(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


class CallDeadline:
    """A time limit for a whole model call, not per socket read.

    The SDKs' `timeout=` applies to each read, so a server that trickles a chunk, an SSE
    comment or a `ping` every second keeps a call alive forever. `start()` fixes the deadline
    for calls made from this thread; `hook` is an httpx response event hook that makes the
    response body raise a read timeout at the first bytes arriving past it (the SDKs turn
    that into their own timeout error). A silence is still cut by the per-read timeout, so
    a call ends at most one read timeout after its deadline.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._local = threading.local()

    def start(self) -> float:
        self._local.at = time.monotonic() + self.seconds
        return self._local.at

    def passed(self) -> bool:
        at = getattr(self._local, "at", None)
        return at is not None and time.monotonic() >= at

    def hook(self, response: Any) -> None:
        at = getattr(self._local, "at", None)
        if at is not None:
            response.stream = _deadline_stream_class()(response.stream, at, self.seconds)


@cache
def _deadline_stream_class() -> type:
    # Imported here so the offline narrator never loads the HTTP stack.
    import httpx2

    class DeadlineStream(httpx2.SyncByteStream):
        def __init__(self, inner: Any, at: float, seconds: float) -> None:
            self._inner = inner
            self._at = at
            self._seconds = seconds

        def __iter__(self) -> Iterator[bytes]:
            for chunk in self._inner:
                if time.monotonic() >= self._at:
                    raise httpx2.ReadTimeout(f"no complete response within {self._seconds}s")
                yield chunk

        def close(self) -> None:
            self._inner.close()

        def __getattr__(self, name: str) -> Any:
            # httpx reads `elapsed` off the body it wrapped; SDKs may hang their own state there.
            if name == "_inner":
                raise AttributeError(name)
            return getattr(self._inner, name)

    return DeadlineStream
