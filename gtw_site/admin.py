from django import forms
from django.contrib import admin
from django.db import transaction

from gtw_site.models import (
    ApiToken,
    Experiment,
    PriceOverride,
    ProviderCall,
    ProviderChoice,
    ProviderKey,
    ProviderPrompt,
    ShadowOutput,
    ShadowProvider,
)


@admin.register(ProviderCall)
class ProviderCallAdmin(admin.ModelAdmin):
    list_display = [
        "created_at",
        "role",
        "provider",
        "model",
        "latency_ms",
        "ttft_ms",
        "tokens_in",
        "tokens_out",
        "cost_usd",
        "session_id",
        "turn_seq",
        "ok",
    ]
    list_filter = ["role", "provider", "ok", "shadow"]

    def has_add_permission(self, request):
        return False


@admin.register(ProviderPrompt)
class ProviderPromptAdmin(admin.ModelAdmin):
    """Staff only, read-only: the prompt a narrator or summarizer call sent (already redacted and
    cut when stored; never a key). GM-only data — no player page shows it."""

    list_display = ["created_at", "role", "session_id", "turn_seq", "call", "chars", "truncated"]
    list_filter = ["role", "truncated"]
    search_fields = ["session_id"]
    readonly_fields = [f.name for f in ProviderPrompt._meta.fields]
    list_select_related = ["call"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # GTW_PROMPT_RETENTION_DAYS deletes them (gtw_site.prompt_store.purge)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "user", "hint", "created_at", "last_used_at"]
    readonly_fields = ["key_hash", "hint", "created_at", "last_used_at"]
    search_fields = ["user__username", "name"]


# ---- issue 17: providers at run time, stored keys, prices -----------------------------------


class ProviderKeyForm(forms.ModelForm):
    """A key is typed once, stored sealed (gtw_site.keys); the form never shows it back."""

    plain = forms.CharField(
        label="API key",
        widget=forms.PasswordInput(render_value=False),
        required=False,
        help_text="Stored encrypted; only its last four characters are ever shown. "
        "Blank: keep the stored one.",
    )

    class Meta:
        model = ProviderKey
        fields = ["label"]

    def clean_plain(self):
        from gtw_site import keys

        value = self.cleaned_data.get("plain", "")
        if not value and self.instance.pk:
            return ""
        try:
            return keys.check_plain(value)
        except keys.MalformedKey as exc:
            raise forms.ValidationError(str(exc)) from None


@admin.register(ProviderKey)
class ProviderKeyAdmin(admin.ModelAdmin):
    form = ProviderKeyForm
    list_display = ["label", "masked", "key_id", "created_by", "updated_at"]
    readonly_fields = ["masked", "key_id", "created_by", "created_at", "updated_at"]

    @admin.display(description="key")
    def masked(self, obj):
        return f"…{obj.last4}" if obj.last4 else ""

    def save_model(self, request, obj, form, change):
        from gtw_site import keys
        from gtw_site.providers import selection

        plain = form.cleaned_data.get("plain")
        if plain:
            try:
                obj.ciphertext = keys.seal(plain)
            except keys.KeyUnavailable as exc:
                raise forms.ValidationError(str(exc)) from None
            obj.last4 = keys.last4(plain)
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
        selection.bump()


class ProviderChoiceForm(forms.ModelForm):
    class Meta:
        model = ProviderChoice
        fields = ["role", "campaign_id", "provider", "preset", "options", "key"]

    def clean(self):
        """The same check as the providers page: the adapter must start, or nothing is saved."""
        from gtw_site.errors import DomainError
        from gtw_site.providers import services

        data = super().clean()
        try:
            with transaction.atomic():
                services.choice_set(
                    role=data.get("role", ""),
                    provider=data.get("provider", ""),
                    preset=data.get("preset", ""),
                    options=data.get("options") or {},
                    key=data.get("key"),
                    campaign_id=data.get("campaign_id"),
                )
                transaction.set_rollback(True)  # only checked here; the admin saves it below
        except DomainError as exc:
            raise forms.ValidationError(exc.message) from None
        return data


@admin.register(ProviderChoice)
class ProviderChoiceAdmin(admin.ModelAdmin):
    form = ProviderChoiceForm
    list_display = ["role", "campaign_id", "provider", "preset", "key", "updated_by", "updated_at"]
    list_filter = ["role", "provider"]

    def save_model(self, request, obj, form, change):
        from gtw_site.providers import selection

        obj.updated_by = request.user
        super().save_model(request, obj, form, change)
        selection.bump()

    def delete_model(self, request, obj):
        from gtw_site.providers import selection

        super().delete_model(request, obj)
        selection.bump()


@admin.register(PriceOverride)
class PriceOverrideAdmin(admin.ModelAdmin):
    list_display = ["provider", "model", *PriceOverride.PRICE_FIELDS, "updated_at"]
    search_fields = ["model"]

    def save_model(self, request, obj, form, change):
        from gtw_site.providers import selection

        super().save_model(request, obj, form, change)
        selection.bump()

    def delete_model(self, request, obj):
        from gtw_site.providers import selection

        super().delete_model(request, obj)
        selection.bump()


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    """Variants are checked (each must start) by `POST /api/providers/experiments`; here they
    can be switched off or looked at."""

    list_display = ["name", "role", "unit", "active", "created_at"]
    list_filter = ["role", "active"]

    def save_model(self, request, obj, form, change):
        from gtw_site.providers import selection

        super().save_model(request, obj, form, change)
        selection.bump()


@admin.register(ShadowProvider)
class ShadowProviderAdmin(admin.ModelAdmin):
    list_display = ["name", "role", "provider", "campaign_id", "active", "created_at"]
    list_filter = ["role", "active"]

    def save_model(self, request, obj, form, change):
        from gtw_site.providers import selection

        super().save_model(request, obj, form, change)
        selection.bump()


@admin.register(ShadowOutput)
class ShadowOutputAdmin(admin.ModelAdmin):
    """Staff only: a shadow's own words, for comparing models. Never shown to players."""

    list_display = [
        "created_at",
        "shadow_name",
        "provider",
        "model",
        "session_id",
        "turn_seq",
        "ok",
        "latency_ms",
    ]
    list_filter = ["shadow_name", "ok"]
    readonly_fields = [f.name for f in ShadowOutput._meta.fields]

    def has_add_permission(self, request):
        return False
