"""The play page in a real browser: two players share a streamed turn over the session socket.

Daphne runs the offline narrator at 30 ms a word, so the GM's page sees the narration grow
word by word before the final Narration event replaces the preview.
"""

from __future__ import annotations

import itertools
import os
import re

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

OUTCOME = re.compile(r"^(Critical success|Success|Failure|Critical failure)$")
SEQS_JS = "() => Array.from(document.querySelectorAll('#log [data-seq]'), e => Number(e.dataset.seq))"
# The preview's text and how many final narrations the log holds, read in one go: a check made
# after the watch could already see the turn's end on a loaded machine.
PREVIEW_JS = """id => {
  const e = document.getElementById(id);
  const final = document.querySelectorAll("#log .entry.narration[data-seq]").length;
  return {text: e ? e.textContent : null, final};
}"""
CLOSE_CODE_JS = """url => new Promise(resolve => {
  const ws = new WebSocket(url);
  ws.onclose = e => resolve(e.code);
  setTimeout(() => resolve(-1), 8000);
})"""


@pytest.fixture
def pages(persona_pages, gm, player, outsider):
    return persona_pages({"gm": gm, "player": player, "outsider": outsider})


def _seqs(page) -> list[int]:
    return page.evaluate(SEQS_JS)


def _assert_gap_free(seqs: list[int]) -> None:
    assert seqs == list(range(1, len(seqs) + 1)), f"log seqs have gaps or duplicates: {seqs}"


def _act(page, text: str) -> None:
    page.locator("#action-text").fill(text)
    page.locator("#action-text").press("Enter")


def _watch_stream(page, seq: int) -> tuple[list[str], list[int]]:
    """Poll the preview of action `seq` until it has been seen to grow (or the turn ended): the
    texts seen, and for each how many final narrations the log held at that moment."""
    seen: list[str] = []
    finals: list[int] = []
    for _ in range(400):
        preview = page.evaluate(PREVIEW_JS, f"stream-{seq}-text")
        text = preview["text"]
        if text is None and seen:
            break  # the final narration removed the preview
        if text and (not seen or text != seen[-1]):
            seen.append(text)
            finals.append(preview["final"])
            if len(seen) >= 3:
                break
        page.wait_for_timeout(15)
    return seen, finals


def _wait_narrations(page, count: int) -> None:
    from playwright.sync_api import expect

    expect(page.locator("#log .entry.narration[data-seq]")).to_have_count(count)
    expect(page.locator("#log .entry.streaming")).to_have_count(0)


def test_two_players_share_a_streamed_turn(pages, daphne, session, shot):
    """Also the regression test for a stalled stream: with tasks inline, the acting socket ran
    the whole turn on Channels' one thread-sensitive executor, so every other socket's messages
    (which wait there for close_old_connections) arrived only after the turn had ended."""
    from playwright.sync_api import expect

    gm_page, player_page, outsider_page = pages["gm"], pages["player"], pages["outsider"]
    play_url = f"/sessions/{session.pk}/play/"

    player_page.goto("/")
    expect(player_page.get_by_role("link", name=session.campaign.name)).to_be_visible()
    shot(player_page, "dashboard")
    player_page.goto(f"/campaigns/{session.campaign_id}/")
    expect(player_page.get_by_role("link", name=str(session))).to_be_visible()
    shot(player_page, "campaign")

    for page in (gm_page, player_page):
        page.goto(play_url)
        expect(page.locator("#conn")).to_have_text("live")
    expect(gm_page.locator("#party .dot.on")).to_have_count(2)

    # Player A acts; the GM's page (B) sees the action, then the narration streaming in.
    _act(player_page, "I hack the airlock panel")
    action = gm_page.locator("#log .entry.action", has_text="I hack the airlock panel")
    expect(action).to_be_visible()
    seq = int(action.get_attribute("data-seq"))
    seen, finals = _watch_stream(gm_page, seq)
    assert len(seen) >= 2, f"the narration did not stream on the other page: {seen}"
    assert all(b.startswith(a) and len(b) > len(a) for a, b in itertools.pairwise(seen)), seen
    assert finals == [0] * len(seen)  # each text seen was a preview, before the final narration
    shot(gm_page, "play-streaming")

    for page in (gm_page, player_page):
        _wait_narrations(page, 1)
        expect(page.locator("#action-text")).to_have_value("")  # only matters for A: form reset on ack
        entry = page.locator("#log .entry.dice .die-card")
        expect(entry).to_have_count(1)
        for card in (entry, page.locator("#dice-tray .die-card")):
            expect(card.locator(".d20 b.kept")).to_have_text(re.compile(r"^\d{1,2}$"))
            expect(card.locator(".calc")).to_contain_text(re.compile(r"\d+ [+-] ?\d+ = \d+ vs DC \d+"))
            expect(card.locator(".outcome")).to_have_text(OUTCOME)
        narration = page.locator("#log .entry.narration[data-seq]").inner_text().split()
        assert narration[0] == "GM" and len(narration) > 8
        # The preview was the start of the authoritative narration.
        assert " ".join(narration[1:]).startswith(" ".join(seen[-1].split()))
    before = _seqs(gm_page)
    _assert_gap_free(before)
    assert before == _seqs(player_page)
    texts = gm_page.locator("#log [data-seq]").all_inner_texts()
    shot(gm_page, "play-after")

    # Reload B: the whole history is rendered by the server, once, in order.
    gm_page.reload()
    expect(gm_page.locator("#conn")).to_have_text("live")
    assert _seqs(gm_page) == before
    assert gm_page.locator("#log [data-seq]").all_inner_texts() == texts

    # B drops off the network; A plays a turn meanwhile; B heals from its last seq on reconnect.
    gm_page.context.set_offline(True)
    expect(gm_page.locator("#conn")).to_contain_text("offline")
    _act(player_page, "I look around the docking bay")
    _wait_narrations(player_page, 2)
    missed = _seqs(player_page)
    assert len(missed) > len(before)
    assert _seqs(gm_page) == before
    gm_page.context.set_offline(False)
    expect(gm_page.locator("#conn")).to_have_text("live")
    _wait_narrations(gm_page, 2)
    expect(gm_page.locator("#log [data-seq]")).to_have_count(len(missed))
    gm_page.wait_for_timeout(300)  # a late duplicate would land now
    assert _seqs(gm_page) == missed
    _assert_gap_free(missed)

    # The outsider gets the 404 page, and the session socket closes on them with 4403.
    response = outsider_page.goto(play_url)
    assert response.status == 404
    expect(outsider_page.get_by_role("heading", name="Not found")).to_be_visible()
    assert outsider_page.locator("#log").count() == 0
    shot(outsider_page, "not-found")
    ws_url = daphne.replace("http://", "ws://") + f"/ws/sessions/{session.pk}/"
    assert outsider_page.evaluate(CLOSE_CODE_JS, ws_url) == 4403


