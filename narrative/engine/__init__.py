"""The game engine, wired to the event store.

The rules live in pure modules (missions.runtime, missions.rules, narrative.director,
narrative.decks). This module loads what they need from the database (`load_rules`, before an
append), then runs them *inside* the append (`events.append(derive=...)`) against the session
state as it is in that transaction, so a rule never acts on a stale state. Every change is an
event; engine events carry the engine's new state (`mission_state`, `director_state`,
`dda_state`) and the reducer copies it, so replaying the log reproduces the game exactly.
Everything random is seeded from (campaign, session, seq) and the session's dice secret, like
the dice (narrative.dice_secrets).

The package: `rules` (what is loaded before an append), `batch` (the pure step inside it),
`missions` (appending steps; mission start, GM overrides, beats) and `panel` (the mission
panel's data). Every name is re-exported here, so `from narrative import engine` reads as one
module; patch a name where it is looked up (e.g. narrative.engine.missions.load_rules).
"""

from narrative.engine.batch import Batch, dc_offset, dda_state
from narrative.engine.missions import (
    append_engine,
    apply_projections,
    beat_set,
    end_party_turn,
    free_play,
    gm_override,
    mission_next,
    mission_opening,
    mission_retry,
    mission_start,
    pack_missions,
    start_payload,
    turn_took_time,
)
from narrative.engine.panel import (
    active_objective,
    conditions,
    free_play_on,
    mission_view,
    panel_context,
)
from narrative.engine.rules import (
    ENGINE_EVENTS,
    CharacterInfo,
    Rules,
    load_rules,
    mission_ast,
    trusted_keys,
)

__all__ = [
    "ENGINE_EVENTS",
    "Batch",
    "CharacterInfo",
    "Rules",
    "active_objective",
    "append_engine",
    "apply_projections",
    "beat_set",
    "conditions",
    "dc_offset",
    "dda_state",
    "end_party_turn",
    "free_play",
    "free_play_on",
    "gm_override",
    "load_rules",
    "mission_ast",
    "mission_next",
    "mission_opening",
    "mission_retry",
    "mission_start",
    "mission_view",
    "pack_missions",
    "panel_context",
    "start_payload",
    "trusted_keys",
    "turn_took_time",
]
