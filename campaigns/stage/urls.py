"""Stage pages and the campaign page's fireteam / alliance forms (mounted at the site root)."""

from django.urls import path

from campaigns.stage import views

urlpatterns = [
    path("sessions/<int:session_id>/stage/", views.stage_page, name="stage"),
    path("campaigns/<int:campaign_id>/stage", views.stage_open, name="stage_open"),
    path("campaigns/<int:campaign_id>/fireteams", views.fireteam_create, name="fireteam_create"),
    path("fireteams/<int:fireteam_id>/edit", views.fireteam_update, name="fireteam_update"),
    path("fireteams/<int:fireteam_id>/delete", views.fireteam_delete, name="fireteam_delete"),
    path("fireteams/<int:fireteam_id>/members", views.fireteam_member, name="fireteam_member"),
    path("campaigns/<int:campaign_id>/alliances", views.alliance_create, name="alliance_create"),
    path("alliances/<int:alliance_id>/reputation", views.alliance_reputation, name="alliance_reputation"),
]
