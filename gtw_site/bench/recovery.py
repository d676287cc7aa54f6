"""`gtw bench recovery`: how soon a turn is answered after PostgreSQL or Redis comes back (issue 23).

A throw-away `gtw up` (own data folder, offline narrator at its default pacing) and one player with
a websocket client on loopback in this process. Two faults, each with the embedded services:

1. **PostgreSQL killed mid-turn**: the player acts; as soon as the turn's dice roll is committed
   (and before its Narration), the postmaster gets SIGKILL. `gtw up` restarts it; we time from the
   moment it accepts connections again to the turn's Narration reaching the socket
   (`pg_recovery_s`; `pg_rerun_s` is to the re-run's first narration delta).
2. **Redis killed between turns**: the redis-server gets SIGKILL; `gtw up` restarts it; the player
   acts again the moment it answers PING, and we time from then to that turn's Narration on the
   same socket (`redis_recovery_s`).

Then the event log is checked: each action answered exactly once (one roll, one Narration, no
TurnFailed), and the socket saw every event in seq order. Not a test (tests/gtw_site/
test_recovery_faults.py runs it and checks those counts, not the times): it prints the figures,
ends with one JSON line and (unless --no-write) updates docs/BENCHMARKS.md.

The data folder is var/bench-recovery, or $GTW_BENCH_DATA_DIR (the test's temporary folder).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import socket
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from websockets.asyncio.client import connect

from gtw_site.bench.common import (
    BASE_DIR,
    DOC,
    HTTP,
    UNSET_ENV,
    machine_text,
    server_failed,
    start_server,
    stop_server,
    update_section,
    wait_healthy,
)

SECTION = "## gtw bench recovery"
# "hack" makes the offline narrator roll (rules_skill_check) before it narrates the outcome, so a
# turn has a committed roll to reuse and narration left to write when PostgreSQL dies.
ACTION_TEXT = "I hack the door panel"
WAIT_S = 60.0  # for any one step (the service back, the answer)


def bench_env(data_dir: Path) -> dict[str, str]:
    return {
        "GTW_DATA_DIR": str(data_dir),
        "GTW_NARRATOR_PROVIDER": "offline",
        # The product's pacing (25 ms a word): the narration after the roll leaves time to kill.
        "GTW_OFFLINE_WORD_DELAY_MS": os.environ.get("GTW_OFFLINE_WORD_DELAY_MS", "25"),
        "GTW_ACTION_RATE_LIMIT": "0",
        "GTW_Q_WORKERS": os.environ.get("GTW_Q_WORKERS", "2"),
    }


# ---- the player's socket -------------------------------------------------------------------------


@dataclass
class Watch:
    """What the player's socket saw, with perf_counter() arrival times."""

    events: dict[int, dict] = field(default_factory=dict)  # seq -> event
    arrived: dict[int, float] = field(default_factory=dict)  # seq -> time
    order: list[int] = field(default_factory=list)  # seqs in arrival order
    deltas: list[tuple[float, int]] = field(default_factory=list)  # (time, action_seq)
    statuses: list[tuple[float, str]] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)

    def answer(self, action_seq: int, kind: str = "Narration") -> float | None:
        for seq in self.order:
            event = self.events[seq]
            if event["type"] == kind and (event.get("payload") or {}).get("action_seq") == action_seq:
                return self.arrived[seq]
        return None

    def rolled(self, action_seq: int) -> bool:
        return any(
            e["type"] == "DiceRolled" and (e.get("payload") or {}).get("action_seq") == action_seq
            for e in self.events.values()
        )


async def _read(ws, watch: Watch) -> None:
    async for raw in ws:
        now = time.perf_counter()
        frame = json.loads(raw)
        kind = frame.get("type")
        if kind == "event":
            watch.events[frame["seq"]] = frame["event"]
            watch.arrived.setdefault(frame["seq"], now)
            watch.order.append(frame["seq"])
        elif kind == "delta":
            watch.deltas.append((now, frame["action_seq"]))
        elif kind == "status":
            watch.statuses.append((now, frame["state"]))
        elif kind == "error":
            watch.errors.append(frame)


async def _until(check, within: float = WAIT_S, step: float = 0.01):
    deadline = time.perf_counter() + within
    while (found := check()) is None or found is False:
        if time.perf_counter() > deadline:
            raise RuntimeError(f"timed out after {within:.0f} s waiting for {check.__doc__ or check}")
        await asyncio.sleep(step)
    return found


