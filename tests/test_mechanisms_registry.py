"""The mechanism registry generates everything a mechanism needs outside its own module.

Adding a mechanism is its module and one entry in ``retrysim/retry/mechanisms.py``: the nested
``PolicyOptions`` field (decorator keyword, ``[policy.<name>]``, ``--set``), its shorthand, the
``RETRY__<OPERATION>_<NAME>_<KNOB>`` settings, the guard wiring and any extra stop all follow.
The last test proves it by adding a toy mechanism exactly that way, in a fresh interpreter.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from tenacity import stop_before_delay

from retrysim.model.scenario import parse_scenario
from retrysim.retry import RetrySettings, build_policy
from retrysim.retry.knobs import STAGES
from retrysim.retry.mechanisms import MECHANISM_NAMES, MECHANISMS, REGISTRY
from retrysim.retry.options import ERROR_POLICY_NAMES, OPTION_NAMES, PolicyOptions, parse_options
from retrysim.retry.resilience import mechanism_stops

ROOT = Path(__file__).resolve().parent.parent


def test_the_views_of_the_registry_agree() -> None:
    assert MECHANISM_NAMES == tuple(REGISTRY) == tuple(MECHANISMS)
    assert all(MECHANISMS[name] is entry.knobs for name, entry in REGISTRY.items())


def test_each_mechanism_is_a_policy_option_after_the_single_valued_ones() -> None:
    fields = list(PolicyOptions.model_fields)
    assert fields == [*OPTION_NAMES, *ERROR_POLICY_NAMES, *MECHANISM_NAMES]
    for name, entry in REGISTRY.items():
        info = PolicyOptions.model_fields[name]
        assert info.annotation is entry.knobs
        assert info.description == entry.description
        assert getattr(PolicyOptions(), name).model_fields_set == set()  # every knob unset


@pytest.mark.parametrize("name", MECHANISM_NAMES)
def test_every_mechanism_takes_the_shorthand(name: str) -> None:
    assert getattr(parse_options({name: True}), name).enabled is True
    assert getattr(parse_options({name: False}), name).model_fields_set == {"enabled"}
    scenario = parse_scenario({"policy": {name: True}})
    assert getattr(scenario.policy, name).enabled is True


@pytest.mark.parametrize("name", MECHANISM_NAMES)
def test_every_knob_of_every_mechanism_is_a_setting(name: str) -> None:
    for operation in ("worker", "api"):
        for knob, info in MECHANISMS[name].model_fields.items():
            field = RetrySettings.model_fields[f"{operation}_{name}_{knob}"]
            assert (field.annotation, field.default) == (info.annotation, info.default)


def test_guards_are_chained_in_the_order_a_send_meets_them() -> None:
    """Limiter (pace), breaker (admit), budget (ration), failure rate (observe): whatever the
    registry's order, adaptive's two guards land on both sides of the others."""
    policy = build_policy(
        "api",
        RetrySettings.defaults(),
        breaker=True,
        budget=True,
        adaptive={"enabled": True, "limiter": True},
    )
    assert [spec.name for spec in policy.guards] == [
        "limiter:api",
        "breaker:api",
        "budget:api",
        "adaptive:api",
    ]
    assert STAGES == ("pace", "admit", "ration", "observe")


def test_nothing_is_guarded_or_stopped_while_every_mechanism_is_off() -> None:
    policy = build_policy("worker", RetrySettings.defaults())
    assert policy.guards == ()
    assert mechanism_stops(policy.options.mechanisms()) == ()


def test_a_per_call_budget_is_tenacitys_stop_before_delay() -> None:
    tables = parse_options({"budget": {"max_total_time": 4.0}}).mechanisms()
    (stop,) = mechanism_stops(tables)
    assert isinstance(stop, stop_before_delay)
    assert stop.max_delay == 4.0


def test_type_checkers_are_told_each_registered_table_s_type() -> None:
    """``PolicyOptions`` declares the tables for type checkers under ``TYPE_CHECKING``; each such
    line must name a registered mechanism and its own knobs class (or an error family's)."""
    tree = ast.parse((ROOT / "retrysim" / "retry" / "options.py").read_text(encoding="utf-8"))
    declared: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == "PolicyOptions":
            for item in node.body:
                if isinstance(item, ast.If) and ast.unparse(item.test) == "TYPE_CHECKING":
                    for line in item.body:
                        assert isinstance(line, ast.AnnAssign)
                        assert isinstance(line.target, ast.Name)
                        declared[line.target.id] = ast.unparse(line.annotation)
    assert declared == {
        **dict.fromkeys(ERROR_POLICY_NAMES, "ErrorPolicy"),
        **{name: entry.knobs.__name__ for name, entry in REGISTRY.items()},
    }


TOY = """
from functools import partial
from typing import Annotated

from pydantic import Field
from tenacity import stop_after_attempt

from retrysim.retry.guards import GuardSpec
from retrysim.retry.knobs import Knobs, PlacedGuard


class ToyOptions(Knobs):
    enabled: Annotated[bool, Field(description="use the toy")] = False
    limit: Annotated[int, Field(ge=1, le=5, description="attempts the toy allows")] = 2


class Toy:
    def __init__(self, limit: int) -> None:
        self.limit = limit

    def before_attempt(self, now, attempt):
        return None

    def after_outcome(self, now, error):
        return None


def toy_guards(operation, options):
    if not options.enabled:
        return ()
    return (PlacedGuard("admit", GuardSpec(f"toy:{operation}", "client", partial(Toy, 1))),)


def toy_stop(options):
    return stop_after_attempt(options.limit) if options.enabled else None
"""

PROBE = """
import json, os, sys, types
from pathlib import Path

sys.path.insert(0, sys.argv[1])
import retrysim.retry  # the package only: its exports are lazy

path = Path(sys.argv[2])
source = path.read_text(encoding="utf-8")
# The recipe: the mechanism's module, and one registry entry.
base = "from retrysim.retry.knobs import Knobs, PlacedGuard"
source = source.replace(base, base + "\\nfrom toy import ToyOptions, toy_guards, toy_stop")
end = "    ),\\n}"  # the registry's last entry, whichever it is
entry = '    "toy": Mechanism(ToyOptions, "a toy", toy_guards, toy_stop),\\n'
source = source.replace(end, end[:-1] + entry + "}")
assert '"toy": Mechanism' in source, "the registry's literal changed: update this test"
module = types.ModuleType("retrysim.retry.mechanisms")
module.__file__ = str(path)
sys.modules[module.__name__] = module
exec(compile(source, str(path), "exec"), module.__dict__)

from retrysim.model.scenario import parse_scenario
from retrysim.retry import build_policy
from retrysim.retry.effective import effective_policy
from retrysim.retry.options import PolicyOptions
from retrysim.retry.settings import SettingsError, load_settings
from retrysim.retry.variables import option_variable

out = {}
out["fields"] = list(PolicyOptions.model_fields)
out["shorthand"] = PolicyOptions(toy=True).toy.enabled
scenario = parse_scenario({"policy": {"toy": {"enabled": True, "limit": 3}}})
out["scenario"] = scenario.policy.toy.limit
out["set"] = scenario.with_overrides({"policy.toy.limit": 4}).policy.toy.limit
out["variable"] = option_variable("toy.limit", "api")
os.environ["RETRY__WORKER_TOY_ENABLED"] = "true"
settings = load_settings(None)
effective = effective_policy(PolicyOptions(), "worker", settings, {"worker_toy_enabled": "env"})
out["source"] = effective["toy.enabled"].source
policy = build_policy("worker", settings, breaker=True, adaptive={"limiter": True})
out["guards"] = [spec.name for spec in policy.guards]
calls = []
def failing():
    calls.append(1)
    raise ConnectionError("down")
try:
    policy.retrying(sleep=lambda seconds: None)(failing)
except ConnectionError:
    pass
out["attempts"] = len(calls)
os.environ["RETRY__WORKER_TOY_LIMIT"] = "9"
try:
    load_settings(None)
except SettingsError as error:
    out["refused"] = str(error)
print(json.dumps(out))
"""


def test_a_new_mechanism_is_its_module_and_one_registry_entry(tmp_path: Path) -> None:
    (tmp_path / "toy.py").write_text(textwrap.dedent(TOY), encoding="utf-8")
    probe = tmp_path / "probe.py"
    probe.write_text(PROBE, encoding="utf-8")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, str(probe), str(tmp_path), str(ROOT / "retrysim/retry/mechanisms.py")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out: dict[str, Any] = json.loads(result.stdout)
    assert out["fields"] == [*OPTION_NAMES, *ERROR_POLICY_NAMES, *MECHANISM_NAMES, "toy"]
    assert out["shorthand"] is True
    assert (out["scenario"], out["set"]) == (3, 4)
    assert out["variable"] == "RETRY__API_TOY_LIMIT"
    assert out["source"] == "env"
    assert out["guards"] == ["limiter:worker", "breaker:worker", "toy:worker"]
    assert out["attempts"] == 2  # the toy's stop, composed with the policy's (3 attempts)
    assert out["refused"].startswith("RETRY__WORKER_TOY_LIMIT: ")
    assert "less than or equal to 5" in out["refused"]
