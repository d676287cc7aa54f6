"""What the game engine loads from the database before an append: the Rules (mission, decks,
loot tables, director and DDA configuration, characters, status catalogue) and the event types
the engine writes."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field

from django.conf import settings

from campaigns.models import Character, PlaySession
from missions import techtree
from missions.rules import dda, dice, loot
from narrative import decks as deck_rules
from narrative import director
from narrative.engine import inventory

logger = logging.getLogger("narrative.engine")


# Event types the engine writes (the play page's mission panel re-renders on these).
ENGINE_EVENTS = frozenset(
    {
        "MissionStarted",
        "ObjectiveRevealed",
        "ObjectiveCompleted",
        "ObjectiveFailed",
        "ObjectiveOverridden",
        "ClockTicked",
        "ClockWarning",
        "FreePlayStarted",
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
        "LootFound",
        "LevelGained",
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
    item_names: dict[str, str] = field(default_factory=dict)  # the pack's item slug -> name
    # (from_seq, secret) of the session's fair-dice secrets: Batch reads them under the session
    # row lock, so a resume that committed a new secret after the rules were loaded counts.
    dice_secrets: tuple[tuple[int, str], ...] = ()
    # Completed tech-tree research (missions.techtree): per character id, what it adds to checks.
    tech: dict[int, techtree.Effects] = field(default_factory=dict)

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
    dda_config = dda.DdaConfig(**settings.GTW_DDA)
    deck_weights = dict(pdata.get("deck_weights") or {})
    tech, table = _research(campaign, dda_config, deck_weights)
    return Rules(
        campaign_id=campaign.pk,
        session_id=session.pk,
        biome=(ast or {}).get("biome") or ((session.state or {}).get("scene") or {}).get("biome"),
        mission_ast=ast,
        mission_hash=mission.get("hash") if ast else None,
        decks=loaded_decks,
        loot_tables=tables,
        director_config=director_config,
        deck_weights=table["deck_weights"],
        dda_config=table["dda_config"],
        characters=characters,
        statuses={
            e["name"]: e for e in pack.get("status_effects", []) if isinstance(e, dict) and "name" in e
        },
        item_names=inventory.item_names(pack),
        tech=tech,
    )


def _research(campaign, dda_config: dda.DdaConfig, deck_weights: dict) -> tuple[dict, dict]:
    """Completed research's effects: per character (checks), and for the table — an alliance's
    DDA cap shift moves the highest DC offset (never below 0), its card pools weight the draws."""
    from dataclasses import replace

    from missions.techtree_services import research_effects

    per_character, table = research_effects(campaign)
    if table.dda_shift:
        top = max(0, min(dda.OFFSET_LIMIT, dda_config.dc_max_offset + table.dda_shift))
        dda_config = replace(dda_config, dc_max_offset=top)
    for kind, weight in table.card_weights.items():
        deck_weights[kind] = float(deck_weights.get(kind, 1.0)) * weight
    return per_character, {"dda_config": dda_config, "deck_weights": deck_weights}


# ---- the batch: pure given Rules, state and the first seq -------------------------------------
