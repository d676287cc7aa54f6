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
        # The world simulation's snapshots travel with a branch, a clone with history and the
        # campaign file (missions/simulation_copies.py).
        from campaigns import lifecycle
        from missions import simulation_copies as copies

        signals.campaign_branched.connect(copies.on_campaign_branched, dispatch_uid="gtw-sim-branch")
        lifecycle.campaign_cloned.connect(copies.on_campaign_cloned, dispatch_uid="gtw-sim-clone")
        lifecycle.campaign_exporting.connect(copies.on_campaign_exporting, dispatch_uid="gtw-sim-export")
        lifecycle.campaign_importing.connect(copies.on_campaign_importing, dispatch_uid="gtw-sim-import")
