"""The prompt builder and the banned-word check (pure: no database)."""

from __future__ import annotations

import pytest

from media.images.prompt import (
    DEFAULT_BANNED,
    MAX_PROMPT,
    MAX_SUBJECT,
    ImageRequest,
    PromptError,
    PromptRefused,
    build_prompt,
    find_banned,
    request_hash,
)

BANNED = [*DEFAULT_BANNED, "bloodbath", "red mist"]


@pytest.mark.parametrize(
    ("text", "word"),
    [
        ("a gore-soaked corridor", "gore"),
        ("GORE", "gore"),
        ("g o r e on the walls", "gore"),
        ("g.o.r.e", "gore"),
        ("g-o-r-e", "gore"),
        ("go.re", "gore"),
        ("g_o_r_e", "gore"),
        ("g0r3 everywhere", "gore"),
        ("\uff27\uff2f\uff32\uff25", "gore"),  # full-width: NFKC
        ("g\u043er\u0435", "gore"),  # Cyrillic o and e
        ("go\u200bre", "gore"),  # a zero-width space inside
        ("g\u00f2r\u00e9", "gore"),  # accents
        ("$ex appeal", "sex"),
        ("n.u.d.e", "nude"),
        ("a n u d e statue", "nude"),
        ("BloodBath at the dock", "bloodbath"),
        ("blood bath", "bloodbath"),
        ("a red   mist rises", "red mist"),
        ("red-mist", "red mist"),
    ],
)
def test_banned_words_and_their_evasions_are_found(text, word):
    assert find_banned(text, BANNED) == word


@pytest.mark.parametrize(
    "text",
    [
        "Essex Station",  # whole words only: 'sex' inside a word is not the word
        "the gorefields of Thule",
        "a nudibranch-shaped drone",
        "exit 5, sector 101",
        "redmistral winds",
        "g o r g e o u s",
        "",
    ],
)
def test_innocent_text_passes(text):
    assert find_banned(text, BANNED) is None


def test_a_campaign_word_is_refused_with_the_word_named():
    req = ImageRequest(kind="scene", subject="the Kraken's lair", style="oil painting")
    with pytest.raises(PromptRefused) as caught:
        build_prompt(req, banned=[*DEFAULT_BANNED, "Kraken"])
    assert caught.value.word == "Kraken"
    assert "Kraken" in str(caught.value)


def test_banned_words_in_the_style_or_lore_are_refused_too():
    with pytest.raises(PromptRefused):
        build_prompt(ImageRequest(kind="scene", style="n s f w pinup"), banned=DEFAULT_BANNED)
    with pytest.raises(PromptRefused):
        build_prompt(ImageRequest(kind="scene", lore="a g.o.r.y end"), banned=DEFAULT_BANNED)


def test_the_negative_prompt_is_not_checked():
    built = build_prompt(ImageRequest(kind="scene", biome="ice-moon"), banned=DEFAULT_BANNED)
    assert "nsfw" in built.negative


def test_a_scene_prompt_carries_place_biome_light_npcs_style_and_lore():
    built = build_prompt(
        ImageRequest(
            kind="scene",
            biome="ice-moon",
            biome_description="Blue-white plains over a black ocean",
            location="Thule Landing Field",
            beat="twist",
            npcs=("Ossian Ward",),
            lore="A frontier of failing relays",
            style="matte painting",
        )
    )
    for part in (
        "Thule Landing Field",
        "ice moon",
        "red emergency light",
        "Ossian Ward",
        "matte painting",
        "failing relays",
    ):
        assert part in built.prompt
    assert built.parts["kind"] == "scene"
    assert built.parts["biome"] == "ice-moon"
    assert built.parts["beat"] == "twist"


def test_portrait_and_item_prompts():
    portrait = build_prompt(
        ImageRequest(kind="portrait", character="Kira", archetype="netrunner", archetype_name="Netrunner")
    )
    assert "portrait of Kira, a Netrunner" in portrait.prompt
    assert portrait.parts["archetype"] == "netrunner"
    item = build_prompt(ImageRequest(kind="item", item="relay-key", item_name="Relay key", item_kind="quest"))
    assert item.prompt.startswith("Relay key, a quest item")
    assert item.parts["item_kind"] == "quest"


def test_unknown_kind_and_long_subject_are_errors_not_refusals():
    with pytest.raises(PromptError) as caught:
        build_prompt(ImageRequest(kind="video"))
    assert not isinstance(caught.value, PromptRefused)
    with pytest.raises(PromptError):
        build_prompt(ImageRequest(kind="scene", subject="x" * (MAX_SUBJECT + 1)))


def test_the_prompt_is_clipped_lore_first():
    built = build_prompt(
        ImageRequest(
            kind="scene", subject="y" * MAX_SUBJECT, lore="lore " * 400, scene_description="d " * 400
        )
    )
    assert len(built.prompt) <= MAX_PROMPT
    assert built.prompt.startswith("y" * MAX_SUBJECT)


def test_the_request_hash_is_canonical():
    a = request_hash({"prompt": "p", "seed": 1, "size": [768, 432]})
    b = request_hash({"size": [768, 432], "seed": 1, "prompt": "p"})
    assert a == b and len(a) == 64
    assert a != request_hash({"prompt": "p", "seed": 2, "size": [768, 432]})
