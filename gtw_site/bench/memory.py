"""`gtw bench memory --memories N --campaigns C [--rebuild]`: scoped hybrid recall at scale.

N memories over C campaigns (5 players each, half the memories private to one of them) in a
database of its own, `gtw_bench_memory`, in the benchmark data folder var/bench (never your game,
nor the database `gtw bench turn` uses); reused by later runs unless --rebuild (one N x C at a
time). Then the wall time of `search_scoped(scope_filter(campaign, player, is_gm=False), k=10)` for
random queries, and the recall@10 of its vector candidates against an exact search under the same
filter. Not a test: prints a table and a final JSON line and (unless --no-write) updates
docs/BENCHMARKS.md.
setup() and copy_memories() also serve `python -m tests.bench.memory_eval`.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from gtw_site.bench.common import (
    BASE_DIR,
    DOC,
    UNSET_ENV,
    json_ms,
    machine_text,
    percentile,
    update_section,
)
from gtw_site.bench.common import DATA_DIR as BENCH_DIR

# var/bench unless GTW_BENCH_MEMORY_DIR names another folder (a second dataset, e.g. 1M beside 100k,
# kept in its own embedded server; never the game's GTW_DATA_DIR).
DATA_DIR = Path(os.environ.get("GTW_BENCH_MEMORY_DIR") or BENCH_DIR).resolve()

DB_NAME = "gtw_bench_memory"
SECTION = "## gtw bench memory"
PREFIX = "membench"  # campaign names: "membench <N>x<C> #<i>"
PLAYERS = 5
MODEL_TEXTS = 2000
QUERIES = 250
WARMUP = 20
SEED = 20261125
HNSW_INDEX = "memory_embedding_hnsw"
BUILD_LOG = DATA_DIR / "bench_memory_build.json"  # ingest numbers of the dataset we reuse
BUILD_INDEXES = DATA_DIR / "bench_memory_indexes.json"  # indexes dropped while a build loads

NAMES = "Ossian Ward|Mira Kade|Tobias Venn|Ilse Marr|Dax Orlov|Sable Quint|Juno Hark|Pell Draven".split("|")  # noqa: SIM905
PLACES = "bay 7|the coolant deck|Vashti Ring|the chapel|hydroponics|the drift market|berth 12".split("|")  # noqa: SIM905
THINGS = "sealed crate|datachip|ledger|med kit|plasma cutter|star chart|fuel cell|forged permit".split("|")  # noqa: SIM905
VERBS = "stashed|sold|found|stole|repaired|hid|lost|traded".split("|")  # noqa: SIM905
QUESTIONS = (
    "where is the {t}", "who {v} the {t}", "what happened at {p}", "what do we know about {n}",
    "did {n} ever go to {p}", "who owes money on {p}",
)  # fmt: skip


# ---- setup: the bench data folder, our own database ----------------------------------------


def setup() -> None:
    """Point Django at var/bench's embedded PostgreSQL, database gtw_bench_memory (created and
    migrated here), with content packs loaded. Never a DATABASE_URL from the user's shell."""
    os.environ["GTW_DATA_DIR"] = str(DATA_DIR)
    for name in UNSET_ENV:
        os.environ.pop(name, None)
    os.environ["DJANGO_SETTINGS_MODULE"] = "gtw_site.settings"
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    import psycopg

    from gtw_site import embedded

    pg = embedded.start_postgres(DATA_DIR)
    with psycopg.connect(pg.url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DB_NAME]).fetchone():
            conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    os.environ["GTW_DB_NAME"] = DB_NAME
    import django

    django.setup()
    from django.core.management import call_command

    from campaigns.content import content_load

    t = time.perf_counter()
    call_command("migrate", interactive=False, verbosity=0)
    if (took := time.perf_counter() - t) > 5:  # e.g. a new index over an existing dataset
        print(f"  migrations applied in {took:.0f} s", flush=True)
    content_load()
    _restore_indexes()
    _ensure_hnsw()


