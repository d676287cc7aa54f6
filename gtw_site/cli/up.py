"""`gtw up`: one lock per data folder, embedded PostgreSQL + Redis (unless DATABASE_URL /
REDIS_URL are set), migrations, content, demo accounts, N Daphne processes on one port (a
listening socket each, SO_REUSEPORT), and two django-q2 clusters, kept up by the supervisor until Ctrl-C."""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

from gtw_site.cli.common import BASE_DIR, data_folder, fail, security_warnings, setup_django
from gtw_site.cli.supervisor import Child, CrashLoop, Supervisor, supervise

READY_TIMEOUT_S = 20.0  # how long start-up waits for the web server to answer
WEBSOCKET_CONNECT_TIMEOUT_S = 30  # see daphne_command


def cmd_up(args) -> int:
    data_dir = data_folder()
    os.environ["GTW_DATA_DIR"] = str(data_dir)
    # Settings allow this host (unless GTW_ALLOWED_HOSTS says otherwise): the URL printed below
    # must answer. The children inherit it.
    os.environ["GTW_HOST"] = args.host
    lock = acquire_folder_lock(data_dir)
    socks = bind_ports(args.host, args.port, args.web_workers)
    port = socks[0].getsockname()[1]  # --port 0: the one the kernel picked
    lock.write(f"pid {os.getpid()}, http://{args.host}:{port}/")
    lock.flush()
    # Issue 17: last run's Prometheus files are stale; wiped before any process makes a metric
    # (the children inherit PROMETHEUS_MULTIPROC_DIR). We hold the folder's lock.
    from gtw_site import metrics

    metrics.wipe(os.environ.get("GTW_METRICS_DIR") or str(data_dir / "metrics"))
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
    setup_django()
    from django.conf import settings

    lan_check(args.host, settings, trusted=trusted_lan(getattr(args, "trusted_lan", False)), out=out)
    _prepare(out)
    if stopping:
        out.write("gtw: stopped before serving.\n")
        return 0
    sup = Supervisor(out, pass_fds=tuple(s.fileno() for s in socks))
    try:
        _start_children(sup, socks)
        code = _serve(sup, args, port, data_dir, settings, started, lambda: stopping)
    except CrashLoop as exc:
        sys.stderr.write(f"gtw: {exc}\n")
        code = 1
    finally:
        out.write("\ngtw: stopping…\n")
        sup.stop()
        for sock in socks:
            sock.close()
        out.write("gtw: stopped. Your data is kept in " + str(data_dir) + "\n")
    return code


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
        fail(
            f"gtw is already running in this folder ({info}). Use that server, stop it with Ctrl-C in "
            f"its terminal, or start another one with a different GTW_DATA_DIR."
        )
    handle.seek(0)
    handle.truncate()
    return handle


def bind_ports(host: str, port: int, count: int) -> list[socket.socket]:
    """One listening socket per web worker, all on the same port with SO_REUSEPORT: the kernel
    spreads new connections evenly over them (by a hash of the connection), where one shared
    socket lets whichever Daphne wakes first take the next (issue 20: 292/208 splits of 500
    sockets, and a 1.4 s p95 on the fuller one). Each Daphne accepts on its own socket; one that
    restarts finds its connections waiting in its socket's queue. Without SO_REUSEPORT (not
    Linux/BSD), one socket shared by all, as before."""
    if count == 1 or not hasattr(socket, "SO_REUSEPORT"):
        return [bind_port(host, port)] * count
    # First a plain bind, which fails if anything holds the port — another `gtw up` on it too:
    # with SO_REUSEPORT alone, a second server of the same user would silently take half the
    # connections. It also resolves --port 0.
    probe = bind_port(host, port, listen=False)
    port = probe.getsockname()[1]
    probe.close()
    return [bind_port(host, port, reuse_port=True) for _ in range(count)]


