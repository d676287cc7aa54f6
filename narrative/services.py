"""Story decks in the database: trust configuration, install (signature checked), listing."""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

from django.conf import settings
from django.db import transaction

from campaigns.errors import Forbidden, Invalid
from gtw_site.text import check_storable_json
from narrative import decks
from narrative.models import StoryDeck

DECK_INSTALL_PERMISSION = "narrative.add_storydeck"


@functools.cache
def _trusted_from(files: tuple[str, ...], inline: str) -> dict[str, str]:
    trusted: dict[str, str] = {}
    for name in files:
        trusted.update(decks.load_trusted_keys(Path(name)))
    for pair in filter(None, (p.strip() for p in inline.split(","))):
        key_id, _, public = pair.partition("=")
        trusted.update(decks.parse_trusted({key_id.strip(): public.strip()}))
    return trusted


def trusted_keys() -> dict[str, str]:
    """Public keys allowed to sign decks: GTW_DECK_TRUSTED_KEY_FILES plus GTW_DECK_TRUSTED_KEYS.
    A pack's own trusted_keys.json is *not* trusted unless the operator lists it."""
    return _trusted_from(tuple(settings.GTW_DECK_TRUSTED_KEY_FILES), settings.GTW_DECK_TRUSTED_KEYS)


def can_install_decks(user) -> bool:
    """Installing a story deck is an operator's job: staff, or a user given the "Can add story
    deck" permission (the admin checks the same). An installed deck feeds every campaign's
    twists, so running a campaign of one's own is not enough."""
    return bool(
        user.is_authenticated and user.is_active and (user.is_staff or user.has_perm(DECK_INSTALL_PERMISSION))
    )


def check_can_install_decks(user) -> None:
    if not can_install_decks(user):
        raise Forbidden(
            "Only the site's operators can install story decks (staff, or users given the "
            "'Can add story deck' permission); running a campaign doesn't include it."
        )


def deck_install(*, document, user=None, pack=None) -> tuple[StoryDeck, bool]:
    """Verify and install (or update) a signed deck. Returns (deck, changed). Raises Invalid with
    the verifier's message for unsigned, untrusted, tampered or malformed decks."""
    if isinstance(document, (bytes, str)):
        raw = document.encode() if isinstance(document, str) else document
        try:
            document = decks.parse_json_bytes(raw, "deck")
        except decks.DeckError as exc:
            raise Invalid(str(exc)) from None
    # PostgreSQL's jsonb cannot hold NUL or a lone surrogate in any string, key or value: a
    # trusted signer's deck carrying one must be a 422, not a DataError.
    check_storable_json(document, what="The deck")
    try:
        deck = decks.verify_deck(document, trusted_keys())
    except decks.DeckError as exc:
        raise Invalid(str(exc)) from None
    digest = hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()
    with transaction.atomic():
        row = StoryDeck.objects.select_for_update().filter(slug=deck.slug).first()
        if row is not None and row.sha256 == digest:
            return row, False
        row = row or StoryDeck(slug=deck.slug)
        row.name, row.version, row.document = deck.name, deck.version, document
        row.key_id, row.sha256 = deck.key_id or "", digest
        row.pack = pack or row.pack  # an upload of a newer version keeps the pack it came from
        row.installed_by = user
        row.save()
    return row, True


def deck_list() -> list[StoryDeck]:
    return list(StoryDeck.objects.all())
