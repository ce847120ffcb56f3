"""What several commands share: loading a scenario with --set/--profile, settings, output."""

from __future__ import annotations

import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrysim.cli.exits import UsageError, warn
from retrysim.names import PROFILES
from retrysim.suggest import dotted_keys as dotted_keys  # for the shell's completion
from retrysim.suggest import hint, unknown_key

if TYPE_CHECKING:
    from retrysim.model.scenario import Scenario
    from retrysim.retry.settings import RetrySettings
    from retrysim.runs.executors import Executor

PROFILE_NAMES = PROFILES  # re-exported for the commands


def parse_value(text: str) -> Any:
    """A --set value: a TOML literal (5, 0.5, true, "x", [1, 2], {a = 1}) or else a bare string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_assignment(item: str, option: str = "--set") -> tuple[str, str]:
    if "=" not in item:
        raise UsageError(f"{option} {item!r}: expected KEY=VALUE, e.g. policy.max_attempts=5")
    key, _, value = item.partition("=")
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise UsageError(f"{option} {item!r}: the key must be dotted names like faults.0.end")
    return key, value.strip()


def metric_name(name: str, where: str) -> str:
    """``name`` if it is a metric of :mod:`retrysim.results.metric_table`; else a UsageError:
    ``WHERE: unknown metric``, the closest metric, then every one (``where`` names the option
    and the name as the command shows it: ``--fail-under sucess_rate``)."""
    from retrysim.results.metric_table import METRIC_NAMES

    if name not in METRIC_NAMES:
        close = hint(name, METRIC_NAMES, list_allowed=False)
        raise UsageError(f"{where}: unknown metric{close}; allowed: {', '.join(METRIC_NAMES)}")
    return name


def parse_number(text: str, where: str) -> float:
    """An option's number (``where`` names it and the item: ``--weight 'p99_latency=x'``), or
    one line saying it is none; inf and nan parse, each caller says which numbers it takes."""
    try:
        return float(text)
    except ValueError:
        raise UsageError(f"{where}: {text!r} is not a number") from None


def parse_sets(items: list[str] | None) -> dict[str, Any]:
    return {key: parse_value(value) for key, value in map(parse_assignment, items or [])}


def load(scenario_arg: str, sets: dict[str, Any], profile: str | None = None) -> Scenario:
    """Load by bundled name or path, apply --set overrides and --profile, validate; print
    the scenario lint's warnings (see :func:`load_given`)."""
    return load_given(scenario_arg, sets, profile)[0]


def load_given(
    scenario_arg: str, sets: dict[str, Any], profile: str | None = None
) -> tuple[Scenario, frozenset[str]]:
    """:func:`load`, and the dotted keys the user set (the file's and the ``--set`` ones).

    Each warning of the scenario lint (:mod:`retrysim.model.lint`: a key that does nothing
    here, a scenario that degenerates) is one ``retrysim: warning: FILE: KEY: text`` line on
    stderr; the command goes on. The keys set are what the defaults in effect are told from
    (:func:`retrysim.model.defaults.in_effect`).
    """
    from retrysim.model.defaults import given_keys
    from retrysim.model.library import load_scenario, resolve
    from retrysim.model.lint import lint
    from retrysim.model.scenario import ScenarioError
    from retrysim.sim.limits import ScenarioTooLargeError, check_memory

    if profile is not None:
        check_profile(profile)
        sets = {**sets, "policy.profile": profile}
    try:
        from_file = load_scenario(scenario_arg)
    except ScenarioError as error:
        raise UsageError(str(error)) from None
    scenario = apply(from_file, sets)
    # What the file set, taken before --set: a re-validated dump has every key set.
    given = given_keys(from_file, sets, scenario)
    # Refuse a scenario this machine cannot hold now, naming the file, not after the settings
    # are read and the run has started (the engine checks again with the effective policy).
    try:
        check_memory(scenario, scenario.policy.max_attempts or 3)
    except ScenarioTooLargeError as error:
        raise UsageError(f"{resolve(scenario_arg)}: {error}") from None
    findings = lint(scenario, given)
    if findings:  # the file is looked up once, and only to name it
        where = str(resolve(scenario_arg))
        for finding in findings:
            warn(finding.line(where))
    return scenario, given


