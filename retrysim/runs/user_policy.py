"""Loading your own retry policy named as ``module:attribute`` (``--policy``).

This is the one place retrysim imports code that is not its own, and only when asked in so many
words: ``--policy`` on the command line or ``retrying=`` in the Python API, never from a
scenario file (a scenario is data; see ``retrysim.model.files``). Like ``python -m``, the
current folder is searched first, so ``--policy my_service.retries:api_retry`` finds the
package the user is standing in.

With tiers, ``--policy NAME=MODULE:ATTR`` is the policy tier ``NAME`` retries its calls to the
next tier with (:func:`split_targets`, :func:`load_policies`); a plain ``MODULE:ATTR`` stays
the clients' (the top's).
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from retrysim.errors import BadInputError
from retrysim.model.tier_keys import check_caller
from retrysim.retry.policy import RetryPolicy
from retrysim.suggest import hint

if TYPE_CHECKING:
    from retrysim.model.scenario import Scenario


class PolicyImportError(BadInputError):
    """``--policy`` names nothing importable, or something that is no tenacity policy."""


def load_policy(spec: str, operation: str = "worker", option: str = "--policy") -> RetryPolicy:
    """Import ``module:attribute`` and make it a policy the simulator steps as it is."""
    from retrysim.sim.foreign import PolicyTypeError, foreign_policy

    obj = load_object(spec, option)
    try:
        return foreign_policy(obj, spec, operation)
    except PolicyTypeError as error:
        raise PolicyImportError(f"{option} {spec}: {error}") from None


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
