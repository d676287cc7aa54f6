"""Issue 17 part 2: provider keys stored encrypted (Fernet, a key id prefix, MultiFernet), the
keyring in the data folder (0600) or an env var, independent of SECRET_KEY; fail closed when it
is missing; `gtw keys rotate` re-seals in batches and resumes after an interruption; only the
last four characters shown; keys never in logs, errors, telemetry or pages."""

from __future__ import annotations

import json
import logging
import stat

import pytest
from cryptography.fernet import Fernet
from django.test import Client

from gtw_site import keys
from gtw_site.cli import main as gtw
from gtw_site.models import ProviderCall, ProviderKey
from gtw_site.providers import ProviderError, selection, services
from narrative.llm import registry as chat

SECRET = "sk-live-CANARY-0123456789abcdefQRST"


@pytest.fixture(autouse=True)
def _keyring_in_tmp(settings, tmp_path, monkeypatch):
    monkeypatch.delenv("GTW_PROVIDER_KEYS", raising=False)
    settings.DATA_DIR = tmp_path
    selection.forget()
    yield
    selection.forget()


@pytest.fixture
def staff_client(db):
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user(username="ops", password="x", is_staff=True)
    client = Client()
    client.force_login(user)
    return client


def test_a_key_is_sealed_with_the_primary_keys_id_and_opens_again(tmp_path):
    sealed = keys.seal(SECRET)
    ring = keys.keyring()
    assert sealed.startswith(f"{ring.primary_id}:") and SECRET not in sealed
    assert keys.open_sealed(sealed) == SECRET
    path = tmp_path / keys.FILE_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_keyring_is_independent_of_secret_key(settings):
    sealed = keys.seal(SECRET)
    settings.SECRET_KEY = "something else entirely"
    assert keys.open_sealed(sealed) == SECRET


def test_an_env_keyring_wins_and_seals_with_its_first_key(monkeypatch):
    first, second = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    monkeypatch.setenv("GTW_PROVIDER_KEYS", f"envA:{first},envB:{second}")
    sealed = keys.seal(SECRET)
    assert sealed.startswith("envA:")
    old = "envB:" + Fernet(second.encode()).encrypt(SECRET.encode()).decode()
    assert keys.open_sealed(old) == SECRET


def test_without_the_keyring_stored_keys_fail_closed(tmp_path):
    sealed = keys.seal(SECRET)
    (tmp_path / keys.FILE_NAME).unlink()
    with pytest.raises(keys.KeyUnavailable) as caught:
        keys.open_sealed(sealed)
    assert SECRET not in str(caught.value) and sealed not in str(caught.value)


def test_a_keyring_without_the_sealing_key_fails_closed(monkeypatch):
    sealed = keys.seal(SECRET)
    monkeypatch.setenv("GTW_PROVIDER_KEYS", f"other:{Fernet.generate_key().decode()}")
    with pytest.raises(keys.KeyUnavailable):
        keys.open_sealed(sealed)


def test_a_broken_keyring_is_never_replaced_by_a_fresh_one(tmp_path):
    (tmp_path / keys.FILE_NAME).write_text("garbage\n")
    with pytest.raises(keys.KeyUnavailable):
        keys.seal(SECRET)
    assert (tmp_path / keys.FILE_NAME).read_text() == "garbage\n"


@pytest.mark.parametrize(
    "bad", ["", "   ", "sk-a1b2", "has space inside-0123", "ctrl\x00char-0123456", "x" * 401]
)
def test_malformed_keys_are_refused_without_echoing_them(bad):
    with pytest.raises(keys.MalformedKey) as caught:
        keys.check_plain(bad)
    assert bad.strip() not in str(caught.value) or not bad.strip()


@pytest.mark.django_db
def test_the_api_stores_a_key_and_shows_only_its_last_four(staff_client):
    response = staff_client.post(
        "/api/providers/keys", json.dumps({"label": "grok", "key": SECRET}), content_type="application/json"
    )
    assert response.status_code == 201
    assert response.json()["last4"] == "QRST" and SECRET not in response.content.decode()
    row = ProviderKey.objects.get()
    assert SECRET not in row.ciphertext and row.last4 == "QRST"
    listing = (
        staff_client.get("/api/providers/keys").content.decode()
        + staff_client.get("/providers/").content.decode()
    )
    assert "QRST" in listing and SECRET not in listing and SECRET[:-4] not in listing


@pytest.mark.django_db
def test_a_malformed_key_is_a_422(staff_client):
    response = staff_client.post(
        "/api/providers/keys", json.dumps({"key": "bad key with spaces"}), content_type="application/json"
    )
    assert response.status_code == 422 and "malformed key" in response.json()["detail"]
    assert "bad key with spaces" not in response.content.decode()
    assert not ProviderKey.objects.exists()


