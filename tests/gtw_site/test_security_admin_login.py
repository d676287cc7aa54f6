"""Issue 11 hole 5: the Django admin's login form had no rate limit (30 wrong superuser passwords
were all answered, then the right one worked while the site login had locked the account). The
admin now signs in through allauth's login, whose limits apply."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from tests.gtw_site.test_security_client_ip import allauth_limits_reset, peer

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True)
def fresh_limits():
    allauth_limits_reset()
    yield
    allauth_limits_reset()


@pytest.fixture
def operator(db):
    """The server's operator: a superuser (the admin is theirs, not a campaign GM's)."""
    from allauth.account.models import EmailAddress

    user = get_user_model().objects.create_superuser(
        username="operator", email="operator@example.com", password=PASSWORD
    )
    EmailAddress.objects.create(user=user, email=user.email, primary=True, verified=True)
    return user


def signed_in_as(client: Client):
    return client.session.get("_auth_user_id")


def login_next(response) -> str:
    """Where a redirect to the site's login page will send the user afterwards."""
    url = urlsplit(response["Location"])
    assert url.path == "/accounts/login/"
    return parse_qs(url.query)["next"][0]


def test_the_admin_login_form_signs_nobody_in(operator):
    """issue 11 hole 5: a POST of the right superuser password to /admin/login/ signed in past
    every limit. Now /admin/login/ never checks a password: it sends you to the site's login."""
    client = Client()
    response = client.post(
        "/admin/login/?next=/admin/",
        {"username": operator.username, "password": PASSWORD, "next": "/admin/"},
        REMOTE_ADDR=peer(),
    )
    assert response.status_code == 302
    assert login_next(response) == "/admin/"
    assert signed_in_as(client) is None
    assert client.get("/admin/").status_code == 302  # still not in


def test_wrong_admin_passwords_lock_the_admin_sign_in_too(operator):
    """issue 11 hole 5: after the site's limit on failed logins for the account, neither the
    site's login nor the admin's form lets the right password in."""
    attacker = peer()
    client = Client()
    for _ in range(5):
        client.post(
            "/accounts/login/?next=/admin/",
            {"login": operator.email, "password": "wrong guess"},
            REMOTE_ADDR=attacker,
        )
    response = client.post(
        "/accounts/login/?next=/admin/", {"login": operator.email, "password": PASSWORD}, REMOTE_ADDR=attacker
    )
    assert "Too many failed login attempts" in response.content.decode()
    client.post("/admin/login/", {"username": operator.username, "password": PASSWORD}, REMOTE_ADDR=attacker)
    assert signed_in_as(client) is None
    assert client.get("/admin/").status_code == 302


def test_the_operator_signs_in_through_the_site_login_and_lands_in_the_admin(operator):
    client = Client()
    to_admin_login = client.get("/admin/")
    assert to_admin_login.status_code == 302 and to_admin_login["Location"].startswith("/admin/login/")
    to_site_login = client.get(to_admin_login["Location"])
    assert login_next(to_site_login) == "/admin/"
    signed_in = client.post(
        to_site_login["Location"], {"login": operator.email, "password": PASSWORD}, REMOTE_ADDR=peer()
    )
    assert signed_in.status_code == 302 and signed_in["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200
    # Already signed in: the admin's login page just lets them through.
    assert client.get("/admin/login/?next=/admin/campaigns/")["Location"] == "/admin/campaigns/"


@pytest.mark.parametrize("persona", ["gm", "player", "outsider"])
def test_signed_in_non_staff_get_a_clear_403_not_a_redirect_loop(request, persona):
    client = Client()
    client.force_login(request.getfixturevalue(persona))
    response = client.get("/admin/login/?next=/admin/")
    assert response.status_code == 403
    assert "staff" in response.content.decode()


def test_an_offsite_next_is_dropped():
    response = Client().get("/admin/login/?next=https://evil.example/steal")
    assert login_next(response) == "/admin/"
