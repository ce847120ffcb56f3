"""``retrysim check --junit FILE``: the check as JUnit XML, for CI test reporters.

One ``<testsuite>`` per scenario (``retrysim.check.<scenario>``), one ``<testcase>`` per gate
and one named "no metric worse beyond its interval"; a failing case carries the figures in its
``<failure message=...>`` (and the same text in the element, which some reporters show
instead). The structure is what GitHub's test reporters and Jenkins read:
``testsuites/testsuite(name, tests, failures, errors, skipped, time)/testcase(classname, name,
time)/failure(message, type)``. Runs are in virtual time and judged after the fact, so every
``time`` is 0. A gate with no value to judge is a passing case with a ``<system-out>`` note.

Standard library only (:mod:`xml.etree.ElementTree` escapes every attribute and text); written
atomically through :func:`retrysim.output.write_text`.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from retrysim import output
from retrysim.runs import check_metrics
from retrysim.runs.check import CheckResult, ScenarioVerdict

WORSE_CASE = "no metric worse beyond its interval"


def classname(scenario: str) -> str:
    return f"retrysim.check.{scenario}"


def junit_xml(result: CheckResult) -> str:
    """The check as a JUnit XML document (UTF-8 text with its declaration)."""
    root = ET.Element("testsuites", name="retrysim check")
    total = failed = 0
    for verdict in result.scenarios:
        suite = _suite(verdict)
        root.append(suite)
        total += int(suite.get("tests", "0"))
        failed += int(suite.get("failures", "0"))
    root.set("tests", str(total))
    root.set("failures", str(failed))
    root.set("errors", "0")
    root.set("time", "0")
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def _suite(verdict: ScenarioVerdict) -> ET.Element:
    name = classname(verdict.name)
    suite = ET.Element("testsuite", name=name)
    cases = 0
    failures = 0
    for gate in verdict.gates:
        case = _case(suite, name, f"gate {gate.gate.metric} {gate.gate.text}")
        cases += 1
        if gate.holds is False:
            failures += 1
            _failure(case, gate.message(), "gate broken")
        elif gate.holds is None:
            ET.SubElement(case, "system-out").text = gate.message()
    case = _case(suite, name, WORSE_CASE)
    cases += 1
    worse = verdict.worse
    if worse:
        failures += 1
        lines = []
        for row in worse:
            assert row.interval is not None and row.change is not None
            low, high = (check_metrics.show_change(row.name, v) for v in row.interval)
            lines.append(
                f"{row.name}: {check_metrics.show(row.name, row.before)} -> "
                f"{check_metrics.show(row.name, row.after)}, change "
                f"{check_metrics.show_change(row.name, row.change)} (95% interval {low} .. {high},"
                f" {check_metrics.better(row.name)} is better)"
            )
        _failure(case, "; ".join(lines), "worse beyond its interval")
    suite.set("tests", str(cases))
    suite.set("failures", str(failures))
    suite.set("errors", "0")
    suite.set("skipped", "0")
    suite.set("time", "0")
    return suite


def _case(suite: ET.Element, name: str, title: str) -> ET.Element:
    return ET.SubElement(suite, "testcase", classname=name, name=title, time="0")


def _failure(case: ET.Element, message: str, kind: str) -> None:
    failure = ET.SubElement(case, "failure", message=message, type=kind)
    failure.text = message


def write_junit(path: Path, result: CheckResult) -> None:
    """Write the check's JUnit XML to ``path`` atomically."""
    output.write_text(path, junit_xml(result), "--junit")
