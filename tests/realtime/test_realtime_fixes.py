"""Realtime fixes: crafted frames, catch-up paging, pre-hello holding, presence per socket kind,
the stage socket's join/read order, new seats, a retry's ordering and the stage page's checks."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import quote

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from campaigns.models import Event
from realtime.routing import websocket_urlpatterns
from tests.realtime.test_consumer import receive_until
from tests.realtime.test_stage_consumer import fresh_rate_limits, player2, spectator, stage  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)
app = URLRouter(websocket_urlpatterns)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def fresh_channel_layer():
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


def communicator(session_id, user, query="format=json", path="sessions"):
    comm = WebsocketCommunicator(app, f"/ws/{path}/{session_id}/?{query}")
    comm.scope["user"] = user
    return comm


async def drain(comm, secs):
    """Every frame until none comes for `secs`."""
    frames = []
    while not await comm.receive_nothing(timeout=secs):
        raw = await comm.receive_from()
        frames.append(json.loads(raw) if raw.startswith("{") else {"type": "html", "html": raw})
    return frames


def run(coro_fn):
    async_to_sync(coro_fn)()


def kinds(frames):
    return [f["event"]["type"] if f["type"] == "event" else f["type"] for f in frames]


def event_seqs(frames):
    return [f["seq"] for f in frames if f["type"] == "event"]


def version(session_id) -> int:
    from campaigns.models import PlaySession

    return PlaySession.objects.values_list("version", flat=True).get(pk=session_id)


def append_silently(session_id, n):
    """n committed events whose group messages never reach anyone (a dropped channel)."""
    from unittest import mock

    from campaigns import events
    from realtime import broadcast

    new = [events.NewEvent(type="WorldUpdated", payload={"flag": f"f{i}", "value": i}) for i in range(n)]
    with mock.patch.object(broadcast, "events_committed", lambda session_id, events: None):
        return events.append(session_id, new).events


def append_and_broadcast(session_id) -> int:
    """One committed event; the event store's listener broadcasts it after the commit."""
    from campaigns import events

    created = events.append(
        session_id, [events.NewEvent(type="WorldUpdated", payload={"flag": "last", "value": 1})]
    ).events
    return created[0].seq


def fail_the_provider(monkeypatch):
    from gtw_site.providers import ProviderError
    from narrative.llm.offline import OfflineNarrator

    real = OfflineNarrator.stream

    def broken(self, request):
        raise ProviderError("down", retryable=False)
        yield

    monkeypatch.setattr(OfflineNarrator, "stream", broken)
    return lambda: monkeypatch.setattr(OfflineNarrator, "stream", real)


def failed_turn(session, player, monkeypatch) -> int:
    """An action whose GM turn failed (so it waits for a retry); returns its seq."""
    from narrative import turns

    restore = fail_the_provider(monkeypatch)
    result = turns.submit_action(
        session_id=session.pk, user=player, text="I look around", idempotency_key="k1"
    )
    restore()
    return result.events[0].seq


# ---- 1. crafted frames and query strings ---------------------------------------------------


@pytest.mark.parametrize(
    "raw, code",
    [
        (json.dumps({"type": []}), "unknown_type"),
        (json.dumps({"type": {"a": 1}}), "unknown_type"),
        (json.dumps({"type": None}), "unknown_type"),
        ("[" * 5000 + "]" * 5000, "malformed"),
        ('{"type": "ping", "x": ' + "[" * 5000 + "]" * 5000 + "}", "malformed"),
        (json.dumps({"type": "retry", "action_seq": 10**30}), "conflict"),
    ],
)
def test_crafted_frames_get_an_error_and_the_socket_stays_up(session, gm, raw, code):
    async def go():
        comm = communicator(session.pk, gm)
        await comm.connect()
        await receive_until(comm, lambda f: f["type"] == "presence")
        await comm.send_to(text_data=raw)
        error = (await receive_until(comm, lambda f: f["type"] == "error"))[-1]
        assert error["code"] == code and len(error["message"]) < 300
        await comm.send_to(text_data=json.dumps({"type": "ping"}))
        assert (await receive_until(comm, lambda f: f["type"] == "pong"))[-1] == {"type": "pong"}
        await comm.disconnect()

    run(go)


