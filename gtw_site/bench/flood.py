"""`gtw bench flood` (or `python -m gtw_site.bench.flood`): one campaign's turns under a flood in another.

A throw-away `gtw up` (own data folder var/bench-flood; offline narrator paced at
`GTW_OFFLINE_WORD_DELAY_MS=5`, so a turn takes as long as a short real one) with two campaigns:
a calm table, whose players take turns one at a time, and a sandbox whose GM and alts send
actions as fast as the server takes them (each retrying a moment after every 429). Measured at
the calm table: from sending an action's POST to its Narration arriving on a websocket, first
with nobody else playing (the baseline), then under the flood. The issue's target (issue 11,
hole 3) is the flood's figures within 2x the baseline. The product limits stay as they are
(per-player action rate and pending cap, GTW_TURNS_PER_RUN) — they are what is measured.
Not a test: prints the numbers, a final JSON line and (unless --no-write) a row in
docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import secrets
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime

from websockets.asyncio.client import connect

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

DATA_DIR = BASE_DIR / "var" / "bench-flood"
SECTION = "## gtw bench flood"
BENCH_ENV = {
    "GTW_DATA_DIR": str(DATA_DIR),
    "GTW_OFFLINE_WORD_DELAY_MS": "5",
    "GTW_NARRATOR_PROVIDER": "offline",
}
CALM_PLAYERS = 6  # the calm table's turns rotate over them, well inside each one's action limit
CALM_PAUSE_S = 0.5  # between a Narration and the table's next action
TURN_TIMEOUT_S = 60.0
FLOOD_BACKOFF_S = 0.25  # a flooder's pause after a 429 (then it tries again)


def _setup(flooders: int) -> tuple[int, list[str], int, list[str]]:
    """Two campaigns: (calm session, its players' tokens, flood session, the flooders' tokens)."""
    from django.contrib.auth import get_user_model

    from campaigns import services
    from campaigns.models import Membership, PlaySession
    from gtw_site.models import ApiToken

    # An interrupted run can leave pending turns that `gtw up` re-runs: end old sessions.
    for old in PlaySession.objects.filter(status=PlaySession.Status.ACTIVE):
        services.session_end(session=old, membership=Membership.objects.get(campaign=old.campaign, role="gm"))

    def user(name: str):
        u, _ = get_user_model().objects.get_or_create(username=name, defaults={"password": "!"})
        return u

    def token(u) -> str:
        ApiToken.objects.filter(user=u, name="bench-flood").delete()
        return ApiToken.issue(user=u, name="bench-flood")[1]

    def table(prefix: str, players: int, run: str) -> tuple[int, list[str]]:
        gm = user(f"{prefix}-gm")
        campaign = services.campaign_create(user=gm, name=f"{prefix} {run}", pack_slug="starter")
        seat = Membership.objects.get(campaign=campaign, user=gm)
        tokens = [token(gm)]
        for i in range(players):
            player = user(f"{prefix}-{i:03d}")
            membership = services.invite_accept(
                code=services.invite_create(membership=seat).code, user=player
            )
            services.character_create(membership=membership, name=f"Runner {i}", archetype="netrunner")
            tokens.append(token(player))
        return services.session_open(membership=seat, title=f"bench {run}").pk, tokens

    run = secrets.token_hex(3)
    calm, calm_tokens = table("bench-calm", CALM_PLAYERS - 1, run)
    flood, flood_tokens = table("bench-flood", flooders - 1, run)
    return calm, calm_tokens, flood, flood_tokens


def _post_action(port: int, session_id: int, token: str, key: str, text: str) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/sessions/{session_id}/actions",
        method="POST",
        data=json.dumps({"text": text, "idempotency_key": key}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with HTTP.open(request, timeout=TURN_TIMEOUT_S) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


@dataclass
class Flood:
    accepted: int = 0
    refused: int = 0
    other: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _flooder(port: int, session_id: int, token: str, flood: Flood) -> None:
    n = 0
    while not flood.stop.is_set():
        n += 1
        try:
            status, _ = _post_action(
                port, session_id, token, f"flood-{secrets.token_hex(6)}", "I hack the door panel"
            )
        except OSError:
            status = 0
        with flood.lock:
            if status == 202:
                flood.accepted += 1
            elif status == 429:
                flood.refused += 1
            else:
                flood.other += 1
        if status != 202:
            flood.stop.wait(FLOOD_BACKOFF_S)


async def _calm_turns(port: int, session_id: int, tokens: list[str], turns: int) -> tuple[list[float], int]:
    """The calm table's turns, one at a time: ms from the POST to the Narration on the socket."""
    url = f"ws://127.0.0.1:{port}/ws/sessions/{session_id}/?format=json"
    options = dict(origin=f"http://127.0.0.1:{port}", compression=None, proxy=None, max_queue=None)
    done: dict[int, float] = {}
    tick = asyncio.Event()
    ws = await connect(url, additional_headers={"Authorization": f"Bearer {tokens[0]}"}, **options)

    async def read() -> None:
        async for raw in ws:
            frame = json.loads(raw)
            if frame.get("type") == "event" and frame["event"]["type"] in ("Narration", "TurnFailed"):
                done.setdefault(frame["event"]["payload"].get("action_seq"), time.perf_counter())
                tick.set()

    reader = asyncio.create_task(read())
    samples: list[float] = []
    timeouts = 0
    try:
        await ws.send('{"type": "ping"}')
        for turn in range(turns):
            token = tokens[turn % len(tokens)]
            key = f"calm-{secrets.token_hex(6)}"
            sent = time.perf_counter()
            status, body = await asyncio.to_thread(
                _post_action, port, session_id, token, key, "I check the nav console"
            )
            if status != 202:
                raise RuntimeError(f"the calm table's action was refused: {status} {body}")
            seq = body["seq"]
            deadline = sent + TURN_TIMEOUT_S
            while seq not in done and time.perf_counter() < deadline:
                tick.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(tick.wait(), deadline - time.perf_counter())
            if seq in done:
                samples.append((done[seq] - sent) * 1000)
            else:
                timeouts += 1
            await asyncio.sleep(CALM_PAUSE_S)
        return samples, timeouts
    finally:
        reader.cancel()
        await ws.close()


