"""`gtw bench stage` (or `python -m gtw_site.bench.stage`): a 50-participant stage with batching.

A throw-away `gtw up` (own data folder var/bench-stage; offline narrator, no word delay) and, in
this process, one websocket client per participant plus the moderator's, on loopback. Each beat:
the moderator opens a window, every participant POSTs one action (half of them risky, so the
batch turn rolls a check for each), then the moderator POSTs the close. Measured per client:
from sending the close to receiving the GM's summary (the Narration with `batch` = the window).

The server writes its own marks to a shared trace file (gtw_site.trace): when the batch turn
started, when the per-action checks were done, how long it spent *inside* the narrator's
stream (`batch.provider_ms`) and when it committed — so the report says how much of the wait is
the narrator and how much is ours. Not a test: prints the numbers, a final JSON line, and
(unless --no-write) a row in docs/BENCHMARKS.md.
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
import statistics
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
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
    machine_text,
    percentile,
    server_failed,
    start_server,
    stop_server,
    update_section,
    wait_healthy,
)
from gtw_site.trace import mark

DATA_DIR = BASE_DIR / "var" / "bench-stage"
SECTION = "## gtw bench stage"
BENCH_ENV = {
    "GTW_DATA_DIR": str(DATA_DIR),
    "GTW_OFFLINE_WORD_DELAY_MS": "0",
    "GTW_NARRATOR_PROVIDER": "offline",
}
WARMUP_WINDOWS = 1
WAIT_S = 60.0
# Stage actions are rate-limited per user (8 per 30 s): a beat never comes round faster.
MIN_BEAT_S = 30 / 8 + 0.1
ACTIONS = (
    "I hack the {thing} panel",
    "I keep watch on the {thing}",
    "I climb the {thing} scaffolding",
    "I talk the {thing} crew down",
    "I search the {thing} crates for supplies",
    "I sprint across the {thing} catwalk",
)
THINGS = ("hangar", "reactor", "docking", "relay", "cargo")


def _setup(participants: int, teams: int) -> tuple[int, str, list[str]]:
    """A campaign, N players with characters spread over fireteams, a stage; a token each."""
    from django.contrib.auth import get_user_model

    from campaigns import services
    from campaigns import teams as team_services
    from campaigns.models import Membership
    from campaigns.stage import services as stage_services
    from gtw_site.models import ApiToken

    def user(name: str):
        u, _ = get_user_model().objects.get_or_create(username=name, defaults={"password": "!"})
        return u

    def token(u) -> str:
        ApiToken.objects.filter(user=u, name="bench-stage").delete()
        return ApiToken.issue(user=u, name="bench-stage")[1]

    run = secrets.token_hex(3)
    gm = user("bench-stage-gm")
    campaign = services.campaign_create(user=gm, name=f"stage bench {run}", pack_slug="starter")
    gm_m = Membership.objects.get(campaign=campaign, user=gm)
    fireteams = [team_services.fireteam_create(membership=gm_m, name=f"Squad {i + 1}") for i in range(teams)]
    tokens = []
    for i in range(participants):
        player = user(f"bench-stage-{i:03d}")
        membership = services.invite_accept(code=services.invite_create(membership=gm_m).code, user=player)
        services.character_create(membership=membership, name=f"Runner {i}", archetype="netrunner")
        team_services.fireteam_member_add(membership=gm_m, fireteam=fireteams[i % teams], target=membership)
        tokens.append(token(player))
    session = stage_services.stage_open(membership=gm_m, title=f"bench {run}")
    return session.pk, token(gm), tokens


def _post(port: int, path: str, token: str, body: dict) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        method="POST",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with HTTP.open(request, timeout=WAIT_S) as resp:
        return json.loads(resp.read())


@dataclass
class Client:
    ws: object
    summaries: dict[int, float] = field(default_factory=dict)  # window -> perf_counter() received
    ready: asyncio.Event = field(default_factory=asyncio.Event)


async def _read(client: Client, tick: asyncio.Event) -> None:
    async for raw in client.ws:
        now = time.perf_counter()
        frame = json.loads(raw)
        kind = frame.get("type")
        if kind == "roster":
            client.ready.set()
        elif kind == "event" and frame["event"]["type"] == "Narration":
            batch = frame["event"]["payload"].get("batch")
            if batch is not None:
                client.summaries.setdefault(batch, now)
                tick.set()


@dataclass
class Results:
    delivered: list[float] = field(default_factory=list)  # ms, client x window
    window_medians: list[float] = field(default_factory=list)  # ms, per window
    provider: list[float] = field(default_factory=list)  # ms inside the narrator, per window
    server: dict[str, list[float]] = field(default_factory=dict)  # mark -> ms after the close
    timeouts: int = 0


def _server_marks(path: Path, since: float) -> tuple[dict[str, float], float | None]:
    """The server's marks after `since` (first of each), and the provider time it recorded."""
    if not path.exists():
        return {}, None
    first: dict[str, float] = {}
    provider = None
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) != 3 or float(parts[0]) < since:
            continue
        t, label = float(parts[0]), parts[2]
        if label.startswith("batch.provider_ms="):
            provider = provider if provider is not None else float(label.split("=", 1)[1])
            label = "batch.provider_done"
        if "=" not in label:
            first.setdefault(label, (t - since) * 1000)
    return first, provider


