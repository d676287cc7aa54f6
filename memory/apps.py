from django.apps import AppConfig


class MemoryConfig(AppConfig):
    name = "memory"

    def ready(self):
        from campaigns import events, signals
        from memory.branching import on_campaign_branched
        from memory.services import queue_record_from_events

        # After the turn is scheduled and the events broadcast: nobody waits for memory writes.
        events.add_listener(queue_record_from_events, order=events.ORDER_RECORD)
        signals.campaign_branched.connect(on_campaign_branched, dispatch_uid="gtw-memory-branch")
