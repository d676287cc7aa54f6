"""Shared documents are checked where they are saved (issue 18 part 3): a block refuses the
update (nothing stored, a clear error code for the client); a hold stores it (a CRDT can't keep
part of a document back) and puts it in the GM's review queue once per distinct text."""

from __future__ import annotations

import pytest
from pycrdt import Doc

from campaigns.safety import services
from campaigns.safety.models import ReviewItem
from realtime import crdt
from tests.realtime.crdt_helpers import rows, text_update


def test_a_blocked_shared_note_is_refused_and_not_stored(session, gm, player):
    services.policy_set(campaign=session.campaign, user=gm, actions={"harassment": "block"})
    source = Doc()
    crdt.shared_doc_apply(
        session_id=session.pk, name="notes", update=text_update(source, 0, "Dock 7. "), user=player
    )
    with pytest.raises(crdt.DocRefused) as caught:
        crdt.shared_doc_apply(
            session_id=session.pk, name="notes", update=text_update(source, 8, "kys Dave"), user=player
        )
    assert caught.value.code == "content_blocked"
    assert len(rows(session, "notes")) == 1
    assert crdt.shared_doc_json(session_id=session.pk, name="notes") == {"text": "Dock 7. "}


def test_a_held_shared_note_is_stored_and_queued_once(session, gm, player):
    source = Doc()
    crdt.shared_doc_apply(
        session_id=session.pk, name="notes", update=text_update(source, 0, "kys Dave"), user=player
    )
    crdt.shared_doc_apply(
        session_id=session.pk, name="notes", update=text_update(source, 8, "!"), user=player
    )
    assert crdt.shared_doc_json(session_id=session.pk, name="notes") == {"text": "kys Dave!"}
    items = ReviewItem.objects.filter(campaign=session.campaign, source="doc")
    assert items.count() == 2  # one per distinct flagged text
    assert {i.author_id for i in items} == {player.pk}
    crdt.shared_doc_apply(
        session_id=session.pk, name="notes", update=text_update(source, 0, "A "), user=player
    )
    assert crdt.shared_doc_json(session_id=session.pk, name="notes")["text"] == "A kys Dave!"


def test_plain_shared_notes_are_not_queued(session, player):
    source = Doc()
    crdt.shared_doc_apply(
        session_id=session.pk,
        name="notes",
        update=text_update(source, 0, "Kill the engines at the gate."),
        user=player,
    )
    assert not ReviewItem.objects.exists()
