from django.urls import path

from media.images import views

urlpatterns = [
    path("images/<int:image_id>/file", views.image_file, name="image-file"),
    path("images/<int:image_id>/<str:action>", views.image_action, name="image_action"),
    path("campaigns/<int:campaign_id>/images/", views.gallery, name="image_gallery"),
    path("sessions/<int:session_id>/image", views.session_image, name="session_image"),
]
