"""Quotas on the memory archive (issue 11 hole 10): bulk imports are background jobs with a
per-upload cap, progress and a result; searches, notes and imports have per-user rate limits."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from memory.models import Memory, MemoryImport


def jsonl(*items) -> bytes:
    return "\n".join(i if isinstance(i, str) else json.dumps(i) for i in items).encode()


GOOD_AND_BAD = jsonl(
    {"text": "The relay was built in year 12.", "tags": ["history"]},
    "{not json",
    {"text": "Ossian owes the Wardens 3,000 credits.", "tags": ["debt"]},
    {"text": ""},
    {"text": "My own lead: check bay 9.", "visibility": "private"},
)


def upload(client, campaign, body: bytes = GOOD_AND_BAD, name: str = "notes.jsonl"):
    return client.post(
        f"/api/campaigns/{campaign.pk}/memories/import", {"file": SimpleUploadedFile(name, body)}
    )


def test_an_import_is_queued_then_shows_progress_and_its_result(
    player_client, campaign, django_capture_on_commit_callbacks, monkeypatch
):
    """issue 11 hole 10: a 5,000-line import took 12.3 s inside the request. Now the request
    only checks and queues (202 with a status URL); the job on the memory cluster saves its
    progress as it goes, then the result: memories made and every bad line with its error."""
    from gtw_site import busy
    from memory import importer, tasks  # tasks first: it binds busy.wait_for_turns at import

    monkeypatch.setattr(tasks, "wait_for_turns", lambda *a, **kw: 0.0)
    monkeypatch.setattr(importer, "PROGRESS_EVERY", 2)
    seen = []
    monkeypatch.setattr(
        busy,
        "wait_for_turns",
        lambda *a, **kw: seen.append(MemoryImport.objects.values_list("status", "done_lines").get()) or 0.0,
    )
    with django_capture_on_commit_callbacks() as queued:
        r = upload(player_client, campaign)
    assert r.status_code == 202, r.content
    job = r.json()
    assert job["status"] == "queued" and job["total_lines"] == 5 and job["done_lines"] == 0
    assert job["status_url"] == f"/api/memory/imports/{job['id']}"
    assert not Memory.objects.filter(campaign=campaign).exists()  # nothing imported in the request
    assert player_client.get(job["status_url"]).json()["status"] == "queued"

    for callback in queued:  # the commit: the job goes to the memory cluster (inline in tests)
        callback()

    assert seen == [("running", 2), ("running", 4), ("running", 5)]
    done = player_client.get(job["status_url"]).json()
    assert done["status"] == "done" and done["done_lines"] == 5 and done["percent"] == 100
    assert done["imported"] == 3 and done["error_count"] == 2
    assert [e["line"] for e in done["errors"]] == [2, 4]
    assert all(e["error"] for e in done["errors"])
    assert done["finished_at"] is not None
    assert Memory.objects.filter(campaign=campaign, tags__contains=["debt"]).exists()
    assert bytes(MemoryImport.objects.get().data) == b""  # the upload isn't kept once imported


@pytest.mark.parametrize("cap", ["import_max_lines", "import_max_bytes"])
def test_an_upload_past_the_per_request_cap_is_refused_with_413(player_client, campaign, settings, cap):
    """issue 11 hole 10: 100,000 lines were allowed per request (≈ 4 minutes of server time,
    repeatable). Past GTW_MEMORY's caps the upload is refused with a clear 413; nothing is saved."""
    settings.GTW_MEMORY = {**settings.GTW_MEMORY, cap: 4 if cap == "import_max_lines" else 100}
    r = upload(player_client, campaign)
    assert r.status_code == 413, r.content
    what = "lines (this file has 5)" if cap == "import_max_lines" else "MB (this file is 0.0 MB)"
    assert r.json()["error"] == "too_large"
    assert what in r.json()["detail"] and "split it into smaller files" in r.json()["detail"]
    assert not MemoryImport.objects.exists()


def test_the_default_cap_is_far_below_the_old_one(settings):
    assert settings.GTW_MEMORY["import_max_lines"] <= 5_000


def test_an_empty_file_is_refused(player_client, campaign):
    r = upload(player_client, campaign, body=b"\n  \n")
    assert r.status_code == 422 and "empty" in r.json()["detail"]