async def _run(port: int, session_id: int, gm_token: str, tokens: list[str], windows: int) -> Results:
    url = f"ws://127.0.0.1:{port}/ws/stage/{session_id}/?format=json"
    tick = asyncio.Event()
    clients: list[Client] = []
    readers: list[asyncio.Task] = []
    results = Results()
    pool = ThreadPoolExecutor(max_workers=16)
    loop = asyncio.get_running_loop()
    try:
        options = dict(origin=f"http://127.0.0.1:{port}", compression=None, proxy=None, max_queue=None)
        for token in [gm_token, *tokens]:
            ws = await connect(url, additional_headers={"Authorization": f"Bearer {token}"}, **options)
            clients.append(Client(ws))
            readers.append(asyncio.create_task(_read(clients[-1], tick)))
        await asyncio.wait_for(asyncio.gather(*(c.ready.wait() for c in clients)), 60)
        base = f"/api/stage/{session_id}"
        trace_path = Path(os.environ["GTW_TRACE_FILE"])
        for n in range(1, WARMUP_WINDOWS + windows + 1):
            beat_started = time.perf_counter()
            await loop.run_in_executor(pool, _post, port, f"{base}/window", gm_token, {"action": "open"})
            posts = [
                loop.run_in_executor(
                    pool,
                    _post,
                    port,
                    f"{base}/actions",
                    token,
                    {
                        "text": ACTIONS[(i + n) % len(ACTIONS)].format(thing=THINGS[i % len(THINGS)]),
                        "idempotency_key": f"w{n}-{i}-{secrets.token_hex(3)}",
                    },
                )
                for i, token in enumerate(tokens)
            ]
            await asyncio.gather(*posts)
            await asyncio.sleep(0.3)  # let the action broadcasts drain: we time the summary, not them
            sent = time.perf_counter()
            mark("client.close_sent")
            await loop.run_in_executor(pool, _post, port, f"{base}/window", gm_token, {"action": "close"})
            deadline = sent + WAIT_S
            while not all(n in c.summaries for c in clients) and time.perf_counter() < deadline:
                tick.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(tick.wait(), deadline - time.perf_counter())
            await asyncio.sleep(0.05)  # the provider mark is written just after the commit
            if n > WARMUP_WINDOWS:
                samples = [(c.summaries[n] - sent) * 1000 for c in clients if n in c.summaries]
                results.timeouts += len(clients) - len(samples)
                results.delivered += samples
                if samples:
                    results.window_medians.append(statistics.median(samples))
                marks, provider = _server_marks(trace_path, sent)
                if provider is not None:
                    results.provider.append(provider)
                for label, ms in marks.items():
                    results.server.setdefault(label, []).append(ms)
                p50 = statistics.median(samples) if samples else float("nan")
                beat = n - WARMUP_WINDOWS
                steps = ", ".join(
                    f"{k.removeprefix('batch.')} {v:.0f}"
                    for k, v in sorted(marks.items(), key=lambda kv: kv[1])
                    if k.startswith("batch.")
                )
                print(
                    f"  beat {beat}: clients p50 {p50:.0f} ms · narrator {provider or 0:.1f} ms · {steps}",
                    flush=True,
                )
            spare = MIN_BEAT_S - (time.perf_counter() - beat_started)
            if spare > 0:
                await asyncio.sleep(spare)
        return results
    finally:
        pool.shutdown(wait=False)
        for task in readers:
            task.cancel()
        await asyncio.gather(*(c.ws.close() for c in clients), return_exceptions=True)


TABLE_HEADER = (
    "| participants | teams | beats | close → summary at clients p50 / p95 / max (ms) "
    "| inside the narrator p50 (ms) | outside the narrator | machine (nproc x CPU, 1-min load before) "
    "| date | command |\n|---:|---:|---:|---|---:|---:|---|---|---|"
)
HOW_MEASURED = """\
How measured: `gtw bench stage` runs its own `gtw up` (data in var/bench-stage, offline narrator,
`GTW_OFFLINE_WORD_DELAY_MS=0`) and a websocket client per participant plus the moderator's, on
loopback. Participants sit on fireteams; each beat the moderator opens a window, every
participant POSTs one action (about half risky, so the batch turn rolls a check for each), and
the moderator POSTs the close. **close → summary** runs from sending the close to each client
receiving the GM's one summary (percentiles over client x beat, after a warm-up beat).
**inside the narrator** is the time the batch turn spent inside the provider's stream (the
server's own trace mark); **outside** is the rest of the median wait: per-action checks, the
appends, the task hand-off and the fan-out to every socket."""


