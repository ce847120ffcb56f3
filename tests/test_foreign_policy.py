"""Your own tenacity policy in the simulator: stepped as it is, probed for what it does.

The proof that the engine steps the user's objects is three-fold: a stop that counts its own
calls is called by the engine; the engine's records equal those of tenacity's own
``AsyncRetrying`` running the same policy on the virtual-time loop; and probing reads back the
numbers the policy was built with.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tenacity
from tenacity import (
    AsyncRetrying,
    Retrying,
    retry,
    retry_if_exception_type,
    retry_if_result,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
    wait_fixed,
    wait_random,
)
from tenacity.wait import wait_base
from typer.testing import CliRunner

import retrysim
from retrysim.cli.app import app
from retrysim.model.scenario import parse_scenario
from retrysim.runs.user_policy import PolicyImportError, load_object
from retrysim.sim import records as rec
from retrysim.sim.engine import simulate
from retrysim.sim.fidelity import run_with_decorators
from retrysim.sim.foreign import foreign_policy, probe
from retrysim.sim.invariants import violations

FLAKY: dict[str, Any] = {
    "seed": 3,
    "duration": 30,
    "clients": {"count": 300, "arrival": {"kind": "uniform", "end": 20}},
    "service": {"kind": "ideal", "latency": {"dist": "exponential", "mean": 0.05}},
    "faults": [
        {"kind": "outage", "start": 5, "end": 7},
        {"kind": "flaky", "start": 10, "end": 15, "probability": 0.4, "error": "TimeoutError"},
    ],
}


class WaitThirds(wait_base):
    """A wait of the user's own: a third more each retry, jittered through tenacity's random."""

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        n = retry_state.attempt_number
        jitter = vars(tenacity.wait)["random"].random()  # the draw tenacity's own waits make
        return float(min(4.0, 0.3 * (4 / 3) ** n) * (0.5 + jitter / 2))


class CountingStop:
    """A stop of the user's own that remembers how often it was asked."""

    def __init__(self, attempts: int) -> None:
        self.attempts = attempts
        self.asked = 0

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        self.asked += 1
        return retry_state.attempt_number >= self.attempts


def test_probing_reads_back_the_numbers_a_tenacity_policy_was_built_with() -> None:
    policy = Retrying(
        stop=stop_after_attempt(5) | stop_after_delay(30),
        wait=wait_exponential(multiplier=0.5, max=8) + wait_random(0, 0.5),
        retry=retry_if_exception_type((ConnectionError, TimeoutError)),
    )
    found = probe(policy, "p")
    assert found.max_attempts == 5 and found.attempts_limited
    assert found.max_delay == pytest.approx(30)
    # 0.5 * 2^(n-1) capped at 8, plus U(0, 0.5)
    assert found.wait_ranges[:5] == ((0.5, 1.0), (1.0, 1.5), (2.0, 2.5), (4.0, 4.5), (8.0, 8.5))
    assert {cls.__name__ for cls in found.retried} == {
        "ConnectionError",
        "ConnectionRefusedError",
        "ConnectionResetError",
        "ConnectionAbortedError",
        "TimeoutError",
    }
    assert found.strategies["stop"] == (
        "stop_after_attempt(max_attempt_number=5) | stop_after_delay(max_delay=30)"
    )
    assert found.notes == ()


def test_probing_says_what_a_policy_lacks_or_cannot_be_simulated_as() -> None:
    found = probe(Retrying(retry=retry_if_result(lambda r: r is None)), "bare")
    assert not found.attempts_limited and found.max_attempts == 10_000
    assert any("no attempt limit" in note for note in found.notes)
    assert any("returned None" in note for note in found.notes)
    found = probe(Retrying(before_sleep=lambda state: None, stop=stop_after_attempt(2)), "cb")
    assert found.notes == ("before_sleep is not run in simulation",)
    assert "(your own; probed)" in probe(Retrying(wait=WaitThirds()), "own").strategies["wait"]


def test_the_engine_steps_the_users_own_stop() -> None:
    stop = CountingStop(3)
    scenario = parse_scenario({**FLAKY, "clients": {"count": 20}, "faults": [FLAKY["faults"][0]]})
    scenario = scenario.with_overrides({"clients.arrival": {"kind": "burst", "at": 5}})
    result = simulate(scenario, retrying=Retrying(stop=stop, wait=wait_fixed(0.5)))
    # Every call fails while down (5 to 7): attempts at 5, 5.5, 6, each asking the stop.
    assert set(result.attempts["attempt"].tolist()) == {1, 2, 3}
    assert (result.calls["outcome"] == rec.GAVE_UP).all()
    assert stop.asked >= 20 * 3  # asked after each failed attempt (and once more by probing)


@pytest.mark.parametrize("kind", [Retrying, AsyncRetrying])
def test_engine_and_tenacitys_own_async_loop_agree_record_for_record(kind: Any) -> None:
    policy = kind(
        stop=stop_after_attempt(6),
        wait=WaitThirds(),
        retry=retry_if_exception_type((ConnectionError, TimeoutError)),
    )
    scenario = parse_scenario(FLAKY)
    engine = simulate(scenario, retrying=policy)
    virtual = run_with_decorators(scenario, retrying=policy)
    assert violations(engine) == [] and violations(virtual) == []
    assert len(engine.attempts) > len(engine.calls)  # it did retry
    key = ("client", "attempt")
    ours = np.sort(engine.attempts, order=key)
    theirs = np.sort(virtual.attempts, order=key)
    for field in ("client", "attempt", "outcome", "error", "executed"):
        assert ours[field].tolist() == theirs[field].tolist(), field
    for field in ("start", "end"):
        np.testing.assert_allclose(ours[field], theirs[field], rtol=0, atol=1e-9)
    np.testing.assert_allclose(
        np.nan_to_num(ours["wait"], nan=-1), np.nan_to_num(theirs["wait"], nan=-1), atol=1e-9
    )


