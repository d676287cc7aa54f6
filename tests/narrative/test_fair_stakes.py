"""Fair stakes on a real session (issue 13): clocks tick only on turns that took time, the table is
warned before a clock fills, a mission's end is a panel for everyone with the GM's choices (retry,
next mission, free play), the header shows the open objective, statuses last their own
character's turns."""

from __future__ import annotations

import json
import random
import re

import pytest

from campaigns.models import Character, Event
from missions.services import mission_install
from narrative import engine, tools, turns
from narrative.llm.base import ToolCall
from narrative.llm.offline.context import read_context
from narrative.llm.offline.writer import Writer, fill_slots, narrate_outcome
from narrative.turns.context import game_context
from realtime import broadcast
from tests.narrative.engine_helpers import assert_replays

DOOM = """mission doom-core "Doom Core" biome derelict-station
summary "A core about to blow."
scene hall "Hall" { description "A humming hall." }
objective fix "Fix the core" {
  complete when check tech succeeded
  reward { xp 30; item medpatch }
}
clock doom "Doom" size 3 { tick 1 when check failed }
fail boom "The core blows and takes the hall with it." when clock doom full
reward on complete { xp 100; item breach-charge }
complete when objective fix complete
"""


@pytest.fixture
def act(django_capture_on_commit_callbacks):
    """Submit an action and run its turn, as a real commit would."""
    n = iter(range(1, 1000))

    def submit(session, user, text):
        with django_capture_on_commit_callbacks(execute=True):
            return turns.submit_action(
                session_id=session.pk, user=user, text=text, idempotency_key=f"fs{next(n)}"
            )

    return submit


@pytest.fixture
def sent(monkeypatch):
    messages = []
    monkeypatch.setattr(broadcast, "_send", lambda group, message: messages.append(message))
    return messages


@pytest.fixture
def override(django_capture_on_commit_callbacks):
    """A GM override, its commit's listeners run (the broadcast of every committed event)."""

    def change(session, gm, **fields):
        with django_capture_on_commit_callbacks(execute=True):
            return engine.gm_override(session=session, actor_id=gm.pk, change=fields)

    return change


def _state(session):
    session.refresh_from_db()
    return session.state


def _mission_state(session):
    return _state(session)["mission"]["state"]


def _doom(session, gm):
    mission_install(source=DOOM, filename="doom.mission")
    engine.mission_start(session=session, slug="doom-core", actor_id=gm.pk)
    session.refresh_from_db()


def _status(session, user, effect, action_seq):
    session.refresh_from_db()
    character = Character.objects.get(campaign=session.campaign, owner=user)
    args = {"character": character.name, "effect": effect, "reason": "test"}
    return tools.dispatch(
        session=session,
        campaign_id=session.campaign_id,
        action_seq=action_seq,
        actor_id=user.pk,
        character={"name": character.name, "attributes": character.attributes},
        call=ToolCall(id="s1", name="status_apply", arguments=args, raw_arguments=json.dumps(args)),
        round_no=0,
        index=0,
    )


# ---- 1. clocks tick on turns that take time, never on questions or talk ------------------------


def test_a_question_takes_no_time_and_a_risky_action_does(session, player, act):
    """Regression: Vesper Relay's reactor ticked on "What are our objectives right now?"."""
    act(session, player, "What are our objectives right now?")
    narration = Event.objects.filter(session=session, type="Narration").latest("seq")
    assert narration.payload["took_time"] is False
    assert _mission_state(session)["turns"] == 0
    act(session, player, "I hack the airlock panel")
    narration = Event.objects.filter(session=session, type="Narration").latest("seq")
    assert narration.payload["took_time"] is True
    assert _mission_state(session)["turns"] == 1
    assert_replays(session)


def test_a_question_in_the_reactor_room_leaves_the_reactor_alone(session, player, gm, act, override):
    override(session, gm, objective="dock", status="complete")
    override(session, gm, clock="reactor", value=5)
    for text in ("What are our objectives right now?", "Who lit these candles?", "Where is the reactor?"):
        act(session, player, text)
    assert _mission_state(session)["clocks"]["reactor"] == 5
    assert not Event.objects.filter(session=session, type="ClockTicked", seq__gt=session.version).exists()


def test_turn_took_time_follows_the_roll_and_the_kind_of_action():
    assert engine.turn_took_time(text="What made these marks?", rolled=False) is False
    assert engine.turn_took_time(text="I look around the docking ring", rolled=False) is False
    assert engine.turn_took_time(text="What made these marks?", rolled=True) is True
    assert engine.turn_took_time(text="I walk over to the airlock", rolled=False) is True


# ---- 2. the warning, and no "within reach" on the turn that may lose it -----------------------


