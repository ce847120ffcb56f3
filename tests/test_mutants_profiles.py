"""Tests written for mutants of ``retrysim/retry/profiles.py`` that its own tests let survive
(a full mutation run, ``python scripts/mutate.py --module profiles``): each pins a behaviour a
plausible wrong edit would change."""

from __future__ import annotations

import dataclasses

import pytest
from tenacity import Retrying, stop_after_attempt
from tenacity.wait import wait_base

from retrysim.retry import build_policy
from retrysim.retry.classify import is_transient
from retrysim.retry.profiles import REGISTRY, Shape, get_profile, register_profile


def _shape(
    name: str, min_wait: float, max_wait: float, jitter: float = 0.0, operation: str = "worker"
) -> Shape:
    """The shape ``name`` resolves from these numbers, with ``multiplier`` unset."""
    return get_profile(name).shape(operation, min_wait, max_wait, jitter, None)


def _waits(wait: wait_base, retries: int) -> list[float]:
    """The waits tenacity asks ``wait`` for before retries 1..``retries`` of a call that always
    fails (recorded, never slept)."""
    waits: list[float] = []

    def fail() -> None:
        raise ConnectionError("down")

    retrying = Retrying(
        stop=stop_after_attempt(retries + 1), wait=wait, sleep=waits.append, reraise=True
    )
    with pytest.raises(ConnectionError):
        retrying(fail)
    return waits


def _profile_waits(
    name: str,
    min_wait: float,
    max_wait: float,
    retries: int,
    jitter: float = 0.0,
    operation: str = "worker",
) -> list[float]:
    """The first ``retries`` waits of profile ``name``'s wait strategy for these numbers."""
    shape = _shape(name, min_wait, max_wait, jitter, operation)
    return _waits(get_profile(name).wait(shape), retries)


# --- profiles: the registry and the profile objects -----------------------------------------


