"""What each accepted tool call appends: one builder per tool, run as an engine step
(narrative.engine.append_engine) with the call's seq-derived seed."""

from __future__ import annotations

import random

from campaigns import state as reducer
from missions.rules import dda, dice, initiative
from narrative import engine
from narrative.engine import inventory


def _skill_check(campaign_id, action_seq, actor_id, character, args):
    attrs = (character or {}).get("attributes") or {}
    modifier = dice.attribute_modifier(int(attrs.get(args["attribute"], 10)))

    def build(batch: engine.Batch):
        seq = batch.next_seq
        seed = batch.rules.seed(seq)
        offset = engine.dc_offset(batch.state, batch.rules.dda_config)
        dc = dda.apply_dc(args["dc"], offset)
        acting = next((c for c in batch.rules.characters if c.owner_id == actor_id), None)
        from_status = batch.status_modifier(acting.id if acting else None, args["attribute"])
        # Completed research (missions.techtree): a bonus on this attribute, and maybe advantage.
        tech = batch.rules.tech.get(acting.id) if acting else None
        from_tech = tech.modifier(args["attribute"], args["skill"]) if tech else 0
        tech_advantage = bool(tech and args["attribute"] in tech.advantage)
        check = dice.skill_check(
            rng=random.Random(seed),
            modifier=max(-20, min(20, modifier + from_status + from_tech)),
            dc=dc,
            advantage=args.get("advantage", False) or tech_advantage,
            disadvantage=args.get("disadvantage", False),
        )
        batch.add(
            "DiceRolled",
            {
                "kind": "check",
                "action_seq": action_seq,
                "skill": args["skill"],
                "attribute": args["attribute"],
                "reason": args.get("reason", ""),
                "character": (character or {}).get("name"),
                "base_dc": args["dc"],
                "dc_offset": offset,
                "outcomes_kept": reducer.RECENT_OUTCOMES,
                "status_modifier": from_status,
                **({"research_modifier": from_tech} if from_tech else {}),
                **({"research_advantage": True} if tech_advantage else {}),
                **check.to_dict(),
            },
            actor_id=actor_id,
            seeded=True,
        )
        batch.dda_after(check.outcome)
        batch.feed(
            {
                "type": "CheckResolved",
                "skill": args["skill"],
                "attribute": args["attribute"],
                "outcome": check.outcome,
                "actor": (character or {}).get("name"),
            }
        )

    return build


def _rng_roll(campaign_id, action_seq, actor_id, character, args):
    def build(batch: engine.Batch):
        seed = batch.rules.seed(batch.next_seq)
        rolled = dice.roll(random.Random(seed), args["expression"])
        batch.add(
            "DiceRolled",
            {
                "kind": "roll",
                "action_seq": action_seq,
                "reason": args.get("reason", ""),
                "character": (character or {}).get("name"),
                **rolled.to_dict(),
            },
            actor_id=actor_id,
            seeded=True,
        )
        if args.get("loot"):
            _search(batch, args["loot"], rolled, action_seq=action_seq, actor_id=actor_id)

    return build


def _search(batch: engine.Batch, table_slug: str, rolled: dice.RollResult, *, action_seq, actor_id) -> None:
    """A search roll's finds (LootFound, seeded by its own seq): the roll says how many draws
    from the loot table and whether its "nothing" counts (engine.inventory.draws_for, sure_find),
    and what turns up goes into the searcher's inventory — the party's stash when the actor plays
    no character. Always an event, so the narration names exactly what was found, or that
    nothing was."""
    slug = inventory.search_table(table_slug, batch.rules.loot_tables)
    expression = dice.parse_expression(rolled.expression)
    low = expression.count + expression.modifier
    high = expression.count * expression.sides + expression.modifier
    draws = inventory.draws_for(rolled.total, low, high) if slug else 0
    sure = inventory.sure_find(rolled.total, low, high)
    seed = batch.rules.seed(batch.next_seq)
    table = batch.rules.loot_tables.get(slug) if slug else None
    items = inventory.search(table, random.Random(seed), draws, sure=sure) if table else []
    finder = next((c for c in batch.rules.characters if c.owner_id == actor_id), None)
    named = inventory.named(items, batch.rules.item_names)
    batch.add(
        "LootFound",
        {
            "action_seq": action_seq,
            "to": "character" if finder else "party",
            "character_id": finder.id if finder else None,
            "character": finder.name if finder else None,
            "items": items,
            "text": inventory.describe(named),
            "table": slug,
            "draws": draws,
        },
        actor_id=actor_id,
        seeded=True,
    )


