"""The redactor's precision and recall on a labelled set of game-like lines (issue 18 part 5).

tests/gtw_site/data/redact_labelled.txt holds 190 lines, about half carrying PII marked
[[kind:text]] and half game text full of look-alikes (dice, dates, stardates, coordinates,
registries, versions, colours). A found span counts when it has the labelled kind and covers
the labelled text exactly; anything else found is a false positive.
"""

from __future__ import annotations

import re
from pathlib import Path

from gtw_site.redact import KINDS, find

DATA = Path(__file__).parent / "data" / "redact_labelled.txt"
MARK = re.compile(r"\[\[(\w+):(.*?)\]\]")


def labelled() -> list[tuple[str, set[tuple[int, int, str]]]]:
    rows = []
    for line in DATA.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        text, spans, at = "", set(), 0
        for m in MARK.finditer(line):
            text += line[at : m.start()]
            spans.add((len(text), len(text) + len(m.group(2)), m.group(1)))
            text += m.group(2)
            at = m.end()
        rows.append((text + line[at:], spans))
    return rows


def score() -> dict[str, float]:
    tp = fp = fn = 0
    for text, expected in labelled():
        got = {(s.start, s.end, s.kind) for s in find(text)}
        tp += len(got & expected)
        fp += len(got - expected)
        fn += len(expected - got)
    return {"tp": tp, "fp": fp, "fn": fn, "precision": tp / (tp + fp), "recall": tp / (tp + fn)}


def test_the_labelled_set_is_big_and_covers_every_kind():
    rows = labelled()
    assert len(rows) >= 150
    kinds = {kind for _, spans in rows for _, _, kind in spans}
    assert kinds == set(KINDS)
    assert sum(1 for _, spans in rows if not spans) >= 75  # look-alike lines with no PII at all


def test_precision_and_recall_are_at_least_95_percent():
    figures = score()
    print(f"redaction: {figures}")
    assert figures["recall"] >= 0.95, figures
    assert figures["precision"] >= 0.95, figures
