from django.apps import AppConfig
from django.core.exceptions import ImproperlyConfigured


class SafetyConfig(AppConfig):
    name = "campaigns.safety"
    label = "safety"
    verbose_name = "Content safety"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.conf import settings

        from campaigns.safety.categories import PolicyError, check_actions

        # A typo in GTW_SAFETY_DEFAULTS fails at start, with the reason, not on the first action.
        try:
            check_actions(settings.GTW_SAFETY_DEFAULTS)
        except PolicyError as exc:
            raise ImproperlyConfigured(f"GTW_SAFETY_DEFAULTS: {exc}") from None
        fail = settings.GTW_MODERATION["moderation"].get("fail")
        if fail not in ("local", "hold"):
            raise ImproperlyConfigured(f"GTW_MODERATION_FAIL must be 'local' or 'hold', not {fail!r}")
        # The campaign's redaction switch reaches every adapter that sends its text away
        # (gtw_site.redact.outbound_for, read in the chat and embedding adapters).
        from campaigns.safety.services import campaign_redact_kinds
        from gtw_site import redact

        redact.register_campaign_kinds(campaign_redact_kinds)
