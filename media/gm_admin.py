"""Pictures in the GM admin (/gm/, issue 15): the campaigns' images and their banned words.

A GM sees the pictures of the campaigns they run (co-GMs included) with a thumbnail, the prompt,
provider, model, seed, rights and status, hides or shows them and asks for a new painting (a new
seed, a new row; the old one stays); and keeps each campaign's banned words (BannedWord rows of
the campaign, on top of the built-in list, the site's and the list on the gallery page).
Site-wide words (no campaign) are the staff admin's: a GM neither sees nor makes them. Scoping,
404s for other campaigns' ids and the foreign-key choices come from
campaigns.gm_admin.GMScopedAdmin; this module registers nothing (gtw_site.gm_admin does).
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils.html import format_html

from campaigns.errors import DomainError
from campaigns.gm_admin import GMScopedAdmin
from gtw_site.text import clean_text
from media.images import prompt as prompts
from media.images import services
from media.models import BannedWord, Image


class ImageGMAdmin(GMScopedAdmin):
    list_display = [
        "thumbnail",
        "short_prompt",
        "kind",
        "status",
        "provider",
        "model",
        "seed",
        "rights",
        "hidden",
        "campaign",
        "created_at",
    ]
    list_display_links = ["thumbnail", "short_prompt"]
    list_filter = ["campaign", "kind", "status", "provider", "hidden"]
    search_fields = ["prompt", "subject"]
    list_select_related = ["campaign"]
    list_per_page = 50
    ordering = ["-created_at"]
    actions = ["hide", "show", "regenerate", "retry"]
    fields = [
        "preview",
        "campaign",
        "session",
        "kind",
        "subject",
        "prompt",
        "negative",
        "style",
        "provider",
        "model",
        "seed",
        "size",
        "steps",
        "rights",
        "status",
        "failure",
        "hidden",
        "created_at",
        "finished_at",
    ]
    # The GM changes only whether the table sees it; everything else is what was painted.
    readonly_fields = [f for f in fields if f != "hidden"]

    def get_queryset(self, request):
        return super().get_queryset(request).defer("parts")

    def lookup_allowed(self, lookup, value, request=None):
        # A filter through the session to its campaign (a link from the sessions' pages) only
        # narrows rows that are the GM's already (the scope): allowed, rather than a 400.
        if lookup.startswith("session__campaign__"):
            return True
        return super().lookup_allowed(lookup, value, request)

    @admin.display(description="picture")
    def thumbnail(self, obj):
        return self._img(obj, width=96)

    @admin.display(description="picture")
    def preview(self, obj):
        return self._img(obj, width=384)

    def _img(self, obj, *, width: int):
        if obj.status != Image.Status.READY:
            return f"{obj.get_status_display()} ({obj.percent}%)"
        # The members-only file URL: the GM is a member, so the browser's own cookie fetches it.
        url = reverse("image-file", args=[obj.pk])
        return format_html(
            '<img src="{}" width="{}" alt="{}" loading="lazy" style="border-radius:4px">',
            url,
            width,
            f"{obj.kind} #{obj.pk}",
        )

    @admin.display(description="prompt", ordering="prompt")
    def short_prompt(self, obj):
        return obj.prompt if len(obj.prompt) <= 120 else obj.prompt[:117] + "…"

    @admin.display(description="size")
    def size(self, obj):
        return f"{obj.width} x {obj.height}"

    @admin.display(description="why it failed")
    def failure(self, obj):
        return obj.error or "—"

    def save_model(self, request, obj, form, change):
        if "hidden" in form.changed_data:
            services.image_hide(image=obj, hidden=obj.hidden)  # tells the table's sockets

    def _each(self, request, queryset, do, done: str) -> None:
        n = 0
        for image in queryset.select_related("campaign", "session"):
            try:
                with transaction.atomic():
                    do(image)
            except DomainError as exc:
                self.message_user(request, f"#{image.pk}: {exc.message}", messages.WARNING)
                continue
            n += 1
        if n:
            self.message_user(request, done.format(n=n, s="" if n == 1 else "s"), messages.SUCCESS)

    @admin.action(description="Hide the selected pictures from the table")
    def hide(self, request, queryset):
        self._each(
            request, queryset, lambda i: services.image_hide(image=i, hidden=True), "{n} picture{s} hidden."
        )

    @admin.action(description="Show the selected pictures to the table")
    def show(self, request, queryset):
        self._each(
            request, queryset, lambda i: services.image_hide(image=i, hidden=False), "{n} picture{s} shown."
        )

    @admin.action(description="Paint the selected pictures again with a new seed")
    def regenerate(self, request, queryset):
        self._each(
            request,
            queryset,
            lambda i: services.image_regenerate(image=i, user=request.user),
            "{n} new painting{s} queued.",
        )

    @admin.action(description="Retry the selected failed pictures")
    def retry(self, request, queryset):
        self._each(request, queryset, lambda i: services.image_retry(image=i), "{n} picture{s} queued again.")


class BannedWordForm(forms.ModelForm):
    class Meta:
        model = BannedWord
        fields = ["campaign", "word"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "campaign" in self.fields:
            self.fields["campaign"].required = True  # site-wide words are the staff admin's

    def clean_word(self):
        try:
            word = clean_text(self.cleaned_data.get("word") or "", what="The word", max_len=80)
        except DomainError as exc:
            raise ValidationError(exc.message) from None
        word = " ".join(word.split())
        if not prompts.normalise_banned([word]):
            raise ValidationError("Write a word or phrase with at least one letter or digit.")
        return word

    def clean(self):
        data = super().clean()
        campaign_id = data["campaign"].pk if data.get("campaign") else self.instance.campaign_id
        word = data.get("word")
        if campaign_id and word:
            twins = BannedWord.objects.filter(campaign_id=campaign_id, word__iexact=word)
            if twins.exclude(pk=self.instance.pk).exists():
                raise ValidationError(f"'{word}' is already banned in this campaign.")
        return data


class BannedWordGMAdmin(GMScopedAdmin):
    form = BannedWordForm
    gm_can_add = True
    gm_can_delete = True
    list_display = ["word", "campaign", "created_at"]
    list_filter = ["campaign"]
    search_fields = ["word"]
    list_select_related = ["campaign"]
    ordering = ["campaign", "word"]

    def get_readonly_fields(self, request, obj=None):
        return ["campaign", "created_at"] if obj is not None else ["created_at"]

    def get_fields(self, request, obj=None):
        return ["campaign", "word", "created_at"] if obj is not None else ["campaign", "word"]
