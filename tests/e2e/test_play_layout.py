"""The play page's layout in a real browser, at desktop (1280x900) and phone (390x844) sizes,
after a long session: the page is as tall as its content, the phone's action box is on screen,
the dice tray is short until asked, every script renders, and there is a favicon."""

from __future__ import annotations

import urllib.request

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
SCRIPTS_LINE = "Signal from the relay 🚀✨🛰️ 漢字の通信 — العربية رسالة"

# How tall the page really is: the bottom of <main> plus its bottom margin (or the viewport).
LAYOUT_JS = """() => {
  const main = document.querySelector('main');
  const margin = parseFloat(getComputedStyle(main).marginBottom) || 0;
  const content = Math.max(window.innerHeight, main.getBoundingClientRect().bottom + window.scrollY + margin);
  const act = document.getElementById('action-form').getBoundingClientRect();
  const log = document.getElementById('log');
  return {
    scrollHeight: document.documentElement.scrollHeight,
    content: Math.ceil(content),
    actTop: act.top, actBottom: act.bottom, innerHeight: window.innerHeight,
    logScrolls: log.scrollHeight > log.clientHeight,
  };
}"""
VISIBLE_ROLLS_JS = """() => Array.from(document.querySelectorAll('#dice-tray > .die-card'))
  .filter(e => e.offsetParent !== null).length"""


def _long_session(session, player, rounds: int = 25) -> int:
    """100 events straight into the event store: an action, its roll, the GM's answer, and a
    whisper, 25 times over; the last narration carries emoji, CJK and Arabic text."""
    from campaigns import events

    new = []
    for i in range(rounds):
        outcome = "success" if i % 2 else "failure"
        roll = {
            "kind": "check", "faces": [11 + i % 9], "kept": 11 + i % 9, "modifier": 2, "total": 13 + i % 9,
            "dc": 14, "skill": "hacking", "attribute": "tech", "outcome": outcome, "character": "Kira Vance",
        }  # fmt: skip
        text = SCRIPTS_LINE if i == rounds - 1 else f"The relay hums as round {i} plays out across the deck."
        new += [
            events.NewEvent(
                type="Action",
                actor_id=player.pk,
                payload={"text": f"I slice the airlock panel, try {i}.", "character": "Kira Vance"},
            ),
            events.NewEvent(type="DiceRolled", payload=roll, seed=1000 + i),
            events.NewEvent(
                type="Narration", build=lambda seq, text=text: ({"text": text, "action_seq": seq - 2}, None)
            ),
            events.NewEvent(
                type="Whisper",
                payload={"to": player.pk, "to_name": "Kira Vance", "text": f"Only you notice mark {i}."},
                audience=[player.pk],
            ),
        ]
    return events.append(session.pk, new).version


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_long_session_page_is_as_tall_as_its_content(
    browser, daphne, session_cookie, session, player, viewport, request
):
    """issue 13 hole 5 (runaway height): each log entry's visually hidden label ("acts:") was
    positioned absolutely with no positioned ancestor, so the labels of entries scrolled inside
    the log escaped it and stretched the page (7,319 px for 4,018 px of content; 13,602 px on a
    phone). On a phone the action box started below the fold and the dice tray never collapsed."""
    from playwright.sync_api import expect

    last_seq = _long_session(session, player)
    context = browser.new_context(base_url=daphne, viewport=viewport)
    context.add_cookies([{"name": "sessionid", "value": session_cookie(player), "url": daphne}])
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        page.goto(f"/sessions/{session.pk}/play/")
        expect(page.locator("#conn")).to_have_text("live")
        expect(page.locator(f"#ev-{last_seq}")).to_be_attached()
        assert page.locator("#log .entry[data-seq]").count() >= 100

        name = request.node.callspec.id
        page.screenshot(path=f"/tmp/gtw-play-{name}.png")  # as first seen, before any scrolling
        layout = page.evaluate(LAYOUT_JS)
        assert layout["logScrolls"], layout  # the log holds the 100 events in its own scroll box
        assert abs(layout["scrollHeight"] - layout["content"]) <= 4, layout

        if viewport is PHONE:
            # The action box is on screen without scrolling, and stays there (sticky).
            assert layout["actTop"] >= 0 and layout["actBottom"] <= layout["innerHeight"], layout
            page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
            moved = page.evaluate(LAYOUT_JS)
            assert page.evaluate("window.scrollY") > 0
            assert moved["actTop"] >= 0 and moved["actBottom"] <= moved["innerHeight"], moved
            page.evaluate("window.scrollTo(0, 0)")

        # The dice tray: the last 3 rolls, newest first, until "show all".
        assert page.evaluate(VISIBLE_ROLLS_JS) == 3
        newest = page.locator("#dice-tray > .die-card").first
        expect(newest).to_contain_text("= 19")  # round 24: 17 + 2
        page.get_by_text("Show all rolls").click()
        assert page.evaluate(VISIBLE_ROLLS_JS) == 12
        page.get_by_text("Show the last 3 only").click()
        assert page.evaluate(VISIBLE_ROLLS_JS) == 3

        # Emoji, CJK and Arabic text reach the page and render (the screenshot shows how).
        line = page.locator("#log .entry.narration", has_text="漢字の通信")
        expect(line).to_contain_text(SCRIPTS_LINE)
        line.scroll_into_view_if_needed()
        line.screenshot(path=f"/tmp/gtw-play-scripts-{name}.png")
        page.screenshot(path=f"/tmp/gtw-play-{name}-full.png", full_page=True)
    finally:
        context.close()


def test_favicon(browser, daphne):
    """issue 13 hole 5: /favicon.ico was a 404 and pages linked no icon."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as redirect:
        opener.open(daphne + "/favicon.ico", timeout=5)
    assert redirect.value.code in (301, 302)
    target = redirect.value.headers["Location"]
    assert target.endswith("/favicon.svg")
    with urllib.request.urlopen(daphne + "/accounts/login/", timeout=5) as response:
        assert f'rel="icon" href="{target}"' in response.read().decode()
    with urllib.request.urlopen(daphne + target, timeout=5) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("image/svg+xml")
        assert b"<svg" in response.read()
