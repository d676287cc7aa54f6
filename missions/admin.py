"""Missions in the admin: install new source (compiled on save), inspect installed versions.

A row is one compiled version and never changes (sessions run the version whose hash they
started with), so the change view is read-only and there is no delete: a new version is a new
install. The add form is an install form, like UserAdmin's `add_form`.
"""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html

from missions.dsl import MissionError, compile_source
from missions.models import Mission, TechTree
from missions.services import MAX_SOURCE_BYTES, mission_install

DEFAULT_FILENAME = "mission.mission"


def compile_errors(source: str, filename: str) -> list[ValidationError]:
    """One ValidationError per `file:line:col: message` line the compiler reports, in <code>."""
    try:
        compile_source(source, filename)
    except MissionError as exc:
        # The admin's CSS greys <code>; inherit keeps the error colour.
        html = '<code style="color: inherit">{}</code>'
        return [ValidationError(format_html(html, str(e)), code="compile") for e in exc.errors]
    return []


class MissionInstallForm(forms.ModelForm):
    source = forms.CharField(
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 24, "cols": 100, "style": "font-family: monospace"}),
        help_text="Mission source in the mission language — or upload a .mission file instead.",
    )
    upload = forms.FileField(required=False, label="or a .mission file")

    class Meta:
        model = Mission
        fields = ["source"]

    def clean(self):
        cleaned = super().clean()
        text, upload = cleaned.get("source") or "", cleaned.get("upload")
        if text.strip() and upload:
            raise ValidationError("Paste the source or upload a file, not both.")
        if upload:
            field, filename, text = "upload", upload.name, self._read_upload(upload)
        elif text.strip():
            # Browsers send textarea lines with CRLF; the stored source keeps the file's own form.
            field, filename, text = "source", DEFAULT_FILENAME, text.replace("\r\n", "\n")
        else:
            raise ValidationError("Paste the mission source or upload a .mission file.")
        if text is None:
            return cleaned
        errors = compile_errors(text, filename)
        if errors:
            self.add_error(field, errors)
        cleaned["mission_source"], cleaned["mission_filename"] = text, filename
        return cleaned

    def _read_upload(self, upload) -> str | None:
        if upload.size > MAX_SOURCE_BYTES:
            self.add_error(
                "upload", f"The file is {upload.size} bytes; at most {MAX_SOURCE_BYTES} are allowed."
            )
            return None
        try:
            return upload.read().decode("utf-8-sig")  # a leading BOM is not part of the mission
        except UnicodeDecodeError as exc:
            self.add_error("upload", f"{upload.name}: not UTF-8 text (invalid byte at offset {exc.start}).")
            return None


@admin.register(Mission)
class MissionAdmin(admin.ModelAdmin):
    add_form = MissionInstallForm
    add_fieldsets = [(None, {"fields": ["source", "upload"]})]
    fieldsets = [
        (None, {"fields": ["title", "slug", "biome", "summary", "pack"]}),
        (
            "Version",
            {"fields": ["content_hash", "filename", "installed_by", "installed_at", "owner", "public"]},
        ),
        ("Source", {"fields": ["source_listing"]}),
        ("Compiled AST", {"fields": ["ast_listing"], "classes": ["collapse"]}),
    ]
    readonly_fields = [
        "title",
        "slug",
        "biome",
        "summary",
        "pack",
        "content_hash",
        "filename",
        "installed_by",
        "installed_at",
        "owner",
        "public",
        "source_listing",
        "ast_listing",
    ]
    list_display = ["title", "slug", "biome", "short_hash", "pack", "owner", "public", "installed_at"]
    list_filter = ["biome", "pack", "public"]
    search_fields = ["title", "slug", "content_hash"]
    list_select_related = ["pack", "owner"]
    # A GM's private mission (installed in /gm/) reaches every campaign once staff publish it.
    actions = ["publish", "unpublish"]

    @admin.action(description="Publish site-wide (every campaign may play it)")
    def publish(self, request, queryset):
        n = queryset.filter(public=False).update(public=True)
        self.message_user(request, f"Published {n} mission version(s) site-wide.", messages.SUCCESS)

    @admin.action(description="Make private again (only its owner's campaigns)")
    def unpublish(self, request, queryset):
        n = queryset.filter(public=True, owner__isnull=False).update(public=False)
        message = f"{n} mission version(s) are private to their owner again."
        self.message_user(request, message, messages.SUCCESS)

    @admin.display(description="hash", ordering="content_hash")
    def short_hash(self, obj):
        return obj.content_hash[:12]

    @admin.display(description="source")
    def source_listing(self, obj):
        return format_html('<pre style="white-space: pre-wrap">{}</pre>', obj.source)

    @admin.display(description="AST")
    def ast_listing(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.ast, indent=2, ensure_ascii=False))

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

    def has_delete_permission(self, request, obj=None):
        return False  # sessions look their mission up by content hash

    def save_form(self, request, form, change):
        mission, created = mission_install(
            source=form.cleaned_data["mission_source"],
            filename=form.cleaned_data["mission_filename"],
            user=request.user,
        )
        mission.already_installed = not created
        return mission

    def save_model(self, request, obj, form, change):
        pass  # mission_install saved it (save_form)

    def save_related(self, request, form, formsets, change):
        pass

    def log_addition(self, request, obj, message):
        if not getattr(obj, "already_installed", False):
            super().log_addition(request, obj, message)

    def response_add(self, request, obj, post_url_continue=None):
        if getattr(obj, "already_installed", False):
            self.message_user(
                request,
                f"This exact version of “{obj}” was already installed; nothing changed.",
                messages.INFO,
            )
            opts = self.opts
            url = reverse(
                f"admin:{opts.app_label}_{opts.model_name}_change",
                args=[obj.pk],
                current_app=self.admin_site.name,
            )
            return HttpResponseRedirect(url)
        return super().response_add(request, obj, post_url_continue)


class TechTreeForm(forms.ModelForm):
    """A tree's document, validated like a pack's (missions.techtree: the JSON path of a problem)."""

    class Meta:
        model = TechTree
        fields = ["pack", "document"]

    def clean_document(self):
        from missions import techtree

        document = self.cleaned_data["document"]
        try:
            self.tree = techtree.parse_tree(document)
        except techtree.TechTreeError as exc:
            raise ValidationError(str(exc)) from exc
        return document


@admin.register(TechTree)
class TechTreeAdmin(admin.ModelAdmin):
    """The packs' tech trees (issue 19): installed from content/packs/<pack>/techtrees/*.json;
    an edit here is validated the same way and replaces the pack's version until it reloads."""

    form = TechTreeForm
    list_display = ["name", "slug", "kind", "pack", "nodes", "installed_at"]
    list_filter = ["kind", "pack"]
    readonly_fields = ["slug", "name", "kind", "sha256", "installed_at"]

    @admin.display(description="nodes")
    def nodes(self, obj):
        return len((obj.document or {}).get("nodes") or [])

    def save_model(self, request, obj, form, change):
        import hashlib

        tree = form.tree
        obj.slug, obj.name, obj.kind = tree.slug, tree.name, tree.kind
        obj.sha256 = hashlib.sha256(json.dumps(obj.document, sort_keys=True).encode()).hexdigest()
        super().save_model(request, obj, form, change)
