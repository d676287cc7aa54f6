"""Shared CRDT documents of a play session (notes, inventory, map), stored as append-only Yjs updates.

A document's content is the merge of all its update rows; compaction folds them into one snapshot
row (`is_snapshot`). Rows are never edited, only appended and — by compaction — replaced.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class SharedDoc(models.Model):
    session = models.ForeignKey("campaigns.PlaySession", on_delete=models.CASCADE, related_name="shared_docs")
    name = models.CharField(max_length=32)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    compacted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["session", "name"], name="shared_doc_session_name_unique")
        ]

    def __str__(self):
        return f"{self.name} · session {self.session_id}"


class SharedDocUpdate(models.Model):
    doc = models.ForeignKey(SharedDoc, on_delete=models.CASCADE, related_name="updates")
    data = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    is_snapshot = models.BooleanField(default=False)

    class Meta:
        indexes = [models.Index(fields=["doc", "id"], name="shared_doc_update_doc_id")]

    def __str__(self):
        kind = "snapshot" if self.is_snapshot else "update"
        return f"{kind} #{self.pk} of {self.doc_id}"
