"""Issue 11 hole 4: client addresses could be spoofed with X-Forwarded-For, so the login limits
(allauth, keyed on the client's address) could be dodged and a victim's address locked out."""

from __future__ import annotations

import http.client
import itertools
import os
import socket
import subprocess
import time
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

import pytest
from allauth.account.adapter import get_adapter
from django.test import Client, RequestFactory, override_settings

from gtw_site.cli import up

pytestmark = pytest.mark.django_db

_addresses = itertools.count(1)
ROOT = Path(__file__).resolve().parents[2]


def allauth_limits_reset() -> None:
    """Forget allauth's rate-limit counters (they live in Redis and outlast a test)."""
    from django.conf import settings
    from django.core.cache import cache

    client = cache._cache.get_client(write=True)
    # This worker's keys only (test_settings gives each xdist worker its own cache prefix).
    for key in client.scan_iter(match=f"{settings.CACHES['default']['KEY_PREFIX']}:*allauth:rl:*"):
        client.delete(key)


@pytest.fixture(autouse=True)
def fresh_limits():
    allauth_limits_reset()
    yield
    allauth_limits_reset()


def peer() -> str:
    """A fresh documentation address (RFC 5737) per call, so tests never share a counter."""
    n = next(_addresses)
    return f"198.51.{100 + n // 250}.{n % 250 + 1}"


def client_ip(remote_addr: str, forwarded: str | None = None) -> str:
    headers = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded is not None else {}
    request = RequestFactory().post("/accounts/login/", REMOTE_ADDR=remote_addr, **headers)
    return get_adapter(request).get_client_ip(request)


def fail_login(client: Client, n: int, *, remote_addr: str, forwarded) -> None:
    """n failed logins for n different (unknown) accounts: only the per-address limit counts them."""
    for i in range(n):
        client.post(
            "/accounts/login/",
            {"login": f"nobody{i}-{remote_addr}@example.com", "password": "wrong"},
            REMOTE_ADDR=remote_addr,
            HTTP_X_FORWARDED_FOR=forwarded(i),
        )


def signs_in(user, *, remote_addr: str, forwarded: str | None = None) -> bool:
    client = Client()
    headers = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded is not None else {}
    client.post(
        "/accounts/login/",
        {"login": user.email, "password": "correct horse battery"},
        REMOTE_ADDR=remote_addr,
        **headers,
    )
    return client.session.get("_auth_user_id") == str(user.pk)


def test_gtw_up_never_lets_daphne_take_the_address_from_the_header():
    """issue 11 hole 4: `gtw up` ran Daphne with --proxy-headers, which makes the left-most
    X-Forwarded-For entry — written by the client — the request's REMOTE_ADDR."""
    command = up.daphne_command(7)
    assert "--proxy-headers" not in command
    assert command[-1] == "gtw_site.asgi:application" and "--fd" in command


def test_without_proxies_the_header_never_changes_the_address_the_limits_see():
    """issue 11 hole 4: with GTW_PROXY_HOPS=0 (the default) X-Forwarded-For is ignored."""
    assert client_ip("203.0.113.9", "192.0.2.1") == "203.0.113.9"
    assert client_ip("203.0.113.9", "192.0.2.1, 192.0.2.2") == "203.0.113.9"


@override_settings(ALLAUTH_TRUSTED_PROXY_COUNT=1)
def test_one_trusted_proxy_gives_the_address_it_saw_not_what_the_client_wrote():
    """issue 11 hole 4: behind one proxy, the right-most entry is what our proxy saw; whatever
    the client prepended is never used."""
    assert client_ip("10.0.0.2", "192.0.2.1, 203.0.113.9") == "203.0.113.9"
    assert client_ip("10.0.0.2", "203.0.113.9") == "203.0.113.9"
    assert client_ip("10.0.0.2") == "10.0.0.2"  # no header: the peer


@override_settings(ALLAUTH_TRUSTED_PROXY_COUNT=2)
def test_two_trusted_proxies_trust_two_entries_and_a_short_chain_is_no_500():
    """issue 11 hole 4: two hops trust exactly two entries. A request that skipped a proxy (fewer
    entries than hops) made allauth raise ImproperlyConfigured (a 500); it counts by its peer."""
    assert client_ip("10.0.0.2", "192.0.2.1, 203.0.113.9, 10.0.0.1") == "203.0.113.9"
    assert client_ip("10.0.0.2", "203.0.113.9") == "10.0.0.2"
    response = Client().post(
        "/accounts/login/",
        {"login": "x@example.com", "password": "wrong"},
        REMOTE_ADDR="10.0.0.2",
        HTTP_X_FORWARDED_FOR="192.0.2.77",
    )
    assert response.status_code == 200


