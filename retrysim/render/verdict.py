"""The plain-language top and bottom of a run report: a one-line verdict and the diagnoses.

Reads only the result document (its ``diagnoses`` key, computed by :mod:`retrysim.results.diagnose`;
a document saved before that key existed is diagnosed on the spot), so a saved
``result.json`` reads exactly like a fresh run.

Each suggested setting is shown as its ``RETRY__*`` line and the command that tries it here
(:func:`retrysim.render.rerun.run_command`: the run's own scenario file and options, quoted for
the shell). That line is never broken by Rich: print the section with ``crop=False`` and a long
command runs past the edge, where the terminal wraps it softly and copying it gives one line.
"""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Group
from rich.text import Text

from retrysim.render.rerun import run_command
from retrysim.results.diagnose import BUNCHED_SHARE, SYNCHRONISED_SHARE, diagnose
from retrysim.results.document import ResultDocument
from retrysim.results.sections import Diagnosis, SuggestedSetting
from retrysim.safe import visible

SEVERITY_STYLES = {"high": "bold red", "warning": "bold yellow"}


def spread_word(share: float) -> str:
    """How tightly retries bunch, in the words the report and the diagnoses share."""
    return (
        "synchronised"
        if share >= SYNCHRONISED_SHARE
        else "bunched"
        if share >= BUNCHED_SHARE
        else "spread"
    )


def diagnoses_of(doc: ResultDocument) -> list[Diagnosis]:
    """The document's diagnoses (computed now for a document saved without them)."""
    found = doc.get("diagnoses")
    return diagnose(doc) if found is None else list(found)


def verdict(doc: ResultDocument) -> str:
    """One line: how many calls succeeded and failed, how the retries spread, the load,
    and how many problems the diagnoses found."""
    calls = doc["calls"]
    total = calls["total"] or 1
    parts = [f"{100 * calls['succeeded'] / total:.0f}% of calls succeeded"]
    if calls["failed"]:
        parts[0] += f", {100 * calls['failed'] / total:.0f}% failed"
    if calls["unfinished"]:
        parts[0] += f", {calls['unfinished']:,} unfinished"
    spread = doc["jitter_spread"]
    first = spread.get("first_retry_peak_share_100ms")
    if first is not None:
        burst = doc.get("clients", {}).get("arrival") == "burst"
        herd = "the herd's first retries" if burst else "first retries"
        parts.append(f"{herd} are {spread_word(first)} ({100 * first:.1f}% in the busiest 100 ms)")
    else:
        parts.append("no retries")
    load = doc["load"]
    if load.get("peak_over_capacity") is not None:
        parts.append(f"load peaked at {load['peak_over_capacity']:.2f}x capacity")
    from retrysim.render.resilience import guards_verdict

    guarded = guards_verdict(doc)
    if guarded:
        parts.append(guarded)
    found = diagnoses_of(doc)
    if found:
        parts.append(f"{len(found)} problem{'s' if len(found) > 1 else ''} found (below)")
    else:
        parts.append("no problems found")
    return "; ".join(parts)


def diagnoses_section(doc: ResultDocument, here: Callable[[str], str] | None = None) -> Group:
    """Each diagnosis: title and guide section, the evidence, and the change to try.

    ``here(set)`` is the command that tries a setting (``policy.max_attempts=6``) where the
    report is read: by default ``retrysim run`` on the run's scenario (:func:`run_command`);
    the shell passes its own ``set``. Print the group with ``crop=False`` (see the module).
    """
    found = diagnoses_of(doc)
    lines = [Text("Diagnoses (Troubleshooting guide)", style="bold")]
    if not found:
        lines.append(Text("none: nothing in this run matches a known retry problem", style="dim"))
        return Group(*lines)
    for item in found:
        lines.append(
            Text.assemble(
                (f"● {item['severity']}: ", SEVERITY_STYLES.get(item["severity"], "bold")),
                (item["title"], "bold"),
                (f"   [{item['section']}]", "dim"),
            )
        )
        lines.append(Text(f"  {item['evidence']}"))
        lines.append(Text(f"  try: {item['suggestion']}", style="green"))
        for line in _settings_lines(doc, item, here):
            lines.append(Text(f"       {line}", style="green", no_wrap=True, overflow="ignore"))
    return Group(*lines)


def _settings_lines(
    doc: ResultDocument, item: Diagnosis, here: Callable[[str], str] | None
) -> list[str]:
    """One line per suggested setting; settings the diagnosis groups as one change (its
    ``together`` figure: lists of their ``set``s, as every lower tier's ``max_attempts``) share
    one line, a single command that sets them all, where the group's first setting stands."""
    groups = item["figures"].get("together")
    group_of: dict[str, list[str]] = {}
    if isinstance(groups, list):
        for group in groups:
            if isinstance(group, list) and len(group) > 1:
                sets = [str(change) for change in group]
                group_of.update(dict.fromkeys(sets, sets))
    lines = []
    for setting in item["settings"]:
        members = group_of.get(setting["set"])
        if members is None:
            lines.append(_setting_line(doc, setting, here))
        elif members[0] == setting["set"]:
            lines.append(
                run_command(doc, *members)
                if here is None
                else "; ".join(here(change) for change in members)
            )
    return lines


def _setting_line(
    doc: ResultDocument, setting: SuggestedSetting, command: Callable[[str], str] | None
) -> str:
    custom = doc["settings"].get("custom")
    if custom:  # the user's own tenacity policy: the change is theirs to make in its code
        value = setting["set"].partition("=")[2]
        return f"in {visible(custom['name'])}: {setting['option']} = {value}"
    here = command(setting["set"]) if command is not None else run_command(doc, setting["set"])
    if setting["env"] is None:
        return here
    if setting["pinned"]:
        return f"{here}   (the scenario sets it; in production: {setting['env']})"
    return f"{setting['env']}   (here: {here})"
