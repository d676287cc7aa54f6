"""Fair dice, the pure part: gtw-dice-v2 seeds mix in a committed per-session secret, and a
roll re-verifies from its recorded seed inputs (issue 11 hole 8)."""

from __future__ import annotations

import hashlib
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from missions.rules import dice

ids = st.integers(1, 10**9)
seqs = st.integers(1, 10**6)
secrets = st.binary(min_size=32, max_size=32).map(bytes.hex)


def test_v2_seed_matches_the_documented_hash():
    secret = "ab" * 32
    text = f"gtw-dice-v2:42:7:3:{secret}".encode()
    assert (
        dice.derive_seed(42, 7, 3, secret) == int.from_bytes(hashlib.sha256(text).digest()[:8], "big") >> 11
    )
    assert "gtw-dice-v2:{campaign_id}:{session_id}:{seq}:{secret}" in dice.derive_seed.__doc__
    assert dice.commitment(secret) == hashlib.sha256(secret.encode()).hexdigest()


@given(ids, ids, seqs, secrets, secrets)
def test_a_player_cannot_compute_a_v2_seed_from_public_values(campaign, session, seq, secret, other):
    """issue 11 hole 8: the v1 seed, computable from (campaign, session, seq), is not the seed
    a v2 roll uses, and the seed depends on the secret."""
    seed = dice.derive_seed(campaign, session, seq, secret)
    assert 0 <= seed < 2**53
    assert seed != dice.derive_seed(campaign, session, seq)
    if other != secret:
        assert seed != dice.derive_seed(campaign, session, seq, other)
    assert seed == dice.SeedKey(campaign, session, secret).seed(seq)


@pytest.mark.parametrize("bad", ["", "AB" * 32, "ab" * 31, "ab" * 33, "zz" * 32, 7, b"ab" * 32])
def test_a_malformed_secret_is_a_dice_error(bad):
    with pytest.raises(dice.DiceError):
        dice.derive_seed(1, 2, 3, bad)
    with pytest.raises(dice.DiceError):
        dice.commitment(bad)


@given(ids, ids, secrets, secrets, st.lists(seqs, min_size=1, max_size=20))
def test_the_key_in_force_is_the_latest_committed_at_or_before_the_seq(campaign, session, a, b, probes):
    pairs = [(5, b), (1, a)]  # any order
    for seq in probes:
        key = dice.key_at(campaign, session, seq, pairs)
        assert key.secret == (a if seq < 5 else b)
        # Re-deriving later (a re-run turn) gives the same seed.
        assert key.seed(seq) == dice.key_at(campaign, session, seq, list(reversed(pairs))).seed(seq)
    assert dice.key_at(campaign, session, 3, []).derivation == dice.V1
    assert dice.key_at(campaign, session, 3, [(4, a)]).secret is None  # before its first commitment


def test_a_record_names_the_commitment_never_the_secret():
    secret = "5e" * 32
    record = dice.SeedKey(3, 4, secret).record()
    assert record == {
        "derivation": dice.V2,
        "campaign": 3,
        "session": 4,
        "commitment": dice.commitment(secret),
    }
    assert secret not in repr(record)
    assert dice.SeedKey(3, 4).record() == {"derivation": dice.V1, "campaign": 3, "session": 4}


def _check_payload(key: dice.SeedKey, seq: int, **params) -> tuple[dict, int]:
    seed = key.seed(seq)
    check = dice.skill_check(rng=random.Random(seed), **params)
    return {"kind": "check", **check.to_dict(), "seed_from": key.record()}, seed


def _roll_payload(key: dice.SeedKey, seq: int, expression: str) -> tuple[dict, int]:
    seed = key.seed(seq)
    rolled = dice.roll(random.Random(seed), expression)
    return {"kind": "roll", **rolled.to_dict(), "seed_from": key.record()}, seed


