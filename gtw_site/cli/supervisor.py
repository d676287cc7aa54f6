"""`gtw up`'s process supervision: children in their own process groups, restarts with back-off,
a crash-loop limit, a clean stop, and the loop that keeps services and unanswered turns going."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from gtw_site.cli.common import BASE_DIR

RESUME_EVERY_S = 45.0  # re-run turns a killed task worker left unanswered
GROUP_GRACE_S = 5.0  # a dead child's leftover processes get this long after SIGTERM
STOP_GRACE_S = 10.0  # at Ctrl-C, each child gets this long to stop its own workers


class CrashLoop(Exception):
    """A child crashed too often in too short a time: restarting it again would not help."""


@dataclass
class Child:
    name: str
    cmd: list[str]
    env: dict[str, str]
    nice: int = 0
    runs_turns: bool = False
    proc: subprocess.Popen | None = None
    crashes: list[float] = field(default_factory=list)  # monotonic times of recent exits
    restart_at: float | None = None  # set while it waits out its back-off


class Supervisor:
    """Starts each child in its own process group, restarts one that exits (backing off
    exponentially, giving up after `max_crashes` within `crash_window_s`), and stops them all.

    A child's group holds what it forked (the task cluster's sentinel and workers): a dead child's
    group is killed before it is restarted, or its workers would live on beside the new ones."""

    def __init__(
        self,
        out,
        pass_fds: tuple[int, ...] = (),
        backoff_s: float = 0.5,
        max_backoff_s: float = 15.0,
        max_crashes: int = 5,
        crash_window_s: float = 60.0,
        group_grace_s: float = GROUP_GRACE_S,
    ):
        self.out = out
        self.pass_fds = pass_fds
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.max_crashes = max_crashes
        self.crash_window_s = crash_window_s
        self.group_grace_s = group_grace_s
        self.children: list[Child] = []
        self.groups: set[int] = set()  # every group started and not yet seen gone

    def add(self, child: Child) -> Child:
        self.children.append(child)
        self._start(child)
        return child

    def _start(self, child: Child) -> None:
        child.proc = subprocess.Popen(
            child.cmd,
            cwd=BASE_DIR,
            env=child.env,
            pass_fds=self.pass_fds,
            process_group=0,
            preexec_fn=lambda: die_with_parent(child.nice),
        )
        child.restart_at = None
        self.groups.add(child.proc.pid)

    def check(self, now: float | None = None) -> list[Child]:
        """Handle children that exited; start those whose back-off is over. Returns the
        children restarted. Raises CrashLoop."""
        now = time.monotonic() if now is None else now
        restarted = []
        for child in self.children:
            if child.restart_at is None and child.proc.poll() is not None:
                self._exited(child, now)
            if child.restart_at is not None and now >= child.restart_at:
                self._start(child)
                restarted.append(child)
        return restarted

    def _exited(self, child: Child, now: float) -> None:
        code = child.proc.returncode
        self._kill_groups([child.proc.pid], self.group_grace_s)
        child.crashes = [t for t in child.crashes if now - t < self.crash_window_s] + [now]
        if len(child.crashes) >= self.max_crashes:
            raise CrashLoop(
                f"{child.name} {_exit_text(code)} (exit {len(child.crashes)} within "
                f"{self.crash_window_s:g} s); giving up. See its messages above."
            )
        delay = min(self.max_backoff_s, self.backoff_s * 2 ** (len(child.crashes) - 1))
        self.out.write(f"gtw: {child.name} {_exit_text(code)}; restarting it in {delay:g} s.\n")
        self.out.flush()
        child.restart_at = now + delay

    def _kill_groups(self, pgids: list[int], grace: float) -> None:
        """SIGTERM the groups, SIGKILL whatever is left of them after `grace` seconds."""
        left = _wait_groups_gone([pgid for pgid in pgids if _signal_group(pgid, signal.SIGTERM)], grace)
        left = _wait_groups_gone([pgid for pgid in left if _signal_group(pgid, signal.SIGKILL)], 1.0)
        # Forget only groups seen gone: a number still in use as a group id is never reused, so
        # one kept here can't be a stranger's by the time `stop` signals it again.
        self.groups.difference_update(set(pgids) - set(left))

    def stop(self, grace: float = STOP_GRACE_S) -> None:
        """SIGTERM each running child (only the main process: django-q2's cluster stops its own
        workers, and hangs if they all get SIGTERM at once), then clear every group ever started."""
        running = [c.proc for c in self.children if c.proc is not None and c.proc.poll() is None]
        for proc in running:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in running:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(proc.pid, signal.SIGKILL)
                proc.wait()
        self._kill_groups(sorted(self.groups), min(grace, self.group_grace_s))


def _signal_group(pgid: int, signum: int) -> bool:
    """False if the group is gone."""
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _wait_groups_gone(pgids: list[int], timeout: float) -> list[int]:
    """Waits up to `timeout` s for the groups to empty; returns those still alive."""
    deadline = time.monotonic() + timeout
    while (pgids := [pgid for pgid in pgids if _group_alive(pgid)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    return pgids


def _group_alive(pgid: int) -> bool:
    """Whether a live process is left in the group. Zombies don't count: where PID 1 never reaps
    orphans (some containers) a killed worker stays one forever."""
    if not os.path.isdir("/proc"):
        return _signal_group(pgid, 0)
    return any(_live_group(e.name) == pgid for e in os.scandir("/proc") if e.name.isdigit())


def _live_group(pid: str) -> int | None:
    """The process group of a live process (from /proc/PID/stat); None for a zombie or a gone one."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            stat = handle.read()
    except OSError:
        return None
    # After "PID (COMM) ": state, ppid, pgrp, … — COMM may hold spaces and parentheses.
    state, _ppid, pgrp = stat[stat.rindex(")") + 2 :].split()[:3]
    return None if state in ("Z", "X", "x") else int(pgrp)