def test_the_table_is_warned_one_step_before_a_clock_fills(
    session, gm, player, player_client, sent, override
):
    override(session, gm, clock="reactor", value=7)
    warning = Event.objects.get(session=session, type="ClockWarning")
    assert warning.audience is None  # everyone sees it
    assert warning.payload["value"] == 7 and warning.payload["size"] == 8
    assert "The reactor breaches and Vesper Relay tears itself apart." in warning.payload["stakes"]
    page = player_client.get(f"/sessions/{session.pk}/play/").content.decode()
    assert "one more and it fills" in page and 'class="clock warning"' in page
    frames = " ".join(m["html"] for m in sent if m.get("type") == "session.event")
    assert "one more and it fills" in frames
    assert engine.mission_view(_state(session))["at_risk"] is True


def _outcomes(at_risk: bool, n: int = 400) -> list[str]:
    raw = {
        "action": {"text": "I reroute auxiliary power into the relay core", "actor": "kira"},
        "objective": "Restore power to the relay core",
        "mission": {"at_risk": at_risk, "objectives": [], "npcs": []},
        "personality": {"verbosity": 3},
    }
    texts = []
    for seed in range(n):
        c = read_context(raw, [])
        rng = random.Random(seed)
        w = Writer(rng, c, fill_slots(c, read_intent_for(c), rng))
        texts.append(narrate_outcome(w, c, read_intent_for(c), "success", 5))
    return texts


def read_intent_for(c):
    from narrative.llm.offline.context import read_intent

    return read_intent(c)


def test_the_narrator_never_says_within_reach_while_the_mission_may_be_lost():
    """Regression: the turn that filled the reactor narrated "the objective … suddenly looks
    within reach"."""
    assert any("within reach" in t for t in _outcomes(at_risk=False))  # the line exists
    assert not any("within reach" in t for t in _outcomes(at_risk=True))


# ---- 3. the mission's end, and the GM's choices ------------------------------------------------


def test_a_lost_mission_is_a_panel_for_everyone_with_the_gms_choices(
    session, gm, player, gm_client, player_client, sent, act, override
):
    _doom(session, gm)
    sent.clear()
    override(session, gm, clock="doom", value=3)
    assert _mission_state(session)["status"] == "failed"
    frames = [m["html"] for m in sent if m.get("type") == "session.event"]
    assert any("mission-end-panel" in html and "The core blows" in html for html in frames)
    player_page = player_client.get(f"/sessions/{session.pk}/play/").content.decode()
    assert "Mission failed" in player_page and "The core blows and takes the hall with it." in player_page
    assert "mission-end-choices" not in player_page  # the choices are the GM's
    gm_page = gm_client.get(f"/sessions/{session.pk}/play/").content.decode()
    assert 'id="mission-end-choices"' in gm_page
    for url in ("mission/retry", "mission/next", "mission/free-play"):
        assert f'action="/sessions/{session.pk}/{url}"' in gm_page
    # Nothing is open any more, and the header says what comes next.
    assert re.search(
        r'<span id="objective">none: the mission is lost, the GM chooses what\'s next</span>', gm_page
    )


def test_after_the_end_actions_are_not_part_of_the_lost_mission(session, gm, player, act, override):
    _doom(session, gm)
    override(session, gm, clock="doom", value=3)
    before = _mission_state(session)
    last = _state(session)["version"]
    for text in ("I hack the core console", "I smash the coolant valve", "What now?"):
        act(session, player, text)
    assert _mission_state(session) == before
    kinds = set(Event.objects.filter(session=session, seq__gt=last).values_list("type", flat=True))
    assert not kinds & {"ClockTicked", "ClockWarning", "MissionFailed", "ObjectiveCompleted", "ToolRefused"}
    context = game_context(session, _state(session))
    assert context["objective"] is None
    assert {o["status"] for o in context["mission"]["objectives"]} == {"unfinished"}


def test_a_completed_mission_shows_the_xp_and_loot_it_earned(session, gm, player_client, override):
    _doom(session, gm)
    override(session, gm, objective="fix", status="complete")
    view = engine.mission_view(_state(session))
    assert view["ending"]["outcome"] == "complete"
    assert view["earned"]["xp"] == 130
    assert {"item": "medpatch", "qty": 1} in view["earned"]["items"]
    assert {"item": "breach-charge", "qty": 1} in view["earned"]["items"]
    page = player_client.get(f"/sessions/{session.pk}/play/").content.decode()
    assert "Mission complete" in page and "130 XP" in page and "breach-charge \u00d71" in page
    assert_replays(session)


