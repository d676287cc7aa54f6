from django.urls import path

from realtime.consumers import SessionConsumer
from realtime.crdt_consumer import SharedDocConsumer
from realtime.stage_consumer import StageConsumer

websocket_urlpatterns = [
    path("ws/sessions/<int:session_id>/", SessionConsumer.as_asgi()),
    path("ws/sessions/<int:session_id>/docs/<str:name>/", SharedDocConsumer.as_asgi()),
    path("ws/stage/<int:session_id>/", StageConsumer.as_asgi()),
]
