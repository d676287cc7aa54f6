"""Scale-out: a real `gtw up --web-workers 2` — two Daphne processes on one listening socket,
sharing Redis and PostgreSQL — with websocket clients on both.

Which process serves a socket is read from the kernel: the Daphne process holding the
server end of the client's TCP connection (psutil), so the protocol needs no debugging aid.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty, Queue

import psutil
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.gtw_site.test_embedded import free_port, kill_tree, stop_gtw

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow
PLAYERS = 6
WAIT = 30.0  # seconds; a generous ceiling for any one step, never a measurement


def gtw_env(data: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "GTW_DATA_DIR": str(data),
        "GTW_Q_WORKERS": "1",
        "GTW_NARRATOR_PROVIDER": "offline",
        "GTW_OFFLINE_WORD_DELAY_MS": "2",  # a few deltas per turn, quickly
    }
    # Its own embedded servers and database, whatever this test run points at.
    for name in ("DJANGO_SETTINGS_MODULE", "GTW_DB_NAME", "DATABASE_URL", "REDIS_URL", "GTW_CHANNEL_LAYER"):
        env.pop(name, None)
    return env


def start_gtw(data: Path, port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "gtw_site.cli", "up", "--port", str(port), "--web-workers", "2"],
        cwd=ROOT,
        env=gtw_env(data),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    queue: Queue = Queue()
    threading.Thread(
        target=lambda: [queue.put(line) for line in proc.stdout] + [queue.put(None)], daemon=True
    ).start()
    proc.lines = queue
    lines: list[str] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            line = queue.get(timeout=max(0.1, deadline - time.monotonic()))
        except Empty:
            break
        if line is None:
            break
        lines.append(line)
        if "Press Ctrl-C to stop" in line:
            return proc
    kill_tree(proc)
    raise AssertionError("gtw up did not come up:\n" + "".join(lines))


def setup_game(data: Path, players: int) -> tuple[int, list[str], list[str]]:
    """A campaign, a session and `players` players with tokens, made through the services in a
    process attached to the server's own embedded PostgreSQL."""
    code = textwrap.dedent(f"""
        import json, django
        django.setup()
        from gtw_site.bench.fanout import setup_game
        session_id, players = setup_game({players}, prefix="scale")
        print("GAME", json.dumps({{"session": session_id, "players": players}}))
    """)
    env = {**gtw_env(data), "DJANGO_SETTINGS_MODULE": "gtw_site.settings"}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    line = next((ln for ln in result.stdout.splitlines() if ln.startswith("GAME ")), None)
    assert line, result.stdout + result.stderr
    game = json.loads(line[5:])
    return game["session"], [u for u, _ in game["players"]], [t for _, t in game["players"]]


def daphne_pids(proc: subprocess.Popen) -> set[int]:
    """The live Daphne processes under `gtw up` (a killed one is a zombie until it is reaped)."""
    pids = set()
    for child in psutil.Process(proc.pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if child.status() != psutil.STATUS_ZOMBIE and "daphne" in " ".join(child.cmdline()):
                pids.add(child.pid)
    return pids


def server_pid(local_port: int, pids: set[int]) -> int | None:
    """The Daphne process whose accepted socket is the other end of our client port."""
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            for conn in psutil.Process(pid).net_connections(kind="tcp"):
                if conn.raddr and conn.raddr.port == local_port and conn.status == "ESTABLISHED":
                    return pid
    return None


@dataclass
class Player:
    username: str
    token: str
    ws: object = None
    pid: int | None = None
    seqs: list[int] = field(default_factory=list)  # every event seq received, in order
    events: dict[int, dict] = field(default_factory=dict)
    deltas: dict[int, list[int]] = field(default_factory=dict)  # action_seq -> delta indices
    online: list[str] | None = None
    acks: list[int] = field(default_factory=list)
    pongs: int = 0
    reader: asyncio.Task | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def last_seq(self) -> int:
        return self.seqs[-1] if self.seqs else 0

    async def connect(self, port: int, session_id: int, last_seq: int | None = None) -> None:
        url = f"ws://127.0.0.1:{port}/ws/sessions/{session_id}/?format=json"
        if last_seq is not None:
            url += f"&last_seq={last_seq}"
        self.ws = await connect(
            url,
            additional_headers={"Authorization": f"Bearer {self.token}"},
            origin=f"http://127.0.0.1:{port}",
            proxy=None,
        )
        self.reader = asyncio.create_task(self._read(self.ws))

    async def _read(self, ws) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for raw in ws:
                frame = json.loads(raw)
                kind = frame["type"]
                if kind == "event":
                    self.seqs.append(frame["seq"])
                    self.events[frame["seq"]] = frame["event"]
                elif kind == "delta":
                    self.deltas.setdefault(frame["action_seq"], []).append(frame["i"])
                elif kind == "presence":
                    self.online = frame["online"]
                elif kind == "ack":
                    self.acks.append(frame["seq"])
                elif kind == "pong":
                    self.pongs += 1
                self.changed.set()
        self.changed.set()

    async def until(self, predicate, what: str) -> None:
        deadline = time.monotonic() + WAIT
        while not predicate(self):
            self.changed.clear()
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{self.username} (pid {self.pid}): timed out waiting for {what}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), left)

    async def ready(self) -> None:
        """A pong proves the consumer is past connect(): in the group and registered."""
        pongs = self.pongs
        await self.ws.send(json.dumps({"type": "ping"}))
        await self.until(lambda p: p.pongs > pongs, "a pong")

    async def act(self, text: str, key: str) -> int:
        await self.ws.send(json.dumps({"type": "action", "text": text, "idempotency_key": key}))
        await self.until(lambda p: p.acks, "the ack")
        return self.acks.pop()

    def narrated(self, action_seq: int) -> bool:
        return any(
            e["type"] == "Narration" and e["payload"].get("action_seq") == action_seq
            for e in self.events.values()
        )


