"""Where the checks run (issue 18 part 3), end to end with the real turn runner: a held action is
not narrated until the GM approves it; a blocked one is refused with nothing stored; a held
sentence of narration is never shown (not in the stream, not in the stored Narration) until the
GM approves it, and the rest of the narration goes on. Players see "held for review", never
categories or scores."""

from __future__ import annotations

import pytest

from campaigns.models import Event, PlaySession
from campaigns.safety import services
from campaigns.safety.models import ReviewItem, ReviewLog, SafetyCount
from tests.safety.conftest import client_for, post_json

HARASSMENT = "Kill yourself, Dave, you ruin every session."
GORE = "Blood sprays across the viewport as the blade goes in."


def act(commit, session, user, text, key="k1"):
    return post_json(
        commit,
        client_for(user),
        f"/api/sessions/{session.pk}/actions",
        {"text": text, "idempotency_key": key},
    )


def types(session) -> list[str]:
    return list(Event.objects.filter(session=session).order_by("seq").values_list("type", flat=True))


def test_a_held_action_waits_for_the_gm_and_then_is_narrated(session, gm, player, commit):
    before = types(session)
    r = act(commit, session, player, HARASSMENT)
    assert r.status_code == 202, r.content
    session.refresh_from_db()
    assert session.state.get("pending") in (None, [])
    added = types(session)[len(before) :]
    assert added == ["ContentHeld"]  # no Action: nothing for the narrator yet
    held = Event.objects.get(session=session, type="ContentHeld")
    assert held.audience == [player.pk]
    item = ReviewItem.objects.get(campaign=session.campaign)
    assert (item.source, item.status, item.categories) == ("action", "pending", ["harassment"])
    assert SafetyCount.objects.get(campaign=session.campaign, category="harassment").count == 1

    # The player sees "held for review" and nothing of the engine's reasons.
    page = client_for(player).get(f"/sessions/{session.pk}/play/").content.decode()
    assert "held for review" in page
    assert "harassment" not in page and "lexicon" not in page
    api = client_for(player).get(f"/api/sessions/{session.pk}/events").content.decode()
    assert "harassment" not in api

    # A retry of the same submission finds the same hold, not a second one.
    assert act(commit, session, player, HARASSMENT).status_code == 202
    assert ReviewItem.objects.filter(campaign=session.campaign).count() == 1

    # The GM approves it from the queue page: the Action is appended and the turn runs.
    r = commit(
        client_for(gm).post,
        f"/campaigns/{session.campaign_id}/safety/items/{item.pk}",
        {"verdict": "approve"},
    )
    assert r.status_code == 302
    item.refresh_from_db()
    assert item.status == "approved" and item.decided_by == gm
    action = Event.objects.get(session=session, type="Action")
    assert action.payload["text"] == HARASSMENT and action.actor_id == player.pk
    assert item.released_seq == action.seq
    assert Event.objects.filter(session=session, type="Narration", payload__action_seq=action.seq).exists()
    assert Event.objects.filter(session=session, type="ContentReleased", audience=[player.pk]).exists()
    assert list(ReviewLog.objects.filter(item=item).values_list("verb", flat=True)) == ["approved", "held"]
    # The original submission, retried, now replays the approved Action.
    again = act(commit, session, player, HARASSMENT)
    assert again.json() == {"seq": action.seq, "replayed": True}


def test_edit_releases_the_edited_text_and_reject_releases_nothing(session, gm, player, commit):
    act(commit, session, player, HARASSMENT, key="a")
    act(commit, session, player, "You're a worthless piece of shit, GM.", key="b")
    first, second = ReviewItem.objects.filter(campaign=session.campaign).order_by("pk")
    services.review_decide(viewer=gm, campaign_id=session.campaign_id, item_id=second.pk, verdict="reject")
    commit(
        services.review_decide,
        viewer=gm,
        campaign_id=session.campaign_id,
        item_id=first.pk,
        verdict="edit",
        text="I tell Dave I'm frustrated with how the session is going.",
    )
    actions = list(
        Event.objects.filter(session=session, type="Action").values_list("payload__text", flat=True)
    )
    assert actions == ["I tell Dave I'm frustrated with how the session is going."]
    log = ReviewLog.objects.filter(item=first, verb="edited").get()
    assert log.before == HARASSMENT and log.after.startswith("I tell Dave")
    with pytest.raises(services.Conflict):
        services.review_decide(
            viewer=gm, campaign_id=session.campaign_id, item_id=second.pk, verdict="approve"
        )


