"""What the compare and sweep pages share: which variant is best and why, its settings as lines
to paste, its diagnoses, and the figures' text alternatives.

"Best" is said in words, by a rule a reader can check against the table: the highest success
rate; variants whose success rates are within the noise of the best one's (their 95%
intervals over the seeds overlap, or equal with one seed) are tied, and among ties the lowest
p99 latency wins, then the lowest load. The verdict names which of those decided it.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from retrysim.results import metric_table
from retrysim.safe import visible
from retrysim.share.page import Block, Code, Paragraph, Section

if TYPE_CHECKING:
    from retrysim.model.scenario import Scenario
    from retrysim.results.document import ResultDocument
    from retrysim.retry.settings import RetrySettings
    from retrysim.runs.sweep import VariantResult

#: The numbers a verdict and a figure's text alternative give for a variant.
KEY_METRICS = ("success_rate", "p99_latency", "amplification")
_SHORT = {"success_rate": "success", "p99_latency": "p99", "amplification": "load"}


@dataclass(frozen=True)
class Choice:
    """The best variant, what decided it (a clause: ``it has the highest success rate``) and
    how many were tied on success."""

    best: VariantResult
    reason: str
    tied: int


def _tied(a: VariantResult, b: VariantResult, name: str) -> bool:
    """Whether ``a`` and ``b`` are within the noise of each other on ``name``."""
    ma, mb = a.mean(name), b.mean(name)
    if ma is None or mb is None:
        return ma is mb
    if ma == mb:
        return True
    ia, ib = a.interval(name), b.interval(name)
    return ia is not None and ib is not None and ia[0] <= ib[1] and ib[0] <= ia[1]


def choose(results: Sequence[VariantResult]) -> Choice:
    """The best of ``results`` by the module's rule (the first listed wins a complete tie)."""
    if not results:
        raise ValueError("no variants to choose from")
    if len(results) == 1:
        return Choice(results[0], "the only variant", 1)
    known = [r for r in results if r.mean("success_rate") is not None]
    if not known:
        return Choice(results[0], "no variant has a success rate, so the first is named", 0)
    top = max(known, key=lambda r: r.mean("success_rate") or 0.0)
    tied = [r for r in known if _tied(r, top, "success_rate")]
    if len(tied) == 1:
        return Choice(top, "it has the highest success rate", 1)
    noun = "within the noise of each other" if top.interval("success_rate") else "equal"
    for name, words in (("p99_latency", "p99 latency"), ("amplification", "load")):
        values = [r.mean(name) for r in tied]
        if all(v is not None for v in values) and len(set(values)) > 1:
            lowest = min(v for v in values if v is not None)
            best = next(r for r in tied if r.mean(name) == lowest)
            return Choice(
                best,
                f"its {words} is the lowest of the {len(tied)} variants whose success rates "
                f"are {noun}",
                len(tied),
            )
    return Choice(
        tied[0],
        f"{len(tied)} variants tie on success, p99 latency and load, so the first is named",
        len(tied),
    )


def figures_text(result: VariantResult, names: Sequence[str] = KEY_METRICS) -> str:
    """``success 99.10%, p99 2.733s, load 2.99x`` (with ±intervals over two or more seeds)."""
    parts = []
    for name in names:
        mean, interval = result.mean(name), result.interval(name)
        text = metric_table.show(name, mean)
        if interval is not None and mean is not None:
            text += f" ±{metric_table.show(name, (interval[1] - interval[0]) / 2).lstrip('+')}"
        parts.append(f"{_SHORT.get(name, metric_table.label(name))} {text}")
    return ", ".join(parts)


def verdict(results: Sequence[VariantResult], choice: Choice) -> Paragraph:
    """The page's first line: the best variant, by what, its numbers, and the first variant's
    for comparison (the table's changes are against it)."""
    best = choice.best
    text = f"Best: {best.variant.label} ({choice.reason}): {figures_text(best)}."
    first = results[0]
    if first is not best:
        text += f" The first variant, {first.variant.label}: {figures_text(first)}."
    return Paragraph(visible(text))


def set_value(value: Any) -> str:
    """A value as ``--set KEY=VALUE`` takes it back (a TOML literal, a bare string as is)."""
    return value if isinstance(value, str) else json.dumps(value)


def changes(result: VariantResult) -> list[str]:
    """The variant's settings as ``KEY=VALUE`` items for ``--set``."""
    return [f"{key}={set_value(value)}" for key, value in result.variant.sets.items()]