def apply(scenario: Scenario, sets: dict[str, Any], option: str = "--set") -> Scenario:
    """The scenario with dotted-key overrides, or a UsageError naming the option (``--set``,
    ``--grid``), the key and the problem."""
    from pydantic import ValidationError

    from retrysim.model.scenario import format_validation_error
    from retrysim.model.tier_keys import UnknownTierError, check_tier_keys

    if not sets:
        return scenario
    try:  # a tier's name mistyped would add a tier: say so, with the closest name
        check_tier_keys(scenario, sets, option)
    except UnknownTierError as error:
        raise UsageError(str(error)) from None
    try:
        return scenario.with_overrides(sets)
    except KeyError as error:
        data = scenario.model_dump(mode="python")
        raise UsageError(f"{option} {unknown_key(str(error.args[0]), data)}") from None
    except ValidationError as error:
        message = format_validation_error(error, option)
        listed = [key for key, value in sets.items() if isinstance(value, str) and "," in value]
        if option == "--set" and listed:  # a compare's list of values given to one run
            key = listed[0]
            message += (
                f" (several values side by side are compare's: "
                f"retrysim compare SCENARIO --set {key}={sets[key]})"
            )
        raise UsageError(message) from None


def check_profile(profile: str) -> str:
    """``profile`` as a known profile name, or a UsageError listing the allowed ones.

    Asks the profile registry itself, so a profile registered in code is accepted here as it
    is in settings and scenario files.
    """
    from retrysim.retry.profiles import get_profile

    try:
        return get_profile(profile).name
    except ValueError as error:
        raise UsageError(f"--profile: {error}") from None


def settings(env_file: Path | None) -> tuple[RetrySettings, dict[str, str]]:
    """RETRY__* settings from the environment and --env-file (or ./.env), with sources."""
    from retrysim.retry.settings import (
        SettingsError,
        env_file_contents,
        load_settings,
        setting_sources,
        settings_warnings,
    )

    if env_file is not None and not env_file.exists():  # /dev/null is an (empty) file
        raise UsageError(f"--env-file: {env_file}: no such file")
    target: str | Path = env_file if env_file is not None else ".env"
    try:
        # Read once: a pipe (--env-file <(...)) gives its contents to the first reader only.
        contents = env_file_contents(target)
        for message in settings_warnings(contents):  # every time, not once per process as logged
            warn(message)
        loaded = load_settings(contents, warn=False)
    except SettingsError as error:
        prefix = f"{env_file or 'environment'}: "
        message = str(error)  # a problem with the file itself already starts with its name
        raise UsageError(message if message.startswith(prefix) else prefix + message) from None
    return loaded, dict(setting_sources(contents))


def policy_sources(
    scenario: Scenario,
    sets: dict[str, Any],
    setting_sources: dict[str, str],
    profile: str | None,
    settings: RetrySettings | None = None,
) -> dict[str, str]:
    """Where each policy option's effective value came from.

    One of: --set, --profile, scenario, env, .env, default (for every policy option), and the
    same for every knob of the resilience mechanisms, keyed ``breaker.failure_threshold``; the
    rule is :func:`retrysim.retry.effective.effective_policy`'s.
    """
    from retrysim.retry.effective import effective_policy

    flags = {"profile": "--profile"} if profile is not None else {}
    policy = scenario.policy
    effective = effective_policy(
        policy, policy.operation, settings, setting_sources, sets=sets, flags=flags
    )
    return {key: value.source for key, value in effective.items()}


