"""`gtw bench turn --clients N`: turn latency as real websocket clients see it.

A throw-away `gtw up` (own data folder var/bench; offline narrator with no word delay, so we
measure our overhead, not the narrator's pacing) plus N websocket clients on loopback in this
process. Client 0 POSTs an action; every client records when the first narration delta and the
Narration event arrive, timed from the client-side send of the POST — the closest a client gets
to "the server received the action". Not a test: it prints percentiles and (unless --no-write)
updates docs/BENCHMARKS.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import math
import os
import secrets
import signal
import socket
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from websockets.asyncio.client import connect

from gtw_site import trace
from gtw_site.bench.common import (
    BASE_DIR,
    DOC,
    HTTP,
    UNSET_ENV,
    json_ms,
    machine_text,
    percentile,
    server_failed,
    start_server,
    stop_server,
    update_section,
    wait_healthy,
)
from gtw_site.trace import mark

# var/bench unless GTW_BENCH_TURN_DIR names another folder (one engineer's runs beside another's).
DATA_DIR = Path(os.environ.get("GTW_BENCH_TURN_DIR") or BASE_DIR / "var" / "bench").resolve()

SECTION = "## gtw bench turn"
WARMUP_TURNS = 2
TURN_TIMEOUT_S = 30.0
# "hack" makes the offline narrator call rules_skill_check, so a turn has the realistic shape:
# narration, a tool call, a DiceRolled event, a second narration round, then the Narration.
ACTION_TEXT = "I hack the door panel"
BENCH_ENV = {
    "GTW_DATA_DIR": str(DATA_DIR),
    "GTW_OFFLINE_WORD_DELAY_MS": "0",
    "GTW_NARRATOR_PROVIDER": "offline",
    # Client 0 sends every turn back to back, faster than a player is allowed to (per-player
    # action limit, settings.GTW_RATE_LIMITS): we measure latency here, not the quota.
    "GTW_ACTION_RATE_LIMIT": "0",
}


# ---- fixtures, made through the services like a real GM and players --------------------------


def _setup_game(n: int, end_old: bool = True) -> tuple[int, list[str]]:
    """A fresh campaign + session per run, N players with characters, a token each."""
    from django.contrib.auth import get_user_model

    from campaigns import services
    from campaigns.models import Membership, PlaySession
    from gtw_site.models import ApiToken

    # An interrupted run can leave pending actions that `gtw up` re-runs; end old sessions so
    # their turns don't compete with ours.
    for old in PlaySession.objects.filter(status=PlaySession.Status.ACTIVE) if end_old else ():
        services.session_end(session=old, membership=Membership.objects.get(campaign=old.campaign, role="gm"))

    def user(name: str):
        u, _ = get_user_model().objects.get_or_create(username=name, defaults={"password": "!"})  # unusable
        return u

    run = secrets.token_hex(3)
    gm = user("bench-gm")
    campaign = services.campaign_create(user=gm, name=f"bench {run}", pack_slug="starter")
    gm_membership = Membership.objects.get(campaign=campaign, user=gm)
    tokens = []
    for i in range(n):
        player = user(f"bench-{i:03d}")
        invite = services.invite_create(membership=gm_membership)
        membership = services.invite_accept(code=invite.code, user=player)
        services.character_create(membership=membership, name=f"Runner {i}", archetype="netrunner")
        ApiToken.objects.filter(user=player, name="bench").delete()  # one token per user, not per run
        tokens.append(ApiToken.issue(user=player, name="bench")[1])
    return services.session_open(membership=gm_membership, title=f"bench {run}").pk, tokens


# ---- clients ----------------------------------------------------------------------------------


@dataclass
class Client:
    ws: object
    traced: bool = False  # client 0 writes its first delta to the --trace timeline
    first_delta: dict[int, float] = field(default_factory=dict)  # action_seq -> perf_counter()
    delta_ids: dict[int, set[int]] = field(default_factory=dict)  # action_seq -> delta indices seen
    done: dict[int, float] = field(default_factory=dict)  # action_seq -> Narration (or TurnFailed)
    failed: dict[int, str] = field(default_factory=dict)  # action_seq -> TurnFailed message
    seqs: set[int] = field(default_factory=set)  # event seqs received (checked against the store)
    pong: asyncio.Event = field(default_factory=asyncio.Event)


async def _read(client: Client, tick: asyncio.Event) -> None:
    async for raw in client.ws:
        now = time.perf_counter()  # before parsing: parse time is the client's, not the server's
        frame = json.loads(raw)
        kind = frame.get("type")
        if kind == "delta":
            if client.traced and frame["action_seq"] not in client.first_delta:
                mark("client.first_delta")
            client.first_delta.setdefault(frame["action_seq"], now)
            client.delta_ids.setdefault(frame["action_seq"], set()).add(frame["i"])
        elif kind == "event":
            # A jump in seqs is no loss by itself: GM-only events and others' whispers are never
            # sent to a player. `lost_events` checks the seqs against the event store instead.
            client.seqs.add(frame["seq"])
            event = frame["event"]
            if event["type"] in ("Narration", "TurnFailed"):  # a failed turn ends the wait too
                client.done.setdefault(event["payload"]["action_seq"], now)
                if event["type"] == "TurnFailed":
                    client.failed[event["payload"]["action_seq"]] = event["payload"].get("error", "")
                tick.set()
        elif kind == "pong":
            client.pong.set()


def _post_action(port: int, session_id: int, token: str, key: str) -> tuple[float, float, int]:
    """Runs in a thread; returns (sent, returned, action seq), times from perf_counter()."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/sessions/{session_id}/actions",
        method="POST",
        data=json.dumps({"text": ACTION_TEXT, "idempotency_key": key}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    sent = time.perf_counter()
    mark("client.post_sent")
    with HTTP.open(request, timeout=TURN_TIMEOUT_S) as resp:
        seq = json.loads(resp.read())["seq"]
    return sent, time.perf_counter(), seq


@dataclass
class Results:
    first_delta: list[float] = field(default_factory=list)  # ms, one per client x turn
    commit: list[float] = field(default_factory=list)  # ms, one per client x turn
    post: list[float] = field(default_factory=list)  # ms, one per turn
    lost_deltas: int = 0
    lost_events: int = 0  # events a client may see, stored in the run's seqs, that it never got
    timeouts: int = 0
    failures: list[str] = field(default_factory=list)
    received: list[set[int]] = field(default_factory=list)  # per client (token order): event seqs


def session_version(session_id: int) -> int:
    """The session's last seq before the run: events from the next one on are the run's."""
    from campaigns.models import PlaySession

    return PlaySession.objects.values_list("version", flat=True).get(pk=session_id)


def lost_events(session_id: int, after: int, received: list[set[int]], n: int) -> int:
    """Events of the run (seq > `after`, up to the last one any client got) that the event store
    says a client may see (campaigns.selectors.visible_to: no audience, or one naming them) and
    that never reached it. Client i is player bench-i (_setup_game). A seq a player is not sent
    by design — a GM-only event, another player's whisper — is no loss."""
    from campaigns.models import Event, Membership, PlaySession
    from campaigns.selectors import visible_to

    last = max((max(seqs) for seqs in received if seqs), default=after)
    campaign_id = PlaySession.objects.values_list("campaign_id", flat=True).get(pk=session_id)
    lost = 0
    for i, seqs in enumerate(received[:n]):
        membership = Membership.objects.get(campaign_id=campaign_id, user__username=f"bench-{i:03d}")
        run = Event.objects.filter(session_id=session_id, seq__gt=after, seq__lte=last)
        visible = set(visible_to(run, membership).values_list("seq", flat=True))
        lost += len(visible - seqs)
    return lost


async def _run(port: int, session_id: int, tokens: list[str], turns: int) -> Results:
    url = f"ws://127.0.0.1:{port}/ws/sessions/{session_id}/?format=json"
    tick = asyncio.Event()
    clients: list[Client] = []
    readers: list[asyncio.Task] = []
    results = Results()
    try:
        options = dict(origin=f"http://127.0.0.1:{port}", compression=None, proxy=None, max_queue=None)
        for token in tokens:  # one at a time: connecting is not what we measure
            ws = await connect(url, additional_headers={"Authorization": f"Bearer {token}"}, **options)
            clients.append(Client(ws, traced=not clients))
            readers.append(asyncio.create_task(_read(clients[-1], tick)))
        # A pong proves each consumer is past connect(): in the group, with its last seq known.
        for client in clients:
            await client.ws.send('{"type": "ping"}')
        try:
            await asyncio.wait_for(asyncio.gather(*(c.pong.wait() for c in clients)), 30)
        except TimeoutError:
            raise RuntimeError("not every client answered a ping within 30 s") from None
        run = secrets.token_hex(4)
        for turn in range(WARMUP_TURNS + turns):
            key = f"bench-{run}-{turn}"
            sent, returned, seq = await asyncio.to_thread(_post_action, port, session_id, tokens[0], key)
            deadline = time.perf_counter() + TURN_TIMEOUT_S
            while not all(seq in c.done for c in clients) and time.perf_counter() < deadline:
                tick.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(tick.wait(), deadline - time.perf_counter())
            if turn >= WARMUP_TURNS:
                _score(results, clients, seq, sent, returned)
        results.received = [c.seqs for c in clients]
        return results
    finally:
        for task in readers:
            task.cancel()
        await asyncio.gather(*(c.ws.close() for c in clients), return_exceptions=True)


def _score(results: Results, clients: list[Client], seq: int, sent: float, returned: float) -> None:
    results.post.append((returned - sent) * 1000)
    if not all(seq in c.done for c in clients):
        results.timeouts += 1
    if failed := next((c.failed[seq] for c in clients if seq in c.failed), None):
        results.failures.append(failed)
    # Deltas are numbered 0..n-1 per action; the most any client saw is how many were sent.
    expected = max((max(ids) + 1 for c in clients if (ids := c.delta_ids.get(seq))), default=0)
    for c in clients:
        results.lost_deltas += expected - len(c.delta_ids.get(seq, ()))
        if seq in c.first_delta:
            results.first_delta.append((c.first_delta[seq] - sent) * 1000)
        if seq in c.done and seq not in c.failed:
            results.commit.append((c.done[seq] - sent) * 1000)


# ---- reporting --------------------------------------------------------------------------------


TABLE_HEADER = (
    "| clients | turns | first delta p50 / p95 / p99 / max (ms) | committed p50 / p95 / p99 (ms) "
    "| POST p50 (ms) | lost deltas / events | machine (nproc x CPU, 1-min load before) | date | command |\n"
    "|---:|---:|---|---|---:|---|---|---|---|"
)
HOW_MEASURED = """\
How measured: `gtw bench turn` runs its own `gtw up` (data in var/bench, offline narrator,
`GTW_OFFLINE_WORD_DELAY_MS=0`) and N websocket clients on loopback; client 0 POSTs a skill-check
action. Times run from the client sending the POST to each client receiving the first narration
delta (**first delta**) and the Narration event (**committed**); percentiles are nearest rank over
all client x turn samples, after 2 warm-up turns."""


def table_row(n: int, turns: int, r: Results, machine: str, command: str) -> str:
    fd = [percentile(r.first_delta, q) for q in (50, 95, 99)] + [max(r.first_delta, default=math.nan)]
    cm = [percentile(r.commit, q) for q in (50, 95, 99)]
    fmt = " / ".join
    return (
        f"| {n} | {turns} | {fmt(f'{v:.1f}' for v in fd)} | {fmt(f'{v:.1f}' for v in cm)} "
        f"| {percentile(r.post, 50):.1f} | {r.lost_deltas} / {r.lost_events} | {machine} "
        f"| {datetime.now(UTC).date()} | `{command}` |"
    )


def update_doc(text: str, row: str) -> str:
    """Our section's table, with the row for this N replaced (or added), rows by N."""
    return update_section(text, SECTION, HOW_MEASURED, TABLE_HEADER, row, key_cols=1, sort=True)


def main(args) -> int:
    if getattr(args, "telemetry", "on") == "ab" or getattr(args, "narrator", "offline") != "offline":
        from gtw_site.bench import turn_variants

        return turn_variants.main(args)
    n, turns = args.clients, args.turns
    if n < 1 or turns < 1:
        sys.stderr.write("gtw bench: --clients and --turns must be at least 1\n")
        return 2
    load = os.getloadavg()[0]
    if load > 0.5:
        print(f"gtw bench: note: 1-minute load is {load:.1f} before we start; expect noisy numbers.")
    # The server and this process (which attaches to the same embedded PostgreSQL) share env.
    os.environ.update(BENCH_ENV)
    for name in UNSET_ENV:
        os.environ.pop(name, None)
    trace_path = DATA_DIR / "trace.txt"
    if getattr(args, "trace", False):
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        trace_path.unlink(missing_ok=True)
        trace.record_to(str(trace_path))  # the server's processes inherit it
    # SIGTERM to the bench must stop the server too: make it a SystemExit so `finally` runs.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    with socket.socket() as s:  # a free port; `gtw up` binds it again with SO_REUSEADDR
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log_path = DATA_DIR / "server.log"
    print(f"gtw bench turn: server on 127.0.0.1:{port} (log: {log_path})", flush=True)
    with open(log_path, "w") as log:
        proc = start_server(port, log)
        try:
            wait_healthy(port, proc, timeout=180)  # the first run creates the database
            os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gtw_site.settings")
            import django

            django.setup()
            from django.db import connections

            session_id, tokens = _setup_game(n)
            before = session_version(session_id)
            connections.close_all()  # the async part needs no database
            # Django is loaded here too; freeze it so our own full collections (tens of ms with
            # this heap) don't stall the clients' receive loop and read as server latency.
            gc.collect()
            gc.freeze()
            print(f"  {n} client(s), session {session_id}, {turns} turns + {WARMUP_TURNS} warm-up")
            results = asyncio.run(_run(port, session_id, tokens, turns))
            results.lost_events = lost_events(session_id, before, results.received, n)
        except (RuntimeError, OSError) as exc:
            return server_failed(exc, log_path)
        except KeyboardInterrupt:
            sys.stderr.write("gtw bench: interrupted\n")
            return 130
        finally:
            stop_server(proc)
    command = f"gtw bench turn --clients {n} --turns {turns}"
    row = table_row(n, turns, results, machine_text(load), command)
    print(f"\n{TABLE_HEADER}\n{row}")
    print(
        f"POST p50/p95: {percentile(results.post, 50):.1f} / {percentile(results.post, 95):.1f} ms · "
        f"timed-out turns: {results.timeouts} · failed turns: {len(results.failures)}"
    )
    for error in sorted(set(results.failures)):
        print(f"  failed turn: {error}")
    if getattr(args, "trace", False):
        print("\nwhere the time goes (client 0, ms after the POST was sent; median / max over turns):")
        for label, median, worst, count in trace.breakdown(str(trace_path), "client.post_sent", WARMUP_TURNS):
            print(f"  {label:22s} {median:7.1f} {worst:7.1f}  n={count}")
    if not args.no_write:
        DOC.parent.mkdir(exist_ok=True)
        DOC.write_text(update_doc(DOC.read_text() if DOC.exists() else "", row))
        print(f"updated {DOC.relative_to(BASE_DIR)}")
    summary = {f"p{q}_ms": json_ms(percentile(results.first_delta, q)) for q in (50, 95, 99)}
    print(json.dumps({"clients": n, **summary, "commit_p95_ms": json_ms(percentile(results.commit, 95))}))
    return 0 if results.first_delta and not results.timeouts and not results.failures else 1
