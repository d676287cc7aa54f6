"""The private aside: what only the acting player knows, told to them alone (issue 11, hole 2).

A turn's Narration goes to the whole table, so its prompt holds only public material
(narrative.turns.build_context: events with no audience, the campaign's memory namespace). A
player's private notes and the whispers they received may still bear on what they just did. So,
after the Narration commits, the runner looks for that knowledge:

- their own memory namespace (`recall_for_player(private=True)`), kept only where it matches the
  action (a shared keyword, or a close embedding);
- whispers addressed to them since their previous action (the memory job may not have written
  those yet);

and, if there is any, asks the narrator for a short aside (prompts/narrator_aside.txt), appended
as an `Aside` event whose audience is the actor. Like a whisper it reaches only that player and
the GMs (campaigns.selectors.visible_to / may_see) on every path: the play page, the events API,
live socket frames and catch-up. It never streams deltas (those go to everyone in the session
group); it lands as one event.

A narrator failure costs only the aside, never the turn. A crash between the Narration and the
aside loses the aside: the turn is answered, and the aside is a courtesy, not game state.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future
from typing import Any

from django.conf import settings

from campaigns import events
from campaigns.models import Event, PlaySession
from gtw_site.providers import ProviderError
from gtw_site.trace import mark
from narrative import director, prompts
from narrative.llm import registry
from narrative.llm.base import ChatRequest, Message, TextDelta

logger = logging.getLogger(__name__)

WORD_LIMIT = 60
MAX_ITEMS = 3
# Cosine distance under which a private memory counts as bearing on the action even without a
# shared keyword. Measured with the local embedder: paraphrases ("I enter the combination on the
# safe" / "The vault code is 7731.") 0.33-0.59, unrelated actions 0.85-1.0.
RELEVANT_DISTANCE = 0.6
NOTHING = "NONE"  # what a model replies when none of the private knowledge matters


def private_aside(
    session: PlaySession,
    action: Event,
    *,
    context: dict[str, Any],
    narration: str,
    vectors: dict[str, Future] | None = None,
) -> Event | None:
    """Append the actor's aside for this turn, if they know something the table does not that
    bears on it. Caller holds the session's turn lock; the Narration has committed. Returns the
    Aside event, or None."""
    items = private_knowledge(session, action, vectors=vectors)
    if not items:
        return None
    mark("turn.aside")
    who = context["action"]
    request = ChatRequest(
        messages=build_messages(context, narration, items),
        tools=[],
        seed=action.seq,
        max_tokens=200,
        context={
            "aside": {"items": [i["text"] for i in items]},
            "action": who,
            "personality": context.get("personality"),
            "turn": context.get("turn"),
        },
    )
    provider = registry.get("narrator")
    try:
        text = "".join(e.text for e in provider.stream(request) if isinstance(e, TextDelta)).strip()
    except ProviderError as exc:
        logger.warning("private aside for action %s failed: %s", action.seq, exc)
        return None
    if not text or text.strip(" .").upper() == NOTHING:
        return None
    text = director.enforce_window(text, WORD_LIMIT)
    name = who["character"]["name"] if who.get("character") else who["actor"]
    payload = {
        "action_seq": action.seq,
        "text": text,
        "to_user_id": action.actor_id,
        "to_name": name,
        "provider": provider.name,
        "model": provider.model,
    }
    result = events.append(
        session.pk,
        [events.NewEvent(type="Aside", payload=payload, audience=[action.actor_id])],
        idempotency_key=f"aside:{action.seq}",
    )  # sent on commit by the broadcast listener (the socket shows it to its audience only)
    return result.events[0] if result.events else None


def private_knowledge(
    session: PlaySession, action: Event, *, vectors: dict[str, Future] | None = None
) -> list[dict[str, Any]]:
    """What only the actor knows that bears on this action: [{"kind", "text"}], at most
    MAX_ITEMS, fresh whispers first."""
    if action.actor_id is None:
        return []
    items: list[dict[str, Any]] = []
    seen_seqs: set[int] = set()
    for whisper in _fresh_whispers(session, action):
        seen_seqs.add(whisper.seq)
        who = whisper.payload.get("from_name") or "The GM"
        items.append({"kind": "whisper", "text": f"{who} whispered: {whisper.payload.get('text', '')}"})
    for memory in _relevant_memories(session, action, vectors):
        if memory.source_session_id == session.pk and memory.source_seq in seen_seqs:
            continue  # the memory of a whisper listed above
        items.append({"kind": "memory", "text": memory.text})
    unique = list({i["text"]: i for i in items if i["text"].strip()}.values())
    return unique[:MAX_ITEMS]


def _fresh_whispers(session: PlaySession, action: Event) -> list[Event]:
    """Whispers to the actor since their previous action in this session."""
    previous = (
        Event.objects.filter(session=session, type="Action", actor_id=action.actor_id, seq__lt=action.seq)
        .order_by("-seq")
        .values_list("seq", flat=True)
        .first()
    )
    return list(
        Event.objects.filter(
            session=session,
            type="Whisper",
            audience__contains=[action.actor_id],
            seq__gt=previous or 0,
            seq__lt=action.seq,
        ).order_by("-seq")[:MAX_ITEMS]
    )


def _relevant_memories(session: PlaySession, action: Event, vectors: dict[str, Future] | None) -> list:
    from memory.retrieval import has_private, recall_for_player

    query = (action.payload.get("text") or "").strip()[:2000]
    k = settings.GTW_MEMORY["recall_k"]
    if not query or k <= 0 or not has_private(campaign_id=session.campaign_id, user_id=action.actor_id):
        return []
    vector = (vectors or {}).get(query)
    hits = recall_for_player(
        campaign_id=session.campaign_id,
        user_id=action.actor_id,
        query=query,
        k=k,
        vector=vector.result() if vector is not None else None,
        private=True,
    )
    return [
        h.memory
        for h in hits
        if h.keyword > 0 or (h.distance is not None and h.distance <= RELEVANT_DISTANCE)
    ]


def build_messages(context: dict[str, Any], narration: str, items: list[dict[str, Any]]) -> list[Message]:
    """The aside's prompt: the public narration and the action for orientation, the private
    knowledge as data. Its answer goes to the actor (and the GMs) only."""
    from narrative.turns.prompts import action_prompt, prompt_template

    system = prompt_template("narrator_aside.txt").format(
        personality=(context.get("personality") or {}).get(
            "system_prompt", "You are a fair, vivid game master."
        ),
        word_limit=WORD_LIMIT,
        data_rule=prompts.DATA_RULE,
        narration=prompts.data_block("narration", narration),
        action=action_prompt(context["action"]),
        private=prompts.data_block("private", "\n".join(f"- {i['text']}" for i in items)),
    )
    return [
        Message(role="system", content=system),
        Message(role="user", content="Write the private aside for the acting player (or NONE)."),
    ]
