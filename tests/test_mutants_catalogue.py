"""Tests written for mutants of ``retrysim/sim/catalogue.py`` that its own tests let survive
(a full mutation run, ``python scripts/mutate.py --module catalogue``): each pins a behaviour of
the client-library error catalogue that a plausible wrong edit would change while every earlier
test passed."""

from __future__ import annotations

import dataclasses
import re

import pytest

from retrysim.chaos.http_service import HTTP_STATUS
from retrysim.retry.classify import status_of
from retrysim.sim.catalogue import BY_NAME, CATALOGUE
from retrysim.sim.failures import CODES, make_error


def test_a_status_error_raised_in_a_run_carries_the_status_retrysim_errors_shows() -> None:
    """``retrysim errors`` shows an entry's note ("status 503"): the error a fault raises under
    that name must carry that status, the one the classifier and per-error policies read."""
    checked = set()
    for entry in CATALOGUE:
        shown = re.fullmatch(r"status (\d+)", entry.note)
        if shown is None:
            continue
        assert status_of(make_error(CODES[entry.name])) == int(shown.group(1)), entry.name
        checked.add(entry.name)
    assert checked == {"httpx.HTTPStatusError", "aiohttp.ClientResponseError"}


def test_the_simulated_httpx_status_error_is_the_one_the_chaos_service_answers() -> None:
    """A chaos run against retrysim's HTTP service answers ``httpx.HTTPStatusError`` faults
    with a real status; the simulated run raises the stand-in with the same status, so both
    sides classify it alike."""
    name = "httpx.HTTPStatusError"
    assert status_of(make_error(CODES[name])) == HTTP_STATUS[name]


def test_a_catalogue_entry_cannot_be_changed_by_a_caller() -> None:
    """The catalogue is shared by every run in the process: changing an entry would change
    what later runs raise, so an entry refuses assignment."""
    entry = BY_NAME["httpx.HTTPStatusError"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(entry, "note", "status 200")  # noqa: B010 - the assignment a caller would try
    assert entry.note == "status 503"
