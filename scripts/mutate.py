"""Mutation testing of retrysim's core modules: does a plausible wrong edit fail a test?

    python scripts/mutate.py                        # every core module, every mutant
    python scripts/mutate.py --module waits         # one module
    python scripts/mutate.py --sample 80 --seed 1   # 80 mutants per module, drawn with seed 1
    python scripts/mutate.py --list                 # the mutant ids, nothing run
    python scripts/mutate.py --mutant ID            # one mutant's diff and its verdict
    python scripts/mutate.py --json --fail-under 90
    python scripts/mutate.py --journal docs/mutation-journal.jsonl  # goes on where it stopped
    python scripts/mutate.py --journal docs/mutation-journal.jsonl --known  # its table, no run

Each mutant is one small edit of one core module (an operator swapped, a constant moved by
one, a statement removed, ...). It is written into a temporary copy of the project (never the
working tree) and that module's own tests run against it (``MODULES`` maps each module to its
test files). A test that fails kills the mutant; a mutant whose tests outlive the per-mutant
timeout is killed by timeout (counted apart); a mutant whose tests all pass survived. Survivors
that no test can tell from the original are listed in ``EQUIVALENT`` with the reason. The kill
rate is (killed + timed out) / (mutants - equivalent).

Why an own mutator rather than mutmut or cosmic-ray: mutmut 3 first runs the whole suite under
its trampolines to map tests to functions (minutes here, and our suite is xdist-parallel and
spawns interpreters), and cosmic-ray wants a session database and a config per run. It is one
file with no dependency, knows what not to mutate here (docstrings, annotations,
asserts, strings, logging, ``TYPE_CHECKING`` blocks) and is fast: it imports the heavy
third-party packages once, then forks one child per mutant that runs ``pytest.main`` on the
module's tests from the mutated copy, so a mutant costs its tests' run time, not an
interpreter start. Hypothesis runs with the derandomised ``mutation`` profile
(tests/conftest.py), so a verdict is the same every run. docs/mutation.md has the operators,
the map, the measured rates and the equivalents explained.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import dataclasses
import difflib
import hashlib
import importlib.util
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

# module name -> (source file, the test files that answer for it). Every module under
# retrysim/sim/ and retrysim/retry/ is here (tests/test_mutate_script.py fails on one left
# out); each gets the smallest set of test files that exercise it, since they run per mutant.
MT = "tests/test_mutants.py"
MR = "tests/test_mutants_retry.py"  # tests written for survivors of retrysim/retry/
MS = "tests/test_mutants_sim.py"  # and of retrysim/sim/
GOLDEN = "tests/test_reliability.py::test_golden_results_still_match"
FP = "tests/test_fast_path.py"  # its tests by name: the whole file takes minutes
MODULES: dict[str, tuple[str, tuple[str, ...]]] = {
    # -- retrysim/retry/ --------------------------------------------------------------------
    "retry_package": (
        "retrysim/retry/__init__.py",
        ("tests/test_lean_library.py", "tests/test_moved_modules.py", "tests/test_decorators.py"),
    ),
    "adaptive": (
        "retrysim/retry/adaptive.py",
        ("tests/test_adaptive.py", MR, "tests/test_mutants_adaptive.py"),
    ),
    "breaker": (
        "retrysim/retry/breaker.py",
        (
            "tests/test_breaker.py",
            "tests/test_breaker_retries.py",
            MR,
            "tests/test_mutants_breaker.py",
        ),
    ),
    "budget": (
        "retrysim/retry/budget.py",
        ("tests/test_budget.py", "tests/test_budget_quota.py", MR, "tests/test_mutants_budget.py"),
    ),
    "calls": (
        "retrysim/retry/calls.py",
        (
            "tests/test_decorators.py",
            "tests/test_hooks_retry.py",
            "tests/test_retry_results.py",
            "tests/test_fallback.py",
            MR,
            "tests/test_mutants_calls.py",
        ),
    ),
    "classify": (
        "retrysim/retry/classify.py",
        (
            "tests/test_classify.py",
            "tests/test_connection_families.py",
            "tests/test_mutants_classify.py",
        ),
    ),
    "counters": (
        "retrysim/retry/counters.py",
        (
            "tests/test_counters.py",
            "tests/test_export.py",
            "tests/test_mutants_counters.py",
        ),
    ),
    "decorators": (
        "retrysim/retry/decorators.py",
        (
            "tests/test_decorators.py",
            "tests/test_attempt_timeout.py",
            "tests/test_fallback.py",
            MR,
            "tests/test_mutants_decorators.py",
        ),
    ),
    "effective": ("retrysim/retry/effective.py", ("tests/test_effective.py", MR)),
    "exceptions": (
        "retrysim/retry/exceptions.py",
        (
            "tests/test_classify.py",
            "tests/test_per_error.py",
            "tests/test_decorators.py",
            MR,
            "tests/test_mutants_exceptions.py",
        ),
    ),
    "export": (
        "retrysim/retry/export.py",
        (
            "tests/test_export.py",
            "tests/test_mutants_export.py",
        ),
    ),
    "guards": (
        "retrysim/retry/guards.py",
        (
            "tests/test_guards.py",
            MT,
            MR,
            "tests/test_mutants_guards.py",
        ),
    ),
    "hedge": (
        "retrysim/retry/hedge.py",
        (
            "tests/test_hedge.py",
            MT,
            "tests/test_mutants_hedge.py",
        ),
    ),
    "hooks": (
        "retrysim/retry/hooks.py",
        (
            "tests/test_hooks.py",
            "tests/test_hooks_retry.py",
            "tests/test_fallback.py",
            "tests/test_mutants_hooks.py",
        ),
    ),
    "knobs": (
        "retrysim/retry/knobs.py",
        (
            "tests/test_mechanisms_registry.py",
            "tests/test_resilience_policy.py",
            MR,
            "tests/test_mutants_knobs.py",
        ),
    ),
    "mechanisms": (
        "retrysim/retry/mechanisms.py",
        ("tests/test_mechanisms_registry.py", "tests/test_resilience_policy.py", MR),
    ),
    "options": (
        "retrysim/retry/options.py",
        (
            "tests/test_options.py",
            "tests/test_effective.py",
            MR,
            "tests/test_mutants_options.py",
        ),
    ),
    "otel": (
        "retrysim/retry/otel.py",
        (
            "tests/test_otel.py",
            MR,
            "tests/test_mutants_otel.py",
        ),
    ),
    "per_error": (
        "retrysim/retry/per_error.py",
        (
            "tests/test_per_error.py",
            MT,
            "tests/test_mutants_per_error.py",
        ),
    ),
    "policy": (
        "retrysim/retry/policy.py",
        (
            "tests/test_policy.py",
            "tests/test_options.py",
            MT,
            "tests/test_mutants_policy.py",
        ),
    ),
    "profiles": (
        "retrysim/retry/profiles.py",
        ("tests/test_options.py", "tests/test_policy.py", MR, "tests/test_mutants_profiles.py"),
    ),
    "resilience": (
        "retrysim/retry/resilience.py",
        ("tests/test_resilience_policy.py", "tests/test_mechanisms_registry.py", MR),
    ),
    "settings": (
        "retrysim/retry/settings.py",
        (
            "tests/test_settings.py",
            "tests/test_settings_env_file.py",
            MR,
            "tests/test_mutants_settings.py",
        ),
    ),
    "variables": (
        "retrysim/retry/variables.py",
        ("tests/test_settings_generated.py", "tests/test_mechanisms_registry.py", MR),
    ),
    "waits": (
        "retrysim/retry/waits.py",
        ("tests/test_waits.py", "tests/test_policy.py", MT, "tests/test_mutants_waits.py"),
    ),
    # -- retrysim/sim/ ----------------------------------------------------------------------
    "aio": ("retrysim/sim/aio.py", ("tests/test_aio.py", MS, "tests/test_mutants_aio.py")),
    "arrivals": (
        "retrysim/sim/arrivals.py",
        ("tests/test_engine.py", MT, MS, "tests/test_mutants_arrivals.py", GOLDEN),
    ),
    "attempt": (
        "retrysim/sim/attempt.py",
        ("tests/test_service_models.py", "tests/test_client_timeout.py", "tests/test_faults.py"),
    ),
    "balance": (
        "retrysim/sim/balance.py",
        ("tests/test_balance.py", MT, "tests/test_mutants_balance.py"),
    ),
    "call": (
        "retrysim/sim/call.py",
        ("tests/test_engine.py", "tests/test_network_legs.py", GOLDEN),
    ),
    "catalogue": (
        "retrysim/sim/catalogue.py",
        (
            "tests/test_library_errors.py",
            "tests/test_classify.py",
            MS,
            "tests/test_mutants_catalogue.py",
        ),
    ),
    "clock": (
        "retrysim/sim/clock.py",
        ("tests/test_engine.py", "tests/test_budget.py", MS, "tests/test_mutants_clock.py"),
    ),
    "compiled": (
        "retrysim/sim/compiled.py",
        (
            "tests/test_fast_path_extremes.py",
            f"{FP}::test_each_wait_mirror_draws_what_tenacity_draws",
            f"{FP}::test_each_stop_mirror_decides_as_tenacity_decides",
            f"{FP}::test_each_retry_mirror_decides_as_tenacity_decides",
            f"{FP}::test_the_per_error_mirrors_decide_and_draw_as_the_strategies_do",
            f"{FP}::test_tenacity_has_not_changed_what_the_fast_path_mirrors",
            f"{FP}::test_per_error_policies_are_identical_on_both_paths",
            f"{FP}::test_a_calls_own_strategies_are_not_kept_after_it_ends",
            "tests/test_mutants_compiled.py",
        ),
    ),
    "connected": (
        "retrysim/sim/connected.py",
        (
            "tests/test_network_legs.py",
            "tests/test_client_cpu.py",
            "tests/test_cpu_sharing.py",
            "tests/test_network.py",
            MT,
            "tests/test_mutants_connected.py",
        ),
    ),
    "connections": (
        "retrysim/sim/connections.py",
        (
            "tests/test_network_legs.py",
            "tests/test_connection_families.py",
            "tests/test_client_cpu.py",
            "tests/test_cpu_sharing.py",
            "tests/test_mutants_connections.py",
        ),
    ),
    "decide": (
        "retrysim/sim/decide.py",
        (
            "tests/test_fast_path_extremes.py",
            f"{FP}::test_every_resilience_mechanism",
            f"{FP}::test_a_predicate_registered_as_transient_decides_on_both_paths_alike",
            f"{FP}::test_auto_takes_the_fast_path_for_every_built_in_profile",
            f"{FP}::test_your_own_policy_runs_on_the_reference_path_and_fast_is_refused",
            f"{FP}::test_a_strategy_the_fast_path_does_not_mirror_is_named",
            f"{FP}::test_a_calls_own_strategies_are_not_kept_after_it_ends",
            "tests/test_result_answers.py",
            "tests/test_hedging_engine.py",
            MT,
            "tests/test_mutants_decide.py",
            "tests/test_mutants_decide_b.py",
        ),
    ),
    "engine": (
        "retrysim/sim/engine.py",
        (
            "tests/test_engine.py",
            "tests/test_network.py",
            "tests/test_invariants.py",
            MT,
            "tests/test_mutants_engine.py",
            "tests/test_mutants_engine_b.py",
            "tests/test_mutants_engine_c.py",
        ),
    ),
    "failures": (
        "retrysim/sim/failures.py",
        ("tests/test_faults.py", "tests/test_classify.py", MS, "tests/test_mutants_failures.py"),
    ),
    "faults": (
        "retrysim/sim/faults.py",
        (
            "tests/test_faults.py",
            MT,
            "tests/test_fault_vocabulary.py",
            "tests/test_mutants_faults_vocabulary.py",
        ),
    ),
    "fidelity": (
        "retrysim/sim/fidelity.py",
        (
            "tests/test_fidelity.py",
            "tests/test_result_answers.py",
            MS,
            "tests/test_mutants_fidelity_c.py",
            "tests/test_mutants_fidelity.py",
            "tests/test_mutants_fidelity_b.py",
        ),
    ),
    "fidelity_tiers": (
        "retrysim/sim/fidelity_tiers.py",
        ("tests/test_fidelity_tiers.py", "tests/test_mutants_fidelity_tiers.py"),
    ),
    "foreign": (
        "retrysim/sim/foreign.py",
        ("tests/test_foreign_policy.py", "tests/test_mutants_foreign.py"),
    ),
    "foreign_libraries": (
        "retrysim/sim/foreign_libraries.py",
        ("tests/test_foreign_libraries.py", "tests/test_mutants_foreign_libraries.py"),
    ),
    "graph": (
        "retrysim/sim/graph.py",
        ("tests/test_tiers.py", MT, "tests/test_mutants_graph.py"),
    ),
    "hedging": (
        "retrysim/sim/hedging.py",
        ("tests/test_hedging_engine.py", MT, "tests/test_mutants_hedging.py"),
    ),
    "invariants": (
        "retrysim/sim/invariants.py",
        ("tests/test_invariants.py", MT, MS, "tests/test_mutants_invariants.py"),
    ),
    "kernel": (
        "retrysim/sim/kernel.py",
        ("tests/test_engine.py", MT, MS, "tests/test_mutants_kernel.py"),
    ),
    "latency": (
        "retrysim/sim/latency.py",
        ("tests/test_latency.py", MS, "tests/test_mutants_latency.py"),
    ),
    "limits": (
        "retrysim/sim/limits.py",
        ("tests/test_hostile_input.py", MT, MS, "tests/test_mutants_limits.py"),
    ),
    "native": (
        "retrysim/sim/native.py",
        (
            "tests/test_native.py",
            f"{MT}::test_only_a_large_run_collects_before_its_records_and_nothing_changes",
        ),
    ),
    "native_lower": ("retrysim/sim/native_lower.py", ("tests/test_native.py",)),
    "sim_policy": (
        "retrysim/sim/policy.py",
        ("tests/test_options.py", "tests/test_per_error.py", MS),
    ),
    "records": (
        "retrysim/sim/records.py",
        (
            "tests/test_records.py",
            "tests/test_invariants.py",
            "tests/test_engine.py",
            "tests/test_mutants_records.py",
        ),
    ),
    "result": (
        "retrysim/sim/result.py",
        ("tests/test_tiers.py", "tests/test_tier_metrics.py", MS),
    ),
    "routing": (
        "retrysim/sim/routing.py",
        (
            "tests/test_balance.py",
            "tests/test_hedging_engine.py",
            "tests/test_tiers.py",
            MT,
            "tests/test_mutants_routing.py",
        ),
    ),
    "service": (
        "retrysim/sim/service.py",
        (
            "tests/test_service.py",
            "tests/test_service_models.py",
            MT,
            "tests/test_mutants_service.py",
        ),
    ),
    "sharing": (
        "retrysim/sim/sharing.py",
        (
            "tests/test_cpu_sharing.py",
            "tests/test_service_models.py",
            "tests/test_mutants_sharing.py",
        ),
    ),
    "streams": (
        "retrysim/sim/streams.py",
        ("tests/test_streams.py", GOLDEN, "tests/test_mutants_streams.py"),
    ),
    "tiers": (
        "retrysim/sim/tiers.py",
        ("tests/test_tiers.py", MT, GOLDEN),
    ),
    "wait_samples": (
        "retrysim/sim/wait_samples.py",
        ("tests/test_plots.py", MS, "tests/test_mutants_wait_samples.py"),
    ),
    # -- elsewhere ----------------------------------------------------------------------------
    "metrics": (
        "retrysim/results/metrics.py",
        ("tests/test_metrics.py", MT, "tests/test_mutants_metrics.py"),
    ),
}

SLOTS = (
    "slots=False only gives instances a __dict__: frozen=True still refuses every assignment,"
    " and no behaviour reads __slots__"
)
DRAW_EQUALS_P = (
    "unit() draws a multiple of 2**-53 in [0, 1): a draw equal to the probability, the only"
    " case `<` and `<=` differ, comes once in 2**53 draws"
)
ROOM = (
    "how much room the columns take at once, or how many rows move at once: memory and speed,"
    " never a record (the tests read these sizes by name)"
)
# mutant id -> why no test can tell it from the original (checked: each one still survives)
EQUIVALENT: dict[str, str] = {
    "retrysim/retry/budget.py:221:8:stmt:removed": (
        "TokenBudget.name is read by nothing: events, otel and stats carry the Notifier's "
        "name, GuardStates the GuardSpec's"
    ),
    "retrysim/retry/budget.py:269:8:stmt:removed": (
        "RatioBudget.name is read by nothing: events, otel and stats carry the Notifier's "
        "name, GuardStates the GuardSpec's"
    ),
    "retrysim/retry/budget.py:352:8:stmt:removed": (
        "RetryQuota.name is read by nothing: events, otel and stats carry the Notifier's "
        "name, GuardStates the GuardSpec's"
    ),
    "retrysim/retry/budget.py:271:8:stmt:removed": (
        "RatioBudget.percent is read by nothing: the balance uses the exact integer _share"
    ),
    "retrysim/retry/budget.py:273:8:stmt:removed": (
        "RatioBudget.reserve is read by nothing: the balance uses the exact integer _reserve"
    ),
    "retrysim/retry/budget.py:273:23:arith:Mult->Div": (
        "RatioBudget.reserve is read by nothing: the balance uses the exact integer _reserve"
    ),
    "retrysim/retry/budget.py:401:4:stmt:removed": (
        "__slots__ only drops the per-instance __dict__; nothing reads or sets an "
        "attribute outside the slots"
    ),
    "retrysim/retry/classify.py:96:0:stmt:removed": (
        "Key is a type alias read only in annotations, which `from __future__ import "
        "annotations` never evaluates; nothing imports it"
    ),
    "retrysim/retry/classify.py:232:8:return:None": (
        "_safely's only caller is any(...) in is_transient; None and False are both falsy there"
    ),
    "retrysim/retry/classify.py:270:8:return:None": (
        "_sql_transient's only caller is `if sql and _sql_transient(...)`; None and False "
        "are both falsy there"
    ),
    "retrysim/retry/calls.py:64:0:stmt:removed": (
        "SyncSleep is a type alias read only in annotations, which `from __future__ "
        "import annotations` never evaluates; nothing imports it"
    ),
    "retrysim/retry/calls.py:65:0:stmt:removed": (
        "AsyncSleep is a type alias read only in annotations, which `from __future__ "
        "import annotations` never evaluates; nothing imports it"
    ),
    "retrysim/retry/calls.py:66:0:stmt:removed": (
        "KeyFunc is a type alias read only in annotations, which `from __future__ import "
        "annotations` never evaluates; nothing imports it"
    ),
    "retrysim/retry/calls.py:67:0:stmt:removed": (
        "Clock is a type alias read only in annotations, which `from __future__ import "
        "annotations` never evaluates; nothing imports it"
    ),
    "retrysim/retry/calls.py:68:0:stmt:removed": (
        "_Loop is a TypeVar used only in annotations, which `from __future__ import "
        "annotations` never evaluates"
    ),
    "retrysim/retry/calls.py:137:4:stmt:removed": (
        "_Shown's __slots__ only saves memory; nothing sets any other attribute on it"
    ),
    "retrysim/retry/calls.py:168:8:stmt:removed": (
        "exhausted_call is read only in ended() once error is gave_up, and on_exhausted "
        "sets exhausted_call before gave_up, so it is always set by then"
    ),
    "retrysim/retry/calls.py:175:22:const:0.0->1.0": (
        "latest is read only by elapsed, once started is set, and now() sets both together"
    ),
    "retrysim/retry/calls.py:401:11:bool:Or->And": (
        "gave_up and exhausted_call are set together in on_exhausted, and the loop "
        "re-raises that very gave_up object, so the two conditions are never split"
    ),
    "retrysim/retry/calls.py:411:8:stmt:removed": (
        "breakers queue changes only inside guard questions, each followed by "
        "deliver_pending, so the queue is empty when a call finishes"
    ),
    "retrysim/retry/calls.py:448:12:return:None": (
        "returning None instead of False: the only caller tests `not _first_time(...)`, "
        "and None is falsy too"
    ),
    "retrysim/retry/adaptive.py:143:4:stmt:removed": (
        "__slots__ only drops the per-instance __dict__; nothing reads or sets an "
        "attribute outside the slots"
    ),
    "retrysim/retry/adaptive.py:165:8:stmt:removed": (
        "FailureRate.name is read by nothing: GuardStates and the metrics use the GuardSpec's name"
    ),
    "retrysim/retry/adaptive.py:198:8:stmt:removed": (
        "CubicRateLimiter.name is read by nothing: events carry the Notifier's name, "
        "GuardStates and the metrics the GuardSpec's"
    ),
    "retrysim/retry/adaptive.py:204:8:stmt:removed": (
        "rate is read only once enabled: pace returns first, stats() shows inf itself, "
        "and the first throttle sets it before _refill can read it"
    ),
    "retrysim/retry/adaptive.py:205:8:stmt:removed": (
        "tokens is set to 0.0 again at the first throttle, and nothing reads it before "
        "(pace returns early until enabled)"
    ),
    "retrysim/retry/adaptive.py:205:22:const:0.0->1.0": (
        "tokens is set to 0.0 again at the first throttle, and nothing reads it before "
        "(pace returns early until enabled)"
    ),
    "retrysim/retry/adaptive.py:253:20:stmt:removed": (
        "tokens is still __init__'s 0.0 at the first throttle: nothing changes it while "
        "the limiter is off (pace returns early)"
    ),
    "retrysim/retry/adaptive.py:206:8:stmt:removed": (
        "last_refill is set to now at the first throttle, before pace or _refill can read "
        "it (both run only once enabled)"
    ),
    "retrysim/retry/adaptive.py:206:27:const:0.0->1.0": (
        "last_refill is set to now at the first throttle, before pace or _refill can read "
        "it (both run only once enabled)"
    ),
    "retrysim/retry/adaptive.py:208:8:stmt:removed": (
        "w_max is set by every throttle and read only by CUBIC growth once enabled, which "
        "only a throttle turns on"
    ),
    "retrysim/retry/adaptive.py:208:21:const:0.0->1.0": (
        "w_max is set by every throttle and read only by CUBIC growth once enabled, which "
        "only a throttle turns on"
    ),
    "retrysim/retry/adaptive.py:209:8:stmt:removed": (
        "k is set by every throttle and read only by CUBIC growth once enabled, which "
        "only a throttle turns on"
    ),
    "retrysim/retry/adaptive.py:209:17:const:0.0->1.0": (
        "k is set by every throttle and read only by CUBIC growth once enabled, which "
        "only a throttle turns on"
    ),
    "retrysim/retry/adaptive.py:210:8:stmt:removed": (
        "last_throttle is set by every throttle and read only by CUBIC growth once "
        "enabled, which only a throttle turns on"
    ),
    "retrysim/retry/adaptive.py:210:29:const:0.0->1.0": (
        "last_throttle is set by every throttle and read only by CUBIC growth once "
        "enabled, which only a throttle turns on"
    ),
    "retrysim/retry/adaptive.py:226:27:cmp:GtE->Gt": (
        "at tokens == 0 the hold is -0.0, not 0.0: equal as numbers, and every caller "
        "(calls.py, engine.py, the delay count, notify) tests delay > 0"
    ),
    "retrysim/retry/breaker.py:147:8:stmt:removed": (
        "opened_at is read only while open, and the only way to open (_open) sets it "
        "first; nothing outside breaker.py reads it"
    ),
    "retrysim/retry/breaker.py:147:25:const:0.0->1.0": (
        "opened_at is read only while open, and the only way to open (_open) sets it "
        "first; its value before that is never read"
    ),
    "retrysim/retry/breaker.py:152:8:stmt:removed": (
        "_probes_ok is read only half-open, and the only way there (_move) resets it to 0 first"
    ),
    "retrysim/retry/breaker.py:152:26:const:0->1": (
        "_probes_ok is read only half-open, and the only way there (_move) resets it to 0 first"
    ),
    "retrysim/retry/breaker.py:205:11:cmp:LtE->Lt": (
        "with failure_rate 0 the window is filled but never judged: the rate's numerator "
        "is 0, so _should_open's rate test is always false"
    ),
    "retrysim/retry/breaker.py:223:12:cmp:Gt->GtE": (
        "with failure_rate 0 nothing enters the window, so seen (0) is below "
        "minimum_calls (>= 1) and the rate never opens it"
    ),
    "retrysim/retry/breaker.py:249:0:stmt:removed": (
        "Ticket is a type alias read only in annotations, which `from __future__ import "
        "annotations` never evaluates"
    ),
    "retrysim/retry/breaker.py:263:23:const:0->1": (
        "the half-open period is only compared for equality with itself; starting at 1 "
        "keeps every period as distinct as starting at 0"
    ),
    "retrysim/retry/breaker.py:284:44:const:False->True": (
        "a ticket with period None is never current, and its probe flag is read only for "
        "a current ticket"
    ),
    "retrysim/retry/breaker.py:286:74:const:False->True": (
        "a ticket with period None is never current, and its probe flag is read only for "
        "a current ticket"
    ),
    "retrysim/retry/breaker.py:293:68:const:False->True": (
        "a ticket with period None is never current, and its probe flag is read only for "
        "a current ticket"
    ),
    "retrysim/retry/breaker.py:296:32:const:False->True": (
        "a ticket with period None is never current, and its probe flag is read only for "
        "a current ticket"
    ),
    "retrysim/retry/breaker.py:311:11:cmp:Eq->NotEq": (
        "every half-open period follows a move to open, which the mutant counts instead: "
        "periods stay distinct, and are only compared for equality"
    ),
    "retrysim/retry/breaker.py:319:4:stmt:removed": (
        "__slots__ only drops the per-instance __dict__; nothing reads or sets an "
        "attribute outside the slots"
    ),
    "retrysim/retry/breaker.py:323:37:const:False->True": (
        "a ticket with period None is never current, and its probe flag is read only for "
        "a current ticket"
    ),
    "retrysim/sim/attempt.py:39:4:stmt:removed": (
        "__slots__ only drops the per-instance __dict__; nothing reads or sets an attribute "
        "outside the slots"
    ),
    "retrysim/sim/call.py:26:4:stmt:removed": (
        "__slots__ only: a live call takes 24 bytes more, and no attribute outside the slots "
        "is read or set"
    ),
    "retrysim/sim/call.py:45:4:stmt:removed": (
        "__slots__ only: a live reference-path call takes 24 bytes more, and no attribute "
        "outside the slots is read or set"
    ),
    "retrysim/sim/catalogue.py:19:0:stmt:removed": (
        "Ancestor is a type alias read only in annotations, which `from __future__ import "
        "annotations` never evaluates"
    ),
    "retrysim/sim/fidelity_tiers.py:200:55:const:True->False": (
        "top.chain() builds one runner per tier name, so the zip's lengths always match and "
        "strict never raises"
    ),
    "retrysim/sim/kernel.py:63:40:const:1->0": (
        "halt is called only inside an event, and events at one instant run in seq order, so "
        "seq 0 is never pending then: 0 sorts first just as -1 does"
    ),
    "retrysim/retry/breaker.py:312:12:arith:Add->Sub": (
        "the half-open period is only compared for equality with itself; counting down keeps "
        "every period as distinct as counting up"
    ),
    "retrysim/retry/calls.py:175:8:stmt:removed": (
        "latest is read only by elapsed, once started is set, and now() sets both together"
    ),
    "retrysim/retry/options.py:192:76:const:True->False": (
        "every PolicyOptions default (None, False, the tables' default instances) is valid and "
        "comes back unchanged from its validators"
    ),
    "retrysim/retry/settings.py:379:8:return:None": (
        "_explain asks _allowed only about a bound error, whose loc[0] is always a "
        "RetrySettings field, so info is never None"
    ),
    "retrysim/retry/policy.py:60:0:stmt:removed": (
        "PROFILE_FORMULAS is read by nothing (dead since profiles became objects that carry"
        " their own formula)"
    ),
    "retrysim/retry/policy.py:227:0:stmt:removed": (
        "T is a TypeVar used only in annotations, which `from __future__ import annotations`"
        " never evaluates"
    ),
    "retrysim/sim/native.py:171:20:const:0->1": (
        "the calls the core reserves room for when their number is not known up front: room"
        " only, the records are the same"
    ),
    "retrysim/sim/native.py:207:91:const:True->False": (
        "ConnectionStats' four fields zipped with the core's four counts: the lengths are"
        " equal, strict or not"
    ),
    "retrysim/sim/native.py:223:19:bool:Or->And": (
        "the core writes every attempt's client; with no fields named, records_of fills the"
        " client from the calls again: the same values"
    ),
    "retrysim/sim/engine.py:56:0:stmt:removed": (
        "Progress is a type alias read only in annotations (here and in runner.py), which"
        " `from __future__ import annotations` never evaluates"
    ),
    "retrysim/sim/engine.py:213:67:const:0->1": (
        "the run's outer jitter stream is a fallback nothing draws from: a wait is drawn only"
        " after a failed attempt pointed the jitter at its call's own stream"
    ),
    "retrysim/sim/engine.py:247:31:cmp:GtE->Gt": (
        "at now == duration the estimate round(started * duration / now) is started anyway"
    ),
    "retrysim/sim/engine.py:314:20:const:0->1": (
        "limit 0 (open loop) also returns through `call.index + 1 >= limit`, and limit 1"
        " returns either way"
    ),
    "retrysim/sim/faults.py:71:30:const:True->False": SLOTS,
    "retrysim/sim/faults.py:82:30:const:True->False": SLOTS,
    "retrysim/sim/faults.py:97:30:const:True->False": SLOTS,
    "retrysim/sim/faults.py:237:30:const:True->False": SLOTS,
    "retrysim/sim/faults.py:250:30:const:True->False": SLOTS,
    "retrysim/sim/faults.py:92:42:cmp:Lt->LtE": DRAW_EQUALS_P,
    "retrysim/sim/faults.py:112:28:cmp:Lt->LtE": DRAW_EQUALS_P,
    "retrysim/sim/faults.py:263:42:cmp:Lt->LtE": DRAW_EQUALS_P,
    "retrysim/sim/faults.py:109:15:cmp:Lt->LtE#1": (
        "at t == end the ramp's probability is 0 and no draw is below 0, so t == end passes"
        " either way"
    ),
    "retrysim/sim/faults.py:139:27:const:0->1": (
        "a count gate's count is 0 until the first attempt in its window, so _occurrence's"
        " start value can only reset a count that is already 0, and after that attempt both"
        " hold its occurrence"
    ),
    "retrysim/sim/faults.py:148:25:const:0->1": (
        "without a recurrence every attempt has the same occurrence, which can differ from"
        " _occurrence's start value only at the first attempt in the window, when the count"
        " it resets is already 0"
    ),
    "retrysim/sim/faults.py:158:30:const:True->False": SLOTS,
    "retrysim/sim/faults.py:191:11:cmp:Lt->LtE": (
        "at share == 1.0 the added test asks whether a draw in [0, 1) is at least 1.0, which"
        " it never is, so every client is still hit"
    ),
    "retrysim/sim/faults.py:191:32:cmp:GtE->Gt": DRAW_EQUALS_P,
    "retrysim/sim/faults.py:216:30:const:True->False": SLOTS,
    "retrysim/retry/waits.py:142:49:cmp:GtE->Gt": (
        "a hint of 0 is never above the fallback wait, so honouring or ignoring it gives the"
        " same wait (the hint's only reader)"
    ),
    "retrysim/sim/sharing.py:122:28:const:0.0->1.0": (
        "tags count from `attained`: where an idle sharer's next busy period starts cancels"
        " out of every completion time (0 only keeps the most precision)"
    ),
    "retrysim/results/metrics.py:104:75:const:True->False": (
        "np.percentile returns one value per percentile asked: the zip's lengths always match"
    ),
    "retrysim/retry/waits.py:52:20:cmp:Gt->GtE": (
        "with a floor of 0 the wait is replaced only when below 0, and no wait is negative"
    ),
    "retrysim/retry/waits.py:129:36:cmp:Gt->GtE": (
        "at hint == wait, max(wait, min(hint, cap)) is wait: the test only skips the arithmetic"
    ),
    "retrysim/retry/waits.py:52:34:cmp:Lt->LtE": (
        "at wait == floor both branches return the same number"
    ),
    "retrysim/sim/records.py:25:39:const:2->3": (
        "call outcome codes are only ever compared with their names (SUCCEEDED, GAVE_UP,"
        " UNFINISHED), never with a number: any three distinct values behave the same"
    ),
    "retrysim/sim/records.py:83:22:const:12->13": ROOM,
    "retrysim/sim/records.py:86:19:const:18->19": ROOM,
    "retrysim/sim/records.py:88:18:const:18->19": ROOM,
    "retrysim/sim/decide.py:331:12:stmt:removed": (
        "every retry on the fast path is a mirror (MIRRORED adds only stops and waits), and"
        " every retry mirror reads the probe's `failure` (None for a returned answer), never"
        " its `outcome`"
    ),
    "retrysim/sim/balance.py:34:28:const:0->1": (
        "every replica's outstanding count starts 1 higher: the counts are only compared with"
        " each other (least outstanding, power of two), and equal offsets keep every comparison"
    ),
    "retrysim/sim/routing.py:85:29:const:1->0": (
        "a balancer over one replica always picks replica 0, as no balancer does, and its"
        " random picks are counter-based draws that move no other stream"
    ),
    "retrysim/sim/hedging.py:166:8:stmt:removed": (
        "a call's hedge group is deleted when its attempt is decided (settle), and a call ends"
        " only after its last attempt was decided; a group left at the run's end is never read"
        " again (checked with a spy: forget found no group on a run with timeouts cutting sends)"
    ),
    "retrysim/retry/hedge.py:121:0:stmt:removed": (
        "Judge is a type alias read only in annotations, which `from __future__ import"
        " annotations` never evaluates"
    ),
    "retrysim/sim/graph.py:79:8:stmt:removed": (
        "`_issued` is read only by a tier with callers above it, which sets its own list two"
        " lines below; the top tier never reads it"
    ),
    "retrysim/retry/counters.py:296:4:stmt:removed": (
        "__slots__ only drops the per-instance __dict__; nothing reads or sets an attribute "
        "outside the slots (AttemptCounter is built only in calls.py)"
    ),
    "retrysim/retry/export.py:36:50:const:2->3": (
        "_SEVERITY values are only compared with each other: open at 3 instead of 2 still "
        "ranks above half_open (1) and closed (0)"
    ),
    "retrysim/retry/export.py:38:0:stmt:removed": (
        "Kind is a type alias read only in annotations, which `from __future__ import "
        "annotations` never evaluates; nothing imports it (otel has its own)"
    ),
    "retrysim/retry/export.py:100:31:cmp:Gt->GtE": (
        "> and >= differ only for two breakers of one name with equal severity, i.e. in the "
        "same state: storing that same state again changes nothing"
    ),
    "retrysim/retry/export.py:239:25:cmp:Gt->GtE": (
        "the line is reached only for an infinite value: +inf is both > 0 and >= 0, -inf "
        "neither; the two differ only at 0"
    ),
    "retrysim/retry/export.py:239:33:const:0->1": (
        "the line is reached only for an infinite value: +inf exceeds both 0 and 1, -inf "
        "neither, so the sign test is the same"
    ),
    "retrysim/retry/otel.py:60:0:stmt:removed": (
        "Kind is a type alias read only in annotations, which `from __future__ import "
        "annotations` never evaluates; nothing imports it"
    ),
    "retrysim/retry/otel.py:199:8:stmt:removed": (
        "instrument_opentelemetry sets source right after _Instruments() and before any "
        "callback, active or remove() can read it"
    ),
    "retrysim/retry/otel.py:200:8:stmt:removed": (
        "INSTRUMENTS has a histogram row, so the constructor's loop always sets histogram; a "
        "failure there aborts the whole _Instruments"
    ),
    "retrysim/retry/knobs.py:18:0:stmt:removed": (
        "Stage is a type alias read only in annotations (STAGES, PlacedGuard.stage), which "
        "`from __future__ import annotations` never evaluates; nothing imports it"
    ),
    "retrysim/retry/decorators.py:24:0:stmt:removed": (
        "P is a ParamSpec used only in annotations, which `from __future__ import "
        "annotations` never evaluates; nothing imports it"
    ),
    "retrysim/retry/decorators.py:25:0:stmt:removed": (
        "R is a TypeVar used only in annotations, which `from __future__ import annotations` "
        "never evaluates; nothing imports it"
    ),
    "retrysim/retry/decorators.py:238:83:const:True->False": (
        "Knobs' serializer dumps only the knobs set, and the mechanism was just given, so its"
        " table dumps the same with or without exclude_unset"
    ),
    "retrysim/retry/guards.py:75:0:stmt:removed": (
        "Listener is a type alias read only in annotations, which `from __future__ import "
        "annotations` never evaluates; nothing imports it"
    ),
    "retrysim/retry/guards.py:81:4:stmt:removed": (
        "__slots__ only drops the per-instance __dict__; nothing reads or sets an attribute "
        "outside the slots"
    ),
    "retrysim/retry/guards.py:118:4:stmt:removed": (
        "__slots__ only drops the per-instance __dict__; nothing reads or sets an attribute "
        "outside the slots"
    ),
    "retrysim/retry/hooks.py:110:0:stmt:removed": (
        "_Hook is a TypeVar used only in annotations, which `from __future__ import "
        "annotations` never evaluates"
    ),
    "retrysim/retry/profiles.py:105:11:cmp:Gt->GtE": (
        "with floor 0, max(0.0, x) == x: every raw_range value is >= 0 for valid options "
        "(only a max_wait of -0.0 gives 0.0 for -0.0, equal under ==)"
    ),
    "retrysim/retry/settings.py:77:4:return:None": (
        "every option read from a setting is typed `X | None` with one X (options defaulting "
        "to None skip _given_type), so it always returns at line 76"
    ),
    "retrysim/retry/settings.py:329:0:stmt:removed": (
        "EnvSource is a type alias read only in annotations, which `from __future__ import "
        "annotations` never evaluates; nothing imports it"
    ),
    "retrysim/retry/settings.py:384:7:bool:Or->And": (
        "_allowed is asked only after a bound error, and every bounded RetrySettings field "
        "has both a lower and an upper bound, so low and high are both set"
    ),
    "retrysim/retry/settings.py:385:8:return:None": (
        "reached only for a field missing a bound, but _allowed is asked only after a bound "
        "error and every bounded RetrySettings field has both bounds"
    ),
    "retrysim/retry/settings.py:516:86:const:True->False": (
        "EnvFile.warnings() makes exactly one message per unparsable line, so the zip's two "
        "sides are always the same length and strict never fires"
    ),
    "retrysim/sim/balance.py:25:4:stmt:removed": (
        "__slots__ only drops the per-instance __dict__; nothing in retrysim or the tests "
        "sets or reads a Balancer attribute outside the slots"
    ),
    "retrysim/sim/clock.py:92:69:const:True->False": (
        "saved is built from namespaces in the same locked block, so the zip's two sides are "
        "always the same length and strict never fires"
    ),
    "retrysim/sim/aio.py:195:11:bool:And->Or": (
        "an expired listed timeout has already cancelled this task and so `woken`, so _wake "
        "returns first; when() is None only after reschedule(None), and doing that again "
        "changes nothing"
    ),
    "retrysim/sim/aio.py:25:0:stmt:removed": (
        "T appears only in annotations, which are never evaluated (from __future__ import "
        "annotations)"
    ),
    "retrysim/sim/aio.py:26:0:stmt:removed": (
        "Ts appears only in annotations, which are never evaluated (from __future__ import "
        "annotations)"
    ),
    "retrysim/sim/aio.py:38:8:stmt:removed": (
        "every _VirtualSelector is built by VirtualTimeEventLoop.__init__, which sets .loop "
        "before any select() can run"
    ),
    "retrysim/sim/aio.py:62:4:stmt:removed": (
        "__slots__ on _FifoTimer only saves memory and forbids new attributes; nothing sets "
        "attributes on a timer handle"
    ),
    "retrysim/sim/aio.py:70:19:cmp:Lt->LtE": (
        "seqs are unique (itertools.count per loop) and heapq never compares a heap entry "
        "with itself, so two seqs are never equal"
    ),
    "retrysim/sim/aio.py:120:11:cmp:Gt->GtE": (
        "advance(0) under >= adds +0.0 to the clock, which changes no value a comparison or "
        "sum can see (only the sign bit of a clock started at -0.0)"
    ),
    "retrysim/sim/arrivals.py:56:7:cmp:LtE->Lt": (
        "when end == start, edges is [start]: no pieces, every step gets first >= last, and "
        "the answer is [] as with the early return"
    ),
    "retrysim/sim/arrivals.py:60:57:cmp:Lt->LtE": (
        "a cut equal to arrival.start is already in the cuts set, so adding it again changes "
        "nothing"
    ),
    "retrysim/sim/arrivals.py:60:57:cmp:Lt->LtE#1": (
        "a cut equal to end is already in the cuts set, so adding it again changes nothing"
    ),
    "retrysim/sim/arrivals.py:62:42:arith:Sub->Add": (
        "rates gets 2 extra slots that are never painted (i < last <= len(edges)-1), and "
        "zip(strict=False) stops at edges[1:]"
    ),
    "retrysim/sim/arrivals.py:62:55:const:1->0": (
        "rates gets 1 extra slot that is never painted (i < last <= len(edges)-1), and "
        "zip(strict=False) stops at edges[1:]"
    ),
    "retrysim/sim/arrivals.py:76:11:cmp:GtE->Gt": (
        "if first == last, find(first) >= last so nothing is painted; path compression keeps "
        "every node's root"
    ),
    "retrysim/sim/arrivals.py:82:25:const:1->0": (
        "the line before sets next_unpainted[i] = i+1, so find(i) reaches the same root as "
        "find(i+1)"
    ),
    "retrysim/sim/compiled.py:196:15:const:64->65": (
        "a precomputed power is the same expression on the same numbers as the fallback "
        "`multiplier * base**exponent`; attempt numbers start at 1, so no index past the "
        "table is read"
    ),
    "retrysim/sim/compiled.py:222:22:arith:Sub->Add": (
        "spread is always a float (tenacity's to_seconds); x-0 and x+0 differ only at x=-0.0,"
        " and 0 + (+-0.0*u) is 0.0 either way"
    ),
    "retrysim/sim/compiled.py:233:24:cmp:Lt->LtE": (
        "top (float) == result (float) is the same float unless both are zeros, and then "
        "floor (>= 0) is returned either way"
    ),
    "retrysim/sim/compiled.py:66:4:stmt:removed": (
        "`__slots__` on Memo only saves memory; nothing reads or sets an attribute outside "
        "frozen/known"
    ),
    "retrysim/sim/failures.py:93:4:stmt:removed": (
        "__slots__ only drops Answers' per-instance __dict__; nothing sets an attribute "
        "outside names/none_code/values, and pickle/copy work either way"
    ),
    "retrysim/sim/faults.py:278:4:stmt:removed": (
        "__post_init__ still sets hinted (FaultPlan has a __dict__); the declaration only "
        "puts hinted in repr/fields(), which nothing reads, and eq is unchanged since hinted "
        "derives from gates"
    ),
    "retrysim/sim/decide.py:50:15:const:2.0->3.0": (
        "GAVE_UP_NOW is only compared by name (engine `wait >= 0`, `== SUCCEEDED_NOW`, "
        "`assert wait == GAVE_UP_NOW`); -3.0 is still negative and not SUCCEEDED_NOW"
    ),
    "retrysim/sim/decide.py:52:0:stmt:removed": (
        "Clock is a type alias read only in decide.py's annotations, which `from __future__ "
        "import annotations` never evaluates; no module imports it"
    ),
    "retrysim/sim/decide.py:104:4:stmt:removed": (
        "__slots__ on _Failed only drops its __dict__ (memory); nothing sets an attribute "
        "other than `error`"
    ),
    "retrysim/sim/decide.py:117:4:stmt:removed": (
        "__slots__ on _Returned only drops its __dict__ (memory); nothing sets an attribute "
        "other than `value`"
    ),
    "retrysim/sim/decide.py:118:13:const:False->True": (
        "fast-path readers of a returned outcome (wait_retry_after, per_error.latest_family) "
        "ask exception() when failed; it is None for a result, so the answer is the same"
    ),
    "retrysim/sim/decide.py:121:8:stmt:removed": (
        "no strategy the fast path can run (MIRRORED, and the real strategies nested in them)"
        " calls outcome.result(); retry mirrors read `failure`"
    ),
    "retrysim/sim/decide.py:127:8:return:None": (
        "_Returned.result() is never called on the fast path (a retry_if_result policy is "
        "refused there and runs on the reference path)"
    ),
    "retrysim/sim/decide.py:138:4:stmt:removed": (
        "FastCallState __slots__ only save memory (a __dict__ appears); nothing sets an "
        "attribute outside the slots, and weakrefs work either way"
    ),
    "retrysim/sim/decide.py:204:22:const:0->1": (
        "makes stop the wait, so _decide_counted is never installed; decide asks the same "
        "questions in the same order and gives identical records, only slower"
    ),
    "retrysim/sim/decide.py:205:30:const:0->1": (
        "_most_attempts is read only by _decide_counted, which is installed only on the "
        "branch that sets it to max_attempt_number two lines below"
    ),
    "retrysim/sim/decide.py:205:8:stmt:removed": (
        "_most_attempts is unread unless the counted branch runs, and that branch sets it"
    ),
    "retrysim/sim/decide.py:208:12:stmt:removed": (
        "without the counted shortcut the general decide runs; it answers identically for "
        "mirrors plus stop_after_attempt (proved against the reference path), only slower"
    ),
    "retrysim/sim/decide.py:273:20:stmt:removed": (
        "outcome is None before an answer's decide (reset at begin and after each retry); the"
        " only as-is reader (wait_retry_after) treats None like a returned value; retry "
        "mirrors read only failure"
    ),
    "retrysim/sim/decide.py:288:8:stmt:removed": (
        "outcome_timestamp is rewritten at the top of every general decide before any "
        "strategy reads it; nothing reads it between attempts (retries() uses its own probe)"
    ),
    "retrysim/sim/decide.py:301:11:bool:And->Or": (
        "error is always None on the counted path (no guards); a hinted error's cached "
        "verdict equals the hinted one, since every retry mirror judges RateLimitedError by "
        "class alone"
    ),
    "retrysim/sim/decide.py:329:30:const:0->1": (
        "the probe's stream key only matters to draws; it is asked only by the retry (guards "
        "never change it, and MIRRORED adds no retry class), which draws nothing"
    ),
    "retrysim/sim/decide.py:329:33:const:0->1": (
        "the probe's call number only seeds its stream; retry mirrors never draw from it (as "
        "329:30)"
    ),
    "retrysim/sim/decide.py:329:36:const:0.0->1.0": (
        "the probe's start_time is read only by time-based stops; retries() asks only the "
        "retry mirror, which reads failure alone"
    ),
    "retrysim/sim/decide.py:334:12:stmt:removed": (
        "the probe's outcome is read by no retry mirror (they read state.failure only), and "
        "only the retry is asked of the probe"
    ),
    "retrysim/sim/decide.py:340:30:const:0->1": (
        "_verdict's probe is asked only by the retry mirror, which never draws (as 329:30)"
    ),
    "retrysim/sim/decide.py:340:33:const:0->1": (
        "as 340:30: the call number only seeds a stream that no retry mirror draws from"
    ),
    "retrysim/sim/decide.py:340:36:const:0.0->1.0": (
        "no retry mirror reads start_time or seconds_since_start"
    ),
    "retrysim/sim/decide.py:342:12:stmt:removed": (
        "retry mirrors read state.failure (None for an answer) and never outcome, so the "
        "probe's _Returned is never read"
    ),
    "retrysim/sim/decide.py:448:0:stmt:removed": (
        "Decider is used only in decider_for's return annotation (not evaluated under `from "
        "__future__ import annotations`); nothing imports it"
    ),
    "retrysim/sim/fidelity_tiers.py:179:12:return:None": (
        "answer() cuts the call below only at its caller's deadline; by then the caller's "
        "timeout/cut (timer set earlier) has cancelled its shield wait, so no one reads the "
        "TIMEOUT"
    ),
    "retrysim/sim/fidelity_tiers.py:199:4:stmt:removed": (
        "the chain's first runner is top, which skips the only read of rows_above; line 207 "
        "assigns it before any later runner reads it"
    ),
    "retrysim/sim/fidelity_tiers.py:83:35:const:1->0": (
        "with one replica every balance rule's candidates are [0], so it picks phases[0] as "
        "the no-balancer path does; its counts and tried are read by nothing else"
    ),
    "retrysim/sim/fidelity.py:137:19:const:False->True": (
        "ran's initial value is never read: the recorder is first in the chain, so its "
        "before_attempt resets ran before any after_outcome (calls.py: attempting)"
    ),
    "retrysim/sim/fidelity.py:137:8:stmt:removed": (
        "as 137:19: before_attempt always sets ran before after_outcome can read it"
    ),
    "retrysim/sim/fidelity.py:228:24:const:0.0->1.0": (
        "end_time's initial value is never read: main() (or the chaos fleet's incomplete "
        "branch) sets it before result(); lower tiers' end_time is never read"
    ),
    "retrysim/sim/fidelity.py:228:8:stmt:removed": (
        "as 228:24: every path that reaches result() has set end_time"
    ),
    "retrysim/sim/fidelity.py:265:57:const:True->False": (
        "first_calls always returns two arrays of the same length, so strict never fires"
    ),
    "retrysim/sim/fidelity.py:267:8:stmt:removed": (
        "tasks is never empty: clients.count >= 1, every non-Poisson arrival gives each "
        "client a first call, and Poisson is refused"
    ),
    "retrysim/sim/fidelity.py:462:11:cmp:Gt->GtE": (
        "a lone send is only ever cancelled at its own timeout or at the deadline passed down"
        " (exact virtual timers), so now == ends and `now < ends` is false either way"
    ),
    "retrysim/sim/fidelity.py:462:34:const:1->0": (
        "as 462:11: len(group) > 0 differs from > 1 only for a lone send, which is cancelled "
        "only at now == ends"
    ),
    "retrysim/sim/fidelity.py:528:80:const:0->1": (
        "the code in the answer entry is never read: on an answer reach() returns the literal"
        " 0; only a reset uses its own code"
    ),
    "retrysim/sim/fidelity.py:532:35:cmp:Gt->GtE": (
        "at service_time == timeout the added timeout entry ties the answer on delay and "
        "loses on priority (2 > 1), so min() still picks the answer"
    ),
    "retrysim/sim/fidelity.py:533:35:const:2->3": (
        "a timeout entry exists only when timeout < service_time, so it can tie only a reset "
        "(priority 0); 2 and 3 both lose that tie and beat nothing else"
    ),
    "retrysim/sim/fidelity.py:533:49:const:0->1": (
        "the code in the timeout entry is never read: a timeout raises _ClientTimeoutError; "
        "only a reset uses its own code"
    ),
    "retrysim/sim/fidelity.py:540:8:return:None": (
        "reach()'s result reaches only operation(), via request(), as `await "
        "self.request(...) or 0`: None and 0 both give 0; the chaos subclasses override "
        "request() and never call reach()"
    ),
    "retrysim/sim/fidelity.py:282:11:cmp:Gt->GtE": (
        "finish == now only after every timer due now has fired (all fire in one batch before"
        " main resumes); the extra call_at(now) round runs nothing that touches a record"
    ),
    "retrysim/sim/fidelity.py:392:39:bool:And->Or": (
        "last (set by every send or refusal that ends) holds the error the call raised, so "
        "rejected(last) == code_of(error); an instrumented search of about 960 tie-prone runs"
        " found no exception"
    ),
    "retrysim/sim/fidelity.py:417:21:const:True->False": (
        "fresh is read only in operation(); before a call's first send its group is empty "
        "(sends=0 whatever hedge says), or a refusal was followed by tenacity's sleep, which "
        "sets fresh"
    ),
    "retrysim/sim/fidelity.py:421:11:cmp:Lt->LtE": (
        "it only stores deadline=inf; its two readers (cancelled, TierLink.deadline_of) use "
        "record.get(deadline, math.inf), so a stored inf equals the default"
    ),
    "retrysim/sim/foreign_libraries.py:166:12:return:None": (
        "None for False from the stamina hook retry: tenacity's iter, retry_any/all, probe() "
        "and decide.py's bool() only read its truth"
    ),
    "retrysim/sim/foreign_libraries.py:365:46:cmp:GtE->Gt": (
        "fib never falls once it reaches max_value and the return clamps any value >= "
        "max_value to it: breaking at > instead of >= returns the same value, one step later"
    ),
    "retrysim/sim/foreign_libraries.py:368:64:cmp:GtE->Gt": (
        "differs only when the value equals max_value, returning the same number (int for "
        "float); every consumer (float(), uniform, +, sleep) reads them alike"
    ),
    "retrysim/sim/foreign_libraries.py:93:68:const:True->False": (
        "CPython keeps len(__closure__) == len(co_freevars) for every function and bound "
        "method, so zip's strict check never trips"
    ),
    "retrysim/sim/wait_samples.py:51:7:cmp:LtE->Lt": (
        "at retries == 0 the mutant only runs an empty range(1, 1) per sample (the stream set"
        " and reset) and returns the same (samples, 0) array"
    ),
    "retrysim/sim/graph.py:81:37:const:0->1": (
        "a tier's call limit of 1 for 0: _end_call returns when call.index + 1 >= the limit, "
        "true for every index >= 0 either way; nothing else reads it below the top"
    ),
    "retrysim/sim/graph.py:116:15:cmp:Lt->LtE": (
        "also stores infinite deadlines, but every read is _deadlines.get(id, inf), the same "
        "value, and the entry is popped when the call ends"
    ),
    "retrysim/sim/graph.py:161:30:cmp:Lt->LtE": (
        "the two differ only when deadline - t == timeout, and then both branches return that"
        " same value"
    ),
    "retrysim/sim/graph.py:171:60:const:True->False": (
        "chain() and tier_names always have the same length (one engine per tier), so zip's "
        "strict check never raises"
    ),
    "retrysim/sim/hedging.py:46:36:const:1->0": (
        "a default in the HedgeHost Protocol stub, never called: calls go to Engine._send "
        "with its own defaults, and hedging passes all five arguments"
    ),
    "retrysim/sim/hedging.py:46:50:const:0.0->1.0": (
        "a default of the HedgeHost Protocol stub, which no call uses (Engine._send has its own)"
    ),
    "retrysim/sim/hedging.py:46:64:const:0->1": (
        "a default of the HedgeHost Protocol stub, which no call uses (Engine._send has its own)"
    ),
    "retrysim/sim/hedging.py:59:4:stmt:removed": (
        "HedgeGroup.__slots__ only drops the per-instance __dict__; nothing sets an attribute"
        " outside the slots"
    ),
    "retrysim/sim/hedging.py:71:4:stmt:removed": (
        "Hedges.__slots__ only drops the per-instance __dict__; built only by Engine with its"
        " slot attributes"
    ),
    "retrysim/sim/hedging.py:126:11:bool:Or->And": (
        "settle only sees a send whose row is in its call's live group (a group opens before "
        "its first send and goes only when none is open)"
    ),
    "retrysim/sim/hedging.py:127:12:return:None": (
        "unreachable: every settle call finds the send in its call's group (see 126:11; a spy"
        " over every bundled scenario with hedging on never saw otherwise)"
    ),
    "retrysim/sim/hedging.py:127:19:const:True->False": ("unreachable line, as for 127:12"),
    "retrysim/sim/hedging.py:143:12:return:None": (
        "None for False: the only caller (Engine._hear) tests `not settle(...)`, where the "
        "two act the same"
    ),
    "retrysim/sim/hedging.py:146:12:return:None": (
        "None for False: the only caller (Engine._hear) tests `not settle(...)`, where the "
        "two act the same"
    ),
    "retrysim/sim/hedging.py:172:12:return:None": (
        "unreachable: replicas_of is called only from _route, after open_group (first send) "
        "or with the group live (a hedge's dispatch)"
    ),
    "retrysim/sim/hedging.py:172:19:const:0->1": ("unreachable line, as for 172:12"),
    "retrysim/sim/sharing.py:41:4:stmt:removed": (
        "Sharing.__slots__ only drops the per-instance __dict__; nothing sets an attribute "
        "outside the slots"
    ),
    "retrysim/sim/sharing.py:59:20:const:0.0->1.0": (
        "the first add advances with no job present, so (now - last) is multiplied by a rate "
        "of 0, and sets last to now: its first value is never read otherwise"
    ),
    "retrysim/sim/sharing.py:63:25:const:0->1": (
        "sequence numbers only break ties and make default keys, by their order and "
        "uniqueness, both kept from 1; no caller mixes its own keys with default ones on one "
        "Sharing"
    ),
    "retrysim/sim/sharing.py:97:48:const:True->False": (
        "settling only batches one instant's reschedules: each one made inside is cancelled "
        "by the one on the way out before the kernel runs it, and cancelled events never "
        "count"
    ),
    "retrysim/sim/sharing.py:115:12:stmt:removed": (
        "a stale handle kept after its cancel is only cancelled again: the kernel never "
        "reuses a sequence number, so cancelling twice changes nothing but a set's size"
    ),
    "retrysim/sim/sharing.py:121:12:stmt:removed": (
        "the loop above already emptied the heap: with no job present, every tag belongs to "
        "one that is not"
    ),
    "retrysim/sim/sharing.py:128:8:stmt:removed": (
        "keeping the fired event's handle only cancels it once more on the way out: a fired "
        "sequence number never surfaces again, so the cancel changes nothing but a set's size"
    ),
    "retrysim/sim/invariants.py:101:22:const:18->19": (
        "SEQUENCE_BLOCK only sizes the blocks: every consecutive pair of rows is checked in "
        "some block whatever the size, so the laws found are the same; only memory differs"
    ),
    "retrysim/sim/invariants.py:115:24:arith:Sub->Add": (
        "the extra blocks start at rows - 1 or later and hold at most one row: no pair of "
        "rows to check"
    ),
    "retrysim/sim/invariants.py:115:31:const:1->0": (
        "the only extra block starts at rows - 1 and holds one row: no pair of rows to check"
    ),
    "retrysim/sim/invariants.py:116:28:minmax:min->max": (
        "every block runs to the last row: each pair is still checked (some twice) into a "
        "set, so the result is the same; only memory grows"
    ),
    "retrysim/sim/invariants.py:40:14:cmp:Gt->GtE": (
        "hedge is unsigned, so >= 0 always holds; with no hedge rows _attempts_of_hedged "
        "returns every row unchanged and in order"
    ),
    "retrysim/sim/invariants.py:75:23:const:1->0": (
        "with one attempt row, _sequence_violations loops over an empty range(0, 0) and finds"
        " nothing, as skipping it does"
    ),
    "retrysim/sim/invariants.py:75:7:cmp:Gt->GtE": (
        "the only extra case is one row, where range(0, rows - 1) is empty and nothing is found"
    ),
    "retrysim/sim/routing.py:79:76:const:1->0": (
        "len(gates) == 0 cannot hold there (not plan.gates is checked first), so a lone gate "
        "goes through plan.gate, which returns that gate's own verdict"
    ),
    "retrysim/sim/kernel.py:39:4:stmt:removed": (
        "Kernel.__slots__ only drops the per-instance __dict__; nothing reads or sets an "
        "attribute outside the slots"
    ),
    "retrysim/sim/kernel.py:44:19:const:0->1": (
        "event handles shift by one but stay unique and ordered: they are only passed back to"
        " cancel or compared in the heap, and halt's -1 still sorts first"
    ),
    "retrysim/sim/records.py:153:60:const:True->False": (
        "fields and columns are built from the same list, one column per field, so zip's "
        "strict check never trips"
    ),
    "retrysim/sim/records.py:160:56:const:True->False": (
        "fields and columns are built from the same list, one column per field, so zip's "
        "strict check never trips"
    ),
    "retrysim/sim/records.py:161:12:stmt:removed": (
        "every column was cut to nothing in the loop above: a fresh empty array of the same "
        "typecode reads the same (only the old one's spare room is freed)"
    ),
    "retrysim/sim/foreign.py:142:35:const:0.0->1.0": (
        "min()'s default applies only to an empty sequence, and probe always returns "
        "PROBED_RETRIES (12) wait ranges"
    ),
    "retrysim/sim/foreign.py:143:36:const:0.0->1.0": (
        "max()'s default applies only to an empty sequence, and probe always returns "
        "PROBED_RETRIES (12) wait ranges"
    ),
    "retrysim/sim/foreign.py:225:4:stmt:removed": (
        "tenacity's RetryCallState.__init__ already sets upcoming_sleep = 0.0: setting it "
        "again on a fresh state changes nothing"
    ),
    "retrysim/sim/foreign.py:363:53:const:1e+18->1e+18": (
        "1e18 + 1 rounds to the same float as 1e18, so the comparison is the same"
    ),
    "retrysim/sim/foreign.py:72:4:stmt:removed": (
        "without the line ForeignProfile inherits Profile.floors_by_default, which is False too"
    ),
    "retrysim/sim/connected.py:99:51:cmp:Gt->GtE": (
        "with verdict 0 every gate passed, so hint() finds no failing gate and returns None, "
        "as not asking does (gates are pure functions of time, call and attempt)"
    ),
    "retrysim/sim/connected.py:99:61:const:0->1": (
        "a Retry-After hint goes only with RateLimited (the schema refuses it with any other "
        "error), never with code 1 (ConnectionError): hint() gives None for it either way"
    ),
    "retrysim/sim/service.py:333:37:const:1->0": (
        "a refusal has tokens below 1 - 1e-9, so exact = (1 - tokens) / rate is above 0 and "
        "its ceiling at least 1: max(1, ·) and max(0, ·) agree"
    ),
    "retrysim/sim/connections.py:104:32:arith:Add->Sub": (
        "take() reaches this test only when idle_open is 0 (the branch above returns "
        "otherwise, and it never goes below 0), so in_use + 0 == in_use - 0"
    ),
    "retrysim/sim/connections.py:124:4:stmt:removed": (
        "Cpu.__slots__ only drops the per-instance __dict__; nothing sets an attribute "
        "outside the slots"
    ),
    "retrysim/sim/connections.py:131:23:cmp:Gt->GtE": (
        "> and >= differ only when now == free_at, and then both branches give the same value"
    ),
    "retrysim/sim/connections.py:179:25:const:1.0->0.0": (
        "syn_retry is read only in _let_in, called only with a backlog, which needs a "
        "network; this default applies only without a network"
    ),
    "retrysim/sim/connections.py:90:4:stmt:removed": (
        "Pool.__slots__ only drops the per-instance __dict__; nothing sets an attribute "
        "outside the slots"
    ),
    "retrysim/sim/engine.py:148:8:stmt:removed": (
        "_pending_done is read only in _send, always after _send itself has set it to None: "
        "no input can read the unset slot"
    ),
    "retrysim/sim/engine.py:149:8:stmt:removed": (
        "_attempt_limit is read only in _send, which runs only as a kernel event; run() sets "
        "it on every engine in the chain before the kernel runs"
    ),
    "retrysim/sim/engine.py:158:12:stmt:removed": (
        "FastDecider.again always returns True, so _retry runs _attempt, which with no guards"
        " goes straight to _send: the same calls, one step longer"
    ),
    "retrysim/sim/engine.py:263:16:stmt:removed": (
        "only frees the private arrival arrays early: nothing reads them after the last "
        "arrival and _result deletes them anyway"
    ),
    "retrysim/sim/engine.py:57:0:stmt:removed": (
        "NAN is used nowhere (engine.py, retrysim, tests, scripts)"
    ),
    "retrysim/sim/engine.py:79:4:stmt:removed": (
        "the base classes (TierLinks, ReplicaRouting, ConnectedPath) have no __slots__, so an"
        " Engine has a __dict__ either way: speed only"
    ),
    "retrysim/sim/routing.py:121:67:const:True->False": (
        "plans and servers are built together, one of each per replica, so zip's strict check"
        " never trips"
    ),
    "retrysim/sim/engine.py:306:8:stmt:removed": (
        "decider.end only drops per-call state (strategies, last error, retry_state) that "
        "nothing reads after the call ends: only peak memory differs"
    ),
    "retrysim/sim/engine.py:308:12:stmt:removed": (
        "_tried is keyed by call id, never reused and never read after the call ends: only "
        "memory differs"
    ),
    "retrysim/sim/engine.py:310:12:stmt:removed": (
        "every path to _end_call has already removed the call's hedge group, so forget never "
        "finds one (checked over 11,066 hedged call ends)"
    ),
    "retrysim/sim/engine.py:336:50:const:0.0->1.0": (
        "the default t is never read: with a < 0 it is reset to now first, and the only "
        "caller with a >= 0 (hedging's dispatch) passes t"
    ),
    "retrysim/sim/engine.py:336:64:const:0->1": (
        "the default n is never read: with a < 0 it is set to the call's attempt number "
        "first, and hedging passes n"
    ),
    "retrysim/sim/engine.py:345:11:cmp:Lt->LtE": (
        "a is -1 or a hedge's row, which comes after its attempt's first row and so is at "
        "least 1: a == 0 never reaches _send"
    ),
    "retrysim/sim/engine.py:345:15:const:0->1": (
        "a < 1 and a < 0 agree on every value _send gets (-1, or a hedge's row, at least 1)"
    ),
}

PYTEST_ARGS = ("-x", "-q", "-p", "no:cacheprovider", "-n", "0", "-m", "not slow")
LOG_NAMES = frozenset({"log", "logger", "_log", "_logger", "logging", "LOG", "LOGGER", "warnings"})
LOG_METHODS = frozenset({"debug", "info", "warning", "warn", "error", "exception", "critical"})
BIN_SWAPS: dict[type[ast.operator], type[ast.operator]] = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Div,
    ast.Div: ast.Mult,
    ast.FloorDiv: ast.Div,
    ast.Mod: ast.FloorDiv,
    ast.Pow: ast.Mult,
}
CMP_SWAPS: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
}


@dataclasses.dataclass(frozen=True)
class Mutant:
    """One edit: replace source[start:end] (character offsets) by ``replacement``."""

    path: str
    line: int
    col: int
    operator: str
    start: int
    end: int
    replacement: str

    @property
    def id(self) -> str:
        return f"{self.path}:{self.line}:{self.col}:{self.operator}"

    def apply(self, source: str) -> str:
        return source[: self.start] + self.replacement + source[self.end :]

    def diff(self, source: str) -> str:
        lines = difflib.unified_diff(
            source.splitlines(keepends=True),
            self.apply(source).splitlines(keepends=True),
            f"a/{self.path}",
            f"b/{self.path}",
            n=1,
        )
        return "".join(lines)


def _name(op: object) -> str:
    return type(op).__name__


def _is_log_call(node: ast.AST) -> bool:
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    if isinstance(func, ast.Attribute) and func.attr in LOG_METHODS | {"warn", "log"}:
        base = func.value
        return isinstance(base, ast.Name) and base.id in LOG_NAMES
    return False


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _skipped_children(node: ast.AST) -> set[int]:
    """ids of the children of ``node`` that are never mutated (annotations, cast's type)."""
    skip: list[ast.AST | None] = []
    if isinstance(node, ast.arg):
        skip.append(node.annotation)
    elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        skip.append(node.returns)
    elif isinstance(node, ast.AnnAssign):
        skip.append(node.annotation)
    elif (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in {"cast", "TypeVar", "NewType"}
    ):
        skip.extend(node.args[:1])
    return {id(child) for child in skip if child is not None}


def _walk(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node worth mutating, in source order, skipping what must not be mutated."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Assert | ast.JoinedStr) or _is_log_call(node):
            continue
        if _is_type_checking(node):
            continue
        yield node
        skip = _skipped_children(node)
        children = [c for c in ast.iter_child_nodes(node) if id(c) not in skip]
        stack.extend(reversed(children))


def _docstrings(tree: ast.AST) -> set[int]:
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0]))
    return found


