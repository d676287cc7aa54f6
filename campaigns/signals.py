"""Happenings in the tenant layer that the layers above add to. campaigns never imports them
(DESIGN: a lower layer never calls up); they connect receivers in their AppConfig.ready."""

from __future__ import annotations

from typing import Any

from django.dispatch import Signal

from campaigns import events

# Sent while a session's lifecycle event — SessionOpened, SessionResumed or SessionEnded — is
# appended: inside its transaction, under the session row lock, with the seq it will get.
# Arguments: `session_id`, `event_type`, `seq`. A receiver returns a dict of fields to add to
# the event's payload, or None. narrative.dice_secrets adds the dice commitment (opened,
# resumed) and reveals the secret (ended). A receiver that raises rolls the append back.
session_lifecycle = Signal()


def lifecycle_event(
    event_type: str, *, session_id: int, payload: dict[str, Any] | None = None, actor_id: int | None = None
) -> events.NewEvent:
    """The NewEvent for a lifecycle event, its payload completed by `session_lifecycle`."""
    base = dict(payload or {})

    def build(seq: int) -> tuple[dict[str, Any], None]:
        extra: dict[str, Any] = {}
        replies = session_lifecycle.send(
            sender=events.NewEvent, session_id=session_id, event_type=event_type, seq=seq
        )
        for _receiver, fields in replies:
            extra.update(fields or {})
        return {**base, **extra}, None

    return events.NewEvent(type=event_type, actor_id=actor_id, build=build)
