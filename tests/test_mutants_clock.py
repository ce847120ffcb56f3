"""Tests written for mutants of ``retrysim/sim/clock.py`` that its own tests let survive
(a full mutation run, ``python scripts/mutate.py --module clock``): each pins a behaviour of
tenacity's virtual clock that a plausible wrong edit would change while every earlier test
passed."""

from __future__ import annotations

import time
from typing import Any

import pytest
import tenacity

from retrysim.sim.clock import tenacity_virtual_time


def _tenacity_time() -> Any:
    """The ``time`` module tenacity reads its clock through."""
    return vars(tenacity)["time"]


def test_every_clock_of_tenacitys_time_reads_the_simulation_inside_the_block() -> None:
    """Inside the block, code reading tenacity's ``time`` (tenacity itself, or a callback
    that does) gets the simulation's clock from ``monotonic``, ``perf_counter`` and ``time``
    alike, never the wall clock; after it, the real module is back."""
    now = [12.5]
    with tenacity_virtual_time(lambda: now[0]):
        clock = _tenacity_time()
        assert (clock.monotonic(), clock.perf_counter(), clock.time()) == (12.5, 12.5, 12.5)
        now[0] = 20.0
        assert (clock.monotonic(), clock.perf_counter(), clock.time()) == (20.0, 20.0, 20.0)
    assert _tenacity_time() is time


def test_a_time_function_the_virtual_clock_lacks_fails_naming_the_time_module() -> None:
    """The stand-in is a module named ``time``: reading a function it does not offer (a
    sleep, which a simulation never does) fails as the real module's missing attribute would,
    naming ``time``."""
    with tenacity_virtual_time(lambda: 0.0):
        clock = _tenacity_time()
        assert clock.__name__ == "time"
        with pytest.raises(AttributeError, match="module 'time' has no attribute 'sleep'"):
            clock.sleep(1)
