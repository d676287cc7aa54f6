"""The memory engine on the embedded Postgres: writes from play, hybrid recall, privacy."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from campaigns import selectors
from memory import retrieval, services
from memory.models import Memory, campaign_namespace, player_namespace
from narrative import turns


@pytest.fixture(autouse=True)
def commits(django_capture_on_commit_callbacks):
    """Memories are written and embedded on commit; run those callbacks as a commit would."""
    global _commit
    _commit = django_capture_on_commit_callbacks
    yield


def post(client, url, data):
    with _commit(execute=True):
        return client.post(url, json.dumps(data), content_type="application/json")


def play(session, user, text, key):
    with _commit(execute=True):
        turns.submit_action(session_id=session.pk, user=user, text=text, idempotency_key=key)
    with _commit(execute=True):
        turns.run_pending_turns(session.pk)


@pytest.fixture
def membership(campaign, player):
    return selectors.membership_get(viewer=player, campaign_id=campaign.pk)


def note(client, campaign, text, visibility="campaign", **extra):
    r = post(
        client, f"/api/campaigns/{campaign.pk}/memories", {"text": text, "visibility": visibility, **extra}
    )
    assert r.status_code == 201, r.content
    return r.json()["id"]


def query(client, campaign, q, **extra):
    return post(client, "/api/memory/query", {"campaign": campaign.pk, "query": q, **extra})


def test_play_becomes_memories_in_the_right_namespace(session, player):
    play(session, player, "I ask Ossian about the Vesper relay", "m1")
    mine = Memory.objects.filter(campaign=session.campaign)
    assert mine.filter(namespace=campaign_namespace(session.campaign_id), tags__contains=["action"]).exists()
    assert mine.filter(tags__contains=["narration"]).exists()
    # Embedded by the (inline, in tests) batch job with the local model.
    assert not mine.filter(embedding__isnull=True).exists()


def test_hybrid_recall_finds_a_paraphrase(gm_client, campaign):
    target = note(
        gm_client, campaign, "Ossian Ward stashed the sealed crate behind the coolant tanks in bay 7."
    )
    for text in ["The reactor hums.", "Captain Hale distrusts the Choir.", "Bay 3 is flooded with coolant."]:
        note(gm_client, campaign, text)
    r = query(gm_client, campaign, "where did the smuggler hide the box?")
    assert r.status_code == 200
    results = r.json()["results"]
    assert results[0]["id"] == target
    assert {"vector", "keyword", "recency", "importance"} <= set(results[0]["components"])


def test_private_memory_is_invisible_to_other_players(
    campaign, gm, player, gm_client, player_client, outsider
):
    from campaigns import services as campaign_services
    from tests.conftest import _user

    other = _user("other")
    invite = campaign_services.invite_create(
        membership=selectors.membership_get(viewer=gm, campaign_id=campaign.pk)
    )
    campaign_services.invite_accept(code=invite.code, user=other)
    other_client = Client()
    other_client.force_login(other)
    secret = note(player_client, campaign, "The vault code is 7731.", visibility="private")
    assert Memory.objects.get(pk=secret).namespace == player_namespace(player.pk)
    # The owner finds it; another player, and the GM (not omniscient by default), do not.
    assert [h["id"] for h in query(player_client, campaign, "vault code").json()["results"]] == [secret]
    for client in (other_client, gm_client):
        assert query(client, campaign, "vault code 7731").json()["results"] == []
        assert client.get(f"/api/memories/{secret}").status_code == 404
    assert player_client.get(f"/api/memories/{secret}").status_code == 200


def test_omniscient_gm_sees_private_memory(campaign, gm_client, player_client, settings):
    secret = note(player_client, campaign, "I pocketed the relay key.", visibility="private")
    settings.GTW_MEMORY = {**settings.GTW_MEMORY, "gm_omniscient": True}
    assert secret in [h["id"] for h in query(gm_client, campaign, "relay key").json()["results"]]


def test_a_private_secret_never_reaches_another_players_prompt(session, gm, player, monkeypatch):
    """The narrator's prompt for player B is built without player A's private memory."""
    from campaigns import services as campaign_services
    from narrative.llm import registry
    from tests.conftest import _user

    other = _user("bea")
    invite = campaign_services.invite_create(
        membership=selectors.membership_get(viewer=gm, campaign_id=session.campaign_id)
    )
    campaign_services.invite_accept(code=invite.code, user=other)
    services.memory_record(
        membership=selectors.membership_get(viewer=player, campaign_id=session.campaign_id),
        text="Only I know: the vault code is 7731.",
        visibility="private",
    )
    prompts = []
    real_get = registry.get

    def recording(role):
        provider = real_get(role)
        inner = provider.stream

        def stream(request):
            prompts.append(
                (request.context["action"]["actor"], "\n".join(m.content for m in request.messages))
            )
            return inner(request)

        provider.stream = stream
        return provider

    monkeypatch.setattr(registry, "get", recording)
    play(session, other, "I ask everyone for the vault code", "b1")
    play(session, player, "I recall the vault code", "a1")
    by_actor = {}
    for actor, text in prompts:
        by_actor.setdefault(actor, []).append(text)
    assert all("7731" not in text for text in by_actor[other.username])
    assert any("7731" in text for text in by_actor[player.username])


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"query": ""}, 422),
        ({"query": "x", "k": 0}, 422),
        ({"query": "x", "k": 51}, 422),
        ({"query": "x", "types": ["gossip"]}, 422),
    ],
)
def test_bad_queries(player_client, campaign, body, status):
    assert post(player_client, "/api/memory/query", {"campaign": campaign.pk, **body}).status_code == status


def test_query_for_a_campaign_you_are_not_in_is_404(outsider_client, campaign):
    r = query(outsider_client, campaign, "anything")
    assert r.status_code == 404
    assert query(outsider_client, type("C", (), {"pk": 999999})(), "anything").json() == r.json()


def test_huge_text_is_chunked_and_too_huge_is_413(player_client, campaign):
    sentence = "The relay sings at dawn and the Choir listens. "
    text = (sentence * (50_000 // len(sentence) + 1))[:50_000]
    r = post(player_client, f"/api/campaigns/{campaign.pk}/memories", {"text": text})
    assert r.status_code == 201 and len(r.json()["ids"]) > 10
    r = post(player_client, f"/api/campaigns/{campaign.pk}/memories", {"text": text + "x"})
    assert r.status_code == 413 and "50,000" in r.json()["detail"]


def test_embedder_failure_keeps_the_memory_keyword_searchable(membership, monkeypatch):
    from gtw_site.providers import ProviderError
    from memory.embeddings import registry

    class Broken:
        name, model, dimensions = "broken", "x", 384

        def embed(self, texts):
            raise ProviderError("model file missing", retryable=False)

    monkeypatch.setattr(registry, "get", lambda: Broken())
    with _commit(execute=True):
        [memory] = services.memory_record(membership=membership, text="The docking code is 4412.")
    memory.refresh_from_db()
    assert memory.embedding is None
    hits = retrieval.search_scoped(
        scope=retrieval.scope_filter(
            campaign_id=membership.campaign_id, user_id=membership.user_id, is_gm=False
        ),
        query="docking code",
    )
    assert [h.memory.pk for h in hits] == [memory.pk]
    monkeypatch.undo()
    assert services.embed_pending() >= 1
    memory.refresh_from_db()
    assert memory.embedding is not None


def test_spectators_keep_private_notes_only(gm, campaign, outsider, outsider_client):
    from campaigns import services as campaign_services

    invite = campaign_services.invite_create(
        membership=selectors.membership_get(viewer=gm, campaign_id=campaign.pk), role="spectator"
    )
    campaign_services.invite_accept(code=invite.code, user=outsider)
    assert post(outsider_client, f"/api/campaigns/{campaign.pk}/memories", {"text": "hi"}).status_code == 403
    assert (
        post(
            outsider_client, f"/api/campaigns/{campaign.pk}/memories", {"text": "hi", "visibility": "private"}
        ).status_code
        == 201
    )


def test_memory_page_shows_what_the_viewer_may_see(campaign, gm_client, player_client, outsider_client):
    note(player_client, campaign, "My secret: the relay key is in my boot.", visibility="private")
    note(gm_client, campaign, "The Wardens patrol bay 7 at midnight.")
    mine = player_client.get(f"/campaigns/{campaign.pk}/memory/").content.decode()
    gms = gm_client.get(f"/campaigns/{campaign.pk}/memory/").content.decode()
    assert "relay key is in my boot" in mine and "bay 7" in mine
    assert "relay key is in my boot" not in gms and "bay 7" in gms
    found = player_client.get(
        f"/campaigns/{campaign.pk}/memory/?q=where+is+the+key", headers={"HX-Request": "true"}
    )
    assert "relay key" in found.content.decode() and "<html" not in found.content.decode()
    assert outsider_client.get(f"/campaigns/{campaign.pk}/memory/").status_code == 404
    with _commit(execute=True):
        r = player_client.post(
            f"/campaigns/{campaign.pk}/memory/", {"text": "Bought a spore filter.", "tags": "gear"}
        )
    assert r.status_code == 302
    assert Memory.objects.filter(
        text="Bought a spore filter.", namespace=player_namespace(r.wsgi_request.user.pk)
    ).exists()


def test_a_whisper_reaches_only_its_recipient(session, gm, player, gm_client, player_client):
    """Whispers are events with an audience: hidden from the rest of the table on every path,
    and remembered in the recipient's private namespace."""
    from campaigns import services as campaign_services
    from tests.conftest import _user

    other = _user("eve")
    invite = campaign_services.invite_create(
        membership=selectors.membership_get(viewer=gm, campaign_id=session.campaign_id)
    )
    campaign_services.invite_accept(code=invite.code, user=other)
    other_client = Client()
    other_client.force_login(other)
    r = post(
        gm_client,
        f"/api/sessions/{session.pk}/whispers",
        {"to": player.pk, "text": "The Choir cantor is a Warden spy."},
    )
    assert r.status_code == 201
    seq = r.json()["seq"]
    assert (
        post(player_client, f"/api/sessions/{session.pk}/whispers", {"to": other.pk, "text": "x"}).status_code
        == 403
    )

    def seqs(client):
        return [e["seq"] for e in client.get(f"/api/sessions/{session.pk}/events").json()["events"]]

    assert seq in seqs(player_client) and seq in seqs(gm_client) and seq not in seqs(other_client)
    assert "Warden spy" in player_client.get(f"/sessions/{session.pk}/play/").content.decode()
    assert "Warden spy" not in other_client.get(f"/sessions/{session.pk}/play/").content.decode()
    memory = Memory.objects.get(tags__contains=["whisper"])
    assert memory.namespace == player_namespace(player.pk)
    assert query(other_client, session.campaign, "who is the spy").json()["results"] == []
    assert query(player_client, session.campaign, "who is the spy").json()["results"][0]["id"] == memory.pk


