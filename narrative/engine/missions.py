"""Appending engine steps, and the mission commands on a session: start or switch a mission,
the GM's overrides and beat changes, and the projections (XP, levels, inventories) that follow
rewards and finds."""

from __future__ import annotations

from dataclasses import replace

from django.db import transaction

from campaigns import events
from campaigns.errors import Conflict, Invalid
from campaigns.models import Campaign, Character, Event, PlaySession
from missions import runtime
from missions.services import campaign_mission, campaign_mission_pin, mission_for_start
from narrative import director, intent
from narrative.engine import inventory
from narrative.engine.batch import Batch
from narrative.engine.rules import load_rules

# ---- after commit: the projections outside the event log ---------------------------------------


def apply_projections(created: list) -> None:
    """Character progression and inventories follow the events: RewardGranted sets each party
    member's XP and level; RewardGranted and LootFound put their items into the inventory they
    name — a character's, or the party's shared stash on the campaign (engine.inventory.grants).
    Call in the append's transaction, only for events that were really created (never for an
    idempotent replay: a retried turn must not grant twice)."""
    for event in created:
        payload = event.payload
        if event.type == "RewardGranted":
            for member in payload.get("party", []):
                Character.objects.filter(pk=member["character_id"]).update(
                    xp=member["xp"], level=member["level"]
                )
        for (kind, holder_id), items in inventory.grants(event.type, payload):
            if kind == "party":
                campaign = (
                    Campaign.objects.select_for_update(of=("self",))
                    .filter(sessions__pk=event.session_id)
                    .only("pk", "stash")
                    .first()
                )
                if campaign is not None:
                    campaign.stash = inventory.add(campaign.stash, items)
                    campaign.save(update_fields=["stash"])
                continue
            character = (
                Character.objects.select_for_update(of=("self",))
                .filter(pk=holder_id, campaign__sessions__pk=event.session_id)
                .first()
            )
            if character is not None:
                character.inventory = inventory.add(character.inventory, items)
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


# ---- the end of a turn --------------------------------------------------------------------------

# Kinds of action (narrative.intent) that spend no time in the story: a look, a question, a word.
QUIET_KINDS = frozenset({"talk", "observe"})
# Events that show a turn spent time whatever its words: dice were rolled, a fight began.
TIME_EVENTS = ("DiceRolled", "InitiativeRolled")


def turn_took_time(*, text: str, rolled: bool, name: str = "", npcs: tuple = ()) -> bool:
    """Whether a party turn spent the party's time, so the mission's clocks may tick on it: it
    rolled (a check or a roll), or its action is not a question, a look or talk. Decided when the
    turn ends and stored on the TurnEnded the runtime folds (`took_time`), so a replay agrees."""
    if rolled:
        return True
    found = intent.analyse(text or "", name=name or "", npcs=npcs)
    return not (found.question or found.kind in QUIET_KINDS)


def turn_facts(session: PlaySession, action_seq: int) -> tuple[bool, dict[int, frozenset[str]]]:
    """What this turn's tool calls did, from their committed events: whether it rolled, and the
    statuses it applied, per character id (they start counting down on that character's next
    turn, not this one)."""
    rolled = False
    fresh: dict[int, set[str]] = {}
    for kind, payload in Event.objects.filter(
        session=session, type__in=[*TIME_EVENTS, "StatusApplied"], payload__action_seq=action_seq
    ).values_list("type", "payload"):
        if kind in TIME_EVENTS:
            rolled = True
        elif isinstance(payload.get("character_id"), int) and isinstance(payload.get("name"), str):
            fresh.setdefault(payload["character_id"], set()).add(payload["name"])
    return rolled, {k: frozenset(v) for k, v in fresh.items()}


