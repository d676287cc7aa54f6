"""Installed story decks. Only decks whose Ed25519 signature verifies against a trusted key get
here (narrative/decks.py checks; narrative/services.py installs); the signed document is kept
as it was signed, so it can be re-verified at any time."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class StoryDeck(models.Model):
    slug = models.SlugField(max_length=80, unique=True)
    name = models.CharField(max_length=120)
    version = models.CharField(max_length=40)
    document = models.JSONField()  # {"deck": {...}, "signature": {...}}
    key_id = models.CharField(max_length=64)
    sha256 = models.CharField(max_length=64)
    pack = models.ForeignKey(
        "campaigns.ContentPack", null=True, blank=True, on_delete=models.SET_NULL, related_name="decks"
    )
    installed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    installed_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self):
        return f"{self.name} {self.version}"

    @property
    def cards(self) -> list[dict]:
        return self.document.get("deck", {}).get("cards", [])
