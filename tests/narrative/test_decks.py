import base64
import copy
import hashlib
import io
import json
import os
import random
import stat
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from narrative.decks import (
    MAX_CARDS,
    Deck,
    DeckError,
    candidates,
    canonical_bytes,
    draw,
    generate_keypair,
    key_id_for,
    load_deck_file,
    load_trusted_keys,
    matches,
    parse_json_bytes,
    parse_trusted,
    prerequisites_met,
    sign_deck,
    validate_deck,
    verify_deck,
)
from narrative.decks_cli import deck_main
from narrative.director import BEATS

PACK = Path(__file__).resolve().parents[2] / "content" / "packs" / "starter"
DECKS = PACK / "decks"
SHIPPED = ("reach-twists.json", "reach-hazards.json")

# One key pair for the module: Ed25519 generation is cheap, but a fixed pair keeps tests simple.
PRIVATE_PEM, PUBLIC_B64 = generate_keypair()
KEY_ID = key_id_for(PUBLIC_B64)
TRUSTED = {KEY_ID: PUBLIC_B64}


def card(card_id, kind="hazard", weight=1, **extra):
    return {
        "id": card_id,
        "kind": kind,
        "title": card_id.title(),
        "text": f"{card_id} happens.",
        "weight": weight,
        **extra,
    }


def small_deck(**changes):
    deck = {
        "slug": "test-deck",
        "name": "Test deck",
        "version": "1.0.0",
        "cards": [
            card("storm", "hazard", 3, requires={"biome": ["ice-moon"]}),
            card("betrayal", "twist", 2, requires={"faction": ["helix"], "beat": ["twist", "climax"]}),
            card("leak", "complication", 1, requires={"clock_min": {"reactor": 2}}),
            card("greed", "agenda", 1, payoff="They want the crate."),
        ],
    }
    deck.update(changes)
    return deck


def signed(deck=None):
    return sign_deck(deck or small_deck(), PRIVATE_PEM)


def shipped_trusted():
    return load_trusted_keys(DECKS / "trusted_keys.json")


# --- signing and verification ------------------------------------------------------------------


def test_sign_verify_round_trip():
    doc = signed()
    assert doc["signature"]["alg"] == "ed25519"
    assert doc["signature"]["key_id"] == KEY_ID
    assert len(base64.b64decode(doc["signature"]["sig"])) == 64
    deck = verify_deck(json.loads(json.dumps(doc)), TRUSTED)
    assert isinstance(deck, Deck)
    assert (deck.slug, deck.version, deck.key_id, len(deck.cards)) == ("test-deck", "1.0.0", KEY_ID, 4)
    assert deck.card("greed")["payoff"] == "They want the crate."


def test_key_id_is_sha256_of_raw_public_key():
    raw = base64.b64decode(PUBLIC_B64)
    assert len(raw) == 32
    assert hashlib.sha256(raw).hexdigest()[:16] == KEY_ID


