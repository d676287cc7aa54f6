"""What paints without being asked — a scene change, a new character, loot — and the narrator's
image_request tool (a banned word comes back to the model as the refusal)."""

from __future__ import annotations

import pytest

from campaigns import events
from campaigns.models import Event
from media.images import listeners, services
from media.models import Image
from narrative.llm.base import ToolCall
from narrative.tools import dispatch


@pytest.fixture(autouse=True)
def auto_pictures(settings):
    """The test settings turn automatic pictures off for other suites; these tests are about them."""
    settings.GTW_IMAGES = {**settings.GTW_IMAGES, "auto": True}


def _no_jobs(monkeypatch):
    queued = []
    monkeypatch.setattr(services, "queue_generate", lambda image_id: queued.append(image_id))
    return queued


def test_the_scene_listener_is_registered_after_the_broadcast():
    subs = {fn: (types, order) for fn, types, order in events.listeners()}
    types, order = subs[listeners.on_scene_events]
    assert {"MissionStarted", "SceneChanged", "BeatChanged", "SessionOpened", "LootFound"} <= types
    assert order > events.ORDER_BROADCAST


def test_a_scene_change_paints_the_scene(
    session, image_storage, monkeypatch, django_capture_on_commit_callbacks
):
    queued = _no_jobs(monkeypatch)
    opened = Event.objects.get(session=session, type="SessionOpened")
    with django_capture_on_commit_callbacks(execute=True):
        listeners.on_scene_events(session.pk, [opened])
    image = Image.objects.get(session=session, kind="scene")
    assert queued == [image.pk]
    scene = session.state["scene"]
    assert scene["name"] in image.prompt
    assert image.parts["biome"] == (scene.get("biome") or "")
    # The same scene again: the cached picture, no second job.
    listeners.on_scene_events(session.pk, [opened])
    assert Image.objects.filter(session=session, kind="scene").count() == 1 and len(queued) == 1


def test_loot_paints_its_items(session, image_storage, monkeypatch):
    _no_jobs(monkeypatch)
    loot = Event(
        session=session, seq=999, type="LootFound", payload={"items": [{"item": "relay-key", "qty": 1}]}
    )
    listeners.on_scene_events(session.pk, [loot])
    image = Image.objects.get(session=session, kind="item")
    assert image.ref == "item:relay-key"
    assert image.parts["item_kind"] == "quest" and "Relay key" in image.prompt


def test_a_new_character_gets_a_portrait(
    campaign, session, outsider, image_storage, monkeypatch, django_capture_on_commit_callbacks
):
    from campaigns import selectors
    from campaigns import services as campaign_services

    _no_jobs(monkeypatch)
    gm_membership = selectors.membership_get(viewer=campaign.created_by, campaign_id=campaign.pk)
    invite = campaign_services.invite_create(membership=gm_membership)
    campaign_services.invite_accept(code=invite.code, user=outsider)
    membership = selectors.membership_get(viewer=outsider, campaign_id=campaign.pk)
    with django_capture_on_commit_callbacks(execute=True):
        character = campaign_services.character_create(
            membership=membership, name="Juno Reyes", archetype="scout"
        )
    image = Image.objects.get(campaign=campaign, kind="portrait", ref=f"character:{character.pk}")
    assert image.parts["archetype"] == "scout" and "Juno Reyes" in image.prompt
    assert image.session_id == session.pk


def test_no_pictures_when_auto_is_off(session, settings, image_storage, monkeypatch):
    _no_jobs(monkeypatch)
    settings.GTW_IMAGES = {**settings.GTW_IMAGES, "auto": False}
    listeners.on_scene_events(session.pk, [Event.objects.get(session=session, type="SessionOpened")])
    assert not Image.objects.exists()


def _call(session, player, arguments, index=0):
    call = ToolCall(id=f"c{index}", name="image_request", arguments=arguments, raw_arguments="")
    return dispatch(
        session=session,
        campaign_id=session.campaign_id,
        action_seq=1,
        actor_id=player.pk,
        character=None,
        call=call,
        round_no=0,
        index=index,
    )


def test_the_narrator_asks_for_a_picture(
    session, player, image_storage, monkeypatch, django_capture_on_commit_callbacks
):
    queued = _no_jobs(monkeypatch)
    with django_capture_on_commit_callbacks(execute=True):
        outcome, created = _call(session, player, {"type": "item", "subject": "the relay key glowing"})
    assert not outcome.refused and outcome.result["ok"] is True
    assert queued == [outcome.result["image_id"]]
    assert created == []  # a picture is not game state: no event


def test_a_banned_word_is_the_tool_result(session, player, image_storage, monkeypatch):
    _no_jobs(monkeypatch)
    outcome, created = _call(session, player, {"type": "scene", "subject": "a g.o.r.e-soaked deck"}, index=1)
    assert outcome.refused and "gore" in outcome.result["error"]
    assert [e.type for e in created] == ["ToolRefused"]
    assert not Image.objects.exists()
    bad, _ = _call(session, player, {"type": "hologram"}, index=2)
    assert bad.refused and "invalid arguments" in bad.result["error"]
