"""`gtw bench <name>`: the options every benchmark takes, and the dispatch to its module in
gtw_site/bench/ (imported only when run: the benchmarks pull in websockets, numpy, …)."""

from __future__ import annotations

import importlib

BENCHES = (
    "turn", "memory", "mission", "fanout", "stage", "flood", "playtest", "intent", "recovery", "calendar",
    "voice", "safety", "images", "sim",
)  # fmt: skip


def add_bench_parser(sub) -> None:
    bench = sub.add_parser("bench", help="benchmarks (print p50/p95/p99, update docs/BENCHMARKS.md)")
    bench.add_argument("which", choices=BENCHES)
    bench.add_argument("--clients", type=int, default=8)
    bench.add_argument("--turns", type=int, default=20)
    bench.add_argument("--memories", type=int, default=100_000, help="memory: how many memories")
    bench.add_argument("--campaigns", type=int, default=100, help="memory: over how many campaigns")
    bench.add_argument("--rebuild", action="store_true", help="memory: rebuild the dataset")
    bench.add_argument("--lines", type=int, default=1000, help="mission: lines of the generated mission")
    bench.add_argument("--steps", type=int, default=10_000, help="mission: runtime steps to time")
    bench.add_argument("--messages", type=int, default=200, help="fanout: events broadcast to the session")
    bench.add_argument("--rate", type=float, default=20.0, help="fanout: events per second")
    bench.add_argument("--layer", choices=["core", "pubsub"], default="core", help="fanout: channel layer")
    bench.add_argument("--web-workers", type=int, default=2, help="fanout: Daphne processes")
    bench.add_argument("--participants", type=int, default=50, help="stage: people on the stage")
    bench.add_argument("--flooders", type=int, default=10, help="flood: players flooding another campaign")
    bench.add_argument(
        "--limits", choices=["on", "off"], default="on", help="flood: per-player action limits"
    )
    bench.add_argument("--teams", type=int, default=5, help="stage: fireteams")
    bench.add_argument("--windows", type=int, default=5, help="stage: measured beat windows")
    bench.add_argument("--seeds", type=int, default=5, help="playtest: seeds per starter mission")
    bench.add_argument(
        "--data", help="intent: the labelled actions (default: the held-out set); safety: the labelled lines"
    )
    bench.add_argument(
        "--rules-only", action="store_true", help="intent: score the rules without the embedding model"
    )
    bench.add_argument(
        "--calendar-campaigns", type=int, default=50, help="calendar: campaigns the subscriber is in"
    )
    bench.add_argument("--entities", type=int, default=1000, help="sim: entities in the world")
    bench.add_argument("--sim-windows", dest="windows_sim", type=int, default=200, help="sim: boundaries")
    bench.add_argument("--no-write", action="store_true", help="don't update docs/BENCHMARKS.md")
    bench.add_argument(
        "--narrator", choices=["offline", "local_llm"], default="offline", help="turn: the narrator to time"
    )
    bench.add_argument(
        "--telemetry",
        choices=["on", "ab"],
        default="on",
        help="turn: ab = telemetry on and off in the same run (alternating sessions)",
    )
    bench.add_argument(
        "--trace", action="store_true", help="turn: print where the time goes (a cross-process timeline)"
    )
    bench.set_defaults(func=cmd_bench)


def cmd_bench(args) -> int:
    return importlib.import_module(f"gtw_site.bench.{args.which}").main(args)
