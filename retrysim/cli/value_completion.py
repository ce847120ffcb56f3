"""Shell completion of option values: scenario names and files, profiles, metrics, --set keys.

``retrysim --install-completion`` installs the shell hook; the shell then asks the program
itself (``_RETRYSIM_COMPLETE=complete_bash retrysim ...``) and these functions answer. They
run only then, so everything heavy is imported inside them: ``retrysim --help`` never pays.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from retrysim.names import ENGINES, EXECUTOR_KINDS, PROFILES


def bundled(incomplete: str) -> list[str]:
    """Bundled scenario names (``scenarios show NAME``)."""
    from retrysim.model.library import bundled_scenarios

    return [name for name in bundled_scenarios() if name.startswith(incomplete)]


def scenarios(incomplete: str) -> list[str]:
    """Bundled scenario names, then ``.toml`` files and folders under what is typed so far."""
    return bundled(incomplete) + _toml_paths(incomplete)


def _toml_paths(incomplete: str) -> list[str]:
    head, sep, stem = incomplete.rpartition("/")
    prefix = head + sep
    try:
        entries = sorted(Path(prefix or ".").iterdir())
    except OSError:
        return []
    found = []
    for entry in entries:
        if not entry.name.startswith(stem) or (entry.name.startswith(".") and not stem):
            continue
        if entry.is_dir():
            found.append(f"{prefix}{entry.name}/")
        elif entry.suffix == ".toml":
            found.append(f"{prefix}{entry.name}")
    return found


def _listed(incomplete: str, choices: list[str]) -> list[str]:
    """Complete the last item of a comma-separated list (``bindu,doc`` -> ``bindu,documented``)."""
    done, _, last = incomplete.rpartition(",")
    head = f"{done}," if done else ""
    already = set(done.split(",")) if done else set()
    return [head + c for c in choices if c.startswith(last) and c not in already]


def profiles(incomplete: str) -> list[str]:
    """Backoff profile names; after a comma, the next one (``compare --profile P1,P2``)."""
    return _listed(incomplete, list(PROFILES))


def executors(incomplete: str) -> list[str]:
    """``--executor`` kinds: local, dask."""
    return [kind for kind in EXECUTOR_KINDS if kind.startswith(incomplete)]


def engines(incomplete: str) -> list[str]:
    """``--engine`` values: auto, fast, reference."""
    return [engine for engine in ENGINES if engine.startswith(incomplete)]


def metrics(incomplete: str) -> list[str]:
    """Metric names, comma-separated (``--metrics success_rate,p99_latency``)."""
    from retrysim.results.metric_table import METRIC_NAMES

    return _listed(incomplete, list(METRIC_NAMES))


def thresholds(incomplete: str) -> list[str]:
    """``METRIC=`` for ``--fail-under``/``--fail-over``; the value is the user's to type."""
    from retrysim.results.metric_table import METRIC_NAMES

    return [f"{name}=" for name in METRIC_NAMES if f"{name}=".startswith(incomplete)]


def set_keys(ctx: Any, incomplete: str) -> list[str]:
    """Dotted scenario keys, as ``key=``: those of the scenario on the command line if it
    loads, else those any bundled scenario has (policy.*, clients.*, service.*, faults.N.*),
    and every resilience knob (``policy.breaker.enabled=``), at the top and in each of the
    scenario's tiers that calls another (``tiers.gateway.policy.max_attempts=``; a tier's
    name comes from the scenario on the command line). After the ``=``, the values of a
    knob that has few (``true``/``false``, a breaker's ``scope``, a budget's ``kind``, a
    service's ``kind``), as a comma list for ``compare``/``sweep``
    (``policy.budget.enabled=false,``)."""
    if "=" in incomplete:
        key, _, typed = incomplete.partition("=")
        return [f"{key}={value}" for value in _listed(typed, _values_of(key))]
    keys = _keys_of(_scenario_arg(ctx))
    return [f"{key}=" for key in keys if key.startswith(incomplete)]


def _scenario_arg(ctx: Any) -> str | None:
    """The SCENARIO typed on the command line, if any.

    Completing the value of ``--set``, Click parses the words before it resiliently and the
    option left waiting for its value (the word being completed) leaves the positional
    argument unassigned, in ``ctx.args``: look there too, or the keys of the file being run
    (a normal's ``service.latency.negative``) would never be offered.
    """
    if ctx is None:
        return None
    found = ctx.params.get("scenario")
    if found is None and ctx.args:
        found = ctx.args[0]
    return str(found) if found is not None else None


def _values_of(key: str) -> list[str]:
    """The values a dotted key can take, when they are few: a mechanism's switches and
    Literal knobs, straight from its options model (``MECHANISMS``), the shorthand
    ``policy.breaker=true``, a latency's ``dist`` and ``negative`` (from the latency
    models: ``service.latency.negative=reflect``), and a service's kind and fixed-set fields
    (``service_choices``)."""
    from typing import Literal, get_args, get_origin

    from retrysim.model.tier_keys import within_tier
    from retrysim.retry.mechanisms import MECHANISMS

    parts = within_tier(key).split(".")  # a tier's key takes what the same key at the top does
    if parts[0] != "policy" and parts[-1] in ("dist", "negative"):
        from retrysim.model.base import latency_choices

        return list(latency_choices(parts[-1]))
    if parts[0] == "service" and len(parts) == 2:
        from retrysim.model.service import service_choices

        return list(service_choices().get(parts[1], ()))
    if parts[0] != "policy" or len(parts) not in (2, 3) or parts[1] not in MECHANISMS:
        return []
    if len(parts) == 2:
        return ["true", "false"]
    field = MECHANISMS[parts[1]].model_fields.get(parts[2])
    if field is None:
        return []
    if field.annotation is bool:
        return ["true", "false"]
    if get_origin(field.annotation) is Literal:
        return [str(value) for value in get_args(field.annotation)]
    return []


def _keys_of(scenario: str | None) -> list[str]:
    from retrysim.model.library import bundled_scenarios, load_scenario
    from retrysim.model.tier_keys import CALLER_KEYS
    from retrysim.suggest import dotted_keys

    sources = [scenario] if scenario else []
    keys: set[str] = set()
    callers: tuple[str, ...] = ()  # the tiers that call another: each has a policy
    for source in [*sources, *bundled_scenarios()]:
        try:
            loaded = load_scenario(source)
        except Exception:
            continue
        found = dotted_keys(loaded.model_dump(mode="json"))
        if source == scenario and loaded.tiers:  # the last tier calls no one: no caller keys
            callers, last = loaded.tier_names[:-1], loaded.tier_names[-1]
            idle = {f"tiers.{last}.{key}" for key in CALLER_KEYS}
            found = [k for k in found if ".".join(k.split(".")[:3]) not in idle]
        keys.update(found)
        if source == scenario:
            break  # the scenario being run is the one whose keys count
    from retrysim.retry.options import OPTION_NAMES, TABLES

    for policy in ["policy", *(f"tiers.{name}.policy" for name in callers)]:
        keys.update(f"{policy}.{name}" for name in OPTION_NAMES)
        keys.update(  # every knob of the error families' and the mechanisms' tables
            f"{policy}.{table}.{knob}"
            for table, model in TABLES.items()
            for knob in model.model_fields
        )
        keys -= {f"{policy}.{table}" for table in TABLES}  # a table, not a value
    keys -= {"name", "description", "seed"}  # not worth overriding from the command line
    return sorted(keys)
