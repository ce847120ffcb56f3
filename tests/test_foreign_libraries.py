"""Policies written with stamina or backoff: translated into tenacity strategies, simulated.

The proof is the libraries' own waits: each decorated function is run for real on the pytest
plugin's virtual clock (stamina sleeps through tenacity, backoff's async wrapper through
``asyncio.sleep``), and its sleeps are compared with the waits the simulator's engine
schedules for the same policy against a dependency that is always down: equal without
jitter, within the formula's bounds with it. A hypothesis law checks the translation against
the library over random parameters.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import backoff
import numpy as np
import pytest
import stamina
from hypothesis import given, settings
from hypothesis import strategies as st
from tenacity import RetryCallState, Retrying
from typer.testing import CliRunner

from retrysim.cli.app import app
from retrysim.model.scenario import parse_scenario
from retrysim.runs.user_policy import PolicyImportError, load_policy
from retrysim.sim.engine import simulate
from retrysim.sim.foreign import foreign_policy
from retrysim.sim.foreign_libraries import library_policy
from retrysim.testing import VirtualTime
from tests.test_foreign_policy import module_of_the_users

#: One client, one call at t=1, every attempt refused (ConnectionRefusedError, a
#: ConnectionError) at once: the call's waits are the policy's and nothing else.
DOWN: dict[str, Any] = {
    "seed": 5,
    "duration": 600,
    "clients": {"count": 1, "arrival": {"kind": "burst", "at": 1}},
    "service": {"kind": "ideal", "latency": 0.001},
    "faults": [{"kind": "outage", "start": 0, "end": 600}],
}


def simulated(policy: Any) -> tuple[list[float], int]:
    """The waits the engine scheduled between the call's attempts, and its attempts."""
    result = simulate(parse_scenario(DOWN), retrying=policy)
    waits = result.attempts["wait"]
    assert np.isnan(waits[-1])  # the last attempt is not followed by a wait
    return waits[:-1].tolist(), len(waits)


def always_down() -> None:
    raise ConnectionError("down")


async def always_down_async() -> None:
    raise ConnectionError("down")


def library_sleeps(vt: VirtualTime, call: Callable[[], Any]) -> list[float]:
    """Run a decorated function that always fails on the virtual clock: its sleeps."""
    before = len(vt.sleeps)
    with pytest.raises(ConnectionError):
        result = call()
        if asyncio.iscoroutine(result):
            vt.run(result)
    return vt.sleeps[before:]


# --- equal waits, without jitter -------------------------------------------------------------


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_stamina_waits_are_the_simulated_waits(virtual_time: VirtualTime, is_async: bool) -> None:
    decorate = stamina.retry(
        on=ConnectionError,
        attempts=6,
        timeout=None,
        wait_initial=0.2,
        wait_max=3.0,
        wait_exp_base=3,
        wait_jitter=0,
    )
    function = decorate(always_down_async if is_async else always_down)
    theirs = library_sleeps(virtual_time, function)
    ours, attempts = simulated(function)
    assert theirs == [0.2, 0.2 * 3, 0.2 * 9, 3.0, 3.0]  # min(3, 0.2 * 3^(n-1))
    assert ours == theirs and attempts == 6


BACKOFF_CASES: dict[str, tuple[Any, dict[str, Any], int]] = {
    # (wait generator, its keywords, attempts the call makes)
    "expo": (backoff.expo, {"factor": 0.5, "base": 3, "max_value": 4}, 6),
    "fibo": (backoff.fibo, {"max_value": 6}, 6),
    "constant": (backoff.constant, {"interval": 0.75}, 6),
    "constant-list": (backoff.constant, {"interval": [0.5, 1, 2]}, 4),  # then it gives up
    "runtime": (backoff.runtime, {"value": lambda error: 0.7}, 6),
}


@pytest.mark.parametrize("case", sorted(BACKOFF_CASES))
def test_backoff_waits_are_the_simulated_waits(virtual_time: VirtualTime, case: str) -> None:
    generator, keywords, attempts = BACKOFF_CASES[case]
    decorate = backoff.on_exception(
        generator, ConnectionError, max_tries=6, jitter=None, **keywords
    )
    function = decorate(always_down_async)
    theirs = library_sleeps(virtual_time, function)
    ours, made = simulated(function)
    assert len(theirs) == attempts - 1 and theirs  # the library did back off
    assert ours == theirs and made == attempts


# --- jitter: the same bounds ------------------------------------------------------------------


