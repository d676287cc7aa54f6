"""The calendar in Django admin: schedules (checked by the same rules as the GM's form and the
API, SEQUENCE bumped on a material change), their single-session changes, feeds (revoke only:
a token is never shown again) and the notices sent."""

from django import forms
from django.contrib import admin
from django.utils import timezone

from campaigns.errors import DomainError
from campaigns.scheduling import services
from campaigns.scheduling.models import (
    CalendarFeed,
    CalendarProfile,
    ReminderDelivery,
    ScheduleOverride,
    SessionSchedule,
    UpcomingNotice,
)


class SessionScheduleForm(forms.ModelForm):
    class Meta:
        model = SessionSchedule
        fields = [
            "campaign",
            "title",
            "notes",
            "start_date",
            "start_time",
            "time_zone",
            "duration_minutes",
            "rrule",
            "exdates",
        ]

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        try:
            from datetime import datetime

            clean = services.schedule_clean(
                title=data.get("title", ""),
                notes=data.get("notes", ""),
                start=datetime.combine(data["start_date"], data["start_time"]),
                time_zone=data.get("time_zone", ""),
                duration_minutes=data.get("duration_minutes"),
                rrule=data.get("rrule", ""),
                exdates=data.get("exdates") or [],
            )
        except DomainError as exc:
            raise forms.ValidationError(exc.message) from None
        data.update(clean.__dict__)
        for key, value in clean.__dict__.items():
            setattr(self.instance, key, value)
        return data


class ScheduleOverrideInline(admin.TabularInline):
    model = ScheduleOverride
    extra = 0
    fields = ["original", "cancelled", "start", "duration_minutes", "sequence"]
    readonly_fields = ["original", "sequence"]

    def has_add_permission(self, request, obj=None):
        return False  # from the campaign page or the API, which check the session exists


@admin.register(SessionSchedule)
class SessionScheduleAdmin(admin.ModelAdmin):
    form = SessionScheduleForm
    list_display = ["__str__", "campaign", "start_date", "start_time", "time_zone", "rrule", "sequence"]
    list_select_related = ["campaign"]
    search_fields = ["title", "campaign__name"]
    readonly_fields = ["uid", "sequence", "created_by", "created_at", "updated_at"]
    inlines = [ScheduleOverrideInline]

    def save_model(self, request, obj, form, change):
        if change and any(f in form.changed_data for f in services.MATERIAL):
            obj.sequence += 1
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        if any(fs.has_changed() for fs in formsets):
            SessionSchedule.objects.filter(pk=form.instance.pk).update(
                sequence=form.instance.sequence + 1, updated_at=timezone.now()
            )


@admin.register(CalendarFeed)
class CalendarFeedAdmin(admin.ModelAdmin):
    list_display = ["user", "campaign", "hint", "created_at", "revoked_at"]
    list_select_related = ["user", "campaign"]
    list_filter = ["revoked_at"]
    readonly_fields = ["user", "campaign", "token_hash", "hint", "created_at", "revoked_at"]
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False  # a token is shown once, to its owner

    @admin.action(description="Revoke the selected feeds")
    def revoke(self, request, queryset):
        queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())


@admin.register(UpcomingNotice)
class UpcomingNoticeAdmin(admin.ModelAdmin):
    list_display = ["schedule", "starts_at", "lead_minutes", "created_at"]
    list_select_related = ["schedule"]
    readonly_fields = ["schedule", "occurrence", "starts_at", "lead_minutes", "created_at"]

    def has_add_permission(self, request):
        return False


@admin.register(CalendarProfile)
class CalendarProfileAdmin(admin.ModelAdmin):
    list_display = ["user", "time_zone", "updated_at"]
    search_fields = ["user__username"]


@admin.register(ReminderDelivery)
class ReminderDeliveryAdmin(admin.ModelAdmin):
    list_display = ["notice", "channel", "user", "status", "attempts", "created_at"]
    list_filter = ["status", "channel"]
    list_select_related = ["notice", "user"]
    readonly_fields = ["notice", "channel", "user", "status", "attempts", "error", "created_at"]

    def has_add_permission(self, request):
        return False