@pytest.mark.parametrize("last_seq", ["²", "-3", "abc", "9" * 5000])
def test_a_bad_last_seq_in_the_query_is_ignored(session, player, last_seq):
    """Not a seq: the socket connects as if there were none (live from now) and leaves cleanly."""
    from realtime import presence

    async def go():
        comm = communicator(session.pk, player, query="format=json&last_seq=" + quote(last_seq))
        connected, _ = await comm.connect()
        assert connected
        await receive_until(comm, lambda f: f["type"] == "presence")
        seq = await database_sync_to_async(append_and_broadcast)(session.pk)
        frames = await receive_until(comm, lambda f: f["type"] == "event")
        assert event_seqs(frames) == [seq]
        await comm.disconnect()
        assert player.username not in await presence.online(session.pk)

    run(go)


def test_a_last_seq_beyond_the_log_counts_from_its_end(session, player):
    """A client of a reset database must not be muted until the log catches up with it."""

    async def go():
        comm = communicator(session.pk, player, query="format=json&last_seq=1000000")
        await comm.connect()
        await receive_until(comm, lambda f: f["type"] == "presence")
        first = await database_sync_to_async(append_and_broadcast)(session.pk)
        assert event_seqs(await receive_until(comm, lambda f: f["type"] == "event")) == [first]
        await comm.send_to(text_data=json.dumps({"type": "hello", "last_seq": 10**30}))
        await comm.send_to(text_data=json.dumps({"type": "ping"}))
        assert "error" not in kinds(await receive_until(comm, lambda f: f["type"] == "pong"))
        second = await database_sync_to_async(append_and_broadcast)(session.pk)
        assert event_seqs(await receive_until(comm, lambda f: f["type"] == "event")) == [second]
        await comm.disconnect()

    run(go)


# ---- 2. catch-up in pages ------------------------------------------------------------------


def test_a_gap_wider_than_a_page_heals_completely(session, gm, monkeypatch):
    from realtime import consumers

    monkeypatch.setattr(consumers, "CATCH_UP_PAGE", 5)

    async def go():
        comm = communicator(session.pk, gm)
        await comm.connect()
        await receive_until(comm, lambda f: f["type"] == "presence")
        start = await database_sync_to_async(version)(session.pk)
        await database_sync_to_async(append_silently)(session.pk, 12)
        last = await database_sync_to_async(append_and_broadcast)(session.pk)
        frames = await receive_until(comm, lambda f: f.get("type") == "event" and f["seq"] == last)
        assert event_seqs(frames) == list(range(start + 1, last + 1))
        await comm.disconnect()

    run(go)


def test_a_catch_up_longer_than_a_page_sends_everything(session, gm, monkeypatch):
    from realtime import consumers

    monkeypatch.setattr(consumers, "CATCH_UP_PAGE", 5)
    append_silently(session.pk, 12)
    last = version(session.pk)

    async def go():
        comm = communicator(session.pk, gm, query="format=json&last_seq=0")
        await comm.connect()
        frames = await receive_until(comm, lambda f: f.get("type") == "event" and f["seq"] == last)
        assert event_seqs(frames) == list(range(1, last + 1))
        await comm.disconnect()

    run(go)


# ---- 3. an htmx socket before its hello ----------------------------------------------------


def test_an_html_socket_that_never_says_hello_keeps_no_messages(session, player, monkeypatch):
    from realtime.consumers import SessionConsumer

    instances = []
    original = SessionConsumer.connect

    async def connect(self):
        instances.append(self)
        await original(self)

    monkeypatch.setattr(SessionConsumer, "connect", connect)

    async def go():
        from channels.layers import get_channel_layer

        from realtime import broadcast

        comm = communicator(session.pk, player, query="")
        await comm.connect()
        layer = get_channel_layer()
        for i in range(50):
            message = {"type": "session.event", "seq": 10_000 + i, "event": {"audience": None}, "html": "x"}
            await layer.group_send(broadcast.session_group(session.pk), message)
        await comm.send_to(text_data=json.dumps({"type": "ping"}))
        await asyncio.sleep(0.5)
        kept = {k: len(v) for k, v in vars(instances[0]).items() if isinstance(v, list | dict | set)}
        assert all(n < 10 for n in kept.values()), kept
        await comm.disconnect()

    run(go)


