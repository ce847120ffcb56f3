"""Server models (``retrysim/sim/service.py``): behaviour its mutation run found untested."""

from __future__ import annotations

from typing import Any

from retrysim.model.scenario import parse_scenario
from retrysim.model.service import RateLimited
from retrysim.sim.engine import simulate
from retrysim.sim.failures import RATE_LIMITED
from retrysim.sim.service import RateLimitedServer


class Host:
    """The engine's side of a server, recording what the server answers."""

    def __init__(self) -> None:
        self.done: list[tuple[float, Any, int]] = []
        self.refused: list[tuple[Any, int, float | None]] = []

    @property
    def now(self) -> float:
        return 0.0

    def at(self, t: float, fn: Any, arg: Any) -> int:
        raise AssertionError("a token bucket schedules nothing of its own")

    def cancel(self, event: int) -> None:
        raise AssertionError("a token bucket cancels nothing")

    def respond(self, call: Any, a: int, code: int, hint: float | None = None) -> None:
        self.refused.append((call, code, hint))

    def schedule_done(self, t: float, call: Any, a: int, code: int) -> None:
        self.done.append((t, call, code))

    def server_done(self, call: Any, a: int, code: int, hint: float | None = None) -> None:
        raise AssertionError("a token bucket answers through respond or schedule_done")

    def answer_code(self, answer: Any) -> int:
        raise AssertionError("no reject_answer here")


def test_a_lock_held_for_no_time_serves_everyone_and_has_no_capacity_figure() -> None:
    """A lock whose requests take no time never makes anyone wait; its capacity (requests a
    second) is unbounded, reported as none rather than divided by zero."""
    scenario = parse_scenario(
        {
            "name": "free-lock",
            "seed": 1,
            "duration": 1,
            "policy": {"operation": "api", "max_attempts": 1},
            "clients": {"count": 5, "arrival": {"kind": "burst", "at": 0}},
            "service": {"kind": "lock", "latency": 0},
        }
    )
    result = simulate(scenario)
    assert result.capacity is None
    assert result.calls["outcome"].tolist() == [0] * 5
    assert result.attempts["end"].tolist() == [0.0] * 5


def test_a_client_that_waits_a_rounding_step_less_than_a_token_still_gets_it() -> None:
    """One token a second: a request 1 - 1e-9 s after the bucket was emptied finds its refill
    a rounding step short of a whole token, and is admitted (the tolerance that lets a client
    waiting exactly the Retry-After find its token); one arriving clearly earlier is refused,
    with the Retry-After rounded up to whole seconds."""
    spec = RateLimited.model_validate({"kind": "rate_limited", "rate": 1.0, "burst": 1})
    host = Host()
    server = RateLimitedServer(host, spec)  # type: ignore[arg-type]
    server.submit("first", 0, 0.0, 0.25)
    server.submit("early", 1, 0.5, 0.25)
    server.submit("on time", 2, 1.0 - 1e-9, 0.25)
    assert [call for _, call, _ in host.done] == ["first", "on time"]
    assert host.refused == [("early", RATE_LIMITED, 1.0)]
