"""Installed story decks. Only decks whose Ed25519 signature verifies against a trusted key get
here (narrative/decks/ checks; narrative/services.py installs); the signed document is kept
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


class DiceSecret(models.Model):
    """The secret mixed into a session's dice seeds from `from_seq` on (gtw-dice-v2, see
    missions.rules.dice). Only its SHA-256, `commitment`, is public while the session runs (in
    the SessionOpened or SessionResumed event whose seq is `from_seq`); the secret itself is in
    no event and no session state until the session ends and SessionEnded (seq `revealed_seq`)
    reveals it. A resumed session gets a new one: the old one is public by then.

    Rows are written by narrative.dice_secrets only, never changed except `revealed_seq`."""

    session = models.ForeignKey(
        "campaigns.PlaySession", on_delete=models.CASCADE, related_name="dice_secrets"
    )
    from_seq = models.PositiveIntegerField()
    secret = models.CharField(max_length=64)
    commitment = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    revealed_seq = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["session_id", "from_seq"]
        constraints = [
            models.UniqueConstraint(fields=["session", "from_seq"], name="dice_secret_one_per_seq"),
        ]

    def __str__(self):
        return f"dice secret of session {self.session_id} from #{self.from_seq}"

    @property
    def revealed(self) -> bool:
        return self.revealed_seq is not None


class TableLine(models.Model):
    """A member's line or veil for a campaign (issue 18, part 4; the session-zero safety tools).

    A line never appears in the story; a veil may happen, but off screen, summarised in a
    sentence. `private`: only the GMs see the entry (and who wrote it); the narrator and the
    content classifier always get every entry (narrative.tablesafety.campaign_lines), without
    its author. Members add and remove their own; the GMs may remove any."""

    class Kind(models.TextChoices):
        LINE = "line", "Line"
        VEIL = "veil", "Veil"

    campaign = models.ForeignKey("campaigns.Campaign", on_delete=models.CASCADE, related_name="table_lines")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    text = models.CharField(max_length=200)
    private = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["campaign_id", "kind", "created_at", "id"]
        indexes = [models.Index(fields=["campaign", "kind"], name="table_line_campaign_kind")]

    def __str__(self):
        return f"{self.get_kind_display()}: {self.text}"
