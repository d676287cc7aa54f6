"""What the narrator may know for a party turn: the table's context and its recalled memory.

The narration goes to the whole table, so the context holds only what everyone present may know:
events with no audience and the campaign's memory namespace. What only the actor knows goes into
their private aside (narrative/asides.py). The engine's view and the GM personality
(`game_context`, `personality_context`) are shared with the stage's batch turn.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from django.conf import settings
from django.db import connection

from campaigns.models import Character, Event, PlaySession
from campaigns.state import withdrawn_seqs
from gtw_site import telemetry
from gtw_site.trace import mark
from narrative import engine, tablesafety


def build_context(
    session: PlaySession,
    action: Event,
    vectors: dict[str, Future] | None = None,
    lines: dict[str, list[str]] | None = None,
) -> dict[str, Any]:
    """Everything the narrator may know for this turn: scene, sheet, objective, personality,
    recent events, recalled memory. The narration goes to the whole table, so this holds only
    what everyone present may know: events with no audience and the campaign namespace.
    What only the actor knows goes into their private aside (narrative/asides.py), never here.
    `vectors`: query embeddings already under way (text -> future), from `prefetch_vectors`;
    `lines`: the campaign's lines and veils, if the turn read them already."""
    # Recall (query embedding — ONNX releases the GIL — then two searches) runs in a thread
    # with its own connection while this one reads the rest. A separate connection only sees
    # committed rows, so inside a transaction (tests) it runs here, in order.
    query = _recall_query(action)
    vector = (vectors or {}).get(query) if query is not None else None
    campaign = session.campaign
    recall = None
    if query is not None and not connection.in_atomic_block:
        # Its provider rows (the query embedding) come back with the result, to this thread.
        recall = telemetry.in_thread(_recall_pool, _recall_in_thread, campaign.pk, action, query, vector)
    pack = campaign.pack.data
    character = Character.objects.filter(campaign=campaign, owner_id=action.actor_id).first()
    recent = (
        Event.objects.filter(session=session, seq__lt=action.seq, type__in=["Action", "Narration"])
        # Only what the whole table saw: an event with an audience (even one addressed to the
        # actor) would reach everyone through the narration (issue 11, hole 2).
        .filter(audience__isnull=True)
        # Nor a narration the X-card withdrew (issue 18): the narrator must not build on it.
        .exclude(seq__in=withdrawn_seqs(session.state))
        .select_related("actor")
        .order_by("-seq")[: settings.GTW_RECENT_EVENTS_IN_CONTEXT]
    )
    personality = campaign.personality
    state = session.state
    context = {
        "action": {
            "text": action.payload.get("text", ""),
            "actor": action.actor.username if action.actor else "someone",
            "character": (
                {
                    "name": character.name,
                    "archetype": _archetype_name(pack, character.archetype),
                    "attributes": character.attributes,
                }
                if character
                else None
            ),
        },
        "scene": state.get("scene"),
        "world": pack.get("world", {}),
        "objective": state.get("objective"),
        "beat": state.get("beat"),
        **game_context(session, state),
        "personality": personality_context(personality),
        "recent": [
            {
                "type": e.type,
                "text": e.payload.get("text", ""),
                "actor": e.actor.username if e.actor else None,
            }
            for e in reversed(list(recent))
        ],
        "turn": state.get("counts", {}).get("Narration", 0) + 1,
        # The table's lines and veils and the X-card's note: the prompt's and the code's (issue 18).
        "table_safety": tablesafety.safety_context(campaign.pk, state, lines),
    }
    # Recall scoped to the table: campaign memory only, filtered in SQL. The actor's private
    # memory shapes their aside after the narration commits, never the public text.
    mark("turn.recall")
    recalled = recall.result() if recall is not None else _recall(campaign.pk, action, query, vector)
    context["memories"] = [m.text for m in recalled]
    context["recalled_ids"] = [m.pk for m in recalled]
    return context


def personality_context(personality) -> dict[str, Any] | None:
    """The GM personality as the narrator's context carries it."""
    if personality is None:
        return None
    return {
        "id": personality.slug,
        "name": personality.name,
        "tone": personality.tone,
        "verbosity": personality.verbosity,
        "system_prompt": personality.system_prompt,
    }


