"""The game engine, wired to the event store.

The rules live in pure modules (missions.runtime, missions.rules, narrative.director,
narrative.decks). This module loads what they need from the database (`load_rules`, before an
append), then runs them *inside* the append (`events.append(derive=...)`) against the session
state as it is in that transaction, so a rule never acts on a stale state. Every change is an
event; engine events carry the engine's new state (`mission_state`, `director_state`,
`dda_state`) and the reducer copies it, so replaying the log reproduces the game exactly.
Everything random is seeded from (campaign, session, seq) and the session's dice secret, like
the dice (narrative.dice_secrets).
"""

from __future__ import annotations

import functools
import logging
import random
from dataclasses import dataclass, field, replace

from django.conf import settings
from django.db import transaction

from campaigns import events
from campaigns.errors import Conflict, Invalid
from campaigns.models import Character, PlaySession
from missions import runtime
from missions.rules import dda, dice, loot, progression, status
from missions.services import campaign_mission, campaign_mission_pin, mission_for_start
from narrative import decks as deck_rules
from narrative import dice_secrets, director

logger = logging.getLogger(__name__)

# Event types the engine writes (the play page's mission panel re-renders on these).
ENGINE_EVENTS = frozenset(
    {
        "MissionStarted",
        "ObjectiveRevealed",
        "ObjectiveCompleted",
        "ObjectiveFailed",
        "ObjectiveOverridden",
        "ClockTicked",
        "SceneChanged",
        "TwistTriggered",
        "CardDrawn",
        "MissionFailed",
        "MissionCompleted",
        "RewardGranted",
        "BeatChanged",
        "Recap",
        "DifficultyAdjusted",
        "WorldUpdated",
        "MissionAdvanced",
        "InitiativeRolled",
        "CombatEnded",
        "NpcSpoke",
        "StatusApplied",
        "StatusExpired",
    }
)


@dataclass(frozen=True)
class CharacterInfo:
    id: int
    owner_id: int
    name: str
    xp: int
    agility: int


@dataclass
class Rules:
    """Everything the pure engine needs that comes from the database, loaded before an append."""

    campaign_id: int
    session_id: int
    biome: str | None
    mission_ast: dict | None
    decks: list[deck_rules.Deck]
    loot_tables: dict[str, loot.LootTable]
    director_config: director.DirectorConfig
    deck_weights: dict[str, float]
    dda_config: dda.DdaConfig
    characters: list[CharacterInfo] = field(default_factory=list)
    statuses: dict[str, dict] = field(default_factory=dict)  # the pack's status effect catalogue
    mission_hash: str | None = None
    # (from_seq, secret) of the session's fair-dice secrets: Batch reads them under the session
    # row lock, so a resume that committed a new secret after the rules were loaded counts.
    dice_secrets: tuple[tuple[int, str], ...] = ()

    def seed_key(self, seq: int) -> dice.SeedKey:
        return dice.key_at(self.campaign_id, self.session_id, seq, self.dice_secrets)

    def seed(self, seq: int) -> int:
        return self.seed_key(seq).seed(seq)


# ---- loading ---------------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def _mission_ast(content_hash: str) -> dict | None:
    from missions.models import Mission

    return Mission.objects.filter(content_hash=content_hash).values_list("ast", flat=True).first()


def mission_ast(content_hash: str | None) -> dict | None:
    """The compiled mission for a content hash (immutable, so cached per process)."""
    return _mission_ast(content_hash) if content_hash else None


@functools.lru_cache(maxsize=64)
def _deck(sha256: str, document_json: str) -> deck_rules.Deck:
    import json

    # Installed decks were verified on install; check again on load (microseconds) so a row
    # edited in the database behind our back is refused, not played.
    return deck_rules.verify_deck(json.loads(document_json), trusted_keys())


def trusted_keys() -> dict[str, str]:
    from narrative.services import trusted_keys as load

    return load()