TABLE_HEADER = (
    "| per-player limits | flooders | calm turns | calm turn alone p50 / p95 / p99 (ms) "
    "| under the flood p50 / p95 / p99 (ms) "
    "| ratio p50 / p95 | flood actions taken / refused (429) | machine (nproc x CPU, 1-min load before) "
    "| date | command |\n|---|---:|---:|---|---|---|---|---|---|---|"
)
HOW_MEASURED = """\
How measured: `gtw bench flood` runs its own `gtw up` (data in var/bench-flood, 2 turn workers,
offline narrator paced at `GTW_OFFLINE_WORD_DELAY_MS=5`) with two campaigns. At the calm table,
players take turns one at a time (half a second between a narration and the next action); a turn
is timed from sending its POST to its Narration arriving on a websocket. First alone (the
baseline), then while a sandbox campaign's GM and alts send actions as fast as the server takes
them, each retrying 0.25 s after a 429. The product defaults are in force (per-player action rate
limit and pending cap, `GTW_TURNS_PER_RUN`): what is measured is how well they protect the table.
Refused attempts count against a flooder's rate limit, so with the limits on the flood soon
becomes a trickle; `--limits off` turns the per-player limits off to see fair scheduling alone.
Issue 11's target: the calm table's turn under the flood within 2x its baseline."""


def _fmt(samples: list[float]) -> str:
    return " / ".join(f"{percentile(samples, q):.0f}" for q in (50, 95, 99))


