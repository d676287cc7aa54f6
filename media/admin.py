from django.contrib import admin

from media.models import BannedWord, Image


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "campaign",
        "kind",
        "subject",
        "status",
        "provider",
        "model",
        "seed",
        "hidden",
        "created_at",
    )
    list_filter = ("status", "kind", "provider", "hidden")
    search_fields = ("prompt", "subject", "hash")
    readonly_fields = (
        "hash",
        "path",
        "content_type",
        "size_bytes",
        "created_at",
        "started_at",
        "finished_at",
        "parts",
    )
    list_select_related = ("campaign",)
    raw_id_fields = ("campaign", "session", "requested_by")
    actions = ("hide", "show")

    @admin.action(description="Hide the selected pictures")
    def hide(self, request, queryset):
        queryset.update(hidden=True)

    @admin.action(description="Show the selected pictures")
    def show(self, request, queryset):
        queryset.update(hidden=False)


@admin.register(BannedWord)
class BannedWordAdmin(admin.ModelAdmin):
    list_display = ("word", "campaign", "created_at")
    search_fields = ("word",)
    list_filter = (("campaign", admin.EmptyFieldListFilter),)
    raw_id_fields = ("campaign",)