def _exit_text(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-code).name}"
    return f"exited with {code}"


def die_with_parent(nice: int = 0) -> None:
    """Linux: the child gets SIGTERM if `gtw up` itself is killed, so nothing is orphaned."""
    if nice:
        os.nice(nice)
        # Background work (the memory cluster) only gets CPU the turn pipeline leaves idle;
        # nice alone still gave it a share of a busy core during turns (docs/BENCHMARKS.md).
        with contextlib.suppress(AttributeError, OSError):
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    with contextlib.suppress(Exception):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def supervise(
    sup: Supervisor,
    services: Callable[[], object],
    resume: Callable[[], int],
    stopping: Callable[[], bool],
    tick: float = 0.5,
    resume_every: float = RESUME_EVERY_S,
    probe: Callable[[], dict[str, bool]] | None = None,
) -> None:
    """Until `stopping()`: keep the embedded services and the children up, and re-run unanswered
    turns — at once when the turns cluster restarts, when `services()` says it restarted a
    service, or when `probe()` sees a service ("db", "redis") accept connections again after it
    was down (issue 23: a turn the database or Redis outage interrupted, or an action whose turn
    could not be queued, is answered seconds after the service is back) — and every
    `resume_every` seconds as a backstop. Raises CrashLoop."""
    next_resume = time.monotonic() + resume_every
    down: set[str] = set()
    while not stopping():
        time.sleep(tick)
        revived = bool(services())
        if stopping():
            break
        if probe is not None:
            health = probe()
            back = {name for name in down if health.get(name)}
            now_down = {name for name, ok in health.items() if not ok}
            for name in sorted(now_down - down):
                sup.out.write(f"gtw: {_SERVICE_NAMES.get(name, name)} is unreachable; waiting for it.\n")
            for name in sorted(back):
                sup.out.write(f"gtw: {_SERVICE_NAMES.get(name, name)} is back.\n")
            sup.out.flush()
            down = now_down
            revived = revived or bool(back)
        restarted = sup.check()
        now = time.monotonic()
        if revived or any(child.runs_turns for child in restarted):
            if resumed := resume():
                sup.out.write(f"gtw: re-running unanswered turns in {resumed} session(s)\n")
                sup.out.flush()
            next_resume = now + resume_every
        elif now >= next_resume:
            resume()
            next_resume = now + resume_every


_SERVICE_NAMES = {"db": "PostgreSQL", "redis": "Redis"}
