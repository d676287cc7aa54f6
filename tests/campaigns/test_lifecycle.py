"""Campaign lifecycle (issue 16 part 5): clone, archive/unarchive, the sessions list and session
snapshots — through the API, with the three personas (GM, player, outsider)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.test import Client

from campaigns import events, selectors
from campaigns import state as reducer
from campaigns.errors import Conflict
from campaigns.models import Campaign, Character, Event, Membership, PlaySession, Snapshot
from campaigns.scheduling import selectors as scheduling_selectors
from campaigns.scheduling import services as scheduling_services
from campaigns.scheduling.models import SessionSchedule, UpcomingNotice
from campaigns.scheduling.tasks import upcoming_scan
from memory import services as memory_services
from memory.models import Memory

pytestmark = pytest.mark.django_db


def post(client, url, data=None):
    return client.post(url, data or {}, content_type="application/json")


def _gm_m(campaign, gm):
    return selectors.membership_get(viewer=gm, campaign_id=campaign.pk)


def _play(session, n):
    """n plain events (Notes) on the session, like a table's play."""
    for _ in range(n):
        events.append(session, [events.NewEvent(type="Note", payload={"text": "x"})])
    session.refresh_from_db()
    return session


def _schedule(campaign, gm_client):
    response = gm_client.post(
        f"/api/campaigns/{campaign.pk}/schedules",
        {
            "start": "2027-01-07T19:30",
            "time_zone": "Europe/Berlin",
            "duration_minutes": 180,
            "rrule": "FREQ=WEEKLY;INTERVAL=2",
        },
        content_type="application/json",
    )
    assert response.status_code == 201, response.content


# ---- clone -----------------------------------------------------------------------------------


def test_clone_copies_content_settings_members_and_characters_as_templates(
    session, campaign, gm, player, gm_client
):
    Campaign.objects.filter(pk=campaign.pk).update(
        settings={"voice": {"narrator": "joe"}}, stash=[{"item": "medkit", "qty": 2}]
    )
    Character.objects.filter(campaign=campaign, owner=player).update(
        xp=900, level=4, inventory=[{"item": "deck", "qty": 1}]
    )
    _schedule(campaign, gm_client)
    memory_services.memory_record(membership=_gm_m(campaign, gm), text="The relay is sabotaged.")
    _play(session, 3)

    response = gm_client.post(
        f"/api/campaigns/{campaign.pk}/clone", {"name": "Vesper Run II"}, content_type="application/json"
    )

    assert response.status_code == 201, response.content
    clone = Campaign.objects.get(pk=response.json()["id"])
    assert clone.name == "Vesper Run II"
    assert (clone.pack_id, clone.personality_id) == (campaign.pack_id, campaign.personality_id)
    assert clone.mission_slug == campaign.mission_slug
    assert clone.settings == {"voice": {"narrator": "joe"}}
    assert clone.stash == []  # the party's finds are history
    roles = dict(Membership.objects.filter(campaign=clone).values_list("user_id", "role"))
    assert roles == {gm.pk: "gm", player.pk: "player"}
    kira = Character.objects.get(campaign=clone, owner=player)
    assert (kira.name, kira.archetype, kira.xp, kira.level, kira.inventory) == (
        "Kira Vance",
        "netrunner",
        0,
        1,
        [],
    )
    # Schedules off, and no history unless asked.
    assert not SessionSchedule.objects.filter(campaign=clone).exists()
    assert not PlaySession.objects.filter(campaign=clone).exists()
    assert not Memory.objects.filter(campaign=clone).exists()
    # The source is untouched.
    assert Character.objects.get(campaign=campaign, owner=player).xp == 900