def load_rules(session: PlaySession) -> Rules:
    import json

    from narrative.models import StoryDeck

    campaign = session.campaign
    pack = campaign.pack.data
    personality = campaign.personality
    pdata = (personality.data if personality else None) or {}
    try:
        director_config = director.DirectorConfig.from_weights(pdata.get("director"))
    except director.DirectorError:
        logger.warning("personality %s has bad director weights; using defaults", personality)
        director_config = director.DirectorConfig.from_weights(None)
    mission = (session.state or {}).get("mission") or {}
    ast = _mission_ast(mission["hash"]) if mission.get("hash") else None
    loaded_decks = []
    for row in StoryDeck.objects.all():
        try:
            loaded_decks.append(_deck(row.sha256, json.dumps(row.document, sort_keys=True)))
        except deck_rules.DeckError as exc:
            logger.warning("story deck %s refused: %s", row.slug, exc)
    try:
        tables = loot.load_tables(pack.get("loot") or {})
    except loot.LootError:
        logger.warning("pack %s has bad loot tables", campaign.pack.slug, exc_info=True)
        tables = {}
    characters = [
        CharacterInfo(c.pk, c.owner_id, c.name, c.xp, int((c.attributes or {}).get("agility", 10)))
        for c in Character.objects.filter(campaign_id=campaign.pk).order_by("pk")
    ]
    return Rules(
        campaign_id=campaign.pk,
        session_id=session.pk,
        biome=(ast or {}).get("biome") or ((session.state or {}).get("scene") or {}).get("biome"),
        mission_ast=ast,
        mission_hash=mission.get("hash") if ast else None,
        decks=loaded_decks,
        loot_tables=tables,
        director_config=director_config,
        deck_weights=dict(pdata.get("deck_weights") or {}),
        dda_config=dda.DdaConfig(**settings.GTW_DDA),
        characters=characters,
        statuses={
            e["name"]: e for e in pack.get("status_effects", []) if isinstance(e, dict) and "name" in e
        },
    )


# ---- the batch: pure given Rules, state and the first seq -------------------------------------


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
        if ast is None or self.mission_state is None:
            return []
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
        holder = next((c for c in self.rules.characters if c.owner_id == self.actor_id), None) or (
            self.rules.characters[0] if self.rules.characters else None
        )
        self.add(
            "RewardGranted",
            {
                "reason": payload.get("reason", ""),
                "xp": xp,
                "party": party,
                "items": items,
                "holder": {"character_id": holder.id, "name": holder.name} if holder and items else None,
                "loot_tables": payload.get("loot", []),
            },
            seeded=True,
        )

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

    def status_tick(self) -> None:
        """A turn passed: durations run down; what ran out is an event."""
        names = {c.id: c.name for c in self.rules.characters}
        for key in sorted(self.statuses):
            if not self.statuses[key]:
                continue
            remaining, expired = status.tick(status.effects_from_list(self.statuses[key]))
            self.statuses[key] = status.effects_to_list(remaining)
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


# ---- after commit: the projections outside the event log ---------------------------------------


def apply_projections(created: list) -> None:
    """Character progression and inventory follow RewardGranted events. Call in the append's
    transaction, only for events that were really created (not an idempotent replay)."""
    for event in created:
        if event.type != "RewardGranted":
            continue
        payload = event.payload
        for member in payload.get("party", []):
            Character.objects.filter(pk=member["character_id"]).update(xp=member["xp"], level=member["level"])
        holder = payload.get("holder")
        if holder and payload.get("items"):
            character = Character.objects.select_for_update().filter(pk=holder["character_id"]).first()
            if character is not None:
                inventory = {i["item"]: i["qty"] for i in character.inventory or []}
                for find in payload["items"]:
                    inventory[find["item"]] = inventory.get(find["item"], 0) + find["qty"]
                character.inventory = [{"item": k, "qty": v} for k, v in sorted(inventory.items())]
                character.save(update_fields=["inventory"])


def append_engine(session: PlaySession, build, *, idempotency_key: str | None = None, actor_id=None):
    """Load the rules, then append what `build(batch)` adds, atomically, against the live state.
    Returns the AppendResult; the event store's listeners broadcast the events after commit."""
    rules = load_rules(session)

    def derive(state, first_seq):
        batch = Batch(rules, state, first_seq, actor_id=actor_id)
        build(batch)
        return batch.finish()

    with transaction.atomic():
        result = events.append(session, derive=derive, idempotency_key=idempotency_key)
        if not result.replayed and result.events:
            apply_projections(result.events)
    return result


# ---- missions in a session ---------------------------------------------------------------------


