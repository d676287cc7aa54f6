"""Memory's part of the pre-session warm-up (campaigns.scheduling.signals.warmup_requested):
run the recall the recap will need — the query embedded by the campaign's embedder, the table's
memories searched — so the first turn finds the model loaded and the index pages warm."""

from __future__ import annotations

import time

from campaigns.models import Campaign
from campaigns.scheduling.reminders import previously
from memory.models import Memory
from memory.retrieval import search_scoped, table_scope

QUERY_CHARS = 400


def on_warmup_requested(sender, *, campaign_id: int, **kwargs) -> list[dict]:
    started = time.perf_counter()
    if not Memory.objects.filter(table_scope(campaign_id=campaign_id)).exists():
        return [
            {
                "check": "recap recall",
                "ok": True,
                "detail": "no table memories yet: nothing to recall",
                "ms": 0,
            }
        ]
    name = Campaign.objects.filter(pk=campaign_id).values_list("name", flat=True).first() or ""
    query = (previously(campaign_id) or f"Previously in {name}")[:QUERY_CHARS]
    hits = search_scoped(scope=table_scope(campaign_id=campaign_id), query=query, k=6)
    ms = (time.perf_counter() - started) * 1000
    return [
        {
            "check": "recap recall",
            "ok": True,
            "detail": f"{len(hits)} memor{'y' if len(hits) == 1 else 'ies'} ready for the recap",
            "ms": round(ms, 1),
        }
    ]
