"""LAN mode (issue 18, part 7): `gtw up` on an address other machines can reach refuses to start
with settings that are only safe on one machine, says exactly what to set, and starts anyway on
a trusted LAN; a loopback bind is never checked. The check function is called directly: no
server is started."""

from __future__ import annotations

import io
from types import SimpleNamespace

import pytest

from gtw_site.cli import main
from gtw_site.cli.up import is_loopback, lan_check, lan_problems, trusted_lan

CONSOLE = "django.core.mail.backends.console.EmailBackend"
SMTP = "django.core.mail.backends.smtp.EmailBackend"
GOOD_KEY = "k" * 50


def config(**changes):
    safe = {
        "DEBUG": False,
        "EMAIL_BACKEND": SMTP,
        "ALLOWED_HOSTS": ["localhost", "127.0.0.1", "gtw.lan"],
        "SECRET_KEY": GOOD_KEY,
    }
    return SimpleNamespace(**{**safe, **changes})


INSECURE = config(
    DEBUG=True, EMAIL_BACKEND=CONSOLE, ALLOWED_HOSTS=["localhost", "127.0.0.1", "[::1]"], SECRET_KEY="dev"
)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost", "LOCALHOST"])
def test_a_loopback_bind_is_never_checked(host):
    assert is_loopback(host)
    assert lan_problems(host, INSECURE) == []
    assert lan_check(host, INSECURE) == []  # no SystemExit


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "", "192.168.1.20", "10.0.0.5", "gtw.lan"])  # noqa: S104
def test_a_network_bind_with_insecure_settings_is_refused_with_every_fix(host, capsys):
    assert not is_loopback(host)
    with pytest.raises(SystemExit) as exit_:
        lan_check(host, INSECURE)
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert "refusing to serve" in err
    for fix in (
        "GTW_DEBUG",
        "GTW_EMAIL_HOST",
        "GTW_ALLOWED_HOSTS",
        "GTW_SECRET_KEY",
        "--trusted-lan",
        "GTW_TRUSTED_LAN=1",
    ):
        assert fix in err, fix


@pytest.mark.parametrize(
    ("change", "names"),
    [
        ({"DEBUG": True}, "GTW_DEBUG"),
        ({"EMAIL_BACKEND": CONSOLE}, "GTW_EMAIL_HOST"),
        ({"ALLOWED_HOSTS": ["*"]}, "GTW_ALLOWED_HOSTS"),
        ({"ALLOWED_HOSTS": ["gtw.lan", "*"]}, "GTW_ALLOWED_HOSTS"),
        ({"ALLOWED_HOSTS": ["localhost", "127.0.0.1", "[::1]"]}, "GTW_ALLOWED_HOSTS"),
        ({"SECRET_KEY": "django-insecure-" + "x" * 40}, "GTW_SECRET_KEY"),
        ({"SECRET_KEY": "short"}, "GTW_SECRET_KEY"),
        ({"SECRET_KEY": ""}, "GTW_SECRET_KEY"),
    ],
)
def test_each_unsafe_setting_alone_is_named(change, names):
    problems = lan_problems("0.0.0.0", config(**change))  # noqa: S104
    assert len(problems) == 1
    assert names in problems[0]


def test_safe_settings_start_on_the_network():
    assert lan_problems("0.0.0.0", config()) == []  # noqa: S104
    # A bind to one LAN address: settings already allow that address (gtw_site.settings).
    assert lan_problems("192.168.1.20", config(ALLOWED_HOSTS=["localhost", "192.168.1.20"])) == []


def test_a_trusted_lan_starts_anyway_and_says_with_what():
    out = io.StringIO()
    problems = lan_check("0.0.0.0", INSECURE, trusted=True, out=out)  # noqa: S104
    assert len(problems) == 4
    assert "trusted LAN" in out.getvalue() and "GTW_DEBUG" in out.getvalue()


@pytest.mark.parametrize(
    ("flag", "env", "trusted"),
    [
        (True, {}, True),
        (False, {"GTW_TRUSTED_LAN": "1"}, True),
        (False, {"GTW_TRUSTED_LAN": "yes"}, True),
        (False, {"GTW_TRUSTED_LAN": "0"}, False),
        (False, {"GTW_TRUSTED_LAN": ""}, False),
        (False, {}, False),
    ],
)
def test_trust_comes_from_the_flag_or_the_environment(flag, env, trusted):
    assert trusted_lan(flag, env) is trusted


def test_gtw_up_has_the_trusted_lan_flag(monkeypatch):
    parsed = []
    monkeypatch.setattr("gtw_site.cli._run", lambda args: parsed.append(args) or 0)
    main(["up", "--host", "0.0.0.0", "--trusted-lan"])  # noqa: S104
    main(["up"])
    assert [args.trusted_lan for args in parsed] == [True, False]


def test_the_real_settings_are_checked(settings, capsys):
    """With the project's own settings object: the test settings (console mail) are refused."""
    settings.EMAIL_BACKEND = CONSOLE
    with pytest.raises(SystemExit):
        lan_check("0.0.0.0", settings)  # noqa: S104
    assert "GTW_EMAIL_HOST" in capsys.readouterr().err
