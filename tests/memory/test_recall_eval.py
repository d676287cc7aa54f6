"""`gtw bench recall`: the harness must score what it is given, and count every leak.

The metrics are checked on rankings whose answers are known by hand (a metric bug fails here, not
silently in docs/BENCHMARKS.md); the loader and the leak counter on a tiny version of the set (one
campaign, a few questions) in the test database.
"""

from __future__ import annotations

import hashlib
from types import SimpleNamespace

import numpy as np
import pytest

from gtw_site.bench import recall as bench
from tests.bench import recall_set as rs

# ---- the metrics, on known rankings -----------------------------------------------------------


def test_recall_and_reciprocal_rank_on_a_known_ranking():
    ranked = [11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21]
    # Both evidence memories in the top 5; the first at rank 2.
    assert bench.question_scores(ranked, {12, 15}) == {
        "recall@5": 1.0,
        "recall@10": 1.0,
        "rr": 0.5,
        "all@10": 1.0,
    }
    # One at rank 3, one at rank 8: half in the top 5, all in the top 10.
    assert bench.question_scores(ranked, {13, 18}) == {
        "recall@5": 0.5, "recall@10": 1.0, "rr": pytest.approx(1 / 3), "all@10": 1.0,
    }  # fmt: skip
    # Rank 11 is outside the top 10: it counts for nothing, not even the reciprocal rank.
    assert bench.question_scores(ranked, {21}) == {
        "recall@5": 0.0,
        "recall@10": 0.0,
        "rr": 0.0,
        "all@10": 0.0,
    }
    # One of two found at rank 10: recall 0.5, all@10 0.
    assert bench.question_scores(ranked, {20, 99}) == {
        "recall@5": 0.0,
        "recall@10": 0.5,
        "rr": 0.1,
        "all@10": 0.0,
    }


def test_any_questions_count_one_answer_as_enough():
    ranked = [1, 2, 3, 4, 5, 6, 7]
    assert bench.question_scores(ranked, {7, 40, 41}, "any") == {
        "recall@5": 0.0, "recall@10": 1.0, "rr": pytest.approx(1 / 7), "all@10": 1.0,
    }  # fmt: skip
    assert bench.question_scores(ranked, {7, 40, 41}, "all")["recall@10"] == pytest.approx(1 / 3)
    with pytest.raises(ValueError):
        bench.question_scores(ranked, set())


def test_separation_finds_the_threshold_between_the_two_groups():
    sep = bench.separation(answerable=[0.9, 0.8, 0.7, 0.3], adversarial=[0.1, 0.2, 0.5, 0.6])
    # t = 0.7: all four adversarial below, three of four answerable at or above (t = 0.3: 2/4 and 4/4).
    assert sep == {"threshold": 0.7, "adversarial_below": 1.0, "answerable_above": 0.75, "balanced": 0.875}
    apart = bench.separation(answerable=[0.9, 0.8], adversarial=[0.1, 0.2])
    assert apart["threshold"] == 0.8 and apart["balanced"] == 1.0
    # A tie (0.4: 1/2 and 2/2; 0.9: 2/2 and 1/2) goes to the lower threshold.
    assert bench.separation(answerable=[0.9, 0.4], adversarial=[0.5, 0.1])["threshold"] == 0.4
    assert bench.separation([], [0.1])["threshold"] is None


def _hit(mid: int, namespace: str, score: float = 1.0, distance: float | None = 0.5):
    return SimpleNamespace(
        memory=SimpleNamespace(id=mid, namespace=namespace), score=score, distance=distance
    )


def test_summary_averages_per_category_and_counts_leaks():
    ctx = {0: {"ids": {"a": 1, "b": 2, "c": 3}, "allowed": {"p0": {"campaign:1", "player:10"}}}}

    def q(qid, category, evidence, kind="x"):
        return {"id": qid, "campaign": 0, "category": category, "kind": kind, "evidence": evidence,
                "match": "all", "viewer": "p0"}  # fmt: skip

    questions = [
        q("q1", "single", ["a"]),
        q("q2", "single", ["b"]),
        q("q3", "multihop", ["a", "c"]),
        q("q4", "privacy", [], kind="other"),
        q("q5", "adversarial", []),
    ]
    answers = {
        "q1": [_hit(1, "campaign:1", 0.9)],  # rank 1
        "q2": [_hit(9, "campaign:1", 0.8), _hit(2, "player:10")],  # rank 2, own private: no leak
        "q3": [_hit(3, "campaign:1", 0.7)],  # half the evidence
        "q4": [_hit(7, "player:11", 0.6), _hit(8, "player:12"), _hit(6, "campaign:1")],  # two leaks
        "q5": [_hit(5, "campaign:1", 0.1)],
    }
    asked = bench.ask_all(questions, lambda q: (answers[q["id"]], 2.0), ctx)
    s = bench.summarize(asked)
    assert s["categories"]["single"]["recall@10"] == 1.0
    assert s["categories"]["single"]["mrr"] == 0.75
    assert s["categories"]["multihop"]["recall@10"] == 0.5
    assert s["categories"]["multihop"]["all@10"] == 0.0
    assert s["categories"]["privacy"]["leaks"] == 2 and s["categories"]["privacy"]["scored"] == 0
    assert s["overall"]["leaks"] == 2
    assert s["overall"]["scored"] == 3
    assert s["overall"]["recall@10"] == round((1 + 1 + 0.5) / 3, 3)
    assert s["overall"]["p95_ms"] == 2.0
    # The adversarial top (0.1) is under every answerable top (0.7 and up).
    assert s["adversarial"]["score"]["adversarial_below"] == 1.0
    assert s["adversarial"]["score"]["answerable_above"] == 1.0