def _mission_advance(campaign_id, action_seq, actor_id, character, args):
    def build(batch: engine.Batch):
        batch.add(
            "MissionAdvanced",
            {"action_seq": action_seq, "objective": args["objective"], "reason": args.get("reason", "")},
        )
        batch.feed({"type": "Advance", "objective": args["objective"]})

    return build


def _world_update(campaign_id, action_seq, actor_id, character, args):
    def build(batch: engine.Batch):
        batch.add(
            "WorldUpdated",
            {
                "action_seq": action_seq,
                "flag": args["flag"],
                "value": args["value"],
                "reason": args.get("reason", ""),
            },
        )
        batch.feed({"type": "SetFlag", "name": args["flag"], "value": args["value"]})

    return build


def _npc_speak(campaign_id, action_seq, actor_id, character, args):
    def build(batch: engine.Batch):
        npc = next((n for n in batch.rules.mission_ast["npcs"] if n["id"] == args["npc"]), None)
        batch.add(
            "NpcSpoke",
            {
                "action_seq": action_seq,
                "npc": args["npc"],
                "name": npc["name"] if npc else args["npc"],
                "line": args["line"].strip(),
                # The mission's `voice` for the NPC: how media.speech picks its spoken voice.
                **({"voice": npc["voice"]} if npc and npc.get("voice") else {}),
            },
        )

    return build


def _deck_draw(campaign_id, action_seq, actor_id, character, args):
    def build(batch: engine.Batch):
        card = batch.draw(args["kind"])
        if card is None:
            batch.add(
                "ToolRefused",
                {
                    "action_seq": action_seq,
                    "tool": "deck_draw",
                    "error": f"no {args['kind']} card fits this scene and beat; narrate without one",
                    "arguments": args,
                },
            )
            return
        batch.events[-1].payload["action_seq"] = action_seq

    return build


def _combat_start(campaign_id, action_seq, actor_id, character, args):
    def build(batch: engine.Batch):
        combatants = [
            {"id": f"pc:{c.id}", "attribute": max(1, min(30, c.agility))} for c in batch.rules.characters
        ]
        names = {f"pc:{c.id}": c.name for c in batch.rules.characters}
        for i, foe in enumerate(args["foes"]):
            combatants.append({"id": f"foe:{i}", "attribute": foe.get("agility", 10)})
            names[f"foe:{i}"] = foe["name"]
        seed = batch.rules.seed(batch.next_seq)
        order = initiative.roll_initiative(combatants, random.Random(seed))
        batch.add(
            "InitiativeRolled",
            {
                "action_seq": action_seq,
                "order": [{**e.to_dict(), "name": names[e.id], "side": e.id.split(":")[0]} for e in order],
            },
            seeded=True,
        )

    return build


def _status_apply(campaign_id, action_seq, actor_id, character, args):
    def build(batch: engine.Batch):
        target = next(c for c in batch.rules.characters if c.name == args["character"])
        spec = batch.status_apply(target.id, args["effect"], source=args.get("reason", ""))
        batch.add(
            "StatusApplied",
            {
                "action_seq": action_seq,
                "character_id": target.id,
                "character": target.name,
                "name": args["effect"],
                "label": spec.get("label", args["effect"]),
                "modifiers": spec.get("modifiers", {}),
                "duration": spec.get("duration", 1),
                "reason": args.get("reason", ""),
            },
        )

    return build


def _combat_end(campaign_id, action_seq, actor_id, character, args):
    def build(batch: engine.Batch):
        batch.add("CombatEnded", {"action_seq": action_seq})

    return build


BUILDERS = {
    "rules_skill_check": _skill_check,
    "rng_roll": _rng_roll,
    "mission_advance": _mission_advance,
    "world_update": _world_update,
    "npc_speak": _npc_speak,
    "deck_draw": _deck_draw,
    "combat_start": _combat_start,
    "combat_end": _combat_end,
    "status_apply": _status_apply,
}
