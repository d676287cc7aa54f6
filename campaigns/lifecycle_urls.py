"""The campaign lifecycle's pages (mounted at the site root by gtw_site/urls.py)."""

from django.urls import path

from campaigns import lifecycle_views as views

urlpatterns = [
    path("campaigns/import", views.campaign_import, name="campaign_import"),
    path("campaigns/<int:campaign_id>/clone", views.campaign_clone, name="campaign_clone"),
    path("campaigns/<int:campaign_id>/archive", views.campaign_archive, name="campaign_archive"),
    path("campaigns/<int:campaign_id>/export", views.campaign_export, name="campaign_export"),
]