# ---- the set ---------------------------------------------------------------------------------


def test_the_set_is_deterministic_and_labelled():
    one, again = rs.campaign(3), rs.campaign(3)
    assert one == again
    keys = {m["key"]: m for m in one["memories"]}
    assert len(one["memories"]) >= 400 and len(one["sessions"]) >= 15
    assert {q["category"] for q in one["questions"]} == set(rs.CATEGORIES)
    for q in one["questions"]:
        assert all(k in keys for k in q["evidence"])
        assert bool(q["evidence"]) != (q["category"] == "adversarial" or q["kind"] == "other")
        if q["category"] == "privacy" and q["evidence"]:
            # The evidence is the asking player's own whisper.
            assert {keys[k]["ns"] for k in q["evidence"]} == {q["viewer"]}
    # --phrasing alt: most questions worded otherwise, same labels (the wording is all that moves).
    assert sum(q["q_alt"] != q["q"] for q in one["questions"]) > 0.6 * len(one["questions"])
    # A campaign does not depend on how many are generated.
    sets = rs.generate(4)
    assert sets[3] == one
    # --questions: the same even spread over categories and campaigns every time.
    picked = rs.select(sets, questions=60)
    assert picked == rs.select(sets, questions=60) and len(picked) == 60
    spread = {(q["category"], q["campaign"]) for q in picked}
    assert spread == {(cat, i) for cat in rs.CATEGORIES for i in range(4)}
    assert {q["category"] for q in rs.select(sets, category="temporal")} == {"temporal"}


# ---- loading and leaks, in the database ------------------------------------------------------


class FakeEmbedder:
    name, model = "fake", "sha-vectors"

    def __init__(self):
        self.texts = 0

    def embed(self, texts):
        from memory.models import DIMENSIONS

        self.texts += len(texts)
        out = []
        for t in texts:
            seed = int.from_bytes(hashlib.sha256(t.encode()).digest()[:8], "big")
            v = np.random.default_rng(seed).standard_normal(DIMENSIONS).astype(np.float32)
            out.append(v / np.linalg.norm(v))
        return out


def _tiny() -> dict:
    """Campaign 0 cut down: two questions a category (all privacy ones), their evidence, every
    whisper, and 30 other memories."""
    camp = rs.campaign(0)
    picked = []
    for cat in rs.CATEGORIES:
        qs = [q for q in camp["questions"] if q["category"] == cat]
        picked += qs if cat == "privacy" else qs[:2]
    keep = {k for q in picked for k in q["evidence"]}
    keep |= {m["key"] for m in camp["memories"] if m["ns"] != "campaign"}
    keep |= {m["key"] for m in camp["memories"][:30]}
    return {**camp, "memories": [m for m in camp["memories"] if m["key"] in keep], "questions": picked}


