"""`gtw bench fanout [--clients N | --knee [N,N,...]] [--runs R]`: how fast one session-wide
event reaches N sockets, and where that stops holding (the knee).

A throw-away `gtw up --web-workers W` (own data folder var/bench-fanout, or
$GTW_BENCH_FANOUT_DIR, so it never meets a `gtw bench turn` running beside it) with the channel
layer and web worker count the product runs here unless told otherwise (`--layer`,
`--web-workers`), and N websocket clients (a lean asyncio-protocol client,
gtw_site/bench/lean_ws.py, loopback, `?format=json`, one bearer token per player) in one process
per core. This process then commits M NpcSpoke events through the
event store (`campaigns.events.append`, whose listener broadcasts after commit, exactly what a
service does) at a fixed rate; each carries `time.perf_counter()` taken just before the append
(CLOCK_MONOTONIC, the same clock in every process on the machine), and each client notes its own
`perf_counter()` when the frame arrives. Latency = arrival - stamp, per message per client.
Beside latency it reports the Daphne processes' CPU per delivered message and the harness's own
CPU share, figures that hold up when other work shares the machine.

Not a test: it prints a table and, as its last line, one JSON object naming the layer and the
web workers, the worst run's p50/p95/p99, each run's p95, sent / received / lost / duplicated
(received = deliveries summed over clients; nothing lost means received == sent x clients), and
with several client counts the knee; unless --no-write, it updates docs/BENCHMARKS.md.
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
import traceback
from array import array
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

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

# var/bench-fanout unless GTW_BENCH_FANOUT_DIR names another folder (two people benching at once).
DATA_DIR = Path(os.environ.get("GTW_BENCH_FANOUT_DIR") or BASE_DIR / "var" / "bench-fanout").resolve()
SECTION = "## gtw bench fanout"
LAYERS = {"core": "RedisChannelLayer", "pubsub": "RedisPubSubChannelLayer"}
MIN_CLIENTS_PER_PROCESS = 50  # below this many clients per core, fewer client processes
CONNECT_BATCH = 10  # connects in flight per client process
CONNECT_RETRIES = 8  # a connection the server drops during a connect storm is opened again
SETTLE_S = 10.0  # after the last send, how long a client waits for stragglers
WARMUP = 10  # messages sent (and discarded) before the measured ones
# How long the clients may take to connect and answer a ping: a connect storm on a busy machine
# (each join re-announces presence to every socket) takes minutes at 1,000.
READY_S, READY_S_PER_CLIENT = 300.0, 0.3
IDLE_S = 5.0  # before sending, the server's CPU with every socket open and nothing sent


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
    and every measured message is in (or SETTLE_S passes), then send the results back, with
    the CPU seconds this process spent while the messages were sent and read."""
    _raise_fd_limit()
    try:
        results, cpu = asyncio.run(_clients(port, session_id, tokens, total, pipe))
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which prints it
        where = traceback.format_exception(exc)[-2].strip().replace("\n", " ")
        pipe.send(("error", f"{type(exc).__name__}: {exc} ({where})"))
        return
    pipe.send(("results", (results, cpu)))


# An event frame as the server encodes it (realtime.consumers.event_frame: json.dumps, default
# separators), and our stamp inside its payload. JSON escapes every quote inside a string, so
# these bytes can only be the structure itself, never text a player typed.
EVENT_HEAD = b'{"type": "event", "seq": '
STAMP_KEY = b'"bench": {"i": '
STAMP_AT = b', "sent_at": '


def read_event(raw: bytes) -> tuple[int, int | None, float] | None:
    """(seq, stamp index or None, sent_at) of an event frame, read from its bytes without
    decoding the rest (the harness does this 20,000 times a second at 1,000 clients); None for
    any other frame. `check_event` holds it to json.loads on each socket's first event."""
    if not raw.startswith(EVENT_HEAD):
        return None
    comma = raw.index(b",", len(EVENT_HEAD))
    seq = int(raw[len(EVENT_HEAD) : comma])
    at = raw.find(STAMP_KEY, comma)
    if at < 0:
        return seq, None, 0.0
    at += len(STAMP_KEY)
    mid = raw.index(STAMP_AT, at)
    return seq, int(raw[at:mid]), float(raw[mid + len(STAMP_AT) : raw.index(b"}", mid)])