@pytest.mark.skipif(os.environ.get("GTW_SHOTS") != "1", reason="screenshots only: GTW_SHOTS=1")
def test_screenshots_of_the_other_pages(browser, daphne, session, gm, player, session_cookie, shot):
    """Not an assertion-heavy test: full-page pictures for a human (or agent) to review."""
    from playwright.sync_api import expect

    anonymous = browser.new_context(base_url=daphne, viewport={"width": 1280, "height": 800})
    page = anonymous.new_page()
    for path, name in (("/accounts/login/", "login"), ("/accounts/signup/", "signup")):
        assert page.goto(path).status == 200
        shot(page, name)
    page.goto("/accounts/login/")
    page.get_by_label("Email").fill(player.email)
    page.get_by_label("Password").fill("correct horse battery")
    page.get_by_role("button", name=re.compile("Sign in", re.I)).click()
    expect(page).to_have_url(re.compile(r"/$"))
    page.goto("/account/tokens/")
    page.get_by_label("Token name").fill("my-bot")
    page.get_by_role("button", name="Create token").click()
    shot(page, "tokens")
    anonymous.close()

    desktop = browser.new_context(base_url=daphne, viewport={"width": 1280, "height": 800})
    desktop.add_cookies([{"name": "sessionid", "value": session_cookie(gm), "url": daphne}])
    page = desktop.new_page()
    page.goto(f"/campaigns/{session.campaign_id}/")
    page.get_by_role("button", name="Create invite link").click()
    expect(page.get_by_label("Invite link")).to_be_visible()
    page.keyboard.press("Tab")  # show the keyboard focus ring in the picture
    shot(page, "campaign-gm")
    page.goto("/")
    page.get_by_label("Name").fill("Second Run")
    page.get_by_role("button", name="Create campaign").click()
    expect(page.get_by_role("heading", name="Second Run")).to_be_visible()
    page.get_by_text("Adjust attributes").click()
    shot(page, "campaign-new")
    page.goto(f"/campaigns/{session.campaign_id}/memory/")
    page.get_by_role("textbox", name="Note").fill("Ossian Ward owes the Wardens 3,000 credits.")
    page.get_by_role("button", name="Save note").click()
    page.get_by_label("Search memory").fill("who owes money?")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_text("3,000 credits").first).to_be_visible()
    shot(page, "memory")
    desktop.close()

    mobile = browser.new_context(
        base_url=daphne,
        viewport={"width": 390, "height": 844},
        is_mobile=True,
        has_touch=True,
    )
    mobile.add_cookies([{"name": "sessionid", "value": session_cookie(player), "url": daphne}])
    page = mobile.new_page()
    for path, name in (
        ("/", "m-dashboard"),
        (f"/campaigns/{session.campaign_id}/", "m-campaign"),
        (f"/sessions/{session.pk}/play/", "m-play"),
        ("/account/tokens/", "m-tokens"),
    ):
        page.goto(path)
        shot(page, name)
    mobile.close()
