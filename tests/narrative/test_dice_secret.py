"""Fair dice wired to the event store (issue 11 hole 8): each session's dice secret is
committed in its first event, hidden while it runs, revealed in SessionEnded, and every roll
then re-verifies from public data alone. Personas: the GM, a player, an outsider."""

from __future__ import annotations

import json

import pytest

from campaigns import selectors, services
from campaigns.branching import campaign_branch
from campaigns.models import Character, Event, PlaySession
from missions.rules import dice
from narrative import dice_secrets, tools, turns
from narrative.llm.base import ToolCall
from narrative.models import DiceSecret
from realtime import broadcast


def gm_membership(session, gm):
    return selectors.membership_get(viewer=gm, campaign_id=session.campaign_id)


def roll(session, player, expression="d20", *, action_seq=None, index=0):
    """The narrator's rng_roll tool, as a turn would call it; returns the DiceRolled event."""
    session.refresh_from_db()
    character = Character.objects.filter(campaign=session.campaign, owner=player).first()
    args = {"expression": expression, "reason": "luck"}
    outcome, _created = tools.dispatch(
        session=session,
        campaign_id=session.campaign_id,
        action_seq=action_seq or session.version,
        actor_id=player.pk,
        character={"name": character.name, "attributes": character.attributes},
        call=ToolCall(id="c1", name="rng_roll", arguments=args, raw_arguments=json.dumps(args)),
        round_no=0,
        index=index,
    )
    assert not outcome.refused, outcome.result
    return Event.objects.get(session=session, seq=outcome.event_seq)


def end(session, gm):
    return services.session_end(session=session, membership=gm_membership(session, gm))


def resume(session, gm):
    return services.session_resume(session=session, membership=gm_membership(session, gm))


def first_event(session):
    return Event.objects.filter(session=session).order_by("seq").first()


def verify_url(session, seq):
    return f"/api/sessions/{session.pk}/dice/{seq}/verify"


@pytest.fixture
def sent(monkeypatch):
    """Every group message the broadcaster sends, as it would cross the wire."""
    messages: list[tuple[str, dict]] = []
    monkeypatch.setattr(broadcast, "_send", lambda group, message: messages.append((group, message)))
    return messages


def test_the_next_roll_cannot_be_computed_from_public_values(session, player):
    """issue 11 hole 8: a player who knows (campaign, session, seq) computed the next d20. Now
    the seed mixes in the session's secret: the v1 seed they can compute is not the one used."""
    seq = session.version + 1
    public_guess = dice.derive_seed(session.campaign_id, session.pk, seq)
    event = roll(session, player)
    assert event.seq == seq
    assert event.seed != public_guess
    assert event.payload["seed_from"]["derivation"] == dice.V2
    secret = DiceSecret.objects.get(session=session).secret
    assert event.seed == dice.derive_seed(session.campaign_id, session.pk, seq, secret)


def test_the_commitment_is_in_the_first_event_and_matches_the_revealed_secret(session, player, gm):
    opened = first_event(session)
    assert opened.type == "SessionOpened" and opened.seq == 1
    commitment = opened.payload["dice"]["commitment"]
    assert opened.payload["dice"] == {"derivation": dice.V2, "commitment": commitment, "from_seq": 1}
    event = roll(session, player)
    assert event.payload["seed_from"]["commitment"] == commitment
    end(session, gm)
    ended = Event.objects.filter(session=session, type="SessionEnded").get()
    [revealed] = ended.payload["dice"]["revealed"]
    assert revealed["commitment"] == commitment
    assert dice.commitment(revealed["secret"]) == commitment


