"""Appending engine steps, and the mission commands on a session: start or switch a mission,
the GM's overrides and beat changes, and the projections (XP, inventory) that follow rewards."""

from __future__ import annotations

from django.db import transaction

from campaigns import events
from campaigns.errors import Conflict, Invalid
from campaigns.models import Character, PlaySession
from missions import runtime
from missions.services import campaign_mission, campaign_mission_pin, mission_for_start
from narrative import director
from narrative.engine.batch import Batch
from narrative.engine.rules import load_rules

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
