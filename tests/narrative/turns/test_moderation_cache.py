"""The lines and veils a turn's moderation checks every sentence against are compiled once per
distinct text (campaigns.safety.classifiers.local._phrase_pattern), not once per sentence, and a
line the table adds, edits or drops applies to the very next sentence checked."""

from __future__ import annotations

from campaigns.safety.classifiers import local


def test_a_line_is_compiled_once_and_a_changed_line_applies_at_once():
    local._phrase_pattern.cache_clear()
    classifier = local.LocalModeration()
    spiders = "Something with too many legs: spiders pour out of the vent."
    clowns = "A troupe of clowns waits at the airlock."
    for _ in range(5):  # five sentences of one turn, same lines
        verdict = classifier.classify(spiders, lines=["spiders"], veils=["harm to animals"])
        assert "lines" in verdict.scores
    info = local._phrase_pattern.cache_info()
    assert info.misses == 2 and info.hits == 8  # built once per line or veil, then reused

    # The table changed its lines between two sentences: the new ones hold at once.
    verdict = classifier.classify(spiders, lines=["clowns"], veils=[])
    assert "lines" not in verdict.scores
    assert "lines" in classifier.classify(clowns, lines=["clowns"]).scores
    assert "lines" not in classifier.classify(clowns, lines=["  "]).scores  # dropped: nothing held