def game_context(session: PlaySession, state: dict) -> dict[str, Any]:
    """The engine's view for the narrator: mission, objectives, clocks, NPCs present, the word
    window and intensity of the beat, the running combat."""
    from missions.rules import dda
    from narrative import director

    view = engine.mission_view(state)
    personality = session.campaign.personality
    try:
        config = director.DirectorConfig.from_weights(
            ((personality.data if personality else None) or {}).get("director")
        )
    except director.DirectorError:
        config = director.DirectorConfig.from_weights(None)
    beat = (state.get("director") or {}).get("beat", "inciting")
    bounds = dda.DdaConfig(**settings.GTW_DDA).intensity_bounds
    return {
        "mission": view,
        "lore": lore_context(state, view),
        "objective": engine.active_objective(view, state),
        "word_limit": director.word_limit(config, beat),
        "intensity": round(director.intensity_target(config, beat, bounds), 2),
        "combat": state.get("initiative"),
    }


def lore_context(state: dict, view: dict | None) -> dict[str, Any] | None:
    """What questions are answered from, beyond the mission panel: the current scene's `detail`
    lines and the present NPCs' `voice` and `knows` (missions DSL). GM knowledge: the narrator
    decides what of it to say; the offline one tells an NPC's `knows` only in that NPC's voice.

    Lore is flavour, not rules, so a campaign pinned to a mission version older than its lore
    lines reads them from the newest installed version of the same mission (by scene and NPC
    id): its rules stay pinned, its NPCs learn what they know."""
    mission = (state or {}).get("mission") or {}
    ast = engine.mission_ast(mission.get("hash"))
    if ast is None or view is None:
        return None
    if not _has_lore(ast):
        from missions.services import mission_latest

        latest = mission_latest(ast["slug"])
        if latest is not None and latest.content_hash != mission.get("hash") and _has_lore(latest.ast):
            ast = latest.ast
    scene_id = (view.get("scene") or {}).get("id")
    scene = next((s for s in ast["scenes"] if s["id"] == scene_id), {})
    present = {n["id"] for n in view.get("npcs", [])}
    return {
        "details": list(scene.get("details", [])),
        "npcs": [
            {"id": n["id"], "voice": n.get("voice"), "knows": list(n.get("knows", []))}
            for n in ast["npcs"]
            if n["id"] in present
        ],
    }


def _has_lore(ast: dict) -> bool:
    return any(s.get("details") for s in ast.get("scenes", [])) or any(
        n.get("knows") or n.get("voice") for n in ast.get("npcs", [])
    )


_recall_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gtw-recall")


def recall_text(text: str | None) -> str | None:
    """What recall searches for, given an action's text (None: no recall)."""
    if not isinstance(text, str) or not text.strip() or settings.GTW_MEMORY["recall_k"] <= 0:
        return None
    return text[:2000]


def _recall_query(action: Event) -> str | None:
    return None if action.actor_id is None else recall_text(action.payload.get("text", ""))


def prefetch_vectors(query: str | None) -> dict[str, Future]:
    """Start embedding the newest action's text now (a few ms of ONNX, in a thread), so the
    turn's recall finds the vector ready instead of computing it on the hot path."""
    from memory.retrieval import embed_query_async

    text = recall_text(query)
    return {text: embed_query_async(text)} if text is not None else {}


def _recall_in_thread(campaign_id: int, action: Event, query: str, vector: Future | None) -> list:
    from django.db import close_old_connections

    try:
        return _recall(campaign_id, action, query, vector)
    finally:
        close_old_connections()  # honours CONN_MAX_AGE: workers keep it, tests close it


def _recall(campaign_id: int, action: Event, query: str | None, vector: Future | None = None) -> list:
    from memory.recall.temporal import asks_about_past
    from memory.retrieval import recall_confident, recall_for_player

    if query is None:
        return []
    hits = recall_for_player(
        campaign_id=campaign_id,
        user_id=action.actor_id,
        query=query,
        k=settings.GTW_MEMORY["recall_k"],
        vector=vector.result() if vector is not None else None,
        private=False,
    )
    if asks_about_past(query) and not recall_confident(hits):
        # Issue 21: asked about the past, and the best match is not about what was asked ("a
        # detail never said"): the table remembers nothing of it, and the prompt says so rather
        # than offering a near-miss as if it were the answer.
        return []
    # The action itself was just remembered; it is no news to the narrator.
    return [h.memory for h in hits if h.memory.source_seq != action.seq][:5]


def _archetype_name(pack: dict, slug: str) -> str:
    for arch in pack.get("archetypes", []):
        if arch["slug"] == slug:
            return arch["name"]
    return slug
