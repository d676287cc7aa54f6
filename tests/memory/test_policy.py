"""memory.policy is pure: which committed events become memories, in which namespace."""

from __future__ import annotations

from memory.policy import EventView, decide


def view(seq, kind, payload, audience=None):
    return EventView(seq=seq, type=kind, actor_id=1, payload=payload, audience=audience)


def test_the_game_engines_events_are_remembered_in_story_words():
    events = [
        view(1, "NpcSpoke", {"npc": "ossian", "name": "Ossian Ward", "line": "No questions."}),
        view(2, "CardDrawn", {"title": "Gravity flicker", "text": "Loose cargo flies.", "kind": "hazard"}),
        view(3, "ObjectiveCompleted", {"objective": "dock", "text": "Get aboard"}),
        view(4, "RewardGranted", {"items": [{"item": "medpatch", "qty": 1}], "holder": {"name": "Kira"}}),
        view(5, "ClockTicked", {"clock": "alarm", "value": 1}),  # bookkeeping: not a memory
        view(6, "NpcSpoke", {"npc": "ossian", "name": "Ossian Ward", "line": "Only you."}, audience=(7,)),
    ]
    drafts = decide(3, events, {1: "Kira"})
    texts = [(d.source_seq, d.namespace, d.text) for d in drafts]
    assert (1, "campaign:3", "Ossian Ward said: \u201cNo questions.\u201d") in texts
    assert (2, "campaign:3", "Twist — Gravity flicker: Loose cargo flies.") in texts
    assert (3, "campaign:3", "Objective complete: Get aboard") in texts
    assert (4, "campaign:3", "Kira received medpatch x1.") in texts
    assert not [t for t in texts if t[0] == 5]
    # Addressed to one player: their private namespace only.
    assert [t[1] for t in texts if t[0] == 6] == ["player:7"]