@pytest.mark.django_db
def test_players_and_gms_cannot_manage_keys(gm_client, player_client, outsider_client):
    for client in (gm_client, player_client, outsider_client):
        assert (
            client.post(
                "/api/providers/keys", json.dumps({"key": SECRET}), content_type="application/json"
            ).status_code
            == 403
        )
        assert client.get("/api/providers/keys").status_code == 403
    assert not ProviderKey.objects.exists()


@pytest.mark.django_db
def test_a_chosen_key_whose_keyring_is_gone_fails_closed_at_build(tmp_path):
    key = services.key_create(label="ollama", plain=SECRET)
    services.choice_set(role="narrator", preset="ollama", key=key)
    (tmp_path / keys.FILE_NAME).unlink()
    selection.forget()
    with pytest.raises(ProviderError) as caught:
        chat.build("narrator")
    assert "keyring" in str(caught.value) and SECRET not in str(caught.value)


@pytest.mark.django_db
def test_the_key_never_reaches_logs_errors_or_telemetry(staff_client, caplog):
    """A vendor that echoes the key back in its error: the row, the log and the page stay clean."""
    caplog.set_level(logging.DEBUG)
    key = services.key_create(label="vendor", plain=SECRET)
    services.choice_set(
        role="narrator",
        provider="openai_compatible",
        options={"base_url": "http://127.0.0.1:9/v1", "model": "m"},
        key=key,
    )
    narrator = chat.get("narrator")
    from narrative.llm.base import ChatRequest, Message

    with pytest.raises(ProviderError) as caught:
        list(narrator.stream(ChatRequest(messages=[Message(role="user", content="hi")])))
    texts = [
        str(caught.value),
        caplog.text,
        json.dumps(list(ProviderCall.objects.values_list("error", flat=True))),
    ]
    texts.append(staff_client.get("/api/providers").content.decode())
    texts.append(staff_client.get("/api/providers/calls").content.decode())
    for text in texts:
        assert SECRET not in text


# ---- rotation ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_rotation_reseals_every_key_with_a_new_primary_and_drops_the_old(tmp_path, capsys):
    for n in range(5):
        services.key_create(label=f"k{n}", plain=f"{SECRET}{n}")
    old = keys.keyring().primary_id

    assert gtw(["keys", "rotate", "--new", "--batch", "2", "--drop-old"]) == 0

    ring = keys.keyring()
    assert ring.primary_id != old and [kid for kid, _ in ring.keys] == [ring.primary_id]
    plains = sorted(keys.open_sealed(c) for c in ProviderKey.objects.values_list("ciphertext", flat=True))
    assert plains == [f"{SECRET}{n}" for n in range(5)]
    out = capsys.readouterr().out
    assert "5 key(s) re-sealed" in out and SECRET not in out


@pytest.mark.django_db
def test_an_interrupted_rotation_leaves_everything_readable_and_resumes(monkeypatch):
    for n in range(5):
        services.key_create(label=f"k{n}", plain=f"{SECRET}{n}")
    old = keys.keyring().primary_id
    real = keys.reseal
    calls = {"n": 0}

    def dying(sealed, ring):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # killed half way, inside the second batch
        return real(sealed, ring)

    monkeypatch.setattr(keys, "reseal", dying)
    with pytest.raises(KeyboardInterrupt):
        services.keys_rotate(batch=2, new_key=True)
    new = keys.keyring().primary_id
    prefixes = sorted(c.partition(":")[0] for c in ProviderKey.objects.values_list("ciphertext", flat=True))
    assert prefixes.count(new) == 2 and prefixes.count(old) == 3  # the first batch committed
    for sealed in ProviderKey.objects.values_list("ciphertext", flat=True):
        assert keys.open_sealed(sealed).startswith(SECRET)  # nothing unreadable
    monkeypatch.setattr(keys, "reseal", real)
    result = services.keys_rotate(batch=2, drop_old=True)
    assert result == {"resealed": 3, "dropped": 1}
    assert {c.partition(":")[0] for c in ProviderKey.objects.values_list("ciphertext", flat=True)} == {new}


@pytest.mark.django_db
def test_status_lists_key_ids_and_counts(capsys):
    services.key_create(label="a", plain=SECRET)
    assert gtw(["keys", "status"]) == 0
    out = capsys.readouterr().out
    assert f"{keys.keyring().primary_id} (primary): 1 stored key(s)" in out and SECRET not in out
