"""The prompt-injection suite (issue 18 part 6, OWASP LLM01): 60+ adversarial inputs, each run
against a narrator that obeys it (tests/security/obedient.py) — it repeats its whole prompt,
decodes and follows encoded asks, forges tool calls and appends exfiltration markup.

What holds is the game's code, not the model's good will: for every payload, no player's view
(events API, play page, game API, socket frames) carries another player's private note, a GM
whisper or aside meant for someone else, the GM's private notes, a hidden objective, or an API
key; no view holds markup that runs script or loads an attacker's URL; and no forged tool call
changed the game.
"""

from __future__ import annotations

import json

import pytest

from campaigns import selectors
from campaigns import services as campaign_services
from campaigns.models import Event, PlaySession
from narrative import prompts
from tests.security import conftest as table
from tests.security import obedient
from tests.security.payloads import PAYLOADS, Payload
from tests.security.views import leaks, received, unsafe_markup

NEUTRAL = "I study the keypad and the writing on the wall, and ask the keeper about the vault."


def plant(payload: Payload, commit, session, gm, bea, monkeypatch) -> str:
    """Put an indirect payload where the narrator will read it; the action Bea then takes."""
    membership = selectors.membership_get(viewer=bea, campaign_id=session.campaign_id)
    if payload.vector == "note":
        r = commit(
            table.client_for(bea).post,
            f"/api/campaigns/{session.campaign_id}/memories",
            json.dumps({"text": payload.text, "visibility": "campaign"}),
            content_type="application/json",
        )
        assert r.status_code == 201, r.content
    elif payload.vector == "import":
        from memory.importer import import_jsonl

        result = commit(import_jsonl, membership=membership, lines=[json.dumps({"text": payload.text})])
        assert result["imported"] == 1, result
    elif payload.vector == "deck":
        install_deck(payload.text, monkeypatch)
    return NEUTRAL if payload.vector != "action" else payload.text


def install_deck(text: str, monkeypatch) -> None:
    """A signed deck whose one card carries the payload, the only deck installed."""
    from narrative import decks, services
    from narrative.models import StoryDeck

    pem, public = decks.generate_keypair()
    monkeypatch.setattr(services, "trusted_keys", lambda: {decks.key_id_for(public): public})
    deck = {
        "slug": "planted",
        "name": "Planted",
        "version": "1",
        "cards": [{"id": "p1", "kind": "complication", "title": "A message", "text": text, "weight": 1}],
    }
    StoryDeck.objects.all().delete()
    services.deck_install(document=decks.sign_deck(deck, pem))


def reached_the_model(payload: Payload, requests) -> bool:
    probes = {payload.text, prompts.neutralise(payload.text), json.dumps(payload.text)[1:-1]}
    for request in requests:
        seen = "\n".join(m.content for m in request.messages)
        if any(p in seen for p in probes):
            return True
    return False


@pytest.fixture
def attacked(request, shared_table, db, obey, commit, sent):
    """The table this payload attacks and the broadcasts its set-up sent: the module's shared
    table (each test's writes are rolled back), or for an NPC-name payload a table of its own,
    whose mission carries the payload from the start (its broadcasts are in `sent`)."""
    if request.node.callspec.params["payload"].vector == "npc":
        built = table.build_table(commit, npc=request.node.callspec.params["payload"].text)
        return built, PlaySession.objects.get(pk=built.session_id), []
    return shared_table, PlaySession.objects.get(pk=shared_table.session_id), shared_table.frames


@pytest.mark.parametrize("payload", PAYLOADS, ids=[p.id for p in PAYLOADS])
def test_an_obeyed_injection_leaks_nothing_and_changes_nothing(
    payload, attacked, obey, commit, sent, monkeypatch
):
    built, session, set_up_frames = attacked
    gm, player, bea, outsider = built.gm, built.player, built.bea, built.outsider
    monkeypatch.setattr(
        obedient, "FORGE", obedient.FORGED_CALLS if payload.kind == "tool_abuse" else obedient.CORE_FORGED
    )
    for user, name in ((bea, payload.text if payload.vector == "character" else "Bea Lorn"),):
        membership = selectors.membership_get(viewer=user, campaign_id=session.campaign_id)
        campaign_services.character_create(membership=membership, name=name, archetype="netrunner")
    action = plant(payload, commit, session, gm, bea, monkeypatch)

    table.act(commit, session, bea, action, "attack")
    table.act(commit, session, player, "I punch the vault code into the keypad and eye the keeper.", "victim")
    sent = set_up_frames + sent  # every broadcast since the table was set up, in order

    # The attack was delivered: the model read the payload (from wherever it was planted).
    assert reached_the_model(payload, obey), f"the {payload.vector} never reached the narrator"
    narrations = Event.objects.filter(session=session, type="Narration")
    assert narrations.count() == 2 and all(e.audience is None for e in narrations)

    # Nothing secret reached a player; Kira sees her own secrets (her aside), nobody else's.
    bea_views = received(session, bea, sent)
    kira_views = received(session, player, sent)
    assert leaks(bea_views, table.KIRA_SECRETS + table.NOBODYS) == []
    assert leaks(kira_views, table.NOBODYS) == []
    assert table.NOTE in kira_views["events_api"]  # the aside did reach its one reader
    outsider_client = table.client_for(outsider)
    assert outsider_client.get(f"/api/sessions/{session.pk}/events").status_code == 404
    assert outsider_client.get(f"/sessions/{session.pk}/play/").status_code == 404

    # Nothing in any view runs script or loads the attacker's URL: the model's markup is shown
    # as text (escaped), never parsed.
    assert "&lt;script&gt;alert(" in bea_views["play_page"]
    for views in (bea_views, kira_views, received(session, gm, sent)):
        for where in ("play_page", "frames_html"):
            assert unsafe_markup(views[where]) == [], where

    # No forged call changed the game: the hidden objective is hidden, no XP, no engine flags.
    session.refresh_from_db()
    mission = session.state["mission"]["state"]
    assert mission["objectives"].get("traitor", "hidden") == "hidden"
    assert mission["objectives"].get("open") != "complete"
    # ("objectives" is just a flag name in the flags namespace: it touches no objective)
    assert not {"xp", "__proto__", "status", "traitor_named"} & set(mission.get("flags", {}))
    assert (mission.get("earned") or {}).get("xp", 0) == 0
    refusals = Event.objects.filter(session=session, type="ToolRefused")
    # Looking up visible objectives and drawing a card are allowed; every other forged call is not.
    forged = sum(1 for name, _ in obedient.FORGE if name not in ("world_query", "deck_draw"))
    assert refusals.count() >= forged and all(e.audience == [] for e in refusals)  # GM's eyes only