def presence_entries(data: Path, session_id: int) -> set[str]:
    """The channel names registered in the server's own Redis (realtime.presence's data)."""
    import redis

    client = redis.Redis(unix_socket_path=str(data / "redis" / "redis.sock"), decode_responses=True)
    try:
        return set(client.zrange(f"gtw:presence:{session_id}:beats", 0, -1))
    finally:
        client.close()


def wait_for_opening(port: int, session_id: int, token: str, timeout: float = 90.0) -> None:
    import urllib.request

    url = f"http://127.0.0.1:{port}/api/sessions/{session_id}/events"
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with opener.open(request, timeout=10) as response:
            if any(e["type"] == "Opening" for e in json.load(response)["events"]):
                return
        time.sleep(0.2)
    raise AssertionError("the session's opening narration never landed")


def contiguous(seqs: list[int]) -> bool:
    return seqs == list(range(seqs[0], seqs[0] + len(seqs)))


async def settled(players: list[Player]) -> list[int]:
    """Wait until every player holds the same log (a turn may append a few engine events after
    its Narration), then return it."""
    while True:
        top = max(p.last_seq for p in players)
        for p in players:
            await p.until(lambda p, top=top: p.last_seq >= top, f"seq {top}")
        await asyncio.sleep(0.5)  # anything still on its way arrives in this time
        if max(p.last_seq for p in players) == top:
            return players[0].seqs


