"""What both exports share (:mod:`retrysim.chaos.export`): the items that say what an output
leaves out, checks on the names and addresses a user passes, and the fault's times and values
in the units the tools take.

Standard library only, apart from the scenario models and the latency means it reads.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from retrysim.chaos.toxics import ChaosError

if TYPE_CHECKING:
    from retrysim.model.scenario import Fault, Scenario

DEFAULT_LISTEN = "127.0.0.1:0"  # port 0: Toxiproxy picks a free port and answers with it
#: Upstreams when none is given: the bundled HTTP service's usual port, else Redis's.
DEFAULT_UPSTREAM = {True: "127.0.0.1:8080", False: "127.0.0.1:6379"}
#: Recurring windows listed one by one, at most (the line says how many there are in all).
MAX_WINDOWS = 50
#: Linux's minimum retransmission timeout (TCP_RTO_MIN): what a real TCP stack starts from.
KERNEL_RTO = 0.2
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_MAX_NAME = 40  # leaves room for "-12-partition" under Kubernetes' 63 for label values
_ADDRESS = re.compile(r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[^:\s\[\]]+)):(?P<port>\d{1,5})$")


@dataclass(frozen=True)
class NotExpressed:
    """One part of one fault the output leaves out or only approximates, and why.

    ``fault`` is its path in the scenario (``faults.2``, ``tiers.db.faults.0``); ``what`` the
    part (``window``, ``probability``, ``answer``...); ``in_output`` whether the fault is in
    the document at all (True: it is, this part differs or needs doing by hand); ``windows``
    the (on, off) times in seconds a schedule item asks for (off None: to the end).
    """

    fault: str
    kind: str
    what: str
    why: str
    in_output: bool
    windows: tuple[tuple[float, float | None], ...] = ()

    def line(self) -> str:
        """One line for stderr: ``faults.0 (outage) window: ...``."""
        left = "" if self.in_output else " (left out)"
        return f"{self.fault} ({self.kind}) {self.what}{left}: {self.why}"

    def as_dict(self) -> dict[str, Any]:
        """The item as JSON data (``--json``)."""
        return {
            "fault": self.fault,
            "kind": self.kind,
            "what": self.what,
            "why": self.why,
            "in_output": self.in_output,
            "windows": [list(pair) for pair in self.windows],
        }


class Notes:
    """Collects one fault's items: ``note(what, why)``."""

    def __init__(self, fault: str, kind: str, into: list[NotExpressed]) -> None:
        self.fault, self.kind, self.into = fault, kind, into

    def __call__(
        self,
        what: str,
        why: str,
        *,
        in_output: bool = True,
        windows: Sequence[tuple[float, float | None]] = (),
    ) -> None:
        self.into.append(NotExpressed(self.fault, self.kind, what, why, in_output, tuple(windows)))


# --- checks on what the user passed ----------------------------------------------------------


def check_name(name: str, option: str = "--name") -> str:
    """``name`` if it is a Kubernetes-style name (what both tools accept in URLs and objects)."""
    if len(name) > _MAX_NAME or not _NAME.match(name):
        raise ChaosError(
            f"{option} {name!r}: use lowercase letters, digits and '-' (not first or last), "
            f"at most {_MAX_NAME} characters"
        )
    return name


def default_name(scenario: Scenario) -> str:
    """The scenario's name as a :func:`check_name` name (``retrysim`` if nothing is left)."""
    slug = re.sub(r"[^a-z0-9]+", "-", scenario.name.lower()).strip("-")[:_MAX_NAME].strip("-")
    return slug or "retrysim"


def port_of(address: str, option: str = "--upstream", *, zero: bool = False) -> int:
    """The port of ``HOST:PORT`` (``[::1]:PORT`` for IPv6); a ChaosError naming ``option``."""
    found = _ADDRESS.match(address)
    port = int(found["port"]) if found else -1
    if found is None or not (0 if zero else 1) <= port <= 65535:
        raise ChaosError(
            f"{option} {address!r}: give HOST:PORT (such as 127.0.0.1:6379; [::1]:6379 for "
            f"IPv6), the port {'0 to' if zero else '1 to'} 65535"
        )
    return port


def parse_selector(text: str) -> dict[str, str]:
    """``app=web,tier=db`` as Chaos Mesh's ``labelSelectors``; a ChaosError if malformed."""
    pairs: dict[str, str] = {}
    for item in text.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ChaosError(
                f"--selector {text!r}: give labels as KEY=VALUE, several joined by commas "
                "(app=myservice,tier=db)"
            )
        pairs[key.strip()] = value.strip()
    return pairs


def speaks_http(scenario: Scenario, faults: Sequence[Fault] | None = None) -> bool:
    """Whether the scenario's dependency is an HTTP service: a fault answers with an HTTP
    status (``error = "RateLimited"`` and the like, or a numeric ``answer``), or its service
    is ``rate_limited`` (it answers 429s). Chaos Mesh then gets HTTPChaos for answers."""
    listed = scenario.faults if faults is None else faults
    if any(http_status(fault) is not None for fault in listed):
        return True
    services = [scenario.service, *(tier.service for tier in scenario.tiers.values())]
    return any(service.kind == "rate_limited" for service in services)