def check_event(raw: bytes) -> tuple[int, int | None, float] | None:
    """read_event(raw), checked against a full decode of the frame (a format the shortcut
    misreads fails the run instead of measuring the wrong thing)."""
    frame = json.loads(raw)
    if frame.get("type") != "event":
        expected = None
    else:
        stamp = frame["event"]["payload"].get("bench")
        expected = (
            (frame["seq"], None, 0.0) if stamp is None else (frame["seq"], stamp["i"], stamp["sent_at"])
        )
    if (got := read_event(raw)) != expected:
        raise RuntimeError(f"read_event misread a frame: {got} != {expected}: {raw[:200]!r}")
    return got


class _Reader:
    """One socket's side of the count: every measured message once, its latency, seq gaps and
    duplicates. Flat per-socket arrays, not dicts and sets: the callback runs per frame."""

    __slots__ = (
        "complete",
        "duplicates",
        "got",
        "last_seq",
        "latency",
        "left",
        "pong",
        "received",
        "seq_gaps",
    )

    def __init__(self, total: int, left: list[int], complete: asyncio.Event) -> None:
        self.got = bytearray(total)  # message index -> 1 once received
        self.latency = array("d", bytes(8 * total))  # message index -> ms
        self.received = self.duplicates = self.seq_gaps = 0
        self.last_seq: int | None = None
        self.pong = asyncio.Event()
        self.left, self.complete = left, complete

    def on_text(self, raw: bytes) -> None:
        now = time.perf_counter()  # before parsing: parse time is the client's
        # The socket's first event checks the shortcut against a full decode; nothing else is
        # decoded (the presence list that every join sends everyone is 20 KB at 1,000 players).
        first = self.last_seq is None and b'"event"' in raw[:32]
        event = check_event(raw) if first else read_event(raw)
        if event is None:
            if raw.startswith(b'{"type": "pong"'):
                self.pong.set()
            return
        seq, i, sent_at = event
        if self.last_seq is not None and seq != self.last_seq + 1:
            self.seq_gaps += 1
        self.last_seq = seq
        if i is None or i < 0:
            return  # warm-up, or not ours
        if self.got[i]:
            self.duplicates += 1
            return
        self.got[i] = 1
        self.latency[i] = (now - sent_at) * 1000
        self.received += 1
        if self.received == len(self.got):
            self.left[0] -= 1
            if not self.left[0]:
                self.complete.set()

    def result(self, into: ClientResult) -> None:
        into.received, into.duplicates, into.seq_gaps = self.received, self.duplicates, self.seq_gaps
        into.by_message = {i: self.latency[i] for i, got in enumerate(self.got) if got}
        into.latencies = list(into.by_message.values())


