"""What memory tells the layers above, without calling up (they connect at ready())."""

from django.dispatch import Signal

# Memories were recorded from a session's committed events (memory.services.record_from_events).
# kwargs: session (PlaySession), events (the committed events), memories (the new Memory rows).
# Narrative listens to schedule session summaries.
memories_recorded = Signal()
