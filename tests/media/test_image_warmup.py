"""The pre-session warm-up (issue 16 part 4) asks for the likely opening scene's picture, so the
table's first scene finds it cached; with automatic pictures off it asks for nothing."""

from __future__ import annotations

import pytest

from campaigns.scheduling.signals import warmup_requested
from media.images import services, warmup
from media.models import Image


def _queued(monkeypatch):
    queued = []
    monkeypatch.setattr(services, "queue_generate", lambda image_id: queued.append(image_id))
    return queued


@pytest.mark.django_db
def test_the_warmup_asks_for_the_scene_picture_once(
    settings, monkeypatch, campaign, session, image_storage, django_capture_on_commit_callbacks
):
    settings.GTW_IMAGES = {**settings.GTW_IMAGES, "auto": True}
    queued = _queued(monkeypatch)
    with django_capture_on_commit_callbacks(execute=True):
        replies = dict(warmup_requested.send(sender=None, campaign_id=campaign.pk, run_id=1, starts_at=None))
    lines = replies[warmup.on_warmup_requested]
    assert [line["check"] for line in lines] == ["scene picture"] and lines[0]["ok"]
    image = Image.objects.get(campaign=campaign, kind="scene")
    assert queued == [image.pk]
    # A second warm-up (or the scene listener later) finds the same request: no second job.
    with django_capture_on_commit_callbacks(execute=True):
        warmup.on_warmup_requested(None, campaign_id=campaign.pk)
    assert Image.objects.filter(campaign=campaign, kind="scene").count() == 1 and queued == [image.pk]


@pytest.mark.django_db
def test_no_picture_is_asked_for_when_pictures_are_not_automatic(settings, monkeypatch, campaign, session):
    settings.GTW_IMAGES = {**settings.GTW_IMAGES, "auto": False}
    queued = _queued(monkeypatch)
    assert warmup.on_warmup_requested(None, campaign_id=campaign.pk) == []
    assert queued == [] and not Image.objects.filter(campaign=campaign).exists()


@pytest.mark.django_db
def test_a_campaign_without_a_session_has_nothing_to_paint(settings, monkeypatch, campaign):
    settings.GTW_IMAGES = {**settings.GTW_IMAGES, "auto": True}
    queued = _queued(monkeypatch)
    (line,) = warmup.on_warmup_requested(None, campaign_id=campaign.pk)
    assert line["ok"] and "nothing to paint" in line["detail"] and queued == []
