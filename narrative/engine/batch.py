"""The engine's batch: the events one engine step appends, built inside
`events.append(derive=...)` against the session state as it is in that transaction. Pure given
the Rules, the state and the first seq (the XP read under lock aside)."""

from __future__ import annotations

import logging
import random
from dataclasses import replace

from campaigns import events
from campaigns.models import Character
from missions import runtime, simulation_services
from missions.rules import dda, loot, progression, status
from narrative import decks as deck_rules
from narrative import dice_secrets, director
from narrative.engine.rules import Rules, mission_ast

logger = logging.getLogger("narrative.engine")


class Batch:
    """Events one engine step appends. Built inside `events.append(derive=...)`."""

    def __init__(self, rules: Rules, state: dict, first_seq: int, *, actor_id: int | None = None):
        rules = replace(rules, dice_secrets=dice_secrets.load(rules.session_id))
        self.rules = rules
        self.state = state
        self.first_seq = first_seq
        self.actor_id = actor_id
        self.events: list[events.NewEvent] = []
        mission = state.get("mission") or {}
        if mission.get("hash") != rules.mission_hash:
            # The GM switched missions after the rules were loaded: play the live state's mission.
            ast = mission_ast(mission.get("hash"))
            rules = replace(
                rules,
                mission_ast=ast,
                mission_hash=mission.get("hash") if ast else None,
                biome=(ast or {}).get("biome") or rules.biome,
            )
            self.rules = rules
        self.mission_state = mission.get("state")
        self.director_state = state.get("director") or director.DirectorState().to_dict()
        self.drawn = list(state.get("drawn") or [])
        self.statuses: dict[str, list] = {k: list(v) for k, v in (state.get("statuses") or {}).items()}
        self.xp: dict[int, int] = {}  # character id -> XP after this step's rewards so far
        self._xp_now: dict[int, int] | None = None  # XP as it is now, read under lock (current_xp)
        self._mission_changed = False
        self._director_changed = False
        self._statuses_changed = False

    @property
    def next_seq(self) -> int:
        return self.first_seq + len(self.events)

    def add(self, type: str, payload: dict, *, actor_id: int | None = None, seeded: bool = False) -> int:
        seq = self.next_seq
        seed = None
        if seeded:  # the event records which derivation (and commitment) its seed used
            key = self.rules.seed_key(seq)
            seed, payload = key.seed(seq), {**payload, "seed_from": key.record()}
        self.events.append(events.NewEvent(type=type, payload=payload, actor_id=actor_id, seed=seed))
        return seq

    # -- the mission runtime

    def feed(self, game_event: dict) -> list[dict]:
        """Run one game event through the mission runtime; append an event per effect."""
        ast = self.rules.mission_ast
        if ast is None or self.mission_state is None or self.mission_state.get("closed"):
            return []  # no mission, or the GM set it aside (free play)
        rng = random.Random(self.rules.seed(self.next_seq))
        new_state, effects = runtime.step(ast, self.mission_state, game_event, rng)
        if new_state != self.mission_state:
            self._mission_changed = True
        self.mission_state = new_state
        for effect in effects:
            self._effect(effect)
        return effects

    def start_mission(self, payload: dict, ast: dict, *, actor_id: int | None = None) -> None:
        """MissionStarted (payload from `_start_payload`), then settle the new mission at its
        opening beat, so `beat inciting` conditions and `at beat inciting` twists act at once."""
        self.add("MissionStarted", payload, actor_id=actor_id)
        self.rules = replace(
            self.rules,
            mission_ast=ast,
            mission_hash=payload["mission_ref"]["hash"],
            biome=ast.get("biome") or self.rules.biome,
        )
        self.mission_state = payload["mission_state"]
        self.director_state = payload["director_state"]
        self.drawn = []  # the reducer forgets the drawn cards on MissionStarted too
        self.feed({"type": "BeatChanged", "beat": self.director_state["beat"]})

    def _effect(self, effect: dict) -> None:
        kind = effect["type"]
        payload = {k: v for k, v in effect.items() if k != "type"}
        if kind == "AdvanceRefused":
            return  # the tool call is refused before it gets here; nothing to record
        if kind == "SceneChanged":
            scene = next((s for s in self.rules.mission_ast["scenes"] if s["id"] == effect["scene"]), None)
            if scene:
                payload["scene_info"] = {
                    "slug": scene["id"],
                    "name": scene["title"],
                    "biome": self.rules.mission_ast.get("biome"),
                    "description": scene.get("description", ""),
                }
        if kind == "RewardGranted":
            self._reward(payload)
            return
        self.add(kind, payload)
        if kind == "TwistTriggered" and effect.get("draw"):
            self.draw(
                effect["draw"].get("deck"), where=effect["draw"].get("where") or {}, twist=effect["twist"]
            )

    def _reward(self, payload: dict) -> None:
        seq = self.next_seq
        rng = random.Random(self.rules.seed(seq))
        finds: list[dict] = []
        for entry in payload.get("loot", []):
            table = self.rules.loot_tables.get(entry["table"])
            if table is None:
                logger.warning("reward names unknown loot table %r", entry["table"])
                continue
            finds.extend(loot.roll(table, rng, entry.get("count", 1)))
        items = loot.combine([*({"item": i, "qty": 1} for i in payload.get("items", [])), *finds])
        xp = min(max(int(payload.get("xp") or 0), 0), progression.MAX_GRANT)  # what is granted
        current = self.current_xp()
        party = []
        for c in self.rules.characters:
            # Several rewards in one step (an objective's, then the mission's) add up.
            before = self.xp.get(c.id, current.get(c.id, c.xp))
            after, gained = progression.grant_xp(before, xp) if xp > 0 else (before, 0)
            self.xp[c.id] = after
            party.append(
                {
                    "character_id": c.id,
                    "name": c.name,
                    "xp": after,
                    "level": progression.level_for_xp(after),
                    "levels_gained": gained,
                }
            )
        # A mission's or objective's reward is the party's: its items go to the shared stash
        # (engine.inventory.grants), its XP to every character; each level gained is an event
        # of its own that everyone sees.
        self._tally(xp, items, party)
        self.add(
            "RewardGranted",
            {
                "reason": payload.get("reason", ""),
                "xp": xp,
                "party": party,
                "items": items,
                "to": "party",
                "holder": None,
                "level_events": True,
                "loot_tables": payload.get("loot", []),
            },
            seeded=True,
        )
        for member in party:
            if member["levels_gained"]:
                self.add(
                    "LevelGained",
                    {
                        "character_id": member["character_id"],
                        "character": member["name"],
                        "level": member["level"],
                        "from_level": member["level"] - member["levels_gained"],
                        "xp": member["xp"],
                    },
                )

    def _tally(self, xp: int, items: list[dict], party: list[dict]) -> None:
        """What the mission has earned so far, kept in its state (`earned`) for the mission-end
        panel: the XP each character got, the loot, who levelled up. The runtime ignores it."""
        if not self.mission_state:
            return
        earned = dict(self.mission_state.get("earned") or {"xp": 0, "items": [], "levels": []})
        found = {i["item"]: i["qty"] for i in earned.get("items", [])}
        for item in items:
            found[item["item"]] = found.get(item["item"], 0) + item["qty"]
        levels = {m["name"]: m["level"] for m in earned.get("levels", [])}
        levels.update({m["name"]: m["level"] for m in party if m["levels_gained"]})
        earned = {
            "xp": int(earned.get("xp", 0)) + xp,
            "items": [{"item": k, "qty": v} for k, v in sorted(found.items())],
            "levels": [{"name": k, "level": v} for k, v in sorted(levels.items())],
        }
        self.mission_state = {**self.mission_state, "earned": earned}
        self._mission_changed = True

    def current_xp(self) -> dict[int, int]:
        """Character id -> XP now. The rules were loaded before the session lock, so their XP
        may predate a concurrent reward; this reads it inside the append, locking the rows until
        the commit (in pk order, so two rewarding appends can't deadlock)."""
        if self._xp_now is None:
            ids = [c.id for c in self.rules.characters]
            rows = Character.objects.select_for_update().filter(pk__in=ids).order_by("pk")
            self._xp_now = dict(rows.values_list("pk", "xp"))
        return self._xp_now

    # -- story decks

    def scene_factions(self) -> list[str]:
        """The factions of the NPCs present in the current scene (sorted, for seeded draws)."""
        ast, state = self.rules.mission_ast, self.mission_state
        if not ast or not state:
            return []
        return sorted({n["faction"] for n in runtime.describe(ast, state)["npcs"] if n["faction"]})

    def draw_context(self, where: dict | None = None) -> dict:
        """What card prerequisites are checked against; a `where` faction brings that faction in."""
        clocks = (self.mission_state or {}).get("clocks") or {}
        context = {
            "biome": self.rules.biome,
            "beat": self.director_state.get("beat"),
            "clocks": dict(clocks),
            "faction": self.scene_factions(),
        }
        return deck_rules.where_context(where, context)

    def _pick(self, deck_or_kind: str | None, where: dict, seed: int) -> tuple[deck_rules.Draw | None, str]:
        """The seeded draw, or None and why not. A draw that can't be made (a filter the decks
        don't know) is logged and comes back empty: it must never fail the append."""
        pool = [d for d in self.rules.decks if d.slug == deck_or_kind] or list(self.rules.decks)
        kind = deck_or_kind if deck_or_kind in deck_rules.CARD_KINDS else None
        weights = {k: v for k, v in self.rules.deck_weights.items() if k in deck_rules.CARD_KINDS}
        try:
            if where:
                pool = [
                    replace(d, cards=tuple(c for c in d.cards if deck_rules.matches(c, where))) for d in pool
                ]
            drawn = deck_rules.draw(
                pool,
                random.Random(seed),
                kind=kind,
                context=self.draw_context(where),
                weights=weights or None,
                exclude=set(self.drawn),
                seed=seed,
            )
        except deck_rules.DeckError as exc:
            logger.warning("deck draw (%s where %s) can't be made: %s", deck_or_kind, where, exc)
            return None, f"the draw can't be made: {exc}"
        return drawn, "" if drawn else "no card fits this scene and beat"

    def _note_no_card(self, twist: str, why: str) -> None:
        """A twist whose draw found no card says so on its TwistTriggered event."""
        for i in range(len(self.events) - 1, -1, -1):
            event = self.events[i]
            if event.type == "TwistTriggered" and event.payload.get("twist") == twist:
                self.events[i] = replace(event, payload={**event.payload, "no_card": why})
                return

    def draw(
        self, deck_or_kind: str | None, *, where: dict | None = None, twist: str | None = None
    ) -> dict | None:
        """Draw a card (seeded by the CardDrawn event's seq); None when no card fits or the
        draw can't be made (a twist's event then notes why)."""
        seed = self.rules.seed(self.next_seq)
        drawn, why = self._pick(deck_or_kind, where or {}, seed)
        if drawn is None:
            if twist is not None:
                self._note_no_card(twist, why)
            return None
        card = drawn.card
        key = deck_rules.card_key(drawn.provenance["deck"], card["id"])
        self.drawn.append(key)
        payload = {
            **drawn.provenance,
            "kind": card["kind"],
            "title": card["title"],
            "text": card["text"],
            "payoff": card.get("payoff", ""),
            "twist": twist,
        }
        self.add("CardDrawn", payload, seeded=True)
        return payload

    # -- the director

    def director_step(self, *, twist_fired: bool = False) -> dict | None:
        config = self.rules.director_config
        current = director.DirectorState.from_dict(self.director_state)
        described = self._progress()
        new, effects = director.step(
            config,
            current,
            {
                "turns_elapsed": 1,
                "mission_progress": described["progress"],
                "max_clock": described["max_clock"],
                "mission_status": described["status"],
                "twist_fired": twist_fired,
            },
        )
        self.director_state = new.to_dict()
        self._director_changed = True
        change = effects[0] if effects else None
        if change:
            self.beat_changed(change)
        return change

    def set_beat(self, beat: str, *, by: str = "gm", reason: str | None = None) -> dict | None:
        current = director.DirectorState.from_dict(self.director_state)
        new, effects = director.set_beat(current, beat, by=by, reason=reason)
        self.director_state = new.to_dict()
        self._director_changed = True
        if effects:
            self.beat_changed(effects[0])
            return effects[0]
        return None

    def beat_changed(self, change: dict) -> None:
        bounds = self.rules.dda_config.intensity_bounds
        payload = {
            **{k: v for k, v in change.items() if k != "type"},
            "beat": change["label"],
            "intensity": director.intensity_target(self.rules.director_config, change["to"], bounds),
            "word_limit": director.word_limit(self.rules.director_config, change["to"]),
        }
        # Lockstep (issue 19): the world simulation runs its authorised step window first; the
        # beat advances only once the window completed (or was quarantined and fell back).
        self.events += simulation_services.boundary_events(
            campaign_id=self.rules.campaign_id,
            session_id=self.rules.session_id,
            # The mission as this batch left it: an objective completed in this very step
            # no longer keeps its NPCs protected.
            state={
                **self.state,
                "mission": {**(self.state.get("mission") or {}), "state": self.mission_state},
            },
            seq=self.next_seq,
            beat=change["to"],
        )
        self.add("BeatChanged", payload)
        self.feed({"type": "BeatChanged", "beat": change["to"]})

    def _progress(self) -> dict:
        ast, state = self.rules.mission_ast, self.mission_state
        if not ast or not state:
            return {"progress": 0.0, "max_clock": 0.0, "status": "active"}
        statuses = list(state["objectives"].values())
        progress = statuses.count("complete") / len(statuses) if statuses else 0.0
        sizes = {c["id"]: c["size"] for c in ast["clocks"]}
        fullest = max((v / sizes[k] for k, v in state["clocks"].items() if sizes.get(k)), default=0.0)
        return {"progress": progress, "max_clock": min(1.0, fullest), "status": state["status"]}

    # -- difficulty

    def dda_after(self, outcome: str) -> None:
        """Adjust difficulty from the recent checks (this one included), within the caps."""
        config = self.rules.dda_config
        current = dda.DdaState.from_dict(self.state.get("dda") or dda.DdaState().to_dict())
        outcomes = [*(self.state.get("outcomes") or []), outcome][-config.window :]
        adjustment = dda.adjust(config, outcomes, current)
        if adjustment.changed:
            self.add(
                "DifficultyAdjusted",
                {
                    "reason": adjustment.reason,
                    **adjustment.state.to_dict(),
                    "dda_state": adjustment.state.to_dict(),
                },
            )

    # -- status effects (missions.rules.status), per character id

    def status_apply(self, character_id: int, name: str, *, source: str = "") -> dict:
        spec = self.rules.statuses[name]
        effect = status.StatusEffect.make(
            name,
            int(spec.get("duration", 1)),
            stacking=spec.get("stacking", "refresh"),
            modifiers=spec.get("modifiers") or {},
            max_stacks=int(spec.get("max_stacks", 1)),
            source=source[:60],
        )
        key = str(character_id)
        current = status.effects_from_list(self.statuses.get(key, []))
        self.statuses[key] = status.effects_to_list(status.apply(current, effect))
        self._statuses_changed = True
        return spec

    def status_tick(self, character_id: int | None = None, *, fresh: frozenset[str] = frozenset()) -> None:
        """`character_id`'s turn passed: their statuses run down one turn (a status lasts N of
        *that character's* turns, never another player's); what ran out is an event. `fresh`:
        the names applied to them during this very turn, which start counting from their next.
        Without a character, a round that was everyone's: every character's statuses run down."""
        if character_id is None:
            for key in sorted(self.statuses, key=lambda k: int(k) if k.isdigit() else 0):
                if key.isdigit():
                    self.status_tick(int(key))
            return
        names = {c.id: c.name for c in self.rules.characters}
        key = str(character_id)
        if not self.statuses.get(key):
            return
        kept, expired = [], []
        for effect in status.effects_from_list(self.statuses[key]):
            if effect.name in fresh:
                kept.append(effect)
                continue
            left, gone = status.tick([effect])
            kept += left
            expired += gone
        self.statuses[key] = status.effects_to_list(kept)
        self._statuses_changed = True
        for effect in expired:
            label = self.rules.statuses.get(effect.name, {}).get("label", effect.name)
            self.add(
                "StatusExpired",
                {
                    "character_id": int(key),
                    "character": names.get(int(key)),
                    "name": effect.name,
                    "label": label,
                },
            )

    def end_turn(
        self,
        *,
        took_time: bool,
        character_id: int | None,
        actor_id: int | None = None,
        fresh: frozenset[str] = frozenset(),
    ) -> list[dict]:
        """The end of a party turn: the mission hears it (`took_time`: whether the turn spent the
        party's time — decided by `narrative.engine.turn_took_time`, stored on the event, so a
        replay agrees), and the acting character's statuses run down (a turn with no character
        of the actor's runs nobody's down). `actor_id` (the acting user) counts towards the
        mission's `turns each`. Returns the runtime's effects."""
        turn: dict = {"type": "TurnEnded", "took_time": took_time}
        if actor_id is not None:
            turn["actors"] = [actor_id]
        effects = self.feed(turn)
        if character_id is not None:
            self.status_tick(character_id, fresh=fresh)
        return effects

    def free_play(self) -> None:
        """The GM sets the mission aside: play goes on with no mission (no clocks, objectives or
        fail states) until the GM starts one. The mission's state is kept, marked closed."""
        if not self.mission_state or self.mission_state.get("closed"):
            return
        self.mission_state = {**self.mission_state, "closed": True}
        self._mission_changed = True

    def status_modifier(self, character_id: int | None, attribute: str) -> int:
        if character_id is None:
            return 0
        effects = status.effects_from_list(self.statuses.get(str(character_id), []))
        return status.modifiers(effects).get(attribute, 0)

    # -- done

    def finish(self) -> list[events.NewEvent]:
        if not self.events:
            return []
        last = self.events[-1]
        extra = {}
        if self._mission_changed:
            extra["mission_state"] = self.mission_state
        if self._director_changed:
            extra["director_state"] = self.director_state
        if self._statuses_changed:
            extra["status_state"] = {k: v for k, v in self.statuses.items() if v}
        if extra:
            self.events[-1] = replace(last, payload={**last.payload, **extra})
        return self.events


def dda_state(state: dict) -> dda.DdaState:
    return dda.DdaState.from_dict(state.get("dda") or dda.DdaState().to_dict())


def dc_offset(state: dict, config: dda.DdaConfig) -> int:
    """The DC offset to apply now: the stored one, pulled inside today's caps (they may have been
    narrowed since it was stored; `dda.adjust` pulls it in too, but only after the next check)."""
    offset = dda_state(state).dc_offset
    return max(config.dc_min_offset, min(config.dc_max_offset, offset))
