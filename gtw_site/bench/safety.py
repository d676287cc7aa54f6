"""`gtw bench safety`: the local content classifier's precision and recall on the labelled set,
and what one check costs (issue 18 part 2).

Pure: the classifier (campaigns.safety.classifiers.local) and the decision under the site's
default policy, no database, no network. Prints the per-category table, the misses, the latency
percentiles, updates docs/BENCHMARKS.md and ends with one JSON line.
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from campaigns.safety import categories
from campaigns.safety.classifiers.local import LocalModeration
from gtw_site.bench.common import BASE_DIR, DOC, machine_text, percentile, update_section

DEFAULT_DATA = BASE_DIR / "content" / "safety" / "labelled.jsonl"
PASSES = 5  # every line is timed this many times (percentiles over lines x passes)

SECTION = "## gtw bench safety"
HOW_MEASURED = """\
How measured: `gtw bench safety` runs the `local` moderation provider (a curated lexicon over
NFKC- and evasion-normalised text, with idioms such as "kill the engines" or "the blast doors"
blanked out first; campaigns/safety/classifiers/) over every line of
`content/safety/labelled.jsonl` — game-like actions and narration, each labelled with the
categories a human would flag (none, for the figurative traps and plain play). **precision /
recall**: over (line, category) pairs. **flag precision / recall**: over lines, where a line is
"flagged" when the site's default policy would do more than allow it (soften, hold, block) —
what a player actually feels. **cost per check**: classify + decide for one line, timed
5 times per line, on one core; the budget is p95 < 5 ms.