def test_every_roll_of_an_ended_session_reverifies_from_public_data_alone(session, player, gm, player_client):
    """Only what the events API gives a player: payloads, seeds and the revealed secret."""
    turns.submit_action(
        session_id=session.pk, user=player, text="I hack the airlock panel", idempotency_key="a"
    )
    turns.run_pending_turns(session.pk)
    roll(session, player, "3d6+2", index=1)
    roll(session, player, "d100", index=2)
    end(session, gm)

    log = player_client.get(f"/api/sessions/{session.pk}/events").json()["events"]
    secrets_by_commitment = {
        r["commitment"]: r["secret"]
        for e in log
        if e["type"] == "SessionEnded"
        for r in e["payload"]["dice"]["revealed"]
    }
    rolls = [e for e in log if e["type"] == "DiceRolled"]
    assert len(rolls) >= 3
    for e in rolls:
        record = dice.record_of(e["payload"], campaign_id=session.campaign_id, session_id=session.pk)
        secret = secrets_by_commitment[record["commitment"]]
        result = dice.verify_roll(
            e["payload"], seq=e["seq"], recorded_seed=e["seed"], record=record, secret=secret
        )
        assert result.ok, result.problems
        # …and the server's verify says the same, for the player, from public data.
        answer = player_client.get(verify_url(session, e["seq"])).json()
        assert answer["status"] == "ok" and answer["ok"] is True
        assert answer["secret"] == secret and answer["faces"] == e["payload"]["faces"]
        assert "checks out" in answer["message"]
    page = player_client.get(f"/sessions/{session.pk}/play/").content.decode()
    assert "its dice secret is revealed, so every roll can now be verified" in page


def test_verify_refuses_a_live_session_clearly_for_players_and_works_for_the_gm(
    session, player, gm_client, player_client, outsider_client
):
    event = roll(session, player)
    commitment = first_event(session).payload["dice"]["commitment"]

    response = player_client.get(verify_url(session, event.seq))
    assert response.status_code == 200
    answer = response.json()
    assert answer["status"] == "not_yet" and answer["ok"] is False
    assert "can be verified when the session ends" in answer["message"]
    assert commitment in answer["message"] and answer["commitment"] == commitment
    assert answer["secret"] is None and answer["faces"] is None

    answer = gm_client.get(verify_url(session, event.seq)).json()
    assert answer["status"] == "ok" and answer["faces"] == event.payload["faces"]
    assert answer["secret"] is None  # verified with it, but the GM reads it on the dice endpoint

    assert outsider_client.get(verify_url(session, event.seq)).status_code == 404
    assert outsider_client.get(f"/api/sessions/{session.pk}/dice").status_code == 404


def test_the_dice_endpoint_shows_the_secret_to_the_gm_only_until_the_end(
    session, gm, gm_client, player_client
):
    secret = DiceSecret.objects.get(session=session).secret
    mine = gm_client.get(f"/api/sessions/{session.pk}/dice").json()
    theirs = player_client.get(f"/api/sessions/{session.pk}/dice").json()
    assert mine["commitments"][0]["secret"] == secret
    assert theirs["commitments"][0]["secret"] is None and theirs["commitments"][0]["revealed"] is False
    assert theirs["commitments"][0]["commitment"] == dice.commitment(secret)
    end(session, gm)
    theirs = player_client.get(f"/api/sessions/{session.pk}/dice").json()
    assert theirs["commitments"][0] | {"revealed": True, "secret": secret} == theirs["commitments"][0]


def test_verify_says_mismatch_for_a_tampered_roll(session, player, gm, player_client):
    event = roll(session, player, "2d6")
    end(session, gm)
    faked = [6, 6] if event.payload["faces"] != [6, 6] else [1, 1]
    Event.objects.filter(pk=event.pk).update(payload={**event.payload, "faces": faked, "total": 12})
    answer = player_client.get(verify_url(session, event.seq)).json()
    assert answer["status"] == "mismatch" and not answer["ok"]
    assert "does not match" in answer["message"] and answer["problems"]


def test_verify_bad_input_is_a_clear_4xx(session, player, player_client):
    roll(session, player)
    for seq, why in ((1, "no dice roll #1"), (999, "no dice roll #999"), (2**40, "no dice roll")):
        response = player_client.get(verify_url(session, seq))
        assert response.status_code == 404 and why in response.json()["detail"]
    assert player_client.get(f"/api/sessions/{session.pk}/dice/abc/verify").status_code == 422
    assert player_client.get("/api/sessions/999999/dice/1/verify").status_code == 404