def rerun_arguments(
    *,
    seed: int | None = None,
    sets: list[str] | None = None,
    profile: str | None = None,
    env_file: Path | None = None,
    policy: str | list[str] | None = None,
) -> list[str]:
    """The options a run was given that shape its result, as the words of a command line.

    They go into the result document (``arguments``), so the commands its report suggests
    (``retrysim run SOURCE ... --set KEY=VALUE``) run the same scenario under the same settings
    with only the suggested change: a user's other ``--set``, ``--profile`` or ``--env-file``
    dropped there would compare the suggestion with a different run. Options that only show or
    save a result (``--json``, ``--out``, gates, ``--engine``, whose results are identical) are
    left out.
    """
    words: list[str] = []
    if seed is not None:
        words += ["--seed", str(seed)]
    for item in sets or []:
        words += ["--set", item]
    if profile is not None:
        words += ["--profile", profile]
    if env_file is not None:
        words += ["--env-file", str(env_file)]
    for each in [policy] if isinstance(policy, str) else policy or []:
        words += ["--policy", each]
    return words


def check_policy_alone(policy: str | None, sets: dict[str, Any], profile: str | None) -> None:
    """``--policy`` brings its own stop, wait and retry: a --set policy.* or --profile would
    change nothing, so saying both is refused rather than silently ignored. A tier's
    (``--policy gateway=MODULE:ATTR``) replaces that tier's policy alone: a --set
    tiers.gateway.policy.* is refused, the clients' --set policy.* and --profile are not."""
    if policy is None:
        return
    from retrysim.runs.user_policy import split_target

    tier, _ = split_target(policy)
    table = "policy" if tier is None else f"tiers.{tier}.policy"
    if profile is not None and tier is None:
        raise UsageError("--profile has no effect with --policy (your policy has its own wait)")
    touched = sorted(key for key in sets if key == table or key.startswith(f"{table}."))
    if touched:
        raise UsageError(
            f"--set {touched[0]} has no effect with --policy {policy}: your policy decides its "
            "own attempts and waits; change them in its code, or drop --policy"
        )


def user_policy(policy: str | None, scenario: Scenario) -> Any:
    """The policy ``--policy`` names, ready for the engine (None without ``--policy``); a
    tier's (``gateway=MODULE:ATTR``) is checked against the scenario's tiers and loaded."""
    if policy is None:
        return None
    from retrysim.runs.user_policy import load_policies, load_policy, split_target

    tier, target = split_target(policy)
    if tier is not None:
        return load_policies(scenario, {tier: target})[tier]
    return load_policy(policy, scenario.policy.operation)


def user_policies(policies: list[str] | None, scenario: Scenario) -> tuple[Any, dict[str, Any]]:
    """The clients' policy and each tier's from a repeated ``--policy`` (``MODULE:ATTR`` for
    the clients', ``NAME=MODULE:ATTR`` for tier NAME's calls), ready for the engine."""
    from retrysim.runs.user_policy import load_policies, split_targets

    top, tiers = split_targets(policies or [])
    return user_policy(top, scenario), load_policies(scenario, tiers)


def executor(kind: str, workers: int | None, address: str | None) -> Executor:
    """The executor ``--executor``, ``--workers`` and ``--address`` ask for, or a UsageError
    when they do not fit together (or dask is not installed, naming the extra)."""
    from retrysim.runs.executors import DASK_EXTRA, EXECUTOR_KINDS, MissingExtraError, make_executor

    if kind not in EXECUTOR_KINDS:
        raise UsageError(f"--executor {kind!r}: allowed: {', '.join(EXECUTOR_KINDS)}")
    if address is not None and kind != "dask":
        raise UsageError("--address is the dask scheduler to use: add --executor dask")
    if address is not None and workers is not None:
        raise UsageError(
            "--workers has no effect with --address: the cluster's own workers run the runs"
        )
    try:
        return make_executor(kind, workers, address)
    except MissingExtraError:
        raise UsageError(
            f"--executor dask needs dask.distributed, which is not installed: "
            f"pip install '{DASK_EXTRA}'"
        ) from None


def show(document: Any, as_json: bool, draw: Callable[[Any], None]) -> Any:
    """Print ``document`` as JSON, or ``draw(console)`` the report on a Rich console.

    Returns the console (None with ``--json``), so the command can say what it wrote next;
    the result comes first, before any file or figure, so a late failure never loses it.
    """
    if as_json:
        from retrysim import output

        sys.stdout.write(output.dumps(document))
        sys.stdout.flush()
        return None
    from rich.console import Console

    console = Console()
    draw(console)
    return console
