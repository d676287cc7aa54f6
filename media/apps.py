from django.apps import AppConfig


class MediaConfig(AppConfig):
    name = "media"
    label = "media"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.db.models.signals import post_save

        from campaigns import events
        from campaigns.models import Character
        from media.images import listeners

        # After the broadcast: nobody waits for a picture.
        events.add_listener(
            listeners.on_scene_events,
            types=(*listeners.SCENE_EVENTS, *listeners.LOOT_EVENTS),
            order=events.ORDER_AFTER_BROADCAST,
        )
        post_save.connect(listeners.on_character_saved, sender=Character, dispatch_uid="gtw-media-portrait")
        # The pre-session warm-up (issue 16) asks for the likely opening scene's picture.
        from campaigns.scheduling.signals import warmup_requested
        from media.images import warmup

        warmup_requested.connect(warmup.on_warmup_requested, dispatch_uid="gtw-media-warmup")

        # Voice (issue 14, h14): the GM speaks the narration as it streams; NPC lines in their
        # own voices. Keep these lines when editing this file.
        from media.speech import narration
        from realtime import broadcast

        broadcast.register_stream_listener(narration.listener)
        events.add_listener(narration.npc_spoke, types=("NpcSpoke",), order=events.ORDER_AFTER_BROADCAST)
        # Before the broadcast: a tap silences the voice before anyone's page hears of it.
        events.add_listener(narration.xcard_tapped, types=("XCardTapped",), order=events.ORDER_SCHEDULE)