def test_a_decorated_function_is_simulated_by_its_retrying() -> None:
    @retry(stop=stop_after_attempt(2), retry=retry_if_exception_type(ConnectionError))
    def fetch() -> None:
        return None

    result = simulate(parse_scenario(FLAKY), retrying=fetch)
    assert result.attempts["attempt"].max() == 2
    assert result.policy["custom"]["name"].endswith("fetch")


def test_same_seed_same_records_and_the_seed_moves_the_jitter() -> None:
    policy = Retrying(stop=stop_after_attempt(4), wait=wait_random(0, 2))
    scenario = parse_scenario(FLAKY)
    first, again = simulate(scenario, retrying=policy), simulate(scenario, retrying=policy)
    assert first.attempts.tobytes() == again.attempts.tobytes()
    other = simulate(scenario, seed=99, retrying=policy)
    assert not np.array_equal(first.attempts["wait"], other.attempts["wait"], equal_nan=True)


def test_the_document_names_the_policy_and_suggestions_name_no_retry_variable() -> None:
    policy = Retrying(stop=stop_after_attempt(2), wait=wait_fixed(0.1))
    doc = retrysim.run(retrysim.load_scenario("thundering-herd"), retrying=policy).document
    assert doc["settings"]["custom"]["strategies"]["wait"] == "wait_fixed(wait_fixed=0.1)"
    assert doc["settings"]["max_attempts"] == 2
    suggestions = [s for d in doc["diagnoses"] for s in d["settings"]]
    assert suggestions, "attempts run out during thundering-herd's outage"
    assert all(s["env"] is None for s in suggestions)


def test_guards_do_not_join_a_users_policy() -> None:
    from retrysim.retry.guards import GuardSpec

    class Quiet:
        def before_attempt(self, now: float, attempt: int) -> None:
            return None

        def after_outcome(self, now: float, error: BaseException | None) -> None:
            return None

    spec = GuardSpec("x", "call", Quiet)
    with pytest.raises(ValueError, match="guards"):
        simulate(parse_scenario(FLAKY), retrying=Retrying(), guards=[spec])


def test_an_object_that_is_no_policy_is_refused_by_name() -> None:
    with pytest.raises(TypeError, match="is of type int"):
        foreign_policy(42, "n")


# --- importing module:attribute ------------------------------------------------------------


def module_of_the_users(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefix: str, source: str
) -> Iterator[str]:
    """For a fixture: ``source`` as module ``<prefix>_<pid>`` in ``tmp_path``, made the current
    folder and importable, as a service repository's own module is; yields its name, and
    forgets the imported module afterwards."""
    name = f"{prefix}_{os.getpid()}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


@pytest.fixture
def user_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A module of the user's own in the current folder, as a service repository has."""
    yield from module_of_the_users(
        tmp_path,
        monkeypatch,
        "user_retries",
        """
        from tenacity import Retrying, retry, stop_after_attempt, wait_exponential

        api_retry = Retrying(stop=stop_after_attempt(4), wait=wait_exponential(max=4))

        @retry(stop=stop_after_attempt(2))
        def fetch():
            return None

        nothing = 42
        """,
    )


def test_module_attribute_is_found_from_the_current_folder(user_module: str) -> None:
    assert isinstance(load_object(f"{user_module}:api_retry"), Retrying)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no_colon", "expected module:attribute"),
        ("surely_no_such_module_here:x", "no module named 'surely_no_such_module_here'"),
        ("{m}:api_retyr", "has no 'api_retyr' (did you mean 'api_retry'?)"),
    ],
)
def test_bad_specs_say_what_is_wrong(user_module: str, spec: str, message: str) -> None:
    with pytest.raises(PolicyImportError, match=re.escape(message)):
        load_object(spec.format(m=user_module))


def test_cli_run_and_compare_take_policies(user_module: str) -> None:
    runner = CliRunner()
    result = runner.invoke(
        app, ["run", "redis-blip", "--policy", f"{user_module}:api_retry", "--json", "-q"]
    )
    assert result.exit_code == 0, result.output
    assert f'"name": "{user_module}:api_retry"' in result.output
    result = runner.invoke(
        app,
        [
            "compare",
            "redis-blip",
            "--policy",
            f"{user_module}:api_retry",
            "--policy",
            f"{user_module}:fetch",
            "--json",
            "-q",
        ],
    )
    assert result.exit_code == 0, result.output
    assert f"policy={user_module}:fetch" in result.output
    for args, message in (
        (["--policy", f"{user_module}:nothing"], "is of type int"),
        (["--policy", f"{user_module}:api_retry", "--set", "policy.max_attempts=3"], "no effect"),
    ):
        result = runner.invoke(app, ["run", "redis-blip", "-q", *args])
        assert result.exit_code == 2 and message in result.output, result.output


def test_the_command_line_finds_a_module_in_the_folder_it_runs_in(user_module: str) -> None:
    """The installed ``retrysim`` script, not ``python -m``: the cwd is searched all the same."""
    script = Path(sys.executable).with_name("retrysim")
    done = subprocess.run(
        [str(script), "run", "redis-blip", "--policy", f"{user_module}:fetch", "--json", "-q"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    assert done.returncode == 0, done.stderr
    assert '"attempts_limited": true' in done.stdout


def test_running_a_scenario_never_loads_the_user_code_importer() -> None:
    """Scenario files are data: only --policy or retrying= reach the module that imports code."""
    code = (
        "import sys, retrysim\n"
        "retrysim.run(retrysim.load_scenario('redis-blip'))\n"
        "print('retrysim.runs.user_policy' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "False"
