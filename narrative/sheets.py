"""Character sheets: what the play page and the campaign page show of each character — level, the
XP bar to the next level, attributes with the status effects on them, statuses with the turns they
have left, inventory and credits — and the party's shared stash.

What is public: a sheet holds only what the table already sees (a check's dice show the attribute
modifier, statuses and finds are announced in the log), so every member of the campaign may read
every sheet: players and spectators see the others' sheets folded, their own open; the GM sees all
open. Never on a sheet: whispers and asides (another player's private knowledge), the loot tables
and seeds behind a find, where a status came from, account details. The contents are the same for
every viewer, so one render goes to every socket (`sheets_public`); only which sheet starts open
depends on the viewer (`sheets_for`).

Callers have checked membership: the pages through `campaigns.selectors`, the broadcast by the
session's socket.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from campaigns.models import Campaign, Character, Membership, PlaySession
from missions import techtree_services
from missions.rules import dice, progression, status
from narrative.engine import inventory

logger = logging.getLogger(__name__)

# Event types after which the sheets are sent again (with any event carrying the statuses).
SHEET_EVENTS = frozenset(
    {"RewardGranted", "LootFound", "LevelGained", "StatusApplied", "StatusExpired", "MissionStarted"}
    # Tech-tree research (missions.techtree_services): the trees on the sheets, and a beat's time left.
    | {"ResearchStarted", "ResearchCompleted", "ResearchDripped", "BeatChanged"}
)


def changes_sheets(event) -> bool:
    payload = event.payload if isinstance(event.payload, Mapping) else {}
    return event.type in SHEET_EVENTS or "status_state" in payload


def _xp_bar(xp: int, level: int) -> dict[str, Any]:
    xp = max(0, min(int(xp), progression.MAX_XP))
    level = max(1, min(int(level), progression.MAX_LEVEL))
    floor = progression.xp_for_level(level)
    if level >= progression.MAX_LEVEL:
        return {"xp": xp, "floor": floor, "next": None, "into": 0, "span": 0, "percent": 100, "to_go": 0}
    nxt = progression.xp_for_level(level + 1)
    span = nxt - floor
    into = max(0, min(xp - floor, span))
    return {
        "xp": xp,
        "floor": floor,
        "next": nxt,
        "into": into,
        "span": span,
        "percent": into * 100 // span,
        "to_go": max(0, nxt - xp),
    }


def _effects(raw: Any) -> list[status.StatusEffect]:
    try:
        return status.effects_from_list(raw or [])
    except status.StatusError:
        logger.warning("unreadable status effects on a sheet: %r", raw)
        return []


def _statuses(effects: list[status.StatusEffect], catalogue: Mapping[str, Mapping]) -> list[dict[str, Any]]:
    out = []
    for effect in effects:
        spec = catalogue.get(effect.name) or {}
        out.append(
            {
                "name": effect.name,
                "label": str(spec.get("label") or effect.name),
                "description": str(spec.get("description") or ""),
                "turns": effect.duration,
                "stacks": effect.stacks,
                "modifiers": [
                    {"attribute": k, "amount": v * effect.stacks} for k, v in effect.modifiers if v
                ],
            }
        )
    return out


def _attributes(character: Character, order: list[str], mods: Mapping[str, int]) -> list[dict[str, Any]]:
    scores = character.attributes if isinstance(character.attributes, Mapping) else {}
    names = [n for n in order if n in scores] + sorted(n for n in scores if n not in order)
    rows = []
    for name in names:
        try:
            score = int(scores[name])
        except (TypeError, ValueError):
            continue
        base = dice.attribute_modifier(score)
        change = int(mods.get(name, 0))
        rows.append({"name": name, "score": score, "base": base, "change": change, "modifier": base + change})
    return rows


def _sheet(character: Character, context: dict[str, Any]) -> dict[str, Any]:
    effects = _effects(context["statuses"].get(str(character.pk)))
    held = inventory.named(character.inventory or [], context["names"])
    return {
        "id": character.pk,
        "name": character.name,
        "archetype": context["archetypes"].get(character.archetype, character.archetype),
        "owner_id": character.owner_id,
        "player": character.owner.username,
        "level": character.level,
        "bar": _xp_bar(character.xp, character.level),
        "attributes": _attributes(character, context["order"], status.modifiers(effects)),
        "statuses": _statuses(effects, context["catalogue"]),
        "credits": sum(i["qty"] for i in held if i["item"] == inventory.CURRENCY),
        "items": [i for i in held if i["item"] != inventory.CURRENCY],
        "research": context["research"]["characters"].get(character.pk, []),
    }


def _stash(campaign: Campaign, names: Mapping[str, str]) -> dict[str, Any]:
    held = inventory.named(campaign.stash or [], names)
    return {
        "credits": sum(i["qty"] for i in held if i["item"] == inventory.CURRENCY),
        "items": [i for i in held if i["item"] != inventory.CURRENCY],
    }


def _latest_state(campaign: Campaign) -> dict:
    """The statuses on a campaign page come from its latest party session."""
    state = (
        PlaySession.objects.filter(campaign=campaign, kind=PlaySession.Kind.PARTY)
        .order_by("-number")
        .values_list("state", flat=True)
        .first()
    )
    return state or {}


def sheets_public(*, campaign: Campaign, state: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Every character's sheet and the party's stash, as any member may see them. `state` is the
    session whose statuses count (None: the campaign's latest party session)."""
    pack = campaign.pack.data or {}
    if state is None:
        state = _latest_state(campaign)
    context = {
        "names": inventory.item_names(pack),
        "archetypes": {
            a.get("slug"): a.get("name") for a in pack.get("archetypes") or [] if isinstance(a, dict)
        },
        "order": list((pack.get("attribute_rules") or {}).get("names") or []),
        "catalogue": {
            e["name"]: e for e in pack.get("status_effects") or [] if isinstance(e, dict) and "name" in e
        },
        "statuses": (state or {}).get("statuses") or {},
        "research": techtree_services.research_views(campaign),
    }
    characters = (
        Character.objects.filter(campaign=campaign).select_related("owner").order_by("created_at", "pk")
    )
    return {
        "sheets": [_sheet(c, context) for c in characters],
        "stash": _stash(campaign, context["names"]),
        "alliance_research": context["research"]["alliances"],
    }