def test_a_shape_cannot_be_changed_once_resolved() -> None:
    """A resolved shape is a value: assigning to it raises, and equal shapes hash alike (a
    policy's shape can be shared and used as a key)."""
    shape = _shape("exponential", 1.0, 10.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        shape.base = 2.0  # type: ignore[misc]
    assert len({shape, _shape("exponential", 1.0, 10.0)}) == 1


def test_register_profile_hands_back_the_profile_it_registered() -> None:
    """``register_profile`` returns its argument (so it can be used inline); registering a
    built-in again leaves the registry as it was."""
    before = dict(REGISTRY)
    exponential = get_profile("exponential")
    assert register_profile(exponential) is exponential
    assert list(REGISTRY.items()) == list(before.items())


def test_a_profiles_repr_names_it_and_its_formula() -> None:
    """``repr`` of a profile shows its name and its formula (what a REPL or a log shows)."""
    for profile in REGISTRY.values():
        text = repr(profile)
        assert text.startswith("<profile ")
        assert profile.name in text and profile.formula in text


def test_every_profile_says_what_it_retries_in_words() -> None:
    """Each built-in profile describes what it retries for ``retrysim errors``: bindu its
    shipped set, every other the transient errors of the classifier."""
    for name, profile in REGISTRY.items():
        if name == "bindu":
            assert "OSError" in profile.retries_what
        else:
            assert profile.retries_what.startswith("transient errors")


def test_retries_answers_as_the_profiles_retry_strategy_decides() -> None:
    """``retries(error)`` is a yes or no: the default profiles retry exactly the transient
    errors; bindu its shipped set, which holds any OSError but not a ValueError."""
    errors = [ConnectionError("down"), TimeoutError("slow"), ValueError("bug"), KeyError("k")]
    for name in ("documented", "full_jitter", "equal_jitter", "decorrelated", "exponential"):
        for error in errors:
            assert get_profile(name).retries(error) is is_transient(error)
    bindu = get_profile("bindu")
    assert bindu.retries(FileNotFoundError("gone")) is True
    assert bindu.retries(ConnectionError("down")) is True
    assert bindu.retries(ValueError("bug")) is False


# --- profiles: the formulas' waits ----------------------------------------------------------


def test_documented_doubles_from_its_base() -> None:
    """documented without jitter and base 1: 1, 2, 4, 8, then max_wait (10)."""
    assert _profile_waits("documented", 1.0, 10.0, 5, jitter=0.0) == [1.0, 2.0, 4.0, 8.0, 10.0]


def test_documented_with_a_zero_base_waits_only_its_jitter() -> None:
    """documented with min_wait 0 is ``min(max_wait, U(0, jitter))``: with jitter 0 every wait
    is exactly 0, and with jitter 0.5 none is above 0.5."""
    assert _profile_waits("documented", 0.0, 10.0, 6, jitter=0.0) == [0.0] * 6
    assert all(0.0 <= w <= 0.5 for w in _profile_waits("documented", 0.0, 10.0, 20, jitter=0.5))


def test_documented_wait_range_grows_by_powers_of_two_without_overflow() -> None:
    """documented's longest wait before retry n is ``min(max_wait, base*2^(n-1) + jitter)``:
    1.5, 2.5, 4.5, 8.5 with base 1 and jitter 0.5; far past a float's range (retry 1025 and on)
    it is max_wait, not an OverflowError."""
    shape = _shape("documented", 1.0, 100.0, jitter=0.5)
    profile = get_profile("documented")
    assert [profile.wait_range(shape, n)[1] for n in (1, 2, 3, 4)] == [1.5, 2.5, 4.5, 8.5]
    for n in (1024, 1025, 1026, 5000):
        assert profile.wait_range(shape, n) == (100.0, 100.0)


def test_bindu_takes_min_wait_as_a_floor() -> None:
    """bindu's base is 1 s and ``min_wait`` is a floor: storage (no jitter) with min_wait 1.5
    waits 1.5, 2, 4; a worker's range before retry 1 starts at min_wait, not at 0."""
    assert _profile_waits("bindu", 1.5, 10.0, 3, operation="storage") == [1.5, 2.0, 4.0]
    bindu = get_profile("bindu")
    shape = _shape("bindu", 0.5, 10.0)
    assert shape.floor == 0.5
    assert bindu.wait_range(shape, 1) == (0.5, 1.0)
    assert bindu.wait_range(shape, 3) == (0.5, 4.0)


def test_full_jitter_with_a_base_of_one_waits() -> None:
    """full_jitter with base 1 draws ``U(0, min(max_wait, 2^(n-1)))``: the waits lie in their
    ranges and are not all zero (only a zero base waits nothing)."""
    waits = _profile_waits("full_jitter", 1.0, 10.0, 12)
    assert sum(waits) > 0
    shape = _shape("full_jitter", 1.0, 10.0)
    for n, wait in enumerate(waits, start=1):
        lo, hi = get_profile("full_jitter").wait_range(shape, n)
        assert lo <= wait <= hi


def test_exponential_with_a_base_of_one_doubles() -> None:
    """exponential with base 1: exactly 1, 2, 4, 8, then max_wait (10)."""
    assert _profile_waits("exponential", 1.0, 10.0, 5) == [1.0, 2.0, 4.0, 8.0, 10.0]


def test_decorrelated_wait_range_triples_up_to_the_cap() -> None:
    """decorrelated's longest wait before retry n is ``min(max_wait, base*3^n)``: 3, 9, 27, 81
    with base 1 under a cap of 100, then the cap."""
    profile, shape = get_profile("decorrelated"), _shape("decorrelated", 1.0, 100.0)
    assert [profile.wait_range(shape, n) for n in (1, 2, 3, 4, 5, 700)] == [
        (1.0, 3.0),
        (1.0, 9.0),
        (1.0, 27.0),
        (1.0, 81.0),
        (1.0, 100.0),
        (1.0, 100.0),
    ]


def test_decorrelated_with_a_zero_base_never_waits() -> None:
    """decorrelated with min_wait 0 draws ``U(0, 3*0)``: every wait is 0, and its range says so
    at every retry, also past the retry where 3^n overflows a float."""
    assert _profile_waits("decorrelated", 0.0, 10.0, 5) == [0.0] * 5
    profile, shape = get_profile("decorrelated"), _shape("decorrelated", 0.0, 10.0)
    for n in (1, 646, 647, 1000):
        assert profile.wait_range(shape, n) == (0.0, 0.0)


# --- profiles: a bug found on the way ---------------------------------------------------------


def test_documented_zero_base_range_stays_at_the_jitter_past_retry_1024() -> None:
    """documented with min_wait 0 waits ``min(max_wait, U(0, jitter))`` at every retry, and its
    range says so also past retry 1024, where ``0 * 2^(n-1)`` would be ``0 * inf`` (nan): the
    worst-case total of 1999 retries of at most 0.5 s is 999.5 s."""
    policy = build_policy(
        "worker", profile="documented", min_wait=0.0, max_wait=10.0, jitter=0.5, max_attempts=2000
    )
    for n in (1, 1024, 1025, 1999):
        assert policy.wait_range(n) == (0.0, 0.5)
    assert policy.worst_case_total() == 1999 * 0.5
