import hashlib
import secrets

from django.conf import settings
from django.db import models


class ProviderCall(models.Model):
    """One telemetry row per provider call of every kind (chat, embedder, speech, images,
    moderation, simulation). Field names map to the OpenTelemetry GenAI conventions in
    `gtw_site.telemetry.otel_attributes` (gen_ai.usage.input_tokens, …)."""

    role = models.CharField(max_length=40)
    provider = models.CharField(max_length=40)
    model = models.CharField(max_length=120, blank=True)
    kind = models.CharField(max_length=40, blank=True)
    latency_ms = models.FloatField()
    # Time to the first streamed event (None: not a stream, or nothing arrived).
    ttft_ms = models.FloatField(null=True, blank=True)
    tokens_in = models.PositiveIntegerField(default=0)
    tokens_out = models.PositiveIntegerField(default=0)
    tokens_cached = models.PositiveIntegerField(default=0)
    audio_seconds = models.FloatField(default=0)
    images = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    ok = models.BooleanField(default=True)
    error = models.CharField(max_length=500, blank=True)
    variant = models.CharField(max_length=40, blank=True)
    prompt_version = models.CharField(max_length=40, blank=True)
    shadow = models.BooleanField(default=False)
    # Plain ids, not foreign keys: telemetry sits below the tenant layer and outlives a session.
    campaign_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    session_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    turn_seq = models.IntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self):
        return f"{self.role}/{self.provider} {self.latency_ms:.0f} ms"


class ProviderPrompt(models.Model):
    """The prompt a narrator or summarizer call actually sent (issue 17 part 6: "the prompts
    sent", GM and staff only): its messages, redacted as outbound text is (gtw_site.redact) and
    cut to GTW_PROMPT_MAX_CHARS with a marker, and the names of the tools offered (never their
    schemas, never a key). Written with its ProviderCall, after the turn's stream; rows older
    than GTW_PROMPT_RETENTION_DAYS are deleted (gtw_site.telemetry)."""

    call = models.OneToOneField(ProviderCall, on_delete=models.CASCADE, related_name="prompt")
    session_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    turn_seq = models.IntegerField(null=True, blank=True)
    role = models.CharField(max_length=40)
    # [{"role", "content", "name"?, "tool_calls"?: [{"name", "arguments"}]}]
    messages = models.JSONField(default=list)
    tools = models.JSONField(default=list)  # the offered tools' names
    chars = models.PositiveIntegerField(default=0)  # the prompt's length before any cut
    truncated = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self):
        return f"prompt for {self.call_id} ({self.role})"


class ProviderKey(models.Model):
    """A provider API key entered in the UI or admin, stored encrypted (gtw_site.keys): the
    ciphertext carries the id of the key that sealed it, so keys rotate. Only `last4` is shown."""

    label = models.CharField(max_length=80)
    ciphertext = models.TextField()
    last4 = models.CharField(max_length=4)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"{self.label} (…{self.last4})"

    @property
    def key_id(self) -> str:
        return self.ciphertext.partition(":")[0]


class ProviderChoice(models.Model):
    """Which adapter a role uses, for the whole site (campaign_id null) or one campaign, layered
    over the environment's settings by the provider registry at the next call."""

    role = models.CharField(max_length=40)
    campaign_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    provider = models.CharField(max_length=40)
    preset = models.CharField(max_length=40, blank=True)
    # Constructor arguments the adapter accepts (model, base_url, …); never a key.
    options = models.JSONField(default=dict, blank=True)
    key = models.ForeignKey(ProviderKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["role"],
                condition=models.Q(campaign_id__isnull=True),
                name="provider_choice_site_role",
            ),
            models.UniqueConstraint(
                fields=["campaign_id", "role"],
                condition=models.Q(campaign_id__isnull=False),
                name="provider_choice_campaign_role",
            ),
        ]

    def __str__(self):
        where = f"campaign {self.campaign_id}" if self.campaign_id else "site"
        return f"{self.role} → {self.provider} ({where})"


class ProviderRevision(models.Model):
    """One row marking changes to provider choices and price overrides (a fresh random number
    per change): each process compares it with the one it loaded, so a change applies to the
    next call everywhere."""

    number = models.BigIntegerField(default=0)

    def __str__(self):
        return f"provider revision {self.number}"


