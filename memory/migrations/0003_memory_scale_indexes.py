# Memory search at scale (issue 20): the full-text index with each memory's campaign folded in
# (`memory_scope_search`), the covering scope index that lets one scope's vectors be
# searched exactly from the index alone (memory/models.py `scope_vectors_index`: only for
# embeddings of up to 640 dimensions, a B-tree entry's limit), and statistics that tell the planner
# a namespace implies its campaign (without them it multiplies the two selectivities and guesses a
# scope of ~6,000 memories at ~600). Built CONCURRENTLY: a host with a million memories keeps
# writing while it builds (minutes).
from django.conf import settings
from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models

COVERED = settings.GTW_MEMORY["dimensions"] <= 640
STATISTICS = "memory_scope_stats"


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("memory", "0002_memory_import"),
    ]

    operations = [
        *(
            [
                AddIndexConcurrently(
                    model_name="memory",
                    index=models.Index(
                        fields=["campaign", "namespace"],
                        include=["id", "created_at", "importance", "embedding"],
                        name="memory_scope_vectors",
                    ),
                )
            ]
            if COVERED
            else []
        ),
        # The keyword half (memory/retrieval.py `keyword_query`): each memory's lexemes plus its
        # campaign's marker `~c<id>`, so one campaign's matches come from the index without the
        # match list of the whole table. Raw SQL: the expression must be exactly the query's.
        migrations.RunSQL(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS memory_scope_search ON memory_memory USING gin "
            "((search || array_to_tsvector(ARRAY[('~c'::text || (campaign_id)::text)])))",
            "DROP INDEX CONCURRENTLY IF EXISTS memory_scope_search",
        ),
        migrations.RunSQL(
            f"CREATE STATISTICS IF NOT EXISTS {STATISTICS} (dependencies, mcv) "
            "ON campaign_id, namespace FROM memory_memory; ANALYZE memory_memory",
            f"DROP STATISTICS IF EXISTS {STATISTICS}",
        ),
    ]