@given(
    secrets,
    seqs,
    st.integers(-20, 20),
    st.integers(1, 40),
    st.booleans(),
    st.booleans(),
    st.sampled_from(["d20", "2d6+1", "4d8-2", "d100"]),
)
def test_every_roll_reverifies_from_its_record_and_the_revealed_secret(
    secret, seq, modifier, dc, advantage, disadvantage, expression
):
    key = dice.SeedKey(11, 22, secret)
    check, check_seed = _check_payload(
        key, seq, modifier=modifier, dc=dc, advantage=advantage, disadvantage=disadvantage
    )
    rolled, roll_seed = _roll_payload(key, seq, expression)
    for payload, seed in ((check, check_seed), (rolled, roll_seed)):
        record = dice.record_of(payload, campaign_id=999, session_id=999)  # the record wins
        result = dice.verify_roll(payload, seq=seq, recorded_seed=seed, record=record, secret=secret)
        assert result.ok, result.problems
        assert list(result.faces) == payload["faces"] and result.derivation == dice.V2


def test_tampering_is_a_mismatch_said_in_words():
    secret, other = "01" * 32, "02" * 32
    key = dice.SeedKey(1, 2, secret)
    payload, seed = _check_payload(key, 9, modifier=2, dc=15)
    record = dice.record_of(payload, campaign_id=1, session_id=2)

    wrong_secret = dice.verify_roll(payload, seq=9, recorded_seed=seed, record=record, secret=other)
    assert not wrong_secret.ok
    assert any("commitment" in p for p in wrong_secret.problems)

    faked = {**payload, "faces": [20], "kept": 20, "natural": 20, "total": 22, "outcome": "critical_success"}
    if faked["faces"] != payload["faces"]:
        result = dice.verify_roll(faked, seq=9, recorded_seed=seed, record=record, secret=secret)
        assert not result.ok and any("the event shows [20]" in p for p in result.problems)

    moved = dice.verify_roll(payload, seq=10, recorded_seed=seed, record=record, secret=secret)
    assert not moved.ok and any("is not the seed" in p for p in moved.problems)


def test_a_roll_from_before_fair_dice_verifies_as_v1_from_public_values():
    seed = dice.derive_seed(5, 6, 7)
    rolled = dice.roll(random.Random(seed), "3d6")
    payload = {"kind": "roll", **rolled.to_dict()}  # no seed_from: recorded before fair dice
    record = dice.record_of(payload, campaign_id=5, session_id=6)
    assert record == {"derivation": dice.V1, "campaign": 5, "session": 6}
    assert dice.verify_roll(payload, seq=7, recorded_seed=seed, record=record, secret=None).ok


@pytest.mark.parametrize(
    "seed_from",
    [
        "v2",
        {"derivation": "gtw-dice-v3", "campaign": 1, "session": 2},
        {"derivation": dice.V2, "campaign": 1, "session": 2},  # no commitment
        {"derivation": dice.V1, "campaign": "1", "session": 2},
        {"derivation": dice.V1, "campaign": True, "session": 2},
    ],
)
def test_a_malformed_record_is_a_dice_error(seed_from):
    with pytest.raises(dice.DiceError):
        dice.record_of({"seed_from": seed_from}, campaign_id=1, session_id=2)


def test_what_cannot_be_checked_is_a_dice_error():
    record = {"derivation": dice.V1, "campaign": 1, "session": 2}
    with pytest.raises(dice.DiceError, match="not a dice roll"):
        dice.verify_roll({"kind": "card"}, seq=1, recorded_seed=1, record=record, secret=None)
    with pytest.raises(dice.DiceError, match="parameters are missing"):
        dice.verify_roll({"kind": "check"}, seq=1, recorded_seed=1, record=record, secret=None)
    v2 = {"derivation": dice.V2, "campaign": 1, "session": 2, "commitment": "0" * 64}
    with pytest.raises(dice.DiceError, match="secret"):
        dice.verify_roll({"kind": "roll", "expression": "d6"}, seq=1, recorded_seed=1, record=v2, secret=None)
