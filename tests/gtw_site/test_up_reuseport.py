"""`gtw up --web-workers N` listens with one SO_REUSEPORT socket per web worker (issue 20), so
the kernel spreads connections over the Daphne processes instead of whichever wakes first."""

from __future__ import annotations

import socket
from collections import Counter

import pytest

from gtw_site.cli.up import bind_ports

pytestmark = pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="no SO_REUSEPORT here")


def test_one_listening_socket_per_worker_on_one_port_and_connections_spread_over_them():
    socks = bind_ports("127.0.0.1", 0, 2)
    try:
        assert len({id(s) for s in socks}) == 2
        port = socks[0].getsockname()[1]
        assert {s.getsockname()[1] for s in socks} == {port}
        assert all(s.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) for s in socks)
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(200)]
        accepted: Counter[int] = Counter()
        for i, s in enumerate(socks):
            s.setblocking(False)
            while True:
                try:
                    conn, _ = s.accept()
                except BlockingIOError:
                    break
                accepted[i] += 1
                conn.close()
        for c in clients:
            c.close()
        assert sum(accepted.values()) == 200
        # A hash of each connection picks the socket: 200 land near 100/100 (< 50 is ~1e-13).
        assert min(accepted[0], accepted[1]) >= 50, accepted
    finally:
        for s in socks:
            s.close()


def test_a_port_another_server_listens_on_is_refused_not_shared(capsys):
    """SO_REUSEPORT alone would let a second `gtw up` of the same user on the same port take
    half the connections silently."""
    socks = bind_ports("127.0.0.1", 0, 2)
    try:
        with pytest.raises(SystemExit):
            bind_ports("127.0.0.1", socks[0].getsockname()[1], 2)
        assert "is not available" in capsys.readouterr().err
    finally:
        for s in socks:
            s.close()


def test_one_worker_keeps_one_plain_socket():
    [sock] = bind_ports("127.0.0.1", 0, 1)
    try:
        assert not sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)
    finally:
        sock.close()
