"""Faults: a provider that hangs, errors, refuses, returns a corrupt image or drops mid-job; a
full disk; a worker killed mid-job. Each leaves a clear failure and a retry that works."""

from __future__ import annotations

import errno
from datetime import timedelta

import pytest
from django.utils import timezone

from media.images import services, store, tasks
from media.models import Image


@pytest.fixture
def queued(campaign, session, image_storage, fake_provider, monkeypatch):
    monkeypatch.setattr(services, "queue_generate", lambda image_id: None)
    image, _ = services.image_request(campaign=campaign, kind="scene", session=session)
    assert image.provider == "fake"
    return image


@pytest.mark.parametrize(
    ("behaviour", "reason"),
    [
        ("error500", "server error (500)"),
        ("refusal", "content_policy_violation"),
        ("corrupt", "corrupt image"),
        ("crash", "socket closed mid-job"),
    ],
)
def test_a_failing_provider_leaves_a_clear_failure_and_a_retry_works(
    queued,
    fake_provider,
    behaviour,
    reason,
    sent,
    player_client,
    gm_client,
    django_capture_on_commit_callbacks,
):
    fake_provider.behaviour = behaviour
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.generate(queued.pk) == Image.Status.FAILED
    queued.refresh_from_db()
    assert queued.status == Image.Status.FAILED and reason in queued.error
    assert not queued.path
    # The table hears that it failed, not why.
    last = [m for _g, m in sent if m["type"] == "session.image"][-1]
    assert last["image"]["event"] == "image-failed"
    assert reason not in last["html"] and "could not be painted" in last["html"]
    assert not player_client.get(f"/api/images/{queued.pk}").json().get("error")
    assert reason in gm_client.get(f"/api/images/{queued.pk}").json()["error"]
    # Retry, with the provider healthy again.
    fake_provider.behaviour = "ok"
    response = gm_client.post(f"/api/images/{queued.pk}/retry")
    assert response.status_code == 202
    assert tasks.generate(queued.pk) == Image.Status.READY
    queued.refresh_from_db()
    assert queued.status == Image.Status.READY and queued.error == ""


def test_a_provider_that_hangs_times_out(queued, fake_provider, settings):
    settings.GTW_IMAGES = {**settings.GTW_IMAGES, "image": {"provider": "fake", "timeout": 0.3}}
    fake_provider.behaviour = "hang"
    assert tasks.generate(queued.pk) == Image.Status.FAILED
    queued.refresh_from_db()
    assert "no picture after" in queued.error


def test_retrying_a_picture_that_did_not_fail_is_a_conflict(queued, gm_client):
    assert gm_client.post(f"/api/images/{queued.pk}/retry").status_code == 409


def test_a_full_disk_leaves_no_half_file_and_no_ready_row(queued, image_storage, monkeypatch):
    class FullDisk:
        def __init__(self, fh):
            self.fh = fh

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

        def write(self, data):
            self.fh.write(data[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")

    import builtins

    real_open = builtins.open

    def fake_open(path, mode="r", *args, **kwargs):
        fh = real_open(path, mode, *args, **kwargs)
        if str(path).endswith(".part") and "w" in mode:
            return FullDisk(fh)
        return fh

    monkeypatch.setattr(store, "open", fake_open, raising=False)
    assert tasks.generate(queued.pk) == Image.Status.FAILED
    queued.refresh_from_db()
    assert queued.status == Image.Status.FAILED and "No space left" in queued.error
    assert not queued.path
    leftovers = [p for p in image_storage.rglob("*") if p.is_file()]
    assert leftovers == []


def test_a_worker_killed_mid_job_is_requeued_then_failed_never_stuck(
    queued, settings, monkeypatch, django_capture_on_commit_callbacks
):
    requeued = []
    monkeypatch.setattr(services, "queue_generate", lambda image_id: requeued.append(image_id))
    settings.GTW_IMAGES = {**settings.GTW_IMAGES, "max_attempts": 2}
    # The worker claimed it and died: "running", started long ago.
    long_ago = timezone.now() - timedelta(hours=2)
    Image.objects.filter(pk=queued.pk).update(status=Image.Status.RUNNING, started_at=long_ago, attempts=1)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.recover_interrupted() == 1
    queued.refresh_from_db()
    assert queued.status == Image.Status.QUEUED and requeued == [queued.pk]
    # Killed again: out of attempts, it fails with a reason instead of spinning forever.
    Image.objects.filter(pk=queued.pk).update(status=Image.Status.RUNNING, started_at=long_ago, attempts=2)
    assert tasks.recover_at_start() == 1
    queued.refresh_from_db()
    assert queued.status == Image.Status.FAILED and "restarted" in queued.error


def test_a_fresh_running_job_is_left_alone_but_a_restart_requeues_it(
    queued, monkeypatch, django_capture_on_commit_callbacks
):
    requeued = []
    monkeypatch.setattr(services, "queue_generate", lambda image_id: requeued.append(image_id))
    Image.objects.filter(pk=queued.pk).update(
        status=Image.Status.RUNNING, started_at=timezone.now(), attempts=1
    )
    assert services.recover_interrupted() == 0
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.recover_at_start() == 1  # the images cluster restarted: nothing of its runs
    assert requeued == [queued.pk]


def test_asking_again_for_a_stale_picture_requeues_it(
    queued, campaign, session, monkeypatch, django_capture_on_commit_callbacks
):
    requeued = []
    monkeypatch.setattr(services, "queue_generate", lambda image_id: requeued.append(image_id))
    Image.objects.filter(pk=queued.pk).update(
        status=Image.Status.RUNNING, started_at=timezone.now() - timedelta(hours=1), attempts=1
    )
    with django_capture_on_commit_callbacks(execute=True):
        again, created = services.image_request(campaign=campaign, kind="scene", session=session)
    assert again.pk == queued.pk and not created
    assert again.status == Image.Status.QUEUED and requeued == [queued.pk]
