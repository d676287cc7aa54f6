"""ProviderPrompt in the staff admin: read-only (no add, no change, no delete of a stored prompt
through the admin's forms), staff only — a GM or player who is not staff never reaches it."""

from __future__ import annotations

import pytest
from django.urls import reverse

from gtw_site.models import ProviderCall, ProviderPrompt

CANARY = "PROMPT-CANARY-7731"


@pytest.fixture
def prompt(db):
    call = ProviderCall.objects.create(role="narrator", provider="offline", model="m", latency_ms=1.0)
    return ProviderPrompt.objects.create(
        call=call, session_id=5, turn_seq=2, role="narrator", messages=[{"role": "user", "content": CANARY}]
    )


@pytest.mark.django_db
def test_staff_read_stored_prompts_but_cannot_add_or_change_them(admin_client, prompt):
    listing = admin_client.get(reverse("admin:gtw_site_providerprompt_changelist"))
    assert listing.status_code == 200 and "narrator" in listing.content.decode()
    detail = admin_client.get(reverse("admin:gtw_site_providerprompt_change", args=[prompt.pk]))
    assert detail.status_code == 200 and CANARY in detail.content.decode()
    assert admin_client.get(reverse("admin:gtw_site_providerprompt_add")).status_code == 403
    edit = admin_client.post(
        reverse("admin:gtw_site_providerprompt_change", args=[prompt.pk]), {"role": "summarizer"}
    )
    assert edit.status_code == 403
    assert (
        admin_client.get(reverse("admin:gtw_site_providerprompt_delete", args=[prompt.pk])).status_code == 403
    )
    prompt.refresh_from_db()
    assert prompt.role == "narrator"


@pytest.mark.django_db
def test_gms_and_players_who_are_not_staff_never_reach_it(gm_client, player_client, outsider_client, prompt):
    for client in (gm_client, player_client, outsider_client):
        for url in (
            reverse("admin:gtw_site_providerprompt_changelist"),
            reverse("admin:gtw_site_providerprompt_change", args=[prompt.pk]),
        ):
            response = client.get(url)
            assert response.status_code in (302, 404), url
            assert CANARY not in response.content.decode()
