"""Stage mode: seats and moderation, rate limits, beat windows that batch actions into ONE GM
summary, squad debriefs only a squad sees, fireteams and alliances — services and the HTTP API,
with the personas (GM = moderator, players, a spectator, an outsider)."""

from __future__ import annotations

import json
import pydoc
from datetime import timedelta

import pytest

from campaigns import errors, selectors
from campaigns import events as event_store
from campaigns.errors import Conflict, Forbidden, Invalid, NotFound
from campaigns.models import Event, Fireteam, FireteamMember, PlaySession, StageSeat
from campaigns.stage import selectors as stage_selectors
from campaigns.stage import services as stage_services
from campaigns.stage import windows as stage_windows
from narrative import turns
from tests.campaigns.stage_helpers import _act, _m, _speaker, _team, _types, post
from tests.conftest import _client


def patch(client, url, data):
    return client.patch(url, json.dumps(data), content_type="application/json")


@pytest.fixture(autouse=True)
def fresh_rate_limits():
    """Rate-limit counters live in the shared Redis; start every test from zero."""
    from gtw_site.ratelimit import rate_reset

    rate_reset()
    yield
    rate_reset()


# ---- opening, seats, moderation ----------------------------------------------------------------


def test_only_the_gm_opens_a_stage(campaign, gm, player, outsider):
    with pytest.raises(Forbidden):
        stage_services.stage_open(membership=_m(player, campaign))
    with pytest.raises(NotFound):
        _m(outsider, campaign)
    stage = stage_services.stage_open(membership=_m(gm, campaign), title="Town hall")
    assert stage.kind == PlaySession.Kind.STAGE and stage.number == 1
    assert _types(stage) == ["SessionOpened"]
    assert StageSeat.objects.get(session=stage).role == StageSeat.Role.MODERATOR  # the GM moderates


def test_raise_approve_mute_remove_are_events_and_seats(stage, gm, player):
    c = stage.campaign
    stage_services.hand_raise(session=stage, membership=_m(player, c))
    stage_services.hand_raise(session=stage, membership=_m(player, c))  # keeps its place, no new event
    roster = stage_selectors.stage_roster(stage)
    assert [q["username"] for q in roster["queue"]] == [player.username]
    stage_services.hand_approve(session=stage, membership=_m(gm, c), target=_m(player, c))
    stage_services.speaker_mute(session=stage, membership=_m(gm, c), target=_m(player, c))
    seat = StageSeat.objects.get(session=stage, membership__user=player)
    assert seat.role == "speaker" and seat.muted and seat.hand_raised_at is None
    stage_services.speaker_mute(session=stage, membership=_m(gm, c), target=_m(player, c), muted=False)
    stage_services.speaker_remove(session=stage, membership=_m(gm, c), target=_m(player, c))
    assert StageSeat.objects.get(pk=seat.pk).role == "audience"
    assert _types(stage)[1:] == [
        "HandRaised",
        "HandApproved",
        "SpeakerMuted",
        "SpeakerUnmuted",
        "SpeakerRemoved",
    ]
    approved = Event.objects.get(session=stage, type="HandApproved")
    assert approved.payload["username"] == player.username and approved.payload["name"] == "Kira Vance"
    assert approved.payload["by"] == gm.username and approved.actor_id == gm.pk


def test_deny_clears_the_hand_and_a_promoted_moderator_moderates(stage, gm, player, player2):
    c = stage.campaign
    stage_services.hand_raise(session=stage, membership=_m(player2, c))
    with pytest.raises(Forbidden, match="Only a stage moderator"):
        stage_services.hand_deny(session=stage, membership=_m(player, c), target=_m(player2, c))
    with pytest.raises(Forbidden, match="game master"):
        stage_services.moderator_set(session=stage, membership=_m(player2, c), target=_m(player, c))
    stage_services.moderator_set(session=stage, membership=_m(gm, c), target=_m(player, c))
    stage_services.hand_deny(session=stage, membership=_m(player, c), target=_m(player2, c))
    assert stage_selectors.stage_roster(stage)["queue"] == []
    with pytest.raises(Conflict, match="has not raised a hand"):
        stage_services.hand_approve(session=stage, membership=_m(player, c), target=_m(player2, c))


