"""The `remote` simulation provider: an HTTP adapter for a learned world model, speaking the JSON
protocol of docs/SIMULATION.md (POST <base_url>/v1/step).

The server is stateless: the world travels with each call and the client keeps it, so snapshots,
restores and hashes are the procedural provider's own (the same world format, checked the same
way). The server must answer the window's new world, how many steps it ran, what changed, and
the SHA-256 of the canonical {"step", "world"}; the client computes that hash itself, and a
server whose claim differs has drifted (missions.simulation.window quarantines it). Failures are
ProviderError: a timeout or a 5xx may pass (retryable), a 4xx or a malformed answer will not.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from gtw_site.providers import ProviderError, clip, safe_url
from missions.simulation.procedural import (
    MAX_BUDGET,
    ProceduralSimulation,
    SimulationError,
    Window,
    WindowReport,
    step_seed,
)

PROTOCOL = 1
# Loopback and LAN servers: a *_proxy variable in the shell must not reroute them.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class RemoteSimulation(ProceduralSimulation):
    kind = "remote"
    name = "remote"

    def __init__(
        self, *, base_url: str, timeout: float | None = 5.0, api_key: str = "", model: str = ""
    ) -> None:
        super().__init__()
        if not base_url or not base_url.startswith(("http://", "https://")):
            raise ValueError("the remote simulation needs an http(s) base_url")
        self.base_url = base_url.rstrip("/")
        self.timeout = float(timeout or 5.0)
        self.api_key = api_key
        self.model = model

    def step(self, window: Window) -> WindowReport:
        if self.campaign_id is None:
            raise SimulationError("start the simulation first")
        if not 0 <= window.budget <= MAX_BUDGET:
            raise SimulationError(f"a window's budget is 0..{MAX_BUDGET}, got {window.budget}")
        if window.start_step != self.step_index:
            raise SimulationError(
                f"the window starts at step {window.start_step}; the world is at {self.step_index}"
            )
        body = {
            "protocol": PROTOCOL,
            "model": self.model,
            "campaign_id": self.campaign_id,
            "session_id": self.session_id,
            "window": {
                "beat_id": window.beat_id,
                "start_step": window.start_step,
                "budget": window.budget,
                "protected": list(window.protected),
            },
            # The seed of each step (SHA-256 of campaign:session:beat:step), for a model that samples.
            "seeds": [
                str(step_seed(self.campaign_id, self.session_id or 0, window.beat_id, window.start_step + i))
                for i in range(window.budget)
            ],
            "step": self.step_index,
            "world": self.world,
        }
        answer = self._post("/v1/step", body)
        try:
            steps = answer["steps"]
            world = answer["world"]
            changes = answer.get("changes") or []
            claimed = answer["state_hash"]
            if type(steps) is not int or not isinstance(world, dict) or not isinstance(claimed, str):
                raise TypeError
            if not isinstance(changes, list) or not all(isinstance(c, dict) for c in changes):
                raise TypeError
        except (KeyError, TypeError):
            raise ProviderError(
                "answered without steps, world and state_hash (see docs/SIMULATION.md)",
                retryable=False,
                provider=self.name,
            ) from None
        if not 0 <= steps <= window.budget:
            raise SimulationError(f"the server ran {steps} steps of a {window.budget}-step window")
        self.world = world
        self.step_index = window.start_step + steps
        return WindowReport(window.beat_id, window.start_step, window.budget, steps, tuple(changes), claimed)

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        url = self.base_url + path
        request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")  # noqa: S310 — http(s), checked
        request.add_header("Content-Type", "application/json")
        if self.api_key:
            request.add_header("Authorization", f"Bearer {self.api_key}")
        try:
            with _OPENER.open(request, timeout=self.timeout) as response:
                payload = response.read()
        except urllib.error.HTTPError as exc:
            raise ProviderError(
                f"{safe_url(url)} answered HTTP {exc.code}",
                retryable=exc.code >= 500 or exc.code == 429,
                provider=self.name,
                status=exc.code,
            ) from None
        except TimeoutError:
            raise ProviderError(
                f"no answer from {safe_url(url)} within {self.timeout:g} s",
                retryable=True,
                provider=self.name,
            ) from None
        except (urllib.error.URLError, ConnectionError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ProviderError(
                f"cannot reach {safe_url(url)} ({clip(str(reason), 120)})", retryable=True, provider=self.name
            ) from None
        try:
            data = json.loads(payload)
        except ValueError:
            raise ProviderError(
                f"{safe_url(url)} answered with something that is not JSON",
                retryable=False,
                provider=self.name,
            ) from None
        if not isinstance(data, dict):
            raise ProviderError("answered JSON that is not an object", retryable=False, provider=self.name)
        return data
