"""Loading your own retry policy named as ``module:attribute`` (``--policy``).

This is the one place retrysim imports code that is not its own, and only when asked in so many
words: ``--policy`` on the command line or ``retrying=`` in the Python API, never from a
scenario file (a scenario is data; see ``retrysim.model.files``). Like ``python -m``, the
current folder is searched first, so ``--policy my_service.retries:api_retry`` finds the
package the user is standing in.

What that code does is the user's, and said to be: an exception it raises at import, while
retrysim probes it, or while a run steps its stop, wait or retry (or a wait that returns no
number of seconds) is a :class:`~retrysim.errors.BadInputError` naming the policy
(``your policy mypol:policy raised ValueError: ... (in its wait)``), so the CLI exits 2 with
one line instead of calling it a bug in retrysim. So is a ``sys.exit()`` at its import, which
would otherwise end retrysim silently with the module's exit code.

With tiers, ``--policy NAME=MODULE:ATTR`` is the policy tier ``NAME`` retries its calls to the
next tier with (:func:`split_targets`, :func:`load_policies`); a plain ``MODULE:ATTR`` stays
the clients' (the top's).
"""

from __future__ import annotations

import dataclasses
import importlib
import numbers
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tenacity import RetryCallState
from tenacity.retry import retry_base
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from retrysim.errors import BadInputError
from retrysim.model.tier_keys import check_caller
from retrysim.retry.options import MAX_SECONDS
from retrysim.retry.policy import RetryPolicy
from retrysim.suggest import hint

if TYPE_CHECKING:
    from retrysim.model.scenario import Scenario

_DEBUG = "retrysim --debug shows the traceback"


class PolicyImportError(BadInputError):
    """``--policy`` names nothing importable, or something that is no tenacity policy."""


class PolicyRaisedError(BadInputError):
    """The user's own policy code failed: it raised, or its wait returned no number of
    seconds. The message names the policy and the strategy; the user's traceback is the
    cause (shown with ``retrysim --debug``)."""


def load_policy(spec: str, operation: str = "worker", option: str = "--policy") -> RetryPolicy:
    """Import ``module:attribute`` and make it a policy the simulator steps as it is, its
    stop, wait and retry guarded so a failure in them is reported as the user's."""
    from pydantic import ValidationError

    from retrysim.sim.foreign import PolicyTypeError, foreign_policy

    obj = load_object(spec, option)
    try:
        policy = foreign_policy(obj, spec, operation)
    except PolicyTypeError as error:
        raise PolicyImportError(f"{option} {spec}: {error}") from None
    except ValidationError as error:  # the numbers probing found make no retrysim policy
        raise PolicyRaisedError(f"your policy {spec}: {_unusable(error)}") from error
    except Exception as error:
        if _raised_in_retrysim(error):  # on what the policy returned: float(None), say
            message = f"your policy {spec} returned what retrysim cannot use when probed"
        else:
            message = f"your policy {spec} raised when retrysim probed it"
        raise PolicyRaisedError(
            f"{message} (its stop, wait and retry, asked with made-up calls): {_what(error)} "
            f"({_DEBUG})"
        ) from error
    return guarded(policy, spec)


def guarded(policy: RetryPolicy, spec: str) -> RetryPolicy:
    """``policy`` with its stop, wait and retry each wrapped so that what they raise while a
    run steps them is a :class:`PolicyRaisedError` naming ``spec`` and the strategy. The
    wrappers call the user's objects exactly as tenacity would (same state, same order), so
    results do not change. Coroutine strategies (an ``AsyncRetrying`` in fidelity mode) are
    left as they are: tenacity awaits those."""
    from tenacity import _utils

    def wrap(strategy: Any, kind: type[_Guard]) -> Any:
        return strategy if _utils.is_coroutine_callable(strategy) else kind(strategy, spec)

    return dataclasses.replace(
        policy,
        stop=wrap(policy.stop, _GuardedStop),
        wait=wrap(policy.wait, _GuardedWait),
        retry=wrap(policy.retry, _GuardedRetry),
    )


class _Guard:
    """Calls the user's ``strategy``; what it raises becomes a PolicyRaisedError."""

    role = ""

    def __init__(self, strategy: Any, spec: str) -> None:
        self.strategy = strategy
        self.spec = spec

    def ask(self, retry_state: RetryCallState) -> Any:
        try:
            return self.strategy(retry_state)
        except (Exception, SystemExit) as error:
            raise PolicyRaisedError(
                f"your policy {self.spec} raised {_what(error)} (in its {self.role}, at attempt "
                f"{retry_state.attempt_number}; {_DEBUG})"
            ) from error


class _GuardedStop(_Guard, stop_base):
    role = "stop"

    def __call__(self, retry_state: RetryCallState) -> bool:
        return bool(self.ask(retry_state))


class _GuardedRetry(_Guard, retry_base):
    role = "retry"

    def __call__(self, retry_state: RetryCallState) -> bool:
        return bool(self.ask(retry_state))