def test_events_broadcast_before_the_hello_arrive_once_after_it(session, player):
    async def go():
        before = await database_sync_to_async(version)(session.pk)
        comm = communicator(session.pk, player, query="")
        await comm.connect()
        seqs = [await database_sync_to_async(append_and_broadcast)(session.pk) for _ in range(3)]
        await asyncio.sleep(0.3)  # the group messages reach the socket before its hello
        await comm.send_to(text_data=json.dumps({"type": "hello", "last_seq": before}))
        html = []
        while not await comm.receive_nothing(timeout=1.0):
            html.append(await comm.receive_from())
        ids = [int(m) for h in html for m in re.findall(r'<article[^>]*\sid="ev-(\d+)"', h)]
        assert ids == seqs
        await comm.disconnect()

    run(go)


# ---- 4. presence per socket kind -----------------------------------------------------------


@pytest.mark.parametrize("first", ["stage", "play"])
def test_play_and_stage_sockets_of_one_session_both_get_presence(stage, gm, player, first):  # noqa: F811
    async def go():
        st = communicator(stage.pk, gm, path="stage")
        pl = communicator(stage.pk, player, path="sessions")
        for comm in (st, pl) if first == "stage" else (pl, st):
            await comm.connect()
        st_frames, pl_frames = await asyncio.gather(drain(st, 1.0), drain(pl, 1.0))
        assert "presence" in kinds(st_frames)
        assert "presence" in kinds(pl_frames)
        await st.disconnect()
        await pl.disconnect()

    run(go)


# ---- 5 and 6. the stage roster -------------------------------------------------------------


def test_a_roster_change_while_the_stage_socket_connects_is_not_lost(stage, gm, player, monkeypatch):  # noqa: F811
    from realtime.stage_consumer import StageConsumer

    original = StageConsumer.__dict__["_seat_and_roster"]  # a database_sync_to_async descriptor

    def raise_hand():
        from campaigns.stage import selectors as stage_selectors
        from campaigns.stage import services as stage_services

        session, membership = stage_selectors.stage_get(viewer=player, session_id=stage.pk)
        stage_services.hand_raise(session=session, membership=membership)

    async def seat_and_roster(self):
        roster = await original.__get__(self, type(self))()
        if self.user == gm:
            await database_sync_to_async(raise_hand)()  # lands between the read and the frame
        return roster

    monkeypatch.setattr(StageConsumer, "_seat_and_roster", seat_and_roster)

    async def go():
        comm = communicator(stage.pk, gm, path="stage")
        await comm.connect()
        rosters = [f["roster"] for f in await drain(comm, 1.0) if f["type"] == "roster"]
        assert [q["username"] for q in rosters[-1]["queue"]] == [player.username]
        await comm.disconnect()

    run(go)


def test_a_members_first_connect_sends_the_roster_to_the_others(stage, gm, player):  # noqa: F811
    async def go():
        g = communicator(stage.pk, gm, path="stage")
        await g.connect()
        await drain(g, 0.5)
        p = communicator(stage.pk, player, path="stage")
        await p.connect()
        rosters = [f["roster"] for f in await drain(g, 1.0) if f["type"] == "roster"]
        assert rosters and player.username in [a["username"] for a in rosters[-1]["audience"]]
        await g.disconnect()
        await p.disconnect()

    run(go)


def test_a_new_seat_sends_the_roster_after_commit_and_an_existing_one_does_not(stage, player, monkeypatch):  # noqa: F811
    from campaigns.models import Membership
    from campaigns.stage import services as stage_services
    from realtime import stage as realtime_stage

    sent = []
    monkeypatch.setattr(realtime_stage, "send_roster", sent.append)
    membership = Membership.objects.get(campaign_id=stage.campaign_id, user=player)
    stage_services.seat_ensure(session=stage, membership=membership)
    assert sent == [stage.pk]
    stage_services.seat_ensure(session=stage, membership=membership)
    assert sent == [stage.pk]


# ---- 7. a retried turn ---------------------------------------------------------------------


def test_a_retried_turns_deltas_follow_its_turn_retried(session, player, monkeypatch):
    restore = fail_the_provider(monkeypatch)

    async def go():
        comm = communicator(session.pk, player)
        await comm.connect()
        await drain(comm, 0.3)
        action = {"type": "action", "text": "I look around", "idempotency_key": "k1"}
        await comm.send_to(text_data=json.dumps(action))
        frames = await drain(comm, 1.0)
        failed = [f for f in frames if f["type"] == "event" and f["event"]["type"] == "TurnFailed"]
        action_seq = failed[0]["event"]["payload"]["action_seq"]
        restore()
        await comm.send_to(text_data=json.dumps({"type": "retry", "action_seq": action_seq}))
        order = kinds(await drain(comm, 1.0))
        assert "delta" in order and order.index("TurnRetried") < order.index("delta"), order
        await comm.disconnect()

    run(go)


