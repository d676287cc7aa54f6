"""Old path of narrative.llm.offline.batch (the offline narrator's stage mode)."""

from narrative.llm.offline.batch import (  # noqa: F401
    MAX_NAMED_PER_TEAM,
    ON_STAGE,
    SUCCESS,
    squad_summary,
    stream_batch,
    summarise,
)
