"""`gtw bench intent`: does the offline GM pick the right skill, or no roll, for an action?

Scores `narrative.intent.analyse` — the reading the offline narrator and the stage's batch turn
both use — on a labelled set of game actions (default: the held-out set
tests/bench/data/intent_actions.jsonl; one JSON object a line: `action`, `skill` (a skill name,
or null for "no roll"), `question` (bool), optional `accept` (other skills that count as right)).
Pure Python in one process, no database, no server. Prints the scores, a per-label confusion
summary and the classification latency; a final JSON line; and (unless --no-write) adds or
replaces its row in the "gtw bench intent" section of docs/BENCHMARKS.md.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from gtw_site.bench.common import BASE_DIR, DOC, json_ms, machine_text, percentile, update_section
from narrative import intent, intent_model

DEFAULT_DATA = BASE_DIR / "tests" / "bench" / "data" / "intent_actions.jsonl"
MISSIONS = BASE_DIR / "content" / "packs" / "starter" / "missions"
NO_ROLL = "no roll"
# Who acts in every line: a character the sentences may name ("Kira climbs…").
CHARACTER, PLAYER = "Kira Vance", "kira"

SECTION = "## gtw bench intent"
HOW_MEASURED = """\
How measured: `gtw bench intent` reads every line of a labelled set of game actions
(`tests/bench/data/intent_actions.jsonl`, written apart from the classifier's examples) with
`narrative.intent.analyse`, as the offline narrator does (acting character "Kira Vance", the
starter pack's NPCs as the people one may address). A line's predicted skill is the skill of a
`check` (or `loot`) reading, else "no roll". **skill accuracy**: lines labelled with a skill whose
prediction is that skill or one of its `accept` list (a predicted no-roll counts wrong).
**no-roll precision**: predicted no-roll lines labelled null; **recall**: null lines predicted
no-roll. **question**: lines whose `question` flag is read right. **latency**: one `analyse`
call, timed alone, after one warm-up call (the cold start — loading the model and the example
vectors — is reported separately). `--rules-only` scores the fallback without the model."""
TABLE_HEADER = (
    "| data | lines | mode | skill accuracy | no-roll precision | no-roll recall | question accuracy "
    "| latency p50 / p95 / p99 (ms) | cold start (ms) | machine (nproc x CPU, 1-min load before) | date "
    "| command |\n"
    "|---|---:|---|---:|---:|---:|---:|---|---:|---|---|---|"
)


@dataclass(frozen=True)
class Line:
    action: str
    skill: str | None
    question: bool
    accept: tuple[str, ...] = ()


@dataclass
class Score:
    lines: int = 0
    skill_lines: int = 0
    skill_right: int = 0
    predicted_no_roll: int = 0
    no_roll_right: int = 0
    null_lines: int = 0
    question_right: int = 0
    # label -> Counter of predictions ("no roll" for None)
    confusion: dict[str, Counter] = field(default_factory=dict)
    misses: list[tuple[str, str, str]] = field(default_factory=list)  # (label, predicted, action)

    @property
    def skill_accuracy(self) -> float:
        return self.skill_right / self.skill_lines if self.skill_lines else 0.0

    @property
    def noroll_precision(self) -> float:
        return self.no_roll_right / self.predicted_no_roll if self.predicted_no_roll else 0.0

    @property
    def noroll_recall(self) -> float:
        return self.no_roll_right / self.null_lines if self.null_lines else 0.0

    @property
    def question_accuracy(self) -> float:
        return self.question_right / self.lines if self.lines else 0.0


def load_lines(path: Path) -> list[Line]:
    """The labelled lines of `path`; ValueError naming the line when one is malformed."""
    lines = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not raw.strip():
            continue
        try:
            row = json.loads(raw)
            action, skill, question = row["action"], row.get("skill"), row.get("question", False)
            accept = tuple(a for a in row.get("accept") or () if isinstance(a, str))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"{path}:{number}: not a labelled action ({exc})") from exc
        if not isinstance(action, str) or not (skill is None or isinstance(skill, str)):
            raise ValueError(f"{path}:{number}: `action` must be text and `skill` text or null")
        lines.append(Line(action, skill, bool(question), accept))
    return lines


def starter_npcs(folder: Path = MISSIONS) -> list[tuple[str, str]]:
    """The starter pack's NPCs as (name, role): whom the set's actions may address."""
    names: dict[str, str] = {}
    for path in sorted(folder.glob("*.mission")):
        for match in re.finditer(r'^npc\s+\S+\s+"([^"]+)"', path.read_text(encoding="utf-8"), re.M):
            names.setdefault(match.group(1), "")
    return list(names.items())


def predict(action: str, *, npcs: Iterable[tuple[str, str]], model: bool = True) -> tuple[str | None, bool]:
    """(skill or None for no roll, question) as the offline narrator would read `action`."""
    text = " ".join(action.split())
    read = intent.analyse(text, name=CHARACTER, actor=PLAYER, npcs=list(npcs), model=model)
    return (read.skill if read.kind in ("check", "loot") else None), read.question


def score(lines: list[Line], classify: Callable[[str], tuple[str | None, bool]]) -> Score:
    result = Score()
    for line in lines:
        predicted, question = classify(line.action)
        result.lines += 1
        result.question_right += question == line.question
        label = line.skill if line.skill is not None else NO_ROLL
        shown = predicted if predicted is not None else NO_ROLL
        result.confusion.setdefault(label, Counter())[shown] += 1
        if predicted is None:
            result.predicted_no_roll += 1
            result.no_roll_right += line.skill is None
        if line.skill is None:
            result.null_lines += 1
            if predicted is not None:
                result.misses.append((label, shown, line.action))
        else:
            result.skill_lines += 1
            right = predicted is not None and (predicted == line.skill or predicted in line.accept)
            result.skill_right += right
            if not right:
                result.misses.append((label, shown, line.action))
    return result


def confusion_lines(result: Score) -> list[str]:
    """One line per label: how many, how many right, and what it was mistaken for."""
    out = []
    for label in sorted(result.confusion, key=lambda x: (x == NO_ROLL, x)):
        seen = result.confusion[label]
        total, right = sum(seen.values()), seen.get(label, 0)
        wrong = ", ".join(f"{p} {n}" for p, n in seen.most_common() if p != label)
        out.append(f"  {label:<16}{right:>4} / {total:<4}" + (f" mistaken for: {wrong}" if wrong else ""))
    return out


def command_for(data: Path, rules_only: bool) -> str:
    shown = data.relative_to(BASE_DIR) if data.is_relative_to(BASE_DIR) else data
    extra = "" if data == DEFAULT_DATA else f" --data {shown}"
    return "gtw bench intent" + extra + (" --rules-only" if rules_only else "")


def table_row(result: dict, machine: str, date: str, command: str) -> str:
    latency = " / ".join(f"{result[f'latency_p{q}_ms']:.1f}" for q in (50, 95, 99))
    return (
        f"| {result['data']} | {result['lines']} | {result['mode']} | {result['skill_accuracy']:.3f} "
        f"| {result['noroll_precision']:.3f} | {result['noroll_recall']:.3f} "
        f"| {result['question_accuracy']:.3f} "
        f"| {latency} | {result['cold_start_ms']:.0f} | {machine} | {date} | `{command}` |"
    )


def update_doc(text: str, row: str) -> str:
    """Add or replace our row (same data file and mode) in the section; everything else stays."""
    return update_section(text, SECTION, HOW_MEASURED, TABLE_HEADER, row, key_cols=3)


def main(args) -> int:
    data = Path(getattr(args, "data", None) or DEFAULT_DATA)
    rules_only = bool(getattr(args, "rules_only", False))
    try:
        lines = load_lines(data)
    except (OSError, ValueError) as exc:
        sys.stderr.write(f"gtw bench intent: {exc}\n")
        return 2
    if not lines:
        sys.stderr.write(f"gtw bench intent: {data} holds no labelled actions\n")
        return 2
    load = os.getloadavg()[0]
    npcs = starter_npcs()
    model = not rules_only
    print(f"gtw bench intent: {len(lines)} actions from {data}" + (" (rules only)" if rules_only else ""))
    started = time.perf_counter()
    predict("I look around", npcs=npcs, model=model)  # loads the model and the example vectors
    cold_ms = (time.perf_counter() - started) * 1000
    if model and not intent_model.available(intent._prepare):
        print("  the local embedding model did not load: these are the rules-only scores")
    timings: list[float] = []

    def timed(action: str) -> tuple[str | None, bool]:
        start = time.perf_counter()
        out = predict(action, npcs=npcs, model=model)
        timings.append((time.perf_counter() - start) * 1000)
        return out

    result = score(lines, timed)
    print(
        f"skill accuracy {result.skill_accuracy:.3f} ({result.skill_right}/{result.skill_lines})   "
        f"no-roll precision {result.noroll_precision:.3f} "
        f"({result.no_roll_right}/{result.predicted_no_roll})   "
        f"no-roll recall {result.noroll_recall:.3f} ({result.no_roll_right}/{result.null_lines})   "
        f"question accuracy {result.question_accuracy:.3f} ({result.question_right}/{result.lines})"
    )
    print("per label (right / lines):")
    print("\n".join(confusion_lines(result)))
    if result.misses:
        print("misses (label <- predicted):")
        for label, shown, action in result.misses:
            print(f"  {label:<16} <- {shown:<16} {action}")
    p = {q: percentile(timings, q) for q in (50, 95, 99)}
    print(
        f"latency per action (ms): p50 {p[50]:.2f}   p95 {p[95]:.2f}   p99 {p[99]:.2f}   "
        f"cold start {cold_ms:.0f}"
    )
    out = {
        "data": str(data.relative_to(BASE_DIR) if data.is_relative_to(BASE_DIR) else data),
        "lines": result.lines,
        "mode": "rules only"
        if rules_only or not intent_model.available(intent._prepare)
        else "model + rules",
        "skill_accuracy": round(result.skill_accuracy, 4),
        "noroll_precision": round(result.noroll_precision, 4),
        "noroll_recall": round(result.noroll_recall, 4),
        "question_accuracy": round(result.question_accuracy, 4),
        "latency_p50_ms": json_ms(p[50]),
        "latency_p95_ms": json_ms(p[95]),
        "latency_p99_ms": json_ms(p[99]),
        "cold_start_ms": json_ms(cold_ms),
    }
    if not args.no_write:
        machine = machine_text(load)
        date = datetime.now(UTC).date().isoformat()
        row = table_row(out, machine, date, command_for(data, rules_only))
        doc = DOC.read_text() if DOC.exists() else ""
        DOC.write_text(update_doc(doc, row))
        print(f"updated {DOC.relative_to(BASE_DIR)}")
    print(json.dumps(out))
    return 0
