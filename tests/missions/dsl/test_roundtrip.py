"""Round trips: to_source(ast) compiles back to the same AST and content hash."""

from hypothesis import given

from missions.dsl import compile_source, content_hash, to_source
from missions.dsl.ast import canonical_json

from .strategies import STARTER, THOROUGH, valid_asts


def test_there_are_three_starter_missions_one_per_biome():
    biomes = {compile_source(text).biome for text in STARTER.values()}
    assert biomes == {"derelict-station", "ice-moon", "jungle-world"}


def test_starter_missions_round_trip_and_printing_is_idempotent():
    for name, text in STARTER.items():
        compiled = compile_source(text, f"{name}.mission")
        printed = to_source(compiled.ast)
        again = compile_source(printed)
        assert again.ast == compiled.ast, name
        assert again.content_hash == compiled.content_hash, name
        assert to_source(again.ast) == printed, name


def test_positions_and_comments_do_not_change_the_hash():
    text = STARTER["vesper-relay"]
    moved = "# a new comment\n\n" + text.replace("\n", "\n\n").replace("  ", "    ")
    assert compile_source(moved).content_hash == compile_source(text).content_hash


def test_content_hash_is_sha256_of_canonical_json():
    import hashlib
    import json

    compiled = compile_source(STARTER["thule-descent"])
    canonical = json.dumps(compiled.ast, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert canonical_json(compiled.ast) == canonical
    assert compiled.content_hash == hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    assert content_hash(compiled.ast) == compiled.content_hash


@THOROUGH
@given(valid_asts())
def test_generated_asts_round_trip(ast):
    source = to_source(ast)
    compiled = compile_source(source)
    assert compiled.ast == ast
    assert compiled.content_hash == content_hash(ast)
    assert to_source(compiled.ast) == source
