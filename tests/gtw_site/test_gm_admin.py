"""What a GM does at /gm/ (issue 22): invites, members, characters, sessions, private missions,
campaign memory — each through the admin's real forms and actions — and the rules that hold
them: foreign-key choices scoped to the GM's campaigns, the event log append-only for everyone
(staff at /admin/ included), private missions usable only in their owner's campaigns."""

from __future__ import annotations

import pytest
from django.test import Client, override_settings

from campaigns import services
from campaigns.errors import Gone, NotFound
from campaigns.models import Campaign, Character, Event, Invite, Membership, PlaySession
from memory import services as memory_services
from memory.models import Memory
from missions.models import Mission
from missions.services import mission_for_start, missions_latest
from tests.gtw_site.gm_admin_helpers import BROKEN, private_mission_source


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def other_gm(content, outsider):
    services.campaign_create(user=outsider, name="Elsewhere", pack_slug="starter")
    return outsider


def _action(client, prefix: str, action: str, ids: list[int]):
    return client.post(f"/gm/{prefix}", {"action": action, "_selected_action": ids, "index": 0})


def test_a_gm_installs_a_private_mission_with_inline_errors_then_pins_it(campaign, gm, other_gm):
    client = _client(gm)
    response = client.post("/gm/missions/mission/add/", {"source": BROKEN, "pin_to": ""})
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["source"]
    assert errors and all("mission.mission:" in e for e in errors)
    assert any("mission.mission:3:1:" in e for e in errors)  # line:col, as the compiler says
    assert not Mission.objects.filter(slug="broken-op").exists()

    source = private_mission_source("gm-secret-op", "The GM's own op")
    response = client.post(
        "/gm/missions/mission/add/", {"source": source, "pin_to": campaign.pk, "_save": "1"}
    )
    assert response.status_code == 302
    mission = Mission.objects.get(slug="gm-secret-op")
    assert (mission.owner_id, mission.public) == (gm.pk, False)
    campaign.refresh_from_db()
    assert (campaign.mission_slug, campaign.mission_hash) == ("gm-secret-op", mission.content_hash)
    session = services.session_open(membership=Membership.objects.get(campaign=campaign, user=gm))
    assert session.state["mission"]["hash"] == mission.content_hash  # the next session plays it
    assert "gm-secret-op" in client.get(f"/sessions/{session.pk}/play/").content.decode()  # GM's list

    # Usable in the GM's campaign; for every other campaign it does not exist.
    assert mission_for_start(campaign=campaign, slug="gm-secret-op") == mission
    elsewhere = Campaign.objects.get(name="Elsewhere")
    with pytest.raises(NotFound):
        mission_for_start(campaign=elsewhere, slug="gm-secret-op")
    assert "gm-secret-op" not in [m.slug for m in missions_latest(elsewhere)]
    assert "gm-secret-op" not in [m["slug"] for m in _client(other_gm).get("/api/missions").json()]
    assert "gm-secret-op" in [m.slug for m in missions_latest(campaign)]
    assert _client(other_gm).get(f"/gm/missions/mission/{mission.pk}/change/").status_code == 404


def test_editing_a_private_mission_installs_a_new_version(campaign, gm):
    client = _client(gm)
    source = private_mission_source("gm-edit-op", "First cut")
    client.post("/gm/missions/mission/add/", {"source": source, "_save": "1"})
    first = Mission.objects.get(slug="gm-edit-op")
    edited = source.replace('"First cut"', '"Second cut"')
    response = client.post(f"/gm/missions/mission/{first.pk}/change/", {"source": edited, "_continue": "1"})
    assert response.status_code == 302
    second = Mission.objects.get(slug="gm-edit-op", title="Second cut")
    assert response["Location"].endswith(f"/gm/missions/mission/{second.pk}/change/")
    assert Mission.objects.get(pk=first.pk).title == "First cut"  # a version never changes


