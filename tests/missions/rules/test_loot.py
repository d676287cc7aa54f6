import json
import random
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from missions.rules.loot import LootError, combine, load_tables, roll, validate_table

PACK = Path(__file__).resolve().parents[3] / "content" / "packs" / "starter"

TABLE = {
    "name": "Test",
    "nothing": 20,
    "entries": [
        {"item": "medpatch", "weight": 50, "min": 1, "max": 3},
        {"item": "credits", "weight": 30, "min": 10, "max": 20},
    ],
}


def _pack_items():
    return [item["slug"] for item in json.loads((PACK / "pack.json").read_text())["items"]]


def test_shipped_loot_tables_validate_against_the_pack_items():
    tables = load_tables(json.loads((PACK / "loot.json").read_text()), items=_pack_items())
    assert set(tables) == {"salvage", "relic", "supplies"}
    used = {e.item for t in tables.values() for e in t.entries}
    assert used == {*_pack_items(), "credits"}


def test_distribution_matches_weights_with_a_fixed_seed():
    # A chi-square goodness-of-fit statistic over 10,000 draws with a fixed seed; the critical
    # value for 2 degrees of freedom at p = 0.001 is 13.8. Deterministic, so never flaky.
    table = validate_table(TABLE)
    rng = random.Random(20240611)
    draws = 10_000
    counts: Counter[str] = Counter()
    for _ in range(draws):
        finds = roll(table, rng, 1)
        counts[finds[0]["item"] if finds else "nothing"] += 1
    expected = {"medpatch": 0.5 * draws, "credits": 0.3 * draws, "nothing": 0.2 * draws}
    chi2 = sum((counts[k] - v) ** 2 / v for k, v in expected.items())
    assert chi2 < 13.8, (counts, chi2)


@settings(deadline=None, max_examples=100)
@given(st.integers(0, 2**32), st.integers(1, 100))
def test_quantities_in_range_and_replay_identical(seed, count):
    table = validate_table(TABLE)
    finds = roll(table, random.Random(seed), count)
    assert finds == roll(table, random.Random(seed), count)
    assert len(finds) <= count
    for find in finds:
        low, high = (1, 3) if find["item"] == "medpatch" else (10, 20)
        assert low <= find["qty"] <= high


def test_combine_merges_repeated_items():
    assert combine([{"item": "a", "qty": 1}, {"item": "b", "qty": 2}, {"item": "a", "qty": 3}]) == [
        {"item": "a", "qty": 4},
        {"item": "b", "qty": 2},
    ]


def test_roll_does_not_mutate_the_table_dict():
    table = json.loads(json.dumps(TABLE))
    roll(table, random.Random(1), 5)
    assert table == TABLE


def _with_entry(**changes):
    entry = {"item": "medpatch", "weight": 5, "min": 1, "max": 2, **changes}
    return {"entries": [entry]}


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (_with_entry(weight=0), "weight must be a positive integer, got 0"),
        (_with_entry(weight=-3), "weight must be a positive integer, got -3"),
        (_with_entry(weight=2.5), "weight must be an integer"),
        (_with_entry(weight=True), "weight must be an integer"),
        (_with_entry(min=3, max=2), r"max \(2\) is less than min \(3\)"),
        (_with_entry(item="Med Patch"), "item must be a slug"),
        (_with_entry(colour="red"), "unknown field"),
        ({"entries": []}, "non-empty 'entries'"),
        ({"entries": [{"item": "medpatch"}]}, "missing 'weight'"),
        ({"entries": [{"item": "a", "weight": 1}, {"item": "a", "weight": 1}]}, "lists 'a' twice"),
        ({"nothing": -1, "entries": [{"item": "a", "weight": 1}]}, "'nothing' weight must be"),
    ],
)
def test_bad_tables_are_refused(table, message):
    with pytest.raises(LootError, match=message):
        validate_table(table)


def test_unknown_items_and_bad_counts_are_refused():
    with pytest.raises(LootError, match="unknown item 'plasma-sword'"):
        validate_table({"entries": [{"item": "plasma-sword", "weight": 1}]}, items=_pack_items())
    with pytest.raises(LootError, match=r"count must be 1\.\.100"):
        roll(TABLE, random.Random(0), 0)
    with pytest.raises(LootError, match="'tables' object"):
        load_tables({"salvage": TABLE})