def sheets_for(*, membership: Membership, session: PlaySession | None = None) -> dict[str, Any]:
    """The sheets as `membership` sees them on a page: their own first and open, the others
    folded; a GM's all open."""
    campaign = session.campaign if session is not None else membership.campaign
    data = sheets_public(campaign=campaign, state=session.state if session else None)
    is_gm = membership.role == Membership.Role.GM
    for sheet in data["sheets"]:
        sheet["mine"] = sheet["owner_id"] == membership.user_id
        sheet["open"] = sheet["mine"] or is_gm
    data["sheets"].sort(key=lambda s: not s["mine"])
    data["is_gm"] = is_gm
    return data


def sheets_for_event(event) -> dict[str, Any] | None:
    """The public sheets after `event` (for the broadcast's out-of-band swap), or None when the
    event changes none."""
    if not changes_sheets(event):
        return None
    session = PlaySession.objects.select_related("campaign__pack").filter(pk=event.session_id).first()
    if session is None:
        return None
    data = sheets_public(campaign=session.campaign, state=session.state)
    if event.type == "LevelGained":
        # Only the levelled character's sheet, highlighted: when several level up in one reward,
        # each one's event leaves its own highlight (the reward before them sent every sheet).
        levelled = event.payload.get("character_id")
        data["sheets"] = [s for s in data["sheets"] if s["id"] == levelled]
        data["levelled"] = levelled
    return data
