"""Requests, the cache and the job: one row and one generation per distinct request."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from media.images import services, store, tasks
from media.models import Image


def _request(campaign, **kw):
    return services.image_request(campaign=campaign, **{"kind": "scene", **kw})


def test_a_request_paints_once_and_then_is_served_from_the_cache(
    campaign, session, image_storage, sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        image, created = _request(campaign, session=session)
    assert created
    image.refresh_from_db()
    assert image.status == Image.Status.READY and image.progress == 100
    assert image.provider == "procedural" and image.rights
    assert (image.width, image.height) == (768, 432)
    data = store.open_bytes(image.path)
    assert data.startswith(b"\x89PNG")
    # Content-addressed: the file's name is the SHA-256 of its bytes.
    import hashlib

    assert hashlib.sha256(data).hexdigest() in image.path
    again, created_again = _request(campaign, session=session)
    assert again.pk == image.pk and not created_again
    events = [m["image"]["event"] for _g, m in sent if m["type"] == "session.image"]
    assert events[0] in ("image-queued", "image-progress") and events[-1] == "image-available"
    # Players never see why: no error text in what the table receives.
    assert all("error" not in m["image"] for _g, m in sent)


def test_a_new_seed_or_subject_is_a_new_picture(campaign, session, image_storage):
    a, _ = _request(campaign, session=session)
    b, _ = _request(campaign, session=session, seed=12345)
    c, _ = _request(campaign, session=session, subject="the relay tower at dusk")
    assert len({a.hash, b.hash, c.hash}) == 3
    assert b.seed == 12345


def test_the_same_request_in_another_campaign_is_its_own_row(campaign, session, gm, image_storage):
    from campaigns import services as campaign_services

    other = campaign_services.campaign_create(user=gm, name="Other", pack_slug="starter")
    a, _ = _request(campaign, subject="a freighter")
    b, _ = _request(other, subject="a freighter")
    assert a.pk != b.pk and a.campaign_id != b.campaign_id


@pytest.mark.django_db(transaction=True)
def test_fifty_identical_requests_at_once_make_one_row_and_one_job(campaign, image_storage, monkeypatch):
    queued = []
    monkeypatch.setattr(services, "queue_generate", lambda image_id: queued.append(image_id))
    barrier = threading.Barrier(50)

    def ask(_):
        try:
            barrier.wait()
            image, created = _request(campaign, subject="the Vesper relay", seed=7)
            return image.pk, created
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(pool.map(ask, range(50)))
    assert len(answers) == 50
    assert len({pk for pk, _ in answers}) == 1
    assert sum(created for _, created in answers) == 1
    assert queued == [answers[0][0]]
    assert Image.objects.filter(campaign=campaign).count() == 1


def test_a_job_for_a_row_someone_else_claimed_does_nothing(campaign, image_storage, monkeypatch):
    monkeypatch.setattr(services, "queue_generate", lambda image_id: None)
    image, _ = _request(campaign, subject="a derelict")
    assert tasks.generate(image.pk) == Image.Status.READY
    assert tasks.generate(image.pk) == ""  # already done: no second painting
    Image.objects.filter(pk=image.pk).update(status=Image.Status.RUNNING)
    assert tasks.generate(image.pk) == ""


def test_identical_pictures_share_one_file(campaign, gm, image_storage, monkeypatch):
    from campaigns import services as campaign_services

    monkeypatch.setattr(services, "queue_generate", lambda image_id: None)
    other = campaign_services.campaign_create(user=gm, name="Twin", pack_slug="starter")
    a, _ = _request(campaign, subject="a relay", seed=1)
    b, _ = _request(other, subject="a relay", seed=1)
    tasks.generate(a.pk)
    tasks.generate(b.pk)
    a.refresh_from_db()
    b.refresh_from_db()
    assert a.path == b.path
    assert len(list(image_storage.rglob("*.png"))) == 1


def test_hits_and_misses_are_counted(campaign, image_storage, monkeypatch):
    from gtw_site import metrics

    counted = []
    monkeypatch.setattr(services, "queue_generate", lambda image_id: None)
    monkeypatch.setattr(metrics, "cache", lambda name, hit: counted.append((name, hit)))
    _request(campaign, subject="a counted relay")
    _request(campaign, subject="a counted relay")
    assert counted == [("images", False), ("images", True)]