# ---- the services under the server ----------------------------------------------------------------


def _postmaster_pid(data_dir: Path) -> int:
    return int((data_dir / "pg" / "postmaster.pid").read_text().split()[0])


def _redis_pid(data_dir: Path) -> int:
    return int((data_dir / "redis" / "redis.pid").read_text().strip())


def _pg_accepts(url: str) -> bool:
    import psycopg

    try:
        psycopg.connect(url, connect_timeout=1).close()
    except psycopg.Error:
        return False
    return True


def _redis_accepts(url: str) -> bool:
    import redis

    client = redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def _post_action(port: int, session_id: int, token: str, key: str) -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/sessions/{session_id}/actions",
        method="POST",
        data=json.dumps({"text": ACTION_TEXT, "idempotency_key": key}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with HTTP.open(request, timeout=30) as resp:
        return json.loads(resp.read())["seq"]


# ---- the run --------------------------------------------------------------------------------------


@dataclass
class Figures:
    turn_s: float | None = None  # the last turn, undisturbed: POST to Narration on the socket
    pg_rerun_s: float | None = None
    pg_recovery_s: float | None = None
    redis_recovery_s: float | None = None
    pg_down_s: float | None = None  # SIGKILL to accepting again (gtw up's restart)
    redis_down_s: float | None = None
    answers: dict[str, int] = field(default_factory=dict)  # "<action seq>": Narrations in the log
    rolls: dict[str, int] = field(default_factory=dict)
    failed_turns: int = 0
    socket_gaps: int = 0
    socket_missing: int = 0
    socket_statuses: list[str] = field(default_factory=list)
    killed_mid_turn: bool = False


async def _faults(
    port: int, data_dir: Path, session_id: int, token: str, say
) -> tuple[Figures, list[int], Watch]:
    from django.conf import settings

    pg_url, redis_url = settings.DATABASE_URL, settings.REDIS_URL
    figures = Figures()
    watch = Watch()
    url = f"ws://127.0.0.1:{port}/ws/sessions/{session_id}/?format=json&last_seq=0"
    options = dict(origin=f"http://127.0.0.1:{port}", compression=None, proxy=None, max_queue=None)
    ws = await connect(url, additional_headers={"Authorization": f"Bearer {token}"}, **options)
    reader = asyncio.create_task(_read(ws, watch))
    actions: list[int] = []
    try:
        # Warm-up turn: every process has its connections, the narrator is loaded.
        seq = await asyncio.to_thread(_post_action, port, session_id, token, "recovery-warm")
        actions.append(seq)
        await _until(lambda: watch.answer(seq))

        # 1. PostgreSQL killed mid-turn.
        seq = await asyncio.to_thread(_post_action, port, session_id, token, "recovery-pg")
        actions.append(seq)

        def rolled():
            """the turn's dice roll"""
            return watch.rolled(seq)

        await _until(rolled, step=0.002)
        killed = time.perf_counter()
        os.kill(_postmaster_pid(data_dir), signal.SIGKILL)
        figures.killed_mid_turn = watch.answer(seq) is None
        say("  PostgreSQL killed (SIGKILL) after the turn's roll, before its narration")
        # Down first (it may take a moment to die), then back.
        await _until(lambda: not _pg_accepts(pg_url) or None, within=10, step=0.005)
        back = await _until(lambda: _pg_accepts(pg_url) and time.perf_counter(), step=0.02)
        figures.pg_down_s = back - killed

        def answered():
            """the interrupted turn's Narration"""
            return watch.answer(seq)

        answer = await _until(answered)
        rerun = next((t for t, s in watch.deltas if s == seq and t >= back), None)
        figures.pg_recovery_s = answer - back
        figures.pg_rerun_s = None if rerun is None else rerun - back
        say(
            f"  PostgreSQL back after {figures.pg_down_s:.2f} s; "
            f"turn answered {figures.pg_recovery_s:.2f} s later"
        )

        # 2. Redis killed between turns.
        killed = time.perf_counter()
        os.kill(_redis_pid(data_dir), signal.SIGKILL)
        say("  Redis killed (SIGKILL) between turns")
        await _until(lambda: not _redis_accepts(redis_url) or None, within=10, step=0.005)
        back = await _until(lambda: _redis_accepts(redis_url) and time.perf_counter(), step=0.02)
        figures.redis_down_s = back - killed
        seq = await asyncio.to_thread(_post_action, port, session_id, token, "recovery-redis")
        actions.append(seq)

        def answered_after_redis():
            """the next turn's Narration on the socket"""
            return watch.answer(seq)

        answer = await _until(answered_after_redis)
        figures.redis_recovery_s = answer - back
        say(
            f"  Redis back after {figures.redis_down_s:.2f} s; "
            f"next turn answered {figures.redis_recovery_s:.2f} s later"
        )

        # A last event proves the socket is fully healed: every seq up to the log's end, in order.
        sent = time.perf_counter()
        seq = await asyncio.to_thread(_post_action, port, session_id, token, "recovery-after")
        actions.append(seq)
        figures.turn_s = await _until(lambda: watch.answer(seq)) - sent
        figures.socket_statuses = [state for _, state in watch.statuses]
        return figures, actions, watch
    finally:
        reader.cancel()
        with contextlib.suppress(Exception):
            await ws.close()


def _check_log(figures: Figures, session_id: int, token: str, actions: list[int], watch: Watch) -> None:
    from campaigns.models import Event, Membership, PlaySession
    from campaigns.selectors import may_see
    from gtw_site.models import ApiToken, hash_token

    log = list(
        Event.objects.filter(session_id=session_id).order_by("seq").values_list("seq", "type", "payload")
    )
    for seq in actions:
        figures.answers[str(seq)] = sum(
            1 for _, t, p in log if t == "Narration" and (p or {}).get("action_seq") == seq
        )
        figures.rolls[str(seq)] = sum(
            1 for _, t, p in log if t == "DiceRolled" and (p or {}).get("action_seq") == seq
        )
    figures.failed_turns = sum(1 for _, t, _ in log if t == "TurnFailed")
    # What the player's socket should have shown: every event they may see (not the GM's
    # eyes-only ones), each once, in seq order.
    player = ApiToken.objects.select_related("user").get(key_hash=hash_token(token)).user
    campaign_id = PlaySession.objects.values_list("campaign_id", flat=True).get(pk=session_id)
    membership = Membership.objects.get(campaign_id=campaign_id, user=player)
    audiences = dict(Event.objects.filter(session_id=session_id).values_list("seq", "audience"))
    visible = [seq for seq, _, _ in log if may_see(audiences[seq], membership)]
    figures.socket_missing = len(set(visible) - set(watch.events))
    after = {a: b for a, b in itertools.pairwise(visible)}
    figures.socket_gaps = sum(1 for a, b in itertools.pairwise(watch.order) if after.get(a) != b)


def exactly_once(figures: Figures) -> bool:
    return (
        bool(figures.answers)
        and all(n == 1 for n in figures.answers.values())
        and all(n == 1 for n in figures.rolls.values())
        and figures.failed_turns == 0
    )


# ---- reporting ------------------------------------------------------------------------------------

TABLE_HEADER = (
    "| run | PostgreSQL: back → re-run / answered (s) | Redis: back → answered (s) | undisturbed turn (s) "
    "| service down (s) "
    "| exactly once | socket gaps / missing | machine (nproc x CPU, 1-min load before) | date | command |\n"
    "|---:|---|---:|---:|---|---|---|---|---|---|"
)
HOW_MEASURED = """\
How measured: `gtw bench recovery` runs its own `gtw up` (data in var/bench-recovery, offline
narrator at its default 25 ms a word) and one player's websocket on loopback. PostgreSQL: the
player acts, and the moment the turn's dice roll reaches the socket the postmaster gets SIGKILL;
`gtw up` restarts it; times run from the first moment a new connection succeeds to the re-run's
first narration delta and to the turn's Narration on the socket (the task worker that lost the
turn reconnects with back-off and re-runs it, reusing the committed roll). Redis: redis-server
gets SIGKILL between turns; `gtw up` restarts it; the player acts the moment it answers PING,
timed to that turn's Narration on the same socket. "undisturbed turn" is a last, ordinary turn, POST to
Narration: most of each answer time is the narrator's own pacing, not the recovery. "service
down" is SIGKILL to accepting again (`gtw up` restarting the embedded server).
Each row is one run (rows by run number). Before issue 23 the same faults took 43.9 s
(PostgreSQL, the supervisor's 45 s sweep) and 10.8 s (Redis, django-q2's 10 s pusher restart)."""


def table_row(run: int, f: Figures, machine: str, command: str) -> str:
    def s(v):
        return "—" if v is None else f"{v:.2f}"

    return (
        f"| {run} | {s(f.pg_rerun_s)} / {s(f.pg_recovery_s)} | {s(f.redis_recovery_s)} | {s(f.turn_s)} "
        f"| {s(f.pg_down_s)} / {s(f.redis_down_s)} | {'yes' if exactly_once(f) else 'NO'} "
        f"| {f.socket_gaps} / {f.socket_missing} | {machine} | {datetime.now(UTC).date()} | `{command}` |"
    )


def update_doc(text: str, row: str) -> str:
    return update_section(text, SECTION, HOW_MEASURED, TABLE_HEADER, row, key_cols=1, sort=True)


def _next_run_number(text: str) -> int:
    """Rows are numbered runs: this one is the next number in our section's table."""
    if SECTION not in text:
        return 1
    body = text[text.index(SECTION) :].split("\n## ", 1)[0]
    cells = [line.split("|")[1].strip() for line in body.splitlines() if line.startswith("|")]
    return max((int(c) for c in cells if c.isdigit()), default=0) + 1


def main(args) -> int:
    load = os.getloadavg()[0]
    data_dir = Path(os.environ.get("GTW_BENCH_DATA_DIR") or BASE_DIR / "var" / "bench-recovery").resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    os.environ.update(bench_env(data_dir))
    for name in UNSET_ENV:
        os.environ.pop(name, None)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log_path = data_dir / "server.log"
    print(f"gtw bench recovery: server on 127.0.0.1:{port} (log: {log_path})", flush=True)
    with open(log_path, "w") as log:
        proc = start_server(port, log)
        try:
            wait_healthy(port, proc, timeout=180)
            os.environ["DJANGO_SETTINGS_MODULE"] = "gtw_site.settings"
            import django

            django.setup()
            from django.db import connection

            from gtw_site.bench.turn import _setup_game

            session_id, tokens = _setup_game(1)
            connection.close()
            figures, actions, watch = asyncio.run(_faults(port, data_dir, session_id, tokens[0], print))
            connection.close()  # the killed server's connection
            _check_log(figures, session_id, tokens[0], actions, watch)
        except (RuntimeError, OSError) as exc:
            return server_failed(exc, log_path, "gtw bench recovery")
        except KeyboardInterrupt:
            sys.stderr.write("gtw bench recovery: interrupted\n")
            return 130
        finally:
            stop_server(proc)
    once = exactly_once(figures)
    print(
        f"\n  exactly once: {'yes' if once else 'NO'} (Narrations per action {figures.answers}, rolls "
        f"{figures.rolls}, TurnFailed {figures.failed_turns}); socket gaps {figures.socket_gaps}, "
        f"missing {figures.socket_missing}; socket states {figures.socket_statuses}"
    )
    if not args.no_write:
        text = DOC.read_text() if DOC.exists() else ""
        row = table_row(_next_run_number(text), figures, machine_text(load), "gtw bench recovery")
        print(f"\n{TABLE_HEADER}\n{row}")
        DOC.write_text(update_doc(text, row))
        print(f"updated {DOC.relative_to(BASE_DIR)}")

    def r(v):
        return None if v is None else round(v, 3)

    print(
        json.dumps(
            {
                "pg_recovery_s": r(figures.pg_recovery_s),
                "redis_recovery_s": r(figures.redis_recovery_s),
                "turn_s": r(figures.turn_s),
                "pg_rerun_s": r(figures.pg_rerun_s),
                "pg_down_s": r(figures.pg_down_s),
                "redis_down_s": r(figures.redis_down_s),
                "killed_mid_turn": figures.killed_mid_turn,
                "exactly_once": once,
                "answers": figures.answers,
                "rolls": figures.rolls,
                "failed_turns": figures.failed_turns,
                "socket_gaps": figures.socket_gaps,
                "socket_missing": figures.socket_missing,
                "socket_states": figures.socket_statuses,
            }
        )
    )
    return (
        0
        if once and figures.killed_mid_turn and not figures.socket_gaps and not figures.socket_missing
        else 1
    )