class _Source:
    """Character offsets from the ast's (line, UTF-8 byte column) positions."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.lines = text.splitlines(keepends=True)
        self.starts = [0]
        for line in self.lines:
            self.starts.append(self.starts[-1] + len(line))

    def offset(self, line: int, byte_col: int) -> int:
        raw = self.lines[line - 1].encode()[:byte_col]
        return self.starts[line - 1] + len(raw.decode())

    def span(self, node: ast.AST) -> tuple[int, int]:
        start = self.offset(node.lineno, node.col_offset)  # type: ignore[attr-defined]
        end = self.offset(node.end_lineno, node.end_col_offset)  # type: ignore[attr-defined]
        return start, end


def _constant_swaps(value: object) -> list[object]:
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        return [1] if value == 0 else [0] if value == 1 else [value + 1]
    if isinstance(value, float):
        return [1.0] if value == 0.0 else [0.0] if value == 1.0 else [value + 1]
    return []


def _is_string(node: ast.AST) -> bool:
    return isinstance(node, ast.JoinedStr) or (
        isinstance(node, ast.Constant) and isinstance(node.value, str | bytes)
    )


def _edits(node: ast.AST, docstrings: set[int]) -> Iterator[tuple[str, ast.AST, str]]:
    """(operator, the node replaced, its replacement's source) for one node."""
    if isinstance(node, ast.BinOp) and type(node.op) in BIN_SWAPS:
        if not (_is_string(node.left) or _is_string(node.right)):
            new = BIN_SWAPS[type(node.op)]()
            mutated = ast.BinOp(node.left, new, node.right)
            yield f"arith:{_name(node.op)}->{_name(new)}", node, f"({ast.unparse(mutated)})"
    elif isinstance(node, ast.AugAssign) and type(node.op) in BIN_SWAPS:
        new = BIN_SWAPS[type(node.op)]()
        aug = ast.AugAssign(node.target, new, node.value)
        yield f"arith:{_name(node.op)}->{_name(new)}", node, ast.unparse(aug)
    elif isinstance(node, ast.Compare):
        for i, op in enumerate(node.ops):
            if type(op) in CMP_SWAPS:
                ops = list(node.ops)
                ops[i] = CMP_SWAPS[type(op)]()
                mutated_cmp = ast.Compare(node.left, ops, node.comparators)
                tag = f"cmp:{_name(op)}->{_name(ops[i])}" + (f"#{i}" if i else "")
                yield tag, node, f"({ast.unparse(mutated_cmp)})"
    elif isinstance(node, ast.BoolOp):
        other: ast.boolop = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        mutated_bool = ast.BoolOp(other, node.values)
        yield f"bool:{_name(node.op)}->{_name(other)}", node, f"({ast.unparse(mutated_bool)})"
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        yield "bool:not-removed", node, f"({ast.unparse(node.operand)})"
    elif isinstance(node, ast.Constant) and id(node) not in docstrings:
        for value in _constant_swaps(node.value):
            yield f"const:{node.value!r}->{value!r}", node, f"({value!r})"
    elif (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in {"min", "max"}
    ):
        swapped = "max" if node.func.id == "min" else "min"
        yield f"minmax:{node.func.id}->{swapped}", node.func, swapped
    elif isinstance(node, ast.Return) and node.value is not None:
        returns_none = isinstance(node.value, ast.Constant) and node.value.value is None
        if not returns_none:
            yield "return:None", node, "return None"
    if isinstance(node, ast.Expr | ast.Assign | ast.AugAssign | ast.AnnAssign):
        if id(node) in docstrings or _is_log_call(node.value if node.value else node):
            return
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            return  # a bare string or `...`
        if isinstance(node, ast.AnnAssign) and node.value is None:
            return  # a declaration, no behaviour
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            return
        yield "stmt:removed", node, "pass"


def mutants_of(source: str, path: str) -> list[Mutant]:
    """Every mutant of one module's source, in source order, each one compiling."""
    tree = ast.parse(source)
    text = _Source(source)
    docstrings = _docstrings(tree)
    found: dict[str, Mutant] = {}
    for node in _walk(tree):
        for operator, target, replacement in _edits(node, docstrings):
            start, end = text.span(target)
            line, col = target.lineno, target.col_offset  # type: ignore[attr-defined]
            mutant = Mutant(path, line, col, operator, start, end, replacement)
            if mutant.id in found:
                continue
            mutated = mutant.apply(source)
            if mutated == source:
                continue
            try:
                compile(mutated, path, "exec")
            except SyntaxError:
                continue
            found[mutant.id] = mutant
    return list(found.values())


# -- running ------------------------------------------------------------------------------------


def copy_project(root: Path, into: Path) -> Path:
    """A copy of the project to mutate: sources, tests and scenarios, no caches or VCS."""
    ignore = shutil.ignore_patterns(
        ".git", ".venv", "__pycache__", ".hypothesis", "*.png", "notebooks", ".mypy_cache"
    )
    dest = into / "project"
    shutil.copytree(root, dest, ignore=ignore)
    return dest


def preload() -> None:
    """Import the heavy third-party packages once, before any fork (never retrysim itself)."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ["HYPOTHESIS_PROFILE"] = "mutation"
    heavy = (
        "numpy",
        "pydantic",
        "pydantic_settings",
        "tenacity",
        "hypothesis",
        "pytest",
        "coverage",
    )
    for name in heavy:
        with contextlib.suppress(ImportError):
            __import__(name)
    if any(name == "retrysim" or name.startswith("retrysim.") for name in sys.modules):
        raise RuntimeError("retrysim was imported before forking: mutants would not load")


KILLER = ".mutant-killer"  # in a copy: the node id of the first test that failed there


class _FirstFailure:
    """A pytest plugin writing the first failed test's (or file's) node id to ``KILLER``."""

    def __init__(self, project: Path) -> None:
        self.path = project / KILLER

    def _keep(self, report: Any) -> None:
        if report.failed and not self.path.exists():
            self.path.write_text(report.nodeid, encoding="utf-8")

    def pytest_runtest_logreport(self, report: Any) -> None:
        self._keep(report)

    def pytest_collectreport(self, report: Any) -> None:
        self._keep(report)


def _child(project: Path, tests: Sequence[str], trace: tuple[Path, str] | None) -> None:
    os.setpgid(0, 0)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)
    code = 3
    try:
        import pytest

        os.chdir(project)
        sys.path.insert(0, str(project))
        sys.dont_write_bytecode = True
        os.environ["PYTHONPATH"] = str(project)
        os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
        if trace is None:
            code = int(pytest.main([*PYTEST_ARGS, *tests], plugins=[_FirstFailure(project)]))
        else:
            code = _traced(project, tests, *trace)
    finally:
        os._exit(code)


def _traced(project: Path, tests: Sequence[str], trace: Path, source_path: str) -> int:
    """Run ``tests`` under coverage.py, each test's lines of ``source_path`` kept under its
    node id as context, and each test's run time beside them.

    Lines run outside any test (at import or collection) keep the empty context: a mutant there
    can change what every test sees, so it gets all of them (see ``Coverage.tests_for``)."""
    import coverage
    import pytest

    cov = coverage.Coverage(data_file=str(trace), include=[str(project / source_path)])
    seconds: dict[str, float] = {}
    module: dict[str, Any] = {}

    class Contexts:
        @pytest.hookimpl(wrapper=True)
        def pytest_runtest_protocol(self, item: pytest.Item) -> object:
            _clear_caches(project / source_path, module)
            cov.switch_context(item.nodeid)
            started = time.monotonic()
            try:
                return (yield)
            finally:
                seconds[item.nodeid] = time.monotonic() - started
                cov.switch_context("")

    cov.start()
    try:
        plugins = [Contexts(), _FirstFailure(project)]
        return int(pytest.main([*PYTEST_ARGS, *tests], plugins=plugins))
    finally:
        cov.stop()
        cov.save()
        trace.with_suffix(".seconds").write_text(json.dumps(seconds))


def _clear_caches(source: Path, found: dict[str, Any]) -> None:
    """Empty every ``functools`` cache of the module at ``source``, once it is imported: a
    cached function runs its lines for the first test that calls it only, so without this
    every later test that depends on those lines would be left out of their selection (and a
    mutant there would be run against a test that never reaches it: a false survivor).
    ``found`` keeps the module once it was looked up."""
    if "module" not in found:
        resolved = str(source.resolve())
        for module in list(sys.modules.values()):
            file = getattr(module, "__file__", None)
            if file and str(Path(file).resolve()) == resolved:
                found["module"] = module
                break
        else:
            return  # not imported yet: nothing cached either
    for value in list(vars(found["module"]).values()):
        clear = getattr(value, "cache_clear", None)
        if callable(clear):
            clear()


def run_tests(project: Path, tests: Sequence[str], timeout: float) -> str:
    """'passed', 'failed' or 'timeout': the tests run in a forked child on ``project``."""
    pid = _spawn(project, tests)
    return _reap({pid: (None, project, time.monotonic() + timeout)})[1]


class Coverage:
    """Which of a module's tests run which of its lines, so a mutant runs only the tests that
    reach it. Most mutants of a big module are reached by a few of its tests, so this cuts a
    full run several times over (docs/mutation.md has the figures).

    A test that does not run a mutated line cannot see the edit, with two exceptions, and both
    only make the rate look worse, never better: a line reached only in a subprocess (a CLI
    test) or only through state an earlier test left behind. A mutant on a line no test
    reached, or reached at import, runs all the module's tests as before; ``--mutant`` and
    ``--all-tests`` always do."""

    def __init__(
        self,
        source: str,
        lines: Mapping[int, Sequence[str]] | None,
        seconds: Mapping[str, float] | None = None,
    ) -> None:
        self.lines = lines
        self.seconds = dict(seconds or {})  # node id -> its run time in the measuring run
        self.statements = _statement_heads(ast.parse(source))

    @classmethod
    def measure(
        cls, project: Path, source_path: str, tests: Sequence[str], timeout: float
    ) -> tuple[Coverage, str]:
        """Run ``tests`` once under coverage on ``project``: the map, and the run's verdict."""
        trace = project.parent / ".mutate-coverage"
        source = (project / source_path).read_text()
        pid = _spawn(project, tests, (trace, source_path))
        verdict = _reap({pid: (None, project, time.monotonic() + timeout)})[1]
        lines: dict[int, Sequence[str]] | None = None
        seconds: dict[str, float] = {}
        if trace.exists():
            import coverage

            data = coverage.CoverageData(basename=str(trace))
            data.read()
            measured = data.contexts_by_lineno(str((project / source_path).resolve()))
            lines = {line: sorted(contexts) for line, contexts in measured.items()}
            seconds = json.loads(trace.with_suffix(".seconds").read_text())
            trace.unlink()
            trace.with_suffix(".seconds").unlink()
        return cls(source, lines, seconds), verdict

    def tests_for(self, mutant: Mutant, everything: Sequence[str]) -> Sequence[str]:
        """The tests that reach ``mutant``'s statement, quickest first (``-x`` stops at the
        first failure, and most mutants fail early); all of ``everything`` when unsure."""
        if self.lines is None:
            return everything
        statement = self._statement(mutant)
        reached = self._reached(statement.first, statement.head_end)
        if "" in reached and statement.function:
            # A def's head runs at import, but its defaults and decorators act only when the
            # function is called: the tests that run its body are the ones that can tell.
            reached = self._reached(statement.head_end + 1, statement.end)
        if not reached or "" in reached:
            reached = set(self.seconds)  # every test, still quickest first
        if not reached:
            return everything
        return sorted(reached, key=lambda test: (self.seconds.get(test, 0.0), test))

    def _reached(self, first: int, last: int) -> set[str]:
        assert self.lines is not None
        reached: set[str] = set()
        for line in range(first, last + 1):
            reached.update(self.lines.get(line, ()))
        return reached

    def _statement(self, mutant: Mutant) -> _Statement:
        """The innermost statement holding the mutant."""
        inside = [s for s in self.statements if s.first <= mutant.line <= s.end]
        if not inside:
            return _Statement(mutant.line, mutant.line, mutant.line, function=False)
        return max(inside, key=lambda s: (s.first, -s.end))