def test_clone_with_history_copies_sessions_snapshots_and_memories(session, campaign, gm, gm_client):
    memory_services.memory_record(membership=_gm_m(campaign, gm), text="The relay is sabotaged.")
    _play(session, 7)  # past a snapshot boundary (GTW_SNAPSHOT_EVERY=5 in tests)

    response = gm_client.post(
        f"/api/campaigns/{campaign.pk}/clone", {"history": True}, content_type="application/json"
    )

    assert response.status_code == 201
    clone = Campaign.objects.get(pk=response.json()["id"])
    assert clone.name == "Vesper Run (copy)"
    copy = PlaySession.objects.get(campaign=clone)
    assert copy.version == session.version
    assert events.replay_from_scratch(copy.pk) == copy.state
    assert reducer.state_hash(copy.state) == copy.state_hash
    assert list(Snapshot.objects.filter(session=copy).values_list("seq", flat=True)) == list(
        Snapshot.objects.filter(session=session).values_list("seq", flat=True)
    )
    assert events.load_state(copy.pk) == copy.state
    assert list(Memory.objects.filter(campaign=clone).values_list("text", flat=True)) == [
        "The relay is sabotaged."
    ]
    assert Memory.objects.get(campaign=clone).namespace == f"campaign:{clone.pk}"
    # Later play in the clone never reaches the source.
    _play(copy, 1)
    assert Event.objects.filter(session=session).count() == session.version


def test_clone_refused_to_player_and_outsider(campaign, player_client, outsider_client):
    before = Campaign.objects.count()
    assert post(player_client, f"/api/campaigns/{campaign.pk}/clone").status_code == 403
    assert post(outsider_client, f"/api/campaigns/{campaign.pk}/clone").status_code == 404
    assert Campaign.objects.count() == before


def test_clone_with_a_bad_name_is_refused_and_saves_nothing(campaign, gm_client):
    before = Campaign.objects.count()
    response = gm_client.post(
        f"/api/campaigns/{campaign.pk}/clone", {"name": "bad\x00name"}, content_type="application/json"
    )
    assert response.status_code == 422
    assert Campaign.objects.count() == before


# ---- archive -----------------------------------------------------------------------------------


def test_archive_ends_sessions_refuses_play_and_hides_the_campaign(
    session, campaign, gm, player, gm_client, player_client
):
    assert post(gm_client, f"/api/campaigns/{campaign.pk}/archive").json() == {
        "id": campaign.pk,
        "archived": True,
    }
    session.refresh_from_db()
    assert session.status == PlaySession.Status.ENDED
    version = session.version

    # Actions, resumes and new sessions: a clear 409, nothing appended.
    action = player_client.post(
        f"/api/sessions/{session.pk}/actions",
        {"text": "I open the hatch.", "idempotency_key": "k1"},
        content_type="application/json",
    )
    assert action.status_code == 409
    # Whatever path writes (a turn that was running, a GM control), the event store refuses it.
    with pytest.raises(Conflict, match="archived"):
        events.append(session, [events.NewEvent(type="Note", payload={})])
    assert post(gm_client, f"/api/sessions/{session.pk}/resume").status_code == 409
    assert post(gm_client, f"/api/campaigns/{campaign.pk}/sessions").status_code == 409
    assert post(gm_client, f"/api/campaigns/{campaign.pk}/invites").status_code == 409
    session.refresh_from_db()
    assert session.version == version
    assert PlaySession.objects.filter(campaign=campaign).count() == 1

    # Hidden from the dashboard and the campaign list; still readable by its members.
    assert campaign.pk not in [c["id"] for c in player_client.get("/api/campaigns").json()]
    assert [c["id"] for c in player_client.get("/api/campaigns?archived=true").json()] == [campaign.pk]
    page = player_client.get("/")
    assert page.status_code == 200
    html = page.content.decode()
    mine = html.split('id="mine"', 1)[1].split("</section>", 1)[0]
    assert f'href="/campaigns/{campaign.pk}/"' not in mine
    # ...listed under "Archived" with the import form, where its GM can find it again.
    archived = html.split('id="import-h"', 1)[1].split("</section>", 1)[0]
    assert f'href="/campaigns/{campaign.pk}/"' in archived
    assert player_client.get(f"/api/campaigns/{campaign.pk}/sessions").status_code == 200

    # Restored: play again.
    assert post(gm_client, f"/api/campaigns/{campaign.pk}/unarchive").json()["archived"] is False
    assert post(gm_client, f"/api/sessions/{session.pk}/resume").status_code == 200
    assert campaign.pk in [c["id"] for c in player_client.get("/api/campaigns").json()]


