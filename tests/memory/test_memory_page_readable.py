"""The memory page players can read (issue 13, part 7): who / what / when, grouped by session,
repeats folded "xN" with a way to expand, no recall scores for players (page and API), nobody
else's private memories, outsiders refused."""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client

from campaigns import selectors
from campaigns import services as campaign_services
from memory import services
from narrative import tasks, turns
from tests.conftest import _user


@pytest.fixture(autouse=True)
def quiet_summaries(settings):
    settings.GTW_MEMORY = {**settings.GTW_MEMORY, "summary_every": 0}


@pytest.fixture
def commit(django_capture_on_commit_callbacks):
    def run(fn, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return fn(**kwargs)

    return run


@pytest.fixture
def rival(campaign, gm):
    """A second player at the table, with private notes of their own."""
    user = _user("rival")
    invite = campaign_services.invite_create(
        membership=selectors.membership_get(viewer=gm, campaign_id=campaign.pk)
    )
    campaign_services.invite_accept(code=invite.code, user=user)
    return user


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def note(commit, user, campaign, text, visibility="campaign"):
    membership = selectors.membership_get(viewer=user, campaign_id=campaign.pk)
    return commit(services.memory_record, membership=membership, text=text, visibility=visibility)[0]


def page(client, campaign, q=""):
    r = client.get(f"/campaigns/{campaign.pk}/memory/" + (f"?q={q}" if q else ""))
    assert r.status_code == 200
    return r.content.decode()


def query(client, campaign, q):
    return client.post(
        "/api/memory/query",
        json.dumps({"campaign": campaign.pk, "query": q}),
        content_type="application/json",
    )


def play(commit, session, user, text, key):
    commit(turns.submit_action, session_id=session.pk, user=user, text=text, idempotency_key=key)
    commit(turns.run_pending_turns, session_id=session.pk)


def test_an_outsider_is_refused_the_page_and_the_query(campaign, outsider_client, commit, gm):
    note(commit, gm, campaign, "The Wardens patrol bay 7 at midnight.")
    assert outsider_client.get(f"/campaigns/{campaign.pk}/memory/").status_code == 404
    assert outsider_client.get(f"/campaigns/{campaign.pk}/memory/?q=bay").status_code == 404
    assert query(outsider_client, campaign, "bay 7").status_code == 404


def test_players_get_no_recall_scores_gms_do(campaign, gm, player_client, gm_client, commit):
    note(commit, gm, campaign, "Ossian Ward stashed the sealed crate behind the coolant tanks in bay 7.")
    note(commit, gm, campaign, "The reactor hums.")
    html = page(player_client, campaign, "where+is+the+crate")
    assert "coolant tanks" in html
    assert not re.search(r"score|vector \d|keyword \d|recency|GM view", html)
    results = query(player_client, campaign, "where is the crate").json()["results"]
    assert results and all(r["score"] is None and r["components"] is None for r in results)
    assert "coolant tanks" in results[0]["text"]
    # The GM keeps the engine room.
    gm_results = query(gm_client, campaign, "where is the crate").json()["results"]
    assert isinstance(gm_results[0]["score"], float) and "vector" in gm_results[0]["components"]
    assert "GM view" in page(gm_client, campaign, "where+is+the+crate")


def test_a_player_never_sees_another_players_private_memories(campaign, player, rival, player_client, commit):
    note(commit, rival, campaign, "Rival secret: the relay key is in my left boot.", visibility="private")
    note(commit, player, campaign, "My own secret: I owe Hale money.", visibility="private")
    html = page(player_client, campaign)
    assert "left boot" not in html and "owe Hale money" in html
    assert "left boot" not in page(player_client, campaign, "relay+key+boot")
    results = query(player_client, campaign, "relay key boot").json()["results"]
    assert all("left boot" not in r["text"] for r in results)
    assert "left boot" in page(client_for(rival), campaign)


def test_repeats_and_spam_fold_into_one_line_that_expands(campaign, player, player_client, commit):
    for i in range(5):
        note(commit, player, campaign, "Remember: check the airlock seals" + "!" * i)
    note(commit, player, campaign, "Sister Ameline knows the captain's code.")
    html = page(player_client, campaign)
    assert html.count('data-folded="5"') == 1
    assert "\u00d75" in html and "show all" in html
    assert html.count("Sister Ameline knows") == 1
    # The expanded list holds the other four, each with its own time.
    folded = html.split('data-folded="5"', 1)[1].split("</details>", 1)[0]
    assert folded.count("check the airlock seals") == 5 and folded.count("<time") == 5
    # Search results fold the same way.
    found = page(player_client, campaign, "airlock+seals")
    assert found.count('data-folded="5"') == 1


def test_entries_read_who_what_when_grouped_by_session(session, player, gm, player_client, commit):
    campaign = session.campaign
    play(commit, session, player, "I ask Ossian about the Vesper relay", "a1")
    note(commit, gm, campaign, "Hale distrusts the Choir.")
    html = page(player_client, campaign)
    groups = re.findall(r'<section class="memory-group" aria-label="([^"]+)"', html)
    assert groups[0] == "Notes and imports" and str(session) in groups
    session_part = html.split(f'aria-label="{session}"', 1)[1]
    # The action: who did it, what kind of memory, the words without the "acted:" wrapper.
    assert re.search(
        r'<strong class="who">Kira Vance</strong>.*?I ask Ossian about the Vesper relay', session_part, re.S
    )
    assert "acted:" not in session_part
    assert '<span class="badge">action</span>' in session_part
    assert f"{session}, event #" in session_part  # where from
    assert "<time datetime=" in session_part  # when
    notes_part = html.split('aria-label="Notes and imports"', 1)[1].split("memory-group", 1)[0]
    assert f'<strong class="who">{gm.username}</strong>' in notes_part
    assert '<span class="badge">note</span>' in notes_part


def test_the_sessions_summary_sits_on_top_condensed(session, player, player_client, commit):
    for key, text in (
        ("s1", "I ask Ossian about the Vesper relay"),
        ("s2", "I search the docking ring for the relay key"),
        ("s3", "I search the docking ring for the relay key"),
    ):
        play(commit, session, player, text, key)
    pk = commit(tasks.summarize_session, session_id=session.pk)
    assert pk is not None
    html = page(player_client, session.campaign)
    summary = html.split('<div class="memory-summary">', 1)[1].split("</div>", 1)[0]
    assert "Summary of" not in summary  # the heading kept for recall, not for readers
    assert re.search(r"Kira Vance (asked|tried to ask) Ossian about the Vesper relay", summary)
    # The repeat is said once (as "searched …" or "tried to search … but failed": dice decide).
    assert len(re.findall(r"search(?:ed)? the docking ring", summary)) == 1
    assert "I search" not in summary and not re.search(r"\bI\b", summary.split("</span>", 1)[1])
