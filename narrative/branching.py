"""A branch's characters, as they were at the branch point (campaigns.signals.campaign_branched).

campaigns copies the characters as they are; the rewards the engine granted after the branch
point (RewardGranted events: XP, level, items — see engine.apply_projections) are the engine's
to take back, so the branch never holds what its parent earned later."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Q

from campaigns.models import Character, Event, PlaySession
from missions.rules import progression


def on_campaign_branched(
    sender, *, session: PlaySession, at_seq: int, cutoff: datetime, characters: dict[int, int], **kwargs
) -> None:
    """Rewind each copied character by the rewards its original got after the branch point.
    Runs inside campaign_branch's transaction."""
    rewards = _rewards_after(session, at_seq, cutoff)
    if not rewards:
        return
    copies = Character.objects.in_bulk(list(characters.values()))
    changed = []
    for original in Character.objects.filter(pk__in=list(characters)).order_by("pk"):
        copy = copies[characters[original.pk]]
        for field, value in _progress_before(original, rewards).items():
            setattr(copy, field, value)
        changed.append(copy)
    Character.objects.bulk_update(changed, ["xp", "level", "inventory"])


def _rewards_after(session: PlaySession, at_seq: int, cutoff: datetime) -> list[dict]:
    """The RewardGranted payloads the parent got after the branch point: later in this session,
    or later in time in its other sessions (the same line the memories are cut at)."""
    later = Q(session=session, seq__gt=at_seq) | (~Q(session=session) & Q(created_at__gt=cutoff))
    rewards = Event.objects.filter(session__campaign_id=session.campaign_id, type="RewardGranted")
    return list(rewards.filter(later).values_list("payload", flat=True))


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


def _inventory_before(character: Character, rewards: list[dict]) -> list[dict]:
    """The holder's inventory without the items `rewards` added (see engine.apply_projections)."""
    mine = [r for r in rewards if (r.get("holder") or {}).get("character_id") == character.pk]
    if not mine:
        return character.inventory
    held = {i["item"]: i["qty"] for i in character.inventory or []}
    for reward in mine:
        for find in reward.get("items") or []:
            held[find["item"]] = held.get(find["item"], 0) - find["qty"]
    return [{"item": k, "qty": v} for k, v in sorted(held.items()) if v > 0]


def _progress_before(character: Character, rewards: list[dict]) -> dict[str, Any]:
    xp = _xp_before(character, rewards)
    level = character.level if xp == character.xp else progression.level_for_xp(xp)
    return {"xp": xp, "level": level, "inventory": _inventory_before(character, rewards)}
