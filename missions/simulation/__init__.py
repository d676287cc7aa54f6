"""The world simulation (issue 19): a pure stepper the director can run in step windows at beat
boundaries. `procedural` is the local, deterministic provider."""

from missions.simulation.procedural import (
    ProceduralSimulation,
    SimulationError,
    Window,
    WindowReport,
    generate_world,
    rebind,
    step_seed,
    world_hash,
)
from missions.simulation.reconcile import Decision, reconcile

__all__ = [
    "Decision",
    "ProceduralSimulation",
    "SimulationError",
    "Window",
    "WindowReport",
    "generate_world",
    "rebind",
    "reconcile",
    "step_seed",
    "world_hash",
]
