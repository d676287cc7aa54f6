"""Memories: what the campaign remembers, each in exactly one namespace.

`campaign:<id>` is shared table knowledge; `player:<user id>` is what only that player's
character saw, was whispered, or wrote down. Retrieval filters by namespace in SQL (see
memory/retrieval.py): privacy is a WHERE clause, not a prompt instruction.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.db import models
from pgvector.django import HnswIndex, VectorField

DIMENSIONS = settings.GTW_MEMORY["dimensions"]
# The covering scope index carries each memory's vector; a B-tree entry holds at most ~2,700 bytes,
# so it exists for embeddings of up to 640 dimensions (4 bytes each; the default model has 384).
COVER_MAX_DIMENSIONS = 640


def scope_vectors_index() -> list[models.Index]:
    """`memory_scope_vectors`: the scope key with the vector and what ranking needs beside it, so
    the exact search of one scope (memory/retrieval.py `vector_candidates`) is an index-only scan
    of the scope's entries, side by side, not one heap page per memory (issue 20)."""
    if DIMENSIONS > COVER_MAX_DIMENSIONS:
        return []
    return [
        models.Index(
            name="memory_scope_vectors",
            fields=["campaign", "namespace"],
            include=["id", "created_at", "importance", "embedding"],
        )
    ]


def campaign_namespace(campaign_id: int) -> str:
    return f"campaign:{campaign_id}"


def player_namespace(user_id: int) -> str:
    return f"player:{user_id}"


class Memory(models.Model):
    class Type(models.TextChoices):
        EPISODIC = "episodic", "Episodic (what happened)"
        SEMANTIC = "semantic", "Semantic (facts about the world)"
        DECLARATIVE = "declarative", "Declarative (notes, summaries)"
        PROCEDURAL = "procedural", "Procedural (how things are done)"

    campaign = models.ForeignKey("campaigns.Campaign", on_delete=models.CASCADE, related_name="memories")
    namespace = models.CharField(max_length=64)
    type = models.CharField(max_length=12, choices=Type.choices, default=Type.EPISODIC)
    text = models.TextField()
    embedding = VectorField(dimensions=DIMENSIONS, null=True, blank=True)
    embedding_model = models.CharField(max_length=80, blank=True)
    search = models.GeneratedField(
        expression=SearchVector("text", config="english"),
        output_field=SearchVectorField(),
        db_persist=True,
    )
    tags = ArrayField(models.CharField(max_length=40), default=list, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    importance = models.FloatField(default=0.5)
    source_session = models.ForeignKey(
        "campaigns.PlaySession", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    source_seq = models.PositiveIntegerField(null=True, blank=True)
    # Summaries point at the memories they condense.
    sources = ArrayField(models.BigIntegerField(), default=list, blank=True)
    # Branching copies memories into the new campaign; each copy remembers where it came from.
    inherited_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    last_recalled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            HnswIndex(
                name="memory_embedding_hnsw",
                fields=["embedding"],
                m=16,
                ef_construction=64,
                opclasses=["vector_cosine_ops"],
            ),
            GinIndex(name="memory_search_gin", fields=["search"]),
            GinIndex(name="memory_tags_gin", fields=["tags"]),
            models.Index(name="memory_scope", fields=["campaign", "namespace"]),
            *scope_vectors_index(),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(importance__gte=0) & models.Q(importance__lte=1),
                name="memory_importance_0_1",
            ),
        ]

    def __str__(self):
        return f"[{self.namespace}] {self.text[:60]}"

    @property
    def is_private(self) -> bool:
        return self.namespace.startswith("player:")


class MemoryImport(models.Model):
    """A bulk import (JSONL) sent through the API or the memory page. The request only checks
    the file's size and queues it; a job on the memory cluster records it line by line, saving
    its progress as it goes, and keeps the result (how many memories, which lines failed why)."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Importing"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    campaign = models.ForeignKey(
        "campaigns.Campaign", on_delete=models.CASCADE, related_name="memory_imports"
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    filename = models.CharField(max_length=200, blank=True)
    # The uploaded lines, as sent (bytes: a NUL in a line is that line's error, not the file's);
    # emptied once the job has finished with them.
    data = models.BinaryField(default=bytes, blank=True)
    total_lines = models.PositiveIntegerField(default=0)
    done_lines = models.PositiveIntegerField(default=0)
    imported = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)  # the first 100: {"line", "error"}
    message = models.TextField(blank=True)  # why a failed import stopped
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(name="memory_import_owner", fields=["created_by", "status"])]

    def __str__(self):
        return f"import #{self.pk} ({self.status}, {self.done_lines}/{self.total_lines})"

    @property
    def active(self) -> bool:
        return self.status in (self.Status.QUEUED, self.Status.RUNNING)
