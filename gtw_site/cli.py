"""The `gtw` command: `gtw up`, `gtw doctor`, `gtw bench …`, `gtw mission validate`, `gtw deck …`.

`gtw up` owns the lifecycle of a local game server: one lock per data folder, embedded
PostgreSQL + Redis (unless DATABASE_URL / REDIS_URL are set), migrations, content, demo
accounts, N Daphne processes sharing one listening socket, and a django-q2 cluster. Ctrl-C
stops the children, then the embedded servers (the last process out stops them).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

BASE_DIR = Path(__file__).resolve().parent.parent


def _data_dir() -> Path:
    return Path(os.environ.get("GTW_DATA_DIR") or BASE_DIR / "var").resolve()


def _fail(message: str, code: int = 1) -> NoReturn:
    sys.stderr.write(f"gtw: {message}\n")
    raise SystemExit(code)


def acquire_folder_lock(data_dir: Path):
    """One `gtw up` per data folder. flock is released by the kernel when a process dies, so a
    crashed run never leaves a stale lock behind."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "gtw.lock"
    handle = open(path, "a+")  # noqa: SIM115 - held for the life of the process
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        info = handle.read().strip() or "unknown pid"
        _fail(
            f"gtw is already running in this folder ({info}). Use that server, stop it with Ctrl-C in "
            f"its terminal, or start another one with a different GTW_DATA_DIR."
        )
    handle.seek(0)
    handle.truncate()
    return handle