def test_signature_covers_the_canonical_form_not_the_layout():
    doc = signed()
    reordered = {"signature": doc["signature"], "deck": dict(reversed(list(doc["deck"].items())))}
    pretty = json.dumps(reordered, indent=4)
    assert verify_deck(parse_json_bytes(pretty.encode(), "x"), TRUSTED).slug == "test-deck"
    assert canonical_bytes(doc["deck"]) == json.dumps(
        doc["deck"], sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")


def test_a_tampered_byte_anywhere_in_the_deck_is_refused():
    doc = signed(small_deck(name="Tëst deck"))
    payload = canonical_bytes(doc["deck"])
    sig = json.dumps(doc["signature"]).encode()
    for i in range(len(payload)):
        for flip in (0x01, 0x20):
            tampered = bytearray(payload)
            tampered[i] ^= flip
            data = b'{"deck":' + bytes(tampered) + b',"signature":' + sig + b"}"
            with pytest.raises(DeckError):
                verify_deck(parse_json_bytes(data, "tampered"), TRUSTED)


@pytest.mark.parametrize("name", SHIPPED)
def test_editing_a_shipped_deck_breaks_its_signature(name):
    doc = json.loads((DECKS / name).read_text(encoding="utf-8"))
    for mutate in (
        lambda d: d["deck"]["cards"][0].update(weight=d["deck"]["cards"][0]["weight"] + 1),
        lambda d: d["deck"]["cards"][-1].update(text=d["deck"]["cards"][-1]["text"] + " "),
        lambda d: d["deck"].update(version="1.0.1"),
        lambda d: d["deck"]["cards"].pop(),
    ):
        tampered = copy.deepcopy(doc)
        mutate(tampered)
        with pytest.raises(DeckError, match="signature does not match: the deck was modified after signing"):
            verify_deck(tampered, shipped_trusted())


def test_unsigned_deck_is_refused():
    with pytest.raises(DeckError, match="deck 'test-deck' is unsigned"):
        verify_deck({"deck": small_deck()}, TRUSTED)


def test_untrusted_key_is_refused():
    other_pem, _ = generate_keypair()
    doc = sign_deck(small_deck(), other_pem)
    with pytest.raises(DeckError, match=f"signed by untrusted key '{doc['signature']['key_id']}'"):
        verify_deck(doc, TRUSTED)


def test_a_signature_by_another_key_under_a_trusted_key_id_is_refused():
    other_pem, _ = generate_keypair()
    doc = sign_deck(small_deck(), other_pem)
    doc["signature"]["key_id"] = KEY_ID
    with pytest.raises(DeckError, match="signature does not match"):
        verify_deck(doc, TRUSTED)


@pytest.mark.parametrize(
    ("signature_patch", "message"),
    [
        ({"alg": "rsa-sha256"}, "unsupported signature algorithm 'rsa-sha256'; only 'ed25519'"),
        ({"alg": None}, "unsupported signature algorithm None"),
        ({"key_id": "ABC"}, "key_id must be 16 lowercase hex"),
        ({"sig": "not base64!"}, "signature is not valid base64"),
        ({"sig": base64.b64encode(b"short").decode()}, "an Ed25519 signature is 64 bytes, got 5"),
        ({"extra": 1}, "signature has unknown field"),
    ],
)
def test_malformed_signatures_are_refused(signature_patch, message):
    doc = signed()
    doc["signature"].update(signature_patch)
    with pytest.raises(DeckError, match=message):
        verify_deck(doc, TRUSTED)


def test_malformed_documents_are_refused():
    with pytest.raises(DeckError, match="must hold a JSON object"):
        verify_deck([], TRUSTED)
    with pytest.raises(DeckError, match="must have a 'deck' object"):
        verify_deck({"cards": []}, TRUSTED)
    doc = signed()
    doc["comment"] = "hi"
    with pytest.raises(DeckError, match="unknown top-level field"):
        verify_deck(doc, TRUSTED)
    with pytest.raises(DeckError, match="signature must be an object"):
        verify_deck({"deck": small_deck(), "signature": "abc"}, TRUSTED)


def test_trusted_keys_must_match_their_ids():
    _, other_b64 = generate_keypair()
    with pytest.raises(DeckError, match=f"trusted key '{KEY_ID}' holds a different public key"):
        parse_trusted({KEY_ID: other_b64})
    with pytest.raises(DeckError, match="is not 16 lowercase hex"):
        parse_trusted({"me": PUBLIC_B64})
    with pytest.raises(DeckError, match="32 bytes"):
        parse_trusted({KEY_ID: base64.b64encode(b"x" * 31).decode()})
    with pytest.raises(DeckError, match="holds a different public key"):
        verify_deck(signed(), {KEY_ID: other_b64})


def _bad_card(**changes):
    return small_deck(cards=[{**card("a"), **changes}])


@pytest.mark.parametrize(
    ("deck", "message"),
    [
        (small_deck(cards=[card("a"), card("a")]), "duplicate card id 'a'"),
        (_bad_card(weight=0), "weight must be 1..1000, got 0"),
        (_bad_card(weight=-2), "weight must be 1..1000, got -2"),
        (_bad_card(weight=1.5), "weight must be a positive integer"),
        (_bad_card(weight=True), "weight must be a positive integer"),
        (_bad_card(kind="boon"), "unknown kind 'boon'"),
        (_bad_card(id="Bad Id"), "id must be a slug"),
        (_bad_card(title=""), "title must be a non-empty string"),
        (_bad_card(text="x" * 2001), "text is 2001 characters; at most 2000"),
        (_bad_card(colour="red"), "card 'a' has unknown field"),
        (_bad_card(requires={"biome": "ice-moon"}), "requires.biome must be a non-empty list"),
        (_bad_card(requires={"beat": ["finale"]}), "requires.beat: unknown value 'finale'"),
        (_bad_card(requires={"clock_min": {"reactor": -1}}), "clock_min.reactor must be an integer 0..100"),
        (_bad_card(requires={"weather": ["rain"]}), "requires has unknown field"),
        (small_deck(cards=[]), "non-empty 'cards'"),
        (small_deck(cards=[card(f"c{i}") for i in range(MAX_CARDS + 1)]), f"at most {MAX_CARDS} are allowed"),
        (
            small_deck(cards=[card(f"c{i}", text="x" * 2000) for i in range(140)]),
            "bytes; at most 262144 are allowed",
        ),
        (small_deck(slug="Bad Slug"), "deck slug must be"),
        (small_deck(version=1), "version must be a string"),
        (small_deck(author="me"), "unknown field"),
        (small_deck(name=None), "name must be a non-empty string"),
    ],
)
def test_schema_problems_are_refused_at_signing_and_verifying(deck, message):
    with pytest.raises(DeckError, match=message):
        sign_deck(deck, PRIVATE_PEM)
    # A signer that skipped validation still cannot get a malformed deck past verify_deck.
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(PRIVATE_PEM, password=None)
    try:
        payload = canonical_bytes(deck)
    except DeckError:
        return
    doc = {
        "deck": deck,
        "signature": {
            "alg": "ed25519",
            "key_id": KEY_ID,
            "sig": base64.b64encode(key.sign(payload)).decode(),
        },
    }
    with pytest.raises(DeckError, match=message):
        verify_deck(doc, TRUSTED)


def test_bad_private_keys_are_refused():
    with pytest.raises(DeckError, match="not an unencrypted PEM key"):
        sign_deck(small_deck(), b"-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----\n")
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    ec_pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(DeckError, match="not an Ed25519 key"):
        sign_deck(small_deck(), ec_pem)


# --- files ---------------------------------------------------------------------------------------


def test_load_deck_file_reports_json_errors_with_position(tmp_path):
    path = tmp_path / "deck.json"
    path.write_text('{"deck": {"slug": "x",\n  "name": }', encoding="utf-8")
    with pytest.raises(DeckError, match=r"invalid JSON at line 2 column 11"):
        load_deck_file(path, TRUSTED)
    path.write_bytes(b'{"deck": "\xff"}')
    with pytest.raises(DeckError, match=r"not UTF-8 \(byte 10\)"):
        load_deck_file(path, TRUSTED)
    with pytest.raises(DeckError, match="cannot read deck file"):
        load_deck_file(tmp_path / "missing.json", TRUSTED)


def test_duplicate_json_keys_are_refused(tmp_path):
    doc = signed()
    text = json.dumps(doc)
    # A second "name" after the signed one: json.loads would silently keep the last.
    sneaky = text.replace('"name": "Test deck"', '"name": "Test deck", "name": "Evil deck"')
    path = tmp_path / "deck.json"
    path.write_text(sneaky, encoding="utf-8")
    with pytest.raises(DeckError, match="duplicate key 'name'"):
        load_deck_file(path, TRUSTED)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_decks_verify_against_the_shipped_trusted_keys(name):
    trusted = shipped_trusted()
    deck = load_deck_file(DECKS / name, trusted)
    assert deck.key_id in trusted
    assert 12 <= len(deck.cards) <= 20
    pack = json.loads((PACK / "pack.json").read_text(encoding="utf-8"))
    biomes = {b["slug"] for b in pack["world"]["biomes"]}
    factions = {f["slug"] for f in pack["world"]["factions"]}
    for c in deck.cards:
        assert set(c["requires"].get("biome", [])) <= biomes, c["id"]
        assert set(c["requires"].get("faction", [])) <= factions, c["id"]
    used_biomes = {b for c in deck.cards for b in c["requires"].get("biome", [])}
    used_factions = {f for c in deck.cards for f in c["requires"].get("faction", [])}
    assert used_biomes == biomes and used_factions == factions


def test_shipped_decks_split_the_kinds_and_the_trust_file_holds_only_public_keys():
    twists = load_deck_file(DECKS / "reach-twists.json", shipped_trusted())
    hazards = load_deck_file(DECKS / "reach-hazards.json", shipped_trusted())
    assert {c["kind"] for c in twists.cards} == {"twist", "complication"}
    assert {c["kind"] for c in hazards.cards} == {"hazard", "agenda"}
    raw = (DECKS / "trusted_keys.json").read_text(encoding="utf-8")
    assert "PRIVATE" not in raw
    assert not list(PACK.rglob("*.key"))


# --- draws ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shipped_decks():
    trusted = load_trusted_keys(DECKS / "trusted_keys.json")
    return [load_deck_file(DECKS / name, trusted) for name in SHIPPED]


contexts = st.fixed_dictionaries(
    {},
    optional={
        "biome": st.sampled_from(["derelict-station", "ice-moon", "jungle-world"]),
        "faction": st.sampled_from(["helix", "warden", "choir"]),
        "beat": st.sampled_from(BEATS),
        "clocks": st.dictionaries(st.sampled_from(["reactor", "exposure", "alarm"]), st.integers(0, 6)),
    },
)
kinds = st.one_of(st.none(), st.sampled_from(["twist", "complication", "agenda", "hazard"]))


@settings(deadline=None, max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(contexts, kinds, st.integers(0, 2**32))
def test_draws_respect_prerequisites_and_replay_per_seed(shipped_decks, context, kind, seed):
    result = draw(shipped_decks, random.Random(seed), kind=kind, context=context, seed=seed)
    again = draw(shipped_decks, random.Random(seed), kind=kind, context=context, seed=seed)
    assert result == again
    if result is None:
        assert candidates(shipped_decks, kind=kind, context=context) == []
        return
    assert prerequisites_met(result.card, context)
    assert kind is None or result.card["kind"] == kind
    assert result.provenance["card"] == result.card["id"]
    assert result.provenance["seed"] == seed
    assert result.provenance["deck"] in {"reach-twists", "reach-hazards"}
    assert json.loads(json.dumps(result.to_dict())) == result.to_dict()


def test_prerequisites_table():
    storm, betrayal, leak, greed = (c for c in validate_deck(small_deck()).cards)
    assert prerequisites_met(storm, {"biome": "ice-moon"})
    assert not prerequisites_met(storm, {"biome": "jungle-world"})
    assert not prerequisites_met(storm, {})  # unknown biome does not satisfy a requirement
    assert prerequisites_met(betrayal, {"faction": "helix", "beat": "climax"})
    assert not prerequisites_met(betrayal, {"faction": "helix", "beat": "rising"})
    assert not prerequisites_met(leak, {"clocks": {"reactor": 1}})
    assert prerequisites_met(leak, {"clocks": {"reactor": 2}})
    assert prerequisites_met(greed, {})


def test_kind_weights_are_applied():
    # Two equally weighted cards of different kinds; a 3:1 personality weight should give
    # about 75% hazards. Fixed seed and a generous band: deterministic, never flaky.
    deck = validate_deck(small_deck(cards=[card("h", "hazard", 5), card("a", "agenda", 5)]))
    rng = random.Random(7)
    counts = Counter(
        draw(deck, rng, weights={"hazard": 3.0, "agenda": 1.0}).card["kind"] for _ in range(4000)
    )
    share = counts["hazard"] / 4000
    assert 0.72 < share < 0.78, counts


def test_card_weights_are_applied():
    deck = validate_deck(small_deck(cards=[card("common", weight=9), card("rare", weight=1)]))
    rng = random.Random(11)
    counts = Counter(draw(deck, rng).card["id"] for _ in range(5000))
    assert 0.87 < counts["common"] / 5000 < 0.93, counts


def test_zero_weight_disables_a_kind_and_exclude_skips_drawn_cards():
    deck = validate_deck(small_deck())
    for seed in range(50):
        result = draw(deck, random.Random(seed), weights={"agenda": 0}, context={"biome": "ice-moon"})
        assert result is not None and result.card["kind"] != "agenda"
    assert draw(deck, random.Random(1), exclude={"storm", "greed"}, context={"biome": "ice-moon"}) is None
    assert draw(deck, random.Random(1), kind="twist", context={"faction": "warden"}) is None


def test_provenance_and_no_mutation():
    doc = signed()
    deck = verify_deck(doc, TRUSTED)
    result = draw(deck, random.Random(5), kind="agenda", seed=5)
    assert result.provenance == {
        "deck": "test-deck",
        "version": "1.0.0",
        "card": "greed",
        "key_id": KEY_ID,
        "seed": 5,
    }
    result.card["title"] = "changed"
    assert deck.card("greed")["title"] == "Greed"
    assert "seed" not in draw(deck, random.Random(5), kind="agenda").provenance


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "boon"}, "unknown card kind 'boon'"),
        ({"weights": {"hazard": -1}}, "deck weight for hazard must be 0..100"),
        ({"weights": {"boon": 1}}, "deck weights: unknown kind 'boon'"),
        ({"context": {"weather": "rain"}}, "unknown draw context field"),
        ({"context": {"beat": "finale"}}, "draw context beat 'finale'"),
        ({"context": {"clocks": {"reactor": "high"}}}, "clock 'reactor' must be a number"),
        ({"exclude": "storm"}, "exclude must be a collection"),
        ({"seed": "abc"}, "seed must be an integer"),
    ],
)
def test_bad_draw_requests_are_refused(kwargs, message):
    with pytest.raises(DeckError, match=message):
        draw(validate_deck(small_deck()), random.Random(0), **kwargs)


