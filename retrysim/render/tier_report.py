"""The run report's tables of a call graph and of replicated services (Rich).

``Tiers``: one row per tier, top first: the calls its callers made to it, the requests it
received, those per user call against the most the layers' ``max_attempts`` allow (the
amplification), the success of calls to it, its busiest second against its capacity, and the
requests it received after the request they serve had been given up (wasted work).
``Replicas``: one row per replica: its requests, how many failed, and how many retries went
back to it right after failing there. Each table is None when the document has no such
section, so a one-tier report is unchanged. Only the document is read.
"""

from __future__ import annotations

from rich.table import Table

from retrysim.results.document import ResultDocument
from retrysim.results.sections import ReplicaSection, TierSection
from retrysim.safe import markup

#: A failure rate, or a load over capacity, at or above which its cell is red.
RED_FAILURE_RATE = 0.5
RED_OVER_CAPACITY = 1.0


def _num(value: float | int | None, digits: int = 0, unit: str = "") -> str:
    if value is None:
        return "–"
    return f"{value:,.{digits}f}{unit}" if isinstance(value, float) else f"{value:,}{unit}"


def _pct(share: float | None) -> str:
    return "–" if share is None else f"{100 * share:.1f}%"


def tiers_table(doc: ResultDocument) -> Table | None:
    """The ``Tiers`` table (None without tiers); see the module."""
    tiers = doc.get("tiers")
    if not tiers:
        return None
    table = Table(title="Tiers (top first)", title_justify="left")
    table.add_column("tier", style="bold")
    table.add_column("calls", justify="right")
    table.add_column("requests", justify="right")
    table.add_column("per user call", justify="right")
    table.add_column("success", justify="right")
    table.add_column("peak / capacity", justify="right")
    table.add_column("wasted", justify="right")
    for tier in tiers:
        table.add_row(
            markup(tier["name"]),
            _num(tier["calls"]),
            _num(tier["attempts"]),
            _per_user_call(tier),
            _pct(tier["success_rate"]),
            _peak(tier),
            _wasted(tier),
        )
    return table


def _per_user_call(tier: TierSection) -> str:
    """``19.39 (max 27)``: the amplification down to the tier, and its bound."""
    most = tier["max_attempts_per_call"]
    bound = "no fixed max" if most is None else f"max {most:,}"
    return f"{_num(tier['attempts_per_call'], 2)} ({bound})"


def _peak(tier: TierSection) -> str:
    peak = _num(tier["peak_attempts_per_s"], 0, "/s")
    capacity, ratio = tier["capacity"], tier["peak_over_capacity"]
    if capacity is None or ratio is None:
        return f"{peak} / unbounded"
    text = f"{peak} / {_num(capacity, 0, '/s')} ({ratio:.2f}x)"
    return f"[red]{text}[/]" if ratio > RED_OVER_CAPACITY else text


def _wasted(tier: TierSection) -> str:
    count = tier["wasted_attempts"]
    text = f"{count:,} ({_pct(tier['wasted_share'])})"
    return f"[yellow]{text}[/]" if count else text


def replicas_table(doc: ResultDocument) -> Table | None:
    """The ``Replicas`` table (None when no service has several); see the module."""
    replicas = doc.get("replicas")
    if not replicas:
        return None
    tiered = any(r["tier"] is not None for r in replicas)
    table = Table(title="Replicas", title_justify="left")
    if tiered:
        table.add_column("tier", style="bold")
    table.add_column("replica", justify="right", style="bold")
    table.add_column("requests", justify="right")
    table.add_column("failed", justify="right")
    table.add_column("retried on it again", justify="right")
    for replica in replicas:
        cells = [
            str(replica["replica"]),
            _num(replica["attempts"]),
            _failed(replica),
            _num(replica["same_replica_retries"]),
        ]
        if tiered:
            cells.insert(0, markup(replica["tier"] or ""))
        table.add_row(*cells)
    avoid = {r["retry_other_host"] for r in replicas}
    table.caption = (
        "retries go to a replica the call has not tried"
        if avoid == {True}
        else "retries may land on a replica the call already tried (retry_other_host off)"
        if avoid == {False}
        else None
    )
    return table


def _failed(replica: ReplicaSection) -> str:
    rate = replica["failure_rate"]
    text = f"{replica['failed']:,} ({_pct(rate)})"
    return f"[red]{text}[/]" if rate is not None and rate >= RED_FAILURE_RATE else text
