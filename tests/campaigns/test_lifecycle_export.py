"""A campaign's save file (issue 16 part 5): export, and import into a NEW campaign that replays
to the same state hash; garbage, tampered, unknown-version and oversized files are refused with
a clear error and nothing half-imported. Personas: GM, player, outsider."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from campaigns import events, selectors
from campaigns import state as reducer
from campaigns.lifecycle_export import checksum
from campaigns.models import Campaign, Character, Event, Membership, PlaySession, Snapshot
from campaigns.scheduling.models import ScheduleOverride, SessionSchedule
from memory import services as memory_services
from memory.models import Memory

pytestmark = pytest.mark.django_db


def _m(campaign, user):
    return selectors.membership_get(viewer=user, campaign_id=campaign.pk)


@pytest.fixture
def played(session, campaign, gm, player, gm_client):
    """A campaign with history: events past a snapshot, a whisper, a status effect on a character
    (state keyed by character id), table and private memories, and a schedule with a change."""
    kira = Character.objects.get(campaign=campaign, owner=player)
    for i in range(6):
        events.append(session, [events.NewEvent(type="Note", payload={"text": f"beat {i}"})])
    events.append(
        session,
        [events.NewEvent(type="Action", actor_id=player.pk, payload={"text": "I hack the door."})],
    )
    events.append(
        session,
        [
            events.NewEvent(
                type="Whisper",
                actor_id=gm.pk,
                audience=[player.pk],
                payload={"text": "You hear a voice.", "to_user_id": player.pk},
            )
        ],
    )
    events.append(
        session,
        [
            events.NewEvent(
                type="StatusApplied",
                payload={"character_id": kira.pk, "status_state": {str(kira.pk): [{"status": "stunned"}]}},
            )
        ],
    )
    memory_services.memory_record(membership=_m(campaign, gm), text="The relay is sabotaged.")
    memory_services.memory_record(
        membership=_m(campaign, player), text="Kira owes the smuggler.", visibility="private"
    )
    response = gm_client.post(
        f"/api/campaigns/{campaign.pk}/schedules",
        {
            "start": "2027-01-07T19:30",
            "time_zone": "Europe/Berlin",
            "duration_minutes": 180,
            "rrule": "FREQ=WEEKLY",
        },
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    schedule_id = response.json()["id"]
    moved = gm_client.post(
        f"/api/campaigns/{campaign.pk}/schedules/{schedule_id}/occurrences",
        {"action": "cancel", "original": "2027-01-14T19:30"},
        content_type="application/json",
    )
    assert moved.status_code == 200, moved.content
    session.refresh_from_db()
    return session


def _export(client, campaign) -> bytes:
    response = client.get(f"/api/campaigns/{campaign.pk}/export")
    assert response.status_code == 200, response.content
    assert response["Content-Disposition"].startswith("attachment;")
    return response.content


def _import(client, data: bytes, name="save.gtw.json"):
    return client.post("/api/campaigns/import", {"file": SimpleUploadedFile(name, data)})


def _counts():
    return (
        Campaign.objects.count(),
        PlaySession.objects.count(),
        Event.objects.count(),
        Memory.objects.count(),
        Character.objects.count(),
        SessionSchedule.objects.count(),
    )


def _resigned(body: dict) -> bytes:
    body["sha256"] = checksum(body)
    return json.dumps(body).encode()


def test_export_then_import_replays_to_the_same_state_hash(played, campaign, gm, player, gm_client):
    data = _export(gm_client, campaign)
    body = json.loads(data)
    assert (body["format"], body["version"]) == ("gtw-campaign", 1)
    assert body["sha256"] == checksum(body)
    # People are named by ref, never by this site's ids.
    assert {p["username"] for p in body["people"]} == {gm.username, player.username}

    response = _import(gm_client, data)

    assert response.status_code == 201, response.content
    result = response.json()
    new = Campaign.objects.get(pk=result["id"])
    assert new.pk != campaign.pk and new.name == campaign.name
    copy = PlaySession.objects.get(campaign=new)
    [row] = result["sessions"]
    assert (row["number"], row["id"], row["version"], row["state_hash"]) == (
        1,
        copy.pk,
        played.version,
        copy.state_hash,
    )
    # The status effect is keyed by the character's id, which is new here.
    assert row["same_as_file"] is False
    # Same people here: the imported log folds to the very state of the original, except the
    # character ids (new rows), which the copied events name consistently.
    assert events.replay_from_scratch(copy.pk) == copy.state
    assert reducer.state_hash(copy.state) == copy.state_hash
    assert events.load_state(copy.pk) == copy.state
    new_kira = Character.objects.get(campaign=new, owner=player)
    assert copy.state["statuses"] == {str(new_kira.pk): [{"status": "stunned"}]}
    assert [s.seq for s in Snapshot.objects.filter(session=copy).order_by("seq")] == [
        s.seq for s in Snapshot.objects.filter(session=played).order_by("seq")
    ]
    whisper = Event.objects.get(session=copy, type="Whisper")
    assert whisper.audience == [player.pk] and whisper.payload["to_user_id"] == player.pk
    # The importer runs it alone: the file's other people come back through invites only.
    assert list(Membership.objects.filter(campaign=new).values_list("user_id", "role")) == [(gm.pk, "gm")]
    assert set(Memory.objects.filter(campaign=new).values_list("namespace", "text")) == {
        (f"campaign:{new.pk}", "The relay is sabotaged."),
        (f"player:{player.pk}", "Kira owes the smuggler."),
    }
    schedule = SessionSchedule.objects.get(campaign=new)
    assert (schedule.time_zone, schedule.rrule, schedule.duration_minutes) == (
        "Europe/Berlin",
        "FREQ=WEEKLY",
        180,
    )
    assert schedule.uid != SessionSchedule.objects.get(campaign=campaign).uid
    assert ScheduleOverride.objects.filter(schedule=schedule, cancelled=True).count() == 1


def test_a_log_without_character_ids_imports_to_the_identical_state_hash(session, campaign, gm, gm_client):
    for i in range(3):
        events.append(session, [events.NewEvent(type="Note", actor_id=gm.pk, payload={"n": i})])
    session.refresh_from_db()
    result = _import(gm_client, _export(gm_client, campaign)).json()
    assert result["sessions"][0]["state_hash"] == session.state_hash
    assert result["sessions"][0]["same_as_file"] is True


def test_export_is_the_gms(played, campaign, player_client, outsider_client):
    assert player_client.get(f"/api/campaigns/{campaign.pk}/export").status_code == 403
    assert outsider_client.get(f"/api/campaigns/{campaign.pk}/export").status_code == 404
    assert Client().get(f"/api/campaigns/{campaign.pk}/export").status_code in (401, 403)


def test_an_outsider_importing_a_file_gets_a_campaign_of_their_own_and_no_one_else_is_added(
    played, campaign, gm, player, outsider, gm_client, outsider_client
):
    data = _export(gm_client, campaign)
    response = _import(outsider_client, data)
    assert response.status_code == 201, response.content
    new = Campaign.objects.get(pk=response.json()["id"])
    assert list(Membership.objects.filter(campaign=new).values_list("user_id", flat=True)) == [outsider.pk]
    # The original is untouched and still closed to the outsider.
    assert outsider_client.get(f"/api/campaigns/{campaign.pk}/sessions").status_code == 404
    assert Membership.objects.filter(campaign=campaign).count() == 2


@pytest.mark.parametrize(
    "data, code",
    [
        (b"\x00\xff not json", "bad_file"),
        (b"[1, 2, 3]", "bad_file"),
        (json.dumps({"format": "something-else", "version": 1}).encode(), "bad_file"),
        (json.dumps({"format": "gtw-campaign", "version": 99}).encode(), "unknown_version"),
        (json.dumps({"format": "gtw-campaign", "version": 1, "campaign": {}}).encode(), "bad_file"),
    ],
)
def test_garbage_and_unknown_versions_are_refused_and_nothing_is_saved(played, gm_client, data, code):
    before = _counts()
    response = _import(gm_client, data)
    assert response.status_code == 422
    assert response.json()["error"] == code
    assert response.json()["detail"]
    assert _counts() == before


def test_a_file_edited_after_export_is_refused(played, campaign, gm_client):
    body = json.loads(_export(gm_client, campaign))
    body["sessions"][0]["events"][2]["payload"]["text"] = "rewritten history"
    before = _counts()
    response = _import(gm_client, json.dumps(body).encode())
    assert response.status_code == 422
    assert response.json()["error"] == "tampered"
    assert _counts() == before


def test_a_forged_log_with_a_recomputed_checksum_is_refused(played, campaign, gm_client):
    """Regression guard: the file checksum alone is not enough — each session's log must fold to
    the state hash recorded for it."""
    body = json.loads(_export(gm_client, campaign))
    opened = body["sessions"][0]["events"][0]
    assert opened["type"] == "SessionOpened"
    opened["payload"]["objective"] = "Steal the reactor core"
    before = _counts()
    response = _import(gm_client, _resigned(body))
    assert response.status_code == 422
    assert response.json()["error"] == "tampered"
    assert _counts() == before


def test_a_bad_memory_rolls_back_the_whole_import(played, campaign, gm_client):
    body = json.loads(_export(gm_client, campaign))
    body["sections"]["memories"].append({"namespace": "campaign", "text": "", "type": "episodic"})
    before = _counts()
    response = _import(gm_client, _resigned(body))
    assert response.status_code == 422
    assert "Memory" in response.json()["detail"]
    assert _counts() == before


def test_a_bad_schedule_rolls_back_the_whole_import(played, campaign, gm_client):
    body = json.loads(_export(gm_client, campaign))
    body["schedules"][0]["time_zone"] = "Mars/Olympus_Mons"
    before = _counts()
    response = _import(gm_client, _resigned(body))
    assert response.status_code == 422
    assert "Schedule 1" in response.json()["detail"]
    assert _counts() == before


def test_misnumbered_events_are_refused(played, campaign, gm_client):
    body = json.loads(_export(gm_client, campaign))
    body["sessions"][0]["events"][3]["seq"] = 40
    response = _import(gm_client, _resigned(body))
    assert response.status_code == 422
    assert "numbered" in response.json()["detail"]


def test_an_oversized_file_is_refused_before_it_is_read(played, campaign, gm_client, settings):
    data = _export(gm_client, campaign)
    settings.GTW_CAMPAIGN_IMPORT_MAX_BYTES = len(data) - 1
    before = _counts()
    response = _import(gm_client, data)
    assert response.status_code == 413
    assert "GTW_CAMPAIGN_IMPORT_MAX_BYTES" in response.json()["detail"]
    assert _counts() == before


def test_import_needs_a_signed_in_user_and_a_file(played, gm_client):
    assert Client().post("/api/campaigns/import", {}).status_code in (401, 403)
    assert gm_client.post("/api/campaigns/import", {}).status_code in (400, 422)


@pytest.mark.parametrize(
    "edit",
    [
        lambda b: b["sessions"][0]["events"][1].update(seed=2**70),  # past the column: 422, not 500
        lambda b: b["sessions"].append(dict(b["sessions"][0])),  # two sessions numbered 1
        lambda b: b["characters"][0].update(inventory=["not an item"]),
        lambda b: b["sessions"][0]["events"][0].update(payload="not an object"),
    ],
)
def test_values_the_database_or_the_pages_could_not_take_are_refused(played, campaign, gm_client, edit):
    body = json.loads(_export(gm_client, campaign))
    edit(body)
    before = _counts()
    response = _import(gm_client, _resigned(body))
    assert response.status_code == 422, response.content
    assert _counts() == before


def test_provider_choices_stay_behind_but_other_settings_travel(session, campaign, gm_client):
    Campaign.objects.filter(pk=campaign.pk).update(
        settings={"providers": {"narrator": {"key_id": 7}}, "voice": {"narrator": "joe"}}
    )
    result = _import(gm_client, _export(gm_client, campaign)).json()
    assert Campaign.objects.get(pk=result["id"]).settings == {"voice": {"narrator": "joe"}}
