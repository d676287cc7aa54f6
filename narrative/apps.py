import logging

from django.apps import AppConfig

logger = logging.getLogger(__name__)


class NarrativeConfig(AppConfig):
    name = "narrative"

    def ready(self):
        from django_q.signals import post_spawn

        post_spawn.connect(warm_worker, dispatch_uid="gtw-warm-worker")

        # The pre-session warm-up's tiny chat call (campaigns/scheduling/warmup.py).
        from campaigns.scheduling.warmup import register_probe
        from narrative.warmup import chat_probe

        register_probe("chat", chat_probe)

        # Fair dice: a secret per session, committed when it opens, revealed when it ends.
        from django.db.models.signals import post_save

        from campaigns.models import PlaySession
        from campaigns.signals import session_lifecycle
        from narrative import dice_secrets

        post_save.connect(dice_secrets.on_session_created, sender=PlaySession, dispatch_uid="gtw-dice-secret")
        session_lifecycle.connect(dice_secrets.on_session_lifecycle, dispatch_uid="gtw-dice-commitment")

        # What the tenant layer says happened (docs/ARCHITECTURE.md "Listeners").
        from campaigns import events, signals
        from narrative import branching, content, listeners

        events.add_listener(
            listeners.schedule_for_actions, types={"Action", "SessionResumed"}, order=events.ORDER_SCHEDULE
        )
        events.add_listener(
            listeners.schedule_for_retry, types={"TurnRetried"}, order=events.ORDER_AFTER_BROADCAST
        )
        events.add_listener(
            listeners.schedule_for_windows,
            types={"BatchWindowClosed", "BatchWindowOpened"},
            order=events.ORDER_SCHEDULE,
        )
        # The GM's opening narration of a new session or mission (narrative/opening.py); the
        # resume button (and `gtw up`) re-queues one a crash lost.
        from narrative import opening

        events.add_listener(
            opening.schedule_for_openings, types=set(opening.SOURCES), order=events.ORDER_AFTER_BROADCAST
        )
        signals.session_resume_requested.connect(
            opening.on_session_resume_requested, dispatch_uid="gtw-resume-openings"
        )
        signals.campaign_created.connect(listeners.on_campaign_created, dispatch_uid="gtw-mission-pin")
        signals.session_opening.connect(listeners.on_session_opening, dispatch_uid="gtw-mission-opening")
        signals.session_resume_requested.connect(
            listeners.on_session_resume_requested, dispatch_uid="gtw-resume-turns"
        )
        signals.campaign_branched.connect(branching.on_campaign_branched, dispatch_uid="gtw-branch-rewards")
        signals.pack_loaded.connect(content.on_pack_loaded, dispatch_uid="gtw-pack-game")

        # The broadcaster (shared base) renders the engine's mission panel through this hook.
        from narrative import engine
        from realtime import broadcast

        broadcast.register_panel(event_types=engine.ENGINE_EVENTS, context=engine.panel_context)

        # Session summaries: narrative writes them once memory has recorded their sources.
        from memory.signals import memories_recorded
        from narrative.summaries import on_memories_recorded

        memories_recorded.connect(on_memories_recorded, dispatch_uid="gtw-session-summaries")


def warm_worker(sender, proc_name=None, **kwargs):
    """A task worker loads the local embedding model when it starts, not in a player's turn
    (the first recall in a cold worker took ~360 ms in `gtw bench turn --trace`)."""
    from gtw_site.providers import ProviderError
    from memory.embeddings import registry

    try:
        registry.EMBEDDER.build("embedder").embed(["warm up"])  # no telemetry row: not a player's call
    except ProviderError as exc:
        logger.warning("could not warm the embedder in %s: %s", proc_name, exc)
    # The offline GM's action reader (narrative.intent): its model and example vectors, so the
    # first action a worker reads costs ~15 ms, not the load. It logs and falls back by itself.
    from narrative import intent

    intent.analyse("I look around", name="warm up")