async def _clients(
    port: int, session_id: int, tokens: list[str], total: int, pipe
) -> tuple[list[ClientResult], float]:
    from gtw_site.bench import lean_ws
    from gtw_site.bench.lean_ws import connect

    path = f"/ws/sessions/{session_id}/?format=json"
    results = [ClientResult() for _ in tokens]
    complete = asyncio.Event()
    left = [len(tokens)]
    readers = [_Reader(total, left, complete) for _ in tokens]
    pongs = [r.pong for r in readers]

    sockets = []
    try:
        for start in range(0, len(tokens), CONNECT_BATCH):
            batch = range(start, min(start + CONNECT_BATCH, len(tokens)))
            sockets += await asyncio.gather(
                *(
                    connect(
                        "127.0.0.1",
                        port,
                        path,
                        readers[k].on_text,
                        headers={"Authorization": f"Bearer {tokens[k]}"},
                        retries=CONNECT_RETRIES,
                    )
                    for k in batch
                )
            )
        for k, ws in enumerate(sockets):
            results[k].port = ws.local_port
        # A pong proves each consumer is past connect(): in the group, its last seq known.
        for ws in sockets:
            ws.send_text('{"type": "ping"}')
        try:
            await asyncio.wait_for(asyncio.gather(*(p.wait() for p in pongs)), 60)
        except TimeoutError:
            raise RuntimeError(f"{sum(not p.is_set() for p in pongs)} clients got no pong in 60 s") from None
        if lean_ws.retried:
            print(f"  a client process opened connections again: {dict(lean_ws.retried)}", flush=True)
        pipe.send(("ready", len(sockets)))
        await asyncio.get_running_loop().run_in_executor(None, pipe.recv)  # "go"
        cpu = time.process_time()
        # The parent says when its last message went out; then give stragglers SETTLE_S.
        await asyncio.get_running_loop().run_in_executor(None, pipe.recv)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(complete.wait(), SETTLE_S)
        cpu = time.process_time() - cpu
        for result, ws in zip(results, sockets, strict=True):
            result.dropped = ws.closed.done()  # the server closed it under us
    finally:
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    for result, reader in zip(results, readers, strict=True):
        reader.result(result)
        result.dropped = result.dropped and result.received < total
    return results, cpu


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
    wall_s: float = 0.0  # from the first measured send until every client had settled
    harness_cpu_s: float = 0.0  # CPU seconds of the client processes over wall_s
    server_cpu_s: dict[int, float] = field(default_factory=dict)  # Daphne pid -> CPU s over wall_s
    server_system_s: float = 0.0  # of which in the kernel (all Daphnes)
    idle_server_cpu_s: float = 0.0  # Daphne CPU over IDLE_S with the sockets open and no event
    sender_cpu_s: float = 0.0  # this process (commit, render, group send) while it sent
    services_cpu_s: dict[str, float] = field(default_factory=dict)  # "redis" / "postgres" -> CPU s

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
    def duplicates(self) -> int:
        return sum(r.duplicates for r in self.results)

    @property
    def clients_with_loss(self) -> int:
        return sum(r.received < self.sent for r in self.results)

    @property
    def dropped(self) -> int:
        return sum(r.dropped for r in self.results)

    def p(self, q: float) -> float:
        return percentile(self.latencies, q)

    @property
    def server_us_per_delivery(self) -> float:
        """Daphne CPU (all web workers) per delivered message: what one socket costs the server."""
        return sum(self.server_cpu_s.values()) / max(1, self.received) * 1e6

    @property
    def idle_share(self) -> float:
        """Daphne CPU with the sockets open and no event, in cores (the steady per-socket cost)."""
        return self.idle_server_cpu_s / IDLE_S

    @property
    def server_us_per_delivery_net(self) -> float:
        """Daphne CPU per delivered message less what the open sockets cost anyway."""
        net = sum(self.server_cpu_s.values()) - self.idle_share * self.wall_s
        return net / max(1, self.received) * 1e6

    @property
    def harness_us_per_message(self) -> float:
        """The client processes' CPU per message they received (the harness's own cost)."""
        return self.harness_cpu_s / max(1, self.received) * 1e6

    @property
    def harness_share(self) -> float:
        """The client processes' CPU as a share of the machine over the run."""
        return self.harness_cpu_s / max(1e-9, self.wall_s * (os.cpu_count() or 1))

    @property
    def split(self) -> str:
        counts: dict[int, int] = {}
        for r in self.results:
            pid = self.served_by.get(r.port, 0)
            counts[pid] = counts.get(pid, 0) + 1
        return "/".join(str(c) for c in sorted(counts.values(), reverse=True))

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.duplicates == 0 and not self.dropped