def bind_port(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        _fail(
            f"port {port} on {host} is not available ({exc.strerror}). Run `gtw up --port {port + 1}` "
            f"or set GTW_PORT."
        )
    sock.listen(512)
    sock.set_inheritable(True)
    return sock


def _setup_django():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gtw_site.settings")
    import django

    django.setup()


def _prepare(out) -> None:
    from django.core.management import call_command

    from campaigns.content import content_load

    call_command("migrate", interactive=False, verbosity=0)
    changed = content_load()
    if changed:
        out.write(f"  content: {', '.join(changed)}\n")
    _schedules()
    _demo_accounts(out)


def _schedules() -> None:
    """Every minute the memory cluster embeds whatever is still un-embedded — the retry path
    when an embedder failed earlier."""
    from django.conf import settings
    from django_q.models import Schedule

    Schedule.objects.update_or_create(
        name="gtw-embed-pending",
        defaults={
            "func": "memory.tasks.embed_pending",
            "schedule_type": Schedule.MINUTES,
            "minutes": 1,
            "cluster": settings.MEMORY_CLUSTER,
            "repeats": -1,
        },
    )


def _demo_accounts(out) -> None:
    """Create demo accounts on first start and print their passwords once — they are random and
    stored only as hashes."""
    from allauth.account.models import EmailAddress
    from django.contrib.auth import get_user_model

    User = get_user_model()
    created = []
    for username, email, staff in (("gm", "gm@example.com", True), ("player", "player@example.com", False)):
        if User.objects.filter(username=username).exists():
            continue
        password = secrets.token_urlsafe(9)
        user = User.objects.create_user(username=username, email=email, password=password)
        if staff:
            user.is_staff = user.is_superuser = True
            user.save()
        EmailAddress.objects.create(user=user, email=email, primary=True, verified=True)
        created.append((email, password, "GM, Django admin" if staff else "player"))
    if created:
        out.write("\n  Demo accounts (shown once — write them down):\n")
        for email, password, role in created:
            out.write(f"    {email:<22} {password}   ({role})\n")
        out.write("\n")


def cmd_up(args) -> int:
    data_dir = _data_dir()
    os.environ["GTW_DATA_DIR"] = str(data_dir)
    # Settings allow this host (unless GTW_ALLOWED_HOSTS says otherwise): the URL printed below
    # must answer. The children inherit it.
    os.environ["GTW_HOST"] = args.host
    lock = acquire_folder_lock(data_dir)
    sock = bind_port(args.host, args.port)
    port = sock.getsockname()[1]  # --port 0: the one the kernel picked
    lock.write(f"pid {os.getpid()}, http://{args.host}:{port}/")
    lock.flush()
    started = time.monotonic()
    out = sys.stdout
    # Handlers first: a Ctrl-C that lands while we start up must still stop cleanly (a
    # KeyboardInterrupt there would orphan the children, which hold our stdout open).
    stopping = False

    def stop(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    out.write(f"gtw: starting in {data_dir}\n")
    _setup_django()
    from django.conf import settings

    _prepare(out)
    if stopping:
        out.write("gtw: stopped before serving.\n")
        return 0
    sup = Supervisor(out, pass_fds=(sock.fileno(),))
    try:
        _start_children(sup, sock, args.web_workers)
        code = _serve(sup, args, port, data_dir, settings, started, lambda: stopping)
    except CrashLoop as exc:
        sys.stderr.write(f"gtw: {exc}\n")
        code = 1
    finally:
        out.write("\ngtw: stopping…\n")
        sup.stop()
        sock.close()
        out.write("gtw: stopped. Your data is kept in " + str(data_dir) + "\n")
    return code


def _start_children(sup: Supervisor, sock: socket.socket, web_workers: int) -> None:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "gtw_site.settings", "PYTHONUNBUFFERED": "1"}
    daphne_cmd = daphne_command(sock.fileno())
    # Connection reuse (see DATABASES in settings): a pool per Daphne process, one kept
    # connection per task worker.
    web_env = {**env, "GTW_DB_POOL": os.environ.get("GTW_DB_POOL", "1")}
    task_env = {**env, "GTW_DB_CONN_MAX_AGE": os.environ.get("GTW_DB_CONN_MAX_AGE", "300")}
    qcluster = [sys.executable, str(BASE_DIR / "manage.py"), "qcluster"]
    for i in range(web_workers):
        sup.add(Child(f"web-{i + 1}", daphne_cmd, web_env))
    # A restarted turns cluster lost whatever turn it was running: re-run unanswered turns.
    sup.add(Child("tasks", qcluster, task_env, runs_turns=True))
    # Memory jobs (embedding, summaries) get their own cluster and a lower CPU priority, so
    # turns never queue behind them.
    sup.add(Child("memory-tasks", qcluster, {**task_env, "Q_CLUSTER_NAME": "gtw-memory"}, nice=10))


def daphne_command(fd: int) -> list[str]:
    """A web worker serving the socket `fd`. No --proxy-headers: Daphne would take the client's
    address from the left-most X-Forwarded-For entry, which the client writes itself. Behind a
    proxy, GTW_PROXY_HOPS tells the login limits (allauth) how many entries from the right to
    trust (settings, "Security: proxies and HTTPS")."""
    return [sys.executable, "-m", "daphne", "--fd", str(fd), "gtw_site.asgi:application"]


def _serve(sup: Supervisor, args, port: int, data_dir: Path, settings, started: float, stopping) -> int:
    """Start-up banner, then supervise until Ctrl-C. Raises CrashLoop."""
    out = sup.out
    resumed = _resume_turns(out)
    if resumed:
        out.write(f"  re-running unanswered turns in {resumed} session(s)\n")
    services = _service_keeper(data_dir, settings, out)
    host = _display_host(args.host)
    url = f"http://{host}:{port}/"
    # The probe also supervises: a web worker that dies at start is restarted (or given up on).
    ready = _wait_http(_probe_host(args.host), port, READY_TIMEOUT_S, tick=sup.check, stopping=stopping)
    if stopping():
        return 0
    database = f"embedded PostgreSQL in {data_dir / 'pg'}" if settings.EMBEDDED_POSTGRES else "DATABASE_URL"
    if ready:
        out.write(f"\n  Galactic Tale Weaver is up at {url}  (ready in {time.monotonic() - started:.1f} s)\n")
    else:
        out.write(
            f"\ngtw: the web server did not answer at {url} within {READY_TIMEOUT_S:g} s; "
            f"see the messages above. Still trying.\n"
        )
    out.write(
        f"  database: {database}"
        f" · redis: {'embedded' if settings.EMBEDDED_REDIS else 'REDIS_URL'}"
        f" · web workers: {args.web_workers}\n"
    )
    if args.host in _WILDCARD_HOSTS and not os.environ.get("GTW_ALLOWED_HOSTS", "").strip():
        out.write("  Players on other machines: set GTW_ALLOWED_HOSTS to the name or address they use.\n")
    for warning in security_warnings():
        out.write(f"  WARNING: {warning}\n")
    out.write("  Press Ctrl-C to stop.\n\n")
    out.flush()
    _supervise(sup, services, lambda: _resume_turns(out), stopping)
    return 0


_WILDCARD_HOSTS = ("0.0.0.0", "::", "")  # noqa: S104


def security_warnings() -> list[str]:
    """What `gtw up` and `gtw doctor` shout about: configuration that is fine on a laptop and
    dangerous on a server. Needs Django set up."""
    from gtw_site.accounts import mail_warning

    return [warning for warning in (mail_warning(),) if warning]


def _probe_host(host: str) -> str:
    """Where the readiness probe connects: the bound address, or loopback for a wildcard bind."""
    return "127.0.0.1" if host in _WILDCARD_HOSTS else host


def _display_host(host: str) -> str:
    if host in (*_WILDCARD_HOSTS, "127.0.0.1"):
        return "localhost"
    return f"[{host}]" if ":" in host else host


def _die_with_parent(nice: int = 0) -> None:
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


# ---- Supervision ------------------------------------------------------------------------------

READY_TIMEOUT_S = 20.0  # how long start-up waits for the web server to answer
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
            preexec_fn=lambda: _die_with_parent(child.nice),
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


def _service_keeper(data_dir: Path, settings, out) -> Callable[[], None]:
    """Restarts embedded PostgreSQL / Redis if they stopped under us."""
    from gtw_site import embedded

    def keep() -> None:
        if settings.EMBEDDED_POSTGRES:
            with contextlib.suppress(Exception):
                if embedded.restart_postgres_if_down(data_dir):
                    out.write("gtw: PostgreSQL had stopped; restarted it.\n")
        if settings.EMBEDDED_REDIS:
            with contextlib.suppress(Exception):
                if embedded.restart_redis_if_down(data_dir):
                    out.write("gtw: Redis had stopped; restarted it.\n")

    return keep


def _resume_turns(out) -> int:
    """Schedule a runner for every session with unanswered turns (idempotent: runners take a
    per-session lock). Returns how many sessions had some; 0 if the database is unreachable."""
    from django.db import connection

    from narrative.turns import resume_all_pending

    try:
        return resume_all_pending()
    except Exception as exc:  # noqa: BLE001 - a database blip must not stop the supervisor
        out.write(f"gtw: could not check for unanswered turns ({type(exc).__name__}); will retry.\n")
        return 0
    finally:
        # Between calls the connection would only go stale (a restarted embedded server).
        if not connection.in_atomic_block:
            with contextlib.suppress(Exception):
                connection.close()


def _supervise(
    sup: Supervisor,
    services: Callable[[], None],
    resume: Callable[[], int],
    stopping: Callable[[], bool],
    tick: float = 0.5,
    resume_every: float = RESUME_EVERY_S,
) -> None:
    """Until `stopping()`: keep the embedded services and the children up, and re-run unanswered
    turns after the turns cluster restarts and every `resume_every` seconds (a task worker killed
    mid-turn is replaced by django-q, but its turn is lost). Raises CrashLoop."""
    next_resume = time.monotonic() + resume_every
    while not stopping():
        time.sleep(tick)
        services()
        if stopping():
            break
        restarted = sup.check()
        now = time.monotonic()
        if any(child.runs_turns for child in restarted):
            if resumed := resume():
                sup.out.write(f"gtw: re-running unanswered turns in {resumed} session(s)\n")
                sup.out.flush()
            next_resume = now + resume_every
        elif now >= next_resume:
            resume()
            next_resume = now + resume_every


def _wait_http(
    host: str,
    port: int,
    timeout: float,
    tick: Callable[[], object] = lambda: None,
    stopping: Callable[[], bool] = lambda: False,
) -> bool:
    """True once http://host:port/healthz answers (any status). Calls `tick` between tries."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not stopping():
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1) as s:
            s.sendall(b"GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n")
            if s.recv(12).startswith(b"HTTP/1."):
                return True
        tick()
        time.sleep(0.2)
    return False


def cmd_doctor(args) -> int:
    _setup_django()
    from django.conf import settings
    from django.db import connection

    ok = True

    def line(good: bool, label: str, detail: str) -> None:
        nonlocal ok
        ok = ok and good
        sys.stdout.write(f"  {'✓' if good else '✗'} {label:<12} {detail}\n")

    sys.stdout.write(f"gtw doctor — data folder {settings.DATA_DIR}\n")
    try:
        with connection.cursor() as cur:
            cur.execute("SELECT version()")
            version = cur.fetchone()[0].split(",")[0]
            cur.execute("SELECT extversion FROM pg_extension WHERE extname='vector'")
            vec = cur.fetchone()
        line(True, "database", f"{version} ({'embedded' if settings.EMBEDDED_POSTGRES else 'DATABASE_URL'})")
        line(
            vec is not None,
            "pgvector",
            vec[0] if vec else "extension missing — run `python manage.py migrate`",
        )
    except Exception as exc:  # noqa: BLE001
        line(False, "database", f"unreachable: {exc}")
    try:
        import redis

        info = redis.from_url(settings.REDIS_URL, socket_timeout=2).info("server")
        line(
            True,
            "redis",
            f"{info['redis_version']} ({'embedded' if settings.EMBEDDED_REDIS else 'REDIS_URL'})",
        )
    except Exception as exc:  # noqa: BLE001
        line(False, "redis", f"unreachable: {exc}")
    for role in ("narrator", "summarizer"):
        line(*_provider_check(role))
    warnings = security_warnings()
    for warning in warnings:
        # A warning, not a failure: a laptop without mail is fine, a public server is not.
        sys.stdout.write(f"  ! WARNING: {warning}\n")
    verdict = "some checks failed" if not ok else "all good, but see the warnings" if warnings else "all good"
    sys.stdout.write(f"{verdict}\n")
    return 0 if ok else 1


def _provider_check(role: str, conf: dict | None = None) -> tuple[bool, str, str]:
    """(ok, role, detail) for doctor: builds the role's adapter as a turn would, so a bad
    provider name or a missing key shows here rather than at the first turn."""
    from django.conf import settings

    from gtw_site.providers import ProviderError
    from narrative.llm.registry import build, resolve_provider_name

    conf = conf or settings.GTW_LLM
    name = resolve_provider_name(role, conf)
    try:
        provider = build(role, conf)
    except ProviderError as exc:
        return False, role, str(exc)
    except Exception as exc:  # noqa: BLE001 - e.g. an SDK that fails to import
        return False, role, f"{name}: {type(exc).__name__}: {exc}"
    return True, role, f"{name} ({getattr(provider, 'model', None) or 'procedural'})"


def cmd_memory(args) -> int:
    _setup_django()
    from django.contrib.auth import get_user_model

    from campaigns.errors import DomainError
    from campaigns.selectors import membership_get
    from memory import importer

    if args.action == "reembed":
        from django.conf import settings

        conf = settings.GTW_MEMORY
        sys.stdout.write(
            f"Re-embedding every memory with the {conf['embedder']} embedder at {conf['dimensions']} "
            "dimensions; search falls back to keywords until it finishes.\n"
        )
        done = importer.reembed(progress=importer.progress_bar("embedding"))
        sys.stdout.write(f"re-embedded {done} memories\n")
        return 0
    if not args.file or args.campaign is None or not args.user:
        _fail("usage: gtw memory import FILE --campaign ID --user USERNAME")
    user = get_user_model().objects.filter(username=args.user).first()
    if user is None:
        _fail(f"no user '{args.user}'")
    try:
        membership = membership_get(viewer=user, campaign_id=args.campaign)
        with open(args.file, encoding="utf-8") as handle:
            result = importer.import_jsonl(
                membership=membership, lines=handle.readlines(), progress=importer.progress_bar("importing")
            )
    except (OSError, DomainError) as exc:
        _fail(getattr(exc, "message", None) or str(exc))
    sys.stdout.write(f"imported {result['imported']} memories; {result['error_count']} bad lines\n")
    for err in result["errors"][:20]:
        sys.stdout.write(f"  line {err['line']}: {err['error']}\n")
    from memory.services import embed_pending

    embedded = embed_pending()
    sys.stdout.write(f"embedded {embedded} memories\n")
    return 0 if not result["error_count"] else 1


def cmd_mission(args) -> int:
    """Pure: compiles files, never touches the database (no Django setup)."""
    from missions.dsl.cli import validate_main

    try:
        return validate_main(args.files)
    except Exception as exc:  # noqa: BLE001 - a validator bug must read as a message, not a traceback
        sys.stderr.write(f"gtw mission validate: internal error ({type(exc).__name__}: {exc})\n")
        return 1


def cmd_deck(args) -> int:
    """Pure: `narrative.decks_cli` parses its own arguments and never raises."""
    from narrative.decks_cli import deck_main

    return deck_main(args.deck_args)


def cmd_bench(args) -> int:
    if args.which == "flood":
        from gtw_site import bench_flood

        return bench_flood.main(args)
    if args.which == "stage":
        from gtw_site import bench_stage

        return bench_stage.main(args)
    if args.which == "fanout":
        from gtw_site import bench_fanout

        return bench_fanout.main(args)
    if args.which == "mission":
        from gtw_site import bench_mission

        return bench_mission.main(args)
    if args.which == "memory":
        from gtw_site import bench_memory

        return bench_memory.main(args)
    from gtw_site import bench

    return bench.main(args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gtw", description="Galactic Tale Weaver")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="run the game server (web + tasks + embedded services)")
    # Defaults from the environment are read after parsing, so a bad one never breaks --help.
    up.add_argument("--port", type=_port, help="default: GTW_PORT or 8000")
    up.add_argument("--host", default=os.environ.get("GTW_HOST", "127.0.0.1"))
    up.add_argument("--web-workers", type=_at_least_one, help="default: GTW_WEB_WORKERS or 1")
    up.set_defaults(func=cmd_up)
    doctor = sub.add_parser("doctor", help="check the database, pgvector, Redis and providers")
    doctor.set_defaults(func=cmd_doctor)
    memory = sub.add_parser("memory", help="import memories (JSONL) or re-embed them all")
    memory.add_argument("action", choices=["import", "reembed"])
    memory.add_argument("file", nargs="?")
    memory.add_argument("--campaign", type=int)
    memory.add_argument("--user", help="whose membership the import runs as")
    memory.set_defaults(func=cmd_memory)
    bench = sub.add_parser("bench", help="benchmarks (print p50/p95/p99, update docs/BENCHMARKS.md)")
    bench.add_argument("which", choices=["turn", "memory", "mission", "fanout", "stage", "flood"])
    bench.add_argument("--clients", type=int, default=8)
    bench.add_argument("--turns", type=int, default=20)
    bench.add_argument("--memories", type=int, default=100_000, help="memory: how many memories")
    bench.add_argument("--campaigns", type=int, default=100, help="memory: over how many campaigns")
    bench.add_argument("--rebuild", action="store_true", help="memory: rebuild the dataset")
    bench.add_argument("--lines", type=int, default=1000, help="mission: lines of the generated mission")
    bench.add_argument("--steps", type=int, default=10_000, help="mission: runtime steps to time")
    bench.add_argument("--messages", type=int, default=200, help="fanout: events broadcast to the session")
    bench.add_argument("--rate", type=float, default=20.0, help="fanout: events per second")
    bench.add_argument("--layer", choices=["core", "pubsub"], default="core", help="fanout: channel layer")
    bench.add_argument("--web-workers", type=int, default=2, help="fanout: Daphne processes")
    bench.add_argument("--participants", type=int, default=50, help="stage: people on the stage")
    bench.add_argument("--flooders", type=int, default=10, help="flood: players flooding another campaign")
    bench.add_argument(
        "--limits", choices=["on", "off"], default="on", help="flood: per-player action limits"
    )
    bench.add_argument("--teams", type=int, default=5, help="stage: fireteams")
    bench.add_argument("--windows", type=int, default=5, help="stage: measured beat windows")
    bench.add_argument("--no-write", action="store_true", help="don't update docs/BENCHMARKS.md")
    bench.add_argument(
        "--trace", action="store_true", help="turn: print where the time goes (a cross-process timeline)"
    )
    bench.set_defaults(func=cmd_bench)
    mission = sub.add_parser("mission", help="check mission files (no database needed)")
    mission_sub = mission.add_subparsers(dest="action", required=True)
    validate = mission_sub.add_parser("validate", help="compile .mission files and report every error")
    validate.add_argument("files", nargs="+", metavar="FILE")
    mission.set_defaults(func=cmd_mission)
    # `gtw deck` has its own parser (narrative.decks_cli): everything after `deck` goes to it,
    # `--help` included, so this one must not add its own.
    deck = sub.add_parser("deck", help="keygen | sign | verify story decks", add_help=False)
    deck.add_argument("deck_args", nargs=argparse.REMAINDER)
    deck.set_defaults(func=cmd_deck)
    args, unknown = parser.parse_known_args(argv)
    if args.command == "deck":
        # parse_known_args leaves options before deck's own subcommand (`gtw deck --help`) here.
        args.deck_args = unknown + args.deck_args
    elif unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if args.command == "up":
        args.port = _from_env(args.port, "GTW_PORT", "8000", _port)
        args.web_workers = _from_env(args.web_workers, "GTW_WEB_WORKERS", "1", _at_least_one)
    return _run(args)


def _run(args) -> int:
    """Configuration mistakes (environment, DATABASE_URL) read as one line, not a traceback."""
    from dj_database_url import UnknownSchemeError
    from django.core.exceptions import ImproperlyConfigured
    from django.db.utils import OperationalError

    try:
        return args.func(args)
    except (ImproperlyConfigured, UnknownSchemeError) as exc:
        _fail(f"configuration error: {exc}")
    except OperationalError as exc:
        _fail(f"cannot use the database: {' '.join(str(exc).split())}")
    except OverflowError as exc:
        _fail(f"a number is out of range: {exc}")


def _port(text: str) -> int:
    value = _whole_number(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number from 0 to 65535, got {value}")
    return value


def _at_least_one(text: str) -> int:
    value = _whole_number(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _whole_number(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None


def _from_env(given, name: str, default: str, convert: Callable[[str], int]) -> int:
    """The option's value if given, else the environment variable's (checked the same way)."""
    if given is not None:
        return given
    try:
        return convert(os.environ.get(name, "").strip() or default)
    except argparse.ArgumentTypeError as exc:
        _fail(f"{name} {exc}")


if __name__ == "__main__":
    raise SystemExit(main())