def test_summaries_condense_play_and_show_as_a_recap(session, player, player_client, settings):
    settings.GTW_MEMORY = {**settings.GTW_MEMORY, "summary_every": 2}
    play(session, player, "I ask Ossian about the Vesper relay", "s1")
    play(session, player, "I search the docking ring for the crate", "s2")
    summary = Memory.objects.get(tags__contains=["summary"])
    assert summary.namespace == campaign_namespace(session.campaign_id)
    assert summary.sources and Memory.objects.filter(pk__in=summary.sources).count() == len(summary.sources)
    assert summary.metadata["summary_of_session"] == session.pk
    assert "Previously" in player_client.get(f"/sessions/{session.pk}/play/").content.decode()


def test_bulk_import_keeps_good_lines_and_reports_bad_ones(player_client, campaign):
    from django.core.files.uploadedfile import SimpleUploadedFile

    body = "\n".join(
        [
            json.dumps({"text": "The relay was built in year 12.", "tags": ["history"]}),
            "{not json",
            json.dumps({"text": ""}),
            json.dumps({"text": "My own lead: check bay 9.", "visibility": "private"}),
        ]
    ).encode()
    with _commit(execute=True):
        r = player_client.post(
            f"/api/campaigns/{campaign.pk}/memories/import", {"file": SimpleUploadedFile("m.jsonl", body)}
        )
    assert r.status_code == 202, r.content  # queued; the job runs on the memory cluster (inline here)
    done = player_client.get(r.json()["status_url"]).json()
    assert done["status"] == "done" and done["done_lines"] == done["total_lines"] == 4
    assert done["imported"] == 2 and [e["line"] for e in done["errors"]] == [2, 3]
    assert Memory.objects.filter(campaign=campaign, tags__contains=["history"]).exists()


