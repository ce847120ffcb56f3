"""Every colour retrysim's figures use, once: Okabe and Ito's palette for colour-blind readers.

Okabe and Ito chose eight colours that stay apart under the common colour-vision deficiencies
(protanopia, deuteranopia, tritanopia) and in grey ("Color Universal Design", 2002/2008).
A figure never needs more than eight colours side by side; where a figure can have more (a
compare of nine variants, a tier with ten replicas) the line style changes as the colours
repeat (:func:`line_style`), and tinted windows (faults) carry a hatch of their own kind as
well as a colour (:data:`FAULT_HATCHES`), since a pale tint is hard to tell apart for anyone.

:data:`SIDE_BY_SIDE` names the colours each kind of figure shows next to each other;
``tests/test_palette.py`` simulates the three deficiencies on each group (Machado et al. 2009,
through colorspacious) and requires every pair to stay :data:`MIN_DISTANCE` apart in
CAM02-UCS. The retry profiles' own colours (``retrysim/retry/profiles.py``, a lower layer
that cannot import this one) are spelled there and checked here to be these.
"""

from __future__ import annotations

from typing import Final

BLACK: Final = "#000000"
ORANGE: Final = "#E69F00"
SKY_BLUE: Final = "#56B4E9"
BLUISH_GREEN: Final = "#009E73"
YELLOW: Final = "#F0E442"
BLUE: Final = "#0072B2"
VERMILLION: Final = "#D55E00"
REDDISH_PURPLE: Final = "#CC79A7"
#: Not a hue: text, rules and what a figure plays down (points off a Pareto front).
GREY: Final = "#999999"
DARK_GREY: Final = "#333333"
WHITE: Final = "#FFFFFF"

#: The eight colours of Okabe and Ito, in their order.
OKABE_ITO: Final = (BLACK, ORANGE, SKY_BLUE, BLUISH_GREEN, YELLOW, BLUE, VERMILLION, REDDISH_PURPLE)

#: Attempt series, stacked: first tries in blue, retries in ever warmer colours.
SERIES: Final = (BLUE, ORANGE, VERMILLION, REDDISH_PURPLE, SKY_BLUE, YELLOW)
#: How opaque the stacked series are (a grid line behind shows through, barely).
SERIES_ALPHA: Final = 0.9
#: Variants drawn as lines (compare, CDF, spread outlines), after the profiles' own colours.
CYCLE: Final = (BLUE, ORANGE, BLUISH_GREEN, VERMILLION, REDDISH_PURPLE, SKY_BLUE, BLACK, YELLOW)
#: Line styles taken in turn each time :data:`CYCLE` (or a replica group) starts over.
LINE_STYLES: Final = ("-", "--", ":", "-.")

#: The retry profiles' colours (``Profile.colour``), each profile one of Okabe and Ito's.
PROFILE_COLOURS: Final = {
    "documented": BLUE,
    "bindu": VERMILLION,
    "full_jitter": BLUISH_GREEN,
    "equal_jitter": REDDISH_PURPLE,
    "decorrelated": ORANGE,
    "exponential": BLACK,
}

#: One colour and one hatch per kind of fault, so adjacent windows (an outage, then its
#: recovery) stay apart in tint and in pattern.
FAULT_COLOURS: Final = {
    "outage": VERMILLION,
    "recovery_ramp": ORANGE,
    "flaky": REDDISH_PURPLE,
    "latency_spike": SKY_BLUE,
    "capacity_loss": YELLOW,
    "reset": BLACK,
}
FAULT_HATCHES: Final = {
    "outage": "",
    "recovery_ramp": "\\\\",
    "flaky": "..",
    "latency_spike": "||",
    "capacity_loss": "--",
    "reset": "xx",
}
#: A fault kind the tables above do not know yet.
FAULT_COLOUR: Final = VERMILLION
#: How strongly a fault window is tinted, and its hatch drawn.
FAULT_ALPHA: Final = 0.13
FAULT_HATCH_ALPHA: Final = 0.45
#: Arrival-rate steps (traffic spikes) are a cause, not a fault: hatched ``//`` in blue.
ARRIVAL: Final = BLUE

#: The herd timeline's guards (lines of their own style beside the attempt series).
GOODPUT: Final = BLACK
BREAKER: Final = REDDISH_PURPLE
BUDGET: Final = VERMILLION
LIMITER: Final = BLUISH_GREEN

#: Replicas: those a fault hit stand out warm and thick, the others calm and thin.
HIT: Final = (VERMILLION, ORANGE, REDDISH_PURPLE, YELLOW)
CALM: Final = (BLUE, BLUISH_GREEN, SKY_BLUE, BLACK)

#: A call graph's amplification: the bars and the most the policies allow.
TIER_BAR: Final = BLUE
TIER_MAX: Final = VERMILLION

#: A tuning's Pareto plot: the front and the recommendation's star, apart from the grey of the
#: other points and from viridis (which colours them by a third metric, and was itself made
#: for colour-blind readers).
FRONT: Final = VERMILLION
RECOMMENDED: Final = VERMILLION

#: The colours each figure shows next to each other (the test's groups; see the module).
SIDE_BY_SIDE: Final = {
    "attempt series": SERIES,
    "variants": CYCLE,
    "profiles": tuple(PROFILE_COLOURS.values()),
    "fault windows": (*FAULT_COLOURS.values(), ARRIVAL),
    "timeline lines": (GOODPUT, BREAKER, BUDGET, LIMITER),
    "replicas": (*HIT, *CALM),
    "tiers": (TIER_BAR, TIER_MAX),
    "pareto": (FRONT, RECOMMENDED),
}
#: The least CAM02-UCS distance between two colours of a group, under each simulated
#: deficiency at full severity. About 10 is where two flat colours are told apart at a glance
#: (1 is barely noticeable side by side); Okabe and Ito's closest pair (orange and reddish
#: purple under tritanopia) is 11.
MIN_DISTANCE: Final = 10.0


def line_style(index: int, colours: int = len(CYCLE)) -> str:
    """The line style of the ``index``-th line when colours repeat every ``colours`` lines:
    solid for the first round, dashed for the second, and so on."""
    return LINE_STYLES[(index // colours) % len(LINE_STYLES)]


def rgba(colour: str, alpha: float) -> tuple[float, float, float, float]:
    """``colour`` (``#RRGGBB``) with ``alpha``, as matplotlib takes it."""
    red, green, blue = (int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5))
    return (red, green, blue, alpha)