def test_matches_where_filters():
    storm, betrayal, _, greed = validate_deck(small_deck()).cards
    assert matches(storm, {"biome": "ice-moon", "kind": "hazard"})
    assert not matches(storm, {"biome": "jungle-world"})
    assert matches(greed, {"biome": "jungle-world"})  # no biome requirement: fits anywhere
    assert matches(betrayal, {"kind": ["twist", "hazard"], "faction": "helix", "beat": "twist"})
    assert not matches(betrayal, {"beat": ["rising", "inciting"]})
    assert matches(storm, {"id": "storm"}) and not matches(storm, {"id": "greed"})
    with pytest.raises(DeckError, match="unknown where key 'colour'"):
        matches(storm, {"colour": "red"})
    with pytest.raises(DeckError, match="where kind must be a string or a non-empty list"):
        matches(storm, {"kind": []})


# --- CLI -----------------------------------------------------------------------------------------


def cli(*argv):
    out, err = io.StringIO(), io.StringIO()
    code = deck_main(list(argv), out=out, err=err)
    assert "Traceback" not in out.getvalue() + err.getvalue()
    return code, out.getvalue(), err.getvalue()


def test_cli_keygen_sign_verify_round_trip(tmp_path):
    prefix = tmp_path / "mykey"
    code, out, _ = cli("keygen", "--out", str(prefix))
    assert code == 0
    key_id, public_b64 = out.split()
    assert key_id_for(public_b64) == key_id
    assert stat.S_IMODE(os.stat(f"{prefix}.key").st_mode) == 0o600
    assert Path(f"{prefix}.pub").read_text() == out

    deck_path = tmp_path / "deck.json"
    deck_path.write_text(json.dumps({"deck": small_deck()}), encoding="utf-8")
    code, out, _ = cli("sign", str(deck_path), "--key", f"{prefix}.key")
    assert code == 0 and f"key {key_id}" in out
    (tmp_path / "trusted_keys.json").write_text(json.dumps({key_id: public_b64}))
    code, out, _ = cli("verify", str(deck_path))
    assert code == 0 and out.startswith("OK")

    # Re-signing an already signed deck with a second key replaces the signature.
    code, out2, _ = cli("keygen", "--out", str(tmp_path / "second"))
    key2 = out2.split()[0]
    signed_copy = tmp_path / "copy.json"
    code, _, _ = cli("sign", str(deck_path), "--key", str(tmp_path / "second.key"), "--out", str(signed_copy))
    assert code == 0
    assert json.loads(signed_copy.read_text())["signature"]["key_id"] == key2
    code, out, _ = cli("verify", str(deck_path), str(signed_copy))
    assert code == 1
    lines = out.splitlines()
    assert lines[0].startswith("OK") and lines[1].startswith("FAIL") and f"untrusted key '{key2}'" in lines[1]


