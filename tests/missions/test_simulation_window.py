"""One beat boundary, pure (missions.simulation.window): the window equals plain stepping, the
players' lines are in the game's words (one market line, faction names as written), and a world
that breaks an invariant or a restored world that is not the recorded one is drift."""

from __future__ import annotations

from missions.simulation import ProceduralSimulation, Window, generate_world
from missions.simulation.reconcile import Decision
from missions.simulation.window import run_window, summarize, world_lines


def _sim(entities=80):
    sim = ProceduralSimulation()
    sim.start({"campaign_id": 2, "session_id": 3}, generate_world(entities, 9))
    return sim


def test_a_window_lands_where_plain_stepping_lands():
    plain, boundary = _sim(), _sim()
    plain.step(Window("rising-7", 0, 9))
    outcome = run_window(
        boundary,
        boundary.snapshot(),
        boundary.state_hash(),
        Window("rising-7", 0, 9),
        campaign_id=2,
        session_id=3,
    )
    assert outcome.ok and not outcome.quarantined
    assert outcome.state_hash == plain.state_hash() and outcome.steps == 9 and outcome.step_index == 9


def test_the_players_lines_are_news_not_numbers_of_the_engine():
    before = {
        "influence": {"helix": 10, "warden": 10, "choir": 10},
        "prices": {"medpatch": 40, "fuel-cell": 60},
        "hazards": [1],
        "dead": [],
    }
    after = {
        "influence": {"helix": 19, "warden": 11, "choir": 10},
        "prices": {"medpatch": 30, "fuel-cell": 66},
        "hazards": [1, 4, 5],
        "dead": [],
    }
    lines = world_lines(before, after, Decision())
    assert lines[0] == "The Helix Syndicate gains ground across the Reach."
    assert lines[1] == "Medpatch gets cheaper: 30 credits."  # the biggest move only
    assert not any("Fuel cell" in line for line in lines)
    assert lines[2] == "A hazard spreads into the Lantern Reach and Marrow Station."
    wardens = {**after, "influence": {"helix": 10, "warden": 20, "choir": 10}, "hazards": [1, 4, 5, 6]}
    news = world_lines(before, wardens, Decision())
    assert news[0] == "The Wardens gain ground across the Reach."
    assert news[2] == "A hazard spreads into the Lantern Reach, Marrow Station and 1 more sector."
    quiet = world_lines(before, before, Decision())
    assert quiet == []


def test_a_restored_world_that_is_not_the_recorded_one_drifts_twice_and_gives_up():
    sim = _sim()
    outcome = run_window(sim, sim.snapshot(), "0" * 64, Window("b", 0, 3), campaign_id=2, session_id=3)
    assert not outcome.ok and len(outcome.quarantined) == 2 and "hash mismatch" in outcome.quarantined[0]


class NegativeStock(ProceduralSimulation):
    def step(self, window):
        report = super().step(window)
        self.world["market"]["medpatch"]["stock"] = -1
        return type(report)(
            report.beat_id, report.start_step, report.budget, report.steps, report.changes, self.state_hash()
        )


def test_an_invariant_broken_by_the_provider_is_drift_even_with_an_honest_hash():
    sim = NegativeStock()
    sim.start({"campaign_id": 2, "session_id": 3}, generate_world(40, 1))
    outcome = run_window(
        sim, sim.snapshot(), sim.state_hash(), Window("b", 0, 2), campaign_id=2, session_id=3
    )
    assert not outcome.ok and "negative stock" in outcome.quarantined[0]


def test_summaries_count_the_dead_and_the_hazards():
    world = generate_world(30, 4)
    world["npcs"][3]["alive"] = False
    world["sectors"][0]["hazard"] = 2
    s = summarize(world)
    assert s["dead"] == [3] and 0 in s["hazards"] and sum(s["influence"].values()) > 0


def test_the_lost_are_reported_where_they_were_by_the_sectors_name():
    from missions.simulation.procedural import WindowReport
    from missions.simulation.reconcile import reconcile
    from missions.simulation.window import sector_name

    report = WindowReport("b", 0, 1, 1, ({"step": 0, "kind": "npc_died", "npc": 4, "sector": 9},), "h")
    decision = reconcile(report, sector_names={9: sector_name(9)})
    assert decision.notes == ("Word comes that someone was lost in Halcyon Spur 2.",)
    sim = _sim(400)
    sim.world["sectors"][3]["hazard"] = 9  # deadly: someone may be lost there
    outcome = run_window(
        sim, sim.snapshot(), sim.state_hash(), Window("b", 0, 40), campaign_id=2, session_id=3
    )
    assert outcome.ok and not any("sector " in line for line in outcome.lines)
