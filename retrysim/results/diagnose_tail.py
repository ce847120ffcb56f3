"""The diagnosis of a latency tail, and of hedging (registered in
:mod:`retrysim.results.diagnose`, which gives it its id, title and section).

A retry helps a request that failed; it cannot help one that is slow. When this run's sends
are slow by chance (their p99 many times their p50) and one hedge would cut their p99 by half
or more (the estimate of :mod:`retrysim.results.hedging`, from the run's own send latencies),
the diagnosis prescribes hedging after the sends' p90, as the ``--set`` that simulates it and
the ``RETRY__*`` lines that turn it on. When hedging is on and its hedges rarely win, it says
what they cost. It reads only the document's ``hedging`` section.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from retrysim.results.findings import Finding, suggest

if TYPE_CHECKING:
    from retrysim.results.document import ResultDocument

#: Hedges that won less than this share of the time cost load for little.
FEW_WINS = 0.1
#: ... and are worth a word when they add at least this much load.
COSTLY_LOAD = 0.25


def hedging(doc: ResultDocument) -> Finding | None:
    """A tail one hedge would cut (hedging off), or hedges that cost much and rarely win."""
    section = doc.get("hedging")
    if section is None:
        return None
    if section["enabled"]:
        extra, hedges = section["extra_load"], section["hedges"]
        won = section["won"] / hedges if hedges else 0.0
        if extra is None or extra < COSTLY_LOAD or won >= FEW_WINS:
            return None
        return Finding(
            "warning",
            f"Hedges added {extra:.0%} more sends and won {won:.0%} of the time: most of them "
            "only doubled a request that was going to answer anyway.",
            {"extra_load": extra, "won_share": won, "hedges": hedges},
            "Hedge later: a delay near the sends' p90, so only the slowest tenth is hedged.",
        )
    p50, p99 = section["send_p50"], section["send_p99"]
    delay, estimate = section["suggested_delay"], section["estimated_p99"]
    extra = section["estimated_extra_load"]
    if None in (p50, p99, delay, estimate, extra):
        return None
    assert p50 is not None and p99 is not None and delay is not None
    assert estimate is not None and extra is not None
    shown_delay = _round_up(delay)
    settings = (suggest(doc, "hedge.enabled", True), suggest(doc, "hedge.delay", shown_delay))
    tail = f" ({p99 / p50:.0f}x)" if p50 > 0 else ""
    return Finding(
        "warning",
        f"Sends are slow by chance: p50 {_ms(p50)}, p99 {_ms(p99)}{tail}. A retry cannot help a "
        f"send that is slow rather than failed; one hedge after {_ms(shown_delay)} (the "
        f"sends' p90) would cut their p99 to about {_ms(estimate)} for {extra:.0%} more "
        "load (estimated from this run's send latencies, taking a hedge's latency as "
        "independent of its sibling's).",
        {
            "send_p50": p50,
            "send_p99": p99,
            "estimated_p99": estimate,
            "extra_load": extra,
            "together": [[s.set for s in settings]],
        },
        "Hedge the slowest tenth: send a second request when the first has not answered by "
        "the sends' p90; the first answer wins and the other is cancelled. Both may execute: "
        "hedge only idempotent operations.",
        settings,
    )


def _round_up(seconds: float) -> float:
    """A delay to type: two significant figures, rounded up (never hedging sooner)."""
    if seconds <= 0:
        return 0.0
    scale = 10 ** (math.floor(math.log10(seconds)) - 1)
    return float(round(math.ceil(seconds / scale) * scale, 6))


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"