def test_spectators_cannot_raise_a_hand_or_act(stage, gm, spectator):
    c = stage.campaign
    with pytest.raises(Forbidden, match="Spectators watch the stage"):
        stage_services.hand_raise(session=stage, membership=_m(spectator, c))
    stage_windows.window_open(session=stage, membership=_m(gm, c))
    with pytest.raises(Forbidden, match="Spectators"):
        _act(stage, spectator, "I wave from the balcony", "s1")
    with pytest.raises(Invalid, match="Spectators watch; they can't join a fireteam"):
        stage_services.team_assign(
            session=stage, membership=_m(gm, c), target=_m(spectator, c), fireteam_id=_team(c, "Red").pk
        )


def test_who_may_act_in_a_window(stage, gm, player, player2):
    c = stage.campaign
    _speaker(stage, gm, player)
    with pytest.raises(Conflict, match="No beat window is open"):
        _act(stage, player, "I hack the door", "a0")
    stage_windows.window_open(session=stage, membership=_m(gm, c))
    with pytest.raises(Forbidden, match="in the audience"):
        _act(stage, player2, "I hack the door", "b0")
    _team(c, "Blue", player2)  # a fireteam member acts without being on stage
    assert _act(stage, player2, "I hack the door", "b1").events[0].payload["team"]["name"] == "Blue"
    stage_services.speaker_mute(session=stage, membership=_m(gm, c), target=_m(player, c))
    with pytest.raises(Forbidden, match="muted"):
        _act(stage, player, "I shout", "a1")
    with pytest.raises(Forbidden, match="Only a stage moderator"):
        stage_windows.window_close(session=stage, membership=_m(player2, c))
    with pytest.raises(Conflict, match="already open"):
        stage_windows.window_open(session=stage, membership=_m(gm, c))


# ---- rate limits -------------------------------------------------------------------------------


def test_a_flood_of_raised_hands_is_refused_for_that_user_only(stage, player, player2, player_client):
    url = f"/api/stage/{stage.pk}"
    for _ in range(4):
        assert post(player_client, f"{url}/raise-hand").status_code == 200
        assert post(player_client, f"{url}/lower-hand").status_code == 200
    r = post(player_client, f"{url}/raise-hand")
    assert r.status_code == 429, r.content
    assert r.json() == {
        "error": "rate_limited",
        "detail": "Slow down: at most 4 raised hands per 60 seconds.",
    }
    assert post(_client(player2), f"{url}/raise-hand").status_code == 200  # someone else: unaffected


def test_a_flood_of_actions_is_refused_for_that_user_only(stage, gm, player, player2):
    c = stage.campaign
    _speaker(stage, gm, player)
    _speaker(stage, gm, player2)
    stage_windows.window_open(session=stage, membership=_m(gm, c))
    for i in range(8):
        _act(stage, player, f"I fire shot {i}", f"flood-{i}")
    with pytest.raises(errors.RateLimited, match=r"Slow down: at most 8 actions per 30 seconds\."):
        _act(stage, player, "I fire again", "flood-9")
    assert _act(stage, player2, "I take cover", "calm-1").events[0].type == "Action"
    window = stage_selectors.current_window(PlaySession.objects.get(pk=stage.pk))
    assert len(window["actions"]) == 9  # the refused one never reached the log


# ---- batching ------------------------------------------------------------------------------------


@pytest.fixture
def squads(stage, gm, player, player2):
    c = stage.campaign
    return _team(c, "Red Squad", player), _team(c, "Blue Squad", player2)


