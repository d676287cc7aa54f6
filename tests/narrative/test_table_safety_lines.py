"""Lines and veils (issue 18, part 4): members add and remove their own; a private entry is the
GM's to see (never another player's, in the page or the API); the narrator gets them all."""

from __future__ import annotations

import pytest
from django.test import Client

from campaigns import selectors, services
from campaigns.errors import Forbidden, Invalid, NotFound
from narrative import tablesafety
from narrative.models import TableLine
from narrative.turns.prompts import batch_messages, build_messages


def _member(user, campaign):
    return selectors.membership_get(viewer=user, campaign_id=campaign.pk)


@pytest.fixture
def other(campaign, gm):
    """A second player, to whom a private entry must stay invisible."""
    from tests.conftest import _user

    user = _user("other")
    invite = services.invite_create(membership=_member(gm, campaign))
    services.invite_accept(code=invite.code, user=user)
    return user


@pytest.fixture
def spectator(campaign, gm):
    from tests.conftest import _user

    user = _user("watcher")
    invite = services.invite_create(membership=_member(gm, campaign), role="spectator")
    services.invite_accept(code=invite.code, user=user)
    return user


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_private_line_is_the_gms_to_see_never_another_players(campaign, gm, player, other):
    tablesafety.table_line_add(
        membership=_member(player, campaign), kind="line", text="arachnids", private=True
    )
    tablesafety.table_line_add(membership=_member(player, campaign), kind="veil", text="interrogation")

    mine = tablesafety.table_lines_for(membership=_member(player, campaign))
    assert {(e.text, e.private, e.author) for e in mine} == {
        ("arachnids", True, player.username),
        ("interrogation", False, player.username),
    }
    theirs = tablesafety.table_lines_for(membership=_member(other, campaign))
    assert [(e.text, e.author, e.mine) for e in theirs] == [("interrogation", None, False)]
    gms = tablesafety.table_lines_for(membership=_member(gm, campaign))
    assert {(e.text, e.author) for e in gms} == {
        ("arachnids", player.username),
        ("interrogation", player.username),
    }


def test_pages_and_api_keep_a_private_line_from_other_players(campaign, session, gm, player, other):
    tablesafety.table_line_add(
        membership=_member(player, campaign), kind="line", text="arachnids", private=True
    )
    for user, sees in ((gm, True), (player, True), (other, False)):
        client = _client(user)
        for url in (f"/campaigns/{campaign.pk}/", f"/sessions/{session.pk}/play/"):
            html = client.get(url).content.decode()
            assert ("arachnids" in html) is sees, (user.username, url)
            # Nor who wrote it (the other player's name shows elsewhere on the page: the party).
            assert ("GM only" in html) is sees
        body = client.get(f"/api/campaigns/{campaign.pk}/table-lines").json()
        assert ("arachnids" in str(body)) is sees
    gm_view = _client(gm).get(f"/api/campaigns/{campaign.pk}/table-lines").json()["entries"]
    assert gm_view[0]["author"] == player.username and gm_view[0]["private"] is True


def test_outsider_is_refused_everywhere(campaign, session, player, outsider):
    row = tablesafety.table_line_add(membership=_member(player, campaign), kind="line", text="drowning")
    client = _client(outsider)
    assert client.get(f"/api/campaigns/{campaign.pk}/table-lines").status_code == 404
    response = client.post(
        f"/api/campaigns/{campaign.pk}/table-lines",
        {"kind": "line", "text": "x"},
        content_type="application/json",
    )
    assert response.status_code == 404
    assert client.delete(f"/api/campaigns/{campaign.pk}/table-lines/{row.pk}").status_code == 404
    assert (
        client.post(f"/campaigns/{campaign.pk}/table-lines", {"kind": "line", "text": "x"}).status_code == 404
    )
    assert client.post(f"/campaigns/{campaign.pk}/table-lines/{row.pk}/delete").status_code == 404
    assert TableLine.objects.filter(campaign=campaign).count() == 1


