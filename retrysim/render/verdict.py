"""The plain-language top and bottom of a run report: a one-line verdict and the diagnoses.

Reads only the result document (its ``diagnoses`` key, computed by :mod:`retrysim.results.diagnose`;
a document saved before that key existed is diagnosed on the spot), so a saved
``result.json`` reads exactly like a fresh run.
"""

from __future__ import annotations

from rich.console import Group
from rich.text import Text

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


def diagnoses_section(doc: ResultDocument) -> Group:
    """Each diagnosis: title and guide section, the evidence, and the change to try."""
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
        for setting in item["settings"]:
            lines.append(Text(f"       {_setting_line(doc, setting)}", style="green"))
    return Group(*lines)


def _setting_line(doc: ResultDocument, setting: SuggestedSetting) -> str:
    custom = doc["settings"].get("custom")
    if custom:  # the user's own tenacity policy: the change is theirs to make in its code
        value = setting["set"].partition("=")[2]
        return f"in {visible(custom['name'])}: {setting['option']} = {value}"
    here = f"retrysim run {visible(doc['scenario'])} --set {setting['set']}"
    if setting["env"] is None:
        return here
    if setting["pinned"]:
        return f"{here}   (the scenario sets it; in production: {setting['env']})"
    return f"{setting['env']}   (here: {here})"
