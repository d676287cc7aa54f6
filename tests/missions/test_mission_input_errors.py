"""Bad mission ids, versions and uploads get a clear 4xx and change nothing: 422 for input that
can't name a mission (or can't be stored: NUL, lone surrogates), 404 for one that isn't
installed. Never a 500 from PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from campaigns.models import Event
from missions.models import Mission
from narrative import decks as deck_rules
from narrative.models import StoryDeck

STARTER = Path(__file__).resolve().parents[2] / "content" / "packs" / "starter"
VESPER = (STARTER / "missions" / "vesper-relay.mission").read_text()


def post(client, url, body):
    return client.post(url, json.dumps(body), content_type="application/json")


def test_a_nul_in_a_mission_id_is_a_422_not_a_500(session, operator_client):
    """issue 11 hole 9: GET /api/missions/a%00b reached PostgreSQL (DataError, 500)."""
    r = operator_client.get("/api/missions/a%00b")
    assert r.status_code == 422 and "NUL" in r.json()["detail"]


@pytest.mark.parametrize("slug", ["Vesper-Relay", "a%20b", "-x", "x" * 81, "vesper_relay", "%ED%A0%80"])
def test_a_malformed_mission_id_is_a_422(session, operator_client, slug):
    r = operator_client.get(f"/api/missions/{slug}")
    assert r.status_code == 422 and "mission id" in r.json()["detail"]


def test_a_well_formed_but_unknown_mission_is_a_404(session, operator_client):
    r = operator_client.get("/api/missions/no-such-mission")
    assert r.status_code == 404 and "no-such-mission" in r.json()["detail"]


def test_starting_a_mission_with_a_nul_in_its_id_is_a_422_and_changes_nothing(session, gm_client):
    """issue 11 hole 9: POST /api/sessions/{id}/mission {"slug": "a\\u0000b"} was a 500."""
    before = Event.objects.filter(session=session).count()
    r = post(gm_client, f"/api/sessions/{session.pk}/mission", {"slug": "a\u0000b"})
    assert r.status_code == 422 and "NUL" in r.json()["detail"]
    page = gm_client.post(f"/sessions/{session.pk}/mission", {"slug": "a\x00b"})
    assert page.status_code == 422
    assert Event.objects.filter(session=session).count() == before


def test_starting_an_unknown_mission_or_version_is_a_404_and_a_bad_version_a_422(session, gm_client):
    url = f"/api/sessions/{session.pk}/mission"
    assert post(gm_client, url, {"slug": "no-such-mission"}).status_code == 404
    unknown = post(gm_client, url, {"slug": "vesper-relay", "content_hash": "0" * 64})
    assert unknown.status_code == 404 and "version" in unknown.json()["detail"]
    bad = post(gm_client, url, {"slug": "vesper-relay", "content_hash": "not-a-hash\u0000"})
    assert bad.status_code == 422 and "content hash" in bad.json()["detail"]
    session.refresh_from_db()
    assert session.state["mission"]["slug"] == "vesper-relay"


def test_an_outsider_with_a_malformed_id_is_still_refused_first(session, outsider_client):
    """Authorisation answers before validation: a non-member learns nothing about the session."""
    r = post(outsider_client, f"/api/sessions/{session.pk}/mission", {"slug": "a\u0000b"})
    assert r.status_code == 404
    assert outsider_client.get("/api/missions/a%00b").status_code == 403


@pytest.mark.parametrize(
    ("body", "what"),
    [
        ({"source": VESPER + "\n# a comment with a \u0000 in it\n"}, "NUL"),
        ({"source": VESPER, "filename": "vesper\u0000.mission"}, "NUL"),
        ({"source": VESPER + "\n# \ud800\n"}, "unicode"),  # refused as the body is read
    ],
)
def test_an_upload_postgres_cannot_store_is_a_422_and_installs_nothing(session, operator_client, body, what):
    before = Mission.objects.count()
    r = post(operator_client, "/api/missions", body)
    assert r.status_code == 422 and what.lower() in r.json()["detail"].lower()
    assert Mission.objects.count() == before


def test_a_signed_deck_with_a_nul_is_a_422_not_a_500(session, settings, operator_client):
    """A trusted signer's deck with a NUL in a card passed the signature check and then failed
    inside PostgreSQL's jsonb."""
    pem, public = deck_rules.generate_keypair()
    settings.GTW_DECK_TRUSTED_KEYS = f"{deck_rules.key_id_for(public)}={public}"
    deck = json.loads((STARTER / "decks" / "reach-twists.json").read_text())["deck"]
    deck = {**deck, "slug": "nul-deck", "cards": [{**deck["cards"][0], "text": "a\u0000b"}]}
    r = post(operator_client, "/api/decks", deck_rules.sign_deck(deck, pem))
    assert r.status_code == 422 and "NUL" in r.json()["detail"]
    assert not StoryDeck.objects.filter(slug="nul-deck").exists()


def test_the_other_mission_controls_refuse_a_nul_with_a_422(session, gm_client):
    """The override, the beat and the play page's override form compare ids, never store them."""
    url = f"/api/sessions/{session.pk}"
    for body in (
        {"objective": "do\u0000ck", "status": "complete"},
        {"scene": "a\u0000"},
        {"clock": "x\u0000", "value": 1},
    ):
        assert post(gm_client, f"{url}/mission/override", body).status_code == 422
    assert post(gm_client, f"{url}/director", {"beat": "rising\u0000"}).status_code == 422
    assert gm_client.post(f"/sessions/{session.pk}/override", {"objective": "do\x00ck"}).status_code == 422