def test_a_window_batches_actions_into_one_summary_grouped_by_team(
    stage, gm, player, player2, squads, commit
):
    c = stage.campaign
    stage_windows.window_open(session=stage, membership=_m(gm, c))
    hack = _act(stage, player, "I hack the door panel", "r1").events[0]
    climb = _act(stage, player2, "I climb the ventilation shaft", "b1").events[0]
    look = _act(stage, gm, "I look around the hangar", "g1").events[0]  # the GM moderates and may act
    stage.refresh_from_db()
    assert stage.state["pending"] == []  # batched: never in the per-action turn queue
    assert stage.state["stage"]["window"]["actions"] == [hack.seq, climb.seq, look.seq]
    assert Event.objects.filter(session=stage, type="Narration").count() == 0  # nobody answered yet

    commit(stage_windows.window_close, session=stage, membership=_m(gm, c))

    narrations = list(Event.objects.filter(session=stage, type="Narration"))
    assert len(narrations) == 1
    summary = narrations[0]
    assert summary.payload["batch"] == 1 and summary.payload["action_seqs"] == [hack.seq, climb.seq, look.seq]
    assert [t["team"] for t in summary.payload["teams"]] == ["Blue Squad", "Red Squad", None]
    text = summary.payload["text"]
    assert "Red Squad:" in text and "Blue Squad:" in text and "On stage:" in text
    assert text.index("Blue Squad:") < text.index("Red Squad:") < text.index("On stage:")
    assert "Kira" in text and "Rook" in text
    # Per-action checks still run and are shown: one DiceRolled for each risky action.
    dice_events = {e.payload["action_seq"]: e for e in Event.objects.filter(session=stage, type="DiceRolled")}
    assert set(dice_events) == {hack.seq, climb.seq}
    assert dice_events[hack.seq].payload["skill"] == "hacking" and dice_events[hack.seq].seed
    assert sorted(summary.payload["tool_events"]) == sorted(e.seq for e in dice_events.values())
    closed = Event.objects.get(session=stage, type="BatchWindowClosed")
    assert closed.payload["actions"] == [hack.seq, climb.seq, look.seq] and closed.seq < summary.seq
    stage.refresh_from_db()
    assert stage.state["stage"] == {"window": None, "windows": 1, "unsummarised": []}
    assert stage.state == event_store.replay_from_scratch(stage.pk)  # the reducer replays it exactly
    # A second runner (a duplicate task, a restart) finds nothing left to do.
    assert turns.run_pending_batches(stage.pk) == 0


def test_squad_summaries_are_only_visible_to_that_squad(
    stage, gm, player, player2, spectator, squads, commit
):
    c = stage.campaign
    stage_windows.window_open(session=stage, membership=_m(gm, c))
    _act(stage, player, "I hack the door panel", "r1")
    _act(stage, player2, "I climb the ventilation shaft", "b1")
    commit(stage_windows.window_close, session=stage, membership=_m(gm, c))

    summaries = {e.payload["fireteam"]: e for e in Event.objects.filter(session=stage, type="SquadSummary")}
    assert set(summaries) == {"Red Squad", "Blue Squad"}
    assert summaries["Red Squad"].audience == [player.pk]
    assert "Red Squad, beat 1 debrief" in summaries["Red Squad"].payload["text"]

    def seen(user):
        return {
            e.payload["fireteam"]
            for e in selectors.session_events(viewer=user, session_id=stage.pk)
            if e.type == "SquadSummary"
        }

    assert seen(player) == {"Red Squad"}
    assert seen(player2) == {"Blue Squad"}  # a member of another team never sees Red's debrief
    assert seen(spectator) == set()
    assert seen(gm) == {"Red Squad", "Blue Squad"}
    # Everyone sees the one summary.
    assert all(
        any(e.type == "Narration" for e in selectors.session_events(viewer=u, session_id=stage.pk))
        for u in (player, player2, spectator)
    )


