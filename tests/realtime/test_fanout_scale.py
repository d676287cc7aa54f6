"""Fan-out at scale (issue 20): 500 read-only sockets in one session on a real `gtw up
--web-workers 2`, one of them a slow reader, get every event exactly once and in order.

Not a timing test: it asserts what arrives, never how fast. The clients are the benchmark's
lean harness (gtw_site/bench/lean_ws.py), so 500 sockets cost the test little CPU. The slow
client has a 4 KB receive buffer and stops reading during the burst, so its Daphne has to hold
what it cannot send; the other 499 must still get the whole burst before it reads again (a
stalled socket never holds up the rest), and then it gets everything too.

Also the harness's own checks, fast: the lean client's frame parser against a real loopback
server, and the benchmark's shortcut reader of event frames against a full JSON decode.
"""

from __future__ import annotations

import asyncio
import contextlib
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
from hypothesis import given, settings
from hypothesis import strategies as st

from gtw_site.bench.lean_ws import connect
from tests.gtw_site.test_embedded import free_port, kill_tree
from tests.gtw_site.test_scale_out import daphne_pids, gtw_env, server_pid, stop_gtw

ROOT = Path(__file__).resolve().parents[2]
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


@pytest.mark.slow
@pytest.mark.xdist_group("fanout-scale")
@pytest.mark.timeout(1800)
def test_500_read_only_sockets_on_two_processes_get_every_event_once_with_a_slow_client(tmp_path):
    port = free_port()
    proc = start_gtw(tmp_path, port)
    try:
        session_id, tokens = setup(tmp_path)
        asyncio.run(asyncio.wait_for(scenario(proc, port, tmp_path, session_id, tokens), 6 * WAIT))
    finally:
        stop_gtw(proc)


# ---- the harness's own checks (fast) --------------------------------------------------------


def server_frame(opcode: int, payload: bytes) -> bytes:
    """An unmasked server frame, as Daphne sends it."""
    n = len(payload)
    if n < 126:
        head = bytes([0x80 | opcode, n])
    elif n < 1 << 16:
        head = bytes([0x80 | opcode, 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([0x80 | opcode, 127]) + n.to_bytes(8, "big")
    return head + payload


class Script(asyncio.Protocol):
    """A loopback server that answers the upgrade with `reply` in chunks of `chunk` bytes (one
    write each, flushed), and keeps what the client sends."""

    def __init__(self, reply: bytes, chunk: int) -> None:
        self.reply, self.chunk, self.got = reply, chunk, bytearray()
        self.playing: asyncio.Task | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.got += data
        if self.playing is None:
            self.playing = asyncio.ensure_future(self._play())

    async def _play(self) -> None:
        for at in range(0, len(self.reply), self.chunk):
            self.transport.write(self.reply[at : at + self.chunk])
            await asyncio.sleep(0)  # each chunk its own read, most of the time


@pytest.mark.parametrize("chunk", [1, 7, 1000, 1 << 20])
def test_lean_client_reads_frames_split_or_batched_in_order_and_answers_pings(chunk):
    """Frames in one read with the upgrade, split at every byte, and one larger than the read
    buffer all arrive whole and in order; a ping is answered with its payload."""
    from gtw_site.bench import lean_ws

    texts = [b'{"n": 1}', "é".encode() * 100, b"x" * 70_000, b"y" * (3 * lean_ws.READ_BUFFER), b'{"n": 5}']
    reply = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
    reply += b"".join(server_frame(lean_ws.OP_TEXT, t) for t in texts[:2])
    reply += server_frame(lean_ws.OP_PING, b"beat")
    reply += b"".join(server_frame(lean_ws.OP_TEXT, t) for t in texts[2:])

    async def go():
        loop = asyncio.get_running_loop()
        script = Script(reply, chunk)
        server = await loop.create_server(lambda: script, "127.0.0.1", 0)
        got: list[bytes] = []
        all_in = asyncio.Event()

        def on_text(raw: bytes) -> None:
            got.append(raw)
            if len(got) == len(texts):
                all_in.set()

        try:
            ws = await lean_ws.connect("127.0.0.1", server.sockets[0].getsockname()[1], "/ws/x/", on_text)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(all_in.wait(), WAIT)
            await ws.close()
        finally:
            server.close()
        return got, bytes(script.got)

    got, sent = asyncio.run(go())
    assert got == texts
    assert lean_ws.client_frame(lean_ws.OP_PONG, b"beat") in sent


def event_text(seq: int, payload: dict, audience=None) -> bytes:
    """An event frame exactly as a `?format=json` socket gets it (the server's own encoder)."""
    from realtime.consumers import event_frame

    event = {
        "seq": seq,
        "type": "NpcSpoke",
        "actor": None,
        "actor_id": None,
        "payload": payload,
        "seed": None,
        "audience": audience,
        "created_at": "2026-12-08T02:41:21.123456+00:00",
    }
    return event_frame({"seq": seq, "event": event}).encode()


@given(
    seq=st.integers(1, 10**9),
    i=st.integers(-10, 10**6),
    sent_at=st.floats(0, 1e7, allow_nan=False),
    line=st.text(),
    audience=st.none() | st.lists(st.integers(1, 10**6), max_size=3),
)
@settings(max_examples=300, deadline=None)
def test_the_bench_reads_its_stamp_from_the_frame_bytes_as_json_would(seq, i, sent_at, line, audience):
    """The bench's shortcut (no full decode per frame) gives what json.loads gives, whatever
    the text around the stamp says, including the stamp's own words inside a string."""
    from gtw_site.bench.fanout import check_event, read_event

    payload = {"name": "Station PA", "line": line, "bench": {"i": i, "sent_at": sent_at}}
    raw = event_text(seq, payload, audience)
    assert read_event(raw) == check_event(raw) == (seq, i, sent_at)
    decoy = event_text(seq, {"line": f'"bench": {{"i": {i + 1}, "sent_at": 1.0}} {line}'})
    assert read_event(decoy) == check_event(decoy) == (seq, None, 0.0)


def test_the_bench_refuses_a_frame_its_shortcut_would_misread():
    """Another encoding of the same event (compact separators) is caught on a socket's first
    event, rather than measured wrong or counted as lost."""
    from gtw_site.bench.fanout import check_event

    frame = json.loads(event_text(7, {"bench": {"i": 3, "sent_at": 12.5}}))
    with pytest.raises(RuntimeError, match="misread"):
        check_event(json.dumps(frame, separators=(",", ":")).encode())
    assert check_event(b'{"type": "pong"}') is None


def test_the_bench_counts_each_message_once_and_notes_gaps_and_duplicates():
    from gtw_site.bench.fanout import ClientResult, _Reader

    async def go():
        complete = asyncio.Event()
        reader = _Reader(3, [1], complete)
        reader.on_text(b'{"type": "pong"}')
        for seq, i in [(10, -1), (11, 0), (12, 1), (12, 1), (14, 2)]:  # a duplicate, a gap
            reader.on_text(event_text(seq, {"bench": {"i": i, "sent_at": time.perf_counter()}}))
        return reader, complete.is_set()

    reader, complete = asyncio.run(go())
    result = ClientResult()
    reader.result(result)
    assert reader.pong.is_set() and complete
    assert (result.received, result.duplicates, result.seq_gaps) == (3, 1, 2)
    assert sorted(result.by_message) == [0, 1, 2] and all(0 <= ms < 60_000 for ms in result.latencies)
