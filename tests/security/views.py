"""What one member receives: the events API, the play page, the game API and the socket frames
(the broadcasts their socket forwards, rendered as the consumer renders them); and the checks
that nothing in them is a leak or runs script."""

from __future__ import annotations

import json
from html.parser import HTMLParser

from django.template.loader import render_to_string

from campaigns.selectors import may_see
from tests.security.conftest import client_for, seat


def received(session, user, sent) -> dict[str, str]:
    """Everything `user` gets, by channel."""
    client = client_for(user)
    membership = seat(session, user)
    frames, html = [], []  # every message as JSON; the HTML a browser swaps in
    for _, message in sent:
        if message["type"] == "session.event" and not may_see(message["event"]["audience"], membership):
            continue  # the socket does not forward it (realtime.consumers._deliver)
        frames.append(json.dumps(message, ensure_ascii=False))
        if message["type"] == "session.delta":
            html.append(render_to_string("play/_delta_oob.html", message))
        elif isinstance(message.get("html"), str):
            html.append(message["html"])
    out = {
        "events_api": client.get(f"/api/sessions/{session.pk}/events").content.decode(),
        "play_page": client.get(f"/sessions/{session.pk}/play/").content.decode(),
        "game_api": client.get(f"/api/sessions/{session.pk}/game").content.decode(),
        "frames": "\n".join(frames),
        "frames_html": "\n".join(html),
    }
    return out


def leaks(views: dict[str, str], canaries) -> list[tuple[str, str]]:
    return [(where, canary) for where, text in views.items() for canary in canaries if canary in text]


class _Unsafe(HTMLParser):
    """Markup that would run script or carry data out, if a browser parsed this HTML."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._script = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name, value in attrs.items():
            if name.startswith("on"):
                self.found.append(f"<{tag} {name}=…>")
            if name in ("href", "src", "action", "formaction", "data") and value:
                v = value.strip().lower()
                if v.startswith(("javascript:", "vbscript:", "data:text/html")) or "evil.example" in v:
                    self.found.append(f"<{tag} {name}={value[:60]}>")
        if tag == "script":
            if not (attrs.get("src") or "").startswith("/static/"):
                self.found.append("<script> inline")
            self._script = True
        if tag in ("iframe", "object", "embed", "svg", "meta", "base", "form") and (
            tag != "form" or "evil.example" in (attrs.get("action") or "")
        ):
            if tag == "meta" and "refresh" not in (attrs.get("http-equiv") or "").lower():
                return
            self.found.append(f"<{tag}>")

    def handle_endtag(self, tag):
        if tag == "script":
            self._script = False

    def handle_data(self, data):
        if self._script and data.strip():
            self.found.append("<script> with a body")


def unsafe_markup(html: str) -> list[str]:
    parser = _Unsafe()
    parser.feed(html)
    parser.close()
    return parser.found
