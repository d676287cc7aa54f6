"""Issue 23, piece by piece: a turn runner that loses PostgreSQL reconnects and re-runs its turn
exactly once; the task queue's pusher rides out Redis being away; `gtw up`'s supervisor sweeps
the moment a service is back; a socket says "reconnecting" and heals; a frame sent during an
outage is refused clearly and accepted when sent again with its key; /healthz names what is down.

(The real faults — SIGKILLed embedded servers under a private `gtw up` — are in
test_recovery_faults.py.)
"""

from __future__ import annotations

import io
import json

import pytest
import redis
from django.db import connection

from campaigns.models import Event, PlaySession
from gtw_site import reconnect
from gtw_site.cli import supervisor
from gtw_site.cli.supervisor import Supervisor

# ---- the supervisor: an immediate sweep when a service is back ---------------------------------


def _supervise(services, probe, ticks: int):
    """`ticks` rounds of the supervisor's loop; the rounds in which it swept."""
    out = io.StringIO()
    calls: list[int] = []
    rounds: list[int] = []

    def counted():
        rounds.append(1)
        return services()

    def resume() -> int:
        calls.append(len(rounds))
        return 1

    supervisor.supervise(
        Supervisor(out), counted, resume, lambda: len(rounds) > ticks, tick=0, resume_every=3600, probe=probe
    )
    return calls, out.getvalue()


def test_the_supervisor_sweeps_as_soon_as_a_service_is_reachable_again():
    states = iter(
        [
            {"db": True, "redis": True},
            {"db": False, "redis": True},
            {"db": False, "redis": True},
            {"db": True, "redis": False},
            {"db": True, "redis": True},
            {"db": True, "redis": True},
        ]
    )
    calls, out = _supervise(lambda: False, lambda: next(states), ticks=6)
    # One sweep when PostgreSQL is back (tick 4), one when Redis is (tick 5); none otherwise
    # (the periodic backstop is an hour away here).
    assert calls == [4, 5], (calls, out)
    assert "PostgreSQL is unreachable; waiting for it." in out
    assert "PostgreSQL is back." in out and "Redis is unreachable" in out and "Redis is back." in out
    assert "re-running unanswered turns in 1 session(s)" in out


def test_the_supervisor_sweeps_when_it_restarted_an_embedded_service():
    restarted = iter([False, True, False, False])
    calls, _ = _supervise(lambda: next(restarted), None, ticks=3)
    assert calls == [2]


def test_after_redis_comes_back_the_queued_flags_go_before_the_sweep(settings):
    """A restarted Redis may have lost the queued runner a flag vouches for, or brought a stale
    flag back from its snapshot: the sweep after it drops them, or the session's next action
    would wait out the flag's TTL unanswered (gtw_site.jobs.enqueue_once)."""
    from django.core.cache import cache

    from gtw_site import jobs
    from gtw_site.cli import up

    redis_back = {"flag": False}
    probe = up._Probe(settings, redis_back)
    live = settings.REDIS_URL
    settings.REDIS_URL = "unix:///nonexistent/gtw-test-redis.sock"
    assert probe()["redis"] is False
    probe.redis, settings.REDIS_URL = None, live
    assert probe()["redis"] and redis_back["flag"], "down, then up: flagged for the sweep"
    probe.close()

    cache.set(jobs._queued_key("turns-424242"), 1, timeout=30)
    up._forget_queued_flags()
    assert cache.get(jobs._queued_key("turns-424242")) is None


# ---- the task queue's pusher and Redis ---------------------------------------------------------


def test_the_broker_waits_out_redis_instead_of_raising(monkeypatch):
    monkeypatch.setattr(reconnect, "BROKER_RETRY_MAX_S", 0.01)
    monkeypatch.setattr(reconnect.ResilientRedisBroker, "_delay", 0.001)
    broker = reconnect.ResilientRedisBroker(list_key="h23-recovery-test")
    live = broker.connection
    try:
        broker.connection = redis.from_url("unix:///nonexistent/gtw-test-redis.sock")
        assert broker.dequeue() is None and broker.dequeue() is None  # down: nothing, no raise
        assert broker._down_since is not None
        broker.connection = live
        broker.enqueue("a task")
        assert broker.dequeue() == [(None, b"a task")]
        assert broker._down_since is None, "back: the next outage is reported again"

        def refused(*args, **kwargs):
            raise redis.ResponseError("WRONGTYPE")

        monkeypatch.setattr(live, "blpop", refused)
        with pytest.raises(redis.ResponseError):  # not an outage: a real error still surfaces
            broker.dequeue()
    finally:
        live.delete(broker.list_key)


