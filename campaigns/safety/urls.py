"""The review queue and the content settings (mounted at the site root by gtw_site/urls.py)."""

from django.urls import path

from campaigns.safety import views

urlpatterns = [
    path("campaigns/<int:campaign_id>/safety/", views.review_queue, name="safety_queue"),
    path("campaigns/<int:campaign_id>/safety/policy", views.policy_save, name="safety_policy"),
    path("campaigns/<int:campaign_id>/safety/items/<int:item_id>", views.review_decide, name="safety_decide"),
]