@dataclasses.dataclass(frozen=True)
class _Statement:
    first: int  # its first line, decorators included
    head_end: int  # a compound statement's head ends before its body; a simple one's is all
    end: int
    function: bool


def _statement_heads(tree: ast.AST) -> list[_Statement]:
    """Every statement's lines."""
    heads = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.stmt):
            continue
        decorators = getattr(node, "decorator_list", [])
        first = min([node.lineno, *(d.lineno for d in decorators)])
        end = node.end_lineno or node.lineno
        body = getattr(node, "body", None)
        head_end = body[0].lineno - 1 if isinstance(body, list) and body else end
        function = isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        heads.append(_Statement(first, max(first, head_end), end, function))
    return heads


@dataclasses.dataclass
class Tally:
    module: str
    mutants: int = 0
    killed: int = 0
    timeout: int = 0
    survived: list[str] = dataclasses.field(default_factory=list)
    equivalent: list[str] = dataclasses.field(default_factory=list)
    verdicts: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def rate(self) -> float:
        counted = self.mutants - len(self.equivalent)
        return 100.0 * (self.killed + self.timeout) / counted if counted else 100.0

    def as_dict(self) -> dict[str, object]:
        return {
            "module": self.module,
            "mutants": self.mutants,
            "killed": self.killed,
            "timed_out": self.timeout,
            "survived": self.survived,
            "equivalent": self.equivalent,
            "kill_rate": round(self.rate, 1),
        }