def test_api_add_list_remove_round_trip(campaign, player):
    client = _client(player)
    url = f"/api/campaigns/{campaign.pk}/table-lines"
    created = client.post(
        url, {"kind": "veil", "text": "  body   horror ", "private": True}, content_type="application/json"
    )
    assert created.status_code == 201
    entry = created.json()
    assert entry["text"] == "body horror" and entry["private"] and entry["mine"] and entry["kind"] == "veil"
    # The same entry again is kept once.
    again = client.post(
        url, {"kind": "veil", "text": "Body horror", "private": True}, content_type="application/json"
    )
    assert again.json()["id"] == entry["id"]
    assert [e["id"] for e in client.get(url).json()["entries"]] == [entry["id"]]
    assert client.delete(f"{url}/{entry['id']}").status_code == 204
    assert client.get(url).json()["entries"] == []


@pytest.mark.parametrize(
    "body",
    [
        {"kind": "curtain", "text": "spiders"},
        {"kind": "line", "text": "   "},
        {"kind": "line", "text": "x" * 201},
        {"kind": "line", "text": "the of and"},  # says nothing to keep out
        {"kind": "line", "text": "bad\x00byte"},
        {"kind": "line"},
    ],
)
def test_bad_input_is_a_clear_4xx_and_stores_nothing(campaign, player, body):
    response = _client(player).post(
        f"/api/campaigns/{campaign.pk}/table-lines", body, content_type="application/json"
    )
    assert response.status_code in (400, 422)
    assert response.json()["detail"]
    assert not TableLine.objects.filter(campaign=campaign).exists()


def test_only_the_author_or_the_gm_removes_an_entry(campaign, gm, player, other):
    public = tablesafety.table_line_add(membership=_member(player, campaign), kind="line", text="needles")
    private = tablesafety.table_line_add(
        membership=_member(player, campaign), kind="line", text="clowns", private=True
    )
    with pytest.raises(Forbidden):
        tablesafety.table_line_remove(membership=_member(other, campaign), line_id=public.pk)
    with pytest.raises(NotFound):  # a private entry of someone else's: not even there
        tablesafety.table_line_remove(membership=_member(other, campaign), line_id=private.pk)
    tablesafety.table_line_remove(membership=_member(gm, campaign), line_id=private.pk)
    tablesafety.table_line_remove(membership=_member(player, campaign), line_id=public.pk)
    assert not TableLine.objects.filter(campaign=campaign).exists()


def test_spectators_may_keep_lines_too(campaign, spectator):
    row = tablesafety.table_line_add(membership=_member(spectator, campaign), kind="veil", text="surgery")
    assert tablesafety.campaign_lines(campaign.pk)["veils"] == [row.text]


def test_page_form_adds_and_removes_and_comes_back(campaign, session, player):
    client = _client(player)
    response = client.post(
        f"/campaigns/{campaign.pk}/table-lines",
        {"kind": "line", "text": "zero-g vomit", "private": "on", "session": session.pk},
    )
    assert response.status_code == 302
    assert response["Location"] == f"/sessions/{session.pk}/play/#table-safety"
    row = TableLine.objects.get(campaign=campaign)
    assert row.private and row.author_id == player.pk
    # A `session` from another campaign (or nonsense) falls back to the campaign page.
    back = client.post(f"/campaigns/{campaign.pk}/table-lines/{row.pk}/delete", {"session": "999999"})
    assert back["Location"] == f"/campaigns/{campaign.pk}/#table-safety"
    assert not TableLine.objects.exists()
    bad = client.post(f"/campaigns/{campaign.pk}/table-lines", {"kind": "line", "text": ""})
    assert bad.status_code == 422 and b"Say what the line or veil is about" in bad.content


