from django.apps import AppConfig


class MissionsConfig(AppConfig):
    name = "missions"
    verbose_name = "Missions"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Tech trees (missions/techtree_services.py): a pack's trees install when it loads; a
        # beat runs research time down, completes what is due and pays the drips.
        from campaigns import events, signals
        from missions import techtree_services

        signals.pack_loaded.connect(techtree_services.on_pack_loaded, dispatch_uid="gtw-pack-techtrees")
        events.add_listener(
            techtree_services.on_beat_changed, types={"BeatChanged"}, order=events.ORDER_AFTER_BROADCAST
        )