class Journal:
    """Verdicts kept in a JSON-lines file, so a run too long for one sitting goes on later.

    A line holds a mutant's id, its raw verdict ('failed', 'timeout' or 'passed') and the hash
    of what decided it: the module's source and its test files (with tests/conftest.py). A
    verdict is reused only while both are unchanged; a mutant of an edited module, or one whose
    tests changed, runs again. Each verdict is appended as soon as it is known (a killed run
    loses at most the mutants then running). Tests also import other modules, so a verdict can
    go stale through a change elsewhere: a run without ``--journal`` trusts nothing.

    A kill also keeps the test file whose test failed first, and a second hash of only the
    module, that file and tests/conftest.py. A kill rests on nothing else, so it stands while
    those three are unchanged and the file is still in the module's row, whatever else its row
    gains: a test added for one survivor does not send every killed mutant round again.

    With ``recheck_timeouts`` a kept 'timeout' is not trusted: the mutant runs again. A mutant
    whose tests outran their time on a machine busy with other work is not thereby a mutant
    that hangs (one of ``routing`` was "killed" that way), and the re-run gets more time
    (:data:`RECHECK_PATIENCE`).
    """

    def __init__(self, path: Path, recheck_timeouts: bool = False) -> None:
        self.path = path
        self.recheck_timeouts = recheck_timeouts
        self.known: dict[tuple[str, str], str] = {}
        self.kills: dict[str, set[tuple[str, str]]] = {}  # mutant -> {(killer file, its basis)}
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    entry = json.loads(line)
                    self.known[(entry["mutant"], entry["basis"])] = entry["verdict"]
                    if "killer" in entry:
                        kill = (entry["killer"], entry["killer_basis"])
                        self.kills.setdefault(entry["mutant"], set()).add(kill)

    @staticmethod
    def basis(root: Path, source_path: str, tests: Sequence[str]) -> str:
        """The hash of what a verdict rests on: the module's source and its test files."""
        digest = hashlib.sha256()
        files = [source_path, "tests/conftest.py", *(t.partition("::")[0] for t in tests)]
        for name in dict.fromkeys(files):
            path = root / name
            content = path.read_bytes() if path.is_file() else b"(absent)"
            digest.update(name.encode() + b"\0" + content + b"\0")
        return digest.hexdigest()[:16]

    def verdict(
        self, mutant: Mutant, basis: str, where: tuple[Path, str, Sequence[str]] | None = None
    ) -> str | None:
        """The verdict kept for ``mutant`` under ``basis``; else, with ``where`` (the root,
        the module's path and its row of tests), 'failed' if a kept kill still stands."""
        known = self.known.get((mutant.id, basis))
        if known == "timeout" and self.recheck_timeouts:
            return None
        if known is not None or where is None:
            return known
        root, source_path, tests = where
        row = {test.partition("::")[0] for test in tests}
        for killer, killer_basis in self.kills.get(mutant.id, ()):
            if killer in row and Journal.basis(root, source_path, [killer]) == killer_basis:
                return "failed"
        return None

    def record(
        self,
        mutant: Mutant,
        basis: str,
        verdict: str,
        killer: tuple[str, str] | None = None,
    ) -> None:
        """Append ``verdict``; ``killer`` is the failing test file of a kill and its basis."""
        self.known[(mutant.id, basis)] = verdict
        entry = {"mutant": mutant.id, "basis": basis, "verdict": verdict}
        if killer is not None:
            entry["killer"], entry["killer_basis"] = killer
            self.kills.setdefault(mutant.id, set()).add(killer)
        with self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(entry) + "\n")


