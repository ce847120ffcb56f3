"""retrysim: see what your retry settings do before production does.

The library API (also what the CLI and the notebooks use)::

    import retrysim
    scenario = retrysim.load_scenario("thundering-herd")      # a bundled name or a TOML path
    result = retrysim.simulate(scenario, seed=1)              # records (numpy) + settings used
    doc = retrysim.summarize(result)                          # the metrics document (run --json)
    doc = retrysim.run(scenario, seed=1).document             # both, plus latency_overhead

The production retry mechanism is :mod:`retrysim.retry` (all that ``pip install retrysim``
needs; the rest is the ``workbench`` extra). Names here load lazily, so importing ``retrysim``
costs nothing until one is used.

Modules that moved into the layer packages keep their old paths until :data:`_MOVED_REMOVED_IN`
(``import retrysim.metrics`` is ``retrysim.results.metrics``, with a ``DeprecationWarning``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from retrysim._lazy import alias_moved_modules, lazy_exports

__version__ = "0.1.0"

#: Old module path (under ``retrysim.``) -> where it lives now. Each old path imports the new
#: module itself, with a DeprecationWarning, until the release below; then delete this table.
_MOVED = {
    "scenario": "model.scenario",
    "scenario_files": "model.files",
    "scenario_network": "model.network",
    "scenario_reference": "model.reference",
    "scenario_service": "model.service",
    "scenario_toml": "model.toml_edit",
    "scenario_types": "model.base",
    "library": "model.library",
    "user_policy": "runs.user_policy",
    "metrics": "results.metrics",
    "metric_table": "results.metric_table",
    "facts": "results.facts",
    "guard_metrics": "results.guard_metrics",
    "connection_metrics": "results.connection_metrics",
    "diagnose": "results.diagnose",
    "error_matrix": "results.error_matrix",
    "runner": "runs.runner",
    "sweep": "runs.sweep",
    "executors": "runs.executors",
    "tune": "runs.tune",
    "tune_space": "runs.tune_space",
    "tune_search": "runs.tune_search",
    "report": "render.report",
    "report_diagnoses": "render.verdict",
    "report_guards": "render.resilience",
    "tune_report": "render.tune_report",
    "settings_report": "render.settings",
    "pytest_plugin": "testing.pytest_plugin",
}
_MOVED_REMOVED_IN = "0.3.0"

_EXPORTS = {
    "Scenario": "retrysim.model.scenario",
    "ScenarioError": "retrysim.model.scenario",
    "parse_scenario": "retrysim.model.scenario",
    "load_scenario": "retrysim.model.library",
    "bundled_scenarios": "retrysim.model.library",
    "simulate": "retrysim.sim.engine",
    "RunResult": "retrysim.sim.result",
    "run_with_decorators": "retrysim.sim.fidelity",
    "run_virtual": "retrysim.sim.aio",
    "VirtualTimeEventLoop": "retrysim.sim.aio",
    "summarize": "retrysim.results.metrics",
    "compare": "retrysim.runs.sweep",
    "run": "retrysim.runs.runner",
    "Run": "retrysim.runs.runner",
}

__all__ = [
    "Run",
    "RunResult",
    "Scenario",
    "ScenarioError",
    "VirtualTimeEventLoop",
    "__version__",
    "bundled_scenarios",
    "compare",
    "load_scenario",
    "parse_scenario",
    "run",
    "run_virtual",
    "run_with_decorators",
    "simulate",
    "summarize",
]

if TYPE_CHECKING:
    from retrysim.model.library import bundled_scenarios as bundled_scenarios
    from retrysim.model.library import load_scenario as load_scenario
    from retrysim.model.scenario import Scenario as Scenario
    from retrysim.model.scenario import ScenarioError as ScenarioError
    from retrysim.model.scenario import parse_scenario as parse_scenario
    from retrysim.results.metrics import summarize as summarize
    from retrysim.runs.runner import Run as Run
    from retrysim.runs.runner import run as run
    from retrysim.runs.sweep import compare as compare
    from retrysim.sim.aio import VirtualTimeEventLoop as VirtualTimeEventLoop
    from retrysim.sim.aio import run_virtual as run_virtual
    from retrysim.sim.engine import simulate as simulate
    from retrysim.sim.fidelity import run_with_decorators as run_with_decorators
    from retrysim.sim.result import RunResult as RunResult


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals(), __all__)
alias_moved_modules(__name__, _MOVED, _MOVED_REMOVED_IN)
