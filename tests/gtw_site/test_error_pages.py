"""A wrong address or a refused request is a page of the site (its header, its words, a way back),
not the server's bare "Not Found" — signed in or not."""

from __future__ import annotations

import pytest
from django.test import Client


@pytest.mark.django_db
@pytest.mark.parametrize("signed_in", [False, True])
def test_an_unknown_address_is_a_styled_404(signed_in, player_client):
    client = player_client if signed_in else Client()
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    page = response.content.decode()
    assert "There is no page here" in page and "Back to your campaigns" in page
    assert "Galactic Tale Weaver" in page  # the site's own header


@pytest.mark.django_db
def test_the_500_page_needs_no_context_and_says_nothing_is_lost():
    from django.template import loader

    page = loader.get_template("500.html").render({})
    assert "Something went wrong" in page and "Nothing you sent is lost" in page