def test_cli_signs_a_bare_deck_and_verify_reports_tampering(tmp_path):
    cli("keygen", "--out", str(tmp_path / "k"))
    public = (tmp_path / "k.pub").read_text().split()
    trusted = tmp_path / "keys.json"
    trusted.write_text(json.dumps({public[0]: public[1]}))
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps(small_deck()))
    assert cli("sign", str(bare), "--key", str(tmp_path / "k.key"))[0] == 0
    doc = json.loads(bare.read_text())
    doc["deck"]["cards"][0]["weight"] = 99
    bare.write_text(json.dumps(doc))
    code, out, _ = cli("verify", str(bare), "--trusted", str(trusted))
    assert code == 1 and "modified after signing" in out


def test_cli_keygen_never_overwrites_a_key(tmp_path):
    prefix = tmp_path / "k"
    assert cli("keygen", "--out", str(prefix))[0] == 0
    before = Path(f"{prefix}.key").read_bytes()
    code, _, err = cli("keygen", "--out", str(prefix))
    assert code == 1 and "already exists" in err
    assert Path(f"{prefix}.key").read_bytes() == before


@pytest.mark.parametrize(
    "argv",
    [[], ["frobnicate"], ["sign"], ["sign", "deck.json"], ["verify"], ["keygen", "--bogus"]],
)
def test_cli_usage_errors_exit_2(argv):
    code, out, err = cli(*argv)
    assert code == 2
    assert "usage:" in err and out == ""


