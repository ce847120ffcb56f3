"""The fixed registry of error names a scenario may use, and how to raise each.

Records store an error as a small code (its index here, 0 = no error); names are data, so a
later real-service recorder can map its own exception classes onto the same codes.
"""

from __future__ import annotations

from retrysim.model.scenario import ERROR_NAMES
from retrysim.retry.exceptions import CircuitOpenError, ConflictError, RateLimitedError, ServerError
from retrysim.sim.catalogue import LIBRARY_ERROR_NAMES, stand_in

ERROR_CLASSES: dict[str, type[Exception]] = {
    "ConnectionError": ConnectionError,
    "ConnectionRefusedError": ConnectionRefusedError,
    "ConnectionResetError": ConnectionResetError,
    "ConnectionAbortedError": ConnectionAbortedError,
    "TimeoutError": TimeoutError,
    "OSError": OSError,
    "RateLimited": RateLimitedError,
    "Conflict": ConflictError,
    "ServerError": ServerError,
    "CircuitOpen": CircuitOpenError,  # a breaker's refusal: recorded, never sent
    # client libraries' errors: stand-ins with the real classes' names and ancestry
    **{name: stand_in(name) for name in LIBRARY_ERROR_NAMES},
}
assert tuple(ERROR_CLASSES) == ERROR_NAMES

#: code -> name; code 0 means "no error".
CODE_NAMES: tuple[str, ...] = ("", *ERROR_NAMES)
assert len(CODE_NAMES) <= 256, "records store error codes in one byte (u1)"
CODES: dict[str, int] = {name: code for code, name in enumerate(CODE_NAMES) if name}
TIMEOUT = CODES["TimeoutError"]
RATE_LIMITED = CODES["RateLimited"]
CIRCUIT_OPEN = CODES["CircuitOpen"]
CONFLICT = CODES["Conflict"]


#: code -> (class, message): what make_error raises for each code, looked up once.
_MADE: tuple[tuple[type[Exception], str], ...] = (
    (Exception, ""),
    *((ERROR_CLASSES[name], f"{name} (simulated)") for name in CODE_NAMES[1:]),
)


def make_error(code: int, retry_after: float | None = None) -> Exception:
    """A fresh exception instance for ``code`` (fresh, so tracebacks never accumulate)."""
    if code == RATE_LIMITED:
        return RateLimitedError("rate limited (simulated)", retry_after=retry_after)
    cls, message = _MADE[code]
    return cls(message)


def code_of(error: BaseException) -> int:
    """The record code of ``error``'s class (a guard's refusal, say): its exact type's name.

    Records can only hold the registry's errors; anything else is a programming error in the
    guard that raised it, reported as such rather than recorded as something it is not.
    """
    for name, cls in ERROR_CLASSES.items():
        if type(error) is cls:
            return CODES[name]
    raise TypeError(
        f"{type(error).__name__} cannot be recorded by the simulator; "
        f"refuse with one of: {', '.join(ERROR_CLASSES)}"
    )


# -- answers: values an attempt returns instead of raising ---------------------------------------

#: The first record code of a run's answers (``[[faults]] answer``, ``reject_answer``): they
#: follow the error names, each value a code of its own, named ``result:<value>``.
ANSWER_BASE = len(CODE_NAMES)
#: What a served request returns: the value every simulated call's success is.
SERVED = None


def answer_name(value: object) -> str:
    """How records name an answer: ``result:503``, ``result:busy``, ``result:None``."""
    return f"result:{value}"


class Answers:
    """A run's answers as record codes: its scenario's, in order, then ``result:None``.

    ``result:None`` is a served request's answer that the policy's result predicate rejected
    (``retry_if_result(lambda r: r is None)``): an attempt that returned and was retried, or
    was the last of a call that gave up, is recorded under it rather than as a success. Codes
    are a function of the scenario alone (the order of its answers), so every path of a run
    (the engine's, fidelity mode's) gives each value the same code.
    """

    __slots__ = ("names", "none_code", "values")

    def __init__(self, values: tuple[int | str, ...] = ()) -> None:
        self.values: tuple[object, ...] = values
        self.none_code = ANSWER_BASE + len(values)
        assert self.none_code < 256, "records store error codes in one byte (u1)"
        self.names = (*CODE_NAMES, *(answer_name(v) for v in values), answer_name(SERVED))

    def code(self, value: object) -> int:
        """The record code of ``value`` (one of the scenario's answers)."""
        return ANSWER_BASE + self.values.index(value)

    def value(self, code: int) -> object:
        """What an attempt recorded under ``code`` returned (0 or ``none_code``: None)."""
        return SERVED if code in (0, self.none_code) else self.values[code - ANSWER_BASE]


def is_answer(code: int) -> bool:
    """Whether ``code`` records a returned value the policy judged, not an error."""
    return code >= ANSWER_BASE