def test_stamina_jitter_stays_in_its_bounds(virtual_time: VirtualTime) -> None:
    function = stamina.retry(on=ConnectionError, attempts=8, timeout=None, wait_max=2.0)(
        always_down
    )  # wait_initial 0.1, wait_jitter 1.0: min(2, 0.1 * 2^(n-1) + U(0, 1))
    theirs = library_sleeps(virtual_time, function)
    ours, attempts = simulated(function)
    assert attempts == 8 and len(theirs) == 7
    for waits in (theirs, ours):
        for n, wait in enumerate(waits, start=1):
            low = min(2.0, 0.1 * 2 ** (n - 1))
            assert low <= wait <= min(2.0, low + 1.0)
    assert len(set(ours)) > 1  # drawn, not a bound


@pytest.mark.parametrize("jitter", ["full_jitter", "random_jitter"])
def test_backoff_jitter_stays_in_its_bounds(virtual_time: VirtualTime, jitter: str) -> None:
    function = backoff.on_exception(
        backoff.expo, ConnectionError, max_tries=8, jitter=getattr(backoff, jitter), factor=0.25
    )(always_down_async)
    theirs = library_sleeps(virtual_time, function)
    ours, attempts = simulated(function)
    assert attempts == 8 and len(theirs) == 7
    for waits in (theirs, ours):
        for n, wait in enumerate(waits, start=1):
            value = 0.25 * 2 ** (n - 1)
            low, high = (0.0, value) if jitter == "full_jitter" else (value, value + 1.0)
            assert low <= wait <= high
    assert len({round(w, 9) for w in ours}) == len(ours)  # drawn, each its own


# --- the law, over random parameters ----------------------------------------------------------


def _translated_sleeps(vt: VirtualTime, function: Any) -> list[float]:
    policy = library_policy(function)
    assert isinstance(policy, Retrying)
    before = len(vt.sleeps)
    with pytest.raises(ConnectionError):
        policy(always_down)
    return vt.sleeps[before:]


@settings(max_examples=40, deadline=None)
@given(
    attempts=st.integers(1, 12),
    initial=st.floats(0.0, 5.0),
    maximum=st.floats(0.01, 60.0),
    base=st.floats(1.0, 4.0),
)
def test_translated_stamina_sleeps_as_stamina_does(
    attempts: int, initial: float, maximum: float, base: float
) -> None:
    function = stamina.retry(
        on=ConnectionError,
        attempts=attempts,
        timeout=None,
        wait_initial=initial,
        wait_max=maximum,
        wait_exp_base=base,
        wait_jitter=0,
    )(always_down)
    with VirtualTime() as vt:
        theirs = library_sleeps(vt, function)
        assert _translated_sleeps(vt, function) == theirs
    assert len(theirs) == attempts - 1


@settings(max_examples=40, deadline=None)
@given(
    tries=st.integers(1, 12),
    case=st.sampled_from(["expo", "fibo", "constant"]),
    number=st.floats(0.01, 8.0),
    cap=st.none() | st.floats(0.5, 30.0),
)
def test_translated_backoff_sleeps_as_backoff_does(
    tries: int, case: str, number: float, cap: float | None
) -> None:
    options: dict[str, dict[str, Any]] = {
        "expo": {"factor": number, "max_value": cap},
        "fibo": {"max_value": cap},
        "constant": {"interval": number},
    }
    keywords = options[case]
    function = backoff.on_exception(
        getattr(backoff, case), ConnectionError, max_tries=tries, jitter=None, **keywords
    )(always_down_async)
    with VirtualTime() as vt:
        theirs = library_sleeps(vt, function)
        assert _translated_sleeps(vt, function) == theirs
    assert len(theirs) == tries - 1


# --- what else is translated ------------------------------------------------------------------


def test_a_stamina_backoff_hook_decides_and_names_its_wait(virtual_time: VirtualTime) -> None:
    def hook(error: BaseException) -> bool | float:
        return 2.5 if isinstance(error, TimeoutError) else isinstance(error, ConnectionError)

    script: list[type[Exception]] = []

    def flaky() -> None:
        raise script.pop(0)("x")

    function = stamina.retry(on=hook, attempts=10, timeout=None, wait_jitter=0)(flaky)
    errors = [ConnectionError, TimeoutError, ConnectionError, ValueError]
    script[:] = errors
    with pytest.raises(ValueError):
        function()
    theirs = virtual_time.sleeps
    script[:] = errors
    policy = library_policy(function)
    assert isinstance(policy, Retrying)
    with pytest.raises(ValueError):
        policy(flaky)
    assert theirs == [0.1, 2.5, 0.4]  # backoff, the hook's own wait, backoff (n = 3)
    assert virtual_time.sleeps[len(theirs) :] == theirs


