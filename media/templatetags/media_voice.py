"""`{% campaign_voice_form campaign %}`: the GM's narrator-voice choice on the campaign page
(campaigns may not import media, so the page asks through this tag)."""

from __future__ import annotations

from django import template

from media.speech import services

register = template.Library()


@register.inclusion_tag("media/voice/_campaign_voice.html")
def campaign_voice_form(campaign):
    chosen = ((campaign.settings or {}).get("voice") or {}).get("gm") or ""
    personality = getattr(campaign, "personality", None)
    profile = ((personality.data or {}).get("tts_profile") or {}) if personality else {}
    return {
        "campaign": campaign,
        "choices": services.voice_choices(),
        "chosen": chosen,
        "personality_voice": profile.get("voice") or "narrator",
    }
