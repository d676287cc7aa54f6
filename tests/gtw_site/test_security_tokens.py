"""Issue 11 hole 7: an API token could mint tokens, and the child survived the parent's
revocation. New tokens now need a signed-in session."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from gtw_site.models import ApiToken

pytestmark = pytest.mark.django_db


def create_token(client: Client, **headers):
    return client.post(
        "/api/tokens", json.dumps({"name": "child"}), content_type="application/json", **headers
    )


def bearer(raw: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


@pytest.mark.parametrize("persona", ["gm", "player", "outsider"])
def test_a_token_cannot_create_tokens(request, persona):
    """issue 11 hole 7: `POST /api/tokens` with a bearer token answered 201 and a new token, which
    outlived the revocation of the one that made it. Now: 403, a sentence saying how, no token."""
    user = request.getfixturevalue(persona)
    parent, raw = ApiToken.issue(user=user, name="script")
    response = create_token(Client(), **bearer(raw))
    assert response.status_code == 403
    body = response.json()
    assert body["error"] == "forbidden"
    assert "can't create tokens" in body["detail"] and "Sign in" in body["detail"]
    assert list(ApiToken.objects.filter(user=user)) == [parent]


def test_a_token_cannot_create_tokens_even_alongside_a_session(player):
    """A request that carries both is a token request: the token is what authenticates it."""
    _, raw = ApiToken.issue(user=player, name="script")
    client = Client()
    client.force_login(player)
    assert create_token(client, **bearer(raw)).status_code == 403
    assert ApiToken.objects.filter(user=player).count() == 1


def test_a_signed_in_session_creates_a_token_that_works(player):
    client = Client()
    client.force_login(player)
    response = create_token(client)
    assert response.status_code == 201
    raw = response.json()["token"]
    assert ApiToken.objects.get(user=player).name == "child"
    assert Client().get("/api/campaigns", **bearer(raw)).status_code == 200


def test_nobody_signed_in_gets_a_401():
    assert create_token(Client()).status_code == 401
    assert create_token(Client(), **bearer("gtw_not-a-real-token")).status_code == 401
    assert not ApiToken.objects.exists()