def test_the_secret_is_in_no_event_state_page_or_socket_payload_before_the_end(
    session, player, gm, gm_client, player_client, sent, django_capture_on_commit_callbacks
):
    secret = DiceSecret.objects.get(session=session).secret
    with django_capture_on_commit_callbacks(execute=True):
        turns.submit_action(
            session_id=session.pk, user=player, text="I hack the airlock panel", idempotency_key="s"
        )
    turns.run_pending_turns(session.pk)
    assert Event.objects.filter(session=session, type="DiceRolled").exists()
    session.refresh_from_db()
    assert secret not in json.dumps(session.state)
    assert secret not in json.dumps(
        list(Event.objects.filter(session=session).values_list("payload", flat=True))
    )
    assert sent and all(secret not in json.dumps(message) for _group, message in sent)
    for client in (gm_client, player_client):
        page = client.get(f"/sessions/{session.pk}/play/").content.decode()
        assert secret not in page
        assert secret not in client.get(f"/api/sessions/{session.pk}/events").content.decode()
    assert secret not in player_client.get(f"/api/sessions/{session.pk}/dice").content.decode()

    end(session, gm)
    assert secret in player_client.get(f"/api/sessions/{session.pk}/events").content.decode()


def test_the_dice_tray_has_a_verify_control_without_inline_script(session, player, player_client):
    event = roll(session, player)
    page = player_client.get(f"/sessions/{session.pk}/play/").content.decode()
    assert f'data-verify-url="{verify_url(session, event.seq)}"' in page
    assert 'class="link verify-roll"' in page and "onclick" not in page
    assert "gtw-dice-v2:campaign:session:seq:secret" in page


def test_a_resumed_session_commits_a_new_secret(session, player, gm, player_client):
    """The old secret is public after the end, so the resumed session must not roll with it."""
    before = roll(session, player)
    end(session, gm)
    resume(session, gm)
    resumed = Event.objects.get(session=session, type="SessionResumed")
    old = first_event(session).payload["dice"]["commitment"]
    new = resumed.payload["dice"]["commitment"]
    assert new != old and resumed.payload["dice"]["from_seq"] == resumed.seq
    after = roll(session, player)
    assert after.payload["seed_from"]["commitment"] == new
    old_secret = DiceSecret.objects.get(commitment=old).secret
    assert after.seed != dice.derive_seed(session.campaign_id, session.pk, after.seq, old_secret)
    # Live again: the new roll waits for the end, the old one is already public.
    assert player_client.get(verify_url(session, after.seq)).json()["status"] == "not_yet"
    assert player_client.get(verify_url(session, before.seq)).json()["status"] == "ok"
    end(session, gm)
    last = Event.objects.filter(session=session, type="SessionEnded").order_by("-seq").first()
    assert [r["commitment"] for r in last.payload["dice"]["revealed"]] == [new]
    assert player_client.get(verify_url(session, after.seq)).json()["status"] == "ok"


def test_a_rerun_turn_after_a_crash_reuses_its_roll_even_across_an_end_and_resume(
    session, player, gm, monkeypatch
):
    """Replays roll the same numbers: the turn's seed follows the secret in force at its seq."""
    turns.submit_action(
        session_id=session.pk, user=player, text="I hack the airlock panel", idempotency_key="c"
    )
    seeds = []
    real_seed_for = dice_secrets.seed_for

    def recording(*args):
        seeds.append(real_seed_for(*args))
        return seeds[-1]

    monkeypatch.setattr(dice_secrets, "seed_for", recording)
    real_flush = broadcast.DeltaStream.flush

    def dying_flush(self, now=None):
        if Event.objects.filter(session=session, type="DiceRolled").exists():
            raise SystemExit("power cut")
        return real_flush(self, now)

    monkeypatch.setattr(broadcast.DeltaStream, "flush", dying_flush)
    with pytest.raises(SystemExit):
        turns.run_pending_turns(session.pk)
    monkeypatch.setattr(broadcast.DeltaStream, "flush", real_flush)
    first = Event.objects.get(session=session, type="DiceRolled")

    end(session, gm)
    monkeypatch.setattr(turns, "schedule_turns", lambda session_id, query=None: None)
    resume(session, gm)
    turns.run_pending_turns(session.pk)
    assert Event.objects.filter(session=session, type="Narration").count() == 1
    again = Event.objects.get(session=session, type="DiceRolled")
    assert (again.pk, again.seed, again.payload["faces"]) == (first.pk, first.seed, first.payload["faces"])
    assert len(seeds) == 2 and seeds[0] == seeds[1]  # the narrator's seed, too


