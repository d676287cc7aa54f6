"""The GM's opening narration (issue 13, part 5): when a session opens, or a mission starts in
one, the GM opens the scene — once, from a job, durable across crashes, visible to everyone."""

from __future__ import annotations

import random

import pytest

from campaigns import selectors, services
from campaigns.models import Event
from gtw_site import jobs
from gtw_site.providers import ProviderError
from missions.services import mission_install
from narrative import engine, opening, turns
from narrative.llm import registry
from narrative.llm.base import StreamEnd, TextDelta
from narrative.llm.offline.opening import write_opening
from tests.narrative.engine_helpers import OPENER


def openings(session):
    return list(Event.objects.filter(session=session, type="Opening").order_by("seq"))


@pytest.fixture
def open_session(campaign, characters, gm, django_capture_on_commit_callbacks):
    """Open a session as the GM's request does, running what a commit runs (the inline task)."""

    def run():
        membership = selectors.membership_get(viewer=gm, campaign_id=campaign.pk)
        with django_capture_on_commit_callbacks(execute=True):
            return services.session_open(membership=membership)

    return run


def test_opening_a_session_narrates_one_opening_with_the_mission_scene_objective_and_party(open_session):
    session = open_session()
    [event] = openings(session)
    opened = Event.objects.get(session=session, type="SessionOpened")
    assert event.payload["of_seq"] == opened.seq == event.payload["action_seq"]
    assert event.idempotency_key == f"opening:{opened.seq}"
    assert event.audience is None  # the whole table reads it
    text = event.payload["text"]
    session.refresh_from_db()
    assert session.state["mission"]["title"] in text
    assert session.state["scene"]["name"] in text
    assert "Kira Vance" in text and "Ossian" in text  # who is present
    objective = engine.active_objective(engine.mission_view(session.state), session.state)
    assert objective.rstrip(".").lower() in text.lower()
    assert text.rstrip().endswith("?")  # the table's turn
    assert event.payload["provider"] == "offline"


def test_the_opening_is_written_once_whatever_reruns_it(open_session):
    """Retries, a second worker and the recovery paths all find it written."""
    session = open_session()
    [first] = openings(session)
    of_seq = first.payload["of_seq"]
    assert opening.run_opening(session.pk, of_seq) == first.seq
    assert opening.write(session.pk, of_seq) == first.seq
    assert opening.missing_opening(session.pk) is None
    assert opening.resume_all_openings() == 0
    opening.check_openings(session.pk)
    assert [e.pk for e in openings(session)] == [first.pk]


def test_a_second_worker_leaves_it_to_the_one_holding_the_lock(session):
    """Two workers picking up the same opening: the one that finds the session's opening lock
    taken (held here by another connection, in a thread) returns at once and writes nothing."""
    import threading

    from django.db import connection

    of_seq = opening.missing_opening(session.pk)
    assert of_seq == 1
    held, release = threading.Event(), threading.Event()

    def other_worker():
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_lock(%s, %s)", [opening.LOCK_NAMESPACE, session.pk])
                held.set()
                release.wait(10)
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [opening.LOCK_NAMESPACE, session.pk])
        finally:
            connection.close()

    thread = threading.Thread(target=other_worker)
    thread.start()
    try:
        assert held.wait(10)
        assert opening.run_opening(session.pk, of_seq) is None
        assert openings(session) == []
    finally:
        release.set()
        thread.join(10)
    assert opening.run_opening(session.pk, of_seq) is not None
    assert len(openings(session)) == 1


def test_the_request_that_opens_a_session_only_queues_the_opening(
    campaign, characters, gm_client, monkeypatch, django_capture_on_commit_callbacks
):
    """Never narrated inside the HTTP request: a job is queued after the commit."""
    queued = []
    monkeypatch.setattr(
        opening.jobs, "enqueue_once", lambda name, func, *args, **kw: queued.append((func, args))
    )
    with django_capture_on_commit_callbacks(execute=True):
        r = gm_client.post(f"/campaigns/{campaign.pk}/sessions")
    assert r.status_code == 302
    session = campaign.sessions.get()
    assert openings(session) == []
    assert queued == [("narrative.opening.run_opening", (session.pk, 1))]


def test_a_crash_before_the_opening_is_recovered_by_the_next_action_or_the_restart(
    session, player, django_capture_on_commit_callbacks
):
    """The `session` fixture commits nothing (as if the worker died with the task in hand)."""
    assert openings(session) == []
    assert opening.resume_all_openings() == 1  # `gtw up`, inline in tests
    assert len(openings(session)) == 1
    assert opening.resume_all_openings() == 0


def test_the_resume_button_re_queues_a_lost_opening(session, gm, django_capture_on_commit_callbacks):
    membership = selectors.membership_get(viewer=gm, campaign_id=session.campaign_id)
    with django_capture_on_commit_callbacks(execute=True):
        services.session_resume(session=session, membership=membership)  # already active
    assert len(openings(session)) == 1


