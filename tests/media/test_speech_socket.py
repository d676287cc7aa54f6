"""`session.audio` reaches every socket of the session — players, spectators, the stage — as a
JSON frame or the play page's out-of-band partial; outsiders are never connected to hear it."""

from __future__ import annotations

import json

import pytest
from channels.layers import get_channel_layer

from realtime import broadcast
from tests.realtime.sockets import communicator, frames_until, has, joined, run

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

AUDIO = {
    "action_seq": 4,
    "i": 0,
    "url": "/speech/1/" + "a" * 64,
    "text": 'She says "go" & <runs>.',
    "voice": "low",
    "ok": True,
    "duration": 1.5,
    "key": "a" * 64,
    "queued_ms": 12.0,
}


SECOND = {**AUDIO, "i": 1, "text": "A second line", "url": "/speech/1/" + "b" * 64, "key": "b" * 64}


async def send_audio(session_id: int, audio: dict) -> None:
    await get_channel_layer().group_send(
        broadcast.session_group(session_id), {"type": "session.audio", **audio}
    )


@pytest.fixture(autouse=True)
def fresh_channel_layer():
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest.fixture
def spectator(campaign):
    from campaigns.models import Membership
    from tests.conftest import _user

    user = _user("spectator")
    Membership.objects.create(campaign=campaign, user=user, role=Membership.Role.SPECTATOR)
    return user


def test_json_sockets_of_players_and_spectators_get_the_audio(session, player, spectator):
    async def scenario():
        sockets = [communicator(session.pk, user) for user in (player, spectator)]
        for socket in sockets:
            connected, _ = await socket.connect()
            assert connected
            await joined(socket)
        await send_audio(session.pk, AUDIO)
        await send_audio(
            session.pk, SECOND
        )  # through the same group: a second copy of the first comes before it
        for socket in sockets:
            frames = [f for f in await frames_until(socket, has("audio", i=1)) if f["type"] == "audio"]
            assert [f["i"] for f in frames] == [0, 1]
            frame = frames[0]
            assert frame["url"] == AUDIO["url"] and frame["text"] == AUDIO["text"] and frame["voice"] == "low"
            assert "key" not in frame and "queued_ms" not in frame  # internals stay on the server
            await socket.disconnect()

    run(scenario)


def test_the_play_page_gets_an_escaped_out_of_band_partial(session, player):
    async def scenario():
        socket = communicator(session.pk, player, query="")
        connected, _ = await socket.connect()
        assert connected
        await socket.send_to(text_data=json.dumps({"type": "hello", "last_seq": 0}))
        await joined(socket)
        await send_audio(session.pk, AUDIO)
        await send_audio(session.pk, SECOND)
        frames = await frames_until(socket, lambda fs: any(SECOND["text"] in f.get("html", "") for f in fs))
        html = [f["html"] for f in frames if "voice-feed" in f.get("html", "")]
        assert len(html) == 2 and SECOND["text"] in html[1]
        assert 'hx-swap-oob="beforeend:#voice-feed"' in html[0]
        assert "<runs>" not in html[0] and "&lt;runs&gt;" in html[0]
        await socket.disconnect()

    run(scenario)


def test_an_outsider_socket_is_closed_before_any_audio(session, outsider):
    async def scenario():
        socket = communicator(session.pk, outsider)
        await socket.connect()
        output = await socket.receive_output(1)
        assert output["type"] == "websocket.close" and output["code"] == 4403

    run(scenario)