def test_gtw_memory_import_command(tmp_path, campaign, player, capsys):
    from gtw_site.cli import main

    path = tmp_path / "lore.jsonl"
    path.write_text(
        "\n".join(json.dumps({"text": f"Lore entry {i} about the Quiet Choir."}) for i in range(30))
    )
    with _commit(execute=True):
        code = main(
            ["memory", "import", str(path), "--campaign", str(campaign.pk), "--user", player.username]
        )
    out = capsys.readouterr()
    assert code == 0 and "imported 30 memories" in out.out and "30/30" in out.err
    assert Memory.objects.filter(campaign=campaign, text__startswith="Lore entry").count() == 30


def test_reembed_rebuilds_every_vector(membership):
    from memory import importer

    with _commit(execute=True):
        services.memory_record(membership=membership, text="Alpha fact. " * 3)
        services.memory_record(membership=membership, text="Beta fact about the relay.")
    assert importer.reembed() >= 2
    assert not Memory.objects.filter(embedding__isnull=True).exists()


def test_a_branch_sees_parent_memories_up_to_its_seq_only(session, gm, player, gm_client, player_client):
    play(session, player, "I ask Ossian about the Vesper relay", "b1")
    at = session.__class__.objects.get(pk=session.pk).version
    play(session, player, "I pry open the sealed crate marked with a heron", "b2")
    r = post(gm_client, f"/api/sessions/{session.pk}/branch", {"at_seq": at})
    assert r.status_code == 201, r.content
    branch, branch_session = r.json()["campaign"], r.json()["session"]
    from campaigns.models import Campaign, Event

    assert list(Event.objects.filter(session_id=branch_session).values_list("seq", flat=True)) == list(
        range(1, at + 1)
    )
    b = Campaign.objects.get(pk=branch)

    def texts(campaign):
        return " ".join(
            h["text"]
            for h in query(player_client, campaign, "crate heron relay Ossian", k=50).json()["results"]
        )

    assert "heron" in texts(session.campaign) and "heron" not in texts(b)
    assert "Vesper relay" in texts(b)
    # The branch plays on; the parent never sees it.
    play(session.__class__.objects.get(pk=branch_session), player, "I follow the flickering beacon", "b3")
    assert "beacon" in texts(b) and "beacon" not in texts(session.campaign)
    assert post(player_client, f"/api/sessions/{session.pk}/branch", {"at_seq": at}).status_code == 403
    assert post(gm_client, f"/api/sessions/{session.pk}/branch", {"at_seq": 999}).status_code == 422


@pytest.mark.parametrize("q", ["Which ship's SOS came from -12.5, 44.1?", '"or" !!! ()', "???", "a & b | !c"])
def test_keyword_half_takes_any_text(membership, q):
    """Regression: websearch syntax made every word required and '-12.5' a NOT."""
    with _commit(execute=True):
        [m] = services.memory_record(
            membership=membership, text="Distress call from coordinates -12.5, 44.1."
        )
    hits = retrieval.search_scoped(
        scope=retrieval.scope_filter(
            campaign_id=membership.campaign_id, user_id=membership.user_id, is_gm=False
        ),
        query=q,
        mode="keyword",
    )
    if "12" in q:
        assert [h.memory.pk for h in hits] == [m.pk]