def test_campaign_lines_hold_every_entry_without_authors(campaign, gm, player, other):
    tablesafety.table_line_add(
        membership=_member(player, campaign), kind="line", text="spiders", private=True
    )
    tablesafety.table_line_add(membership=_member(other, campaign), kind="line", text="Spiders")
    tablesafety.table_line_add(membership=_member(other, campaign), kind="veil", text="torture")
    assert tablesafety.campaign_lines(campaign.pk) == {"lines": ["spiders"], "veils": ["torture"]}


def test_cap_per_member(campaign, player, settings):
    settings.GTW_TABLE_LINES_MAX = 2
    membership = _member(player, campaign)
    tablesafety.table_line_add(membership=membership, kind="line", text="one thing")
    tablesafety.table_line_add(membership=membership, kind="veil", text="other thing")
    with pytest.raises(Invalid, match="remove one"):
        tablesafety.table_line_add(membership=membership, kind="line", text="third thing")


def test_lines_and_veils_reach_the_party_and_stage_prompts():
    safety = {"lines": ["spiders"], "veils": ["torture"], "steer": False}
    context = {
        "action": {"text": "I open the crate", "actor": "kira", "character": None},
        "recent": [],
        "table_safety": safety,
    }
    system = build_messages(context)[0].content
    assert "never include" in system.lower() and "spiders" in system
    assert "off screen" in system and "torture" in system
    # Players' words: inside a data block, so a "line" can't inject instructions.
    assert "<<<DATA lines\nspiders\nDATA>>>" in system
    batch = {"batch": {"window": 1, "groups": [], "count": 0}, "table_safety": safety}
    assert "spiders" in batch_messages(batch)[0].content
    assert "Table safety" not in build_messages({**context, "table_safety": None})[0].content


def test_a_turn_prompt_carries_the_campaigns_lines(session, campaign, player):
    from campaigns.models import Event
    from narrative.turns.context import build_context

    tablesafety.table_line_add(
        membership=_member(player, campaign), kind="line", text="arachnids", private=True
    )
    action = Event.objects.create(
        session=session, seq=session.version + 1, type="Action", actor=player, payload={"text": "I look"}
    )
    context = build_context(session, action)
    assert context["table_safety"]["lines"] == ["arachnids"]
    assert "arachnids" in build_messages(context)[0].content


def test_opening_prompt_carries_them(session, campaign, player):
    from narrative.opening import opening_context, opening_messages

    tablesafety.table_line_add(membership=_member(player, campaign), kind="veil", text="decompression deaths")
    session.refresh_from_db()
    system = opening_messages(opening_context(session))[0].content
    assert "decompression deaths" in system


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A spider skitters across the hatch. The lights flicker.", "The lights flicker."),
        ("Three SPIDERS drop from the vent! Kira draws.", "Kira draws."),
        ("The spiderweb antenna hums. Go on.", "The spiderweb antenna hums. Go on."),  # a look-alike
        ("They torture the prisoner for hours. Dawn comes.", f"{tablesafety.VEIL_FADE} Dawn comes."),
        ("He was tortured. And tortured again. Dawn.", f"{tablesafety.VEIL_FADE} Dawn."),
        ("Nothing here touches a limit.", "Nothing here touches a limit."),
        ("A spider. A spider.", tablesafety.ALL_CUT),
        ('"Run!" she says. A spider drops.', '"Run!" she says.'),  # a closing quote stays put
    ],
)
def test_enforce_cuts_lines_and_fades_veils(text, expected):
    assert tablesafety.enforce(text, {"lines": ["spiders"], "veils": ["graphic torture"]}) == expected


def test_a_many_word_line_needs_all_its_words_in_one_sentence():
    safety = {"lines": ["harm to children"], "veils": []}
    assert (
        tablesafety.enforce("The children play. Harm comes later.", safety)
        == "The children play. Harm comes later."
    )
    assert tablesafety.enforce("Someone means to harm the child. Run.", safety) == "Run."


