"""Marks on scenario fields: which defaults shape a run unseen, and when a key matters at all.

A scenario's keys are not all alike. Some defaults add time or capacity to every run that
leaves them unset (a 10 ms service time, a connect costing one more round trip, a queue of
1,000): :class:`InEffect` marks them, so ``retrysim validate`` and the run report can list the
ones in effect (:mod:`retrysim.model.defaults`) and the scenario reference can flag them. Some
keys are read only in some scenarios (a SYN retry without a listen backlog, a read latency
without a read): :class:`UsedWhen` marks them, so the scenario lint
(:mod:`retrysim.model.lint`) warns when one is set and changes nothing.

A mark is a field's metadata (``Annotated[int, Field(ge=0), CAPACITY]``), so what a key means
to a run is said once, where the key is defined. The named marks below are the ones the models
use; the predicates take the table that holds the key and the whole scenario, by duck typing
(this module sits below the models it describes).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

#: Whether a key matters in a scenario: ``used(table, scenario)`` with the table that holds the
#: key (``scenario.clients`` for ``clients.cpus``) and the whole scenario.
Used = Callable[[Any, Any], bool]


def always(table: Any, scenario: Any) -> bool:
    """A key every scenario that has its table uses."""
    return True


@dataclass(frozen=True)
class InEffect:
    """A field whose default adds time or capacity to a run.

    Listed when unset, ``used`` and, if the field also carries a :class:`UsedWhen`, that
    says it is read. ``adds``: ``time`` or ``capacity``. ``means``: the default in words when
    the field's value alone does not say it (a None that means "one more rtt draw"). ``note``:
    what the default applies to in this scenario (``note(table)``, "" for nothing to add).
    ``used``: whether this scenario's model uses the default at all (no line for a pool no
    attempt goes through).
    """

    adds: Literal["time", "capacity"]
    means: str = ""
    note: Callable[[Any], str] | None = None
    used: Used = always


@dataclass(frozen=True)
class UsedWhen:
    """A field the engine reads only when ``used(table, scenario)``. ``why`` says when, in
    words starting "only" ("only with accept_backlog (...)"): the scenario reference shows it
    as "read only with ...", and a value set in vain gets it as its warning."""

    used: Used
    why: str


def connected(table: Any, scenario: Any) -> bool:
    """Attempts go over connections (a network, a pool, a connect timeout, a client CPU)."""
    return bool(scenario.models_connections)


def cpu_costs(clients: Any, scenario: Any) -> bool:
    """Attempts or connects cost their client process CPU."""
    return clients.cpu_per_attempt is not None or clients.cpu_per_connect is not None


def own_calls(clients: Any, scenario: Any) -> bool:
    """Clients make calls of their own (a Poisson arrival is one call, whoever makes it)."""
    return bool(clients.arrival.kind != "poisson")


def follow_ups(clients: Any, scenario: Any) -> bool:
    """A client makes a call after its first (what ``think_time`` waits before)."""
    if clients.calls_per_client is None:
        return bool(clients.arrival.kind == "closed")  # a closed loop calls until duration
    return own_calls(clients, scenario) and clients.calls_per_client > 1


def refuses(fault: Any, scenario: Any) -> bool:
    """An outage that fails attempts with an error (a black hole answers nothing)."""
    return bool(fault.mode == "refuse")


def fails(fault: Any, scenario: Any) -> bool:
    """A gate fault that fails attempts with its error (an ``answer`` replaces the error)."""
    return fault.answer is None and getattr(fault, "mode", "refuse") == "refuse"


def rejects_with_error(service: Any, scenario: Any) -> bool:
    """A rate limiter that rejects with RateLimited (which carries the hint), not an answer."""
    return service.reject_answer is None


def abandons(service: Any, scenario: Any) -> bool:
    """A client can stop waiting for a request the server still holds: a client timeout, or a
    connection reset mid-request."""
    resets = any(fault.kind == "reset" for fault in scenario.faults)
    return scenario.client_timeout is not None or resets


def times_out(service: Any, scenario: Any) -> bool:
    """A client timeout can end an attempt (what a server may then cancel)."""
    return scenario.client_timeout is not None


def capped(service: Any, scenario: Any) -> bool:
    """A processor-sharing server caps the requests in service, so some wait in a FIFO."""
    return service.concurrency is not None


def waits(service: Any, scenario: Any) -> bool:
    """A lock's requests wait for it in a FIFO (rather than failing at once)."""
    return bool(service.on_busy == "wait")


def has_read(service: Any, scenario: Any) -> bool:
    """An OCC service's request is a read and then a write."""
    return bool(service.protocol == "read_then_write")


def backlog(network: Any, scenario: Any) -> bool:
    """A listen backlog that drops SYNs (which are then sent again)."""
    return network.accept_backlog is not None


def occ_latency(service: Any) -> str:
    """What an OCC service's ``latency`` is the time of."""
    if service.protocol == "read_then_write":
        return "OCC read and write each" if service.read_latency is None else "the OCC write"
    return ""


def per_request(service: Any) -> str:
    return "added per request in flight"


# --- the marks the models carry ---------------------------------------------------------------

#: A time every request (or connect, or retry of a SYN) pays: 10 ms of service unless set.
TIME = InEffect("time")
#: A bounded number of places (a queue's, a bucket's, cores): it sets how much gets through.
CAPACITY = InEffect("capacity")
#: OCC's latency: the write's, and the read's too unless ``read_latency`` is set.
OCC_TIME = InEffect("time", note=occ_latency)
#: A load-latency server's slowdown per request in flight.
PER_REQUEST = InEffect("time", note=per_request)
#: A connect's default cost: the handshake, one more round trip.
CONNECT_TIME = InEffect("time", "one more rtt draw")
#: Client processes and their pools matter only where attempts go over connections (they are
#: read by real runs too, so they carry no UsedWhen).
PROCESSES = InEffect("capacity", "one per client", used=connected)
POOL_SIZE = InEffect("capacity", "as many as are asked for", used=connected)
CPUS = InEffect("capacity", "one per process")

OCC_READ = UsedWhen(has_read, 'only with protocol = "read_then_write" (its read)')
PS_QUEUE = UsedWhen(capped, "only with a concurrency cap (requests then wait in a FIFO)")
LOCK_QUEUE = UsedWhen(waits, 'only with on_busy = "wait" (requests queue for the lock)')
#: (``policy.attempt_timeout`` is the same timeout as ``clients.timeout``: either key counts.)
ABANDONED = UsedWhen(abandons, "only with clients.timeout or a reset fault (a client gives up)")
CANCELLED = UsedWhen(times_out, "only with clients.timeout (a client gives up)")
SYN_RETRY = UsedWhen(backlog, "only with accept_backlog (it drops SYNs to send again)")
CPU_COSTS = UsedWhen(cpu_costs, "only with cpu_per_attempt or cpu_per_connect")
OWN_CALLS = UsedWhen(own_calls, "only without a Poisson arrival (its rate makes every call)")
FOLLOW_UPS = UsedWhen(follow_ups, "only before a client's later calls (calls_per_client > 1)")
REFUSES = UsedWhen(refuses, 'only with mode = "refuse" (a black hole hangs to the timeout)')
FAILS = UsedWhen(fails, "only without an answer (which replaces the error)")
REFUSES_FAILING = UsedWhen(
    fails, 'only with mode = "refuse" (a black hole hangs to the timeout) and without an answer'
)
HINTED = UsedWhen(rejects_with_error, "only without reject_answer (a returned value has no hint)")
