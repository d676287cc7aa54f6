from django.apps import AppConfig


class MemoryConfig(AppConfig):
    name = "memory"

    def ready(self):
        from campaigns import events
        from memory.services import queue_record_from_events

        events.add_listener(queue_record_from_events)