Read the two rows together. `labelled.jsonl` was written by the engineer who wrote the lexicon,
and the lexicon was broadened while looking at its misses: its figures are an upper bound.
`unseen.jsonl` (`gtw bench safety --data content/safety/unseen.jsonl`) was written afterwards
and never used to change the lexicon: that is what new phrasings get — few false alarms, but a
lexicon misses much of what it has not seen. A table that needs more recall sets
GTW_MODERATION_PROVIDER to `openai` or `openai_compatible` (Llama Guard)."""
TABLE_HEADER = (
    "| data | lines | precision | recall | flag precision | flag recall "
    "| cost per check p50 / p95 / p99 (ms) | machine (nproc x CPU, 1-min load before) | date | command |\n"
    "|---|---:|---:|---:|---:|---:|---|---|---|---|"
)


def load_lines(path: Path) -> list[dict]:
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        if not isinstance(row.get("text"), str) or not isinstance(row.get("labels"), list):
            raise ValueError(f"{path}:{number}: each line needs 'text' and a 'labels' list")
        unknown = [c for c in row["labels"] if c not in categories.CATEGORIES]
        if unknown:
            raise ValueError(f"{path}:{number}: unknown category {unknown[0]!r}")
        rows.append(row)
    return rows


def ratio(num: int, den: int) -> float:
    return num / den if den else 1.0


def score(rows: list[dict], classify) -> dict:
    """Pair and line-level counts, per category too; `classify(text)` → categories."""
    per: dict[str, list[int]] = {c: [0, 0, 0] for c in categories.CATEGORIES}  # tp, fp, fn
    tp = fp = fn = 0
    flag = [0, 0, 0]
    misses: list[tuple[list[str], list[str], str]] = []
    for row in rows:
        gold, got = set(row["labels"]), set(classify(row["text"]))
        for c in gold | got:
            per[c][0] += c in gold and c in got
            per[c][1] += c in got and c not in gold
            per[c][2] += c in gold and c not in got
        tp, fp, fn = tp + len(gold & got), fp + len(got - gold), fn + len(gold - got)
        gold_flag = _acts(gold)
        got_flag = _acts(got)
        flag[0] += gold_flag and got_flag
        flag[1] += got_flag and not gold_flag
        flag[2] += gold_flag and not got_flag
        if gold != got:
            misses.append((sorted(gold), sorted(got), row["text"]))
    return {
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "precision": ratio(tp, tp + fp),
        "recall": ratio(tp, tp + fn),
        "flag_precision": ratio(flag[0], flag[0] + flag[1]),
        "flag_recall": ratio(flag[0], flag[0] + flag[2]),
        "per": per,
        "misses": misses,
    }


def _acts(found: set[str]) -> bool:
    return (
        categories.decide(
            categories.Verdict(scores=dict.fromkeys(found, 1.0)), categories.DEFAULT_ACTIONS
        ).action
        != categories.ALLOW
    )


def command_for(data: Path) -> str:
    shown = data.relative_to(BASE_DIR) if data.is_relative_to(BASE_DIR) else data
    return "gtw bench safety" + ("" if data == DEFAULT_DATA else f" --data {shown}")


def table_row(out: dict, machine: str, date: str, command: str) -> str:
    cost = " / ".join(f"{out[f'p{q}_ms']:.3f}" for q in (50, 95, 99))
    return (
        f"| {out['data']} | {out['lines']} | {out['precision']:.3f} | {out['recall']:.3f} "
        f"| {out['flag_precision']:.3f} | {out['flag_recall']:.3f} | {cost} | {machine} | {date} "
        f"| `{command}` |"
    )


def main(args) -> int:
    data = Path(getattr(args, "data", None) or DEFAULT_DATA)
    try:
        rows = load_lines(data)
    except (OSError, ValueError) as exc:
        sys.stderr.write(f"gtw bench safety: {exc}\n")
        return 2
    if not rows:
        sys.stderr.write(f"gtw bench safety: {data} holds no labelled lines\n")
        return 2
    load = os.getloadavg()[0]
    classifier = LocalModeration()
    print(f"gtw bench safety: {len(rows)} lines from {data} (provider local, {classifier.model})")

    def classify(text: str) -> list[str]:
        return classifier.classify(text).categories

    result = score(rows, classify)
    timings: list[float] = []
    for _ in range(PASSES):
        for row in rows:
            started = time.perf_counter()
            categories.decide(classifier.classify(row["text"]), categories.DEFAULT_ACTIONS)
            timings.append((time.perf_counter() - started) * 1000)
    print(
        f"precision {result['precision']:.3f}   recall {result['recall']:.3f}   "
        f"(pairs: {result['tp']} right, {result['fp']} false alarms, {result['fn']} missed)"
    )
    print(f"flag precision {result['flag_precision']:.3f}   flag recall {result['flag_recall']:.3f}")
    print("per category (right / false alarms / missed):")
    for c, (t, f, m) in result["per"].items():
        if t or f or m:
            print(f"  {c:<18} {t:>4} {f:>4} {m:>4}")
    if result["misses"]:
        print("misses (labelled <- found):")
        for gold, got, text in result["misses"]:
            print(f"  {','.join(gold) or '-':<28} <- {','.join(got) or '-':<28} {text}")
    p = {q: percentile(timings, q) for q in (50, 95, 99)}
    print(
        f"cost per check (ms): p50 {p[50]:.3f}   p95 {p[95]:.3f}   p99 {p[99]:.3f}   ({len(timings)} checks)"
    )
    out = {
        "data": str(data.relative_to(BASE_DIR) if data.is_relative_to(BASE_DIR) else data),
        "lines": len(rows),
        "provider": "local",
        "precision": round(result["precision"], 4),
        "recall": round(result["recall"], 4),
        "flag_precision": round(result["flag_precision"], 4),
        "flag_recall": round(result["flag_recall"], 4),
        # Sub-millisecond figures: four decimals (json_ms rounds to one).
        **{f"p{q}_ms": round(p[q], 4) for q in (50, 95, 99)},
    }
    if not args.no_write:
        machine = machine_text(load)
        date = datetime.now(UTC).date().isoformat()
        doc = DOC.read_text() if DOC.exists() else ""
        row = table_row(out, machine, date, command_for(data))
        DOC.write_text(update_section(doc, SECTION, HOW_MEASURED, TABLE_HEADER, row, key_cols=1))
        print(f"updated {DOC.relative_to(BASE_DIR)}")
    print(json.dumps(out))
    return 0