def test_a_blocked_action_is_refused_and_nothing_is_stored(session, gm, player, commit):
    services.policy_set(campaign=session.campaign, user=gm, actions={"harassment": "block"})
    before = types(session)
    r = act(commit, session, player, HARASSMENT)
    assert r.status_code == 422
    assert "content settings" in r.json()["detail"]
    assert types(session) == before
    assert not ReviewItem.objects.filter(campaign=session.campaign).exists()


def test_a_clean_action_and_violence_in_a_war_story_go_straight_through(session, player, commit):
    r = act(commit, session, player, "I fire my blaster at the pirate captain.")
    assert r.status_code == 202
    assert Event.objects.filter(session=session, type="Action").count() == 1
    assert not ReviewItem.objects.exists()


def test_a_held_sentence_is_never_shown_until_approved(session, gm, player, commit, sent, scripted):
    services.policy_set(campaign=session.campaign, user=gm, actions={"graphic_violence": "hold"})
    scripted.append(f"The door hisses open. {GORE} The crew cheers as the pirates flee.")
    r = act(commit, session, player, "I charge the pirate boss.")
    assert r.status_code == 202
    narration = Event.objects.get(session=session, type="Narration")
    assert "Blood sprays" not in narration.payload["text"]
    assert "The door hisses open." in narration.payload["text"]
    assert "The crew cheers" in narration.payload["text"]  # the stream went on
    assert narration.payload["held"] == 1
    streamed = "".join(m.get("text", "") for _g, m in sent if m.get("type") == "session.delta")
    assert "The door hisses open." in streamed and "The crew cheers" in streamed
    assert "Blood" not in streamed
    item = ReviewItem.objects.get(campaign=session.campaign, source="narration")
    assert item.text == GORE and item.categories == ["graphic_violence"]
    page = client_for(player).get(f"/sessions/{session.pk}/play/").content.decode()
    assert "held for the GM" in page and "Blood sprays" not in page

    commit(
        services.review_decide, viewer=gm, campaign_id=session.campaign_id, item_id=item.pk, verdict="approve"
    )
    revealed = Event.objects.get(session=session, type="NarrationRevealed")
    assert revealed.payload["text"] == GORE and revealed.audience is None
    assert revealed.payload["of_seq"] == narration.payload["action_seq"]
    page = client_for(player).get(f"/sessions/{session.pk}/play/").content.decode()
    assert "Blood sprays" in page and "released after review" in page


def test_a_blocked_sentence_is_dropped_and_logged_for_the_gm(session, gm, player, commit, scripted):
    services.policy_set(campaign=session.campaign, user=gm, actions={"graphic_violence": "block"})
    scripted.append(f"The door hisses open. {GORE} The crew cheers.")
    act(commit, session, player, "I charge.")
    narration = Event.objects.get(session=session, type="Narration")
    assert "Blood" not in narration.payload["text"] and "held" not in narration.payload
    item = ReviewItem.objects.get(campaign=session.campaign)
    assert item.status == "blocked"


def test_soften_reaches_the_narrators_system_prompt(session, gm, player, commit, scripted, monkeypatch):
    from tests.safety import conftest

    seen = []
    original = conftest.ScriptedNarrator.stream

    def spy(self, request):
        seen.append(request.messages[0].content)
        return original(self, request)

    monkeypatch.setattr(conftest.ScriptedNarrator, "stream", spy)
    act(commit, session, player, "I disembowel the raider.")
    assert "off-screen or toned down" in seen[0]
    assert "The player's action touches on graphic violence" in seen[0]


def test_the_table_lines_hold_an_action(session, gm, player, commit):
    from campaigns import selectors
    from narrative import tablesafety

    member = selectors.membership_get(viewer=player, campaign_id=session.campaign_id)
    tablesafety.table_line_add(membership=member, kind="line", text="spiders", private=True)
    act(commit, session, player, "I release the spiders into the vents.")
    item = ReviewItem.objects.get(campaign=session.campaign)
    assert item.categories == ["lines"]


def test_an_ended_session_cannot_release_an_action(session, gm, player, commit):
    act(commit, session, player, HARASSMENT)
    PlaySession.objects.filter(pk=session.pk).update(status=PlaySession.Status.ENDED)
    item = ReviewItem.objects.get(campaign=session.campaign)
    with pytest.raises(services.Conflict):
        services.review_decide(viewer=gm, campaign_id=session.campaign_id, item_id=item.pk, verdict="approve")
    item.refresh_from_db()
    assert item.status == "pending"  # nothing lost: approve it once the session resumes
