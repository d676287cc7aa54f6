from django.apps import AppConfig


class RealtimeConfig(AppConfig):
    name = "realtime"

    def ready(self):
        from campaigns import events, signals
        from realtime import listeners

        events.add_listener(listeners.broadcast_committed, order=events.ORDER_BROADCAST)
        signals.roster_changed.connect(listeners.on_roster_changed, dispatch_uid="gtw-stage-roster")

        # The sender (realtime.broadcast) is shared base and imports no domain app: it reads
        # committed events through this source (narrative registers the mission panel likewise).
        from realtime import broadcast

        broadcast.register_source(load=session_events_by_seq, state=session_state)


def session_events_by_seq(session_id: int, seqs: list[int]) -> list:
    """The session's events with these seqs, actor joined (the partial shows names), in order."""
    from campaigns.models import Event

    return list(
        Event.objects.select_related("actor").filter(session_id=session_id, seq__in=seqs).order_by("seq")
    )


def session_state(session_id: int) -> dict:
    from campaigns.models import PlaySession

    return PlaySession.objects.values_list("state", flat=True).get(pk=session_id) or {}
