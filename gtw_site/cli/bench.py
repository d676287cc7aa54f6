"""`gtw bench <name>`: the options every benchmark takes, and the dispatch to its module in
gtw_site/bench/ (imported only when run: the benchmarks pull in websockets, numpy, …)."""

from __future__ import annotations

import importlib

BENCHES = (
    "turn", "memory", "mission", "fanout", "stage", "flood", "playtest", "intent", "recovery", "calendar",
    "voice", "safety", "images", "sim", "recall",
)  # fmt: skip


def add_bench_parser(sub) -> None:
    bench = sub.add_parser("bench", help="benchmarks (print p50/p95/p99, update docs/BENCHMARKS.md)")
    bench.add_argument("which", choices=BENCHES)
    bench.add_argument("--clients", type=int, default=8)
    bench.add_argument("--turns", type=int, default=20)
    bench.add_argument("--memories", type=int, default=100_000, help="memory: how many memories")
    bench.add_argument(
        "--campaigns",
        type=int,
        default=None,
        help="memory: over how many campaigns (100); recall: how many (10)",
    )
    bench.add_argument("--rebuild", action="store_true", help="memory: rebuild the dataset")
    bench.add_argument("--lines", type=int, default=1000, help="mission: lines of the generated mission")
    bench.add_argument("--steps", type=int, default=10_000, help="mission: runtime steps to time")
    bench.add_argument("--messages", type=int, default=200, help="fanout: events broadcast to the session")
    bench.add_argument("--rate", type=float, default=20.0, help="fanout: events per second")
    bench.add_argument(
        "--layer",
        choices=["core", "pubsub"],
        help="fanout: channel layer (default: GTW_CHANNEL_LAYER or pubsub)",
    )
    bench.add_argument(
        "--web-workers", type=int, help="fanout: Daphne processes (default: GTW_WEB_WORKERS or 1, as gtw up)"
    )
    bench.add_argument(
        "--knee",
        nargs="?",
        const="100,200,500,750,1000",
        help="fanout: client counts to step through (default 100,200,500,750,1000): the knee table",
    )
    bench.add_argument("--runs", type=int, default=1, help="fanout: runs per client count, back to back")
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
    bench.add_argument(
        "--questions", type=int, default=None, help="recall: ask only this many (an even spread)"
    )
    bench.add_argument(
        "--category",
        choices=["single", "multihop", "temporal", "adversarial", "privacy"],
        help="recall: ask only this category",
    )
    bench.add_argument(
        "--mode",
        choices=["hybrid", "vector", "keyword", "all"],
        default="hybrid",
        help="recall: retrieval mode",
    )
    bench.add_argument(
        "--phrasing", choices=["set", "alt"], default="set", help="recall: the set's wording or held-out ones"
    )
    bench.add_argument(
        "--per-campaign", type=int, help="recall: pad each campaign with table chatter to this many memories"
    )
    bench.add_argument(
        "--facts", action="store_true", help="recall: write the summariser's facts for each session first"
    )
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
    if args.campaigns is None and args.which == "memory":
        args.campaigns = 100
    return importlib.import_module(f"gtw_site.bench.{args.which}").main(args)