def _ensure_hnsw() -> None:
    """An interrupted build may have left the table without its HNSW index: put it back."""
    from django.db import connection

    from memory.models import Memory

    with connection.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_indexes WHERE indexname = %s", [HNSW_INDEX])
        if cur.fetchone():
            return
        # The whole graph in memory: 1M x 384 dimensions needs ~2.5 GB (over it, pgvector goes on
        # building on disk, many times slower).
        cur.execute("SET maintenance_work_mem = '4GB'")
    index = next(i for i in Memory._meta.indexes if i.name == HNSW_INDEX)
    with connection.schema_editor() as editor:  # the migration's own definition
        editor.add_index(Memory, index)


def user(username: str):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.get_or_create(username=username, defaults={"password": "!"})[0]


def new_campaign(name: str, gm):
    from campaigns import services

    return services.campaign_create(user=gm, name=name, pack_slug="starter")


def copy_memories(rows) -> None:
    """COPY rows of (campaign_id, namespace, type, text, embedding | None, importance,
    created_at, metadata dict) into memory_memory. Fast: binary COPY (a vector goes as 384 packed
    floats, not as text to format here and parse there); skips the ORM (and auto_now_add)."""
    from django.db import connection
    from pgvector.psycopg.vector import register_vector_info
    from psycopg.types import TypeInfo
    from psycopg.types.json import Jsonb

    cols = (
        "campaign_id, namespace, type, text, embedding, embedding_model, tags, metadata, importance, "
        "sources, created_at"
    )
    types = ["int8", "varchar", "varchar", "text", "vector", "varchar", "varchar[]", "jsonb", "float8"]
    with connection.cursor() as cur:
        raw = cur.cursor  # psycopg's own cursor: the vector dumper is registered on it alone
        register_vector_info(raw, TypeInfo.fetch(raw.connection, "vector"))
        with raw.copy(f"COPY memory_memory ({cols}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types([*types, "int8[]", "timestamptz"])
            for campaign_id, namespace, type_, text, vector, importance, created, meta in rows:
                model = "" if vector is None else "bench"
                row = (campaign_id, namespace, type_, text, vector, model, [], Jsonb(meta), importance)
                copy.write_row((*row, [], created))


def _drop_indexes(only: str | None = None) -> list[str]:
    """Drop memory_memory's indexes (all but the primary key's; `only`: that one) for a bulk
    load, after noting their definitions in BUILD_INDEXES, so an interrupted build gets them back
    (`_restore_indexes`). Loading into a bare table then building each index once is many times
    faster than updating two GIN indexes, a B-tree holding every vector and the HNSW graph row by
    row; the result is the same table with the same indexes."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.tablename = 'memory_memory' "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname) "
            "ORDER BY i.indexname"
        )
        found = [(name, sql) for name, sql in cur.fetchall() if only in (None, name)]
        kept = json.loads(BUILD_INDEXES.read_text()) if BUILD_INDEXES.exists() else {}
        BUILD_INDEXES.write_text(json.dumps({**kept, **dict(found)}))
        for name, _ in found:
            cur.execute(f'DROP INDEX IF EXISTS "{name}"')
    return [name for name, _ in found]


def _restore_indexes() -> dict[str, float]:
    """Build the indexes `_drop_indexes` noted that are missing (seconds per index)."""
    from django.db import connection

    if not BUILD_INDEXES.exists():
        return {}
    wanted = json.loads(BUILD_INDEXES.read_text())
    took: dict[str, float] = {}
    with connection.cursor() as cur:
        cur.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'memory_memory'")
        have = {r[0] for r in cur.fetchall()}
        # The whole HNSW graph in memory: 1M x 384 dimensions needs ~2.5 GB (over it, pgvector
        # goes on building on disk, many times slower); the other indexes sort in memory too.
        cur.execute("SET maintenance_work_mem = '4GB'")
        for name, sql in wanted.items():
            if name not in have:
                print(f"  building index {name}…", flush=True)
                t = time.perf_counter()
                cur.execute(sql)
                took[name] = time.perf_counter() - t
    BUILD_INDEXES.unlink()
    return took


# ---- the dataset -------------------------------------------------------------------------------


def _text(rng: random.Random) -> str:
    n, m = rng.sample(NAMES, 2)
    return (
        f"{n} {rng.choice(VERBS)} the {rng.choice(THINGS)} in {rng.choice(PLACES)} while {m} "
        f"watched; {rng.randint(2, 9999)} credits changed hands on day {rng.randint(1, 300)}."
    )


def _query(rng: random.Random) -> str:
    return rng.choice(QUESTIONS).format(
        t=rng.choice(THINGS), v=rng.choice(VERBS), p=rng.choice(PLACES), n=rng.choice(NAMES)
    )


def ensure_dataset(n: int, c: int, rebuild: bool) -> dict:
    """[(campaign id, [player ids])] for our N x C dataset; builds it if missing or --rebuild."""
    from campaigns.models import Campaign, Membership
    from memory.models import Memory

    tag = f"{PREFIX} {n}x{c} #"
    have = list(Campaign.objects.filter(name__startswith=tag).order_by("id"))
    stats: dict = {"reused": False}
    if not rebuild and len(have) == c and Memory.objects.filter(campaign__in=have).count() == n:
        stats["reused"] = True
    else:
        stats.update(_build(n, c, tag))
        have = list(Campaign.objects.filter(name__startswith=tag).order_by("id"))
    players: dict[int, list[int]] = {}
    members = Membership.objects.filter(campaign__in=have, role="player")
    for campaign_id, user_id in members.values_list("campaign_id", "user_id"):
        players.setdefault(campaign_id, []).append(user_id)
    stats["campaigns"] = [(camp.id, sorted(players[camp.id])) for camp in have]
    return stats


def _build(n: int, c: int, tag: str) -> dict:
    from django.db import connection

    from campaigns.models import Campaign, Membership
    from memory.embeddings import registry
    from memory.models import Memory, campaign_namespace, player_namespace

    started = time.perf_counter()
    rng = random.Random(SEED)
    texts = [_text(rng) for _ in range(n)]
    print(f"  embedding {min(n, MODEL_TEXTS)} texts with the local embedder…", flush=True)
    embedder = registry.get()
    embedder.embed(texts[:32])  # warm-up: the first batch pays for allocations
    t = time.perf_counter()
    real = np.asarray(embedder.embed(texts[:MODEL_TEXTS]), dtype=np.float32)
    embed_s = time.perf_counter() - t
    # The rest: mixes of two real embeddings plus noise, so the vectors cluster like text does.
    nprng = np.random.default_rng(SEED)
    rest = n - len(real)
    # In place, so 1M rows need ~3 arrays of 1.5 GB at most, not 6.
    mixed = real[nprng.integers(0, len(real), rest)]
    mixed += 0.5 * real[nprng.integers(0, len(real), rest)]
    noise = nprng.standard_normal((rest, real.shape[1]), dtype=np.float32)
    noise *= 0.6 / np.sqrt(real.shape[1])
    mixed += noise
    del noise
    mixed /= np.linalg.norm(mixed, axis=1, keepdims=True)
    vectors = np.vstack([real, mixed])
    del mixed
    now = datetime.now(UTC)
    types = list(Memory.Type.values)

    def rows(campaigns):
        for i, text in enumerate(texts):
            campaign_id, members = campaigns[i % c]
            private = rng.random() < 0.5
            namespace = player_namespace(rng.choice(members)) if private else campaign_namespace(campaign_id)
            when = now - timedelta(days=rng.uniform(0, 180))
            yield campaign_id, namespace, rng.choice(types), text, vectors[i], rng.uniform(0.2, 0.9), when, {}

    print(f"  loading {n} memories with COPY, indexes dropped while we load…", flush=True)
    t = time.perf_counter()
    # Without the HNSW index, deleting the old dataset is quick (HNSW vacuum repairs the graph);
    # the others stay for it: a deleted row's foreign-key checks (memories that were copied from
    # it, `inherited_from`) look it up by index, without one it is a scan of the table per row.
    _drop_indexes(only=HNSW_INDEX)
    try:
        old = Campaign.objects.filter(name__startswith=PREFIX)
        with connection.cursor() as cur:
            ids = list(old.values_list("id", flat=True))
            cur.execute("DELETE FROM memory_memory WHERE campaign_id = ANY(%s)", [ids])
            cur.execute("VACUUM memory_memory")  # the new rows reuse the space, not double the table
        old.delete()
        _drop_indexes()
        gm = user(f"{PREFIX}-gm")
        campaigns = []
        for i in range(c):
            campaign = new_campaign(f"{tag}{i:04d}", gm)
            members = [user(f"{PREFIX}-c{i:04d}-p{j}") for j in range(PLAYERS)]
            Membership.objects.bulk_create([Membership(campaign=campaign, user=u) for u in members])
            campaigns.append((campaign.id, [u.id for u in members]))
        copy_memories(rows(campaigns))
        copy_s = time.perf_counter() - t
    finally:
        t = time.perf_counter()
        indexes = _restore_indexes()
        _ensure_hnsw()
        index_s = time.perf_counter() - t
    for name, took in indexes.items():
        print(f"    {name}: {took:.0f} s")
    with connection.cursor() as cur:
        cur.execute("VACUUM ANALYZE memory_memory")
    return {
        "embed_texts": len(real),
        "embed_per_s": len(real) / embed_s,
        "copy_s": copy_s,
        "index_s": index_s,
        "indexes_s": {name: round(took, 1) for name, took in indexes.items()},
        "build_s": time.perf_counter() - started,
    }


# ---- measuring ----------------------------------------------------------------------------------


def _nearest(base, vector, n: int):
    from pgvector.django import CosineDistance

    return (
        base.filter(embedding__isnull=False)
        .annotate(distance=CosineDistance("embedding", vector))
        .order_by("distance")
        .values_list("id", flat=True)[:n]
    )


def _exact_ids(base, vector, k: int) -> list[int]:
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cur:
        # No HNSW and no covering index either: a sort over every row in scope, read from the heap,
        # so the exact path of `vector_candidates` is checked against another way to the answer.
        cur.execute("SET LOCAL enable_indexscan = off; SET LOCAL enable_indexonlyscan = off")
        return list(_nearest(base, vector, k))


def vector_plan(base, vector, forced: bool = False) -> str:
    """The plan nodes of the vector candidate query as `vector_candidates` runs it (exact for a
    small scope, HNSW above), e.g. 'Sort > Index Only Scan using memory_scope_vectors'; `forced`:
    its HNSW query with the sort taken away."""
    from django.db import connection, transaction

    from memory import retrieval

    exact = not forced and retrieval.scope_is_small(base)
    sql, params = retrieval.vector_query(base, vector, 40, exact=exact).query.sql_with_params()
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(f"SET LOCAL enable_sort = {'off' if forced else 'on'}")
        cur.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
        cur.execute("SET LOCAL hnsw.ef_search = 40")
        cur.execute("EXPLAIN " + sql, params)
        plan = "\n".join(r[0] for r in cur.fetchall())
    nodes = re.findall(r"(Index (?:Only )?Scan using \w+|Bitmap Index Scan on \w+|Seq Scan|Sort)", plan)
    return " > ".join(dict.fromkeys(nodes)) or plan.splitlines()[0]


def _overlap(found: list[int], exact: list[int]) -> float:
    return len(set(found[:10]) & set(exact)) / max(1, len(exact))


def measure(campaigns: list, queries: int) -> dict:
    from django.db import connection, transaction

    from memory import retrieval
    from memory.embeddings import registry
    from memory.models import Memory
    from memory.recall.search import RecallOptions

    rng = random.Random(SEED + 1)
    embedder = registry.get()
    trials = [(*rng.choice(campaigns), _query(rng)) for _ in range(WARMUP + queries)]
    trials = [(cid, rng.choice(players), q) for cid, players, q in trials]
    keys = ("latencies", "hybrid_only", "embed_ms", "recall", "planned_ms", "forced", "forced_ms")
    keys = (*keys, "scope_rows")
    out = {key: [] for key in keys}
    plans: dict[str, None] = {}
    # Each query twice, in alternating order: as configured (the recall stages of
    # GTW_RECALL_FEATURES on top) and the hybrid search alone (no stages), so one run splits the
    # time between the two under the same load.
    configured, bare = RecallOptions.from_settings(), RecallOptions()
    for i, (cid, uid, text) in enumerate(trials):
        scope = retrieval.scope_filter(campaign_id=cid, user_id=uid, is_gm=False)
        runs = [("latencies", configured), ("hybrid_only", bare)]
        for key, options in runs if i % 2 else runs[::-1]:
            t = time.perf_counter()
            retrieval.search_scoped(scope=scope, query=text, k=10, options=options)
            if i >= WARMUP:
                out[key].append((time.perf_counter() - t) * 1000)
    # Recall and plans in a second pass, so the exact scans don't disturb the timings.
    for i, (cid, uid, text) in enumerate(trials[WARMUP:]):
        scope = retrieval.scope_filter(campaign_id=cid, user_id=uid, is_gm=False)
        t = time.perf_counter()
        vector = embedder.embed([text])[0]
        out["embed_ms"].append((time.perf_counter() - t) * 1000)
        base = Memory.objects.filter(scope)
        exact = _exact_ids(base, vector, 10)
        # As search_scoped runs it: exact from the covering index for a scope of up to
        # EXACT_SCAN_MAX memories, HNSW above.
        t = time.perf_counter()
        planned, _, _ = retrieval.vector_candidates(base, vector, 40)
        out["planned_ms"].append((time.perf_counter() - t) * 1000)
        out["recall"].append(_overlap(planned, exact))
        # Its HNSW path whatever the scope's size, with the sort taken away, so the index answers.
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute("SET LOCAL enable_sort = off")
            t = time.perf_counter()
            forced, _, _ = retrieval.vector_candidates(base, vector, 40, exact_max=0)
            out["forced_ms"].append((time.perf_counter() - t) * 1000)
        out["forced"].append(_overlap(forced, exact))
        if i % 25 == 0:
            plans[vector_plan(base, vector)] = None
            plans["forced: " + vector_plan(base, vector, forced=True)] = None
            out["scope_rows"].append(base.count())
    with connection.cursor() as cur:
        cur.execute("SHOW shared_buffers")
        buffers = cur.fetchone()[0]
    return {**out, "plans": list(plans), "shared_buffers": buffers}


def recall_features() -> list[str]:
    from django.conf import settings

    return list(settings.GTW_MEMORY.get("recall_features", ()))


# ---- reporting ----------------------------------------------------------------------------------

TABLE_HEADER = (
    "| memories | campaigns | queries | hybrid p50 / p95 / p99 (ms) | query embed p50 (ms) "
    "| recall@10 vs exact: as planned / HNSW forced (min) | vector plan | embedder ingest (texts/s) "
    "| machine | date | command |\n"
    "|---:|---:|---:|---|---:|---|---|---:|---|---|---|"
)
HOW_MEASURED = """\
How measured: `gtw bench memory --memories N --campaigns C [--rebuild]` builds (once; later runs
reuse it) its own database `gtw_bench_memory` in `var/bench`, never your game: C campaigns of 5
players, every other memory private to one of them. 2,000 memories are embedded by the local
embedder as the memory worker runs it (one thread, batches of 32: the **ingest** column); the
rest get template text and unit vectors mixed from two real embeddings plus noise, loaded with
COPY, then the HNSW index (m=16, ef_construction=64) is built. Each query is one
`search_scoped(scope_filter(campaign, player, is_gm=False), query, k=10)` call (embedding, vector
and full-text candidates, fusion, fetch), timed by the caller; 20 warm-ups; nearest-rank
percentiles. **Recall@10 vs exact**: the first 10 candidates of `retrieval.vector_candidates` (the
code search runs) against an exact search under the same filter read from the heap
(`enable_indexscan` and `enable_indexonlyscan` off); *as planned* is what search returns (the
JSON line's `recall_at_10_vs_exact`; a scope of up to 20,000 memories is searched exactly from the
covering index `memory_scope_vectors`, the **vector plan** column), *HNSW forced* its HNSW path
whatever the scope's size, with `enable_sort = off` (iterative scan, relaxed order, ef_search 40:
`recall_at_10_hnsw`). The table times `search_scoped` as configured (the issue-21 recall stages of
`GTW_RECALL_FEATURES` included); each query also runs without the stages, alternating, for the
JSON line's `hybrid_only_p50_ms` / `p95` / `p99`.
Targets: p95 < 25 ms, recall ≥ 0.95."""


def main(args) -> int:
    n, c = args.memories, args.campaigns
    if c < 1 or n < c:
        sys.stderr.write("gtw bench memory: need --campaigns ≥ 1 and at least one memory per campaign\n")
        return 2
    load = os.getloadavg()[0]
    started = time.perf_counter()
    setup()
    print(f"gtw bench memory: {n} memories over {c} campaigns, database {DB_NAME} in {DATA_DIR}", flush=True)
    stats = ensure_dataset(n, c, args.rebuild)
    built = json.loads(BUILD_LOG.read_text()) if BUILD_LOG.exists() else {}
    if stats["reused"]:
        stats = {**stats, "embed_per_s": math.nan, **built.get(f"{n}x{c}", {})}
        took = f" in {stats['build_s']:.0f} s" if "build_s" in stats else ""
        print(f"  reusing the dataset an earlier run built{took} (--rebuild to rebuild it)")
    else:
        keep = ("embed_texts", "embed_per_s", "copy_s", "index_s", "indexes_s", "build_s")
        BUILD_LOG.write_text(json.dumps({**built, f"{n}x{c}": {k: stats[k] for k in keep}}))
        print(
            f"  built in {stats['build_s']:.0f} s: local embedder {stats['embed_per_s']:.0f} texts/s "
            f"({1000 / stats['embed_per_s']:.2f} ms/text) on {stats['embed_texts']} texts, "
            f"COPY {stats['copy_s']:.0f} s, indexes (HNSW included) {stats['index_s']:.0f} s"
        )
    result = measure(stats["campaigns"], QUERIES)
    lat = result["latencies"]
    p = {q: percentile(lat, q) for q in (50, 95, 99)}
    recall, forced = (sum(result[k]) / len(result[k]) for k in ("recall", "forced"))
    plan = next((x for x in result["plans"] if not x.startswith("forced")), "?")
    command = f"gtw bench memory --memories {n} --campaigns {c}"
    cells = [
        n, c, len(lat), " / ".join(f"{p[q]:.1f}" for q in (50, 95, 99)),
        f"{percentile(result['embed_ms'], 50):.1f}",
        f"{recall:.3f} / {forced:.3f} ({min(result['forced']):.1f})", plan, f"{stats['embed_per_s']:.0f}",
        machine_text(load), datetime.now(UTC).date(), f"`{command}`",
    ]  # fmt: skip
    row = "| " + " | ".join(map(str, cells)) + " |"
    print(f"\n{TABLE_HEADER}\n{row}")
    print(f"vector plans seen: {'; '.join(result['plans'])}")
    bare = {q: percentile(result["hybrid_only"], q) for q in (50, 95, 99)}
    print(
        "hybrid search alone (no recall stages; same queries, alternating) p50 / p95 / p99: "
        + " / ".join(f"{bare[q]:.1f}" for q in (50, 95, 99))
        + f" ms; with the stages ({', '.join(recall_features()) or 'none'}): "
        + " / ".join(f"{p[q]:.1f}" for q in (50, 95, 99))
        + " ms"
    )
    planned_ms, forced_ms = (
        [percentile(result[k], q) for q in (50, 95)] for k in ("planned_ms", "forced_ms")
    )
    print(
        f"player scope: {min(result['scope_rows'])}-{max(result['scope_rows'])} memories; vector candidates "
        f"(n=40, query embedded beforehand) p50 / p95: as planned {planned_ms[0]:.1f} / "
        f"{planned_ms[1]:.1f} ms, "
        f"HNSW forced {forced_ms[0]:.1f} / {forced_ms[1]:.1f} ms; "
        f"PostgreSQL shared_buffers {result['shared_buffers']}"
    )
    print(f"run time {time.perf_counter() - started:.0f} s")
    if not args.no_write:
        doc = DOC.read_text() if DOC.exists() else ""
        DOC.write_text(update_section(doc, SECTION, HOW_MEASURED, TABLE_HEADER, row, key_cols=2))
        print(f"updated {DOC.relative_to(BASE_DIR)}")
    summary = {"memories": n, "campaigns": c, **{f"p{q}_ms": json_ms(p[q]) for q in (50, 95, 99)}}
    summary["build_s"] = json_ms(stats.get("build_s", math.nan))
    # The issue-21 stages above the hybrid search (GTW_RECALL_FEATURES) run inside search_scoped too;
    # hybrid_only_*: the same queries without them.
    summary["recall_features"] = recall_features()
    summary.update({f"hybrid_only_p{q}_ms": json_ms(bare[q]) for q in (50, 95, 99)})
    summary.update(recall_at_10_vs_exact=round(recall, 4), recall_at_10_hnsw=round(forced, 4))
    print(json.dumps(summary))
    return 0