class PriceOverride(models.Model):
    """An operator's price for a model, in USD, over the offline price table (genai-prices)."""

    provider = models.CharField(max_length=40, blank=True, help_text="blank: any provider")
    model = models.CharField(max_length=120)
    input_per_mtok = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    output_per_mtok = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    cached_input_per_mtok = models.DecimalField(max_digits=12, decimal_places=6, null=True, blank=True)
    per_audio_second = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    per_image = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    updated_at = models.DateTimeField(auto_now=True)

    PRICE_FIELDS = (
        "input_per_mtok",
        "output_per_mtok",
        "cached_input_per_mtok",
        "per_audio_second",
        "per_image",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["provider", "model"], name="price_override_provider_model"),
            *(
                models.CheckConstraint(
                    condition=models.Q(**{f"{name}__gte": 0}) | models.Q(**{f"{name}__isnull": True}),
                    name=f"price_override_{name}_not_negative",
                )
                for name in (
                    "input_per_mtok",
                    "output_per_mtok",
                    "cached_input_per_mtok",
                    "per_audio_second",
                    "per_image",
                )
            ),
        ]

    def __str__(self):
        return f"{self.provider or '*'}/{self.model}"

    def clean(self):
        from django.core.exceptions import ValidationError

        errors = {
            name: "a price cannot be negative"
            for name in self.PRICE_FIELDS
            if getattr(self, name) is not None and getattr(self, name) < 0
        }
        if errors:
            raise ValidationError(errors)


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiToken(models.Model):
    """A per-user bearer token for scripts. Only its SHA-256 is stored; the token is shown once."""

    PREFIX = "gtw_"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=80)
    key_hash = models.CharField(max_length=64, unique=True)
    hint = models.CharField(max_length=12)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.name} ({self.hint}…)"

    @classmethod
    def issue(cls, *, user, name: str) -> tuple["ApiToken", str]:
        raw = cls.PREFIX + secrets.token_urlsafe(32)
        token = cls.objects.create(user=user, name=name[:80], key_hash=hash_token(raw), hint=raw[:10])
        return token, raw


class Experiment(models.Model):
    """An A/B experiment on one role: campaigns (or sessions) are assigned a variant by a hash of
    the experiment's name and their id (gtw_site.providers.experiments), the same every time.
    Each variant is {"name", "provider", "options", "weight"}; rows carry the variant's name."""

    class Unit(models.TextChoices):
        CAMPAIGN = "campaign", "Campaign"
        SESSION = "session", "Session"

    name = models.SlugField(max_length=40, unique=True)
    role = models.CharField(max_length=40)
    unit = models.CharField(max_length=10, choices=Unit.choices, default=Unit.CAMPAIGN)
    variants = models.JSONField(default=list)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"{self.name} ({self.role})"


class ShadowProvider(models.Model):
    """A provider that gets the same request as a role's live one, in the background: its output
    is stored (ShadowOutput) and compared, never shown to players nor written to memory or
    events. Site-wide (campaign_id null) or for one campaign."""

    role = models.CharField(max_length=40)
    name = models.SlugField(max_length=40)
    provider = models.CharField(max_length=40)
    options = models.JSONField(default=dict, blank=True)
    campaign_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"shadow {self.name} → {self.provider} ({self.role})"


class ShadowOutput(models.Model):
    """What a shadow provider answered: for comparison by staff and GMs only."""

    shadow_name = models.CharField(max_length=40)
    role = models.CharField(max_length=40)
    provider = models.CharField(max_length=40)
    model = models.CharField(max_length=120, blank=True)
    campaign_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    session_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    turn_seq = models.IntegerField(null=True, blank=True)
    text = models.TextField(blank=True)
    tool_calls = models.PositiveIntegerField(default=0)
    valid_tool_calls = models.PositiveIntegerField(default=0)
    latency_ms = models.FloatField(default=0)
    ok = models.BooleanField(default=True)
    error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self):
        return f"{self.shadow_name} @ session {self.session_id} turn {self.turn_seq}"
