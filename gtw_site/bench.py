"""`gtw bench turn --clients N`: turn latency as real websocket clients see it.

A throw-away `gtw up` (own data folder var/bench, offline narrator with no word delay, so we
measure our overhead and not the narrator's pacing) plus N websocket clients on loopback in this
process. Client 0 POSTs an action; every client records when the first narration delta and the
Narration event for that action arrive. Start point for both is the client-side send time of the
POST — the closest a client can get to "the server received the action".

Not a test: it prints percentiles, and (unless --no-write) updates docs/BENCHMARKS.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import platform
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from websockets.asyncio.client import connect

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = BASE_DIR / "var" / "bench"
DOC = BASE_DIR / "docs" / "BENCHMARKS.md"
SECTION = "## gtw bench turn"
WARMUP_TURNS = 2
TURN_TIMEOUT_S = 30.0
# "hack" makes the offline narrator call rules_skill_check, so each turn includes a tool call,
# a DiceRolled event and a second narration round — the realistic shape of a turn.
ACTION_TEXT = "I hack the door panel"
# Loopback only: never let a *_proxy variable in the user's shell route the bench elsewhere.
_http = urllib.request.build_opener(urllib.request.ProxyHandler({}))


# ---- the server under test -----------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _bench_env() -> dict[str, str]:
    env = {
        **os.environ,
        "GTW_DATA_DIR": str(DATA_DIR),
        "GTW_OFFLINE_WORD_DELAY_MS": "0",
        "GTW_NARRATOR_PROVIDER": "offline",
    }
    # Always the embedded servers in var/bench: a bench must never write into a real database.
    for name in ("DATABASE_URL", "REDIS_URL", "GTW_DB_NAME"):
        env.pop(name, None)
    return env


def _start_server(port: int, env: dict[str, str], log) -> subprocess.Popen:
    # Own process group: a Ctrl-C in this terminal reaches only us, and we stop the server with
    # SIGTERM (it then stops Daphne, the task cluster and — last one out — the embedded servers).
    return subprocess.Popen(
        [sys.executable, "-m", "gtw_site.cli", "up", "--port", str(port)],
        cwd=BASE_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        process_group=0,
    )


def _wait_healthy(port: int, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"`gtw up` exited with {proc.returncode}")
        with contextlib.suppress(OSError), _http.open(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
            if resp.status == 200:
                return
        time.sleep(0.25)
    raise RuntimeError(f"/healthz did not answer 200 within {timeout:.0f} s")


def _stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


# ---- fixtures (through the services, like a real GM and players) -----------------------------


def _setup_game(n: int) -> tuple[int, list[str]]:
    """A fresh campaign + session per run, N players with characters, a token each."""
    from django.contrib.auth import get_user_model

    from campaigns import services
    from campaigns.models import Membership
    from gtw_site.models import ApiToken

    user_model = get_user_model()

    def user(name: str):
        u, created = user_model.objects.get_or_create(
            username=name, defaults={"email": f"{name}@bench.invalid"}
        )
        if created:
            u.set_unusable_password()
            u.save()
        return u

    run = secrets.token_hex(3)
    gm = user("bench-gm")
    campaign = services.campaign_create(user=gm, name=f"bench {run}", pack_slug="starter")
    gm_membership = Membership.objects.get(campaign=campaign, user=gm)
    tokens = []
    for i in range(n):
        player = user(f"bench-{i:03d}")
        membership = services.invite_accept(
            code=services.invite_create(membership=gm_membership).code, user=player
        )
        services.character_create(membership=membership, name=f"Runner {i}", archetype="netrunner")
        ApiToken.objects.filter(user=player, name="bench").delete()  # don't pile up a token per run
        tokens.append(ApiToken.issue(user=player, name="bench")[1])
    session = services.session_open(membership=gm_membership, title=f"bench {run}")
    return session.pk, tokens


# ---- clients ----------------------------------------------------------------------------------


@dataclass
class Client:
    ws: object
    first_delta: dict[int, float] = field(default_factory=dict)  # action_seq → perf_counter
    delta_ids: dict[int, set[int]] = field(default_factory=dict)  # action_seq → delta indices seen
    committed: dict[int, float] = field(default_factory=dict)  # action_seq → Narration arrived
    last_seq: int | None = None
    seq_gaps: int = 0
    pong: asyncio.Event = field(default_factory=asyncio.Event)


async def _read(client: Client, tick: asyncio.Event) -> None:
    async for raw in client.ws:
        now = time.perf_counter()  # before parsing: parse time is ours, not the server's
        frame = json.loads(raw)
        kind = frame.get("type")
        if kind == "delta":
            seq = frame["action_seq"]
            client.first_delta.setdefault(seq, now)
            client.delta_ids.setdefault(seq, set()).add(frame["i"])
        elif kind == "event":
            # The server heals gaps from the event store, so a gap here is a real bug.
            if client.last_seq is not None and frame["seq"] != client.last_seq + 1:
                client.seq_gaps += 1
            client.last_seq = frame["seq"]
            event = frame["event"]
            if event["type"] == "Narration":
                client.committed.setdefault(event["payload"]["action_seq"], now)
                tick.set()
        elif kind == "pong":
            client.pong.set()


def _post_action(port: int, session_id: int, token: str, key: str) -> tuple[float, float, int]:
    """Runs in a thread; returns (sent, returned, action seq) — both times from perf_counter."""
    body = json.dumps({"text": ACTION_TEXT, "idempotency_key": key}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/sessions/{session_id}/actions",
        data=body,
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    sent = time.perf_counter()
    with _http.open(request, timeout=TURN_TIMEOUT_S) as resp:
        seq = json.loads(resp.read())["seq"]
    return sent, time.perf_counter(), seq


@dataclass
class Results:
    first_delta: list[float] = field(default_factory=list)  # ms, one per client x turn
    commit: list[float] = field(default_factory=list)
    post: list[float] = field(default_factory=list)  # one per turn
    lost_deltas: int = 0
    lost_events: int = 0
    timeouts: int = 0


async def _run(port: int, session_id: int, tokens: list[str], turns: int) -> Results:
    url = f"ws://127.0.0.1:{port}/ws/sessions/{session_id}/?format=json"
    tick = asyncio.Event()
    clients: list[Client] = []
    readers: list[asyncio.Task] = []
    results = Results()
    try:
        for token in tokens:
            ws = await connect(
                url,
                additional_headers={"Authorization": f"Bearer {token}"},
                origin=f"http://127.0.0.1:{port}",
                compression=None,
                proxy=None,
                max_queue=None,
            )
            client = Client(ws)
            clients.append(client)
            readers.append(asyncio.create_task(_read(client, tick)))
        # A pong proves the consumer is past connect(): joined the group and knows its last seq.
        for client in clients:
            await client.ws.send('{"type": "ping"}')
        await asyncio.wait_for(asyncio.gather(*(c.pong.wait() for c in clients)), 30)
        run = secrets.token_hex(4)
        for turn in range(WARMUP_TURNS + turns):
            sent, returned, seq = await asyncio.to_thread(
                _post_action, port, session_id, tokens[0], f"bench-{run}-{turn}"
            )
            deadline = time.perf_counter() + TURN_TIMEOUT_S
            while not all(seq in c.committed for c in clients) and time.perf_counter() < deadline:
                tick.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(tick.wait(), deadline - time.perf_counter())
            if turn < WARMUP_TURNS:
                continue
            _score(results, clients, seq, sent, returned)
        results.lost_events += sum(c.seq_gaps for c in clients)
        return results
    finally:
        for task in readers:
            task.cancel()
        await asyncio.gather(*(c.ws.close() for c in clients), return_exceptions=True)


def _score(results: Results, clients: list[Client], seq: int, sent: float, returned: float) -> None:
    results.post.append((returned - sent) * 1000)
    if not all(seq in c.committed for c in clients):
        results.timeouts += 1
    # Deltas are numbered 0…n-1 per action; the most any client saw is what was sent.
    expected = max((max(ids) + 1 for c in clients if (ids := c.delta_ids.get(seq))), default=0)
    for c in clients:
        results.lost_deltas += expected - len(c.delta_ids.get(seq, ()))
        if seq in c.first_delta:
            results.first_delta.append((c.first_delta[seq] - sent) * 1000)
        if seq in c.committed:
            results.commit.append((c.committed[seq] - sent) * 1000)
        else:
            results.lost_events += 1


# ---- reporting ------------------------------------------------------------------------------


def percentile(samples: list[float], q: float) -> float:
    """Nearest-rank percentile (no interpolation: every number reported was measured)."""
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def _machine() -> str:
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} x {model}"


TABLE_HEADER = (
    "| clients | turns | first delta p50 / p95 / p99 / max (ms) | committed p50 / p95 / p99 (ms) "
    "| POST p50 (ms) | lost deltas / events | machine | date | command |\n"
    "|---:|---:|---|---|---:|---|---|---|---|"
)
HOW_MEASURED = """\
How measured: `gtw bench turn` starts its own `gtw up` on a free loopback port with a separate data
folder (var/bench, embedded PostgreSQL + Redis) and the offline narrator with
`GTW_OFFLINE_WORD_DELAY_MS=0`, so the numbers are the system's overhead, not the narrator's pacing.
N websocket clients (`?format=json`, bearer token) join one session; client 0 POSTs an action that
triggers a skill check (so every turn includes a tool call and a DiceRolled event). The clock starts
when the client sends the POST. **First delta** stops when a client receives the first narration
delta for that action; **committed** when it receives the Narration event. Percentiles are
nearest-rank over all client x turn samples; 2 warm-up turns are not counted; a turn times out after
30 s. Lost deltas: gaps in a client's delta numbering; lost events: gaps in its event seqs plus
Narrations that never arrived. The clients run on the same machine as the server."""


def _ms(value: float) -> float | None:
    return round(value, 1) if math.isfinite(value) else None  # JSON has no NaN


def _fmt(values: list[float]) -> str:
    return " / ".join(f"{v:.1f}" for v in values)


def table_row(n: int, turns: int, r: Results, command: str) -> str:
    fd = [percentile(r.first_delta, q) for q in (50, 95, 99)] + [max(r.first_delta, default=float("nan"))]
    cm = [percentile(r.commit, q) for q in (50, 95, 99)]
    return (
        f"| {n} | {turns} | {_fmt(fd)} | {_fmt(cm)} | {percentile(r.post, 50):.1f} "
        f"| {r.lost_deltas} / {r.lost_events} | {_machine()} | {datetime.now(UTC).date()} | `{command}` |"
    )


def update_doc(text: str, row: str, n: int) -> str:
    """Replace (or add) the row for N in our section's table; leave everything else untouched."""
    if SECTION not in text:
        text = text.rstrip() + "\n\n" if text.strip() else "# Benchmarks\n\n"
        return text + f"{SECTION}\n\n{HOW_MEASURED}\n\n{TABLE_HEADER}\n{row}\n"
    start = text.index(SECTION)
    nxt = re.search(r"^## ", text[start + len(SECTION) :], re.M)
    end = start + len(SECTION) + nxt.start() if nxt else len(text)
    lines = text[start:end].split("\n")
    rows = [ln for ln in lines if re.match(r"^\| *\d+ *\|", ln)]
    rows = sorted(
        [ln for ln in rows if int(ln.split("|")[1]) != n] + [row], key=lambda ln: int(ln.split("|")[1])
    )
    table_at = [i for i, ln in enumerate(lines) if ln.startswith("|")]
    if table_at:  # keep any notes written around the table
        lines[table_at[0] : table_at[-1] + 1] = [TABLE_HEADER, *rows]
    else:
        lines[1:1] = ["", TABLE_HEADER, *rows]
    return text[:start] + "\n".join(lines) + text[end:]