def test_the_stream_never_shows_a_cut_sentence():
    sent: list[str] = []

    class Inner:
        def push(self, text):
            sent.append(text)

        def flush(self):
            pass

        def reset(self, notice):
            sent.clear()

    stream = tablesafety.guarded(Inner(), {"lines": ["spiders"], "veils": []})
    for piece in ["The vent rattles. A spi", "der drops", " onto Kira's arm. She ", "freezes."]:
        stream.push(piece)
    stream.flush()
    shown = "".join(sent)
    assert "spider" not in shown.lower()
    assert "The vent rattles." in shown and "She freezes." in shown
    plain = Inner()
    assert tablesafety.guarded(plain, {"lines": [], "veils": []}) is plain  # no limits: no hold


def test_a_turn_never_shows_a_line_live_or_in_the_log(session, campaign, player, monkeypatch):
    """End to end through the party turn: whatever the narrator writes, a sentence over a line
    reaches neither the streamed preview nor the final narration, and a veil fades out."""
    from campaigns.models import Event
    from narrative import turns
    from narrative.llm.base import StreamEnd, TextDelta
    from narrative.llm.offline import OfflineNarrator
    from realtime import broadcast

    tablesafety.table_line_add(
        membership=_member(player, campaign), kind="line", text="spiders", private=True
    )
    tablesafety.table_line_add(membership=_member(player, campaign), kind="veil", text="torture")
    script = [
        "The hatch groans open. A fat spi",
        "der drops onto your shoulder! ",
        "Somewhere below, the guards torture a prisoner. ",
        "The corridor ahead is dark.",
    ]

    def scripted(self, request):
        for piece in script:
            yield TextDelta(piece)
        yield StreamEnd()

    monkeypatch.setattr(OfflineNarrator, "stream", scripted)
    sent = []
    monkeypatch.setattr(broadcast, "_send", lambda group, message: sent.append(message))
    turns.submit_action(session_id=session.pk, user=player, text="I open the hatch", idempotency_key="a1")
    turns.run_pending_turns(session.pk)
    narration = Event.objects.get(session=session, type="Narration").payload["text"]
    preview = "".join(m["text"] for m in sent if m.get("type") == "session.delta")
    for shown in (narration, preview):
        assert "spi" not in shown and "torture" not in shown
        assert shown.startswith("The hatch groans open.") and "The corridor ahead is dark." in shown


def test_the_packs_session_zero_defaults_come_first(campaign, player):
    pack = campaign.pack
    pack.data = {**pack.data, "table_safety": {"lines": ["Harm to children"], "veils": ["torture", 7]}}
    pack.save(update_fields=["data"])
    tablesafety.table_line_add(membership=_member(player, campaign), kind="line", text="harm to children")
    tablesafety.table_line_add(membership=_member(player, campaign), kind="line", text="spiders")
    assert tablesafety.campaign_lines(campaign.pk) == {
        "lines": ["Harm to children", "spiders"],
        "veils": ["torture"],
    }


def test_the_stream_says_what_the_final_text_says_however_it_is_cut():
    """Wherever the narrator's deltas split the text, the preview and the final narration agree."""
    safety = {"lines": ["spiders"], "veils": ["torture"]}
    text = 'The vent rattles. "A spider!" Kira hisses. They torture him. And torture him. Dawn comes… Go.'
    final = " ".join(tablesafety.enforce(text, safety).split())

    class Inner:
        def __init__(self):
            self.sent: list[str] = []

        def push(self, text):
            self.sent.append(text)

        def flush(self):
            pass

    for a in range(1, len(text)):
        for b in range(a, len(text), 7):
            inner = Inner()
            stream = tablesafety.SafetyStream(inner, safety)
            for piece in (text[:a], text[a:b], text[b:]):
                stream.push(piece)
            stream.flush()
            assert " ".join("".join(inner.sent).split()) == final, (a, b)