def test_no_late_opening_once_the_gm_has_narrated(session, player, django_capture_on_commit_callbacks):
    """A scene the table has already played gets no 'opening' appended after the fact."""
    turns.submit_action(session_id=session.pk, user=player, text="I look around", idempotency_key="a1")
    turns.run_pending_turns(session.pk)
    assert opening.missing_opening(session.pk) is None
    assert opening.run_opening(session.pk, 1) is None
    assert openings(session) == []


def test_a_new_mission_in_the_session_gets_its_own_opening(
    open_session, gm, django_capture_on_commit_callbacks
):
    session = open_session()
    mission_install(source=OPENER)
    with django_capture_on_commit_callbacks(execute=True):
        engine.mission_start(session=session, slug="opener", actor_id=gm.pk)
    _first, second = openings(session)
    started = Event.objects.get(session=session, type="MissionStarted")
    assert second.payload["of_seq"] == started.seq and second.payload["mission"] == "Opener"
    assert "Opener" in second.payload["text"]


def test_a_player_who_loads_the_page_later_sees_it_and_an_outsider_does_not(
    open_session, player_client, gm_client, outsider_client
):
    session = open_session()
    [event] = openings(session)
    page = player_client.get(f"/sessions/{session.pk}/play/").content.decode()
    assert f'id="ev-{event.seq}"' in page and 'class="entry opening"' in page
    assert event.payload["text"].split(".")[0] in page.replace("&#x27;", "'")
    assert 'class="entry opening"' in gm_client.get(f"/sessions/{session.pk}/play/").content.decode()
    assert outsider_client.get(f"/sessions/{session.pk}/play/").status_code == 404
    # The events API (catch-up) carries it too.
    r = player_client.get(f"/api/sessions/{session.pk}/events?after=0")
    assert r.status_code == 200
    assert "Opening" in [e["type"] for e in r.json()["events"]]


def test_the_opening_streams_deltas_keyed_by_its_event(open_session, monkeypatch):
    sent = []
    monkeypatch.setattr(opening.broadcast, "_send", lambda group, message: sent.append(message))
    session = open_session()
    [event] = openings(session)
    deltas = [m for m in sent if m["type"] == "session.delta"]
    assert deltas and {m["action_seq"] for m in deltas} == {event.payload["of_seq"]}
    assert "".join(m["text"] for m in deltas).strip() == event.payload["text"]


class ScriptedModel:
    """A remote narrator: streams what it is told, or fails."""

    name = "scripted"
    model = "scripted-1"

    def __init__(self, text: str | None):
        self.text = text
        self.requests = []

    def stream(self, request):
        self.requests.append(request)
        if self.text is None:
            raise ProviderError("down", retryable=False)
        for word in self.text.split(" "):
            yield TextDelta(word + " ")
        yield StreamEnd(stop_reason="stop")


def test_a_real_model_gets_the_opening_prompt_with_the_game_as_data(session, monkeypatch):
    model = ScriptedModel("The relay hums. What do you do?")
    monkeypatch.setattr(registry, "get", lambda role: model)
    seq = opening.run_opening(session.pk, 1)
    event = Event.objects.get(session=session, seq=seq)
    assert event.payload["text"] == "The relay hums. What do you do?"
    assert event.payload["provider"] == "scripted"
    [request] = model.requests
    system = request.messages[0].content
    assert "<<<DATA game" in system and "<<<DATA party" in system and "Kira Vance" in system
    assert session.state["scene"]["name"] in system
    assert request.tools == []


def test_a_failing_model_still_leaves_an_opening_from_the_offline_gm(session, monkeypatch):
    monkeypatch.setattr(registry, "get", lambda role: ScriptedModel(None))
    seq = opening.run_opening(session.pk, 1)
    event = Event.objects.get(session=session, seq=seq)
    assert event.payload["provider"] == "offline" and "Kira Vance" in event.payload["text"]


def test_a_stage_session_opens_with_the_same_narration(
    campaign, characters, gm, django_capture_on_commit_callbacks
):
    from campaigns.stage import services as stage_services

    membership = selectors.membership_get(viewer=gm, campaign_id=campaign.pk)
    with django_capture_on_commit_callbacks(execute=True):
        stage = stage_services.stage_open(membership=membership, title="Town hall")
    assert len(openings(stage)) == 1


def test_an_ended_session_is_not_opened_late(session, gm):
    services.session_end(
        session=session, membership=selectors.membership_get(viewer=gm, campaign_id=session.campaign_id)
    )
    assert opening.missing_opening(session.pk) is None
    assert opening.run_opening(session.pk, 1) is None


# ---- the offline writer (pure) --------------------------------------------------------------

