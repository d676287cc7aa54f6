"""The engine room out of sight (issue 13 part 3): refused GM tool calls, why difficulty moved and
memory search scores are for the GMs. A session full of refusals and difficulty adjustments, then
every page and frame a player gets: the play page, the events API, the socket's frames (HTML and
JSON) and the memory page's search. The GM still sees them all."""

from __future__ import annotations

import re

import pytest

from campaigns import events
from campaigns.models import Event, Membership
from campaigns.selectors import may_see
from memory import services as memory_services
from realtime import broadcast
from tests.narrative.test_engine import call

# What the engine room looks like when it leaks: a refusal, a difficulty reason, a raw score.
REFUSAL = re.compile(
    r"refused|refuse this call|invalid arguments|completes only when|can only be completed", re.I
)
DDA = re.compile(r"Difficulty:|checks? (?:succeeded|failed)|DC [+-]\d|intensity", re.I)
SCORE = re.compile(r"score \d|vector \d|keyword \d|recency \d", re.I)


def leaks(text: str) -> list[str]:
    return [p.pattern for p in (REFUSAL, DDA, SCORE) if p.search(text)]


@pytest.fixture
def rough_session(session, player, settings, monkeypatch, django_capture_on_commit_callbacks):
    """A session where the GM's tool calls keep being refused and difficulty keeps moving; the
    socket messages it broadcast are captured."""
    sent = []
    monkeypatch.setattr(broadcast, "_send", lambda group, message: sent.append(message))
    settings.GTW_DDA = {"window": 3, "dc_min_offset": -2, "dc_max_offset": 2}
    with django_capture_on_commit_callbacks(execute=True):
        for i in range(8):
            # An objective whose conditions don't hold, bad arguments, and a near-certain failure.
            call(session, player, "mission_advance", {"objective": "power"}, index=3 * i)
            call(
                session,
                player,
                "rules_skill_check",
                {"skill": "x", "attribute": "luck", "dc": 99},
                index=3 * i + 1,
            )
            call(
                session,
                player,
                "rules_skill_check",
                {"skill": "athletics", "attribute": "might", "dc": 30},
                index=3 * i + 2,
            )
    kinds = set(Event.objects.filter(session=session).values_list("type", flat=True))
    assert {"ToolRefused", "DifficultyAdjusted", "DiceRolled"} <= kinds
    return session, sent


def test_players_never_see_refusals_or_difficulty_reasons(
    rough_session, gm, player, gm_client, player_client
):
    """issue 13 hole 3: players read "The game refused a GM tool call: …" and "Difficulty: 3 of
    last 3 checks succeeded: DC +1, intensity 1.1" on the play page, the events API and the socket."""
    session, sent = rough_session
    refusals = Event.objects.filter(session=session, type="ToolRefused")
    assert refusals.count() >= 16  # the session really is full of refusals
    assert all(REFUSAL.search(r.payload["error"]) for r in refusals)

    # The play page.
    page = player_client.get(f"/sessions/{session.pk}/play/")
    assert page.status_code == 200
    assert leaks(page.content.decode()) == []
    # The dice stay verifiable, but a seed is behind a click ("Check this roll"), never in the open.
    html = page.content.decode()
    assert "seed " in html
    outside = re.sub(r'<details class="die-proof">.*?</details>', "", html, flags=re.S)
    assert not re.search(r"seed \d", outside)
    gm_page = gm_client.get(f"/sessions/{session.pk}/play/").content.decode()
    assert REFUSAL.search(gm_page) and DDA.search(gm_page)
    assert 'id="gm-view"' in gm_page and 'id="gm-view"' not in page.content.decode()

    # The events API (JSON: payloads included).
    api = player_client.get(f"/api/sessions/{session.pk}/events")
    assert api.status_code == 200
    body = api.content.decode()
    assert leaks(body) == [] and '"ToolRefused"' not in body and '"DifficultyAdjusted"' not in body
    gm_api = gm_client.get(f"/api/sessions/{session.pk}/events").content.decode()
    assert '"ToolRefused"' in gm_api and '"DifficultyAdjusted"' in gm_api

    # The socket: every frame the consumer would deliver (its gate is may_see), HTML and JSON.
    assert sent, "the session broadcast its events"
    as_player = Membership.objects.get(campaign=session.campaign, user=player)
    as_gm = Membership.objects.get(campaign=session.campaign, user=gm)
    player_frames = [m for m in sent if may_see(m["event"].get("audience"), as_player)]
    gm_frames = [m for m in sent if may_see(m["event"].get("audience"), as_gm)]
    assert player_frames and len(gm_frames) > len(player_frames)
    for frame in player_frames:
        assert frame["event"]["type"] not in events.GM_ONLY_TYPES
        assert leaks(frame["html"]) == [], frame["html"]
        assert leaks(str(frame["event"]["payload"])) == [], frame["event"]
    # The mission panel rides on one event per batch: one the players get too, never a GM-only
    # difficulty change after a roll (or the players' panel would go stale).
    panel = 'id="mission-panel"'
    assert sum(panel in m["html"] for m in player_frames) == sum(panel in m["html"] for m in gm_frames)
    gm_text = " ".join(m["html"] for m in gm_frames)
    assert REFUSAL.search(gm_text) and DDA.search(gm_text)


def test_players_search_memory_without_raw_scores(
    session, gm, player, gm_client, player_client, outsider_client
):
    """issue 13 hole 3: the memory page's search showed "score 0.0328 (vector 0.0164, keyword
    0.0161 …)" to players; they get readable entries, the GM the numbers behind a GM view."""
    membership = Membership.objects.get(campaign=session.campaign, user=gm)
    memory_services.memory_record(membership=membership, text="The relay core hums behind the bulkhead.")
    url = f"/campaigns/{session.campaign_id}/memory/?q=relay+core"
    page = player_client.get(url).content.decode()
    assert "The relay core hums" in page
    assert leaks(page) == []
    gm_page = gm_client.get(url).content.decode()
    assert "The relay core hums" in gm_page and SCORE.search(gm_page) and "GM view" in gm_page
    assert outsider_client.get(url).status_code in (403, 404)
