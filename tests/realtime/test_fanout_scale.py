"""Fan-out at scale (issue 20): 500 read-only sockets in one session on a real `gtw up
--web-workers 2`, one of them a slow reader, get every event exactly once and in order.

Not a timing test: it asserts what arrives, never how fast. The clients are the benchmark's
lean harness (gtw_site/bench/lean_ws.py), so 500 sockets cost the test little CPU. The slow
client has a 4 KB receive buffer and stops reading during the burst, so its Daphne has to hold
what it cannot send; the other 499 must still get the whole burst before it reads again (a
stalled socket never holds up the rest), and then it gets everything too.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from pathlib import Path
from queue import Empty, Queue

import pytest

from gtw_site.bench.lean_ws import connect
from tests.gtw_site.test_embedded import free_port, kill_tree
from tests.gtw_site.test_scale_out import daphne_pids, gtw_env, server_pid, stop_gtw

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.slow,
    pytest.mark.xdist_group("fanout-scale"),
    pytest.mark.timeout(1800),
]
SOCKETS = 500
BURST = 40
WAIT = 180.0  # seconds: a ceiling for one step on a loaded CI machine, never a measurement


def start_gtw(data: Path, port: int) -> subprocess.Popen:
    """`gtw up --web-workers 2` in its own data folder, once it says it is up (test_scale_out's,
    with a longer ceiling: this test runs on machines busy with the rest of the suite)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "gtw_site.cli", "up", "--port", str(port), "--web-workers", "2"],
        cwd=ROOT,
        env=env(data),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    proc.lines = Queue()
    threading.Thread(
        target=lambda: [proc.lines.put(line) for line in proc.stdout] + [proc.lines.put(None)], daemon=True
    ).start()
    lines: list[str] = []
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        try:
            line = proc.lines.get(timeout=max(0.1, deadline - time.monotonic()))
        except Empty:
            break
        if line is None:
            break
        lines.append(line)
        if "Press Ctrl-C to stop" in line:
            return proc
    kill_tree(proc)
    raise AssertionError("gtw up did not come up:\n" + "".join(lines))


def env(data: Path) -> dict[str, str]:
    # No portraits for 500 new characters: the image cluster would paint them all during the test.
    return {**gtw_env(data), "GTW_IMAGE_AUTO": "0"}


def django_script(data: Path, code: str, timeout: float = 600) -> dict:
    """Run `code` in a process attached to the server's own database; its `OUT {json}` line."""
    script_env = {**env(data), "DJANGO_SETTINGS_MODULE": "gtw_site.settings"}
    script = "import json, django\ndjango.setup()\n" + textwrap.dedent(code)
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=script_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    line = next((ln for ln in result.stdout.splitlines() if ln.startswith("OUT ")), None)
    assert line, result.stdout + result.stderr
    return json.loads(line[4:])


def setup(data: Path) -> tuple[int, list[str]]:
    game = django_script(
        data,
        f"""
        from gtw_site.bench.fanout import setup_game
        session_id, players = setup_game({SOCKETS}, prefix="fan")
        print("OUT", json.dumps({{"session": session_id, "tokens": [t for _, t in players]}}))
        """,
    )
    return game["session"], game["tokens"]


def announce(data: Path, session_id: int, n: int) -> list[int]:
    """Commit n NpcSpoke events, each broadcast after its commit (as a service does)."""
    return django_script(
        data,
        f"""
        from campaigns import events
        seqs = []
        for i in range({n}):
            new = events.NewEvent(type="NpcSpoke", payload={{"name": "PA", "line": f"Bulletin {{i}}."}})
            seqs.append(events.append({session_id}, [new]).events[0].seq)
        print("OUT", json.dumps(seqs))
        """,
    )


class Reader:
    def __init__(self) -> None:
        self.seqs: list[int] = []
        self.pongs = 0
        self.changed = asyncio.Event()

    def on_text(self, raw: bytes) -> None:
        frame = json.loads(raw)
        if frame["type"] == "event" and frame["event"]["type"] == "NpcSpoke":  # not the opening
            self.seqs.append(frame["seq"])
        elif frame["type"] == "pong":
            self.pongs += 1
        self.changed.set()


async def until(readers: list[Reader], predicate, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not all(predicate(r) for r in readers):
        if time.monotonic() > deadline:
            missing = sum(not predicate(r) for r in readers)
            raise AssertionError(f"{missing} of {len(readers)} sockets: timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def scenario(proc, port: int, data: Path, session_id: int, tokens: list[str]) -> None:
    path = f"/ws/sessions/{session_id}/?format=json"
    readers = [Reader() for _ in tokens]
    sockets = []
    for start in range(0, len(tokens), 25):
        sockets += await asyncio.gather(
            *(
                connect(
                    "127.0.0.1",
                    port,
                    path,
                    readers[k].on_text,
                    headers={"Authorization": f"Bearer {tokens[k]}"},
                    rcvbuf=4096 if k == 0 else None,
                )
                for k in range(start, min(start + 25, len(tokens)))
            )
        )
    try:
        for ws in sockets:
            ws.send_text('{"type": "ping"}')
        await until(readers, lambda r: r.pongs >= 1, "a pong")  # every consumer is in the group
        pids = daphne_pids(proc)
        served = Counter(server_pid(ws.local_port, pids) for ws in sockets)
        assert len(pids) == 2 and None not in served, served
        # SO_REUSEPORT spreads connections by a hash: a 150/350 split of 500 is ~1e-19 likely.
        assert min(served.values()) >= 150, f"sockets per Daphne: {dict(served)}"

        slow, slow_reader, fast = sockets[0], readers[0], readers[1:]
        slow.pause()
        sent = await asyncio.to_thread(announce, data, session_id, BURST)
        await until(fast, lambda r: len(r.seqs) >= BURST, "the burst")
        assert len(slow_reader.seqs) < BURST, "the slow client was still holding back"
        slow.resume()
        await until([slow_reader], lambda r: len(r.seqs) >= BURST, "the burst, on the slow client")
        # A ping behind the burst: whatever else was queued for each socket has arrived.
        for ws in sockets:
            ws.send_text('{"type": "ping"}')
        await until(readers, lambda r: r.pongs >= 2, "a second pong")
        for k, r in enumerate(readers):
            assert r.seqs == sent, f"socket {k}: in order, nothing lost, nothing twice"
    finally:
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)


def test_500_read_only_sockets_on_two_processes_get_every_event_once_with_a_slow_client(tmp_path):
    port = free_port()
    proc = start_gtw(tmp_path, port)
    try:
        session_id, tokens = setup(tmp_path)
        asyncio.run(asyncio.wait_for(scenario(proc, port, tmp_path, session_id, tokens), 6 * WAIT))
    finally:
        stop_gtw(proc)
