"""A branch's characters, as they were at the branch point (campaigns.signals.campaign_branched).

campaigns copies the characters and the party's stash as they are; the rewards and finds the
engine granted after the branch point (RewardGranted and LootFound events: XP, level, items — see
engine.apply_projections) are the engine's to take back, so the branch never holds what its
parent earned later."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Q

from campaigns.models import Campaign, Character, Event, PlaySession
from missions.rules import progression
from narrative.engine import inventory


def on_campaign_branched(
    sender, *, session: PlaySession, at_seq: int, cutoff: datetime, characters: dict[int, int], **kwargs
) -> None:
    """Rewind each copied character (and the copied stash) by the rewards and finds granted
    after the branch point. Runs inside campaign_branch's transaction."""
    later = _grants_after(session, at_seq, cutoff)
    if not later:
        return
    _rewind_stash(kwargs.get("new_session"), later)
    rewards = [payload for kind, payload in later if kind == "RewardGranted"]
    copies = Character.objects.in_bulk(list(characters.values()))
    changed = []
    for original in Character.objects.filter(pk__in=list(characters)).order_by("pk"):
        copy = copies[characters[original.pk]]
        for field, value in _progress_before(original, rewards).items():
            setattr(copy, field, value)
        copy.inventory = _inventory_before(original, later)
        changed.append(copy)
    Character.objects.bulk_update(changed, ["xp", "level", "inventory"])


def _grants_after(session: PlaySession, at_seq: int, cutoff: datetime) -> list[tuple[str, dict]]:
    """The (type, payload) of the RewardGranted and LootFound events the parent got after the
    branch point: later in this session, or later in time in its other sessions (the same line
    the memories are cut at)."""
    later = Q(session=session, seq__gt=at_seq) | (~Q(session=session) & Q(created_at__gt=cutoff))
    grants = Event.objects.filter(
        session__campaign_id=session.campaign_id, type__in=("RewardGranted", "LootFound")
    )
    return list(grants.filter(later).order_by("pk").values_list("type", "payload"))


def _rewind_stash(new_session: PlaySession | None, later: list[tuple[str, dict]]) -> None:
    """The branch's stash without the items granted to the party after the branch point."""
    if new_session is None:
        return
    campaign = Campaign.objects.select_for_update().get(pk=new_session.campaign_id)
    stash = campaign.stash
    for kind, payload in later:
        for (holder, _), items in inventory.grants(kind, payload):
            if holder == "party":
                stash = inventory.remove(stash, items)
    if stash != campaign.stash:
        campaign.stash = stash
        campaign.save(update_fields=["stash"])


def _xp_before(character: Character, rewards: list[dict]) -> int:
    """Party entries hold the XP after each grant; XP only grows, so the lowest "after minus
    grant" is the XP before the first of `rewards`."""
    before = [
        member["xp"] - min(max(int(reward.get("xp") or 0), 0), progression.MAX_GRANT)
        for reward in rewards
        for member in reward.get("party") or []
        if member.get("character_id") == character.pk
    ]
    return max(0, min([character.xp, *before]))


def _inventory_before(character: Character, later: list[tuple[str, dict]]) -> list[dict]:
    """The character's inventory without the items `later` grants gave it (engine.apply_projections)."""
    held = character.inventory
    for kind, payload in later:
        for (holder, holder_id), items in inventory.grants(kind, payload):
            if holder == "character" and holder_id == character.pk:
                held = inventory.remove(held, items)
    return held


def _progress_before(character: Character, rewards: list[dict]) -> dict[str, Any]:
    xp = _xp_before(character, rewards)
    level = character.level if xp == character.xp else progression.level_for_xp(xp)
    return {"xp": xp, "level": level}