def test_the_gm_picks_free_play_retry_or_the_next_mission(session, gm, gm_client, sent, override):
    _doom(session, gm)
    override(session, gm, clock="doom", value=3)
    url = f"/api/sessions/{session.pk}/mission"
    body = gm_client.post(f"{url}/free-play").json()
    assert body["free_play"] is True and body["mission"] is None
    assert Event.objects.filter(session=session, type="FreePlayStarted").exists()
    page = gm_client.get(f"/sessions/{session.pk}/play/").content.decode()
    assert "Free play" in page and "mission-end-panel" not in page
    assert gm_client.post(f"{url}/free-play").status_code == 409  # already
    body = gm_client.post(f"{url}/retry").json()
    assert body["mission"]["mission"]["slug"] == "doom-core" and body["mission"]["status"] == "active"
    assert body["mission"]["clocks"][0]["value"] == 0 and body["free_play"] is False
    # doom-core is not the pack's: "next" is the pack's first mission, then the one after it.
    body = gm_client.post(f"{url}/next", data="{}", content_type="application/json").json()
    assert body["mission"]["mission"]["slug"] == "vesper-relay", body
    body = gm_client.post(f"{url}/next").json()
    assert body["mission"]["mission"]["slug"] == "rootbound-vault", body
    body = gm_client.post(
        f"{url}/next", data=json.dumps({"slug": "thule-descent"}), content_type="application/json"
    ).json()
    assert body["mission"]["mission"]["slug"] == "thule-descent"
    bad = gm_client.post(
        f"{url}/next", data=json.dumps({"slug": "doom-core"}), content_type="application/json"
    )
    assert bad.status_code == 422 and "pack" in bad.json()["detail"]
    assert_replays(session)


def test_only_the_gm_may_choose(session, gm, player_client, outsider_client):
    _doom(session, gm)
    version = _state(session)["version"]
    for path in ("retry", "next", "free-play"):
        api = f"/api/sessions/{session.pk}/mission/{path}"
        page = f"/sessions/{session.pk}/mission/{path}"
        assert player_client.post(api).status_code == 403
        assert outsider_client.post(api).status_code == 404
        assert player_client.post(page).status_code == 403
        assert outsider_client.post(page).status_code == 404
    assert _state(session)["version"] == version  # nothing happened


def test_the_gms_forms_redirect_back_to_the_play_page(session, gm, gm_client):
    _doom(session, gm)
    response = gm_client.post(f"/sessions/{session.pk}/mission/free-play")
    assert response.status_code == 302 and response["Location"] == f"/sessions/{session.pk}/play/"
    response = gm_client.post(f"/sessions/{session.pk}/mission/next", {"slug": "thule-descent"})
    assert response.status_code == 302
    assert _state(session)["mission"]["slug"] == "thule-descent"
    gm_client.post(f"/sessions/{session.pk}/mission/retry")
    assert _state(session)["mission"]["slug"] == "thule-descent"


# ---- 4. the header's objective ------------------------------------------------------------------


def test_the_header_shows_the_open_objective_never_a_completed_one(
    session, gm, player_client, sent, override
):
    """Regression: the header kept showing "Get aboard…" after it was done."""
    page = player_client.get(f"/sessions/{session.pk}/play/").content.decode()
    assert "Get aboard Vesper Relay through Docking Ring C" in page.split('id="objective">')[1][:80]
    override(session, gm, objective="dock", status="complete")
    page = player_client.get(f"/sessions/{session.pk}/play/").content.decode()
    assert page.split('id="objective">')[1].startswith("Restore power to the relay core")
    frames = " ".join(m["html"] for m in sent if m.get("type") == "session.event")
    assert '<span id="objective" hx-swap-oob="true">Restore power to the relay core</span>' in frames


# ---- 5. statuses last N of that character's own turns -------------------------------------------


def test_a_status_lasts_its_own_characters_turns_not_anyone_elses(session, gm, player, act):
    """Regression: "Shaken for 2 turns" ended after another player's action."""
    kira = Character.objects.get(campaign=session.campaign, owner=player)
    _status(session, player, "shaken", action_seq=999_999)

    def left():
        effects = _state(session)["statuses"].get(str(kira.pk), [])
        return effects[0]["duration"] if effects else 0

    assert left() == 2
    act(session, gm, "What do we know about this place?")
    act(session, gm, "Where does that passage lead?")
    assert left() == 2  # the GM's turns are not Kira's
    act(session, player, "What made these marks?")
    assert left() == 1
    act(session, gm, "Who built this ring?")
    assert left() == 1
    act(session, player, "How fresh are they?")
    assert left() == 0
    expired = Event.objects.get(session=session, type="StatusExpired")
    assert expired.payload["character_id"] == kira.pk
    assert_replays(session)


def test_a_status_applied_during_a_turn_starts_counting_on_the_next(session, player, act):
    kira = Character.objects.get(campaign=session.campaign, owner=player)
    session.refresh_from_db()
    # Applied during Kira's next action's turn (its seq comes after the StatusApplied event).
    _status(session, player, "shaken", action_seq=session.version + 2)
    act(session, player, "What made these marks?")
    assert _state(session)["statuses"][str(kira.pk)][0]["duration"] == 2
