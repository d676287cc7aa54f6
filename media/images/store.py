"""Picture files, content-addressed, through Django's storage API.

`save(data, content_type)` names the file by the SHA-256 of its bytes (images/ab/abcdef….png), so
the same picture is stored once however many rows point at it. On the local file system it
writes a temporary file beside the final name, fsyncs it and renames it into place: a full disk
or a killed worker never leaves a half picture under a real name. Other backends (S3-compatible
via django-storages) upload whole objects, which is atomic already."""

from __future__ import annotations

import contextlib
import hashlib
import os
import uuid

from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, default_storage

EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}


def storage():
    return default_storage


def name_for(data: bytes, content_type: str) -> str:
    digest = hashlib.sha256(data).hexdigest()
    return f"images/{digest[:2]}/{digest}.{EXTENSIONS.get(content_type, 'bin')}"


def save(data: bytes, content_type: str) -> str:
    """The storage name of `data`, written if it is not there yet. Raises OSError (e.g. ENOSPC)
    with nothing left behind."""
    store = storage()
    name = name_for(data, content_type)
    if store.exists(name):
        return name
    if isinstance(store, FileSystemStorage):
        final = store.path(name)
        os.makedirs(os.path.dirname(final), exist_ok=True)
        temp = f"{final}.{uuid.uuid4().hex}.part"
        try:
            with open(temp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(temp, final)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
        return name
    saved = store.save(name, ContentFile(data))
    return saved


def open_bytes(name: str) -> bytes:
    with storage().open(name, "rb") as fh:
        return fh.read()