def main(args) -> int:
    n, turns = args.clients, args.turns
    if n < 1 or turns < 1:
        sys.stderr.write("gtw bench: --clients and --turns must be at least 1\n")
        return 2
    env = _bench_env()
    os.environ.update(
        {k: env[k] for k in ("GTW_DATA_DIR", "GTW_OFFLINE_WORD_DELAY_MS", "GTW_NARRATOR_PROVIDER")}
    )
    for name in ("DATABASE_URL", "REDIS_URL", "GTW_DB_NAME"):
        os.environ.pop(name, None)
    # SIGTERM to the bench should stop the server too: turn it into SystemExit so `finally` runs.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    log_path = DATA_DIR / "server.log"
    print(f"gtw bench turn: starting a server on 127.0.0.1:{port} (log: {log_path})", flush=True)
    with open(log_path, "w") as log:
        proc = _start_server(port, env, log)
        try:
            _wait_healthy(port, proc, timeout=180)  # the first run creates the database
            # Attach to the same embedded PostgreSQL (it stays up until the last process leaves).
            os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gtw_site.settings")
            import django

            django.setup()
            from django.db import connections

            session_id, tokens = _setup_game(n)
            connections.close_all()
            print(
                f"  {n} client(s), session {session_id}, {turns} turns + {WARMUP_TURNS} warm-up", flush=True
            )
            results = asyncio.run(_run(port, session_id, tokens, turns))
        except RuntimeError as exc:
            sys.stderr.write(f"gtw bench: {exc}\n{log_path.read_text(errors='replace')[-3000:]}\n")
            return 1
        finally:
            _stop_server(proc)
    command = f"gtw bench turn --clients {n} --turns {turns}"
    row = table_row(n, turns, results, command)
    print("\n" + TABLE_HEADER + "\n" + row)
    print(
        f"POST p50/p95: {percentile(results.post, 50):.1f} / {percentile(results.post, 95):.1f} ms · "
        f"timed-out turns: {results.timeouts}"
    )
    if not args.no_write:
        DOC.parent.mkdir(exist_ok=True)
        DOC.write_text(update_doc(DOC.read_text() if DOC.exists() else "", row, n))
        print(f"updated {DOC.relative_to(BASE_DIR)}")
    summary = {
        "clients": n,
        **{f"p{q}_ms": _ms(percentile(results.first_delta, q)) for q in (50, 95, 99)},
        "commit_p95_ms": _ms(percentile(results.commit, 95)),
    }
    print(json.dumps(summary))
    return 0 if results.timeouts == 0 and results.first_delta else 1
