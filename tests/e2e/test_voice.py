"""Voice in a real browser: Debian chromium with a fake microphone playing a line the piper
voice says (made at test time). Hold the talk button → the level meter moves → on release the
transcript lands in the action box → sent → the narration streams and its sentences are
scheduled back to back on one AudioContext timeline, captions advancing — for the player and
for a spectator; an X-card tap stops the spectator's voice at once. Screenshots of the
controls at desktop and phone widths (GTW_SHOTS=1)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from media.speech.audio import wav_bytes
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, TIMEOUT_MS
from tests.media.speech_helpers import spoken_wav, wav_samples

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

LINE = "Scan the derelict freighter for survivors."
STATE_JS = "() => window.gtwVoice && JSON.parse(JSON.stringify(window.gtwVoice))"


@pytest.fixture
def voice_env(monkeypatch):
    # Read by the Daphne subprocess's test settings: speak the narration there.
    monkeypatch.setenv("GTW_TEST_TTS_NARRATION", "1")


@pytest.fixture
def mic_file(tmp_path):
    samples, rate = wav_samples(spoken_wav(LINE))
    pad = np.zeros(int(rate * 0.6), dtype=np.float32)
    path = tmp_path / "mic.wav"
    path.write_bytes(wav_bytes(np.concatenate([pad, samples, pad]), rate))
    return path


@pytest.fixture
def voice_browser(voice_env, daphne, mic_file, monkeypatch):
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    args = [
        *CHROMIUM_ARGS,
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={mic_file}",
    ]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        try:
            yield browser
        finally:
            browser.close()


def _page(browser, daphne, cookie, width=1280, height=900):
    context = browser.new_context(base_url=daphne, viewport={"width": width, "height": height})
    context.add_cookies([{"name": "sessionid", "value": cookie, "url": daphne}])
    context.grant_permissions(["microphone"], origin=daphne)
    context.set_default_timeout(TIMEOUT_MS)
    return context, context.new_page()


def _spectator(campaign):
    from campaigns.models import Membership
    from tests.conftest import _user

    user = _user("spectator")
    Membership.objects.create(campaign=campaign, user=user, role=Membership.Role.SPECTATOR)
    return user


def _wait(page, predicate_js: str, timeout_ms: int = 30_000):
    page.wait_for_function(predicate_js, timeout=timeout_ms)
    return page.evaluate(STATE_JS)


def test_push_to_talk_then_the_gm_speaks_back_to_back(
    voice_browser, daphne, session_cookie, session, player, campaign, shot
):
    from playwright.sync_api import expect

    spectator = _spectator(campaign)
    ctx_p, page = _page(voice_browser, daphne, session_cookie(player))
    ctx_s, watcher = _page(voice_browser, daphne, session_cookie(spectator))
    try:
        for p in (page, watcher):
            p.goto(f"/sessions/{session.pk}/play/")
        expect(page.locator("#voice-ptt")).to_be_visible()
        expect(watcher.locator("#voice-ptt")).to_be_hidden()  # spectators listen, they don't talk
        expect(watcher.locator("#voice")).to_be_visible()
        # Autoplay rules: audio needs a gesture; the prompt says so, a click anywhere unlocks.
        expect(watcher.locator("#voice-unlock")).to_be_visible()
        watcher.locator("#voice-unlock").click()
        expect(watcher.locator("#voice-unlock")).to_be_hidden()
        page.locator("h1").first.click()
        assert page.evaluate("() => window.gtwVoice.unlocked")
        shot(page, "voice-controls-desktop")

        # Hold to talk, long enough for the looping fake microphone to say the line once.
        page.locator("#voice-ptt").scroll_into_view_if_needed()
        box = page.locator("#voice-ptt").bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.mouse.down()
        expect(page.locator("#voice-ptt")).to_have_attribute("aria-pressed", "true")
        expect(page.locator("#voice-level")).to_be_visible()
        peak = 0.0
        for _ in range(45):
            page.wait_for_timeout(100)
            peak = max(peak, page.evaluate("() => document.getElementById('voice-level').value"))
        shot(page, "voice-recording-desktop")
        page.mouse.up()
        assert peak > 0.02, "the level meter never moved"

        page.wait_for_function(
            "() => document.getElementById('action-text').value.toLowerCase().includes('freighter')",
            timeout=60_000,  # a ceiling: the transcription is CPU-bound on a loaded machine
        )
        state = page.evaluate(STATE_JS)
        assert state["transcripts"] and "freighter" in state["transcripts"][0]["text"].lower()

        page.locator("#action-text").press("Enter")
        # Sentences arrive as the narration streams: at least two, scheduled back to back.
        state = _wait(page, "() => window.gtwVoice.scheduled.length >= 3")
        chunks = state["scheduled"]
        for before, after in itertools.pairwise(chunks):
            assert after["at"] >= before["at"] + before["duration"] - 1e-3, "two sentences overlap"
        gaps = [
            after["at"] - (before["at"] + before["duration"]) for before, after in itertools.pairwise(chunks)
        ]
        assert min(gaps) < 0.005, f"no sentence was queued straight after the one before: {gaps}"
        assert all(c["duration"] > 0.3 for c in chunks)
        # Captions advance with the audio, for the player and the spectator alike.
        state = _wait(page, "() => window.gtwVoice.captions.length >= 2")
        assert state["captions"][0] == chunks[0]["text"]
        expect(page.locator("#voice-caption .speaking")).to_have_count(1)
        seen = _wait(watcher, "() => window.gtwVoice.captions.length >= 2")
        assert seen["captions"][:2] == state["captions"][:2]
        assert seen["scheduled"], "the spectator's page scheduled no audio"
        assert not state["errors"] and not seen["errors"]

        # Phone width: the controls still fit.
        page.set_viewport_size({"width": 390, "height": 844})
        expect(page.locator("#voice-ptt")).to_be_visible()
        width = page.evaluate("() => document.getElementById('voice').getBoundingClientRect().right")
        assert width <= 390
        shot(page, "voice-controls-390")

        # The X-card stops the voice on every page at once (here: the spectator's, live).
        page.set_viewport_size({"width": 1280, "height": 900})
        page.locator("form.xcard-quick button.xcard, form.xcard-form button.xcard").first.click()
        watcher.wait_for_function("() => (window.gtwVoice.stopped || 0) >= 1", timeout=60_000)
        expect(watcher.locator("#voice-caption .speaking")).to_have_count(0)
    finally:
        ctx_p.close()
        ctx_s.close()
