"""Shared fixtures: a clean retry environment per test, seeded jitter, sleep recorders.

Settings are cached process-wide and counters are global, so every test starts (and ends) with
no ``RETRY__*`` variables, no stray ``.env`` (the working directory is the test's tmp_path),
the settings cache cleared, the counters reset and the process's guard state (breakers,
budgets) forgotten.

Helpers that hypothesis tests need are session-scoped fixtures (hypothesis rejects
function-scoped fixtures as test arguments because they are not reset between examples).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

import pytest
import tenacity.wait
from hypothesis import settings as hypothesis_settings
from tenacity import RetryCallState

import retrysim.retry.waits
from retrysim.names import PROFILES
from retrysim.retry import PROCESS_GUARDS, reset_retry_metrics, retry_metrics, use_settings
from retrysim.retry.profiles import REGISTRY as PROFILES_REGISTRY

# CI runs every property test on the same examples every time: derandomised, with no example
# database carried between runs, so a red CI run is reproducible and a green one is not luck.
# Locally the default profile explores new random examples (and remembers failures); run
# `HYPOTHESIS_PROFILE=ci python -m pytest` to see what CI sees.
hypothesis_settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
hypothesis_settings.register_profile("dev", print_blob=True)
# scripts/mutate.py: the same examples every run, so a mutant's verdict does not change.
hypothesis_settings.register_profile("mutation", derandomize=True, database=None, max_examples=30)
hypothesis_settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")
)


#: Set by .ci/run (CI=true does the same): a real service the tests need and cannot find fails
#: them instead of skipping them, so CI cannot go green by skipping its real-service tests.
REQUIRE_SERVICES = "RETRYSIM_REQUIRE_SERVICES"
#: How each real service the tests start is installed (named in the skip or failure).
INSTALL = {
    "redis-server": "apt-get install redis-server",
    "chromium": "apt-get install chromium chromium-driver",
    "chromedriver": "apt-get install chromium chromium-driver",
}


def services_required() -> bool:
    """True under RETRYSIM_REQUIRE_SERVICES or CI (any value but empty, 0, false or no)."""
    return any(
        os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")
        for name in (REQUIRE_SERVICES, "CI")
    )


def need_program(name: str) -> str:
    """The path of ``name`` on PATH; else skip the test naming the install line, or fail it
    when services are required (.ci/run): a fresh machine runs the README's test command
    without every service installed, and CI proves the real-service tests ran."""
    found = shutil.which(name)
    if found is not None:
        return found
    missing(f"{name} is not on PATH: install it ({INSTALL[name]}) to run the real-service tests")


def missing(said: str) -> NoReturn:
    """Skip a test whose machine lacks what it needs (``said``: what, and how to get it); but
    where services are required (CI) fail it, so CI cannot pass by not running it."""
    if services_required():
        pytest.fail(f"{said}; {REQUIRE_SERVICES} or CI is set, so what is missing fails")
    pytest.skip(said)


@pytest.fixture(scope="session")
def redis_server() -> str:
    """The redis-server binary the real-Redis tests start privately (``need_program``)."""
    return need_program("redis-server")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium per test module (tests/browser.py), driven by Selenium; the
    shared-report tests skip without Debian's chromium and chromium-driver, naming the install
    line (and fail instead under RETRYSIM_REQUIRE_SERVICES or CI: ``need_program``)."""
    from tests import browser as chrome

    binary = need_program("chromium")
    driver = need_program("chromedriver")
    with chrome.chromium(binary, driver) as started:
        yield started


def _clean_state() -> None:
    use_settings(None)
    reset_retry_metrics()
    PROCESS_GUARDS.clear()  # breakers and budgets are process-wide: none outlives its test
    for name in [n for n in PROFILES_REGISTRY if n not in PROFILES]:
        del PROFILES_REGISTRY[name]  # a profile a test registered (a --policy's) dies with it


@pytest.fixture(autouse=True)
def clean_retry_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Iterator[None]:
    for name in list(os.environ):
        if name.upper().startswith("RETRY__"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    _clean_state()
    yield
    _clean_state()


@contextlib.contextmanager
def _seeded_jitter(seed: int) -> Iterator[random.Random]:
    """Point tenacity's and retrysim's jitter at ``random.Random(seed)`` inside the block."""
    rng = random.Random(seed)
    # Module globals are swapped through their namespaces (as retrysim.sim.clock does):
    # tenacity.wait does not re-export ``random``, and both hold the module, not a Random.
    namespaces = (vars(tenacity.wait), vars(retrysim.retry.waits))
    saved = [namespace["random"] for namespace in namespaces]
    for namespace in namespaces:
        namespace["random"] = rng
    try:
        yield rng
    finally:
        for namespace, original in zip(namespaces, saved, strict=True):
            namespace["random"] = original


@pytest.fixture(scope="session")
def seeded_jitter() -> Callable[[int], contextlib.AbstractContextManager[random.Random]]:
    """``with seeded_jitter(seed): ...`` makes every jitter draw come from Random(seed)."""
    return _seeded_jitter


@pytest.fixture
def seed_jitter(monkeypatch: pytest.MonkeyPatch) -> Callable[[int], random.Random]:
    """Function-scoped variant: ``seed_jitter(seed)`` patches until the test ends."""

    def apply(seed: int) -> random.Random:
        rng = random.Random(seed)
        monkeypatch.setattr(tenacity.wait, "random", rng)
        monkeypatch.setattr(retrysim.retry.waits, "random", rng)
        return rng

    return apply


def _call_state(policy: Any, attempt_number: int = 1) -> RetryCallState:
    state = RetryCallState(retry_object=policy.retrying(), fn=None, args=(), kwargs={})
    state.attempt_number = attempt_number
    return state


@pytest.fixture(scope="session")
def call_state() -> Callable[..., RetryCallState]:
    """A real tenacity ``RetryCallState`` for ``policy`` at ``attempt_number``."""
    return _call_state


class SleepRecorder:
    """A sync sleep that records each requested wait instead of sleeping."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


class AsyncSleepRecorder:
    """An async sleep that records each wait and yields to the loop (without real time)."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        await asyncio.sleep(0)


@pytest.fixture
def sync_sleep() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
def async_sleep() -> AsyncSleepRecorder:
    return AsyncSleepRecorder()


@pytest.fixture(scope="session")
def make_sync_sleep() -> Callable[[], SleepRecorder]:
    return SleepRecorder


@pytest.fixture(scope="session")
def make_async_sleep() -> Callable[[], AsyncSleepRecorder]:
    return AsyncSleepRecorder


def _metrics_for(func: Callable[..., Any]) -> Any:
    """The counters of one decorated function (keyed by its module and qualified name)."""
    target = getattr(func, "__wrapped__", func)
    key = f"{target.__module__}.{target.__qualname__}"
    snapshot = retry_metrics()
    assert key in snapshot, f"no counters for {key}; have {sorted(snapshot)}"
    return snapshot[key]


@pytest.fixture(scope="session")
def metrics_for() -> Callable[[Callable[..., Any]], Any]:
    return _metrics_for


@pytest.fixture
def no_simulation(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any run from here on is a test failure: a command given a bad output path (or other
    bad input found up front) must stop before it simulates, runs a sweep or tunes."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("simulated although an output path was bad")

    monkeypatch.setattr("retrysim.runs.runner.run", refuse)
    monkeypatch.setattr("retrysim.runs.sweep.compare", refuse)
    monkeypatch.setattr("retrysim.cli.tune_cmd._run", refuse)