def env_lines(result: VariantResult, operation: str) -> list[str]:
    """``RETRY__*=VALUE`` for each of the variant's ``policy.*`` settings that a variable sets
    (a tier's or a scenario key has none: its ``--set`` is the only way)."""
    from retrysim.env_write import env_value
    from retrysim.retry.variables import option_variable

    lines = []
    for key, value in result.variant.sets.items():
        if not key.startswith("policy."):
            continue
        name = option_variable(key.removeprefix("policy."), operation)
        if name is not None:
            lines.append(f"{name}={env_value(value)}")
    return lines


def run_words(source: str, arguments: Sequence[str], sets: Sequence[str]) -> str:
    """``retrysim run SOURCE ARGUMENTS --set ...``: one run of these settings, quoted."""
    from retrysim.render.rerun import kept_arguments

    words = ["retrysim", "run", source, *kept_arguments(arguments, sets)]
    for item in sets:
        words += ["--set", item]
    return visible(shlex.join(words))


def best_settings(
    choice: Choice, operation: str, source: str, arguments: Sequence[str]
) -> list[Paragraph | Code]:
    """The best variant's settings: its ``RETRY__*`` lines for production and the command
    that runs it alone; a variant of the user's own policy is changed in its code."""
    best = choice.best
    blocks: list[Paragraph | Code] = []
    if best.variant.policy is not None:
        blocks.append(
            Paragraph(
                visible(
                    f"This variant runs your own policy, {best.variant.policy}: its attempts "
                    "and waits are set in its code, not by RETRY__* variables."
                )
            )
        )
    lines = [] if best.variant.policy is not None else env_lines(best, operation)
    if lines:
        blocks.append(Code(lines, "For .env (or the service's environment):"))
    elif best.variant.sets and best.variant.policy is None:
        blocks.append(Paragraph("No RETRY__* variable sets these keys; --set does, below."))
    own = [] if best.variant.policy is None else ["--policy", best.variant.policy]
    command = run_words(source, [*arguments, *own], changes(best))
    blocks.append(Code([command], "To run this variant alone:"))
    return blocks


def diagnoses_blocks(
    doc: ResultDocument, source: str, arguments: Sequence[str], result: VariantResult
) -> list[Block]:
    """The diagnoses of ``doc`` (one seed's run of the variant ``result``) as the run page
    shows a run's: each suggested change as its ``RETRY__*`` lines and a ``retrysim run`` that
    tries it on top of the variant's own settings."""
    from retrysim.share.run_page import diagnosis_blocks

    words = list(arguments)
    if result.variant.policy is not None:
        words += ["--policy", result.variant.policy]
    for item in changes(result):
        words += ["--set", item]
    here = cast("ResultDocument", {**doc, "source": source, "arguments": words})
    return diagnosis_blocks(here)


@dataclass(frozen=True)
class Comparison:
    """What a compare or sweep page is made of: the command's input and its results.

    ``source`` is the scenario as the user gave it (a bundled name or a path), ``arguments``
    the options that shape each run (``--seed``, sweep's ``--set``, ``--env-file``) for the
    ``retrysim run`` lines, ``words`` the whole command for the Reproduce block; ``fixed``
    the keys sweep's ``--set`` gave every point, ``flagged`` the grid keys another option
    varies (``policy.profile``: ``--profile``), named as that option among the sources.
    """

    base: Scenario
    source: str
    seeds: list[int]
    results: list[VariantResult]
    names: list[str]
    words: list[str]
    arguments: list[str]
    settings: RetrySettings | None
    setting_sources: dict[str, str]
    fixed: tuple[str, ...] = ()
    flagged: dict[str, str] = field(default_factory=dict)


def shared_sections(comparison: Comparison, choice: Choice) -> list[Section]:
    """The best variant's settings (lines to paste, the settings in effect with their
    sources) and its diagnoses: the part of a compare and a sweep page after the figures."""
    from retrysim.share.settings_facts import settings_facts

    best = choice.best
    operation = comparison.base.policy.operation
    blocks: list[Block] = list(
        best_settings(choice, operation, comparison.source, comparison.arguments)
    )
    if best.variant.policy is None:  # a policy of the user's own has no settings to list
        scenario = comparison.base.with_overrides(dict(best.variant.sets))
        flagged = comparison.flagged
        sets = [key for key in (*comparison.fixed, *best.variant.sets) if key not in flagged]
        flags = {key.removeprefix("policy."): flag for key, flag in flagged.items()}
        blocks.append(
            settings_facts(
                scenario,
                comparison.settings,
                comparison.setting_sources,
                "The best variant's policy in effect, and where each value came from",
                sets=sets,
                flags=flags,
            )
        )
    sections = [Section(f"The best variant: {visible(best.variant.label)}", blocks)]
    if best.documents:
        doc = best.documents[0]
        seed = doc["seed"]
        sections.append(
            Section(
                f"Diagnoses of the best variant (seed {seed})",
                diagnoses_blocks(doc, comparison.source, comparison.arguments, best),
            )
        )
    return sections
