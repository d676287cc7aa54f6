"""A turn's telemetry rows are written off the session's lock (issue 17 follow-up): one background
writer thread per process, a bounded queue, batches written in the order they were handed over;
a full queue makes the caller write (nothing dropped); a failed write is logged and the thread
goes on; `flush()` waits for it; a forked child gets a writer of its own; inside a transaction
(or with GTW_TELEMETRY_WRITER=sync) the rows commit with the caller's transaction.

The guarantees hold on the real path: rows for a stream that fails, cost sums per session equal
the sum of the rows."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from decimal import Decimal

import pytest
from django.db import connection

from gtw_site import costs, telemetry
from gtw_site.models import ProviderCall
from gtw_site.providers import Usage


@pytest.fixture
def fresh_writer(monkeypatch, settings):
    """A writer of this test's own (cap 2), its batches recorded, not written; a gate holds the
    thread inside its first write until the test opens it."""
    settings.GTW_TELEMETRY_QUEUE = 2
    settings.GTW_TELEMETRY_WRITER = "background"
    monkeypatch.setattr(telemetry, "_writer", None)
    gate = threading.Event()
    written: list[tuple[str, str]] = []  # (batch label, thread name)

    def write(rows, here):
        gate.wait(10)
        written.append((rows[0]["label"], threading.current_thread().name))

    monkeypatch.setattr(telemetry, "write_batch", write)
    monkeypatch.setattr(telemetry, "_write", write)  # what a caller does when the queue is full
    assert not connection.in_atomic_block  # no test transaction here: as a runner outside one
    yield gate, written
    gate.set()
    telemetry.flush(timeout=10)
    monkeypatch.setattr(telemetry, "_writer", None)


def batch(label: str) -> list[dict]:
    return [{"label": label, "role": "narrator"}]


def test_batches_are_written_by_the_writer_thread_in_order(fresh_writer):
    gate, written = fresh_writer
    gate.set()
    for n in range(5):
        telemetry.hand_off(batch(f"b{n}"))
        assert telemetry.flush(timeout=10)
    assert written == [(f"b{n}", "gtw-telemetry") for n in range(5)]


def test_a_full_queue_makes_the_caller_write_and_drops_nothing(fresh_writer):
    gate, written = fresh_writer
    telemetry.hand_off(batch("first"))  # taken by the thread, held at the gate
    writer = telemetry.writer()
    for _ in range(100):  # until the thread has taken it off the queue
        if writer.queue.empty():
            break
        threading.Event().wait(0.01)
    telemetry.hand_off(batch("q1"))
    telemetry.hand_off(batch("q2"))  # the queue (cap 2) is full now
    assert not telemetry.flush(timeout=0.05)  # the gate holds them: flush times out, says so
    overflow = threading.Thread(target=telemetry.hand_off, args=(batch("over"),), name="runner")
    overflow.start()
    gate.set()
    overflow.join(10)
    assert telemetry.flush(timeout=10)
    assert ("over", "runner") in written  # the caller wrote its own rows
    assert sorted(label for label, _ in written) == ["first", "over", "q1", "q2"]
    assert [label for label, thread in written if thread == "gtw-telemetry"] == ["first", "q1", "q2"]
    assert writer.overflowed == 1


def test_a_failed_write_is_logged_and_the_writer_goes_on(fresh_writer, monkeypatch, caplog):
    gate, written = fresh_writer
    gate.set()
    real = telemetry.write_batch

    def flaky(rows, here):
        if rows[0]["label"] == "bad":
            raise RuntimeError("database went away")
        real(rows, here)

    monkeypatch.setattr(telemetry, "write_batch", flaky)
    with caplog.at_level(logging.WARNING, logger="gtw_site.telemetry"):
        telemetry.hand_off(batch("bad"))
        telemetry.hand_off(batch("good"))
        assert telemetry.flush(timeout=10)
    assert written == [("good", "gtw-telemetry")]
    assert telemetry.writer().failed == 1 and telemetry.writer().thread.is_alive()
    assert "could not record provider telemetry" in caplog.text


def test_a_forked_child_starts_a_writer_of_its_own(fresh_writer):
    gate, _written = fresh_writer
    gate.set()
    telemetry.hand_off(batch("parent"))
    assert telemetry.flush(timeout=10)
    parent = telemetry.writer()
    pid = os.fork()
    if pid == 0:  # the child: report through the exit status only
        ok = False
        try:
            assert telemetry._writer is None
            telemetry.hand_off(batch("child"))
            child = telemetry.writer()
            ok = child is not parent and telemetry.flush(timeout=5) and child.thread.is_alive()
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert telemetry.writer() is parent and parent.thread.is_alive()


@pytest.mark.django_db
def test_inside_a_transaction_the_rows_commit_with_it(monkeypatch):
    """The caller's transaction owns its rows (a test's, an atomic block's): no writer used."""
    monkeypatch.setattr(telemetry, "_writer", None)
    with telemetry.scope(session_id=987654), telemetry.deferred():
        telemetry.record_call(role="narrator", provider="offline", model="m", latency_ms=1.0)
    assert ProviderCall.objects.filter(session_id=987654).count() == 1
    assert telemetry._writer is None


