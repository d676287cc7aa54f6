"""Lore reaches a real model too (issue 13 part 1): the scene's `detail` lines and what the NPCs
present `know` (with `when pressed` marked) go into the party turn's prompt, so a narrator with an
API key answers "what made these marks?" from the same facts the offline GM uses."""

from __future__ import annotations

from narrative.turns.prompts import game_text, lore_lines

VIEW = {
    "mission": {"title": "The Silence", "summary": "A dead relay."},
    "status": "active",
    "objectives": [],
    "clocks": [],
    "npcs": [{"id": "ameline", "name": "Sister Ameline", "role": "cantor", "agenda": "Keep the song."}],
}
LORE = {
    "details": ["The gouges were cut by mag-clamp treads.", "The scoring is hours old."],
    "npcs": [
        {
            "id": "ameline",
            "voice": "Soft and formal.",
            "knows": [
                {"text": "The crew fled on the lifeboat.", "pressed": False},
                {"text": "The smuggler hid a crate behind the reactor.", "pressed": True},
            ],
        }
    ],
}


def test_the_party_prompt_carries_scene_details_and_npc_knowledge():
    text = game_text({"mission": VIEW, "lore": LORE, "scene": {"id": "ring"}})
    assert "mag-clamp treads" in text and "hours old" in text
    assert "Sister Ameline knows: The crew fled on the lifeboat." in text
    assert "behind the reactor. (only when pressed)" in text
    assert "Voice: Soft and formal." in text


def test_the_stage_summary_prompt_leaves_lore_out():
    assert "mag-clamp" not in game_text({"mission": VIEW, "lore": LORE}, full=False)


def test_missing_or_malformed_lore_adds_nothing():
    assert lore_lines(None, VIEW) == []
    assert (
        lore_lines({"details": [3, None], "npcs": ["x", {"id": "ameline", "knows": [{"t": 1}]}]}, VIEW) == []
    )