def bind_port(host: str, port: int, *, reuse_port: bool = False, listen: bool = True) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        fail(
            f"port {port} on {host} is not available ({exc.strerror}). Run `gtw up --port {port + 1}` "
            f"or set GTW_PORT."
        )
    if not listen:
        return sock
    sock.listen(512)
    sock.set_inheritable(True)
    return sock


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


def _start_children(sup: Supervisor, socks: list[socket.socket]) -> None:
    """A web worker per listening socket (see bind_ports), then the task clusters."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "gtw_site.settings", "PYTHONUNBUFFERED": "1"}
    # Connection reuse (see DATABASES in settings): a pool per Daphne process, one kept
    # connection per task worker.
    web_env = {**env, "GTW_DB_POOL": os.environ.get("GTW_DB_POOL", "1")}
    task_env = {**env, "GTW_DB_CONN_MAX_AGE": os.environ.get("GTW_DB_CONN_MAX_AGE", "300")}
    qcluster = [sys.executable, str(BASE_DIR / "manage.py"), "qcluster"]
    for i, sock in enumerate(socks):
        sup.add(Child(f"web-{i + 1}", daphne_command(sock.fileno()), web_env))
    # A restarted turns cluster lost whatever turn it was running: re-run unanswered turns.
    sup.add(Child("tasks", qcluster, task_env, runs_turns=True))
    # Memory jobs (embedding, summaries) get their own cluster and a lower CPU priority, so
    # turns never queue behind them.
    sup.add(Child("memory-tasks", qcluster, {**task_env, "Q_CLUSTER_NAME": "gtw-memory"}, nice=10))
    # Pictures (issue 15): their own cluster, lower priority still; `imagecluster` first re-queues
    # whatever a killed predecessor left "generating", then runs qcluster.
    image_cmd = [sys.executable, str(BASE_DIR / "manage.py"), "imagecluster"]
    sup.add(Child("image-tasks", image_cmd, {**task_env, "Q_CLUSTER_NAME": "gtw-images"}, nice=15))


def daphne_command(fd: int) -> list[str]:
    """A web worker serving the socket `fd`. No --proxy-headers: Daphne would take the client's
    address from the left-most X-Forwarded-For entry, which the client writes itself. Behind a
    proxy, GTW_PROXY_HOPS tells the login limits (allauth) how many entries from the right to
    trust (settings, "Security: proxies and HTTPS").

    A websocket handshake may take up to WEBSOCKET_CONNECT_TIMEOUT_S (Daphne's default is 5 s): in
    a connect storm — a 500-seat stage opening, every tab reconnecting after a restart — a busy
    process accepts late, and dropping those connections only has them all come back (issue 20:
    the bench's 500 clients were reset at 5 s on a loaded 2-core machine)."""
    return [
        sys.executable,
        "-m",
        "daphne",
        "--fd",
        str(fd),
        "--websocket_connect_timeout",
        str(WEBSOCKET_CONNECT_TIMEOUT_S),
        "gtw_site.asgi:application",
    ]


def _serve(sup: Supervisor, args, port: int, data_dir: Path, settings, started: float, stopping) -> int:
    """Start-up banner, then supervise until Ctrl-C. Raises CrashLoop."""
    out = sup.out
    resumed = _resume_turns(out)
    if resumed:
        out.write(f"  re-running unanswered turns in {resumed} session(s)\n")
    redis_back = {"flag": False}  # Redis restarted or reachable again since the last sweep
    services = _service_keeper(data_dir, settings, out, redis_back)
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
    probe = _Probe(settings, redis_back)

    def resume() -> int:
        if redis_back["flag"]:
            redis_back["flag"] = False
            _forget_queued_flags()
        return _resume_turns(out)

    try:
        supervise(sup, services, resume, stopping, probe=probe)
    finally:
        probe.close()
    return 0


_WILDCARD_HOSTS = ("0.0.0.0", "::", "")  # noqa: S104


def _probe_host(host: str) -> str:
    """Where the readiness probe connects: the bound address, or loopback for a wildcard bind."""
    return "127.0.0.1" if host in _WILDCARD_HOSTS else host


def _display_host(host: str) -> str:
    if host in (*_WILDCARD_HOSTS, "127.0.0.1"):
        return "localhost"
    return f"[{host}]" if ":" in host else host


def _service_keeper(data_dir: Path, settings, out, redis_back: dict | None = None) -> Callable[[], bool]:
    """Restarts embedded PostgreSQL / Redis if they stopped under us; True if it restarted one
    (the supervisor then re-runs the turns their outage interrupted at once)."""
    from gtw_site import embedded

    def keep() -> bool:
        restarted = False
        if settings.EMBEDDED_POSTGRES:
            with contextlib.suppress(Exception):
                if embedded.restart_postgres_if_down(data_dir):
                    out.write("gtw: PostgreSQL had stopped; restarted it.\n")
                    restarted = True
        if settings.EMBEDDED_REDIS:
            with contextlib.suppress(Exception):
                if embedded.restart_redis_if_down(data_dir):
                    out.write("gtw: Redis had stopped; restarted it.\n")
                    restarted = True
                    if redis_back is not None:
                        redis_back["flag"] = True
        return restarted

    return keep


class _Probe:
    """Whether PostgreSQL and Redis accept connections right now, for the supervisor's loop: one
    kept connection to each (a query and a PING per tick), reopened after a failure with short
    timeouts, so a hosted server that restarts or fails over is noticed within a tick of coming
    back, as an embedded one is."""

    def __init__(self, settings, redis_back: dict | None = None) -> None:
        self.settings = settings
        self.db = None
        self.redis = None
        self.redis_back = redis_back
        self.redis_was_down = False

    def __call__(self) -> dict[str, bool]:
        return {"db": self._db_ok(), "redis": self._redis_ok()}

    def _db_ok(self) -> bool:
        from django.db import connection

        try:
            if self.db is None or self.db.closed:
                params = {**connection.get_connection_params(), "connect_timeout": 2}
                params.pop("cursor_factory", None)
                params.pop("context", None)
                import psycopg

                self.db = psycopg.connect(**params, autocommit=True)
            self.db.execute("SELECT 1")
            return True
        except Exception:  # noqa: BLE001 - any failure means "down"
            self.close()
            return False

    def _redis_ok(self) -> bool:
        try:
            if self.redis is None:
                import redis

                self.redis = redis.from_url(
                    self.settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2
                )
            up = bool(self.redis.ping())
        except Exception:  # noqa: BLE001
            up = False
        if up and self.redis_was_down and self.redis_back is not None:
            self.redis_back["flag"] = True
        self.redis_was_down = not up
        return up

    def close(self) -> None:
        if self.db is not None:
            with contextlib.suppress(Exception):
                self.db.close()
            self.db = None


def _forget_queued_flags() -> None:
    """After a Redis restart, every "a runner is already queued" flag (gtw_site.jobs.enqueue_once)
    is suspect: the queue it vouched for may be gone, or a snapshot may have brought back a flag
    whose task already ran — and the session's next action would wait out its TTL unanswered.
    Dropping them costs at most a duplicate runner, which finds the session's lock taken."""
    from gtw_site import jobs

    with contextlib.suppress(Exception):
        jobs.queued_reset()


def _resume_turns(out) -> int:
    """Schedule a runner for every session with unanswered turns (idempotent: runners take a
    per-session lock). Returns how many sessions had some; 0 if the database is unreachable."""
    from django.db import connection

    from narrative.opening import resume_all_openings
    from narrative.turns import resume_all_pending

    # Openings a crash left unwritten (narrative/opening.py); a failure here is the turns' too.
    with contextlib.suppress(Exception):
        resume_all_openings()
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


# ---- LAN mode (issue 18, part 7) -------------------------------------------------------------
# `gtw up --host 0.0.0.0` (or any address other machines can reach) puts the game on a network.
# Settings that are fine on one laptop are not fine there, so it refuses to start with them
# unless told the network is trusted (`--trusted-lan` or GTW_TRUSTED_LAN=1), and says exactly
# what to set. A loopback bind (the default, 127.0.0.1) is never checked.

TRUSTED_LAN_ENV = "GTW_TRUSTED_LAN"
_PLACEHOLDER_KEYS = frozenset({"change-me", "changeme", "secret", "dev", "insecure", "please-change-me"})
_CONSOLE_MAIL = "django.core.mail.backends.console.EmailBackend"


def is_loopback(host: str) -> bool:
    import ipaddress

    name = host.strip().strip("[]").lower()
    if name in ("localhost", "localhost.localdomain", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False  # a name, or "" / "0.0.0.0" style wildcards: other machines may reach it


def lan_problems(host: str, settings) -> list[str]:
    """What makes serving on `host` unsafe, each as "what is wrong — what to set"; [] for a
    loopback bind or a safe configuration."""
    if is_loopback(host):
        return []
    problems = []
    if settings.DEBUG:
        problems.append(
            "GTW_DEBUG is on: anyone on the network would see tracebacks with your settings and code. "
            "Unset GTW_DEBUG (or set GTW_DEBUG=0)."
        )
    if settings.EMAIL_BACKEND == _CONSOLE_MAIL:
        problems.append(
            "mail only goes to this terminal (the console backend): invitations and password resets "
            "cannot reach players, and a reset link in a log is a key to that account. Set "
            "GTW_EMAIL_HOST=<your mail server> (with GTW_EMAIL_USER, GTW_EMAIL_PASSWORD and "
            "GTW_EMAIL_PORT as it needs)."
        )
    hosts = [h.strip() for h in settings.ALLOWED_HOSTS]
    example = f"GTW_ALLOWED_HOSTS={socket.gethostname() or 'gtw.lan'},192.168.1.20"
    if "*" in hosts or any(h in (".", ".*") for h in hosts):
        problems.append(
            f"GTW_ALLOWED_HOSTS lets in any host name ('*'): name the ones players use, e.g. {example}."
        )
    elif all(is_loopback(h) for h in hosts):
        problems.append(
            "no host name other machines can use is allowed (GTW_ALLOWED_HOSTS names only this "
            f"machine's loopback): set it to the name or address players type, e.g. {example}."
        )
    key = str(settings.SECRET_KEY or "")
    if len(key) < 32 or key.startswith("django-insecure") or key.lower() in _PLACEHOLDER_KEYS:
        problems.append(
            "GTW_SECRET_KEY is a placeholder or too short (under 32 characters): set a long random "
            "value, e.g. GTW_SECRET_KEY=$(python3 -c 'import secrets; print(secrets.token_urlsafe(50))'), "
            "or unset it to use the private key gtw keeps in the data folder."
        )
    return problems


def trusted_lan(flag: bool = False, environ=None) -> bool:
    value = (environ if environ is not None else os.environ).get(TRUSTED_LAN_ENV, "")
    return bool(flag) or value.strip().lower() in ("1", "true", "yes", "on")


def lan_check(host: str, settings, *, trusted: bool = False, out=None) -> list[str]:
    """Refuse (SystemExit via `fail`, the message listing every fix) to serve on a non-loopback
    `host` with unsafe settings, unless `trusted` (then warn and go on). Returns the problems."""
    problems = lan_problems(host, settings)
    if not problems:
        return []
    listed = "\n".join(f"  - {p}" for p in problems)
    if not trusted:
        fail(
            f"refusing to serve on {host or 'every interface'}: other machines could reach this "
            f"server, and its settings are only safe on this one.\n{listed}\n"
            f"Fix these, or bind to 127.0.0.1 (the default). On a network you trust (a LAN "
            f"party), start with --trusted-lan or {TRUSTED_LAN_ENV}=1 to run anyway."
        )
    (out or sys.stdout).write(f"gtw: trusted LAN ({TRUSTED_LAN_ENV}): starting anyway with:\n{listed}\n")
    return problems
