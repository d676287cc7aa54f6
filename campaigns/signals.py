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


# ---- happenings that append no event (DESIGN "Layout and layers") ---------------------------
# Each is sent by campaigns; the receivers live in the apps above it, connected in their
# AppConfig.ready (docs/ARCHITECTURE.md "Listeners" lists who receives what). Unless it says
# "after commit", a signal is sent inside the service's transaction: a receiver that raises
# rolls the whole change back.

# A campaign was created (`campaign`). narrative pins the pack's mission, as installed now, to
# it (missions.services.campaign_mission).
campaign_created = Signal()

# A session (party or stage) is about to open in `campaign`: receivers return a dict of fields
# for the SessionOpened payload, or None. narrative adds the campaign's pinned mission and its
# opening (scene, objective, clocks).
session_opening = Signal()

# After commit: `session_id` was resumed while already active, so no SessionResumed was appended
# (the resume button is also how a player re-runs turns a crash left pending). narrative
# schedules the session's turn runner if actions wait.
session_resume_requested = Signal()

# After commit: who sits where on stage `session_id` changed (a new seat, a hand, a speaker, a
# fireteam or alliance change, a beat window). realtime sends every stage socket its roster.
roster_changed = Signal()

# `new_session` was copied from `session` up to `at_seq` into a new branch campaign (the copied
# events' last `created_at` is `cutoff`; `characters` maps the parent's character ids to the
# branch's). memory copies the memories made before the branch point; narrative rewinds the
# copied characters' rewards granted after it.
campaign_branched = Signal()

# A content pack's game files are being installed from `folder` into `pack`. Receivers install
# what they own (narrative: missions/*.mission and signed decks/*.json) and return a list of
# human lines saying what changed (or was refused), which `gtw content` prints.
pack_loaded = Signal()
