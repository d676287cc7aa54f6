"""compile_source, its errors, and the `mission validate` command."""

import dataclasses
import io
import json

import pytest

from missions.dsl import CompiledMission, DslError, MissionError, compile_source
from missions.dsl.cli import validate_main

from .strategies import HEADER, STARTER


def _errors(text: str, filename: str = "docking.mission") -> list[str]:
    with pytest.raises(MissionError) as caught:
        compile_source(text, filename)
    return [str(e) for e in caught.value.errors]


def test_compiled_mission_is_frozen_and_describes_itself():
    compiled = compile_source(STARTER["vesper-relay"], "vesper-relay.mission")
    assert isinstance(compiled, CompiledMission)
    assert (compiled.slug, compiled.title, compiled.biome) == (
        "vesper-relay",
        "The Silence at Vesper Relay",
        "derelict-station",
    )
    assert compiled.ast["version"] == 1
    assert [s["id"] for s in compiled.ast["scenes"]] == ["docking-ring", "relay-core"]
    assert {"dock", "power", "crate"} <= {o["id"] for o in compiled.ast["objectives"]}
    assert len(compiled.content_hash) == 64
    with pytest.raises(dataclasses.FrozenInstanceError):
        compiled.slug = "other"  # type: ignore[misc]
    json.dumps(compiled.ast)  # plain JSON data


def test_ast_has_no_positions():
    text = json.dumps(compile_source(STARTER["rootbound-vault"]).ast)
    assert '"_' not in text


def test_keywords_are_exactly_the_grammar_words():
    from missions.dsl.ast import KEYWORDS
    from missions.dsl.parser import _get_parser

    words = {t.pattern.value for t in _get_parser().terminals if t.pattern.type == "str"}
    assert {w for w in words if w.isalpha()} == KEYWORDS


def test_dsl_error_and_mission_error_formats():
    error = DslError("docking.mission", 3, 5, "expected a scene")
    assert str(error) == "docking.mission:3:5: expected a scene"
    exc = MissionError([error, DslError("docking.mission", 4, 1, "second")])
    assert isinstance(exc, ValueError)
    assert str(exc) == "docking.mission:3:5: expected a scene\ndocking.mission:4:1: second"


def test_stray_brace_says_what_was_expected_in_words():
    text = HEADER + 'scene dock "Dock"\n  }\n'
    assert _errors(text) == [
        "docking.mission:5:3: expected '{', a scene, objective, clock, twist, npc, fail or reward block, "
        "'complete when' or the end of the file, found '}'"
    ]


def test_every_problem_is_reported_at_once_sorted_by_position():
    text = HEADER + (
        'scene dock "Dock" { go to core when turns > 1 }\n'
        'objective seal "Seal" { requires seel }\n'
        'clock alarm "Alarm" size 20\n'
        'fail "Boom" when clock alrm full\n'
    )
    assert _errors(text) == [
        "docking.mission:1:1: the mission has no end state: add 'complete when <condition>'",
        "docking.mission:4:27: unknown scene 'core'",
        "docking.mission:5:34: unknown objective 'seel', did you mean 'seal'?",
        "docking.mission:6:26: clock size must be between 1 and 12, got 20",
        "docking.mission:7:24: unknown clock 'alrm', did you mean 'alarm'?",
    ]


def test_unreachable_objective_points_at_its_name():
    text = HEADER + (
        'scene docking-ring "Ring"\n'
        'scene vault "Vault" \n'
        'objective seal_bulkhead "Seal the bulkhead" { in scene vault }\n'
        "complete when turns > 2\n"
    )
    errors = _errors(text)
    assert (
        "docking.mission:6:11: objective 'seal_bulkhead' is never reachable: its scene 'vault' can't be "
        "reached from the start scene 'docking-ring'" in errors
    )


def test_objective_whose_condition_requires_itself_is_unreachable():
    text = (
        HEADER
        + 'scene a "A"\nobjective o "O" { complete when objective o complete }\ncomplete when turns > 1\n'
    )
    assert _errors(text) == [
        "docking.mission:5:11: objective 'o' is never reachable: its 'complete when' condition can never hold"
    ]


def test_scene_transitions_may_cycle():
    text = HEADER + (
        'scene a "A" { go to b when flag x }\nscene b "B" { go to a when flag y }\ncomplete when in scene b\n'
    )
    assert compile_source(text).ast["scenes"][1]["transitions"][0]["to"] == "a"


