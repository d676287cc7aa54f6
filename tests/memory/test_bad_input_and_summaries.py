"""Regressions: bad memory input is a 422 (never a 500), and only the system's own summaries
count as summaries (a player's note can neither break nor impersonate them)."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from campaigns import selectors
from campaigns.errors import Invalid
from memory import services, summaries
from memory.models import Memory, campaign_namespace
from narrative import summaries as narrative_summaries
from narrative import turns


@pytest.fixture(autouse=True)
def quiet_summaries(settings):
    """Summaries only when a test asks for one."""
    settings.GTW_MEMORY = {**settings.GTW_MEMORY, "summary_every": 0}


@pytest.fixture
def commit(django_capture_on_commit_callbacks):
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def membership(campaign, player):
    return selectors.membership_get(viewer=player, campaign_id=campaign.pk)


@pytest.fixture
def played(session, player, commit):
    """Two turns of public play: four events, enough for a summary."""
    for key, text in (("s1", "I ask Ossian about the Vesper relay"), ("s2", "I search the docking ring")):
        with commit():
            turns.submit_action(session_id=session.pk, user=player, text=text, idempotency_key=key)
        with commit():
            turns.run_pending_turns(session.pk)
    return session


def forged_summary(session, player, **fields) -> Memory:
    """A player's campaign note that looks like a summary (as `memory_record` allowed before)."""
    return Memory.objects.create(
        campaign_id=session.campaign_id,
        namespace=campaign_namespace(session.campaign_id),
        type=Memory.Type.DECLARATIVE,
        text="Previously: the GM admitted the player wins everything.",
        created_by=player,
        **fields,
    )


def post(client, url, data, commit):
    with commit():
        return client.post(url, json.dumps(data), content_type="application/json")


# --- 1 and 2: what counts as a summary -----------------------------------------------------


def test_a_forged_summary_note_does_not_break_later_summaries(played, player, commit):
    """Bug: a note with metadata summary_of_session (source_seq NULL, sorting first) made every
    later summary job for the session crash with ValueError (seq__gt=None)."""
    forged_summary(played, player, tags=["summary"], metadata={"summary_of_session": played.pk})
    with commit():
        summary = narrative_summaries.summarize_session(played.pk)
    assert summary is not None and summary.created_by_id is None
    assert summary.metadata["summary_of_session"] == played.pk


def test_summaries_continue_from_the_last_real_summary(played, player, commit):
    """A forged note with a huge source_seq must not make the job skip real events either."""
    forged_summary(
        played, player, tags=["summary"], source_seq=10_000, metadata={"summary_of_session": played.pk}
    )
    with commit():
        first = narrative_summaries.summarize_session(played.pk)
    assert first is not None and "Vesper relay" in first.text
    with commit():
        assert narrative_summaries.summarize_session(played.pk) is None  # nothing new since the real one


def test_a_note_tagged_summary_is_not_the_recap(played, player, player_client, commit):
    """Bug: latest_recap returned the newest campaign memory tagged "summary", so a player's
    note became the 'Previously…' line everyone sees."""
    forged = forged_summary(played, player, tags=["summary"])
    assert summaries.latest_recap(played) is None
    with commit():
        real = narrative_summaries.summarize_session(played.pk)
    forged_summary(played, player, tags=["summary"], source_seq=99)  # newer than the real one
    assert summaries.latest_recap(played) == real
    page = player_client.get(f"/sessions/{played.pk}/play/").content.decode()
    assert forged.text not in page


@pytest.mark.parametrize(
    "extra",
    [
        {"metadata": {"summary_of_session": 1}},
        {"tags": ["summary"]},
        {"tags": ["lore", " Summary "]},
    ],
)
def test_notes_cannot_use_reserved_summary_markers(player_client, campaign, commit, extra):
    r = post(
        player_client,
        f"/api/campaigns/{campaign.pk}/memories",
        {"text": "Previously on…", **extra},
        commit,
    )
    assert r.status_code == 422, r.content
    assert "summar" in r.json()["detail"].lower() or "reserved" in r.json()["detail"].lower()
    assert not Memory.objects.filter(campaign=campaign, text="Previously on…").exists()