@pytest.mark.django_db
def test_load_stores_dates_sessions_and_namespaces_and_counts_leaks(content, tmp_path):
    from memory import retrieval
    from memory.models import Memory

    camp = _tiny()
    embedder = FakeEmbedder()
    ctx = {0: bench.load_campaign(camp, embedder, folder=tmp_path)}
    texts = {m["text"] for m in camp["memories"]}  # the same line said twice is embedded once
    assert embedder.texts == len(texts)
    c = ctx[0]
    rows = {
        m.id: m for m in Memory.objects.filter(campaign_id=c["campaign"]).select_related("source_session")
    }
    assert len(rows) == len(camp["memories"]) == len(c["ids"])
    for m in camp["memories"]:
        row = rows[c["ids"][m["key"]]]
        assert row.text == m["text"]
        assert row.metadata["game_date"] == m["game_date"]
        assert row.created_at.isoformat() == m["real"]
        assert row.source_session.number == m["session"] and row.source_seq == m["seq"]
        want = "campaign" if m["ns"] == "campaign" else f"player:{c['users'][m['ns']].id}"
        assert row.namespace.startswith(want)
    # Loading again reuses it (same set, same embedder): nothing embedded, the same rows.
    again = bench.load_campaign(camp, embedder, folder=tmp_path)
    assert again["reused"] and again["ids"] == c["ids"] and embedder.texts == len(texts)
    # A new embedder finds its vectors in the disk cache.
    fresh = FakeEmbedder()
    bench.embed_cached([m["text"] for m in camp["memories"]], fresh, tmp_path)
    assert fresh.texts == 0

    privacy = [q for q in camp["questions"] if q["category"] == "privacy"]
    # The product's scope: no leaks.
    product = bench.ask_all(privacy, bench.searcher("keyword", ctx), ctx)
    assert bench.summarize(product)["overall"]["leaks"] == 0

    # An omniscient GM's scope asked on the players' behalf leaks the others' whispers: counted.
    def omniscient(q):
        scope = retrieval.scope_filter(campaign_id=c["campaign"], user_id=0, is_gm=True, omniscient=True)
        return retrieval.search_scoped(scope=scope, query=q["q"], k=10, mode="keyword"), 1.0

    # The narrator's scopes: the table's narration never holds a whisper, an aside only the asker's.
    narrator = bench.narrator_leaks(privacy, ctx)
    assert narrator == {"asked": len(privacy), "table_leaks": 0, "aside_leaks": 0}

    leaky = bench.ask_all(privacy, omniscient, ctx)
    counted = bench.summarize(leaky)["overall"]["leaks"]
    by_hand = sum(
        1 for a in leaky for mid in a.ranked if rows[mid].namespace not in c["allowed"][a.question["viewer"]]
    )
    assert counted == by_hand > 0


def test_narrator_leaks_counts_what_each_scope_must_not_hold(monkeypatch):
    from memory import retrieval

    ctx = {
        0: {
            "campaign": 1,
            "users": {"p0": SimpleNamespace(id=10)},
            "allowed": {"p0": {"campaign:1", "player:10"}},
        }
    }
    questions = [
        {"id": "q1", "campaign": 0, "category": "privacy", "viewer": "p0", "q": "the note?"},
        {"id": "q2", "campaign": 0, "category": "single", "viewer": "p0", "q": "not asked"},
    ]
    answers = {
        # The table's narration got the player's own whisper and another's: two leaks there.
        False: [_hit(1, "campaign:1"), _hit(2, "player:10"), _hit(3, "player:11")],
        # The aside got a table memory: one leak (an aside holds the player's own memories only).
        True: [_hit(2, "player:10"), _hit(1, "campaign:1")],
    }
    monkeypatch.setattr(retrieval, "recall_for_player", lambda **kw: answers[kw["private"]])
    assert bench.narrator_leaks(questions, ctx) == {"asked": 1, "table_leaks": 2, "aside_leaks": 1}


def test_padding_makes_a_longer_campaign_without_touching_a_label():
    camp = rs.campaign(1)
    padded = rs.pad(camp, 900)
    assert len(padded["memories"]) == 900 and padded["questions"] == camp["questions"]
    assert padded["name"] != camp["name"]  # loaded beside the plain set, not over it
    added = [m for m in padded["memories"] if m["kind"] == "filler"]
    # Nothing added is a meeting, an NPC's line, a success or an item: no question gains an answer.
    assert len(added) == 900 - len(camp["memories"])
    assert not {m["event_type"] for m in added} & {"NpcSpoke", "Whisper", "RewardGranted", "CardDrawn"}
    assert not any("success" in m["text"] for m in added)
    # Within each session the set's memories keep their order; seqs run 1..n again.
    for s in camp["sessions"]:
        old = [m["key"] for m in camp["memories"] if m["session"] == s["number"]]
        new = [m for m in padded["memories"] if m["session"] == s["number"]]
        assert [m["key"] for m in new if m["kind"] != "filler"] == old
        assert [m["seq"] for m in new] == list(range(1, len(new) + 1))
        assert new[0]["kind"] == "scene"


def test_a_fact_stands_for_the_evidence_it_was_read_in():
    def fact(mid, sources, namespace="campaign:1"):
        return SimpleNamespace(
            memory=SimpleNamespace(id=mid, namespace=namespace, tags=["fact"], sources=sources)
        )

    summary = SimpleNamespace(
        memory=SimpleNamespace(id=50, namespace="campaign:1", tags=["summary"], sources=[7])
    )
    hits = [fact(90, [3, 7]), summary, fact(91, [7]), _hit(7, "campaign:1"), fact(92, [8])]
    # The first fact stands for 7 (its only source among the evidence), at rank 1; the second has
    # nothing left to stand for; a summary never stands in; a fact of other memories neither.
    assert bench.credited(hits, {7}) == ([7, 50, 91, 7, 92], 1)
    assert bench.question_scores(bench.credited(hits, {7})[0], {7})["rr"] == 1.0
    assert bench.credited(hits, {99}) == ([90, 50, 91, 7, 92], 0)