TARGET_P95_MS = 100.0
TABLE_HEADER = (
    "| layer | clients | web workers | messages @ rate | runs | delivery p95 (ms), each run "
    "| p50 / p99 (ms), worst run | lost / duplicated | sockets per Daphne "
    "| server CPU per delivery (µs) | harness CPU "
    "| machine (nproc x CPU, 1-min load before) | date | command |\n"
    "|---|---:|---:|---|---:|---|---|---|---|---|---|---|---|---|"
)
HOW_MEASURED = """\
How measured: `gtw bench fanout [--clients N | --knee [N,N,...]] [--runs R] [--layer core|pubsub]
[--web-workers W] [--messages M] [--rate R]` starts its own `gtw up --web-workers W` on a free
loopback port with its own data folder (`var/bench-fanout` or `$GTW_BENCH_FANOUT_DIR`;
`DATABASE_URL`/`REDIS_URL` ignored)
and `GTW_CHANNEL_LAYER=<layer>`. **Both default to what the product runs**: the layer and web
worker count `gtw up` would use here (`GTW_CHANNEL_LAYER`, default `pubsub`; `GTW_WEB_WORKERS`,
default 1), and the JSON line names them. It makes a campaign, the players with characters and
API tokens and a session through the services, once; then, for each client count, R runs back
to back on the same server: N websocket clients connect (`?format=json`, bearer token), each
answers a ping, and the bench process commits 10 warm-up and M measured NpcSpoke events, one
every 1/R s, through `campaigns.events.append`, whose listener broadcasts after commit (the
event carries the rendered partial too). Each event carries `time.perf_counter()` taken just
before the append, and each client notes `perf_counter()` when the frame arrives
(CLOCK_MONOTONIC, one clock for every process on the machine), so **delivery** is commit +
render + channel layer + Daphne + websocket + the client's event loop. Percentiles are nearest
rank over all N x M deliveries of a run; a count **meets the target** only if every run's p95 is
under 100 ms with nothing lost or duplicated, and the **knee** is the first count that does not.
The clients are a lean harness (`gtw_site/bench/lean_ws.py`: an asyncio BufferedProtocol that
the loop reads into, no task per socket; each event's seq and stamp are read from the frame's
bytes, checked against a full JSON decode on each socket's first event) in one process per core,
and their CPU over the run is reported (**harness CPU**, share of the machine; the output and
the JSON line also give it per message received), as is the Daphne processes' CPU per delivered
message (**server CPU per delivery**, a figure much less sensitive to other load than latency;
the output also gives the Daphnes' CPU over 5 s with every socket open and nothing sent — the
heartbeats — and the figure net of it, and the sender's, Redis's and PostgreSQL's CPU over the
run). Clients, server, PostgreSQL and Redis share the machine: report the load beside every
figure."""


def spread(values: list[float]) -> str:
    return " / ".join(f"{v:.1f}" for v in values)


def table_row(runs: list[Run], machine: str, command: str) -> str:
    first, worst = runs[0], max(runs, key=lambda r: r.p(95))
    return (
        f"| {first.layer} | {first.clients} | {first.workers} | {first.messages} @ {first.rate:g}/s "
        f"| {len(runs)} | {spread([r.p(95) for r in runs])} | {worst.p(50):.1f} / {worst.p(99):.1f} "
        f"| {sum(r.lost for r in runs)} / {sum(r.duplicates for r in runs)} "
        f"| {', '.join(r.split for r in runs)} | {spread([r.server_us_per_delivery for r in runs])} "
        f"| {spread([100 * r.harness_share for r in runs])} % | {machine} | {datetime.now(UTC).date()} "
        f"| `{command}` |"
    )


def update_doc(text: str, row: str) -> str:
    """Replace (or add) the row for this (layer, clients, web workers) in our section's table;
    leave the rest of the section (notes, recommendation) and the file as they are."""
    return update_section(text, SECTION, HOW_MEASURED, TABLE_HEADER, row, key_cols=3, sort=True)


def knee(rows: dict[int, list[Run]]) -> int | None:
    """The first client count where some run misses the target (p95 >= 100 ms, or a loss)."""
    for clients, runs in sorted(rows.items()):
        if any(r.p(95) >= TARGET_P95_MS or not r.ok for r in runs):
            return clients
    return None