def test_a_timed_window_closes_itself(stage, gm, player, commit, monkeypatch):
    from django.utils import timezone
    from django_q.models import Schedule

    c = stage.campaign
    _speaker(stage, gm, player)
    opened = stage_windows.window_open(session=stage, membership=_m(gm, c), seconds=30)[0]
    closes_at = opened.payload["closes_at"]
    schedule = Schedule.objects.get(name=f"stage-{stage.pk}-window-1")
    assert schedule.func == "campaigns.stage.windows.window_close_due"
    assert schedule.schedule_type == Schedule.ONCE
    # The worker resolves the name with pydoc.locate; timers scheduled before stage mode became a
    # package name the old path, which must still find the same function.
    for name in (schedule.func, "campaigns.stage.window_close_due"):
        assert pydoc.locate(name) is stage_windows.window_close_due
    assert schedule.next_run.isoformat() == closes_at
    _act(stage, player, "I hack the door panel", "t1")
    assert stage_windows.window_close_due(stage.pk, 1) is False  # not yet due

    later = timezone.now() + timedelta(seconds=31)
    monkeypatch.setattr(stage_services, "now", lambda: later)
    assert commit(stage_windows.window_close_due, session_id=stage.pk, n=1) is True  # what the Schedule runs
    closed = Event.objects.get(session=stage, type="BatchWindowClosed")
    assert closed.payload["reason"] == "timer" and closed.actor_id is None
    assert not Schedule.objects.filter(name=f"stage-{stage.pk}-window-1").exists()
    assert Event.objects.filter(session=stage, type="Narration", payload__batch=1).count() == 1
    assert commit(stage_windows.window_close_due, session_id=stage.pk, n=1) is False  # once only


def test_a_late_action_closes_a_due_window_lazily_and_is_refused(stage, gm, player, commit, monkeypatch):
    from django.utils import timezone

    c = stage.campaign
    _speaker(stage, gm, player)
    stage_windows.window_open(session=stage, membership=_m(gm, c), seconds=5)
    later = timezone.now() + timedelta(seconds=6)
    monkeypatch.setattr(stage_services, "now", lambda: later)
    with pytest.raises(Conflict, match="has just closed"):
        commit(_act, stage=stage, user=player, text="I sneak in late", key="late")
    assert _types(stage).count("BatchWindowClosed") == 1
    assert Event.objects.filter(session=stage, type="Action").count() == 0


def test_party_sessions_keep_their_per_action_turns(session, player, commit):
    """The turns.py hook only routes stage sessions: a party action still gets its own turn."""
    commit(_act, stage=session, user=player, text="I hack the airlock panel", key="p1")
    narration = Event.objects.get(session=session, type="Narration")
    assert narration.payload["action_seq"] == 2 and "batch" not in narration.payload


# ---- the HTTP API ------------------------------------------------------------------------------


MODERATOR_CALLS = [
    ("approve", {}),
    ("deny", {}),
    ("mute", {"muted": True}),
    ("remove", {}),
    ("assign-team", {"fireteam": None}),
]


@pytest.mark.parametrize("path,extra", MODERATOR_CALLS)
def test_moderation_endpoints_moderator_vs_player_vs_outsider(
    stage, gm, player, player2, gm_client, player_client, outsider_client, path, extra
):
    url = f"/api/stage/{stage.pk}/{path}"
    body = {"username": player2.username, **extra}
    r = post(outsider_client, url, body)
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    r = post(player_client, url, body)
    assert r.status_code == 403 and r.json()["detail"] == "Only a stage moderator can do that."
    if path in ("approve", "deny"):
        stage_services.hand_raise(session=stage, membership=_m(player2, stage.campaign))
    if path in ("mute", "remove"):
        _speaker(stage, gm, player2)
    r = post(gm_client, url, body)
    assert r.status_code == 200, r.content
    assert r.json()["username"] == player2.username


