"""Dispatching a narrator's tool call: the game's rules before anything happens, a refusal
recorded (ToolRefused) and returned to the model, or the call run as an engine step whose events
the model hears back."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

from campaigns import events
from campaigns.models import Character, Event
from gtw_site.text import storable
from missions import runtime
from missions.rules import dda, dice, initiative, loot, progression, status
from narrative import decks, director, engine
from narrative.llm.base import ToolCall
from narrative.tools import images
from narrative.tools.builders import BUILDERS
from narrative.tools.schema import MAX_DRAWS_PER_TURN, invalid_reason, whole_numbers

logger = logging.getLogger("narrative.tools")

# A rule that still says no once a call has passed its schema and `_refusal` (a number out of a
# rule's range, say) is a refusal for the model, never an error that fails the turn.
RULE_ERRORS = (
    dda.DdaError,
    dice.DiceError,
    initiative.InitiativeError,
    loot.LootError,
    progression.ProgressionError,
    status.StatusError,
    decks.DeckError,
    director.DirectorError,
)


@dataclass
class ToolOutcome:
    result: dict[str, Any]  # what goes back to the model
    event_seq: int | None  # the event that records it
    refused: bool = False


def call_key(action_seq: int, round_no: int, index: int, call: ToolCall) -> str:
    """Idempotency key for a tool call: its position in the turn and its name. A re-run turn
    (after a crash) gets the original event back instead of a second roll, even when the model
    phrases the call differently the second time: the state it sees has moved on (the first
    run's roll already completed an objective), and a committed roll is never rolled again."""
    return f"tool:{action_seq}:{round_no}:{index}:{storable(call.name[:40])}"


def dispatch(
    *,
    session,
    campaign_id: int,
    action_seq: int,
    actor_id: int | None,
    character: dict | None,
    call: ToolCall,
    round_no: int,
    index: int,
) -> tuple[ToolOutcome, list]:
    """Validate and run one call. Returns the outcome and the new (committed) events."""
    key = call_key(action_seq, round_no, index, call)
    session.refresh_from_db(fields=["state", "version"])  # earlier calls this turn moved it on
    replay = events.find_replay(session.pk, key)
    if replay is not None:  # a re-run turn: the call already happened
        return outcome_of(replay.events), []
    call = replace(call, arguments=whole_numbers(call.arguments))
    error = invalid_reason(call) or _refusal(session, action_seq, call)
    if error is not None:
        return _refuse(session, key, action_seq, call, error)

    if call.name == "world_query":
        view = engine.mission_view(session.state) or {}
        topic = call.arguments["topic"]
        if topic == "flags":
            data = ((session.state.get("mission") or {}).get("state") or {}).get("flags", {})
        else:
            data = view.get(topic)
        return ToolOutcome({"topic": topic, topic: data}, None), []

    if call.name == "image_request":  # no event: a picture is not game state (narrative/tools/images.py)
        result = images.request(session=session, arguments=call.arguments)
        if "error" in result:
            return _refuse(session, key, action_seq, call, result["error"])
        return ToolOutcome(result, None), []

    build = BUILDERS[call.name](campaign_id, action_seq, actor_id, character, call.arguments)
    try:
        result = engine.append_engine(session, build, idempotency_key=key, actor_id=actor_id)
    except RULE_ERRORS as exc:  # the append rolled back: nothing happened but the refusal
        logger.info("tool %s refused by a rule: %s", call.name, exc)
        return _refuse(session, key, action_seq, call, f"the game's rules refuse this call: {exc}")
    created = [] if result.replayed else result.events
    return outcome_of(result.events), created


def _refuse(session, key: str, action_seq: int, call: ToolCall, error: str) -> tuple[ToolOutcome, list]:
    """Record a ToolRefused (what can't be stored removed) and return the reason to the model."""
    payload = {
        "action_seq": action_seq,
        "tool": call.name,
        "error": error,
        "arguments": call.arguments or call.raw_arguments[:500],
    }
    result = events.append(
        session,
        [events.NewEvent(type="ToolRefused", actor_id=None, payload=storable(payload))],
        idempotency_key=key,
    )
    return ToolOutcome({"error": error}, result.version, refused=True), (
        [] if result.replayed else result.events
    )


def _refusal(session, action_seq: int, call: ToolCall) -> str | None:
    """Rules a call must pass before anything happens; the reason goes back to the model."""
    args = call.arguments
    state = session.state or {}
    if call.name == "rng_roll":
        try:
            dice.parse_expression(args["expression"])
        except dice.DiceError as exc:
            return str(exc)
        table = args.get("loot")
        if table and table != "any":
            known = sorted(((session.campaign.pack.data or {}).get("loot") or {}).get("tables") or {})
            if table not in known:
                return f"unknown loot table '{table}'; known: {', '.join(known) or 'none'} (or \"any\")"
    if call.name == "mission_advance":
        mission = state.get("mission") or {}
        ast = engine.mission_ast(mission.get("hash"))
        if ast is None or not mission.get("state"):
            return "no mission is running in this session"
        if mission["state"]["objectives"].get(args["objective"], "hidden") == "hidden":
            # Issue 18 (injection suite): a hidden objective is refused exactly like an unknown
            # one, so an injected model repeating refusals cannot confirm a guessed secret.
            return f"no such objective {args['objective']!r}"
        return runtime.check_advance(ast, mission["state"], args["objective"])
    if call.name == "world_update" and not (state.get("mission") or {}).get("state"):
        return "no mission is running in this session: there is no world state to update"
    if call.name == "npc_speak":
        view = engine.mission_view(state) or {}
        present = {n["id"]: n for n in view.get("npcs", [])}
        if args["npc"] not in present:
            names = ", ".join(f"{k} ({v['name']})" for k, v in present.items()) or "nobody"
            return f"NPC '{args['npc']}' is not in this scene; present: {names}"
    if call.name == "deck_draw":
        drawn = Event.objects.filter(
            session=session, type="CardDrawn", payload__action_seq=action_seq
        ).count()
        if drawn >= MAX_DRAWS_PER_TURN:
            return f"at most {MAX_DRAWS_PER_TURN} card per turn; narrate the card already drawn"
    if call.name == "status_apply":
        catalogue = {e["name"] for e in session.campaign.pack.data.get("status_effects", [])}
        if args["effect"] not in catalogue:
            return (
                f"unknown status effect '{args['effect']}'; known: {', '.join(sorted(catalogue)) or 'none'}"
            )
        names = set(Character.objects.filter(campaign_id=session.campaign_id).values_list("name", flat=True))
        if args["character"] not in names:
            return f"no player character named '{args['character']}'; the party: {', '.join(sorted(names))}"
    if call.name == "combat_start" and state.get("initiative"):
        return "combat is already running; use combat_end first"
    if call.name == "combat_end" and not state.get("initiative"):
        return "no combat is running"
    return None


def outcome_of(created: list) -> ToolOutcome:
    """What the model hears back: the first event is the call's own record."""
    if not created:
        return ToolOutcome({"ok": True}, None)
    first = created[0]
    if first.type == "ToolRefused":
        return ToolOutcome({"error": first.payload.get("error", "refused")}, first.seq, refused=True)
    hidden = ("action_seq", "mission_state", "director_state", "outcomes_kept")
    payload = {k: v for k, v in first.payload.items() if k not in hidden}
    if first.type == "DiceRolled":
        payload["seed"] = first.seed
    follow = [
        {
            "type": e.type,
            **{
                k: v
                for k, v in e.payload.items()
                if k
                in (
                    "objective",
                    "text",
                    "clock",
                    "value",
                    "size",
                    "title",
                    "label",
                    "scene",
                    "reason",
                    "xp",
                    "items",
                )
            },
        }
        for e in created[1:]
    ]
    if follow:
        payload["consequences"] = follow
    if first.type == "CardDrawn" and payload.get("seed") is None:
        payload["seed"] = first.seed
    return ToolOutcome(payload, first.seq)