def campaign(
    root: Path,
    module: str,
    source_path: str,
    tests: Sequence[str],
    mutants: Sequence[Mutant],
    jobs: int = 1,
    echo: bool = True,
    journal: Journal | None = None,
    select_tests: bool = True,
    patience: float = 3.0,
) -> Tally:
    """Run each mutant's tests from a temporary copy of ``root``; ``jobs`` copies at most.
    With a ``journal``, a mutant it holds a valid verdict for is counted without a run, and
    each new verdict is written to it. With ``select_tests`` (and coverage.py installed), a
    mutant runs only the tests that reach its statement (``Coverage``). A mutant's tests may
    take ``patience`` times the unmutated run's time, plus ten seconds (:func:`_timeout`)."""
    tally = Tally(module)
    basis = Journal.basis(root, source_path, tests) if journal is not None else ""
    if journal is not None:
        left = []
        for mutant in mutants:
            known = journal.verdict(mutant, basis, (root, source_path, tests))
            if known is None:
                left.append(mutant)
            else:
                _count(tally, mutant, known, echo)
        mutants = left
        if not mutants:
            return tally
    original = (root / source_path).read_text()
    with tempfile.TemporaryDirectory(prefix="retrysim-mutate-") as tmp:
        copies = [copy_project(root, Path(tmp) / str(i)) for i in range(max(1, jobs))]
        started = time.monotonic()
        if select_tests and importlib.util.find_spec("coverage") is not None:
            reach, baseline = Coverage.measure(copies[0], source_path, tests, timeout=900)
        else:
            reach, baseline = Coverage(original, None), run_tests(copies[0], tests, timeout=600)
        if baseline != "passed":
            failed = _killer(copies[0], root, source_path)
            first = (copies[0] / KILLER).read_text() if failed else "no test reported"
            raise RuntimeError(f"{module}: the tests fail on the unmutated copy ({first})")
        timeout = _timeout(time.monotonic() - started, patience)
        free = list(copies)
        running: dict[int, tuple[Mutant, Path, float]] = {}
        queue = list(mutants)
        while queue or running:
            while queue and free:
                mutant, project = queue.pop(0), free.pop()
                (project / source_path).write_text(mutant.apply(original))
                (project / KILLER).unlink(missing_ok=True)
                pid = _spawn(project, reach.tests_for(mutant, tests))
                running[pid] = (mutant, project, time.monotonic() + timeout)
            pid, verdict = _reap(running)
            mutant, project, _ = running.pop(pid)
            (project / source_path).write_text(original)
            free.append(project)
            _count(tally, mutant, verdict, echo)
            if journal is not None:
                killer = _killer(project, root, source_path) if verdict == "failed" else None
                journal.record(mutant, basis, verdict, killer)
    return tally


