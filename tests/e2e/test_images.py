"""Pictures in a real browser: the GM starts another mission (a scene change); two players and a
spectator see the scene panel's placeholder with a moving progress bar, then the new picture,
live over their sockets; the gallery lists it with its prompt, provider, model, seed and rights.

GTW_SHOTS=1 saves screenshots to shots/images/ (look at them: the procedural painter's pictures
must look like deliberate art)."""

from __future__ import annotations

import re

import pytest

from tests.e2e.conftest import SHOTS

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PAINT_MS = 40_000


@pytest.fixture
def slow_painter(monkeypatch):
    """Daphne paints on a scene change (off in other tests) and pauses a second per step, so the
    placeholder can be watched."""
    monkeypatch.setenv("GTW_TEST_IMAGE_AUTO", "1")
    monkeypatch.setenv("GTW_IMAGE_STEP_DELAY_S", "1.0")


@pytest.fixture
def table(campaign, characters, gm):
    from campaigns import selectors, services
    from tests.conftest import _user

    second, spectator = _user("player"), _user("spectator")
    gm_membership = selectors.membership_get(viewer=gm, campaign_id=campaign.pk)
    services.invite_accept(code=services.invite_create(membership=gm_membership).code, user=second)
    services.invite_accept(
        code=services.invite_create(membership=gm_membership, role="spectator").code, user=spectator
    )
    session = services.session_open(membership=gm_membership)
    return session, second, spectator


def _shot(page, name, folder="images"):
    import os

    if os.environ.get("GTW_SHOTS") == "1":
        (SHOTS / folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / folder / f"{name}.png"), full_page=False)


def test_a_scene_change_paints_for_everyone_at_the_table(slow_painter, persona_pages, table, gm, player):
    from playwright.sync_api import expect

    from media.models import Image

    session, second, spectator = table
    pages = persona_pages({"gm": gm, "player": player, "second": second, "spectator": spectator}, height=1000)
    for page in pages.values():
        page.goto(f"/sessions/{session.pk}/play/")
        expect(page.locator("#conn")).to_have_text(re.compile("live", re.I))
    before = Image.objects.filter(session=session, kind="scene").values_list("pk", flat=True).first()
    watchers = [pages["player"], pages["second"], pages["spectator"]]
    for page in watchers:
        expect(page.locator("#image-command")).to_have_count(0)  # the /image control is the GM's
    expect(pages["gm"].locator("#image-command")).to_be_visible()

    gm_page = pages["gm"]
    gm_page.locator("details.gm-controls summary").click()
    gm_page.locator("#gm-mission").select_option("thule-descent")
    # The GM's request is answered after the painting (tasks run inline in this test server), so
    # it is sent without waiting, and the other pages are watched meanwhile.
    gm_page.evaluate("document.querySelector('#gm-mission').form.requestSubmit()")

    bar = pages["player"].locator("#scene-image progress.image-progress")
    expect(bar).to_be_visible(timeout=PAINT_MS)
    for page in watchers[1:]:
        expect(page.locator("#scene-image .image-placeholder")).to_be_visible(timeout=PAINT_MS)
    _shot(pages["player"], "placeholder-player")
    first = float(bar.get_attribute("value") or bar.evaluate("b => b.value"))
    pages["player"].wait_for_function(
        "v => { const b = document.querySelector('#scene-image progress'); return !b || b.value > v; }",
        arg=first,
        timeout=PAINT_MS,
    )
    _shot(pages["player"], "progress-player")

    for page in watchers:
        picture = page.locator("#scene-image img.generated")
        expect(picture).to_be_visible(timeout=PAINT_MS)
        src = picture.get_attribute("src")
        assert re.fullmatch(r"/images/\d+/file", src)
        # The element shows as soon as it is swapped in; its bytes may still be on the way.
        page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=picture.element_handle())
        assert page.evaluate("img => img.naturalWidth", picture.element_handle()) == 768
    new = Image.objects.filter(session=session, kind="scene").exclude(pk=before).get()
    assert new.status == Image.Status.READY and new.parts["biome"] == "ice-moon"
    for page in watchers:
        assert page.locator("#scene-image").get_attribute("data-image") == str(new.pk)
    _shot(pages["player"], "picture-player")
    _shot(pages["spectator"], "picture-spectator")

    gallery = pages["spectator"]
    gallery.goto(f"/campaigns/{session.campaign_id}/images/")
    card = gallery.locator(f"#gallery-{new.pk}")
    expect(card).to_contain_text("procedural")
    expect(card).to_contain_text(str(new.seed))
    expect(card).to_contain_text("Thule")
    expect(card).to_contain_text("CC0")
    _shot(gallery, "gallery")

    # The GM admin's picture page: the thumbnail (its bytes, over the GM's own cookie), the
    # prompt, provider and seed; hiding it there takes it off the table's scene panels.
    admin = pages["gm"]
    admin.goto("/gm/media/image/")
    row = admin.locator("#result_list tbody tr", has=admin.locator(f"img[src='/images/{new.pk}/file']"))
    expect(row).to_contain_text("procedural")
    expect(row).to_contain_text(str(new.seed))
    thumb = row.locator(f"img[src='/images/{new.pk}/file']")
    admin.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=thumb.element_handle())
    _shot(admin, "gm-images", folder="imgperf")
    row.locator("input[name=_selected_action]").check()
    admin.locator("select[name=action]").select_option("hide")
    admin.locator("button[name=index]").click()
    expect(admin.locator("ul.messagelist")).to_contain_text("1 picture hidden")
    expect(pages["player"].locator("#scene-image")).not_to_have_attribute("data-image", str(new.pk))
    _shot(admin, "gm-images-hidden", folder="imgperf")
    _shot(pages["player"], "player-after-hide", folder="imgperf")
    # Banned words: the GM's campaign is the only choice; the word is listed once saved.
    admin.goto("/gm/media/bannedword/add/")
    expect(admin.locator("select[name=campaign] option")).to_have_count(2)  # "---------" and theirs
    admin.locator("select[name=campaign]").select_option(str(session.campaign_id))
    admin.locator("input[name=word]").fill("kraken")
    admin.locator("input[name=_save]").click()
    expect(admin.locator("#result_list")).to_contain_text("kraken")
    _shot(admin, "gm-banned-words", folder="imgperf")
