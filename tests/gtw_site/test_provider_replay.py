"""Issue 17 part 6: the session replay timeline — events in order with time, tool arguments and
dice seeds; "re-roll from seed" shows the same number; "replay to here" recomputes the state
hash and shows it equals the stored one (and says so when a stored event was tampered with);
tokens and cost per turn; GM and staff only."""

from __future__ import annotations

import pytest

from campaigns.models import Event
from narrative import turns


@pytest.fixture
def played(session, player, django_capture_on_commit_callbacks):
    for n, text in enumerate(["I hack the airlock panel", "I look around the bay", "I pick the lock"]):
        with django_capture_on_commit_callbacks(execute=True):
            turns.submit_action(session_id=session.pk, user=player, text=text, idempotency_key=f"r{n}")
    return session


@pytest.mark.django_db
def test_the_timeline_lists_every_event_with_seeds_and_turn_costs(played, gm_client):
    page = gm_client.get(f"/sessions/{played.pk}/replay/")
    assert page.status_code == 200
    html = page.content.decode()
    events = list(Event.objects.filter(session=played).order_by("seq"))
    for event in events:
        assert f'id="event-{event.seq}"' in html
    dice = next(e for e in events if e.type == "DiceRolled")
    assert f"seed {dice.seed}" in html and f"?reroll={dice.seq}" in html
    assert " in / " in html  # a turn's tokens


@pytest.mark.django_db
def test_re_roll_from_seed_shows_the_same_number(played, gm_client):
    dice = Event.objects.filter(session=played, type="DiceRolled").order_by("seq").first()
    page = gm_client.get(f"/sessions/{played.pk}/replay/?reroll={dice.seq}")
    html = page.content.decode()
    assert page.status_code == 200 and 'id="reroll"' in html and "checks out" in html
    faces = dice.payload.get("faces") or dice.payload.get("rolls")
    if faces:
        assert " and ".join(str(f) for f in faces) in html


@pytest.mark.django_db
def test_replay_to_here_equals_the_stored_hash(played, gm_client):
    last = Event.objects.filter(session=played).order_by("-seq").first().seq
    for upto in (1, last // 2, last):
        html = gm_client.get(f"/sessions/{played.pk}/replay/?upto={upto}").content.decode()
        assert 'id="replay-check"' in html and "equals" in html, upto
    played.refresh_from_db()
    assert played.state_hash[:17] in html


@pytest.mark.django_db
def test_a_tampered_event_shows_as_a_different_hash(played, gm_client):
    last = Event.objects.filter(session=played).order_by("-seq").first().seq
    dice = Event.objects.filter(session=played, type="DiceRolled").first()
    Event.objects.filter(pk=dice.pk).update(
        payload={**dice.payload, "total": 999, "outcome": "critical_success"}
    )
    html = gm_client.get(f"/sessions/{played.pk}/replay/?upto={last}").content.decode()
    assert "differs from" in html


@pytest.mark.django_db
def test_bad_input_and_other_personas(played, gm_client, player_client, outsider_client):
    assert gm_client.get(f"/sessions/{played.pk}/replay/?upto=9999").status_code == 422
    assert gm_client.get(f"/sessions/{played.pk}/replay/?upto=abc").status_code == 422
    assert gm_client.get(f"/sessions/{played.pk}/replay/?reroll=1").status_code == 404  # not a roll
    assert player_client.get(f"/sessions/{played.pk}/replay/").status_code == 404  # the GM's page only
    assert outsider_client.get(f"/sessions/{played.pk}/replay/").status_code == 404
