"""Realtime tier: the stage socket through real channels-redis, with committed data."""

from __future__ import annotations

import asyncio
import json

import pytest
from asgiref.sync import async_to_sync
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser

from realtime.routing import websocket_urlpatterns
from tests.conftest import _user
from tests.realtime.sockets import frames_until

pytestmark = pytest.mark.django_db(transaction=True)
app = URLRouter(websocket_urlpatterns)


@pytest.fixture(autouse=True)
def fresh_channel_layer():
    """A layer instance per test: channels-redis binds receive locks to the creating loop."""
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest.fixture(autouse=True)
def fresh_rate_limits():
    from gtw_site.ratelimit import rate_reset

    rate_reset()


@pytest.fixture
def spectator(db):
    return _user("spectator")


@pytest.fixture
def player2(db):
    return _user("rook")


@pytest.fixture
def stage(campaign, characters, gm, player, spectator, player2):
    from campaigns import selectors, services
    from campaigns.stage import services as stage_services

    gm_m = selectors.membership_get(viewer=gm, campaign_id=campaign.pk)
    for user, role in ((spectator, "spectator"), (player2, "player")):
        invite = services.invite_create(membership=gm_m, role=role)
        services.invite_accept(code=invite.code, user=user)
    return stage_services.stage_open(membership=gm_m, title="Town hall")


def communicator(session_id, user, query="format=json"):
    comm = WebsocketCommunicator(app, f"/ws/stage/{session_id}/?{query}")
    comm.scope["user"] = user
    return comm


async def receive_until(comm, predicate, wait=20):
    frames = []
    while True:
        raw = await comm.receive_from(timeout=wait)
        frame = json.loads(raw) if raw.startswith("{") else {"type": "html", "html": raw}
        frames.append(frame)
        if predicate(frame):
            return frames


def is_event(kind, **payload):
    def check(frame):
        if frame.get("type") != "event" or frame["event"]["type"] != kind:
            return False
        return all(frame["event"]["payload"].get(k) == v for k, v in payload.items())

    return check


def narrated_and_debriefed(fireteam):
    """The window's Narration and, for a member of `fireteam`, its squad debrief, in either order."""

    def done(frames):
        narrated = any(is_event("Narration", batch=1)(f) for f in frames)
        debriefed = fireteam is None or any(
            f["type"] == "squad" and f["fireteam"] == fireteam for f in frames
        )
        return narrated and debriefed

    return done


def roster_where(fn):
    return lambda f: f.get("type") == "roster" and fn(f["roster"])


async def connected(session_id, user, query="format=json"):
    comm = communicator(session_id, user, query)
    ok, _ = await comm.connect()
    assert ok
    if "json" in query:
        await receive_until(comm, lambda f: f["type"] == "roster")
    return comm


async def send(comm, **frame):
    await comm.send_to(text_data=json.dumps(frame))


def run(coro_fn):
    async_to_sync(coro_fn)()


@pytest.mark.parametrize("who", ["outsider", "anonymous", "missing-session"])
def test_non_members_are_closed_with_4403(stage, outsider, who):
    async def go():
        user = AnonymousUser() if who == "anonymous" else outsider
        comm = communicator(999999 if who == "missing-session" else stage.pk, user)
        connected_, _ = await comm.connect()
        assert connected_
        assert await comm.receive_output(timeout=5) == {"type": "websocket.close", "code": 4403}
        await comm.disconnect()

    run(go)


def test_a_party_session_is_not_a_stage(session, player):
    async def go():
        comm = communicator(session.pk, player)
        await comm.connect()
        assert await comm.receive_output(timeout=5) == {"type": "websocket.close", "code": 4404}
        await comm.disconnect()

    run(go)


def test_spectators_get_a_read_only_stream(stage, gm, spectator):
    async def go():
        watcher = await connected(stage.pk, spectator)
        for frame, code in (
            ({"type": "raise_hand"}, "forbidden"),
            ({"type": "action", "text": "I wave", "idempotency_key": "s1"}, "forbidden"),
            ({"type": "approve", "username": gm.username}, "forbidden"),
            ({"type": "window_open"}, "forbidden"),
        ):
            await send(watcher, **frame)
            error = (await receive_until(watcher, lambda f: f["type"] == "error"))[-1]
            assert error["code"] == code and error["message"], frame
        assert "Spectators" in error["message"] or "moderator" in error["message"]
        moderator = await connected(stage.pk, gm)
        await send(moderator, type="window_open", seconds="")
        await receive_until(watcher, is_event("BatchWindowOpened", window=1))  # still watching live
        for comm in (watcher, moderator):
            await comm.disconnect()

    run(go)


def test_bad_frames_get_error_frames(stage, player):
    async def go():
        comm = await connected(stage.pk, player)
        for raw, code in (
            ("{nope", "malformed"),
            (json.dumps({"type": "launch"}), "unknown_type"),
            (json.dumps({"type": "approve"}), "invalid"),
            (json.dumps({"type": "window_open", "seconds": 0}), "invalid"),
            (json.dumps({"type": "raise_hand", "extra": 1}), "invalid"),
            (json.dumps({"type": "action", "text": "x" * 17_000, "idempotency_key": "k"}), "frame_too_large"),
            (json.dumps({"type": "window_close"}), "forbidden"),
            (json.dumps({"type": "action", "text": "I act", "idempotency_key": "k"}), "forbidden"),
        ):
            await comm.send_to(text_data=raw)
            error = (await receive_until(comm, lambda f: f["type"] == "error"))[-1]
            assert error["code"] == code, (raw[:40], error)
        await send(comm, type="ping")
        await receive_until(comm, lambda f: f["type"] == "pong")
        await comm.disconnect()

    run(go)


