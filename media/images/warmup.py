"""Pictures' part of the pre-session warm-up (campaigns.scheduling.signals.warmup_requested):
the likely opening scene — the scene picture of the campaign's latest party session — is asked
for now, so the table's first scene finds it cached instead of painting while they wait.
Only where pictures are automatic (GTW_IMAGES["auto"]): a table that paints on request only
gets no picture it never asked for."""

from __future__ import annotations

import time

from django.conf import settings

from campaigns.models import Campaign, PlaySession
from media.images import services
from media.models import Image


def on_warmup_requested(sender, *, campaign_id: int, **kwargs) -> list[dict]:
    if not settings.GTW_IMAGES.get("auto", True):
        return []
    started = time.perf_counter()
    campaign = Campaign.objects.select_related("pack").filter(pk=campaign_id).first()
    session = (
        PlaySession.objects.filter(campaign_id=campaign_id, kind=PlaySession.Kind.PARTY)
        .order_by("-number")
        .first()
    )
    if campaign is None or session is None:
        return [{"check": "scene picture", "ok": True, "detail": "no session yet: nothing to paint", "ms": 0}]
    image, _created = services.image_request(campaign=campaign, kind="scene", session=session)
    ms = round((time.perf_counter() - started) * 1000, 1)
    if image.status == Image.Status.FAILED:
        detail, ok = f"the last try failed ({image.error or 'no reason given'}); the GM can retry it", False
    elif image.status == Image.Status.READY:
        detail, ok = "the scene picture is ready", True
    else:
        detail, ok = "the scene picture is being painted", True
    return [{"check": "scene picture", "ok": ok, "detail": detail, "ms": ms}]