def test_one_import_at_a_time_per_user(
    player_client, gm_client, campaign, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as queued:
        assert upload(player_client, campaign).status_code == 202
    second = upload(player_client, campaign)
    assert second.status_code == 409
    assert second.json()["detail"] == (
        "Your import of notes.jsonl is still running (0 of 5 lines); wait for it to finish."
    )
    assert upload(gm_client, campaign).status_code == 202  # someone else's import is theirs
    for callback in queued:
        callback()
    assert upload(player_client, campaign).status_code == 202  # finished: the next one may go


def test_a_stalled_import_is_reported_and_no_longer_blocks(player_client, campaign):
    """A worker that died mid-import leaves the job 'running': after a while it reads as failed,
    with how far it got, and the uploader may import again."""
    from campaigns.models import Membership

    membership = Membership.objects.get(campaign=campaign, user__username__startswith="player")
    job = MemoryImport.objects.create(
        campaign=campaign,
        created_by=membership.user,
        filename="big.jsonl",
        status=MemoryImport.Status.RUNNING,
        total_lines=800,
        done_lines=300,
    )
    MemoryImport.objects.filter(pk=job.pk).update(updated_at=job.updated_at - timedelta(hours=1))
    shown = player_client.get(f"/api/memory/imports/{job.pk}").json()
    assert shown["status"] == "failed"
    assert shown["message"] == (
        "The import stopped after 300 of 800 lines (the server restarted); import the remaining lines again."
    )
    assert upload(player_client, campaign).status_code == 202


def test_only_the_uploader_sees_an_import(
    player_client, gm_client, outsider_client, campaign, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        url = upload(player_client, campaign).json()["status_url"]
    assert player_client.get(url).status_code == 200
    assert gm_client.get(url).status_code == 404
    assert outsider_client.get(url).status_code == 404
    assert upload(outsider_client, campaign).status_code == 404
    assert MemoryImport.objects.count() == 1


def test_a_member_removed_before_the_job_runs_imports_nothing(
    player, player_client, campaign, django_capture_on_commit_callbacks
):
    from campaigns.models import Membership

    with django_capture_on_commit_callbacks() as queued:
        url = upload(player_client, campaign).json()["status_url"]
    Membership.objects.filter(campaign=campaign, user=player).delete()
    for callback in queued:
        callback()
    shown = player_client.get(url).json()
    assert shown["status"] == "failed" and shown["message"] == "You are no longer a member of this campaign."
    assert not Memory.objects.filter(campaign=campaign).exists()


# ---- rate limits --------------------------------------------------------------------------


def query(client, campaign, q="relay"):
    return client.post(
        "/api/memory/query", {"campaign": campaign.pk, "query": q}, content_type="application/json"
    )


def test_memory_searches_are_rate_limited_per_user(player_client, gm_client, campaign, settings):
    """issue 11 hole 10: memory queries were unlimited (16/s saturated the server and slowed
    everyone). Past the per-user limit the API answers 429 and the memory page says so; another
    user keeps their own allowance."""
    limit, per, _ = settings.GTW_RATE_LIMITS["memory_query"]
    assert 0 < limit <= 60
    for _ in range(limit):
        assert query(player_client, campaign).status_code == 200
    refused = query(player_client, campaign)
    assert refused.status_code == 429
    assert refused.json() == {
        "error": "rate_limited",
        "detail": f"Slow down: at most {limit} memory searches per {per} seconds.",
    }
    page = player_client.get(f"/campaigns/{campaign.pk}/memory/?q=relay", headers={"HX-Request": "true"})
    assert page.status_code == 200
    assert f"Slow down: at most {limit} memory searches per {per} seconds." in page.content.decode()
    assert query(gm_client, campaign).status_code == 200


def test_imports_and_notes_are_rate_limited_per_user(
    player_client, campaign, settings, django_capture_on_commit_callbacks
):
    """issue 11 hole 10: imports (even small ones) and notes are counted per user."""
    settings.GTW_RATE_LIMITS = {
        **settings.GTW_RATE_LIMITS,
        "memory_import": (1, 3600, "memory imports"),
        "memory_note": (2, 60, "notes"),
    }
    with django_capture_on_commit_callbacks(execute=True):
        assert upload(player_client, campaign).status_code == 202
    again = upload(player_client, campaign)
    assert again.status_code == 429
    assert again.json()["detail"] == "Slow down: at most 1 memory imports per 3600 seconds."
    note = {"text": "Bay 9 is locked.", "visibility": "private"}
    url = f"/api/campaigns/{campaign.pk}/memories"
    for _ in range(2):
        assert player_client.post(url, note, content_type="application/json").status_code == 201
    assert player_client.post(url, note, content_type="application/json").status_code == 429
    page = player_client.post(f"/campaigns/{campaign.pk}/memory/", {"text": "One more."}, follow=True)
    assert "Slow down: at most 2 notes per 60 seconds." in page.content.decode()
    assert not Memory.objects.filter(text="One more.").exists()


# ---- the memory page ------------------------------------------------------------------------


def test_the_memory_page_uploads_an_import_and_polls_its_progress(
    player_client, outsider_client, campaign, django_capture_on_commit_callbacks
):
    page_url = f"/campaigns/{campaign.pk}/memory/"
    with django_capture_on_commit_callbacks() as queued:
        r = player_client.post(
            page_url, {"form": "import", "file": SimpleUploadedFile("lore.jsonl", GOOD_AND_BAD)}
        )
    assert r.status_code == 302
    page = player_client.get(page_url).content.decode()
    assert "Importing 5 lines; progress is shown below." in page
    assert "lore.jsonl" in page and "waiting to start" in page
    assert f'hx-get="/campaigns/{campaign.pk}/memory/?imports=1" hx-trigger="every 2s"' in page

    for callback in queued:
        callback()
    poll = player_client.get(f"{page_url}?imports=1", headers={"HX-Request": "true"}).content.decode()
    assert poll.lstrip().startswith('<div id="imports"')
    assert "3 memories imported, 2 lines skipped" in poll
    assert "line 2:" in poll and "line 4:" in poll
    assert "hx-trigger" not in poll  # finished: the polling stops
    assert outsider_client.post(page_url, {"form": "import"}).status_code == 404


def test_the_memory_page_says_why_an_upload_was_refused(player_client, campaign, settings):
    settings.GTW_MEMORY = {**settings.GTW_MEMORY, "import_max_lines": 2}
    page = player_client.post(
        f"/campaigns/{campaign.pk}/memory/",
        {"form": "import", "file": SimpleUploadedFile("lore.jsonl", GOOD_AND_BAD)},
        follow=True,
    ).content.decode()
    assert "Imports are at most 2 lines (this file has 5); split it into smaller files." in page
    missing = player_client.post(f"/campaigns/{campaign.pk}/memory/", {"form": "import"}, follow=True)
    assert "Choose a .jsonl file to import" in missing.content.decode()
    assert not MemoryImport.objects.exists()
