"""Story-deck draws: a session never draws a card twice, a `where` key the decks refuse fires the
twist without a card, a scene's and the present NPCs' factions make faction cards drawable, deck
text that is not valid Unicode is a deck error, and draws are reproducible from the event."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from missions.dsl import compile_source
from narrative import decks as deck_rules
from narrative import engine
from tests.narrative.engine_helpers import OPENER, assert_replays, install_legacy
from tests.narrative.test_engine import call

DECKS = Path(__file__).resolve().parents[2] / "content" / "packs" / "starter" / "decks"


def shipped_decks():
    trusted = deck_rules.load_trusted_keys(DECKS / "trusted_keys.json")
    return [deck_rules.load_deck_file(p, trusted) for p in sorted(DECKS.glob("reach-*.json"))]


# ---- drawn cards are not drawn again --------------------------------------------------------


def test_candidates_exclude_the_deck_card_keys_the_engine_records():
    card = {"id": "c1", "kind": "twist", "title": "t", "text": "t", "weight": 1, "requires": {}, "payoff": ""}
    deck = deck_rules.Deck(slug="d", name="D", version="1", cards=(card,))
    assert deck_rules.candidates([deck], exclude={deck_rules.card_key("d", "c1")}) == []
    assert deck_rules.candidates([deck], exclude={"other:c1"}) != []
    assert deck_rules.candidates([deck], exclude={"c1"}) == []  # a bare id: in any deck


def test_a_session_never_draws_the_same_card_twice(session, player):
    drawn, refusals = [], []
    for i in range(8):
        outcome, created = call(session, player, "deck_draw", {"kind": "complication"}, action_seq=1000 + i)
        if outcome.refused:
            refusals.append(outcome.result["error"])
        else:
            drawn.append(created[0].payload["card"])
    assert drawn and len(drawn) == len(set(drawn))
    assert refusals and all("no complication card fits" in r for r in refusals)
    session.refresh_from_db()
    assert session.state["drawn"] == [f"reach-twists:{c}" for c in drawn]
    assert_replays(session)


# ---- a draw that can't be made does not stall the session ------------------------------------

TAGGED = """mission tagged "Tagged" biome derelict-station summary "s"
scene a "A"
twist t { when flag trigger
  draw hazard where biome == "derelict-station" }
complete when flag done
"""


def test_a_where_key_the_decks_refuse_fires_the_twist_without_a_card(session, gm, player):
    install_legacy(TAGGED, lambda ast: ast["twists"][0]["draw"]["where"].update(tag="vacuum"))
    engine.mission_start(session=session, slug="tagged", actor_id=gm.pk)
    outcome, created = call(session, player, "world_update", {"flag": "trigger", "value": True})
    assert not outcome.refused
    twist = next(e for e in created if e.type == "TwistTriggered")
    assert "unknown where key 'tag'" in twist.payload["no_card"]
    assert "CardDrawn" not in [e.type for e in created]
    session.refresh_from_db()
    assert session.state["mission"]["state"]["flags"] == {"trigger": True}
    assert session.state["mission"]["state"]["twists"] == ["t"]
    assert_replays(session)


# ---- factions ---------------------------------------------------------------------------------


def test_a_scenes_factions_make_faction_cards_drawable():
    decks = shipped_decks()
    base = {"biome": "derelict-station", "beat": "inciting", "clocks": {}}
    ids = {c["id"] for _, c, _ in deck_rules.candidates(decks, kind="agenda", context=base)}
    assert "ossian-wants-the-crate-moved" not in ids
    with_helix = {**base, "faction": ["choir", "helix"]}
    ids = {c["id"] for _, c, _ in deck_rules.candidates(decks, kind="agenda", context=with_helix)}
    assert {"ossian-wants-the-crate-moved", "ameline-keeps-the-song", "scavengers-circle"} <= ids
    assert "hale-wants-a-culprit" not in ids


def test_where_faction_selects_the_cards_that_require_that_faction():
    decks = shipped_decks()
    where = {"faction": "helix"}
    pool = [
        deck_rules.Deck(d.slug, d.name, d.version, tuple(c for c in d.cards if deck_rules.matches(c, where)))
        for d in decks
    ]
    context = deck_rules.where_context(where, {"biome": "derelict-station", "beat": "twist", "clocks": {}})
    ids = {c["id"] for _, c, _ in deck_rules.candidates(pool, kind="agenda", context=context)}
    assert {"ossian-wants-the-crate-moved", "helix-buys-silence"} <= ids
    assert not ids & {"hale-wants-a-culprit", "ameline-keeps-the-song"}


def test_draws_see_the_factions_of_the_npcs_present(session, player):
    # vesper-relay opens in the docking ring, where Ossian (helix) is.
    drawn = []
    for i in range(2):
        outcome, created = call(session, player, "deck_draw", {"kind": "agenda"}, action_seq=2000 + i)
        assert not outcome.refused, outcome.result
        drawn.append(created[0].payload["card"])
    assert sorted(drawn) == ["ossian-wants-the-crate-moved", "scavengers-circle"]
    assert_replays(session)


# ---- deck text that is not valid Unicode -------------------------------------------------------


def _signed_deck():
    pem, public = deck_rules.generate_keypair()
    deck = {
        "slug": "d",
        "name": "D",
        "version": "1",
        "cards": [{"id": "c1", "kind": "twist", "title": "t", "text": "x", "weight": 1}],
    }
    return deck_rules.sign_deck(deck, pem), {deck_rules.key_id_for(public): public}


def test_a_lone_surrogate_in_a_deck_is_a_deck_error():
    with pytest.raises(deck_rules.DeckError, match="lone surrogate"):
        deck_rules.canonical_bytes({"name": "D\ud800"})
    with pytest.raises(deck_rules.DeckError, match="lone surrogate"):
        deck_rules.validate_deck({"slug": "d", "name": "D\ud800", "version": "1", "cards": []})
    doc, trusted = _signed_deck()
    raw = json.dumps(doc).replace('"name": "D"', '"name": "D\\ud800"').encode()
    with pytest.raises(deck_rules.DeckError, match="lone surrogate"):
        deck_rules.verify_deck(deck_rules.parse_json_bytes(raw, "deck"), trusted)


def test_draws_are_reproducible_from_the_event_and_context():
    decks = shipped_decks()
    context = {"biome": "derelict-station", "beat": "inciting", "clocks": {}, "faction": ["helix"]}
    first = deck_rules.draw(decks, random.Random(7), kind="agenda", context=context, seed=7)
    again = deck_rules.draw(decks, random.Random(7), kind="agenda", context=context, seed=7)
    assert first == again
    compile_source(OPENER)  # the opener above is a valid mission
