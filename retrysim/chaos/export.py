"""A scenario's faults for other fault injectors: Toxiproxy's JSON and Chaos Mesh's manifests.

Why: a scenario tuned in the simulator should be replayable against the real thing, in the
tools teams already run. Neither tool holds everything a scenario says (Toxiproxy's toxics
have no schedule, Chaos Mesh has no per-request probability), so each function returns the
document *and* a list of :class:`NotExpressed` items, one per part of a fault the document
leaves out or only approximates, naming the fault (``faults.2``) and why. Nothing is dropped
without an item.

- :func:`to_toxiproxy`: a JSON list of proxies as ``POST /populate`` takes them (name, listen,
  upstream, enabled); each carries a ``toxics`` list of toxics as ``POST
  /proxies/{proxy}/toxics`` takes them (name, type, stream, toxicity, attributes in
  Toxiproxy's units: milliseconds, KB/s). Populate ignores the extra ``toxics`` key (Go's JSON
  decoding skips unknown fields), so the list can be posted as it is and each toxic after it.
  The toxics are the faults *while active*; when each is added and removed is listed.
- :func:`to_chaos_mesh`: a Kubernetes ``List`` of ``chaos-mesh.org/v1alpha1`` objects:
  NetworkChaos (delay, loss, partition), HTTPChaos (abort, replace code, delay) and Schedule
  (a fault's ``every``/``for``). JSON, which ``kubectl apply -f`` reads as YAML's subset: the
  project's PyYAML is a test dependency only, and this module stays standard library.

Pure functions over validated scenarios; the CLI (``retrysim scenarios export``) writes them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from retrysim.chaos.export_base import (
    DEFAULT_LISTEN,
    KERNEL_RTO,
    MAX_WINDOWS,
    Notes,
    NotExpressed,
    answer_note,
    check_name,
    faults_of,
    go_duration,
    http_status,
    latency_parts,
    port_of,
    recurrence,
    secs,
    speaks_http,
    whole_ms,
    window_count,
    windows,
)
from retrysim.model.faults import (
    CapacityLoss,
    EveryNth,
    FirstN,
    Flaky,
    LatencySpike,
    LimitData,
    Outage,
    PacketLoss,
    RecoveryRamp,
    Reset,
    Slicer,
    SlowClose,
)

if TYPE_CHECKING:
    from retrysim.model.scenario import Fault, Scenario

FORMATS = ("toxiproxy", "chaos-mesh")
#: Toxiproxy's toxic types on its main branch (May 2026, README "Toxics"); none loses packets.
TOXIPROXY_TYPES = (
    "latency",
    "bandwidth",
    "slow_close",
    "timeout",
    "reset_peer",
    "slicer",
    "limit_data",
)
CHAOS_MESH_API = "chaos-mesh.org/v1alpha1"
#: The annotation on a Chaos Mesh object listing what of its fault it leaves out or changes.
ANNOTATION = "retrysim/not-expressed"
_COUNTS = "a toxicity is a probability (retrysim proxy's 'first_n' and 'every_nth' are its own)"


# --- Toxiproxy -------------------------------------------------------------------------------


def _replicas_note(fault: Fault, note: Notes) -> None:
    """A proxy stands in front of the whole service: a fault on some replicas hits them all."""
    replicas = getattr(fault, "replicas", None)
    if replicas is not None:
        note(
            "replicas",
            f"the fault hits replicas {replicas} only; one proxy in front of the service hits "
            "every replica",
        )


def _toxic(
    index: int, kind: str, stream: str, toxicity: float, **attributes: int
) -> dict[str, Any]:
    return {
        "name": f"fault{index}_{kind}",
        "type": kind,
        "stream": stream,
        "toxicity": float(toxicity),
        "attributes": attributes,
    }


def _per_connection(note: Notes) -> None:
    note(
        "probability",
        "Toxiproxy draws a toxic's toxicity once per connection, not per attempt: attempts "
        "that reuse a pooled connection share its draw",
    )


def _toxiproxy_toxic(
    fault: Fault, index: int, note: Notes, ms: Callable[[str, float], int]
) -> dict[str, Any] | None:
    """The toxic for one fault (None: none fits, and a note says why)."""
    if answer_note(fault, note, "toxiproxy"):
        return None
    match fault:
        case Outage(mode="blackhole"):
            return _toxic(index, "timeout", "upstream", 1.0, timeout=0)
        case Outage():
            # Not the proxy disabled (enabled = false): a toxic is added and removed by name on
            # the fault's schedule and leaves the proxy's other toxics running, and a reset at
            # the client's first bytes keeps the request from the service, as retrysim's own
            # proxy does for a refusal.
            return _toxic(index, "reset_peer", "upstream", 1.0, timeout=0)
        case Flaky(probability=p):
            _per_connection(note)
            return _toxic(index, "reset_peer", "upstream", p, timeout=0)
        case RecoveryRamp(probability=p):
            note(
                "ramp",
                f"the failure probability falls linearly from {p:g} to 0 by {secs(fault.end)}; "
                f"a toxicity is constant: exported as {p:g} (update the toxic's toxicity "
                "as the ramp goes)",
            )
            _per_connection(note)
            return _toxic(index, "reset_peer", "upstream", p, timeout=0)
        case Reset(probability=p):
            _per_connection(note)
            return _toxic(index, "reset_peer", "downstream", p, timeout=0)
        case LatencySpike(extra=extra):
            centre, half, why = latency_parts(extra)
            if why is not None:
                note("extra", f"{why} ({centre * 1000:g} ms); Toxiproxy adds latency ± jitter")
            latency, jitter = ms("extra", centre), ms("extra (jitter)", half)
            return _toxic(index, "latency", "downstream", 1.0, latency=latency, jitter=jitter)
        case PacketLoss():
            types = ", ".join(TOXIPROXY_TYPES)
            note(
                "kind",
                f"Toxiproxy has no packet-loss toxic (its types: {types}; retrysim proxy's "
                "'packet_loss' is its own)",
                in_output=False,
            )
        case FirstN(n=n):
            note(
                "n", f"failing the first {n} connections needs a count; {_COUNTS}", in_output=False
            )
        case EveryNth(n=n):
            note("n", f"failing one connection in {n} needs a count; {_COUNTS}", in_output=False)
        case Slicer(average_size=size, size_variation=variation, delay=delay):
            micros = round(delay * 1e6)
            if not math.isclose(micros, delay * 1e6):
                note("delay", f"{delay:g} s is not a whole microsecond: exported as {micros} us")
            attributes = {"average_size": size, "size_variation": variation, "delay": micros}
            return _toxic(index, "slicer", "downstream", 1.0, **attributes)
        case SlowClose(delay=delay):
            return _toxic(index, "slow_close", "downstream", 1.0, delay=ms("delay", delay))
        case LimitData(bytes=limit):
            return _toxic(index, "limit_data", "downstream", 1.0, bytes=limit)
        case CapacityLoss():
            note(
                "kind",
                "lost queue slots are the server's own capacity, not the network's",
                in_output=False,
            )
    return None


def _blast_radius(fault: Fault, toxic: dict[str, Any], note: Notes) -> None:
    """A share of connections is Toxiproxy's toxicity (drawn per connection, as there);
    clients, which a proxy cannot tell apart, are listed."""
    if isinstance(fault.connections, float):
        toxic["toxicity"] = toxic["toxicity"] * fault.connections
    elif fault.connections is not None:
        note(
            "connections",
            f"the fault hits connections {fault.connections} only; a Toxiproxy toxic hits a "
            "share of them (its toxicity), never chosen ones: it hits every one",
        )
    if fault.clients is not None:
        note(
            "clients",
            f"the fault hits clients {fault.clients} only; a proxy sees connections, not "
            "clients: it hits every client's",
        )


def _schedule_note(fault: Fault, toxic: str, note: Notes, horizon: float) -> None:
    """Note when ``toxic`` must be added and removed, unless it is on from 0 to the end."""
    found = windows(fault, horizon, MAX_WINDOWS)
    if found == [(0.0, None)]:
        return
    recurs = recurrence(fault)
    if recurs is None:
        on, off = found[0]
        off_text = "keep it to the end" if off is None else f"remove it at {secs(off)}"
        note(
            "window",
            f"toxics have no schedule: add {toxic} at {secs(on)} and {off_text}",
            windows=found,
        )
        return
    every, on_for = recurs
    total = window_count(fault, horizon)
    more = f", the first {len(found)} listed" if total > len(found) else ""
    note(
        "every/for",
        f"toxics have no schedule: add {toxic} at {secs(fault.start)} and remove it {on_for:g} s "
        f"later, every {every:g} s until {secs(min(fault.until, horizon))} ({total} "
        f"windows{more})",
        windows=found,
    )


def to_toxiproxy(
    scenario: Scenario,
    upstream: str,
    name: str,
    *,
    listen: str = DEFAULT_LISTEN,
    tier: str | None = None,
) -> tuple[list[dict[str, Any]], list[NotExpressed]]:
    """The scenario's faults as Toxiproxy proxies (one, named ``name``), and what is not in it.

    outage refuse -> reset_peer upstream, timeout 0 (not a disabled proxy: see the case); outage
    blackhole -> timeout 0 upstream; flaky and recovery_ramp -> reset_peer upstream with the
    probability as toxicity; reset -> reset_peer downstream (the request reaches the service,
    the answer is cut); latency_spike -> latency downstream (constant: latency; uniform: its
    middle ± half its width; others: the mean, noted). Listed: windows (toxics have no
    schedule), HTTP answers, packet_loss, first_n, every_nth, capacity_loss, a ramp, replicas.
    """
    check_name(name)
    port_of(upstream)
    port_of(listen, "--listen", zero=True)
    prefix, faults = faults_of(scenario, tier)
    items: list[NotExpressed] = []
    toxics: list[dict[str, Any]] = []
    for index, fault in enumerate(faults):
        note = Notes(f"{prefix}.{index}", fault.kind, items)

        def ms(what: str, seconds: float, note: Notes = note) -> int:
            whole, exact = whole_ms(seconds)
            if not exact:
                note(what, f"{seconds * 1000:g} ms is not a whole millisecond: exported as {whole}")
            return whole

        toxic = _toxiproxy_toxic(fault, index, note, ms)
        if toxic is None:
            continue
        _replicas_note(fault, note)
        _blast_radius(fault, toxic, note)
        toxics.append(toxic)
        _schedule_note(fault, f"toxic {toxic['name']!r}", note, scenario.duration)
    proxy = {"name": name, "listen": listen, "upstream": upstream, "enabled": True}
    return [{**proxy, "toxics": toxics}], items


# --- Chaos Mesh ------------------------------------------------------------------------------


def _network(action: str, **detail: Any) -> tuple[str, dict[str, Any]]:
    return "NetworkChaos", {"action": action, **detail}


def _http(port: int, target: str, **actions: Any) -> tuple[str, dict[str, Any]]:
    return "HTTPChaos", {"target": target, "port": port, **actions}


def _chaos_spec(
    fault: Fault, http: bool, port: int, note: Notes, duration: Callable[[str, float], str]
) -> tuple[str, dict[str, Any]] | None:
    """(kind, spec without selector or duration) for one fault; None: a note says why."""
    if answer_note(fault, note, "chaos-mesh"):
        return None
    status = http_status(fault)
    always = isinstance(fault, Outage) or (isinstance(fault, Flaky) and fault.probability >= 1)
    per_request = (
        "Chaos Mesh's experiments hit every request to the selected pods (no per-request "
        "probability or count)"
    )
    match fault:
        case Outage(mode="blackhole"):
            return _network("partition", direction="both")
        case Outage() | Flaky() if always and status is not None:
            note(
                "answer",
                f"HTTPChaos replaces the answer's status with {status} after the service has "
                "done the work; in the scenario the attempt is answered at once",
            )
            replace: dict[str, Any] = {"code": status}
            hint = getattr(fault, "retry_after", None)
            if hint is not None:
                replace["headers"] = {"Retry-After": f"{hint:g}"}
            return _http(port, "Response", replace=replace)
        case Outage() | Flaky() if always and http:
            return _http(port, "Request", abort=True)
        case Outage() | Flaky() | Reset() if not http and (always or isinstance(fault, Reset)):
            note(
                "mode" if isinstance(fault, Outage) else "kind",
                "Chaos Mesh cannot refuse or reset a TCP connection (NetworkChaos delays, "
                "loses, duplicates, corrupts or partitions packets; a partition would be a "
                "black hole, not a refusal)",
                in_output=False,
            )
        case Reset(probability=p) if p >= 1:
            return _http(port, "Response", abort=True)
        case Flaky() | RecoveryRamp() | Reset() | FirstN() | EveryNth():
            what = "n" if isinstance(fault, FirstN | EveryNth) else "probability"
            note(what, per_request, in_output=False)
        case LatencySpike(extra=extra):
            centre, half, why = latency_parts(extra)
            if http:
                if why is not None or half > 0:
                    why = why or "a uniform distribution: HTTPChaos delays by one fixed time"
                    note("extra", f"{why}, its mean ({centre * 1000:g} ms)")
                return _http(port, "Request", delay=duration("extra", centre))
            if why is not None:
                note("extra", f"{why} ({centre * 1000:g} ms)")
            if half > 0:
                note("extra", "netem spreads a delay by jitter with its own distribution")
            delay = {
                "latency": duration("extra", centre),
                "jitter": duration("extra (jitter)", half),
                "correlation": "0",
            }
            return _network("delay", direction="to", delay=delay)
        case PacketLoss(probability=p, rto=rto):
            if rto != KERNEL_RTO:
                note(
                    "rto",
                    f"the kernel's TCP retransmits lost packets (its first timeout "
                    f"{KERNEL_RTO:g} s at least), not after rto = {rto:g} s",
                )
            return _network(
                "loss", direction="to", loss={"loss": f"{p * 100:g}", "correlation": "0"}
            )
        case CapacityLoss():
            note(
                "kind",
                "lost queue slots are the server's own capacity, not the network's",
                in_output=False,
            )
        case Slicer() | SlowClose() | LimitData():
            note(
                "kind",
                f"Chaos Mesh has no {fault.kind} (NetworkChaos delays, loses, duplicates, "
                "corrupts, partitions or limits the bandwidth of packets)",
                in_output=False,
            )
    return None


def _selecting(fault: Fault, selector: Mapping[str, str], note: Notes) -> dict[str, Any]:
    """The spec's pod selection: every selected pod, or as many as the fault's replicas."""
    chosen: dict[str, Any] = {"selector": {"labelSelectors": dict(selector)}, "mode": "all"}
    replicas = getattr(fault, "replicas", None)
    if replicas is not None:
        chosen.update(mode="fixed", value=str(len(replicas)))
        note(
            "replicas",
            f"the fault hits replicas {replicas}; Chaos Mesh picks {len(replicas)} of the "
            "selected pods at random (mode fixed)",
        )
    return chosen


def _manifest(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": CHAOS_MESH_API, "kind": kind, "metadata": {"name": name}, "spec": spec}


def to_chaos_mesh(
    scenario: Scenario,
    upstream: str,
    name: str,
    *,
    selector: Mapping[str, str] | None = None,
    tier: str | None = None,
) -> tuple[dict[str, Any], list[NotExpressed]]:
    """The scenario's faults as Chaos Mesh objects in a ``v1`` ``List``, and what is not in it.

    NetworkChaos: latency_spike -> delay (latency, jitter), packet_loss -> loss (a percent
    string), outage blackhole -> partition (both directions). On an HTTP service
    (:func:`speaks_http`): an HTTP answer -> HTTPChaos replace code (``Retry-After`` kept), an
    outage refusing -> abort on the request, a certain reset -> abort on the response, a latency
    spike -> HTTPChaos delay, on ``upstream``'s port. ``end`` -> ``duration``; ``every``/``for``
    -> a Schedule (``@every`` the period, each run lasting ``for``). Listed: ``start`` offsets
    (apply the manifest then), probabilities and counts (flaky, recovery_ramp, reset, first_n,
    every_nth), refusals of a TCP service, capacity_loss, words as answers, replicas; the
    items about an object's fault are also its :data:`ANNOTATION`. ``selector``: the
    service's pods' labels (default ``app=<name>``).
    """
    check_name(name)
    port = port_of(upstream)
    prefix, faults = faults_of(scenario, tier)
    labels = dict(selector) if selector else {"app": name}
    http = speaks_http(scenario, faults)
    horizon = scenario.duration
    items: list[NotExpressed] = []
    objects: list[dict[str, Any]] = []
    for index, fault in enumerate(faults):
        note = Notes(f"{prefix}.{index}", fault.kind, items)

        def duration(what: str, seconds: float, note: Notes = note) -> str:
            text, exact = go_duration(seconds)
            if not exact:
                note(what, f"{seconds:g} s is not a whole microsecond: exported as {text}")
            return text

        made = _chaos_spec(fault, http, port, note, duration)
        if made is None:
            continue
        kind, action = made
        for part in ("clients", "connections"):
            if getattr(fault, part) is not None:
                note(part, f"Chaos Mesh selects pods, not the {part} a fault hits: it hits all")
        spec = {**_selecting(fault, labels, note), **action}
        slug = str(
            action.get("action") or next(k for k in ("abort", "replace", "delay") if k in action)
        )
        made_object = _timed(fault, kind, f"{name}-{index}-{slug}", spec, note, duration, horizon)
        own = [item.line() for item in items if item.fault == note.fault]
        if own:  # kubectl describe shows them beside the object they are about
            made_object["metadata"]["annotations"] = {ANNOTATION: "\n".join(own)}
        objects.append(made_object)
    return {"apiVersion": "v1", "kind": "List", "items": objects}, items


def _timed(
    fault: Fault,
    kind: str,
    name: str,
    spec: dict[str, Any],
    note: Notes,
    duration: Callable[[str, float], str],
    horizon: float,
) -> dict[str, Any]:
    """The object for ``spec`` with the fault's time: a duration, or a Schedule when it recurs."""
    recurs = recurrence(fault)
    if recurs is None:
        if fault.end is not None:
            spec["duration"] = duration("end", fault.end - fault.start)
        if fault.start > 0:
            note(
                "start",
                f"an experiment starts when it is created: apply {name} at {secs(fault.start)}",
                windows=[(fault.start, fault.end)],
            )
        return _manifest(kind, name, spec)
    every, on_for = recurs
    spec["duration"] = duration("for", on_for)
    period = max(1, math.floor(every))
    if period != every:
        note("every", f"cron's @every counts whole seconds: {every:g} s exported as {period} s")
    first = fault.start - period
    when = f"at {secs(first)}" if first >= 0 else f"{period} s before the run starts"
    note(
        "start",
        f"a Schedule first runs one period after it is created: create {name} {when} for its "
        f"first window to open at {secs(fault.start)}",
        windows=windows(fault, horizon, MAX_WINDOWS),
    )
    if fault.end is not None:
        note("end", f"a Schedule runs until deleted: delete {name} at {secs(fault.end)}")
    field = "networkChaos" if kind == "NetworkChaos" else "httpChaos"
    schedule = {
        "schedule": f"@every {period}s",
        "type": kind,
        "historyLimit": 1,
        "concurrencyPolicy": "Forbid",
        field: spec,
    }
    return _manifest("Schedule", name, schedule)
