"""Security review of issue 11 hole 3 ("one player can stall turns for their table and for
unrelated campaigns"): the fix limited actions, but three other requests that set off work for
the server had no limit at all, and anyone can reach them — a turn's Retry is open to every
player at the table, and anyone is a GM by creating a campaign of their own:

- Retry: a turn that keeps failing could be retried without end, each retry a whole turn (a
  narrator call) — an action flood through TurnRetried. It now counts as an action.
- Whispers: each is a private memory embedded on the memory cluster every campaign shares.
- Branches: each copies a session's whole history and memory into a new campaign.

Each is refused with a clear 429 past its limit (GTW_RATE_LIMITS), for that user only."""

from __future__ import annotations

import pytest

from campaigns.errors import RateLimited
from campaigns.models import Campaign, Event
from narrative import turns


def _limit(settings, scope: str, how_many: int):
    _, per, what = settings.GTW_RATE_LIMITS[scope]
    settings.GTW_RATE_LIMITS = {**settings.GTW_RATE_LIMITS, scope: (how_many, per, what)}
    return per, what


def test_retrying_a_failing_turn_counts_against_the_action_limit(session, player, gm, settings):
    """issue 11 hole 3, through TurnRetried: retry, the turn fails again, retry… — refused
    (429) once the player's action allowance is spent; another player's allowance is their own."""
    per, what = _limit(settings, "action", 3)
    seq = (
        turns.submit_action(session_id=session.pk, user=player, text="I pry the hatch", idempotency_key="a")
        .events[0]
        .seq
    )
    for _ in range(2):  # the action itself used one of the three
        turns.party._fail(session, seq, "The narrator is unavailable. Retry?")
        turns.retry_turn(session_id=session.pk, user=player, action_seq=seq)
    turns.party._fail(session, seq, "The narrator is unavailable. Retry?")
    with pytest.raises(RateLimited, match=rf"^Slow down: at most 3 {what} per {per} seconds\.$") as refused:
        turns.retry_turn(session_id=session.pk, user=player, action_seq=seq)
    assert refused.value.status == 429
    assert Event.objects.filter(session=session, type="TurnRetried").count() == 2
    assert turns.retry_turn(session_id=session.pk, user=gm, action_seq=seq).events  # the GM's own allowance


def test_a_retry_through_the_api_past_the_limit_is_a_429(
    session, player, player_client, outsider_client, settings
):
    _limit(settings, "action", 1)
    seq = (
        turns.submit_action(session_id=session.pk, user=player, text="I wait", idempotency_key="a")
        .events[0]
        .seq
    )
    turns.party._fail(session, seq, "The narrator is unavailable. Retry?")
    url = f"/api/sessions/{session.pk}/actions/{seq}/retry"
    assert outsider_client.post(url).status_code == 404
    response = player_client.post(url)
    assert response.status_code == 429
    assert response.json()["error"] == "rate_limited"
    assert not Event.objects.filter(session=session, type="TurnRetried").exists()


def test_a_whisper_flood_is_refused(session, player, gm_client, player_client, outsider_client, settings):
    """issue 11 hole 3, through whispers: past the GM's whisper allowance, 429 and no event; a
    player still can't whisper at all and the outsider still sees nothing."""
    per, what = _limit(settings, "whisper", 3)
    url = f"/api/sessions/{session.pk}/whispers"
    body = {"to": player.pk, "text": "The code is 7731."}
    sent = [gm_client.post(url, body, content_type="application/json").status_code for _ in range(3)]
    assert sent == [201, 201, 201]
    refused = gm_client.post(url, body, content_type="application/json")
    assert refused.status_code == 429
    assert refused.json()["detail"] == f"Slow down: at most 3 {what} per {per} seconds."
    assert Event.objects.filter(session=session, type="Whisper").count() == 3
    assert (
        player_client.post(url, {**body, "to": player.pk}, content_type="application/json").status_code == 403
    )
    assert outsider_client.post(url, body, content_type="application/json").status_code == 404


def test_branching_is_rate_limited(session, gm, gm_client, player_client, outsider_client, settings):
    """issue 11 hole 3, through branches: past the GM's branch allowance, 429 and no new
    campaign; a player still can't branch and the outsider still gets 404."""
    per, what = _limit(settings, "branch", 2)
    url = f"/api/sessions/{session.pk}/branch"
    made = [gm_client.post(url, {"at_seq": 1}, content_type="application/json").status_code for _ in range(2)]
    assert made == [201, 201]
    before = Campaign.objects.count()
    refused = gm_client.post(url, {"at_seq": 1}, content_type="application/json")
    assert refused.status_code == 429
    assert refused.json()["detail"] == f"Slow down: at most 2 {what} per {per} seconds."
    assert Campaign.objects.count() == before
    assert player_client.post(url, {"at_seq": 1}, content_type="application/json").status_code == 403
    assert outsider_client.post(url, {"at_seq": 1}, content_type="application/json").status_code == 404


def test_the_gm_controls_are_rate_limited_on_the_api_and_the_play_page(
    session, gm_client, player_client, settings
):
    """issue 11 hole 3, through the game controls: every beat change, override or mission start
    appends engine events (many of them memories to embed on the shared memory cluster), and
    nothing bounded them. Past the GM's allowance both the API and the play page's forms are
    refused (429) and nothing is appended; a player is still refused outright."""
    per, what = _limit(settings, "gm_control", 2)
    api_url = f"/api/sessions/{session.pk}/director"
    beats = ["rising", "twist", "climax"]
    assert gm_client.post(api_url, {"beat": beats[0]}, content_type="application/json").status_code == 200
    assert gm_client.post(f"/sessions/{session.pk}/beat", {"beat": beats[1]}).status_code == 302
    before = Event.objects.filter(session=session).count()
    refused = gm_client.post(api_url, {"beat": beats[2]}, content_type="application/json")
    assert refused.status_code == 429
    assert refused.json()["detail"] == f"Slow down: at most 2 {what} per {per} seconds."
    page = gm_client.post(f"/sessions/{session.pk}/beat", {"beat": beats[2]})
    assert page.status_code == 429 and b"Slow down" in page.content
    assert Event.objects.filter(session=session).count() == before
    assert player_client.post(api_url, {"beat": beats[2]}, content_type="application/json").status_code == 403