def test_api_window_actions_and_roster(stage, gm, player, gm_client, player_client, outsider_client, squads):
    base = f"/api/stage/{stage.pk}"
    assert outsider_client.get(f"{base}/roster").status_code == 404
    assert post(player_client, f"{base}/window", {"action": "open"}).status_code == 403
    r = post(gm_client, f"{base}/window", {"action": "open", "seconds": 90})
    assert r.status_code == 200 and r.json()["window"] == 1 and r.json()["seconds"] == 90
    assert post(gm_client, f"{base}/window", {"action": "open", "seconds": 0}).status_code == 422
    r = post(player_client, f"{base}/actions", {"text": "I hack the door panel", "idempotency_key": "api-1"})
    assert r.status_code == 202 and r.json()["replayed"] is False
    again = post(
        player_client, f"{base}/actions", {"text": "I hack the door panel", "idempotency_key": "api-1"}
    )
    assert again.json() == {"seq": r.json()["seq"], "replayed": True}
    assert post(outsider_client, f"{base}/actions", {"text": "hi", "idempotency_key": "x"}).status_code == 404
    roster = player_client.get(f"{base}/roster").json()
    assert roster["window"]["n"] == 1 and roster["window"]["actions"] == 1
    assert {t["name"] for t in roster["teams"]} == {"Red Squad", "Blue Squad"}
    assert roster["seats"][player.username]["team"] == squads[0].pk
    r = post(gm_client, f"{base}/window", {"action": "close"})
    assert (
        r.status_code == 200 and r.json()["type"] == "BatchWindowClosed" and r.json()["reason"] == "moderator"
    )
    assert post(gm_client, f"{base}/window", {"action": "close"}).status_code == 409


def test_stage_endpoints_refuse_a_party_session(session, gm_client):
    r = gm_client.get(f"/api/stage/{session.pk}/roster")
    assert r.status_code == 404 and "party session" in r.json()["detail"]


def test_open_a_stage_through_the_api(campaign, gm_client, player_client, outsider_client):
    assert post(outsider_client, "/api/stage", {"campaign": campaign.pk}).status_code == 404
    assert post(player_client, "/api/stage", {"campaign": campaign.pk}).status_code == 403
    r = post(gm_client, "/api/stage", {"campaign": campaign.pk, "title": "Town hall"})
    assert r.status_code == 201 and r.json()["kind"] == "stage"


def test_fireteam_crud_and_permissions(campaign, gm, player, gm_client, player_client, outsider_client):
    assert outsider_client.get(f"/api/fireteams?campaign={campaign.pk}").status_code == 404
    r = post(player_client, "/api/fireteams", {"campaign": campaign.pk, "name": "Red Squad"})
    assert r.status_code == 403 and "game master" in r.json()["detail"]
    r = post(gm_client, "/api/fireteams", {"campaign": campaign.pk, "name": "Red Squad"})
    assert r.status_code == 201, r.content
    team = r.json()
    assert team["voice_room_id"].startswith(f"gtw-{campaign.pk}-red-squad-") and team["voice_label"]
    assert (
        post(gm_client, "/api/fireteams", {"campaign": campaign.pk, "name": "Red Squad"}).status_code == 409
    )
    url = f"/api/fireteams/{team['id']}"
    assert patch(outsider_client, url, {"name": "X"}).status_code == 404
    assert patch(player_client, url, {"name": "X"}).status_code == 403
    r = patch(gm_client, url, {"name": "Crimson", "voice_label": "Crimson net"})
    assert r.json()["name"] == "Crimson" and r.json()["voice_label"] == "Crimson net"
    r = post(gm_client, f"{url}/members", {"username": player.username})
    assert r.status_code == 201 and r.json()["members"] == [player.username]
    assert post(outsider_client, f"{url}/members", {"username": player.username}).status_code == 404
    listed = player_client.get(f"/api/fireteams?campaign={campaign.pk}").json()
    assert [(t["name"], t["members"]) for t in listed] == [("Crimson", [player.username])]
    # One team per member per campaign: joining another moves them.
    other = post(gm_client, "/api/fireteams", {"campaign": campaign.pk, "name": "Blue"}).json()
    post(gm_client, f"/api/fireteams/{other['id']}/members", {"username": player.username})
    assert FireteamMember.objects.get(membership__user=player).fireteam_id == other["id"]
    r = gm_client.delete(f"/api/fireteams/{other['id']}/members/{player.username}")
    assert r.status_code == 200 and r.json()["members"] == []
    assert gm_client.delete(f"/api/fireteams/{other['id']}/members/{player.username}").status_code == 409
    assert player_client.delete(url).status_code == 403
    assert gm_client.delete(url).status_code == 204
    assert not Fireteam.objects.filter(pk=team["id"]).exists()