def test_archive_refused_to_player_and_outsider(campaign, player_client, outsider_client):
    assert post(player_client, f"/api/campaigns/{campaign.pk}/archive").status_code == 403
    assert post(outsider_client, f"/api/campaigns/{campaign.pk}/archive").status_code == 404
    assert post(player_client, f"/api/campaigns/{campaign.pk}/unarchive").status_code == 403
    campaign.refresh_from_db()
    assert campaign.archived is False


def test_archived_campaign_leaves_calendar_feeds_and_next_sessions(campaign, gm, player, gm_client):
    _schedule(campaign, gm_client)
    _feed, token = scheduling_services.feed_create(user=player)
    _feed, campaign_token = scheduling_services.feed_create(user=player, campaign_id=campaign.pk)
    client = Client()
    assert "VEVENT" in client.get(f"/calendar/{token}.ics").content.decode()
    now = datetime(2027, 1, 1, tzinfo=UTC)
    assert scheduling_selectors.viewer_upcoming(viewer=player, now=now)

    post(gm_client, f"/api/campaigns/{campaign.pk}/archive")

    feed = client.get(f"/calendar/{token}.ics")
    assert feed.status_code == 200
    assert "VEVENT" not in feed.content.decode()
    assert "VEVENT" not in client.get(f"/calendar/{campaign_token}.ics").content.decode()
    assert scheduling_selectors.viewer_upcoming(viewer=player, now=now) == []
    # No SessionUpcoming notices (so no reminders) for an archived campaign.
    assert upcoming_scan(now=datetime(2027, 1, 7, 18, 0, tzinfo=UTC)) == 0
    assert not UpcomingNotice.objects.exists()


# ---- sessions and snapshots ----------------------------------------------------------------------


def test_session_list_for_members_only(session, campaign, gm_client, player_client, outsider_client):
    rows = player_client.get(f"/api/campaigns/{campaign.pk}/sessions").json()
    assert [(r["id"], r["number"], r["status"], r["kind"]) for r in rows] == [
        (session.pk, 1, "active", "party")
    ]
    assert rows[0]["state_hash"] == PlaySession.objects.get(pk=session.pk).state_hash
    assert gm_client.get(f"/api/campaigns/{campaign.pk}/sessions").status_code == 200
    assert outsider_client.get(f"/api/campaigns/{campaign.pk}/sessions").status_code == 404


def test_snapshots_list_and_get_as_stored(session, gm_client, player_client, outsider_client):
    _play(session, 10)
    stored = list(Snapshot.objects.filter(session=session).order_by("seq"))
    assert stored
    listing = gm_client.get(f"/api/sessions/{session.pk}/snapshots").json()
    assert [(s["seq"], s["sha256"]) for s in listing["snapshots"]] == [(s.seq, s.sha256) for s in stored]
    assert listing["version"] == session.version
    one = gm_client.get(f"/api/sessions/{session.pk}/snapshots/{stored[0].seq}").json()
    assert one["state"] == stored[0].state
    assert one["sha256"] == stored[0].sha256 == reducer.state_hash(one["state"])
    assert gm_client.get(f"/api/sessions/{session.pk}/snapshots/9999").status_code == 404
    # The engine's whole state is the GM's: players are refused, outsiders can't tell it exists.
    assert player_client.get(f"/api/sessions/{session.pk}/snapshots").status_code == 403
    assert player_client.get(f"/api/sessions/{session.pk}/snapshots/{stored[0].seq}").status_code == 403
    assert outsider_client.get(f"/api/sessions/{session.pk}/snapshots").status_code == 404