def test_a_delta_that_overtakes_a_turn_retried_fetches_it_first(session, player, gm, monkeypatch):
    """A worker's first delta may beat (or outlive) the TurnRetried broadcast: the socket sends
    the committed TurnRetried first, then the delta, and the late broadcast is no duplicate."""

    action_seq = failed_turn(session, player, monkeypatch)

    async def go():
        from channels.layers import get_channel_layer

        from campaigns import events
        from realtime import broadcast

        comm = communicator(session.pk, gm)
        await comm.connect()
        await drain(comm, 0.3)

        def commit_without_broadcast():
            from unittest import mock

            new = events.NewEvent(type="TurnRetried", payload={"action_seq": action_seq}, actor_id=player.pk)
            from narrative import turns

            # Neither its broadcast nor its runner: the worker's delta below stands for the turn.
            with (
                mock.patch.object(broadcast, "events_committed", lambda session_id, events: None),
                mock.patch.object(turns, "schedule_turns", lambda session_id, query=None: None),
            ):
                return events.append(session.pk, [new]).events[0].seq

        retried = await database_sync_to_async(commit_without_broadcast)()
        layer = get_channel_layer()
        delta = {"type": "session.delta", "action_seq": action_seq, "i": 0, "text": "The lights"}
        await layer.group_send(broadcast.session_group(session.pk), delta)
        first = json.loads(await comm.receive_from(timeout=5))
        second = json.loads(await comm.receive_from(timeout=5))
        assert (first["type"], first["seq"], first["event"]["type"]) == ("event", retried, "TurnRetried")
        assert (second["type"], second["text"]) == ("delta", "The lights")
        late = {"type": "session.event", "seq": retried, "event": first["event"], "html": ""}
        await layer.group_send(broadcast.session_group(session.pk), late)
        await layer.group_send(broadcast.session_group(session.pk), {**delta, "i": 1})
        assert kinds(await drain(comm, 0.5)) == ["delta"]
        await comm.disconnect()

    run(go)


def test_retry_turn_broadcasts_before_it_schedules(session, player, monkeypatch):
    from narrative import turns
    from realtime import broadcast

    action_seq = failed_turn(session, player, monkeypatch)
    calls = []
    monkeypatch.setattr(broadcast, "events_committed", lambda sid, created: calls.append("broadcast"))
    monkeypatch.setattr(turns, "schedule_turns", lambda sid, query=None: calls.append("schedule"))
    turns.retry_turn(session_id=session.pk, user=player, action_seq=action_seq)
    assert calls == ["broadcast", "schedule"]


# ---- 8. the play page after a retry --------------------------------------------------------


def previews(client, session_id) -> list[str]:
    html = client.get(f"/sessions/{session_id}/play/").content.decode()
    return re.findall(r'<div class="entry narration streaming" id="(stream-\d+)"', html)


def test_the_page_shows_no_preview_once_a_retried_turn_is_answered(
    session, player, player_client, monkeypatch
):
    from narrative import turns

    restore = fail_the_provider(monkeypatch)
    res = turns.submit_action(session_id=session.pk, user=player, text="I look around", idempotency_key="k1")
    restore()
    turns.retry_turn(session_id=session.pk, user=player, action_seq=res.events[0].seq)
    assert previews(player_client, session.pk) == []


def test_the_page_shows_one_preview_while_a_retried_turn_is_pending(
    session, player, player_client, monkeypatch
):
    from narrative import turns

    restore = fail_the_provider(monkeypatch)
    action_seq = (
        turns.submit_action(session_id=session.pk, user=player, text="I look around", idempotency_key="k1")
        .events[0]
        .seq
    )
    turns.retry_turn(session_id=session.pk, user=player, action_seq=action_seq)  # fails again
    restore()
    monkeypatch.setattr(turns, "schedule_turns", lambda sid, query=None: None)  # no worker yet
    turns.retry_turn(session_id=session.pk, user=player, action_seq=action_seq)
    assert previews(player_client, session.pk) == [f"stream-{action_seq}"]


