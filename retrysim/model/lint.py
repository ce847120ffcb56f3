"""The scenario lint: inputs that validate and yet do nothing, or make a run degenerate.

A scenario can be valid and still not mean what its author thinks: a read-then-write OCC
service without a network has a conflict window of 0 s, a ratio budget ignores ``max_tokens``,
a breaker that probes at once never refuses a retry that does not wait, a client CPU that
cannot keep up times every attempt out. None of that is an error (each key is fine alone),
so each is a warning: one ``FILE: KEY: text`` line, which ``retrysim validate --strict`` turns
into an error.

Each warning is a rule in :data:`RULES` (the registry, as :mod:`retrysim.results.diagnose`
holds the diagnoses), declared with :func:`rule` where it is written: a pure function of the
validated :class:`~retrysim.model.scenario.Scenario` and the keys the user set
(:func:`retrysim.model.defaults.given_keys`), yielding ``(key, text)`` pairs. A new rule is one
function here and a test with a scenario holding its trap (``tests/test_lint.py``). Keys that
only some scenarios read carry a :class:`~retrysim.model.marks.UsedWhen` mark on their field
instead, which the ``unused-key`` rule reads: no rule to write for them.

No rule may fire on a bundled scenario (``tests/test_lint.py`` checks): they are the examples
users copy, so a rule that fires there means the scenario is fixed, not the rule silenced.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

from retrysim.model.base import (
    Constant,
    Empirical,
    Exponential,
    Gamma,
    Lognormal,
    Normal,
    UniformLatency,
    Weibull,
    empirical_mean,
)
from retrysim.model.defaults import is_used, mark, seconds, walk
from retrysim.model.marks import UsedWhen
from retrysim.model.scenario import (
    Burst,
    CapacityLoss,
    Closed,
    Fault,
    Occ,
    Outage,
    Poisson,
    Queue,
    Scenario,
    Service,
    UniformArrival,
)
from retrysim.model.tier_keys import has_deadline, tier_of

#: What a rule yields: the dotted key to change and what is wrong with it.
Problem = tuple[str, str]
Check = Callable[[Scenario, frozenset[str]], Iterable[Problem]]


@dataclass(frozen=True)
class Finding:
    """One warning: the rule that found it, the key, and the text (what happens and why)."""

    rule: str
    key: str
    text: str

    def line(self, source: str = "") -> str:
        """``FILE: KEY: text`` (without ``source``: ``KEY: text``)."""
        return ": ".join(part for part in (source, self.key, self.text) if part)


@dataclass(frozen=True)
class Rule:
    id: str
    check: Check


#: The registry, in the order warnings are printed.
RULES: list[Rule] = []


def rule(id: str) -> Callable[[Check], Check]:
    """Register a check as a lint rule (a decorator, so each is declared where it is written)."""

    def register(check: Check) -> Check:
        RULES.append(Rule(id, check))
        return check

    return register


def lint(scenario: Scenario, given: frozenset[str]) -> list[Finding]:
    """Every warning the rules find in ``scenario`` (``given``: the keys the user set)."""
    return [
        Finding(each.id, key, text) for each in RULES for key, text in each.check(scenario, given)
    ]


# --- keys read only in some scenarios ------------------------------------------------------------


@rule("unused-key")
def unused_keys(scenario: Scenario, given: frozenset[str]) -> Iterator[Problem]:
    """A key set to something other than its default that this scenario never reads (its
    field's :class:`UsedWhen` mark says when it is read). A key set to its default changes
    nothing either way, so it is left alone."""
    for field in walk(scenario):
        when = mark(field.info, UsedWhen)
        if when is None or field.key not in given or is_used(field, scenario):
            continue
        if field.value == field.info.get_default(call_default_factory=True, validated_data={}):
            continue
        why = when.why
        name = tier_of(field.key)
        if name is not None:  # a tier's callers are the layer above it, their timeout its own
            why = why.replace("clients.timeout", _timeout_key(scenario, name))
        yield field.key, f"set, but changes nothing here: it is read {why}"


# --- the service -----------------------------------------------------------------------------


@rule("occ-without-network")
def occ_without_network(scenario: Scenario, given: frozenset[str]) -> Iterator[Problem]:
    service = scenario.service
    if isinstance(service, Occ) and service.protocol == "read_then_write" and not scenario.network:
        yield (
            "service.protocol",
            '"read_then_write" puts the client\'s round trip ([network] rtt) between the read '
            "and the write, and there is no [network]: the conflict window is 0 s, so a write "
            "conflicts only with one whose read answered at the same instant, never with one "
            "committed while the answer and the write travel; add [network] with an rtt, or "
            'use protocol = "single"',
        )


@rule("capacity-loss-adds")
def capacity_loss_adds(scenario: Scenario, given: frozenset[str]) -> Iterator[Problem]:
    for at, service, faults in servers(scenario):
        if not isinstance(service, Queue):
            continue
        for index, fault in enumerate(faults):
            if isinstance(fault, CapacityLoss) and fault.slots >= service.concurrency:
                change = "loses nothing" if fault.slots == service.concurrency else "adds slots"
                yield (
                    f"{at}faults.{index}.slots",
                    f"{fault.slots:,} slots in the window, and the queue has "
                    f"{service.concurrency:,} ({at}service.concurrency): the capacity loss "
                    f"{change}; give fewer slots",
                )


# --- arrivals and faults -----------------------------------------------------------------------


@rule("step-after-arrivals")
def step_after_arrivals(scenario: Scenario, given: frozenset[str]) -> Iterator[Problem]:
    arrival = scenario.clients.arrival
    if not isinstance(arrival, Poisson):
        return
    end = arrival.end if arrival.end is not None else scenario.duration
    for index, step in enumerate(arrival.schedule):
        if step.start >= end:
            yield (
                f"clients.arrival.schedule.{index}",
                f"starts at {step.start:g} s, when arrivals have ended ({end:g} s: "
                "clients.arrival.end, else duration): no call arrives in it",
            )


@rule("blackhole-without-timeout")
def blackhole_without_timeout(scenario: Scenario, given: frozenset[str]) -> Iterator[Problem]:
    for at, _, faults in servers(scenario):
        name = tier_of(at)
        if name is None:
            timed = scenario.client_timeout is not None  # clients.timeout or the policy's
        else:  # the callers' own timeout, or a deadline passed down to them
            timed = has_deadline(scenario, name)
        if timed:
            continue
        timeout = _timeout_key(scenario, name)
        for index, fault in enumerate(faults):
            if isinstance(fault, Outage) and fault.mode == "blackhole":
                yield (
                    f"{at}faults.{index}.mode",
                    f"a black hole never answers and {timeout} is not set: every attempt sent "
                    f"into it waits until the run stops, its call unfinished; set {timeout}",
                )


def _timeout_key(scenario: Scenario, name: str | None) -> str:
    """The key of the timeout on the calls into tier ``name`` (None: the only service)."""
    names = scenario.tier_names
    if name is None or names.index(name) == 0:
        return "clients.timeout"
    return f"tiers.{names[names.index(name) - 1]}.timeout"


# --- the retry policy's mechanisms ------------------------------------------------------------

#: Which knobs each budget ``kind`` reads. A knob in no entry is every kind's (``enabled``,
#: ``kind``, ``scope``, the per-call ``max_total_time``); a knob may be in several. A new kind is
#: one entry here (``tests/test_lint.py`` checks every kind of ``BudgetOptions`` has one).
BUDGET_KIND_KNOBS: dict[str, frozenset[str]] = {
    "tokens": frozenset({"max_tokens", "token_ratio"}),
    "ratio": frozenset({"percent", "min_retries_per_second", "window", "initial_allowance"}),
    "quota": frozenset({"quota_capacity", "retry_cost", "timeout_retry_cost", "success_refund"}),
}

#: Each mechanism's switches and the knobs each one turns on (None: every knob not listed in
#: ``SWITCH_FREE``). A knob set while its switch is not set at all works only if the switch's
#: ``RETRY__*`` variable turns it on (default: off).
SWITCHES: dict[str, dict[str, frozenset[str] | None]] = {
    "breaker": {"enabled": None},
    "budget": {"enabled": None},
    "adaptive": {
        "enabled": frozenset({"window", "max_factor"}),
        "limiter": frozenset({"limiter_beta", "limiter_scale", "limiter_min_rate"}),
    },
}
#: Knobs that work whatever the switches say (a budget's per-call time limit).
SWITCH_FREE: dict[str, frozenset[str]] = {"budget": frozenset({"max_total_time"})}


def _knobs_given(mechanism: str, given: frozenset[str]) -> list[str]:
    prefix = f"policy.{mechanism}."
    return [key.removeprefix(prefix) for key in sorted(given) if key.startswith(prefix)]


@rule("budget-kind-knobs")
def budget_kind_knobs(scenario: Scenario, given: frozenset[str]) -> Iterator[Problem]:
    budget: Any = getattr(scenario.policy, "budget", None)
    uses = BUDGET_KIND_KNOBS.get(str(getattr(budget, "kind", "")))
    if uses is None:
        return
    some_kind = frozenset().union(*BUDGET_KIND_KNOBS.values())
    kind = _value_from("budget.kind", f'"{budget.kind}"', scenario, given, "which")
    for knob in _knobs_given("budget", given):
        if knob in some_kind and knob not in uses:
            owners = " / ".join(k for k, knobs in BUDGET_KIND_KNOBS.items() if knob in knobs)
            yield (
                f"policy.budget.{knob}",
                f"a {owners} budget's knob, and {kind} ignores it; set the kind it belongs to, "
                "or drop it",
            )


@rule("switched-off")
def switched_off(scenario: Scenario, given: frozenset[str]) -> Iterator[Problem]:
    for mechanism, switches in SWITCHES.items():
        knobs = _knobs_given(mechanism, given)
        free = SWITCH_FREE.get(mechanism, frozenset()) | set(switches)
        for switch, governed in switches.items():
            if f"policy.{mechanism}.{switch}" in given:
                continue  # on, or off on purpose
            idle = [k for k in knobs if (k in governed if governed else k not in free)]
            if idle:
                variable = _variable(f"{mechanism}.{switch}", scenario) or "its setting"
                yield (
                    f"policy.{mechanism}.{switch}",
                    f"not set, yet {', '.join(idle)} {'is' if len(idle) == 1 else 'are'} set: "
                    f"{'it works' if len(idle) == 1 else 'they work'} only where "
                    f"{variable}=true (default: off); add {switch} = true",
                )


@rule("breaker-probes-at-once")
def breaker_probes_at_once(scenario: Scenario, given: frozenset[str]) -> Iterator[Problem]:
    breaker: Any = getattr(scenario.policy, "breaker", None)
    if "policy.breaker.recovery_timeout" in given and breaker.recovery_timeout == 0:
        yield (
            "policy.breaker.recovery_timeout",
            "0 s: an open breaker is half-open the instant it opens, so the next attempt (a "
            "retry that does not wait included) goes through as its probe: it never refuses "
            "a retry that does not wait, only attempts sent while a probe is out; give the "
            "dependency time to recover (resilience4j waits 60 s)",
        )


#: A breaker's knobs read only to judge a failure rate (a consecutive-failure breaker ignores
#: them).
BREAKER_RATE_KNOBS = ("window", "window_seconds", "minimum_calls")


@rule("breaker-rate-knobs")
def breaker_rate_knobs(scenario: Scenario, given: frozenset[str]) -> Iterator[Problem]:
    breaker: Any = getattr(scenario.policy, "breaker", None)
    if breaker is None or breaker.failure_rate > 0:
        return
    rate = _value_from("breaker.failure_rate", "0", scenario, given, "and that")
    for knob in BREAKER_RATE_KNOBS:
        if f"policy.breaker.{knob}" in given:
            yield (
                f"policy.breaker.{knob}",
                f"read only to judge a failure rate, and {rate} judges none (the breaker opens "
                "on failure_threshold consecutive failures alone); set failure_rate, or drop it",
            )


@rule("nothing-to-gate")
def nothing_to_gate(scenario: Scenario, given: frozenset[str]) -> Iterator[Problem]:
    """``max_attempts = 1`` leaves no retry for a retries-mode breaker or a shared budget."""
    if "policy.max_attempts" not in given or scenario.policy.max_attempts != 1:
        return
    breaker: Any = getattr(scenario.policy, "breaker", None)
    if breaker is not None and breaker.mode == "retries" and "policy.breaker.mode" in given:
        yield (
            "policy.breaker.mode",
            '"retries" gates only retries, and max_attempts = 1 makes none: it never refuses '
            'an attempt; use mode = "calls", or allow retries',
        )
    budget: Any = getattr(scenario.policy, "budget", None)
    if budget is not None and budget.enabled and "policy.budget.enabled" in given:
        yield (
            "policy.budget.enabled",
            "a shared retry budget rations retries, and max_attempts = 1 makes none: it never "
            "refuses anything; allow retries, or drop it",
        )


def _value_from(knob: str, shown: str, scenario: Scenario, given: frozenset[str], then: str) -> str:
    """Where ``policy.<knob>``'s value ``shown`` comes from, to open a warning: set here
    (``kind = "quota"``), or not set here and so its ``RETRY__`` variable's default, the
    sentence going on with ``then``."""
    name = knob.partition(".")[2]
    if f"policy.{knob}" in given:
        return f"{name} = {shown}"
    variable = _variable(knob, scenario) or "its RETRY__ variable"
    return f"{name} is not set here, so it is {variable}'s (default {shown}), {then}"


def _variable(knob: str, scenario: Scenario) -> str | None:
    from retrysim.retry.variables import option_variable

    return option_variable(knob, scenario.policy.operation)


# --- tiers and replicas ------------------------------------------------------------------------


def servers(scenario: Scenario) -> Iterator[tuple[str, Service, list[Fault]]]:
    """Each service the scenario's calls reach, with its faults and the prefix of their keys:
    the scenario's own (``""``), or each tier's (``"tiers.database."``)."""
    if not scenario.tiers:
        yield "", scenario.service, scenario.faults
        return
    for name, tier in scenario.tiers.items():
        yield f"tiers.{name}.", tier.service, tier.faults


@rule("balance-one-replica")
def balance_one_replica(scenario: Scenario, given: frozenset[str]) -> Iterator[Problem]:
    for at, service, _ in servers(scenario):
        # (the default rule written out, as a full dump of a scenario writes it, says nothing)
        chosen = service.balance != type(service).model_fields["balance"].default
        if f"{at}service.balance" in given and service.replicas == 1 and chosen:
            yield (
                f"{at}service.balance",
                f"set, and {at}service.replicas is 1: with one replica every attempt goes to it, "
                f"so there is nothing to balance; set {at}service.replicas above 1, or drop "
                "balance",
            )


@rule("other-host-one-replica")
def other_host_one_replica(scenario: Scenario, given: frozenset[str]) -> Iterator[Problem]:
    """``retry_other_host`` on calls to a service with one replica: no other host to go to."""
    callers: list[tuple[str, bool]] = [("", scenario.policy.retry_other_host)]
    callers += [
        (f"tiers.{name}.", tier.policy is not None and tier.policy.retry_other_host)
        for name, tier in scenario.tiers.items()
    ]
    called = [(at, service) for at, service, _ in servers(scenario)]
    for (caller, on), (at, service) in zip(callers, called, strict=False):
        if on and service.replicas == 1:
            yield (
                f"{caller}policy.retry_other_host",
                f"true, and the calls it retries go to {at}service, which has one replica "
                f"({at}service.replicas = 1): there is no other host to retry on; set "
                f"{at}service.replicas above 1, or drop retry_other_host",
            )


@rule("deadline-without-timeout")
def deadline_without_timeout(scenario: Scenario, given: frozenset[str]) -> Iterator[Problem]:
    """``propagate_deadline`` on a tier whose requests come with no deadline to pass on."""
    for name, tier in scenario.tiers.items():
        if tier.propagate_deadline and not has_deadline(scenario, name):
            timeout = _timeout_key(scenario, name)
            yield (
                f"tiers.{name}.propagate_deadline",
                f"true, and the requests tier {name!r} serves carry no deadline: {timeout} is "
                "not set (nor passed down from above), so there is nothing to propagate; set "
                f"{timeout}, or drop propagate_deadline",
            )


@rule("callers-of-the-last-tier")
def callers_of_the_last_tier(scenario: Scenario, given: frozenset[str]) -> Iterator[Problem]:
    """``callers`` on the last tier: the instances that call the next tier, and there is none."""
    if not scenario.tiers:
        return
    last = scenario.tier_names[-1]
    if f"tiers.{last}.callers" in given:
        yield (
            f"tiers.{last}.callers",
            f"set, and {last!r} is the last tier: it calls no one, so it has no callers of a "
            "tier below to count; drop it (the tier above's callers are the instances that "
            f"call {last!r})",
        )


@rule("fault-every-replica")
def fault_every_replica(scenario: Scenario, given: frozenset[str]) -> Iterator[Problem]:
    """A fault's ``replicas`` listing every replica: the same as leaving it out."""
    for at, service, faults in servers(scenario):
        every = set(range(service.replicas))
        for index, fault in enumerate(faults):
            if fault.replicas is not None and set(fault.replicas) == every:
                yield (
                    f"{at}faults.{index}.replicas",
                    f"lists every replica of {at}service ({service.replicas:,}): the same as "
                    "leaving it out, which hits them all; drop it, or list only the replicas "
                    "the fault should hit",
                )


# --- client CPU ---------------------------------------------------------------------------------

_Z99 = NormalDist().inv_cdf(0.99)


def mean_at_least(dist: Any) -> float:
    """A lower bound of a latency distribution's mean, from the model alone (the engine's
    ``mean_of`` is a layer above): exact but for a normal, whose clipped or reflected negative
    draws only raise its mean above ``mean``. A bound from below keeps the CPU warning from
    firing where the engine's own mean would not."""
    match dist:
        case Constant(value=value):
            return float(value)
        case UniformLatency(low=low, high=high):
            return (low + high) / 2
        case Exponential(mean=mean) | Normal(mean=mean) | Gamma(mean=mean):
            return float(mean)
        case Lognormal(median=median, p99=p99):
            sigma = math.log(p99 / median) / _Z99
            return float(median * math.exp(sigma * sigma / 2))
        case Weibull(shape=shape, scale=scale):
            return float(scale * math.gamma(1 + 1 / shape))
        case Empirical(quantiles=quantiles):
            return empirical_mean(quantiles)
    return 0.0


@rule("cpu-queue-over-timeout")
def cpu_queue_over_timeout(scenario: Scenario, given: frozenset[str]) -> Iterator[Problem]:
    """A client CPU whose queue of attempts is longer than the client timeout.

    An attempt's CPU work is done first come first served on its process's CPU, inside the
    attempt's timeout, and work whose attempt timed out is still done. So when one CPU's queue
    holds more work than ``clients.timeout``, attempts at its back time out, their retries
    queue again behind work still being done, and the run degenerates into timeouts. Criteria,
    with w the mean CPU per attempt and N the clients sharing one CPU: w >= timeout (every
    attempt); a burst, N * w > timeout (the first round at once); a closed loop, N * w >
    think_time + timeout (a saturated CPU keeps N attempts queued, one per client); an open
    arrival (Poisson, uniform), first attempts alone keeping the CPUs busy 100% of the time.
    """
    clients = scenario.clients
    timeout, cost = scenario.client_timeout, clients.cpu_per_attempt
    if timeout is None or cost is None:
        return
    work = mean_at_least(cost)
    cpus = clients.cpus or clients.process_count
    per_cpu = math.ceil(clients.count / cpus)
    queued = per_cpu * work
    arrival = clients.arrival
    each, wait = seconds(work), seconds(timeout)
    text = ""
    if work >= timeout:
        text = (
            f"each attempt costs its client process {each} of CPU on average, at least "
            f"clients.timeout ({wait}): every attempt times out before it is sent"
        )
    elif isinstance(arrival, Burst) or (
        isinstance(arrival, UniformArrival) and arrival.end == arrival.start
    ):
        if queued > timeout:
            text = (
                f"{per_cpu:,} clients share each client CPU (clients.cpus) at {each} per "
                f"attempt: sent at once, the last waits {seconds(queued)} for the CPU, more "
                f"than clients.timeout ({wait}); attempts at the back time out and their "
                "retries queue again behind work still being done (criterion: clients per CPU "
                "x CPU per attempt > timeout)"
            )
    elif isinstance(arrival, Closed):
        if queued > clients.think_time + timeout:
            text = (
                f"{per_cpu:,} clients in a closed loop share each client CPU at {each} per "
                f"attempt: {seconds(queued)} of work per round, more than think_time + "
                f"clients.timeout ({seconds(clients.think_time + timeout)}), so the CPU stays "
                "saturated and attempts wait past their timeout (criterion: clients per CPU x "
                "CPU per attempt > think_time + timeout)"
            )
    else:  # open: Poisson arrivals, or first calls spread uniformly over a window
        window = arrival.end - arrival.start if isinstance(arrival, UniformArrival) else 0
        rate = arrival.rate if isinstance(arrival, Poisson) else clients.count / window
        busy = rate * work / cpus
        if busy >= 1:
            text = (
                f"first attempts alone arrive at {rate:,.6g}/s and cost {each} of CPU each on "
                f"{cpus:,} client CPU(s): {busy:.0%} busy, so the CPU queue grows until "
                f"attempts wait past clients.timeout ({wait}) (criterion: arrival rate x CPU "
                "per attempt / CPUs >= 100%)"
            )
    if text:
        yield "clients.cpu_per_attempt", text