def end_party_turn(batch: Batch, *, session: PlaySession, action, character: dict | None) -> list[dict]:
    """Close a party turn inside its Narration's append: decide whether it took time, feed the
    mission, run down the actor's statuses. Returns the runtime's effects."""
    rolled, fresh = turn_facts(session, action.seq)
    npcs = tuple(
        (n["name"], n.get("role") or "")
        for n in (batch.rules.mission_ast or {}).get("npcs", [])
        if isinstance(n, dict) and n.get("name")
    )
    took_time = turn_took_time(
        text=(action.payload or {}).get("text", ""),
        rolled=rolled,
        name=(character or {}).get("name", ""),
        npcs=npcs,
    )
    for i, event in enumerate(batch.events):  # the Narration records it too (GMs, the API)
        if event.type == "Narration":
            batch.events[i] = replace(event, payload={**event.payload, "took_time": took_time})
    acting = next((c for c in batch.rules.characters if c.owner_id == action.actor_id), None)
    acting_id = acting.id if acting else None
    return batch.end_turn(
        took_time=took_time,
        character_id=acting_id,
        # `turns each` counts the players' own turns: a GM acting without a character isn't one.
        actor_id=action.actor_id if acting else None,
        fresh=fresh.get(acting_id, frozenset()),
    )


# ---- missions in a session ---------------------------------------------------------------------


def start_payload(mission) -> dict:
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
    return start_payload(mission) if mission else None


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
        batch.start_mission(start_payload(mission), mission.ast, actor_id=actor_id)

    with transaction.atomic():
        result = append_engine(session, build, actor_id=actor_id)
        campaign_mission_pin(campaign=campaign, mission=mission)
    return result


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


# ---- after a mission's end: the GM's choices ---------------------------------------------------


def pack_missions(campaign: Campaign) -> list:
    """The newest version of each mission of the campaign's content pack: the pack's own mission
    first, then the others by id (the order "next mission" walks)."""
    from missions.models import Mission

    rows = list(
        Mission.objects.filter(pack_id=campaign.pack_id)
        .order_by("slug", "-installed_at", "-pk")
        .distinct("slug")
    )
    first = ((campaign.pack.data or {}).get("mission") or {}).get("slug")
    return sorted(rows, key=lambda m: (m.slug != first, m.slug))


def _running(session: PlaySession) -> dict:
    mission = (session.state or {}).get("mission") or {}
    if not mission.get("slug"):
        raise Conflict("No mission has run in this session yet: start one.")
    return mission


def mission_retry(*, session: PlaySession, actor_id: int):
    """Play the session's mission again from its start (the same version)."""
    mission = _running(session)
    return mission_start(
        session=session, slug=mission["slug"], content_hash=mission.get("hash"), actor_id=actor_id
    )


def mission_next(*, session: PlaySession, actor_id: int, slug: str | None = None):
    """Start another mission of the campaign's pack: `slug`, or the one after the current one."""
    current = ((session.state or {}).get("mission") or {}).get("slug")
    ordered = pack_missions(session.campaign)
    choices = [m for m in ordered if m.slug != current]
    if not choices:
        raise Conflict("This campaign's pack has no other mission.")
    if slug:
        picked = next((m for m in choices if m.slug == slug), None)
        if picked is None:
            raise Invalid(f"'{slug[:80]}' is not another mission of this campaign's pack.")
    else:
        order = [m.slug for m in ordered]
        after = order.index(current) + 1 if current in order else 0
        wanted = order[after:] + order[:after]
        picked = next(m for s in wanted for m in choices if m.slug == s)
    return mission_start(
        session=session, slug=picked.slug, content_hash=picked.content_hash, actor_id=actor_id
    )


def free_play(*, session: PlaySession, actor_id: int):
    """The GM sets the mission aside: the story goes on with no mission (no clocks, objectives
    or fail states) until a mission is started. A FreePlayStarted event everyone sees."""
    if session.status != PlaySession.Status.ACTIVE:
        raise Conflict("This session has ended; resume it first.")
    mission = _running(session)
    if (mission.get("state") or {}).get("closed"):
        raise Conflict("The session is already in free play.")

    def build(batch: Batch):
        batch.add("FreePlayStarted", {"mission": mission.get("title") or mission["slug"]}, actor_id=actor_id)
        batch.free_play()

    return append_engine(session, build, actor_id=actor_id)
