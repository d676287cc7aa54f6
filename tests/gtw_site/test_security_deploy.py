"""Issue 11, deploy checks: `manage.py check --deploy` warned about HSTS, the HTTPS redirect and
the Secure session and CSRF cookies, with no setting to answer them. The README's production
settings now make the deploy checks clean; GTW_PROXY_HOPS sets how far X-Forwarded-For is
trusted (issue 11 hole 4) and GTW_EMAIL_HOST turns on SMTP (hole 11).

Each case starts a fresh interpreter with the real settings module and the given environment
(settings are read once, at import)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = """
import json, django
from django.conf import settings
from django.core import checks
django.setup()
found = checks.run_checks(include_deployment_checks=True, tags=[checks.Tags.security])
print(json.dumps({
    "issues": sorted(m.id for m in found if m.level >= checks.WARNING),
    "proxy_count": settings.ALLAUTH_TRUSTED_PROXY_COUNT,
    "proxy_ssl_header": getattr(settings, "SECURE_PROXY_SSL_HEADER", None),
    "email_backend": settings.EMAIL_BACKEND,
    "email": [settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_USE_TLS, settings.EMAIL_USE_SSL],
}))
"""
FOUR = {"security.W004", "security.W008", "security.W012", "security.W016"}
PRODUCTION = {
    "GTW_ALLOWED_HOSTS": "game.example.com",
    "GTW_CSRF_TRUSTED_ORIGINS": "https://game.example.com",
    "GTW_PROXY_HOPS": "1",
    "GTW_HTTPS": "1",
}


def configured(**env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("GTW_", "DJANGO_"))}
    base.update(
        DJANGO_SETTINGS_MODULE="gtw_site.settings",
        GTW_DATA_DIR=str(settings.DATA_DIR),  # the tests' embedded servers, already running
        GTW_SECRET_KEY="k" * 20 + "-a-long-random-looking-key-for-the-deploy-check-only-9f8e7d6c",
        **env,
    )
    return subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, env=base, capture_output=True, text=True, timeout=120
    )


def report(**env: str) -> dict:
    done = configured(**env)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def laptop() -> dict:
    """No environment at all: what `gtw up` on a laptop runs with."""
    return report()


def test_the_documented_production_settings_pass_the_deploy_checks():
    """issue 11: the four `check --deploy` warnings (HSTS, SSL redirect, Secure session and CSRF
    cookies) had no setting to resolve them. With the README's production settings there are
    none of them; with GTW_HSTS_PRELOAD (for a domain that will be preloaded) nothing at all."""
    production = report(**PRODUCTION)
    assert not FOUR & set(production["issues"])
    assert set(production["issues"]) <= {"security.W021"}  # HSTS preload: the operator's choice
    assert report(**PRODUCTION, GTW_HSTS_PRELOAD="1")["issues"] == []


def test_a_laptop_setup_still_warns_as_django_does(laptop):
    """The defaults are for plain HTTP on loopback, so the deploy checks still point at them."""
    assert set(laptop["issues"]) >= FOUR


def test_proxy_hops_decide_how_far_forwarded_headers_are_trusted(laptop):
    """issue 11 hole 4: with no proxy, X-Forwarded-For and X-Forwarded-Proto are never trusted;
    GTW_PROXY_HOPS=N trusts N entries of X-Forwarded-For and the proxy's X-Forwarded-Proto."""
    assert laptop["proxy_count"] == 0 and laptop["proxy_ssl_header"] is None
    behind = report(GTW_PROXY_HOPS="2")
    assert behind["proxy_count"] == 2 and behind["proxy_ssl_header"] == ["HTTP_X_FORWARDED_PROTO", "https"]


def test_https_without_a_trusted_proxy_is_refused_with_one_clear_message():
    done = configured(GTW_HTTPS="1")
    assert done.returncode != 0
    assert "GTW_HTTPS=1 needs GTW_PROXY_HOPS" in done.stderr
    done = configured(GTW_PROXY_HOPS="-1")
    assert "GTW_PROXY_HOPS must be 0 or more" in done.stderr


def test_an_email_host_switches_mail_to_smtp(laptop):
    """issue 11 hole 11: the README's GTW_EMAIL_* settings reach Django's SMTP backend."""
    assert laptop["email_backend"] == "django.core.mail.backends.console.EmailBackend"
    smtp = report(GTW_EMAIL_HOST="smtp.example.com")
    assert smtp["email_backend"] == "django.core.mail.backends.smtp.EmailBackend"
    assert smtp["email"] == ["smtp.example.com", 587, True, False]
    assert report(GTW_EMAIL_HOST="smtp.example.com", GTW_EMAIL_SSL="1")["email"] == [
        "smtp.example.com",
        465,
        False,
        True,
    ]