class PricedNarrator:
    """Streams two deltas; with `fail`, the second is a vendor error: the row is still written."""

    name = "priced"
    fail = False

    def __init__(self, **kwargs) -> None:
        self.model = "priced-1"
        self.last_usage = Usage(0, 0)

    def stream(self, request) -> Iterator:
        from narrative.llm.base import StreamEnd, TextDelta

        yield TextDelta("The lights flic")
        if PricedNarrator.fail:
            raise ConnectionError("the vendor hung up")
        yield TextDelta("ker.")
        yield StreamEnd(usage=Usage(1000, 200))

    def complete(self, request) -> str:
        return "The lights flicker."


@pytest.mark.django_db(transaction=True)
def test_the_real_path_writes_rows_off_the_callers_thread_even_for_a_failed_stream(settings, monkeypatch):
    """Outside any transaction (a runner holding the session's lock), a turn's rows — a stream
    that ended, one that failed half way — are written by the writer thread after the block, on
    its own connection, closed once the queue ran dry; the session's cost is the sum of its rows."""
    from gtw_site.models import PriceOverride
    from gtw_site.providers import selection, services
    from narrative.llm import registry as chat
    from narrative.llm.base import ChatRequest, Message

    settings.GTW_TELEMETRY_WRITER = "background"
    monkeypatch.setattr(telemetry, "_writer", None)
    monkeypatch.setitem(chat.PROVIDERS, "priced", f"{__name__}:PricedNarrator")
    monkeypatch.setattr(PricedNarrator, "fail", False)
    PriceOverride.objects.create(
        provider="priced", model="priced-1", input_per_mtok=Decimal("3"), output_per_mtok=Decimal("15")
    )
    selection.forget()
    services.choice_set(role="narrator", provider="priced")
    threads: list[str] = []
    closed: list[str] = []
    real_write, real_close = telemetry.write_batch, telemetry._close_connections

    def spy_write(rows, here):
        threads.append(threading.current_thread().name)
        real_write(rows, here)

    def spy_close():
        closed.append(threading.current_thread().name)
        real_close()

    monkeypatch.setattr(telemetry, "write_batch", spy_write)
    monkeypatch.setattr(telemetry, "_close_connections", spy_close)
    session_id = 424242
    request = ChatRequest(messages=[Message(role="user", content="I look around")], context={})
    assert not connection.in_atomic_block
    try:
        with telemetry.scope(session_id=session_id, turn_seq=1), telemetry.deferred():
            assert chat.get("narrator").name == "priced"
            for _ in chat.get("narrator").stream(request):
                pass
        PricedNarrator.fail = True
        with (
            pytest.raises(ConnectionError),
            telemetry.scope(session_id=session_id, turn_seq=2),
            telemetry.deferred(),
        ):
            for _ in chat.get("narrator").stream(request):
                pass
        assert telemetry.flush(timeout=10)
    finally:
        selection.forget()
    rows = list(ProviderCall.objects.filter(session_id=session_id).order_by("pk"))
    assert [(r.turn_seq, r.ok) for r in rows] == [(1, True), (2, False)]
    assert rows[0].cost_usd == Decimal("0.006000")  # 1000 in at $3/M + 200 out at $15/M
    assert threads == ["gtw-telemetry", "gtw-telemetry"]
    assert "gtw-telemetry" in closed
    total = costs.session_costs(session_id=session_id)["total"]
    assert Decimal(total["cost_usd"]) == sum((r.cost_usd for r in rows), Decimal(0))


# ---- the writer keeps out of a turn's way until its first delta ---------------------------------


@pytest.fixture
def turns_board(django_db_setup):
    """gtw_site.busy's Redis board of turns, empty before and after: this test database's keys
    (its name is in them), with no test transaction open, as a runner outside one."""
    from gtw_site import busy

    keys = (busy._key(), busy._streaming_key(), busy._first_deltas_key())
    busy._client().delete(*keys)
    yield busy
    busy._client().delete(*keys)


