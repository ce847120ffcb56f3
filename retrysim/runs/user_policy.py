"""Loading your own retry policy named as ``module:attribute`` (``--policy``).

This is the one place retrysim imports code that is not its own, and only when asked in so many
words: ``--policy`` on the command line or ``retrying=`` in the Python API, never from a
scenario file (a scenario is data; see ``retrysim.model.files``). Like ``python -m``, the
current folder is searched first, so ``--policy my_service.retries:api_retry`` finds the
package the user is standing in.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

from retrysim.errors import BadInputError
from retrysim.retry.policy import RetryPolicy
from retrysim.suggest import hint


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