def main(args) -> int:
    flooders = getattr(args, "flooders", None) or 10
    turns = getattr(args, "turns", None) or 20
    limits = getattr(args, "limits", None) or "on"
    if flooders < 1 or turns < 1:
        sys.stderr.write("gtw bench flood: --flooders and --turns must be at least 1\n")
        return 2
    load = os.getloadavg()[0]
    os.environ.update(BENCH_ENV)
    if limits == "off":  # only fair scheduling protects the calm table
        os.environ.update({"GTW_ACTION_RATE_LIMIT": "0", "GTW_PENDING_ACTIONS_MAX": "0"})
    for name in UNSET_ENV:
        os.environ.pop(name, None)
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log_path = DATA_DIR / "server.log"
    print(f"gtw bench flood: server on 127.0.0.1:{port} (log: {log_path})", flush=True)
    flood = Flood()
    threads: list[threading.Thread] = []
    with open(log_path, "w") as log:
        proc = start_server(port, log)
        try:
            wait_healthy(port, proc, timeout=180)
            os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gtw_site.settings")
            import django

            django.setup()
            from django.db import connections

            calm, calm_tokens, flooded, flood_tokens = _setup(flooders)
            connections.close_all()
            gc.collect()
            gc.freeze()
            print(f"  calm table: session {calm}; flood: {flooders} players in session {flooded}", flush=True)
            asyncio.run(_calm_turns(port, calm, calm_tokens, 2))  # warm-up
            baseline, lost_alone = asyncio.run(_calm_turns(port, calm, calm_tokens, turns))
            print(f"  alone:       p50 / p95 / p99 {_fmt(baseline)} ms", flush=True)
            threads = [
                threading.Thread(target=_flooder, args=(port, flooded, t, flood), daemon=True)
                for t in flood_tokens
            ]
            for t in threads:
                t.start()
            time.sleep(2.0)  # let the flood build up before we measure
            flooded_samples, lost_flood = asyncio.run(_calm_turns(port, calm, calm_tokens, turns))
            print(f"  under flood: p50 / p95 / p99 {_fmt(flooded_samples)} ms", flush=True)
        except (RuntimeError, OSError, TimeoutError) as exc:
            return server_failed(exc, log_path, "gtw bench flood")
        except KeyboardInterrupt:
            sys.stderr.write("gtw bench flood: interrupted\n")
            return 130
        finally:
            flood.stop.set()
            for t in threads:
                t.join(timeout=TURN_TIMEOUT_S)
            stop_server(proc)
    ratio50 = percentile(flooded_samples, 50) / percentile(baseline, 50)
    ratio95 = percentile(flooded_samples, 95) / percentile(baseline, 95)
    command = f"gtw bench flood --flooders {flooders} --turns {turns} --limits {limits}"
    row = (
        f"| {limits} | {flooders} | {turns} | {_fmt(baseline)} | {_fmt(flooded_samples)} "
        f"| {ratio50:.2f} / {ratio95:.2f} | {flood.accepted} / {flood.refused} | {machine_text(load)} "
        f"| {datetime.now(UTC).date()} | `{command}` |"
    )
    print(f"\n{TABLE_HEADER}\n{row}")
    if flood.other:
        print(f"  flood requests answered with neither 202 nor 429: {flood.other}")
    if not getattr(args, "no_write", False):
        DOC.write_text(
            update_section(
                DOC.read_text() if DOC.exists() else "", SECTION, HOW_MEASURED, TABLE_HEADER, row, 2
            )
        )
        print(f"updated {DOC.relative_to(BASE_DIR)}")
    summary = {
        "limits": limits,
        "flooders": flooders,
        **{f"baseline_p{q}_ms": json_ms(percentile(baseline, q)) for q in (50, 95, 99)},
        **{f"flood_p{q}_ms": json_ms(percentile(flooded_samples, q)) for q in (50, 95, 99)},
        "ratio_p50": round(ratio50, 2),
        "ratio_p95": round(ratio95, 2),
        "flood_accepted": flood.accepted,
        "flood_refused": flood.refused,
        "timeouts": lost_alone + lost_flood,
    }
    print(json.dumps(summary))
    return 0 if baseline and flooded_samples and not (lost_alone or lost_flood) else 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gtw bench flood", description=__doc__.split("\n")[0])
    parser.add_argument("--flooders", type=int, default=10, help="players flooding the other campaign")
    parser.add_argument("--turns", type=int, default=20, help="calm-table turns measured per phase")
    parser.add_argument(
        "--limits",
        choices=["on", "off"],
        default="on",
        help="off: no per-player limits, fair scheduling only",
    )
    parser.add_argument("--no-write", action="store_true", help="don't update docs/BENCHMARKS.md")
    return parser


if __name__ == "__main__":
    sys.exit(main(_parser().parse_args()))
