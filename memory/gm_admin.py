"""Campaign memory in the GM admin (/gm/, issue 22): search, edit and delete what the table
shares — campaign-namespace memories and the session summaries among them.

Players' private memories (`player:<id>` namespaces: what one character saw, was whispered or
wrote down) are never listed here, whatever GTW_GM_OMNISCIENT says: the filter is the namespace
itself, `campaign:<the row's own campaign>`, in SQL. Editing a memory's text drops its vector
and queues the embedding job, so recall finds it by its new words.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import CharField, F, Value
from django.db.models.functions import Cast, Concat

from campaigns.errors import DomainError
from campaigns.gm_admin import GMScopedAdmin
from gtw_site.text import clean_text
from memory.models import Memory
from memory.services import schedule_embedding
from memory.summaries import SUMMARY_TAG


class MemoryForm(forms.ModelForm):
    class Meta:
        model = Memory
        fields = ["text", "type", "tags", "importance"]

    def clean_text(self):
        try:
            limit = settings.GTW_MEMORY["max_text_chars"]
            return clean_text(self.cleaned_data["text"], what="The memory", max_len=limit)
        except DomainError as exc:
            raise ValidationError(exc.message) from None

    def clean_tags(self):
        tags = [t.strip() for t in self.cleaned_data.get("tags") or [] if t.strip()]
        for tag in tags:
            try:
                clean_text(tag, what="A tag", max_len=40)
            except DomainError as exc:
                raise ValidationError(exc.message) from None
        return tags


class SummaryFilter(admin.SimpleListFilter):
    title = "kind"
    parameter_name = "kind"

    def lookups(self, request, model_admin):
        return [("summary", "Session summaries"), ("memory", "Memories")]

    def queryset(self, request, queryset):
        if self.value() == "summary":
            return queryset.filter(tags__contains=[SUMMARY_TAG], created_by__isnull=True)
        if self.value() == "memory":
            return queryset.exclude(tags__contains=[SUMMARY_TAG], created_by__isnull=True)
        return queryset


class MemoryGMAdmin(GMScopedAdmin):
    form = MemoryForm
    gm_can_delete = True
    list_display = ["short_text", "campaign", "type", "tag_list", "source_session", "created_at"]
    list_filter = [SummaryFilter, "type", "campaign"]
    search_fields = ["text"]
    list_select_related = ["campaign", "source_session"]
    fields = [
        "campaign",
        "text",
        "type",
        "tags",
        "importance",
        "source_session",
        "source_seq",
        "created_by",
        "created_at",
    ]
    readonly_fields = ["campaign", "source_session", "source_seq", "created_by", "created_at"]

    def scope(self, request, queryset):
        # The campaign's own namespace only: never a player's private one (nor another campaign's
        # namespace, whatever a row claims).
        own = Concat(Value("campaign:"), Cast("campaign_id", CharField()))
        scoped = (
            super().scope(request, queryset).alias(own_namespace=own).filter(namespace=F("own_namespace"))
        )
        return scoped.defer("embedding", "search")

    @admin.display(description="memory", ordering="text")
    def short_text(self, obj):
        return obj.text if len(obj.text) <= 100 else obj.text[:97] + "…"

    @admin.display(description="tags")
    def tag_list(self, obj):
        return ", ".join(obj.tags)

    def save_model(self, request, obj, form, change):
        update = [f for f in ("text", "type", "tags", "importance") if f in form.changed_data]
        if "text" in update:
            obj.embedding, obj.embedding_model = None, ""
            update += ["embedding", "embedding_model"]
            transaction.on_commit(schedule_embedding)
        if update:
            obj.save(update_fields=update)