def _killer(project: Path, root: Path, source_path: str) -> tuple[str, str] | None:
    """The test file whose test failed first in ``project``'s last run, and its kill basis."""
    try:
        nodeid = (project / KILLER).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None  # the run died before any test reported
    killer = nodeid.partition("::")[0]
    if not (root / killer).is_file():
        return None
    return killer, Journal.basis(root, source_path, [killer])


#: How many times the unmutated run's time a re-checked timeout gets (``--recheck-timeouts``).
RECHECK_PATIENCE = 6.0


def _timeout(baseline: float, patience: float = 3.0) -> float:
    """Seconds a mutant's tests may take: ``patience`` times the unmutated run, plus ten."""
    return patience * baseline + 10


def _spawn(project: Path, tests: Sequence[str], trace: tuple[Path, str] | None = None) -> int:
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        _child(project, tests, trace)
    return pid


def _reap(running: Mapping[int, tuple[object, Path, float]]) -> tuple[int, str]:
    while True:
        for pid, (_, _, deadline) in running.items():
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return pid, "passed" if os.waitstatus_to_exitcode(status) == 0 else "failed"
            if time.monotonic() > deadline:
                for target in (-pid, pid):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(target, signal.SIGKILL)
                os.waitpid(pid, 0)
                return pid, "timeout"
        time.sleep(0.02)