class _GuardedWait(_Guard, wait_base):
    role = "wait"

    def __call__(self, retry_state: RetryCallState) -> float:
        seconds = self.ask(retry_state)
        if not isinstance(seconds, numbers.Real):  # tenacity would fail adding it up
            raise PolicyRaisedError(
                f"your policy {self.spec}: its wait returned {seconds!r} at attempt "
                f"{retry_state.attempt_number}, not a number of seconds"
            )
        return seconds  # type: ignore[return-value]


def _raised_in_retrysim(error: BaseException) -> bool:
    """Whether ``error`` was raised by retrysim's own code (its innermost frame is in the
    package), rather than by the policy's code or a library it calls."""
    traceback = error.__traceback__
    if traceback is None:
        return False
    while traceback.tb_next is not None:
        traceback = traceback.tb_next
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    where = os.path.abspath(traceback.tb_frame.f_code.co_filename)
    return where.startswith(package + os.sep)


def _what(error: BaseException) -> str:
    """``ValueError: boom``, on one line."""
    if isinstance(error, SystemExit):
        return f"SystemExit (sys.exit({error.code!r}))"
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _unusable(error: Any) -> str:
    """Why the waits probing found make no policy: the first value refused, and the range."""
    first = error.errors()[0]
    return (
        f"its wait returned {first.get('input')!r} seconds when probed: {first['msg'].lower()} "
        f"(a wait is a number of seconds from 0 to {MAX_SECONDS:g})"
    )


def load_object(spec: str, option: str = "--policy") -> Any:
    """The object ``module:attribute`` names (the attribute may be dotted: ``mod:Class.attr``)."""
    module_name, colon, attribute = spec.partition(":")
    if not colon or not module_name or not attribute:
        raise PolicyImportError(
            f"{option} {spec!r}: expected module:attribute, for example "
            "my_service.retries:api_retry"
        )
    here = os.getcwd()
    if here not in sys.path and "" not in sys.path:
        sys.path.insert(0, here)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name is None or not module_name.startswith(error.name):
            raise _raised(spec, option, module_name, error) from error  # an import inside it
        raise PolicyImportError(
            f"{option} {spec}: no module named {error.name!r} (searched {here} and sys.path; "
            "run from the folder that holds it, or set PYTHONPATH)"
        ) from None
    except SystemExit as error:  # would end retrysim with the module's code and no word
        raise PolicyImportError(
            f"{option} {spec}: your policy module {module_name} exited during import "
            f"(sys.exit({error.code!r})); a module --policy imports must define the policy, "
            "not run a program (put that under if __name__ == '__main__':)"
        ) from error
    except Exception as error:
        raise _raised(spec, option, module_name, error) from error
    obj: Any = module
    walked = module_name
    for part in attribute.split("."):
        if not hasattr(obj, part):
            names = [name for name in dir(obj) if not name.startswith("_")]
            raise PolicyImportError(f"{option} {spec}: {walked} has no {part!r}{hint(part, names)}")
        obj = getattr(obj, part)
        walked = f"{walked}.{part}"
    return obj


def _raised(spec: str, option: str, module: str, error: BaseException) -> PolicyImportError:
    return PolicyImportError(
        f"{option} {spec}: importing {module} raised {type(error).__name__}: {error} "
        "(retrysim --debug shows the traceback)"
    )


def split_target(spec: str) -> tuple[str | None, str]:
    """``gateway=mod:attr`` -> (``"gateway"``, ``"mod:attr"``); ``mod:attr`` -> (None, it).

    A module path holds no ``=``, so the first one, if any, ends the tier's name."""
    name, equals, rest = spec.partition("=")
    return (name.strip(), rest.strip()) if equals else (None, spec)


def split_targets(
    specs: Sequence[str], option: str = "--policy"
) -> tuple[str | None, dict[str, str]]:
    """The top's ``MODULE:ATTR`` (None: the scenario's own) and each tier's, from the values of
    a repeated ``--policy``; a target given twice is refused (one policy per caller)."""
    top: str | None = None
    tiers: dict[str, str] = {}
    for spec in specs:
        name, target = split_target(spec)
        if name is None:
            if top is not None:
                raise PolicyImportError(
                    f"{option} {spec}: the clients' policy is given twice ({top} already); "
                    "give one, or NAME=MODULE:ATTR for a tier's"
                )
            top = target
        elif name in tiers:
            raise PolicyImportError(
                f"{option} {spec}: tier {name!r} has a policy already ({tiers[name]}); give one"
            )
        else:
            tiers[name] = target
    return top, tiers


def load_policies(
    scenario: Scenario, tiers: dict[str, str], option: str = "--policy"
) -> dict[str, RetryPolicy]:
    """Each tier's policy (``{"gateway": "mod:attr"}``) loaded for the engine's ``retryings``:
    the tier checked first (:func:`check_caller`), then imported with its own operation."""
    loaded: dict[str, RetryPolicy] = {}
    for name, target in tiers.items():
        where = f"{option} {name}={target}"
        check_caller(scenario, name, where)  # before an import runs the user's code
        policy = scenario.tiers[name].policy
        assert policy is not None  # validation: every tier that calls another has one
        try:
            loaded[name] = load_policy(target, policy.operation, option)
        except PolicyImportError as error:  # named as it was given: NAME=MODULE:ATTR
            raise PolicyImportError(str(error).replace(f"{option} {target}", where, 1)) from None
    return loaded