def test_backoff_giveup_is_a_retry_that_stops_on_it() -> None:
    function = backoff.on_exception(
        backoff.constant,
        (ConnectionError, TimeoutError),
        giveup=lambda error: isinstance(error, TimeoutError),
        max_tries=3,
    )(always_down)
    retried = {cls.__name__ for cls in foreign_policy(function, "p").probed.retried}  # type: ignore[attr-defined]
    assert "ConnectionRefusedError" in retried and "TimeoutError" not in retried


def test_backoff_max_time_stops_the_call_and_cuts_the_last_wait() -> None:
    function = backoff.on_exception(
        backoff.constant, ConnectionError, max_time=10, jitter=None, interval=4
    )(always_down)
    policy = library_policy(function)
    assert isinstance(policy, Retrying)
    state = RetryCallState(policy, None, (), {})
    state.set_exception((ConnectionError, ConnectionError("x"), None))
    state.start_time, state.outcome_timestamp = 0.0, 8.5
    assert policy.wait(state) == pytest.approx(1.5)  # 4 s cut to the 1.5 s left
    assert not policy.stop(state)
    state.outcome_timestamp = 10.0
    assert policy.stop(state)


def test_objects_of_neither_library_are_left_alone() -> None:
    assert library_policy(always_down) is None
    assert library_policy(42) is None


# --- refused, in one line naming what ------------------------------------------------------------


@pytest.fixture
def user_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A service's retry module using stamina and backoff, in the current folder."""
    yield from module_of_the_users(
        tmp_path,
        monkeypatch,
        "library_retries",
        """
        import backoff
        import stamina

        @stamina.retry(on=ConnectionError, attempts=4, wait_jitter=0.5)
        def stamina_fetch():
            return None

        @backoff.on_exception(backoff.expo, ConnectionError, max_tries=4)
        def backoff_fetch():
            return None

        def my_waits():
            yield
            while True:
                yield 1

        @backoff.on_exception(my_waits, ConnectionError)
        def own_generator():
            return None

        @backoff.on_exception(backoff.expo, ConnectionError, jitter=lambda v: v / 2)
        def own_jitter():
            return None

        @backoff.on_exception(backoff.expo, ConnectionError, factr=2)
        def unknown_keyword():
            return None

        @backoff.on_predicate(backoff.fibo)
        def on_results():
            return None

        @backoff.on_exception(backoff.constant, ConnectionError, interval=iter([1, 2]))
        def endless():
            return None

        async def judge(error):
            return False

        @backoff.on_exception(backoff.expo, ConnectionError, giveup=judge)
        async def async_giveup():
            return None
        """,
    )


@pytest.mark.parametrize(
    ("attribute", "named"),
    [
        ("own_generator", "wait_gen=my_waits"),
        ("own_jitter", "jitter=<lambda>"),
        ("unknown_keyword", "unknown keyword(s) factr"),
        ("on_results", "backoff.on_predicate"),
        ("endless", "backoff.constant(interval=<list_iterator"),
        ("async_giveup", "giveup=...): a coroutine function"),
    ],
)
def test_what_cannot_be_translated_is_refused_naming_it(
    user_module: str, attribute: str, named: str
) -> None:
    with pytest.raises(PolicyImportError) as raised:
        load_policy(f"{user_module}:{attribute}")
    message = str(raised.value)
    assert "\n" not in message and message.startswith(f"--policy {user_module}:{attribute}: ")
    assert named in message


def test_cli_runs_stamina_and_backoff_policies_and_refuses_with_exit_2(user_module: str) -> None:
    runner = CliRunner()
    for attribute, wait in (
        ("stamina_fetch", "wait_exponential_jitter(multiplier=0.1, max=5, exp_base=2, jitter=0.5"),
        ("backoff_fetch", "wait_random_exponential(multiplier=1"),
    ):
        spec = f"{user_module}:{attribute}"
        result = runner.invoke(app, ["run", "redis-blip", "--policy", spec, "--json", "-q"])
        assert result.exit_code == 0, result.output
        assert f'"name": "{spec}"' in result.output and wait in result.output
    result = runner.invoke(
        app, ["run", "redis-blip", "--policy", f"{user_module}:own_jitter", "-q"]
    )
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and "jitter=<lambda>" in result.output


def test_a_translated_wait_is_seeded_by_the_simulator() -> None:
    function = backoff.on_exception(backoff.fibo, ConnectionError, max_tries=5)(always_down)
    first, again = simulated(function), simulated(function)
    assert first == again  # full jitter drawn from the run's seeded stream
    assert not math.isclose(sum(first[0]), 1 + 1 + 2 + 3)  # and drawn, not the bounds
