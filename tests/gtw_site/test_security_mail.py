"""Issue 11 hole 11: with GTW_DEBUG off and no mail server, password-reset links went to the log
(the console mail backend), so whoever read the log could take over any account. Now reset is
off until mail is set up: the page says no mail will arrive, no link is ever written, and
`gtw up` / `gtw doctor` print one warning line saying how to fix it."""

from __future__ import annotations

import io
from argparse import Namespace

import pytest
from django.core import mail
from django.test import Client, override_settings

from gtw_site.cli import doctor, up
from tests.gtw_site.test_security_client_ip import allauth_limits_reset

pytestmark = pytest.mark.django_db

CONSOLE = "django.core.mail.backends.console.EmailBackend"
mail_to_the_log = override_settings(DEBUG=False, EMAIL_BACKEND=CONSOLE)


@pytest.fixture(autouse=True)
def fresh_limits():
    allauth_limits_reset()
    yield
    allauth_limits_reset()


@mail_to_the_log
def test_the_reset_page_says_no_mail_will_arrive_and_offers_no_form(outsider):
    """issue 11 hole 11: the reset page offered the form as if a mail would come."""
    page = Client().get("/accounts/password/reset/").content.decode()
    assert "no email will arrive" in page
    assert 'name="email"' not in page


@mail_to_the_log
def test_no_reset_link_is_ever_written_to_the_log(player, capsys, caplog):
    """issue 11 hole 11: a reset for any account printed its link to stdout."""
    response = Client().post("/accounts/password/reset/", {"email": player.email})
    assert response.status_code == 503
    assert "no email will arrive" in response.content.decode()
    out = capsys.readouterr()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for text in (out.out, out.err, logged):
        assert "/password/reset/key/" not in text
    assert not mail.outbox


@mail_to_the_log
def test_a_reset_that_gets_past_the_page_sends_nothing_either(player, capsys):
    """The adapter is the guarantee: any path to allauth's reset mail sends no link."""
    from allauth.account.adapter import get_adapter

    get_adapter().send_password_reset_mail(
        player, player.email, {"password_reset_url": "/password/reset/key/x/"}
    )
    assert "/password/reset/key/" not in capsys.readouterr().out


def test_with_a_mail_server_reset_mails_the_link(player):
    """The test settings' locmem backend stands in for SMTP: the form works, the link is mailed."""
    page = Client().get("/accounts/password/reset/").content.decode()
    assert 'name="email"' in page and "no email will arrive" not in page
    response = Client().post("/accounts/password/reset/", {"email": player.email})
    assert response.status_code == 302
    assert len(mail.outbox) == 1 and "/password/reset/key/" in mail.outbox[0].body


@override_settings(DEBUG=True, EMAIL_BACKEND=CONSOLE)
def test_in_debug_the_console_backend_still_gets_the_mail(player, capsys):
    """Developing with GTW_DEBUG=1, reading the reset link in the terminal is the point."""
    Client().post("/accounts/password/reset/", {"email": player.email})
    assert "/password/reset/key/" in capsys.readouterr().out


def test_doctor_warns_in_one_line_how_to_fix_it(capsys):
    """issue 11 hole 11: `gtw doctor` said "all good" with reset links going to the log."""
    with mail_to_the_log:
        assert doctor.cmd_doctor(Namespace()) == 0  # a warning, not a failure
    out = capsys.readouterr().out
    warnings = [line for line in out.splitlines() if "WARNING" in line]
    assert len(warnings) == 1 and "GTW_EMAIL_HOST" in warnings[0] and "password reset is off" in warnings[0]
    assert out.splitlines()[-1] == "all good, but see the warnings"
    doctor.cmd_doctor(Namespace())  # the test settings mail through locmem: nothing to warn about
    assert "WARNING" not in capsys.readouterr().out


def test_gtw_up_warns_in_its_banner(monkeypatch, tmp_path):
    """issue 11 hole 11: `gtw up`'s start-up banner carries the same line."""
    monkeypatch.setattr(up, "_resume_turns", lambda out: 0)
    monkeypatch.setattr(up, "_service_keeper", lambda *a: lambda: None)
    monkeypatch.setattr(up, "_wait_http", lambda *a, **k: True)
    monkeypatch.setattr(up, "supervise", lambda *a, **k: None)

    def banner() -> str:
        from django.conf import settings

        sup = Namespace(out=io.StringIO(), check=lambda: [])
        args = Namespace(host="127.0.0.1", web_workers=1)
        up._serve(sup, args, 8000, tmp_path, settings, 0.0, lambda: False)
        return sup.out.getvalue()

    with mail_to_the_log:
        warned = banner()
    assert "WARNING: no mail server is set, so password reset is off" in warned
    assert "GTW_EMAIL_HOST" in warned
    assert "WARNING" not in banner()
