"""The character sheet on the play and campaign pages (issue 13 part 4): level, XP bar, attributes
with status modifiers, statuses with turns left, inventory and the party's stash; each player's own
sheet open and the others' folded, the GM's all open; outsiders refused; a sheet never carries
another player's private knowledge or the engine's internals; and the sheets follow XP, loot,
level and status events live, on every socket, without changing who has which sheet open."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from campaigns import selectors, services
from campaigns.models import Campaign, Character, Event, Membership
from narrative import engine
from narrative.engine import inventory
from realtime import broadcast
from tests.narrative.test_engine import call


@pytest.fixture
def second(campaign, gm):
    """A second player, Vex, in the same campaign."""
    from tests.conftest import _user

    user = _user("second")
    invite = services.invite_create(membership=selectors.membership_get(viewer=gm, campaign_id=campaign.pk))
    services.invite_accept(code=invite.code, user=user)
    services.character_create(
        membership=selectors.membership_get(viewer=user, campaign_id=campaign.pk),
        name="Vex Arden",
        archetype="envoy",
    )
    return user


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def sheet_of(html: str, character: Character) -> str:
    """The <details> of one character's sheet on a page."""
    match = re.search(
        rf'<details class="sheet[^"]*" id="sheet-{character.pk}"[^>]*>.*?</details>', html, re.S
    )
    assert match, f"no sheet for {character.name}"
    return match.group(0)


def is_open(html: str, character: Character) -> bool:
    head = re.search(rf'<details class="sheet[^"]*" id="sheet-{character.pk}"[^>]*>', html).group(0)
    return head.endswith(" open>")


def pages(session, campaign_id):
    return (f"/sessions/{session.pk}/play/", f"/campaigns/{campaign_id}/")


# ---- who sees which sheet -----------------------------------------------------------------------


def test_each_player_sees_their_own_sheet_open_and_the_others_folded(session, gm, player, second):
    kira = Character.objects.get(campaign=session.campaign, owner=player)
    vex = Character.objects.get(campaign=session.campaign, owner=second)
    ossian = Character.objects.get(campaign=session.campaign, owner=gm)
    for url in pages(session, session.campaign_id):
        page = client_for(player).get(url)
        assert page.status_code == 200
        html = page.content.decode()
        assert is_open(html, kira) and not is_open(html, vex) and not is_open(html, ossian)
        assert 'class="sheet mine"' in sheet_of(html, kira) and "mine" not in sheet_of(html, vex)[:40]
        assert html.index(f'id="sheet-{kira.pk}"') < html.index(f'id="sheet-{vex.pk}"')  # own first
        # The GM sees every sheet open.
        gm_html = client_for(gm).get(url).content.decode()
        assert all(is_open(gm_html, c) for c in (kira, vex, ossian))


def test_outsiders_are_refused_the_pages_that_hold_sheets(session, outsider_client):
    for url in pages(session, session.campaign_id):
        assert outsider_client.get(url).status_code == 404
    assert Client().get(f"/sessions/{session.pk}/play/").status_code == 302  # signed out: sign in


def test_bad_ids_are_a_clear_404(player_client):
    for url in ("/sessions/999999/play/", "/campaigns/999999/", "/campaigns/0/"):
        assert player_client.get(url).status_code == 404


# ---- what a sheet shows --------------------------------------------------------------------------


def test_the_sheet_shows_level_xp_bar_attributes_statuses_and_inventory(session, gm, player, player_client):
    kira = Character.objects.get(campaign=session.campaign, owner=player)
    Character.objects.filter(pk=kira.pk).update(
        xp=150, level=2, inventory=[{"item": "credits", "qty": 43}, {"item": "medpatch", "qty": 2}]
    )
    Campaign.objects.filter(pk=session.campaign_id).update(stash=[{"item": "relay-key", "qty": 1}])
    outcome, _ = call(session, player, "status_apply", {"character": "Kira Vance", "effect": "shaken"})
    assert not outcome.refused
    for url in pages(session, session.campaign_id):
        html = player_client.get(url).content.decode()
        sheet = sheet_of(html, kira)
        assert "Level 2" in sheet
        # XP bar: 150 of the 100..300 band for level 3 (missions.rules.progression).
        assert re.search(r'<progress id="xp-\d+" class="xp-bar" max="200" value="50">', sheet)
        assert "150 / 300 XP · 150 to level 3" in sheet
        # Netrunner wits 14 (+2) is shaken (-2 wits): +0 on a roll now.
        assert re.search(r"<th scope=\"row\">wits</th><td>14</td>\s*<td>\+0 <span[^>]*>\(-2 status\)", sheet)
        assert "Shaken</span> 2 turns left" in sheet and "wits -2" in sheet
        assert (
            "Credits: <strong>43</strong>" in sheet and 'Medpatch <span class="qty">\u00d72</span>' in sheet
        )
        stash = re.search(r'<div id="party-stash".*?</div>', html, re.S).group(0)
        assert "Relay key" in stash