def test_moderator_frames_move_the_roster_for_everyone_and_a_window_batches(
    stage, gm, player, player2, spectator
):
    from campaigns import teams
    from campaigns.models import Membership

    gm_m = Membership.objects.get(campaign=stage.campaign, user=gm)
    red = teams.fireteam_create(membership=gm_m, name="Red Squad")
    blue = teams.fireteam_create(membership=gm_m, name="Blue Squad")

    async def go():
        moderator = await connected(stage.pk, gm)
        speaker = await connected(stage.pk, player)
        rook = await connected(stage.pk, player2)
        watcher = await connected(stage.pk, spectator)
        everyone = (moderator, speaker, rook, watcher)

        await send(speaker, type="raise_hand")
        for comm in everyone:  # the roster broadcast reaches every stage socket
            await receive_until(
                comm, roster_where(lambda r: [q["username"] for q in r["queue"]] == [player.username])
            )
        await send(moderator, type="approve", username=player.username)
        await receive_until(speaker, is_event("HandApproved", username=player.username))
        await receive_until(
            watcher, roster_where(lambda r: [s["username"] for s in r["speakers"]] == [player.username])
        )
        for who, team in ((player.username, red.pk), (player2.username, blue.pk)):
            await send(moderator, type="assign_team", username=who, fireteam=str(team))
            await receive_until(moderator, is_event("TeamAssigned", username=who))
        await receive_until(rook, roster_where(lambda r: r["seats"][player2.username]["team"] == blue.pk))

        await send(moderator, type="window_open", seconds="")
        await receive_until(speaker, roster_where(lambda r: r["window"] and r["window"]["n"] == 1))
        await send(speaker, type="action", text="I hack the door panel", idempotency_key="w1")
        ack = (await receive_until(speaker, lambda f: f["type"] == "ack"))[-1]
        await send(rook, type="action", text="I climb the ventilation shaft", idempotency_key="w2")
        await receive_until(rook, lambda f: f["type"] == "ack")
        await send(moderator, type="window_close")
        summaries = {}
        squads = {}
        # The squad debrief: Red's goes to Red (log + team channel), never to Blue or the spectator.
        # It comes through the team's group, the Narration through the session's (the hub), so
        # either may arrive first: wait for both.
        debriefs = {"kira": "Red Squad", "rook": "Blue Squad"}
        for name, comm in (("gm", moderator), ("kira", speaker), ("rook", rook), ("spectator", watcher)):
            frames = await frames_until(comm, narrated_and_debriefed(debriefs.get(name)))
            narration = next(f for f in frames if is_event("Narration", batch=1)(f))
            summaries[name] = narration["event"]["payload"]["text"]
            assert ack["seq"] in narration["event"]["payload"]["action_seqs"]
            squads[name] = frames
        assert len(set(summaries.values())) == 1 and "Red Squad:" in summaries["kira"]
        await send(watcher, type="ping")
        rest = await receive_until(watcher, lambda f: f["type"] == "pong")
        seen_by_spectator = [f for f in squads["spectator"] + rest if f["type"] == "squad"]
        seen_by_spectator += [f for f in squads["spectator"] + rest if is_event("SquadSummary")(f)]
        assert seen_by_spectator == []
        await send(rook, type="ping")
        rest = await receive_until(rook, lambda f: f["type"] == "pong")
        assert not [f for f in rest if f.get("type") == "squad" and f["fireteam"] == "Red Squad"]
        for comm in everyone:
            await comm.disconnect()

    run(go)


def test_html_mode_renders_the_stage_partials(stage, gm, player):
    async def go():
        comm = communicator(stage.pk, player, query="")
        await comm.connect()
        await send(comm, type="hello", last_seq=0, box="0:0")
        frames = await receive_until(comm, lambda f: 'id="me"' in f.get("html", ""))
        html = "".join(f.get("html", "") for f in frames)
        assert 'id="roster"' in html and 'id="window-panel"' in html and "Raise hand" in html
        assert "Only a stage moderator" not in html and 'value="approve"' not in html
        await send(comm, type="raise_hand")
        # The roster (the reply to this socket) and the HandRaised log entry (a group broadcast)
        # travel separate paths, so either may come first: wait for both.
        seen = []

        def both(frame):
            seen.append(frame.get("html", ""))
            html = "".join(seen)
            return "Lower hand" in html and "raised a hand" in html

        await receive_until(comm, both)
        await comm.disconnect()

    run(go)


def test_a_timed_window_closes_when_a_countdown_asks(stage, gm, spectator):
    """Clients send window_check when their countdown reaches zero; anyone may ask (even a
    spectator), and the server closes only a window whose time is up."""

    async def go():
        moderator = await connected(stage.pk, gm)
        watcher = await connected(stage.pk, spectator)
        await send(moderator, type="window_open", seconds=1)
        await receive_until(watcher, is_event("BatchWindowOpened", window=1, seconds=1))
        await send(watcher, type="window_check")  # too early: nothing happens
        await receive_until(watcher, lambda f: f["type"] == "ok")
        await asyncio.sleep(1.1)
        await send(watcher, type="window_check")
        frames = await receive_until(watcher, is_event("Narration", batch=1), wait=20)
        closed = [f["event"] for f in frames if is_event("BatchWindowClosed")(f)]
        assert len(closed) == 1 and closed[0]["payload"]["reason"] == "timer"
        for comm in (moderator, watcher):
            await comm.disconnect()

    run(go)
