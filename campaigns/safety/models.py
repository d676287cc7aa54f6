"""Per-campaign safety settings, the review queue and its audit log, and the trigger counters."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from campaigns.models import Campaign, PlaySession


class SafetyPolicy(models.Model):
    """The GM's choices for one campaign, on top of the pack's `safety` block and the site's
    defaults: only the categories the GM changed are stored."""

    campaign = models.OneToOneField(Campaign, on_delete=models.CASCADE, related_name="safety_policy")
    # category → allow / soften / hold / block (campaigns.safety.categories)
    actions = models.JSONField(default=dict, blank=True)
    # The PII kinds gtw_site.redact blanks out for this campaign; null = the site's GTW_REDACT.
    redact = models.JSONField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    def __str__(self):
        return f"safety policy of campaign {self.campaign_id}"


class ReviewItem(models.Model):
    """A piece of text a classifier held (or blocked) for a human: a player's action, a sentence
    of narration, a note, a shared doc, an image prompt. Players see "held for review", never
    the categories or scores; the GM (and a stage's moderators, for their stage) decide."""

    class Source(models.TextChoices):
        ACTION = "action", "Player action"
        NARRATION = "narration", "Narration"
        OPENING = "opening", "Opening narration"
        BATCH = "batch", "Stage narration"
        NOTE = "note", "Note"
        DOC = "doc", "Shared document"
        IMAGE = "image_prompt", "Image prompt"

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for review"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        BLOCKED = "blocked", "Blocked"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="review_items")
    session = models.ForeignKey(
        PlaySession, null=True, blank=True, on_delete=models.CASCADE, related_name="review_items"
    )
    source = models.CharField(max_length=16, choices=Source.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    text = models.TextField()
    final_text = models.TextField(blank=True, default="")  # what was released (maybe edited)
    categories = models.JSONField(default=list)
    scores = models.JSONField(default=dict)  # the GM's eyes only
    evidence = models.JSONField(default=dict)
    action = models.CharField(max_length=8)  # the policy's action: hold / block
    provider = models.CharField(max_length=40, blank=True, default="")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # One held thing, once: a retried action (same idempotency key) finds its item again.
    key = models.CharField(max_length=160)
    # Where it goes once approved: {"idempotency_key", "character", "action_seq", ...}
    ref = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    released_seq = models.PositiveIntegerField(null=True, blank=True)  # the event approval appended

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [models.UniqueConstraint(fields=["campaign", "key"], name="safety_review_key_unique")]
        indexes = [models.Index(fields=["campaign", "status", "created_at"], name="safety_review_queue")]

    def __str__(self):
        return f"{self.source} {self.status} in campaign {self.campaign_id}"


class ReviewLog(models.Model):
    """The audit log: every hold, block and decision, with what the text was before and after."""

    class Verb(models.TextChoices):
        HELD = "held", "Held"
        BLOCKED = "blocked", "Blocked"
        APPROVED = "approved", "Approved"
        EDITED = "edited", "Edited and approved"
        REJECTED = "rejected", "Rejected"
        POLICY = "policy", "Changed the policy"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="review_log")
    item = models.ForeignKey(ReviewItem, null=True, blank=True, on_delete=models.CASCADE, related_name="log")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    verb = models.CharField(max_length=10, choices=Verb.choices)
    before = models.TextField(blank=True, default="")
    after = models.TextField(blank=True, default="")
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at", "-pk"]

    def __str__(self):
        return f"{self.verb} by {self.actor_id} at {self.at}"


class SafetyCount(models.Model):
    """Safety triggers, counted: per campaign (null: outside one), where, category and action."""

    campaign = models.ForeignKey(Campaign, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    source = models.CharField(max_length=16)
    category = models.CharField(max_length=32)
    action = models.CharField(max_length=8)
    count = models.PositiveBigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "source", "category", "action"],
                name="safety_count_unique",
                nulls_distinct=False,
            )
        ]

    def __str__(self):
        return f"{self.source}/{self.category}/{self.action}: {self.count}"
