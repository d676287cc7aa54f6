"""`gtw bench fanout --clients N`: how fast one session-wide event reaches N sockets.

A throw-away `gtw up --web-workers W` (own data folder var/bench-fanout, so it never meets a
`gtw bench turn` running beside it) and N websocket clients (the `websockets` library, loopback,
`?format=json`, one bearer token per player), spread over client processes so the harness is
not one event loop parsing every frame. This process then commits M NpcSpoke events through the
event store (`campaigns.events.append`, whose listener broadcasts after commit, exactly what a
service does) at a fixed rate; each carries `time.perf_counter()` taken just before the append
(CLOCK_MONOTONIC, the same clock in every process on the machine), and each client notes its own
`perf_counter()` when the frame arrives. Latency = arrival - stamp, per message per client.

Not a test: it prints a table and, as its last line, `{"clients", "p50_ms", "p95_ms", "p99_ms",
"sent", "received"}` (received = deliveries summed over clients; nothing lost means received ==
sent x clients) and, unless --no-write, updates docs/BENCHMARKS.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import multiprocessing
import os
import resource
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from gtw_site.bench.common import (
    BASE_DIR,
    DOC,
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

DATA_DIR = BASE_DIR / "var" / "bench-fanout"
SECTION = "## gtw bench fanout"
LAYERS = {"core": "RedisChannelLayer", "pubsub": "RedisPubSubChannelLayer"}
CLIENTS_PER_PROCESS = 125
CONNECT_BATCH = 25  # connects in flight per client process
SETTLE_S = 10.0  # after the last send, how long a client waits for stragglers
WARMUP = 10  # messages sent (and discarded) before the measured ones


# ---- the game: made through the services, like a GM and players would ------------------------


def setup_game(n: int, *, prefix: str = "fanout") -> tuple[int, list[tuple[str, str]]]:
    """A fresh campaign + session, N players with characters, an API token each.
    Returns (session id, [(username, token)]). Needs django.setup() first."""
    from django.contrib.auth import get_user_model

    from campaigns import services
    from campaigns.models import Membership, PlaySession
    from gtw_site.models import ApiToken

    # An interrupted run can leave sessions with pending turns; end them so they stay quiet.
    for old in PlaySession.objects.filter(status=PlaySession.Status.ACTIVE):
        services.session_end(session=old, membership=Membership.objects.get(campaign=old.campaign, role="gm"))

    def user(name: str):
        u, _ = get_user_model().objects.get_or_create(username=name, defaults={"password": "!"})  # unusable
        return u

    run = secrets.token_hex(3)
    gm = user(f"{prefix}-gm")
    campaign = services.campaign_create(user=gm, name=f"{prefix} {run}", pack_slug="starter")
    gm_membership = Membership.objects.get(campaign=campaign, user=gm)
    players = []
    for i in range(n):
        player = user(f"{prefix}-{i:03d}")
        invite = services.invite_create(membership=gm_membership)
        membership = services.invite_accept(code=invite.code, user=player)
        services.character_create(membership=membership, name=f"Runner {i}", archetype="netrunner")
        ApiToken.objects.filter(user=player, name=prefix).delete()  # one token per user, not per run
        players.append((player.username, ApiToken.issue(user=player, name=prefix)[1]))
    session = services.session_open(membership=gm_membership, title=f"{prefix} {run}")
    return session.pk, players


# ---- client processes -------------------------------------------------------------------------


@dataclass
class ClientResult:
    latencies: list[float] = field(default_factory=list)  # ms, measured messages only
    received: int = 0  # measured messages received (each counted once)
    duplicates: int = 0
    seq_gaps: int = 0  # the server heals gaps from the store, so any here is a bug
    dropped: bool = False  # the socket closed under us
    port: int = 0  # our end of the TCP connection, to find which Daphne process served it
    by_message: dict[int, float] = field(default_factory=dict)  # message index -> ms


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _client_process(port: int, session_id: int, tokens: list[str], total: int, pipe) -> None:
    """Runs in a spawned process: connect, say ready, collect until told the last send went out
    and every measured message is in (or SETTLE_S passes), then send the results back."""
    _raise_fd_limit()
    try:
        results = asyncio.run(_clients(port, session_id, tokens, total, pipe))
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which prints it
        pipe.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    pipe.send(("results", results))


async def _clients(port: int, session_id: int, tokens: list[str], total: int, pipe) -> list[ClientResult]:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    url = f"ws://127.0.0.1:{port}/ws/sessions/{session_id}/?format=json"
    # A 500-socket connect storm on a busy machine can take longer than websockets' default 10 s.
    options = dict(
        origin=f"http://127.0.0.1:{port}", compression=None, proxy=None, max_queue=None, open_timeout=60
    )
    results = [ClientResult() for _ in tokens]
    seen: list[set[int]] = [set() for _ in tokens]
    pongs = [asyncio.Event() for _ in tokens]
    complete = asyncio.Event()
    left = [len(tokens)]

    async def read(k: int, ws) -> None:
        result, got, last_seq = results[k], seen[k], None
        with contextlib.suppress(ConnectionClosed):  # a dropped socket is a result, not a crash
            async for raw in ws:
                now = time.perf_counter()  # before parsing: parse time is the client's
                frame = json.loads(raw)
                kind = frame["type"]
                if kind == "event":
                    if last_seq is not None and frame["seq"] != last_seq + 1:
                        result.seq_gaps += 1
                    last_seq = frame["seq"]
                    stamp = frame["event"]["payload"].get("bench")
                    if stamp is None or stamp["i"] < 0:
                        continue  # warm-up
                    if stamp["i"] in got:
                        result.duplicates += 1
                        continue
                    got.add(stamp["i"])
                    result.by_message[stamp["i"]] = (now - stamp["sent_at"]) * 1000
                    if len(got) == total:
                        left[0] -= 1
                        if not left[0]:
                            complete.set()
                elif kind == "pong":
                    pongs[k].set()
        result.dropped = True

    sockets, readers = [], []
    try:
        for start in range(0, len(tokens), CONNECT_BATCH):
            batch = tokens[start : start + CONNECT_BATCH]
            sockets += await asyncio.gather(
                *(connect(url, additional_headers={"Authorization": f"Bearer {t}"}, **options) for t in batch)
            )
        for k, ws in enumerate(sockets):
            results[k].port = ws.local_address[1]
            readers.append(asyncio.create_task(read(k, ws)))
        # A pong proves each consumer is past connect(): in the group, its last seq known.
        await asyncio.gather(*(ws.send('{"type": "ping"}') for ws in sockets))
        try:
            await asyncio.wait_for(asyncio.gather(*(p.wait() for p in pongs)), 60)
        except TimeoutError:
            raise RuntimeError(f"{sum(not p.is_set() for p in pongs)} clients got no pong in 60 s") from None
        pipe.send(("ready", len(sockets)))
        # The parent says when its last message went out; then give stragglers SETTLE_S.
        await asyncio.get_running_loop().run_in_executor(None, pipe.recv)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(complete.wait(), SETTLE_S)
    finally:
        for task in readers:
            task.cancel()
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    for result, got in zip(results, seen, strict=True):
        result.received = len(got)
        result.latencies = list(result.by_message.values())
        result.dropped = result.dropped and len(got) < total
    return results


# ---- the sender: real events through the event store -------------------------------------------


def _send_all(run: Run, session_id: int) -> None:
    """Commit WARMUP + M NpcSpoke events at the run's rate, each broadcast after its commit;
    note how long the commit and the broadcast (render + group send) took on our side."""
    from django.db import transaction

    from campaigns import events

    messages, rate = run.messages, run.rate
    start = time.perf_counter()
    for n in range(WARMUP + messages):
        i = n - WARMUP  # warm-up messages have i < 0
        due = start + n / rate
        if (wait := due - time.perf_counter()) > 0:
            time.sleep(wait)
        stamp = {"i": i, "sent_at": time.perf_counter()}
        new = events.NewEvent(
            type="NpcSpoke", payload={"name": "Station PA", "line": f"Bulletin {n}.", "bench": stamp}
        )
        marks: list[float] = []
        with transaction.atomic():
            # Runs first on commit, ahead of the event store's listeners (the one broadcast).
            transaction.on_commit(lambda marks=marks: marks.append(time.perf_counter()))
            events.append(session_id, [new])
        committed = marks[0]
        if i >= 0:
            run.sent += 1
            run.commit_ms.append((committed - stamp["sent_at"]) * 1000)
            run.broadcast_ms.append((time.perf_counter() - committed) * 1000)


# ---- the server -------------------------------------------------------------------------------


# ---- reporting --------------------------------------------------------------------------------


@dataclass
class Run:
    layer: str
    clients: int
    workers: int
    messages: int
    rate: float
    sent: int = 0
    results: list[ClientResult] = field(default_factory=list)
    served_by: dict[int, int] = field(default_factory=dict)  # client port -> Daphne pid
    commit_ms: list[float] = field(default_factory=list)  # stamp -> committed, per message
    broadcast_ms: list[float] = field(default_factory=list)  # committed -> handed to the layer

    @property
    def latencies(self) -> list[float]:
        return [ms for r in self.results for ms in r.latencies]

    @property
    def received(self) -> int:
        return sum(r.received for r in self.results)

    @property
    def lost(self) -> int:
        return self.sent * self.clients - self.received

    @property
    def clients_with_loss(self) -> int:
        return sum(r.received < self.sent for r in self.results)


TABLE_HEADER = (
    "| layer | clients | web workers | messages @ rate | delivery p50 / p95 / p99 / max (ms) "
    "| sent | received | lost (clients with loss) | machine (nproc x CPU, 1-min load before) | date "
    "| command |\n|---|---:|---:|---|---|---:|---:|---|---|---|---|"
)
HOW_MEASURED = """\
How measured: `gtw bench fanout --clients N [--layer core|pubsub] [--web-workers W] [--messages M]
[--rate R]` starts its own `gtw up --web-workers W` (default 2) on a free loopback port with its
own data folder (`var/bench-fanout`; `DATABASE_URL`/`REDIS_URL` ignored) and
`GTW_CHANNEL_LAYER=<layer>`. It makes a campaign, N players with characters and API tokens and a
session through the services, and connects N websocket clients (`websockets`, `?format=json`,
bearer token; 125 per client process, connects in batches of 25); each answers a ping before we
start. The bench process then commits 10 warm-up and M measured NpcSpoke events, one every 1/R s,
through `campaigns.events.append`, whose listener broadcasts after commit (what a service does;
the event also carries the rendered partial and mission panel through the channel layer). Each
event carries `time.perf_counter()` taken just before the append, and each client notes
`perf_counter()` when the frame arrives (CLOCK_MONOTONIC, one clock for every process on the
machine), so **delivery** is commit + render + channel layer + Daphne + websocket + the client's
event loop. Percentiles are nearest rank over all N x M deliveries. **Received** is deliveries
summed over clients (M x N when nothing is lost); lost counts messages a client never got within
10 s of the last send (seq gaps are healed from the event store and counted as received).
Clients, server, PostgreSQL and Redis share the machine."""


def table_row(run: Run, machine: str, command: str) -> str:
    lat = run.latencies
    values = [percentile(lat, q) for q in (50, 95, 99)] + [max(lat, default=math.nan)]
    return (
        f"| {run.layer} | {run.clients} | {run.workers} | {run.messages} @ {run.rate:g}/s "
        f"| {' / '.join(f'{v:.1f}' for v in values)} | {run.sent} | {run.received} "
        f"| {run.lost} ({run.clients_with_loss}) | {machine} | {datetime.now(UTC).date()} | `{command}` |"
    )


def update_doc(text: str, row: str) -> str:
    """Replace (or add) the row for this (layer, clients) in our section's table; leave the
    rest of the section (notes, recommendation) and the file as they are."""
    return update_section(text, SECTION, HOW_MEASURED, TABLE_HEADER, row, key_cols=2, sort=True)


# ---- main -------------------------------------------------------------------------------------


def _spawn_clients(port: int, session_id: int, tokens: list[str], total: int):
    ctx = multiprocessing.get_context("spawn")  # no Django, no threads, no inherited sockets
    shards = []
    for start in range(0, len(tokens), CLIENTS_PER_PROCESS):
        ours, theirs = ctx.Pipe()
        proc = ctx.Process(
            target=_client_process,
            args=(port, session_id, tokens[start : start + CLIENTS_PER_PROCESS], total, theirs),
            daemon=True,
        )
        proc.start()
        shards.append((proc, ours))
    return shards


def _expect(pipe, kind: str, timeout: float):
    if not pipe.poll(timeout):
        raise RuntimeError(f"a client process sent no {kind!r} within {timeout:.0f} s")
    got, value = pipe.recv()
    if got == "error":
        raise RuntimeError(f"a client process failed: {value}")
    if got != kind:
        raise RuntimeError(f"a client process sent {got!r}, expected {kind!r}")
    return value


def _served_by(server: subprocess.Popen) -> dict[int, int]:
    """Client port -> pid of the Daphne process holding the other end."""
    import psutil

    ports = {}
    for child in psutil.Process(server.pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if "daphne" in " ".join(child.cmdline()):
                for conn in child.net_connections(kind="tcp"):
                    if conn.raddr and conn.status == "ESTABLISHED":
                        ports[conn.raddr.port] = child.pid
    return ports


def measure(server: subprocess.Popen, port: int, run: Run, session_id: int, tokens: list[str]) -> None:
    shards = _spawn_clients(port, session_id, tokens, run.messages)
    try:
        connected = sum(_expect(pipe, "ready", 180) for _, pipe in shards)
        run.served_by = _served_by(server)
        print(f"  {connected} clients connected and answered a ping; sending", flush=True)
        _send_all(run, session_id)
        for _, pipe in shards:
            pipe.send("sent")
        for _, pipe in shards:
            run.results += _expect(pipe, "results", SETTLE_S + 60)
    finally:
        for proc, _ in shards:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()


def _details(run: Run) -> None:
    """Where the time went: per Daphne process, and over the run (is it a backlog that grows,
    or spikes?). Also written to var/bench-fanout/last-run.json."""
    by_pid: dict[int, list[float]] = {}
    for r in run.results:
        by_pid.setdefault(run.served_by.get(r.port, 0), []).extend(r.latencies)
    for pid, lat in sorted(by_pid.items()):
        sockets = sum(run.served_by.get(r.port, 0) == pid for r in run.results)
        print(
            f"  Daphne pid {pid or '?'}: {sockets} sockets, p50 / p95 {percentile(lat, 50):.1f} / "
            f"{percentile(lat, 95):.1f} ms"
        )
    commit, cast = run.commit_ms, run.broadcast_ms
    print(
        f"  sender: commit p50 / p95 {percentile(commit, 50):.1f} / {percentile(commit, 95):.1f} ms, "
        f"then render + group send {percentile(cast, 50):.1f} / {percentile(cast, 95):.1f} ms "
        "(part of every delivery)"
    )
    timeline = []
    for i in range(run.messages):
        lat = [r.by_message[i] for r in run.results if i in r.by_message]
        timeline.append([i, json_ms(percentile(lat, 50)), json_ms(max(lat, default=math.nan))])
    step = max(1, run.messages // 10)
    print(
        "  message: p50 / max (ms) over clients — "
        + ", ".join(f"#{i}: {p}/{m}" for i, p, m in timeline[::step])
    )
    (DATA_DIR / "last-run.json").write_text(json.dumps({"timeline": timeline}))


def main(args) -> int:
    n, messages, rate = args.clients, args.messages, args.rate
    workers, layer = args.web_workers, args.layer
    if n < 1 or messages < 1 or rate <= 0:
        sys.stderr.write("gtw bench fanout: --clients, --messages and --rate must be positive\n")
        return 2
    load = os.getloadavg()[0]
    if load > 0.5:
        print(f"gtw bench: note: 1-minute load is {load:.1f} before we start; expect noisy numbers.")
    # The server inherits our environment (and file limit); this process attaches to the same
    # embedded PostgreSQL and Redis and sends through the same channel layer.
    os.environ.update(
        {"GTW_DATA_DIR": str(DATA_DIR), "GTW_NARRATOR_PROVIDER": "offline", "GTW_CHANNEL_LAYER": layer}
    )
    for name in UNSET_ENV:
        os.environ.pop(name, None)
    _raise_fd_limit()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log_path = DATA_DIR / "server.log"
    print(f"gtw bench fanout: {LAYERS[layer]}, server on 127.0.0.1:{port} (log: {log_path})", flush=True)
    run = Run(layer=layer, clients=n, workers=workers, messages=messages, rate=rate)
    with open(log_path, "w") as log:
        proc = start_server(port, log, workers=workers)
        try:
            wait_healthy(port, proc, timeout=180)
            os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gtw_site.settings")
            import django

            django.setup()
            logging.getLogger("django-q").setLevel(logging.WARNING)  # one "Enqueued" line per event
            session_id, players = setup_game(n)
            print(f"  {n} client(s), session {session_id}, {messages} messages at {rate:g}/s", flush=True)
            measure(proc, port, run, session_id, [token for _, token in players])
        except (RuntimeError, OSError) as exc:
            return server_failed(exc, log_path)
        except KeyboardInterrupt:
            sys.stderr.write("gtw bench: interrupted\n")
            return 130
        finally:
            stop_server(proc)
    command = f"gtw bench fanout --clients {n} --layer {layer} --web-workers {workers}"
    if (messages, rate) != (200, 20):
        command += f" --messages {messages} --rate {rate:g}"
    row = table_row(run, machine_text(load), command)
    print(f"\n{TABLE_HEADER}\n{row}")
    print(
        f"duplicates: {sum(r.duplicates for r in run.results)} · seq gaps seen by clients: "
        f"{sum(r.seq_gaps for r in run.results)} · dropped sockets: {sum(r.dropped for r in run.results)}"
    )
    _details(run)
    if not args.no_write:
        DOC.write_text(update_doc(DOC.read_text() if DOC.exists() else "", row))
        print(f"updated {DOC.relative_to(BASE_DIR)}")
    lat = run.latencies
    summary = {f"p{q}_ms": json_ms(percentile(lat, q)) for q in (50, 95, 99)}
    print(json.dumps({"clients": n, **summary, "sent": run.sent, "received": run.received}))
    return 0 if run.lost == 0 and not any(r.dropped for r in run.results) else 1
