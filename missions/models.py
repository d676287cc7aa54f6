"""Installed missions. The DSL compiler (missions/dsl, pure) does the work; this stores its output.

A row is one compiled version of a mission, immutable: installing changed source adds a row
with a new content hash, and sessions refer to the hash they started with, so editing a
mission never changes a game in progress.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Mission(models.Model):
    slug = models.SlugField(max_length=80)
    title = models.CharField(max_length=200)
    biome = models.CharField(max_length=60)
    summary = models.TextField(blank=True)
    source = models.TextField()
    filename = models.CharField(max_length=200)
    ast = models.JSONField()
    content_hash = models.CharField(max_length=64)
    pack = models.ForeignKey(
        "campaigns.ContentPack", null=True, blank=True, on_delete=models.SET_NULL, related_name="missions"
    )
    installed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    installed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug", "-installed_at"]
        constraints = [
            models.UniqueConstraint(fields=["slug", "content_hash"], name="mission_version_unique")
        ]

    def __str__(self):
        return f"{self.title} ({self.content_hash[:8]})"
