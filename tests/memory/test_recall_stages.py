"""Issue 21's recall stages as pure functions (no database): time words, names, the feature
re-ranker and its confidence, facts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from memory.recall import entities, facts, rerank, temporal

NOW = datetime(2026, 12, 7, 20, 0, tzinfo=UTC)


def hint(q: str) -> temporal.TimeHint:
    return temporal.parse(q, now=NOW)


@pytest.mark.parametrize(
    ("query", "order"),
    [
        ("When did we last see Hale?", temporal.LATEST),
        ("last time we met the dock boss, where was it?", temporal.LATEST),
        ("Where is the Aster berthed now?", temporal.LATEST),
        ("most recent encounter with Orla?", temporal.LATEST),
        ("When did we first meet Orla?", temporal.EARLIEST),
        ("Where was the Aster berthed originally?", temporal.EARLIEST),
        ("Where did Hale hide the crate?", None),
    ],
)
def test_last_and_first_time(query, order):
    assert hint(query).order == order


def test_a_named_day_on_either_calendar():
    assert hint("Who did we meet on 3 March?").day == (3, 3)
    assert hint("Who did we meet on 3 March?").calendar is None  # either calendar
    game = hint("who did we run into on 2183-04-02")
    assert (game.day, game.year, game.calendar) == ((4, 2), 2183, "game")
    real = hint("In our session on Tuesday 3 March 2026, who did we run into?")
    assert (real.day, real.year, real.calendar) == ((3, 3), 2026, "real")
    assert hint("the 14th of March, who was there").day == (3, 14)
    assert hint("May I see the map?").temporal is False  # "May" alone is no date


def test_relative_dates_and_sessions():
    yesterday = hint("What did we buy yesterday?")
    assert (yesterday.start, yesterday.end) == (
        datetime(2026, 12, 6, tzinfo=UTC),
        datetime(2026, 12, 7, tzinfo=UTC),
    )
    assert hint("Who showed up in our fifth session?").session == 5
    assert hint("What did we find in game 12?").session == 12
    after = hint("who did we meet after 2026-11-02")
    assert after.start == datetime(2026, 11, 3, tzinfo=UTC) and after.end is None


def test_before_and_after_an_event():
    h = hint("What did the smuggler say about the relay before the betrayal?")
    assert (h.anchor, h.relation, h.order) == ("the betrayal", "before", temporal.LATEST)
    h = hint("Who did we meet three days before the raid on Tallow Yard?")
    assert (h.anchor, h.offset_days) == ("the raid on Tallow Yard", -3)
    assert hint("the day after the ambush at the docks, who did we run into?").offset_days == 1


@pytest.mark.parametrize(
    ("query", "session"),
    [
        ("in our fifth session, who did we meet?", 5),
        ("during session 5, who showed up", 5),
        ("who showed up in session five", 5),
        ("Who did we bump into in game night 13?", 13),
        ("Which NPC did we see in session #15?", 15),
        ("what happened in session number 7", 7),
        ("who did we meet in the 3rd session?", 3),
        ("Hey, who showed up in the fourteenth session", 14),
        ("in session twenty-one, who was there", 21),
    ],
)
def test_held_out_ways_to_name_a_session(query, session):
    assert hint(query).session == session


def test_words_that_only_look_like_a_session():
    assert hint("what did we do on the first night at the station?").session is None
    assert hint("that game a while ago, who won?").session is None


@pytest.mark.parametrize(
    ("query", "anchor", "offset"),
    [
        ("Who did we meet three days before the ambush?", "the ambush", -3),
        ("who was there a couple of days after we docked", "we docked", 2),
        ("4 days prior to the chase through berth 4, who did we run into?", "the chase through berth 4", -4),
        (
            "five days ahead of the raid on the Ninth Lantern, who did we see?",
            "the raid on the Ninth Lantern",
            -5,
        ),
        ("Which NPC did we see four days following the ambush at the dome?", "the ambush at the dome", 4),
        ("two days once we were past the heist on Halcyon Spire, who?", "the heist on Halcyon Spire", 2),
        ("the day prior to the heist on Vashti Ring, who crossed our path?", "the heist on Vashti Ring", -1),
        ("who did we meet the week before the ambush", "the ambush", -7),
        ("a day after the crash landing, who helped us", "the crash landing", 1),
    ],
)
def test_held_out_ways_to_count_days_from_an_event(query, anchor, offset):
    h = hint(query)
    assert (h.anchor, h.offset_days) == (anchor, offset)
    assert h.relation == ("before" if offset < 0 else "after")


def test_held_out_ways_to_say_before_and_after():
    h = hint("What did Hale say prior to the betrayal?")
    assert (h.anchor, h.relation, h.order) == ("the betrayal", "before", temporal.LATEST)
    h = hint("who did we meet once we were past the standoff at dock 19")
    assert (h.anchor, h.relation, h.order) == ("the standoff at dock 19", "after", temporal.EARLIEST)
    assert hint("What did we find following the raid?").relation == "after"
    assert hint("a couple of days ago, who sold us the crate?").start == datetime(2026, 12, 4, tzinfo=UTC)
    assert hint("What was Hale up to in the past?").anchor is None  # "past" alone is no "after"


def test_last_weekday_is_the_latest_such_day_before_today():
    monday = hint("who did we meet last Monday?")  # NOW is a Monday: a week ago
    assert (monday.start, monday.end) == (
        datetime(2026, 11, 30, tzinfo=UTC),
        datetime(2026, 12, 1, tzinfo=UTC),
    )
    assert hint("this past friday, what did we buy").start == datetime(2026, 12, 4, tzinfo=UTC)


def test_a_day_named_as_the_evening_we_played_is_on_the_real_calendar():
    h = hint("who did we meet in the game we played on may 14")
    assert (h.day, h.calendar) == ((5, 14), "real")
    h = hint("in our session on thursday the 26th of february, who crossed our path")
    assert (h.day, h.calendar) == ((2, 26), "real")


def test_what_asks_about_the_past():
    assert temporal.asks_about_past("Do I remember who sold us the crate?")
    assert temporal.asks_about_past("What did Hale say about the relay")
    assert not temporal.asks_about_past("I listen to the vault hum")


def test_window_membership_uses_the_right_calendar():
    h = temporal.TimeHint(day=(4, 2), year=2183, calendar="game")
    said = datetime(2026, 4, 2, 21, tzinfo=UTC)
    assert h.contains(said, game_date="2183-04-02")
    assert not h.contains(said, game_date="2183-04-03")
    either = temporal.TimeHint(day=(4, 2))
    assert either.contains(said, game_date="2183-01-01")  # the real evening matches
    assert temporal.TimeHint(session=5).contains(said, session=5)
    assert not temporal.TimeHint(session=5).contains(said, session=4)


@given(st.text(max_size=200))
def test_parse_never_raises(text):
    temporal.parse(text, now=NOW)
    entities.find(text, ["Mira Hale", "Vashti Ring"])
    entities.asks_for_link(text)
    entities.link_names(text)
    entities.names_by_role(text, text)
    entities.rest_of(text, "Hale said: \u201cMy sister Ulla keeps the books.\u201d")
    entities.said_in("Ulla Tarro", entities.words(text))


def test_names_known_and_proper():
    known = ["Captain Mira Hale", "Vashti Ring"]
    assert entities.find("When did we last see Hale?", known) == ["Captain Mira Hale"]
    found = entities.find("Where did Mira Hale hide the Orion crate on Vashti Ring?", known)
    assert found[:2] == ["Vashti Ring", "Captain Mira Hale"] and "Orion" in found
    # A word two known names share picks neither (it stays a plain proper noun); a sentence's
    # first word is not a name.
    assert entities.find("Where is Hale?", ["Mira Hale", "Tomas Hale"]) == ["Hale"]
    assert entities.find("Where is the ship?") == []
    assert entities.codes("Which ship was given code V4-2140 at 12.5?") == ["V4-2140", "12.5"]


def test_someone_named_by_their_role_is_a_link_to_their_name():
    profile = "Gilda Embry is a arms dealer who works out of the Sorrow Belt relay for the Tallow Cartel."
    assert entities.names_by_role("How much did the arms dealer want for the ledger?", profile)
    assert entities.names_by_role("the arms dealer from the Sorrow Belt relay: what did she sell?", profile)
    assert not entities.names_by_role("How much did Gilda want for the ledger?", profile)
    assert not entities.names_by_role("Who deals arms here?", profile)


def test_questions_that_need_a_link():
    assert entities.asks_for_link("Who sold us the crate, and who was it for?")
    assert entities.asks_for_link("Where can we find Rhea Sato's old mentor?")
    assert entities.asks_for_link("the person who handed us the coil — where's their bunk?")
    assert not entities.asks_for_link("Where did Hale hide the crate?")


def test_link_names_put_what_was_said_before_who_said_it():
    said = "Brix Szabo said: \u201cMy old mentor Ysolde keeps the books for the Orison Trust.\u201d"
    assert entities.link_names(said) == ["Ysolde", "Orison Trust", "old mentor", "books", "Brix Szabo"]
    # Things in lower case are links too: the item a sale and its buyer share.
    assert entities.link_names("Dov Strand sold us a drive coil at the Brass Compass for 390 credits.") == [
        "Dov Strand",
        "Brass Compass",
        "drive coil",
    ]
    assert entities.noun_phrases("I stow the plasma pistol in the cargo hold of the Copper Comet.") == [
        "plasma pistol",
        "cargo hold",
        "Copper Comet",
    ]


def test_a_name_the_question_already_says_is_no_link_even_misspelt():
    asked = entities.words("Birx Szabo told us someone owes the Tallow Cartel; where are they holed up?")
    assert entities.said_in("Brix Szabo", asked)  # "Birx": two letters swapped
    assert entities.said_in("Tallow Cartel", asked)
    assert not entities.said_in("Marek", asked)
    # A lower-case phrase needs all its words: "drive coil" is not "the engine part".
    assert not entities.said_in("drive coil", entities.words("Who sold us the engine part?"))
    assert entities.said_in("drive coil", entities.words("Who sold us the drive coil?"))


def test_the_rest_of_a_question_once_its_first_part_is_answered():
    answered = "Brix Szabo said: \u201cMarek is into the Tallow Cartel for 6200 credits.\u201d"
    assert entities.rest_of(
        "Birx Szabo told us someone owes the Tallow Cartel; where are they holed up?", answered
    ) == ("where are they holed up?")
    assert entities.rest_of(
        "the drive coil we bought \u2014 who from, and who was it really meant for?", ""
    ) == ("who was it really meant for?")
    # One clause: the question less the words the memory shares with it (codes too).
    answered = "Teodor Dray said: \u201cBrix is into the Lantern Court for 5700 credits.\u201d"
    rest = entities.rest_of("Where is the person who owes the Lantern Court 5700 credits hiding?", answered)
    assert "hiding" in rest and "Lantern" not in rest and "5700" not in rest


def item(i, text, *, fused=0.02, days_ago=0, distance=None, **kw):
    return rerank.Item(i, text, NOW - timedelta(days=days_ago), fused, distance, **kw)


def test_rerank_prefers_the_memory_that_covers_the_question():
    items = [
        item(1, "The reactor hums all night long.", fused=0.033),
        item(2, "Hale hid the relay key behind the coolant tanks.", fused=0.030),
    ]
    ranked = rerank.rerank("Where did Hale hide the relay key?", items, names=["Hale"])
    assert [r.id for r in ranked] == [2, 1]
    assert ranked[0].confidence > ranked[1].confidence


def test_last_time_picks_the_newest_memory_about_it_not_the_newest_memory():
    items = [
        item(1, "We met Hale at the Pit.", days_ago=30),
        item(2, "We met Hale at the Glass Chapel.", days_ago=5),
        item(3, "The bar was loud tonight.", days_ago=0),
    ]
    h = hint("When did we last see Hale?")
    assert rerank.rerank("When did we last see Hale?", items, hint=h, names=["Hale"])[0].id == 2
    h = hint("When did we first meet Hale?")
    assert rerank.rerank("When did we first meet Hale?", items, hint=h, names=["Hale"])[0].id == 1


def test_a_window_sinks_memories_outside_it():
    items = [
        item(1, "We met Orla at the Pit.", fused=0.033, game_date="2183-03-02"),
        item(2, "We met Vex at the Pit.", fused=0.020, game_date="2183-03-03"),
    ]
    h = hint("Who did we meet on 3 March 2183?")
    assert rerank.rerank("Who did we meet on 3 March 2183?", items, hint=h)[0].id == 2


def test_a_private_cue_favours_the_askers_own_memories():
    items = [
        item(1, "Hale argued with Vex about fuel prices.", fused=0.033),
        item(2, "GM whispered: Hale slips you a note: the vault is empty.", fused=0.020, private=True),
    ]
    assert rerank.rerank("What was in the note Hale slipped me?", items)[0].id == 2
    assert rerank.rerank("What did Hale argue about?", items)[0].id == 1


def test_confidence_is_low_for_a_detail_never_said():
    items = [item(1, "We met Hale at the Pit.", distance=0.6)]
    sure = rerank.rerank("Where did we meet Hale?", items, names=["Hale"])[0].confidence
    unsure = rerank.rerank("What did Hale say about the golden harpoon?", items, names=["Hale"])[0].confidence
    assert sure > 0.5 > unsure


def test_facts_keep_their_sources_and_namespace():
    found = facts.extract(
        [
            facts.Source(1, "campaign:1", "Hale commands the Warden cutter Aster. We drank at the bar."),
            facts.Source(2, "player:7", "GM whispered: Orla owes Vex 300 credits after a rigged game."),
            facts.Source(3, "campaign:1", "The GM said: Hale commands the Warden cutter Aster!"),
            facts.Source(4, "player:8", "Hale commands the Warden cutter Aster."),
            facts.Source(5, "campaign:1", "Kira acted: I search the bay. Is Hale here?"),
        ]
    )
    assert [(f.namespace, f.text, f.sources) for f in found] == [
        ("campaign:1", "Hale commands the Warden cutter Aster.", (1, 3)),
        ("player:7", "Orla owes Vex 300 credits after a rigged game.", (2,)),
        # The same words read in a private memory stay a private fact: never merged with the table's.
        ("player:8", "Hale commands the Warden cutter Aster.", (4,)),
    ]
