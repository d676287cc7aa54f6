"""Whether a URL someone typed points at a public address: for servers this site calls on a
user's say-so (a campaign's webhook, a GM's own model server). A host that is or resolves to a
private, loopback, link-local or otherwise non-global address would let that user make the site
reach into its own network (SSRF); the operator may allow it with a setting."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit


def non_public_reason(url: str) -> str | None:
    """None when every address the URL's host resolves to is public; else why not ("does not
    resolve", "private or local")."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        port = parts.port
    except ValueError:
        return "has an invalid port"
    try:
        infos = socket.getaddrinfo(
            host, port or (443 if parts.scheme == "https" else 80), proto=socket.IPPROTO_TCP
        )
    except (socket.gaierror, UnicodeError):
        return "does not resolve"
    for info in infos:
        if not ipaddress.ip_address(info[4][0].split("%", 1)[0]).is_global:
            return "points to a private or local address"
    return None