def test_a_new_forwarded_for_on_each_try_does_not_dodge_the_login_limit(player):
    """issue 11 hole 4: 25 failed logins with a new X-Forwarded-For each were never throttled.
    Ten failures from one address lock that address out, whatever the header says — even the
    right password of a real player is refused from it."""
    attacker = peer()
    fail_login(Client(), 10, remote_addr=attacker, forwarded=lambda i: f"192.0.2.{i + 1}")
    assert not signs_in(player, remote_addr=attacker, forwarded="192.0.2.200")
    assert signs_in(player, remote_addr=peer())  # the limit is the attacker's address only


def test_claiming_a_victims_address_does_not_lock_the_victim_out(player, outsider):
    """issue 11 hole 4: 25 failed logins claiming a victim's address locked the victim out."""
    victim, attacker = peer(), peer()
    fail_login(Client(), 12, remote_addr=attacker, forwarded=lambda i: victim)
    assert signs_in(player, remote_addr=victim)
    assert not signs_in(outsider, remote_addr=attacker)  # the attacker's own address is locked


@override_settings(ALLAUTH_TRUSTED_PROXY_COUNT=1)
def test_behind_a_proxy_the_limit_follows_the_address_the_proxy_saw(gm, player):
    """issue 11 hole 4: behind one proxy every request's peer is the proxy; the limit counts the
    address the proxy appended, so rotating the client-written part changes nothing and other
    clients of the same proxy are not locked out."""
    proxy, attacker, bystander = "10.0.0.2", peer(), peer()
    fail_login(Client(), 10, remote_addr=proxy, forwarded=lambda i: f"192.0.2.{i + 1}, {attacker}")
    assert not signs_in(gm, remote_addr=proxy, forwarded=f"192.0.2.99, {attacker}")
    assert signs_in(player, remote_addr=proxy, forwarded=bystander)


# ---- through a real Daphne, started as `gtw up` starts its web workers ------------------------


@pytest.fixture
def gtw_daphne(transactional_db, tmp_path):
    """(host, port) of a Daphne run with `gtw up`'s own command line, on the committed test data."""
    from django.db import connection

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    sock.set_inheritable(True)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "gtw_site.test_settings",
        "GTW_DB_NAME": connection.settings_dict["NAME"],
        "PYTHONUNBUFFERED": "1",
    }
    log = tmp_path / "daphne.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            up.daphne_command(sock.fileno()),
            cwd=ROOT,
            env=env,
            pass_fds=(sock.fileno(),),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    address = sock.getsockname()
    try:
        deadline = time.monotonic() + 30
        while request(address, "GET", "/healthz")[0] != 200:
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        yield address
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        sock.close()


def request(address, method, path, body=None, headers=None) -> tuple[int, dict, str]:
    try:
        conn = http.client.HTTPConnection(*address, timeout=10)
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
    except OSError:
        return 0, {}, ""
    cookies = SimpleCookie()
    for value in response.headers.get_all("Set-Cookie") or []:
        cookies.load(value)
    return response.status, {k: m.value for k, m in cookies.items()}, response.read().decode()


def http_login(address, email: str, password: str, forwarded: str) -> bool:
    """Sign in over HTTP as a browser would (CSRF cookie, then the form), claiming `forwarded`
    as X-Forwarded-For. True if a session came back."""
    _, cookies, _ = request(address, "GET", "/accounts/login/")
    csrf = cookies["csrftoken"]
    status, cookies, _ = request(
        address,
        "POST",
        "/accounts/login/",
        body=urlencode({"login": email, "password": password, "csrfmiddlewaretoken": csrf}),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": f"csrftoken={csrf}",
            "X-Forwarded-For": forwarded,
        },
    )
    return status == 302 and "sessionid" in cookies


@pytest.mark.django_db(transaction=True)
def test_through_gtw_ups_daphne_a_new_forwarded_for_per_try_is_still_one_address(gtw_daphne, player):
    """issue 11 hole 4, end to end: against `gtw up`'s Daphne, 25 failed logins each claiming a
    new X-Forwarded-For were never throttled (Daphne made each header the client's address).
    Now the eleventh try from the same connection is refused, right password or not."""
    assert http_login(gtw_daphne, player.email, "correct horse battery", forwarded="192.0.2.250")
    for i in range(10):
        assert not http_login(gtw_daphne, f"nobody{i}@example.com", "wrong", forwarded=f"192.0.2.{i + 1}")
    assert not http_login(gtw_daphne, player.email, "correct horse battery", forwarded="192.0.2.200")
