# The keyword half at a million memories (issue 20 part 3): one GIN entry per (campaign, word), so a
# scope's full-text candidates come from posting lists that hold only its campaign's memories.
# `memory_scope_search` (0003) ANDs a campaign marker with the query's words, but with campaigns'
# memories interleaved GIN still decodes most of each common word's posting list (~125,000 entries
# per word at 1M): 16 ms of a 1M search's keyword half. Here `crate` in campaign 59 is the entry
# `59.crate`, ~1/100 of the list. An index on an IMMUTABLE function of existing columns: no table
# rewrite; built CONCURRENTLY (1M memories: 41 s, 105 MB). See memory/retrieval.py `keyword_statement`.
from django.db import migrations

FUNCTION = "memory_campaign_words"

CREATE_FUNCTION = """
CREATE OR REPLACE FUNCTION memory_campaign_words(campaign bigint, lexemes tsvector) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT ARRAY(SELECT campaign::text || '.' || word FROM unnest(tsvector_to_array(lexemes)) word) $$
"""


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("memory", "0003_memory_scale_indexes"),
    ]

    operations = [
        migrations.RunSQL(CREATE_FUNCTION, f"DROP FUNCTION IF EXISTS {FUNCTION}(bigint, tsvector)"),
        migrations.RunSQL(
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {FUNCTION} ON memory_memory "
            f"USING gin ({FUNCTION}(campaign_id, search))",
            f"DROP INDEX CONCURRENTLY IF EXISTS {FUNCTION}",
        ),
    ]
