"""The invite page (issue 13, part 6): it names the campaign and its GM, checks the code before it
offers Accept (unknown, used and expired codes each get a page of their own and accept nothing),
and the invite survives signing in and signing up."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from campaigns import selectors, services
from campaigns.models import Invite, Membership

pytestmark = pytest.mark.django_db


@pytest.fixture
def invite(campaign, gm):
    return services.invite_create(membership=selectors.membership_get(viewer=gm, campaign_id=campaign.pk))


def _url(code: str) -> str:
    return reverse("invite_accept", args=[code])


def _text(response) -> str:
    return response.content.decode()


def test_open_invite_names_campaign_and_gm_for_outsider(invite, outsider_client, gm):
    """issue 13 part 6: the invite page didn't name the campaign or the GM."""
    response = outsider_client.get(_url(invite.code))
    assert response.status_code == 200
    body = _text(response)
    assert "You're invited to Vesper Run" in body
    assert gm.username in body
    assert "Accept invite" in body


def test_outsider_accepts_open_invite(invite, outsider_client, outsider, campaign):
    response = outsider_client.post(_url(invite.code))
    assert response.status_code == 302
    assert response["Location"] == reverse("campaign_detail", args=[campaign.pk])
    assert Membership.objects.get(campaign=campaign, user=outsider).role == Membership.Role.PLAYER


def test_unknown_code_is_404_and_names_no_campaign(invite, outsider_client, gm):
    """issue 13 part 6: a made-up code showed "You're invited — Accept" and failed after the click."""
    response = outsider_client.get(_url("made-up-code"))
    assert response.status_code == 404
    body = _text(response)
    assert "This invite link doesn't work" in body
    assert "Accept invite" not in body
    assert "Vesper Run" not in body and gm.username not in body


def test_used_code_is_410_before_any_click(invite, outsider, outsider_client, content):
    """issue 13 part 6: a used code showed "You're invited — Accept" and failed after the click."""
    from tests.conftest import _user

    services.invite_accept(code=invite.code, user=_user("first"))
    response = outsider_client.get(_url(invite.code))
    assert response.status_code == 410
    body = _text(response)
    assert "already been used" in body and "Vesper Run" in body
    assert "Accept invite" not in body
    # A POST anyway (an old tab) accepts nothing.
    assert outsider_client.post(_url(invite.code)).status_code == 410
    assert not Membership.objects.filter(campaign=invite.campaign, user=outsider).exists()


def test_expired_code_is_410_before_any_click(invite, outsider, outsider_client):
    """issue 13 part 6: an expired code showed "You're invited — Accept" and failed after the click."""
    Invite.objects.filter(pk=invite.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    response = outsider_client.get(_url(invite.code))
    assert response.status_code == 410
    body = _text(response)
    assert "This invite has expired" in body
    assert "Accept invite" not in body
    assert outsider_client.post(_url(invite.code)).status_code == 410
    assert not Membership.objects.filter(campaign=invite.campaign, user=outsider).exists()
    assert Invite.objects.get(pk=invite.pk).used_at is None


def test_deleted_invite_reads_as_unknown(invite, outsider, outsider_client):
    """A withdrawn (deleted) invite is simply unknown: 404, and nothing is accepted."""
    code = invite.code
    invite.delete()
    assert outsider_client.get(_url(code)).status_code == 404
    assert outsider_client.post(_url(code)).status_code == 404
    assert not Membership.objects.filter(user=outsider).exists()


@pytest.mark.parametrize("who", ["gm", "player"])
def test_member_is_told_they_are_already_in(invite, campaign, request, who):
    """issue 13 part 6: a member opening an invite got an Accept button that ended in a 409."""
    client = request.getfixturevalue(f"{who}_client")
    response = client.get(_url(invite.code))
    assert response.status_code == 200
    body = _text(response)
    assert "You're already in Vesper Run" in body
    assert reverse("campaign_detail", args=[campaign.pk]) in body
    assert "Accept invite" not in body
    # Posting anyway changes nothing and leaves the invite for the person it was meant for.
    client.post(_url(invite.code))
    assert Invite.objects.get(pk=invite.pk).used_at is None


@pytest.mark.parametrize("code", ["bad%00code", "x" * 41, "x" * 5000])
def test_nul_or_overlong_code_is_4xx(invite, outsider_client, outsider, code):
    for method in (outsider_client.get, outsider_client.post):
        response = method(f"/invite/{code}/")
        assert 400 <= response.status_code < 500
    assert not Membership.objects.filter(user=outsider).exists()


def test_logged_out_visitor_gets_sign_in_and_sign_up_links_back_to_invite(invite):
    """issue 13 part 6: a logged-out invitee was sent to the login page and lost the invite on sign-up."""
    client = Client()
    response = client.get(_url(invite.code))
    assert response.status_code == 200
    body = _text(response)
    assert "You're invited to Vesper Run" in body
    back = f"?next={_url(invite.code)}"
    assert reverse("account_login") + back in body
    assert reverse("account_signup") + back in body
    assert "Accept invite" not in body


def test_logged_out_post_goes_to_sign_in_and_accepts_nothing(invite):
    response = Client().post(_url(invite.code))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))
    assert Invite.objects.get(pk=invite.pk).used_at is None


