"""The calendar's pages (mounted at the site root by gtw_site/urls.py).

Route parameters are named as the rest of the site names them (`campaign_id`, and `code` for a
capability in the URL, like an invite code), so the isolation sweep can fill them."""

from django.urls import path

from campaigns.scheduling import views

urlpatterns = [
    path("campaigns/<int:campaign_id>/schedule", views.schedule_save, name="schedule_save"),
    path("campaigns/<int:campaign_id>/schedule/session", views.occurrence_change, name="occurrence_change"),
    path("campaigns/<int:campaign_id>/schedule/reminders", views.reminder_update, name="reminder_update"),
    path("campaigns/<int:campaign_id>/schedule/webhook", views.webhook_update, name="webhook_update"),
    path("campaigns/<int:campaign_id>/schedule/warmup", views.warmup_now, name="warmup_now"),
    path("account/calendar/", views.calendar_settings, name="calendar_settings"),
    # The feed token is the capability: `code`, like an invite's.
    path("calendar/<str:code>.ics", views.calendar_feed, name="calendar_feed"),
]