def test_clock_that_never_rises_cannot_reach_a_threshold():
    text = (
        HEADER + 'scene a "A"\nclock c "C" size 4 { tick -1 when turn ended }\ncomplete when clock c >= 2\n'
    )
    assert _errors(text) == [
        "docking.mission:6:1: the mission can never be completed: "
        "its 'complete when' condition can never hold"
    ]


def test_reserved_words_can_be_twist_beats_deck_kinds_and_where_keys():
    text = HEADER + (
        'scene a "A"\n'
        "twist t { at beat twist; when beat twist; "
        'draw agenda where biome == "ice-moon" and faction == "helix" }\n'
        "complete when turns > 1\n"
    )
    twist = compile_source(text).ast["twists"][0]
    assert twist["beat"] == "twist"
    assert twist["when"] == {"op": "beat", "beat": "twist"}
    assert twist["draw"] == {"deck": "agenda", "where": {"biome": "ice-moon", "faction": "helix"}}


def test_loot_count_and_names_that_look_like_counts():
    text = (
        HEADER
        + 'scene a "A"\nreward on complete { loot x2 x3; item x2; loot salvage }\ncomplete when turns > 1\n'
    )
    reward = compile_source(text).ast["reward"]
    assert reward == {
        "xp": 0,
        "items": ["x2"],
        "loot": [{"table": "x2", "count": 3}, {"table": "salvage", "count": 1}],
    }


def test_fail_states_without_an_id_are_numbered():
    text = HEADER + 'scene a "A"\nfail "One" when turns > 9\nfail named "Two" when turns > 8\n'
    text += 'fail "Three" when turns > 7\ncomplete when turns > 1\n'
    assert [f["id"] for f in compile_source(text).ast["fails"]] == ["fail-1", "named", "fail-3"]


def test_strings_escape_and_join():
    text = HEADER.replace('"s"', '"a\\"b" "\\\\c\\n" "\\u00e9"') + 'scene a "A"\ncomplete when turns > 1\n'
    assert compile_source(text).ast["summary"] == 'a"b\\c\né'


def test_crlf_line_endings_parse():
    text = (HEADER + 'scene a "A"\ncomplete when turns > 1\n').replace("\n", "\r\n")
    assert compile_source(text).slug == "fuzz"


# ---- the validate command -------------------------------------------------------------------------


def _run(paths):
    out, err = io.StringIO(), io.StringIO()
    code = validate_main([str(p) for p in paths], out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_validate_main_ok_for_the_starter_missions(tmp_path):
    from .strategies import MISSIONS_DIR

    paths = sorted(MISSIONS_DIR.glob("*.mission"))
    code, out, err = _run(paths)
    assert code == 0 and err == ""
    for path, line in zip(paths, out.splitlines(), strict=True):
        compiled = compile_source(path.read_text(encoding="utf-8"))
        assert line == f"{path}: ok ({compiled.slug}, {compiled.content_hash[:12]})"


def test_validate_main_reports_errors_unreadable_and_non_utf8_files(tmp_path):
    good = tmp_path / "good.mission"
    good.write_text(HEADER + 'scene a "A"\ncomplete when turns > 1\n', encoding="utf-8")
    bad = tmp_path / "bad.mission"
    bad.write_text(HEADER + 'scene a "A"\n', encoding="utf-8")
    binary = tmp_path / "binary.mission"
    binary.write_bytes(b"\xff\xfe\x00mission")
    missing = tmp_path / "missing.mission"
    code, out, err = _run([good, bad, binary, missing, tmp_path])
    assert code == 1
    assert out.startswith(f"{good}: ok (fuzz, ")
    lines = err.splitlines()
    assert lines[0] == f"{bad}:1:1: the mission has no end state: add 'complete when <condition>'"
    assert lines[1] == f"{binary}: not UTF-8 text (invalid byte at offset 0)"
    assert lines[2].startswith(f"{missing}: cannot read file: ")
    assert lines[3].startswith(f"{tmp_path}: cannot read file: ")
    assert len(lines) == 4
    assert "Traceback" not in err


def test_validate_main_accepts_a_byte_order_mark(tmp_path):
    path = tmp_path / "bom.mission"
    path.write_bytes(b"\xef\xbb\xbf" + (HEADER + 'scene a "A"\ncomplete when turns > 1\n').encode())
    assert _run([path])[0] == 0
