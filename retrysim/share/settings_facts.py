"""The policy settings in effect, each with where its value came from, as a page's Facts block.

The values and sources are :func:`retrysim.retry.effective.effective_policy`'s, the one
precedence rule the run header, ``retrysim settings`` and the lab read, so a shared page can
never name another source than the terminal does. Every option is listed; a resilience
mechanism's knobs only when it is switched on or one of them was set (a page that listed every
breaker knob of a run without a breaker would bury the settings that mattered), and an error
family's knobs only when the family has a value of its own.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

from retrysim.render.tune_report import value_text
from retrysim.share.page import Facts

__all__ = ["settings_facts", "value_text"]  # value_text: the report's, shared by the pages

if TYPE_CHECKING:
    from retrysim.model.scenario import Scenario
    from retrysim.retry.settings import RetrySettings


def settings_facts(
    scenario: Scenario,
    settings: RetrySettings | None,
    setting_sources: Mapping[str, str] | None,
    caption: str,
    sets: Collection[str] = (),
    flags: Mapping[str, str] | None = None,
) -> Facts:
    """The clients' policy of ``scenario`` in effect: ``sets`` are the dotted keys given with
    ``--set`` (they say ``--set``), ``flags`` a key set by another flag (``--profile``)."""
    from retrysim.retry.effective import effective_policy
    from retrysim.retry.options import OPTION_NAMES

    policy = scenario.policy
    effective = effective_policy(
        policy, policy.operation, settings, setting_sources, sets=sets, flags=flags
    )
    items: list[tuple[str, str, str]] = []
    for key, entry in effective.items():
        table, _, knob = key.partition(".")
        if knob and not _shown(table, effective, entry.source, entry.value):
            continue
        items.append((key, value_text(entry.value), entry.source))
    ordered = sorted(items, key=lambda item: item[0] not in OPTION_NAMES)  # options first
    return Facts(caption=caption, items=ordered)


def _shown(table: str, effective: Mapping[str, Any], source: str, value: Any) -> bool:
    """A table's knob is worth a row when it was set, when its mechanism is on, or (an error
    family's, which has no switch) when it has a value of its own."""
    if source != "default":
        return True
    switch = effective.get(f"{table}.enabled")
    if switch is not None:
        return bool(switch.value)
    return value is not None
