"""Answers through a real turn (embedded Postgres): the turn pipeline hands the offline narrator the
mission's lore (scene details, the present NPCs' knowledge), and a campaign pinned to a mission
version older than its lore reads the lore of the newest version of the same mission."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from campaigns.models import Event
from missions.services import mission_install
from narrative import engine, turns
from narrative.turns.context import game_context

VESPER = (
    Path(__file__).resolve().parents[2]
    / "content"
    / "packs"
    / "starter"
    / "missions"
    / "vesper-relay.mission"
).read_text()
TITLE = '"The Silence at Vesper Relay"'


def without_lore(source: str) -> str:
    """The mission as it was before lore lines: every detail/knows/voice statement removed."""
    return re.sub(r'\n  (?:detail|knows|voice) "[^\n]*"(?:\n    "[^\n]*")*(?: when pressed)?', "", source)


def test_without_lore_really_removes_every_lore_line():
    text = without_lore(VESPER)
    assert "detail" not in text and "knows" not in text and "voice " not in text


@pytest.fixture
def act(django_capture_on_commit_callbacks):
    n = iter(range(1, 1000))

    def submit(session, user, text):
        with django_capture_on_commit_callbacks(execute=True):
            turns.submit_action(session_id=session.pk, user=user, text=text, idempotency_key=f"ans{next(n)}")
        return Event.objects.filter(session=session, type="Narration").order_by("-seq").first()

    return submit


def test_the_turn_context_carries_the_scenes_details_and_the_present_npcs_knowledge(session):
    session.refresh_from_db()
    lore = game_context(session, session.state)["lore"]
    assert any("mag-clamp treads" in d for d in lore["details"])
    [ossian] = lore["npcs"]  # only Ossian is at the docking ring
    assert ossian["id"] == "ossian" and ossian["voice"]
    assert any(k["pressed"] for k in ossian["knows"])


def test_a_question_to_the_gm_is_answered_in_play_without_a_roll(session, player, act):
    narration = act(
        session, player, "I crouch by the scored deck plates — what made these marks, and how fresh?"
    )
    assert "mag-clamp treads" in narration.payload["text"]
    assert not Event.objects.filter(session=session, type="DiceRolled").exists()


def test_a_question_to_an_npc_is_answered_in_character_in_play(session, player, act):
    act(session, player, "Ossian, who are you, and when did you get here?")
    spoke = Event.objects.get(session=session, type="NpcSpoke")
    assert spoke.payload["npc"] == "ossian"
    assert "Ossian Ward" in spoke.payload["line"] and "three days ago" in spoke.payload["line"]
    assert spoke.audience is None  # said aloud: the whole table hears it


def test_a_campaign_pinned_before_lore_reads_the_newest_versions_lore(session, gm, player, act):
    """The pin keeps the rules; lore (which changes none) comes from the newest version."""
    old, _ = mission_install(source=without_lore(VESPER).replace(TITLE, '"Vesper (before lore)"'))
    engine.mission_start(session=session, slug="vesper-relay", content_hash=old.content_hash, actor_id=gm.pk)
    newest, _ = mission_install(source=VESPER.replace(TITLE, '"Vesper (lore, later upload)"'))
    session.refresh_from_db()
    assert session.state["mission"]["hash"] == old.content_hash  # still pinned
    lore = game_context(session, session.state)["lore"]
    assert any("mag-clamp treads" in d for d in lore["details"])
    narration = act(session, player, "What made these marks on the deck?")
    assert "mag-clamp treads" in narration.payload["text"]
    session.refresh_from_db()
    assert session.state["mission"]["hash"] == old.content_hash
    assert newest.content_hash != old.content_hash
