"""The `simulation` kind, declared on the generic provider registry: one role, "simulation".

GTW_SIMULATION_PROVIDER picks `procedural` (the default: missions.simulation.procedural, local,
deterministic, no key) or `remote` (an HTTP learned world model speaking the JSON protocol of
docs/SIMULATION.md). A GM chooses per campaign through the runtime selection (role
"simulation": /api/simulation/provider or the providers page). Adding a provider = one adapter
module, one line in `providers`, one contract test.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from gtw_site.providers.registry import CALL, Choice, Registry


def _arguments(choice: Choice) -> dict[str, Any]:
    vendor = choice.conf.get(choice.provider)
    if not isinstance(vendor, dict):  # procedural (and any local provider) takes no settings
        return {}
    return {
        "base_url": vendor.get("base_url", ""),
        "api_key": vendor.get("api_key", ""),
        "model": vendor.get("model", ""),
        "timeout": choice.timeout,
    }


SIMULATION = Registry(
    "simulation",
    roles=("simulation",),
    providers={
        "procedural": "missions.simulation.procedural:ProceduralSimulation",
        "remote": "missions.simulation_remote:RemoteSimulation",
    },
    settings=lambda: settings.GTW_SIMULATION,
    # GTW_SIMULATION_TIMEOUT_S bounds one remote step call: a window runs under the session lock.
    timeout=lambda role, conf: conf[role]["timeout"],
    arguments=_arguments,
    calls={"step": CALL},
)

PROVIDERS = SIMULATION.providers


def build(campaign_id: int) -> Any:
    """A fresh simulation for `campaign_id` (its runtime choice, else the environment's). The
    procedural one is not recorded in telemetry (pure and local, sub-millisecond per step); a
    remote one leaves a ProviderCall row per step call."""
    selection = SIMULATION.selection("simulation", campaign_id)
    provider = selection.provider if selection is not None else SIMULATION.provider_name("simulation")
    if provider == "procedural":
        return SIMULATION.build("simulation", campaign_id=campaign_id)
    return SIMULATION.get("simulation", campaign_id=campaign_id)