async def scenario(
    proc: subprocess.Popen, data: Path, port: int, session_id: int, players: list[Player]
) -> None:
    pids = daphne_pids(proc)
    assert len(pids) == 2, pids
    # The GM's opening narration is a job queued when the session opened. A fresh socket takes
    # only what comes after it joined, so an opening that lands *between* two players joining
    # reaches one and not the other: let it land first (under CI load it took seconds).
    await asyncio.to_thread(wait_for_opening, port, session_id, players[0].token)
    for p in players:
        await p.connect(port, session_id)
        p.pid = server_pid(p.ws.local_address[1], pids)
    # The kernel hands connections to whichever process accepts first; top up until both serve.
    extra = 0
    while len({p.pid for p in players}) < 2 and extra < 40:
        p = players[extra % len(players)]
        await p.ws.close()
        p.reader.cancel()
        p.seqs.clear()
        await p.connect(port, session_id)
        p.pid = server_pid(p.ws.local_address[1], pids)
        extra += 1
    assert None not in {p.pid for p in players}
    assert len({p.pid for p in players}) == 2, "both Daphne processes serve sockets"
    doomed = next(iter({p.pid for p in players}))
    on_a = [p for p in players if p.pid == doomed]
    on_b = [p for p in players if p.pid != doomed]
    everyone = sorted(p.username for p in players)

    # (b) presence is one roster across processes: every socket ends up with the same list,
    # and each socket is one entry, registered by the process that serves it.
    for p in players:
        await p.until(lambda p: p.online == everyone, f"presence {everyone}")
    for p in players:
        await p.ready()
    before = presence_entries(data, session_id)
    assert len(before) == len(players), "one presence entry per socket, whichever process serves it"
    if all("!" in channel for channel in before):  # core layer: "<process prefix>!<socket>"
        per_process = Counter(channel.split("!")[0] for channel in before)
        assert sorted(per_process.values()) == sorted([len(on_a), len(on_b)])

    # (a) a narration started on process A streams to a player on process B.
    action = await on_a[0].act("I hack the door panel", "scale-1")
    for p in players:
        await p.until(lambda p, s=action: p.narrated(s), "the Narration")
    watcher = on_b[0]
    assert watcher.deltas.get(action), "deltas reach the other process's sockets"
    assert sorted(watcher.deltas[action]) == list(range(len(watcher.deltas[action])))
    assert watcher.events[action]["type"] == "Action"
    log = await settled(players)
    assert contiguous(log) and action in log
    # Before the action only the GM's opening of the session may stand (its job may land after
    # the sockets joined).
    assert all(watcher.events[s]["type"] == "Opening" for s in log if s < action)
    for p in players:
        assert p.seqs == log, f"{p.username}: the same events, in order"

    # (c) kill A outright. Its clients reconnect with their last seq, land on a live process
    # (B, or A's replacement that `gtw up` starts), and miss nothing that happened meanwhile.
    os.kill(doomed, signal.SIGKILL)
    for p in on_a:
        await p.until(lambda p: p.reader.done(), "the socket to drop")
    while_down = await watcher.act("I search the wreck", "scale-2")
    await watcher.until(lambda p: p.narrated(while_down), "the Narration while A is down")
    for p in on_a:
        await p.connect(port, session_id, last_seq=p.last_seq)
    survivors = daphne_pids(proc) - {doomed}
    for p in on_a:
        p.pid = server_pid(p.ws.local_address[1], survivors | daphne_pids(proc))
        assert p.pid is not None and p.pid != doomed
    # The reconnected sockets registered again; the dead process's entries get no more beats
    # and are pruned within the TTL (tests/realtime/test_presence.py), the roster meanwhile
    # deduplicated by name.
    for p in on_a:
        await p.ready()
    now = presence_entries(data, session_id)
    assert before <= now and len(now - before) == len(on_a)
    after = await on_a[0].act("I patch the hull", "scale-3")
    for p in players:
        await p.until(lambda p, s=after: p.narrated(s), "the Narration after the restart")
        await p.until(lambda p: p.online == everyone, "presence after the restart")
    final = await settled(players)
    for p in players:
        assert p.seqs == final, f"{p.username}: same events, in order, none lost or doubled"
    assert contiguous(final) and action in final and while_down in final and after in final
    assert all(watcher.events[s]["type"] == "Opening" for s in final if s < action)
    for _ in range(int(WAIT / 0.2)):  # `gtw up` restarts a dead child within a second or two
        if len(daphne_pids(proc) - {doomed}) == 2:
            break
        await asyncio.sleep(0.2)
    assert len(daphne_pids(proc) - {doomed}) == 2, "gtw up replaced the killed Daphne"
    for p in players:
        await p.ws.close()


def test_two_daphne_processes_share_narration_presence_and_survive_a_kill(tmp_path):
    port = free_port()
    proc = start_gtw(tmp_path, port)
    try:
        session_id, usernames, tokens = setup_game(tmp_path, PLAYERS)
        players = [Player(u, t) for u, t in zip(usernames, tokens, strict=True)]
        asyncio.run(asyncio.wait_for(scenario(proc, tmp_path, port, session_id, players), 120))
    finally:
        out = stop_gtw(proc)
    assert "web-" in out and "restarting it" in out, out