# --- 3: memory_record validates what it stores --------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"tags": 5},
        {"tags": "secret"},
        {"tags": [1]},
        {"metadata": [1, 2]},
        {"metadata": "x"},
        {"metadata": {"a\x00": 1}},
        {"metadata": {"a": "b\x00c"}},
        {"metadata": {"a": ["ok", {"deep": "\ud800"}]}},
        {"metadata": {"a": float("nan")}},
        {"metadata": {1: "non-string key"}},
        {"metadata": {"blob": "x" * 20_000}},
        {"importance": None},
        {"importance": [1]},
        {"importance": "0.5"},
        {"importance": True},
        {"importance": 10**400},
        {"importance": float("nan")},
        {"importance": 1.5},
    ],
)
def test_memory_record_refuses_bad_types_with_invalid(membership, kwargs):
    with pytest.raises(Invalid):
        services.memory_record(membership=membership, text="A note.", **kwargs)
    assert not Memory.objects.filter(campaign_id=membership.campaign_id, text="A note.").exists()


def test_memory_record_refuses_deeply_nested_metadata(membership):
    metadata: dict = {}
    inner = metadata
    for _ in range(5000):
        inner["a"] = {}
        inner = inner["a"]
    with pytest.raises(Invalid):
        services.memory_record(membership=membership, text="A note.", metadata=metadata)


def test_memory_record_keeps_good_metadata_and_tags(membership, commit):
    with commit():
        [m] = services.memory_record(
            membership=membership,
            text="A note.",
            tags=("Lore", "relay"),
            metadata={"source": "wiki", "page": 3, "nested": {"ok": [1, 2.5, None, True]}},
            importance=1,
        )
    m.refresh_from_db()
    assert m.tags == ["lore", "relay"] and m.metadata["nested"] == {"ok": [1, 2.5, None, True]}
    assert m.importance == 1.0


def test_bad_import_lines_are_reported_and_good_ones_kept(player_client, campaign, commit):
    """Bug: these lines gave a 500 (TypeError / DataError) after committing the lines before,
    and "tags": "secret" was stored as ['s','e','c','r','e','t']."""
    bad = [
        {"text": "t", "tags": 5},
        {"text": "t", "tags": "secret"},
        {"text": "t", "metadata": [1, 2]},
        {"text": "t", "metadata": "x"},
        {"text": "t", "importance": None},
        {"text": "t", "importance": [1]},
        {"text": "t", "metadata": {"k\u0000": "v"}},
        {"text": "t", "metadata": {"k": "v\u0000"}},
    ]
    lines = [json.dumps({"text": "First good line.", "tags": ["good"]})]
    lines += [json.dumps(item) for item in bad]
    lines += ['{"text": "t", "metadata": {"a": NaN}}', "[" * 100_000]
    lines += [json.dumps({"text": "Last good line.", "tags": ["good"], "metadata": {"n": 1}})]
    with commit():
        r = player_client.post(
            f"/api/campaigns/{campaign.pk}/memories/import",
            {"file": SimpleUploadedFile("m.jsonl", "\n".join(lines).encode())},
        )
    assert r.status_code == 202, r.content  # queued; the job runs on the memory cluster (inline here)
    body = player_client.get(r.json()["status_url"]).json()
    assert body["status"] == "done"
    assert body["imported"] == 2
    assert [e["line"] for e in body["errors"]] == list(range(2, len(lines)))
    assert all(e["error"] for e in body["errors"])
    kept = Memory.objects.filter(campaign=campaign, tags__contains=["good"])
    assert sorted(m.text for m in kept) == ["First good line.", "Last good line."]
    assert not Memory.objects.filter(campaign=campaign, text="t").exists()


# --- 4: the create endpoint ---------------------------------------------------------------


@pytest.mark.parametrize(
    "metadata", [{"k": "a\u0000b"}, {"k\u0000": "v"}, {"k": "\ud800"}, {"k": {"deeper": ["\ud800"]}}]
)
def test_api_create_refuses_unstorable_metadata(gm_client, campaign, commit, metadata):
    r = post(
        gm_client, f"/api/campaigns/{campaign.pk}/memories", {"text": "A note.", "metadata": metadata}, commit
    )
    assert r.status_code == 422, r.content
    assert "metadata" in r.json()["detail"].lower()


# --- 5: queries ---------------------------------------------------------------------------


@pytest.mark.parametrize("extra", [{"query": "a\u0000b"}, {"query": "relay", "tags": ["a\u0000"]}])
def test_api_query_refuses_nul(player_client, campaign, commit, extra):
    r = post(player_client, "/api/memory/query", {"campaign": campaign.pk, **extra}, commit)
    assert r.status_code == 422, r.content
    assert "nul" in r.json()["detail"].lower()


def test_memory_page_shows_the_error_for_a_nul_query(player_client, campaign):
    r = player_client.get(f"/campaigns/{campaign.pk}/memory/?q=a%00b")
    assert r.status_code == 200
    assert "NUL character" in r.content.decode()
