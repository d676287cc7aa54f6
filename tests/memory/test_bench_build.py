"""`gtw bench memory` builds its dataset into a bare table: every index of memory_memory dropped
while it loads (binary COPY), then built again from the definitions it noted. The table must come
out with exactly the indexes it had, and the rows as they were sent."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from django.db import connection

from gtw_site.bench import memory as bench
from memory.models import DIMENSIONS, Memory, campaign_namespace


def _indexes() -> dict[str, str]:
    with connection.cursor() as cur:
        cur.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'memory_memory'")
        return dict(cur.fetchall())


@pytest.fixture
def noted(tmp_path, monkeypatch):
    path = tmp_path / "indexes.json"
    monkeypatch.setattr(bench, "BUILD_INDEXES", path)
    return path


def test_indexes_dropped_for_the_load_come_back_the_same(db, noted):
    before = _indexes()
    assert {"memory_embedding_hnsw", "memory_scope_vectors", "memory_scope_search"} <= set(before)
    dropped = bench._drop_indexes()
    assert set(_indexes()) == {"memory_memory_pkey"}  # only the primary key's stays
    assert noted.exists() and set(dropped) == set(before) - {"memory_memory_pkey"}
    took = bench._restore_indexes()
    assert set(took) == set(dropped)
    assert _indexes() == before
    assert not noted.exists()


def test_an_interrupted_build_gets_its_indexes_back(db, noted):
    """A build killed between the drop and the rebuild: the next set-up restores what was noted,
    the HNSW index dropped first (before the old rows are deleted) as well as the rest."""
    before = _indexes()
    assert bench._drop_indexes(only=bench.HNSW_INDEX) == [bench.HNSW_INDEX]
    assert set(_indexes()) == set(before) - {bench.HNSW_INDEX}
    bench._drop_indexes()
    assert bench._restore_indexes() and _indexes() == before
    assert bench._restore_indexes() == {}  # nothing noted, nothing to do


def test_binary_copy_stores_the_rows_as_sent(campaign):
    vector = np.random.default_rng(3).standard_normal(DIMENSIONS).astype(np.float32)
    when = datetime(2026, 5, 4, 3, 2, 1, tzinfo=UTC)
    namespace = campaign_namespace(campaign.pk)
    rows = [
        (campaign.pk, namespace, "semantic", "Mira stashed the datachip", vector, 0.7, when, {"k": 1}),
        (campaign.pk, namespace, "episodic", "no vector yet", None, 0.2, when, {}),
    ]
    bench.copy_memories(rows)
    stored = {m.text: m for m in Memory.objects.filter(campaign=campaign)}
    first, second = stored["Mira stashed the datachip"], stored["no vector yet"]
    assert np.array_equal(np.asarray(first.embedding, dtype=np.float32), vector)
    assert first.embedding_model == "bench" and second.embedding_model == ""
    assert second.embedding is None
    assert (first.type, first.importance, first.created_at) == ("semantic", 0.7, when)
    assert first.metadata == {"k": 1}
    assert first.tags == [] and first.sources == []
    # The generated full-text column is computed by the server as for any insert.
    assert Memory.objects.filter(campaign=campaign, search="datachip").get() == first