CONTEXT = {
    "mission": {"title": "The Vesper Relay", "summary": "A relay went dark. Find out why."},
    "scene": {"name": "Docking Ring C", "description": "Frost on the clamps. A door hangs open."},
    "objective": "Get aboard the relay",
    "party": [{"name": "Kira Vance", "archetype": "Netrunner"}, {"name": "Ossian", "archetype": "Envoy"}],
    "npcs": [{"name": "Sister Ameline", "role": "a stranded pilgrim"}],
    "personality": {"tone": "grim"},
}


@pytest.mark.parametrize("tone", ["grim", "wry", "heroic", "whimsical", "unknown"])
def test_the_offline_opening_says_what_matters_in_the_personality_tone(tone):
    text = write_opening({**CONTEXT, "personality": {"tone": tone}}, random.Random(1))
    for part in ("The Vesper Relay", "Docking Ring C", "Frost on the clamps", "get aboard the relay"):
        assert part in text
    assert "Kira Vance (netrunner) and Ossian (envoy)" in text
    assert "Sister Ameline (a stranded pilgrim)" in text
    assert text.endswith("?") and "{" not in text and ".." not in text


def test_the_offline_opening_is_deterministic_and_tolerates_missing_pieces():
    assert write_opening(CONTEXT, random.Random(7)) == write_opening(CONTEXT, random.Random(7))
    bare = write_opening({}, random.Random(7))
    assert bare.endswith("?") and "None" not in bare and "{" not in bare
    junk = write_opening({"mission": "x", "party": [None, {"name": 5}], "scene": []}, random.Random(3))
    assert junk.endswith("?")


def test_jobs_name_is_per_opening(session, monkeypatch):
    names = []
    monkeypatch.setattr(jobs, "enqueue_once", lambda name, *a, **kw: names.append(name))
    opening.schedule(session.pk, 4)
    assert names == [f"opening-{session.pk}-4"]


def test_gtw_up_recovers_openings_beside_the_turns(monkeypatch):
    """The supervisor's resume round (at start, then every RESUME_EVERY_S) covers openings too,
    and a failure there costs the turns nothing."""
    import io

    import narrative.turns
    from gtw_site.cli import up

    calls = []
    monkeypatch.setattr(opening, "resume_all_openings", lambda: calls.append("openings") or 1)
    monkeypatch.setattr(narrative.turns, "resume_all_pending", lambda: calls.append("turns") or 2)
    assert up._resume_turns(io.StringIO()) == 2
    assert calls == ["openings", "turns"]

    def down():
        raise ConnectionError("database is restarting")

    monkeypatch.setattr(opening, "resume_all_openings", down)
    assert up._resume_turns(io.StringIO()) == 2


def test_live_pages_get_the_preview_then_the_opening_that_replaces_it(
    open_session, gm, monkeypatch, django_capture_on_commit_callbacks
):
    """A mission started mid-session: its MissionStarted entry opens the preview (live updates
    only), the deltas fill it, the Opening entry deletes it; the same render on catch-up."""
    sent = []
    monkeypatch.setattr(opening.broadcast, "_send", lambda group, message: sent.append(message))
    session = open_session()
    mission_install(source=OPENER)
    sent.clear()
    with django_capture_on_commit_callbacks(execute=True):
        engine.mission_start(session=session, slug="opener", actor_id=gm.pk)
    started = Event.objects.get(session=session, type="MissionStarted")
    [_first, last] = openings(session)
    html = {m["seq"]: m["html"] for m in sent if m["type"] == "session.event"}
    assert f'id="stream-{started.seq}"' in html[started.seq]
    assert any(m["type"] == "session.delta" and m["action_seq"] == started.seq for m in sent)
    assert 'class="entry opening"' in html[last.seq]
    assert f'<div id="stream-{started.seq}" hx-swap-oob="delete">' in html[last.seq]
    # The page itself (full render) shows the opening and no stale preview.
    page = opening.broadcast.render_event(last)
    assert "entry opening" in page


def test_a_page_loaded_while_the_opening_is_written_has_its_preview(
    campaign, characters, gm, player_client, monkeypatch, django_capture_on_commit_callbacks
):
    """The GM's browser lands on the play page as the opening job starts streaming: the page
    renders the preview its deltas fill (no "no target" for them), and drops it once written."""
    monkeypatch.setattr(opening.jobs, "enqueue_once", lambda *args, **kwargs: None)  # not yet run
    membership = selectors.membership_get(viewer=gm, campaign_id=campaign.pk)
    with django_capture_on_commit_callbacks(execute=True):
        session = services.session_open(membership=membership)
    of_seq = opening.missing_opening(session.pk)
    assert of_seq is not None
    page = player_client.get(f"/sessions/{session.pk}/play/").content.decode()
    assert f'id="stream-{of_seq}-text"' in page
    opening.run_opening(session.pk, of_seq)
    page = player_client.get(f"/sessions/{session.pk}/play/").content.decode()
    assert f'id="stream-{of_seq}"' not in page and 'class="entry opening"' in page
