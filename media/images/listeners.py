"""What makes a picture without anyone asking (GTW_IMAGES["auto"]): the scene changing (a new
session, a mission started, a scene or beat change), a character created (a portrait), loot
found (an item). Registered in MediaConfig.ready; each runs after commit and never raises into
the append or the turn."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction

from campaigns.errors import DomainError
from campaigns.models import Character, PlaySession

logger = logging.getLogger(__name__)

SCENE_EVENTS = ("SessionOpened", "MissionStarted", "SceneChanged", "BeatChanged")
LOOT_EVENTS = ("LootFound",)
MAX_ITEMS_PER_EVENT = 3


def _auto() -> bool:
    return bool(settings.GTW_IMAGES.get("auto", True))


def on_scene_events(session_id: int, events: list) -> None:
    if not _auto():
        return
    from media.images.services import image_request

    session = PlaySession.objects.select_related("campaign", "campaign__pack").filter(pk=session_id).first()
    if session is None:
        return
    if any(e.type in SCENE_EVENTS for e in events):
        try:
            image_request(campaign=session.campaign, kind="scene", session=session)
        except DomainError as exc:  # a pack's own words on the banned list: no picture, no error
            logger.info("session %s: no scene picture (%s)", session_id, exc)
    for event in events:
        if event.type not in LOOT_EVENTS:
            continue
        items = [i for i in (event.payload or {}).get("items") or [] if isinstance(i, dict)]
        for entry in items[:MAX_ITEMS_PER_EVENT]:
            slug = entry.get("item")
            if not isinstance(slug, str) or not slug:
                continue
            try:
                image_request(campaign=session.campaign, kind="item", item=slug[:60], session=session)
            except DomainError as exc:
                logger.info("session %s: no picture of %s (%s)", session_id, slug, exc)


def on_character_saved(sender, instance: Character, created: bool, raw: bool = False, **kwargs) -> None:
    """post_save of a Character: a portrait once the new row commits."""
    if not created or raw or not _auto():
        return
    character_id = instance.pk
    transaction.on_commit(lambda: _portrait(character_id))


def _portrait(character_id: int) -> None:
    from media.images.services import image_request

    character = Character.objects.select_related("campaign", "campaign__pack").filter(pk=character_id).first()
    if character is None:
        return
    session = (
        PlaySession.objects.filter(campaign=character.campaign, status=PlaySession.Status.ACTIVE)
        .order_by("-pk")
        .first()
    )
    try:
        image_request(campaign=character.campaign, kind="portrait", character=character, session=session)
    except DomainError as exc:
        logger.info("character %s: no portrait (%s)", character_id, exc)
    except Exception:
        logger.warning("character %s: portrait request failed", character_id, exc_info=True)