@pytest.fixture
def yielding_writer(monkeypatch, settings, turns_board):
    """A writer of this test's own whose writes are recorded (with the time they started); the
    writes are not gated, so only the writer's own waiting can hold a batch back."""
    settings.GTW_TELEMETRY_QUEUE = 8
    settings.GTW_TELEMETRY_WRITER = "background"
    settings.GTW_TELEMETRY_YIELD_S = 60.0  # the bound never decides, unless a test lowers it
    monkeypatch.setattr(telemetry, "_writer", None)
    written: list[str] = []
    done = threading.Event()

    def write(rows, here):
        written.append(rows[0]["label"])
        done.set()

    monkeypatch.setattr(telemetry, "write_batch", write)
    yield turns_board, written, done
    telemetry.flush(timeout=10)
    monkeypatch.setattr(telemetry, "_writer", None)


def test_busy_counts_turns_until_their_first_delta(turns_board):
    busy = turns_board
    assert busy.turns_before_first_delta() == (0, 0)
    busy.turn_expected(5)  # scheduled, no runner yet
    assert busy.turns_before_first_delta() == (1, 0)
    with busy.turn_running(5):  # the runner took it over: still one, still before its first delta
        assert busy.turns_before_first_delta() == (1, 0)
        busy.first_delta_out(5)
        assert busy.turns_before_first_delta() == (0, 1)
    assert busy.turns_before_first_delta() == (0, 1)
    assert busy._client().zcard(busy._streaming_key()) == 0  # the turn's end clears both marks
    busy._client().zadd(busy._key(), {"999999:6": time.time() - 1})  # a crashed worker's, expired
    assert busy.turns_before_first_delta() == (0, 1)


def test_a_batch_waits_for_a_turns_first_delta_and_is_written_right_after(yielding_writer):
    """The writer keeps off the CPU while a turn (this process's or another's) is on its way to
    its first delta, and writes as soon as the delta is out, not at the bound."""
    busy, written, done = yielding_writer
    busy.turn_expected(11)  # the table's next action is scheduled
    telemetry.hand_off(batch("previous turn"))
    assert not done.wait(1.0)  # well past SETTLE_S: held by the turn, not by time
    assert written == []
    with busy.turn_running(11):
        busy.first_delta_out(11)
        assert done.wait(10)
    assert written == ["previous turn"]
    assert telemetry.writer().yielded_s >= 1.0


def test_the_wait_is_bounded(yielding_writer, settings):
    """A turn that never sends a first delta (a stuck provider) holds a batch at most
    GTW_TELEMETRY_YIELD_S."""
    busy, written, done = yielding_writer
    settings.GTW_TELEMETRY_YIELD_S = 0.3
    busy.turn_expected(12)
    telemetry.hand_off(batch("held"))
    assert done.wait(10)
    assert written == ["held"]
    assert 0.3 <= telemetry.writer().yielded_s < 10


def test_flush_and_a_half_full_queue_never_wait_for_turns(yielding_writer, monkeypatch):
    busy, written, _done = yielding_writer
    busy.turn_expected(13)
    telemetry.hand_off(batch("flushed"))
    assert telemetry.flush(timeout=10)  # flush() hurries the writer past the turn
    assert written == ["flushed"]
    # Half the queue (cap 8) waiting: the writer writes at once, turn or not.
    gate = threading.Event()
    monkeypatch.setattr(telemetry.Writer, "_yield_to_turns", _gated(telemetry.Writer._yield_to_turns, gate))
    with busy.turn_running(13):  # on its way to its first delta throughout
        for n in range(5):
            telemetry.hand_off(batch(f"b{n}"))
        gate.set()  # the writer looks at the queue now: four batches behind the one it holds
        for _ in range(500):
            if "b0" in written:
                break
            threading.Event().wait(0.02)
        assert written == ["flushed", "b0"]  # b1 finds three behind it: below half, it waits
    assert telemetry.flush(timeout=10)
    assert written == ["flushed", "b0", "b1", "b2", "b3", "b4"]


def _gated(real, gate):
    def wait_then_yield(self, handed):
        gate.wait(10)
        return real(self, handed)

    return wait_then_yield


def test_a_quiet_table_or_no_redis_gets_its_rows_written_without_a_flush(yielding_writer, monkeypatch):
    busy, written, done = yielding_writer
    telemetry.hand_off(batch("quiet"))  # no turn anywhere: written once the table stays quiet
    assert done.wait(10)
    done.clear()

    def unreachable():
        raise ConnectionError("redis is down")

    monkeypatch.setattr(busy, "turns_before_first_delta", unreachable)
    telemetry.hand_off(batch("no redis"))
    assert done.wait(10)
    assert written == ["quiet", "no redis"]
