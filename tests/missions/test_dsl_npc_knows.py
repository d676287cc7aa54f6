"""Mission lore in the DSL: scene `detail`, npc `knows` (optionally `when pressed`) and `voice`:
parsed, validated, printed back, stored in the AST, and absent (hash unchanged) when unused."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from missions.dsl import MissionError, compile_source, content_hash, to_source
from missions.dsl.ast import MAX_FACT_CHARS, MAX_FACTS, MAX_VOICE_CHARS

from .dsl.strategies import STARTER, THOROUGH, valid_asts

HEAD = 'mission lore "Lore"\nbiome ice-moon\nsummary "s"\n'
END = "complete when flag done\n"

LORE = (
    HEAD
    + """
scene dock "Dock" {
  description "Dark."
  detail "The marks were made by mag-clamp treads."
  detail "The scoring is fresh: " "no frost in it."
  go to core when flag entered
}
scene core "Core"
npc ameline "Sister Ameline" {
  faction choir
  voice "Soft and formal; calls the relay 'she'."
  in scene core
  knows "The crew fled on the lifeboat."
  knows "I hid the key." when pressed
}
"""
    + END
)


def errors(text: str) -> list[str]:
    with pytest.raises(MissionError) as exc:
        compile_source(text, "lore.mission")
    return [e.message for e in exc.value.errors]


def test_lore_lines_land_in_the_ast():
    ast = compile_source(LORE).ast
    dock = ast["scenes"][0]
    assert dock["details"] == [
        "The marks were made by mag-clamp treads.",
        "The scoring is fresh: no frost in it.",
    ]
    assert "details" not in ast["scenes"][1]
    npc = ast["npcs"][0]
    assert npc["voice"] == "Soft and formal; calls the relay 'she'."
    assert npc["knows"] == [
        {"text": "The crew fled on the lifeboat.", "pressed": False},
        {"text": "I hid the key.", "pressed": True},
    ]


def test_lore_round_trips_through_the_printer():
    compiled = compile_source(LORE)
    printed = to_source(compiled.ast)
    assert 'knows "I hid the key." when pressed' in printed
    assert 'detail "The marks were made by mag-clamp treads."' in printed
    assert "voice " in printed
    again = compile_source(printed)
    assert again.ast == compiled.ast and again.content_hash == compiled.content_hash
    assert to_source(again.ast) == printed


def test_a_mission_without_lore_keeps_its_ast_and_hash():
    """Lore keys appear only when used: installed missions written before lore keep their hash."""
    plain = (
        HEAD + 'scene dock "Dock" { description "Dark." }\nnpc ossian "Ossian" { role "smuggler" }\n' + END
    )
    ast = compile_source(plain).ast
    assert set(ast["scenes"][0]) == {"id", "title", "description", "transitions"}
    assert set(ast["npcs"][0]) == {"id", "name", "faction", "role", "agenda", "scenes"}
    assert compile_source(plain).content_hash == content_hash(ast)


def test_lore_words_are_still_usable_as_names():
    """`voice`, `detail`, `knows`, `pressed` only lead statements inside scene/npc bodies."""
    text = (
        HEAD
        + 'scene detail "D" { go to knows when flag pressed }\nscene knows "K"\n'
        + 'npc voice "The Voice" { in scene knows; knows "Nothing." }\n'
        + END
    )
    ast = compile_source(text).ast
    assert [s["id"] for s in ast["scenes"]] == ["detail", "knows"]
    assert ast["npcs"][0]["id"] == "voice" and ast["npcs"][0]["knows"][0]["text"] == "Nothing."
    assert compile_source(to_source(ast)).ast == ast


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('npc n "N" { knows "" }', "npc 'n' has an empty 'knows' line"),
        ('npc n "N" { knows "   " }', "npc 'n' has an empty 'knows' line"),
        ('npc n "N" { knows "A fact." knows "a  FACT." }', "npc 'n' has the same 'knows' line twice"),
        ('npc n "N" { voice "a" voice "b" }', "npc 'n' has more than one 'voice'"),
        ('npc n "N" { voice " " }', "npc 'n' has an empty 'voice'"),
        ('scene s "S" { detail "" }', "scene 's' has an empty 'detail' line"),
        ('scene s "S" { detail "x" detail "x" }', "scene 's' has the same 'detail' line twice"),
        ('npc n "N" { knows "' + "x" * (MAX_FACT_CHARS + 1) + '" }', f"(the limit is {MAX_FACT_CHARS})"),
        ('npc n "N" { voice "' + "x" * (MAX_VOICE_CHARS + 1) + '" }', f"(the limit is {MAX_VOICE_CHARS})"),
        ('npc n "N" { ' + " ".join(f'knows "f{i}"' for i in range(MAX_FACTS + 1)) + " }", "more than 24"),
    ],
)
def test_bad_lore_is_reported_with_its_position(body, message):
    found = errors(HEAD + 'scene a "A"\n' + body + "\n" + END)
    assert any(message in e for e in found), found


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('npc n "N" { knows }', "expected a string, found '}'"),
        ('npc n "N" { knows "x" when }', "expected 'pressed', found '}'"),
        ('npc n "N" { knows "x" when flag a }', "expected 'pressed', found 'flag'"),
        ('npc n "N" { knows "x" pressed }', "found 'pressed'"),
        ('scene s "S" { knows "x" }', "found 'knows'"),
        ('npc n "N" { detail "x" }', "found 'detail'"),
        ('npc n "N" { voice 3 }', "expected a string, found number 3"),
    ],
)
def test_malformed_lore_is_a_syntax_error_in_words(body, message):
    found = errors(HEAD + 'scene a "A"\n' + body + "\n" + END)
    assert len(found) == 1 and message in found[0], found


def test_starter_missions_give_every_scene_details_and_every_npc_knowledge():
    for name, text in STARTER.items():
        ast = compile_source(text, f"{name}.mission").ast
        for scene in ast["scenes"]:
            assert len(scene.get("details", [])) >= 2, (name, scene["id"])
        for npc in ast["npcs"]:
            assert len(npc.get("knows", [])) >= 3, (name, npc["id"])
            assert npc.get("voice"), (name, npc["id"])
            assert any(k["pressed"] for k in npc["knows"]), (name, npc["id"])


_facts = st.text(
    st.characters(blacklist_categories=["Cs", "Cc"], blacklist_characters=['"', "\\"]),
    min_size=1,
    max_size=80,
).filter(lambda t: t.strip())


@st.composite
def asts_with_lore(draw):
    ast = draw(valid_asts())
    for scene in ast["scenes"]:
        details = draw(st.lists(_facts, max_size=3, unique_by=lambda t: " ".join(t.lower().split())))
        if details:
            scene["details"] = details
    for npc in ast["npcs"]:
        knows = draw(st.lists(_facts, max_size=3, unique_by=lambda t: " ".join(t.lower().split())))
        if knows:
            npc["knows"] = [{"text": k, "pressed": draw(st.booleans())} for k in knows]
        if draw(st.booleans()):
            npc["voice"] = draw(_facts)
    return ast


@THOROUGH
@given(asts_with_lore())
def test_generated_asts_with_lore_round_trip(ast):
    source = to_source(ast)
    compiled = compile_source(source)
    assert compiled.ast == ast
    assert compiled.content_hash == content_hash(ast)
    assert to_source(compiled.ast) == source
