"""retrysim check's configuration and gates: every bad input one line (exit 2 through the CLI),
and a gate expression meaning what its arithmetic says."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from retrysim.cli.app import app
from retrysim.model.check_config import (
    CheckConfigError,
    Gate,
    Vocabulary,
    find_config,
    parse_config,
    parse_gate,
)
from retrysim.model.library import bundled_scenarios
from retrysim.results.metric_table import METRIC_NAMES, METRIC_TABLE

VOCABULARY = Vocabulary(
    METRIC_NAMES, frozenset(m.name for m in METRIC_TABLE if m.format == "seconds")
)
BUNDLED = tuple(bundled_scenarios())


def config(tmp_path: Path, text: str, name: str = "retrysim.toml") -> Any:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    found, where, data = find_config(tmp_path, None)
    return parse_config(found, where, data, VOCABULARY, BUNDLED)


# --- gates -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("metric", "text", "before", "limit"),
    [
        ("success_rate", ">= 0.99", 0.5, 0.99),
        ("p99_latency", "<= 30", 1.0, 30.0),
        ("p99_latency", "<= before + 2s", 4.0, 6.0),
        ("p99_latency", "<= before + 500ms", 4.0, 4.5),
        ("p99_latency", "<=before+500ms", 4.0, 4.5),
        ("amplification", "<= before * 1.1", 2.0, 2.2),
        ("success_rate", ">= before - 0.01", 0.95, 0.94),
        ("duplicates", "<= before", 7.0, 7.0),
        ("p99_latency", "<= 250ms", None, 0.25),
    ],
)
def test_each_documented_form_gives_its_limit(
    metric: str, text: str, before: float | None, limit: float
) -> None:
    gate = parse_gate(metric, text, "retrysim.toml", VOCABULARY)
    assert gate.limit(before) == pytest.approx(limit)


def test_a_gate_holds_on_its_side_of_the_limit_and_not_past_it() -> None:
    upper = parse_gate("amplification", "<= before * 1.1", "f", VOCABULARY)
    assert upper.holds(2.2, 2.0) is True
    assert upper.holds(2.21, 2.0) is False
    lower = parse_gate("success_rate", ">= 0.99", "f", VOCABULARY)
    assert lower.holds(0.99, None) is True
    assert lower.holds(0.98, None) is False
    assert upper.holds(None, 2.0) is None  # nothing measured after: nothing to judge
    assert upper.holds(2.0, None) is None  # a relative gate with nothing before


@pytest.mark.parametrize(
    ("metric", "text", "says"),
    [
        ("success_rate", "> 0.99", "is not a gate"),
        ("success_rate", ">= ", "is not a gate"),
        ("p99_latency", "<= befor + 2s", "is not a gate"),
        ("p99_latency", "<= before + 2 minutes", "is not a gate"),
        ("p99_latency", "<= before ** 2", "is not a gate"),
        ("success_rate", 0.99, "is not a gate"),
        ("success_rate", ">= 99ms", "is for time metrics"),
        ("p99_latency", "<= before * 2s", "a factor has no unit"),
        ("amplification", "<= before * 0", "above 0"),
        ("amplification", "<= 1e999", "finite"),
        ("sucess_rate", ">= 0.99", "did you mean 'success_rate'?"),
    ],
)
def test_a_bad_gate_is_one_line_naming_file_gate_and_forms(
    metric: str, text: object, says: str
) -> None:
    with pytest.raises(CheckConfigError) as caught:
        parse_gate(metric, text, "retrysim.toml", VOCABULARY)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"retrysim.toml: gates.{metric}: ")
    assert says in message
    if says == "is not a gate":
        assert "'<= before * N'" in message  # the allowed forms


OPS = st.sampled_from([">=", "<="])
AMOUNTS = st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False)


@st.composite
def gates(draw: st.DrawFn) -> tuple[str, str, str, float, str]:
    """A gate expression written as a user might: (metric, text, step, amount in seconds)."""
    metric = draw(st.sampled_from(METRIC_NAMES))
    op = draw(OPS)
    step = draw(st.sampled_from(["absolute", "+", "-", "*"]))
    timed = metric in VOCABULARY.timed
    if step == "*":
        amount = draw(AMOUNTS.filter(lambda a: a > 0))
        return metric, f"{op} before * {amount!r}", step, amount, op
    if timed and draw(st.booleans()):
        millis = draw(st.integers(min_value=0, max_value=10**6))
        number, amount = f"{millis}ms", millis / 1000
    else:
        amount = draw(AMOUNTS)
        number = f"{amount!r}" + ("s" if timed and draw(st.booleans()) else "")
    if step == "absolute":
        return metric, f"{op} {number}", step, amount, op
    return metric, f"{op} before {step} {number}", step, amount, op


@given(gates(), st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), AMOUNTS)
def test_a_gate_round_trips_and_evaluates_as_its_arithmetic_says(
    drawn: tuple[str, str, str, float, str], before: float, after: float
) -> None:
    metric, text, step, amount, op = drawn
    gate = parse_gate(metric, text, "f", VOCABULARY)
    assert parse_gate(metric, gate.text, "f", VOCABULARY) == gate  # its own text reads back
    assert gate.amount == pytest.approx(amount, rel=1e-12, abs=0)
    expected = {
        "absolute": amount,
        "+": before + amount,
        "-": before - amount,
        "*": before * amount,
    }[step if not (step in "+-" and amount == 0) else "+"]
    limit = gate.limit(before)
    assert limit is not None and math.isclose(limit, expected, rel_tol=1e-12, abs_tol=1e-9)
    assert gate.holds(after, before) is (after >= limit if op == ">=" else after <= limit)


def test_a_gate_text_writes_seconds_for_time_metrics_only() -> None:
    assert parse_gate("p99_latency", "<= before + 2s", "f", VOCABULARY).text == ("<= before + 2.0s")
    assert parse_gate("amplification", "<= before * 1.1", "f", VOCABULARY).text == (
        "<= before * 1.1"
    )
    assert Gate("success_rate", ">=", "absolute", 0.99).text == ">= 0.99"


# --- the configuration ------------------------------------------------------------------------


def test_a_full_configuration_reads_as_written(tmp_path: Path) -> None:
    (tmp_path / "ops").mkdir()
    (tmp_path / "ops" / "mine.toml").write_text('[service]\nkind = "ideal"\n')
    read = config(
        tmp_path,
        """