def test_a_sheet_never_carries_private_knowledge_or_engine_internals(
    session, gm, player, second, monkeypatch
):
    """What is public: see narrative/sheets.py. A whisper to Vex and the loot table and seed behind
    Kira's find stay off every sheet; Kira reads Vex's sheet (level, statuses, gear) and nothing
    addressed to Vex."""
    monkeypatch.setattr(inventory, "draws_for", lambda total, low, high: 1)
    monkeypatch.setattr(
        inventory, "search", lambda table, rng, draws, sure=False: [{"item": "pulse-pistol", "qty": 1}]
    )
    _, created = call(session, second, "rng_roll", {"expression": "2d6", "loot": "salvage"})
    found = created[1]
    services.session_whisper(
        session=session,
        membership=Membership.objects.get(campaign=session.campaign, user=gm),
        to_user_id=second.pk,
        text="The vault code is 7741.",
    )
    vex = Character.objects.get(campaign=session.campaign, owner=second)
    kira_view = client_for(player).get(f"/sessions/{session.pk}/play/").content.decode()
    vex_view = client_for(second).get(f"/sessions/{session.pk}/play/").content.decode()
    assert "7741" in vex_view and "7741" not in kira_view  # the whisper is Vex's alone
    for html in (kira_view, vex_view):
        sheet = sheet_of(html, vex)
        assert "Pulse pistol" in sheet  # the find itself is public: the table saw it
        assert "7741" not in sheet and "salvage" not in sheet and str(found.seed) not in sheet
        assert second.email not in html


# ---- live -----------------------------------------------------------------------------------------


@pytest.fixture
def sent(monkeypatch):
    frames = []
    monkeypatch.setattr(broadcast, "_send", lambda group, message: frames.append(message))
    return frames


def test_sheets_follow_loot_xp_levels_and_statuses_live(
    session, gm, player, sent, monkeypatch, django_capture_on_commit_callbacks
):
    kira = Character.objects.get(campaign=session.campaign, owner=player)
    monkeypatch.setattr(inventory, "draws_for", lambda total, low, high: 1)
    monkeypatch.setattr(
        inventory, "search", lambda table, rng, draws, sure=False: [{"item": "medpatch", "qty": 1}]
    )
    with django_capture_on_commit_callbacks(execute=True):
        call(session, player, "rng_roll", {"expression": "2d6", "loot": "any"}, index=0)
    loot_frame = next(m for m in sent if m["event"]["type"] == "LootFound")
    swap = re.search(
        rf'<div hx-swap-oob="innerHTML:#sheet-{kira.pk}">(.*?)</div>\s*'
        r'(?=<div hx-swap-oob|<div id="party-stash")',
        loot_frame["html"],
        re.S,
    )
    assert swap and "Medpatch" in swap.group(1)
    assert " open" not in swap.group(0)  # one render for every socket: who has it open is the page's
    assert "finds a medpatch" in loot_frame["html"]  # the log line
    dice_frame = next(m for m in sent if m["event"]["type"] == "DiceRolled")
    assert "innerHTML:#sheet-" not in dice_frame["html"]  # only events that change a sheet carry it

    sent.clear()
    with django_capture_on_commit_callbacks(execute=True):
        engine.gm_override(
            session=session, actor_id=gm.pk, change={"objective": "dock", "status": "complete"}
        )
        session.refresh_from_db()
        engine.gm_override(
            session=session, actor_id=gm.pk, change={"objective": "power", "status": "complete"}
        )
    reward = next(m for m in sent if m["event"]["type"] == "RewardGranted")
    assert 'id="party-stash" class="stash" hx-swap-oob="true"' in reward["html"]
    level = next(
        m
        for m in sent
        if m["event"]["type"] == "LevelGained" and m["event"]["payload"]["character_id"] == kira.pk
    )
    assert "Kira Vance reaches level 2" in level["html"]
    card = re.search(
        rf'innerHTML:#sheet-{kira.pk}">(.*?)</div>\s*(?=<div hx-swap-oob|<div id="party-stash")',
        level["html"],
        re.S,
    ).group(1)
    assert 'class="level-badge levelled" data-level="2">Level 2' in card  # highlighted

    sent.clear()
    with django_capture_on_commit_callbacks(execute=True):
        call(session, player, "status_apply", {"character": "Kira Vance", "effect": "shaken"}, index=9)
    status = next(m for m in sent if m["event"]["type"] == "StatusApplied")
    assert re.search(rf"innerHTML:#sheet-{kira.pk}\">.*Shaken.*2 turns left", status["html"], re.S)


def test_a_level_up_shows_in_the_log_and_on_the_sheet_after_a_reload(session, gm, player, player_client):
    for objective in ("dock", "power"):
        session.refresh_from_db()
        engine.gm_override(
            session=session, actor_id=gm.pk, change={"objective": objective, "status": "complete"}
        )
    kira = Character.objects.get(campaign=session.campaign, owner=player)
    html = player_client.get(f"/sessions/{session.pk}/play/").content.decode()
    level_up = Event.objects.get(session=session, type="LevelGained", payload__character_id=kira.pk)
    assert re.search(rf'id="ev-{level_up.seq}".*?Kira Vance reaches level 2', html, re.S)
    assert "Level 2" in sheet_of(html, kira)