def test_logged_out_visitor_sees_dead_code_page_too(invite):
    Invite.objects.filter(pk=invite.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    client = Client()
    assert client.get(_url(invite.code)).status_code == 410
    assert client.get(_url("nope")).status_code == 404


def test_sign_in_from_invite_lands_back_on_invite(invite, outsider, campaign):
    client = Client()
    response = client.post(
        reverse("account_login") + f"?next={_url(invite.code)}",
        {"login": outsider.email, "password": "correct horse battery", "next": _url(invite.code)},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == _url(invite.code)
    assert "Accept invite" in _text(response)
    client.post(_url(invite.code))
    assert Membership.objects.filter(campaign=campaign, user=outsider).exists()


def test_sign_up_from_invite_lands_back_on_invite_and_accepts(invite, campaign):
    """issue 13 part 6: an invitee who signed up (rather than logged in) lost the invite and
    landed on an empty dashboard."""
    from django.contrib.auth import get_user_model

    client = Client()
    page = client.get(_url(invite.code))
    assert reverse("account_signup") + f"?next={_url(invite.code)}" in _text(page)
    signup = client.get(reverse("account_signup") + f"?next={_url(invite.code)}")
    assert signup.status_code == 200
    assert f'value="{_url(invite.code)}"' in _text(signup)  # allauth's hidden next field
    response = client.post(
        reverse("account_signup") + f"?next={_url(invite.code)}",
        {
            "email": "newcomer@example.com",
            "username": "newcomer",
            "password1": "a long new passphrase 42",
            "password2": "a long new passphrase 42",
            "next": _url(invite.code),
        },
        follow=True,
    )
    assert response.redirect_chain, _text(response)
    assert response.redirect_chain[-1][0] == _url(invite.code)
    assert "You're invited to Vesper Run" in _text(response)
    assert "Accept invite" in _text(response)
    accepted = client.post(_url(invite.code), follow=True)
    assert accepted.redirect_chain[-1][0] == reverse("campaign_detail", args=[campaign.pk])
    newcomer = get_user_model().objects.get(username="newcomer")
    assert Membership.objects.get(campaign=campaign, user=newcomer).role == Membership.Role.PLAYER


def test_campaign_page_invite_link_has_copy_button(campaign, gm_client):
    response = gm_client.post(reverse("invite_create", args=[campaign.pk]), {"role": "player"})
    body = _text(response)
    assert 'id="invite-url"' in body
    assert 'data-copy="invite-url"' in body
    assert "onclick" not in body and "<script" not in body
