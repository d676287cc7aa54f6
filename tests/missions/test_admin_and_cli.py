"""Installing missions and story decks through the admin, and the `gtw mission` / `gtw deck` /
`gtw bench mission` commands."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils.html import escape, strip_tags

from missions.models import Mission
from narrative.models import StoryDeck

ROOT = Path(__file__).resolve().parents[2]
STARTER = ROOT / "content" / "packs" / "starter"
MISSIONS = sorted((STARTER / "missions").glob("*.mission"))
VESPER = (STARTER / "missions" / "vesper-relay.mission").read_text()
# Two bad references on one line: the admin must show both errors, each as the compiler wrote it.
BROKEN = VESPER.replace(
    "go to relay-core when objective dock complete", "go to relay-cor when objective dok complete"
)
# The line the broken reference is on (the mission file grows; the test shouldn't care).
BROKEN_LINE = next(n for n, line in enumerate(BROKEN.splitlines(), 1) if "relay-cor " in line)
BROKEN_ERRORS = [
    f"mission.mission:{BROKEN_LINE}:9: unknown scene 'relay-cor', did you mean 'relay-core'?",
    f"mission.mission:{BROKEN_LINE}:34: unknown objective 'dok', did you mean 'dock'?",
]
DECK = STARTER / "decks" / "reach-twists.json"
TRUSTED = STARTER / "decks" / "trusted_keys.json"
GTW = [sys.executable, "-m", "gtw_site.cli"]

MISSION_ADD = reverse("admin:missions_mission_add")
DECK_ADD = reverse("admin:narrative_storydeck_add")


@pytest.fixture
def admin_user(db):
    return get_user_model().objects.create_superuser(
        username="root", email="root@example.com", password="correct horse battery"
    )


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


def tampered_deck_text() -> str:
    doc = json.loads(DECK.read_text())
    card = doc["deck"]["cards"][0]
    card["text"] = card["text"].replace("warm", "cold", 1)
    assert card["text"] != json.loads(DECK.read_text())["deck"]["cards"][0]["text"]
    return json.dumps(doc)


# ---- mission admin ------------------------------------------------------------------------------


def test_admin_installs_pasted_mission_as_the_admin(admin_client, admin_user):
    response = admin_client.post(MISSION_ADD, {"source": VESPER.replace("\n", "\r\n")})

    mission = Mission.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:missions_mission_changelist")
    assert (mission.slug, mission.installed_by) == ("vesper-relay", admin_user)
    assert mission.source == VESPER  # the browser's CRLFs are not kept


def test_admin_installs_uploaded_mission_file(admin_client):
    upload = SimpleUploadedFile(
        "thule-descent.mission", (STARTER / "missions" / "thule-descent.mission").read_bytes()
    )

    response = admin_client.post(MISSION_ADD, {"source": "", "upload": upload})

    assert response.status_code == 302
    assert Mission.objects.get().filename == "thule-descent.mission"


def test_admin_shows_every_compile_error_inline_and_saves_nothing(admin_client):
    response = admin_client.post(MISSION_ADD, {"source": BROKEN})

    assert response.status_code == 200
    page = response.content.decode()
    for line in BROKEN_ERRORS:
        assert f"{escape(line)}</code>" in page  # monospace
    errors = response.context["adminform"].form.errors.as_data()["source"]
    assert [strip_tags(e.message) for e in errors] == [escape(line) for line in BROKEN_ERRORS]
    assert not Mission.objects.exists()


def test_admin_needs_a_source_or_a_file_not_both(admin_client):
    upload = SimpleUploadedFile("vesper-relay.mission", VESPER.encode())

    neither = admin_client.post(MISSION_ADD, {"source": "  "})
    both = admin_client.post(MISSION_ADD, {"source": VESPER, "upload": upload})

    assert "Paste the mission source or upload a .mission file." in neither.content.decode()
    assert "not both" in both.content.decode()
    assert not Mission.objects.exists()


def test_installed_mission_is_read_only_and_kept(admin_client):
    admin_client.post(MISSION_ADD, {"source": VESPER})
    mission = Mission.objects.get()
    change = reverse("admin:missions_mission_change", args=[mission.pk])

    page = admin_client.get(change).content.decode()
    edit = admin_client.post(change, {"source": BROKEN})
    delete = admin_client.post(reverse("admin:missions_mission_delete", args=[mission.pk]), {"post": "yes"})

    assert escape('"slug": "vesper-relay"') in page  # the AST, pretty-printed
    assert escape("Vesper Relay went quiet nine days ago.") in page
    assert 'name="_save"' not in page
    assert (edit.status_code, delete.status_code) == (403, 403)
    assert Mission.objects.get().source == VESPER


def test_installing_the_same_mission_again_adds_no_row(admin_client):
    admin_client.post(MISSION_ADD, {"source": VESPER})

    again = admin_client.post(MISSION_ADD, {"source": VESPER}, follow=True)

    assert Mission.objects.count() == 1
    assert "was already installed" in again.content.decode()


@pytest.mark.parametrize("url", [MISSION_ADD, DECK_ADD])
def test_non_staff_is_sent_to_the_admin_login(outsider_client, url):
    get = outsider_client.get(url)
    post = outsider_client.post(url, {"source": VESPER, "document": DECK.read_text()})

    for response in (get, post):
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("admin:login"))
    assert not Mission.objects.exists()
    assert not StoryDeck.objects.exists()


def test_staff_without_the_add_permission_is_refused(client, gm):
    gm.is_staff = True
    gm.save()
    gm.user_permissions.add(Permission.objects.get(codename="view_mission"))
    client.force_login(gm)

    response = client.post(MISSION_ADD, {"source": VESPER})

    assert response.status_code == 403
    assert not Mission.objects.exists()


# ---- deck admin ---------------------------------------------------------------------------------


def test_admin_installs_the_shipped_signed_deck(admin_client, admin_user):
    upload = SimpleUploadedFile("reach-twists.json", DECK.read_bytes(), content_type="application/json")

    response = admin_client.post(DECK_ADD, {"document": "", "upload": upload})

    deck = StoryDeck.objects.get()
    assert response.status_code == 302
    assert (deck.slug, deck.key_id, deck.installed_by) == ("reach-twists", "8e3ae7cf4f9e7f4a", admin_user)
    page = admin_client.get(reverse("admin:narrative_storydeck_change", args=[deck.pk])).content.decode()
    assert escape("The crate is breathing") in page
    assert "<td>twist</td>" in page
    assert 'name="_save"' not in page
    changelist = admin_client.get(reverse("admin:narrative_storydeck_changelist")).content.decode()
    assert f'<td class="field-card_count">{len(deck.cards)}</td>' in changelist


def test_admin_refuses_a_tampered_deck_with_the_verifiers_message(admin_client):
    response = admin_client.post(DECK_ADD, {"document": tampered_deck_text()})

    assert response.status_code == 200
    assert (
        escape("deck 'reach-twists': signature does not match: the deck was modified after signing")
        in response.content.decode()
    )
    assert not StoryDeck.objects.exists()


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (json.dumps({"deck": json.loads(DECK.read_text())["deck"]}), "deck 'reach-twists' is unsigned"),
        ("{not json", "deck: invalid JSON at line 1 column 2"),
    ],
)
def test_admin_refuses_unsigned_and_malformed_decks(admin_client, document, message):
    response = admin_client.post(DECK_ADD, {"document": document})

    assert response.status_code == 200
    assert escape(message) in response.content.decode()
    assert not StoryDeck.objects.exists()


# ---- gtw mission / gtw deck ---------------------------------------------------------------------


def gtw(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "GTW_DATA_DIR": str(ROOT / "var" / "test")}
    return subprocess.run(
        [*GTW, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_gtw_mission_validate_accepts_the_shipped_missions():
    result = gtw("mission", "validate", *map(str, MISSIONS))

    assert result.returncode == 0, result.stderr
    assert len(MISSIONS) == 3
    assert result.stdout.count(": ok (") == 3


def test_gtw_mission_validate_reports_errors_without_a_traceback(tmp_path):
    broken = tmp_path / "broken.mission"
    broken.write_text(BROKEN)

    result = gtw("mission", "validate", str(broken))

    assert result.returncode == 1
    assert f"{broken}:{BROKEN_LINE}:9: unknown scene 'relay-cor'" in result.stderr
    assert f"{broken}:{BROKEN_LINE}:34: unknown objective 'dok'" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_gtw_mission_validate_missing_file_is_a_message(tmp_path):
    missing = tmp_path / "nowhere.mission"

    result = gtw("mission", "validate", str(missing))

    assert result.returncode == 1
    assert f"{missing}: cannot read file" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_gtw_deck_verify_passes_arguments_through():
    result = gtw("deck", "verify", str(DECK), "--trusted", str(TRUSTED))

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith(f"OK   {DECK}: deck 'reach-twists'")


def test_gtw_deck_verify_fails_a_tampered_deck(tmp_path):
    tampered = tmp_path / "reach-twists.json"
    tampered.write_text(tampered_deck_text())

    result = gtw("deck", "verify", str(tampered), "--trusted", str(TRUSTED))

    assert result.returncode == 1
    assert "the deck was modified after signing" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


# ---- gtw bench mission --------------------------------------------------------------------------


def test_bench_mission_prints_percentiles_and_a_json_line(capsys):
    from gtw_site.bench import mission as bench_mission

    status = bench_mission.main(argparse.Namespace(lines=60, steps=200, no_write=True))

    out = capsys.readouterr().out.strip().splitlines()
    result = json.loads(out[-1])
    assert status == 0
    assert {
        "compile_p50_ms", "compile_p95_ms", "compile_p99_ms",
        "step_p50_us", "step_p95_us", "step_p99_us", "steps_per_s",
    } <= result.keys()  # fmt: skip
    assert result["steps"] == 200
    assert result["compile_p50_ms"] <= result["compile_p95_ms"] <= result["compile_p99_ms"]
    assert any(line.startswith("step (µs)") for line in out)


def test_bench_mission_doc_row_is_replaced_and_other_sections_kept():
    from gtw_site.bench import mission as bench_mission

    result = {
        "lines": 1000, "steps": 10000, "compile_p50_ms": 40.0, "compile_p95_ms": 41.0, "compile_p99_ms": 42.0,
        "step_p50_us": 20.0, "step_p95_us": 30.0, "step_p99_us": 50.0, "steps_per_s": 45000, "restarts": 3,
    }  # fmt: skip
    doc = "# Benchmarks\n\n## gtw bench turn\n\nturn numbers\n\n## Memory recall\n\nnotes\n"

    def row(p50: float) -> str:
        command = bench_mission.command_for(1000, 10000)
        return bench_mission.table_row(
            {**result, "compile_p50_ms": p50}, "2 x CPU, load 0.1", "2026-01-01", command
        )

    once = bench_mission.update_doc(doc, row(40.0))
    twice = bench_mission.update_doc(once, row(39.0))

    assert once.startswith(doc)
    assert "| 1000 | 10000 | 40.00 / 41.00 / 42.00 | 20.0 / 30.0 / 50.0 | 45,000 | 3 |" in once
    assert twice.count("| 1000 | 10000 |") == 1
    assert "| 1000 | 10000 | 39.00 / 41.00 / 42.00 |" in twice
    assert twice.count("How measured: `gtw bench mission") == 1
    assert "## Memory recall\n\nnotes\n" in twice