def faults_of(scenario: Scenario, tier: str | None) -> tuple[str, Sequence[Fault]]:
    """(the path prefix items name, the faults to export): the scenario's, or one tier's."""
    if tier is None:
        if scenario.tiers:
            raise ChaosError(
                f"the scenario has tiers ({', '.join(scenario.tiers)}), each with its own "
                "faults: choose one with --tier NAME"
            )
        return "faults", scenario.faults
    if tier not in scenario.tiers:
        known = ", ".join(scenario.tiers) or "none"
        raise ChaosError(f"--tier {tier!r}: no such tier (the scenario's tiers: {known})")
    return f"tiers.{tier}.faults", scenario.tiers[tier].faults


# --- time ------------------------------------------------------------------------------------


def recurrence(fault: Fault) -> tuple[float, float] | None:
    """(every, for) when the window really recurs; ``for == every`` is one long window."""
    every, on = getattr(fault, "every", None), getattr(fault, "for_", None)
    if every is None or on is None or on >= every:
        return None
    return float(every), float(on)


def window_count(fault: Fault, horizon: float) -> int:
    """How many windows :func:`windows` has in all (1 unless the fault recurs)."""
    recurs = recurrence(fault)
    if recurs is None:
        return 1
    span = min(fault.until, horizon) - fault.start
    return max(0, math.ceil(span / recurs[0] - 1e-9))


def windows(
    fault: Fault, horizon: float, limit: int | None = None
) -> list[tuple[float, float | None]]:
    """The fault's (on, off) times in seconds, the first ``limit`` of them; a recurring one's
    up to its end, or to ``horizon`` (the scenario's duration: no call starts after it) when
    it has none."""
    recurs = recurrence(fault)
    if recurs is None:
        return [(fault.start, fault.end)]
    every, on = recurs
    count = window_count(fault, horizon)
    shown = count if limit is None else min(count, limit)
    return [
        (begin, min(begin + on, fault.until))
        for begin in (fault.start + k * every for k in range(shown))
    ]


def whole_ms(seconds: float) -> tuple[int, bool]:
    """Whole milliseconds (Toxiproxy's attributes are integers), and whether that is exact."""
    ms = seconds * 1000
    whole = math.floor(ms + 0.5)
    return whole, abs(whole - ms) < 1e-6


def go_duration(seconds: float) -> tuple[str, bool]:
    """A Go duration string (``15s``, ``250ms``, ``1500us``) and whether it is exact."""
    us = seconds * 1e6
    whole = math.floor(us + 0.5)
    exact = abs(whole - us) < 1e-3
    if whole % 1_000_000 == 0:
        return f"{whole // 1_000_000}s", exact
    if whole % 1000 == 0:
        return f"{whole // 1000}ms", exact
    return f"{whole}us", exact


def secs(seconds: float | None) -> str:
    return "the end" if seconds is None else f"{seconds:g} s"


def latency_parts(extra: Any) -> tuple[float, float, str | None]:
    """(centre, half width, why approximated or None) of a latency distribution, in seconds."""
    from retrysim.model.base import Constant, UniformLatency
    from retrysim.sim.latency import mean_of

    match extra:
        case Constant(value=value):
            return value, 0.0, None
        case UniformLatency(low=low, high=high):
            return (low + high) / 2, (high - low) / 2, None
    return mean_of(extra), 0.0, f"a {extra.dist} distribution: exported as its mean"


def http_status(fault: Fault) -> int | None:
    """The HTTP status a gate fault answers with, if any: an ``error`` the bundled HTTP
    service answers (429, 503, 500) or a numeric ``answer`` in 100..599."""
    from retrysim.chaos.http_faults import HTTP_STATUS

    answer = getattr(fault, "answer", None)
    if isinstance(answer, int) and 100 <= answer <= 599:
        return answer
    if answer is None and getattr(fault, "mode", "refuse") == "refuse":
        return HTTP_STATUS.get(getattr(fault, "error", ""))
    return None


def answer_note(fault: Fault, note: Notes, tool: str) -> bool:
    """Note an answer ``tool`` cannot give (Toxiproxy: any; Chaos Mesh: a word); True if noted."""
    answer, status = getattr(fault, "answer", None), http_status(fault)
    if answer is None and status is None:
        return False
    error = getattr(fault, "error", "")
    said = f"answer {answer!r}" if answer is not None else f"error {error!r} (HTTP {status})"
    if tool == "toxiproxy":
        note(
            "answer",
            f"{said} is an answer the service gives; Toxiproxy is a TCP proxy and can only "
            "delay, cut or reset connections",
            in_output=False,
        )
        return True
    if status is None:
        note("answer", f"{said} is no HTTP status; HTTPChaos replaces codes only", in_output=False)
        return True
    return False
