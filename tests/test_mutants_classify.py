"""Tests written for mutants of ``retrysim/retry/classify.py`` that its own tests let survive
(a full mutation run, ``python scripts/mutate.py --module classify``): each pins a behaviour a
plausible wrong edit would change."""

from __future__ import annotations

import math
from typing import Any

import pytest
from tenacity import RetryCallState, Retrying

from retrysim.retry.classify import (
    error_family,
    full_name,
    is_transient,
    register_transient,
    retry_after_of,
    retry_if_transient,
    transient_names,
    unregister_transient,
)
from retrysim.sim.catalogue import StandInResponse


def _made(name: str, module: str, *bases: type, **attributes: Any) -> type[Exception]:
    """An exception class as a library defines it: ``module`` and ``name`` are what the
    classifier sees (no library is imported)."""
    return type(
        name, bases or (Exception,), {"__module__": module, "__qualname__": name, **attributes}
    )


def _state() -> RetryCallState:
    """A retry state of a call whose first attempt has not ended yet."""
    return RetryCallState(retry_object=Retrying(), fn=None, args=(), kwargs={})


# --- classify: what is transient ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "retried"),
    [(429, True), (502, True), (503, True), (504, True), (500, False), (501, False), (505, False)],
)
def test_exactly_429_502_503_and_504_are_retried_statuses(status: int, retried: bool) -> None:
    """An HTTP error answer is transient for too many requests, bad gateway, unavailable and
    gateway timeout, and for no neighbouring status: httpx's and aiohttp's alike."""
    error = _made("HTTPStatusError", "httpx")("x")
    error.response = StandInResponse(status, {})  # type: ignore[attr-defined]
    aio = _made("ClientResponseError", "aiohttp.client_exceptions")("x")
    aio.status = status  # type: ignore[attr-defined]
    assert is_transient(error) is retried
    assert is_transient(aio) is retried


def test_a_library_class_is_known_by_its_qualified_name_not_a_changed_name() -> None:
    """A class is matched by the last part of its ``__qualname__`` (as the module says): a
    class made as httpx's ``ConnectError`` but whose ``__name__`` was changed afterwards is
    still httpx's ConnectError, a transient connection failure."""
    cls = type("Renamed", (Exception,), {"__module__": "httpx", "__qualname__": "ConnectError"})
    assert cls.__name__ == "Renamed"
    assert is_transient(cls("x"))
    assert error_family(cls("x")) == "connection"


def test_a_sqlstate_counts_only_on_a_database_drivers_error() -> None:
    """An application's own error that happens to carry a ``sqlstate`` of class 08 is not a
    driver's connection failure: neither transient nor of the connection family. A driver's
    error with no SQLSTATE at all is not transient either."""
    mine = _made("AppError", "myapp.errors")("x")
    mine.sqlstate = "08006"  # type: ignore[attr-defined]
    assert not is_transient(mine)
    assert error_family(mine) == "other"
    assert not is_transient(_made("DataError", "asyncpg.exceptions")("x"))


def test_unregister_transient_undoes_each_kind_of_registration() -> None:
    """A name, a class and a predicate registered make their errors transient; unregistered,
    they no longer do; an entry never registered is ignored."""
    by_name = _made("Gone", "mutantlib.errors")("x")
    mine = type("Busy", (Exception,), {})
    coded = _made("Coded", "otherlib")("x")
    coded.code = "EBUSYMUTANT"  # type: ignore[attr-defined]

    def busy(error: BaseException) -> bool:
        return getattr(error, "code", None) == "EBUSYMUTANT"

    entries: list[Any] = ["mutantlib.errors.Gone", mine, busy]
    try:
        for what in entries:
            register_transient(what)
        assert all(is_transient(e) for e in (by_name, mine("x"), coded))
    finally:
        for what in entries:
            unregister_transient(what)
    assert not any(is_transient(e) for e in (by_name, mine("x"), coded))
    unregister_transient(busy)  # no longer registered: ignored
    unregister_transient(mine)
    unregister_transient("mutantlib.errors.Gone")


# --- classify: Retry-After hints ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("hint", "seconds"),
    [(0, 0.0), (0.5, 0.5), (7, 7.0), (-1, None), (-0.5, None), (math.inf, None), (math.nan, None)],
)
def test_a_retry_after_hint_is_any_finite_number_of_seconds_from_zero(
    hint: float, seconds: float | None
) -> None:
    """``error.retry_after`` is honoured when it is a finite number >= 0 (0 and fractions of a
    second included); a negative, infinite or NaN hint is no hint."""
    error = RuntimeError("slow down")
    error.retry_after = hint  # type: ignore[attr-defined]
    assert retry_after_of(error) == seconds


# --- classify: the tenacity strategy ------------------------------------------------------------


def test_the_strategy_says_false_without_a_failure() -> None:
    """``retry_if_transient`` answers False (a bool, as tenacity's strategies do) for a
    success and for a call with no outcome yet, and never raises for either."""
    strategy = retry_if_transient()
    assert strategy(_state()) is False
    succeeded = _state()
    succeeded.set_result(42)
    assert strategy(succeeded) is False
    failed = _state()
    error = ConnectionResetError("reset")
    failed.set_exception((type(error), error, None))
    assert strategy(failed) is True


def test_the_strategy_shows_its_setting() -> None:
    """Its repr names the class and whether serialization failures are retried: what a log
    line or a debugger shows of a policy's retry strategy."""
    assert repr(retry_if_transient()) == "retry_if_transient(serialization=False)"
    assert repr(retry_if_transient(serialization=True)) == "retry_if_transient(serialization=True)"


# --- classify: names ----------------------------------------------------------------------------


def test_full_name_is_module_and_qualified_name_except_for_builtins() -> None:
    """What the error matrix and the chaos runs show as an error's class: a builtin by its bare
    name, any other class as ``module.QualName``."""
    assert full_name(ConnectionResetError) == "ConnectionResetError"
    assert full_name(_made("Unavailable", "mylib.errors")) == "mylib.errors.Unavailable"


def test_transient_names_lists_the_known_library_classes_sorted() -> None:
    """The library classes known by class alone, for docs and help: ``package.ClassName``
    (whatever private module the class lives in), sorted."""
    names = list(transient_names())
    assert names == sorted(names)
    assert {"httpx.ConnectError", "redis.TimeoutError", "botocore.ReadTimeoutError"} <= set(names)