def table_row(participants: int, teams: int, windows: int, r: Results, machine: str, command: str) -> str:
    delivered = [
        percentile(r.delivered, 50),
        percentile(r.delivered, 95),
        max(r.delivered, default=float("nan")),
    ]
    inside = statistics.median(r.provider) if r.provider else float("nan")
    total = percentile(r.delivered, 50)
    outside = 1 - inside / total if total and inside == inside else float("nan")
    return (
        f"| {participants} | {teams} | {windows} | {' / '.join(f'{v:.0f}' for v in delivered)} "
        f"| {inside:.1f} | {outside:.1%} | {machine} | {datetime.now(UTC).date()} | `{command}` |"
    )


def main(args) -> int:
    participants = getattr(args, "participants", None) or 50
    teams = getattr(args, "teams", None) or 5
    windows = getattr(args, "windows", None) or 5
    if participants < 1 or teams < 1 or windows < 1:
        sys.stderr.write("gtw bench stage: --participants, --teams and --windows must be at least 1\n")
        return 2
    load = os.getloadavg()[0]
    os.environ.update(BENCH_ENV)
    for name in UNSET_ENV:
        os.environ.pop(name, None)
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    trace_path = DATA_DIR / "trace.txt"
    trace_path.unlink(missing_ok=True)
    trace.record_to(str(trace_path))  # the server's processes inherit it
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log_path = DATA_DIR / "server.log"
    print(f"gtw bench stage: server on 127.0.0.1:{port} (log: {log_path})", flush=True)
    with open(log_path, "w") as log:
        proc = start_server(port, log)
        try:
            wait_healthy(port, proc, timeout=180)
            os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gtw_site.settings")
            import django

            django.setup()
            from django.db import connections

            session_id, gm_token, tokens = _setup(participants, teams)
            connections.close_all()
            gc.collect()
            gc.freeze()
            print(f"  {participants} participants on {teams} fireteams, stage {session_id}, {windows} beats")
            results = asyncio.run(_run(port, session_id, gm_token, tokens, windows))
        except (RuntimeError, OSError, TimeoutError) as exc:
            return server_failed(exc, log_path, "gtw bench stage")
        except KeyboardInterrupt:
            sys.stderr.write("gtw bench stage: interrupted\n")
            return 130
        finally:
            stop_server(proc)
    command = f"gtw bench stage --participants {participants} --teams {teams} --windows {windows}"
    row = table_row(participants, teams, windows, results, machine_text(load), command)
    print(f"\n{TABLE_HEADER}\n{row}")
    print("\nwhere the time goes (ms after the close was sent; median over beats):")
    for label, values in sorted(results.server.items(), key=lambda kv: statistics.median(kv[1])):
        print(f"  {label:24s} {statistics.median(values):8.1f}")
    print(f"  {'clients (median)':24s} {percentile(results.delivered, 50):8.1f}")
    if not getattr(args, "no_write", False):
        DOC.write_text(
            update_section(
                DOC.read_text() if DOC.exists() else "", SECTION, HOW_MEASURED, TABLE_HEADER, row, 3
            )
        )
        print(f"updated {DOC.relative_to(BASE_DIR)}")
    inside = statistics.median(results.provider) if results.provider else None
    p50 = percentile(results.delivered, 50)
    print(
        json.dumps(
            {
                "participants": participants,
                "close_to_summary_p50_ms": round(p50, 1),
                "close_to_summary_p95_ms": round(percentile(results.delivered, 95), 1),
                "inside_provider_p50_ms": round(inside, 1) if inside is not None else None,
                "outside_provider_share": round(1 - inside / p50, 3) if inside is not None and p50 else None,
                "timeouts": results.timeouts,
            }
        )
    )
    return 0 if results.delivered and not results.timeouts else 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gtw bench stage", description=__doc__.split("\n")[0])
    parser.add_argument("--participants", type=int, default=50)
    parser.add_argument("--teams", type=int, default=5)
    parser.add_argument("--windows", type=int, default=5, help="measured beats (after one warm-up)")
    parser.add_argument("--no-write", action="store_true", help="don't update docs/BENCHMARKS.md")
    return parser


if __name__ == "__main__":
    sys.exit(main(_parser().parse_args()))