# ---- main -------------------------------------------------------------------------------------


def _spawn_clients(port: int, session_id: int, tokens: list[str], total: int):
    """One client process per core (or fewer, for a few clients): a lean harness that takes as
    little of the machine as it can, spread so no one event loop parses every frame."""
    ctx = multiprocessing.get_context("spawn")  # no Django, no threads, no inherited sockets
    procs = max(1, min(os.cpu_count() or 1, math.ceil(len(tokens) / MIN_CLIENTS_PER_PROCESS)))
    per = math.ceil(len(tokens) / procs)
    shards = []
    for start in range(0, len(tokens), per):
        ours, theirs = ctx.Pipe()
        proc = ctx.Process(
            target=_client_process,
            args=(port, session_id, tokens[start : start + per], total, theirs),
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


def _daphnes(server: subprocess.Popen) -> list:
    import psutil

    found = []
    for child in psutil.Process(server.pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if "daphne" in " ".join(child.cmdline()):
                found.append(child)
    return found


def _served_by(daphnes: list) -> dict[int, int]:
    """Client port -> pid of the Daphne process holding the other end."""
    import psutil

    ports = {}
    for child in daphnes:
        with contextlib.suppress(psutil.Error):
            for conn in child.net_connections(kind="tcp"):
                if conn.raddr and conn.status == "ESTABLISHED":
                    ports[conn.raddr.port] = child.pid
    return ports


def _cpu(procs: list, *, system_only: bool = False) -> dict[int, float]:
    import psutil

    times = {}
    for child in procs:
        with contextlib.suppress(psutil.Error):
            t = child.cpu_times()
            times[child.pid] = t.system if system_only else t.user + t.system
    return times


def _spent(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(after[pid] - before[pid] for pid in after if pid in before)


def _backing_services() -> dict[str, list]:
    """The bench's own Redis and PostgreSQL (started by `gtw up` for our data folder and left to
    run on their own): found by the folder in their command line, PostgreSQL's backends too."""
    import psutil

    found: dict[str, list] = {"redis": [], "postgres": []}
    for proc in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            cmd = " ".join(proc.info["cmdline"] or ())
            if str(DATA_DIR) not in cmd:
                continue
            if "redis-server" in cmd:
                found["redis"].append(proc)
            elif "postgres" in cmd:
                found["postgres"] += [proc, *proc.children()]
    return found


def measure(server: subprocess.Popen, port: int, run: Run, session_id: int, tokens: list[str]) -> None:
    shards = _spawn_clients(port, session_id, tokens, run.messages)
    try:
        connected = sum(
            _expect(pipe, "ready", READY_S + READY_S_PER_CLIENT * run.clients) for _, pipe in shards
        )
        daphnes = _daphnes(server)
        run.served_by = _served_by(daphnes)
        split = "/".join(str(c) for c in sorted(Counter(run.served_by.values()).values(), reverse=True))
        print(
            f"  {connected} clients connected and answered a ping ({split} per Daphne); sending", flush=True
        )
        # What the sockets cost with no event at all (heartbeats: presence, the sign-in re-check,
        # heal ticks), so the per-delivery figure can be read net of it.
        idle_before = _cpu(daphnes)
        time.sleep(IDLE_S)
        run.idle_server_cpu_s = _spent(idle_before, _cpu(daphnes))
        for _, pipe in shards:
            pipe.send("go")
        services = _backing_services()
        started, cpu_before = time.perf_counter(), _cpu(daphnes)
        sys_before, sender_before = _cpu(daphnes, system_only=True), time.process_time()
        others_before = {name: _cpu(procs) for name, procs in services.items()}
        _send_all(run, session_id)
        run.sender_cpu_s = time.process_time() - sender_before
        for _, pipe in shards:
            pipe.send("sent")
        for _, pipe in shards:
            results, cpu = _expect(pipe, "results", SETTLE_S + 60)
            run.results += results
            run.harness_cpu_s += cpu
        run.wall_s = time.perf_counter() - started
        cpu_after = _cpu(daphnes)
        run.server_cpu_s = {pid: cpu_after[pid] - cpu_before[pid] for pid in cpu_after if pid in cpu_before}
        run.server_system_s = _spent(sys_before, _cpu(daphnes, system_only=True))
        run.services_cpu_s = {
            name: _spent(others_before[name], _cpu(procs)) for name, procs in services.items()
        }
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
        cpu = run.server_cpu_s.get(pid)
        print(
            f"  Daphne pid {pid or '?'}: {sockets} sockets, p50 / p95 {percentile(lat, 50):.1f} / "
            f"{percentile(lat, 95):.1f} ms"
            + (f", CPU {cpu:.1f} s ({100 * cpu / run.wall_s:.0f} % of a core)" if cpu is not None else "")
        )
    commit, cast = run.commit_ms, run.broadcast_ms
    print(
        f"  sender: commit p50 / p95 {percentile(commit, 50):.1f} / {percentile(commit, 95):.1f} ms, "
        f"then render + group send {percentile(cast, 50):.1f} / {percentile(cast, 95):.1f} ms "
        "(part of every delivery)"
    )
    server = sum(run.server_cpu_s.values())
    print(
        f"  server CPU {run.server_us_per_delivery:.1f} µs per delivery ({server:.1f} s, "
        f"{100 * run.server_system_s / max(server, 1e-9):.0f} % in the kernel); harness CPU "
        f"{run.harness_cpu_s:.1f} s = {run.harness_us_per_message:.1f} µs per message received, "
        f"{100 * run.harness_share:.0f} % of the machine over {run.wall_s:.1f} s"
    )
    print(
        f"  server CPU with the sockets open and no event: {100 * run.idle_share:.1f} % of a core; "
        f"per delivery net of it: {run.server_us_per_delivery_net:.1f} µs"
    )
    others = [("sender", run.sender_cpu_s), *sorted(run.services_cpu_s.items())]
    print(
        "  the rest of the machine's share (CPU s, % of a core over the run): "
        + ", ".join(f"{name} {cpu:.1f} s ({100 * cpu / run.wall_s:.0f} %)" for name, cpu in others)
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


def product_layer() -> str:
    """The channel layer `gtw up` runs with here (settings: GTW_CHANNEL_LAYER, default pubsub)."""
    return os.environ.get("GTW_CHANNEL_LAYER", "").strip() or "pubsub"


def product_web_workers() -> int:
    """The web worker count `gtw up` starts here (GTW_WEB_WORKERS, default 1)."""
    raw = os.environ.get("GTW_WEB_WORKERS", "").strip()
    return max(1, int(raw)) if raw.isdigit() else 1


def client_counts(args) -> list[int]:
    if getattr(args, "knee", None):
        return sorted({int(c) for c in args.knee.split(",") if c.strip()})
    return [args.clients]


def main(args) -> int:
    counts, messages, rate = client_counts(args), args.messages, args.rate
    runs = getattr(args, "runs", 1) or 1
    layer = args.layer or product_layer()
    workers = args.web_workers or product_web_workers()
    if layer not in LAYERS:
        sys.stderr.write(f"gtw bench fanout: unknown layer {layer!r} (GTW_CHANNEL_LAYER): core or pubsub\n")
        return 2
    if min(counts) < 1 or messages < 1 or rate <= 0 or runs < 1:
        sys.stderr.write("gtw bench fanout: --clients, --runs, --messages and --rate must be positive\n")
        return 2
    load = os.getloadavg()[0]
    if load > 0.5:
        print(f"gtw bench: note: 1-minute load is {load:.1f} before we start; expect noisy numbers.")
    # The server inherits our environment (and file limit); this process attaches to the same
    # embedded PostgreSQL and Redis and sends through the same channel layer.
    # No pictures: the players' new characters would otherwise queue a portrait each, painted by
    # the server's image cluster while we measure.
    os.environ.update(
        {
            "GTW_DATA_DIR": str(DATA_DIR),
            "GTW_NARRATOR_PROVIDER": "offline",
            "GTW_CHANNEL_LAYER": layer,
            "GTW_IMAGE_AUTO": "0",
        }
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
    print(
        f"gtw bench fanout: {LAYERS[layer]}, {workers} web worker(s), server on 127.0.0.1:{port} "
        f"(log: {log_path})",
        flush=True,
    )
    rows: dict[int, list[Run]] = {}
    with open(log_path, "w") as log:
        proc = start_server(port, log, workers=workers)
        try:
            wait_healthy(port, proc, timeout=180)
            os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gtw_site.settings")
            import django

            django.setup()
            logging.getLogger("django-q").setLevel(logging.WARNING)  # one "Enqueued" line per event
            session_id, players = setup_game(max(counts))
            tokens = [token for _, token in players]
            for n in counts:
                for k in range(runs):
                    print(
                        f"  {n} client(s), run {k + 1}/{runs}: session {session_id}, {messages} messages at "
                        f"{rate:g}/s, load {os.getloadavg()[0]:.1f}",
                        flush=True,
                    )
                    run = Run(layer=layer, clients=n, workers=workers, messages=messages, rate=rate)
                    measure(proc, port, run, session_id, tokens[:n])
                    _details(run)
                    rows.setdefault(n, []).append(run)
        except (RuntimeError, OSError) as exc:
            return server_failed(exc, log_path)
        except KeyboardInterrupt:
            sys.stderr.write("gtw bench: interrupted\n")
            return 130
        finally:
            stop_server(proc)
    print(f"\n{TABLE_HEADER}")
    doc_rows = []
    for n, done in sorted(rows.items()):
        command = f"gtw bench fanout --clients {n} --layer {layer} --web-workers {workers}"
        if runs > 1:
            command += f" --runs {runs}"
        if (messages, rate) != (200, 20):
            command += f" --messages {messages} --rate {rate:g}"
        doc_rows.append(table_row(done, machine_text(load), command))
        print(doc_rows[-1])
    found = knee(rows)
    if len(rows) > 1:
        print(
            f"knee: {found if found is not None else f'above {max(rows)}'} clients "
            f"(the first count where a run's p95 reaches {TARGET_P95_MS:g} ms or loses a message)"
        )
    if not args.no_write:
        text = DOC.read_text() if DOC.exists() else ""
        for row in doc_rows:
            text = update_doc(text, row)
        DOC.write_text(text)
        print(f"updated {DOC.relative_to(BASE_DIR)}")
    every = [r for done in rows.values() for r in done]
    summary = {f"p{q}_ms": json_ms(max(r.p(q) for r in every)) for q in (50, 95, 99)}
    line = {
        "layer": layer,
        "web_workers": workers,
        "clients": counts[0] if len(counts) == 1 else counts,
        "runs": runs,
        **summary,  # the worst run's
        "p95_ms_by_run": {n: [json_ms(r.p(95)) for r in done] for n, done in sorted(rows.items())},
        "sent": sum(r.sent for r in every),
        "received": sum(r.received for r in every),
        "lost": sum(r.lost for r in every),
        "duplicates": sum(r.duplicates for r in every),
        "server_us_per_delivery": round(sum(r.server_us_per_delivery for r in every) / len(every), 1),
        "harness_cpu_share": round(sum(r.harness_share for r in every) / len(every), 3),
        "harness_us_per_message": round(sum(r.harness_us_per_message for r in every) / len(every), 1),
        "server_us_per_delivery_net_of_idle": round(
            sum(r.server_us_per_delivery_net for r in every) / len(every), 1
        ),
        "load_before": round(load, 2),
    }
    if len(rows) > 1:
        line["knee"] = found
    print(json.dumps(line))
    return 0 if all(r.ok for r in every) else 1
