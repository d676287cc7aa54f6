"""A picture's progress and arrival reach every socket of the session (JSON and htmx clients),
with no failure reason for the table."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async

from media.images import services, tasks
from media.models import Image
from tests.realtime.sockets import communicator, joined

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fresh_channel_layer():
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


async def _frames_until(comm, done, limit=40):
    frames = []
    for _ in range(limit):
        raw = await comm.receive_from(timeout=20)
        frame = json.loads(raw) if raw.startswith("{") else {"type": "html", "html": raw}
        frames.append(frame)
        if done(frame):
            break
    return frames


def test_players_and_the_gm_hear_progress_then_image_available(
    session, player, gm, image_storage, monkeypatch
):
    monkeypatch.setattr(services, "queue_generate", lambda image_id: None)

    async def go():
        json_comm = communicator(session.pk, player)
        html_comm = communicator(session.pk, gm, query="")
        assert (await json_comm.connect())[0] and (await html_comm.connect())[0]
        await json_comm.send_to(text_data=json.dumps({"type": "hello", "last_seq": session.version}))
        for comm in (html_comm, json_comm):
            await joined(comm)  # in the group before the picture's first progress goes out

        def paint():
            image, _ = services.image_request(
                campaign=session.campaign, kind="scene", subject="the docking ring at night", session=session
            )
            tasks.generate(image.pk)
            return image

        image = await database_sync_to_async(paint)()
        frames = await _frames_until(json_comm, lambda f: f.get("type") == "image-available")
        kinds = [f["type"] for f in frames if f["type"].startswith("image-")]
        assert kinds[0] in ("image-queued", "image-progress") and kinds[-1] == "image-available"
        last = frames[-1]
        assert (
            last["image_id"] == image.pk
            and last["url"] == f"/images/{image.pk}/file"
            and last["progress"] == 100
        )
        html = await _frames_until(html_comm, lambda f: f"/images/{image.pk}/file" in f.get("html", ""))
        assert 'id="scene-image"' in html[-1]["html"] and 'hx-swap-oob="true"' in html[-1]["html"]
        await json_comm.disconnect()
        await html_comm.disconnect()

    async_to_sync(go)()
    assert (
        Image.objects.get(session=session, subject="the docking ring at night").status == Image.Status.READY
    )
