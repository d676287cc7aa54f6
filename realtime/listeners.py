"""What realtime hears from the layers below (connected in RealtimeConfig.ready).

The event store tells us about every committed append; we send each event once, after commit,
in seq order — the one broadcast of every committed event (DESIGN "Layout and layers"). Code
that appends never broadcasts an event itself; only senders of something else (narration
deltas, a squad's debrief, presence) talk to realtime.broadcast directly.
"""

from __future__ import annotations

from realtime import broadcast
from realtime import stage as realtime_stage


def broadcast_committed(session_id: int, events: list) -> None:
    """Event-store listener (campaigns.events.ORDER_BROADCAST): everyone watching the session
    gets the events. Looked up on the module at call time so tests can capture it."""
    broadcast.events_committed(session_id, events)


def on_roster_changed(sender, *, session_id: int, **kwargs) -> None:
    """campaigns.signals.roster_changed (after commit): every stage socket gets its roster."""
    realtime_stage.send_roster(session_id)