def test_service_down_names_the_service():
    from django.db import OperationalError

    assert reconnect.service_down(redis.ConnectionError("gone")) == "redis"
    try:
        try:
            raise OSError("socket")
        except OSError as exc:
            raise OperationalError("connection refused") from exc
    except OperationalError as exc:
        assert reconnect.service_down(exc) == "db"
    assert reconnect.service_down(ValueError("no")) is None


# ---- PostgreSQL: a dropped connection vs a query error -------------------------------------------


def _drop_our_connection():
    """What PostgreSQL dying looks like from here: the server ends our session."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(pg_backend_pid())")


def _unreachable(monkeypatch):
    """New connections go to a server that is not there (the live one stays open)."""
    from django.db import connections

    wrapper = connections["default"]  # the wrapper itself, not the thread-local proxy
    real = wrapper.get_connection_params
    monkeypatch.setattr(wrapper, "get_connection_params", lambda: {**real(), "host": "/nonexistent-pg"})


@pytest.mark.django_db(transaction=True)
def test_a_dropped_connection_is_lost_and_comes_back_a_query_error_is_not(monkeypatch):
    from django.db import DataError, OperationalError

    with pytest.raises(DataError) as query_error, connection.cursor() as cursor:
        cursor.execute("SELECT 1 / 0")
    assert not reconnect.database_lost(query_error.value)

    with pytest.raises(OperationalError) as lost:
        _drop_our_connection()
    assert reconnect.database_lost(lost.value)
    _unreachable(monkeypatch)  # still down: the wait gives up after its timeout
    assert not reconnect.wait_for_database(0.3, first=0.05, most=0.1)
    monkeypatch.undo()  # back
    assert reconnect.wait_for_database(10)
    with connection.cursor() as cursor:
        cursor.execute("SELECT 41 + 1")
        assert cursor.fetchone() == (42,)


# ---- the turn runner: the worker that lost the database re-runs its turn ---------------------


@pytest.fixture
def sent(monkeypatch):
    """Every group message sent (broadcast._send), still sent."""
    from realtime import broadcast

    messages: list[dict] = []
    real = broadcast._send

    def spy(group, message):
        messages.append(message)
        real(group, message)

    monkeypatch.setattr(broadcast, "_send", spy)
    return messages


def _answers(session, action_seq: int) -> list[str]:
    return [
        t
        for t, p in Event.objects.filter(session=session).values_list("type", "payload")
        if (p or {}).get("action_seq") == action_seq
    ]


@pytest.mark.django_db(transaction=True)
def test_a_turn_that_loses_the_database_is_rerun_exactly_once_or_left_pending(
    session, player, monkeypatch, sent
):
    from django.db import OperationalError

    from narrative.turns import party, runner

    # 1. The database goes away just before the Narration commits, after the roll did, and is
    #    back at once: the runner reconnects and re-runs the turn, reusing the roll.
    real = party.engine.append_engine
    calls = {"n": 0, "drop": 1}

    def dies(*args, **kwargs):
        calls["n"] += 1
        if calls["drop"] > 0:
            calls["drop"] -= 1
            _drop_our_connection()
        return real(*args, **kwargs)

    monkeypatch.setattr(party.engine, "append_engine", dies)
    action = party.submit_action(
        session_id=session.pk, user=player, text="I hack the door panel", idempotency_key="lost-db"
    ).events[0]  # the turn runs inline here (tests run tasks synchronously)
    assert calls["n"] >= 2, "the turn ran again after the reconnect"
    answer = _answers(session, action.seq)
    assert answer.count("DiceRolled") == 1, "the committed roll is reused, not rolled again"
    assert answer.count("Narration") == 1 and "TurnFailed" not in answer, answer
    assert not PlaySession.objects.get(pk=session.pk).state.get("pending")
    resets = [m for m in sent if m["type"] == "session.stream_reset"]
    assert resets and resets[0]["action_seq"] == action.seq and "lost the connection" in resets[0]["notice"]

    # 2. The database stays away past GTW_RECONNECT_WAIT_S: the runner gives up, and the turn is
    #    left pending (never failed) for the supervisor's sweep, which answers it once it is back.
    reconnect_now = reconnect.wait_for_database

    def never_back(timeout, **kwargs):
        reconnect_now(10)  # the test itself still needs its connection afterwards
        return False

    calls["drop"] = 10**6
    monkeypatch.setattr(runner.reconnect, "wait_for_database", never_back)
    monkeypatch.setattr(party, "schedule_turns", lambda session_id, query=None: None)
    action = party.submit_action(
        session_id=session.pk, user=player, text="I hack the door panel", idempotency_key="gone-db"
    ).events[0]
    with pytest.raises(Exception) as raised:
        party.run_pending_turns(session.pk)
    assert any(isinstance(e, OperationalError) for e in reconnect._chain(raised.value))
    assert PlaySession.objects.get(pk=session.pk).state["pending"] == [action.seq], "kept for the sweep"
    assert not [t for t in _answers(session, action.seq) if t in ("TurnFailed", "Narration")]

    monkeypatch.undo()  # back
    assert party.run_pending_turns(session.pk) == 1
    assert _answers(session, action.seq).count("Narration") == 1


# ---- the socket: refused clearly during an outage, accepted on the resend --------------------


def _flaky_submit(monkeypatch, errors: list[Exception]):
    """The next len(errors) submissions fail with these; later ones go through."""
    from narrative import turns

    real = turns.submit_action

    def submit(**kwargs):
        if errors:
            raise errors.pop(0)
        return real(**kwargs)

    monkeypatch.setattr(turns, "submit_action", submit)


@pytest.mark.django_db(transaction=True)
def test_actions_and_sockets_through_an_outage(
    session, gm, player, outsider, player_client, outsider_client, monkeypatch, settings
):
    """A frame sent while PostgreSQL or Redis is down is refused clearly and accepted once when
    sent again with its key; so is an API call (503); a socket says "reconnecting" while Redis is
    away, then "live", and gets what was committed meanwhile. (One test: the session fixture is
    the costly part.)"""
    from asgiref.sync import sync_to_async
    from django.db import OperationalError

    from narrative import turns
    from narrative.turns import party
    from realtime import presence
    from tests.realtime.sockets import append_silently, communicator, frames_until, has, run

    def page_html(frames) -> str:
        return "".join(f["html"] for f in frames if f["type"] == "html")

    for where in (turns, party):  # no turns run here: this is about the frames
        monkeypatch.setattr(where, "schedule_turns", lambda session_id, query=None: None)
    errors: list[Exception] = []
    _flaky_submit(monkeypatch, errors)

    async def player_script():  # a script's JSON socket: told to resend with the same key
        comm = communicator(session.pk, player)
        assert (await comm.connect())[0]
        outages = [
            ("outage-1", "message broker", redis.ConnectionError("gone")),
            ("outage-2", "database", OperationalError("gone")),
        ]
        for key, what, outage in outages:
            errors.append(outage)
            frame = json.dumps({"type": "action", "text": f"I hold the line {key}", "idempotency_key": key})
            await comm.send_to(text_data=frame)
            while (error := json.loads(await comm.receive_from(timeout=10)))["type"] in ("event", "presence"):
                pass  # the previous action's broadcast
            assert error["type"] == "error" and error["code"] == "unavailable", error
            assert what in error["message"] and "nothing was recorded" in error["message"]
            assert "same idempotency_key" in error["message"]
            seqs = []
            for _ in range(2):  # the resend, then a duplicate of it
                await comm.send_to(text_data=frame)
                while (ack := json.loads(await comm.receive_from(timeout=20)))["type"] != "ack":
                    assert ack["type"] != "error", ack
                assert ack["idempotency_key"] == key
                seqs.append(ack["seq"])
            assert seqs[0] == seqs[1], "the duplicate is the same action"
        await comm.disconnect()

    async def gm_page():  # the play page: a notice its script resends on (static/live.js)
        comm = communicator(session.pk, gm, query="")
        assert (await comm.connect())[0]
        await comm.send_to(text_data=json.dumps({"type": "hello", "last_seq": 0}))
        await comm.send_to(
            text_data=json.dumps({"type": "action", "text": "I duck", "idempotency_key": "p-1"})
        )
        frames = await frames_until(comm, lambda fs: 'data-code="unavailable"' in page_html(fs))
        assert "sent again automatically" in page_html(frames)
        await comm.send_to(text_data='{"type": "ping"}')  # the socket stayed up
        assert await comm.receive_from(timeout=5)
        await comm.disconnect()

    async def outsider_socket():
        comm = communicator(session.pk, outsider)
        assert (await comm.connect())[0]
        assert await comm.receive_output(timeout=5) == {"type": "websocket.close", "code": 4403}
        await comm.disconnect()

    settings.GTW_PRESENCE_HEARTBEAT_S = 0.2
    monkeypatch.setattr("realtime.consumers.LINK_RETRY_S", 0.1)
    real_beat = presence.heartbeat
    away = {"on": False}

    async def beat(*args, **kwargs):
        if away["on"]:
            raise redis.ConnectionError("Redis is restarting")
        return await real_beat(*args, **kwargs)

    monkeypatch.setattr(presence, "heartbeat", beat)

    async def redis_away():
        comm = communicator(session.pk, player)
        assert (await comm.connect())[0]
        await frames_until(comm, has("presence"))
        away["on"] = True
        await frames_until(comm, has("status", state="reconnecting"))
        missed = await sync_to_async(append_silently)(session.pk, 2)  # their broadcast is lost
        away["on"] = False
        frames = await frames_until(
            comm, lambda fs: has("status", state="live")(fs) and has("WorldUpdated", seq=missed[-1].seq)(fs)
        )
        seqs = [f["seq"] for f in frames if f["type"] == "event"]
        assert seqs == [e.seq for e in missed], "healed from the store, once each, in order"
        await comm.disconnect()

    run(player_script)
    errors.append(redis.ConnectionError("gone again"))
    run(gm_page)
    run(outsider_socket)
    run(redis_away)

    # The API: a clear 503 while Redis is away (nothing recorded), 202 once it is back; an
    # outsider is still told nothing (404).
    real_check = party.rate_check
    down = {"on": True}

    def rate_check(**kwargs):
        if down["on"]:
            raise redis.ConnectionError("Redis is restarting")
        return real_check(**kwargs)

    monkeypatch.setattr(party, "rate_check", rate_check)
    body = {"text": "I wait it out", "idempotency_key": "api-1"}
    url = f"/api/sessions/{session.pk}/actions"
    refused = player_client.post(url, body, content_type="application/json")
    assert refused.status_code == 503 and refused["Retry-After"]
    assert b"nothing was recorded" in refused.content and b"Traceback" not in refused.content
    assert outsider_client.post(url, body, content_type="application/json").status_code == 404
    down["on"] = False
    assert player_client.post(url, body, content_type="application/json").status_code == 202
    assert Event.objects.filter(session=session, type="Action", payload__text="I wait it out").count() == 1
    for key in ("outage-1", "outage-2"):
        actions = Event.objects.filter(session=session, type="Action", payload__text=f"I hold the line {key}")
        assert actions.count() == 1, "recorded once, by the resend"
    assert not Event.objects.filter(session=session, type="Action", payload__text="I duck").exists()
    # Only an outage is answered "unavailable": a bug is not dressed up as one.
    assert reconnect.service_down(KeyError("bug")) is None


# ---- /healthz ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_healthz_names_the_database_when_it_is_down(client, monkeypatch):
    _unreachable(monkeypatch)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"db": "down: OperationalError", "pgvector": "unknown", "redis": "ok"}


@pytest.mark.django_db
def test_healthz_names_both_when_both_are_down(client, monkeypatch, settings):
    _unreachable(monkeypatch)
    settings.REDIS_URL = "unix:///nonexistent/redis.sock"
    body = client.get("/healthz").json()
    assert body["db"].startswith("down") and body["redis"].startswith("down")


# ---- `gtw bench recovery`'s docs/BENCHMARKS.md rows ----------------------------------------------


def test_the_recovery_bench_numbers_its_runs_and_touches_only_its_section():
    from gtw_site.bench import recovery

    other = "# Benchmarks\n\n## gtw bench turn\n\nhow\n\n| a |\n|---|\n| 1 |\n"
    figures = recovery.Figures(pg_rerun_s=0.5, pg_recovery_s=2.0, redis_recovery_s=None, answers={"2": 1})
    assert recovery._next_run_number(other) == 1
    text = recovery.update_doc(other, recovery.table_row(1, figures, "m", "cmd"))
    assert text.startswith(other.rstrip()) and "| 1 | 0.50 / 2.00 | — |" in text
    assert recovery._next_run_number(text) == 2
    text = recovery.update_doc(text, recovery.table_row(2, figures, "m", "cmd"))
    assert recovery._next_run_number(text) == 3 and text.count("| 1 | 0.50 / 2.00") == 1
    assert "| yes |" in text, "one Narration per action and no failed turn: exactly once"
    figures.answers["6"] = 2
    assert not recovery.exactly_once(figures)
