"""Counter-based random numbers: every draw is a pure function of (seed, stream, call, attempt).

A draw never depends on the order events happen in, so adding a client or a fault does not
reshuffle anyone else's jitter or latency, a run is bit-identical in any process (pure integer
arithmetic, no ``hash()``), and the virtual-time asyncio cross-check can reproduce the engine's
draws exactly. SplitMix64's finaliser does the mixing.
"""

from __future__ import annotations

M64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15
_CALL = 0xD1B54A32D192ED03
CALL_STEP = _CALL  # how far apart two calls' streams start
_ATTEMPT = 0xABC98388FB8FAC03
ATTEMPT_STEP = _ATTEMPT  # how far apart two attempts' draws are
INV53 = 2.0**-53

# Stream purposes: one per kind of randomness, so they never share draws.
JITTER = 1
LATENCY = 2
ARRIVAL = 3
RESET_POINT = 4
NETWORK = 5  # an attempt's round trip (network.draws = "per_attempt"); per_leg: its request out
CONNECT = 6  # the time a new connection takes to open
SERVER_DRAW = 7  # draws a server model makes of its own (a read before the write, ...)
CPU = 8  # the client process's CPU an attempt costs
CONNECT_CPU = 9  # the client process's CPU a new connection costs
# network.draws = "per_leg": each one-way leg of an attempt its own draw (the request out is
# NETWORK's)
NETWORK_BACK = 10  # the answer (or error) travelling back
OCC_READ_BACK = 11  # a read-then-write's read answer travelling back
OCC_WRITE_OUT = 12  # a read-then-write's write travelling out
BALANCE = 13  # a balancer's random picks of a replica
FAULT_BASE = 1000  # fault i uses FAULT_BASE + i
# Within a packet_loss fault's stream: segment s of an attempt (0 the request, 1 the answer,
# ...) draws its losses from LOSS_SEGMENT + s; the proxy's upstream chunks use segment 0's,
# its downstream chunks segment 1's.
LOSS_SEGMENT = 100
# Within a fault's stream: which clients a share of clients (its blast radius) picks.
BLAST_RADIUS = 300
# Within a slicer's stream (the proxy's): the sizes of a chunk's pieces.
SLICES = 200


def mix(z: int) -> int:
    """SplitMix64 finaliser: a bijection on 64-bit ints with good avalanche."""
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def stream_key(seed: int, purpose: int) -> int:
    """The key of one stream of a run."""
    return mix((mix((seed + GOLDEN) & M64) + purpose * GOLDEN) & M64)


def unit(key: int, call: int, attempt: int = 0) -> float:
    """A uniform draw in [0, 1) for (stream key, call, attempt)."""
    return (mix((key + call * _CALL + attempt * _ATTEMPT) & M64) >> 11) * INV53


class Stream:
    """A tiny sequential generator (SplitMix64) for draws tenacity makes through ``random``."""

    __slots__ = ("state",)

    def __init__(self, key: int, call: int) -> None:
        self.state = (key + call * _CALL) & M64

    def random(self) -> float:
        # mix() written out: this is the draw every jitter makes, and the call is a fifth of it
        self.state = z = (self.state + GOLDEN) & M64
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        return ((z ^ (z >> 31)) >> 11) * INV53

    def uniform(self, a: float, b: float) -> float:
        # random() written out again: every jittered wait draws through here
        self.state = z = (self.state + GOLDEN) & M64
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        return a + (b - a) * (((z ^ (z >> 31)) >> 11) * INV53)