def _start_payload(mission) -> dict:
    ast = mission.ast
    first_scene = ast["scenes"][0] if ast["scenes"] else None
    objective = next((o["text"] for o in ast["objectives"] if o.get("hidden_until") is None), None)
    return {
        "mission": mission.title,
        "mission_ref": {
            "slug": mission.slug,
            "title": mission.title,
            "hash": mission.content_hash,
            "summary": ast.get("summary", ""),
        },
        "mission_state": runtime.initial_state(ast, beat=director.DirectorState().beat),
        "director_state": director.DirectorState().to_dict(),
        "beat": director.BEAT_LABELS["inciting"],
        "objective": objective,
        "scene": (
            {
                "slug": first_scene["id"],
                "name": first_scene["title"],
                "biome": ast.get("biome"),
                "description": first_scene.get("description", ""),
            }
            if first_scene
            else None
        ),
    }


def mission_opening(*, campaign) -> dict | None:
    """SessionOpened payload fields that start the campaign's pinned mission version with the
    session (None when it is not installed: the session then plays without one). Never the
    newest upload of the slug: see missions.services.campaign_mission."""
    mission = campaign_mission(campaign=campaign)
    return _start_payload(mission) if mission else None


def mission_start(
    *, session: PlaySession, slug: str, content_hash: str | None = None, actor_id: int | None = None
):
    """Start (or switch to) mission `slug` in this session, and pin that version on the campaign
    so its next sessions open with it. Which version: missions.services.mission_for_start.
    Invalid for a malformed slug or hash, NotFound when it isn't installed."""
    campaign = session.campaign
    mission = mission_for_start(campaign=campaign, slug=slug, content_hash=content_hash)
    if session.status != PlaySession.Status.ACTIVE:
        raise Conflict("This session has ended; resume it first.")

    def build(batch: Batch):
        batch.start_mission(_start_payload(mission), mission.ast, actor_id=actor_id)

    with transaction.atomic():
        result = append_engine(session, build, actor_id=actor_id)
        campaign_mission_pin(campaign=campaign, mission=mission)
    return result


def mission_view(session_state: dict) -> dict | None:
    """The mission panel's data (runtime.describe), or None when no mission runs."""
    mission = (session_state or {}).get("mission") or {}
    ast = _mission_ast(mission["hash"]) if mission.get("hash") else None
    if ast is None or not mission.get("state"):
        return None
    view = runtime.describe(ast, mission["state"])
    for clock in view["clocks"]:
        clock["segments"] = [i < clock["value"] for i in range(clock["size"])]
    return view


def gm_override(*, session: PlaySession, actor_id: int, change: dict):
    """A GM forces an objective status, a clock value or the scene (runtime GmOverride)."""
    if not (session.state or {}).get("mission"):
        raise Conflict("No mission is running in this session.")

    def build(batch: Batch):
        effects = batch.feed({"type": "GmOverride", **change})
        if not effects:
            raise Invalid("That change does nothing: check the objective, clock or scene id and value.")

    return append_engine(session, build, actor_id=actor_id)


def beat_set(*, session: PlaySession, beat: str, actor_id: int):
    if beat not in director.BEATS:
        raise Invalid(f"beat must be one of {', '.join(director.BEATS)}.")

    def build(batch: Batch):
        if batch.set_beat(beat, by="gm") is None:
            raise Invalid(f"The story is already at {director.BEAT_LABELS[beat]}.")

    return append_engine(session, build, actor_id=actor_id)


def panel_context(state: dict) -> dict:
    """What the play page's mission panel shows (rendered by the page and pushed on changes)."""
    view = mission_view(state)
    beat = (state.get("director") or {}).get("beat") or "inciting"
    index = director.BEATS.index(beat) if beat in director.BEATS else 0
    return {
        "mission": view,
        "beats": [
            {"id": b, "label": director.BEAT_LABELS[b], "current": i == index, "past": i < index}
            for i, b in enumerate(director.BEATS)
        ],
        "initiative": state.get("initiative"),
        "objective": active_objective(view, state),
        "conditions": conditions(state),
    }


def conditions(state: dict) -> list[dict]:
    """Status effects on characters now, for the panel: [{"character", "effects": [...]}]."""
    names = {
        str(c.pk): c.name
        for c in Character.objects.filter(pk__in=[int(k) for k in (state.get("statuses") or {})])
    }
    return [
        {"character": names.get(key, "?"), "effects": effects}
        for key, effects in sorted((state.get("statuses") or {}).items())
        if effects
    ]


def active_objective(view: dict | None, state: dict) -> str | None:
    """The first objective still open (the play page's header line)."""
    open_ = (o["text"] for o in (view or {}).get("objectives", []) if o["status"] == "active")
    return next(open_, None) or state.get("objective")