def setup_stage(data: Path, players: int) -> tuple[int, str, list[tuple[str, str]]]:
    """A stage session, its GM's token and `players` players with tokens (through the services)."""
    code = textwrap.dedent(f"""
        import json, django
        django.setup()
        from campaigns.stage import services as stage_services
        from campaigns.models import Membership, PlaySession
        from gtw_site.bench.fanout import setup_game
        from gtw_site.models import ApiToken
        session_id, players = setup_game({players}, prefix="stage")
        party = PlaySession.objects.get(pk=session_id)
        gm = Membership.objects.get(campaign=party.campaign, role="gm")
        opened = stage_services.stage_open(membership=gm, title="scale-out stage")
        token = ApiToken.issue(user=gm.user, name="stage-scale")[1]
        print("GAME", json.dumps({{"stage": opened.pk, "gm": token, "players": players}}))
    """)
    env = {**gtw_env(data), "DJANGO_SETTINGS_MODULE": "gtw_site.settings"}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    line = next((ln for ln in result.stdout.splitlines() if ln.startswith("GAME ")), None)
    assert line, result.stdout + result.stderr
    game = json.loads(line[5:])
    return game["stage"], game["gm"], [tuple(p) for p in game["players"]]


@dataclass
class StageSocket:
    username: str
    token: str
    ws: object = None
    pid: int | None = None
    roster: dict | None = None
    oks: int = 0
    reader: asyncio.Task | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def connect(self, port: int, stage_id: int) -> None:
        self.ws = await connect(
            f"ws://127.0.0.1:{port}/ws/stage/{stage_id}/?format=json",
            additional_headers={"Authorization": f"Bearer {self.token}"},
            origin=f"http://127.0.0.1:{port}",
            proxy=None,
        )
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for raw in self.ws:
                frame = json.loads(raw)
                if frame["type"] == "roster":
                    if self.roster is None or frame["roster"]["version"] >= self.roster["version"]:
                        self.roster = frame["roster"]
                elif frame["type"] == "ok":
                    self.oks += 1
                self.changed.set()

    async def until(self, predicate, what: str) -> None:
        deadline = time.monotonic() + WAIT
        while not predicate(self):
            self.changed.clear()
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{self.username} (pid {self.pid}): timed out waiting for {what}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), left)


def _seat(socket: StageSocket, username: str) -> dict:
    return ((socket.roster or {}).get("seats") or {}).get(username) or {}


async def stage_scenario(proc, port: int, stage_id: int, gm_token: str, sockets: list[StageSocket]) -> None:
    import urllib.request

    pids = daphne_pids(proc)
    for s in sockets:
        await s.connect(port, stage_id)
        s.pid = server_pid(s.ws.local_address[1], pids)
    tries = 0
    while len({s.pid for s in sockets}) < 2 and tries < 40:  # make sure both processes serve some
        s = sockets[tries % len(sockets)]
        await s.ws.close()
        s.reader.cancel()
        s.roster = None
        await s.connect(port, stage_id)
        s.pid = server_pid(s.ws.local_address[1], pids)
        tries += 1
    assert len({s.pid for s in sockets}) == 2, "both Daphne processes serve stage sockets"
    asker = sockets[0]
    watchers = [s for s in sockets if s.pid != asker.pid]

    # A hand raised through a socket on one process shows in the queue on the other's sockets.
    oks = asker.oks
    await asker.ws.send(json.dumps({"type": "raise_hand"}))
    await asker.until(lambda s: s.oks > oks, "the raise_hand ack")
    for s in sockets:
        await s.until(lambda s: _seat(s, asker.username).get("hand_raised_at"), "the raised hand")
        assert [q["username"] for q in s.roster["queue"]] == [asker.username]

    # The GM approves over HTTP (either process); every socket sees the same new speaker.
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/stage/{stage_id}/approve",
        method="POST",
        data=json.dumps({"username": asker.username}).encode(),
        headers={"Authorization": f"Bearer {gm_token}", "Content-Type": "application/json"},
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=WAIT) as response:
        assert response.status == 200
    for s in sockets:
        await s.until(lambda s: _seat(s, asker.username).get("role") == "speaker", "the new speaker")
    versions = {s.roster["version"] for s in sockets}
    assert len(versions) == 1, f"one roster everywhere, got versions {versions}"
    assert watchers and all(s.roster["queue"] == [] for s in sockets)
    for s in sockets:
        await s.ws.close()


def test_stage_state_is_the_same_on_both_daphne_processes(tmp_path):
    port = free_port()
    proc = start_gtw(tmp_path, port)
    try:
        stage_id, gm_token, players = setup_stage(tmp_path, PLAYERS)
        sockets = [StageSocket(u, t) for u, t in players]
        asyncio.run(asyncio.wait_for(stage_scenario(proc, port, stage_id, gm_token, sockets), 120))
    finally:
        stop_gtw(proc)