def test_a_co_gms_private_mission_is_usable_in_the_shared_campaign_and_staff_can_publish(
    campaign, gm, player, other_gm
):
    from missions.services import mission_install

    mission, _ = mission_install(source=private_mission_source("co-op", "Co-op"), user=player, owner=player)
    assert mission not in Mission.objects.filter(pk__in=[m.pk for m in missions_latest(campaign)])
    Membership.objects.filter(campaign=campaign, user=player).update(role=Membership.Role.GM)
    assert "co-op" in [m.slug for m in missions_latest(campaign)]
    elsewhere = Campaign.objects.get(name="Elsewhere")
    assert "co-op" not in [m.slug for m in missions_latest(elsewhere)]

    from django.contrib.auth import get_user_model

    staff = get_user_model().objects.create_superuser("staff22", "staff22@example.com", "pw-staff-22")
    response = _client(staff).post(
        "/admin/missions/mission/", {"action": "publish", "_selected_action": [mission.pk], "index": 0}
    )
    assert response.status_code == 302
    assert "co-op" in [m.slug for m in missions_latest(elsewhere)]


def test_invites_members_and_roles(campaign, gm, player, other_gm):
    client = _client(gm)
    mine = client.get("/gm/campaigns/invite/add/").context["adminform"].form.fields["campaign"]
    assert list(mine.queryset) == [campaign]
    elsewhere = Campaign.objects.get(name="Elsewhere")
    response = client.post("/gm/campaigns/invite/add/", {"campaign": elsewhere.pk, "role": "player"})
    assert response.status_code == 200 and "campaign" in response.context["adminform"].form.errors
    assert not Invite.objects.filter(campaign=elsewhere).exists()
    response = client.post("/gm/campaigns/invite/add/", {"campaign": campaign.pk, "role": "spectator"})
    assert response.status_code == 302
    invite = Invite.objects.filter(campaign=campaign, role="spectator").get()
    assert invite.created_by == gm and invite.used_at is None
    _action(client, "campaigns/invite/", "revoke", [invite.pk])
    with pytest.raises(Gone):
        services.invite_accept(code=invite.code, user=other_gm)

    seat = Membership.objects.get(campaign=campaign, user=player)
    _action(client, "campaigns/membership/", "make_co_gm", [seat.pk])
    assert Membership.objects.get(pk=seat.pk).role == Membership.Role.GM
    own = Membership.objects.get(campaign=campaign, user=gm)
    _action(client, "campaigns/membership/", "make_player", [own.pk])
    assert Membership.objects.get(pk=own.pk).role == Membership.Role.GM  # nobody demotes themselves
    assert client.post(f"/gm/campaigns/membership/{own.pk}/delete/", {"post": "yes"}).status_code == 403
    response = client.post(f"/gm/campaigns/membership/{seat.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Membership.objects.filter(pk=seat.pk).exists()


def test_characters_are_edited_within_the_packs_rules_and_retired(campaign, characters, gm, player):
    client = _client(gm)
    kira = Character.objects.get(campaign=campaign, owner=player)
    url = f"/gm/campaigns/character/{kira.pk}/change/"
    form = {"name": "Kira Vance II", "archetype": kira.archetype, "attributes": '{"nonsense": 99}'}
    form |= {"xp": 10, "level": 2}
    response = client.post(url, form)
    assert response.status_code == 200 and "attributes" in response.context["adminform"].form.errors
    form["attributes"] = "{}"
    assert client.post(url, form).status_code == 302
    kira.refresh_from_db()
    assert (kira.name, kira.xp, kira.level) == ("Kira Vance II", 10, 2)
    assert kira.attributes  # the archetype's defaults, as character_create gives them
    _action(client, "campaigns/character/", "retire", [kira.pk])
    campaign.refresh_from_db()
    assert str(kira.pk) in campaign.settings["roster"]["retired"]
    assert "as Kira Vance II (retired)" in client.get(f"/campaigns/{campaign.pk}/").content.decode()
    _action(client, "campaigns/character/", "unretire", [kira.pk])
    campaign.refresh_from_db()
    assert str(kira.pk) not in campaign.settings["roster"]["retired"]


def test_sessions_open_end_resume_and_branch_from_the_gm_admin(campaign, characters, gm):
    client = _client(gm)
    _action(client, "campaigns/campaign/", "open_session", [campaign.pk])
    session = PlaySession.objects.get(campaign=campaign)
    assert session.status == PlaySession.Status.ACTIVE
    assert client.get(f"/gm/campaigns/playsession/{session.pk}/end/").status_code == 405
    client.post(f"/gm/campaigns/playsession/{session.pk}/end/")
    session.refresh_from_db()
    assert session.status == PlaySession.Status.ENDED
    client.post(f"/gm/campaigns/playsession/{session.pk}/resume/")
    session.refresh_from_db()
    assert session.status == PlaySession.Status.ACTIVE
    response = client.post(f"/gm/campaigns/playsession/{session.pk}/branch/", {"seq": "1", "name": "What if"})
    assert response.status_code == 302
    branch = Campaign.objects.get(name="What if")
    assert Membership.objects.filter(campaign=branch, user=gm, role=Membership.Role.GM).exists()
    assert Event.objects.filter(session__campaign=branch).count() == 1


def test_the_event_log_is_append_only_for_the_gm_and_for_staff(campaign, session, gm):
    from django.contrib.auth import get_user_model

    event = Event.objects.filter(session=session).first()
    gm_client = _client(gm)
    listing = gm_client.get(f"/gm/campaigns/event/?session__id__exact={session.pk}&type__exact=SessionOpened")
    assert listing.status_code == 200 and listing.context["cl"].result_count == 1
    assert gm_client.get(f"/gm/campaigns/event/{event.pk}/change/").status_code == 200  # read-only view
    assert gm_client.post(f"/gm/campaigns/event/{event.pk}/change/", {"type": "Forged"}).status_code == 403
    assert gm_client.post(f"/gm/campaigns/event/{event.pk}/delete/", {"post": "yes"}).status_code == 403
    staff = get_user_model().objects.create_superuser("staff23", "staff23@example.com", "pw-staff-23")
    staff_client = _client(staff)
    assert (
        staff_client.post(f"/admin/campaigns/event/{event.pk}/change/", {"type": "Forged"}).status_code == 403
    )
    assert staff_client.post(f"/admin/campaigns/event/{event.pk}/delete/", {"post": "yes"}).status_code == 403
    _action(staff_client, "campaigns/event/", "delete_selected", [event.pk])
    gm_client.post(
        "/gm/campaigns/event/", {"action": "delete_selected", "_selected_action": [event.pk], "post": "yes"}
    )
    assert Event.objects.filter(pk=event.pk, type=event.type).exists()


@override_settings()
def test_campaign_memory_is_edited_and_private_memory_never_listed(campaign, gm, player, settings):
    settings.GTW_MEMORY = {**settings.GTW_MEMORY, "gm_omniscient": True}
    from campaigns import selectors

    gm_seat = selectors.membership_get(viewer=gm, campaign_id=campaign.pk)
    player_seat = selectors.membership_get(viewer=player, campaign_id=campaign.pk)
    shared = memory_services.memory_record(membership=gm_seat, text="The relay hums at night")[0]
    private = memory_services.memory_record(
        membership=player_seat, text="Kira's secret", visibility="private"
    )[0]
    client = _client(gm)
    listing = client.get("/gm/memory/memory/?q=relay").content.decode()
    assert "The relay hums at night" in listing
    assert "Kira&#x27;s secret" not in client.get("/gm/memory/memory/").content.decode()
    assert client.get(f"/gm/memory/memory/{private.pk}/change/").status_code == 404
    response = client.post(
        f"/gm/memory/memory/{shared.pk}/change/",
        {"text": "The relay sings at night", "type": shared.type, "tags": "", "importance": "0.5"},
    )
    assert response.status_code == 302
    shared.refresh_from_db()
    assert (shared.text, shared.embedding) == ("The relay sings at night", None)
    response = client.post(f"/gm/memory/memory/{shared.pk}/change/", {"text": "bad\x00", "type": shared.type})
    assert response.status_code == 200 and "text" in response.context["adminform"].form.errors
    client.post(f"/gm/memory/memory/{shared.pk}/delete/", {"post": "yes"})
    assert not Memory.objects.filter(pk=shared.pk).exists()
    assert Memory.objects.filter(pk=private.pk).exists()


def test_the_navigation_and_the_campaign_page_link_gms_to_the_gm_admin(campaign, gm, player):
    gm_client, player_client = _client(gm), _client(player)
    assert 'href="/gm/"' in gm_client.get("/").content.decode()
    page = gm_client.get(f"/campaigns/{campaign.pk}/").content.decode()
    assert f'href="/gm/campaigns/campaign/{campaign.pk}/change/"' in page
    assert "/gm/" not in player_client.get("/").content.decode()
    assert "/gm/" not in player_client.get(f"/campaigns/{campaign.pk}/").content.decode()


def test_a_schedule_is_added_only_to_the_gms_own_campaign(campaign, gm, other_gm):
    from campaigns.scheduling.models import SessionSchedule

    client = _client(gm)
    form = {
        "title": "Thursdays",
        "notes": "",
        "start_date": "2027-01-07",
        "start_time": "19:30",
        "time_zone": "Europe/Berlin",
        "duration_minutes": "180",
        "rrule": "FREQ=WEEKLY",
        "exdates": "[]",
        "overrides-TOTAL_FORMS": "0",
        "overrides-INITIAL_FORMS": "0",
    }
    elsewhere = Campaign.objects.get(name="Elsewhere")
    response = client.post("/gm/scheduling/sessionschedule/add/", {**form, "campaign": elsewhere.pk})
    assert response.status_code == 200 and "campaign" in response.context["adminform"].form.errors
    assert not SessionSchedule.objects.filter(campaign=elsewhere).exists()
    response = client.post("/gm/scheduling/sessionschedule/add/", {**form, "campaign": campaign.pk})
    assert response.status_code == 302, response.context["adminform"].form.errors
    schedule = SessionSchedule.objects.get(campaign=campaign)
    assert (schedule.created_by, schedule.rrule) == (gm, "FREQ=WEEKLY")


def test_the_stage_moderation_log_lists_the_stage_sessions_moderation(campaign, gm, player):
    from campaigns import selectors
    from campaigns.stage import services as stage

    gm_seat = selectors.membership_get(viewer=gm, campaign_id=campaign.pk)
    player_seat = selectors.membership_get(viewer=player, campaign_id=campaign.pk)
    session = stage.stage_open(membership=gm_seat, title="Town hall")
    stage.hand_raise(session=session, membership=player_seat)
    stage.hand_approve(session=session, membership=gm_seat, target=player_seat)
    response = _client(gm).get("/gm/campaigns/event/?log=moderation")
    types = [e.type for e in response.context["cl"].result_list]
    assert sorted(types) == ["HandApproved", "HandRaised"]


def test_the_campaign_form_pins_a_usable_mission_version_only(campaign, gm, other_gm):
    from missions.services import mission_install

    mine, _ = mission_install(source=private_mission_source("mine-op", "Mine"), user=gm, owner=gm)
    theirs, _ = mission_install(
        source=private_mission_source("their-op", "Theirs"), user=other_gm, owner=other_gm
    )
    client = _client(gm)
    url = f"/gm/campaigns/campaign/{campaign.pk}/change/"
    field = client.get(url).context["adminform"].form.fields["mission"]
    assert mine in field.queryset and theirs not in field.queryset
    form = {"name": campaign.name, "personality": campaign.personality_id, "mission": theirs.pk}
    form |= {"memberships-TOTAL_FORMS": "0", "memberships-INITIAL_FORMS": "0"}
    response = client.post(url, form)
    assert response.status_code == 200 and "mission" in response.context["adminform"].form.errors
    response = client.post(url, {**form, "mission": mine.pk})
    assert response.status_code == 302
    campaign.refresh_from_db()
    assert (campaign.mission_slug, campaign.mission_hash) == ("mine-op", mine.content_hash)


def test_an_archived_campaign_is_read_only_until_unarchived(campaign, gm):
    client = _client(gm)
    _action(client, "campaigns/campaign/", "archive", [campaign.pk])
    campaign.refresh_from_db()
    assert campaign.archived
    url = f"/gm/campaigns/campaign/{campaign.pk}/change/"
    assert client.get(url).status_code == 200  # viewable
    form = {"name": "Renamed", "memberships-TOTAL_FORMS": "0", "memberships-INITIAL_FORMS": "0"}
    assert client.post(url, form).status_code == 403
    _action(client, "campaigns/campaign/", "open_session", [campaign.pk])
    assert not PlaySession.objects.filter(campaign=campaign).exists()
    _action(client, "campaigns/campaign/", "unarchive", [campaign.pk])
    campaign.refresh_from_db()
    assert not campaign.archived and campaign.name == "Vesper Run"
