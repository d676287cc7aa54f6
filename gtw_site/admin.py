from django.contrib import admin

from gtw_site.models import ApiToken, ProviderCall


@admin.register(ProviderCall)
class ProviderCallAdmin(admin.ModelAdmin):
    list_display = ["created_at", "role", "provider", "model", "latency_ms", "tokens_in", "tokens_out", "ok"]
    list_filter = ["role", "provider", "ok"]

    def has_add_permission(self, request):
        return False


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "user", "hint", "created_at", "last_used_at"]
    readonly_fields = ["key_hash", "hint", "created_at", "last_used_at"]
    search_fields = ["user__username", "name"]
