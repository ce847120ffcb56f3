"""Latency distributions do what they say: the normal's negative draws, true means, errors.

A normal latency can draw below 0; ``negative`` says what that becomes (``clip``: 0 s, a point
mass; ``reflect``: |x|, a folded normal), and ``mean_of`` (what capacity estimates divide by)
is the mean of what is really drawn. Every sampler is checked on an evenly spread grid of
uniforms (no randomness: the grid's mean is the integral to about 1e-6) and on the engine's own
counter-based streams; each distribution's bad parameters end as one line naming the field.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from statistics import NormalDist
from typing import Any, Literal

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document
from typer.testing import CliRunner

from retrysim.cli.app import app
from retrysim.cli.shell import Shell
from retrysim.cli.shell.completer import ShellCompleter
from retrysim.model.scenario import Normal, parse_scenario
from retrysim.sim.latency import mean_of, normal_mean, sampler
from retrysim.sim.streams import LATENCY, stream_key, unit

Negative = Literal["clip", "reflect"]
N = 200_000
U = (np.arange(N) + 0.5) / N  # an evenly spread sample of (0, 1)
MODES: tuple[Negative, ...] = ("clip", "reflect")

#: (mean, std): std far below, near and far above the mean, a zero mean, a constant.
SHAPES = [(5.0, 0.5), (1.0, 0.3), (0.4, 0.3), (1.0, 1.0), (0.01, 1.0), (0.0, 2.0), (0.3, 0.0)]


def normal(mean: float, std: float, negative: Negative = "clip") -> Normal:
    return Normal.model_validate({"dist": "normal", "mean": mean, "std": std, "negative": negative})


def draws(dist: Any, u: np.ndarray = U) -> np.ndarray:
    f = sampler(dist)
    return np.array([f(x) for x in u])


# --- what is drawn -------------------------------------------------------------------------------


def test_clip_is_the_default_and_what_retrysim_always_drew() -> None:
    default = Normal.model_validate({"dist": "normal", "mean": 0.2, "std": 0.3})
    assert default.negative == "clip"
    f = sampler(default)
    z = NormalDist()
    for u in (0.01, 0.2, 0.5, 0.9):
        assert f(u) == max(0.0, 0.2 + 0.3 * z.inv_cdf(u))


@pytest.mark.parametrize("negative", MODES)
@pytest.mark.parametrize(("mu", "s"), SHAPES)
def test_mean_of_is_the_mean_of_what_is_drawn(mu: float, s: float, negative: Negative) -> None:
    dist = normal(mu, s, negative)
    assert draws(dist).mean() == pytest.approx(mean_of(dist), rel=1e-5, abs=1e-12)


@pytest.mark.parametrize(("mu", "s"), [(0.0, 1.0), (1.0, 1.0), (0.02, 0.05)])
def test_mean_of_matches_the_engines_streams(mu: float, s: float) -> None:
    """Drawn the way the engine draws (one counter-based uniform per call and attempt)."""
    key = stream_key(7, LATENCY)
    u = np.array([unit(key, i << 24, 1) for i in range(N)])
    for negative in MODES:
        x = draws(normal(mu, s, negative), u)
        # four standard errors: a fixed seed, so this is a fixed number, not a flaky bound
        assert abs(x.mean() - mean_of(normal(mu, s, negative))) < 4 * x.std() / math.sqrt(N)


def test_the_closed_forms() -> None:
    phi = NormalDist().pdf
    cdf = NormalDist().cdf
    mu, s = 0.3, 0.5
    z = mu / s
    assert normal_mean(mu, s, "clip") == pytest.approx(mu * cdf(z) + s * phi(z))
    assert normal_mean(mu, s, "reflect") == pytest.approx(
        s * math.sqrt(2 / math.pi) * math.exp(-(mu**2) / (2 * s**2)) + mu * (1 - 2 * cdf(-z))
    )
    # a zero mean: half a normal's |x| for clip, all of it for reflect
    assert normal_mean(0.0, 1.0, "clip") == pytest.approx(1 / math.sqrt(2 * math.pi))
    assert normal_mean(0.0, 1.0, "reflect") == pytest.approx(math.sqrt(2 / math.pi))
    # std 0 is a constant; a std too small to matter (even subnormal) is the mean
    for negative in MODES:
        assert normal_mean(0.25, 0.0, negative) == 0.25
        assert normal_mean(0.25, 5e-324, negative) == 0.25
        assert normal_mean(0.0, 0.0, negative) == 0.0
        assert normal_mean(4.0, 0.1, negative) == 4.0  # 40 std above 0: nothing moves


@pytest.mark.parametrize(("mu", "s"), [(0.01, 1.0), (1.0, 1.0), (0.0, 2.0), (2.0, 0.5)])
def test_clip_puts_exactly_phi_of_minus_mu_over_s_at_zero(mu: float, s: float) -> None:
    x = draws(normal(mu, s, "clip"))
    assert x.min() >= 0.0
    at_zero = float(np.mean(x == 0.0))
    # on the grid, the share is Phi(-mu/s) to within one grid step
    assert at_zero == pytest.approx(NormalDist().cdf(-mu / s), abs=2 / N)
    assert not np.any((x > 0) & (x < 1e-12))  # a point mass, not a pile-up near 0


@pytest.mark.parametrize(("mu", "s"), [(0.01, 1.0), (1.0, 1.0), (0.0, 2.0)])
def test_reflect_is_the_folded_normal(mu: float, s: float) -> None:
    x = draws(normal(mu, s, "reflect"))
    assert x.min() >= 0.0
    assert np.mean(x == 0.0) < 2 / N  # no point mass
    dist = NormalDist(mu, s)
    for t in (0.1 * s, s, 2 * s):
        # P(|X| <= t) = Phi((t - mu)/s) - Phi((-t - mu)/s)
        assert np.mean(x <= t) == pytest.approx(dist.cdf(t) - dist.cdf(-t), abs=2 / N)


@given(
    st.floats(0, 1, exclude_max=True),
    st.floats(0, 1e3),
    st.floats(0, 1e3),
)
def test_reflect_never_yields_a_negative_or_non_finite_latency(
    u: float, mu: float, s: float
) -> None:
    v = sampler(normal(mu, s, "reflect"))(u)
    assert v >= 0.0 and math.isfinite(v)


# --- errors: one line, naming the field ---------------------------------------------------------

BASE = (
    'name = "lat"\nduration = 5\n[clients]\ncount = 2\narrival = { kind = "burst" }\n'
    '[service]\nkind = "queue"\nconcurrency = 2\n'
)


GE0 = "greater than or equal to 0"


@pytest.mark.parametrize(
    ("latency", "field", "says"),
    [
        ("-1", "value", GE0),
        ('{ dist = "constant", value = inf }', "value", "finite"),
        ('{ dist = "uniform", low = -1, high = 1 }', "low", GE0),
        ('{ dist = "uniform", low = 2, high = 1 }', "high", "high (1) must be >= low (2)"),
        ('{ dist = "uniform", low = 1 }', "high", "Field required"),
        ('{ dist = "exponential", mean = 0 }', "mean", "greater than or equal to 0.000000001"),
        ('{ dist = "normal", mean = -1, std = 1 }', "mean", GE0),
        ('{ dist = "normal", mean = 1, std = -0.5 }', "std", GE0),
        ('{ dist = "normal", mean = 1, std = nan }', "std", "finite"),
        (
            '{ dist = "normal", mean = 1, std = 1, negative = "mirror" }',
            "negative",
            "'mirror' is not allowed; allowed: 'clip' or 'reflect'",
        ),
        ('{ dist = "lognormal", median = 0, p99 = 1 }', "median", "greater than or equal"),
        ('{ dist = "lognormal", median = 1, p99 = 0.5 }', "p99", "must be >= median (1)"),
        ('{ dist = "lognormal", median = 1, p99 = 1e7 }', "p99", "at most 1e+06 times"),
        ('{ dist = "pareto", mean = 1 }', "", "unknown dist 'pareto'; allowed: 'constant', "),
    ],
)
def test_a_bad_latency_is_one_line_naming_the_field(
    tmp_path: Path, latency: str, field: str, says: str
) -> None:
    path = tmp_path / "lat.toml"
    path.write_text(BASE + f"latency = {latency}\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    where = "service.latency" + (f".{field}" if field else "")
    assert f"lat.toml: {where}: " in line and says in line, line
    assert "Traceback" not in result.output


def test_a_good_normal_with_reflect_validates(tmp_path: Path) -> None:
    path = tmp_path / "lat.toml"
    latency = '{ dist = "normal", mean = 0.1, std = 0.2, negative = "reflect" }'
    path.write_text(BASE + f"latency = {latency}\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output


# --- the key through --set and completion -------------------------------------------------------

NORMAL_FILE = BASE + 'latency = { dist = "normal", mean = 0.002, std = 0.004 }\n'


def test_set_negative_reflect_reaches_the_capacity_estimate(tmp_path: Path) -> None:
    path = tmp_path / "lat.toml"
    path.write_text(NORMAL_FILE, encoding="utf-8")
    out = tmp_path / "out"
    args = ["run", str(path), "--out", str(out), "--set", "service.latency.negative=reflect"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    doc = json.loads((out / "result.json").read_text(encoding="utf-8"))
    folded = normal_mean(0.002, 0.004, "reflect")
    assert doc["load"]["capacity"] == pytest.approx(2 / folded)
    assert folded > normal_mean(0.002, 0.004, "clip") > 0.002  # each moves the mean up
    bad = CliRunner().invoke(app, ["run", str(path), "--set", "service.latency.negative=x"])
    assert bad.exit_code == 2
    assert "--set: service.latency.negative: 'x' is not allowed" in bad.stderr


def test_set_completes_negative_and_dist_values(tmp_path: Path) -> None:
    path = tmp_path / "lat.toml"
    path.write_text(NORMAL_FILE, encoding="utf-8")

    def complete(line: str) -> list[str]:
        words = line.split()
        env = {"_RETRYSIM_COMPLETE": "complete_bash", "COMP_WORDS": line}
        env["COMP_CWORD"] = str(len(words) - 1)
        result = CliRunner().invoke(app, [], prog_name="retrysim", env=env)
        assert result.exit_code == 0, result.output
        return result.stdout.split()

    assert "service.latency.negative=" in complete(f"retrysim run {path} --set service.latency.n")
    assert complete(f"retrysim run {path} --set service.latency.negative=") == [
        "service.latency.negative=clip",
        "service.latency.negative=reflect",
    ]
    assert "service.latency.dist=lognormal" in complete(
        f"retrysim run {path} --set service.latency.dist="
    )


def test_shell_completes_negative_after_switching_to_a_normal() -> None:
    shell = Shell(io.StringIO())
    shell.execute("load redis-blip")
    shell.execute('set service.latency={dist="normal",mean=0.002,std=0.004}')
    assert shell.errors == 0

    def complete(line: str) -> list[str]:
        found = ShellCompleter(shell).get_completions(Document(line), CompleteEvent())
        return [c.text for c in found]

    assert "service.latency.negative=" in complete("set service.latency.n")
    assert complete("set service.latency.negative=") == ["clip", "reflect"]
    assert complete("set service.latency.dist=log") == ["lognormal"]
    shell.execute("set service.latency.negative=reflect")
    assert shell.errors == 0
    assert shell.need().data["service"]["latency"]["negative"] == "reflect"


def test_a_scenario_round_trips_its_negative() -> None:
    data: dict[str, Any] = {
        "service": {"kind": "ideal", "latency": {"dist": "normal", "mean": 1, "std": 2}},
    }
    s = parse_scenario(data)
    assert s.service.latency.negative == "clip"  # type: ignore[union-attr]
    flipped = s.with_overrides({"service.latency.negative": "reflect"})
    assert parse_scenario(flipped.model_dump(mode="json")) == flipped
