"""Absolute links the site hands out (not reads: the selectors module is for those)."""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse


def invite_url(request, code: str) -> str:
    """The link a GM sends: on GTW_SITE_URL when set (behind a proxy the request's own host and
    scheme are the internal ones), else on the host the GM is using."""
    base = (settings.SITE_URL or request.build_absolute_uri("/")).rstrip("/")
    return base + reverse("invite_accept", args=[code])
