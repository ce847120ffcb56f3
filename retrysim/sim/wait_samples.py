"""Waits sampled from the real retry policy, for figures and for checking schedules.

Driving tenacity's wait strategies with real ``RetryCallState`` objects, on the simulator's
per-call jitter streams, is simulation work, so it lives beside the engine rather than in
:mod:`retrysim.plots`, which only draws what this returns. Like the rest of ``retrysim.sim`` it
imports no UI module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from retrysim.retry.settings import Operation, RetrySettings


def sample_waits(
    operation: Operation,
    profile: str | None = None,
    settings: RetrySettings | None = None,
    samples: int = 2000,
    seed: int = 0,
    max_retries: int | None = None,
) -> np.ndarray:
    """Waits drawn from the real policy: ``samples`` x retries, column n-1 = wait before retry n.

    The waits come from the same tenacity wait object :func:`retrysim.retry.build_policy` hands
    the production decorators, called with real ``RetryCallState`` objects, so the figure cannot
    drift from what ships. Each sample is one call stepping through its retries in order (the
    decorrelated profile remembers its previous wait per call) with its own counter-based
    stream, so results are reproducible for a ``seed`` and identical across profiles.
    ``settings=None`` means the process settings, as for the decorators.
    """
    # Imported on first use: the retry policy loads pydantic-settings, which importing
    # retrysim.plots (it re-exports this function) has never needed to.
    from tenacity import RetryCallState

    from retrysim.retry.policy import build_policy
    from retrysim.sim.clock import current_stream, routed_jitter
    from retrysim.sim.streams import JITTER, Stream, stream_key

    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    policy = build_policy(operation, settings, profile=profile)
    retries = policy.max_attempts - 1
    if max_retries is not None:
        retries = min(retries, max_retries)
    waits = np.empty((samples, max(retries, 0)), dtype=np.float64)
    if retries <= 0:
        return waits
    retrying = policy.retrying()
    key = stream_key(seed, JITTER)
    with routed_jitter():
        for i in range(samples):
            token = current_stream.set(Stream(key, i))
            try:
                state = RetryCallState(retry_object=retrying, fn=None, args=(), kwargs={})
                for n in range(1, retries + 1):
                    state.attempt_number = n  # the wait after attempt n = before retry n
                    waits[i, n - 1] = policy.wait(state)
            finally:
                current_stream.reset(token)
    return waits
