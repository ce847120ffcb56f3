"""The names retrysim accepts, defined once: operations, profiles, errors, figure formats.

This module imports nothing heavy, so the CLI can check arguments and print help from it
without loading numpy or pydantic-settings; the settings and scenario modules take their names
from here. Metric names are defined with their metrics in :mod:`retrysim.results.metric_table`.
"""

from __future__ import annotations

from typing import Literal, get_args

Operation = Literal["worker", "storage", "scheduler", "api"]
Profile = Literal[
    "documented", "bindu", "full_jitter", "equal_jitter", "decorrelated", "exponential"
]
ErrorName = Literal[
    "ConnectionError",
    "ConnectionRefusedError",
    "ConnectionResetError",
    "ConnectionAbortedError",
    "TimeoutError",
    "OSError",
    "RateLimited",
    "Conflict",
    "ServerError",
    "CircuitOpen",
    # client libraries' errors (retrysim.sim.catalogue), raised as stand-ins by the simulator
    "redis.exceptions.ConnectionError",
    "redis.exceptions.TimeoutError",
    "redis.exceptions.BusyLoadingError",
    "redis.exceptions.ResponseError",
    "httpx.ConnectError",
    "httpx.ConnectTimeout",
    "httpx.ReadTimeout",
    "httpx.RemoteProtocolError",
    "httpx.HTTPStatusError",
    "aiohttp.ClientConnectionError",
    "aiohttp.ClientResponseError",
    "requests.exceptions.ConnectionError",
    "requests.exceptions.Timeout",
    "urllib3.exceptions.ProtocolError",
    "asyncpg.exceptions.CannotConnectNowError",
    "asyncpg.exceptions.SerializationError",
    "psycopg.OperationalError",
    "botocore.exceptions.EndpointConnectionError",
    "botocore.exceptions.ClientError",
    "httpx.ReadError",  # last: the record codes of the names above stay what they were
]

#: Upper bound for max_attempts anywhere (settings, overrides, scenarios); records store attempt
#: numbers in 16 bits, and no real policy comes near it.
MAX_ATTEMPTS_LIMIT = 10_000

OPERATIONS: tuple[Operation, ...] = get_args(Operation)
PROFILES: tuple[Profile, ...] = get_args(Profile)
ERROR_NAMES: tuple[ErrorName, ...] = get_args(ErrorName)

#: File formats a figure can be saved in, chosen by the file's extension (``--plot``, ``--out``).
#: Here rather than in retrysim.plots so the CLI can check a path without loading matplotlib.
FIGURE_FORMATS: tuple[str, ...] = ("png", "svg", "pdf")

#: Where compare's and sweep's runs happen (``--executor``): see :mod:`retrysim.runs.executors`.
EXECUTOR_KINDS: tuple[str, ...] = ("local", "dask")
#: ``--engine`` values: ``auto`` takes the native core when it models the run, else the fast
#: path whenever the policy allows it; ``native`` and ``fast`` insist on theirs; ``reference``
#: steps tenacity's own ``iter()`` (retrysim.sim.native, retrysim.sim.decide).
ENGINES = ("auto", "native", "fast", "reference")
