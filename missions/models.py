"""Installed missions. The DSL compiler (missions/dsl, pure) does the work; this stores its output.

A row is one compiled version of a mission, immutable: installing changed source adds a row
with a new content hash, and sessions refer to the hash they started with, so editing a
mission never changes a game in progress.

A mission installed by a GM in the GM admin (/gm/) is private: `owner` is that GM and `public`
is false, so it is listed and playable only in the campaigns its owner runs (missions.services
filters every lookup by campaign). Pack and staff installs have no owner and are public: the
site-wide catalogue. Staff may publish a private mission (public=True) from /admin/.
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
    # The GM whose private mission this is (None: the site's catalogue, installed by staff or a pack).
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="missions"
    )
    # Site-wide: listed and playable in every campaign. False only for a GM's private mission.
    public = models.BooleanField(default=True)

    class Meta:
        ordering = ["slug", "-installed_at"]
        constraints = [
            # One row per version per owner (the catalogue's rows have no owner; NULLs count as
            # equal): two GMs may install the same source privately without seeing each other's.
            models.UniqueConstraint(
                fields=["slug", "content_hash", "owner"], name="mission_version_unique", nulls_distinct=False
            ),
        ]

    def __str__(self):
        return f"{self.title} ({self.content_hash[:8]})"


class TechTree(models.Model):
    """A content pack's tech tree (missions.techtree validates the document), installed from
    content/packs/<pack>/techtrees/*.json when the pack loads. One row per pack and slug; a
    changed file replaces the document (research progress lives in the event log, by node id)."""

    pack = models.ForeignKey("campaigns.ContentPack", on_delete=models.CASCADE, related_name="tech_trees")
    slug = models.SlugField(max_length=60)
    name = models.CharField(max_length=80)
    kind = models.CharField(max_length=10, choices=[("player", "Player"), ("alliance", "Alliance")])
    document = models.JSONField()
    sha256 = models.CharField(max_length=64)
    installed_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["pack", "kind", "slug"]
        constraints = [models.UniqueConstraint(fields=["pack", "slug"], name="techtree_pack_slug_unique")]

    def __str__(self):
        return f"{self.name} ({self.kind})"


class SimulationSnapshot(models.Model):
    """A snapshot of a campaign's simulated world (issue 19): taken when the simulation starts,
    at every beat boundary's step window, on a GM's step, stop or import. The blob is the
    provider's canonical snapshot (JSON with its own checksum); `state_hash` is SHA-256 of the
    world and its step, the hash the event log records (SimulationStepped carries this row's id).
    Seeds are SHA-256 of campaign:session:beat:step (missions.simulation.procedural.step_seed)."""

    class Reason(models.TextChoices):
        START = "start", "Start"
        BOUNDARY = "boundary", "Beat boundary"
        STEP = "step", "GM step"
        IMPORT = "import", "Import"

    campaign = models.ForeignKey(
        "campaigns.Campaign", on_delete=models.CASCADE, related_name="simulation_snapshots"
    )
    session = models.ForeignKey(
        "campaigns.PlaySession", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    provider = models.CharField(max_length=40)
    reason = models.CharField(max_length=10, choices=Reason.choices)
    seed = models.JSONField(default=dict)  # {campaign_id, session_id, beat_id}: the seed material
    beat_id = models.CharField(max_length=80, blank=True)
    step = models.PositiveIntegerField()
    blob = models.BinaryField()
    state_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["campaign", "-pk"]
        indexes = [models.Index(fields=["campaign", "-id"], name="simsnap_campaign_latest")]

    def __str__(self):
        return f"snapshot {self.pk} of campaign {self.campaign_id} at step {self.step}"
