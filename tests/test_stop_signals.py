"""``held_by_loop``: a stop signal reaches the running event loop as a callback, once, and the
handlers that were there before come back after."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from types import FrameType

import pytest

from retrysim.stop_signals import STOP_SIGNALS, held_by_loop


@pytest.fixture
def own_handlers() -> Iterator[dict[signal.Signals, list[int]]]:
    """Plain handlers on both stop signals (recording what reached them), removed after."""
    seen: dict[signal.Signals, list[int]] = {number: [] for number in STOP_SIGNALS}
    before = {number: signal.getsignal(number) for number in STOP_SIGNALS}

    def record(number: int, frame: FrameType | None) -> None:
        seen[signal.Signals(number)].append(number)

    for number in STOP_SIGNALS:
        signal.signal(number, record)
    yield seen
    for number, handler in before.items():
        signal.signal(number, handler)


@pytest.mark.parametrize("number", STOP_SIGNALS, ids=lambda n: n.name)
def test_the_first_signal_is_a_callback_on_the_loop_and_the_old_handler_returns(
    number: signal.Signals, own_handlers: dict[signal.Signals, list[int]]
) -> None:
    """The signal is handed to the callback on the loop (the plain handler never sees it), and
    after the block the plain handler gets the next one again."""
    called: list[signal.Signals] = []

    async def run() -> None:
        with held_by_loop(called.append):
            os.kill(os.getpid(), number)
            for _ in range(100):  # the loop's wake-up runs the callback within a few turns
                if called:
                    break
                await asyncio.sleep(0)

    asyncio.run(run())
    assert called == [number]
    assert own_handlers[number] == []
    os.kill(os.getpid(), number)
    assert own_handlers[number] == [number]


def test_an_ignored_signal_stays_ignored() -> None:
    """A process started under ``nohup`` ignores SIGHUP; holding the signals must not undo it."""
    number = STOP_SIGNALS[-1]
    before = signal.signal(number, signal.SIG_IGN)
    called: list[signal.Signals] = []
    try:

        async def run() -> None:
            with held_by_loop(called.append):
                assert signal.getsignal(number) is signal.SIG_IGN
                os.kill(os.getpid(), number)
                for _ in range(20):
                    await asyncio.sleep(0)

        asyncio.run(run())
        assert called == []
        assert signal.getsignal(number) is signal.SIG_IGN
    finally:
        signal.signal(number, before)
