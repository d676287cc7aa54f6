import logging

from django.apps import AppConfig

logger = logging.getLogger(__name__)


class NarrativeConfig(AppConfig):
    name = "narrative"

    def ready(self):
        from django_q.signals import post_spawn

        post_spawn.connect(warm_worker, dispatch_uid="gtw-warm-worker")

        # Fair dice: a secret per session, committed when it opens, revealed when it ends.
        from django.db.models.signals import post_save

        from campaigns.models import PlaySession
        from campaigns.signals import session_lifecycle
        from narrative import dice_secrets

        post_save.connect(dice_secrets.on_session_created, sender=PlaySession, dispatch_uid="gtw-dice-secret")
        session_lifecycle.connect(dice_secrets.on_session_lifecycle, dispatch_uid="gtw-dice-commitment")


def warm_worker(sender, proc_name=None, **kwargs):
    """A task worker loads the local embedding model when it starts, not in a player's turn
    (the first recall in a cold worker took ~360 ms in `gtw bench turn --trace`)."""
    from gtw_site.providers import ProviderError
    from memory.embeddings import registry

    try:
        registry.get().embed(["warm up"])
    except ProviderError as exc:
        logger.warning("could not warm the embedder in %s: %s", proc_name, exc)
