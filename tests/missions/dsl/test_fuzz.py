"""Fuzzing: every input string compiles or raises MissionError — never another exception.

Inputs come from the grammar itself (random derivations, token soup), from mutating the real
starter missions, and from plain random text and bytes. Anything that does compile must also
round-trip through the printer.
"""

import random

from hypothesis import given
from hypothesis import strategies as st

from missions.dsl import CompiledMission, MissionError, compile_source, to_source

from .strategies import FUZZ, HEADER, derivations, mutated_missions, outcome, token_soup


def _assert_well_formed(result) -> None:
    if isinstance(result, CompiledMission):
        again = compile_source(to_source(result.ast))
        assert again.ast == result.ast
        assert again.content_hash == result.content_hash
        return
    assert isinstance(result, MissionError)
    assert result.errors, "a MissionError must carry at least one error"
    for error in result.errors:
        assert error.line >= 1 and error.col >= 1
        assert str(error) == f"fuzz.mission:{error.line}:{error.col}: {error.message}"
        assert "\n" not in error.message
        assert "Traceback" not in error.message and "lark" not in error.message.lower()
    assert str(result) == "\n".join(str(e) for e in result.errors)


@FUZZ
@given(derivations())
def test_grammar_derivations_compile_or_raise_mission_error(text):
    _assert_well_formed(outcome(text))


@FUZZ
@given(token_soup())
def test_token_soup_compiles_or_raises_mission_error(text):
    _assert_well_formed(outcome(text))


@FUZZ
@given(mutated_missions())
def test_mutated_starter_missions_compile_or_raise_mission_error(text):
    _assert_well_formed(outcome(text))


@FUZZ
@given(st.one_of(st.text(max_size=200), st.binary(max_size=200).map(lambda b: b.decode("latin-1"))))
def test_random_text_compiles_or_raises_mission_error(text):
    _assert_well_formed(outcome(text))


@FUZZ
@given(st.text(max_size=120))
def test_random_text_after_a_valid_header_raises_mission_error_only(tail):
    _assert_well_formed(outcome(HEADER + 'scene a "A"\n' + tail))


def test_one_megabyte_of_junk_is_refused_by_size():
    rng = random.Random(7)
    junk = "".join(chr(rng.randrange(0, 0x2FFF)) for _ in range(1_048_576))
    result = outcome(junk)
    assert isinstance(result, MissionError)
    assert "too large" in str(result)


def test_source_just_under_the_limit_with_one_long_comment_still_parses():
    text = HEADER + 'scene a "A"\ncomplete when turns > 1\n# ' + "x" * 200_000 + "\n"
    assert isinstance(outcome(text), CompiledMission)


def test_deep_parentheses_do_not_recurse():
    depth = 100_000
    text = HEADER + 'scene a "A"\ncomplete when ' + "(" * depth + "turns > 1" + ")" * depth + "\n"
    assert isinstance(outcome(text), CompiledMission)


def test_unbalanced_deep_parentheses_are_a_syntax_error():
    text = HEADER + 'scene a "A"\ncomplete when ' + "(" * 100_000 + "turns > 1\n"
    result = outcome(text)
    assert isinstance(result, MissionError)
    assert "expected" in str(result) and "the end of the file" in str(result)


def test_deeply_nested_not_and_groups_hit_the_depth_limit():
    alternating = "(flag a and (flag b or " * 2_500 + "flag c" + "))" * 2_500
    for cond in ("not " * 10_000 + "flag x", alternating):
        result = outcome(HEADER + 'scene a "A"\ncomplete when ' + cond + "\n")
        assert isinstance(result, MissionError)
        assert "nested too deeply" in str(result)


def test_same_operator_groups_flatten_instead_of_nesting():
    result = outcome(
        HEADER + 'scene a "A"\ncomplete when ' + "(flag a and " * 5_000 + "flag b" + ")" * 5_000 + "\n"
    )
    assert isinstance(result, CompiledMission)
    assert result.ast["complete_when"]["op"] == "and"
    assert len(result.ast["complete_when"]["args"]) == 5_001


def test_largest_nested_same_operator_group_flattens():
    """Regression: merging `a and (b and (...))` group by group copied ever-longer argument lists,
    quadratic in the nesting (seconds for a 256 KiB source); merging now happens once, at the end."""
    prefix = HEADER + 'scene a "A"\ncomplete when '
    levels = (262_144 - len(prefix) - 20) // len("(flag a and )")
    result = outcome(prefix + "(flag a and " * levels + "flag b" + ")" * levels + "\n")
    assert isinstance(result, CompiledMission)
    assert len(result.ast["complete_when"]["args"]) == levels + 1


def test_alternating_and_or_nesting_within_the_limit_compiles():
    cond = "flag z"
    for i in range(30):
        cond = f"(flag a{i} {'and' if i % 2 else 'or'} {cond})"
    result = outcome(HEADER + 'scene a "A"\ncomplete when ' + cond + "\n")
    assert isinstance(result, CompiledMission)


def test_non_string_input_is_a_mission_error():
    for value in (None, b"mission x", 42):
        try:
            compile_source(value)  # type: ignore[arg-type]
        except MissionError as exc:
            assert "must be text" in str(exc)
        else:
            raise AssertionError("expected MissionError")


def test_lone_surrogates_and_control_characters_never_escape():
    for bad in ("\ud800", "\x00", "\x7f", "\x1b[31m"):
        for text in (HEADER.replace('"s"', f'"{bad}"'), HEADER + bad, HEADER + f"# {bad}\n"):
            result = outcome(text)
            assert isinstance(result, (MissionError, CompiledMission))
