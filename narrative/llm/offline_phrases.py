"""Old path of narrative.llm.offline.phrases (the offline narrator's phrase tables)."""

from narrative.llm.offline.phrases import *  # noqa: F403
