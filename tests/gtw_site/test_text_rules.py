"""One text-storability rule and one error hierarchy in the shared base (issue 12).

gtw_site/text.py is the only place that says what PostgreSQL text and jsonb can hold; every app
calls it. gtw_site/errors.py owns the domain errors; campaigns.errors re-exports the very same
classes, so an error raised by shared-base code is caught and mapped like any other."""

from __future__ import annotations

import pytest

from gtw_site import errors, text

NUL = "a\x00b"
SURROGATE = "a\ud800b"


def test_campaigns_errors_are_the_shared_classes():
    """issue 12: ratelimit and the page middleware import the errors from gtw_site, campaigns'
    code from campaigns.errors: both must name one class, or a 429 would go unmapped."""
    import campaigns.errors as campaign_errors

    for name in ("DomainError", "NotFound", "Forbidden", "Invalid", "Conflict", "Gone", "RateLimited"):
        assert getattr(campaign_errors, name) is getattr(errors, name)
    assert (errors.RateLimited.status, errors.Invalid.status, errors.NotFound.status) == (429, 422, 404)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (NUL, "The action contains a NUL character."),
        (SURROGATE, "The action contains invalid Unicode (an unpaired surrogate)."),
    ],
)
def test_unstorable_text_is_a_clear_422(value, message):
    with pytest.raises(errors.Invalid) as caught:
        text.check_storable(value, what="The action")
    assert caught.value.message == message and caught.value.status == 422
    assert not text.is_storable(value) and text.has_unstorable({"k": [value]})


def test_storable_text_passes_untouched():
    sample = "Kira — «ça va» 🚀"
    assert text.check_storable(sample, what="x") is sample
    assert text.is_storable(sample) and not text.has_unstorable({"a": [sample, 1, None]})
    assert text.storable({"k\x00": ["x\ud800y", 3]}) == {"k": ["xy", 3]}


@pytest.mark.parametrize(
    ("value", "kwargs", "message"),
    [
        (None, {}, "The name is required."),
        (42, {}, "The name must be text."),
        ("x" * 11, {}, "The name is at most 10 characters."),
        ("  ok\x00 ", {}, "The name contains a NUL character."),
    ],
)
def test_clean_text_refuses_with_a_sentence(value, kwargs, message):
    with pytest.raises(errors.Invalid) as caught:
        text.clean_text(value, what="The name", max_len=10, **kwargs)
    assert caught.value.message == message


def test_clean_text_trims_and_allows_empty_when_optional():
    assert text.clean_text("  Vesper  ", what="The name", max_len=10) == "Vesper"
    assert text.clean_text(None, what="The name", max_len=10, required=False) == ""


def test_json_documents_are_checked_in_keys_values_and_depth():
    text.check_storable_json({"a": ["b", {"c": 1.5}], "d": None}, what="The deck")
    for bad in ({"ok": ["fine", {"key\x00": 1}]}, ["x", ["y", SURROGATE]]):
        with pytest.raises(errors.Invalid, match=r"^The deck contains"):
            text.check_storable_json(bad, what="The deck")
    deep: list = []
    for _ in range(100):
        deep = [deep]
    with pytest.raises(errors.Invalid, match=r"^The deck is nested too deeply\.$"):
        text.check_storable_json(deep, what="The deck")
