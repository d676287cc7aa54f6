"""Tech-tree documents and rules (missions.techtree, pure): validation names the JSON path of
the problem; node status, starting and completing research, effects."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from missions import techtree

PACK = Path(__file__).resolve().parents[2] / "content" / "packs" / "starter" / "techtrees"


def _doc() -> dict:
    return {
        "slug": "t",
        "name": "Test tree",
        "kind": "player",
        "nodes": [
            {"id": "a", "name": "A", "cost": {"points": 1}, "beats": 1,
             "effects": [{"kind": "check_modifier", "attribute": "tech", "bonus": 2}]},
            {"id": "b", "name": "B", "cost": {"points": 2}, "beats": 2, "requires": {"all": ["a"]},
             "effects": [{"kind": "unlock_tool", "tool": "rules_skill_check", "option": "advantage",
                          "attribute": "wits"}]},
            {"id": "c", "name": "C", "requires": {"any": ["a", "b"]},
             "effects": [{"kind": "dda_cap", "shift": -1}]},
        ],
    }  # fmt: skip


def test_the_starter_pack_has_a_player_tree_and_an_alliance_tree_of_at_least_twelve_nodes():
    trees = [techtree.parse_tree(json.loads(p.read_text())) for p in sorted(PACK.glob("*.json"))]
    kinds = {t.kind: t for t in trees}
    assert set(kinds) == {"player", "alliance"}
    for tree in trees:
        assert len(tree.nodes) >= 12
        effect_kinds = {e["kind"] for n in tree.nodes for e in n.effects}
        assert "check_modifier" in effect_kinds
    every = {e["kind"] for t in trees for n in t.nodes for e in n.effects}
    assert every == set(techtree.EFFECT_KINDS)  # the pack shows every kind of effect


@pytest.mark.parametrize(
    ("mutate", "path", "words"),
    [
        (lambda d: d["nodes"][0].setdefault("requires", {}).update(all=["c"]), "$.nodes[", "cycle"),
        (
            lambda d: d["nodes"][1]["requires"].update(all=["zzz"]),
            "$.nodes[1].requires.all[0]",
            "unknown prerequisite",
        ),
        (
            lambda d: d["nodes"][2]["requires"].update(any=["a", "nope"]),
            "$.nodes[2].requires.any[1]",
            "unknown",
        ),
        (lambda d: d["nodes"][1]["cost"].update(points=-3), "$.nodes[1].cost.points", "negative"),
        (lambda d: d["nodes"][0].update(beats=-1), "$.nodes[0].beats", "negative"),
        (
            lambda d: d["nodes"][0]["effects"].append({"kind": "teleport"}),
            "$.nodes[0].effects[1].kind",
            "one of",
        ),
        (
            lambda d: d["nodes"][0]["effects"][0].update(attribute="luck"),
            "$.nodes[0].effects[0].attribute",
            "one of",
        ),
        (lambda d: d["nodes"][0]["effects"][0].update(bonus=9), "$.nodes[0].effects[0].bonus", "-5..5"),
        (lambda d: d["nodes"][2]["effects"][0].update(shift=0), "$.nodes[2].effects[0].shift", "not be 0"),
        (lambda d: d["nodes"][2].update(id="a"), "$.nodes[2].id", "already"),
        (lambda d: d["nodes"][2].update(effects=[]), "$.nodes[2].effects", "at least one"),
        (lambda d: d.update(kind="guild"), "$.kind", "one of"),
        (lambda d: d["nodes"][0].update(colour="red"), "$.nodes[0].colour", "not a known key"),
        (lambda d: d["nodes"][1]["requires"].update(all=["b"]), "$.nodes[1].requires.all[0]", "itself"),
    ],
)
def test_a_bad_tree_is_refused_with_the_json_path_of_the_problem(mutate, path, words):
    doc = _doc()
    mutate(doc)
    with pytest.raises(techtree.TechTreeError) as caught:
        techtree.parse_tree(doc)
    assert str(caught.value).startswith(path)
    assert words in caught.value.message


def test_a_longer_cycle_is_named_node_by_node():
    doc = _doc()
    doc["nodes"][0]["requires"] = {"any": ["c"]}  # a -> c -> (a or b), b -> a
    with pytest.raises(techtree.TechTreeError, match=r"cycle: .*->.*->"):
        techtree.parse_tree(doc)


KEYS = ["slug", "name", "kind", "nodes", "id", "cost", "points", "effects", "requires", "all", "any"]
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.sampled_from(KEYS), kids, max_size=5),
    max_leaves=20,
)


@given(JSON)
def test_any_json_is_either_a_tree_or_a_tech_tree_error(document):
    try:
        techtree.parse_tree(document)
    except techtree.TechTreeError as exc:
        assert exc.path.startswith("$")


def test_node_status_follows_all_and_any_prerequisites():
    tree = techtree.parse_tree(_doc())
    entry = techtree.entry_of({}, "character:1:t")
    assert [techtree.node_status(tree, entry, n) for n in tree.nodes] == ["available", "locked", "locked"]
    entry = {**entry, "done": ["a"]}
    assert [techtree.node_status(tree, entry, n) for n in tree.nodes] == ["done", "available", "available"]
    entry = {**entry, "active": {"node": "b", "beats_left": 2}}
    assert techtree.node_status(tree, entry, tree.by_id["b"]) == "in_progress"
    assert techtree.view(tree, entry)["nodes"][1]["beats_left"] == 2
    assert techtree.view(tree, entry)["counts"] == {"done": 1, "in_progress": 1, "available": 1, "locked": 0}


def test_research_is_refused_when_locked_done_busy_or_too_dear():
    tree = techtree.parse_tree(_doc())
    entry = techtree.entry_of({}, "k")
    with pytest.raises(techtree.ResearchRefused, match="locked: it needs A"):
        techtree.check_start(tree, entry, "b", points=10, held={})
    with pytest.raises(techtree.ResearchRefused, match="costs 1 research points; you have 0"):
        techtree.check_start(tree, entry, "a", points=0, held={})
    assert techtree.check_start(tree, entry, "a", points=1, held={}).id == "a"
    with pytest.raises(techtree.ResearchRefused, match="already researched"):
        techtree.check_start(tree, {**entry, "done": ["a"]}, "a", points=9, held={})
    busy = {**entry, "done": ["a"], "active": {"node": "b", "beats_left": 1}}
    with pytest.raises(techtree.ResearchRefused, match="one at a time"):
        techtree.check_start(tree, busy, "c", points=9, held={})
    with pytest.raises(KeyError):
        techtree.check_start(tree, entry, "nope", points=9, held={})


def test_items_are_part_of_the_cost():
    doc = _doc()
    doc["nodes"][0]["cost"]["items"] = [{"item": "medpatch", "qty": 2}]
    tree = techtree.parse_tree(doc)
    entry = techtree.entry_of({}, "k")
    with pytest.raises(techtree.ResearchRefused, match="needs 2 x medpatch; you hold 1"):
        techtree.check_start(tree, entry, "a", points=5, held={"medpatch": 1})
    assert techtree.check_start(tree, entry, "a", points=5, held={"medpatch": 2}).id == "a"


def test_only_the_gm_finishes_research_before_its_beats_run_out():
    tree = techtree.parse_tree(_doc())
    entry = {**techtree.entry_of({}, "k"), "done": ["a"], "active": {"node": "b", "beats_left": 1}}
    with pytest.raises(techtree.ResearchRefused, match="1 more beat"):
        techtree.check_complete(tree, entry, "b", by_gm=False)
    assert techtree.check_complete(tree, entry, "b", by_gm=True).id == "b"
    with pytest.raises(techtree.ResearchRefused, match="not being researched"):
        techtree.check_complete(tree, entry, "c", by_gm=True)


def test_the_fold_runs_research_time_down_by_beats_and_pays_drips():
    doc = _doc()
    doc["nodes"][0]["effects"].append({"kind": "drip", "item": "medpatch", "qty": 1, "every": 2})
    tree = techtree.parse_tree(doc)
    key = "character:1:t"
    log = [("ResearchStarted", {"owner": key, "node": "a", "beats": 2, "points": 1}), ("BeatChanged", {})]
    entry = techtree.fold(log)[key]
    assert entry["active"] == {"node": "a", "beats_left": 1} and techtree.due(entry) is None
    log += [("BeatChanged", {})]
    assert techtree.due(techtree.fold(log)[key]) == "a"
    log += [("ResearchCompleted", {"owner": key, "node": "a"})]
    entry = techtree.fold(log)[key]
    assert entry["done"] == ["a"] and entry["active"] is None and entry["spent"] == 1
    log += [("BeatChanged", {})]
    assert techtree.drips_due(tree, techtree.fold(log)[key]) == []
    log += [("BeatChanged", {})]
    assert techtree.drips_due(tree, techtree.fold(log)[key]) == [{"node": "a", "item": "medpatch", "qty": 1}]


def test_effects_combine_and_are_capped():
    doc = _doc()
    doc["nodes"][1]["effects"].append({"kind": "check_modifier", "attribute": "tech", "bonus": 5})
    doc["nodes"][2]["effects"].append(
        {"kind": "check_modifier", "attribute": "tech", "bonus": 3, "skill": "Hacking"}
    )
    doc["nodes"][2]["effects"].append({"kind": "deck_pool", "card_kind": "agenda", "weight": 2})
    tree = techtree.parse_tree(copy.deepcopy(doc))
    effects = techtree.effects_for([(tree, ["a"])])
    assert effects.modifier("tech") == 2 and effects.modifier("wits") == 0
    effects = techtree.effects_for([(tree, ["a", "b", "c"])])
    assert effects.modifier("tech") == techtree.MAX_BONUS
    assert effects.advantage == {"wits"} and effects.dda_shift == -1
    assert effects.card_weights == {"agenda": 2.0}
    only_c = techtree.effects_for([(tree, ["c"])])
    assert only_c.modifier("tech", "hacking") == 3 and only_c.modifier("tech", "repair") == 0