def test_alliances_and_reputation(campaign, gm, player, gm_client, player_client, outsider_client):
    assert (
        post(player_client, "/api/alliances", {"campaign": campaign.pk, "name": "Free Haulers"}).status_code
        == 403
    )
    r = post(gm_client, "/api/alliances", {"campaign": campaign.pk, "name": "Free Haulers"})
    assert r.status_code == 201 and r.json()["reputation"] == 0
    alliance = r.json()["id"]
    team = post(
        gm_client, "/api/fireteams", {"campaign": campaign.pk, "name": "Red", "alliance": alliance}
    ).json()
    assert team["alliance"] == alliance
    rep = f"/api/alliances/{alliance}/reputation"
    assert post(outsider_client, rep, {"delta": 5}).status_code == 404
    assert post(player_client, rep, {"delta": 5}).status_code == 403
    assert post(gm_client, rep, {"delta": 15}).json()["reputation"] == 15
    assert post(gm_client, rep, {"delta": -500}).json()["reputation"] == -100  # clamped
    assert post(gm_client, rep, {"delta": 1, "value": 3}).status_code == 422
    r = post(gm_client, f"/api/alliances/{alliance}/members", {"username": player.username})
    assert (
        r.status_code == 201
        and r.json()["members"] == [player.username]
        and r.json()["fireteams"] == [team["id"]]
    )
    listed = player_client.get(f"/api/alliances?campaign={campaign.pk}").json()
    assert [(a["name"], a["reputation"]) for a in listed] == [("Free Haulers", -100)]
    assert outsider_client.get(f"/api/alliances?campaign={campaign.pk}").status_code == 404
    # Taking a team out of its alliance: an explicit null.
    assert patch(gm_client, f"/api/fireteams/{team['id']}", {"alliance": None}).json()["alliance"] is None


# ---- pages -----------------------------------------------------------------------------------------


def test_stage_page_per_persona(stage, gm, player, spectator, gm_client, player_client, outsider_client):
    assert outsider_client.get(f"/sessions/{stage.pk}/stage/").status_code == 404
    html = gm_client.get(f"/sessions/{stage.pk}/stage/").content.decode()
    assert 'ws-connect="/ws/stage/' in html and 'id="window-open-form"' in html and "Moderator tools" in html
    html = player_client.get(f"/sessions/{stage.pk}/stage/").content.decode()
    assert "Raise hand" in html and 'id="window-open-form"' not in html and 'id="action-text"' not in html
    html = _client(spectator).get(f"/sessions/{stage.pk}/stage/").content.decode()
    assert "read-only" in html and "Raise hand" not in html and 'id="action-text"' not in html