scenarios = ["thundering-herd", "ops/mine.toml"]
seeds = 4
seed = 7
env = "deploy/.env"
watch = ["amplification"]

[gates]
success_rate = ">= 0.9"
amplification = ["<= before * 1.1", "<= 5"]

[scenario.thundering-herd]
seeds = 2
set = { duration = 20, "clients.count" = 1000 }
gates = { amplification = "<= before * 1.5" }
""",
    )
    assert read.where == "retrysim.toml"
    assert read.env == tmp_path / "deploy" / ".env"
    assert read.watch == ("amplification",)
    herd, mine = read.scenarios
    assert (herd.source, herd.seeds, herd.seed) == ("thundering-herd", 2, 7)
    assert herd.sets == {"duration": 20, "clients.count": 1000}
    assert [g.text for g in herd.gates] == [">= 0.9", "<= before * 1.5"]  # own replaces global
    assert mine.source == str(tmp_path / "ops" / "mine.toml")
    assert (mine.seeds, [g.text for g in mine.gates]) == (
        4,
        [">= 0.9", "<= before * 1.1", "<= 5.0"],
    )


def test_pyproject_tool_table_is_read_when_there_is_no_retrysim_toml(tmp_path: Path) -> None:
    read = config(
        tmp_path,
        '[project]\nname = "x"\n\n[tool.retrysim]\nscenarios = ["redis-blip"]\n',
        name="pyproject.toml",
    )
    assert read.where == "pyproject.toml [tool.retrysim]"
    assert [s.name for s in read.scenarios] == ["redis-blip"]
    assert read.scenarios[0].seeds == 5  # the default: several seeds give the interval


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "scenarios: give a non-empty list"),
        ("scenarios = []", "scenarios: give a non-empty list"),
        ('scenarios = "redis-blip"', "scenarios: give a non-empty list"),
        ('scenarios = ["redis-blp"]', "did you mean 'redis-blip'?"),
        ('scenarios = ["redis-blip", "redis-blip"]', "listed twice"),
        ('scenarios = ["nothing/here.toml"]', "no such file"),
        ('scenarios = ["redis-blip"]\nseeds = 0', "seeds: 0: give a whole number from 1"),
        ('scenarios = ["redis-blip"]\nseeds = true', "seeds: True: give a whole number"),
        ('scenarios = ["redis-blip"]\nseed = -1', "seed: -1: a seed is a whole number"),
        ('scenarios = ["redis-blip"]\nenv = 3', "env: give the path"),
        ('scenarios = ["redis-blip"]\nsedes = 3', "sedes: unknown key (did you mean 'seeds'?)"),
        ('scenarios = ["redis-blip"]\nwatch = ["amplificaton"]', "did you mean 'amplification'"),
        ('scenarios = ["redis-blip"]\ngates = 3', "gates: give a table"),
        ('scenarios = ["redis-blip"]\n[gates]\namplification = []', "an empty list"),
        ('scenarios = ["redis-blip"]\n[gates]\namplification = "< 3"', "is not a gate"),
        ('scenarios = ["redis-blip"]\n[scenario.redis-blp]\nseeds = 2', "not one of `scenarios`"),
        ('scenarios = ["redis-blip"]\n[scenario.redis-blip]\nsets = {}', "did you mean 'set'?"),
        ('scenarios = ["redis-blip"]\n[scenario.redis-blip]\nset = 3', "set: give a table"),
        (
            'scenarios = ["redis-blip"]\n[scenario.redis-blip.gates]\np99_latency = "<= 1h"',
            "scenario.redis-blip.gates.p99_latency: '<= 1h' is not a gate",
        ),
        ('scenarios = ["redis-blip"]\n[scenario.redis-blip]\nseeds = 9999', "from 1 to 1000"),
        ("scenarios = [", "invalid TOML"),
    ],
)
def test_each_bad_configuration_is_one_line_naming_file_and_field(
    tmp_path: Path, text: str, says: str
) -> None:
    with pytest.raises(CheckConfigError) as caught:
        config(tmp_path, text)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("retrysim.toml: ")
    assert says in message


def test_no_configuration_says_where_it_looked_and_what_to_do(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')  # no [tool.retrysim]
    with pytest.raises(CheckConfigError, match=r"no retrysim.toml in .* --config FILE"):
        find_config(tmp_path, None)
    with pytest.raises(CheckConfigError, match=r"--config .*missing\.toml: no such file"):
        find_config(tmp_path, tmp_path / "missing.toml")
    with pytest.raises(CheckConfigError, match=r"no \[tool.retrysim\] table"):
        find_config(tmp_path, tmp_path / "pyproject.toml")


@pytest.mark.parametrize(
    ("files", "args", "says"),
    [
        ({"retrysim.toml": 'scenarios = ["redis-blip"]\nseeds = 0'}, [], "seeds: 0"),
        ({}, [], "no retrysim.toml"),
        (
            {"retrysim.toml": 'scenarios = ["redis-blip"]\n[gates]\np99_latency = "<= soon"'},
            [],
            "gates.p99_latency: '<= soon' is not a gate",
        ),
        (
            {"retrysim.toml": 'scenarios = ["redis-blip"]\n[scenario.redis-blip]\n'
             'set = { "policy.max_atempts" = 5 }'},
            ["--before", ".env"],
            "scenario.redis-blip.set",
        ),
        (
            {"retrysim.toml": 'scenarios = ["redis-blip"]', ".env": ""},
            ["--before", "nowhere.env"],
            "--before nowhere.env: no such file",
        ),
        (
            {"retrysim.toml": 'scenarios = ["redis-blip"]', ".env": ""},
            ["--before", ".env", "--after", "nowhere.env"],
            "--after nowhere.env: no such file",
        ),
        (
            {"retrysim.toml": 'scenarios = ["redis-blip"]', ".env": ""},
            ["--before", ".env", "--scenario", "redis-blp"],
            "--scenario redis-blp: not a scenario of retrysim.toml (did you mean 'redis-blip'?)",
        ),
        (
            {"retrysim.toml": 'scenarios = ["redis-blip"]', ".env": "RETRY__API_MAX_ATTEMPTS=0"},
            ["--before", ".env"],
            "RETRY__API_MAX_ATTEMPTS",
        ),
        (
            {"retrysim.toml": 'scenarios = ["redis-blip"]', ".env": ""},
            ["--before", "git:HEAD"],
            "is not inside a git repository",
        ),
        (
            {"retrysim.toml": 'scenarios = ["redis-blip"]', ".env": ""},
            ["--before", ".env", "--junit", "nowhere/junit.xml"],
            "--junit nowhere/junit.xml: nowhere: no such folder",
        ),
        (
            {"retrysim.toml": 'scenarios = ["redis-blip"]', ".env": ""},
            ["--before", ".env", "--html", "check.txt"],
            "--html check.txt: the file must end in .html or .htm",
        ),
    ],
)  # fmt: skip
def test_bad_input_through_the_cli_exits_2_with_one_line(
    tmp_path: Path, files: dict[str, str], args: list[str], says: str
) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    result = CliRunner().invoke(app, ["check", "--workers", "1", "-q", *args])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("retrysim: error")]
    assert len(lines) == 1, result.stderr
    assert says in lines[0]


def test_the_readme_example_is_a_valid_configuration(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Reviewing a retry change in CI", 1)[1].split("\n### ", 1)[0]
    example = section.split("```toml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "ops").mkdir()
    (tmp_path / "ops" / "checkout.toml").write_text('[service]\nkind = "ideal"\n')
    read = config(tmp_path, example)
    herd = read.scenarios[0]
    assert [g.text for g in herd.gates] == [">= 0.99", "<= before + 2.0s", "<= before * 1.2"]
    job = Path(__file__).resolve().parent.parent / "docs" / "ci" / "retrysim-check.yml"
    command = next(  # the README's job runs the workflow's command
        line.strip() for line in section.splitlines() if 'retrysim check --before "git:' in line
    )
    assert command in job.read_text(encoding="utf-8")
