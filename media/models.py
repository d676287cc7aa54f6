"""Media rows: generated pictures (issue 15). Speech (media/speech/) keeps no rows."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Image(models.Model):
    """One picture of a campaign: a request and, once painted, its file.

    `hash` is the SHA-256 of the canonical request (provider, model, prompt, negative, seed, size,
    steps, workflow, painter parts): unique per campaign, so identical requests made at once
    share one row and one job. Files are content-addressed (`path`, by the SHA-256 of the
    bytes), so the same picture in two campaigns is stored once; access goes through the row.
    A row is `ready` only after its file is completely written."""

    class Kind(models.TextChoices):
        SCENE = "scene", "Scene"
        PORTRAIT = "portrait", "Portrait"
        ITEM = "item", "Item"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Generating"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    campaign = models.ForeignKey("campaigns.Campaign", on_delete=models.CASCADE, related_name="images")
    # The session whose sockets hear its progress (None: a gallery request outside play).
    session = models.ForeignKey(
        "campaigns.PlaySession", null=True, blank=True, on_delete=models.SET_NULL, related_name="images"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    hash = models.CharField(max_length=64)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    subject = models.CharField(max_length=500, blank=True)
    # What it shows in the game (a character id, an item slug, a scene slug): portraits and items
    # are found again by it.
    ref = models.CharField(max_length=120, blank=True)
    prompt = models.TextField()
    negative = models.TextField(blank=True)
    style = models.CharField(max_length=300, blank=True)
    parts = models.JSONField(default=dict, blank=True)  # the offline painter's composition
    provider = models.CharField(max_length=40)
    model = models.CharField(max_length=200, blank=True)
    seed = models.BigIntegerField()
    width = models.PositiveSmallIntegerField()
    height = models.PositiveSmallIntegerField()
    steps = models.PositiveSmallIntegerField(default=0)
    path = models.CharField(max_length=300, blank=True)  # storage name; "" until ready
    content_type = models.CharField(max_length=40, blank=True)
    size_bytes = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0)  # percent
    error = models.TextField(blank=True)  # for the GM; players see that it failed, not why
    attempts = models.PositiveSmallIntegerField(default=0)
    rights = models.CharField(max_length=200, blank=True)  # the licence the provider grants
    hidden = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "hash"], name="image_unique_request")]
        indexes = [
            models.Index(fields=["campaign", "kind", "-created_at"], name="image_campaign_kind"),
            models.Index(fields=["status", "started_at"], name="image_status_started"),
        ]

    def __str__(self):
        return f"{self.kind} #{self.pk} ({self.status})"

    @property
    def percent(self) -> int:
        return 100 if self.status == self.Status.READY else int(self.progress)


class BannedWord(models.Model):
    """A word no picture may ask for: site-wide (no campaign) or one campaign's. These add to
    the built-in list (media.images.prompt.DEFAULT_BANNED), GTW_IMAGES["banned_words"] and the
    GM's list in Campaign.settings["images"]["banned_words"]."""

    word = models.CharField(max_length=80)
    campaign = models.ForeignKey(
        "campaigns.Campaign",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="banned_image_words",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "word"], name="banned_word_unique")]

    def __str__(self):
        return self.word
