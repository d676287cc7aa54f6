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
        # A campaign's clone (with history), export and import carry its memories.
        from campaigns import lifecycle as campaign
        from memory import lifecycle

        campaign.campaign_cloned.connect(lifecycle.on_campaign_cloned, dispatch_uid="gtw-mem-clone")
        campaign.campaign_exporting.connect(lifecycle.on_campaign_exporting, dispatch_uid="gtw-mem-export")
        campaign.campaign_importing.connect(lifecycle.on_campaign_importing, dispatch_uid="gtw-mem-import")
        # The pre-session warm-up: prefetch the recap's recall (memory/warmup.py).
        from campaigns.scheduling.signals import warmup_requested
        from memory.warmup import on_warmup_requested

        warmup_requested.connect(on_warmup_requested, dispatch_uid="gtw-mem-warmup")
