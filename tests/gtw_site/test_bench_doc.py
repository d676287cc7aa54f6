"""The benchmarks' docs/BENCHMARKS.md writer: one row replaced or added, nothing else touched."""

from __future__ import annotations

from gtw_site.bench import common, fanout, turn

DOC = common.DOC.read_text()


def turn_row(n: int, p95: str) -> str:
    return f"| {n} | 30 | 30.0 / {p95} / 45.0 / 45.0 | 1 / 2 / 3 | 20.0 | 0 / 0 | m | 2026-11-25 | `cmd` |"


def test_a_turn_row_replaces_its_own_n_and_leaves_the_rest_of_the_file_alone():
    updated = turn.update_doc(DOC, turn_row(8, "41.0"))
    assert turn_row(8, "41.0") in updated
    assert updated.count("\n| 8 | 30 |") == 1
    # Outside the replaced line, the file is byte for byte the same (other sections, the notes).
    old_line = next(ln for ln in DOC.split("\n") if ln.startswith("| 8 | "))
    assert updated.replace(turn_row(8, "41.0"), old_line) == DOC


def test_rows_stay_ordered_by_number_and_a_missing_section_is_created():
    text = turn.update_doc("", turn_row(50, "50.0"))
    assert text.startswith("# Benchmarks\n\n## gtw bench turn\n")
    for n in (8, 1, 12):
        text = turn.update_doc(text, turn_row(n, "40.0"))
    rows = [int(ln.split("|")[1]) for ln in text.split("\n") if ln[:3] in ("| 1", "| 8", "| 5")]
    assert rows == [1, 8, 12, 50]  # 12 before 50: numbers, not strings


def test_fanout_rows_match_on_layer_and_clients():
    row = "| pubsub | 50 | 2 | 200 @ 20/s | 1 / 2 / 3 / 4 | 10000 | 10000 | 0 (0) | m | d | `c` |"
    updated = fanout.update_doc(DOC, row)
    assert row in updated and updated.count("| pubsub | 50 |") == 1
    assert updated.count("| core | 50 |") == DOC.count("| core | 50 |")  # the other layer's row stays
