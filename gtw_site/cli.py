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
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def _data_dir() -> Path:
    return Path(os.environ.get("GTW_DATA_DIR") or BASE_DIR / "var").resolve()


def _fail(message: str, code: int = 1) -> None:
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
    lock = acquire_folder_lock(data_dir)
    sock = bind_port(args.host, args.port)
    lock.write(f"pid {os.getpid()}, http://{args.host}:{args.port}/")
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
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "gtw_site.settings", "PYTHONUNBUFFERED": "1"}
    children: list[tuple] = []  # (name, cmd, proc, extra_env, nice)

    def spawn(name: str, cmd: list[str], extra_env: dict | None = None, nice: int = 0) -> subprocess.Popen:
        # Own process group each, so stopping one also stops the workers it forked.
        proc = subprocess.Popen(
            cmd,
            cwd=BASE_DIR,
            env={**env, **(extra_env or {})},
            pass_fds=(sock.fileno(),),
            process_group=0,
            preexec_fn=lambda: _die_with_parent(nice),
        )
        children.append((name, cmd, proc, extra_env, nice))
        return proc

    daphne_cmd = [
        sys.executable,
        "-m",
        "daphne",
        "--fd",
        str(sock.fileno()),
        "--proxy-headers",
        "gtw_site.asgi:application",
    ]
    # Connection reuse (see DATABASES in settings): a pool per Daphne process, one kept
    # connection per task worker.
    web_env = {"GTW_DB_POOL": os.environ.get("GTW_DB_POOL", "1")}
    task_env = {"GTW_DB_CONN_MAX_AGE": os.environ.get("GTW_DB_CONN_MAX_AGE", "300")}
    for i in range(args.web_workers):
        spawn(f"web-{i + 1}", daphne_cmd, web_env)
    spawn("tasks", [sys.executable, str(BASE_DIR / "manage.py"), "qcluster"], task_env)
    # Memory jobs (embedding, summaries) get their own cluster and a lower CPU priority, so
    # turns never queue behind them.
    spawn(
        "memory-tasks",
        [sys.executable, str(BASE_DIR / "manage.py"), "qcluster"],
        {"Q_CLUSTER_NAME": "gtw-memory", **task_env},
        nice=10,
    )

    from narrative.turns import resume_all_pending

    resumed = resume_all_pending()
    if resumed:
        out.write(f"  re-running unanswered turns in {resumed} session(s)\n")
    url = f"http://{'localhost' if args.host in ('127.0.0.1', '0.0.0.0') else args.host}:{args.port}/"  # noqa: S104
    if not _wait_http(args.port, timeout=20):
        out.write("gtw: the web server did not answer within 20 s; see the messages above.\n")
    database = f"embedded PostgreSQL in {data_dir / 'pg'}" if settings.EMBEDDED_POSTGRES else "DATABASE_URL"
    out.write(
        f"\n  Galactic Tale Weaver is up at {url}  (ready in {time.monotonic() - started:.1f} s)\n"
        f"  database: {database}"
        f" · redis: {'embedded' if settings.EMBEDDED_REDIS else 'REDIS_URL'}"
        f" · web workers: {args.web_workers}\n  Press Ctrl-C to stop.\n\n"
    )
    out.flush()

    try:
        _supervise(children, spawn, data_dir, settings, lambda: stopping, out)
    finally:
        out.write("\ngtw: stopping…\n")
        for _, _, proc, _, _ in children:
            # Only the main process: django-q2's cluster stops its own workers, and hangs if
            # they all get SIGTERM at once. The group is SIGKILLed below if it won't stop.
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for _, _, proc, _, _ in children:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        sock.close()
        out.write("gtw: stopped. Your data is kept in " + str(data_dir) + "\n")
    return 0


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


def _supervise(children, spawn, data_dir, settings, stopping, out) -> None:
    from gtw_site import embedded

    while not stopping():
        time.sleep(0.5)
        if settings.EMBEDDED_POSTGRES:
            with contextlib.suppress(Exception):
                if embedded.restart_postgres_if_down(data_dir):
                    out.write("gtw: PostgreSQL had stopped; restarted it.\n")
        if settings.EMBEDDED_REDIS:
            with contextlib.suppress(Exception):
                if embedded.restart_redis_if_down(data_dir):
                    out.write("gtw: Redis had stopped; restarted it.\n")
        for i, (name, cmd, proc, extra_env, nice) in enumerate(list(children)):
            if proc.poll() is not None and not stopping():
                out.write(f"gtw: {name} exited with {proc.returncode}; restarting it.\n")
                children.pop(i)
                spawn(name, cmd, extra_env, nice)
                break


def _wait_http(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n")
            if s.recv(12).startswith(b"HTTP/1."):
                return True
        time.sleep(0.2)
    return False


def cmd_doctor(args) -> int:
    _setup_django()
    from django.conf import settings
    from django.db import connection

    from narrative.llm.registry import resolve_provider_name

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
        name = resolve_provider_name(role)
        model = settings.GTW_LLM.get(name, {}).get("model", "procedural")
        line(True, role, f"{name} ({model})")
    sys.stdout.write("all good\n" if ok else "some checks failed\n")
    return 0 if ok else 1


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
    up.add_argument("--port", type=int, default=int(os.environ.get("GTW_PORT", "8000")))
    up.add_argument("--host", default=os.environ.get("GTW_HOST", "127.0.0.1"))
    up.add_argument("--web-workers", type=int, default=int(os.environ.get("GTW_WEB_WORKERS", "1")))
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
    bench.add_argument("which", choices=["turn", "memory", "mission", "fanout", "stage"])
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
    if getattr(args, "web_workers", 1) < 1:
        parser.error("--web-workers must be at least 1")
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