def test_cli_help_exits_0():
    code, out, _ = cli("--help")
    assert code == 0 and "keygen" in out


def test_cli_garbage_inputs_fail_cleanly(tmp_path):
    junk = tmp_path / "junk.json"
    junk.write_bytes(os.urandom(300))
    notjson = tmp_path / "notjson.json"
    notjson.write_text("{ nope")
    code, out, _ = cli("verify", str(junk), str(notjson), str(tmp_path / "missing.json"), str(tmp_path))
    assert code == 1
    assert [line.split()[0] for line in out.splitlines()] == ["FAIL"] * 4
    code, _, err = cli("sign", str(notjson), "--key", str(junk))
    assert code == 1 and "invalid JSON at line 1 column 3" in err
    deck = tmp_path / "deck.json"
    deck.write_text(json.dumps(small_deck()))
    code, _, err = cli("sign", str(deck), "--key", str(junk))
    assert code == 1 and "private key" in err
    code, _, err = cli("sign", str(deck), "--key", str(tmp_path / "nokey.key"))
    assert code == 1 and "cannot read key file" in err


def test_cli_verifies_the_shipped_decks():
    code, out, _ = cli("verify", *(str(DECKS / name) for name in SHIPPED))
    assert code == 0
    assert len(out.splitlines()) == 2


@settings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(st.binary(max_size=400), st.text(max_size=200).map(str.encode)))
def test_cli_verify_never_crashes_on_arbitrary_files(tmp_path, data):
    path = tmp_path / "fuzz.json"
    path.write_bytes(data)
    (tmp_path / "trusted_keys.json").write_text(json.dumps(TRUSTED))
    code, out, _ = cli("verify", str(path))
    assert code == 1 and out.startswith("FAIL")