def test_campaign_page_manages_fireteams_and_alliances(campaign, gm, player, gm_client, player_client):
    url = f"/campaigns/{campaign.pk}/"
    assert "Open a stage" in gm_client.get(url).content.decode()
    r = gm_client.post(f"/campaigns/{campaign.pk}/fireteams", {"name": "Red Squad"})
    assert r.status_code == 302 and r["Location"].endswith("#teams")
    team = Fireteam.objects.get(campaign=campaign)
    gm_client.post(f"/fireteams/{team.pk}/members", {"member": _m(player, campaign).pk})
    gm_client.post(f"/campaigns/{campaign.pk}/alliances", {"name": "Free Haulers"})
    html = player_client.get(url).content.decode()
    assert "Red Squad" in html and "Free Haulers" in html and player.username in html
    assert "Create fireteam" not in html  # players see the teams, not the controls
    r = player_client.post(f"/campaigns/{campaign.pk}/fireteams", {"name": "Sneaky"}, follow=True)
    assert "Only the campaign&#x27;s game master" in r.content.decode()
    gm_client.post(f"/fireteams/{team.pk}/delete")
    assert not Fireteam.objects.filter(pk=team.pk).exists()
    r = gm_client.post(f"/campaigns/{campaign.pk}/stage", {"title": "Town hall"})
    stage = PlaySession.objects.get(campaign=campaign, kind="stage")
    assert r.status_code == 302 and r["Location"] == f"/sessions/{stage.pk}/stage/"


# ---- the offline batch writer (pure) -----------------------------------------------------------------


def test_offline_summary_names_every_team_and_stays_deterministic():
    from narrative.llm.offline import batch as offline_batch

    def action(seq, name, text, outcome=None):
        return {
            "seq": seq,
            "actor": name.lower(),
            "name": name,
            "text": text,
            "check": outcome and {"outcome": outcome},
        }

    groups = [
        {
            "team": "Red",
            "fireteam_id": 1,
            "actions": [action(i, f"Red{i}", "I hack the door", "success") for i in range(6)],
        },
        {"team": None, "fireteam_id": None, "actions": [action(9, "Solo", "I keep watch on the corridor")]},
    ]
    context = {"batch": {"window": 3, "groups": groups}, "personality": {"tone": "grim"}}
    text = offline_batch.summarise(context, seed=7)
    assert text == offline_batch.summarise(context, seed=7)
    assert "Red: Red0" in text and "2 more from Red back them up." in text
    assert "On stage: Solo keeps watch on the corridor." in text
    assert "Of 6 risky moves, 6 land and 0 fall short." in text


def test_a_beat_whose_summary_never_ran_is_answered_at_the_next_window(stage, gm, player, commit):
    """A worker dying between the close and the summary loses nothing: the window stays
    unsummarised in the state, and the next window open queues its batch turn."""
    c = stage.campaign
    _speaker(stage, gm, player)
    stage_windows.window_open(session=stage, membership=_m(gm, c))
    _act(stage, player, "I hack the door panel", "c1")
    stage_windows.window_close(session=stage, membership=_m(gm, c))  # no commit hooks: the task never ran
    stage.refresh_from_db()
    assert [w["n"] for w in stage.state["stage"]["unsummarised"]] == [1]
    commit(stage_windows.window_open, session=stage, membership=_m(gm, c))
    assert Event.objects.filter(session=stage, type="Narration", payload__batch=1).count() == 1
    stage.refresh_from_db()
    assert stage.state["stage"]["unsummarised"] == [] and stage.state["stage"]["window"]["n"] == 2


def test_a_failing_narrator_still_summarises_the_beat(stage, gm, player, commit, monkeypatch):
    from gtw_site.providers import ProviderError
    from narrative.llm import registry

    class Down:
        name, model = "openai", "gpt-test"

        def stream(self, request):
            raise ProviderError("upstream 503", retryable=True, provider="openai")
            yield  # a generator

    monkeypatch.setattr(registry, "get", lambda role: Down())
    c = stage.campaign
    _speaker(stage, gm, player)
    stage_windows.window_open(session=stage, membership=_m(gm, c))
    _act(stage, player, "I hack the door panel", "f1")
    commit(stage_windows.window_close, session=stage, membership=_m(gm, c))
    summary = Event.objects.get(session=stage, type="Narration")
    assert summary.payload["provider"] == "offline-fallback" and "Kira" in summary.payload["text"]
