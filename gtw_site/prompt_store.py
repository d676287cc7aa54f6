"""The prompts narrator and summarizer calls sent, kept for the GM's replay timeline (issue 17
part 6). Nothing here runs before a turn's first delta: the provider wrapper
(gtw_site.providers.registry.Recorded) only keeps a reference to the call's request on the
telemetry row, and `rows_for` turns it into stored text when the turn's rows are written
(gtw_site.telemetry.record_rows, after the stream ended).

What is kept, per call:
- each message's role, text, tool name and the tool calls it made (name and arguments), the
  text redacted as outbound text is (gtw_site.redact: the site's kinds, or the campaign's own
  switch) — whether or not the provider was local, since this text is shown again later;
- the names of the tools offered, never their schemas; never a key or a header (the request
  holds none: adapters add them);
- at most GTW_PROMPT_MAX_CHARS characters: past that, each message keeps its head (a share of
  the budget by its length) with a "[… N characters cut]" marker, and a prompt of more than
  MAX_MESSAGES messages keeps its first and last ones with a marker message between them.

Rows older than GTW_PROMPT_RETENTION_DAYS are deleted (`purge`, at most once per
PURGE_EVERY_S per process, after a write); 0 days stores nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from gtw_site import redact

logger = logging.getLogger(__name__)

MAX_MESSAGES = 60
MIN_SHARE = 200  # characters every message keeps, however long the others are
PURGE_EVERY_S = 3600.0
CUT = "[… {n} characters cut]"


@dataclass(frozen=True)
class Captured:
    """A chat request as the wrapper saw it: references only, turned into text later."""

    messages: tuple[Any, ...]
    tools: tuple[str, ...]


def capture(args: tuple, kwargs: dict) -> Captured | None:
    """The request of a chat call (`stream(request)` / `complete(request)`), or None for any
    other kind of call (an embedder's text, an image job)."""
    request = args[0] if args else kwargs.get("request")
    messages = getattr(request, "messages", None)
    if not isinstance(messages, list | tuple):
        return None
    tools = tuple(str(getattr(t, "name", "")) for t in getattr(request, "tools", None) or ())
    return Captured(messages=tuple(messages), tools=tools)


def retention_days() -> int:
    try:
        from django.conf import settings

        return int(getattr(settings, "GTW_PROMPT_RETENTION_DAYS", 30))
    except Exception:  # noqa: BLE001 - settings not configured (a pure test)
        return 0


def max_chars() -> int:
    from django.conf import settings

    return max(1000, int(getattr(settings, "GTW_PROMPT_MAX_CHARS", 24000)))


def _message(message: Any) -> dict[str, Any]:
    # PostgreSQL's JSON holds no NUL: a model's stray one must not cost the turn its rows.
    content = str(message.content or "").replace("\x00", "")
    out: dict[str, Any] = {"role": str(getattr(message, "role", "")), "content": content}
    if getattr(message, "name", None):
        out["name"] = str(message.name)
    calls = getattr(message, "tool_calls", ()) or ()
    if calls:
        out["tool_calls"] = [{"name": c.name, "arguments": c.arguments} for c in calls]
    return out


def _cut(text: str, keep: int) -> str:
    if len(text) <= keep:
        return text
    return text[:keep] + " " + CUT.format(n=len(text) - keep)


def render(
    captured: Captured,
    *,
    kinds: Iterable[str],
    limit: int,
    memo: dict[tuple[int, frozenset[str]], Any] | None = None,
) -> dict[str, Any]:
    """The stored form of a captured prompt: redacted, bounded (see the module docstring).
    `memo`: redacted messages by (id, kinds), shared by the prompts of one batch — a turn's
    second narrator round re-sends the first one's messages (the same objects), and the system
    prompt is most of the redaction's work; the caller keeps every message alive meanwhile."""
    kinds = frozenset(kinds)
    memo = {} if memo is None else memo
    source = list(captured.messages)
    dropped = 0
    if len(source) > MAX_MESSAGES:
        head, tail = source[:2], source[-(MAX_MESSAGES - 3) :]
        dropped = len(source) - len(head) - len(tail)
        source = [*head, None, *tail]
    messages: list[dict[str, Any]] = []
    for message in source:
        if message is None:
            messages.append({"role": "note", "content": f"[… {dropped} messages cut]"})
            continue
        if kinds:
            key = (id(message), kinds)
            if key not in memo:
                memo[key] = redact.redact_message(message, kinds)
            message = memo[key]
        messages.append(_message(message))
    total = sum(len(m["content"]) for m in messages)
    truncated = dropped > 0
    if total > limit:
        truncated = True
        for m in messages:
            share = max(MIN_SHARE, limit * len(m["content"]) // total)
            m["content"] = _cut(m["content"], share)
    return {
        "messages": messages,
        "tools": list(captured.tools),
        "chars": sum(len(getattr(m, "content", "") or "") for m in captured.messages),
        "truncated": truncated,
    }


def render_all(calls: list[Any], captured: list[Captured | None]) -> list[dict[str, Any] | None]:
    """`render` for each (unsaved) ProviderCall's captured prompt; None where it has none."""
    site_kinds = redact.configured().kinds
    limit = max_chars()
    memo: dict[tuple[int, frozenset[str]], Any] = {}  # `captured` keeps the messages alive
    kinds: dict[int | None, frozenset[str]] = {}  # a campaign's switch, read once per batch (a turn's)
    out: list[dict[str, Any] | None] = []
    for call, prompt in zip(calls, captured, strict=True):
        if prompt is None or call.shadow:
            out.append(None)
            continue
        if call.campaign_id not in kinds:
            kinds[call.campaign_id] = redact.outbound_for(site_kinds, call.campaign_id)
        out.append(render(prompt, kinds=kinds[call.campaign_id], limit=limit, memo=memo))
    return out


def rows_for(calls: list[Any], rendered: list[dict[str, Any] | None]) -> list[Any]:
    """ProviderPrompt objects for the written ProviderCall rows that carried a prompt."""
    from gtw_site.models import ProviderPrompt

    return [
        ProviderPrompt(
            call=call, session_id=call.session_id, turn_seq=call.turn_seq, role=call.role, **stored
        )
        for call, stored in zip(calls, rendered, strict=True)
        if stored is not None and call.pk is not None
    ]


_purge_lock = threading.Lock()
_purged_at = [0.0]


def purge(*, force: bool = False) -> int:
    """Delete prompts past the retention; at most once per PURGE_EVERY_S unless `force`."""
    now = time.monotonic()
    with _purge_lock:
        if not force and _purged_at[0] and now - _purged_at[0] < PURGE_EVERY_S:
            return 0
        _purged_at[0] = now
    from django.utils import timezone

    from gtw_site.models import ProviderPrompt

    days = retention_days()
    old = ProviderPrompt.objects.all()
    if days > 0:
        old = old.filter(created_at__lt=timezone.now() - timedelta(days=days))
    deleted, _ = old.delete()
    return deleted