def _count(tally: Tally, mutant: Mutant, verdict: str, echo: bool) -> None:
    tally.mutants += 1
    tally.verdicts[mutant.id] = {"failed": "killed", "timeout": "timed out"}.get(
        verdict, "survived"
    )
    if verdict == "failed":
        tally.killed += 1
    elif verdict == "timeout":
        tally.timeout += 1
    elif mutant.id in EQUIVALENT:
        tally.equivalent.append(mutant.id)
    else:
        tally.survived.append(mutant.id)
    if echo:
        mark = {"failed": ".", "timeout": "T"}.get(verdict, "e" if mutant.id in EQUIVALENT else "S")
        print(mark, end="" if mark in ".Te" else f" {mutant.id}\n", flush=True)


def select(names: Sequence[str], sample: int | None, seed: int) -> dict[str, list[Mutant]]:
    chosen: dict[str, list[Mutant]] = {}
    for name in names:
        path, _ = MODULES[name]
        everything = mutants_of((ROOT / path).read_text(), path)
        if sample is not None and sample < len(everything):
            order = list(range(len(everything)))
            random.Random(f"{seed}:{name}").shuffle(order)  # a bigger sample extends a smaller
            everything = [everything[i] for i in sorted(order[:sample])]
        chosen[name] = everything
    return chosen