def test_a_live_turn_retried_opens_a_preview_only_while_pending():
    from types import SimpleNamespace

    from realtime import broadcast

    event = SimpleNamespace(
        seq=5, type="TurnRetried", payload={"action_seq": 3}, actor=SimpleNamespace(username="kira")
    )
    assert 'id="stream-3"' in broadcast.render_event(event, pending=[3])
    assert 'id="stream-3"' not in broadcast.render_event(event, pending=[])


# ---- 9. the stage page's window checks -----------------------------------------------------

STAGE_JS_HARNESS = r"""
const vm = require("vm"), fs = require("fs");
const handlers = {}, ticks = [], timers = [], sent = [];
const due = new Date(Date.now() - 5000).toISOString();
const countdown = { dataset: { closesAt: due, window: "1" }, textContent: "" };
const sandbox = {
  WebSocket: { OPEN: 1, CLOSED: 3 },
  navigator: { onLine: true },
  setInterval: (fn) => { ticks.push(fn); },
  setTimeout: (fn) => { timers.push(fn); },
  document: {
    readyState: "complete",
    body: { addEventListener: (name, fn) => { handlers[name] = fn; } },
    getElementById: (id) => (id === "window-countdown" ? countdown : null),
    addEventListener: () => {},
  },
};
sandbox.window = sandbox;
sandbox.addEventListener = () => {};
vm.createContext(sandbox);
for (const file of process.argv.slice(1)) { vm.runInContext(fs.readFileSync(file, "utf8"), sandbox); }
const socket = { readyState: 1 };
const wrapper = { send: (text) => sent.push(JSON.parse(text).type), reconnect: () => {} };
handlers["htmx:wsOpen"]({ detail: { event: { target: socket }, socketWrapper: wrapper } });
const later = () => {  // the next tick of the countdown, and the checks it scheduled
  ticks[0]();
  timers.splice(0).forEach((fn) => fn());
};
socket.readyState = 3;  // the network dropped; htmx has not reconnected yet
later();
const offline = sent.slice();
socket.readyState = 1;  // back
later();
console.log(JSON.stringify({ offline: offline, online: sent }));
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node")
def test_the_stage_page_asks_about_a_due_window_only_while_its_socket_is_open(tmp_path):
    out = subprocess.run(
        ["node", "-e", STAGE_JS_HARNESS, str(ROOT / "static/live.js"), str(ROOT / "static/stage.js")],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    result = json.loads(out.stdout)
    assert result["offline"] == ["hello"]
    assert result["online"] == ["hello", "window_check"]


# ---- a revoked API token ends the sockets it opened ------------------------------------------


def test_revoking_a_token_ends_its_live_sockets(session, player, monkeypatch):
    """Scripts connect with `Authorization: Bearer …`. Once the owner revokes the token, the next
    write on its socket closes it (4403) instead of acting; reads and heartbeats notice within
    TokenWatch.RECHECK_S; the shared-doc socket too."""
    from gtw_site.auth import TokenAuthMiddleware
    from gtw_site.models import ApiToken
    from realtime import tokenwatch

    monkeypatch.setattr(tokenwatch, "RECHECK_S", 0.0)
    token, raw = ApiToken.issue(user=player, name="script")
    stack = TokenAuthMiddleware(URLRouter(websocket_urlpatterns))

    def socket(path):
        headers = [(b"authorization", f"Bearer {raw}".encode())]
        comm = WebsocketCommunicator(stack, path, headers=headers)
        comm.scope["user"] = None  # no cookie: only the token
        return comm

    async def go():
        play = socket(f"/ws/sessions/{session.pk}/?format=json")
        assert (await play.connect())[0]
        await drain(play, 0.3)
        docs = socket(f"/ws/sessions/{session.pk}/docs/notes/")
        assert (await docs.connect())[0]
        while not await docs.receive_nothing(timeout=0.3):  # its binary sync step 1
            await docs.receive_output()
        await database_sync_to_async(ApiToken.objects.filter(pk=token.pk).delete)()
        action = {"type": "action", "text": "I pick the lock", "idempotency_key": "after-revoke"}
        await play.send_to(text_data=json.dumps(action))
        assert (await play.receive_output(timeout=5)) == {"type": "websocket.close", "code": 4403}
        await docs.send_to(bytes_data=b"\x00\x00\x01\x00")  # a sync step 1 with an empty vector
        assert (await docs.receive_output(timeout=5)) == {"type": "websocket.close", "code": 4403}

    run(go)
    assert not Event.objects.filter(session=session, idempotency_key__endswith="after-revoke").exists()
