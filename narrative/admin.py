"""Story decks in the admin: install a signed deck (verified on save), inspect installed ones.

Only a deck whose signature verifies against a trusted key is installed, and the signed
document is kept exactly as signed, so the change view is read-only: a new version of a deck is
a new signed file, installed through the add form (it replaces the deck with the same slug).
"""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from narrative import decks
from narrative.models import StoryDeck
from narrative.services import deck_install, trusted_keys


class DeckInstallForm(forms.ModelForm):
    document = forms.CharField(
        required=False,
        label="signed deck",
        widget=forms.Textarea(attrs={"rows": 24, "cols": 100, "style": "font-family: monospace"}),
        help_text='The signed deck JSON ({"deck": …, "signature": …}) — or upload the file instead.',
    )
    upload = forms.FileField(required=False, label="or a deck .json file")

    class Meta:
        model = StoryDeck
        fields = ["document"]

    def clean(self):
        cleaned = super().clean()
        text, upload = cleaned.get("document") or "", cleaned.get("upload")
        if text.strip() and upload:
            raise ValidationError("Paste the signed deck or upload a file, not both.")
        if upload:
            # One byte over the limit is enough for the parser to refuse it with its own message.
            field, label, raw = "upload", upload.name, upload.read(decks.MAX_FILE_BYTES + 1)
        elif text.strip():
            field, label, raw = "document", "deck", text.encode()
        else:
            raise ValidationError("Paste the signed deck JSON or upload the deck file.")
        try:
            document = decks.parse_json_bytes(raw, label)
            decks.verify_deck(document, trusted_keys())
        except decks.DeckError as exc:
            self.add_error(field, str(exc))
            return cleaned
        cleaned["signed_document"] = document
        return cleaned


@admin.register(StoryDeck)
class StoryDeckAdmin(admin.ModelAdmin):
    add_form = DeckInstallForm
    add_fieldsets = [(None, {"fields": ["document", "upload"]})]
    fieldsets = [
        (None, {"fields": ["name", "slug", "version", "description", "pack"]}),
        ("Signature", {"fields": ["key_id", "sha256", "installed_by", "installed_at"]}),
        ("Cards", {"fields": ["card_table"]}),
        ("Signed document", {"fields": ["document_listing"], "classes": ["collapse"]}),
    ]
    readonly_fields = [
        "name",
        "slug",
        "version",
        "description",
        "pack",
        "key_id",
        "sha256",
        "installed_by",
        "installed_at",
        "card_table",
        "document_listing",
    ]
    list_display = ["name", "slug", "version", "key_id", "card_count", "pack", "installed_at"]
    list_filter = ["pack", "key_id"]
    search_fields = ["name", "slug"]
    list_select_related = ["pack"]

    @admin.display(description="cards")
    def card_count(self, obj):
        return len(obj.cards)

    @admin.display(description="description")
    def description(self, obj):
        return obj.document.get("deck", {}).get("description", "")

    @admin.display(description="cards")
    def card_table(self, obj):
        rows = format_html_join(
            "\n",
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((c.get("id"), c.get("kind"), c.get("title"), c.get("weight")) for c in obj.cards),
        )
        return format_html(
            "<table><thead><tr><th>id</th><th>kind</th><th>title</th><th>weight</th></tr></thead>"
            "<tbody>{}</tbody></table>",
            rows,
        )

    @admin.display(description="document")
    def document_listing(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.document, indent=2, ensure_ascii=False))

    def get_fieldsets(self, request, obj=None):
        return self.add_fieldsets if obj is None else super().get_fieldsets(request, obj)

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.readonly_fields

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = self.add_form
        return super().get_form(request, obj, **kwargs)

    def has_change_permission(self, request, obj=None):
        return False

    def save_form(self, request, form, change):
        deck, changed = deck_install(document=form.cleaned_data["signed_document"], user=request.user)
        deck.already_installed = not changed
        return deck

    def save_model(self, request, obj, form, change):
        pass  # deck_install saved it (save_form)

    def save_related(self, request, form, formsets, change):
        pass

    def log_addition(self, request, obj, message):
        if not getattr(obj, "already_installed", False):
            super().log_addition(request, obj, message)

    def response_add(self, request, obj, post_url_continue=None):
        if getattr(obj, "already_installed", False):
            self.message_user(
                request, f"“{obj}” was already installed with this exact signed document.", messages.INFO
            )
            opts = self.opts
            url = reverse(
                f"admin:{opts.app_label}_{opts.model_name}_change",
                args=[obj.pk],
                current_app=self.admin_site.name,
            )
            return HttpResponseRedirect(url)
        return super().response_add(request, obj, post_url_continue)
