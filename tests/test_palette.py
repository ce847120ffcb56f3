"""The figures' colours stay apart for colour-blind readers (retrysim/plots/palette.py).

Each group of colours a figure shows side by side is simulated under protanopia, deuteranopia
and tritanopia at full severity (Machado, Oliveira and Fernandes 2009, as colorspacious
implements it) and every pair must stay ``MIN_DISTANCE`` apart in CAM02-UCS (colorspacious's
``deltaE``). The figures must take their colours from the palette alone, and draw with them.
"""

from __future__ import annotations

import itertools
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib.colors import to_hex, to_rgb

from retrysim import plots
from retrysim.plots import palette
from retrysim.results.document import ResultDocument
from retrysim.retry.profiles import REGISTRY

with warnings.catch_warnings():  # colorspacious 1.1.2 has a docstring with a "\D" escape
    warnings.simplefilter("ignore", DeprecationWarning)
    from colorspacious import cspace_convert, deltaE

#: colorspacious's names for the three dichromacies' simulations (severity 100: the full one).
DEFICIENCIES = ("protanomaly", "deuteranomaly", "tritanomaly")
PLOTS = Path(plots.__file__).parent


def seen(colour: str, deficiency: str | None) -> Any:
    """``colour`` as sRGB (0..1), as a reader with ``deficiency`` (None: none) sees it."""
    rgb = np.array(to_rgb(colour))
    if deficiency is None:
        return rgb
    space = {"name": "sRGB1+CVD", "cvd_type": deficiency, "severity": 100}
    return np.clip(cspace_convert(rgb, space, "sRGB1"), 0, 1)


def distance(a: str, b: str, deficiency: str | None) -> float:
    """CAM02-UCS distance between ``a`` and ``b`` as seen with ``deficiency``."""
    return float(deltaE(seen(a, deficiency), seen(b, deficiency), input_space="sRGB1"))


@pytest.mark.parametrize("group", list(palette.SIDE_BY_SIDE))
@pytest.mark.parametrize("deficiency", [None, *DEFICIENCIES])
def test_colours_side_by_side_stay_apart(group: str, deficiency: str | None) -> None:
    colours = palette.SIDE_BY_SIDE[group]
    close = [
        (a, b, round(d, 1))
        for a, b in itertools.combinations(dict.fromkeys(colours), 2)
        if (d := distance(a, b, deficiency)) < palette.MIN_DISTANCE
    ]
    assert close == [], f"{group} under {deficiency or 'normal vision'}"


def test_the_simulation_tells_a_confusable_pair() -> None:
    """The check can fail: matplotlib's default red and green, far apart for most readers,
    come within the threshold under deuteranopia (the colours the old figures mixed)."""
    red, green = "#d62728", "#2ca02c"
    assert distance(red, green, None) > 3 * palette.MIN_DISTANCE
    assert distance(red, green, "deuteranomaly") < palette.MIN_DISTANCE


def test_every_hue_is_okabe_and_itos() -> None:
    hues = {colour for group in palette.SIDE_BY_SIDE.values() for colour in group}
    assert hues <= set(palette.OKABE_ITO) and len(palette.OKABE_ITO) == 8
    assert len(set(palette.SERIES)) == len(palette.SERIES)


def test_each_profile_has_its_palette_colour() -> None:
    assert {name: profile.colour for name, profile in REGISTRY.items()} == dict(
        palette.PROFILE_COLOURS
    )


def test_no_figure_module_spells_a_colour_of_its_own() -> None:
    """Colours are named once, in palette.py: a hex code or a colour word anywhere else in
    retrysim/plots would bypass the check above."""
    literal = re.compile(
        r"#[0-9a-fA-F]{6}\b|(?:colou?rs?|fc|ec|facecolor|edgecolor|ecolor)\"?\s*[=:]\s*\"(?!none)"
    )
    found = {
        path.name: literal.findall(path.read_text(encoding="utf-8"))
        for path in PLOTS.glob("*.py")
        if path.name != "palette.py"
    }
    assert {name: hits for name, hits in found.items() if hits} == {}


def test_fault_kinds_differ_in_hatch_as_well_as_tint() -> None:
    hatches = list(palette.FAULT_HATCHES.values())
    assert len(set(hatches)) == len(hatches) and "//" not in hatches  # "//": traffic steps
    assert palette.FAULT_HATCHES.keys() == palette.FAULT_COLOURS.keys()


def test_line_styles_change_when_colours_start_over() -> None:
    styles = [palette.line_style(i) for i in range(2 * len(palette.CYCLE) + 1)]
    assert set(styles[: len(palette.CYCLE)]) == {"-"}
    assert set(styles[len(palette.CYCLE) : 2 * len(palette.CYCLE)]) == {"--"}
    assert styles[-1] == ":"


@pytest.fixture(scope="module")
def storm() -> ResultDocument:
    from retrysim.model.library import load_scenario
    from retrysim.runs.runner import run

    scenario = load_scenario("redis-blip").with_overrides({"duration": 30})
    return run(scenario).document


def test_the_timeline_draws_with_the_palette(storm: ResultDocument) -> None:
    ax = plots.herd_timeline(storm).axes[0]
    series = [p for p in ax.patches if (p.get_gid() or "").startswith("attempts-")]
    assert series and all(
        to_hex(p.get_facecolor(), keep_alpha=False).upper()
        == palette.SERIES[int(str(p.get_gid()).rsplit("-", 1)[1])]
        for p in series
    )
    (fault,) = [p for p in ax.patches if p.get_gid() == "fault-0"]
    assert (
        to_hex(fault.get_facecolor(), keep_alpha=False).upper() == palette.FAULT_COLOURS["outage"]
    )
    goodput = next(line for line in ax.lines if line.get_gid() == "goodput")
    assert to_hex(goodput.get_color()).upper() == palette.GOODPUT


def test_more_variants_than_colours_are_told_apart_by_line_style(storm: ResultDocument) -> None:
    many = {f"v{i}": storm for i in range(len(palette.CYCLE) + 1)}
    ax = plots.latency_cdf(many).axes[0]
    drawn = [(to_hex(line.get_color()).upper(), line.get_linestyle()) for line in ax.lines]
    assert len(drawn) == len(many) == len(set(drawn))  # no two lines look the same
    assert drawn[0][0] == drawn[-1][0] and drawn[-1][1] == "--"