def test_a_branch_rolls_with_its_own_secret_and_its_copies_still_verify(session, player, gm):
    parent_roll = roll(session, player)
    session.refresh_from_db()
    branch_session = campaign_branch(
        membership=gm_membership(session, gm), session=session, at_seq=session.version
    )
    own = DiceSecret.objects.get(session=branch_session)
    assert own.from_seq == branch_session.version + 1
    branch_member = selectors.membership_get(viewer=player, campaign_id=branch_session.campaign_id)
    assert branch_member is not None

    fresh = roll(branch_session, player)
    assert (
        fresh.payload["seed_from"] | {"session": branch_session.pk, "commitment": own.commitment}
        == fresh.payload["seed_from"]
    )
    assert fresh.seed == dice.derive_seed(
        branch_session.campaign_id, branch_session.pk, fresh.seq, own.secret
    )

    copied = Event.objects.get(session=branch_session, seq=parent_roll.seq)
    assert copied.payload["seed_from"]["session"] == session.pk  # names the session it was rolled in
    live = dice_secrets.roll_verify(viewer=player, session_id=branch_session.pk, seq=copied.seq)
    assert live["status"] == "not_yet"  # the parent's secret is still hidden
    end(session, gm)
    assert dice_secrets.roll_verify(viewer=player, session_id=branch_session.pk, seq=copied.seq)["ok"]
    end(branch_session, gm)
    assert dice_secrets.roll_verify(viewer=player, session_id=branch_session.pk, seq=fresh.seq)["ok"]


def test_a_session_from_before_fair_dice_keeps_v1_and_still_verifies(session, player, player_client):
    DiceSecret.objects.filter(session=session).delete()  # as if opened before the migration
    event = roll(session, player)
    assert event.seed == dice.derive_seed(session.campaign_id, session.pk, event.seq)
    assert event.payload["seed_from"]["derivation"] == dice.V1
    Event.objects.filter(pk=event.pk).update(
        payload={k: v for k, v in event.payload.items() if k != "seed_from"}
    )
    answer = player_client.get(verify_url(session, event.seq)).json()
    assert answer["status"] == "ok" and answer["derivation"] == dice.V1


def test_a_stage_session_commits_too(campaign, gm):
    from campaigns.stage import services as stage_services

    staged = stage_services.stage_open(
        membership=selectors.membership_get(viewer=gm, campaign_id=campaign.pk)
    )
    assert staged.kind == PlaySession.Kind.STAGE
    opened = first_event(staged)
    assert opened.payload["kind"] == "stage"
    assert opened.payload["dice"]["commitment"] == DiceSecret.objects.get(session=staged).commitment


def test_a_session_from_before_fair_dice_commits_when_resumed(session, player, gm):
    DiceSecret.objects.filter(session=session).delete()  # opened before the migration
    old = roll(session, player)
    end(session, gm)
    ended = Event.objects.get(session=session, type="SessionEnded")
    assert "dice" not in ended.payload  # nothing to reveal
    resume(session, gm)
    new = roll(session, player)
    assert old.payload["seed_from"]["derivation"] == dice.V1
    assert new.payload["seed_from"]["derivation"] == dice.V2
    resumed = Event.objects.get(session=session, type="SessionResumed")
    assert new.payload["seed_from"]["commitment"] == resumed.payload["dice"]["commitment"]


def test_a_roll_whose_secret_this_server_lacks_says_so(session, player, gm, player_client):
    event = roll(session, player)
    end(session, gm)
    DiceSecret.objects.filter(session=session).delete()
    answer = player_client.get(verify_url(session, event.seq)).json()
    assert answer["status"] == "unknown" and "can't be verified" in answer["message"]
