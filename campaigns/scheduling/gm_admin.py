"""Schedules in the GM admin (/gm/, issue 22): a GM's campaigns' session schedules, checked by
the same rules as the campaign page's form and the API (`SessionScheduleForm`), SEQUENCE bumped
on a material change so calendar clients update. Scoped like every GM admin (campaigns.gm_admin)."""

from __future__ import annotations

from django.utils import timezone

from campaigns.gm_admin import GMReadOnlyInline, GMScopedAdmin
from campaigns.scheduling import services
from campaigns.scheduling.admin import SessionScheduleForm
from campaigns.scheduling.models import ScheduleOverride


class OverrideInline(GMReadOnlyInline):
    model = ScheduleOverride
    fields = ["original", "cancelled", "start", "duration_minutes", "sequence"]
    readonly_fields = fields
    show_change_link = False


class SessionScheduleGMAdmin(GMScopedAdmin):
    form = SessionScheduleForm
    gm_can_add = True
    gm_can_delete = True
    list_display = ["__str__", "campaign", "start_date", "start_time", "time_zone", "rrule", "sequence"]
    list_filter = ["campaign"]
    list_select_related = ["campaign"]
    search_fields = ["title"]
    readonly_fields = ["uid", "sequence", "created_by", "created_at", "updated_at"]
    inlines = [OverrideInline]

    def get_readonly_fields(self, request, obj=None):
        # A schedule stays with its campaign (its feed UID is that campaign's).
        return self.readonly_fields if obj is None else ["campaign", *self.readonly_fields]

    def save_model(self, request, obj, form, change):
        if change and any(f in form.changed_data for f in services.MATERIAL):
            obj.sequence += 1
        if not change:
            obj.created_by = request.user
        obj.updated_at = timezone.now()
        super().save_model(request, obj, form, change)
