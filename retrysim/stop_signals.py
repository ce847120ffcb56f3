"""The signals that stop retrysim cleanly, as a Ctrl-C does: SIGTERM and SIGHUP.

Both the CLI (:func:`retrysim.cli.exits.stop_on_signals`) and the lab, whose event loop holds
them while its screen runs, stop on these; the process then exits 128 + the signal's number
(143 for SIGTERM, 129 for SIGHUP), as shells report it. A platform without one (Windows has no
SIGHUP) leaves it out.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

STOP_SIGNALS: tuple[signal.Signals, ...] = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)
)


@contextlib.contextmanager
def held_by_loop(on_first: Callable[[signal.Signals], None]) -> Iterator[None]:
    """Within the block, the running event loop takes SIGTERM and SIGHUP: the first calls
    ``on_first(signal)`` between two of the loop's callbacks.

    Why on the loop: a plain handler raises wherever the main thread happens to be, in the
    middle of one task's step or a screen's refresh, and the rest is torn down half-done.
    ``on_first`` instead cancels the work or asks the app to exit, so every ``finally`` runs.
    A second signal ends the process at once (its default action), so a clean-up that hangs
    can still be stopped. A signal the process was started ignoring (``nohup``) stays
    ignored; off the main thread nothing is installed. The handlers there were before are put
    back when the block ends. Call it from a coroutine (it needs the running loop).
    """
    import asyncio  # only a command that runs an event loop pays for it

    loop = asyncio.get_running_loop()
    fired: list[signal.Signals] = []

    def stop(number: signal.Signals) -> None:
        if fired:
            signal.signal(number, signal.SIG_DFL)
            signal.raise_signal(number)
            return
        fired.append(number)
        on_first(number)

    installed: list[tuple[signal.Signals, Any]] = []
    if threading.current_thread() is threading.main_thread():
        for number in STOP_SIGNALS:
            before = signal.getsignal(number)
            if before in (signal.SIG_IGN, None):
                continue
            loop.add_signal_handler(number, stop, number)
            installed.append((number, before))
    try:
        yield
    finally:
        for number, before in installed:
            loop.remove_signal_handler(number)
            signal.signal(number, before)