def _table(tallies: Sequence[Tally]) -> str:
    rows = [
        f"{'module':<18}{'mutants':>8}{'killed':>8}{'timeout':>8}{'survived':>9}"
        f"{'equiv':>7}{'rate':>8}"
    ]
    for t in tallies:
        rows.append(
            f"{t.module:<18}{t.mutants:>8}{t.killed:>8}{t.timeout:>8}{len(t.survived):>9}"
            f"{len(t.equivalent):>7}{t.rate:>7.1f}%"
        )
    return "\n".join(rows)


def total(tallies: Sequence[Tally]) -> Tally:
    whole = Tally("total")
    for t in tallies:
        whole.mutants += t.mutants
        whole.killed += t.killed
        whole.timeout += t.timeout
        whole.survived += t.survived
        whole.equivalent += t.equivalent
    return whole


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--module", action="append", choices=sorted(MODULES))
    parser.add_argument("--sample", type=int, help="mutants drawn per module")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--list", action="store_true", help="list the mutant ids, run nothing")
    parser.add_argument(
        "--mutant", action="append", help="show this mutant's diff and run its tests (repeatable)"
    )
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--fail-under", type=float, help="exit 1 below this kill rate (%%)")
    parser.add_argument("--jobs", type=int, default=1, help="mutants run at once")
    parser.add_argument(
        "--journal",
        type=Path,
        metavar="FILE",
        help="keep each verdict in FILE (JSON lines) and reuse those whose module and tests "
        "are unchanged: a long run goes on where the last one stopped",
    )
    parser.add_argument(
        "--all-tests",
        action="store_true",
        help="run every test of a module for each mutant, not only those that reach it",
    )
    parser.add_argument(
        "--known",
        action="store_true",
        help="with --journal: the table of the verdicts it holds for the tree as it is now, "
        "and how many mutants each module still lacks; nothing runs",
    )
    parser.add_argument(
        "--recheck-timeouts",
        action="store_true",
        help="with --journal: run again, with more time, every mutant the journal holds as "
        "killed by timeout (a busy machine can make a passing run look like a hang)",
    )
    args = parser.parse_args(argv)
    names: list[str] = args.module or list(MODULES)
    if args.mutant:
        return _some(args.mutant)
    chosen = select(names, args.sample, args.seed)
    if args.known:
        if args.journal is None:
            parser.error("--known reads a journal: give --journal FILE")
        return _known(Journal(args.journal), chosen, args.json)
    if args.list:
        for mutants in chosen.values():
            for mutant in mutants:
                print(mutant.id)
        return 0
    preload()
    tallies = []
    journal = (
        Journal(args.journal, recheck_timeouts=args.recheck_timeouts)
        if args.journal is not None
        else None
    )
    with tempfile.TemporaryDirectory(prefix="retrysim-snapshot-") as tmp:
        snapshot = copy_project(ROOT, Path(tmp))  # later edits of the tree do not leak in
        for name, mutants in chosen.items():
            path, tests = MODULES[name]
            if not args.json:
                print(f"{name}: {len(mutants)} mutants of {path}", flush=True)
            tally = campaign(
                snapshot,
                name,
                path,
                tests,
                mutants,
                args.jobs,
                not args.json,
                journal,
                select_tests=not args.all_tests,
                patience=RECHECK_PATIENCE if args.recheck_timeouts else 3.0,
            )
            tallies.append(tally)
            if not args.json:
                print()
    whole = total(tallies)
    if args.json:
        doc = {"modules": [t.as_dict() for t in tallies], "total": whole.as_dict()}
        doc["sample"] = args.sample
        doc["seed"] = args.seed
        print(json.dumps(doc, indent=2))
    else:
        print(_table([*tallies, whole]))
        for mutant_id in whole.survived:
            print(f"survived: {mutant_id}")
    return 1 if args.fail_under is not None and whole.rate < args.fail_under else 0


def _known(journal: Journal, chosen: Mapping[str, Sequence[Mutant]], as_json: bool) -> int:
    """Tally what ``journal`` already decided for the tree as it is now; run nothing."""
    tallies, lacking = [], {}
    for name, mutants in chosen.items():
        path, tests = MODULES[name]
        basis = Journal.basis(ROOT, path, tests)
        tally = Tally(name)
        for mutant in mutants:
            known = journal.verdict(mutant, basis, (ROOT, path, tests))
            if known is not None:
                _count(tally, mutant, known, echo=False)
        tallies.append(tally)
        lacking[name] = len(mutants) - tally.mutants
    if as_json:
        modules = [{**t.as_dict(), "lacking": lacking[t.module]} for t in tallies]
        print(json.dumps({"modules": modules, "total": total(tallies).as_dict()}, indent=2))
        return 0
    lines = _table([*tallies, total(tallies)]).splitlines()
    print(f"{lines[0]}{'lacking':>9}")
    for line, tally in zip(lines[1:], tallies, strict=False):
        print(f"{line}{lacking[tally.module]:>9}")
    print(f"{lines[-1]}{sum(lacking.values()):>9}")
    return 0


def _some(mutant_ids: Sequence[str]) -> int:
    """Show each mutant's diff, then run it and say what became of it."""
    preload()
    wanted = set(mutant_ids)
    for name, (path, tests) in MODULES.items():
        source = (ROOT / path).read_text()
        mutants = [m for m in mutants_of(source, path) if m.id in wanted]
        wanted -= {m.id for m in mutants}
        if not mutants:
            continue
        for mutant in mutants:
            print(mutant.diff(source), end="")
        tally = campaign(ROOT, name, path, tests, mutants, echo=False, select_tests=False)
        for mutant in mutants:
            print(f"{mutant.id}: {tally.verdicts[mutant.id]}")
            if mutant.id in EQUIVALENT:
                print(f"  equivalent: {EQUIVALENT[mutant.id]}")
    for mutant_id in sorted(wanted):
        print(f"no mutant {mutant_id} (see --list)", file=sys.stderr)
    return 2 if wanted else 0


if __name__ == "__main__":
    sys.exit(main())
