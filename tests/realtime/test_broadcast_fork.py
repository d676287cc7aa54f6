"""A worker forked after the broadcast loop started (django-q forks its cluster's workers) must
start a loop of its own: the inherited one has no thread running it, and every send would hang
for its whole timeout."""

import asyncio
import os

from realtime import broadcast


def test_a_forked_child_runs_its_own_broadcast_loop():
    parent_loop = broadcast._background_loop()
    assert parent_loop.is_running()
    pid = os.fork()
    if pid == 0:  # the child: report through the exit status only
        ok = False
        try:
            assert broadcast._loop is None
            loop = broadcast._background_loop()
            future = asyncio.run_coroutine_threadsafe(asyncio.sleep(0, result=42), loop)
            ok = loop is not parent_loop and future.result(timeout=5) == 42
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert broadcast._background_loop() is parent_loop  # the parent's loop is untouched
